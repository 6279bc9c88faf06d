#!/usr/bin/env python3
"""Browser tests of the live map (issue 5), in headless Debian chromium.

ProbeLiveMapTest (root): a real exporter with the real probe; clients in a
private network namespace connect from world addresses; the page must show
bubbles for exactly those countries with the right counts, update them
without a reload, filter them by port and by the service that accepted
them, and reconnect by itself after the exporter restarts. Its layers
(issue 14): known transfers and refused attempts from world addresses must
give exact bytes and failures per country in the traffic and refused/failed
layers, with the port filter, from the same stream, and the address bar
must reproduce the layer. The filled view (issue 15) of each layer must
carry the same exact counts. It takes README's pictures: a laptop and a
phone, bubbles and filled.

SimulatedLiveMapTest (no probe): --connections.source=simulated; addresses POSTed to
the API must give exact API numbers and bubbles, and bad bodies change
nothing. Posted connections have no listener, so their service is "unknown".
The filled view shows exact counts with its legend and keeps to the
address; the layout fills laptops and phones (measured) with the whole
world inside the map. The word cloud shows posted words, hostile ones
included, as text only: nothing they contain runs or becomes markup. The
top peers panel lists the exact /24 and /48 prefixes in order, with the
sketch's error bound when it has one. A country's detail (click, or Enter
on the focused bubble or shape) shows its counts and its top networks as
the ASN database gives them (looked up with mmdblookup here), and the page
credits DB-IP as its licence asks.

Run by ctest (tests/CMakeLists.txt); by hand:
    sudo tests/browser/live_map_test.py --exporter build/exporter/ebpf_geoip_exporter \\
        --traffic build/tools/ebpf_geoip_traffic --database data/geo-whois-asn-country.mmdb \\
        --out-dir build/tests/browser [--docs-dir docs] [SimulatedLiveMapTest]

Screenshots go to --out-dir; --docs-dir also copies README's pictures there
(that is how docs/live-map.png, live-map-filled.png, live-map-phone.png and
live-map-phone-filled.png are made).
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from exporter_process import ExporterProcess  # noqa: E402  tests/support/exporter_process.py
from netns import TestNamespace  # noqa: E402  tests/support/netns.py
from webdriver import ARROW_RIGHT, ENTER, ESCAPE, Browser, wait_for  # noqa: E402

ARGS = None  # the command line, parsed in main()

# The bundled ASN database (asn-data, issue 15).
ASN_DATABASE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "data",
                            "ip-location-db-asn.mmdb")

# Bound on how long the page may take to show new connections: the issue
# asks for about 2 s; the exporter drains every 1 s (the default) and the
# stream adds 0.1 s. The extra second absorbs a loaded CI machine.
UPDATE_BOUND = 3.0

class Exporter:
    """The exporter binary under test, on a loopback port; stopped on close."""

    def __init__(self, name, extra_args, port=0):
        self.log_path = os.path.join(ARGS.out_dir, f"{name}.log")
        self._process = ExporterProcess.start(
            [ARGS.exporter, f"--web.listen-address=127.0.0.1:{port}",
             f"--geoip.database={ARGS.database}"] + extra_args,
            timeout=30, log_path=self.log_path)
        self.port = self._process.port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self._process.close()  # SIGTERM first: detaches the probe cleanly

    def get(self, path):
        """(status, body) of GET path."""
        return request(f"{self.url}{path}")

    def post(self, path, body):
        return request(f"{self.url}{path}", body.encode())


def request(url, data=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Stream:
    """A client of /api/v1/stream that holds its connection open; first_line
    is the first line the server sent."""

    def __init__(self, port):
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._connection.request("GET", "/api/v1/stream")
        self._response = self._connection.getresponse()
        self.first_line = self._response.fp.readline().decode().strip()

    def close(self):
        self._response.close()
        self._connection.close()


# Reads the page's bubbles: {alpha-2: data-count}.
BUBBLES_SCRIPT = """
const bubbles = {};
for (const e of document.querySelectorAll('#bubbles [data-country]')) {
  bubbles[e.getAttribute('data-country')] = Number(e.getAttribute('data-count'));
}
return bubbles;
"""


# Reads the page's bubbles with their layer: {alpha-2: [data-count, data-layer]}.
LAYER_BUBBLES_SCRIPT = """
const bubbles = {};
for (const e of document.querySelectorAll('#bubbles [data-country]')) {
  bubbles[e.getAttribute('data-country')] =
      [Number(e.getAttribute('data-count')), e.getAttribute('data-layer')];
}
return bubbles;
"""

# The layer control: [[value, its label's text, checked]], and its legend.
LAYER_CONTROL_SCRIPT = """
return [document.querySelector('.layers legend').textContent,
        [...document.querySelectorAll('input[name="layer"]')].map(
            (input) => [input.value, input.labels[0].textContent, input.checked])];
"""

# The view control (bubbles or filled countries): [its legend, [[value,
# its label's text, checked]]].
VIEW_CONTROL_SCRIPT = """
return [document.querySelector('.views legend').textContent,
        [...document.querySelectorAll('input[name="view"]')].map(
            (input) => [input.value, input.labels[0].textContent, input.checked])];
"""

# The filled view's countries, {alpha-2: [data-count, data-layer]}: the
# countries' shapes and the dots of countries too small for the map's shapes.
FILLED_SCRIPT = """
const filled = {};
for (const e of document.querySelectorAll('#land [data-count], #islands [data-count]')) {
  filled[e.getAttribute('data-country')] =
      [Number(e.getAttribute('data-count')), e.getAttribute('data-layer')];
}
return filled;
"""

# The country shapes by class: [with a count ("filled"), "zero", neither,
# all with data-country].
SHAPE_CLASSES_SCRIPT = """
const shapes = [...document.querySelectorAll('#land path[data-country]')];
return [shapes.filter((e) => e.classList.contains('filled')).length,
        shapes.filter((e) => e.classList.contains('zero')).length,
        shapes.filter((e) => !e.classList.contains('filled') && !e.classList.contains('zero'))
            .length,
        shapes.length];
"""

# The colour legend: [visible, its title, [[swatch colour, label]]].
LEGEND_SCRIPT = """
const legend = document.getElementById('legend');
return [!legend.hidden && legend.getClientRects().length > 0 && legend.offsetWidth > 0,
        document.getElementById('legend-title').textContent,
        [...document.querySelectorAll('#legend-classes li')].map(
            (li) => [getComputedStyle(li.querySelector('.swatch')).backgroundColor,
                     li.textContent])];
"""

# The colour each filled country is drawn in: {alpha-2: 'rgb(r, g, b)'}.
FILLS_SCRIPT = """
const fills = {};
for (const e of document.querySelectorAll('#land [data-count], #islands [data-count]')) {
  fills[e.getAttribute('data-country')] = getComputedStyle(e).fill;
}
return fills;
"""

# Where the page's parts are, in CSS pixels from the top of the page: the
# viewport, its width without a scroll bar, the page's width and height, the map's box and the aspect ratio
# of its viewBox, main's box and padding, the side column's box (zero on
# phones, where it is not a box) and [id or class, box] of every panel
# shown and of the legend.
LAYOUT_SCRIPT = """
const box = (e) => {
  const r = e.getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY,
          width: r.width, height: r.height};
};
const map = document.getElementById('map');
const viewBox = map.viewBox.baseVal;
const main = document.querySelector('main');
const style = getComputedStyle(main);
return {
  viewport: [innerWidth, innerHeight],
  width: document.documentElement.clientWidth,
  page: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
  map: box(map), aspect: viewBox.width / viewBox.height,
  main: box(main), padding: [parseFloat(style.paddingLeft), parseFloat(style.paddingRight),
                             parseFloat(style.paddingBottom)],
  side: box(document.querySelector('aside')),
  boxes: [...document.querySelectorAll('main .panel, #legend')]
      .filter((e) => e.getClientRects().length > 0)
      .map((e) => [e.id || e.className, box(e)]),
};
"""

# The bottom and top of every country's shape and the viewBox's bottom, in
# the map's units (y grows southwards): [viewBox bottom, {alpha-2: [top,
# bottom]}], and the same bottoms on the screen: [map's bottom, {alpha-2:
# bottom}].
SOUTH_SCRIPT = """
const map = document.getElementById('map');
const viewBox = map.viewBox.baseVal;
const units = {}, screen = {};
for (const e of document.querySelectorAll('#land path[data-country]')) {
  const b = e.getBBox();
  units[e.getAttribute('data-country')] = [b.y, b.y + b.height];
  screen[e.getAttribute('data-country')] = e.getBoundingClientRect().bottom;
}
return [[viewBox.y + viewBox.height, units], [map.getBoundingClientRect().bottom, screen]];
"""

# From now on, records in window.__added every element added to the page:
# [tag name, the id of the nearest ancestor that has one].
RECORD_ADDED_SCRIPT = """
window.__added = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType === Node.ELEMENT_NODE) {
        window.__added.push([node.tagName, node.parentElement?.closest('[id]')?.id ?? null]);
      }
    }
  }
}).observe(document, {childList: true, subtree: true});
"""

# The word cloud: [panel shown, its note, [[text, data-count, font size in
# px, [attribute names], [node types of its children]]] of each child].
WORDS_SCRIPT = """
const panel = document.getElementById('words-panel');
return [!panel.hidden && panel.getClientRects().length > 0,
        document.getElementById('words-note').textContent,
        [...document.getElementById('words').childNodes].map((node) => [
            node.textContent, node.nodeType === Node.ELEMENT_NODE ? node.dataset.count : null,
            node.nodeType === Node.ELEMENT_NODE ? parseFloat(getComputedStyle(node).fontSize) : 0,
            node.nodeType === Node.ELEMENT_NODE ? [node.tagName, ...node.getAttributeNames()] : [],
            [...node.childNodes].map((child) => child.nodeType)])];
