"""Look at a report as a person would: headless Chromium over the DevTools protocol. Opens an HTML file, records
console errors, uncaught exceptions and failed loads, checks that every image decoded and every chart has a size,
and takes a full-page screenshot.

    .venv/bin/python -m benchmarks.screenshots reports/<run>/report.html                # docs/screenshots/<run>.png
    .venv/bin/python -m benchmarks.screenshots reports/<run>/report.html --name first-day --width 1280

Needs Debian's `chromium` (apt-get install chromium) and websocket-client (a dev dependency). The checks are
the same as tests/test_report_browser.py, which loads this file.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 60
SETTLE_S = 0.5  # after the load event: late errors (a script run on a timer) still count

# Runs in the page: open every <details> (a person would), then what did not render or does not fit the page.
CHECK_PAGE = r"""(() => {
  for (const d of document.querySelectorAll('details')) d.open = true;
  const problems = [];
  const images = Array.from(document.images);
  for (const img of images) {
    if (!img.complete || img.naturalWidth === 0 || img.naturalHeight === 0)
      problems.push('broken image: ' + (img.alt || img.src.slice(0, 80)));
  }
  const svgs = Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement.closest('svg'));
  for (const svg of svgs) {
    const box = svg.getBoundingClientRect();
    const name = svg.getAttribute('aria-label') || svg.id || svg.outerHTML.slice(0, 60);
    if (box.width < 1 || box.height < 1) problems.push('chart without a size: ' + name);
    else if (!svg.querySelector('path, line, rect, polyline, polygon, circle, text, use, image'))
      problems.push('empty chart: ' + name);
  }
  const page = document.body.getBoundingClientRect();
  for (const table of document.querySelectorAll('table')) {
    const box = table.getBoundingClientRect();
    if (box.right > page.right + 1) problems.push('table wider than the page (' + Math.round(box.width) + ' px): '
      + (table.className || table.querySelector('th, td')?.textContent.slice(0, 40) || 'table'));
  }
  const seen = new Map();
  for (const el of document.querySelectorAll('[id]')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  const referenced = new Set();
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      for (const m of attr.value.matchAll(/url\(\s*["']?#([^)"'\s]+)/g)) referenced.add(m[1]);
      if ((attr.name === 'href' || attr.name === 'xlink:href') && attr.value.startsWith('#'))
        referenced.add(attr.value.slice(1));
    }
  }
  const duplicated = Array.from(seen).filter(([, n]) => n > 1).map(([id]) => id);
  const clashing = duplicated.filter(id => referenced.has(id));
  if (clashing.length) problems.push('ids used by several elements and referenced (a chart draws with another\'s '
    + 'clip, marker or gradient): ' + clashing.slice(0, 5).join(', '));
  const warnings = duplicated.filter(id => !referenced.has(id)).slice(0, 5)
    .map(id => 'id used by several elements (unreferenced, harmless to the drawing): ' + id);
  return {problems, warnings, images: images.length, svgs: svgs.length, title: document.title,
          width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight};
})()"""


@dataclass
class PageCheck:
    """What a person would have seen wrong, and the page's figures."""

    url: str
    title: str = ""
    images: int = 0
    svgs: int = 0
    width: int = 0
    height: int = 0
    console_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # invalid but invisible (e.g. unreferenced duplicate ids)

    @property
    def ok(self) -> bool:
        return not self.console_errors and not self.problems

    def summary(self) -> str:
        lines = [f"{self.url}: {self.images} images, {self.svgs} charts, {self.width}x{self.height} px"]
        lines += [f"  console: {error}" for error in self.console_errors]
        lines += [f"  page: {problem}" for problem in self.problems]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium and one page, driven over the DevTools protocol (a websocket)."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900) -> None:
        binary = binary or find_chromium()
        if binary is None:
            raise RuntimeError("no chromium on PATH (apt-get install chromium)")
        self.profile = Path(tempfile.mkdtemp(prefix="schoolsurge-chromium-"))
        self.width, self.height = width, height
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--disable-gpu",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "--allow-file-access-from-files",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: closed with all its helpers
        )
        self._id = 0
        self.events: list[dict[str, Any]] = []
        try:
            self.socket = websocket.create_connection(
                self._page_websocket(), timeout=COMMAND_TIMEOUT_S, suppress_origin=True
            )
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _page_websocket(self) -> str:
        active = self.profile / "DevToolsActivePort"  # Chromium writes its port here once it listens
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited at start (status {self.process.returncode})")
            lines = active.read_text().split() if active.exists() else []
            if lines:
                with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list", timeout=5) as response:
                    pages = [t for t in json.load(response) if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise RuntimeError(f"chromium did not open its DevTools port in {START_TIMEOUT_S} s")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result; events received meanwhile are kept in self.events."""
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        if any(e["method"] == event for e in self.events):
            return
        self._drain(timeout_s, until=event)

    def _drain(self, seconds: float, until: str | None = None) -> None:
        """Receive events for `seconds` (or until the event `until` comes)."""
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.socket.settimeout(left)
                message = json.loads(self.socket.recv())
                if "method" in message:
                    self.events.append(message)
                    if message["method"] == until:
                        return
        except websocket.WebSocketTimeoutException:
            if until is not None:
                raise RuntimeError(f"no {until} in {seconds:.0f} s") from None
        finally:
            self.socket.settimeout(COMMAND_TIMEOUT_S)

    def open(self, path: Path) -> PageCheck:
        """Load a local HTML file, let it settle, and check it."""
        url = Path(path).resolve().as_uri()
        self.events.clear()
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        navigated = self.send("Page.navigate", url=url)
        if navigated.get("errorText"):
            return PageCheck(url, problems=[f"navigation failed: {navigated['errorText']}"])
        self.wait_for("Page.loadEventFired")
        self._drain(SETTLE_S)
        found = self.evaluate(CHECK_PAGE)
        self._drain(0.2)  # what opening the <details> may have raised
        check = PageCheck(
            url,
            found["title"],
            found["images"],
            found["svgs"],
            found["width"],
            found["height"],
            problems=list(found["problems"]),
            warnings=list(found["warnings"]),
        )
        check.console_errors = console_errors(self.events)
        return check

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, out: Path, whole_page: bool = True) -> Path:
        """The whole page (beyond the window) as PNG, or only its first screen (the window's size)."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = max(self.width, int(size["width"])), int(size["height"])
        if not whole_page:
            width, height = self.width, min(self.height, height)
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the helpers it started, in its own group
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def console_errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among DevTools events, one line each."""
    errors = []
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"uncaught: {description.splitlines()[0] if description else '?'}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip())
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot a report (docs/screenshots/<name>.png) and check it")
    parser.add_argument("report", type=Path, help="a report.html (or a run directory holding one)")
    parser.add_argument("--name", help="file name without .png (default: the run directory's name)")
    parser.add_argument("--out-dir", type=Path, default=SCREENSHOTS)
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    args = parser.parse_args(argv)
    report = args.report / "report.html" if args.report.is_dir() else args.report
    if not report.exists():
        print(f"{report}: no such report", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print("no chromium on PATH: apt-get install -y chromium", file=sys.stderr)
        return 2
    name = args.name or report.resolve().parent.name
    with Chromium(width=args.width) as browser:
        check = browser.open(report)
        out = browser.screenshot(args.out_dir / f"{name}.png")
    print(check.summary())
    print(f"Screenshot: {out}")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
