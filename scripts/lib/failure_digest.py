#!/usr/bin/env python3
"""Why the failed tests of a ctest run failed, in a few lines each.

usage: failure_digest.py BUILD_DIR/Testing/Temporary/LastTest.log

ctest --output-on-failure prints a failed test's whole output where it
failed, which for a test that runs a suite of its own (debian13 runs
scripts/test in a chroot) is thousands of lines in the middle of the run.
scripts/test prints this digest last, so the assertions that failed are
where a reader, or a CI log cut to its ends, looks: the end.

For each failed test it keeps GoogleTest's failure messages (the file:line
"Failure" line and what follows it), "[  FAILED  ]" lines, a watchdog's
"no end after", and the lines of scripts that say FAIL or error.
"""
import re
import sys

# A test's block in LastTest.log: from "N/M Testing: NAME" to its result.
_START = re.compile(r"^\d+/\d+ Testing: (?P<name>.+)$")
# A GoogleTest failure: "path:line: Failure", then its message.
_GTEST_FAILURE = re.compile(r":\d+: Failure$")
_KEEP = re.compile(r"\[  FAILED  \]|no end after|\bFAIL\b|\berror:|\*\*\*[A-Z]|"
                   r"\((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted)\)")
# Lines of a GoogleTest failure message that follow "Failure".
_MESSAGE_LINES = 12
_LINES_PER_TEST = 60
_LINES_IN_ALL = 240


def failed_tests(log_lines):
    """[(name, seconds, [output lines])] of every test whose block says it
    failed; seconds as ctest wrote them ("?" if it did not)."""
    tests = []
    name, lines, seconds, in_output = None, [], "?", False
    for line in log_lines:
        start = _START.match(line)
        if start:
            name, lines, seconds, in_output = start.group("name"), [], "?", False
        elif name is None:
            continue
        elif line == "Output:":
            in_output = True
        elif line == "<end of output>":
            in_output = False
        elif in_output:
            if lines or not line.startswith("-----"):
                lines.append(line)
        elif line.startswith("Test time ="):
            seconds = line.split("=", 1)[1].split()[0]
        elif line.startswith("Test Failed") or line.startswith("Test Passed"):
            if line.startswith("Test Failed"):
                tests.append((name, seconds, lines))
            name = None
    return tests


def digest(lines):
    """The lines of one failed test's output that say why it failed."""
    kept = []
    follow = 0
    seen = set()
    for line in lines:
        if _GTEST_FAILURE.search(line):
            follow = _MESSAGE_LINES
            kept.append(line)
            continue
        if follow > 0:
            if line.startswith("[ ") or line.startswith("[=") or line.startswith("[-"):
                follow = 0
            else:
                follow -= 1
                kept.append(line)
                continue
        if _KEEP.search(line) and line not in seen:
            seen.add(line)
            kept.append(line)
    if len(kept) > _LINES_PER_TEST:
        kept = kept[:_LINES_PER_TEST] + [f"... {len(kept) - _LINES_PER_TEST} more lines"]
    return kept


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    try:
        with open(argv[1], encoding="utf-8", errors="replace") as log:
            log_lines = log.read().splitlines()
    except OSError as error:
        print(f"failure digest: cannot read {argv[1]}: {error.strerror}")
        return 1
    tests = failed_tests(log_lines)
    if not tests:
        return 0
    print(f"== why the {len(tests)} failed test(s) failed (from {argv[1]})")
    printed = 0
    for name, seconds, lines in tests:
        kept = digest(lines)
        print(f"--- {name} (failed after {seconds} s)")
        for line in kept:
            if printed >= _LINES_IN_ALL:
                print("... (the log above has the rest)")
                return 0
            print(f"  {line}")
            printed += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
