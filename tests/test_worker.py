"""The training process: real engine, real child process, real pipe, typed messages."""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tutor.engine import Settings
from tutor.lab.protocol import Error, Live, Pace, Pause, Start, Step, Update
from tutor.lab.worker import LOST, TrainerProcess

FAST = Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)
DIVERGES = Settings(cell="irnn", radius=1.1, optimizer="sgd", lr=0.01)


class Client:
    """The trainer as a session drives it: a generation number and typed commands."""

    def __init__(self, runs, paused=False, pace=None, **kwargs):
        self.trainer = TrainerProcess(**kwargs)
        self.generation = 1
        self.errors: list[str] = []
        self.trainer.start(Start(1, runs), paused=paused, pace=pace)

    def fresh(self, runs) -> None:
        self.generation += 1
        self.trainer.send(Start(self.generation, runs))

    def poll(self) -> Update | None:
        """Updates of the current generation since the last poll, merged; None when none."""
        merged = None
        for message in self.trainer.poll():
            if isinstance(message, Error):
                self.errors.append(message.message)
            elif message.generation == self.generation:
                if merged is None:
                    merged = message
                else:
                    merged.merge(message)
        return merged


def collect(client: Client, until, timeout: float = 15.0) -> list[Update]:
    """Poll until until(updates) holds; every non-empty poll result in order."""
    updates: list[Update] = []
    deadline = time.monotonic() + timeout
    while not until(updates):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last update: {updates[-1] if updates else None}")
        u = client.poll()
        if u is not None:
            updates.append(u)
        time.sleep(0.02)
    return updates


def steps_of(updates: list[Update], name: str = "main") -> list[int]:
    return [s for u in updates if name in u.runs for s in u.runs[name].steps]


def last_run(updates, name="main"):
    return [u.runs[name] for u in updates if name in u.runs][-1]