"""

# What a word could have smuggled in: [elements that run or load things,
# scripts, SVG roots, attributes anywhere whose value mentions __pwned].
SMUGGLED_SCRIPT = """
const attributes = [];
for (const element of document.querySelectorAll('*')) {
  for (const name of element.getAttributeNames()) {
    if (element.getAttribute(name).includes('__pwned')) attributes.push([element.tagName, name]);
  }
}
return [document.querySelectorAll('img, iframe, object, embed, video, audio, a[href^="javascript"]')
            .length,
        [...document.scripts].map((script) => script.getAttribute('src')),
        [...document.querySelectorAll('svg')].map((svg) => svg.id),
        attributes];
"""

# The top peers panel: [shown, its note, [[cell texts]] of each row].
PEERS_SCRIPT = """
const panel = document.getElementById('peers-panel');
return [!panel.hidden && panel.getClientRects().length > 0,
        document.getElementById('peers-note').textContent,
        [...document.querySelectorAll('#peers tbody tr')].map(
            (tr) => [...tr.cells].map((cell) => cell.textContent))];
"""

# A country's detail: [shown, title, [[term, value]] of its counts, the
# networks' heading, [[cell texts]] of the networks, the note under them].
DETAIL_SCRIPT = """
const detail = document.getElementById('detail');
return [!detail.hidden && detail.getClientRects().length > 0,
        document.getElementById('detail-title').textContent,
        [...document.querySelectorAll('#detail-counts div')].map(
            (div) => [div.querySelector('dt').textContent, div.querySelector('dd').textContent]),
        document.getElementById('networks-title').textContent,
        [...document.querySelectorAll('#networks tbody tr')].map(
            (tr) => [...tr.cells].map((cell) => cell.textContent)),
        document.getElementById('networks-note').textContent];
"""

# The footer's links: [[text, href, visible]].
FOOTER_LINKS_SCRIPT = """
return [...document.querySelectorAll('footer a')].map(
    (a) => [a.textContent, a.getAttribute('href'), a.getClientRects().length > 0]);
"""

# From now on, counts the streams the page opens in window.__streams.
COUNT_STREAMS_SCRIPT = """
window.__streams = 0;
const Original = window.EventSource;
window.EventSource = class extends Original {
  constructor(...args) { super(...args); window.__streams += 1; }
};
"""

# The top-countries table: its title, count column and [[cell texts]].
TOP_SCRIPT = """
return [document.getElementById('top-title').textContent,
        document.getElementById('top-count').textContent,
        [...document.querySelectorAll('#top tbody tr')].map(
            (tr) => [...tr.cells].map((cell) => cell.textContent))];
"""

# The service filter's options: [[value, text]].
SERVICE_OPTIONS_SCRIPT = """
return [...document.getElementById('service').options].map((o) => [o.value, o.text]);
"""

# The service of each entry of the recent-connections feed, newest first.
FEED_SERVICES_SCRIPT = """
return [...document.querySelectorAll('#feed li')].map((li) => li.dataset.service);
"""


def choose(browser, select_id, value):
    """Picks value in the <select> select_id, as a user would."""
    browser.execute("""
        const select = document.getElementById(arguments[0]);
        select.value = arguments[1];
        select.dispatchEvent(new Event('change'));""", select_id, value)


def listener_labels(exporter, port):
    """The labels of each ebpf_geoip_listener_info series of port."""
    status, text = exporter.get("/metrics")
    assert status == 200, text
    found = []
    for line in text.splitlines():
        if line.startswith("ebpf_geoip_listener_info{"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line))
            if labels["port"] == str(port):
                found.append(labels)
    return found


def listener_service(exporter, port, process):
    """The service the exporter named the one listener on port, which must be
    `process`: the process's own name unless it runs in a container or a
    systemd service (README, "Which service")."""
    (labels,) = listener_labels(exporter, port)
    assert labels["process"] == process, labels
    if not labels["container_id"] and not labels["unit"]:
        assert labels["service"] == process, labels
    return labels["service"]


def wait_for_bubbles(browser, expected, timeout):
    """Waits until the page shows exactly expected; returns seconds taken."""
    start = time.monotonic()
    try:
        wait_for(f"bubbles {expected}",
                 lambda: browser.execute(BUBBLES_SCRIPT) == expected, timeout, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"page shows {browser.execute(BUBBLES_SCRIPT)}, "
                             f"expected {expected} within {timeout}s") from None
    return time.monotonic() - start


def wait_for_layer(browser, layer, expected, timeout):
    """Waits until the page shows exactly expected ({alpha-2: data-count}),
    every bubble drawn for layer; returns seconds taken."""
    want = {country: [count, layer] for country, count in expected.items()}
    start = time.monotonic()
    try:
        wait_for(f"{layer} bubbles {expected}",
                 lambda: browser.execute(LAYER_BUBBLES_SCRIPT) == want, timeout, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"page shows {browser.execute(LAYER_BUBBLES_SCRIPT)}, "
                             f"expected {want} within {timeout}s") from None
    return time.monotonic() - start


def choose_layer(browser, layer):
    """Clicks the layer's button, as a user would."""
    browser.click(browser.find(f'input[name="layer"][value="{layer}"] + span'))


def network_of(address):
    """["AS<number>", organisation] that the bundled ASN database gives
    address, looked up with mmdblookup; None when it has no AS for it."""
    found = []
    for field, pattern in [("autonomous_system_number", r"^\s*(\d+) <uint32>"),
                           ("autonomous_system_organization", r'^\s*"(.*)" <utf8_string>')]:
        result = subprocess.run(["mmdblookup", "--file", ASN_DATABASE, "--ip", address, field],
                                capture_output=True, text=True, check=False)
        match = re.search(pattern, result.stdout, re.MULTILINE)
        if not match:
            return None
        found.append(match.group(1))
    return [f"AS{found[0]}", found[1]]


def take_picture(browser, name):
    """Saves a screenshot as name in --out-dir and, with --docs-dir, there
    too (README's pictures)."""
    shot = browser.screenshot(os.path.join(ARGS.out_dir, name))
    if ARGS.docs_dir:
        shutil.copyfile(shot, os.path.join(ARGS.docs_dir, name))


def choose_view(browser, view):
    """Clicks the view's button (bubbles or filled), as a user would."""
    browser.click(browser.find(f'input[name="view"][value="{view}"] + span'))


def view_control(checked):
    """What VIEW_CONTROL_SCRIPT returns with the view `checked` chosen."""
    return ["View", [[value, text, value == checked] for value, text in [
        ("bubbles", "Bubbles"), ("filled", "Filled countries")]]]


def wait_for_filled(browser, layer, expected, timeout):
    """Waits until the filled view shows exactly expected ({alpha-2:
    data-count}), every country filled for layer, and no bubble; returns
    seconds taken."""
    want = {country: [count, layer] for country, count in expected.items()}
    start = time.monotonic()

    def shown():
        return browser.execute(FILLED_SCRIPT), browser.execute(BUBBLES_SCRIPT)
    try:
        wait_for(f"{layer} filled countries {expected}",
                 lambda: shown() == (want, {}), timeout, interval=0.05)
    except TimeoutError:
        raise AssertionError(f"page shows (filled, bubbles) {shown()}, "
                             f"expected {want} within {timeout}s") from None
    return time.monotonic() - start


def layer_control(checked):
    """What LAYER_CONTROL_SCRIPT returns with the layer `checked` chosen."""
    return ["Layer", [[value, text, value == checked] for value, text in [
        ("accepted", "Accepted"), ("traffic", "Traffic"), ("failed", "Refused / failed")]]]


# A point of the viewport where the element arguments[0] (a CSS selector)
# is the one under the mouse, nearest the middle of its box: [x, y]. The
# middle of a country's box may be sea (or, for a country across the 180th
# meridian, another continent).
POINT_ON_SCRIPT = """
const element = document.querySelector(arguments[0]);
const box = element.getBoundingClientRect();
const [cx, cy] = [box.left + box.width / 2, box.top + box.height / 2];
const points = [];
for (let x = Math.ceil(box.left); x < box.right; x += 2) {
  for (let y = Math.ceil(box.top); y < box.bottom; y += 2) points.push([x, y]);
}
points.sort((a, b) => Math.hypot(a[0] - cx, a[1] - cy) - Math.hypot(b[0] - cx, b[1] - cy));
return points.find(([x, y]) => document.elementFromPoint(x, y) === element) ?? null;
"""


def tooltip_of(browser, country, where="#bubbles"):
    """Hovers country's bubble (or, where="#land", its filled shape); its
    tooltip's text."""
    selector = f'{where} [data-country="{country}"]'
    if where == "#bubbles":
        browser.hover(browser.find(selector))
    else:
        point = browser.execute(POINT_ON_SCRIPT, selector)
        assert point, f"no point of {selector} is under the mouse anywhere"
        browser.hover_at(*point)
    wait_for("the tooltip", lambda: browser.execute(
        "return !document.getElementById('tooltip').hidden"), timeout=5)
    return browser.execute("return document.getElementById('tooltip').innerText")


def traffic_connect(namespace, ports, connects, tool=None):
    """Listens on [::]:each port inside namespace (dual-stack, so IPv4
    clients arrive as ::ffff:a.b.c.d) and makes the connections
    [(source, port, count)]; fails unless every one was accepted. The
    listener is `tool`, the traffic tool by default or a copy of it under
    another name (another process name: another service)."""
    spec = ",".join(
        f"{source}>{'[::1]' if ':' in source else '127.0.0.1'}:{port}*{count}"
        for source, port, count in connects)
    result = namespace.run([tool or ARGS.traffic,
                            "--listen=" + ",".join(f"[::]:{p}" for p in ports),
                            f"--connect={spec}", "--timeout=20"])
    total = sum(count for _, _, count in connects)
    if result.returncode != 0 or f"made={total} accepted={total}" not in result.stdout:
        raise AssertionError(f"traffic failed ({result.returncode}): {result.stdout} "
                             f"{result.stderr}")


