#!/usr/bin/env python3
"""Every dashboard query returns data from a real Prometheus that scrapes the
real exporter after real connections from around the world.

Runs scripts/demo as a user would (exporter with its real probe, Debian's
prometheus with the shipped config and rules, demo services and traffic in a
private network namespace), on free loopback ports with a 1s scrape
interval. Then evaluates each panel query of grafana/dashboards/ebpf-geoip.json
and each template variable through Prometheus' HTTP API, with the variables
substituted the way Grafana does, and fails on any empty result: a single
host has no cluster or node label, and the fleet panels (recording rules of
the ebpf_geoip.fleet group) must answer there too. The demo also knocks at a
port where nothing listens, so the panels of failed connections have
refused ones from every world address. Finally
stops the demo with SIGINT, as Ctrl-C would, and checks that nothing is left.

Needs root. Set GEOIP_EXPORTER to the exporter binary (default:
build/exporter/ebpf_geoip_exporter).
"""

import ctypes
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(REPO, "demo"))
import traffic  # noqa: E402  demo/traffic.py
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from exporter_process import free_port  # noqa: E402  tests/support/exporter_process.py

OFF_MAP = {"private", "unknown", "overflow"}
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
# What Grafana would put in place of its built-in variables. The test runs
# for less than the range, so $__range covers every sample.
BUILTINS = {"$__range": "5m", "$__rate_interval": "1m", "$__interval": "2s"}
# Labels a fleet's scrape adds (Kubernetes relabelling, external labels); a
# single host has neither, and its variables list no value.
FLEET_LABELS = ("cluster", "node")


def wait_until(what, predicate, seconds):
    """Polls `predicate` until it returns a true value; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.5)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last_error))


class Prometheus:
    def __init__(self, address):
        self.base = "http://%s/api/v1/" % address

    def get(self, endpoint, **params):
        url = self.base + endpoint + "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise ValueError("%s %s: %s" % (endpoint, params, error.read().decode())) from None
        if body["status"] != "success":
            raise ValueError("%s: %s" % (url, body))
        return body["data"]

    def instant(self, query):
        return self.get("query", query=query, time="%.3f" % time.time())

    def range(self, query, seconds=300, step=2):
        end = time.time()
        return self.get("query_range", query=query, start="%.3f" % (end - seconds),
                        end="%.3f" % end, step=step)

    def label_values(self, selector, label):
        """Grafana's label_values(selector, label)."""
        series = self.get("series", **{"match[]": selector, "start": "%.3f" % (time.time() - 300)})
        return sorted({s[label] for s in series if label in s})


def samples_of(data):
    """{labels-as-tuple: [values]} of an instant or range query result."""
    out = {}
    for series in data["result"]:
        key = tuple(sorted(series["metric"].items()))
        values = [series["value"]] if "value" in series else series["values"]
        out[key] = [float(v) for _, v in values]
    return out


def by_label(data, label):
    return {dict(k).get(label): v[-1] for k, v in samples_of(data).items()}


def regex_all(values):
    """The value Grafana gives an includeAll variable without allValue: the
    values regex-escaped, with the backslashes doubled for a PromQL string."""
    return "(" + "|".join(re.escape(v).replace("\\", "\\\\") for v in values) + ")"


