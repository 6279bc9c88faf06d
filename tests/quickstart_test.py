#!/usr/bin/env python3
"""The quick start as a newcomer meets it, with the real probe (needs root).

RunScriptTest: README's `sudo scripts/run`, given another port with
--web.listen-address, must log the URL of the live map with that port, serve
the map and the metrics there, and on Ctrl-C (SIGINT to its process group)
exit 0 with no process left and nothing pinned.

DefaultPinTest: the exporter binary with the default --bpf.pin-path (auto).
Started from a shell it pins nothing. As a systemd unit's process
(INVOCATION_ID and SYSTEMD_EXEC_PID as systemd sets them) and as PID 1 of a
PID namespace (a container's entrypoint) it pins at /sys/fs/bpf/ebpf_geoip,
and after SIGINT the probe stays pinned and the exporter says so.

Every case is skipped when /sys/fs/bpf/ebpf_geoip exists before it starts:
a real exporter's pins are neither touched nor mistaken for the test's. The
cases that pin remove the pins (which detaches their probe) when they end.

Run by ctest (tests/CMakeLists.txt, label quickstart); by hand:
    sudo tests/quickstart_test.py --exporter build/exporter/ebpf_geoip_exporter \\
        --build-dir build [RunScriptTest|DefaultPinTest]
--build-dir is what scripts/run builds into (GEOIP_BUILD_DIR): it must be
a Release build, as scripts/run configures it.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from exporter_process import ExporterProcess, free_port  # noqa: E402  tests/support/exporter_process.py

DATABASE = os.path.join(REPO, "data", "geo-whois-asn-country.mmdb")
# What --bpf.pin-path=auto pins to when it pins.
PIN_PATH = "/sys/fs/bpf/ebpf_geoip"
# The line after the start-up line: the live map's URL.
URL_LINE = re.compile(r"live map: (http://([^/:]+):(\d+)/)")
# A first build of the whole tree by scripts/run, if ctest runs before one.
START_TIMEOUT = 900
STOP_TIMEOUT = 15

ARGS = None  # the command line, parsed in main()


def shell_environment():
    """The environment of `sudo scripts/run` typed in a terminal: sudo
    keeps neither of systemd's variables."""
    env = dict(os.environ)
    env.pop("INVOCATION_ID", None)
    env.pop("SYSTEMD_EXEC_PID", None)
    return env


def http_get(host, port, path):
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


