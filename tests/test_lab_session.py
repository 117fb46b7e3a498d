"""The lab session without a screen: its state, its verbs, and the one live-or-fresh decision,
driving the real training process."""
from __future__ import annotations

import os
import signal
import time

import pytest

from tutor.engine import Settings
from tutor.lab import status
from tutor.lab.ending import EARLIEST_FRESH
from tutor.lab.protocol import Live, Start
from tutor.lab.session import LabSession
from tutor.lab.worker import LOST

FAST = Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)


@pytest.fixture
def session():
    made = []

    def make(settings=FAST, **kwargs) -> LabSession:
        s = LabSession(settings, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def wait(session: LabSession, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        session.poll()
        time.sleep(0.02)


def sent(session: LabSession) -> list:
    """Record the commands the session sends from now on."""
    log = []
    real = session.trainer.send
    session.trainer.send = lambda command: (log.append(command), real(command))[1]
    return log


def main(session):
    return session.history.runs["main"]


def test_clipping_is_live_and_a_cell_change_is_a_fresh_generation(session):
    s = session()
    s.start()
    wait(s, lambda: main(s).step >= 5)
    log = sent(s)
    gen = s.generation
    s.toggle_clip()
    assert s.generation == gen and s.settings.clip == 1.0
    assert log == [Live(gen, {"main": FAST.replace(clip=1.0)})]
    wait(s, lambda: main(s).events)
    assert main(s).events[-1][1] == "clip norm 1" and main(s).step > 5   # the run went on
    s.set_cell("gru")
    assert s.generation == gen + 1 and isinstance(log[-1], Start)
    assert s.history.ghost is not None and s.history.ghost[0] == "rnn"
    wait(s, lambda: main(s).step >= 3)
    assert main(s).settings.cell == "gru" and main(s).baseline is not None


def test_stale_updates_never_reach_the_new_history(session):
    s = session()
    s.start()
    wait(s, lambda: main(s).step >= 20)
    s.scale_lr(2.0)                           # fresh: the old generation's messages are stale
    assert main(s).step == 0 and s.history.generation == s.generation
    wait(s, lambda: main(s).step >= 3)
    run = main(s)
    # The new run's own steps from its first, none of the old one's (a fast run may already have
    # merged its first points pairwise, hence the stride).
    assert run.loss.points()[0][0] <= run.loss.stride and run.loss.count == run.step


def test_pause_is_held_once_and_steps_before_start_are_kept(session):
    s = session(paused=True)
    s.step_once()
    s.step_once()
    assert s.paused and s.history.paused and not s.started
    s.start()
    wait(s, lambda: main(s).step == 2)
    time.sleep(0.3)
    s.poll()
    assert main(s).step == 2                  # paused: nothing more trains
    s.toggle_pause()
    assert not s.paused and not s.history.paused
    wait(s, lambda: main(s).step > 10)


def test_compare_mode_and_the_preset(session):
    s = session(FAST.replace(clip=0.5))
    s.start()
    s.toggle_compare()
    assert set(s.history.runs) == {"rnn", "lstm", "gru"}
    assert status.settings_fields(s)[0][0] == "rnn+lstm+gru echo"
    s.toggle_clip()                            # off, remembering 0.5
    s.scale_lr(0.5)
    s.toggle_clip()
    assert s.settings.clip == 0.5 and s.settings.lr == FAST.lr / 2
    s.restore_preset()
    assert not s.compare and s.settings == FAST.replace(clip=0.5)
    assert list(s.history.runs) == ["main"]


def test_the_ladder_says_when_it_ends_and_the_status_names_it(session):
    s = session(FAST.replace(seq_len=2000))
    gen = s.generation
    s.change_seq_len(up=True)
    assert s.generation == gen and s.settings.seq_len == 2000
    assert s.notice == "T is already 2000, the longest on the ladder"
    assert ("T is already 2000, the longest on the ladder", "italic") in \
        status.progress_fields(s)
    s.change_seq_len(up=False)
    assert s.settings.seq_len == 1500 and s.notice == ""


def test_settings_from_the_panel_are_live_or_fresh_as_they_need(session):
    s = session()
    gen = s.generation
    s.apply_settings(FAST.replace(clip=2.0, clip_mode="value"))
    assert s.generation == gen and s.clip_threshold == 2.0
    s.apply_settings(FAST.replace(hidden=16))
    assert s.generation == gen + 1
    with pytest.raises(ValueError):
        s.apply_settings(Settings(lr=-1.0))


def test_a_lost_process_is_said_once_and_reset_brings_it_back(session):
    s = session()
    s.start()
    wait(s, lambda: main(s).step > 0)
    os.kill(s.trainer.pid, signal.SIGKILL)
    wait(s, lambda: s.notice == LOST)
    assert not s.trainer.alive
    s.reset_run()
    assert s.trainer.alive and s.notice == ""
    wait(s, lambda: main(s).step > 0)


def test_on_change_follows_every_verb(session):
    s = session()
    calls = []
    s.on_change = lambda: calls.append(1)
    for verb in (s.toggle_pause, s.cycle_pace, s.toggle_clip, s.reseed, s.toggle_compare,
                 s.reset_run, s.restore_preset):
        before = len(calls)
        verb()
        assert len(calls) > before, verb.__name__
    s.close()
    s.reset_run()                              # closed: the verb changes state, starts nothing
    assert not s.trainer.alive


def test_shorter_t_stops_at_the_task_minimum(session):
    from tutor.engine.settings import TASK_MIN_LEN
    for task in ("echo", "adding", "language"):
        s = session(FAST.replace(task=task, seq_len=10))
        for _ in range(8):
            s.change_seq_len(up=False)
        assert s.settings.seq_len >= TASK_MIN_LEN[task]
        assert "shortest" in s.notice


# ---- every run has an end ---------------------------------------------------------------------

def test_a_run_ends_at_its_budget_and_space_trains_on_for_another(session):
    s = session(budget=40)
    s.start()
    wait(s, lambda: s.ended == "budget")
    time.sleep(0.3)
    s.poll()
    assert main(s).step == 40                  # the worker waits at the budget exactly
    flag = status.progress_fields(s)[0]
    assert flag == ("done at step 40 — space to train on", "bold reverse")
    s.toggle_pause()                           # space: train on
    assert s.ended is None and not s.paused
    wait(s, lambda: s.ended == "budget")
    assert main(s).step == 80


def test_a_single_step_after_the_end_takes_one_step_and_stays_paused(session):
    s = session(budget=10)
    s.start()
    wait(s, lambda: s.ended)
    s.step_once()
    assert s.ended is None and s.paused
    wait(s, lambda: main(s).step == 11)


def test_a_fresh_run_gets_a_fresh_budget(session):
    s = session(budget=30)
    s.start()
    wait(s, lambda: s.ended)
    s.reseed()
    assert s.ended is None and s.limit == 30
    wait(s, lambda: s.ended == "budget" and main(s).settings.seed == FAST.seed + 1)


def test_a_learned_run_that_levelled_off_ends_by_itself(session):
    s = session(budget=100_000)                # echo at T = 10: solved in ~100 steps
    s.start()
    wait(s, lambda: s.ended == "plateau", timeout=180)   # 2,000+ steps on a busy machine
    end = main(s).step
    assert EARLIEST_FRESH <= end < 100_000     # lessons measure learned runs up to 2,000 steps
    assert ("the loss levelled off", "italic") in status.progress_fields(s)
    time.sleep(0.3)
    s.poll()
    assert main(s).step <= end + 100           # it stopped (a few steps may have been in flight)


def test_training_is_held_off_screen_and_picks_up_when_shown():
    now = [0.0]
    s = LabSession(FAST, clock=lambda: now[0])
    try:
        s.start()
        wait(s, lambda: main(s).step > 0)
        s.set_on_screen(False)
        now[0] = 29.0
        s.set_on_screen(False)
        assert not s.held                      # a quick look at the lesson does not stop it
        now[0] = 31.0
        s.set_on_screen(False)
        assert s.held and not s.paused
        assert status.progress_fields(s)[0][0] == "paused while the lab is off screen"
        time.sleep(0.3)
        s.poll()
        held_at = main(s).step
        time.sleep(0.4)
        s.poll()
        assert main(s).step == held_at
        s.set_on_screen(True)
        assert not s.held
        wait(s, lambda: main(s).step > held_at)
    finally:
        s.close()


def test_an_experiment_is_measured_from_its_own_run_and_ended_by_another_verb(session):
    s = session(paused=True)
    s.start()
    s.toggle_compare()
    experiment = s.run_experiment(FAST.replace(seq_len=20), "clipped_share", 30)
    assert not s.paused and not s.compare and s.settings.seq_len == 20
    assert experiment.generation == s.generation and experiment.state == "running"
    wait(s, lambda: experiment.state != "running")
    assert experiment.state == "measured" and experiment.measurement.value == 0.0  # clip off
    assert main(s).step >= 30                              # the lab's own run, still going

    loss = s.run_experiment(FAST, "loss", 3000)
    s.reseed()                                             # the learner changes the run
    assert loss.state == "interrupted" and s.experiment is None
    assert loss.interrupted == "the lab's settings changed during the experiment"
    s.poll()
    assert loss.measurement.seen == 0 or loss.measurement.seen < 3000


def test_a_prediction_run_is_not_held_off_screen():
    """At 80×24 the learner answers a prediction with the lab hidden: its run must go on."""
    now = [0.0]
    s = LabSession(FAST, clock=lambda: now[0])
    try:
        s.start()
        wait(s, lambda: main(s).step > 0)
        s.set_on_screen(False)
        now[0] = 31.0
        s.set_on_screen(False)
        assert s.held                           # held, as any lab left off screen
        experiment = s.run_experiment(FAST, "loss", 40)
        assert not s.held                       # the experiment releases the hold
        now[0] = 100.0
        s.set_on_screen(False)
        assert not s.held
        wait(s, lambda: experiment.state == "measured")
        now[0] = 200.0
        s.set_on_screen(False)
        s.set_on_screen(False)
        assert s.held                           # once measured, the usual rule again
    finally:
        s.close()
