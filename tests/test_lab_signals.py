"""`rnn-tutor lab` in a real pseudo-terminal: SIGTERM and SIGHUP leave cleanly and promptly."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    out, deadline = b"", time.monotonic() + timeout
    while needle not in out:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} on the screen within {timeout} s")
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_exits_within_a_second_and_leaves_no_worker(sig):
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "tutor", "lab", "--cell", "rnn", "--task",
                             "echo", "--seq-len", "10"], stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=ROOT, start_new_session=True)
    os.close(slave)
    try:
        read_until(master, b"steps/s", 30)
        kids = children(proc.pid)
        assert kids                                   # the worker (and the resource tracker)
        t0 = time.monotonic()
        proc.send_signal(sig)
        tail = b""
        while proc.poll() is None and time.monotonic() - t0 < 3:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    tail += os.read(master, 65536)
                except OSError:
                    break
        assert proc.wait(1) == 0
        assert time.monotonic() - t0 < 1.0
        assert b"\x1b[?1049l" in tail                 # left the alternate screen: restored
        deadline = time.monotonic() + 1.0
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(k) for k in kids)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
