#!/usr/bin/env python3
"""How docker-compose.yml runs each service, as bash arrays for
tests/container/run_images_test.sh: that test runs the images with Podman as
the compose file says, so it reads the file rather than repeat it.

  compose_services.py REPO > compose.sh    # then: source compose.sh

The file is read through `docker-compose config` (Debian's docker-compose,
1.29 or 2.x: the same normalised form the bundle test reads). For each
service S (its name with - as _):

  compose_image_S     the image name the compose file gives it
  compose_target_S    the Dockerfile stage it is built from (empty: pulled)
  compose_network_S   the service whose network namespace it shares, or empty
  compose_options_S   podman run options: --cap-add, --env, --sysctl, --ulimit
  compose_command_S   its command (the image's entrypoint runs it)

and compose_services (every service, in file order). A key this does not know
how to translate is an error, so a new setting in the compose file cannot be
left out of the test silently. Published ports and the compose network are
left out on purpose: the test runs the services in network namespaces of its
own, which no other address reaches.
"""

import os
import shlex
import subprocess
import sys

import yaml  # python3-yaml

# Keys translated below, and those the test replaces with its own namespaces
# or that do not apply to one run (restart; volumes only of the services whose
# images are pulled, which the test cannot run).
TRANSLATED = {"build", "image", "command", "environment", "cap_add", "ulimits", "sysctls",
              "network_mode", "depends_on"}
NOT_APPLICABLE = {"ports", "networks", "restart", "volumes"}


def fail(message):
    sys.exit("compose_services.py: " + message)


def config(repo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    try:
        result = subprocess.run(["docker-compose", "-f", os.path.join(repo, "docker-compose.yml"),
                                 "config"], capture_output=True, text=True, cwd=repo, env=env,
                                timeout=120)
    except FileNotFoundError:
        fail("no docker-compose: scripts/test installs it (scripts/lib/setup.sh's test packages)")
    if result.returncode != 0:
        fail("docker-compose config failed: " + result.stderr.strip())
    return yaml.safe_load(result.stdout)


def options(name, service):
    """podman run options for what the service sets."""
    out = []
    for cap in service.get("cap_add", []):
        out += ["--cap-add", cap]
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # KEY=VALUE strings
        environment = dict(item.split("=", 1) for item in environment)
    for key, value in environment.items():
        out += ["--env", "%s=%s" % (key, value)]
    sysctls = service.get("sysctls") or {}
    if isinstance(sysctls, list):
        sysctls = dict(item.split("=", 1) for item in sysctls)
    for key, value in sysctls.items():
        out += ["--sysctl", "%s=%s" % (key, value)]
    for key, value in (service.get("ulimits") or {}).items():
        if isinstance(value, dict):
            value = "%s:%s" % (value["soft"], value["hard"])
        else:
            value = "%s:%s" % (value, value)
        out += ["--ulimit", "%s=%s" % (key, value)]
    return out


def main():
    if len(sys.argv) != 2:
        fail("usage: compose_services.py REPO")
    services = config(sys.argv[1])["services"]
    lines = ["compose_services=(%s)" % " ".join(shlex.quote(s) for s in services)]
    for name, service in services.items():
        unknown = set(service) - TRANSLATED - NOT_APPLICABLE
        if service.get("build") and service.get("volumes"):
            unknown.add("volumes")
        if unknown:
            fail("service %s sets %s, which tests/container/run_images_test.sh does not "
                 "reproduce: translate it in tests/container/compose_services.py"
                 % (name, ", ".join(sorted(unknown))))
        var = name.replace("-", "_")
        network = service.get("network_mode", "")
        if network and not network.startswith("service:"):
            fail("service %s: network_mode %s: only service:NAME is reproduced" % (name, network))
        command = service.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        build = service.get("build") or {}
        lines += [
            "compose_image_%s=%s" % (var, shlex.quote(service.get("image", ""))),
            "compose_target_%s=%s" % (var, shlex.quote(build.get("target", "") if build else "")),
            "compose_network_%s=%s" % (var, shlex.quote(network.partition(":")[2])),
            "compose_options_%s=(%s)" % (var, " ".join(shlex.quote(o)
                                                       for o in options(name, service))),
            "compose_command_%s=(%s)" % (var, " ".join(shlex.quote(c) for c in command)),
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
