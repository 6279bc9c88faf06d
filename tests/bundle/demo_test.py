#!/usr/bin/env python3
"""The demo services, the world-address list and the traffic generator.

Needs root: the services run in private network namespaces that the test
creates and always deletes. No packet leaves those namespaces.
"""

import collections
import ipaddress
import os
import signal
import subprocess
import sys
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "demo")
DATABASE = os.path.join(REPO, "data", "geo-whois-asn-country.mmdb")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, DEMO)
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import traffic  # noqa: E402  demo/traffic.py
from netns import TestNamespace  # noqa: E402  tests/support/netns.py


def mmdb_country(address):
    """country_code of `address` in the bundled database, or None."""
    result = subprocess.run(["mmdblookup", "--file", DATABASE, "--ip", address, "country_code"],
                            capture_output=True, text=True, timeout=10)
    if "Could not find an entry" in result.stdout + result.stderr:
        return None
    result.check_returncode()
    return result.stdout.split('"')[1]


class WorldAddressesTest(unittest.TestCase):
    def setUp(self):
        self.entries = traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)

    def test_each_address_is_in_the_country_it_claims(self):
        for address, label in self.entries:
            if label == "private":
                self.assertTrue(ipaddress.ip_address(address).is_private, address)
            elif label == "unknown":
                self.assertTrue(ipaddress.ip_address(address).is_global, address)
                self.assertIsNone(mmdb_country(address), address)
            else:
                self.assertRegex(label, r"^[A-Z]{2}$")
                self.assertEqual(mmdb_country(address), label, address)

    def test_covers_ten_countries_both_families_and_the_off_map_labels(self):
        countries = collections.defaultdict(set)
        for address, label in self.entries:
            countries[label].add(ipaddress.ip_address(address).version)
        labels = set(countries)
        self.assertGreaterEqual(len(labels - {"private", "unknown"}), 10)
        self.assertIn("private", labels)
        self.assertIn("unknown", labels)
        versions = set().union(*countries.values())
        self.assertEqual(versions, {4, 6})
        self.assertEqual(len(self.entries), len({a for a, _ in self.entries}), "duplicates")


CLIENT = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
with socket.socket(family) as s:
    s.settimeout(5)
    s.bind((sys.argv[1], 0))
    s.connect((sys.argv[2], int(sys.argv[3])))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % sys.argv[4].encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