class ProbeLiveMapTest(unittest.TestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: loads the eBPF probe and creates network namespaces")
        self.cleanups = []

    def tearDown(self):
        for cleanup in reversed(getattr(self, "cleanups", [])):
            cleanup()

    def own(self, thing):
        self.cleanups.append(thing.close)
        return thing

    def test_bubbles_follow_real_connections_live(self):
        # Ports of our own, so that connections other tests make elsewhere on
        # the host (the probe sees them all) are not counted here.
        first = random.randrange(20000, 29990)
        ports = [first, first + 1]
        # No pinning: a pinned probe would outlive the test, and the next
        # exporter would drain counts an earlier one left in the kernel.
        # Networks and the word cloud too, for README's pictures.
        flags = [f"--bpf.ports={ports[0]},{ports[1]}", "--bpf.pin-path=",
                 f"--geoip.asn-database={ASN_DATABASE}", "--web.words-from=127.0.0.0/8,::1/128"]
        exporter = self.own(Exporter("exporter-probe", flags))
        namespace = self.own(TestNamespace())
        addresses = {
            "GB": "81.2.69.142", "DE": "2a01:4f8::1", "JP": "133.11.0.1", "BR": "200.160.2.3",
            "US4": "8.8.8.8", "US6": "2001:4860:4860::8888", "private": "10.1.2.3",
            "ES": "138.100.31.225", "FR": "193.51.24.1", "AU": "139.130.4.5",
            "IN": "164.100.1.1", "ZA": "196.25.1.1", "SE": "130.237.1.1", "CH": "131.152.1.1",
        }
        for address in addresses.values():
            namespace.add_address(address)
        a = addresses
        p, q = ports

        browser = self.own(Browser(os.path.join(ARGS.out_dir, "chromedriver-probe.log")))
        browser.get(exporter.url + "/")
        self.assertEqual(browser.execute("return document.querySelector('nav a').textContent"),
                         "Metrics")
        self.assertEqual(
            browser.execute("return document.querySelector('nav a').getAttribute('href')"),
            "/metrics")
        wait_for("the map", lambda: browser.execute(
            "return document.querySelectorAll('#land path.country').length") > 150, timeout=20)
        wait_for("the stream", lambda: browser.execute(
            "return document.getElementById('status').textContent") == "live", timeout=20)
        self.assertEqual(browser.execute(BUBBLES_SCRIPT), {})
        # Proves below that updates arrive without a reload.
        browser.execute("window.__sameDocument = 'yes'")

        # Round 1: five countries, one of them over IPv4 and IPv6, and a
        # private address, which has no place on the map.
        traffic_connect(namespace, ports, [
            (a["GB"], p, 2), (a["DE"], q, 1), (a["JP"], p, 3), (a["BR"], q, 1),
            (a["US4"], p, 1), (a["US6"], q, 1), (a["private"], p, 1)])
        took = wait_for_bubbles(browser, {"GB": 2, "DE": 1, "JP": 3, "BR": 1, "US": 2},
                                UPDATE_BOUND)
        print(f"round 1 on the page after {took:.2f}s", file=sys.stderr)
        status, body = exporter.get("/api/v1/countries")
        self.assertEqual(status, 200)
        self.assertEqual(
            [(c["id"], c["connections"], c["unique_addresses"], c["percent"])
             for c in json.loads(body)],
            [("JP", 3, 1, 30.0), ("GB", 2, 1, 20.0), ("US", 2, 2, 20.0), ("BR", 1, 1, 10.0),
             ("DE", 1, 1, 10.0), ("private", 1, 1, 10.0)])
        # The traffic tool listened: its connections are its service's (the
        # kernel keeps 15 bytes of a process name).
        first = listener_service(exporter, p, os.path.basename(ARGS.traffic)[:15])

        # Round 2: counts rise, new countries arrive, same document. A copy
        # of the traffic tool under another name listens this time, on the
        # same ports in the same namespace: a second service.
        second_tool = os.path.join(ARGS.out_dir, "geoip-map-two")
        shutil.copy(ARGS.traffic, second_tool)
        self.cleanups.append(lambda: os.remove(second_tool))
        traffic_connect(namespace, ports, [
            (a["GB"], p, 3), (a["JP"], q, 1), (a["ES"], p, 2), (a["FR"], q, 2),
            (a["AU"], p, 1), (a["IN"], q, 2), (a["ZA"], p, 1), (a["SE"], q, 1),
            (a["US4"], q, 4)], tool=second_tool)
        expected = {"GB": 5, "DE": 1, "JP": 4, "BR": 1, "US": 6, "ES": 2, "FR": 2, "AU": 1,
                    "IN": 2, "ZA": 1, "SE": 1}
        took = wait_for_bubbles(browser, expected, UPDATE_BOUND)
        print(f"round 2 on the page after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")
        self.assertEqual(browser.execute(
            "return document.getElementById('total-connections').textContent"), "27")
        self.assertEqual(browser.execute(
            "return document.getElementById('total-countries').textContent"), "11")
        # Hovering a bubble tells its country, connections, addresses, share.
        # (Japan: no neighbour's bubble overlaps it.)
        browser.hover(browser.find('#bubbles [data-country="JP"]'))
        wait_for("the tooltip", lambda: browser.execute(
            "return !document.getElementById('tooltip').hidden"), timeout=5)
        self.assertEqual(
            browser.execute("return document.getElementById('tooltip').innerText"),
            "Japan\n4 connections\n1 unique address\n14.8% of all")
        # The feed shows /24 and /48 prefixes, never whole addresses.
        feed = browser.execute("return document.getElementById('feed').innerText")
        self.assertIn("8.8.8.0/24", feed)
        self.assertNotIn("8.8.8.8", feed)
        self.assertNotIn("81.2.69.142", feed)
        # ... and the service of each: round 2's newest, round 1's below.
        second = listener_service(exporter, p, "geoip-map-two")
        self.assertNotEqual(first, second)
        self.assertEqual(exporter.get("/api/v1/services"), (200, json.dumps(
            [{"service": second, "connections": 17}, {"service": first, "connections": 10}],
            separators=(",", ":")) + "\n"))
        services = browser.execute(FEED_SERVICES_SCRIPT)
        self.assertEqual(services[0], second, services)
        self.assertEqual(set(services), {first, second})
        self.assertIn(second, feed)
        wait_for("the service choices", lambda: browser.execute(SERVICE_OPTIONS_SCRIPT) == [
            ["", "all services"], [second, f"{second} (17)"], [first, f"{first} (10)"]],
            timeout=5)
        time.sleep(1.0)  # let the bubbles' pulse animation settle for the picture
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-1600.png"))
        # README's pictures: a laptop and a phone, bubbles and filled, with
        # a few words in the cloud and, filled on the laptop, the United
        # Kingdom's detail.
        for word, times in [("ebpf", 5), ("GeoIP", 3), ("hello", 2), ("bonjour", 2),
                            ("こんにちは", 1), ("map", 1)]:
            for _ in range(times):
                self.assertEqual(exporter.post("/api/v1/words", word)[0], 204)
        wait_for("the words", lambda: len(browser.execute(WORDS_SCRIPT)[2]) == 6, timeout=5)
        for width, height, phone, name in [(1440, 900, False, "live-map"),
                                           (390, 844, True, "live-map-phone")]:
            browser.set_viewport(width, height, phone=phone)
            choose_view(browser, "bubbles")
            wait_for_bubbles(browser, expected, UPDATE_BOUND)
            time.sleep(1.0)
            take_picture(browser, f"{name}.png")
            choose_view(browser, "filled")
            wait_for_filled(browser, "accepted", expected, UPDATE_BOUND)
            if not phone:
                browser.click_at(*browser.execute(POINT_ON_SCRIPT, '#land [data-country="GB"]'))
                wait_for("the British networks", lambda: browser.execute(DETAIL_SCRIPT)[4],
                         timeout=5)
                browser.hover_at(1, 1)
            time.sleep(1.0)
            take_picture(browser, f"{name}-filled.png")
            browser.press(ESCAPE)
        choose_view(browser, "bubbles")
        browser.clear_viewport()
        wait_for_bubbles(browser, expected, UPDATE_BOUND)
        self.assertFalse(browser.execute(DETAIL_SCRIPT)[0])
        self.assertEqual(browser.execute("return location.search"), "")

        # The port filter: only port q's connections.
        choose(browser, "port", str(q))
        on_q = {"DE": 1, "BR": 1, "US": 5, "JP": 1, "FR": 2, "IN": 2, "SE": 1}
        wait_for_bubbles(browser, on_q, UPDATE_BOUND)

        # The service filter, with the port's and alone: round 1's service
        # has round 1's connections only.
        choose(browser, "service", first)
        wait_for_bubbles(browser, {"DE": 1, "BR": 1, "US": 1}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"),
                         f"?port={q}&service={first}")
        choose(browser, "port", "")
        wait_for_bubbles(browser, {"GB": 2, "DE": 1, "JP": 3, "BR": 1, "US": 2}, UPDATE_BOUND)
        self.assertEqual(set(browser.execute(FEED_SERVICES_SCRIPT)), {first})
        self.assertEqual(browser.execute(
            "return document.getElementById('total-connections').textContent"), "10")
        choose(browser, "service", second)
        wait_for_bubbles(browser, {"GB": 3, "JP": 1, "ES": 2, "FR": 2, "AU": 1, "IN": 2, "ZA": 1,
                                   "SE": 1, "US": 4}, UPDATE_BOUND)
        choose(browser, "service", "")
        choose(browser, "port", str(q))
        wait_for_bubbles(browser, on_q, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), f"?port={q}")

        # On a phone: one column, nothing wider than the screen.
        browser.set_window_size(390, 844)
        wait_for("the phone layout", lambda: browser.execute(
            "return document.documentElement.scrollWidth <= window.innerWidth"), timeout=5)
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-phone-port.png"))
        browser.set_window_size(1600, 900)

        # Not simulated: the POST endpoint does not exist.
        status, body = exporter.post("/api/v1/connections", "8.8.8.8")
        self.assertEqual(status, 404, body)

        # The exporter restarts on the same port: the page reconnects by
        # itself and shows the new process's counts (port q still selected).
        exporter.close()
        wait_for("the page to notice", lambda: browser.execute(
            "return document.getElementById('status').textContent") != "live", timeout=10)
        exporter = self.own(Exporter("exporter-probe-restarted", flags, port=exporter.port))
        traffic_connect(namespace, ports, [(a["CH"], q, 2), (a["GB"], p, 1)])
        wait_for_bubbles(browser, {"CH": 2}, timeout=15)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")


    def test_layers_show_exact_traffic_and_failures(self):
        # Watched ports of our own: p and q listen on IPv4 only, so an IPv6
        # SYN to p is refused on a watched port; `unwatched` is not watched,
        # so its refusals count under port "other".
        p = random.randrange(30000, 39990)
        q, unwatched = p + 1, p + 7
        flags = [f"--bpf.ports={p},{q}", "--bpf.pin-path=", "--bpf.traffic"]
        exporter = self.own(Exporter("exporter-probe-layers", flags))
        namespace = self.own(TestNamespace())
        a = {"GB": "81.2.69.142", "US": "8.8.8.8", "JP": "133.11.0.1", "DE": "2a01:4f8::1",
             "BR": "200.160.2.3"}
        for address in a.values():
            namespace.add_address(address)

        browser = self.own(Browser(os.path.join(ARGS.out_dir, "chromedriver-layers.log")))
        browser.get(exporter.url + "/")
        wait_for("the map", lambda: browser.execute(
            "return document.querySelectorAll('#land path.country').length") > 150, timeout=20)
        wait_for("the stream", lambda: browser.execute(
            "return document.getElementById('status').textContent") == "live", timeout=20)
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("accepted"))
        browser.execute(COUNT_STREAMS_SCRIPT)

        # GB: two clients each send 1 MiB and receive 3 MiB on p; US: one
        # sends 300,000 bytes and receives 700,000 on q; JP connects to p
        # and moves nothing. DE knocks 3 times at p over IPv6, BR 4 times at
        # the unwatched port.
        mib = 1 << 20
        result = namespace.run([
            ARGS.traffic, f"--listen=127.0.0.1:{p},127.0.0.1:{q}",
            f"--transfer={a['GB']}>127.0.0.1:{p}*2/send={mib}/receive={3 * mib},"
            f"{a['US']}>127.0.0.1:{q}/send=300000/receive=700000,{a['JP']}>127.0.0.1:{p}",
            f"--refused={a['DE']}>[::1]:{p}*3,{a['BR']}>127.0.0.1:{unwatched}*4",
            "--timeout=20"])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("transfers made=4 ", result.stdout)
        self.assertIn("refused attempts=7 refused=7\n", result.stdout)

        gb_bytes, us_bytes = 2 * 4 * mib, 1000000
        wait_for_layer(browser, "accepted", {"GB": 2, "US": 1, "JP": 1}, timeout=10)

        # Bytes are counted at the latest when a connection closes (all
        # have), in the drain after.
        def countries():
            return {c["id"]: (c["connections"], c["received_bytes"], c["sent_bytes"])
                    for c in json.loads(exporter.get("/api/v1/countries")[1])}
        expected = {"GB": (2, 2 * mib, 6 * mib), "US": (1, 300000, 700000), "JP": (1, 0, 0)}
        try:
            wait_for("the bytes", lambda: countries() == expected, timeout=10)
        except TimeoutError:
            self.assertEqual(countries(), expected)
        # Failures count on every port: leave out those of the host's own
        # addresses (private), which other programs may cause meanwhile.
        ours = ("DE", "BR")

        def failures():
            return {f["id"]: (f["failed_connections"], f["reasons"])
                    for f in json.loads(exporter.get("/api/v1/failures")[1]) if f["id"] in ours}
        expected = {"DE": (3, {"refused": 3}), "BR": (4, {"refused": 4})}
        try:
            wait_for("the failures", lambda: failures() == expected, timeout=10)
        except TimeoutError:
            self.assertEqual(failures(), expected)

        # Traffic: bubbles sized by bytes received and sent, from the same
        # stream (no new one), remembered in the address.
        choose_layer(browser, "traffic")
        took = wait_for_layer(browser, "traffic", {"GB": gb_bytes, "US": us_bytes}, UPDATE_BOUND)
        print(f"traffic layer drawn after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return location.search"), "?layer=traffic")
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("traffic"))
        self.assertEqual(browser.execute(TOP_SCRIPT), [
            "Top countries by traffic", "Bytes",
            [["United Kingdom", "8 MiB", "89.3%"], ["United States", "977 KiB", "10.7%"]]])
        self.assertEqual(browser.execute("return document.getElementById('layer-note').innerText"),
                         "2.29 MiB received, 6.67 MiB sent")
        self.assertEqual(tooltip_of(browser, "GB"),
                         "United Kingdom\n2 MiB received\n6 MiB sent\n89.3% of all traffic")
        self.assertEqual(tooltip_of(browser, "US"),
                         "United States\n293 KiB received\n684 KiB sent\n10.7% of all traffic")
        time.sleep(1.0)  # let the bubbles' pulse animation settle for the picture
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-traffic.png"))

        # The same layer filled: the countries' shapes carry the same
        # counts, coloured on a log scale of bytes.
        choose_view(browser, "filled")
        wait_for_filled(browser, "traffic", {"GB": gb_bytes, "US": us_bytes}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?layer=traffic&view=filled")
        shown, title, items = browser.execute(LEGEND_SCRIPT)
        self.assertEqual((shown, title), (True, "Bytes received and sent, log scale"))
        self.assertEqual([label for _, label in items], [
            "0 B", "1 B–32 B", "32 B–1 KiB", "1 KiB–32 KiB", "32 KiB–1 MiB", "1 MiB–8 MiB"])
        self.assertEqual(browser.execute(FILLS_SCRIPT), {"GB": items[5][0], "US": items[4][0]})
        self.assertEqual(tooltip_of(browser, "US", "#land"),
                         "United States\n293 KiB received\n684 KiB sent\n10.7% of all traffic")
        time.sleep(1.0)
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-traffic-filled.png"))
        choose_view(browser, "bubbles")
        wait_for_layer(browser, "traffic", {"GB": gb_bytes, "US": us_bytes}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?layer=traffic")

        # Refused / failed, chosen from the keyboard: the arrow key moves
        # from the checked button to the next.
        browser.execute("document.querySelector('input[name=\"layer\"]:checked').focus()")
        browser.press(ARROW_RIGHT)
        took = wait_for_layer(browser, "failed", {"DE": 3, "BR": 4}, UPDATE_BOUND)
        print(f"failed layer drawn after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return location.search"), "?layer=failed")
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("failed"))
        title, column, rows = browser.execute(TOP_SCRIPT)
        self.assertEqual((title, column), ("Top countries by failed connections", "Failed"))
        self.assertEqual([row[:2] for row in rows if row[0] in ("Germany", "Brazil")],
                         [["Brazil", "4"], ["Germany", "3"]])
        tooltip = tooltip_of(browser, "BR")
        self.assertTrue(tooltip.startswith("Brazil\n4 failed connections\n4 refused\n"), tooltip)
        self.assertEqual(browser.execute("return window.__streams"), 0)
        time.sleep(1.0)
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-failed.png"))
        choose_view(browser, "filled")
        wait_for_filled(browser, "failed", {"DE": 3, "BR": 4}, UPDATE_BOUND)
        shown, title, items = browser.execute(LEGEND_SCRIPT)
        self.assertEqual((shown, title), (True, "Failed connections, log scale"))
        self.assertEqual([label for _, label in items], ["0", "1", "2–4"])
        self.assertEqual(browser.execute(FILLS_SCRIPT), {"DE": items[2][0], "BR": items[2][0]})
        self.assertEqual(browser.execute("return location.search"), "?layer=failed&view=filled")
        choose_view(browser, "bubbles")
        wait_for_layer(browser, "failed", {"DE": 3, "BR": 4}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return window.__streams"), 0)

        # The port filter applies to every layer: p has GB's and JP's
        # connections, GB's bytes and DE's refusals; q US's.
        choose(browser, "port", str(p))
        wait_for_layer(browser, "failed", {"DE": 3}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), f"?port={p}&layer=failed")
        self.assertEqual(browser.execute("return document.getElementById('layer-note').innerText"),
                         "3 failed connections, 3 refused")
        self.assertEqual(browser.execute("return window.__streams"), 1)  # the filter's
        choose_layer(browser, "traffic")
        wait_for_layer(browser, "traffic", {"GB": gb_bytes}, UPDATE_BOUND)
        choose_layer(browser, "accepted")
        wait_for_layer(browser, "accepted", {"GB": 2, "JP": 1}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), f"?port={p}")
        choose(browser, "port", str(q))
        wait_for_layer(browser, "accepted", {"US": 1}, UPDATE_BOUND)
        choose_layer(browser, "traffic")
        wait_for_layer(browser, "traffic", {"US": us_bytes}, UPDATE_BOUND)
        choose_layer(browser, "failed")
        wait_for_layer(browser, "failed", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return window.__streams"), 2)
        # A failed connection reached no service: the service filter leaves
        # the failures of the port, and says so.
        (service,) = [s["service"] for s in json.loads(exporter.get("/api/v1/services")[1])]
        choose(browser, "port", str(p))
        choose(browser, "service", service)
        wait_for("the service filter", lambda: browser.execute(
            "return document.getElementById('layer-note').innerText") ==
            "3 failed connections, 3 refused; the service filter does not apply to them",
            timeout=UPDATE_BOUND)
        wait_for_layer(browser, "failed", {"DE": 3}, UPDATE_BOUND)

        # The address reproduces the view: a fresh page from each link.
        browser.get(f"{exporter.url}/?port={p}&layer=failed")
        wait_for_layer(browser, "failed", {"DE": 3}, timeout=20)
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("failed"))
        self.assertEqual(browser.execute("return document.getElementById('port').value"), str(p))
        browser.get(f"{exporter.url}/?layer=traffic")
        wait_for_layer(browser, "traffic", {"GB": gb_bytes, "US": us_bytes}, timeout=20)
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("traffic"))
        # An unknown layer is the default one.
        browser.get(f"{exporter.url}/?layer=nonsense")
        wait_for_layer(browser, "accepted", {"GB": 2, "US": 1, "JP": 1}, timeout=20)
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("accepted"))


