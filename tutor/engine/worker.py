"""The training process: trains one or more runs in a child process and streams coalesced updates.

    trainer = TrainerProcess({"main": Settings(cell="lstm")})
    trainer.start()
    update = trainer.poll()        # non-blocking; None when nothing new
    trainer.replace({"main": settings.replace(clip=1.0)})   # live: clipping from the next step
    trainer.replace({"main": settings.replace(cell="gru")}) # fresh run, new generation
    trainer.close()                # the child is gone within ~0.5 s

Training never shares the UI's interpreter: a thread looping over small NumPy ops holds the GIL and
wrecks key latency, so the child is a separate process ("spawn" context). It sends at most
`send_hz` messages a second whatever its step rate, exits on its own when the parent dies (pipe EOF
or a changed parent pid), and never writes to the terminal. Pure Python + NumPy: no textual here.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
import types
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .run import Run
from .settings import Settings
from .tasks import Baseline, Sample

# One core trains, the other runs the UI: BLAS and OpenMP pools must not fan out in the child.
THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                       "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
PACES = (None, 50.0, 10.0, 2.0)   # steps per second per run; None is full speed
DEFAULT_SEND_HZ = 15.0
RATE_WINDOW_S = 1.5                # steps/s is measured over this much recent wall time
PARENT_CHECK_S = 0.5


@dataclass
class RunUpdate:
    """What one run did since the previous update. Scalar lists hold only the new points."""
    name: str
    settings: Settings
    baseline: Baseline
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)
    grad_norm_per_step: np.ndarray | None = None       # latest ‖∂L/∂h_t‖, t = 1..T
    gate_per_step: np.ndarray | None = None            # latest mean forget (LSTM) / update (GRU)
    cell_grad_norm_per_step: np.ndarray | None = None  # latest ‖∂L/∂c_t‖ (LSTM)
    first_grad_norm_per_step: np.ndarray | None = None  # at the initial weights (the first step)
    first_cell_grad_norm_per_step: np.ndarray | None = None
    sample: Sample | None = None
    step: int = 0                       # steps taken so far
    status: str = "ok"                  # "ok" or "diverged"
    diverged_at: int | None = None
    done: bool = False                  # reached max_steps
    steps_per_s: float = 0.0
    # live setting changes as (step, label); the change applies from the step after
    events: list[tuple[int, str]] = field(default_factory=list)

    def merge(self, newer: "RunUpdate") -> None:
        """Fold a later update of the same run into this one."""
        self.steps += newer.steps
        self.loss += newer.loss
        self.accuracy += newer.accuracy
        self.grad_norm += newer.grad_norm
        self.clipped += newer.clipped
        self.events += newer.events
        for name in ("settings", "baseline", "step", "status", "diverged_at", "done",
                     "steps_per_s"):
            setattr(self, name, getattr(newer, name))
        for name in ("grad_norm_per_step", "gate_per_step", "cell_grad_norm_per_step",
                     "first_grad_norm_per_step", "first_cell_grad_norm_per_step", "sample"):
            value = getattr(newer, name)
            if value is not None:
                setattr(self, name, value)


@dataclass
class Update:
    """Everything new since the last poll, for the current generation only."""
    generation: int
    paused: bool
    pace: float | None
    runs: dict[str, RunUpdate]
    error: str | None = None

    def merge(self, newer: "Update") -> None:
        self.paused, self.pace, self.error = newer.paused, newer.pace, newer.error or self.error
        for name, run in newer.runs.items():
            if name in self.runs:
                self.runs[name].merge(run)
            else:
                self.runs[name] = run


class TrainerProcess:
    """Client side of the training process; lives in the UI process."""

    def __init__(self, runs: Mapping[str, Settings], *, paused: bool = False,
                 pace: float | None = None, max_steps: int | None = None,
                 send_hz: float = DEFAULT_SEND_HZ):
        if not runs:
            raise ValueError("at least one run is needed")
        self._runs = {name: s.validated() for name, s in runs.items()}
        self._paused = paused
        self._pace = pace
        self.max_steps = max_steps
        self.send_hz = send_hz
        self._generation = 0
        self._closed = False
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn = None
        self.error: str | None = None
        self.messages = 0          # updates received, for checking the child's coalescing

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child (again, if it died), training the current runs as a fresh generation."""
        self._stop()
        self._closed = False
        self.error = None
        self._generation += 1
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        config = {"generation": self._generation, "runs": self._runs, "paused": self._paused,
                  "pace": self._pace, "max_steps": self.max_steps, "send_hz": self.send_hz}
        proc = ctx.Process(target=child_main, args=(child_conn, os.getpid(), config),
                           name="rnn-tutor-trainer", daemon=True)
        saved = {k: os.environ.get(k) for k in THREAD_ENV}
        os.environ.update(THREAD_ENV)      # the spawned interpreter inherits them before numpy
        # "spawn" re-imports the parent's __main__ in the child (the whole UI, or a script path
        # that may not exist, e.g. <stdin>). The child needs only the engine, so it is shown a
        # bare __main__ while the launch data is gathered.
        real_main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        # A TUI replaces sys.stderr with an object whose fileno() is -1, which multiprocessing's
        # resource tracker cannot pass on; lend it the real one while launching.
        real_stderr = sys.stderr
        sys.stderr = sys.__stderr__ if _has_fd(sys.__stderr__) else open(os.devnull, "w")
        try:
            proc.start()
        finally:
            sys.modules["__main__"] = real_main
            if sys.stderr is not sys.__stderr__:
                sys.stderr.close()
            sys.stderr = real_stderr
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child_conn.close()
        self._proc, self._conn = proc, parent_conn

    def close(self, timeout: float = 0.5) -> None:
        """Stop the child: ask, then terminate, then kill; always reaped, never left behind.
        Once closed, only an explicit start() brings a child back (restart() does not)."""
        self._closed = True
        self._stop(timeout)

    def _stop(self, timeout: float = 0.5) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        if proc is not None:
            proc.join(timeout * 0.6)
            if proc.exitcode is None:
                proc.terminate()
                proc.join(timeout * 0.3)
            if proc.exitcode is None:
                proc.kill()
                proc.join(1.0)
            try:
                proc.close()
            except ValueError:
                pass
        if conn is not None:
            conn.close()

    def __enter__(self) -> "TrainerProcess":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # -- state ---------------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self._generation

    @property
    def runs(self) -> dict[str, Settings]:
        return dict(self._runs)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pace(self) -> float | None:
        return self._pace

    # -- commands ------------------------------------------------------------------------------
    def replace(self, runs: Mapping[str, Settings]) -> bool:
        """New settings for the runs. Returns True when that needs a fresh run (a new generation),
        False when only clipping changed and it applies from the next step."""
        runs = {name: s.validated() for name, s in runs.items()}
        live = (set(runs) == set(self._runs)
                and not any(self._runs[n].needs_restart(s) for n, s in runs.items()))
        self._runs = runs
        if live:
            self._send(("live", self._generation, runs))
            return False
        self.restart()
        return True

    def restart(self, runs: Mapping[str, Settings] | None = None) -> None:
        """A fresh run (of `runs`, or of the current settings with the same seeds), as a new
        generation. Starts the child again if it died."""
        if runs is not None:
            if not runs:
                raise ValueError("at least one run is needed")
            self._runs = {name: s.validated() for name, s in runs.items()}
        if self._closed:
            return
        if not self.alive:
            self.start()
            return
        self._generation += 1
        self._send(("start", self._generation, self._runs))

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._send(("pause", paused))

    def step_once(self) -> None:
        """One step of every run; meant for a paused trainer (it stays paused)."""
        self._send(("step",))

    def set_pace(self, steps_per_s: float | None) -> None:
        if steps_per_s is not None and not (math.isfinite(steps_per_s) and steps_per_s > 0):
            raise ValueError("pace must be a positive number of steps per second, or None")
        self._pace = steps_per_s
        self._send(("pace", steps_per_s))

    def _send(self, message) -> None:
        if self._conn is None:
            return
        try:
            self._conn.send(message)
        except (OSError, ValueError):
            self._lost()

    def _lost(self) -> None:
        if self.error is None:
            self.error = "the training process stopped unexpectedly; press r to restart it"

    # -- updates -------------------------------------------------------------------------------
    def poll(self) -> Update | None:
        """Every update waiting in the pipe, coalesced; stale generations dropped. Never blocks."""
        merged: Update | None = None
        conn = self._conn
        if conn is None:
            return None
        try:
            while conn.poll():
                message = conn.recv()
                self.messages += 1
                if isinstance(message, tuple) and message[0] == "error":
                    self.error = f"training stopped: {message[1]}"
                    continue
                if message.generation != self._generation:
                    continue
                if merged is None:
                    merged = message
                else:
                    merged.merge(message)
        except (EOFError, OSError):
            self._lost()
        if self._proc is not None and not self._proc.is_alive():
            self._lost()
        if merged is None and self.error is not None:
            merged = Update(self._generation, self._paused, self._pace, {}, None)
        if merged is not None:
            merged.error = self.error
        return merged