class ProbeTestCase(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the exporter loads the probe")
        if not os.path.ismount("/sys/fs/bpf"):
            self.skipTest("no bpffs at /sys/fs/bpf: nothing could be pinned")
        if os.path.exists(PIN_PATH):
            self.skipTest(PIN_PATH + " exists already (a real exporter's pins?): "
                          "left alone")
        self.session = None

    def tearDown(self):
        if self.session is not None:
            self.session.close()
        # Removing the pins detaches a probe a case left behind.
        if os.path.exists(PIN_PATH):
            shutil.rmtree(PIN_PATH)

    def start(self, argv, env):
        """Starts `argv` in a session of its own, as a terminal runs it (so
        Ctrl-C reaches its whole process group), and waits for the
        exporter's start-up line; returns its port."""
        self.session = ExporterProcess.start(argv, START_TIMEOUT, env=env)
        return self.session.port

    def interrupt(self):
        """Ctrl-C: SIGINT to the process group. Returns the exit status."""
        return self.session.stop(signal.SIGINT, STOP_TIMEOUT)

    def assert_stops_leaving_nothing(self, port):
        status = self.interrupt()
        output = self.session.output()
        self.assertEqual(status, 0, output)
        self.assertFalse(self.session.group_alive(), "a process of the session still runs")
        self.assertFalse(os.path.exists(PIN_PATH), PIN_PATH + " exists after Ctrl-C")
        with self.assertRaises(ConnectionRefusedError, msg="port %d still answers" % port):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertIn("received Interrupt, stopping", output)
        self.assertNotIn("stays pinned", output)

    def assert_pins_and_keeps_them(self, launcher):
        self.assertTrue(os.path.exists(os.path.join(PIN_PATH, "link")),
                        "no pinned link in %s; output:\n%s" % (PIN_PATH, self.session.output()))
        self.assertIn("--bpf.pin-path=auto: pinning at %s (%s)" % (PIN_PATH, launcher),
                      self.session.output())
        status = self.interrupt()
        output = self.session.output()
        self.assertEqual(status, 0, output)
        self.assertIn("the probe stays pinned at %s" % PIN_PATH, output)
        self.assertFalse(self.session.group_alive(), "a process of the session still runs")
        self.assertTrue(os.path.exists(os.path.join(PIN_PATH, "link")),
                        "the pins went away with the exporter")


class RunScriptTest(ProbeTestCase):
    def setUp(self):
        super().setUp()
        cache = os.path.join(ARGS.build_dir, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                settings = dict(re.findall(r"^(\w+):\w+=(.*)$", f.read(), re.M))
            if (settings.get("CMAKE_BUILD_TYPE") != "Release" or settings.get("GEOIP_SANITIZE")
                    or settings.get("GEOIP_FUZZ", "OFF") not in ("OFF", "")):
                self.skipTest("%s is not a plain Release build, and scripts/run would "
                              "reconfigure it as one" % ARGS.build_dir)

    def test_logs_the_url_of_the_port_given_and_ctrl_c_leaves_nothing(self):
        port = free_port()
        env = shell_environment()
        env["GEOIP_BUILD_DIR"] = ARGS.build_dir
        self.assertEqual(self.start([os.path.join(REPO, "scripts", "run"),
                                     "--web.listen-address=127.0.0.1:%d" % port,
                                     "--bpf.drain-interval=100ms"], env), port)
        # The exporter names the URL right after it starts listening.
        match = self.session.wait_for_line(URL_LINE.fullmatch, 5, "live map URL")
        url, host, url_port = match.group(1), match.group(2), int(match.group(3))
        self.assertEqual(url, "http://127.0.0.1:%d/" % port)
        output = self.session.output()
        self.assertNotIn(":19100", output, "names the default port although another was given")
        self.assertFalse(os.path.exists(PIN_PATH), PIN_PATH + " exists while it runs")
        self.assertIn("--bpf.pin-path=auto: no pinning (started from a shell)", output)

        status, content_type, body = http_get(host, url_port, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", content_type)
        status, _, body = http_get(host, url_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"ebpf_geoip_probe_info{mode=", body)

        self.assert_stops_leaving_nothing(port)


class DefaultPinTest(ProbeTestCase):
    def exporter(self, port):
        return [ARGS.exporter, "--geoip.database=" + DATABASE,
                "--web.listen-address=127.0.0.1:%d" % port, "--bpf.drain-interval=100ms"]

    def test_from_a_shell_it_pins_nothing(self):
        port = self.start(self.exporter(free_port()), shell_environment())
        self.assertFalse(os.path.exists(PIN_PATH), PIN_PATH + " exists while it runs")
        self.assertIn("--bpf.pin-path=auto: no pinning (started from a shell)",
                      self.session.output())
        self.assert_stops_leaving_nothing(port)

    def test_as_a_systemd_unit_it_pins(self):
        env = shell_environment()
        env["INVOCATION_ID"] = os.urandom(16).hex()
        # systemd sets SYSTEMD_EXEC_PID to the PID it runs, which exec keeps.
        self.start(["/bin/sh", "-c", 'SYSTEMD_EXEC_PID=$$ exec "$@"', "sh"]
                   + self.exporter(free_port()), env)
        self.assert_pins_and_keeps_them("started by systemd")

    def test_as_a_containers_pid_1_it_pins(self):
        if shutil.which("unshare") is None:
            self.skipTest("no unshare (util-linux)")
        self.start(["unshare", "--pid", "--fork"] + self.exporter(free_port()),
                   shell_environment())
        self.assert_pins_and_keeps_them("PID 1, a container's entrypoint")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("tests", nargs="*")
    ARGS = parser.parse_args()
    ARGS.exporter = os.path.abspath(ARGS.exporter)
    ARGS.build_dir = os.path.abspath(ARGS.build_dir)
    loader = unittest.TestLoader()
    suite = (loader.loadTestsFromNames(ARGS.tests, sys.modules[__name__]) if ARGS.tests
             else loader.loadTestsFromModule(sys.modules[__name__]))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        sys.exit(1)
    # Everything skipped (not root, or pins already there): tell ctest so
    # (SKIP_RETURN_CODE 77).
    sys.exit(77 if len(result.skipped) == result.testsRun else 0)


if __name__ == "__main__":
    main()
