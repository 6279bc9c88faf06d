#!/usr/bin/env python3
"""The shipped Prometheus config and rules: promtool check config, check
rules and the rule unit tests, plus a guard that every alert has unit tests
that see it both firing and quiet, and that the Kubernetes query README.md
shows is the one a unit test checks."""

import glob
import os
import re
import subprocess
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMETHEUS = os.path.join(REPO, "prometheus")
RULES = sorted(glob.glob(os.path.join(PROMETHEUS, "rules", "*.yml")))
TESTS = sorted(glob.glob(os.path.join(PROMETHEUS, "tests", "*.yml")))


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


class PrometheusRulesTest(unittest.TestCase):
    def assert_promtool_passes(self, *args):
        result = promtool(*args)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout + result.stderr

    def test_config_is_valid_and_loads_every_rule_file(self):
        output = self.assert_promtool_passes("check", "config", os.path.join(PROMETHEUS, "prometheus.yml"))
        self.assertIn("%d rule files found" % len(RULES), output)

    def test_config_scrapes_the_exporter_every_5s(self):
        with open(os.path.join(PROMETHEUS, "prometheus.yml")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^  scrape_interval: 5s$")
        self.assertRegex(text, r"(?m)^  - job_name: ebpf_geoip$")
        self.assertIn('"exporter:19100"', text)

    def test_rules_are_valid(self):
        self.assertGreaterEqual(len(RULES), 2)
        self.assert_promtool_passes("check", "rules", *RULES)

    def test_rule_unit_tests_pass(self):
        self.assertGreaterEqual(len(TESTS), 2)
        self.assert_promtool_passes("test", "rules", *TESTS)

    def test_a_broken_rule_fails_the_unit_tests(self):
        # The unit tests must be able to fail: move the staleness threshold.
        alerts = os.path.join(PROMETHEUS, "rules", "ebpf_geoip_alerts.yml")
        with open(alerts) as f:
            text = f.read()
        self.assertIn("> 365 * 86400", text)
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ebpf-geoip-rules-%d" % os.getpid())
        os.makedirs(os.path.join(tmp, "rules"), exist_ok=True)
        os.makedirs(os.path.join(tmp, "tests"), exist_ok=True)
        try:
            with open(os.path.join(tmp, "rules", "ebpf_geoip_alerts.yml"), "w") as f:
                f.write(text.replace("> 365 * 86400", "> 367 * 86400"))
            test_copy = os.path.join(tmp, "tests", "alerts_test.yml")
            with open(os.path.join(PROMETHEUS, "tests", "alerts_test.yml")) as f, \
                 open(test_copy, "w") as out:
                out.write(f.read())
            result = promtool("test", "rules", test_copy)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("EbpfGeoipDatabaseStale", result.stdout + result.stderr)
        finally:
            subprocess.run(["rm", "-rf", tmp], check=True)

    def test_a_fresh_install_does_not_fire_the_stale_database_alert(self):
        # The bundled database's age now, from its own metadata, against the
        # rule's threshold: shipping a file older than that would page every
        # new user.
        with open(os.path.join(PROMETHEUS, "rules", "ebpf_geoip_alerts.yml")) as f:
            (days,) = re.findall(r"ebpf_geoip_database_build_timestamp_seconds > (\d+) \* 86400",
                                 f.read())
        database = os.path.join(REPO, "data", "geo-whois-asn-country.mmdb")
        result = subprocess.run(["mmdblookup", "--file", database, "--ip", "8.8.8.8", "-v"],
                                capture_output=True, text=True, check=True)
        (epoch,) = re.findall(r"Build epoch:\s+(\d+)", result.stdout)
        age_days = (time.time() - int(epoch)) / 86400
        self.assertGreater(age_days, 0)
        self.assertLess(age_days, int(days),
                        "the bundled database is %d days old, past EbpfGeoipDatabaseStale's %s: "
                        "refresh data/ (scripts/update-geoip-db) or document a new threshold"
                        % (age_days, days))

    def test_every_alert_is_tested_firing_and_quiet(self):
        alerts = set()
        for path in RULES:
            with open(path) as f:
                alerts |= set(re.findall(r"(?m)^\s+- alert: (\w+)$", f.read()))
        self.assertEqual(alerts, {"EbpfGeoipExporterDown", "EbpfGeoipEventsLost",
                                  "EbpfGeoipProbeErrors", "EbpfGeoipAcceptHookMisses",
                                  "EbpfGeoipDatabaseStale", "EbpfGeoipNoConnections",
                                  "EbpfGeoipRefusedSpike", "EbpfGeoipIncompleteSpike",
                                  "EbpfGeoipTrafficUntracked", "EbpfGeoipTlsCertificateExpiring",
                                  "EbpfGeoipTlsCertificateReloadFailing"})
        firing, quiet = set(), set()
        for path in TESTS:
            with open(path) as f:
                text = f.read()
            for name, rest in re.findall(r"alertname: (\w+)\n\s+exp_alerts:(.*)", text):
                (quiet if rest.strip() == "[]" else firing).add(name)
        self.assertEqual(firing, alerts)
        self.assertEqual(quiet, alerts)

    def test_the_readme_kubernetes_query_is_the_tested_one(self):
        with open(os.path.join(PROMETHEUS, "tests", "kubernetes_join_test.yml")) as f:
            (tested,) = re.findall(r"- expr: \|\n(.*?)\n\s+eval_time:", f.read(), re.S)
        self.assertIn("kube_pod_info", tested)
        with open(os.path.join(REPO, "README.md")) as f:
            shown = re.findall(r"```promql\n(.*?)```", f.read(), re.S)
        # Word for word; the indentation may differ.
        self.assertIn(" ".join(tested.split()), [" ".join(block.split()) for block in shown])

    def test_every_alert_has_severity_and_summary(self):
        for path in RULES:
            with open(path) as f:
                text = f.read()
            for block in re.split(r"(?m)^\s+- (?=alert: )", text)[1:]:
                name = block.split()[1]
                self.assertRegex(block, r"severity: (critical|warning|info)\n", name)
                self.assertIn("summary:", block, name)
                self.assertIn("description:", block, name)


if __name__ == "__main__":
    unittest.main()
