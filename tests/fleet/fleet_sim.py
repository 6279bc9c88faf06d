#!/usr/bin/env python3
"""A fleet of N real exporters in simulated mode, scraped by a real
Prometheus (Debian's) through file-based service discovery with the
project's rules; checks that the fleet world map is the exact sum of what
every node was sent, and measures what the fleet costs Prometheus.

Run through scripts/fleet-sim, which finds the exporter binary:

    scripts/fleet-sim N                    check a fleet of N, print measurements
    scripts/fleet-sim --bench N [N...]     measure each size, write a markdown table

Each node is one ebpf_geoip_exporter --connections.source=simulated on a
loopback port of its own, labelled node="node-NNN" and cluster="sim-K" by
the file_sd targets file. Its traffic is seeded by its number: a different
mix of countries (public addresses the bundled database maps, read from the
database by world.py, plus private and unknown ones), ports and clients,
bounded by --connections, POSTed to /api/v1/connections before Prometheus
starts. Clients are drawn from a few addresses per country that all nodes
share, so one client is seen on many nodes, as behind a load balancer.
POSTed connections carry no service: every series has service="unknown".

Exit status: 0 when every fleet sum is exact, 1 when one is not (each wrong
series is printed), 2 on a usage error or when something could not start.
Everything it started is stopped on exit, on SIGINT/SIGTERM and after
--timeout seconds.
"""
import argparse
import concurrent.futures
import http.client
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from exporter_process import ExporterProcess, free_port  # noqa: E402
import world  # noqa: E402  tests/fleet/world.py

JOB = "ebpf_geoip"
RULES = os.path.join(REPO, "prometheus", "rules", "*.yml")
# Local ports the simulated services listen on; each node uses a few.
PORTS = [22, 25, 53, 80, 443, 3306, 5432, 6379, 6443, 8080, 8443, 9000]
# Distinct client addresses per country, shared by every node.
CLIENTS_PER_COUNTRY = 6
# Non-routable clients (the exporter's "private") and public ones the bundled
# database has no country for ("unknown"; checked against the exporter's answer).
SPECIAL_CLIENTS = {
    "private": ["10.%d.%d.%d" % (i, i * 7 % 256, i * 13 % 254 + 1) for i in range(1, 7)],
    "unknown": ["2c0f:f8f0::%x" % (i + 1) for i in range(CLIENTS_PER_COUNTRY)],
}
WORLD_MAP = "cluster_country:ebpf_geoip_accepted_connections:rate1m"
WORLD_MAP_RAW = "sum by (cluster, country) (rate(ebpf_geoip_accepted_connections_total[1m]))"


class Failure(Exception):
    """A wrong fleet sum: exit status 1."""


class SetupError(Exception):
    """Something would not start: exit status 2."""


def log(*words):
    print("fleet-sim:", *words, flush=True)


