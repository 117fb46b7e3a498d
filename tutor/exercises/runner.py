"""Run a learner's file in a separate, limited process and bring back its arrays.

The child (`_child.py`, standalone) gets a fresh temporary folder holding the calls to make and
the inputs, sets its own memory, CPU-time and file-size limits before it loads NumPy or the
learner's code, and writes back arrays and a status. Here the parent adds a wall-clock limit,
kills the child's whole process group whatever happens, and keeps everything the child printed
in a file (it never reaches the terminal). Nothing the child sends back is unpickled."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHILD = Path(__file__).with_name("_child.py")
DEFAULT_TIME_S = 10.0
DEFAULT_MEMORY_BYTES = 1 << 30
OUTPUT_BYTES = 4 << 20                   # what the child may write to its output file
START_ALLOWANCE_S = 2.0                  # interpreter and NumPy start-up, on a loaded machine


@dataclass
class Limits:
    seconds: float = DEFAULT_TIME_S
    memory_bytes: int = DEFAULT_MEMORY_BYTES


@dataclass
class Outcome:
    """What came back: per case, the arrays by name and the names whose value was not an
    array (with what it was); or `error` as {kind, message, line, function}."""
    cases: list[dict[str, np.ndarray]] = field(default_factory=list)
    bad: list[dict[str, str]] = field(default_factory=list)
    error: dict | None = None
    printed: str = ""


def run(file: Path, cases: list[dict], limits: Limits,
        cancel: threading.Event | None = None) -> Outcome:
    """cases: each {"inputs": {name: array}, "calls": [...], "fd": [...], "scalars": [...]}
    (see `_child.py` for what the calls say). Setting `cancel` kills the child at once."""
    with tempfile.TemporaryDirectory(prefix="rnn-tutor-check-") as tmp:
        work = Path(tmp)
        spec = {"file": str(file), "memory_bytes": int(limits.memory_bytes),
                "cpu_seconds": max(1, int(round(limits.seconds))),
                "wall_seconds": float(limits.seconds) + START_ALLOWANCE_S / 2,
                "file_bytes": OUTPUT_BYTES,
                "cases": [{k: v for k, v in c.items() if k != "inputs"} for c in cases]}
        (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        for i, c in enumerate(cases):
            np.savez(work / f"in{i}.npz", **c["inputs"])
        printed = work / "printed.txt"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(printed, "wb") as out:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", str(CHILD), str(work)],
                    cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True, close_fds=True)
            except OSError as e:
                return Outcome(error={"kind": "start", "message": e.strerror or str(e),
                                      "line": None, "function": None})
            timed_out = _wait(proc, limits.seconds + START_ALLOWANCE_S, cancel)
        if cancel is not None and cancel.is_set():
            return Outcome(error={"kind": "cancelled", "message": "", "line": None,
                                  "function": None})
        outcome = _collect(work, len(cases))
        outcome.printed = _tail(printed)
        if outcome.error is None and not outcome.cases:
            outcome.error = _no_status(proc.returncode, timed_out)
        return outcome


def _wait(proc: subprocess.Popen, seconds: float, cancel: threading.Event | None) -> bool:
    """Wait for the child; past the deadline (or on cancel) kill its process group. Always
    reap it, and kill anything it left behind in its group. Returns whether the deadline
    passed."""
    timed_out = False
    deadline = time.monotonic() + seconds
    try:
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if cancel is not None and cancel.wait(min(left, 0.05)):
                break
            if cancel is None:
                try:
                    proc.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    pass
    except BaseException:                    # e.g. KeyboardInterrupt: still leave no child
        _kill_group(proc)
        proc.wait()
        raise
    _kill_group(proc)
    proc.wait()
    return timed_out


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect(work: Path, n_cases: int) -> Outcome:
    outcome = Outcome()
    try:
        status = json.loads((work / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return outcome
    if not isinstance(status, dict):
        return outcome
    if status.get("error"):
        error = status["error"]
        outcome.error = {k: error.get(k) for k in ("kind", "message", "line", "function")}
        return outcome
    try:
        for i in range(n_cases):
            with np.load(work / f"out{i}.npz", allow_pickle=False) as z:
                outcome.cases.append({k: z[k] for k in z.files})
            outcome.bad.append(dict(status["cases"][i].get("bad", {})))
    except Exception as e:                   # a file the learner's code damaged
        outcome.cases.clear()
        outcome.error = {"kind": "error", "message": f"its results could not be read ({e})",
                         "line": None, "function": None}
    return outcome


def _no_status(returncode: int | None, timed_out: bool) -> dict:
    if timed_out:
        return {"kind": "time", "message": "wall", "line": None, "function": None}
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        kind = {signal.SIGXCPU: "time", signal.SIGKILL: "time", signal.SIGXFSZ: "output"}.get(
            sig, "signal")
        return {"kind": kind, "message": name, "line": None, "function": None}
    return {"kind": "exit", "message": f"exit status {returncode}", "line": None,
            "function": None}


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
