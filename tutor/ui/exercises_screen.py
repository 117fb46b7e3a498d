"""The exercises screen: the list with a mark per exercise, the latest check's report, watch
mode (a file is checked again each time it is saved), hints on request, and the reference
solution after a failed check and a confirmation.

Checks run one at a time in a worker thread that only waits on the checking process
(`tutor.exercises.check`), so the UI never blocks; results come back as `CheckDone` messages.
Each result goes into the exercise record (`exercises.json` beside the tutor's progress) and is
announced with `ProgressChanged`, for a host app that shows progress elsewhere.
Standalone: `run_exercises(folder)`, or `ExercisesApp` in tests.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from pathlib import Path

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tutor import textsafe
from tutor.exercises.catalog import BY_NUMBER, CELL_EXERCISES, EXERCISES, Exercise
from tutor.exercises.record import ExerciseRecord
from tutor.ui.confirm import ConfirmScreen
from tutor.ui.terminal import OneLineErrors, run_app, start_session

POLL_S = 0.5
MARKS = {"pass": "✓", "fail": "✗", "error": "✗", "todo": "·", None: "·", "running": "…"}
HOWTO = ("Write the functions in the file with your editor (e opens it here). Each save "
         "checks it again against the engine.\n\n✓ passes   ✗ fails\n· not written yet\n"
         "… being checked")


class ExercisesScreen(Screen):
    DEFAULT_CSS = """
    ExercisesScreen { layout: vertical; }
    ExercisesScreen #ex-title { height: 1; padding: 0 1; text-style: bold; }
    ExercisesScreen #ex-body { height: 1fr; }
    ExercisesScreen #ex-side { width: 30; height: 100%; }
    ExercisesScreen #ex-list {
        height: auto; max-height: 1fr; border: round $accent; border-title-align: left;
        padding: 0;
    }
    ExercisesScreen #ex-howto { height: auto; padding: 1 1 0 1; color: $text-muted; }
    ExercisesScreen #ex-report {
        width: 1fr; height: 100%; border: round $accent; border-title-align: left;
        padding: 0 1;
    }
    ExercisesScreen #ex-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("c,enter", "check", "Check", key_display="c"),
        Binding("h", "hint", "Hint"),
        Binding("s", "solution", "Solution"),
        Binding("e", "edit", "Edit"),
        Binding("n", "next_exercise", "Next"),
        Binding("pagedown", "scroll_report(1)", "Scroll report", show=False),
        Binding("pageup", "scroll_report(-1)", "Scroll report", show=False),
        Binding("escape", "close", "Back", key_display="esc"),
    ]

    class CheckDone(Message):
        """A check finished (sent from the worker thread)."""

        def __init__(self, result) -> None:
            super().__init__()
            self.result = result

    class ProgressChanged(Message):
        """The record of one exercise changed; `entry` is `ExerciseRecord.entry(number)`."""

        def __init__(self, number: int, entry: dict) -> None:
            super().__init__()
            self.number, self.entry = number, entry

    def __init__(self, folder: Path, record: ExerciseRecord | None = None, limits=None,
                 poll_seconds: float = POLL_S, check_on_open: bool = True) -> None:
        super().__init__()
        self.folder = Path(folder)
        if record is None:
            record, notice = ExerciseRecord.load()
        else:
            notice = None
        self.record = record
        self.limits = limits
        self.poll_seconds = poll_seconds
        self.check_on_open = check_on_open
        self.results: dict[int, object] = {}         # this session's CheckResults
        self.hints_shown: dict[int, list[int]] = {}   # hint indices, in the order shown
        self.solution_shown: set[int] = set()
        self._file_stamps: dict[int, tuple | None] = {}
        self._pending: list[int] = []
        self._asked: set[int] = set()
        self._checking: int | None = None
        self._stop_checks = threading.Event()
        self._notice = notice

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Exercises · {textsafe.clean(str(self.folder))}", overflow="ellipsis",
                          no_wrap=True), id="ex-title")
        with Horizontal(id="ex-body"):
            listing = OptionList(*(Option(self._prompt(e), id=str(e.number)) for e in EXERCISES),
                                 id="ex-list")
            listing.border_title = "Exercises"
            with Vertical(id="ex-side"):
                yield listing
                yield Static(Text(HOWTO), id="ex-howto")
            with VerticalScroll(id="ex-report", can_focus=False) as report:
                report.border_title = EXERCISES[0].file
                yield Static(id="ex-report-text")
        yield Static(id="ex-status")
        yield Footer()

    def on_mount(self) -> None:
        first = next((e.number for e in EXERCISES if not self._entry(e.number)["passed"]), 1)
        listing = self.query_one("#ex-list", OptionList)
        listing.highlighted = first - 1
        listing.focus()
        self._file_stamps = {e.number: self._stamp(e) for e in EXERCISES}
        self.set_interval(self.poll_seconds, self._poll)
        if self.check_on_open:
            self._request(first)
            for e in EXERCISES:
                self._request(e.number)
        self._show_status(self._notice or "Save a file in your editor and it is checked again "
                          "(e opens it here)")
        self._render_report()

    def on_unmount(self) -> None:
        self._stop_checks.set()              # a running check's process is killed at once
        self._stop_checks = threading.Event()
        self._checking = None
        self._pending.clear()

    # ---- what is shown --------------------------------------------------------------------

    @property
    def current(self) -> Exercise:
        index = self.query_one("#ex-list", OptionList).highlighted
        return EXERCISES[index if index is not None else 0]

    def _entry(self, number: int) -> dict:
        return self.record.entry(number)

    def _may_see_solution(self, number: int) -> bool:
        """Only once a check of an attempt has failed (now or in an earlier session)."""
        return self._entry(number)["failures"] > 0

    def _status(self, number: int) -> str | None:
        if self._checking == number:
            return "running"
        result = self.results.get(number)
        return result.status if result is not None else self._entry(number)["status"]

    def _prompt(self, exercise: Exercise) -> Text:
        status = self._status(exercise.number)
        text = Text()
        text.append(f"{MARKS.get(status, '·')} ", "bold")
        text.append(f"{exercise.number} {exercise.short}",
                    "bold" if status == "pass" else "")
        return text

    def _refresh_list(self) -> None:
        listing = self.query_one("#ex-list", OptionList)
        for e in EXERCISES:
            listing.replace_option_prompt(str(e.number), self._prompt(e))
        done = sum(1 for e in EXERCISES if self._entry(e.number)["passed"])
        listing.border_title = f"Exercises {done}/{len(EXERCISES)}"

    def _render_report(self) -> None:
        e = self.current
        report = self.query_one("#ex-report", VerticalScroll)
        report.border_title = e.file
        parts = [Text(e.title, style="bold")]
        status = self._status(e.number)
        result = self.results.get(e.number)
        if status == "running":
            parts.append(Text("… checking"))
        elif result is not None:
            parts.append(_report(result, e.file))
        elif self._entry(e.number)["summary"]:
            parts.append(Text(f"last time: {self._entry(e.number)['summary']}"))
        else:
            parts.append(Text("not checked yet: c checks it"))
        shown = self.hints_shown.get(e.number, [])
        for k, i in enumerate(shown, 1):
            parts.append(Text(f"\nHint {k} of {len(e.hints)}: {e.hints[i]}", style="italic"))
        if self._may_see_solution(e.number) and status != "pass" and len(shown) >= len(e.hints):
            parts.append(Text("\nNo more hints: s shows the reference solution.", style="dim"))
        self.query_one("#ex-report-text", Static).update(Group(*parts))

    def _show_status(self, text: str) -> None:
        self.query_one("#ex-status", Static).update(Text(textsafe.clean(text),
                                                         overflow="ellipsis", no_wrap=True))

    @on(OptionList.OptionHighlighted, "#ex-list")
    def _highlighted(self) -> None:
        self.query_one("#ex-report", VerticalScroll).scroll_home(animate=False)
        self._render_report()

    @on(OptionList.OptionSelected, "#ex-list")
    def _selected(self) -> None:
        self.action_check()

    # ---- checking -------------------------------------------------------------------------

    def _stamp(self, exercise: Exercise) -> tuple | None:
        try:
            info = (self.folder / exercise.file).stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def _poll(self) -> None:
        for e in EXERCISES:
            stamp = self._stamp(e)
            if stamp != self._file_stamps.get(e.number):
                self._file_stamps[e.number] = stamp
                self._request(e.number, front=True)

    def _request(self, number: int, front: bool = False) -> None:
        if front:                            # saved, or asked for: say how it went
            self._asked.add(number)
        if number in self._pending:
            if not front:
                return
            self._pending.remove(number)
        self._pending.insert(0, number) if front else self._pending.append(number)
        self._next()

    def _next(self) -> None:
        if self._checking is not None or not self._pending:
            return
        number = self._pending.pop(0)
        self._checking = number
        self._refresh_list()
        if number == self.current.number:
            self._render_report()
        stop = self._stop_checks
        self.run_worker(lambda: self._check_in_thread(number, stop), thread=True,
                        group="exercise-check", exit_on_error=False)

    def _check_in_thread(self, number: int, stop: threading.Event) -> None:
        from tutor.exercises.check import CheckResult, check_file

        exercise = BY_NUMBER[number]
        try:
            result = check_file(exercise, self.folder / exercise.file, self.limits,
                                cancel=stop)
        except Exception as e:               # a bug of ours: one line, the screen goes on
            result = CheckResult(number, exercise.file, "error",
                                 f"{exercise.file}: the check itself failed "
                                 f"({type(e).__name__}: {e})")
        if not stop.is_set():
            self.post_message(self.CheckDone(result))

    def on_exercises_screen_check_done(self, message: CheckDone) -> None:
        result = message.result
        self._checking = None
        self.results[result.number] = result
        self.record.record_check(result.number, result.status, result.summary)
        problem = self.record.save()
        self.post_message(self.ProgressChanged(result.number, self._entry(result.number)))
        self._refresh_list()
        if result.number == self.current.number:
            self._render_report()
        if problem:
            self._show_status(problem)
        elif result.number in self._asked or not self._pending:
            self._asked.discard(result.number)
            passed = sum(1 for e in EXERCISES if self._status(e.number) == "pass")
            if result.number != self.current.number:
                self._show_status(f"{passed} of {len(EXERCISES)} pass · {result.summary}")
            elif result.passed and passed < len(EXERCISES):
                cell = next((c for c, n in CELL_EXERCISES.items() if n == result.number), None)
                lab = f" · y in the lab trains your {cell}" if cell else ""
                self._show_status(f"✓ {result.file} passes{lab} · n: next exercise")
            else:
                self._show_status(f"{MARKS.get(result.status, '·')} {result.summary}")
        self._next()

    # ---- actions --------------------------------------------------------------------------

    def action_check(self) -> None:
        self._request(self.current.number, front=True)

    def action_hint(self) -> None:
        e = self.current
        shown = self.hints_shown.setdefault(e.number, [])
        result = self.results.get(e.number)
        index = e.next_hint(set(shown), result.wrong, result.failing) if result is not None \
            else e.next_hint(set(shown))
        if index is None:
            self._show_status("No more hints for this one" + (
                ": s shows the reference solution" if self._may_see_solution(e.number)
                else ""))
            return
        shown.append(index)
        self.record.record_hint(e.number)
        self._save()
        self._render_report()
        self.query_one("#ex-report", VerticalScroll).scroll_end(animate=False)

    def action_next_exercise(self) -> None:
        """The next exercise not passed yet, after the current one (wrapping round)."""
        n, here = len(EXERCISES), self.current.number - 1
        after = [(here + step) % n for step in range(1, n)]
        todo = [i for i in after if self._status(EXERCISES[i].number) != "pass"]
        self.query_one("#ex-list", OptionList).highlighted = (todo or after or [here])[0]

    def action_solution(self) -> None:
        e = self.current
        if not self._may_see_solution(e.number):
            self._show_status(f"{e.file} has not failed a check yet: the solution opens "
                              "after a check of your attempt fails")
            return
        if e.number in self.solution_shown:
            self.app.push_screen(SolutionScreen(e))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.solution_shown.add(e.number)
                self.record.record_solution_seen(e.number)
                self._save()
                self.app.push_screen(SolutionScreen(e))
        question = ("Show the engine's reference solution for "
                    f"{e.file}?\nWorking it out teaches more; a hint (h) may be enough.")
        self.app.push_screen(ConfirmScreen("Reference solution", question), answered)

    def action_edit(self) -> None:
        path = self.folder / self.current.file
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or next(
            (name for name in ("editor", "nano", "vi") if shutil.which(name)), None)
        if not editor:
            self._show_status(f"No editor found ($EDITOR): edit {path} in another window")
            return
        try:
            with self.app.suspend():
                subprocess.call([*shlex.split(editor), str(path)])
        except Exception as e:               # no terminal to hand over, or no such editor
            self._show_status(f"Could not open an editor ({type(e).__name__}): edit {path} "
                              "in another window")
            return
        self._poll()

    def action_scroll_report(self, direction: int) -> None:
        report = self.query_one("#ex-report", VerticalScroll)
        (report.scroll_page_down if direction > 0 else report.scroll_page_up)(animate=False)

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit()

    def _save(self) -> None:
        problem = self.record.save()
        if problem:
            self._show_status(problem)


