#!/usr/bin/env python3
"""docker-compose.yml and Dockerfile, checked without a Docker engine.

`docker-compose config` (Debian's docker-compose: 1.29 on Debian 12, the Go
rewrite 2.26 on Debian 13) validates the file; the rest reads its normalised
output and checks what `config` does not: every
bind mount exists in the repository, privileges stay least, services point at
each other by the right names, and the Dockerfile takes its packages from
scripts/lib/setup.sh and the project's Debian package (tests/container's
container_images test builds and runs the images).
"""

import ipaddress
import json
import os
import re
import subprocess
import unittest

import yaml  # python3-yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compose_config():
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    result = subprocess.run(["docker-compose", "-f", os.path.join(REPO, "docker-compose.yml"),
                             "config"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=120)
    return result


def parse_volume(volume):
    """(source, target, read-only) of a normalised volume: compose 1.29 writes
    "source:target[:ro]", compose 2 a mapping."""
    if isinstance(volume, str):
        parts = volume.split(":")
        return parts[0], parts[1] if len(parts) > 1 else parts[0], "ro" in parts[2:]
    return volume["source"], volume["target"], bool(volume.get("read_only", False))


def this_release():
    """The codename of the Debian release this machine runs, e.g. bookworm."""
    with open("/etc/os-release") as f:
        match = re.search(r"^VERSION_CODENAME=(\S+)", f.read(), re.M)
    return match.group(1).strip('"') if match else ""


def dockerfile_stages():
    """[(base image, stage name, text of the stage)] in order."""
    with open(os.path.join(REPO, "Dockerfile")) as f:
        text = f.read()
    parts = re.split(r"(?m)^FROM ", text)[1:]
    stages = []
    for part in parts:
        head = part.split("\n", 1)[0].split()
        stages.append((head[0], head[2] if len(head) > 2 else "", part))
    return stages


def apt_installed(stage_text):
    """Packages an `apt-get install` line of a stage installs (none without one)."""
    match = re.search(r"apt-get install -y --no-install-recommends((?:[^&]|\\\n)*)", stage_text)
    if not match:
        return set()
    return set(re.sub(r"\\\n", " ", match.group(1)).split()) - {"\\"}


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        result = compose_config()
        cls.config_result = result
        cls.config = yaml.safe_load(result.stdout) if result.returncode == 0 else None

    def setUp(self):
        self.assertEqual(self.config_result.returncode, 0, self.config_result.stderr)
        self.services = self.config["services"]

    def test_has_the_whole_stack(self):
        self.assertEqual(set(self.services), {"exporter", "demo-hello", "demo-summit", "demo-words",
                                              "traffic", "prometheus", "grafana"})

    def test_every_bind_mount_exists_in_the_repository(self):
        named = set(self.config.get("volumes", {}))
        binds = 0
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = parse_volume(volume)[0]
                if source.startswith("/"):
                    binds += 1
                    self.assertTrue(source.startswith(REPO + os.sep), "%s mounts %s" % (name, source))
                    self.assertTrue(os.path.exists(source), "%s mounts missing %s" % (name, source))
                else:
                    self.assertIn(source, named, name)
        self.assertGreaterEqual(binds, 4)

    def test_build_targets_are_dockerfile_stages(self):
        stages = {name for _, name, _ in dockerfile_stages()}
        for name, service in self.services.items():
            if "build" in service:
                self.assertEqual(service["build"]["context"], REPO, name)
                self.assertIn(service["build"]["target"], stages, name)

    def test_least_privilege(self):
        for name, service in self.services.items():
            self.assertFalse(service.get("privileged", False), name)
            self.assertNotIn("pid", service, name)
            self.assertNotEqual(service.get("network_mode"), "host", name)
            self.assertNotIn("SYS_ADMIN", service.get("cap_add", []), name)
            self.assertNotIn("ALL", service.get("cap_add", []), name)
        self.assertEqual(set(self.services["exporter"]["cap_add"]), {"BPF", "PERFMON"})
        self.assertEqual(set(self.services["traffic"]["cap_add"]), {"NET_ADMIN"})
        for name in ("demo-hello", "demo-summit", "demo-words", "prometheus", "grafana"):
            self.assertNotIn("cap_add", self.services[name], name)

    def test_demo_services_share_one_namespace_and_serve_8081_to_8083(self):
        owner = self.services["demo-hello"]
        self.assertEqual(sorted(p["target"] for p in owner["ports"]), [8081, 8082, 8083])
        served = []
        for name in ("demo-hello", "demo-summit", "demo-words"):
            command = self.services[name]["command"]
            self.assertEqual(command[0], "services.py")
            self.assertTrue(os.path.exists(os.path.join(REPO, "demo", command[0])))
            served += [int(port) for port in command[1:]]
            if name != "demo-hello":
                self.assertEqual(self.services[name]["network_mode"], "service:demo-hello")
        self.assertEqual(sorted(served), [8081, 8082, 8083])
        traffic = self.services["traffic"]
        self.assertEqual(traffic["network_mode"], "service:demo-hello")
        self.assertTrue(os.path.exists(os.path.join(REPO, "demo", traffic["command"][0])))
        self.assertIn("--setup", traffic["command"])
        self.assertIn("--duration", traffic["command"])
        self.assertEqual(traffic["restart"], "no")

    def test_exporter_counts_the_demo_ports_and_prometheus_finds_it(self):
        exporter = self.services["exporter"]
        self.assertIn("--bpf.ports=8081,8082,8083", exporter["command"])
        self.assertIn("--web.listen-address=:19100", exporter["command"])
        # The demo pins nothing, whatever --bpf.pin-path=auto would decide:
        # stopping the stack must leave no probe counting on the host.
        self.assertIn("--bpf.pin-path=", exporter["command"])
        self.assertNotIn("volumes", exporter)
        with open(os.path.join(REPO, "prometheus", "prometheus.yml")) as f:
            self.assertIn('"exporter:19100"', f.read())
        prometheus = self.services["prometheus"]
        self.assertIn("--config.file=/etc/prometheus/prometheus.yml", prometheus["command"])
        self.assertIn((os.path.join(REPO, "prometheus"), "/etc/prometheus", True),
                      [parse_volume(volume) for volume in prometheus["volumes"]])

    def test_only_the_demo_services_may_post_words(self):
        # demo-words posts to the exporter's word cloud under its service name...
        words = self.services["demo-words"]
        self.assertEqual(words["environment"]["GEOIP_WORDS_URL"],
                         "http://exporter:19100/api/v1/words")
        self.assertEqual(words["network_mode"], "service:demo-hello")
        # ... from demo-hello's fixed address, the one source the exporter
        # allows: not the subnet, whose gateway is where Docker's proxy
        # brings the host's clients from.
        exporter = self.services["exporter"]["command"]
        allowed = [flag.split("=", 1)[1] for flag in exporter
                   if flag.startswith("--web.words-from=")]
        address = self.services["demo-hello"]["networks"]["default"]["ipv4_address"]
        self.assertEqual(allowed, [address + "/32"])
        subnets = [block["subnet"]
                   for block in self.config["networks"]["default"]["ipam"]["config"]]
        self.assertEqual(len(subnets), 1)
        subnet = ipaddress.ip_network(subnets[0])
        self.assertIn(ipaddress.ip_address(address), subnet)
        self.assertNotEqual(ipaddress.ip_address(address), next(subnet.hosts()))  # the gateway

    def test_grafana_is_anonymous_viewer_with_the_map_as_home(self):
        grafana = self.services["grafana"]
        env = grafana["environment"]
        self.assertEqual(env["GF_AUTH_ANONYMOUS_ENABLED"], "true")
        self.assertEqual(env["GF_AUTH_ANONYMOUS_ORG_ROLE"], "Viewer")
        home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        host_path = None
        for volume in grafana["volumes"]:
            source, target, _ = parse_volume(volume)
            if home.startswith(target + "/"):
                host_path = source + home[len(target):]
        self.assertIsNotNone(host_path, "no mount holds " + home)
        self.assertTrue(os.path.isfile(host_path), host_path)
        with open(os.path.join(REPO, "grafana", "provisioning", "datasources", "prometheus.yml")) as f:
            self.assertIn("url: http://prometheus:9090", f.read())

    def test_grafana_serves_the_dashboards_gazetteer(self):
        """The geomaps read the gazetteer of grafana/gazetteer/ at a path under
        Grafana's public/, which the image serves from /usr/share/grafana/public."""
        with open(os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")) as f:
            paths = set(re.findall(r'"gazetteer": "([^"]+)"', json.dumps(json.load(f))))
        self.assertEqual(len(paths), 1, paths)
        (path,) = paths
        self.assertTrue(path.startswith("public/gazetteer/"), path)
        mounts = {target: (source, read_only) for source, target, read_only in
                  map(parse_volume, self.services["grafana"]["volumes"])}
        source, read_only = mounts["/usr/share/grafana/" + path]
        self.assertEqual(source, os.path.join(REPO, "grafana", "gazetteer", "countries.json"))
        self.assertTrue(read_only)
        # A file, beside Grafana's own gazetteers: nothing is mounted over
        # the directory that holds them.
        self.assertNotIn("/usr/share/grafana/public/gazetteer", mounts)
        self.assertNotIn("/usr/share/grafana/public", mounts)


# The images are Debian 12's. Where this machine runs another release, its
# installed packages say nothing about the images' (Debian 13 has
# libabsl20240722, not libabsl20220623), and neither does an exporter built here.
IMAGE_RELEASE = "bookworm"
SAME_RELEASE_AS_IMAGES = unittest.skipUnless(
    this_release() == IMAGE_RELEASE,
    "compares the images' Debian 12 packages with this machine's, which runs %s" % this_release())


class DockerfileTest(unittest.TestCase):
    """The packages live in one place: the builder installs scripts/lib/setup.sh's
    build packages, the exporter stage the project's own Debian package, whose
    Depends (dpkg-shlibdeps) bring the libraries. tests/container's
    container_images test builds and runs the images."""

    def test_stages(self):
        stages = [(base, name) for base, name, _ in dockerfile_stages()]
        self.assertEqual(stages, [("debian:" + IMAGE_RELEASE, "builder"),
                                  ("debian:%s-slim" % IMAGE_RELEASE, "demo"),
                                  ("debian:%s-slim" % IMAGE_RELEASE, "exporter")])

    def test_every_instruction_is_one(self):
        # A line that continues an instruction without a backslash is read as
        # an instruction of its own: Docker refuses it, Podman 4.3 hangs.
        instructions = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY",
                        "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD",
                        "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
        with open(os.path.join(REPO, "Dockerfile")) as f:
            text = re.sub(r"\\\n", " ", f.read())
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                self.assertIn(line.split()[0], instructions, line)

    def test_builder_installs_the_packages_of_setup_sh_and_builds_the_package(self):
        builder = dockerfile_stages()[0][2]
        self.assertNotIn("apt-get install", builder)
        self.assertIn("COPY scripts/lib/ /src/scripts/lib/", builder)
        self.assertIn("source /src/scripts/lib/setup.sh", builder)
        self.assertIn('geoip_install "${geoip_run_packages[@]}" "${geoip_package_packages[@]}"',
                      builder)
        # The exporter builds without the test frameworks, and the image says so.
        self.assertIn("-DGEOIP_BUILD_TESTS=OFF -DGEOIP_BUILD_BENCHMARKS=OFF -DGEOIP_PACKAGE=ON",
                      builder)
        self.assertIn("--target package", builder)

    def test_runtime_installs_the_package_and_names_no_library(self):
        exporter_stage = dockerfile_stages()[-1][2]
        self.assertEqual(apt_installed(exporter_stage),
                         {"/tmp/ebpf-geoip-exporter.deb", "systemd-standalone-sysusers"})
        self.assertIn("COPY --from=builder /build/ebpf-geoip-exporter.deb /tmp/", exporter_stage)
        # The entrypoint's databases are where the package installs them.
        with open(os.path.join(REPO, "cmake", "package", "package.cmake")) as f:
            package = f.read()
        self.assertIn("set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)", package)
        self.assertIn("${CMAKE_SOURCE_DIR}/data/geo-whois-asn-country.mmdb", package)
        for database in ("geo-whois-asn-country.mmdb", "ip-location-db-asn.mmdb"):
            self.assertIn("=/usr/share/ebpf-geoip/" + database, exporter_stage)

    @SAME_RELEASE_AS_IMAGES
    def test_every_package_named_is_a_debian_12_package(self):
        for _, name, text in dockerfile_stages():
            for package in apt_installed(text):
                if package.startswith("/"):
                    continue  # the project's own package
                result = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                                        capture_output=True, text=True)
                self.assertIn("Package: %s\n" % package, result.stdout, "%s: %s" % (name, package))

    def test_build_files_read_from_debian_packages_are_build_packages(self):
        with open(os.path.join(REPO, "scripts", "lib", "setup.sh")) as f:
            match = re.search(r"geoip_run_packages=\(([^)]*)\)", f.read())
        native = set(match.group(1).split())
        with open(os.path.join(REPO, "exporter", "CMakeLists.txt")) as f:
            for path in re.findall(r"(/usr/share/\S+)", f.read()):
                owner = subprocess.run(["dpkg", "-S", path], capture_output=True,
                                       text=True, check=True).stdout.split(":")[0]
                self.assertIn(owner, native, path)

    def test_dockerignore_keeps_build_trees_out(self):
        with open(os.path.join(REPO, ".dockerignore")) as f:
            lines = set(f.read().split())
        self.assertTrue({".git", "build", "build-*"} <= lines)


if __name__ == "__main__":
    unittest.main()
