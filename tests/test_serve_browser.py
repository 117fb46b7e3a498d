"""The tutor in a real browser: headless Chromium (Debian's `chromium`) opens `rnn-tutor serve`,
shows the first lesson, takes keys typed into the page, and its lab's charts change on screen.

Driven over Chromium's DevTools protocol (a websocket, with aiohttp, already installed for
textual-serve). What the page was sent is read back from the DevTools network events into a pyte
screen, what it drew from screenshots of the chart area. Skipped when Chromium is not installed,
unless RNN_TUTOR_REQUIRE_BROWSER=1 (CI sets it), which turns the skip into a failure.

    RNN_TUTOR_SCREENSHOTS=/tmp/shots pytest tests/test_serve_browser.py   # keep the screenshots
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pyte
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.serveclient import Served, alive, wait_until  # noqa: E402

FIRST_LESSON = "Why sequences need memory"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (960, 720)     # under 120 columns: the lesson alone until `v` shows the lab


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture
def browser_path() -> str:
    path = find_browser()
    if path is None:
        reason = ("headless Chromium not found (Debian: apt-get install chromium); "
                  "CI sets RNN_TUTOR_REQUIRE_BROWSER=1 and must have it")
        if os.environ.get("RNN_TUTOR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, path: str, profile: Path):
        args = [path, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--disable-background-networking", "--disable-component-update",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")        # Chromium refuses to run as root otherwise
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: asyncio.Queue = asyncio.Queue()

    def devtools_port(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                return int(found.group(1))
        raise AssertionError("Chromium did not start its DevTools endpoint")

    async def connect(self) -> None:
        port = await asyncio.to_thread(self.devtools_port)
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.put_nowait(data)

    async def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def press(self, key: str) -> None:
        """A key typed on the keyboard, as the page's terminal receives it."""
        code = f"Key{key.upper()}" if key.isalpha() else f"Digit{key}" if key.isdigit() else ""
        common = {"key": key, "code": code, "windowsVirtualKeyCode": ord(key.upper())}
        await self.call("Input.dispatchKeyEvent", type="keyDown", text=key, **common)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    async def screenshot(self, clip: dict | None = None) -> bytes:
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode((await self.call("Page.captureScreenshot", **params))["data"])

    async def close(self) -> None:
        if hasattr(self, "reader"):
            self.reader.cancel()
            await self.ws.close()
            await self.http.close()
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)


class PageTerminal:
    """What the server sent the page's terminal, read from DevTools' websocket frame events."""

    def __init__(self):
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.sizes: list[tuple[int, int]] = []
        self.requests: list[str] = []

    def take(self, event: dict) -> None:
        method, params = event["method"], event["params"]
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        if method == "Network.webSocketCreated" and "/ws?" in params["url"]:
            query = dict(re.findall(r"(\w+)=(\d+)", params["url"].split("?", 1)[1]))
            self.resize(int(query.get("width", 80)), int(query.get("height", 24)))
        elif method == "Network.webSocketFrameSent":
            payload = params["response"]["payloadData"]
            if payload.startswith('["resize"'):
                size = json.loads(payload)[1]
                self.resize(size["width"], size["height"])
        elif method == "Network.webSocketFrameReceived" and params["response"]["opcode"] == 2:
            self.stream.feed(base64.b64decode(params["response"]["payloadData"]))

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))
        self.screen.resize(rows, cols)

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    def find(self, needle: str) -> tuple[int, int] | None:
        for row, line in enumerate(self.screen.display):
            if needle in line:
                return row, line.index(needle)
        return None


async def drain(browser: Browser, term: PageTerminal, until, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            term.take(await asyncio.wait_for(browser.events.get(), min(left, 0.25)))
        except asyncio.TimeoutError:
            pass
    return True


def keep(name: str, png: bytes) -> None:
    folder = os.environ.get("RNN_TUTOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)


async def test_the_tutor_in_headless_chromium(browser_path, tmp_path):
    served = Served("--max-sessions", "2")
    browser = Browser(browser_path, tmp_path / "profile")
    term = PageTerminal()
    try:
        await browser.connect()
        await browser.call("Network.enable")
        await browser.call("Page.enable")
        await browser.call("Page.navigate", url=served.url)

        assert await drain(browser, term, lambda: FIRST_LESSON in term.text, 90), term.text
        cols, rows = term.sizes[-1]
        assert cols >= 80 and rows >= 24, term.sizes
        tutor_tree = lambda: served.tree()  # noqa: E731
        assert wait_until(lambda: len(tutor_tree()) >= 2, 30), "no tutor and worker for the tab"
        await asyncio.sleep(1.0)                       # let the page draw what it was sent
        keep("1-first-lesson.png", await browser.screenshot())

        # Keys typed into the page reach the tutor. Below 120 columns the lesson fills the
        # screen and `v` shows the lab; at 120 or more the lab is already beside the lesson.
        await browser.call("Runtime.evaluate",
                           expression="document.querySelector('.xterm-helper-textarea').focus()")
        if cols < 120:
            assert term.find("loss") is None, "the lab shows beside the lesson below 120 columns"
            await browser.press("v")
        assert await drain(browser, term, lambda: term.find("steps/s") is not None, 30), term.text

        box = (await browser.call("Runtime.evaluate", returnByValue=True, expression=(
            "(r => [r.x, r.y, r.width, r.height])("
            "document.querySelector('.xterm-screen').getBoundingClientRect())")))["result"]
        left, top, width, height = box["value"]
        cols, rows = term.sizes[-1]

        def chart_clip() -> dict:               # the loss chart: 40 columns, 10 rows
            row, col = term.find("loss")
            cell_w, cell_h = width / cols, height / rows
            return {"x": left + col * cell_w, "y": top + row * cell_h, "width": 40 * cell_w,
                    "height": 10 * cell_h}

        assert await drain(browser, term, lambda: "rnn" in term.text, 10)
        await drain(browser, term, lambda: False, 1.0)
        before = await browser.screenshot(chart_clip())
        await browser.press("3")                       # the LSTM: a fresh run, new curves
        assert await drain(browser, term,
                           lambda: re.search(r"loss\s+\S+\s+lstm", term.text) is not None, 30), \
            term.text
        await drain(browser, term, lambda: False, 1.5)
        after = await browser.screenshot(chart_clip())
        assert after != before, "the chart area looks the same after switching to the LSTM"
        keep("2-lab-lstm.png", await browser.screenshot())

        # The page fetched nothing from anywhere but this server (no web fonts from Google).
        elsewhere = [u for u in term.requests if not u.startswith((served.url, "data:"))]
        assert term.requests and not elsewhere, elsewhere

        # Closing the tab ends its tutor and the tutor's training worker.
        session_pids = set(served.tree())
        assert session_pids
        await browser.ws.send_json({"id": 0, "method": "Page.close"})   # no reply comes
        assert wait_until(lambda: not alive(session_pids), 15), (alive(session_pids),
                                                                 served.stop()[1])
    finally:
        await browser.close()
        code, out, _ = served.stop()
        served.close()
    assert code == 0 and "Traceback" not in out, out
    assert not alive(served.seen)
