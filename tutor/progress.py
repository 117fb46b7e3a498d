"""The learner's progress: last lesson, answered checkpoints, lessons read and completed.

Stored as JSON in `progress.json` under the user's data directory (or $RNN_TUTOR_DATA_DIR).
Nothing here raises on bad disks or bad files: `load` always returns a usable store plus at most
one line to tell the learner, and `save` returns an error line instead of raising, so the tutor
keeps working with progress held in memory. Writes go to a temporary file that replaces the old
one in a single rename, so a crash or SIGKILL mid-write leaves the previous file intact.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import textsafe

if TYPE_CHECKING:
    from .lessons import Lesson

ENV_VAR = "RNN_TUTOR_DATA_DIR"
FILE_NAME = "progress.json"
VERSION = 1
MAX_FILE_BYTES = 8 * 1024 * 1024        # far beyond any real progress file
_TMP_PREFIX = ".progress-"
_STALE_TMP_S = 60.0
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_ID_CHARS = 100


def data_dir() -> Path:
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    import platformdirs  # only needed without the override; keeps `import tutor.progress` light

    return Path(platformdirs.user_data_dir("rnn-tutor", appauthor=False))


def progress_path() -> Path:
    return data_dir() / FILE_NAME


class Progress:
    def __init__(self, path: Path | None = None, *, memory_only: bool = False):
        # memory_only: no place to store progress could be worked out; save() then only reports.
        self.path: Path | None = None if memory_only else Path(path or progress_path())
        self._last: str | None = None
        self._completed: set[str] = set()
        self._read: set[str] = set()
        self._answers: dict[str, dict[str, dict[str, Any]]] = {}
        self._save_blocked: str | None = None

    # ---- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> tuple["Progress", str | None]:
        """Read the store; never raises. The notice, if any, is one line for the learner."""
        try:
            progress = cls(path)
        except Exception as e:  # e.g. platformdirs cannot work out a home directory
            return cls(memory_only=True), textsafe.clean(
                f"progress cannot be stored ({_reason(e)}); it is kept in memory for this session")
        try:
            return progress, progress._load()
        except Exception as e:  # belt and braces: a surprise here must not stop the tutor
            return cls(memory_only=True), textsafe.clean(
                f"progress could not be loaded ({_reason(e)}); it is kept in memory for this session")

    def _load(self) -> str | None:
        memory_only = "progress is kept in memory for this session"
        unwritable = _check_dir(self.path.parent)
        problem, kept_in_memory = self._read_file()
        if kept_in_memory:
            # Whatever is at the path could not be read; never overwrite it.
            self._save_blocked = f"{problem}, so progress is not saved this session"
        parts = [f"cannot save progress in {self.path.parent} ({unwritable})"] if unwritable else []
        if problem:
            parts.append(problem)
        if unwritable or kept_in_memory:
            parts.append(memory_only)
        return textsafe.clean("; ".join(parts)) if parts else None

    def _read_file(self) -> tuple[str | None, bool]:
        """Fill the store from the file. Returns (problem or None, whether the file stays unused
        so progress lives in memory only)."""
        path = self.path
        _remove_stale_temp_files(path.parent)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None, False
        except OSError as e:
            return f"cannot read {path} ({_reason(e)})", True
        if stat.S_ISDIR(info.st_mode):
            return f"{path} is a folder, not a progress file", True
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file", True
        if info.st_size > MAX_FILE_BYTES:
            return self._set_aside(f"was {info.st_size} bytes, far too big"), False
        try:
            raw = path.read_bytes()
        except OSError as e:
            return f"cannot read {path} ({_reason(e)})", True
        return self._parse(raw), False

    def _parse(self, raw: bytes) -> str | None:
        path = self.path
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # The parser's own message (line, column, char) means nothing to a learner.
            return self._set_aside("was not valid JSON")
        if not isinstance(data, dict):
            return self._set_aside("did not hold a JSON object")
        dropped = self._take(data)
        if not dropped:
            return None
        backup = self._backup_name()
        try:
            shutil.copy2(path, backup)
        except OSError as e:
            return (f"some progress entries were not understood and were dropped ({dropped}); "
                    f"the original could not be copied aside: {_reason(e)}")
        return (f"some progress entries were not understood and were dropped ({dropped}); "
                f"the original file was copied to {backup}")

    def _set_aside(self, why: str) -> str:
        backup = self._backup_name()
        try:
            os.replace(self.path, backup)
        except OSError as e:
            return (f"{self.path.name} {why} and could not be set aside ({_reason(e)}): "
                    f"{self.path}; starting with fresh progress")
        return f"{self.path.name} {why}; it was set aside as {backup} and a fresh one started"

    def _backup_name(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        candidate = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while candidate.exists():
            n += 1
            candidate = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        return candidate

    def _take(self, data: dict) -> str:
        """Keep every valid entry of `data`; return a short description of what was dropped."""
        dropped: list[str] = []
        version = data.get("version", VERSION)
        if version != VERSION:
            dropped.append(f"unknown version {repr(version)[:20]}")
        last = data.get("last")
        if last is None or _is_slug(last):
            self._last = last
        else:
            dropped.append("last lesson")
        for key, target in (("completed", self._completed), ("read", self._read)):
            items = data.get(key, [])
            if not isinstance(items, list):
                dropped.append(key)
                continue
            good = [s for s in items if _is_slug(s)]
            target.update(good)
            if len(good) != len(items):
                dropped.append(f"{len(items) - len(good)} {key} entries")
        answers = data.get("answers", {})
        if not isinstance(answers, dict):
            dropped.append("answers")
            answers = {}
        bad_answers = 0
        for slug, per_lesson in answers.items():
            if not _is_slug(slug) or not isinstance(per_lesson, dict):
                bad_answers += 1
                continue
            for qid, record in per_lesson.items():
                clean = _clean_answer(record) if _is_slug(qid) else None
                if clean is None:
                    bad_answers += 1
                else:
                    self._answers.setdefault(slug, {})[qid] = clean
        if bad_answers:
            dropped.append(f"{bad_answers} answers")
        unknown = sorted(set(data) - {"version", "last", "completed", "read", "answers"})
        if unknown:
            dropped.append("unknown fields " + ", ".join(repr(k)[:40] for k in unknown[:3]))
        return "; ".join(dropped)

    # ---- saving -----------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "version": VERSION,
            "last": self._last,
            "completed": sorted(self._completed),
            "read": sorted(self._read),
            "answers": {slug: {qid: _json_record(rec) for qid, rec in sorted(qs.items())}
                        for slug, qs in sorted(self._answers.items())},
        }

    def save(self) -> str | None:
        """Write the store atomically. Returns None, or one line saying why it could not."""
        if self.path is None:
            return "progress is kept in memory only: no folder to save it in was found"
        if self._save_blocked:
            return textsafe.clean(self._save_blocked)
        text = json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"
        try:
            write_atomically(self.path, text)
        except OSError as e:
            return textsafe.clean(f"could not save progress to {self.path} ({_reason(e)}); "
                                  "it is kept in memory until you quit")
        return None

    def reset(self) -> str | None:
        """Forget everything and overwrite the file with empty progress. Returns a save error."""
        self._last = None
        self._completed.clear()
        self._read.clear()
        self._answers.clear()
        return self.save()

    # ---- what the app reads and records -----------------------------------------------------

    @property
    def last(self) -> str | None:
        return self._last

    def set_last(self, slug: str) -> None:
        self._last = slug

    @property
    def completed(self) -> frozenset[str]:
        return frozenset(self._completed)

    def record_answer(self, slug: str, qid: str, choice: int, correct: bool) -> None:
        """Record one try at a checkpoint. Once answered correctly it stays solved, even if the
        learner later picks a wrong option to read its feedback."""
        previous = self._answers.get(slug, {}).get(qid)
        tries = previous["tries"] + 1 if previous else 1
        solved = bool(correct) or bool(previous and previous["solved"])
        self._answers.setdefault(slug, {})[qid] = {
            "choice": int(choice), "correct": bool(correct), "tries": tries, "solved": solved}

    def record_prediction(self, slug: str, qid: str, choice: int,
                          measured: float | None = None, correct: bool = False) -> None:
        """Record a prediction checkpoint: the learner's choice when committed (`measured`
        None: the experiment has not been graded yet), then again with the measured value and
        whether the prediction was right. A graded prediction counts as done ("solved") whether
        or not it was right: the point was to commit, then see. A graded one is never
        replaced by a later, ungraded commit."""
        previous = self._answers.get(slug, {}).get(qid)
        if measured is None and previous and previous.get("measured") is not None:
            return
        record = {"choice": int(choice), "correct": bool(correct) and measured is not None,
                  "tries": 1, "solved": measured is not None}
        if measured is not None:
            record["measured"] = float(measured)
        self._answers.setdefault(slug, {})[qid] = record

    def answer(self, slug: str, qid: str) -> dict | None:
        """The latest answer as {"choice", "correct", "tries", "solved"} (and "measured", the
        graded value of a prediction), or None."""
        record = self._answers.get(slug, {}).get(qid)
        return dict(record) if record else None

    def mark_read(self, slug: str) -> None:
        self._read.add(slug)

    def is_read(self, slug: str) -> bool:
        return slug in self._read

    def mark_complete(self, slug: str) -> None:
        self._completed.add(slug)

    def is_complete(self, lesson: "Lesson") -> bool:
        """Every checkpoint solved, or, for a lesson without checkpoints, read to the end.
        A lesson once recorded as complete stays complete."""
        if lesson.slug in self._completed:
            return True
        if lesson.checkpoints:
            answers = self._answers.get(lesson.slug, {})
            return all(answers.get(cp.id, {}).get("solved") for cp in lesson.checkpoints)
        return lesson.slug in self._read

    def update_completion(self, lesson: "Lesson") -> bool:
        """Record the lesson as complete if it now is; True when that is news."""
        if lesson.slug in self._completed or not self.is_complete(lesson):
            return False
        self._completed.add(lesson.slug)
        return True


def write_atomically(path: Path, text: str) -> None:
    """Replace path's contents with text in one rename, so a crash mid-write leaves the old
    file whole. Raises OSError."""
    folder = path.parent
    tmp_name = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(folder)
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _json_record(record: dict) -> dict:
    """An answer as JSON can hold it: a measured infinity (a diverged run) is written "inf"."""
    record = dict(record)
    if "measured" in record and math.isinf(record["measured"]):
        record["measured"] = "inf" if record["measured"] > 0 else "-inf"
    return record


def _is_slug(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_ID_CHARS and bool(_SLUG_RE.fullmatch(value))


def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < 10**9


def _clean_answer(record: Any) -> dict | None:
    if not isinstance(record, dict):
        return None
    choice, correct, tries = record.get("choice"), record.get("correct"), record.get("tries", 1)
    solved = record.get("solved", correct)
    if not (_is_count(choice, 0) and isinstance(correct, bool) and _is_count(tries, 1)
            and isinstance(solved, bool)):
        return None
    clean = {"choice": choice, "correct": correct, "tries": tries, "solved": solved or correct}
    if "measured" in record:
        measured = record["measured"]
        if measured in ("inf", "-inf"):          # JSON has no infinity; see _json_record
            measured = float(measured)
        if isinstance(measured, bool) or not isinstance(measured, (int, float)) \
                or math.isnan(measured):
            return None
        clean["measured"] = float(measured)
    return clean


def _check_dir(folder: Path) -> str | None:
    """Create the data folder and prove a file can be written there (os.access lies to root)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        return _reason(e)
    return None


def _remove_stale_temp_files(folder: Path) -> None:
    """Temp files left by a save that was killed mid-write; recent ones may belong to a running
    tutor, so only old ones go."""
    try:
        for entry in folder.glob(_TMP_PREFIX + "*.tmp"):
            if time.time() - entry.stat().st_mtime > _STALE_TMP_S:
                entry.unlink()
    except OSError:
        pass


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__