class SimulatedLiveMapTest(unittest.TestCase):

    def test_posted_addresses_reach_api_and_page_exactly(self):
        # 16 server threads: 8 of them may stream.
        exporter = Exporter("exporter-simulated",
                            ["--connections.source=simulated", "--web.max-connections=16"])
        self.addCleanup(exporter.close)
        status, metrics = exporter.get("/metrics")
        self.assertIn('ebpf_geoip_probe_info{mode="simulated"} 1', metrics)

        posts = ['{"address":"81.2.69.142","port":8081}', "81.2.69.142",
                 '{"address":"2a01:4f8::1","port":8082}', '{"address":"8.8.8.8","port":8082}',
                 '{"address":"9.9.9.9","port":8082}', "10.1.2.3"]
        replies = [exporter.post("/api/v1/connections", body) for body in posts]
        self.assertEqual(replies, [
            (200, '{"id":"GB","name":"United Kingdom","port":8081}\n'),
            (200, '{"id":"GB","name":"United Kingdom","port":8081}\n'),
            (200, '{"id":"DE","name":"Germany","port":8082}\n'),
            (200, '{"id":"US","name":"United States","port":8082}\n'),
            (200, '{"id":"US","name":"United States","port":8082}\n'),
            (200, '{"id":"private","name":"Private network","port":8081}\n')])
        # Bad bodies: 400, a message, and nothing recorded.
        for body, error in [
                ("", "empty body"), ("not-an-address", "is not an IPv4 or IPv6 address"),
                ('{"address":"8.8.8.8","port":0}', '"port" must be from 1 to 65535'),
                ('{"address":"8.8.8.8","extra":1}', 'unknown field "extra"')]:
            status, reply = exporter.post("/api/v1/connections", body)
            self.assertEqual(status, 400, body)
            self.assertIn(error, json.loads(reply)["error"], body)
        status, reply = exporter.post("/api/v1/connections", "x" * 70000)
        self.assertEqual(status, 413)

        self.assertEqual(exporter.get("/api/v1/countries"), (200, (
            '[{"id":"GB","name":"United Kingdom","connections":2,"unique_addresses":1,'
            '"percent":33.3,"received_bytes":0,"sent_bytes":0,"closed_connections":0},'
            '{"id":"US","name":"United States","connections":2,"unique_addresses":2,'
            '"percent":33.3,"received_bytes":0,"sent_bytes":0,"closed_connections":0},'
            '{"id":"DE","name":"Germany","connections":1,"unique_addresses":1,"percent":16.7,'
            '"received_bytes":0,"sent_bytes":0,"closed_connections":0},'
            '{"id":"private","name":"Private network","connections":1,"unique_addresses":1,'
            '"percent":16.7,"received_bytes":0,"sent_bytes":0,"closed_connections":0}]\n')))
        self.assertEqual(exporter.get("/api/v1/countries?port=8082"), (200, (
            '[{"id":"US","name":"United States","connections":2,"unique_addresses":2,'
            '"percent":66.7,"received_bytes":0,"sent_bytes":0,"closed_connections":0},'
            '{"id":"DE","name":"Germany","connections":1,"unique_addresses":1,'
            '"percent":33.3,"received_bytes":0,"sent_bytes":0,"closed_connections":0}]\n')))
        self.assertEqual(exporter.get("/api/v1/countries?port=http"), (
            400, '{"error":"port must be a number from 1 to 65535, got \\"http\\""}\n'))
        self.assertEqual(exporter.get("/api/v1/ports"), (
            200, '[{"port":8081,"connections":3},{"port":8082,"connections":3}]\n'))
        # No listener behind a posted connection: every one is "unknown"'s.
        self.assertEqual(exporter.get("/api/v1/services"), (
            200, '[{"service":"unknown","connections":6}]\n'))
        self.assertEqual(exporter.get("/api/v1/countries?service=unknown&port=8082"),
                         exporter.get("/api/v1/countries?port=8082"))
        self.assertEqual(exporter.get("/api/v1/countries?service=nginx"), (200, "[]\n"))
        self.assertEqual(exporter.get("/api/v1/countries?service=" + "x" * 65), (
            400, '{"error":"service must be a name of 1 to 64 bytes, got 65 bytes"}\n'))

        # Fill every stream slot (8), as a large audience would: the next
        # stream is refused with a "busy" event.
        held = []
        self.addCleanup(lambda: [stream.close() for stream in held])
        for _ in range(8):
            held.append(Stream(exporter.port))
            self.assertTrue(held[-1].first_line.startswith("retry: 2000"), held[-1].first_line)
        refused = Stream(exporter.port)
        self.assertEqual(refused.first_line, "retry: 30000")
        refused.close()

        # So the page polls /api/v1/state instead, and still updates.
        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-simulated.log"))
        self.addCleanup(browser.close)
        browser.get(exporter.url + "/")
        wait_for_bubbles(browser, {"GB": 2, "US": 2, "DE": 1}, timeout=20)
        self.assertEqual(browser.execute("return document.getElementById('status').textContent"),
                         "live (polling)")
        self.assertEqual(browser.execute("return document.body.dataset.source"), "simulated")
        browser.execute("window.__sameDocument = 'yes'")
        self.assertEqual(exporter.post("/api/v1/connections", "138.100.31.225")[0], 200)
        took = wait_for_bubbles(browser, {"GB": 2, "US": 2, "DE": 1, "ES": 1}, UPDATE_BOUND)
        print(f"posted connection on the polling page after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")

        # Viewers leave. The exporter notices a vanished client when a write
        # fails: the first write after the close still succeeds (the peer
        # answers it with a reset), the second fails and frees the slot.
        for stream in held:
            stream.close()
        for _ in range(2):
            self.assertEqual(exporter.post("/api/v1/connections", "193.51.24.1")[0], 200)
            time.sleep(0.5)
        browser.get(exporter.url + "/")
        wait_for("the stream", lambda: browser.execute(
            "return document.getElementById('status').textContent") == "live", timeout=10)
        browser.execute("window.__sameDocument = 'yes'")
        self.assertEqual(exporter.post("/api/v1/connections", "138.100.31.225")[0], 200)
        took = wait_for_bubbles(browser, {"GB": 2, "US": 2, "DE": 1, "ES": 2, "FR": 2},
                                UPDATE_BOUND)
        print(f"posted connection on the streaming page after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-simulated.png"))

        # The service filter lists "unknown", the feed names it, and choosing
        # it keeps every connection.
        everything = {"GB": 2, "US": 2, "DE": 1, "ES": 2, "FR": 2}
        wait_for("the service choices", lambda: browser.execute(SERVICE_OPTIONS_SCRIPT) == [
            ["", "all services"], ["unknown", "unknown (10)"]], timeout=5)
        self.assertEqual(set(browser.execute(FEED_SERVICES_SCRIPT)), {"unknown"})
        choose(browser, "service", "unknown")
        wait_for("the filtered stream", lambda: browser.execute(
            "return location.search") == "?service=unknown", timeout=5)
        wait_for_bubbles(browser, everything, UPDATE_BOUND)
        # A service with no connections yet, from the address bar: nothing
        # on the map until it has some, and the filter shows the name.
        browser.get(exporter.url + "/?port=8082&service=not+yet")
        wait_for("the empty state", lambda: browser.execute(
            "return document.body.dataset.version !== undefined && "
            "document.getElementById('total-connections').textContent === '0' && "
            "document.getElementById('service').value"), timeout=10)
        self.assertEqual(browser.execute("return document.getElementById('service').value"),
                         "not yet")
        self.assertEqual(browser.execute("return document.getElementById('port').value"), "8082")
        self.assertEqual(browser.execute(BUBBLES_SCRIPT), {})
        self.assertEqual(browser.execute(FEED_SERVICES_SCRIPT), [])
        self.assertEqual(browser.execute(SERVICE_OPTIONS_SCRIPT), [
            ["", "all services"], ["unknown", "unknown (10)"], ["not yet", "not yet"]])
        choose(browser, "service", "")
        wait_for_bubbles(browser, {"US": 2, "DE": 1}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?port=8082")

        # Posted connections move no bytes and none failed: the other layers
        # are empty, and the accepted one comes back whole.
        browser.execute(COUNT_STREAMS_SCRIPT)
        choose_layer(browser, "traffic")
        wait_for_layer(browser, "traffic", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?port=8082&layer=traffic")
        self.assertEqual(browser.execute(TOP_SCRIPT), ["Top countries by traffic", "Bytes", []])
        self.assertEqual(browser.execute("return document.getElementById('layer-note').innerText"),
                         "0 B received, 0 B sent")
        choose_layer(browser, "failed")
        wait_for_layer(browser, "failed", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?port=8082&layer=failed")
        choose_layer(browser, "accepted")
        wait_for_layer(browser, "accepted", {"US": 2, "DE": 1}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?port=8082")
        self.assertEqual(browser.execute(TOP_SCRIPT), ["Top countries", "Conn.", [
            ["United States", "2", "66.7%"], ["Germany", "1", "33.3%"]]])
        self.assertEqual(browser.execute("return window.__streams"), 0)
        browser.get(exporter.url + "/?layer=traffic")
        wait_for("the state", lambda: browser.execute(
            "return document.body.dataset.version !== undefined"), timeout=10)
        self.assertEqual(browser.execute(LAYER_CONTROL_SCRIPT), layer_control("traffic"))
        wait_for_layer(browser, "traffic", {}, UPDATE_BOUND)


    def test_filled_countries_show_exact_counts(self):
        exporter = Exporter("exporter-filled", ["--connections.source=simulated"])
        self.addCleanup(exporter.close)
        # GB 3, US 12 (on two ports), DE 1, SG 2 (no shape at the map's
        # 1:110m scale: a dot), a private address (no place on the map).
        posts = (["81.2.69.142"] * 3 + ["8.8.8.8"] * 7 + ['{"address":"8.8.8.8","port":8082}'] * 5
                 + ["2a01:4f8::1", "165.21.1.1", "165.21.1.1", "10.1.2.3"])
        replies = {exporter.post("/api/v1/connections", body) for body in posts}
        self.assertEqual({(status, json.loads(body)["id"]) for status, body in replies},
                         {(200, "GB"), (200, "US"), (200, "DE"), (200, "SG"), (200, "private")})
        counts = {"GB": 3, "US": 12, "DE": 1, "SG": 2}

        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-filled.log"))
        self.addCleanup(browser.close)
        browser.get(exporter.url + "/")
        wait_for_bubbles(browser, counts, timeout=20)
        self.assertEqual(browser.execute(VIEW_CONTROL_SCRIPT), view_control("bubbles"))
        self.assertFalse(browser.execute(LEGEND_SCRIPT)[0])
        self.assertEqual(browser.execute(FILLED_SCRIPT), {})
        classes = browser.execute(SHAPE_CLASSES_SCRIPT)
        self.assertEqual(classes[:3], [0, 0, classes[3]])
        self.assertGreater(classes[3], 150)
        browser.execute(COUNT_STREAMS_SCRIPT)

        # From the keyboard: the arrow key moves from the checked view to
        # the next, the filled one, with no new stream.
        browser.execute("document.querySelector('input[name=\"view\"]:checked').focus()")
        browser.press(ARROW_RIGHT)
        took = wait_for_filled(browser, "accepted", counts, UPDATE_BOUND)
        print(f"filled view drawn after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return location.search"), "?view=filled")
        self.assertEqual(browser.execute(VIEW_CONTROL_SCRIPT), view_control("filled"))
        # Singapore's dot, the others' shapes; every other shape is "zero".
        self.assertEqual(browser.execute(
            "return [...document.querySelectorAll('#islands [data-count]')]"
            ".map((e) => e.getAttribute('data-country'))"), ["SG"])
        filled, zero, neither, shapes = browser.execute(SHAPE_CLASSES_SCRIPT)
        self.assertEqual((filled, zero, neither), (3, shapes - 3, 0))
        # The legend: a log scale from 1 to the largest count (12) in round
        # classes, and "0" for the countries with none; each country drawn
        # in its class's colour.
        shown, title, items = browser.execute(LEGEND_SCRIPT)
        self.assertTrue(shown)
        self.assertEqual(title, "Connections, log scale")
        self.assertEqual([label for _, label in items], ["0", "1", "2–4", "5–9", "10–12"])
        colours = [colour for colour, _ in items]
        self.assertEqual(len(set(colours)), 5, colours)
        self.assertEqual(browser.execute(FILLS_SCRIPT), {
            "DE": colours[1], "SG": colours[2], "GB": colours[2], "US": colours[4]})
        self.assertEqual(browser.execute(
            "return getComputedStyle(document.querySelector('#land path.zero')).fill"),
            colours[0])
        self.assertEqual(tooltip_of(browser, "DE", "#land"),
                         "Germany\n1 connection\n1 unique address\n5.3% of all")
        self.assertEqual(browser.execute("return window.__streams"), 0)

        # A new connection refills its country without a reload.
        browser.execute("window.__sameDocument = 'yes'")
        self.assertEqual(exporter.post("/api/v1/connections", "81.2.69.142")[0], 200)
        counts["GB"] = 4
        took = wait_for_filled(browser, "accepted", counts, UPDATE_BOUND)
        print(f"posted connection filled after {took:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")

        # Every layer has its filled view: posted connections move no bytes
        # and none failed, so nothing is filled there, and the legend says
        # what it measures.
        choose_layer(browser, "traffic")
        wait_for_filled(browser, "traffic", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?layer=traffic&view=filled")
        self.assertEqual(browser.execute(LEGEND_SCRIPT),
                         [True, "Bytes received and sent, log scale", [[colours[0], "0 B"]]])
        choose_layer(browser, "failed")
        wait_for_filled(browser, "failed", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute(LEGEND_SCRIPT)[1], "Failed connections, log scale")
        self.assertEqual(browser.execute(SHAPE_CLASSES_SCRIPT)[:3], [0, shapes, 0])
        choose_layer(browser, "accepted")
        wait_for_filled(browser, "accepted", counts, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?view=filled")

        # The address keeps the view: a reload, then a fresh page with a
        # port filter.
        browser.get(exporter.url + "/?view=filled")
        wait_for_filled(browser, "accepted", counts, timeout=20)
        self.assertEqual(browser.execute(VIEW_CONTROL_SCRIPT), view_control("filled"))
        self.assertTrue(browser.execute(LEGEND_SCRIPT)[0])
        browser.get(exporter.url + "/?port=8082&view=filled")
        wait_for_filled(browser, "accepted", {"US": 5}, timeout=20)
        items = browser.execute(LEGEND_SCRIPT)[2]
        self.assertEqual([label for _, label in items], ["0", "1", "2–4", "5"])
        self.assertEqual(browser.execute(FILLS_SCRIPT), {"US": items[-1][0]})
        self.assertEqual(items[-1][0], colours[4])  # the top of the scale
        # An unknown view is the default one.
        browser.get(exporter.url + "/?view=nonsense")
        wait_for_bubbles(browser, counts, timeout=20)
        self.assertEqual(browser.execute(VIEW_CONTROL_SCRIPT), view_control("bubbles"))

        # Back to bubbles with a click: nothing filled is left.
        browser.get(exporter.url + "/?layer=failed&view=filled")
        wait_for_filled(browser, "failed", {}, timeout=20)
        choose_view(browser, "bubbles")
        wait_for_layer(browser, "failed", {}, UPDATE_BOUND)
        self.assertEqual(browser.execute("return location.search"), "?layer=failed")
        self.assertEqual(browser.execute(SHAPE_CLASSES_SCRIPT)[:3], [0, 0, shapes])
        self.assertFalse(browser.execute(LEGEND_SCRIPT)[0])


    def test_layout_fills_laptops_and_phones(self):
        exporter = Exporter("exporter-layout", ["--connections.source=simulated"])
        self.addCleanup(exporter.close)
        # Countries at the map's edges: Chile and New Zealand in the far
        # south, Japan in the east, the United States in the west.
        posts = {"200.1.123.1": 3, "202.36.1.1": 2, "133.11.0.1": 4, "8.8.8.8": 9,
                 "81.2.69.142": 1}
        for address, times in posts.items():
            for _ in range(times):
                self.assertEqual(exporter.post("/api/v1/connections", address)[0], 200)
        counts = {"CL": 3, "NZ": 2, "JP": 4, "US": 9, "GB": 1}
        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-layout.log"))
        self.addCleanup(browser.close)

        # The whole world is inside the map: the cut is below every coast
        # but Antarctica's (-60°, deliberately: Antarctica is not drawn),
        # and the southernmost shapes (Tierra del Fuego in Chile and
        # Argentina, the Falklands, the French Southern Lands, New
        # Zealand's south) end above the map's bottom edge.
        browser.get(exporter.url + "/")
        wait_for_bubbles(browser, counts, timeout=20)
        (bottom, units), (screen_bottom, screen) = browser.execute(SOUTH_SCRIPT)
        self.assertNotIn("AQ", units)
        southernmost = sorted(units, key=lambda country: -units[country][1])[:5]
        self.assertEqual(set(southernmost), {"CL", "AR", "FK", "TF", "NZ"})
        for country in units:
            self.assertLessEqual(units[country][1], bottom, country)
            self.assertLessEqual(screen[country], screen_bottom + 0.5, country)
        # ... with a margin: Chile's tip (-55.6°) is not on the edge.
        self.assertLess(units["CL"][1], bottom - 2)

        for width, height, phone in [(1366, 768, False), (1440, 900, False), (390, 844, True)]:
            browser.set_viewport(width, height, phone=phone)
            for view in ["bubbles", "filled"]:
                where = f"{width}x{height} {view}"
                browser.get(f"{exporter.url}/?view={view}")
                if view == "bubbles":
                    wait_for_bubbles(browser, counts, timeout=20)
                else:
                    wait_for_filled(browser, "accepted", counts, timeout=20)
                layout = browser.execute(LAYOUT_SCRIPT)
                browser.screenshot(
                    os.path.join(ARGS.out_dir, f"layout-{width}x{height}-{view}.png"))
                self.assertEqual(layout["viewport"], [width, height], where)
                vw, vh = layout["width"], height
                page_width, page_height = layout["page"]
                self.assertLessEqual(page_width, vw, f"{where}: horizontal scroll")
                m = layout["map"]
                # The SVG is exactly as tall as the world at its width:
                # nothing letterboxed above or below it.
                self.assertAlmostEqual(m["width"] / m["height"], layout["aspect"], delta=0.01,
                                       msg=where)
                self.assertGreaterEqual(m["left"], 0, where)
                self.assertLessEqual(m["right"], vw, where)
                # The world is on the first screen, near its top.
                self.assertLess(m["top"], 0.2 * vh, where)
                self.assertLessEqual(m["bottom"], vh, where)
                # Right under the map, in its column, the next box: no band
                # of empty page (a gap of 0.75rem at most).
                under = [b for name, b in layout["boxes"]
                         if b["top"] >= m["bottom"] - 0.5 and b["left"] < m["right"]
                         and b["right"] > m["left"]]
                self.assertTrue(under, where)
                gap = min(b["top"] for b in under) - m["bottom"]
                self.assertLessEqual(gap, 20, f"{where}: {gap}px under the map")
                main = layout["main"]
                left, right, bottom = layout["padding"]
                if phone:
                    # One column: the map spans it.
                    self.assertGreaterEqual(m["width"], main["width"] - left - right - 1, where)
                else:
                    # Two columns: the map takes most of the width, the
                    # side column the rest; the map's column (map, then
                    # panels) goes down as far as the side column and to
                    # main's bottom, so nothing is left empty under it.
                    side = layout["side"]
                    self.assertGreaterEqual(m["width"], 0.6 * vw, where)
                    self.assertLessEqual(m["right"], side["left"], where)
                    lowest = max(b["bottom"] for b in under)
                    self.assertGreaterEqual(lowest, side["bottom"] - 1, where)
                    self.assertGreaterEqual(lowest, main["bottom"] - bottom - 1, where)
                    self.assertGreaterEqual(page_height, vh, where)


    def test_word_cloud_shows_hostile_words_as_text(self):
        # Without --web.words-from the cloud is off: no endpoint, no panel.
        exporter = Exporter("exporter-no-words", ["--connections.source=simulated"])
        self.addCleanup(exporter.close)
        self.assertEqual(exporter.post("/api/v1/words", "ebpf")[0], 404)
        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-words.log"))
        self.addCleanup(browser.close)
        browser.get(exporter.url + "/")
        wait_for("the state", lambda: browser.execute(
            "return document.body.dataset.version !== undefined"), timeout=20)
        self.assertEqual(browser.execute(WORDS_SCRIPT), [False, "", []])
        exporter.close()

        exporter = Exporter("exporter-words", ["--connections.source=simulated",
                                               "--web.words-from=127.0.0.0/8,::1/128"])
        self.addCleanup(exporter.close)
        browser.get(exporter.url + "/")
        wait_for("the empty cloud", lambda: browser.execute(WORDS_SCRIPT) == [
            True, "no words yet", []], timeout=20)
        browser.execute(RECORD_ADDED_SCRIPT)
        browser.execute("window.__sameDocument = 'yes'")

        # Words that would run if they were markup: those of at most 32
        # characters are counted (and must show as text), the longer ones
        # refused. A text-direction override, a control character and a
        # 200-character word are refused.
        hostile = ["<img src=x onerror=window.__pwned=1>", "<script>window.__pwned=1</script>",
                   "javascript:window.__pwned=1", '"><svg onload=window.__pwned=1>',
                   "<img src=x onerror=__pwned=1>", "<script>__pwned=1</script>"]
        refused = {"ebpf\u202emap": "text-direction control U+202E",
                   "ebpf\x07": "control character U+0007",
                   "w" * 200: "too long"}
        for word in hostile:
            status, body = exporter.post("/api/v1/words", word)
            if len(word) <= 32:
                self.assertEqual((status, body), (204, ""), word)
            else:
                self.assertEqual(status, 400, word)
                self.assertIn("too long", json.loads(body)["error"], word)
                refused[word] = "too long"
        for word, why in refused.items():
            status, body = exporter.post("/api/v1/words", word)
            self.assertEqual(status, 400, repr(word))
            self.assertIn(why, json.loads(body)["error"], repr(word))
        # Ordinary words: "ebpf" three times, "geoip" once; one hostile
        # word twice.
        for word in ["ebpf", "ebpf", "geoip", "ebpf", "<img src=x onerror=__pwned=1>"]:
            self.assertEqual(exporter.post("/api/v1/words", word)[0], 204, word)
        counted = {"ebpf": 3, "<img src=x onerror=__pwned=1>": 2, "geoip": 1,
                   **{word: 1 for word in hostile if len(word) <= 32 and "onerror" not in word}}
        status, state = exporter.get("/api/v1/state")
        words = json.loads(state)["words"]
        self.assertEqual({w["word"]: w["count"] for w in words}, counted)
        order = [w["word"] for w in words]  # the API's: most first

        # The page shows exactly the counted words, in the API's order, each
        # as one text node in a span of its own, and nothing ran.
        def cloud():
            return [word for word, *_ in browser.execute(WORDS_SCRIPT)[2]]
        try:
            wait_for("the words", lambda: cloud() == order, timeout=UPDATE_BOUND)
        except TimeoutError:
            self.assertEqual(cloud(), order)
        shown, note, spans = browser.execute(WORDS_SCRIPT)
        self.assertEqual((shown, note), (True, ""))
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")
        self.assertEqual(browser.execute("return typeof window.__pwned"), "undefined")
        for text, count, _, names, children in spans:
            self.assertEqual((names[0], sorted(names[1:])), ("SPAN", ["data-count", "style"]), text)
            self.assertEqual(children, [3], text)  # one text node
            self.assertEqual(int(count), counted[text], text)
        visible = browser.execute("return document.getElementById('words').innerText")
        for word in counted:
            self.assertIn(word, visible)
        for word in refused:
            self.assertNotIn(word, cloud())
        self.assertNotIn("\u202e", browser.execute("return document.body.innerText"))
        # Sizes follow counts: larger for more, equal for equal.
        sizes = {text: size for text, _, size, _, _ in spans}
        self.assertGreater(sizes["ebpf"], sizes["<img src=x onerror=__pwned=1>"])
        self.assertGreater(sizes["<img src=x onerror=__pwned=1>"], sizes["geoip"])
        self.assertEqual({sizes[word] for word, n in counted.items() if n == 1}, {sizes["geoip"]})
        # Nothing a word could have brought in exists: no element that runs
        # or loads, no script but the page's, no SVG but the map, no
        # attribute that carries a word; and the elements the page added
        # meanwhile are its own: the cloud's spans, the feed's and tables'.
        self.assertEqual(browser.execute(SMUGGLED_SCRIPT),
                         [0, ["/live_map/live_map.js"], ["map"], []])
        added = browser.execute("return window.__added")
        self.assertEqual({tag for tag, parent in added if parent == "words"}, {"SPAN"})
        self.assertEqual(len([1 for tag, parent in added if parent == "words"]) % len(order), 0)
        self.assertLessEqual({tag for tag, _ in added},
                             {"SPAN", "LI", "TIME", "TR", "TD", "OPTION", "circle"}, added)
        self.assertEqual(browser.execute("return typeof window.__pwned"), "undefined")
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-words.png"))

        # The longest word, the most posted (so the largest), still fits a
        # phone's width: it wraps rather than widen the page.
        longest = "W" * 32
        for _ in range(4):
            self.assertEqual(exporter.post("/api/v1/words", longest)[0], 204)
        wait_for("the longest word first", lambda: cloud()[:1] == [longest], timeout=UPDATE_BOUND)
        browser.set_viewport(390, 844, phone=True)
        self.assertEqual(browser.execute(
            "return [document.documentElement.scrollWidth, innerWidth]"), [390, 390])
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-words-phone.png"))


    def test_top_peers_are_exact_prefixes(self):
        exporter = Exporter("exporter-peers", ["--connections.source=simulated"])
        self.addCleanup(exporter.close)
        # Japan 7; a private network 6; two addresses of one British /24, 2
        # each; 8.8.8.8 3 times on port 8082; a German /48 2; 8.8.4.4 once.
        posts = (["133.11.0.1"] * 7 + ["10.1.2.3"] * 6 + ["81.2.69.142", "81.2.69.7"] * 2
                 + ['{"address":"8.8.8.8","port":8082}'] * 3 + ["2a01:4f8::1"] * 2 + ["8.8.4.4"])
        for body in posts:
            self.assertEqual(exporter.post("/api/v1/connections", body)[0], 200, body)
        expected = [["133.11.0.0/24", "Japan", "7"], ["10.1.2.0/24", "Private network", "6"],
                    ["81.2.69.0/24", "United Kingdom", "4"], ["8.8.8.0/24", "United States", "3"],
                    ["2a01:4f8::/48", "Germany", "2"], ["8.8.4.0/24", "United States", "1"]]
        # The API agrees, exactly: every count is exact (max_error 0) while a
        # port has had fewer clients than counters.
        status, body = exporter.get("/api/v1/peers")
        self.assertEqual(status, 200)
        self.assertEqual([[p["address"], p["country_name"], str(p["connections"]), p["max_error"]]
                          for p in json.loads(body)["peers"]],
                         [row + [0] for row in expected])

        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-peers.log"))
        self.addCleanup(browser.close)
        browser.get(exporter.url + "/")
        try:
            wait_for("the peers", lambda: browser.execute(PEERS_SCRIPT) == [True, "", expected],
                     timeout=20)
        except TimeoutError:
            self.assertEqual(browser.execute(PEERS_SCRIPT), [True, "", expected])
        # Prefixes only: no whole address anywhere in the panel.
        panel = browser.execute("return document.getElementById('peers-panel').innerText")
        for address in ["133.11.0.1", "10.1.2.3", "81.2.69.142", "81.2.69.7", "8.8.8.8",
                        "2a01:4f8::1", "8.8.4.4"]:
            self.assertNotIn(address, panel)
        browser.execute("window.__sameDocument = 'yes'")

        # Live: four more from the British /24 put it first.
        for last in range(200, 204):
            self.assertEqual(exporter.post("/api/v1/connections", f"81.2.69.{last}")[0], 200)
        expected = [["81.2.69.0/24", "United Kingdom", "8"]] + expected[:2] + expected[3:]
        took_from = time.monotonic()
        try:
            wait_for("the new top peer", lambda: browser.execute(PEERS_SCRIPT)[2] == expected,
                     timeout=UPDATE_BOUND)
        except TimeoutError:
            self.assertEqual(browser.execute(PEERS_SCRIPT)[2], expected)
        print(f"top peers updated after {time.monotonic() - took_from:.2f}s", file=sys.stderr)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")

        # The port filter applies: port 8082 had 8.8.8.8's three.
        choose(browser, "port", "8082")
        wait_for("port 8082's peers", lambda: browser.execute(PEERS_SCRIPT)[2] == [
            ["8.8.8.0/24", "United States", "3"]], timeout=UPDATE_BOUND)
        # A port with nothing yet: the panel says so.
        browser.get(exporter.url + "/?port=9999")
        wait_for("no peers", lambda: browser.execute(PEERS_SCRIPT) == [
            True, "no connections yet", []], timeout=20)
        exporter.close()

        # Two counters for three clients: the third takes the least
        # counted one's place and inherits its count as its error, which
        # the page shows ("3 ±2": from 1 to 3).
        exporter = Exporter("exporter-peers-sketch", ["--connections.source=simulated",
                                                      "--web.top-peers=2"])
        self.addCleanup(exporter.close)
        for body in ["133.11.0.1"] * 3 + ["81.2.69.142"] * 2 + ["8.8.8.8"]:
            self.assertEqual(exporter.post("/api/v1/connections", body)[0], 200, body)
        browser.get(exporter.url + "/")
        wait_for("the sketch's peers", lambda: browser.execute(PEERS_SCRIPT) == [True, "", [
            ["133.11.0.0/24", "Japan", "3"], ["8.8.8.0/24", "United States", "3 ±2"]]],
            timeout=20)
        exporter.close()

        # Top peers off: no panel.
        exporter = Exporter("exporter-no-peers", ["--connections.source=simulated",
                                                  "--web.top-peers=0"])
        self.addCleanup(exporter.close)
        self.assertEqual(exporter.post("/api/v1/connections", "133.11.0.1")[0], 200)
        browser.get(exporter.url + "/")
        wait_for_bubbles(browser, {"JP": 1}, timeout=20)
        self.assertEqual(browser.execute(PEERS_SCRIPT), [False, "", []])


    def test_country_detail_shows_top_networks(self):
        exporter = Exporter("exporter-detail", ["--connections.source=simulated",
                                                f"--geoip.asn-database={ASN_DATABASE}"])
        self.addCleanup(exporter.close)
        # British clients from three networks (two addresses of one), one
        # address the ASN database has no AS for; two American networks.
        gb = {"81.2.69.142": 2, "81.2.69.7": 1, "212.58.244.20": 2, "195.66.224.1": 1}
        us = {"8.8.8.8": 2, "9.9.9.9": 1}
        for address, times in list(gb.items()) + list(us.items()):
            port = 8082 if address in ("212.58.244.20", "9.9.9.9") else 8081
            for _ in range(times):
                status, body = exporter.post(
                    "/api/v1/connections", json.dumps({"address": address, "port": port}))
                self.assertEqual(status, 200, body)
        aa, bbc = network_of("81.2.69.142"), network_of("212.58.244.20")
        google, quad9 = network_of("8.8.8.8"), network_of("9.9.9.9")
        self.assertEqual(network_of("81.2.69.7"), aa)
        self.assertIsNone(network_of("195.66.224.1"))
        self.assertEqual(len({aa[0], bbc[0], google[0], quad9[0]}), 4)
        gb_networks = [aa + ["3"], bbc + ["2"], ["unknown", "not in the ASN database", "1"]]

        browser = Browser(os.path.join(ARGS.out_dir, "chromedriver-detail.log"))
        self.addCleanup(browser.close)
        browser.get(exporter.url + "/")
        wait_for_bubbles(browser, {"GB": 6, "US": 3}, timeout=20)
        # DB-IP's licence: pages that show its results link back to it. The
        # footer always does, beside the map's own credits.
        links = browser.execute(FOOTER_LINKS_SCRIPT)
        self.assertIn(["IP to ASN data: DB-IP", "https://db-ip.com", True], links)
        self.assertIn(["RouteViews", "https://www.routeviews.org/", True], links)
        self.assertFalse(browser.execute(DETAIL_SCRIPT)[0])

        # A click on a bubble: the country's name, counts and top networks,
        # as /api/v1/networks gives them.
        browser.click(browser.find('#bubbles [data-country="GB"]'))
        counts = [["connections", "6"], ["unique addresses", "4"], ["failed", "0"],
                  ["received", "0 B"], ["sent", "0 B"]]
        want = [True, "United Kingdom", counts, "Top networks", gb_networks, ""]
        try:
            wait_for("the detail", lambda: browser.execute(DETAIL_SCRIPT) == want, timeout=5)
        except TimeoutError:
            self.assertEqual(browser.execute(DETAIL_SCRIPT), want)
        status, body = exporter.get("/api/v1/networks?country=GB&limit=10")
        self.assertEqual(status, 200)
        self.assertEqual([[n["asn"], n["as_name"] or "not in the ASN database",
                           str(n["connections"])] for n in json.loads(body)["networks"]],
                         gb_networks)
        self.assertTrue(browser.execute(
            "return document.querySelector('#bubbles [data-country=\"GB\"]')"
            ".classList.contains('selected')"))
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-detail.png"))

        # Live: two more from the BBC's network; the detail follows.
        browser.execute("window.__sameDocument = 'yes'")
        for _ in range(2):
            self.assertEqual(exporter.post("/api/v1/connections", "212.58.244.20")[0], 200)
        gb_networks = [bbc + ["4"], aa + ["3"], gb_networks[2]]
        counts[0][1] = "8"
        want = [True, "United Kingdom", counts, "Top networks", gb_networks, ""]
        try:
            wait_for("the new networks", lambda: browser.execute(DETAIL_SCRIPT) == want,
                     timeout=UPDATE_BOUND)
        except TimeoutError:
            self.assertEqual(browser.execute(DETAIL_SCRIPT), want)
        self.assertEqual(browser.execute("return window.__sameDocument"), "yes")

        # The port filter applies to the networks too: port 8082 had the
        # BBC's first two.
        choose(browser, "port", "8082")
        want = [True, "United Kingdom",
                [["connections", "2"], ["unique addresses", "1"], ["failed", "0"],
                 ["received", "0 B"], ["sent", "0 B"]],
                "Top networks · port 8082", [bbc + ["2"]], ""]
        wait_for("port 8082's networks", lambda: browser.execute(DETAIL_SCRIPT) == want,
                 timeout=UPDATE_BOUND)

        # From the keyboard: Escape closes it; Enter on a focused bubble
        # opens that country's.
        browser.press(ESCAPE)
        wait_for("the detail closed", lambda: not browser.execute(DETAIL_SCRIPT)[0], timeout=5)
        choose(browser, "port", "")
        wait_for_bubbles(browser, {"GB": 8, "US": 3}, UPDATE_BOUND)
        browser.execute("document.querySelector('#bubbles [data-country=\"US\"]').focus()")
        browser.press(ENTER)
        want = [True, "United States",
                [["connections", "3"], ["unique addresses", "2"], ["failed", "0"],
                 ["received", "0 B"], ["sent", "0 B"]],
                "Top networks", [google + ["2"], quad9 + ["1"]], ""]
        wait_for("the American detail", lambda: browser.execute(DETAIL_SCRIPT) == want, timeout=5)

        # In the filled view, a click on the country's shape; the close
        # button closes it.
        choose_view(browser, "filled")
        wait_for_filled(browser, "accepted", {"GB": 8, "US": 3}, UPDATE_BOUND)
        point = browser.execute(POINT_ON_SCRIPT, '#land [data-country="GB"]')
        self.assertTrue(point)
        browser.click_at(*point)
        wait_for("the British detail again", lambda: browser.execute(DETAIL_SCRIPT)[1:] == [
            "United Kingdom", [["connections", "8"], ["unique addresses", "4"], ["failed", "0"],
                               ["received", "0 B"], ["sent", "0 B"]],
            "Top networks", gb_networks, ""], timeout=5)
        self.assertTrue(browser.execute(
            "return document.querySelector('#land [data-country=\"GB\"]')"
            ".classList.contains('selected')"))
        browser.click(browser.find("#detail-close"))
        wait_for("the detail closed", lambda: not browser.execute(DETAIL_SCRIPT)[0], timeout=5)
        self.assertEqual(browser.execute(
            "return document.querySelectorAll('#map .selected').length"), 0)
        # On a phone the detail comes right under the map.
        browser.set_viewport(390, 844, phone=True)
        browser.execute("document.querySelector('#land [data-country=\"US\"]').focus()")
        browser.press(ENTER)
        wait_for("the detail on a phone", lambda: browser.execute(DETAIL_SCRIPT)[1] ==
                 "United States", timeout=5)
        layout = browser.execute(LAYOUT_SCRIPT)
        boxes = dict(layout["boxes"])
        self.assertLessEqual(boxes["detail"]["top"] - layout["map"]["bottom"], 80)
        self.assertLessEqual(layout["page"][0], 390)
        browser.screenshot(os.path.join(ARGS.out_dir, "live-map-detail-phone.png"))


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--traffic", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--docs-dir")
    ARGS, rest = parser.parse_known_args()
    os.makedirs(ARGS.out_dir, exist_ok=True)
    result = unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    # Everything skipped (not root): tell ctest so (SKIP_RETURN_CODE 77).
    sys.exit(77 if len(result.skipped) == result.testsRun else 0)


if __name__ == "__main__":
    main()
