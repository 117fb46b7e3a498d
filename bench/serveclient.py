"""A real `rnn-tutor serve` in a subprocess, and a websocket client that talks to it as a browser
tab does and keeps a pyte screen of what it was sent. Used by bench/serve_load.py and the tests."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp
import pyte

try:
    from ptyterm import descendants          # run as a bench script
except ImportError:
    from bench.ptyterm import descendants    # imported by the tests


class Served:
    """`rnn-tutor serve --port 0 ...` running until close(); .url is where it listens."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 command: list[str] | None = None):
        full_env = {**os.environ, **(env or {})}
        command = command or [sys.executable, "-m", "tutor", "serve"]
        self.proc = subprocess.Popen(
            [*command, "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env)
        self.lines: list[str] = []
        line = self.proc.stdout.readline()        # the "serving the tutor on URL" line
        self.lines.append(line)
        found = re.search(r"(http://\S+/)", line)
        if not found:
            rest = self.proc.communicate(timeout=10)[0]
            raise AssertionError(f"server did not start: {line}{rest}")
        self.url = found.group(1)
        self.seen: set[int] = set()               # every pid ever seen in its process tree

    def tree(self) -> set[int]:
        pids = descendants(self.proc.pid)
        self.seen |= pids
        return pids

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> tuple[int, str, float]:
        self.tree()
        start = time.monotonic()
        self.proc.send_signal(sig)
        out = self.proc.communicate(timeout=timeout)[0]
        return self.proc.returncode, "".join(self.lines) + out, time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stop()
        for pid in alive(self.seen):                # belt and braces: never leave one behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def alive(pids) -> set[int]:
    """The pids that still run (a zombie has finished)."""
    living = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Tab:
    """One websocket session, as a browser tab would open it, with the screen it was sent."""

    def __init__(self, url: str, cols: int = 120, rows: int = 40, origin: str | None = None,
                 query: str = ""):
        self.url, self.cols, self.rows = url, cols, rows
        self.origin = origin if origin is not None else url.rstrip("/")
        self.query = query
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.closed = False
        self.texts: list[str] = []

    async def __aenter__(self) -> "Tab":
        self.http = aiohttp.ClientSession()
        ws_url = (self.url.replace("http", "ws", 1)
                  + f"ws?width={self.cols}&height={self.rows}{self.query}")
        self.ws = await self.http.ws_connect(ws_url, origin=self.origin)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        await self.http.close()

    @property
    def text(self) -> str:
        return "\n".join(self.screen.display)

    async def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return
            self._take(msg)

    async def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self.closed or time.monotonic() > deadline:
                return False
            await self.pump(0.1)
        return True

    def _take(self, msg) -> None:
        if msg.type == aiohttp.WSMsgType.BINARY:
            self.stream.feed(msg.data)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            self.texts.append(msg.data)
        else:
            self.closed = True

    async def send(self, envelope) -> None:
        await self.ws.send_json(envelope)

    async def keys(self, text: str) -> None:
        await self.send(["stdin", text])
