"""Run settings: every knob of a training run, with its limits, in one frozen dataclass.

The CLI, the lesson front matter and the settings panel all validate through `Settings.validated`,
so a value is refused the same way wherever it comes from.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

CELLS = ("rnn", "irnn", "lstm", "gru")
TASKS = ("echo", "adding", "remember", "agreement", "language")
OPTIMIZERS = ("sgd", "momentum", "adam")
CLIP_MODES = ("norm", "value")
INITS = ("auto", "default", "orthogonal", "identity")
DTYPES = ("float32", "float64")

MAX_SEQ_LEN = 2000
MAX_HIDDEN = 1024
MAX_BATCH = 4096
MAX_LR = 100.0
MAX_CLIP = 1e6
MAX_RADIUS = 100.0
MAX_FORGET_BIAS = 50.0
MAX_SEED = 2**32 - 1

# What validation needs to know of each task (its shortest sequence, and whether it answers at
# every step), as plain data so that settings load without NumPy. A test checks it against tasks.py.
TASK_MIN_LEN = {"echo": 2, "adding": 2, "remember": 1, "agreement": 1, "language": 5}
PER_STEP_TASKS = ("echo", "language")

# Where a task trains best with other values than `Settings`' defaults, the command line's
# defaults for that task (`rnn-tutor train --task language` without --hidden gets these).
# Measured: see the README's language section and bench/language.py.
TASK_DEFAULTS = {
    "language": {"hidden": 64},
}

# Fields whose change needs a fresh model; the others (clipping, truncation) apply from the
# next step.
LIVE_FIELDS = ("clip", "clip_mode", "truncate")


class SettingsError(ValueError):
    """A setting out of its domain; the message is one line, fit to show a learner."""


@dataclass(frozen=True)
class Settings:
    cell: str = "lstm"
    task: str = "adding"
    seq_len: int = 50
    hidden: int = 32
    batch: int = 32
    lr: float = 0.01
    optimizer: str = "adam"
    clip: float = 0.0          # threshold; 0 means clipping off
    clip_mode: str = "norm"
    init: str = "auto"         # auto: identity for irnn, PyTorch's default otherwise
    radius: float | None = None  # rescale the recurrent matrix to this spectral radius
    forget_bias: float = 1.0
    reverse_input: bool = False
    seed: int = 0
    dtype: str = "float32"
    freeze_head: bool = False
    truncate: int | None = None  # carry each loss's gradient back at most this many steps

    @property
    def clipping(self) -> bool:
        return self.clip > 0

    @property
    def effective_init(self) -> str:
        if self.init != "auto":
            return self.init
        return "identity" if self.cell == "irnn" else "default"

    @property
    def clip_label(self) -> str:
        """"clip norm 1", "clip value 0.5" or "clip off": one wording everywhere it is shown."""
        return f"clip {self.clip_mode} {self.clip:g}" if self.clipping else "clip off"

    @property
    def truncate_label(self) -> str:
        """"truncate 10" or "full BPTT"."""
        return "full BPTT" if self.truncate is None else f"truncate {self.truncate}"

    def live_change(self, other: "Settings") -> str:
        """A label for what `other` changes live (the fields that need no restart)."""
        labels = []
        if (other.clip, other.clip_mode) != (self.clip, self.clip_mode):
            labels.append(other.clip_label)
        if other.truncate != self.truncate:
            labels.append(other.truncate_label)
        return ", ".join(labels) or other.clip_label

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes).validated()

    def needs_restart(self, other: "Settings") -> bool:
        """True when going from self to other changes the model or the task."""
        return any(
            getattr(self, f.name) != getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.name not in LIVE_FIELDS
        )

    def validated(self) -> "Settings":
        _choice("cell", self.cell, CELLS)
        _choice("task", self.task, TASKS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("clip mode", self.clip_mode, CLIP_MODES)
        _choice("init", self.init, INITS)
        _choice("dtype", self.dtype, DTYPES)
        _int_range("sequence length", self.seq_len, 1, MAX_SEQ_LEN)
        _int_range("hidden size", self.hidden, 1, MAX_HIDDEN)
        _int_range("batch", self.batch, 1, MAX_BATCH)
        _int_range("seed", self.seed, 0, MAX_SEED)
        _float_range("learning rate", self.lr, 0.0, MAX_LR, low_open=True)
        _float_range("clip threshold", self.clip, 0.0, MAX_CLIP)
        if self.radius is not None:
            _float_range("radius", self.radius, 0.0, MAX_RADIUS, low_open=True)
        _float_range("forget bias", self.forget_bias, -MAX_FORGET_BIAS, MAX_FORGET_BIAS)
        if self.truncate is not None:
            _int_range("truncation", self.truncate, 1, MAX_SEQ_LEN)
        for name in ("reverse_input", "freeze_head"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name.replace('_', ' ')} must be true or false")
        if self.seq_len < TASK_MIN_LEN[self.task]:
            raise SettingsError(f"the {self.task} task needs a sequence length of at least "
                                f"{TASK_MIN_LEN[self.task]}")
        if self.reverse_input and self.task in PER_STEP_TASKS:
            raise SettingsError(f"input reversal applies to many-to-one tasks; {self.task} "
                                "answers at every step")
        return self


def task_default(task: str, name: str):
    """The default of field `name` for `task`: the task's own, else `Settings`'."""
    own = TASK_DEFAULTS.get(task, {})
    return own[name] if name in own else getattr(Settings, name)


def _choice(label: str, value, choices) -> None:
    if value not in choices:
        raise SettingsError(f"unknown {label} {value!r}; choose one of {', '.join(choices)}")


def _int_range(label: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{label} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{label} must be between {low} and {high}, not {value}")


def _float_range(label: str, value, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{label} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise SettingsError(f"{label} must be a finite number, not {value}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise SettingsError(f"{label} must be {bound} and at most {high:g}, not {value:g}")
