"""The worker protocol: typed messages between a lab session and its training process.

Commands go to the child; `Update` and `Error` come back, and a `Prediction` answers each
`Predict` (autocomplete from the live weights). Every per-timestep metric travels under
the name the engine's `StepRecord` gives it (`grad_norm_per_step`, `gate_per_step`, ...), in
`RunUpdate.latest` (the newest step's) and `RunUpdate.first` (step 1's, at the initial weights),
and keeps that name in the lab's history and charts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

import numpy as np

from tutor.engine.settings import Settings
from tutor.engine.tasks import Baseline, Sample


# ---- commands: session -> training process -------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """Train these runs from fresh weights, as generation `generation`."""
    generation: int
    runs: Mapping[str, Settings]


@dataclass(frozen=True)
class Live:
    """New settings that need no restart (clipping, truncation) for the current generation."""
    generation: int
    runs: Mapping[str, Settings]


@dataclass(frozen=True)
class Pause:
    paused: bool


@dataclass(frozen=True)
class Step:
    """One step of every run; the trainer stays paused."""


@dataclass(frozen=True)
class Pace:
    steps_per_s: float | None        # None: full speed


@dataclass(frozen=True)
class Limit:
    """Train each run up to `steps` steps, then wait (None: no limit). The lab's step budget, and
    how it ends a run that has levelled off; a higher limit trains on."""
    steps: int | None


@dataclass(frozen=True)
class Stop:
    """Leave the loop; the process exits."""


@dataclass(frozen=True)
class Predict:
    """Autocomplete: each run's next word after `text`, from its weights as they are now (training
    goes on). Answered at once with a `Prediction` carrying the same `request`."""
    generation: int
    request: int
    text: str


Command = Union[Start, Live, Pause, Step, Pace, Limit, Stop, Predict]


# ---- messages: training process -> session ---------------------------------------------------------

@dataclass
class RunUpdate:
    """What one run did since the previous update. The scalar lists hold only the new steps."""
    name: str
    settings: Settings
    baseline: Baseline
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    # the loss on the long-range word alone (the language task's language word), else None
    long_range_loss: list[float | None] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)
    elapsed_s: list[float] = field(default_factory=list)
    latest: dict[str, np.ndarray] = field(default_factory=dict)   # per-step arrays, newest step
    first: dict[str, np.ndarray] = field(default_factory=dict)    # the same at step 1
    sample: Sample | None = None
    step: int = 0                       # steps taken so far
    status: str = "ok"                  # "ok" or "diverged"
    diverged_at: int | None = None
    done: bool = False                  # reached max_steps (not the session's Limit)
    steps_per_s: float = 0.0
    # live setting changes as (step, label); the change applies from the step after
    events: list[tuple[int, str]] = field(default_factory=list)

    def merge(self, newer: "RunUpdate") -> None:
        """Fold a later update of the same run into this one."""
        self.steps += newer.steps
        self.loss += newer.loss
        self.accuracy += newer.accuracy
        self.long_range_loss += newer.long_range_loss
        self.grad_norm += newer.grad_norm
        self.clipped += newer.clipped
        self.elapsed_s += newer.elapsed_s
        self.events += newer.events
        self.latest.update(newer.latest)
        self.first.update(newer.first)
        for name in ("settings", "baseline", "step", "status", "diverged_at", "done",
                     "steps_per_s"):
            setattr(self, name, getattr(newer, name))
        if newer.sample is not None:
            self.sample = newer.sample


@dataclass
class Update:
    """Everything new in one generation since the previous update."""
    generation: int
    runs: dict[str, RunUpdate]

    def merge(self, newer: "Update") -> None:
        for name, run in newer.runs.items():
            if name in self.runs:
                self.runs[name].merge(run)
            else:
                self.runs[name] = run


@dataclass(frozen=True)
class Error:
    """The training process failed, or was lost; `message` is one line fit for the status."""
    message: str


@dataclass(frozen=True)
class NextWord:
    word: str
    p: float


@dataclass(frozen=True)
class WordSensitivity:
    """‖∂ log p(top word) / ∂x_t‖ for one input word, as `rnn-tutor predict` reports it."""
    word: str
    grad_norm: float


@dataclass(frozen=True)
class RunPrediction:
    """One run's answer: its three likeliest next words and each input word's sensitivity.
    Empty when the run has diverged (its weights are not finite)."""
    step: int                              # the weights are those after this many steps
    next: tuple[NextWord, ...] = ()
    sensitivity: tuple[WordSensitivity, ...] = ()
    status: str = "ok"                     # "ok" or "diverged"


@dataclass(frozen=True)
class Prediction:
    """The answer to `Predict`. `words` are the typed words the models read; `unknown` the typed
    words outside the task's vocabulary, left out; `message` says why nothing was predicted
    (no words left, a task that does not take words), else it is empty."""
    generation: int
    request: int
    words: tuple[str, ...]
    unknown: tuple[str, ...]
    runs: Mapping[str, RunPrediction]
    message: str = ""


@dataclass(frozen=True)
class CellFailed:
    """The learner's own cell (`tutor.lab.own_cell`) stopped generation `generation`: its file
    would not load, or a step raised, hung, ran out of memory or made NaN. `message` is one line;
    the process waits for the session to start something else."""
    generation: int
    message: str


Message = Union[Update, Error, Prediction, CellFailed]