class Node:
    """One simulated exporter and the traffic it was sent."""

    def __init__(self, index, clusters, seed, connections, pools):
        self.index = index
        self.name = "node-%03d" % index
        self.cluster = "sim-%d" % (index % clusters)
        self.process = None
        # country -> connections and (country, port) -> connections / addresses
        self.counts = {}
        self.addresses = {}
        rng = random.Random("%d/%d" % (seed, index))
        ports = rng.sample(PORTS, rng.randint(1, 4))
        port_weights = [1 / (rank + 1) for rank in range(len(ports))]
        countries = rng.sample(sorted(pools), rng.randint(5, min(40, len(pools))))
        weights = [1 / (rank + 1) for rank in range(len(countries))]
        self.plan = []  # (address, port, expected country), in sending order
        for _ in range(rng.randint(max(1, connections // 2), connections)):
            country = rng.choices(countries, weights)[0]
            port = rng.choices(ports, port_weights)[0]
            address = rng.choice(pools[country])
            self.plan.append((address, port, country))
            self.counts[(country, port)] = self.counts.get((country, port), 0) + 1
            self.addresses.setdefault((country, port), set()).add(address)

    @property
    def target(self):
        return "127.0.0.1:%d" % self.process.port


def client_pools(database):
    """{country label: [client addresses]}: a few addresses of the largest
    network the database maps to each country, and the special labels."""
    pools = {}
    for code, network in world.country_networks(database).items():
        hosts = min(CLIENTS_PER_COUNTRY, network.num_addresses - 2)
        pools[code] = [str(network[1 + i]) for i in range(hosts)]
    pools.update(SPECIAL_CLIENTS)
    return pools


def post(port, address, local_port, connection):
    """POSTs one connection; returns the country the exporter answered."""
    body = json.dumps({"address": address, "port": local_port})
    connection.request("POST", "/api/v1/connections", body,
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise SetupError("POST %s to 127.0.0.1:%d: %d %s"
                         % (body, port, response.status, answer.decode(errors="replace")))
    return json.loads(answer)["id"]


def send_traffic(node):
    """Sends the node its whole plan over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", node.process.port, timeout=30)
    try:
        for address, port, country in node.plan:
            got = post(node.process.port, address, port, connection)
            if got != country:
                raise SetupError("%s: the exporter says %s is in %r, the sampled database %r"
                                 % (node.name, address, got, country))
    finally:
        connection.close()


class Prometheus:
    """Debian's prometheus on a loopback port, with a data directory of its own."""

    def __init__(self, binary, workdir, scrape_interval, targets_file):
        self.address = "127.0.0.1:%d" % free_port()
        self.base = "http://%s" % self.address
        seconds = parse_duration(scrape_interval)
        config = {
            "global": {"scrape_interval": scrape_interval,
                       "evaluation_interval": scrape_interval,
                       "scrape_timeout": "%ds" % max(1, min(10, int(seconds)))},
            "rule_files": [RULES],
            "scrape_configs": [{
                "job_name": JOB,
                "file_sd_configs": [{"files": [targets_file], "refresh_interval": "5s"}],
            }],
        }
        self.config_path = os.path.join(workdir, "prometheus.yml")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML
        self.log_path = os.path.join(workdir, "prometheus.log")
        with open(self.log_path, "w") as out:
            self.process = subprocess.Popen(
                [binary, "--config.file=" + self.config_path,
                 "--storage.tsdb.path=" + os.path.join(workdir, "prometheus-data"),
                 "--web.listen-address=" + self.address, "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError("prometheus exited with %d:\n%s"
                                 % (self.process.returncode, tail(self.log_path)))
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SetupError("prometheus not ready after %d s:\n%s" % (seconds, tail(self.log_path)))

    def api(self, endpoint, **params):
        url = "%s/api/v1/%s?%s" % (self.base, endpoint, urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise SetupError("%s: %s" % (url, error.read().decode(errors="replace"))) from None
        if body.get("status") != "success":
            raise SetupError("%s: %s" % (url, body))
        return body["data"]

    def query(self, expr):
        """{labels as a sorted tuple: value} of an instant query."""
        data = self.api("query", query=expr)
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in data["result"]}

    def scalar(self, expr, default=None):
        values = list(self.query(expr).values())
        return values[0] if values else default

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def parse_duration(text):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit) and text[:-len(unit)].isdigit():
            return int(text[:-len(unit)]) * units[unit]
    raise SetupError("bad duration %r: use e.g. 1s, 500ms, 1m" % text)


def tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def proc_status(pid, field):
    """A /proc/PID/status field in bytes (VmRSS, VmHWM), or 0."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User plus system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def label_key(key, *labels):
    metric = dict(key)
    return tuple(metric.get(label, "") for label in labels)


class Fleet:
    """N exporters, their traffic and the Prometheus that scrapes them."""

    def __init__(self, args, n, workdir):
        self.args = args
        self.n = n
        self.workdir = workdir
        self.nodes = []
        self.prometheus = None
        self.trickle_stop = threading.Event()
        self.trickle_thread = None

    # --- start-up ---------------------------------------------------------

    def start_exporters(self, pools):
        clusters = max(1, min(self.args.clusters, self.n))
        self.nodes = [Node(i, clusters, self.args.seed, self.args.connections, pools)
                      for i in range(self.n)]
        logs = os.path.join(self.workdir, "exporters")
        os.makedirs(logs, exist_ok=True)
        for node in self.nodes:
            node.process = ExporterProcess(
                [self.args.exporter, "--connections.source=simulated",
                 "--web.listen-address=127.0.0.1:0", "--geoip.database=" + self.args.database,
                 # The fewest server threads allowed: one scraper and one
                 # sender need two. The default 64 would cap the fleet at
                 # ~480 nodes under the kernel's default pid_max of 32768.
                 "--web.max-connections=%d" % self.args.web_threads],
                log_path=os.path.join(logs, node.name + ".log"))
        for node in self.nodes:
            try:
                node.process.wait_for_startup(60)
            except AssertionError as error:
                raise SetupError(str(error)) from None

    def send(self):
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for result in pool.map(send_traffic, self.nodes):
                pass
        if self.args.perturb:
            # One connection the expected sums leave out: the checks must fail.
            node = self.nodes[0]
            address, port, country = node.plan[0]
            connection = http.client.HTTPConnection("127.0.0.1", node.process.port, timeout=30)
            post(node.process.port, address, port, connection)
            connection.close()
            log("--perturb: sent %s one more connection from %s (%s) than the expected sums hold"
                % (node.name, address, country))

    def write_targets(self):
        path = os.path.join(self.workdir, "targets.json")
        groups = [{"targets": [node.target], "labels": {"cluster": node.cluster, "node": node.name}}
                  for node in self.nodes]
        with open(path + ".tmp", "w") as f:
            json.dump(groups, f, indent=1)
        os.rename(path + ".tmp", path)  # file_sd must never read half a file
        return path

    def start_prometheus(self, targets):
        self.prometheus = Prometheus(self.args.prometheus, self.workdir,
                                     self.args.scrape_interval, targets)
        self.prometheus.wait_ready(60)

    def wait_for_rules(self, seconds):
        """Until every node was scraped twice (rate() needs two samples) and
        the fleet rules were evaluated after that."""
        p = self.prometheus
        deadline = time.monotonic() + seconds
        up = 'up{job="%s"}' % JOB
        while True:
            scraped = p.scalar("count(%s == 1)" % up, 0)
            twice = p.scalar("count(count_over_time(%s[1m]) >= 2)" % up, 0)
            if scraped == self.n and twice == self.n:
                break
            if time.monotonic() > deadline:
                raise SetupError("after %d s, %d of %d nodes up, %d scraped twice; see %s"
                                 % (seconds, scraped, self.n, twice, p.log_path))
            time.sleep(0.5)
        since = time.time()
        while True:
            evaluated = p.scalar("min(timestamp(cluster_country:ebpf_geoip_accepted_connections:total))")
            if evaluated is not None and evaluated > since:
                return
            if time.monotonic() > deadline:
                raise SetupError("the fleet rules were not evaluated within %d s" % seconds)
            time.sleep(0.2)

    # --- checks -----------------------------------------------------------

    def expected(self):
        """What the fleet was sent, summed as the fleet rules sum it."""
        totals, upper, lower, distinct = {}, {}, {}, {}
        node_countries, port_services, series_per_node = set(), set(), {}
        for node in self.nodes:
            series_per_node[node.name] = len(node.counts)
            for (country, port), count in node.counts.items():
                key = (node.cluster, country)
                totals[key] = totals.get(key, 0) + count
                unique = len(node.addresses[(country, port)])
                upper[key] = upper.get(key, 0) + unique
                lower[key] = max(lower.get(key, 0), unique)
                distinct.setdefault(key, set()).update(node.addresses[(country, port)])
                node_countries.add((node.cluster, node.name, country))
                port_services.add((node.cluster, str(port), "unknown"))
        return {"totals": totals, "upper": upper, "lower": lower,
                "distinct": {k: len(v) for k, v in distinct.items()},
                "node_countries": node_countries, "port_services": port_services,
                "series_per_node": series_per_node}

    def check(self):
        """Compares every fleet rule with what was sent; returns the number
        of checks that failed (each printed)."""
        p = self.prometheus
        want = self.expected()
        failures = []

        def compare(what, got, expected):
            wrong = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
            for key in wrong[:10]:
                failures.append("WRONG %s%s: Prometheus has %s, the nodes were sent %s"
                                % (what, key, got.get(key), expected.get(key)))
            if len(wrong) > 10:
                failures.append("... and %d more wrong %s series" % (len(wrong) - 10, what))
            return not wrong

        series = {label_key(k, "node")[0]: int(v) for k, v in p.query(
            'count by (node) (ebpf_geoip_accepted_connections_total{job="%s"})' % JOB).items()}
        compare("count by (node) (ebpf_geoip_accepted_connections_total)", series,
                want["series_per_node"])

        for rule, expected in (
                ("cluster_country:ebpf_geoip_accepted_connections:total", want["totals"]),
                ("cluster_country:ebpf_geoip_unique_source_addresses:sum", want["upper"]),
                ("cluster_country:ebpf_geoip_unique_source_addresses:max", want["lower"])):
            got = {label_key(k, "cluster", "country"): v for k, v in p.query(rule).items()}
            compare(rule, got, {k: float(v) for k, v in expected.items()})

        # The bounds hold the true number of distinct clients between them.
        for key, count in want["distinct"].items():
            if not want["lower"][key] <= count <= want["upper"][key]:
                failures.append("WRONG bounds %s: %d distinct clients outside [%d, %d]"
                                % (key, count, want["lower"][key], want["upper"][key]))

        # Rates: the right series, finite and not negative; the cluster map
        # is the sum of the node maps. Their values depend on timing.
        node_map = {label_key(k, "cluster", "node", "country"): v for k, v in p.query(
            "node_country:ebpf_geoip_accepted_connections:rate1m").items()}
        compare("node_country:ebpf_geoip_accepted_connections:rate1m (series)",
                {k: True for k in node_map}, {k: True for k in want["node_countries"]})
        fleet_map = {label_key(k, "cluster", "country"): v for k, v in p.query(WORLD_MAP).items()}
        summed = {}
        for (cluster, _, country), value in node_map.items():
            summed[(cluster, country)] = summed.get((cluster, country), 0) + value
        compare(WORLD_MAP + " (series)", {k: True for k in fleet_map},
                {k: True for k in want["totals"]})
        for key, value in fleet_map.items():
            if not (math.isfinite(value) and value >= 0
                    and math.isclose(value, summed.get(key, -1), rel_tol=1e-9, abs_tol=1e-12)):
                failures.append("WRONG %s%s = %s: not the sum of its nodes' %s"
                                % (WORLD_MAP, key, value, summed.get(key)))
        by_port = {label_key(k, "cluster", "port", "service"): True for k in p.query(
            "cluster_port_service:ebpf_geoip_accepted_connections:rate1m")}
        compare("cluster_port_service:ebpf_geoip_accepted_connections:rate1m (series)", by_port,
                {k: True for k in want["port_services"]})

        for line in failures:
            log(line)
        clients = sum(len(n.plan) for n in self.nodes)
        log("%s: %d nodes in %d clusters, %d connections, %d countries, %d (cluster, country) "
            "series" % ("FAILED" if failures else "exact", self.n,
                        len({n.cluster for n in self.nodes}), clients,
                        len({c for _, c in want["totals"]}), len(want["totals"])))
        return len(failures)

    # --- measurements -----------------------------------------------------

    def trickle(self, per_second):
        """Keeps counters moving while measuring: connections from each
        node's own mix, round-robin, at most per_second in all."""
        def run():
            connections = {}
            i = 0
            while not self.trickle_stop.wait(1 / per_second):
                node = self.nodes[i % self.n]
                address, port, _ = node.plan[(i // self.n) % len(node.plan)]
                i += 1
                try:
                    connection = connections.get(node.name)
                    if connection is None:
                        connection = connections[node.name] = http.client.HTTPConnection(
                            "127.0.0.1", node.process.port, timeout=10)
                    post(node.process.port, address, port, connection)
                except (OSError, http.client.HTTPException, SetupError):
                    connections.pop(node.name, None)
            for connection in connections.values():
                connection.close()
        self.trickle_thread = threading.Thread(target=run, daemon=True)
        self.trickle_thread.start()

    def measure(self, window):
        """Runs `window` seconds more, then measures; returns a dict."""
        p = self.prometheus
        cpu_before, wall_before = cpu_seconds(p.process.pid), time.monotonic()
        evaluations = {}
        end = time.monotonic() + window
        while time.monotonic() < end:
            for group in p.api("rules", type="record")["groups"]:
                evaluations.setdefault(group["name"], []).append(group["evaluationTime"])
            time.sleep(min(2, max(0.1, end - time.monotonic())))
        cpu = (cpu_seconds(p.process.pid) - cpu_before) / (time.monotonic() - wall_before)
        span = "%ds" % max(10, int(window))

        def latency(expr, runs=21):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                p.api("query", query=expr)
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        tsdb = p.api("status/tsdb")
        samples = p.query('scrape_samples_scraped{job="%s"}' % JOB).values()
        exporter_rss = [proc_status(n.process.process.pid, "VmRSS") for n in self.nodes]
        return {
            "nodes": self.n,
            "series_per_node": statistics.mean(samples) if samples else 0,
            "head_series": tsdb["headStats"]["numSeries"],
            "rss": proc_status(p.process.pid, "VmRSS"),
            "hwm": proc_status(p.process.pid, "VmHWM"),
            "cpu": cpu,
            "scrape_avg": p.scalar('avg(avg_over_time(scrape_duration_seconds{job="%s"}[%s]))'
                                   % (JOB, span), 0),
            "scrape_max": p.scalar('max(max_over_time(scrape_duration_seconds{job="%s"}[%s]))'
                                   % (JOB, span), 0),
            "eval": {name: statistics.median(values) for name, values in evaluations.items()},
            "eval_max": {name: max(values) for name, values in evaluations.items()},
            "map_query": latency(WORLD_MAP),
            "map_query_raw": latency(WORLD_MAP_RAW),
            "exporter_rss": statistics.mean(exporter_rss) if exporter_rss else 0,
        }

    # --- shutdown ---------------------------------------------------------

    def stop(self):
        self.trickle_stop.set()
        if self.trickle_thread:
            self.trickle_thread.join(15)
        if self.prometheus:
            self.prometheus.stop()
        started = [n.process for n in self.nodes if n.process]
        for process in started:  # all at once: each exits on SIGTERM
            try:
                if process.process.poll() is None:
                    os.killpg(process.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in started:
            process.close(grace=10)


def print_measurements(m):
    mib = 1024 * 1024
    log("series per node (samples per scrape): %.1f" % m["series_per_node"])
    log("head series: %d" % m["head_series"])
    log("prometheus RSS: %.1f MiB (peak %.1f MiB), %.0f bytes per head series; CPU %.2f cores"
        % (m["rss"] / mib, m["hwm"] / mib, m["rss"] / max(1, m["head_series"]), m["cpu"]))
    log("scrape duration: avg %.2f ms, max %.2f ms"
        % (m["scrape_avg"] * 1000, m["scrape_max"] * 1000))
    for name in sorted(m["eval"]):
        log("rule group %s: evaluation %.2f ms (median), %.2f ms (max)"
            % (name, m["eval"][name] * 1000, m["eval_max"][name] * 1000))
    log("world map query (median of 21): %.2f ms recorded (%s), %.2f ms from raw series"
        % (m["map_query"] * 1000, WORLD_MAP, m["map_query_raw"] * 1000))
    log("exporter RSS: %.1f MiB each (mean)" % (m["exporter_rss"] / mib))


def markdown_table(rows, args):
    mib = 1024 * 1024
    lines = [
        "| nodes | series per node | head series | Prometheus RSS | bytes per head series "
        "| Prometheus CPU | scrape duration avg / max | rule evaluation: fleet / recording "
        "| world map query: recorded / raw |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        lines.append(
            "| %d | %.0f | %d | %.0f MiB | %.0f | %.2f cores | %.2f / %.1f ms | %.1f / %.1f ms "
            "| %.1f / %.1f ms |" % (
                m["nodes"], m["series_per_node"], m["head_series"], m["rss"] / mib,
                m["rss"] / max(1, m["head_series"]), m["cpu"], m["scrape_avg"] * 1000,
                m["scrape_max"] * 1000, m["eval"].get("ebpf_geoip.fleet", 0) * 1000,
                m["eval"].get("ebpf_geoip.recording", 0) * 1000, m["map_query"] * 1000,
                m["map_query_raw"] * 1000))
    return "\n".join(lines) + "\n"


def run_one(args, n, pools, measure):
    """Starts a fleet of n, checks it, measures it if asked; stops it."""
    workdir = tempfile.mkdtemp(prefix="ebpf-geoip-fleet-%d." % n)
    fleet = Fleet(args, n, workdir)
    keep = args.keep
    try:
        started = time.monotonic()
        fleet.start_exporters(pools)
        log("%d exporters up in %.1f s" % (n, time.monotonic() - started))
        started = time.monotonic()
        fleet.send()
        log("%d connections sent in %.1f s" % (sum(len(x.plan) for x in fleet.nodes),
                                               time.monotonic() - started))
        fleet.start_prometheus(fleet.write_targets())
        fleet.wait_for_rules(max(60, 4 * parse_duration(args.scrape_interval) + n * 0.05))
        failed = fleet.check()
        if failed:
            # With --perturb a failure is the expected answer: nothing to keep.
            keep = args.keep or not args.perturb
            raise Failure("%d fleet checks failed" % failed)
        result = None
        if measure:
            fleet.trickle(args.trickle)
            result = fleet.measure(args.measure_seconds)
            print_measurements(result)
        return result
    except Failure:
        raise
    except BaseException:
        keep = True
        raise
    finally:
        fleet.stop()
        if keep:
            log("kept %s (exporter and prometheus logs, config, data)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args():
    parser = argparse.ArgumentParser(
        description="N simulated exporters scraped by a real Prometheus with the project's "
                    "rules: exact fleet sums and measurements.")
    parser.add_argument("sizes", metavar="N", type=int, nargs="+",
                        help="fleet size (several with --bench)")
    parser.add_argument("--exporter", required=True, help="ebpf_geoip_exporter binary")
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    parser.add_argument("--database", default=world.BUNDLED)
    parser.add_argument("--bench", action="store_true",
                        help="measure every N, each after --measure-seconds, and print a "
                             "markdown table (also to --output)")
    parser.add_argument("--output", help="with --bench: write the markdown table here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=200,
                        help="at most this many connections per node (at least half of it)")
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--scrape-interval", default=None,
                        help="scrape and rule evaluation interval (default 1s; 5s with --bench, "
                             "as prometheus/prometheus.yml ships)")
    parser.add_argument("--measure-seconds", type=float, default=None,
                        help="run this long before measuring (default 3 s; 60 s with --bench)")
    parser.add_argument("--trickle", type=float, default=50,
                        help="connections per second, fleet-wide, while measuring")
    parser.add_argument("--web-threads", type=int, default=16,
                        help="each exporter's --web.max-connections")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop everything and fail after this many seconds "
                             "(default 120; 1800 with --bench)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--perturb", action="store_true",
                        help="send one connection the expected sums leave out: the check "
                             "must then fail (a test of the checker)")
    args = parser.parse_args()
    if len(args.sizes) > 1 and not args.bench:
        parser.error("several sizes need --bench")
    if any(n < 1 for n in args.sizes):
        parser.error("N must be at least 1")
    args.scrape_interval = args.scrape_interval or ("5s" if args.bench else "1s")
    if args.measure_seconds is None:
        args.measure_seconds = 60 if args.bench else 3
    args.timeout = args.timeout or (1800 if args.bench else 120)
    return args


def main():
    args = parse_args()

    def stop(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)

    def out_of_time(_signum, _frame):
        raise SetupError("timed out after %d s (--timeout)" % args.timeout)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.timeout))
    try:
        if not os.path.isfile(args.exporter):
            raise SetupError("no exporter binary at %s" % args.exporter)
        if not shutil.which(args.prometheus):
            raise SetupError("no prometheus (%s): apt-get install prometheus" % args.prometheus)
        with open("/proc/loadavg") as f:
            load_average = " ".join(f.read().split()[:3])
        pools = client_pools(args.database)
        log("%d countries sampled from %s" % (len(pools) - len(SPECIAL_CLIENTS), args.database))
        rows = []
        for n in args.sizes:
            log("== %d nodes, scrape and evaluation every %s" % (n, args.scrape_interval))
            rows.append(run_one(args, n, pools, measure=True))
        if args.bench:
            version = subprocess.run([args.prometheus, "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0]
            table = markdown_table(rows, args)
            header = ("`scripts/fleet-sim --bench %s` on %d CPUs, %.0f GiB (load average %s "
                      "when it started), %s; scrape and rule evaluation every %s; measured "
                      "after %.0f s with %g connections/s fleet-wide.\n\n" % (
                          " ".join(map(str, args.sizes)), os.cpu_count(),
                          os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30,
                          load_average, version, args.scrape_interval, args.measure_seconds,
                          args.trickle))
            print(header + table)
            if args.output:
                with open(args.output, "w") as f:
                    f.write(header + table)
        return 0
    except Failure as error:
        log("FAILED:", error)
        return 1
    except (SetupError, OSError) as error:
        log("error:", error)
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
