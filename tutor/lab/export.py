"""Export a lab run to a folder: its settings, every step the lab kept, and (from the view) an
SVG screenshot.

    folder = new_run_folder(data_dir(), session.settings)   # <data>/runs/20261203-180512-lstm-adding
    paths = export_run(session, folder)                      # settings.json, steps.jsonl

`steps.jsonl` has one JSON object per step with the fields `rnn-tutor train` prints (in compare
mode one file per cell, `steps-rnn.jsonl`, ...); `settings.json` has the settings, the command
line that reproduces the run, and what the lab knew of it.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tutor.engine.settings import Settings

from .reproduce import caveats, command_line
from .session import LabSession

RUNS_FOLDER = "runs"


def new_run_folder(data_dir: Path, settings: Settings, now: float | None = None) -> Path:
    """A folder that does not exist yet, named by the time and the run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path(data_dir) / RUNS_FOLDER / f"{stamp}-{settings.cell}-{settings.task}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def export_run(session: LabSession, folder: Path) -> list[Path]:
    """Write the run's settings and steps into `folder` (created); the paths written."""
    folder.mkdir(parents=True)
    runs = session.history.runs
    many = len(runs) > 1
    info = {
        "command": command_line(session.settings),
        "notes": caveats(session),
        "settings": dataclasses.asdict(session.settings),
        "compare": session.compare,
        "runs": {name: {"settings": dataclasses.asdict(run.settings), "steps": run.step,
                        "status": run.status, "diverged_at": run.diverged_at,
                        "steps_kept": len(run.log), "steps_dropped": run.log.dropped,
                        "file": _steps_name(name, many)}
                 for name, run in runs.items()},
        "ended": session.ended,
        "budget": session.budget,
    }
    paths = [folder / "settings.json"]
    paths[0].write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for name, run in runs.items():
        path = folder / _steps_name(name, many)
        with path.open("w", encoding="utf-8") as out:
            for record in run.log.records():
                out.write(json.dumps(record) + "\n")
        paths.append(path)
    return paths


def _steps_name(name: str, many: bool) -> str:
    return f"steps-{name}.jsonl" if many else "steps.jsonl"