print(body.decode(), end="")
"""


class DemoServicesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Fails rather than skips: CI runs as root, and a skip would hide it.
        if os.geteuid() != 0:
            raise AssertionError("needs root for network namespaces")

    def start_services(self, ns):
        services = ns.start([sys.executable, os.path.join(DEMO, "services.py"), "8081", "8082",
                             "8083"], stdout=subprocess.DEVNULL)
        self.addCleanup(services.wait, 10)
        self.addCleanup(services.terminate)
        result = ns.run([sys.executable, "-c",
                         "import sys; sys.path.insert(0, %r); import traffic; "
                         "sys.exit(0 if traffic.WaitListening([8081, 8082, 8083], 10) else 1)"
                         % DEMO])
        self.assertEqual(result.returncode, 0, result.stderr)
        return services

    def http_get(self, ns, source, target, port, path):
        result = ns.run([sys.executable, "-c", CLIENT, source, target, str(port), path])
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split("\n", 1)

    def test_services_answer_as_in_the_original_demo_over_ipv4_and_ipv6(self):
        with TestNamespace() as ns:
            ns.add_address("81.2.69.142")
            ns.add_address("2a01:4f8::1")
            self.start_services(ns)
            for source, target in (("81.2.69.142", "127.0.0.1"), ("2a01:4f8::1", "::1")):
                self.assertEqual(self.http_get(ns, source, target, 8081, "/"),
                                 ["HTTP/1.1 200 OK", "Hello World!\n"])
                self.assertEqual(self.http_get(ns, source, target, 8082, "/"),
                                 ["HTTP/1.1 200 OK", "eBPF Summit\n"])
                self.assertEqual(self.http_get(ns, source, target, 8083, "/kernel"),
                                 ["HTTP/1.1 200 OK", "Submitted word: kernel\n"])
                self.assertEqual(self.http_get(ns, source, target, 8083, "/hello%20world"),
                                 ["HTTP/1.1 200 OK", "Submitted word: hello world\n"])
                self.assertEqual(self.http_get(ns, source, target, 8083, "/")[0],
                                 "HTTP/1.1 400 Bad Request")

    def test_traffic_connects_from_every_world_address_a_bounded_number_of_times(self):
        entries = traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)
        rounds = 2
        expected = rounds * 3 * sum(1 + i % 3 for i in range(len(entries)))
        with TestNamespace() as ns:
            self.start_services(ns)
            result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"), "--setup",
                             "--rounds", str(rounds), "--interval", "0.1"])
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout.strip(),
                             "traffic: %d connections from %d addresses, 0 failed"
                             % (expected, len(entries)))
            addresses = ns.run(["ip", "-o", "addr", "show", "dev", "lo"]).stdout
            for address, _ in entries:
                self.assertIn(" %s/" % address, addresses)

    def test_traffic_setup_again_keeps_every_address(self):
        # A second run in the same namespace finds the addresses already on
        # lo; iproute2 says "Address already assigned" (Debian 12) rather
        # than "File exists", and no address may be skipped for it.
        entries = traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)
        with TestNamespace() as ns:
            self.start_services(ns)
            for _ in range(2):
                result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"), "--setup",
                                 "--rounds", "1", "--interval", "0.1"])
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertNotIn("skipping", result.stderr)
                self.assertIn("from %d addresses, 0 failed" % len(entries), result.stdout)

    def test_traffic_knocks_once_per_address_and_round_at_the_refused_port(self):
        entries = traffic.ReadAddresses(traffic.DEFAULT_ADDRESSES)
        rounds = 2
        expected = rounds * 3 * sum(1 + i % 3 for i in range(len(entries)))
        with TestNamespace() as ns:
            self.start_services(ns)
            result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"), "--setup",
                             "--rounds", str(rounds), "--interval", "0.1",
                             "--refused-port", "8084"])
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout.strip().split("\n"), [
                "traffic: %d refused at port 8084" % (rounds * len(entries)),
                "traffic: %d connections from %d addresses, 0 failed" % (expected, len(entries))])
            # A port where something listens cannot be the refused port.
            # (The addresses are on lo already.)
            result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"),
                             "--rounds", "1", "--refused-port", "8082"])
            self.assertEqual(result.returncode, 1)
            self.assertIn("--refused-port 8082: something listens there", result.stderr)

    def test_traffic_stops_at_its_duration(self):
        with TestNamespace() as ns:
            self.start_services(ns)
            start = time.monotonic()
            result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"), "--setup",
                             "--rounds", "1000000", "--interval", "0.2", "--duration", "1.5"])
            self.assertLess(time.monotonic() - start, 10)
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_traffic_fails_when_nothing_listens(self):
        with TestNamespace() as ns:
            result = ns.run([sys.executable, os.path.join(DEMO, "traffic.py"), "--setup",
                             "--wait-listening", "0.3"])
            self.assertEqual(result.returncode, 1)
            self.assertIn("not all listening", result.stderr)

    def test_traffic_sh_deletes_its_namespace_on_signal(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            name = "geoip-bundle-%d-sh%d" % (os.getpid(), sig)
            proc = subprocess.Popen([os.path.join(DEMO, "traffic.sh"), "--netns", name,
                                     "--keep-running", "--rounds", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                lines = []
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    line = proc.stdout.readline()
                    lines.append(line)
                    if "stay up" in line or not line:
                        break
                self.assertIn("0 failed", "".join(lines))
                self.assertTrue(os.path.exists("/run/netns/" + name))
                proc.send_signal(sig)
                self.assertEqual(proc.wait(timeout=15), 128 + sig)
                self.assertFalse(os.path.exists("/run/netns/" + name))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


if __name__ == "__main__":
    unittest.main()
