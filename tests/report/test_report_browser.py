"""The HTML report in a real headless Chromium: renders without console errors or network requests, and every
section is present and visible.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (fd 3 commands in, fd 4 events
out, NUL-delimited JSON), so no Python websocket or browser-automation package is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from safepeft.report import write_report
from safepeft.report.text import SECTIONS

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian `chromium` is not installed (`make test` installs it: apt-get install chromium)"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe",
         "--window-size=1400,900"]


def _high_pipe() -> tuple[int, int]:
    """A pipe whose fds are >= 10, so the child's dup2 onto 3 and 4 can never clobber one of them."""
    import fcntl

    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class DevTools:
    """Minimal DevTools-protocol client over Chromium's pipe transport."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = _high_pipe()
        self._from_chrome, from_chrome_w = _high_pipe()

        def wire_pipes() -> None:  # the child reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=wire_pipes, close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self, timeout: float) -> dict:
        deadline = time.time() + timeout
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode()[-2000:]}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(timeout)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


SECTION_PROBE = """JSON.stringify([...document.querySelectorAll('main > section')].map(s => ({
  id: s.id, height: s.getBoundingClientRect().height, text: s.innerText.length,
  visible: getComputedStyle(s).display !== 'none' && getComputedStyle(s).visibility !== 'hidden',
  svgs: s.querySelectorAll('svg').length})))"""


def _render(page: Path, profile: Path, screenshot: Path | None) -> tuple[list[dict], list[dict]]:
    tools = DevTools(profile)
    try:
        target = tools.send("Target.createTarget", url="about:blank")["targetId"]
        session = tools.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            tools.send(f"{domain}.enable", session)
        tools.send("Page.navigate", session, url=page.resolve().as_uri())
        tools.wait_for("Page.loadEventFired")
        sections = json.loads(tools.send("Runtime.evaluate", session, expression=SECTION_PROBE)["result"]["value"])
        if screenshot is not None:
            size = tools.send("Page.getLayoutMetrics", session)["cssContentSize"]
            shot = tools.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                              clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
            import base64

            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return sections, tools.events
    finally:
        tools.close()


def _problems(events: list[dict]) -> list[str]:
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(("file:", "data:")):
            problems.append(f"network request: {params['request']['url']}")
    return problems


def test_report_renders_in_headless_chromium(results_dir, tmp_path):
    page = write_report([results_dir], tmp_path / "report.html")
    shot = Path(os.environ.get("SAFEPEFT_REPORT_SCREENSHOT", tmp_path / "report.png"))
    sections, events = _render(page, tmp_path / "profile", shot)

    assert _problems(events) == []
    assert [s["id"] for s in sections] == [sid for sid, _ in SECTIONS if sid != "efficacy"]  # no efficacy.json here
    for section in sections:
        assert section["visible"] and section["height"] > 40 and section["text"] > 40, section
    charts = {s["id"]: s["svgs"] for s in sections}
    assert charts["heatmap"] >= 1 and charts["fairness"] == 2 and charts["attacks"] == 1 and charts["tradeoff"] == 1
    assert shot.stat().st_size > 10_000  # a real rendering, not a blank page


def test_a_broken_page_is_caught(tmp_path):
    """The check can fail: a page with a script error and a remote fetch is reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><section id="summary">x</section>'
                    '<script>undefinedFunction()</script><img src="http://192.0.2.1/x.png"></body></html>')
    _, events = _render(page, tmp_path / "profile", None)
    problems = _problems(events)
    assert any("exception" in p for p in problems) and any("network request" in p for p in problems)