def _report(result, file: str) -> Table:
    """The check's report: its summary with a mark, then one item per wrong result, each
    wrapped under itself."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1)
    grid.add_column(ratio=1)
    lines = result.lines()
    first = lines[0]
    if first.startswith(f"{file}:"):
        rest = first[len(file) + 1:]
        head, sep, tail = rest.partition(":")
        first = f"line {head}:{tail}" if sep and head.isdigit() else rest.lstrip()
    grid.add_row(Text(MARKS.get(result.status, "·"), style="bold"), Text(first, style="bold"))
    if result.source:
        grid.add_row("", Text(f"› {result.source}", style="italic"))
    for line in lines[1:]:
        text = line.strip()
        if line.startswith("    "):      # what the learner's code printed
            grid.add_row("", Text(text, style="dim", overflow="ellipsis", no_wrap=True))
        elif text.startswith("your code printed"):
            grid.add_row("", Text(text))
        else:
            grid.add_row("•", Text(text))
    return grid


class SolutionScreen(ModalScreen[None]):
    """The reference solution, scrollable; escape closes."""

    DEFAULT_CSS = """
    SolutionScreen { align: center middle; }
    SolutionScreen > VerticalScroll {
        width: 100%; height: 100%; border-top: thick $warning; border-title-align: center;
        background: $surface; padding: 0 0 0 1; scrollbar-size-vertical: 1;
    }
    """
    BINDINGS = [Binding("escape,q,s", "close", "Close", key_display="esc")]

    def __init__(self, exercise: Exercise) -> None:
        super().__init__()
        self.exercise = exercise

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = f"Reference solution · {self.exercise.file} · esc closes"
            yield Static(Syntax(self.exercise.solution, "python", word_wrap=True,
                                background_color="default"))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ExercisesApp(OneLineErrors, App[int]):
    """The screen on its own: `rnn-tutor exercises watch`, and the tests."""

    TITLE = "rnn-tutor · exercises"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c,ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, folder: Path, record: ExerciseRecord | None = None, limits=None,
                 poll_seconds: float = POLL_S, check_on_open: bool = True) -> None:
        super().__init__()
        self._screen_args = (folder, record, limits, poll_seconds, check_on_open)

    def get_default_screen(self) -> Screen:
        return ExercisesScreen(*self._screen_args)

    def on_mount(self) -> None:
        start_session(self)


def run_exercises(folder: Path) -> int:
    return run_app(ExercisesApp(folder))
