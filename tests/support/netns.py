"""A private network namespace for tests, the Python twin of
tests/support/netns.h. Public addresses put on its loopback let clients
inside look like they come from anywhere, while nothing can leave: the
namespace has no other interface. Needs root.

Names follow netns.cc's, "geoip-test-<pid>-<n>", so that either side
deletes the namespaces the other leaked when it died.
"""
import os
import re
import signal
import subprocess

PREFIX = "geoip-test-"
# Bound on each `ip` command; they normally take milliseconds.
_IP_TIMEOUT = 10
_counter = 0


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT,
                          check=True)


def _delete(name):
    """Kills whatever runs in the namespace, then removes its name. Best
    effort: a namespace already gone is no error."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                          timeout=_IP_TIMEOUT).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=_IP_TIMEOUT)


def delete_stale_namespaces():
    """Deletes the namespaces of test processes that died before they could."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return
    for name in names:
        match = re.fullmatch(re.escape(PREFIX) + r"(\d+)-\d+", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            _delete(name)


class TestNamespace:
    """Owns a named network namespace with lo up. close(), or the end of a
    `with` block, kills every process still inside and deletes it."""

    def __init__(self):
        """Creates the namespace and brings lo up, after deleting the ones
        that dead test processes leaked."""
        global _counter
        delete_stale_namespaces()
        self.name = f"{PREFIX}{os.getpid()}-{_counter}"
        _counter += 1
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_address(self, address):
        """Puts address on lo: IPv4 as /32, IPv6 as /128 with nodad, so it is
        usable at once instead of staying tentative for about 2 s."""
        if ":" in address:
            _ip("-n", self.name, "addr", "add", f"{address}/128", "dev", "lo", "nodad")
        else:
            _ip("-n", self.name, "addr", "add", f"{address}/32", "dev", "lo")

    def run(self, argv, timeout=60):
        """Runs argv inside and waits for it: a CompletedProcess with its
        stdout and stderr as text. Raises subprocess.TimeoutExpired after
        `timeout` seconds."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout)

    def start(self, argv, **popen_args):
        """Starts argv inside in the background (a subprocess.Popen); close()
        kills it if it still runs then. `ip netns exec` execs argv in place,
        so the pid is argv's own."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **popen_args)

    def pids(self):
        """Pids of every process inside."""
        return [int(pid) for pid in _ip("netns", "pids", self.name).stdout.split()]

    def close(self):
        if self.name:
            _delete(self.name)
            self.name = None
