#!/usr/bin/env python3
"""Tests of the Python test helpers: the start-up line's parser, starting a
command and waiting for it, the `port` command the shell tests use, and the
network namespace (that part needs root and skips without it)."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import exporter_process  # noqa: E402
from exporter_process import ExporterProcess, StartupLine  # noqa: E402
from netns import TestNamespace  # noqa: E402

LOOPBACK = StartupLine("127.0.0.1:0", 40123, "/metrics")
# The same cases as TEST(StartupLine, ...) in support_test.cc, for the C++
# parser: (log so far, what find_startup_line returns).
STARTUP_CASES = [
    ("listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n", LOOPBACK),
    ("listening on :19100 (port 19100), metrics at /metrics\n",
     StartupLine(":19100", 19100, "/metrics")),
    ("listening on [::1]:0 (port 1), metrics at /custom/path\n",
     StartupLine("[::1]:0", 1, "/custom/path")),
    # Among the other start-up lines; the live map's URL follows it.
    ("--bpf.pin-path=auto: no pinning (started from a shell)\n"
     "probe mode: fexit, ports: all\n"
     "listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n"
     "live map: http://127.0.0.1:40123/\n", LOOPBACK),
    ("listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n"
     "listening on 127.0.0.1:0 (port 50000), metrics at /metrics\n", LOOPBACK),
    # Still being written: the port may be cut short.
    ("listening on 127.0.0.1:0 (port 401", None),
    ("listening on 127.0.0.1:0 (port 40123), metrics at /metrics", None),
    ("", None),
    ("probe mode: fexit, ports: all\n", None),
    # Only at the start of a line, in exactly this shape.
    ("demo service listening on 127.0.0.1 (port 8081), metrics at /x\n", None),
    (" listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n", None),
    ("listening on 127.0.0.1:0 (port 0), metrics at /metrics\n", None),
    ("listening on 127.0.0.1:0 (port 65536), metrics at /metrics\n", None),
    ("listening on 127.0.0.1:0 (port +80), metrics at /metrics\n", None),
    ("listening on 127.0.0.1:0 (port 80)\n", None),
    ("listening on 127.0.0.1:0 (port 80), metrics at \n", None),
    ("listening on  (port 80), metrics at /metrics\n", None),
    ("listening on a b (port 80), metrics at /metrics\n", None),
]

# A stand-in for the exporter: a few lines, the start-up line half a second
# later and in two writes, then it runs until stopped.
FAKE_EXPORTER = r"""
echo 'probe mode: fexit, ports: all'
sleep 0.5
printf 'listening on 127.0.0.1:0 (port 4'
sleep 0.2
printf '0123), metrics at /metrics\nlive map: http://127.0.0.1:40123/\n'
exec sleep 60
"""


class StartupLineTest(unittest.TestCase):
    def test_finds_the_first_complete_startup_line(self):
        for log, want in STARTUP_CASES:
            with self.subTest(log=log):
                self.assertEqual(exporter_process.find_startup_line(log), want)

    def test_the_exporters_format_string_gives_a_startup_line(self):
        # exporter/exporter.cc: "listening on %s (port %d), metrics at %s\n".
        line = "listening on %s (port %d), metrics at %s" % ("[::]:0", 65535, "/m")
        self.assertEqual(exporter_process.parse_startup_line(line),
                         StartupLine("[::]:0", 65535, "/m"))


class ExporterProcessTest(unittest.TestCase):
    def test_start_waits_for_the_whole_startup_line(self):
        started = ExporterProcess.start(["sh", "-c", FAKE_EXPORTER], timeout=10)
        self.addCleanup(started.close)
        self.assertEqual(started.port, 40123)
        self.assertEqual(started.startup, LOOPBACK)
        self.assertEqual(started.wait_for_line(lambda line: line.startswith("live map: "), 5,
                                               "live map URL"), True)
        self.assertIn("probe mode: fexit", started.output())

    def test_start_fails_with_the_log_when_the_command_ends_first(self):
        with self.assertRaisesRegex(AssertionError,
                                    r"^sh ended before its start-up line(.|\n)*no such database"):
            ExporterProcess.start(["sh", "-c", "echo no such database; exit 1"], timeout=10)

    def test_start_fails_after_its_timeout(self):
        start = time.monotonic()
        with self.assertRaisesRegex(AssertionError, r"^sh wrote no start-up line within 0.5 s"):
            ExporterProcess.start(["sh", "-c", "echo starting; exec sleep 60"], timeout=0.5)
        self.assertLess(time.monotonic() - start, 5)

    def test_stop_signals_the_whole_session_and_close_removes_its_log(self):
        # The leader and a process it left in the background.
        started = ExporterProcess.start(["sh", "-c", "sleep 60 & " + FAKE_EXPORTER], timeout=10)
        self.assertEqual(started.stop(signal.SIGTERM, 10), -signal.SIGTERM)
        deadline = time.monotonic() + 5
        while started.group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(started.group_alive())
        log = started.log_path
        started.close()
        started.close()
        self.assertFalse(os.path.exists(log))

    def test_close_kills_what_ignores_sigterm(self):
        started = ExporterProcess.start(["sh", "-c", "trap '' TERM; " + FAKE_EXPORTER.replace(
            "exec sleep 60", "while :; do sleep 0.1; done")], timeout=10)
        start = time.monotonic()
        started.close(grace=0.5)
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        self.assertFalse(started.group_alive())
        self.assertEqual(started.process.returncode, -signal.SIGKILL)


class PortCommandTest(unittest.TestCase):
    """`exporter_process.py port LOG`, as tests/tls_proxy_test.sh and
    tests/systemd_unit_test.sh run it."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.log = os.path.join(self.dir.name, "exporter.log")

    def port(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "exporter_process.py"), "port",
                               self.log, *args], capture_output=True, text=True, timeout=30)

    def test_prints_the_port_once_the_line_is_complete(self):
        with open(self.log, "w") as log:
            writer = subprocess.Popen(["sh", "-c", FAKE_EXPORTER], stdout=log)
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)
        result = self.port("--pid", str(writer.pid))
        self.assertEqual((result.returncode, result.stdout), (0, "40123\n"), result.stderr)

    def test_fails_with_the_log_when_the_process_ends_first(self):
        with open(self.log, "w") as log:
            writer = subprocess.Popen(["sh", "-c", "echo cannot listen; exit 1"], stdout=log)
        writer.wait()
        result = self.port("--pid", str(writer.pid))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "")
        self.assertIn("cannot listen", result.stderr)

    def test_counts_a_zombie_as_ended(self):
        # Not reaped until the end of the test: still in /proc, as a zombie.
        writer = subprocess.Popen(["true"])
        self.addCleanup(writer.wait)
        time.sleep(0.2)
        result = self.port("--pid", str(writer.pid), "--timeout", "20")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("ended before", result.stderr)

    def test_fails_after_its_timeout(self):
        with open(self.log, "w") as log:
            log.write("probe mode: fexit, ports: all\n")
        result = self.port("--timeout", "0.3")
        self.assertEqual(result.returncode, 1)
        self.assertIn("within 0.3 s", result.stderr)
        self.assertIn("probe mode: fexit", result.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class TestNamespaceTest(unittest.TestCase):
    def test_runs_from_its_addresses_and_close_kills_and_deletes(self):
        with TestNamespace() as ns:
            name = ns.name
            self.assertRegex(name, r"^geoip-test-%d-\d+$" % os.getpid())
            ns.add_address("81.2.69.142")
            ns.add_address("2a01:4f8::1")
            shown = ns.run(["ip", "-o", "addr", "show", "dev", "lo"])
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn(" 81.2.69.142/32 ", shown.stdout)
            self.assertIn(" 2a01:4f8::1/128 ", shown.stdout)
            # Nothing but lo: no way out.
            links = ns.run(["ip", "-o", "link", "show"]).stdout.splitlines()
            self.assertEqual(len(links), 1, links)
            sleeper = ns.start(["sleep", "60"])
            # In once `ip netns exec` has entered the namespace and exec'd.
            deadline = time.monotonic() + 5
            while sleeper.pid not in ns.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn(sleeper.pid, ns.pids())
        self.assertEqual(sleeper.wait(timeout=10), -signal.SIGKILL)
        self.assertFalse(os.path.exists("/run/netns/" + name))

    def test_deletes_namespaces_that_dead_test_processes_left(self):
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = "geoip-test-%d-0" % dead.pid
        subprocess.run(["ip", "netns", "add", stale], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "delete", stale], capture_output=True)
        if os.path.exists("/proc/%d" % dead.pid):
            self.skipTest("pid %d was taken again" % dead.pid)
        TestNamespace().close()
        self.assertFalse(os.path.exists("/run/netns/" + stale))


if __name__ == "__main__":
    unittest.main(verbosity=2)
