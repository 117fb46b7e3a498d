"""The learner's exercise folder: numbered files created from the templates, never overwritten."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tutor import progress

from .catalog import EXERCISES, Exercise

FOLDER_NAME = "exercises"


class WorkspaceError(Exception):
    """The folder cannot be made or written: one line for the learner."""


@dataclass
class Workspace:
    path: Path
    created: list[str]                   # files written this time (new or deleted since)

    def file(self, exercise: Exercise) -> Path:
        return self.path / exercise.file


def default_dir() -> Path:
    """exercises/ under the tutor's data folder (or $RNN_TUTOR_DATA_DIR), beside progress."""
    return progress.data_dir() / FOLDER_NAME


def open_workspace(path: Path | None = None) -> Workspace:
    """Create the folder and any exercise file missing from it; the learner's files are never
    touched. Raises WorkspaceError with one line."""
    path = Path(path) if path is not None else default_dir()
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise WorkspaceError(f"{path} is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkspaceError(f"cannot create {path} ({e.strerror or e})") from None
    created = []
    for exercise in EXERCISES:
        target = path / exercise.file
        try:
            with open(target, "x", encoding="utf-8") as f:   # "x": never replace a file
                f.write(exercise.template)
        except FileExistsError:
            continue
        except OSError as e:
            raise WorkspaceError(f"cannot write {target} ({e.strerror or e})") from None
        created.append(exercise.file)
    return Workspace(path.resolve(), created)