@pytest.fixture
def trainer():
    made = []

    def make(runs=None, **kwargs) -> Client:
        c = Client(runs or {"main": FAST}, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.trainer.close()


def test_streams_steps_arrays_sample_and_rate(trainer):
    t = trainer({"main": Settings(cell="lstm", task="adding", seq_len=20, hidden=16)})
    ups = collect(t, lambda us: len(steps_of(us)) >= 30 and last_run(us).steps_per_s > 0)
    steps = steps_of(ups)
    assert steps == list(range(1, len(steps) + 1))        # every step, once, in order
    run = last_run(ups)
    assert run.latest["grad_norm_per_step"].shape == (20,)
    assert run.latest["gate_per_step"].shape == (20,)
    assert run.latest["cell_grad_norm_per_step"].shape == (20,)
    assert run.first["grad_norm_per_step"].shape == (20,)
    for name in ("input_grad_norm_per_step", "param_grad_norm_per_step",
                 "jacobian_norm_per_step"):      # the mechanism views' arrays, by their names
        assert run.latest[name].shape == (20,), name
        assert run.first[name].shape == (20,), name
    assert run.sample is not None and run.sample.inputs.startswith("20 numbers")
    assert len(run.sample.input_grad_norm_per_step) == 20
    assert run.baseline.loss == pytest.approx(1 / 6)
    assert all(math.isfinite(x) for x in (u for up in ups for u in up.runs["main"].loss))


def test_step_zero_curve_stays_while_current_curve_moves(trainer):
    t = trainer({"main": Settings(cell="rnn", task="adding", seq_len=20, hidden=16, lr=0.05)})
    ups = collect(t, lambda us: len(steps_of(us)) >= 200)
    first = [u.runs["main"].first["grad_norm_per_step"] for u in ups
             if "grad_norm_per_step" in u.runs["main"].first]
    assert all((f == first[0]).all() for f in first)
    assert not (last_run(ups).latest["grad_norm_per_step"] == first[0]).all()


def test_coalesces_to_a_bounded_message_rate(trainer):
    t = trainer(send_hz=10)
    collect(t, lambda us: len(steps_of(us)) > 0)
    t.trainer.messages = 0
    t0 = time.monotonic()
    ups = collect(t, lambda us: time.monotonic() - t0 > 2.0)
    steps = len(steps_of(ups))
    assert t.trainer.messages <= 2.0 * 10 + 4
    assert steps > 3 * t.trainer.messages         # many steps per message: coalesced, not one each


def test_clip_change_is_live_and_marked(trainer):
    t = trainer()
    gen = t.generation
    collect(t, lambda us: len(steps_of(us)) >= 5)
    t.trainer.send(Live(gen, {"main": FAST.replace(clip=1e-4)}))
    ups = collect(t, lambda us: any(u.runs["main"].events for u in us)
                  and any(u.runs["main"].clipped and all(u.runs["main"].clipped) for u in us))
    events = [e for u in ups for e in u.runs["main"].events]
    assert len(events) == 1 and events[0][1] == "clip norm 0.0001" and events[0][0] >= 5
    after = [s for u in ups for s in u.runs["main"].steps]
    assert after[0] > 5                    # the run went on; no restart


def test_restart_drops_stale_updates(trainer):
    t = trainer()
    collect(t, lambda us: len(steps_of(us)) >= 20)
    t.fresh({"main": FAST.replace(cell="gru")})
    gen = t.generation
    ups = collect(t, lambda us: len(steps_of(us)) >= 10)
    assert all(u.generation == gen for u in ups)
    assert all(u.runs["main"].settings.cell == "gru" for u in ups)
    assert steps_of(ups)[:3] == [1, 2, 3]


def test_pause_then_single_steps(trainer):
    t = trainer()
    collect(t, lambda us: len(steps_of(us)) > 0)
    t.trainer.send(Pause(True))
    time.sleep(0.2)
    t.poll()                               # whatever was already in flight
    time.sleep(0.3)
    assert t.poll() is None                # paused: nothing trains, nothing is sent
    t.trainer.send(Step())
    t.trainer.send(Step())
    ups = collect(t, lambda us: len(steps_of(us)) >= 2)
    time.sleep(0.3)
    tail = t.poll()
    new = steps_of(ups + ([tail] if tail else []))
    assert len(new) == 2 and new[1] == new[0] + 1
    assert last_run(ups).steps_per_s == 0.0


def test_pace_limits_the_step_rate(trainer):
    t = trainer(pace=20.0)
    collect(t, lambda us: len(steps_of(us)) > 0)
    t0 = time.monotonic()
    ups = collect(t, lambda us: time.monotonic() - t0 > 1.5)
    n = len(steps_of(ups))
    assert 15 <= n <= 45, n                # ~30 at 20 steps/s
    t.trainer.send(Pace(None))
    t1 = time.monotonic()
    ups = collect(t, lambda us: time.monotonic() - t1 > 1.0)
    assert len(steps_of(ups)) > 100


def test_max_steps_stops_and_says_done(trainer):
    t = trainer(max_steps=25)
    ups = collect(t, lambda us: us and last_run(us).done)
    time.sleep(0.3)
    tail = t.poll()
    assert steps_of(ups) == list(range(1, 26))
    assert tail is None or steps_of([tail]) == []


def test_divergence_is_a_state_and_the_child_stays(trainer):
    t = trainer({"main": DIVERGES})
    ups = collect(t, lambda us: us and last_run(us).status == "diverged")
    run = last_run(ups)
    assert run.diverged_at == 2 and t.trainer.alive and not t.errors
    t.fresh({"main": FAST})                    # and it trains again after
    ups = collect(t, lambda us: len(steps_of(us)) >= 5)
    assert last_run(ups).status == "ok"


def test_compare_runs_step_in_lockstep(trainer):
    runs = {c: Settings(cell=c, task="echo", seq_len=10, hidden=8, batch=8)
            for c in ("rnn", "lstm", "gru")}
    t = trainer(runs)
    ups = collect(t, lambda us: all(len(steps_of(us, c)) >= 10 for c in runs))
    counts = {c: len(steps_of(ups, c)) for c in runs}
    assert max(counts.values()) - min(counts.values()) <= 1
    samples = {c: last_run(ups, c).sample.inputs for c in runs}
    assert len(set(samples.values())) == 1    # same seed, same batches


def test_close_is_quick_and_leaves_nothing(trainer):
    t = trainer()
    collect(t, lambda us: len(steps_of(us)) > 0)
    pid = t.trainer.pid
    t0 = time.monotonic()
    t.trainer.close()
    assert time.monotonic() - t0 < 0.6
    assert not _alive(pid)
    assert multiprocessing.active_children() == []
    t.fresh({"main": FAST.replace(cell="gru")})    # a closed trainer stays closed
    assert t.poll() is None
    assert t.trainer.pid is None and multiprocessing.active_children() == []


def test_child_limits_blas_threads_without_touching_ours(trainer):
    before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    t = trainer()
    collect(t, lambda us: len(steps_of(us)) > 0)     # up and running (exec has finished)
    with open(f"/proc/{t.trainer.pid}/environ", "rb") as fh:
        env = dict(item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item)
    assert env[b"OMP_NUM_THREADS"] == b"1" and env[b"OPENBLAS_NUM_THREADS"] == b"1"
    assert {k: os.environ.get(k) for k in before} == before


def test_child_exits_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from tutor.engine import Settings
        from tutor.lab.protocol import Start
        from tutor.lab.worker import TrainerProcess
        t = TrainerProcess()
        t.start(Start(1, {"main": Settings(cell="rnn", task="echo", seq_len=10)}))
        print(t.pid, flush=True)
        time.sleep(60)
    """))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": root})
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 3
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait()


def test_a_killed_child_is_reported_and_restart_recovers(trainer):
    t = trainer()
    collect(t, lambda us: len(steps_of(us)) > 0)
    os.kill(t.trainer.pid, signal.SIGKILL)
    collect(t, lambda us: t.errors)
    assert t.errors == [LOST] and "stopped unexpectedly" in LOST
    assert not t.trainer.alive and t.trainer.poll() == []    # reported once, then quiet
    t.trainer.start(Start(t.generation, {"main": FAST}))
    t.errors.clear()
    ups = collect(t, lambda us: len(steps_of(us)) > 0)
    assert t.trainer.alive and not t.errors


def _alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
