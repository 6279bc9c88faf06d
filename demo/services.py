#!/usr/bin/env python3
"""The three demo services of the original eBPF Summit demo.

  8081  GET /        -> "Hello World!"
  8082  GET /        -> "eBPF Summit"
  8083  GET /<word>  -> "Submitted word: <word>"

They are ordinary HTTP servers that know nothing about the exporter: the
point of the demo is that the kernel probe sees who connects to them without
any change to the services. Run one process per port (as docker-compose does)
or several ports in one process (as scripts/demo does).

The one exception is the word cloud: given --words-url (or GEOIP_WORDS_URL),
8083 also POSTs each submitted word to that URL, the exporter's
/api/v1/words, from a background thread with a short timeout, so the answer
never waits for it nor fails with it. A post that fails prints one line (the
same failure again prints nothing until a post succeeds).
"""

import argparse
import functools
import http.server
import json
import os
import queue
import signal
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

WORDS_URL_ENV = "GEOIP_WORDS_URL"
# Seconds a post may take; the demo answer never waits for it anyway.
POST_TIMEOUT = 2.0
# Words waiting to be posted; more are dropped (the exporter is too slow).
POST_QUEUE = 1000


def HelloWorld(path):
    return "Hello World!"


def EbpfSummit(path):
    return "eBPF Summit"


def RequestedWord(path):
    """The word of GET /<word> as the bytes the client sent: percent-escapes
    decoded, other bytes as they came (http.server decodes the request line
    as ISO-8859-1, which keeps every byte)."""
    return urllib.parse.unquote_to_bytes(path.lstrip("/").split("?", 1)[0].encode("iso-8859-1"))


def SubmitWord(path, poster=None):
    word = RequestedWord(path)
    if not word:
        return None
    if poster:
        poster.Submit(word)
    return "Submitted word: %s" % word.decode("utf-8", "replace")


class WordPoster:
    """Posts words to the exporter's word cloud, one POST per word with the
    word as its body, from one background thread."""

    def __init__(self, url, timeout=POST_TIMEOUT):
        self.url = url
        self.timeout = timeout
        self.words = queue.Queue(maxsize=POST_QUEUE)
        self.lock = threading.Lock()
        self.last_failure = None
        threading.Thread(target=self.Run, daemon=True).start()

    def Submit(self, word):
        """Queues `word` (bytes, posted as they are); never blocks."""
        try:
            self.words.put_nowait(word)
        except queue.Full:
            self.Failed("more than %d words waiting, dropping them" % POST_QUEUE)

    def Run(self):
        while True:
            self.Post(self.words.get())

    def Post(self, word):
        request = urllib.request.Request(
            self.url, data=word, method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as error:
            self.Failed("HTTP %d %s" % (error.code, ErrorMessage(error)))
        except (OSError, ValueError) as error:  # URLError is an OSError
            self.Failed(str(getattr(error, "reason", error)))
        else:
            with self.lock:
                self.last_failure = None

    def Failed(self, why):
        """Prints one line, unless the last post failed the same way."""
        with self.lock:
            if why == self.last_failure:
                return
            self.last_failure = why
        print("demo service SubmitWord: posting a word to %s failed: %s" % (self.url, why),
              file=sys.stderr, flush=True)


def ErrorMessage(error):
    """The exporter's {"error": "..."} of an HTTPError, else its reason."""
    try:
        return json.loads(error.read().decode("utf-8"))["error"]
    except (OSError, ValueError, KeyError, TypeError):
        return str(error.reason)


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
    parser.add_argument("--words-url", default=os.environ.get(WORDS_URL_ENV, ""),
                        metavar="URL",
                        help="8083 also POSTs each word here, e.g. "
                             "http://exporter:19100/api/v1/words (default: $%s, "
                             "else off)" % WORDS_URL_ENV)
    args = parser.parse_args()
    if args.words_url and urllib.parse.urlsplit(args.words_url).scheme not in ("http", "https"):
        parser.error("--words-url must be an http:// or https:// URL, got %r" % args.words_url)

    poster = WordPoster(args.words_url) if args.words_url else None
    answers = dict(SERVICES)
    answers[8083] = functools.partial(SubmitWord, poster=poster)
    servers = [Listen(args.bind, port, MakeHandler(answers[port]))
               for port in args.ports]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = server.server_address[:2]
        print("demo service %s listening on %s port %d"
              % (SERVICES[port].__name__, host, port), flush=True)
    if poster and 8083 in args.ports:
        print("demo service SubmitWord posting words to %s" % poster.url, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(Main())