def group_members(pgid):
    """The processes of process group pgid, zombies too, as "PID STATE
    COMMAND" lines."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        # The command is in parentheses and may hold spaces or parentheses.
        command = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            members.append("%s %s %s" % (name, fields[0], command))
    return sorted(members)


class StackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("needs root: the exporter loads BPF programs")
        cls.exporter = os.path.abspath(os.environ.get(
            "GEOIP_EXPORTER", os.path.join(REPO, "build", "exporter", "ebpf_geoip_exporter")))
        assert os.path.isfile(cls.exporter), "no exporter binary at " + cls.exporter
        cls.exporter_address = "127.0.0.1:%d" % free_port()
        cls.prometheus_address = "127.0.0.1:%d" % free_port()
        cls.netns = "geoip-bundle-%d-stack" % os.getpid()
        cls.workdir = tempfile.mkdtemp(prefix="ebpf-geoip-stack-test.")
        # Orphans of the demo become this process's children, not init's,
        # and stay zombies until stop_demo reaps them: a process its parent
        # did not wait for is seen whenever init reaps.
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        cls.demo = subprocess.Popen(
            [os.path.join(REPO, "scripts", "demo"), "--exporter", cls.exporter,
             "--exporter-address", cls.exporter_address,
             "--prometheus-address", cls.prometheus_address,
             "--scrape-interval", "1s", "--netns", cls.netns,
             "--rounds", "8", "--interval", "2", "--duration", "60",
             "--workdir", cls.workdir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        cls.prometheus = Prometheus(cls.prometheus_address)

        def alive(predicate):
            def check():
                if cls.demo.poll() is not None:
                    raise AssertionError("scripts/demo exited with %d:\n%s"
                                         % (cls.demo.returncode, cls.demo.stdout.read()))
                return predicate()
            return check

        cls.expected = {label for _, label in traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)}
        try:
            wait_until(
                "Prometheus to scrape the exporter",
                alive(lambda: by_label(cls.prometheus.instant('up{job="ebpf_geoip"}'), "instance")
                      .get(cls.exporter_address) == 1), 90)
            # Every country of demo/world-addresses.txt has grown between two
            # scrapes, so increase() over the range is positive for each.
            on_map = cls.expected - OFF_MAP
            query = ('sum by (country) (increase(ebpf_geoip_accepted_connections_total'
                     '{instance="%s"}[5m])) > 0' % cls.exporter_address)
            wait_until(
                "connections from every world address",
                alive(lambda: cls.expected <= set(by_label(cls.prometheus.instant(query),
                                                           "country"))),
                90)
            # scripts/demo knocks at 8084, not watched: port="other".
            refused = ('sum by (country) (increase(ebpf_geoip_failed_connections_total'
                       '{instance="%s", port="other", reason="refused"}[5m])) > 0'
                       % cls.exporter_address)
            wait_until(
                "refused connections from every world address",
                alive(lambda: cls.expected <= set(by_label(cls.prometheus.instant(refused),
                                                           "country"))),
                60)
            # Recording rules evaluate every second; give them one round.
            wait_until(
                "recording rules",
                lambda: on_map <= set(by_label(cls.prometheus.instant(
                    "country:ebpf_geoip_accepted_connections:rate1m"), "country")), 30)
            wait_until(
                "fleet recording rules",
                lambda: on_map <= set(by_label(cls.prometheus.instant(
                    "cluster_country:ebpf_geoip_accepted_connections:rate1m"), "country")), 30)
        except BaseException:
            cls.stop_demo()
            raise

    @classmethod
    def stop_demo(cls):
        """Ctrl-C; returns (exit status, output, the processes of the demo
        still there when it had exited). Kills what is left."""
        output = ""
        left = None
        try:
            cls.demo.send_signal(signal.SIGINT)
            output, _ = cls.demo.communicate(timeout=60)
            left = group_members(cls.demo.pid)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:
                os.killpg(cls.demo.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            cls.demo.wait()
            for line in group_members(cls.demo.pid):
                try:
                    os.waitpid(int(line.split()[0]), 0)  # an orphan, now ours
                except ChildProcessError:
                    pass
            subprocess.run(["ip", "netns", "del", cls.netns], capture_output=True)
        if not hasattr(cls, "stop_result"):
            cls.stop_result = (cls.demo.returncode, output, left)
        return cls.stop_result

    @classmethod
    def tearDownClass(cls):
        cls.stop_demo()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def variables(self):
        """Template variables as Grafana resolves them with "All" selected."""
        with open(os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")) as f:
            dashboard = json.load(f)
        values = {}
        substitutions = dict(BUILTINS)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"]
            for name, value in substitutions.items():
                query = query.replace(name, value)
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            self.assertIsNotNone(match, query)
            found = self.prometheus.label_values(match.group(1), match.group(2))
            if variable["name"] in FLEET_LABELS:
                self.assertEqual(found, [], "variable %s: %s on a single host"
                                 % (variable["name"], query))
            else:
                self.assertTrue(found, "variable %s: %s returned nothing"
                                % (variable["name"], query))
            values[variable["name"]] = found
            substitutions["$" + variable["name"]] = variable.get("allValue") or regex_all(found)
        return dashboard, values, substitutions

    def test_variables_find_this_exporter_and_the_demo_ports(self):
        _, values, _ = self.variables()
        self.assertIn("ebpf_geoip", values["job"])
        self.assertIn(self.exporter_address, values["instance"])
        self.assertEqual(values["port"], ["8081", "8082", "8083"])

    def test_services_are_the_listeners_of_the_demo_ports(self):
        _, values, _ = self.variables()
        listening = set(self.prometheus.label_values(
            'ebpf_geoip_listener_info{instance="%s", port=~"8081|8082|8083"}'
            % self.exporter_address, "service"))
        self.assertTrue(listening)
        # Every connection is counted under the service listening where it
        # arrived; "unknown" is for overflowed connections alone.
        self.assertTrue(set(values["service"]) & listening, (values["service"], listening))
        self.assertLessEqual(set(values["service"]), listening | {"unknown"})
        per_service = by_label(self.panel_query("Connections by service"), "service")
        self.assertEqual(set(per_service), set(values["service"]))
        for service in set(values["service"]) & listening:
            self.assertGreater(per_service[service], 0, service)

    def test_every_panel_query_returns_data(self):
        dashboard, _, substitutions = self.variables()
        # Longest names first, so $__range is not cut short by a $__r... name.
        names = sorted(substitutions, key=len, reverse=True)
        checked = 0
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for name in names:
                    expr = expr.replace(name, substitutions[name])
                self.assertNotIn("$", expr, panel["title"])
                with self.subTest(panel=panel["title"], query=expr):
                    if target.get("instant"):
                        data = self.prometheus.instant(expr)
                    else:
                        data = self.prometheus.range(expr)
                    samples = samples_of(data)
                    self.assertTrue(samples, "%s: no data for %s" % (panel["title"], expr))
                    for key, series in samples.items():
                        self.assertTrue(all(math.isfinite(v) for v in series),
                                        "%s: %s %s" % (panel["title"], key, series))
                    checked += 1
        self.assertGreaterEqual(checked, 31)

    def panel_queries(self, title):
        """The instant results of each query of the panel titled `title`."""
        dashboard, _, substitutions = self.variables()
        (panel,) = [p for p in dashboard["panels"] if p["title"] == title]
        results = []
        for target in panel["targets"]:
            expr = target["expr"]
            for name in sorted(substitutions, key=len, reverse=True):
                expr = expr.replace(name, substitutions[name])
            results.append(self.prometheus.instant(expr))
        return results

    def panel_query(self, title):
        (result,) = self.panel_queries(title)
        return result

    def test_map_shows_every_world_country_and_nothing_off_the_map(self):
        countries = by_label(self.panel_query("Connections by country"), "country")
        self.assertTrue(self.expected - OFF_MAP <= set(countries), countries)
        self.assertFalse(OFF_MAP & set(countries))
        for country in self.expected - OFF_MAP:
            self.assertGreater(countries[country], 0, country)

    def test_private_and_unknown_are_shown_beside_the_map(self):
        off = by_label(self.panel_query("Not on the map"), "country")
        self.assertTrue({"private", "unknown"} <= set(off), off)
        self.assertTrue(set(off) <= OFF_MAP, off)

    def test_unique_addresses_count_each_world_address(self):
        per_country = {}
        for address, label in traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES):
            per_country[label] = per_country.get(label, 0) + 1
        unique = by_label(self.panel_query("Unique source addresses by country (upper bound)"),
                          "country")
        for country, count in per_country.items():
            # Other processes may connect to the demo ports too; never fewer.
            self.assertGreaterEqual(unique.get(country, 0), count, country)

    def test_bytes_panels_show_every_world_country(self):
        # Every demo request sends a request and gets an answer.
        countries = by_label(self.panel_query("Bytes by country"), "country")
        self.assertFalse(OFF_MAP & set(countries))
        for country in self.expected - OFF_MAP:
            self.assertGreater(countries.get(country, 0), 0, country)
        # Ten of them: those with the most bytes.
        top = by_label(self.panel_query("Top countries by bytes"), "country")
        self.assertEqual(len(top), min(10, len(countries)), top)
        self.assertLessEqual(set(top), set(countries))
        self.assertTrue(all(value > 0 for value in top.values()), top)
        received, sent = (by_label(result, "country") for result in self.panel_queries(
            "Bytes/s by country, received and sent"))
        self.assertTrue(received and sent)
        lifetimes = by_label(self.panel_query("Mean connection lifetime by country"), "country")
        self.assertTrue(lifetimes)
        self.assertTrue(all(0 < seconds < 60 for seconds in lifetimes.values()), lifetimes)

    def test_failed_connections_show_the_demo_knocks(self):
        failed = samples_of(self.panel_query("Failed connections by country and reason"))
        refused = {dict(key)["country"]: values[-1] for key, values in failed.items()
                   if dict(key)["reason"] == "refused"}
        # topk(20): every world country, private and unknown too.
        self.assertLessEqual(self.expected, set(refused), failed)
        for country in self.expected:
            self.assertGreater(refused[country], 0, country)
        per_port = by_label(self.panel_query("Failed connections/s by port and reason"), "port")
        self.assertIn("other", per_port)

    def test_fleet_panels_see_one_node_on_a_single_host(self):
        self.assertEqual(by_label(self.panel_query("Nodes reporting"), "node"), {None: 1})
        countries = by_label(self.panel_query("Connections by country, fleet"), "country")
        self.assertTrue(self.expected - OFF_MAP <= set(countries), countries)
        self.assertFalse(OFF_MAP & set(countries))
        self.assertEqual(set(by_label(self.panel_query("Connections by country, selected nodes"),
                                      "country")), set(countries))
        # One row without a node label: nothing to drill into.
        (row,) = samples_of(self.panel_query("Nodes by connections/s"))
        self.assertEqual(row, ())
        at_least, at_most = (by_label(result, None)[None] for result in self.panel_queries(
            "Unique source addresses, fleet: at least, at most"))
        self.assertGreater(at_least, 0)
        self.assertLessEqual(at_least, at_most)
        # Every world address connected, so the upper bound holds them all.
        addresses = {address for address, _ in traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)}
        self.assertGreaterEqual(at_most, len(addresses))

    def test_probe_mode_is_reported(self):
        modes = by_label(self.panel_query("Probe mode"), "mode")
        self.assertEqual(len(modes), 1, modes)
        self.assertIn(next(iter(modes)), {"fexit", "kretprobe", "tracepoint"})

    def test_recording_rules_produce_series(self):
        ports = by_label(self.prometheus.instant("port:ebpf_geoip_accepted_connections:rate1m"), "port")
        self.assertEqual(set(ports), {"8081", "8082", "8083"})
        instances = by_label(self.prometheus.instant("instance:ebpf_geoip_accepted_connections:rate1m"),
                            "instance")
        self.assertIn(self.exporter_address, instances)
        unique = by_label(self.prometheus.instant("country:ebpf_geoip_unique_source_addresses:sum"),
                         "country")
        self.assertTrue(self.expected <= set(unique), unique)
        services = set(self.prometheus.label_values(
            'ebpf_geoip_accepted_connections_total{instance="%s"}' % self.exporter_address,
            "service"))
        self.assertEqual(set(by_label(self.prometheus.instant(
            "service:ebpf_geoip_accepted_connections:rate1m"), "service")), services)
        country_service = samples_of(self.prometheus.instant(
            "country_service:ebpf_geoip_accepted_connections:rate1m"))
        self.assertEqual({dict(k)["service"] for k in country_service}, services)
        self.assertTrue(self.expected <= {dict(k)["country"] for k in country_service})

    def test_rules_load_and_evaluate_without_errors(self):
        # The baselines group runs once a minute: wait for every group's
        # first evaluation, then every rule must have come out ok.
        def evaluated():
            groups = self.prometheus.get("rules")["groups"]
            if all(rule["health"] != "unknown" for group in groups for rule in group["rules"]):
                return groups
            return None
        groups = wait_until("every rule group's first evaluation", evaluated, 90)
        self.assertEqual({g["name"] for g in groups},
                         {"ebpf_geoip.recording", "ebpf_geoip.fleet", "ebpf_geoip.baselines",
                          "ebpf_geoip.alerts"})
        for group in groups:
            for rule in group["rules"]:
                self.assertEqual(rule["health"], "ok", rule)

    def test_words_submitted_to_8083_reach_the_word_cloud_and_nobody_else_may_post(self):
        def words():
            with urllib.request.urlopen("http://%s/api/v1/state" % self.exporter_address,
                                        timeout=10) as response:
                return {w["word"]: w["count"] for w in json.load(response)["words"]}

        # The traffic's requests to 8083 post their words through the relay.
        wait_until("the traffic's words in the word cloud",
                   lambda: set(traffic.WORDS) <= set(words()), 60)
        result = subprocess.run(["ip", "netns", "exec", self.netns, "curl", "-s",
                                 "127.0.0.1:8083/%3Cb%3Estack%3C%2Fb%3E"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.stdout, "Submitted word: <b>stack</b>\n", result.stderr)
        wait_until("the word curl submitted", lambda: words().get("<b>stack</b>") == 1, 30)
        # This machine's loopback is not the relay's source.
        request = urllib.request.Request("http://%s/api/v1/words" % self.exporter_address,
                                         data=b"intruder", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(caught.exception.code, 403)
        caught.exception.close()
        self.assertNotIn("intruder", words())

    def test_zz_ctrl_c_stops_everything_and_deletes_the_namespace(self):
        status, output, left = self.stop_demo()
        self.assertEqual(status, 0, output)
        self.assertIn("ebpf_geoip demo is running", output)
        self.assertIn("http://%s/metrics" % self.exporter_address, output)
        self.assertFalse(os.path.exists("/run/netns/" + self.netns))
        # No process of the demo outlived it, not even unreaped.
        self.assertEqual(left, [])
        for address in (self.exporter_address, self.prometheus_address):
            host, port = address.split(":")
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((host, int(port)), timeout=2).close()


if __name__ == "__main__":
    unittest.main()
