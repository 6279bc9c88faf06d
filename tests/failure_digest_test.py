#!/usr/bin/env python3
"""scripts/lib/failure_digest.py on the log of a real ctest run.

A throw-away CMake project has a test that passes, one that fails the way a
GoogleTest binary does, one that fails the way a suite run inside another
test does (debian13), and one that times out; ctest runs them, and the
digest of its LastTest.log must name the three failed ones with their
reasons, and nothing of the one that passed.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

REPO = pathlib.Path(__file__).resolve().parent.parent
DIGEST = REPO / "scripts" / "lib" / "failure_digest.py"

PROJECT = r"""
cmake_minimum_required(VERSION 3.16)
project(digest_sample NONE)
enable_testing()
add_test(NAME passes COMMAND sh -c "echo 'all good: quiet_marker'")
add_test(NAME gtest_fails COMMAND sh -c "
echo '[ RUN      ] Traffic.LongLived'
echo 'tests/traffic_e2e_test.cc:312: Failure'
echo 'Expected equality of these values:'
echo '  Of(*metrics, kReceived, \"GB\", \"18211\")'
echo '    Which is: 0'
echo '  kUp'
echo '    Which is: 1048576'
echo 'probe health: missed_closes=1'
echo '[  FAILED  ] Traffic.LongLived (6755 ms)'
echo 'noise after the failure'
exit 1")
add_test(NAME nested_suite COMMAND sh -c "
echo 'debian13: sudo scripts/test (in the chroot)'
echo '[ 72%] Building CXX object a.o'
echo '380 - TrafficEndToEnd.LongLived (Failed)'
echo '  scripts/test       FAIL  exit 8'
exit 1")
add_test(NAME hangs COMMAND sleep 30)
set_tests_properties(hangs PROPERTIES TIMEOUT 1)
"""


class FailureDigestTest(unittest.TestCase):
    def test_names_each_failed_test_and_why(self):
        with tempfile.TemporaryDirectory() as tmp:
            source = pathlib.Path(tmp, "src")
            build = pathlib.Path(tmp, "build")
            source.mkdir()
            (source / "CMakeLists.txt").write_text(PROJECT)
            subprocess.run(["cmake", "-S", source, "-B", build], check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            ran = subprocess.run(["ctest"], cwd=build, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, timeout=60)
            self.assertNotEqual(ran.returncode, 0)
            log = build / "Testing" / "Temporary" / "LastTest.log"
            out = subprocess.run([sys.executable, DIGEST, log], capture_output=True,
                                 text=True, check=True, timeout=30).stdout
        lines = out.splitlines()
        self.assertEqual(lines[0], f"== why the 3 failed test(s) failed (from {log})")
        names = [line for line in lines if line.startswith("--- ")]
        self.assertEqual([name.split(" (")[0] for name in names],
                         ["--- gtest_fails", "--- nested_suite", "--- hangs"])
        # The one that timed out says how long it ran: its 1 s timeout.
        self.assertRegex(names[2], r"^--- hangs \(failed after 1\.\d\d s\)$")
        self.assertNotIn("quiet_marker", out)
        # GoogleTest's message whole, up to the next GoogleTest line.
        start = lines.index("  tests/traffic_e2e_test.cc:312: Failure")
        self.assertEqual(lines[start + 1:start + 8], [
            "  Expected equality of these values:",
            '    Of(*metrics, kReceived, "GB", "18211")',
            "      Which is: 0",
            "    kUp",
            "      Which is: 1048576",
            "  probe health: missed_closes=1",
            "  [  FAILED  ] Traffic.LongLived (6755 ms)",
        ])
        self.assertNotIn("noise after the failure", out)
        # A suite's own failure lines, not its build.
        self.assertIn("  380 - TrafficEndToEnd.LongLived (Failed)", lines)
        self.assertIn("    scripts/test       FAIL  exit 8", lines)
        self.assertNotIn("Building", out)
        # Only what the tests printed, not how ctest ran them.
        self.assertNotIn("echo", out)

    def test_a_run_without_failures_prints_nothing(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
            log.write("1/1 Testing: passes\nOutput:\nok\nTest Passed.\n")
            log.flush()
            out = subprocess.run([sys.executable, DIGEST, log.name], capture_output=True,
                                 text=True, check=True, timeout=30).stdout
        self.assertEqual(out, "")

    def test_a_missing_log_says_so(self):
        ran = subprocess.run([sys.executable, DIGEST, "/nonexistent/LastTest.log"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(ran.returncode, 1)
        self.assertIn("cannot read /nonexistent/LastTest.log", ran.stdout)


if __name__ == "__main__":
    os.environ.pop("CTEST_OUTPUT_ON_FAILURE", None)
    unittest.main()
