"""Run a command in a pseudo-terminal and read its screen the way a person would.

    with PtyTerm(["rnn-tutor", "lab"], cols=80, rows=24) as term:
        term.wait_for(lambda t: "step" in t.text, timeout=20)
        t0 = term.send(" ")
        term.wait_for(lambda t: "paused" in t.text, timeout=2)
        print(term.bytes_in(t0, time.monotonic()))

The command gets TERM=xterm-256color and COLORTERM=truecolor, a pty of the given size as its
controlling terminal, and its own process group (killed whole at the end). Output is fed into a
`pyte` screen by a reader thread that timestamps every chunk, so callers can count bytes over a
window and time how long a key takes to show.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import sys
import threading
import time
from collections import deque
from typing import Callable, Sequence

import pyte

KEYS = {"space": b" ", "enter": b"\r", "escape": b"\x1b", "tab": b"\t", "ctrl+c": b"\x03",
        "ctrl+q": b"\x11", "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C",
        "left": b"\x1b[D"}


class PtyTerm:
    def __init__(self, argv: Sequence[str], cols: int = 80, rows: int = 24,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 controlling: bool = True):
        """controlling=False starts the program in a session of its own with the pty as its
        stdio but not its controlling terminal (as `setsid` does): closing the pty then sends
        it no SIGHUP."""
        self.argv = list(argv)
        self.controlling = controlling
        self.cols, self.rows = cols, rows
        self.env = dict(os.environ)
        self.env.update({"TERM": "xterm-256color", "COLORTERM": "truecolor",
                         "COLUMNS": str(cols), "LINES": str(rows)})
        self.env.pop("NO_COLOR", None)
        self.env.update(env or {})
        self.cwd = cwd
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.chunks: list[tuple[float, int]] = []   # (monotonic time, bytes) per read
        self.total_bytes = 0
        self.proc: subprocess.Popen | None = None
        self._master = -1
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False
        self._stop = False
        self._pending: deque[tuple[float, bytes]] = deque()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "PtyTerm":
        sys.setswitchinterval(0.0005)   # hand the GIL to the reader thread quickly
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))

        def child_setup():
            os.setsid()
            if self.controlling:
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=slave,
                                     env=self.env, cwd=self.cwd, preexec_fn=child_setup,
                                     close_fds=True)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        return self

    def _read_loop(self) -> None:
        # Only read and timestamp here; pyte (slow, pure Python) parses in the caller's thread,
        # so a chunk's time is when the app wrote it, not when the parser got round to it.
        # select with a timeout, not a bare blocking read, so hang_up() can stop this thread:
        # a read blocked in it would keep the master open after os.close() until output came.
        while True:
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if self._stop:
                    data = b""
                elif not ready:
                    continue
                else:
                    data = os.read(self._master, 65536)
            except (OSError, ValueError):
                data = b""
            now = time.monotonic()
            with self._cond:
                if not data:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self.chunks.append((now, len(data)))
                self._pending.append((now, data))
                self.total_bytes += len(data)
                self._cond.notify_all()

    def _feed_one(self) -> float | None:
        """Parse the oldest unparsed chunk (lock held); its read time, or None if none."""
        if not self._pending:
            return None
        when, data = self._pending.popleft()
        self.stream.feed(data)
        return when

    def _feed_all(self) -> None:
        while self._feed_one() is not None:
            pass

    def close(self, timeout: float = 2.0) -> int | None:
        """Kill the whole process group (TERM, then KILL) and reap it."""
        proc = self.proc
        if proc is None:
            return None
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            pgid = None
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            if proc.poll() is not None and pgid is None:
                break
            try:
                if pgid is not None:
                    os.killpg(pgid, sig)
                else:
                    proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                if pgid is not None:
                    try:
                        os.killpg(pgid, 0)         # anyone left in the group?
                    except ProcessLookupError:
                        break
            except subprocess.TimeoutExpired:
                continue
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._stop = True
        if self._reader is not None:
            self._reader.join(1.0)
        try:
            os.close(self._master)
        except OSError:
            pass
        self.proc = None
        return proc.returncode

    def hang_up(self) -> float:
        """Close the master side as a dropped connection does: the reader stops first, so the
        close is the last reference and the kernel hangs the terminal up at once. Returns the
        monotonic time of the close."""
        self._stop = True
        if self._reader is not None:
            self._reader.join(2.0)
        now = time.monotonic()
        os.close(self._master)
        self._master = -1
        return now

    def __enter__(self) -> "PtyTerm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- input -------------------------------------------------------------------------------------
    def send(self, keys: str | bytes) -> float:
        """Write keys (a KEYS name, text, or raw bytes); returns the monotonic time it was sent."""
        data = keys if isinstance(keys, bytes) else KEYS.get(keys, keys.encode())
        now = time.monotonic()
        os.write(self._master, data)
        return now

    # -- output ------------------------------------------------------------------------------------
    @property
    def lines(self) -> list[str]:
        with self._cond:
            self._feed_all()
            return list(self.screen.display)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def wait_for(self, predicate: Callable[["PtyTerm"], bool], timeout: float = 10.0) -> float:
        """Wait until predicate(screen view) holds; returns the monotonic time the output chunk
        that made it true was read. Raises TimeoutError (showing the screen) after timeout."""
        deadline = time.monotonic() + timeout
        view = _Locked(self)
        with self._cond:
            self._feed_all()
            if predicate(view):
                return time.monotonic()
            while True:
                when = self._feed_one()
                if when is not None:
                    if predicate(view):
                        return when
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    screen = "\n".join(self.screen.display)
                    why = "the program exited" if self._eof else f"{timeout:g} s passed"
                    raise TimeoutError(f"{why} before the screen matched:\n{screen}")
                self._cond.wait(left)

    def settle(self, seconds: float) -> None:
        """Wait, parsing output as it comes, so no backlog is left to parse after a key is sent
        (parsing a backlog would delay reading, and so timing, the app's answer)."""
        end = time.monotonic() + seconds
        with self._cond:
            while True:
                self._feed_all()
                left = end - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def bytes_in(self, start: float, end: float) -> int:
        with self._cond:
            return sum(n for t, n in self.chunks if start <= t < end)


class _Locked:
    """A view of the terminal for predicates, read while the reader lock is already held."""

    def __init__(self, term: PtyTerm):
        self._term = term

    @property
    def lines(self) -> list[str]:
        return list(self._term.screen.display)

    @property
    def text(self) -> str:
        return "\n".join(self._term.screen.display)

    @property
    def exited(self) -> bool:
        return self._term.exited


def lab_command(option: str | None) -> list[str]:
    """The command that opens the lab training without end: `--cmd` if given, else the installed
    `rnn-tutor lab --steps …`, else `python -m tutor lab --steps …` from this checkout."""
    import shlex
    import shutil
    import sys

    if option:
        return shlex.split(option)
    # An explicit step count: the run trains on at full speed for the whole measurement
    # instead of ending by itself at its budget (3000 steps) or a levelled-off loss.
    steps = ["--steps", "10000000"]
    exe = shutil.which("rnn-tutor")
    return [exe, "lab", *steps] if exe else [sys.executable, "-m", "tutor", "lab", *steps]


def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid: int) -> int:
    """Resident memory of one process in KiB, read from /proc (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> set[int]:
    """Every process below pid (children, their children, …), read from /proc."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = {int(p) for p in f.read().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return found
