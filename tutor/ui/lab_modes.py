"""Each lab mode's view, in one place: the tutor's lab area and the standalone host both build
their view here, so a new mode is one spec in `tutor.lab.modes` and one branch below."""
from __future__ import annotations

from textual.widget import Widget

from tutor.lab.modes import LabMode, MapLab, TrainLab, WorkedLab


def build_view(mode: LabMode, *, fps: float = 4.0, max_steps: int | None = None,
               paused: bool = False, id: str | None = None) -> Widget | None:
    """A new view for `mode` (None for no lab). Imports each view only when first needed: the
    tutor's first lesson is on screen before NumPy and the charts are loaded."""
    if isinstance(mode, TrainLab):
        from .lab import LabPane
        return LabPane(mode.settings, fps=fps, max_steps=max_steps, paused=paused,
                       budget=mode.budget, id=id)
    if isinstance(mode, WorkedLab):
        from .worked_view import WorkedView
        return WorkedView(cell=mode.cell, id=id)
    if isinstance(mode, MapLab):
        from .map_view import MapView
        options = {k: v for k, v in (("kind", mode.kind), ("w", mode.w), ("b", mode.b),
                                     ("x0", mode.x0), ("steps", mode.steps)) if v is not None}
        return MapView(**options, id=id)
    return None


def reuse(view: Widget | None, old: LabMode, new: LabMode) -> bool:
    """Whether `view`, showing `old`, can show `new` without being replaced: a training lab takes
    a new preset in place (a fresh run, the same worker); an identical explorer stays as it is."""
    if view is None or new is None:
        return False
    if isinstance(new, TrainLab) and isinstance(old, TrainLab):
        view.session.load_preset(new.settings, new.budget)
        return True
    return isinstance(new, WorkedLab) and old == new
