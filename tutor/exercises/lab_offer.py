"""Whether the lab may train the learner's own cell: only once the exercise for that cell
passes the checker, as the exercise record (`record.py`) says of its latest check."""
from __future__ import annotations

import time
from pathlib import Path

from tutor.lab.own_cell import OwnCell

from .catalog import BY_NUMBER, CELL_EXERCISES
from .record import TIME_FORMAT, ExerciseRecord
from .workspace import default_dir


def own_cell_offer(cell: str, folder: Path | None = None,
                   record_path: Path | None = None) -> OwnCell | str:
    """The learner's `cell` from their workspace file, or one line saying why not."""
    number = CELL_EXERCISES.get(cell)
    if number is None:
        return (f"your own cell can be an rnn, lstm or gru (exercises 1, 4, 5); this lab "
                f"trains {cell}")
    exercise = BY_NUMBER[number]
    record, _ = ExerciseRecord.load(record_path)
    entry = record.entry(number)
    if entry["status"] != "pass":
        why = {None: "is not checked yet", "todo": "is not written yet"}.get(
            entry["status"], "did not pass its last check")
        return (f"your {cell} can train here once {exercise.file} passes: it {why} "
                f"(X, or `rnn-tutor exercises check {number}`)")
    path = (Path(folder) if folder is not None else default_dir()) / exercise.file
    if not path.is_file():
        return f"{exercise.file} is missing from {path.parent}"
    if _changed_since(path, entry["checked_at"]):
        return (f"{exercise.file} changed since it passed; check it again (X, or "
                f"`rnn-tutor exercises check {number}`)")
    return OwnCell(kind=cell, path=str(path.resolve()), forward=exercise.functions[0],
                   backward=exercise.functions[1])


def _changed_since(path: Path, checked_at: str | None) -> bool:
    """Saved after the check (to the second; a record without the time counts as current)."""
    if not checked_at:
        return False
    try:
        checked = time.mktime(time.strptime(checked_at, TIME_FORMAT))
        return int(path.stat().st_mtime) > checked
    except (OSError, ValueError, OverflowError):
        return False
