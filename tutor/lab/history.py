"""What the lab remembers of its runs: bounded histories, so memory stays flat however long a
learner leaves the lab training. Folded from protocol updates by the `LabSession`; read by the
charts. Per-step arrays keep the engine's names (`latest["grad_norm_per_step"]`, ...)."""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from tutor.engine.settings import Settings
from tutor.engine.tasks import Baseline, Sample

from .protocol import RunUpdate, Update
from .steplog import StepLog

HISTORY_POINTS = 240     # per series; older points are merged pairwise, so memory stays flat
MAX_EVENTS = 12


class BoundedSeries:
    """A scalar history that never holds more than `capacity` points.

    Each stored point is the mean of `stride` consecutive inputs; when the store fills, neighbours
    are merged pairwise and the stride doubles. Non-finite inputs are skipped."""

    def __init__(self, capacity: int = HISTORY_POINTS):
        self.capacity = capacity - capacity % 2
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.stride = 1
        self._sum = 0.0
        self._n = 0
        self._x = 0.0
        self.count = 0               # finite inputs seen

    def add(self, x: float, y: float) -> None:
        if y is None or not math.isfinite(y) or not math.isfinite(x):
            return
        self.count += 1
        self._sum += y
        self._n += 1
        self._x = x
        if self._n >= self.stride:
            self.xs.append(self._x)
            self.ys.append(self._sum / self._n)
            self._sum, self._n = 0.0, 0
            if len(self.xs) >= self.capacity:
                self.xs = self.xs[1::2]
                ys = self.ys
                self.ys = [(ys[i] + ys[i + 1]) / 2 for i in range(0, len(ys) - 1, 2)]
                self.stride *= 2

    def points(self) -> tuple[list[float], list[float]]:
        if self._n:
            return self.xs + [self._x], self.ys + [self._sum / self._n]
        return list(self.xs), list(self.ys)

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._n else 0)


class RunHistory:
    """What the lab knows about one run."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self.baseline: Baseline | None = None        # from the first update
        self.loss = BoundedSeries()
        self.accuracy = BoundedSeries()
        self.long_range_loss = BoundedSeries()
        self.log_grad_norm = BoundedSeries()
        self.events: deque[tuple[int, str]] = deque(maxlen=MAX_EVENTS)
        self.latest: dict[str, np.ndarray] = {}     # per-step arrays of the newest step
        self.first: dict[str, np.ndarray] = {}      # the same at step 1
        self.sample: Sample | None = None
        self.step = 0
        self.steps_per_s = 0.0
        self.status = "ok"
        self.diverged_at: int | None = None
        self.done = False
        self.recent_clipped: deque[bool] = deque(maxlen=50)
        self.last_loss: float | None = None
        self.last_accuracy: float | None = None
        self.last_grad_norm: float | None = None
        self.last_long_range_loss: float | None = None
        self.scalars_version = 0
        self.arrays_version = 0
        self.log = StepLog()                         # every step exactly, for export

    @property
    def cell(self) -> str:
        return self.settings.cell

    def absorb(self, u: RunUpdate) -> None:
        self.log.absorb(u)
        if u.steps:
            long_range = u.long_range_loss or [None] * len(u.steps)
            for step, loss, acc, norm, focus in zip(u.steps, u.loss, u.accuracy, u.grad_norm,
                                                     long_range):
                self.loss.add(step, loss)
                if focus is not None:
                    self.long_range_loss.add(step, focus)
                if acc is not None:
                    self.accuracy.add(step, acc)
                if norm is not None and math.isfinite(norm) and norm > 0:
                    self.log_grad_norm.add(step, math.log10(norm))
            self.recent_clipped.extend(u.clipped)
            self.last_loss, self.last_accuracy = u.loss[-1], u.accuracy[-1]
            self.last_grad_norm = u.grad_norm[-1]
            self.last_long_range_loss = long_range[-1]
            self.scalars_version += 1
        if u.events:
            self.events.extend(u.events)
            self.scalars_version += 1
        if u.latest:
            self.latest = dict(u.latest)
            self.first = dict(u.first)
            self.arrays_version += 1
        if u.sample is not None:
            self.sample = u.sample
        if u.status != self.status or u.diverged_at != self.diverged_at:
            self.scalars_version += 1
        if u.settings != self.settings:
            self.scalars_version += 1
        self.settings, self.baseline = u.settings, u.baseline
        self.step, self.steps_per_s = u.step, u.steps_per_s
        self.status, self.diverged_at, self.done = u.status, u.diverged_at, u.done

    @property
    def charted_loss(self) -> BoundedSeries:
        """The loss the lab charts: on the long-range word where the task measures one (its
        baseline is that word's input-blind guess), else the training loss."""
        return self.long_range_loss if len(self.long_range_loss) else self.loss

    @property
    def clipped_share(self) -> float:
        return sum(self.recent_clipped) / len(self.recent_clipped) if self.recent_clipped else 0.0


class LabHistory:
    """The histories of the current generation's runs, plus the loss of the run before."""

    def __init__(self):
        self.generation = 0
        self.runs: dict[str, RunHistory] = {}
        self.ghost: tuple[str, list[float], list[float]] | None = None  # (label, xs, ys)
        self.version = 0
        self.paused = False

    def reset(self, generation: int, runs: dict[str, Settings],
              ghost_label: str | None = None) -> None:
        """A fresh generation. With a label, the single run's loss so far stays as a grey ghost
        so the learner can compare before and after the change."""
        old = self.runs.get("main")
        if ghost_label and old is not None and len(old.charted_loss) > 1 and len(runs) == 1:
            xs, ys = old.charted_loss.points()
            self.ghost = (ghost_label, xs, ys)
        else:
            self.ghost = None
        self.generation = generation
        self.runs = {name: RunHistory(name, s) for name, s in runs.items()}
        self.version += 1

    def absorb(self, update: Update) -> bool:
        """Fold in an update of the current generation; False (and nothing changes) otherwise."""
        if update.generation != self.generation:
            return False
        for name, u in update.runs.items():
            run = self.runs.get(name)
            if run is not None:
                run.absorb(u)
        self.version += 1
        return True

    @property
    def compare(self) -> bool:
        return len(self.runs) > 1

    @property
    def waiting(self) -> tuple | None:
        """What an empty chart says depends on pausing; once there is data it does not."""
        if any(r.step for r in self.runs.values()):
            return None
        return ("paused",) if self.paused else ("running",)
