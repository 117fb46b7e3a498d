"""Measurements a prediction checkpoint can declare, folded from a run's updates.

A lesson names a quantity from the fixed vocabulary `MEASURES` and the step it is read at
("grad_ratio at step 0", "accuracy at step 300"); nothing in a lesson is evaluated. A `Measurement`
folds the same `RunUpdate`s the lab's charts are drawn from, so the graded number is the one the
learner's run produced. Per-timestep quantities are read from `RunUpdate.first`, the arrays of the
run's first step at its initial weights (the charts' "step 0"); the others from the per-step
scalars of steps 1..N. Textual-free.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # lessons are validated against this vocabulary without loading NumPy
    from .protocol import RunUpdate, Update

WINDOW = 20            # "the 20-step mean", as the lessons and the lab's status speak of it
# Tasks whose records have no accuracy (a regression head), as plain data; a test checks it
# against tutor/engine/tasks.py.
NO_ACCURACY_TASKS = ("adding",)


@dataclass(frozen=True)
class Measure:
    name: str
    label: str          # how the value is named to the learner
    summary: str        # one line for teachers (lessons/README.md lists the same)
    at_start: bool      # read from the step-0 arrays ("at step 0" only)
    scale: str          # "log": compared by ratio (margins as factors); "linear": by difference
    cells: tuple[str, ...] = ()      # the cells it exists for; () for every cell
    needs_accuracy: bool = False


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("grad_ratio", "‖∂L/∂h_1‖ / ‖∂L/∂h_T‖",
            "grad_norm_per_step at t = 1 over its value at t = T, at step 0", True, "log"),
    Measure("cell_grad_ratio", "‖∂L/∂c_1‖ / ‖∂L/∂c_T‖",
            "cell_grad_norm_per_step at t = 1 over t = T, at step 0 (LSTM)", True, "log",
            cells=("lstm",)),
    Measure("gate_mean", "the mean gate",
            "mean of gate_per_step over t at step 0: forget gate (LSTM), update gate (GRU)",
            True, "linear", cells=("lstm", "gru")),
    Measure("loss", "the 20-step mean loss",
            "mean loss over the 20 steps ending at step N", False, "linear"),
    Measure("accuracy", "the 20-step mean accuracy",
            "mean accuracy over the 20 steps ending at step N (not for the adding task)",
            False, "linear", needs_accuracy=True),
    Measure("max_grad_norm", "the largest gradient norm",
            "largest global gradient norm (before clipping) over steps 1..N; a run that "
            "diverges counts as infinite", False, "log"),
    Measure("clipped_share", "the share of steps clipped",
            "share of steps 1..N whose gradient was clipped", False, "linear"),
)}


def describe_value(measure: Measure, value: float) -> str:
    """A measured value as the learner reads it."""
    if math.isinf(value):
        return "infinite (the run diverged)"
    if measure.name in ("accuracy", "clipped_share"):
        return f"{100 * value:.0f}%"
    if measure.scale == "log":
        return f"{value:.1e}" if value != 0 else "0"
    return f"{value:.3f}"


class Measurement:
    """One declared measurement of one run, folded from its updates: `value` once read,
    `failed` (one line) when the run cannot give it. `step` is N (0 for the step-0 arrays)."""

    def __init__(self, name: str, step: int):
        self.measure = MEASURES[name]
        self.step = step
        self.value: float | None = None
        self.failed: str | None = None
        self.seen = 0                         # steps folded so far
        self._window: deque[float] = deque(maxlen=WINDOW)
        self._max = 0.0
        self._clipped = 0

    @property
    def finished(self) -> bool:
        return self.value is not None or self.failed is not None

    @property
    def steps_needed(self) -> int:
        return max(1, self.step)

    def absorb(self, u: "RunUpdate") -> None:
        """Fold one update of the measured run (in order, as the session receives them)."""
        if self.finished:
            return
        m = self.measure
        if m.at_start:
            if u.first:
                self._read_start(u.first)
            return
        for step, loss, acc, norm, clipped in zip(u.steps, u.loss, u.accuracy, u.grad_norm,
                                                   u.clipped):
            if step > self.step:
                break
            self.seen = step
            if m.name == "loss":
                self._window.append(loss)
            elif m.name == "accuracy":
                if acc is None:
                    self.failed = "this task has no accuracy"
                    return
                self._window.append(acc)
            elif m.name == "max_grad_norm":
                self._max = max(self._max, norm) if math.isfinite(norm) else math.inf
            elif m.name == "clipped_share":
                self._clipped += bool(clipped)
            if step == self.step:
                self._finish()
                return
        if u.status == "diverged":
            if m.name == "max_grad_norm":
                self.value = math.inf
            else:
                self.failed = f"the run diverged at step {u.diverged_at}, before step {self.step}"
        elif u.done:
            self.failed = f"the run stopped at step {u.step}, before step {self.step}"

    def _finish(self) -> None:
        name = self.measure.name
        if name in ("loss", "accuracy"):
            value = math.fsum(self._window) / len(self._window)
        elif name == "max_grad_norm":
            value = self._max
        else:
            value = self._clipped / self.step
        if math.isnan(value):
            self.failed = f"the {self.measure.label} was not a number at step {self.step}"
        else:
            self.value = value

    def _read_start(self, first: dict) -> None:
        self.seen = 1
        name = self.measure.name
        key = {"grad_ratio": "grad_norm_per_step", "cell_grad_ratio": "cell_grad_norm_per_step",
               "gate_mean": "gate_per_step"}[name]
        series = first.get(key)
        if series is None:
            self.failed = f"this run records no {key}"
            return
        g = [float(x) for x in series]
        if name == "gate_mean":
            value = math.fsum(g) / len(g) if g else math.nan
        else:
            value = g[0] / g[-1] if g and g[-1] > 0 else math.nan
        if math.isfinite(value):
            self.value = value
        else:
            self.failed = f"the {self.measure.label} could not be computed at step 0"


class ExperimentRun:
    """A prediction's experiment as the session runs it: its generation and measurement.
    `interrupted` says (one line) why it ended unmeasured, when it did."""

    def __init__(self, generation: int, measurement: Measurement):
        self.generation = generation
        self.measurement = measurement
        self.interrupted: str | None = None

    def absorb(self, update: "Update") -> None:
        run = update.runs.get("main")
        if update.generation == self.generation and run is not None and self.interrupted is None:
            self.measurement.absorb(run)

    def interrupt(self, why: str) -> None:
        if not self.measurement.finished:
            self.interrupted = why

    @property
    def state(self) -> str:
        """"running", "measured", "failed" (the run could not give it) or "interrupted"."""
        m = self.measurement
        if m.value is not None:
            return "measured"
        if m.failed is not None:
            return "failed"
        return "interrupted" if self.interrupted else "running"
