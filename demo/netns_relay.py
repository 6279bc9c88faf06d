#!/usr/bin/env python3
"""Lets processes in a network namespace reach one TCP address outside it.

scripts/demo runs the demo services in a namespace with nothing but a
loopback (demo/traffic.sh makes it), and the exporter outside, on this
machine's loopback. For the word cloud, service 8083 must POST to the
exporter: this relay listens on --listen inside the namespace and forwards
each connection to --to outside, from --source, so the exporter can allow
exactly that source (--web.words-from) and nothing else.

The listening socket is made inside the namespace (setns) and everything
else outside; no interface, route or address is added to either side.
Needs root (CAP_SYS_ADMIN for setns). Waits up to --wait seconds for the
namespace to exist, since traffic.sh creates it after this starts.

  netns_relay.py --netns NAME --listen 127.0.0.1:19100 --to 127.0.0.1:19100 \\
      --source 127.0.0.83
"""

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading
import time

CLONE_NEWNET = 0x40000000


def SetNetworkNamespace(fd):
    """setns(2) for the calling thread; Python 3.11 has no os.setns."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "setns: " + os.strerror(error))


def SplitAddress(text):
    """"127.0.0.1:19100" or "[::1]:19100" -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("expected HOST:PORT, got %r" % text)
    return host.strip("[]"), int(port)


def ListenInside(netns, address, wait):
    """A socket listening on `address` inside namespace `netns`, made once
    the namespace exists (within `wait` seconds)."""
    path = netns if "/" in netns else os.path.join("/run/netns", netns)
    host, port = SplitAddress(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + wait
    outside = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        while True:
            try:
                inside = os.open(path, os.O_RDONLY)
                try:
                    # Fails while `ip netns add` has made the file but not yet
                    # mounted the namespace on it.
                    SetNetworkNamespace(inside)
                finally:
                    os.close(inside)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        try:
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(64)
        finally:
            SetNetworkNamespace(outside)
    finally:
        os.close(outside)
    return listener


def Pump(source, sink):
    """Copies source to sink until end of file, then half-closes sink."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def Forward(client, target, source, timeout):
    try:
        upstream = socket.create_connection(target, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    except OSError as error:
        print("netns_relay: connecting to %s:%d failed: %s" % (target[0], target[1], error),
              file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=Pump, args=(upstream, client), daemon=True)
    back.start()
    Pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def Main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--netns", required=True,
                        help="namespace name (in /run/netns) or path of its file")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT",
                        help="where to listen inside the namespace")
    parser.add_argument("--to", required=True, metavar="HOST:PORT",
                        help="where to forward to, outside")
    parser.add_argument("--source", default="", metavar="ADDRESS",
                        help="local address to connect from (default: the kernel's choice)")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the namespace (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="connect timeout (default: %(default)s)")
    args = parser.parse_args()
    try:
        target = SplitAddress(args.to)
        listener = ListenInside(args.netns, args.listen, args.wait)
    except (OSError, ValueError) as error:
        print("netns_relay: %s" % error, file=sys.stderr)
        return 1
    print("netns_relay: %s in namespace %s -> %s%s" % (
        args.listen, args.netns, args.to, " from " + args.source if args.source else ""),
        flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=Forward, args=(client, target, args.source, args.timeout),
                             daemon=True).start()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(Main())