# ---- the child ---------------------------------------------------------------------------------

def child_main(conn, parent_pid: int, config: dict) -> None:
    """Entry point of the training process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the UI decides when we stop
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)                         # nothing may scribble on the learner's TUI
        os.close(devnull)
        sys.stderr = open(os.devnull, "w")
    except OSError:
        pass
    try:
        _Trainer(conn, parent_pid, config).loop()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass                                        # the parent is gone
    except Exception as exc:                        # report, do not print
        try:
            conn.send(("error", " ".join(f"{type(exc).__name__}: {exc}".split())[:200]))
        except Exception:
            pass


class _RunState:
    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.run = Run(settings)
        self.pending = RunUpdate(name, self.run.settings, self.run.baseline)
        self.first_h: np.ndarray | None = None
        self.first_c: np.ndarray | None = None
        self.latest = None
        self.rate = deque()            # (time, steps) samples for steps/s

    @property
    def settings(self) -> Settings:
        return self.run.settings

    def step(self, max_steps: int | None) -> bool:
        run = self.run
        if run.diverged or (max_steps is not None and run.steps >= max_steps):
            return False
        rec = run.step()
        if rec is None:
            return False
        p = self.pending
        p.steps.append(rec.step)
        p.loss.append(float(rec.loss))
        p.accuracy.append(None if rec.accuracy is None else float(rec.accuracy))
        p.grad_norm.append(float(rec.grad_norm))
        p.clipped.append(bool(rec.clipped))
        if self.first_h is None:
            self.first_h = rec.grad_norm_per_step
            self.first_c = rec.cell_grad_norm_per_step
        self.latest = rec
        return True

    def finished(self, max_steps: int | None) -> bool:
        return self.run.diverged or (max_steps is not None and self.run.steps >= max_steps)

    def take(self, now: float, max_steps: int | None, running: bool) -> RunUpdate:
        run = self.run
        self.rate.append((now, run.steps))
        while len(self.rate) > 2 and now - self.rate[0][0] > RATE_WINDOW_S:
            self.rate.popleft()
        p = self.pending
        p.settings = run.settings
        p.step = run.steps
        p.status = run.status
        p.diverged_at = run.diverged_at
        p.done = max_steps is not None and run.steps >= max_steps
        (t0, s0), (t1, s1) = self.rate[0], self.rate[-1]
        p.steps_per_s = (s1 - s0) / (t1 - t0) if running and t1 > t0 else 0.0
        rec = self.latest
        if rec is not None:
            p.grad_norm_per_step = rec.grad_norm_per_step
            p.gate_per_step = rec.gate_per_step
            p.cell_grad_norm_per_step = rec.cell_grad_norm_per_step
            p.first_grad_norm_per_step = self.first_h
            p.first_cell_grad_norm_per_step = self.first_c
            p.sample = run.sample()
            self.latest = None
        self.pending = RunUpdate(self.name, run.settings, run.baseline)
        return p

    def reset_rate(self) -> None:
        self.rate.clear()


class _Trainer:
    def __init__(self, conn, parent_pid: int, config: dict):
        self.conn = conn
        self.parent_pid = parent_pid
        self.paused = bool(config["paused"])
        self.pace = config["pace"]
        self.max_steps = config["max_steps"]
        self.send_interval = 1.0 / max(1.0, float(config["send_hz"]))
        self.generation = 0
        self.runs: dict[str, _RunState] = {}
        self.stopping = False
        self.urgent = True
        self.step_requests = 0
        self.next_step_at = 0.0
        self.last_send = 0.0
        self.last_parent_check = time.monotonic()
        self._start(config["generation"], config["runs"])

    def _start(self, generation: int, runs: dict[str, Settings]) -> None:
        self.generation = generation
        self.runs = {name: _RunState(name, s) for name, s in runs.items()}
        self.step_requests = 0
        self.next_step_at = time.monotonic()
        self.urgent = True

    # commands
    def handle(self, message) -> None:
        kind = message[0]
        if kind == "stop":
            self.stopping = True
        elif kind == "start":
            self._start(message[1], message[2])
        elif kind == "live":
            if message[1] == self.generation:
                for name, settings in message[2].items():
                    state = self.runs.get(name)
                    if state is not None and state.settings != settings:
                        state.run.apply_live(settings)
                        state.pending.events.append((state.run.steps, _clip_label(settings)))
        elif kind == "pause":
            self.paused = bool(message[1])
            self.step_requests = 0
            for state in self.runs.values():
                state.reset_rate()
            self.next_step_at = time.monotonic()
        elif kind == "step":
            self.step_requests += 1
        elif kind == "pace":
            self.pace = message[1]
            self.next_step_at = time.monotonic()
            for state in self.runs.values():
                state.reset_rate()
        self.urgent = True

    def can_train(self) -> bool:
        if not any(not s.finished(self.max_steps) for s in self.runs.values()):
            return False
        return self.step_requests > 0 or not self.paused

    def loop(self) -> None:
        conn = self.conn
        while not self.stopping:
            now = time.monotonic()
            training = self.can_train()
            if not training:
                wait = PARENT_CHECK_S
            elif self.step_requests or self.pace is None:
                wait = 0.0
            else:
                wait = max(0.0, self.next_step_at - now)
            if self.urgent:
                wait = 0.0
            elif self._has_news():
                wait = min(wait, max(0.0, self.last_send + self.send_interval - now))
            if conn.poll(wait):
                while not self.stopping and conn.poll():
                    self.handle(conn.recv())
                if self.stopping:
                    return
            now = time.monotonic()
            if self.can_train() and (self.step_requests or self.pace is None
                                     or now >= self.next_step_at):
                self.tick(now)
            now = time.monotonic()
            if self.urgent or (self._has_news() and now - self.last_send >= self.send_interval):
                self.send(now)
            if now - self.last_parent_check > PARENT_CHECK_S:
                self.last_parent_check = now
                if os.getppid() != self.parent_pid:
                    return

    def tick(self, now: float) -> None:
        """One step of every run still going."""
        for state in self.runs.values():
            state.step(self.max_steps)
        if self.step_requests:
            self.step_requests -= 1
            self.urgent = True
        elif self.pace is not None:
            # Keep to the pace, but do not try to catch up on more than half a second.
            self.next_step_at = max(self.next_step_at + 1.0 / self.pace, now - 0.5)
        if not self.can_train():
            self.urgent = True          # diverged or done: say so at once

    def _has_news(self) -> bool:
        return any(s.pending.steps or s.pending.events for s in self.runs.values())

    def send(self, now: float) -> None:
        running = not self.paused and self.can_train()
        runs = {name: s.take(now, self.max_steps, running) for name, s in self.runs.items()}
        self.conn.send(Update(self.generation, self.paused, self.pace, runs))
        self.last_send = now
        self.urgent = False


def _has_fd(stream) -> bool:
    try:
        return stream is not None and stream.fileno() >= 0
    except (OSError, ValueError, AttributeError):
        return False


def _clip_label(settings: Settings) -> str:
    return f"clip {settings.clip_mode} {settings.clip:g}" if settings.clipping else "clip off"
