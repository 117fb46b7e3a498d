"""The training process: trains a generation's runs in a child process and streams updates.

    trainer = TrainerProcess(max_steps=None, send_hz=10)
    trainer.start(Start(1, {"main": Settings(cell="lstm")}), paused=False, pace=None)
    trainer.send(Live(1, {"main": settings.replace(clip=1.0)}))   # clipping from the next step
    messages = trainer.poll()      # Update and Error messages, in order; never blocks
    trainer.close()                # the child is gone within ~0.5 s

This is a pipe with a process at the other end, nothing more: which generation counts, and whether
a change is live or a fresh run, the `LabSession` decides. Training never shares the UI's
interpreter (a thread looping over small NumPy ops holds the GIL and wrecks key latency), so the
child is a separate "spawn" process. It sends at most `send_hz` messages a second whatever its step
rate, exits on its own when the parent dies (pipe EOF or a changed parent pid), and never writes
to the terminal.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import types
from collections import deque

from tutor.blas import ONE_THREAD
from tutor.engine.run import PER_STEP_FIELDS, Run
from tutor.engine.settings import Settings

from .autocomplete import predict_runs
from .own_cell import OwnCell, OwnCellFailed, StepClock, failure_line, limit_process, load
from .protocol import (CellFailed, Command, Error, Limit, Live, Message, Pace, Pause, Predict,
                       RunUpdate, Start, Step, Stop, Update)

PACES = (None, 50.0, 10.0, 2.0)   # steps per second per run; None is full speed
DEFAULT_SEND_HZ = 15.0
RATE_WINDOW_S = 1.5                # steps/s is measured over this much recent wall time
# The mechanism arrays are made only for the steps that are sent (`Run.attach_mechanism`);
# ‖∂s_t/∂s_{t−1}‖ costs one SVD per timestep (milliseconds): taken at most this often, and the
# latest one travels with every update in between.
JACOBIAN_INTERVAL_S = 0.5
PARENT_CHECK_S = 0.5
LOST = "the training process stopped unexpectedly; press r to restart it"


class TrainerProcess:
    """Client end of the training process; lives in the UI process."""

    def __init__(self, *, max_steps: int | None = None, send_hz: float = DEFAULT_SEND_HZ):
        self.max_steps = max_steps
        self.send_hz = send_hz
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn = None
        self._lost = False
        self.own: OwnCell | None = None    # the learner's cell the child was started with
        self.messages = 0          # messages received, for checking the child's coalescing

    def start(self, first: Start, *, paused: bool = False, pace: float | None = None,
              limit: int | None = None, own: OwnCell | None = None) -> None:
        """Start a child (replacing any old one) that trains `first` at once, up to `limit`
        steps (see `Limit`). With `own`, the child limits itself and trains the learner's cell
        for every run of that cell (`tutor.lab.own_cell`)."""
        self.close()
        self._lost = False
        self.own = own
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        config = {"first": first, "paused": paused, "pace": pace, "limit": limit,
                  "max_steps": self.max_steps, "send_hz": self.send_hz, "own": own}
        proc = ctx.Process(target=child_main, args=(child_conn, os.getpid(), config),
                           name="rnn-tutor-trainer", daemon=True)
        saved = {k: os.environ.get(k) for k in ONE_THREAD}
        os.environ.update(ONE_THREAD)      # the spawned interpreter inherits them before numpy
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
        """Stop the child: ask, then terminate, then kill; always reaped, never left behind."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            try:
                conn.send(Stop())
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

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def send(self, command: Command) -> None:
        if self._conn is None:
            return
        try:
            self._conn.send(command)
        except (OSError, ValueError):
            self._lost = True

    def poll(self) -> list[Message]:
        """Every message waiting in the pipe, in order, and one Error when the child is lost."""
        conn = self._conn
        if conn is None:
            return []
        messages: list[Message] = []
        try:
            while conn.poll():
                messages.append(conn.recv())
                self.messages += 1
        except (EOFError, OSError):
            self._lost = True
        if self._lost or (self._proc is not None and not self._proc.is_alive()):
            stuck = (self.own is not None and self._proc is not None
                     and self._proc.exitcode == -signal.SIGXCPU)
            messages.append(Error(self.own.stuck_line() if stuck else LOST))
            self.close()
        return messages


