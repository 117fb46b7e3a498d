"""The learner's own cell in the lab: the step functions of their exercise file in a
`StepwiseCell`, trained only in a training process of its own, with limits.

The session starts that process (`TrainerProcess.start(..., own=OwnCell(...))`) when the learner
turns their cell on, and a fresh, unlimited one when they go back to the engine's: a process
that ran a learner's code never trains anything else. In it, before the file is read:
- a memory limit, RLIMIT_AS: the process may grow by `memory_bytes` beyond what it uses then;
- a time limit per training step (and per autocomplete answer): an alarm at `step_seconds`
  raises where the learner's code runs, so a Python loop that never ends stops with its line;
  a step stuck inside one NumPy call cannot be interrupted, so RLIMIT_CPU is set a little past
  the same limit before every step and the kernel ends the process (the session says so).
Whatever goes wrong becomes one line (`failure_line`), with the file and line where there is one.
"""
from __future__ import annotations

import os
import resource
import signal
import traceback
from dataclasses import dataclass

from tutor.engine.cells.stepwise import StepError, StepwiseCell

DEFAULT_STEP_S = 10.0
DEFAULT_MEMORY_BYTES = 1 << 30
CPU_GRACE_S = 2.0                      # past the alarm, before the kernel ends the process


@dataclass(frozen=True)
class OwnCell:
    """Which cell, from which file, with which functions and limits."""
    kind: str                          # "rnn", "lstm" or "gru"
    path: str                          # the learner's exercise file, absolute
    forward: str                       # e.g. "lstm_step_forward"
    backward: str
    step_seconds: float = DEFAULT_STEP_S
    memory_bytes: int = DEFAULT_MEMORY_BYTES

    @property
    def file(self) -> str:
        return os.path.basename(self.path)

    @property
    def label(self) -> str:
        """What the status line calls it."""
        return f"your {self.kind} (from {self.file}) · slower ·"

    def stuck_line(self) -> str:
        """The process was ended by its CPU limit: a step stuck inside one call."""
        return (f"{self.file}: a step of your {self.kind} ran past {self.step_seconds:g} s "
                "inside one NumPy call and was stopped")


class OwnCellFailed(Exception):
    """The learner's cell cannot train: `line` says why, in one line."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line


class TimeUp(BaseException):
    """The per-step time limit, raised wherever the code is running (a BaseException, so that a
    learner's `except Exception` does not swallow it)."""


def limit_process(own: OwnCell) -> None:
    """The memory limit, and the alarm that enforces the time limit. Called once, in the child,
    before the learner's file is read."""
    allowance = int(own.memory_bytes) + _address_space()
    resource.setrlimit(resource.RLIMIT_AS, (allowance, allowance))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def time_up(signum, frame):
        raise TimeUp()
    signal.signal(signal.SIGALRM, time_up)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)    # the kernel's backstop ends the process


def _address_space() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 1 << 30


class StepClock:
    """`with clock:` around anything that runs the learner's code."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)

    def __enter__(self):
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = used.ru_utime + used.ru_stime
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(cpu + self.seconds + CPU_GRACE_S) + 1
        if hard == resource.RLIM_INFINITY or soft <= hard:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        return False


def load(own: OwnCell):
    """Read and run the learner's file (under the time limit); returns a function making a fresh
    `StepwiseCell` of its two functions. Raises OwnCellFailed."""
    try:
        with open(own.path, "rb") as f:
            source = f.read()
    except OSError as e:
        raise OwnCellFailed(f"{own.file}: cannot be read ({e.strerror or e})") from None
    ns = {"__name__": "__exercise__", "__file__": own.path}
    try:
        with StepClock(own.step_seconds):
            exec(compile(source, own.path, "exec"), ns)
    except SyntaxError as e:
        raise OwnCellFailed(f"{own.file}:{e.lineno}: {type(e).__name__}: {e.msg}") from None
    except BaseException as e:               # noqa: BLE001 – whatever the file does on import
        if isinstance(e, KeyboardInterrupt):
            raise
        raise OwnCellFailed(failure_line(e, own, "loading it")) from None
    functions = []
    for name in (own.forward, own.backward):
        fn = ns.get(name)
        if not callable(fn):
            raise OwnCellFailed(f"{own.file}: there is no function {name}() in the file")
        functions.append(fn)
    return lambda: StepwiseCell(own.kind, *functions)


def failure_line(exc: BaseException, own: OwnCell, doing: str = "training") -> str:
    """One line for anything that stopped the learner's cell: where in their file, in which
    function, at which timestep, and what."""
    cause = exc.cause if isinstance(exc, StepError) and exc.cause is not None else exc
    line = _learner_line(cause, own.path)
    where = own.file + (f":{line}" if line else "") + ":"
    if isinstance(exc, StepError):
        where += f" {exc.function}() at t = {exc.t}:"
    if isinstance(cause, TimeUp) and isinstance(exc, StepError) and not exc.first:
        what = (f"stopped at {own.step_seconds:g} s, the time limit for a training step; its "
                "earlier calls returned, so it may only be slow here: try a shorter T or a "
                "smaller H")
    elif isinstance(cause, TimeUp):
        what = f"stopped after {own.step_seconds:g} s (the time limit for a step): an endless loop?"
    elif isinstance(cause, MemoryError):
        what = (f"ran out of memory (it may use {own.memory_bytes / 2**20:.0f} MiB beyond the "
                "lab's own)")
    elif isinstance(cause, SystemExit):
        what = f"called exit() (code {cause.code})"
    elif isinstance(exc, StepError):
        what = exc.message
    else:
        what = f"{type(exc).__name__} while {doing}: {_first_line(exc)}"
    return " ".join(f"{where} {what}".split())


def _learner_line(exc: BaseException, path: str) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == path:
            line = lineno
    return line


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else "(no message)"
