#!/usr/bin/env python3
"""The exporter's start-up line, and the one way Python tests and shell
tests start an exporter and learn its port.

Once the probe is attached and the HTTP server answers, the exporter prints

    listening on ADDRESS (port N), metrics at PATH

(docs/API.md, "Start-up line"). parse_startup_line is the one parser of that
line in Python, the twin of FindStartupLine in tests/support/exporter_process.h.

From a shell test:

    python3 tests/support/exporter_process.py port LOG [--pid PID] [--timeout S]

waits until LOG holds the start-up line and prints N. It exits 1, with the
reason and LOG on stderr, if PID ends or S seconds (15 by default) pass first.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

# ADDRESS has no spaces; N has at most five digits; PATH runs to the end.
_STARTUP_LINE = re.compile(
    r"listening on (?P<address>\S+) \(port (?P<port>[0-9]{1,5})\), metrics at (?P<path>.+)")
# How often a log is read again while waiting.
_POLL_INTERVAL = 0.05


def free_port():
    """A loopback port nobody listens on now, for a program that cannot
    report the port it bound (chromedriver, Prometheus, scripts/run). Another
    process may take it before it is used; callers bind it at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StartupLine(NamedTuple):
    listen_address: str  # as given to --web.listen-address
    port: int  # the port it bound, also for ":0"
    metrics_path: str


def parse_startup_line(line):
    """The StartupLine that `line` (without its newline) is, or None."""
    match = _STARTUP_LINE.fullmatch(line)
    if not match or not 1 <= int(match.group("port")) <= 65535:
        return None
    return StartupLine(match.group("address"), int(match.group("port")), match.group("path"))


def complete_lines(log):
    """The lines of `log` that end in a newline: the last piece of a log that
    is still being written may be cut short ("(port 4" of "(port 40123)")."""
    return log.split("\n")[:-1]


def find_startup_line(log):
    """The first start-up line among the complete lines of `log`, or None."""
    for line in complete_lines(log):
        found = parse_startup_line(line)
        if found:
            return found
    return None


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for_line(log_path, parse, timeout, alive=lambda: True, what="start-up line",
                  who="the exporter"):
    """Polls the file at log_path until parse(line) is true for a complete
    line, and returns that value. Raises AssertionError, quoting the log, if
    alive() turns false or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        # Asked before the log is read, so that the last words of a process
        # that has just ended are still searched.
        running = alive()
        log = _read(log_path)
        for line in complete_lines(log):
            value = parse(line)
            if value:
                return value
        if not running:
            raise AssertionError(f"{who} ended before its {what}; {log_path}:\n{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{who} wrote no {what} within {timeout} s; "
                                 f"{log_path}:\n{log}")
        time.sleep(_POLL_INTERVAL)


def pid_alive(pid):
    """True while `pid` runs: not gone, and not a zombie nobody reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class ExporterProcess:
    """A command that runs the exporter (the binary itself, or a script such
    as scripts/run) in a session of its own, as a terminal runs it, with its
    stdout and stderr in one log file. Stopped, with everything it started,
    on close()."""

    def __init__(self, argv, log_path=None, env=None):
        """Starts argv. The log goes to log_path, or to a temporary file that
        close() removes."""
        self.argv = argv
        self._own_log = log_path is None
        if self._own_log:
            fd, log_path = tempfile.mkstemp(prefix="exporter-", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.startup = None

    @classmethod
    def start(cls, argv, timeout, log_path=None, env=None):
        """Starts argv and waits (at most `timeout` seconds) for the start-up
        line; closes what it started if that fails."""
        launched = cls(argv, log_path, env)
        try:
            launched.wait_for_startup(timeout)
        except BaseException:
            launched.close()
            raise
        return launched

    @property
    def port(self):
        return self.startup.port

    def output(self):
        """Everything the command wrote so far."""
        return _read(self.log_path)

    def wait_for_startup(self, timeout):
        """Waits for the start-up line; returns it (a StartupLine)."""
        self.startup = self.wait_for_line(parse_startup_line, timeout, "start-up line")
        return self.startup

    def wait_for_line(self, parse, timeout, what):
        """The first true parse(line) of a complete line of output; raises
        AssertionError if the command ends or `timeout` seconds pass first.
        `what` names the line in that error."""
        return wait_for_line(self.log_path, parse, timeout,
                             alive=lambda: self.process.poll() is None, what=what,
                             who=os.path.basename(self.argv[0]))

    def group_alive(self):
        """True while any process of the command's session is left."""
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, sig, timeout):
        """Sends `sig` to the whole session, as Ctrl-C (SIGINT) would, and
        returns the command's exit status; raises AssertionError if it still
        runs after `timeout` seconds."""
        if self.group_alive():
            os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.argv[0]} still runs {timeout} s after signal {sig}; "
                                 f"output:\n{self.output()}") from None

    def close(self, grace=15):
        """SIGTERM (the exporter detaches its probe), then SIGKILL to what is
        left of the session after `grace` seconds. Closing twice is fine."""
        try:
            if self.process.poll() is None:
                self.stop(signal.SIGTERM, grace)
        except AssertionError:
            pass
        finally:
            if self.group_alive():
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            # Orphans of the session take a moment to die and be reaped.
            deadline = time.monotonic() + 5
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(_POLL_INTERVAL)
            if self._own_log and os.path.exists(self.log_path):
                os.unlink(self.log_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    port = commands.add_parser("port", help="wait for the start-up line in LOG, print its port")
    port.add_argument("log")
    port.add_argument("--pid", type=int, help="fail at once if this process ends first")
    port.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args()
    alive = (lambda: pid_alive(args.pid)) if args.pid else (lambda: True)
    try:
        startup = wait_for_line(args.log, parse_startup_line, args.timeout, alive)
    except AssertionError as error:
        print(f"{sys.argv[0]}: {error}", file=sys.stderr)
        return 1
    print(startup.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