# ---- the child ---------------------------------------------------------------------------------

def child_main(conn, parent_pid: int, config: dict) -> None:
    """Entry point of the training process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the UI decides when we stop
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)                         # nothing may scribble on the learner's TUI
        if config.get("own") is not None:       # what the learner's code prints goes nowhere
            os.dup2(devnull, 1)
            sys.stdout = open(os.devnull, "w")
        os.close(devnull)
        sys.stderr = open(os.devnull, "w")
    except OSError:
        pass
    try:
        if config.get("own") is not None:
            limit_process(config["own"])
        _Trainer(conn, parent_pid, config).loop()
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass                                        # the parent is gone
    except Exception as exc:                        # report, do not print
        try:
            conn.send(Error("training stopped: "
                            + " ".join(f"{type(exc).__name__}: {exc}".split())[:200]))
        except Exception:
            pass


class _RunState:
    def __init__(self, name: str, settings: Settings, implementation=None):
        self.name = name
        self.run = Run(settings, implementation=implementation)
        self.pending = RunUpdate(name, self.run.settings, self.run.baseline)
        self.first: dict | None = None
        self.latest = None
        self.jacobian = None           # the newest jacobian_norm_per_step, and when it was taken
        self.jacobian_at = -float("inf")
        self.rate = deque()            # (time, steps) samples for steps/s

    @property
    def settings(self) -> Settings:
        return self.run.settings

    def finished(self, *limits: int | None) -> bool:
        return self.run.diverged or any(n is not None and self.run.steps >= n for n in limits)

    def step(self, max_steps: int | None, limit: int | None) -> None:
        if self.finished(max_steps, limit):
            return
        rec = self.run.step()
        p = self.pending
        p.steps.append(rec.step)
        p.loss.append(float(rec.loss))
        p.accuracy.append(None if rec.accuracy is None else float(rec.accuracy))
        p.long_range_loss.append(None if rec.long_range_loss is None
                                 else float(rec.long_range_loss))
        p.grad_norm.append(float(rec.grad_norm))
        p.clipped.append(bool(rec.clipped))
        p.elapsed_s.append(float(rec.elapsed_s))
        if self.first is None:
            self.first = _per_step(self.run.attach_mechanism(rec))
        self.latest = rec

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
        if self.latest is not None:
            fresh = now - self.jacobian_at >= JACOBIAN_INTERVAL_S
            run.attach_mechanism(self.latest, jacobian=fresh)
            if fresh:
                self.jacobian = self.latest.jacobian_norm_per_step
                self.jacobian_at = now
            p.latest = _per_step(self.latest)
            if self.jacobian is not None:
                p.latest.setdefault("jacobian_norm_per_step", self.jacobian)
            p.first = dict(self.first)
            p.sample = run.sample()
            self.latest = None
        self.pending = RunUpdate(self.name, run.settings, run.baseline)
        return p

    def reset_rate(self) -> None:
        self.rate.clear()


def _per_step(rec) -> dict:
    return {name: getattr(rec, name) for name in PER_STEP_FIELDS
            if getattr(rec, name) is not None}


class _Trainer:
    def __init__(self, conn, parent_pid: int, config: dict):
        self.conn = conn
        self.parent_pid = parent_pid
        self.paused = bool(config["paused"])
        self.pace = config["pace"]
        self.max_steps = config["max_steps"]
        self.limit = config.get("limit")
        self.send_interval = 1.0 / max(1.0, float(config["send_hz"]))
        self.generation = 0
        self.runs: dict[str, _RunState] = {}
        self.stopping = False
        self.urgent = True
        self.step_requests = 0
        self.next_step_at = 0.0
        self.last_send = 0.0
        self.last_parent_check = time.monotonic()
        self.own: OwnCell | None = config.get("own")
        self.own_cell = None             # makes a fresh StepwiseCell of the learner's functions
        self.failed = 0                  # the generation the learner's cell stopped, if any
        self.load_failure: str | None = None
        if self.own is not None:
            try:
                self.own_cell = load(self.own)
            except OwnCellFailed as e:
                self.load_failure = e.line
        self.handle(config["first"])

    def handle(self, command: Command) -> None:
        match command:
            case Stop():
                self.stopping = True
            case Start(generation, runs):
                self.generation = generation
                if self.load_failure is not None:       # never the engine's cell instead
                    self.failed = generation
                    self.conn.send(CellFailed(generation, self.load_failure))
                self.runs = {name: _RunState(name, s, self._implementation(s))
                             for name, s in runs.items()}
                self.step_requests = 0
                self.next_step_at = time.monotonic()
            case Live(generation, runs) if generation == self.generation:
                for name, settings in runs.items():
                    state = self.runs.get(name)
                    if state is not None and state.settings != settings:
                        changed = state.settings.live_change(settings)
                        state.run.apply_live(settings)
                        state.pending.events.append((state.run.steps, changed))
            case Pause(paused):
                self.paused = paused
                self.step_requests = 0
                self._reset_rates()
            case Step():
                self.step_requests += 1
            case Limit(steps):
                self.limit = steps
                self._reset_rates()
            case Pace(steps_per_s):
                self.pace = steps_per_s
                self._reset_rates()
            case Predict():
                runs = {name: state.run for name, state in self.runs.items()}
                answer = self._guarded(lambda: predict_runs(command, self.generation, runs))
                if answer is not None:
                    self.conn.send(answer)
                return                  # an answer, not news of training
        self.urgent = True

    def _reset_rates(self) -> None:
        self.next_step_at = time.monotonic()
        for state in self.runs.values():
            state.reset_rate()

    def _implementation(self, settings: Settings):
        """The learner's cell for a run of its kind, in a process started with one."""
        if self.own_cell is not None and settings.cell == self.own.kind:
            return self.own_cell()
        return None

    def _guarded(self, work):
        """work(), under the time limit when the learner's code may run; None, once the learner's
        cell has failed (the session is told in one line)."""
        if self.own is None:
            return work()
        if self.failed == self.generation:
            return None
        try:
            with StepClock(self.own.step_seconds):
                return work()
        except BaseException as e:              # noqa: BLE001 – the learner's code, anything
            if isinstance(e, KeyboardInterrupt):
                raise
            self.failed = self.generation
            self.urgent = True
            self.conn.send(CellFailed(self.generation, failure_line(e, self.own)))
            return None

    def can_train(self) -> bool:
        if self.failed and self.failed == self.generation:
            return False
        if all(s.finished(self.max_steps, self.limit) for s in self.runs.values()):
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
            self._guarded(lambda: state.step(self.max_steps, self.limit))
        if self.step_requests:
            self.step_requests -= 1
            self.urgent = True
        elif self.pace is not None:
            # Keep to the pace, but do not try to catch up on more than half a second.
            self.next_step_at = max(self.next_step_at + 1.0 / self.pace, now - 0.5)
        if not self.can_train():
            self.urgent = True          # diverged or done: say so at once

    def _has_news(self) -> bool:
        if self.failed and self.failed == self.generation:
            return False
        return any(s.pending.steps or s.pending.events for s in self.runs.values())

    def send(self, now: float) -> None:
        running = not self.paused and self.can_train()
        runs = self._guarded(lambda: {name: s.take(now, self.max_steps, running)
                                      for name, s in self.runs.items()})
        if runs is not None:
            self.conn.send(Update(self.generation, runs))
        self.last_send = now
        self.urgent = False


def _has_fd(stream) -> bool:
    try:
        return stream is not None and stream.fileno() >= 0
    except (OSError, ValueError, AttributeError):
        return False
