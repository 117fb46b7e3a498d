"""Prediction checkpoints: the ```predict format, grading from a measured value, and the
measurement folded from the lab's run updates."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from tutor.engine.settings import Settings
from tutor.lab.measures import MEASURES, ExperimentRun, Measurement, describe_value
from tutor.lab.protocol import RunUpdate, Update
from tutor.lessons import load_lessons
from tutor.predict_format import Band

PREDICT = """```predict
id: ratio
ask: At T = 10, how will ‖∂L/∂h_1‖ compare with ‖∂L/∂h_T‖ at step 0?
run: seq_len=10
measure: grad_ratio at step 0
- About the same.
  = above 0.1
  > Nine Jacobians are not free.
+ Hundreds of times smaller.
  = 1e-6 to 0.1
  > Right: about 0.6⁹.
- A million times smaller or less.
  = below 1e-6
  > The fade is per step.
```
"""


def lesson_text(block: str = PREDICT, front: str = "cell: rnn\ntask: adding\nseq_len: 50") -> str:
    return f"---\ntitle: Predict\n{front}\n---\nSome text.\n\n{block}\nMore text.\n"


def load(tmp_path: Path, text: str):
    (tmp_path / "01-one.md").write_text(text, encoding="utf-8")
    return load_lessons(tmp_path)


def reason(tmp_path: Path, text: str) -> str:
    result = load(tmp_path, text)
    assert not result.lessons and len(result.broken) == 1
    message = result.broken[0].reason
    assert "\n" not in message
    return message


def test_a_prediction_parses_into_its_experiment_and_ranges(tmp_path):
    result = load(tmp_path, lesson_text())
    assert result.broken == []
    lesson = result.lessons[0]
    (cp,) = lesson.checkpoints
    assert cp.predicts and cp.id == "ratio"
    assert cp.experiment.settings == lesson.settings.replace(seq_len=10)
    assert lesson.settings.seq_len == 50              # the preset itself is unchanged
    assert (cp.experiment.measure, cp.experiment.step) == ("grad_ratio", 0)
    assert [o.band for o in cp.options] == [Band(0.1, None), Band(1e-6, 0.1), Band(None, 1e-6)]
    assert [o.correct for o in cp.options] == [False, True, False]
    assert lesson.parts[1] is cp


@pytest.mark.parametrize("value, chosen", [
    (4e-3, 1), (0.1, 0), (1e-6, 1), (9.99e-7, 2), (5.0, 0), (0.0, 2), (math.inf, 0)])
def test_grading_picks_the_one_range_that_holds_the_value(tmp_path, value, chosen):
    (cp,) = load(tmp_path, lesson_text()).lessons[0].checkpoints
    assert cp.outcome(value) == chosen          # [low, high): a bound belongs to the range above


def test_percent_bounds_and_any_option_order(tmp_path):
    block = """```predict
id: acc
ask: Accuracy at step 200?
run: reverse_input=true, task=remember
measure: accuracy at step 200
+ High.
  = above 90%
  > Yes.
- Low.
  = below 40%
  > No.
- Middle.
  = 40% to 90%
  > No.
```
"""
    (cp,) = load(tmp_path, lesson_text(block)).lessons[0].checkpoints
    assert cp.experiment.settings.reverse_input and cp.experiment.settings.task == "remember"
    assert [cp.outcome(v) for v in (0.95, 0.3, 0.5, 0.9, 0.4)] == [0, 1, 2, 0, 2]


BROKEN = [
    ("measure: grad_ratio at step 0\n", "measure: gradient_ratio at step 0\n",
     "unknown measurement 'gradient_ratio'; did you mean 'grad_ratio'?"),
    ("measure: grad_ratio at step 0\n", "measure: grad_ratio\n", "must be 'NAME at step N'"),
    ("measure: grad_ratio at step 0\n", "measure: grad_ratio at step 5\n",
     "grad_ratio is read at step 0 only"),
    ("measure: grad_ratio at step 0\n", "measure: loss at step 0\n",
     "loss is read at a step from 1 to 3000, not 0"),
    ("measure: grad_ratio at step 0\n", "measure: accuracy at step 10\n",
     "the adding task has no accuracy"),
    ("measure: grad_ratio at step 0\n", "measure: gate_mean at step 0\n",
     "gate_mean exists only for cell lstm or gru"),
    ("measure: grad_ratio at step 0\n", "", "has no 'measure:' line"),
    ("run: seq_len=10\n", "run: seq_lenn=10\n", "'seq_lenn' is not a lab setting; did you mean 'seq_len'?"),
    ("run: seq_len=10\n", "run: seq_len=0\n", "line 12: run: sequence length must be between"),
    ("run: seq_len=10\n", "run: seq_len 10\n", "run: takes key=value changes"),
    ("run: seq_len=10\n", "run: lr=fast\n", "lr must be a number, not 'fast'"),
    ("  = above 0.1\n", "  = over 0.1\n", "a range is '= below X', '= X to Y' or '= above X'"),
    ("  = above 0.1\n", "", "the option has no '  = ' range line"),
    ("  = above 0.1\n", "  = above 0.2\n", "must meet exactly"),
    ("  = below 1e-6\n", "  = 1e-9 to 1e-6\n", "make the lowest range '= below X'"),
    ("  = 1e-6 to 0.1\n", "  = 0.1 to 1e-6\n", "is empty"),
    ("- About the same.\n", "+ About the same.\n", "marks 2 options with '+ '"),
    ("+ Hundreds of times smaller.\n", "- Hundreds of times smaller.\n", "has no correct option"),
]


@pytest.mark.parametrize("old, new, expected", BROKEN, ids=[b[2][:30] for b in BROKEN])
def test_a_broken_declaration_is_one_line_about_that_lesson(tmp_path, old, new, expected):
    assert old in PREDICT
    message = reason(tmp_path, lesson_text(PREDICT.replace(old, new, 1)))
    assert expected in message


def test_a_prediction_needs_a_training_lab(tmp_path):
    message = reason(tmp_path, lesson_text(front="mode: worked"))
    assert "prediction checkpoints need a lesson with a training lab" in message


def test_one_broken_prediction_leaves_the_other_lessons_loading(tmp_path):
    (tmp_path / "02-two.md").write_text(lesson_text(), encoding="utf-8")
    result = load(tmp_path, lesson_text(PREDICT.replace("grad_ratio at", "ratio at")))
    assert [l.slug for l in result.lessons] == ["two"]
    assert [b.name for b in result.broken] == ["01-one.md"]


def test_a_predict_block_inside_a_code_block_is_shown_not_asked(tmp_path):
    text = lesson_text("````\n" + PREDICT + "````\n")
    lesson = load(tmp_path, text).lessons[0]
    assert lesson.checkpoints == [] and "```predict" in lesson.parts[0]


# ---- the measurement, folded from updates -------------------------------------------------

def update(steps, loss=None, accuracy=None, grad_norm=None, clipped=None, first=None,
           status="ok", diverged_at=None, done=False, generation=1):
    n = len(steps)
    run = RunUpdate("main", Settings(), None, steps=list(steps),
                    loss=list(loss or [1.0] * n), accuracy=list(accuracy or [None] * n),
                    grad_norm=list(grad_norm or [1.0] * n), clipped=list(clipped or [False] * n),
                    first=first or {}, step=steps[-1] if steps else 0, status=status,
                    diverged_at=diverged_at, done=done)
    return Update(generation, {"main": run})


def test_window_means_are_read_at_step_n_across_updates():
    m = Measurement("loss", 30)
    m.absorb(update(range(1, 16), loss=[9.0] * 15).runs["main"])
    assert not m.finished and m.seen == 15
    m.absorb(update(range(16, 41), loss=[1.0] * 5 + [2.0] * 20).runs["main"])
    # steps 11..30: five 9s (11-15), five 1s (16-20), ten 2s (21-30)
    assert m.value == pytest.approx((5 * 9 + 5 * 1 + 10 * 2) / 20)


def test_step_zero_ratios_come_from_the_first_steps_arrays():
    m = Measurement("grad_ratio", 0)
    m.absorb(update([1], first={"grad_norm_per_step": [1e-6, 0.5, 2.0]}).runs["main"])
    assert m.value == pytest.approx(5e-7)
    gate = Measurement("gate_mean", 0)
    gate.absorb(update([1], first={"gate_per_step": [0.7, 0.8]}).runs["main"])
    assert gate.value == pytest.approx(0.75)


def test_share_and_maximum_count_steps_one_to_n():
    share = Measurement("clipped_share", 4)
    share.absorb(update([1, 2, 3, 4, 5], clipped=[True, False, True, True, False]).runs["main"])
    assert share.value == 0.75
    peak = Measurement("max_grad_norm", 3)
    peak.absorb(update([1, 2, 3, 4], grad_norm=[2.0, 50.0, 3.0, 900.0]).runs["main"])
    assert peak.value == 50.0


def test_a_diverged_run_is_infinite_for_the_peak_and_unmeasured_otherwise():
    peak = Measurement("max_grad_norm", 20)
    peak.absorb(update([1, 2], grad_norm=[1e5, math.nan], status="diverged",
                       diverged_at=2).runs["main"])
    assert peak.value == math.inf
    assert describe_value(MEASURES["max_grad_norm"], peak.value) == "infinite (the run diverged)"
    loss = Measurement("loss", 20)
    loss.absorb(update([1, 2], status="diverged", diverged_at=2).runs["main"])
    assert loss.value is None and loss.failed == "the run diverged at step 2, before step 20"
    short = Measurement("accuracy", 50)
    short.absorb(update([1, 2], accuracy=[0.5, 0.5], done=True).runs["main"])
    assert short.failed == "the run stopped at step 2, before step 50"


def test_an_experiment_reads_only_its_own_generation_and_can_be_interrupted():
    run = ExperimentRun(2, Measurement("clipped_share", 2))
    run.absorb(update([1, 2], clipped=[True, True], generation=1))
    assert run.state == "running" and run.measurement.seen == 0
    run.interrupt("the lab's settings changed during the experiment")
    assert run.state == "interrupted"
    done = ExperimentRun(3, Measurement("clipped_share", 2))
    done.absorb(update([1, 2], clipped=[True, False], generation=3))
    done.interrupt("too late")                   # a finished measurement stands
    assert done.state == "measured" and done.measurement.value == 0.5


def test_the_tasks_without_accuracy_match_the_engine():
    from tutor.engine.settings import TASKS
    from tutor.engine.tasks import get_task
    from tutor.lab.measures import NO_ACCURACY_TASKS
    assert set(NO_ACCURACY_TASKS) == {t for t in TASKS if get_task(t).head == "regression"}
