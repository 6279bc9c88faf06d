#!/usr/bin/env python3
"""deploy/kubernetes/, checked without a cluster.

- The generated manifests (PrometheusRule, dashboard ConfigMap) are what
  deploy/kubernetes/generate.sh writes from prometheus/rules/ and grafana/.
- Every kustomization renders with Debian's kubectl (kubernetes-client,
  fetched with `apt-get download` into the build directory, not installed)
  and with any other kubectl on PATH, to the same objects.
- Every rendered object is valid against the Kubernetes OpenAPI schemas and
  the Prometheus Operator's CRD schemas, strictly (validate.cjs, Ajv, npm
  packages pinned by package-lock.json and installed with `npm ci` into the
  build directory); broken manifests must fail that validation.
- The DaemonSet's security context, field by field; update strategy, pins,
  probes, resources; the ServiceMonitor's and the plain scrape job's labels.
- The rules inside the PrometheusRule equal prometheus/rules/, pass
  `promtool check rules` and prometheus/tests/.
- The gazetteer ConfigMap (grafana/) carries grafana/gazetteer/countries.json
  under the name the Helm values mount where the dashboard reads it.

  kubernetes_manifests_test.py --build-dir BUILD [unittest arguments]

Needs the network the first time (Debian's mirror, the npm registry); as
root it installs nodejs and npm when they are missing.
"""

import argparse
import copy
import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(REPO, "tests", "kubernetes")
DEPLOY = os.path.join(REPO, "deploy", "kubernetes")
GENERATOR = os.path.join(DEPLOY, "generate.sh")
FIX = "deploy/kubernetes/generate.sh"
# Every kustomization, and what `kubectl apply -k` of it creates.
KUSTOMIZATIONS = {
    "base": {"Namespace", "ServiceAccount", "DaemonSet", "Service", "ConfigMap"},
    "operator": {"Namespace", "ServiceAccount", "DaemonSet", "Service", "ConfigMap",
                 "ServiceMonitor", "PrometheusRule"},
    # Applied in Grafana's namespace, not the exporter's.
    "grafana": {"ConfigMap"},
    # The base with a Localhost seccomp profile (CRI-O nodes).
    "seccomp-localhost": {"Namespace", "ServiceAccount", "DaemonSet", "Service", "ConfigMap"},
}
NAME = "ebpf-geoip-exporter"
NAMESPACE = "ebpf-geoip"
PIN_PATH = "/sys/fs/bpf/ebpf_geoip"
BUILD = None  # --build-dir, set in main()


def run(args, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 600)
    return subprocess.run(args, **kwargs)


def debian_kubectl():
    """Debian's kubectl from the kubernetes-client package, unpacked (not
    installed: it conflicts with other kubectl packages) into the build
    directory once."""
    cache = os.path.join(BUILD, "kubernetes", "debian-kubectl")

    def unpacked_kubectl():
        path = os.path.join(cache, "root", "usr", "bin", "kubectl")
        return path if os.path.isfile(path) else None

    kubectl = unpacked_kubectl()
    if kubectl:
        return kubectl
    os.makedirs(cache, exist_ok=True)
    for old in glob.glob(os.path.join(cache, "*.deb")):
        os.remove(old)
    # Debian 12's kubernetes-client holds kubectl; Debian 13's is an empty
    # package that depends on its new kubectl package.
    for package in ("kubernetes-client", "kubectl"):
        download = run(["apt-get", "download", package], cwd=cache)
        if download.returncode != 0 and os.geteuid() == 0:
            run(["apt-get", "update", "-qq"])
            download = run(["apt-get", "download", package], cwd=cache)
        debs = glob.glob(os.path.join(cache, package + "_*.deb"))
        if download.returncode != 0 or len(debs) != 1:
            raise RuntimeError("apt-get download " + package + " failed: " + download.stderr)
        unpacked = run(["dpkg-deb", "-x", debs[0], os.path.join(cache, "root")])
        if unpacked.returncode != 0:
            raise RuntimeError("dpkg-deb -x failed: " + unpacked.stderr)
        kubectl = unpacked_kubectl()
        if kubectl:
            return kubectl
    raise RuntimeError("neither kubernetes-client nor kubectl holds /usr/bin/kubectl")


def kubectl_version(kubectl):
    out = run([kubectl, "version", "--client"]).stdout
    match = re.search(r"GitVersion:\"(v[^\"]+)\"|Client Version: (v\d\S*)", out)
    return (match.group(1) or match.group(2)) if match else out.strip()


