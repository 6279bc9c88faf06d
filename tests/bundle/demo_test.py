#!/usr/bin/env python3
"""The demo services, the world-address list and the traffic generator.

Needs root: the services run in private network namespaces that the test
creates and always deletes. No packet leaves those namespaces.
"""

import collections
import ipaddress
import json
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
from exporter_process import free_port  # noqa: E402  tests/support/exporter_process.py


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



# Stands in for the exporter's POST /api/v1/words: prints each post as a JSON
# line and answers with argv[2] (204, or an {"error"} for others), after
# argv[3] seconds.
WORDS_SERVER = r"""
import http.server, json, sys, time
status, delay = int(sys.argv[2]), float(sys.argv[3])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        print(json.dumps({"path": self.path, "body": body.hex(), "from": self.client_address[0],
                          "type": self.headers.get("Content-Type")}), flush=True)
        time.sleep(delay)
        data = b"" if status == 204 else json.dumps({"error": "refused by the test"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
"""


class WordCloudWiringTest(unittest.TestCase):
    """Service 8083 posts each submitted word to the word cloud's URL, and
    netns_relay.py carries it out of the namespace as scripts/demo does."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("needs root for network namespaces")

    def start_words_server(self, start, port, status=204, delay=0):
        server = start([sys.executable, "-c", WORDS_SERVER, str(port), str(status), str(delay)],
                       stdout=subprocess.PIPE, text=True)
        self.addCleanup(server.wait, 10)
        self.addCleanup(server.kill)
        self.addCleanup(server.stdout.close)
        self.assertEqual(server.stdout.readline(), "listening\n")
        return server

    def start_words_service(self, ns, url, use_environment=False):
        """services.py 8083 told where to post: by argument or environment."""
        argv = [sys.executable, os.path.join(DEMO, "services.py"), "8083"]
        env = dict(os.environ)
        env.pop("GEOIP_WORDS_URL", None)
        if use_environment:
            env["GEOIP_WORDS_URL"] = url
        elif url:
            argv += ["--words-url", url]
        service = ns.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)
        self.addCleanup(service.wait, 10)
        self.addCleanup(service.kill)
        self.addCleanup(service.stdout.close)
        self.addCleanup(service.stderr.close)
        result = ns.run([sys.executable, "-c",
                         "import sys; sys.path.insert(0, %r); import traffic; "
                         "sys.exit(0 if traffic.WaitListening([8083], 10) else 1)" % DEMO])
        self.assertEqual(result.returncode, 0, result.stderr)
        return service

    def get_word(self, ns, path):
        result = ns.run([sys.executable, "-c", CLIENT, "127.0.0.1", "127.0.0.1", "8083", path])
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split("\n", 1)

    def read_posts(self, server, count):
        """The next `count` posts the words server printed."""
        return [json.loads(server.stdout.readline()) for _ in range(count)]

    def stop(self, service):
        """Stops the service; its stderr lines."""
        service.terminate()
        service.wait(10)
        return service.stderr.read().splitlines()

    def test_posts_exactly_the_word_requested(self):
        with TestNamespace() as ns:
            server = self.start_words_server(ns.start, 19100)
            service = self.start_words_service(ns, "http://127.0.0.1:19100/api/v1/words")
            requests = [
                ("/kernel", "kernel", b"kernel"),
                ("/hello%20world?x=1", "hello world", b"hello world"),
                ("/h%C3%A9llo", "h\u00e9llo", "h\u00e9llo".encode()),
                ("/caf\u00e9", "caf\u00e9", "caf\u00e9".encode()),  # raw UTF-8 in the path
                ("/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "<script>alert(1)</script>",
                 b"<script>alert(1)</script>"),
                # Bytes the exporter will refuse go as they are: it decides.
                ("/ab%C0%AF", "ab\ufffd\ufffd", b"ab\xc0\xaf"),
                ("/x%E2%80%AEy", "x\u202ey", "x\u202ey".encode()),
            ]
            for path, shown, _ in requests:
                self.assertEqual(self.get_word(ns, path),
                                 ["HTTP/1.1 200 OK", "Submitted word: %s\n" % shown])
            # No word, no post.
            self.assertEqual(self.get_word(ns, "/")[0], "HTTP/1.1 400 Bad Request")
            posts = self.read_posts(server, len(requests))
            self.assertEqual([bytes.fromhex(p["body"]) for p in posts],
                             [body for _, _, body in requests])
            for post in posts:
                self.assertEqual(post["path"], "/api/v1/words")
                self.assertEqual(post["type"], "text/plain; charset=utf-8")
            lines = self.stop(service)
            self.assertEqual(lines, [])
            self.assertIn("posting words to http://127.0.0.1:19100/api/v1/words",
                          service.stdout.read())

    def test_reads_the_url_from_the_environment_and_posts_nothing_without_one(self):
        with TestNamespace() as ns:
            server = self.start_words_server(ns.start, 19100)
            quiet = self.start_words_service(ns, "")
            self.assertEqual(self.get_word(ns, "/unposted")[1], "Submitted word: unposted\n")
            self.assertEqual(self.stop(quiet), [])
            told = self.start_words_service(ns, "http://127.0.0.1:19100/api/v1/words",
                                            use_environment=True)
            self.assertEqual(self.get_word(ns, "/posted")[1], "Submitted word: posted\n")
            # The first post the server sees is the second word.
            self.assertEqual(bytes.fromhex(self.read_posts(server, 1)[0]["body"]), b"posted")
            self.stop(told)

    def test_a_failing_post_never_delays_the_answer_and_prints_one_line(self):
        with TestNamespace() as ns:
            # Nothing listens at port 1.
            service = self.start_words_service(ns, "http://127.0.0.1:1/api/v1/words")
            for word in ("a", "b", "c", "d"):
                self.assertEqual(self.get_word(ns, "/" + word)[0], "HTTP/1.1 200 OK")
            time.sleep(1)
            lines = self.stop(service)
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], r"^demo service SubmitWord: posting a word to "
                                       r"http://127\.0\.0\.1:1/api/v1/words failed: .*refused")

    def test_a_slow_exporter_never_delays_the_answer(self):
        with TestNamespace() as ns:
            server = self.start_words_server(ns.start, 19100, delay=5)
            service = self.start_words_service(ns, "http://127.0.0.1:19100/api/v1/words")
            start = time.monotonic()
            for word in ("slow", "slower", "slowest"):
                self.assertEqual(self.get_word(ns, "/" + word)[0], "HTTP/1.1 200 OK")
            # Three answers while the first post is still waiting for its reply.
            self.assertLess(time.monotonic() - start, 4)
            self.assertEqual(bytes.fromhex(self.read_posts(server, 1)[0]["body"]), b"slow")
            # The post gives up after its timeout and says so, once.
            time.sleep(3)
            lines = self.stop(service)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("timed out", lines[0])

    def test_a_refused_word_prints_the_exporters_reason(self):
        with TestNamespace() as ns:
            self.start_words_server(ns.start, 19100, status=400)
            service = self.start_words_service(ns, "http://127.0.0.1:19100/api/v1/words")
            self.assertEqual(self.get_word(ns, "/bad")[0], "HTTP/1.1 200 OK")
            time.sleep(1)
            self.assertEqual(self.stop(service), [
                "demo service SubmitWord: posting a word to http://127.0.0.1:19100/api/v1/words "
                "failed: HTTP 400 refused by the test"])

    def test_a_url_that_is_not_http_is_refused_at_start(self):
        result = subprocess.run([sys.executable, os.path.join(DEMO, "services.py"), "8083",
                                 "--words-url", "ftp://exporter/words"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--words-url must be an http:// or https:// URL", result.stderr)

    def test_relay_carries_the_post_out_of_the_namespace_from_its_source(self):
        port = free_port()
        server = self.start_words_server(subprocess.Popen, port)
        with TestNamespace() as ns:
            relay = subprocess.Popen(
                [sys.executable, os.path.join(DEMO, "netns_relay.py"), "--netns", ns.name,
                 "--listen", "127.0.0.1:19100", "--to", "127.0.0.1:%d" % port,
                 "--source", "127.0.0.83", "--wait", "10"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            try:
                self.assertIn("127.0.0.1:19100 in namespace %s" % ns.name,
                              relay.stdout.readline())
                service = self.start_words_service(ns, "http://127.0.0.1:19100/api/v1/words")
                self.assertEqual(self.get_word(ns, "/ebpf")[1], "Submitted word: ebpf\n")
                post = self.read_posts(server, 1)[0]
                self.assertEqual(bytes.fromhex(post["body"]), b"ebpf")
                self.assertEqual(post["from"], "127.0.0.83")
                self.assertEqual(self.stop(service), [])
            finally:
                relay.terminate()
                self.assertEqual(relay.wait(10), 0)
                relay.stdout.close()


if __name__ == "__main__":
    unittest.main()
