"""What a lesson's lab pane shows, as typed specs (no widgets here: `tutor.ui.lab_modes` maps
each spec to its view in one place). None means no lab."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from tutor.engine.settings import Settings


@dataclass(frozen=True)
class TrainLab:
    """Live training from a preset; each run ends by itself at `budget` steps (None: the
    default, `tutor.lab.ending.DEFAULT_BUDGET`) or when its loss levels off."""
    settings: Settings
    budget: int | None = None


@dataclass(frozen=True)
class WorkedLab:
    """The worked example, one operation per key."""
    cell: str = "rnn"


@dataclass(frozen=True)
class MapLab:
    """The iterated-map explorer; None leaves a value at the explorer's own default."""
    kind: str | None = None
    w: float | None = None
    b: float | None = None
    x0: float | None = None
    steps: int | None = None


LabMode = Union[TrainLab, WorkedLab, MapLab, None]