def validator_modules():
    """npm ci of tests/kubernetes/package-lock.json into the build directory,
    again only when the lock file changed."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        if os.geteuid() != 0:
            raise RuntimeError("nodejs and npm are missing: sudo apt-get install nodejs npm")
        run(["apt-get", "update", "-qq"])
        installed = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                         "nodejs", "npm"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if installed.returncode != 0:
            raise RuntimeError("apt-get install nodejs npm failed: " + installed.stderr)
    target = os.path.join(BUILD, "kubernetes", "validator")
    modules = os.path.join(target, "node_modules")
    lock = os.path.join(HERE, "package-lock.json")
    copied = os.path.join(target, "package-lock.json")
    if os.path.isdir(modules) and os.path.exists(copied) and filecmp.cmp(lock, copied, False):
        return modules
    os.makedirs(target, exist_ok=True)
    shutil.rmtree(modules, ignore_errors=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, name), target)
    installed = run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=target)
    if installed.returncode != 0:
        shutil.rmtree(modules, ignore_errors=True)
        raise RuntimeError("npm ci failed: " + installed.stdout + installed.stderr)
    return modules


def validate(objects):
    """Runs validate.cjs on [(source, object)]: one result per object, and
    the summary line."""
    payload = json.dumps([{"source": s, "object": o} for s, o in objects])
    result = run(["node", os.path.join(HERE, "validate.cjs"), MODULES], input=payload)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if result.returncode not in (0, 1) or not lines or "summary" not in lines[-1]:
        raise AssertionError("validate.cjs failed: " + result.stdout + result.stderr)
    return lines[:-1], lines[-1]


def render(kubectl, name):
    result = run([kubectl, "kustomize", os.path.join(DEPLOY, name)])
    if result.returncode != 0:
        raise AssertionError(f"{kubectl} kustomize {name}: {result.stderr}")
    # PyYAML reads YAML 1.1, as kubectl (sigs.k8s.io/yaml) does.
    return [o for o in yaml.safe_load_all(result.stdout) if o is not None]


def by_kind(objects, kind):
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


KUBECTLS = {}   # version -> path: Debian's, and any other on PATH
RENDERED = {}   # kustomization -> objects (Debian's kubectl)
MODULES = None  # the validator's node_modules


def setUpModule():
    global MODULES
    debian = debian_kubectl()
    KUBECTLS[kubectl_version(debian) + " (Debian kubernetes-client)"] = debian
    other = shutil.which("kubectl")
    if other and kubectl_version(other) != kubectl_version(debian):
        KUBECTLS[kubectl_version(other) + f" ({other})"] = other
    for name in KUSTOMIZATIONS:
        RENDERED[name] = render(debian, name)
    MODULES = validator_modules()


class GeneratedFilesTest(unittest.TestCase):
    def test_generated_manifests_are_up_to_date(self):
        with tempfile.TemporaryDirectory() as out:
            result = run([GENERATOR, out])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            written = sorted(os.path.relpath(p, out)
                             for p in glob.glob(os.path.join(out, "**", "*.yaml"), recursive=True))
            self.assertEqual(written, ["base/grafana-dashboard.yaml", "grafana/gazetteer.yaml",
                                       "operator/prometheusrule.yaml"])
            for relative in written:
                with open(os.path.join(out, relative)) as f:
                    fresh = f.read()
                with open(os.path.join(DEPLOY, relative)) as f:
                    committed = f.read()
                self.assertTrue(
                    fresh == committed,
                    f"deploy/kubernetes/{relative} differs from its sources: run {FIX} and "
                    "commit the result")


class RenderTest(unittest.TestCase):
    def test_every_kubectl_renders_every_kustomization_to_the_same_objects(self):
        print("\nkubectl:", ", ".join(KUBECTLS), file=sys.stderr)
        for name, kinds in KUSTOMIZATIONS.items():
            with self.subTest(kustomization=name):
                self.assertEqual({o["kind"] for o in RENDERED[name]}, kinds)
                self.assertEqual(len(RENDERED[name]), len(kinds))
                for version, kubectl in KUBECTLS.items():
                    key = lambda o: (o["kind"], o["metadata"]["name"])
                    self.assertEqual(sorted(render(kubectl, name), key=key),
                                     sorted(RENDERED[name], key=key), version)

    def test_objects_are_in_the_namespace_and_labelled(self):
        for o in RENDERED["operator"]:
            with self.subTest(kind=o["kind"]):
                if o["kind"] != "Namespace":
                    self.assertEqual(o["metadata"].get("namespace"), NAMESPACE)
                self.assertEqual(o["metadata"]["labels"]["app.kubernetes.io/name"], NAME)

    def test_image_is_tagged_with_the_project_version(self):
        with open(os.path.join(REPO, "CMakeLists.txt")) as f:
            version = re.search(r"project\(\w+ VERSION (\S+)", f.read()).group(1)
        daemonset = by_kind(RENDERED["base"], "DaemonSet")
        (container,) = daemonset["spec"]["template"]["spec"]["containers"]
        self.assertEqual(container["image"], f"ebpf-geoip-exporter:{version}")


class SchemaTest(unittest.TestCase):
    def test_every_rendered_object_is_valid(self):
        objects = [(name, o) for name, objs in RENDERED.items() for o in objs]
        results, summary = validate(objects)
        print(f"\n{summary['summary']} against {'; '.join(summary['schemas'])}", file=sys.stderr)
        self.assertGreater(summary["count"], 500)  # the API's schemas, not a handful
        self.assertEqual(len(results), len(objects))
        for result in results:
            with self.subTest(source=result["source"], kind=result["kind"]):
                self.assertIsNotNone(result["schema"])
                self.assertEqual(result["errors"], [])

    def test_broken_manifests_fail(self):
        operator = RENDERED["operator"]
        daemonset = by_kind(operator, "DaemonSet")
        cases = []  # (what, object, the error it must report)

        def broken(what, source, change, expected):
            o = copy.deepcopy(source)
            change(o)
            cases.append((what, o, expected))

        def container(o):
            return o["spec"]["template"]["spec"]["containers"][0]

        def misspell(o):
            context = container(o)["securityContext"]
            context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")

        broken("misspelled field", daemonset, misspell,
               '/spec/template/spec/containers/0/securityContext: unknown field '
               '"readOnlyRootFileSystem"')
        broken("wrong type", daemonset,
               lambda o: container(o)["ports"][0].update(containerPort="19100"),
               "/spec/template/spec/containers/0/ports/0/containerPort: must be integer")
        broken("missing required field", daemonset, lambda o: o["spec"].pop("selector"),
               "/spec: must have required property 'selector'")
        broken("value outside an enum", daemonset,
               lambda o: o["spec"]["updateStrategy"].update(type="Surge"),
               "/spec/updateStrategy/type: must be equal to one of the allowed values")
        broken("bad quantity", daemonset,
               lambda o: container(o)["resources"]["limits"].update(memory="256 MB"),
               '/spec/template/spec/containers/0/resources/limits/memory: must match format '
               '"quantity"')
        broken("unknown field in a CRD", by_kind(operator, "ServiceMonitor"),
               lambda o: o["spec"]["endpoints"][0].update(intervall="15s"),
               '/spec/endpoints/0: unknown field "intervall"')
        broken("wrong type in a CRD", by_kind(operator, "PrometheusRule"),
               lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": 60}),
               "/spec/groups/0/rules/0/for: must be string")
        broken("unknown kind", daemonset, lambda o: o.update(kind="DeamonSet"),
               "no schema for apiVersion apps/v1, kind DeamonSet")
        results, summary = validate([(what, o) for what, o, _ in cases])
        self.assertEqual(summary["summary"], f"0 of {len(cases)} objects valid")
        for (what, _, expected), result in zip(cases, results):
            with self.subTest(what):
                self.assertIn(expected, result["errors"])


class DaemonSetTest(unittest.TestCase):
    def setUp(self):
        self.daemonset = by_kind(RENDERED["base"], "DaemonSet")
        self.pod = self.daemonset["spec"]["template"]["spec"]
        (self.container,) = self.pod["containers"]

    def test_security_context_field_by_field(self):
        context = self.container["securityContext"]
        self.assertEqual(set(context), {"privileged", "allowPrivilegeEscalation",
                                        "readOnlyRootFilesystem", "capabilities",
                                        "seccompProfile"})
        self.assertIs(context["privileged"], False)
        self.assertIs(context["allowPrivilegeEscalation"], False)
        self.assertIs(context["readOnlyRootFilesystem"], True)
        self.assertEqual(context["capabilities"], {"drop": ["ALL"], "add": ["BPF", "PERFMON"]})
        self.assertEqual(context["seccompProfile"], {"type": "RuntimeDefault"})
        # Nothing at the pod level that would widen it.
        self.assertNotIn("securityContext", self.pod)
        self.assertNotIn("initContainers", self.pod)
        self.assertNotIn("hostNetwork", self.pod)
        self.assertNotIn("hostIPC", self.pod)

    def test_seccomp_overlay_changes_only_the_profile(self):
        # deploy/seccomp/derive-profile's file in the kubelet's seccomp
        # directory; everything else as the base has it.
        overlay = copy.deepcopy(by_kind(RENDERED["seccomp-localhost"], "DaemonSet"))
        context = overlay["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        self.assertEqual(context["seccompProfile"],
                         {"type": "Localhost", "localhostProfile": "ebpf-geoip.json"})
        context["seccompProfile"] = self.container["securityContext"]["seccompProfile"]
        self.assertEqual(overlay, self.daemonset)
        others = [o for o in RENDERED["seccomp-localhost"] if o["kind"] != "DaemonSet"]
        self.assertEqual(others, [o for o in RENDERED["base"] if o["kind"] != "DaemonSet"])

    def test_host_pid_and_only_the_pin_directory_from_the_host(self):
        self.assertIs(self.pod["hostPID"], True)
        self.assertEqual(self.pod["volumes"], [{
            "name": "bpf-pins",
            "hostPath": {"path": PIN_PATH, "type": "DirectoryOrCreate"}}])
        self.assertEqual(self.container["volumeMounts"],
                         [{"name": "bpf-pins", "mountPath": "/sys/fs/bpf"}])
        self.assertIn(f"--bpf.pin-path={PIN_PATH}", self.container["args"])

    def test_never_two_pods_on_one_node(self):
        self.assertEqual(self.daemonset["spec"]["updateStrategy"], {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})

    def test_every_node_probes_and_resources(self):
        self.assertIn({"operator": "Exists"}, self.pod["tolerations"])
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(self.container[probe]["httpGet"],
                             {"path": "/-/healthy", "port": "metrics"})
        self.assertEqual(self.container["ports"],
                         [{"name": "metrics", "containerPort": 19100, "protocol": "TCP"}])
        self.assertIn("--web.listen-address=:19100", self.container["args"])
        resources = self.container["resources"]
        self.assertEqual(set(resources), {"requests", "limits"})
        for kind in ("requests", "limits"):
            self.assertEqual(set(resources[kind]), {"cpu", "memory"})
        self.assertFalse(self.pod.get("automountServiceAccountToken", True))


class ScrapeTest(unittest.TestCase):
    RELABELLED = {"node": "__meta_kubernetes_pod_node_name",
                  "instance": "__meta_kubernetes_pod_node_name"}

    def test_headless_service_selects_the_pods(self):
        service = by_kind(RENDERED["base"], "Service")
        daemonset = by_kind(RENDERED["base"], "DaemonSet")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        self.assertEqual(service["spec"]["selector"],
                         daemonset["spec"]["template"]["metadata"]["labels"])
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], "metrics")

    def test_service_monitor_labels(self):
        monitor = by_kind(RENDERED["operator"], "ServiceMonitor")
        self.assertEqual(monitor["spec"]["selector"]["matchLabels"],
                         by_kind(RENDERED["base"], "Service")["metadata"]["labels"])
        (endpoint,) = monitor["spec"]["endpoints"]
        self.assertEqual(endpoint["port"], "metrics")
        labels = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        self.assertEqual(labels["job"]["replacement"], "ebpf_geoip")
        for label, source in self.RELABELLED.items():
            self.assertEqual(labels[label]["sourceLabels"], [source])

    def test_plain_scrape_job(self):
        path = os.path.join(DEPLOY, "prometheus", "scrape-config.yml")
        with open(path) as f:
            config = yaml.safe_load(f)
        (job,) = config["scrape_configs"]
        self.assertEqual(job["job_name"], "ebpf_geoip")
        self.assertEqual(job["kubernetes_sd_configs"][0]["role"], "pod")
        self.assertEqual(job["kubernetes_sd_configs"][0]["namespaces"]["names"], [NAMESPACE])
        labels = {r["target_label"]: r for r in job["relabel_configs"] if "target_label" in r}
        for label, source in self.RELABELLED.items():
            self.assertEqual(labels[label]["source_labels"], [source])
        # Debian's Prometheus is built without Kubernetes discovery, so
        # promtool checks the job with the discovery swapped for a static
        # target carrying the same meta labels; the rest (relabelling,
        # intervals) is checked as written.
        job = dict(job)
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["10.0.0.1:19100"], "labels": {
            "__meta_kubernetes_pod_node_name": "node-a",
            "__meta_kubernetes_pod_container_port_name": "metrics"}}]
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"scrape_configs": [job]}, f)
            f.flush()
            result = run(["promtool", "check", "config", f.name])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class PrometheusRuleTest(unittest.TestCase):
    def setUp(self):
        self.rule = by_kind(RENDERED["operator"], "PrometheusRule")
        self.groups = self.rule["spec"]["groups"]

    def test_groups_equal_prometheus_rules(self):
        expected = []
        for path in sorted(glob.glob(os.path.join(REPO, "prometheus", "rules", "*.yml"))):
            with open(path) as f:
                expected.extend(yaml.safe_load(f)["groups"])
        self.assertTrue(self.groups == expected,
                        f"the PrometheusRule's groups differ from prometheus/rules/: run {FIX}")

    def test_promtool_checks_and_unit_tests_pass_on_the_extracted_rules(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "rules"))
            os.makedirs(os.path.join(tmp, "tests"))
            extracted = os.path.join(tmp, "rules", "prometheusrule.yml")
            with open(extracted, "w") as f:
                yaml.safe_dump({"groups": self.groups}, f, sort_keys=False)
            result = run(["promtool", "check", "rules", extracted])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            # prometheus/tests/ with the rules taken from the PrometheusRule.
            tests = sorted(glob.glob(os.path.join(REPO, "prometheus", "tests", "*.yml")))
            self.assertTrue(tests)
            for path in tests:
                with open(path) as f:
                    test = yaml.safe_load(f)
                if test.get("rule_files"):
                    test["rule_files"] = ["../rules/prometheusrule.yml"]
                with open(os.path.join(tmp, "tests", os.path.basename(path)), "w") as f:
                    yaml.safe_dump(test, f, sort_keys=False)
            result = run(["promtool", "test", "rules",
                          *sorted(glob.glob(os.path.join(tmp, "tests", "*.yml")))], cwd=tmp)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class DashboardTest(unittest.TestCase):
    def test_config_map_carries_the_dashboard_for_the_sidecar(self):
        config_map = by_kind(RENDERED["base"], "ConfigMap")
        self.assertEqual(config_map["metadata"]["labels"]["grafana_dashboard"], "1")
        with open(os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")) as f:
            self.assertTrue(config_map["data"]["ebpf-geoip.json"] == f.read(),
                            f"the dashboard ConfigMap differs from grafana/: run {FIX}")


class GazetteerTest(unittest.TestCase):
    """The countries gazetteer of the dashboard's geomaps, for Grafana's pod."""

    def setUp(self):
        self.config_map = by_kind(RENDERED["grafana"], "ConfigMap")
        with open(os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")) as f:
            dashboard = json.load(f)
        paths = set(re.findall(r'"gazetteer": "([^"]+)"', json.dumps(dashboard)))
        self.assertEqual(len(paths), 1, paths)
        (self.path,) = paths  # e.g. public/gazetteer/ebpf-geoip-countries.json

    def test_config_map_carries_the_gazetteer(self):
        with open(os.path.join(REPO, "grafana", "gazetteer", "countries.json"),
                  encoding="utf-8") as f:
            gazetteer = f.read()
        (key,) = self.config_map["data"]
        self.assertEqual(key, os.path.basename(self.path))
        self.assertTrue(self.config_map["data"][key] == gazetteer,
                        f"the gazetteer ConfigMap differs from grafana/gazetteer/: run {FIX}")
        # Not for the dashboard sidecar, which would load it as a dashboard.
        self.assertNotIn("grafana_dashboard", self.config_map["metadata"]["labels"])
        # Grafana's namespace (a pod mounts ConfigMaps of its own only), not
        # the exporter's.
        self.assertNotEqual(self.config_map["metadata"]["namespace"], NAMESPACE)

    def test_helm_values_mount_it_where_the_dashboard_reads_it(self):
        with open(os.path.join(DEPLOY, "grafana", "helm-values.yaml")) as f:
            (mount,) = yaml.safe_load(f)["extraConfigmapMounts"]
        self.assertEqual(mount["configMap"], self.config_map["metadata"]["name"])
        self.assertIn(mount["subPath"], self.config_map["data"])
        # Grafana serves its public/ directory from /usr/share/grafana/public
        # in its images and packages; one file, so Grafana's own stay.
        self.assertTrue(self.path.startswith("public/"), self.path)
        self.assertEqual(mount["mountPath"], "/usr/share/grafana/" + self.path)
        self.assertTrue(mount["readOnly"])


def main():
    global BUILD
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    args, rest = parser.parse_known_args()
    BUILD = os.path.abspath(args.build_dir)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
