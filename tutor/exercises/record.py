"""Exercise progress: which exercises pass, how often each was checked, hints and solutions seen.

Kept in `exercises.json` beside the tutor's `progress.json` (same data folder, same atomic
write), so neither file's format depends on the other. Like `tutor.progress`, nothing here
raises: a missing or corrupt file gives an empty record and at most one line to show."""
from __future__ import annotations

import json
import time
from pathlib import Path

from tutor import progress, textsafe

FILE_NAME = "exercises.json"
VERSION = 1
_MAX_BYTES = 1 << 20
_MAX_SUMMARY = 300
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"         # local time, as the learner reads it


def record_path() -> Path:
    return progress.data_dir() / FILE_NAME


class ExerciseRecord:
    """Per exercise number: {"passed", "status", "summary", "checks", "failures",
    "passed_at", "checked_at", "hints", "solution_seen"}. `passed` stays True once an exercise has passed;
    `failures` counts checks of an attempt that failed (a wrong result, an error), after
    which the solution may be shown."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[int, dict] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> tuple["ExerciseRecord", str | None]:
        try:
            path = Path(path) if path is not None else record_path()
        except Exception as e:               # no home folder to be found
            return cls(None), f"exercise progress is kept in memory only ({_reason(e)})"
        record = cls(path)
        try:
            if not path.exists():
                return record, None
            if path.stat().st_size > _MAX_BYTES:
                raise ValueError("far too big")
            data = json.loads(path.read_text(encoding="utf-8"))
            for key, entry in data.get("exercises", {}).items():
                clean = _clean(entry)
                if key.isdigit() and clean is not None:
                    record.entries[int(key)] = clean
        except (OSError, ValueError, AttributeError, UnicodeDecodeError) as e:
            return record, textsafe.clean(f"{path} could not be read ({_reason(e)}); "
                                          "starting a fresh exercise record")
        return record, None

    def entry(self, number: int) -> dict:
        return dict(self.entries.get(number) or _empty())

    def record_check(self, number: int, status: str, summary: str) -> None:
        e = self.entries.setdefault(number, _empty())
        e["checks"] += 1
        if status in ("fail", "error"):
            e["failures"] += 1
        e["status"] = status
        e["summary"] = textsafe.clean(summary)[:_MAX_SUMMARY]
        e["checked_at"] = time.strftime(TIME_FORMAT)
        if status == "pass" and not e["passed"]:
            e["passed"] = True
            e["passed_at"] = e["checked_at"]

    def record_hint(self, number: int) -> None:
        self.entries.setdefault(number, _empty())["hints"] += 1

    def record_solution_seen(self, number: int) -> None:
        self.entries.setdefault(number, _empty())["solution_seen"] = True

    def to_json(self) -> dict:
        return {"version": VERSION,
                "exercises": {str(n): dict(e) for n, e in sorted(self.entries.items())}}

    def save(self) -> str | None:
        """Write atomically; None, or one line saying why not."""
        if self.path is None:
            return "exercise progress is kept in memory only"
        try:
            progress.write_atomically(
                self.path, json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n")
        except OSError as e:
            return textsafe.clean(f"could not save exercise progress to {self.path} "
                                  f"({_reason(e)})")
        return None


def save_exercise_result(number: int, status: str, summary: str,
                         path: Path | None = None) -> str | None:
    """Record one check and save: the call the tutor app makes with a screen's results."""
    record, _ = ExerciseRecord.load(path)
    record.record_check(number, status, summary)
    return record.save()


def _empty() -> dict:
    return {"passed": False, "status": None, "summary": "", "checks": 0, "failures": 0,
            "passed_at": None, "checked_at": None, "hints": 0, "solution_seen": False}


def _clean(entry) -> dict | None:
    if not isinstance(entry, dict):
        return None
    e = _empty()
    for key, default in list(e.items()):
        value = entry.get(key, default)
        if key in ("checks", "failures", "hints"):
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9
        elif key in ("passed", "solution_seen"):
            ok = isinstance(value, bool)
        else:
            ok = value is None or isinstance(value, str)
        if not ok:
            return None
        e[key] = textsafe.clean(value)[:_MAX_SUMMARY] if isinstance(value, str) else value
    return e


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__
