#!/usr/bin/env python3
"""The three demo services of the original eBPF Summit demo.

  8081  GET /        -> "Hello World!"
  8082  GET /        -> "eBPF Summit"
  8083  GET /<word>  -> "Submitted word: <word>"

They are ordinary HTTP servers that know nothing about the exporter: the
point of the demo is that the kernel probe sees who connects to them without
any change to the services. Run one process per port (as docker-compose does)
or several ports in one process (as scripts/demo does).
"""

import argparse
import http.server
import signal
import socket
import sys
import threading
import urllib.parse


def HelloWorld(path):
    return "Hello World!"


def EbpfSummit(path):
    return "eBPF Summit"


def SubmitWord(path):
    word = urllib.parse.unquote(path.lstrip("/").split("?", 1)[0])
    if not word:
        return None
    return "Submitted word: %s" % word


# Port -> behaviour, as in the original demo.
SERVICES = {8081: HelloWorld, 8082: EbpfSummit, 8083: SubmitWord}


def MakeHandler(answer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = answer(self.path)
            status = 200
            if body is None:
                status, body = 400, "Usage: GET /<word>"
            data = (body + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass  # the traffic generator makes thousands of requests

    return Handler


class DualStackServer(http.server.ThreadingHTTPServer):
    """Listens on [::] for IPv6 and IPv4 (as ::ffff:a.b.c.d) alike."""

    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Ipv4Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def Listen(bind, port, handler):
    """Binds `bind`:`port`; an empty bind means dual-stack, else IPv4 any."""
    if bind:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        cls = DualStackServer if family == socket.AF_INET6 else Ipv4Server
        return cls((bind, port), handler)
    try:
        return DualStackServer(("::", port), handler)
    except OSError:
        # IPv6 disabled (e.g. a container without IPv6): IPv4 only.
        return Ipv4Server(("0.0.0.0", port), handler)


def Main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ports", nargs="+", type=int, choices=sorted(SERVICES),
                        help="ports to serve; each port has its own behaviour")
    parser.add_argument("--bind", default="",
                        help="address to listen on (default: [::] dual-stack, "
                             "or 0.0.0.0 where IPv6 is off)")
    args = parser.parse_args()

    servers = [Listen(args.bind, port, MakeHandler(SERVICES[port]))
               for port in args.ports]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        print("demo service %s listening on %s port %d"
              % (SERVICES[port].__name__, host, port), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(Main())
