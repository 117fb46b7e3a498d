"""The lab's status line as data: (text, style) fields that a view joins and wraps. Style is a
Rich style string ("" for plain), so the wording is tested without a screen."""
from __future__ import annotations

import math

from .history import RunHistory
from .session import COMPARE_CELLS, LabSession

Field = tuple[str, str]


def settings_fields(session: LabSession) -> list[Field]:
    s = session.settings
    cell = "+".join(COMPARE_CELLS) if session.compare else s.cell
    first = [session.own.label, s.task] if session.own else [f"{cell} {s.task}"]
    top = [*first, f"T={s.seq_len}", f"H={s.hidden}", s.optimizer, f"lr={s.lr:g}",
           f"seed={s.seed}", f"reverse {'on' if s.reverse_input else 'off'}", s.clip_label]
    if s.truncate is not None:
        top.append(s.truncate_label)
    if s.radius is not None:
        top.append(f"radius={s.radius:g}")
    if s.init != "auto":
        top.append(f"init={s.init}")
    return [(part, "") for part in top]


def progress_fields(session: LabSession) -> list[Field]:
    runs = list(session.history.runs.values())
    fields: list[Field] = []
    flag = _flag(session, runs)
    if flag:
        fields.append(flag)
    pace = session.pace
    if session.paused:
        fields.append((f"pace {pace:g}/s" if pace else "pace full", ""))  # `f` while paused
    step = max((r.step for r in runs), default=0)
    if session.ended:         # the flag says the step
        fields.append(("the loss levelled off" if session.ended == "plateau"
                       else f"its {session.budget}-step budget was reached", "italic"))
    else:
        fields.append((f"step {step}", ""))
        if session.own_failed:
            pass                   # the flag and the notice say it all
        elif not session.paused and step == 0:
            fields.append(("starting…", ""))
        elif not session.paused and not session.held and runs \
                and not any(r.done or r.diverged_at for r in runs):
            rate = sum(r.steps_per_s for r in runs) / len(runs)
            fields.append((f"{rate:.0f} steps/s" + (f" (pace {pace:g})" if pace else ""), ""))
    fields += [(part, "") for part in metric_parts(runs)]
    if session.notice:
        fields.append((session.notice, "italic"))
    return fields


def _flag(session: LabSession, runs: list[RunHistory]) -> Field | None:
    if session.own_failed:                     # the notice says why
        return (f"your {session.own.kind} stopped · r: back to the engine's {session.own.kind}",
                "bold reverse")
    diverged = [r for r in runs if r.diverged_at]
    if diverged and len(diverged) == len(runs):
        return f"diverged at step {diverged[0].diverged_at}, press r to reset", "bold reverse"
    if session.ended:
        return f"done at step {session.step} — space to train on", "bold reverse"
    if session.paused:
        return "paused", "bold reverse"
    if session.held:
        return "paused while the lab is off screen", "bold reverse"
    if runs and all(r.done or r.diverged_at for r in runs):
        return f"stopped after {session.max_steps} steps", "bold"
    if diverged:
        return ", ".join(f"{r.name} diverged at {r.diverged_at}" for r in diverged), "bold"
    return None


def metric_parts(runs: list[RunHistory]) -> list[str]:
    """The loss (and accuracy) against what a constant guess scores."""
    if not runs or runs[0].baseline is None:
        return []
    base = runs[0].baseline
    many = len(runs) > 1

    def name(r):
        return f"{r.name} " if many else ""

    if any(r.last_loss is None for r in runs):
        return [f"baseline loss {base.loss:.3g}"]
    parts = []
    if base.accuracy is not None:
        accs = " ".join(f"{name(r)}{r.last_accuracy:.0%}" for r in runs
                        if r.last_accuracy is not None)
        parts.append(f"acc {accs} (guess {base.accuracy:.0%})")
    # where the task scores one long-range word, its loss is the one the baseline is for
    focused = all(r.last_long_range_loss is not None for r in runs)
    losses = " ".join(f"{name(r)}{fmt(r.last_long_range_loss if focused else r.last_loss)}"
                      for r in runs)
    parts.append(f"{'word loss' if focused else 'loss'} {losses} (base {base.loss:.3g})")
    return parts


def fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "nan" if x is not None and math.isnan(x) else "inf"
    return f"{x:.3g}"
