"""The learner's own cell in the lab: the engine-compatible stepwise cell, offered only once the
exercise passes, trained in a limited process of its own, and every way it can fail turned into
one line with the lab still working."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from tutor.engine import Settings
from tutor.engine import reference as ref
from tutor.engine.cells.stepwise import StepError, StepwiseCell
from tutor.engine.run import Run
from tutor.exercises.catalog import BY_NUMBER
from tutor.exercises.lab_offer import own_cell_offer
from tutor.exercises.record import ExerciseRecord
from tutor.lab import status
from tutor.lab.own_cell import OwnCell
from tutor.lab.session import LabSession

SMALL = Settings(cell="lstm", task="adding", seq_len=12, hidden=6, batch=4, dtype="float64")
EXERCISE = {"rnn": 1, "lstm": 4, "gru": 5}


def wait(session: LabSession, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out; status: {session.notice!r}"
        session.poll()
        time.sleep(0.02)


def losses(session: LabSession) -> list[float]:
    return session.history.runs["main"].loss.ys


def workspace_file(tmp_path, kind: str, body: str | None = None):
    """The exercise file for `kind` in a temporary workspace: the reference solution, or
    `body` appended to it (a later definition replaces a function)."""
    ex = BY_NUMBER[EXERCISE[kind]]
    path = tmp_path / ex.file
    path.write_text(ex.solution + ("\n\n" + body if body else ""), encoding="utf-8")
    return path


def own(path, kind="lstm", **limits) -> OwnCell:
    ex = BY_NUMBER[EXERCISE[kind]]
    return OwnCell(kind, str(path), ex.functions[0], ex.functions[1], **limits)


@pytest.fixture
def session():
    made = []

    def make(settings=SMALL, **kwargs) -> LabSession:
        s = LabSession(settings, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# ---- the cell itself, in this process (the reference step functions are trusted code) -----------

@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_a_stepwise_cell_of_the_reference_steps_trains_like_the_engine(kind):
    settings = SMALL.replace(cell=kind)
    engine = Run(settings)
    stepwise = Run(settings, implementation=StepwiseCell(kind, *ref.STEPS[kind]))
    for _ in range(4):
        a, b = engine.step(), stepwise.step()
        engine.attach_mechanism(a)
        stepwise.attach_mechanism(b)
        assert b.loss == pytest.approx(a.loss, rel=1e-10)
        for name in ("grad_norm_per_step", "gate_per_step", "cell_grad_norm_per_step",
                     "input_grad_norm_per_step", "param_grad_norm_per_step",
                     "jacobian_norm_per_step"):
            want, got = getattr(a, name), getattr(b, name)
            assert (want is None) == (got is None), name
            if want is not None:
                np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12, err_msg=name)


def test_truncation_and_a_per_step_loss_work_through_a_stepwise_cell():
    settings = SMALL.replace(cell="gru", task="echo", truncate=3)
    engine = Run(settings)
    stepwise = Run(settings, implementation=StepwiseCell("gru", *ref.STEPS["gru"]))
    for _ in range(3):
        assert stepwise.step().loss == pytest.approx(engine.step().loss, rel=1e-10)


def test_a_step_that_returns_nan_from_finite_inputs_is_named():
    def forward(x, h_prev, *weights):
        h, cache = ref.rnn_step_forward(x, h_prev, *weights)
        return h * np.nan if len(cache) and h_prev.any() else h, cache

    run = Run(SMALL.replace(cell="rnn"),
              implementation=StepwiseCell("rnn", forward, ref.rnn_step_backward))
    with pytest.raises(StepError) as err:
        run.step()
    assert (err.value.function, err.value.t) == ("forward", 2)
    assert "NaN in h from finite inputs" in err.value.message


def test_a_wrongly_shaped_gradient_is_named_with_its_step():
    def backward(dh, cache):
        dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh = ref.rnn_step_backward(dh, cache)
        return dx, dh_prev, dW_ih.T, dW_hh, db_ih, db_hh

    run = Run(SMALL.replace(cell="rnn"),
              implementation=StepwiseCell("rnn", ref.rnn_step_forward, backward))
    with pytest.raises(StepError) as err:
        run.step()
    assert err.value.t == SMALL.seq_len                      # the first backward step: t = T
    assert "dW_ih of shape (2, 6); it should be (6, 2)" in err.value.message


# ---- only once the exercise passes ----------------------------------------------------------------

def test_the_own_cell_is_offered_only_when_its_exercise_passes(tmp_path):
    record_path = tmp_path / "exercises.json"
    workspace_file(tmp_path, "lstm")
    said = own_cell_offer("lstm", tmp_path, record_path)
    assert isinstance(said, str) and "04_lstm_step.py" in said and "not checked yet" in said
    record = ExerciseRecord(record_path)
    record.record_check(4, "fail", "04_lstm_step.py: 1 of 7 results wrong")
    record.save()
    assert "did not pass its last check" in own_cell_offer("lstm", tmp_path, record_path)
    record.record_check(4, "pass", "passed")
    record.save()
    offer = own_cell_offer("lstm", tmp_path, record_path)
    assert isinstance(offer, OwnCell)
    assert (offer.kind, offer.file, offer.forward) == ("lstm", "04_lstm_step.py",
                                                       "lstm_step_forward")
    assert "rnn, lstm or gru" in own_cell_offer("irnn", tmp_path, record_path)
    later = time.time() + 5                                   # saved after its check
    os.utime(tmp_path / "04_lstm_step.py", (later, later))
    assert "04_lstm_step.py changed since it passed; check it again" in own_cell_offer(
        "lstm", tmp_path, record_path)
    assert json.loads(record_path.read_text())["exercises"]["4"]["status"] == "pass"


# ---- in the lab: the learner's file in its own process -------------------------------------------

def test_the_lab_trains_the_learners_cell_with_the_engines_losses(session, tmp_path):
    engine = Run(SMALL)                                   # the engine's own lstm
    expected = [engine.step().loss for _ in range(5)]
    mine = session(paused=True)                           # five steps exactly, one at a time
    mine.use_own_cell(own(workspace_file(tmp_path, "lstm")))
    mine.start()
    for _ in range(5):
        mine.step_once()
    wait(mine, lambda: mine.history.runs["main"].step >= 5)
    assert mine.history.runs["main"].loss.xs == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(losses(mine), expected, rtol=1e-9)
    assert mine.trainer.own is not None
    engine = session()
    assert engine.trainer.own is None
    fields = [text for text, _ in status.settings_fields(mine)]
    assert fields[:2] == ["your lstm (from 04_lstm_step.py) · slower ·", "adding"]
    from tutor.lab.reproduce import caveats
    assert any("your own lstm from 04_lstm_step.py" in note for note in caveats(mine))
    assert not caveats(engine)
    latest = mine.history.runs["main"].latest
    assert {"grad_norm_per_step", "gate_per_step", "cell_grad_norm_per_step"} <= set(latest)


def test_a_cell_key_goes_back_to_the_engines_cell_in_a_fresh_process(session, tmp_path):
    s = session()
    s.use_own_cell(own(workspace_file(tmp_path, "lstm")))
    s.start()
    wait(s, lambda: len(losses(s)) >= 2)
    limited = s.trainer.pid
    s.set_cell("lstm")
    assert s.own is None and s.trainer.own is None and s.trainer.pid != limited
    wait(s, lambda: len(losses(s)) >= 2)
    assert status.settings_fields(s)[0][0] == "lstm adding"


FAILURES = {
    "raises": ("def lstm_step_backward(dh, dc, cache):\n"
               "    return cache[99]\n",
               "lstm_step_backward() at t = 12: IndexError: tuple index out of range"),
    "hangs": ("def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):\n"
              "    while True:\n"
              "        pass\n",
              "stopped after 1 s (the time limit for a step): an endless loop?"),
    "is slow": ("def lstm_step_backward(dh, dc, cache):\n"
                "    time.sleep(0.2)\n"
                "    return _reference_backward(dh, dc, cache)\n",
                "stopped at 1 s, the time limit for a training step; its earlier calls "
                "returned, so it may only be slow here"),
    "allocates": ("def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):\n"
                  "    grab = np.ones((1 << 30,))\n"
                  "    return grab\n",
                  "ran out of memory (it may use 256 MiB beyond the lab's own)"),
    "makes NaN": ("def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):\n"
                  "    h, c, cache = _reference_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih,"
                  " b_hh)\n"
                  "    return h / 0.0 * 0.0, c, cache\n",
                  "lstm_step_forward() at t = 1: returned NaN in h from finite inputs"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failing_learner_step_is_one_line_and_r_brings_the_engine_back(session, tmp_path,
                                                                         failure):
    body, expected = FAILURES[failure]
    body = ("import time\n_reference_forward = lstm_step_forward\n"
            "_reference_backward = lstm_step_backward\n\n\n" + body)
    path = workspace_file(tmp_path, "lstm", body)
    s = session()
    s.use_own_cell(own(path, step_seconds=1.0, memory_bytes=256 << 20))
    s.start()
    wait(s, lambda: s.own_failed is not None)
    line = s.own_failed
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("04_lstm_step.py:")
    assert expected in line, line
    if failure != "makes NaN":                   # the error is raised on a line of the file
        assert line.split(":")[1].isdigit(), line
    flags = [text for text, _ in status.progress_fields(s)]
    assert "your lstm stopped · r: back to the engine's lstm" in flags and line in flags
    assert "starting…" not in flags
    s.reset_run()
    assert s.own is None and s.trainer.own is None
    wait(s, lambda: len(losses(s)) >= 2)
    assert s.notice == ""


def test_a_file_that_does_not_load_is_one_line(session, tmp_path):
    path = tmp_path / "04_lstm_step.py"
    path.write_text("import numpy as np\n\ndef lstm_step_forward(x:\n", encoding="utf-8")
    s = session()
    s.use_own_cell(own(path))
    s.start()
    wait(s, lambda: s.own_failed is not None)
    assert s.own_failed.startswith("04_lstm_step.py:3: SyntaxError")
    assert not s.history.runs["main"].loss.ys                 # nothing trained instead


def test_a_step_stuck_inside_one_numpy_call_is_ended_by_the_kernel_and_said(session, tmp_path):
    body = ("def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):\n"
            "    a = np.ones((300, 300))\n"
            "    return np.einsum('ij,jk,kl->il', a, a, a)\n")   # ~10 s of CPU in one C call
    s = session()
    s.use_own_cell(own(workspace_file(tmp_path, "lstm", body), step_seconds=1.0))
    s.start()
    wait(s, lambda: s.own_failed is not None, 60)
    assert s.own_failed == ("04_lstm_step.py: a step of your lstm ran past 1 s inside one NumPy "
                            "call and was stopped")
    s.reset_run()
    wait(s, lambda: len(losses(s)) >= 2)


async def test_y_in_the_lab_offers_the_learners_cell_only_once_it_passes(tmp_path, monkeypatch):
    from tutor.exercises.workspace import open_workspace
    from tutor.lab.modes import TrainLab
    from tutor.ui.host import HostApp
    from tutor.ui.lab import LabPane

    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(tmp_path))
    folder = open_workspace().path
    app = HostApp(TrainLab(SMALL.replace(cell="rnn", dtype="float32")), "rnn-tutor lab")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        await pilot.press("y")
        assert pane.session.own is None
        assert "once 01_rnn_step.py passes: it is not checked yet" in pane.status_text
        (folder / "01_rnn_step.py").write_text(BY_NUMBER[1].solution, encoding="utf-8")
        record, _ = ExerciseRecord.load()
        record.record_check(1, "pass", "passed")
        record.save()
        await pilot.press("y")
        assert pane.session.own is not None and pane.session.own.file == "01_rnn_step.py"
        deadline = time.monotonic() + 30
        while not (pane.history.runs["main"].step >= 3 and pane.session.trainer.own):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        assert "your rnn (from 01_rnn_step.py) · slower · adding T=12" in pane.status_text
        await pilot.press("y")
        assert pane.session.own is None and pane.session.trainer.own is None
        assert pane.status_text.startswith("rnn adding")
