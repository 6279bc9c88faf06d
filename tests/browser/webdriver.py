"""A small WebDriver client for headless Debian chromium, on the standard
library only: chromedriver (package chromium-driver) is spoken to over its
W3C WebDriver HTTP interface with urllib, so the tests need no npm.

The browser only ever loads pages from loopback: the exporter under test.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from exporter_process import free_port  # noqa: E402  tests/support/exporter_process.py

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags issue 5 asks for, plus a size that shows the desktop layout.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1600,900",
]
# W3C name of the key that holds an element reference.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
# W3C key codes for press().
ARROW_RIGHT = "\ue014"
ENTER = "\ue007"
ESCAPE = "\ue00c"
# Bound on every WebDriver command; page loads and scripts are quick here.
COMMAND_TIMEOUT = 60


class WebDriverError(Exception):
    pass


def wait_for(what, predicate, timeout, interval=0.1):
    """Polls predicate until it returns something truthy; bounded by timeout.
    Returns that value, or raises TimeoutError naming what and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


class Browser:
    """Owns one chromedriver process, its headless chromium session and a
    fresh profile directory; close() (or the with-block) removes them all."""

    def __init__(self, log_path):
        self._profile = tempfile.mkdtemp(prefix="geoip-chromium-")
        self._port = free_port()
        self._driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self._port}",
             f"--log-path={log_path}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._session = None
        try:
            wait_for("chromedriver", self._ready, timeout=20)
            capabilities = {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": CHROMIUM_FLAGS + [f"--user-data-dir={self._profile}"],
                },
            }}
            self._session = self._command("POST", "/session",
                                          {"capabilities": capabilities})["sessionId"]
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ready(self):
        try:
            return self._command("GET", "/status").get("ready")
        except (OSError, WebDriverError):
            return False

    def _command(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._port}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=COMMAND_TIMEOUT) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:2000]
            raise WebDriverError(f"{method} {path}: HTTP {error.code}: {detail}") from None

    def _session_command(self, method, path, body=None):
        return self._command(method, f"/session/{self._session}{path}", body)

    def get(self, url):
        """Loads url and waits for its load event."""
        self._session_command("POST", "/url", {"url": url})

    def execute(self, script, *args):
        """Runs script (a function body; `arguments` holds args) in the page."""
        return self._session_command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def set_window_size(self, width, height):
        self._session_command("POST", "/window/rect", {"width": width, "height": height})

    def set_viewport(self, width, height, phone=False):
        """Emulates a screen of exactly width x height CSS pixels (the window
        size includes the browser's own frame, this does not); a phone's
        (touch, overlay scroll bars, the page's viewport meta tag) when
        `phone`. Through chromedriver's Chrome DevTools command."""
        self._cdp("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone})
        self._cdp("Emulation.setTouchEmulationEnabled", {"enabled": phone})

    def clear_viewport(self):
        """Back to the window's own size, as before set_viewport()."""
        self._cdp("Emulation.clearDeviceMetricsOverride", {})
        self._cdp("Emulation.setTouchEmulationEnabled", {"enabled": False})

    def _cdp(self, command, params):
        return self._session_command("POST", "/goog/cdp/execute",
                                     {"cmd": command, "params": params})

    def find(self, css):
        """The first element matching css, as a WebDriver reference."""
        return self._session_command("POST", "/element", {"using": "css selector", "value": css})

    def hover(self, element):
        """Moves the mouse to the centre of element, as a user would."""
        self._session_command("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "origin": element,
                         "x": 0, "y": 0}],
        }]})

    def hover_at(self, x, y):
        """Moves the mouse to (x, y), CSS pixels from the viewport's top left."""
        self._session_command("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "origin": "viewport",
                         "x": int(x), "y": int(y)}],
        }]})

    def click_at(self, x, y):
        """Clicks at (x, y), CSS pixels from the viewport's top left, as a
        user would: the mouse moves there, presses and releases."""
        self._session_command("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "origin": "viewport",
                         "x": int(x), "y": int(y)},
                        {"type": "pointerDown", "button": 0},
                        {"type": "pointerUp", "button": 0}],
        }]})

    def click(self, element):
        """Clicks the centre of element, as a user would."""
        self._session_command("POST", f"/element/{element[ELEMENT]}/click", {})

    def press(self, key):
        """Presses and releases key (a character or a W3C key code such as
        ARROW_RIGHT) in whatever has the focus."""
        self._session_command("POST", "/actions", {"actions": [{
            "type": "key", "id": "keyboard",
            "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}],
        }]})

    def screenshot(self, path):
        """Saves the viewport as PNG."""
        png = base64.b64decode(self._session_command("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def close(self):
        if self._session is not None:
            try:
                self._session_command("DELETE", "")
            except (OSError, WebDriverError):
                pass
            self._session = None
        if self._driver.poll() is None:
            # chromedriver's own group: it and any browser it failed to stop.
            try:
                os.killpg(self._driver.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._driver.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)
