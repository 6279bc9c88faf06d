#!/usr/bin/env python3
"""Measures what the exporter uses, for the requests and limits of
deploy/kubernetes/base/daemonset.yaml: peak resident memory (VmHWM) and CPU
(utime + stime from /proc/PID/stat) of the real binary in three runs.

  storm      the real probe (root), every port, an accept storm of the
             repository's traffic tool on loopback while /metrics is scraped
             ten times a second
  series     --connections.source=simulated: 64 ports x every country that
             20,000 random public addresses reach in the bundled database
             (about 10,000 series), then scrapes
  addresses  simulated: 300,000 distinct addresses over those ports, so that
             the busiest series hold their unique-address sketches (the
             memory bound of README's "Memory" section)

  sudo tests/kubernetes/measure_resources.py --build-dir build [--seconds 20]

Not a test: it prints a table for README ("Kubernetes") and the DaemonSet's
comment. Bounded: each run stops after --seconds, connections stay on
loopback.
"""

import argparse
import http.client
import ipaddress
import os
import random
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATABASE = os.path.join(REPO, "data", "geo-whois-asn-country.mmdb")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Exporter:
    def __init__(self, binary, port, *flags):
        self.port = port
        self.process = subprocess.Popen(
            [binary, f"--geoip.database={DATABASE}", f"--web.listen-address=127.0.0.1:{port}",
             "--bpf.pin-path=", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.get("/-/healthy")
                return
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        sys.exit("the exporter did not start: " + self.process.stderr.read())

    def get(self, path):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", path)
        body = connection.getresponse().read()
        connection.close()
        return body

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def scrape_loop(exporter, stop, period):
    while not stop.is_set():
        exporter.get("/metrics")
        stop.wait(period)


def post_connections(port, items):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for address, local_port in items:
        connection.request("POST", "/api/v1/connections",
                           body=f'{{"address":"{address}","port":{local_port}}}')
        connection.getresponse().read()
    connection.close()


def public_addresses(count, seed):
    rng = random.Random(seed)
    found = []
    while len(found) < count:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global:
            found.append(str(address))
    return found


def run(name, exporter, load, seconds):
    pid = exporter.process.pid
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    stop = threading.Event()
    scraper = threading.Thread(target=scrape_loop, args=(exporter, stop, 0.1))
    scraper.start()
    load(stop, seconds)
    stop.set()
    scraper.join()
    wall = time.monotonic() - start
    used = cpu_seconds(pid) - start_cpu
    series = exporter.get("/metrics").count(b"\nebpf_geoip_accepted_connections_total{")
    row = (name, peak_rss_mib(pid), used / wall, series)
    exporter.stop()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    binary = os.path.join(args.build_dir, "exporter", "ebpf_geoip_exporter")
    traffic = os.path.join(args.build_dir, "tools", "ebpf_geoip_traffic")
    rows = []

    if os.geteuid() == 0:
        def storm(stop, seconds):
            # Storms of 50,000 connections (about 2 s each here) until the time is up.
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                subprocess.run([traffic, "--storm=127.0.0.1:18731", "--count=50000",
                                "--timeout=60"], capture_output=True, check=True)
        rows.append(run("storm", Exporter(binary, 18730), storm, args.seconds))
    else:
        print("not root: skipping the probe run (storm)", file=sys.stderr)

    addresses = public_addresses(20000, seed=1)
    ports = list(range(8000, 8064))

    def series(stop, seconds):
        # One address of each country the database knows, found by posting
        # them all once (the answer names the country), then those on every
        # port: one series per (country, port).
        by_country = {}
        connection = http.client.HTTPConnection("127.0.0.1", 18740, timeout=10)
        for address in addresses:
            connection.request("POST", "/api/v1/connections",
                               body=f'{{"address":"{address}","port":{ports[0]}}}')
            answer = connection.getresponse().read().decode()
            by_country.setdefault(answer.split('"id":"')[1].split('"')[0], address)
        connection.close()
        items = [(a, p) for p in ports[1:] for a in by_country.values()]
        threads = [threading.Thread(target=post_connections, args=(18740, items[i::4]))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.wait(max(0, seconds - 1))

    rows.append(run("series", Exporter(binary, 18740, "--connections.source=simulated"),
                    series, args.seconds))

    many = public_addresses(300000, seed=2)

    def distinct(stop, seconds):
        items = [(a, ports[i % 8]) for i, a in enumerate(many)]
        threads = [threading.Thread(target=post_connections, args=(18750, items[i::4]))
                   for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    rows.append(run("addresses", Exporter(binary, 18750, "--connections.source=simulated"),
                    distinct, args.seconds))

    print(f"{'run':<10} {'peak RSS (MiB)':>15} {'CPU (cores)':>12} {'series':>8}")
    for name, rss, cpu, count in rows:
        print(f"{name:<10} {rss:>15.1f} {cpu:>12.3f} {count:>8}")


if __name__ == "__main__":
    main()
