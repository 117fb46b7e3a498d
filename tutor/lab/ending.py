"""When a lab run ends by itself: at a step budget, or once its loss has levelled off.

    test = PlateauTest(baseline_loss=1/6)
    test.add(loss)            # every training step's loss, in order
    test.plateaued            # True once the smoothed loss has stopped falling

A tutor left open must not train for ever, but a run must not be stopped while it is about to
learn. The trap is the long flat stretch at the baseline before an LSTM suddenly solves the adding
problem (or before a language model finds the long-range word): a loss that is merely flat is not
a plateau. So a run counts as levelled off only when it has learned something (its smoothed loss
is under LEARNED_SHARE of the baseline, what the best input-blind guess scores) and the loss has
then stopped falling: over the last window, which grows with the run (half the steps since it
first went under that mark, between MIN_WINDOW and MAX_WINDOW), the smoothed loss of its second half is not MIN_GAIN lower
than that of its first half. Smoothing is by medians (of each BLOCK of steps, then of the blocks
in each half), so Adam's occasional loss spikes neither end a run nor keep it going. A run still
at its baseline ends at the step budget only.

Lessons also measure runs that have long since learned ("the radius after 2,000 steps", "predict
after 1,500 steps"), so a fresh run is not called levelled off before EARLIEST_FRESH steps, the
longest any lesson's claim needs; after the learner trains on, a plateau can come MIN_WINDOW
steps later. `python bench/lessons.py` checks on every lesson's claims that the lab does not end
a run before the claim is shown.
"""
from __future__ import annotations

import math
from statistics import median

DEFAULT_BUDGET = 3000       # steps, for the playground and any lesson that names none
EARLIEST_FRESH = 2000       # steps: no plateau before this in a fresh run
BLOCK = 25                  # steps per smoothing block
MIN_WINDOW = 500            # steps
MAX_WINDOW = 3000
LEARNED_SHARE = 0.5         # of the baseline loss
MIN_GAIN = 0.05             # relative fall of the smoothed loss over half a window


class PlateauTest:
    """Watches one run's losses from the start of a stretch of training (a fresh run, or the
    step the learner said "train on" at)."""

    def __init__(self, baseline_loss: float | None, earliest: int = EARLIEST_FRESH):
        self.baseline_loss = baseline_loss
        self.earliest = max(earliest, MIN_WINDOW)
        self.blocks: list[float] = []       # median loss of each full block, the newest last
        self._block: list[float] = []
        self.steps = 0                      # steps seen in this stretch
        self.learned_at: int | None = None  # the step the smoothed loss first went under the mark
        self.plateaued = False

    def add(self, loss: float) -> None:
        self.steps += 1
        if loss is not None and math.isfinite(loss):
            self._block.append(loss)
        if self.steps % BLOCK:
            return
        if self._block:
            self.blocks.append(median(self._block))
            self._block = []
            del self.blocks[:-(2 * MAX_WINDOW // BLOCK)]      # memory stays flat
            self.plateaued = self._levelled_off()

    def _levelled_off(self) -> bool:
        if not self.baseline_loss:
            return False
        mark = LEARNED_SHARE * self.baseline_loss
        if self.learned_at is None:
            if self.blocks[-1] >= mark:
                return False
            self.learned_at = self.steps
        since = self.steps - self.learned_at
        half = min(MAX_WINDOW, max(MIN_WINDOW, since // 2)) // BLOCK // 2
        if self.steps < self.earliest or len(self.blocks) < 2 * half:
            return False
        recent = median(self.blocks[-half:])
        earlier = median(self.blocks[-2 * half:-half])
        return recent < mark and recent > earlier * (1.0 - MIN_GAIN)


def first_plateau(losses, baseline_loss: float | None,
                  earliest: int = EARLIEST_FRESH) -> int | None:
    """The step (counted from 1) at which a lab fed these losses would say the run levelled
    off, or None (benches check lessons with it)."""
    test = PlateauTest(baseline_loss, earliest)
    for step, loss in enumerate(losses, 1):
        test.add(loss)
        if test.plateaued:
            return step
    return None
