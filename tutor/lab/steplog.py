"""Every step a lab run took, exactly, for exporting it as `rnn-tutor train` logs it.

The charts' histories are merged pairwise as a run grows; this log is not: it keeps each step's
scalars (loss, accuracy, grad norm, ...) in compact arrays, up to MAX_STEPS steps (then the oldest
go, so memory stays bounded), and the per-timestep arrays at the steps the lab received them:
step 1 and the newest step of each update (about ten a second), up to MAX_ARRAY_VALUES numbers.
`records()` gives one dict per kept step with the fields of `StepRecord.to_json`, null where the
lab did not keep a value.
"""
from __future__ import annotations

import math
from array import array
from collections import OrderedDict

from tutor.engine.run import PER_STEP_FIELDS

from .protocol import RunUpdate

MAX_STEPS = 100_000                 # about 5 MB of scalars per run
MAX_ARRAY_VALUES = 500_000          # per-timestep numbers kept, all steps together (4 MB)
ARRAY_FIELDS = PER_STEP_FIELDS     # the engine's per-timestep arrays, by their names
_NONE = math.nan                    # a missing accuracy or long-range loss, in a float array


class StepLog:
    def __init__(self, max_steps: int = MAX_STEPS, max_array_values: int = MAX_ARRAY_VALUES):
        self.max_steps = max_steps
        self.max_array_values = max_array_values
        self.step = array("q")
        self.loss = array("d")
        self.accuracy = array("d")
        self.elapsed_s = array("d")
        self.grad_norm = array("d")
        self.clipped = array("b")
        self.long_range_loss = array("d")
        self.arrays: OrderedDict[int, dict] = OrderedDict()   # step -> per-timestep arrays
        self._array_values = 0
        self.diverged_at: int | None = None
        self.dropped = 0                                       # oldest steps let go

    def __len__(self) -> int:
        return len(self.step)

    def absorb(self, u: RunUpdate) -> None:
        n = len(u.steps)
        self.step.extend(u.steps)
        self.loss.extend(_floats(u.loss))
        self.accuracy.extend(_floats(u.accuracy))
        self.elapsed_s.extend(_floats(u.elapsed_s, n))
        self.grad_norm.extend(_floats(u.grad_norm))
        self.clipped.extend(bool(c) for c in u.clipped)
        self.long_range_loss.extend(_floats(u.long_range_loss, n))
        if u.first and 1 not in self.arrays and u.steps and u.steps[0] == 1:
            self._keep_arrays(1, u.first)
        if u.latest and u.steps:
            self._keep_arrays(u.steps[-1], u.latest)
        self.diverged_at = u.diverged_at
        excess = len(self.step) - self.max_steps
        if excess > 0:
            for column in (self.step, self.loss, self.accuracy, self.elapsed_s, self.grad_norm,
                           self.clipped, self.long_range_loss):
                del column[:excess]
            self.dropped += excess

    def _keep_arrays(self, step: int, arrays: dict) -> None:
        kept = {name: [float(v) for v in arrays[name]] for name in ARRAY_FIELDS if name in arrays}
        self.arrays[step] = kept
        self._array_values += sum(len(v) for v in kept.values())
        while self._array_values > self.max_array_values and len(self.arrays) > 1:
            oldest = next(s for s in self.arrays if s != 1 or len(self.arrays) == 1)
            self._array_values -= sum(len(v) for v in self.arrays.pop(oldest).values())

    def records(self):
        """One dict per kept step, in order, with `rnn-tutor train`'s fields."""
        for i, step in enumerate(self.step):
            arrays = self.arrays.get(step, {})
            diverged = self.diverged_at is not None and step >= self.diverged_at
            yield {
                "step": step,
                "loss": _num(self.loss[i]),
                "accuracy": _num(self.accuracy[i]),
                "elapsed_s": round(self.elapsed_s[i], 6) if math.isfinite(self.elapsed_s[i])
                else None,
                "grad_norm": _num(self.grad_norm[i]),
                "clipped": bool(self.clipped[i]),
                **{name: [_num(v) for v in arrays[name]] if name in arrays else None
                   for name in ARRAY_FIELDS},
                "status": "diverged" if diverged else "ok",
                "long_range_loss": _num(self.long_range_loss[i]),
            }


def _floats(values, n: int | None = None):
    values = list(values) if n is None or len(values) == n else [None] * n
    return [_NONE if v is None else float(v) for v in values]


def _num(x: float):
    return x if math.isfinite(x) else None
