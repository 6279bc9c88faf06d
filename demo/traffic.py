#!/usr/bin/env python3
"""Demo traffic: HTTP requests to the demo services from world-wide addresses,
and with --refused-port, knocks at a port where nothing listens.

Each client binds a source address from demo/world-addresses.txt before it
connects to 127.0.0.1 or ::1, so the services (and the exporter's kernel
probe) see a peer from that country. This only works where those addresses
are local: inside a private network namespace (demo/traffic.sh makes one) or
a container's own network namespace, after `--setup` put them on the loopback.
Nothing is ever sent off the machine.

Bounded: at most --rounds rounds and --duration seconds.
"""

import argparse
import ipaddress
import os
import random
import socket
import subprocess
import sys
import time

DEFAULT_ADDRESSES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "world-addresses.txt")
WORDS = ["ebpf", "kernel", "summit", "geoip", "prometheus", "grafana", "map",
         "probe", "socket", "hello"]


def ReadAddresses(path):
    """Returns [(address, expected_label)] from a world-addresses file."""
    entries = []
    with open(path) as f:
        for line in f:
            address, _, comment = line.partition("#")
            address = address.strip()
            if not address:
                continue
            ipaddress.ip_address(address)  # fail early on a typo
            label = comment.split()[0] if comment.split() else ""
            entries.append((address, label))
    return entries


def SetUpAddresses(entries):
    """Puts each address on lo of the current network namespace (NET_ADMIN).

    Returns the addresses that are usable: an IPv6 address fails to go on
    where IPv6 is disabled (e.g. a container without IPv6), and is skipped.
    """
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    usable = []
    for address, label in entries:
        if ":" in address:
            # nodad: without it the address stays tentative for ~2 s.
            cmd = ["ip", "-6", "addr", "add", address + "/128", "dev", "lo", "nodad"]
        else:
            cmd = ["ip", "-4", "addr", "add", address + "/32", "dev", "lo"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        # Already there (a second run): older iproute2 says "File exists",
        # newer "address already assigned".
        already = "File exists" in result.stderr or "already assigned" in result.stderr.lower()
        if result.returncode != 0 and not already:
            print("traffic: skipping %s: %s" % (address, result.stderr.strip()),
                  file=sys.stderr)
            continue
        usable.append((address, label))
    return usable


def ListeningPorts():
    """Local TCP ports in LISTEN state in this network namespace.

    Read from /proc rather than probed with a connection, which the exporter
    would count.
    """
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass  # no IPv6
    return ports


def WaitListening(ports, seconds):
    """Waits up to `seconds` for all `ports` to listen; returns whether they do."""
    deadline = time.monotonic() + seconds
    while not set(ports) <= ListeningPorts():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def Connect(source, port, timeout):
    """A TCP socket from `source` connected to `port` on this namespace's
    loopback (of the source's family)."""
    v6 = ":" in source
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("::1" if v6 else "127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def Request(source, port, timeout):
    """One connection from `source` to the demo service on `port`; returns the body."""
    path = "/" + random.choice(WORDS) if port == 8083 else "/"
    with Connect(source, port, timeout) as sock:
        sock.sendall(("GET %s HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
                      % path).encode())
        response = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("unexpected response: %r" % head[:40])
    return body.decode().strip()


def Knock(source, port, timeout):
    """One connection attempt from `source` at `port`, where nothing listens:
    the kernel answers the SYN with a reset, and the exporter counts a
    refused connection. Raises OSError if it is not refused."""
    try:
        Connect(source, port, timeout).close()
    except ConnectionRefusedError:
        return
    raise OSError("port %d accepted the connection: something listens there" % port)


def Main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addresses", default=DEFAULT_ADDRESSES,
                        help="world-addresses file (default: %(default)s)")
    parser.add_argument("--setup", action="store_true",
                        help="first put the addresses on lo of this network namespace")
    parser.add_argument("--ports", default="8081,8082,8083",
                        help="demo service ports (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds over all addresses (default: %(default)s)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between rounds (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="stop after this many seconds (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="per-connection timeout in seconds (default: %(default)s)")
    parser.add_argument("--wait-listening", type=float, default=10.0, metavar="SECONDS",
                        help="first wait this long for the services to listen "
                             "(default: %(default)s)")
    parser.add_argument("--refused-port", type=int, default=0, metavar="PORT",
                        help="also knock once per address and round at PORT, where nothing "
                             "may listen: refused connections (default: none)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the words")
    args = parser.parse_args()
    random.seed(args.seed)

    entries = ReadAddresses(args.addresses)
    if args.setup:
        entries = SetUpAddresses(entries)
    if not entries:
        print("traffic: no usable source addresses", file=sys.stderr)
        return 1
    ports = [int(p) for p in args.ports.split(",") if p]
    if not WaitListening(ports, args.wait_listening):
        print("traffic: ports %s are not all listening" % args.ports, file=sys.stderr)
        return 1
    if args.refused_port and args.refused_port in ListeningPorts():
        print("traffic: --refused-port %d: something listens there" % args.refused_port,
              file=sys.stderr)
        return 1

    deadline = time.monotonic() + args.duration
    made = failed = refused = 0
    for round_index in range(args.rounds):
        for index, (address, label) in enumerate(entries):
            # A little variety for the map: 1 to 3 connections per address.
            for _ in range(1 + index % 3):
                for port in ports:
                    if time.monotonic() >= deadline:
                        break
                    try:
                        Request(address, port, args.timeout)
                        made += 1
                    except OSError as error:
                        failed += 1
                        print("traffic: %s -> port %d: %s" % (address, port, error),
                              file=sys.stderr)
            if args.refused_port and time.monotonic() < deadline:
                try:
                    Knock(address, args.refused_port, args.timeout)
                    refused += 1
                except OSError as error:
                    failed += 1
                    print("traffic: %s -> port %d: %s" % (address, args.refused_port, error),
                          file=sys.stderr)
        if time.monotonic() >= deadline or round_index + 1 == args.rounds:
            break
        time.sleep(min(args.interval, max(0.0, deadline - time.monotonic())))
    if args.refused_port:
        print("traffic: %d refused at port %d" % (refused, args.refused_port))
    print("traffic: %d connections from %d addresses, %d failed"
          % (made, len(entries), failed), flush=True)
    return 0 if failed == 0 and made > 0 else 1


if __name__ == "__main__":
    sys.exit(Main())
