"""A training run: settings in, one metric record per step out.

    run = Run(Settings(cell="lstm", task="adding", seq_len=50))
    rec = run.step()          # StepRecord: loss, grad norms per timestep, gates, ...

Divergence is a state, not an exception: a non-finite loss or gradient ends the run with
status "diverged" and the step, and NumPy's warnings are silenced so nothing reaches stderr.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, fields

import numpy as np

from .cells import Cell
from .init import init_params
from .model import HEAD_NAMES, Model, Pass
from .optim import Optimizer, clip_grads, global_norm
from .settings import Settings
from .tasks import Baseline, Sample, focus_metrics, get_task


@dataclass
class StepRecord:
    step: int                                  # counted from 1
    loss: float
    accuracy: float | None
    grad_norm: float                           # global norm before clipping
    clipped: bool
    grad_norm_per_step: np.ndarray             # (T,) ‖∂L/∂h_t‖
    gate_per_step: np.ndarray | None           # (T,) mean forget (LSTM) or update (GRU) gate
    cell_grad_norm_per_step: np.ndarray | None  # (T,) ‖∂L/∂c_t‖ for LSTM
    elapsed_s: float
    status: str = "ok"                         # "ok" or "diverged"
    long_range_loss: float | None = None       # cross-entropy on the long-range word (language)
    # On request (`Run.attach_mechanism`), for the step the run still holds:
    input_grad_norm_per_step: np.ndarray | None = None  # (T,) ‖∂L/∂x_t‖
    param_grad_norm_per_step: np.ndarray | None = None  # (T,) step t's share of the update
    jacobian_norm_per_step: np.ndarray | None = None    # (T,) ‖∂s_t/∂s_{t−1}‖₂ of sequence 0

    def to_json(self) -> dict:
        return {
            "step": self.step,
            "loss": _num(self.loss),
            "accuracy": _num(self.accuracy),
            "elapsed_s": round(self.elapsed_s, 6),
            "grad_norm": _num(self.grad_norm),
            "clipped": self.clipped,
            "grad_norm_per_step": _nums(self.grad_norm_per_step),
            "gate_per_step": _nums(self.gate_per_step),
            "cell_grad_norm_per_step": _nums(self.cell_grad_norm_per_step),
            "input_grad_norm_per_step": _nums(self.input_grad_norm_per_step),
            "param_grad_norm_per_step": _nums(self.param_grad_norm_per_step),
            "jacobian_norm_per_step": _nums(self.jacobian_norm_per_step),
            "status": self.status,
            "long_range_loss": _num(self.long_range_loss),
        }


# The per-timestep arrays of a record, by the names they keep all the way to the charts.
PER_STEP_FIELDS = tuple(f.name for f in fields(StepRecord) if f.name.endswith("_per_step"))


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _nums(a):
    return None if a is None else [_num(v) for v in np.asarray(a).tolist()]


class Run:
    def __init__(self, settings: Settings, weights: dict[str, np.ndarray] | None = None,
                 implementation: Cell | None = None):
        """implementation: the Cell object that computes `settings.cell` (`Model`)."""
        self.settings = settings.validated()
        s = self.settings
        self.task = get_task(s.task)
        self.dtype = np.dtype(s.dtype)
        if weights is None:
            params = init_params(s.cell, self.task.input_size, s.hidden, self.task.output_size,
                                 np.random.default_rng([s.seed, 0]), s.effective_init, s.radius,
                                 s.forget_bias, self.dtype)
            self.model = Model(s.cell, params, self.task.head, implementation)
        else:
            self.model = Model.from_arrays(s.cell, weights, self.task.head, dtype=self.dtype,
                                            implementation=implementation)
            self.model.check_shapes(self.task.input_size, self.task.output_size)
        self.data_rng = np.random.default_rng([s.seed, 1])
        self.optimizer = Optimizer(s.optimizer, s.lr)
        self.steps = 0
        self.status = "ok"
        self.diverged_at: int | None = None
        self.baseline: Baseline = self.task.baseline(s.seq_len)
        self.started = time.perf_counter()
        self.last_pass: Pass | None = None
        self._last_batch = None
        self._jacobian = None                    # (step, norms) of the last request

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def apply_live(self, settings: Settings) -> None:
        """Take the settings that need no restart (clipping, truncation) from the next step on."""
        if self.settings.needs_restart(settings):
            raise ValueError("these settings need a fresh run")
        self.settings = settings.validated()

    def next_batch(self):
        s = self.settings
        batch = self.task.batch(self.data_rng, s.batch, s.seq_len, self.dtype)
        if s.reverse_input:
            batch.x = np.ascontiguousarray(batch.x[:, ::-1])
        return batch

    def step(self) -> StepRecord | None:
        """One training step; None once the run has diverged."""
        if self.diverged:
            return None
        s = self.settings
        batch = self.next_batch()
        self.last_pass = None                    # its buffers may serve this step's pass
        with np.errstate(all="ignore"):
            result = self.model.forward_backward(batch.x, batch.y, batch.mask,
                                                 truncate=s.truncate)
            names = [n for n in self.model.params if not (s.freeze_head and n in HEAD_NAMES)]
            grads = {n: result.grads[n] for n in names}
            norm = global_norm(grads)
            finite = math.isfinite(result.loss) and math.isfinite(norm)
            clipped = finite and clip_grads(grads, norm, s.clip_mode, s.clip)
            if finite:
                self.optimizer.step(self.model.params, grads, names)
            self.steps += 1
            if not finite:
                self.status = "diverged"
                self.diverged_at = self.steps
            accuracy, long_range = result.accuracy, None
            if batch.focus is not None:
                long_range, accuracy = focus_metrics(result.output, batch.y, batch.focus)
            record = StepRecord(
                step=self.steps,
                loss=result.loss,
                accuracy=accuracy,
                long_range_loss=long_range,
                grad_norm=norm,
                clipped=clipped,
                grad_norm_per_step=result.grad_norm_per_step,
                gate_per_step=self.model.cell.gate_per_step(result.cache),
                cell_grad_norm_per_step=result.cell_grad_norm_per_step,
                elapsed_s=time.perf_counter() - self.started,
                status=self.status,
            )
        self.last_pass = result
        self._last_batch = batch
        return record

    def sample(self, row: int = 0) -> Sample | None:
        """One sequence of the last batch, its target and the model's prediction (made before
        that step's update), with ‖∂L_row/∂x_t‖ for each of its inputs in the order shown."""
        if self._last_batch is None or self.last_pass is None:
            return None
        b = self._last_batch
        x = b.x[row]
        sensitivity = None
        with np.errstate(all="ignore"):
            if b.focus is not None and b.focus == len(x) - 1:
                sensitivity = self._focus_sensitivity(x, b.y[row][b.focus])
            elif self.last_pass.back.dX is not None:
                sensitivity = self.last_pass.sample_input_grad_norm_per_step(row)
            if self.settings.reverse_input:      # show the sequence as the task made it
                x = x[::-1]
                sensitivity = None if sensitivity is None else sensitivity[::-1]
            shown = self.task.describe(x, b.y[row], self.last_pass.output[row])
        if sensitivity is None:
            return shown
        return dataclasses.replace(shown, input_grad_norm_per_step=tuple(
            float(v) for v in sensitivity))

    def _focus_sensitivity(self, x: np.ndarray, target) -> np.ndarray:
        """‖∂ log p(target)/∂x_t‖ at the last step, with the current weights: for a task scored
        on one word (the language word), what that prediction feels of each input; the whole
        sequence's loss would light up every recent word, each being some next word's input."""
        from .predict import logits_and_input_grads
        _, _, dX = logits_and_input_grads(self.model, x, target=int(target))
        wide = np.asarray(dX, dtype=np.float64)
        return np.sqrt(np.einsum("ti,ti->t", wide, wide))

    def attach_mechanism(self, record: StepRecord, jacobian: bool = True) -> StepRecord:
        """Fill the record's per-step mechanism arrays, `input_grad_norm_per_step` and
        `param_grad_norm_per_step` (and with `jacobian`, `jacobian_norm_per_step` of sequence 0),
        when `record` is the last step's, whose pass the run still holds. They are made only
        when asked for: together the first two cost a twentieth to a seventh of a training
        step, the Jacobian (one SVD per timestep) milliseconds (`bench/engine.py`). Returns the
        record."""
        p = self.last_pass
        if record.step != self.steps or p is None:
            return record
        with np.errstate(all="ignore"):
            record.input_grad_norm_per_step = p.input_grad_norm_per_step
            record.param_grad_norm_per_step = p.param_grad_norm_per_step
            if jacobian:
                if self._jacobian is None or self._jacobian[0] != self.steps:
                    self._jacobian = (self.steps, p.jacobian_norm_per_step(0))
                record.jacobian_norm_per_step = self._jacobian[1]
        return record

    @property
    def steps_per_s(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.steps / elapsed if elapsed > 0 else 0.0
