"""`rnn-tutor exercises [--dir DIR]`, `… check [N]` and `… watch`: the command-line side."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tutor import textsafe

COUNT = 5                                # exercises shipped; catalog.EXERCISES has them all
DEFAULT_TIME_S = 10.0
DEFAULT_MEMORY_MIB = 1024


class ExercisesProblem(Exception):
    """One line for the learner, exit 1."""


def open_folder(directory: str | None):
    from .workspace import WorkspaceError, open_workspace

    try:
        return open_workspace(Path(directory) if directory else None)
    except WorkspaceError as e:
        raise ExercisesProblem(str(e)) from None


def cmd_open(directory: str | None) -> int:
    from .catalog import EXERCISES
    from .record import ExerciseRecord

    ws = open_folder(directory)
    record, _ = ExerciseRecord.load()
    out = [f"Your exercises are in {textsafe.clean(str(ws.path))}"]
    for ex in EXERCISES:
        entry = record.entry(ex.number)
        mark = ("new" if ex.file in ws.created else "passed" if entry["passed"]
                else "not passed yet" if entry["checks"] else "")
        out.append(f"  {ex.file:<20} {ex.title:<44} {mark}".rstrip())
    where = f" --dir {shlex.quote(directory)}" if directory else ""
    out.append(f"Edit a file, then run `rnn-tutor exercises check N{where}` (N = 1 to "
               f"{len(EXERCISES)}, none for all),")
    out.append(f"or `rnn-tutor exercises watch{where}` to check on every save, with hints.")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def cmd_check(directory: str | None, number: int | None, seconds: float,
              memory_mib: int) -> int:
    from .catalog import BY_NUMBER, EXERCISES
    from .check import check_file
    from .record import ExerciseRecord
    from .runner import Limits
    from .workspace import default_dir

    folder = Path(directory).expanduser() if directory else default_dir()
    if not folder.is_dir():
        raise ExercisesProblem(f"no exercises in {textsafe.clean(str(folder))} yet: run "
                               "`rnn-tutor exercises" + (f" --dir {directory}`" if directory
                                                          else "`") + " first")
    chosen = [BY_NUMBER[number]] if number else list(EXERCISES)
    limits = Limits(seconds=seconds, memory_bytes=memory_mib << 20)
    record, _ = ExerciseRecord.load()
    passed = 0
    for ex in chosen:
        result = check_file(ex, folder / ex.file, limits)
        record.record_check(ex.number, result.status, result.summary)
        passed += result.passed
        sys.stdout.write("\n".join(result.lines()) + "\n")
        sys.stdout.flush()
    if len(chosen) > 1:
        sys.stdout.write(f"{passed} of {len(chosen)} exercises pass\n")
    problem = record.save()
    if problem:
        print(f"rnn-tutor: {problem}", file=sys.stderr)
    return 0 if passed == len(chosen) else 1
