"""The tutor: a Markdown lesson beside a live lab, driven from the keyboard.

    TutorApp(lessons_dir=None, lesson=None, fps=4.0)   # the lesson last open, or the first
    run_tutor(lessons_dir, lesson, fps, reset_progress) -> exit code

Wide terminals (>= WIDE_COLUMNS) show the lesson and the lab side by side; narrower ones show one
at a time and `v` switches. Below MIN_SIZE the app shows a message until the terminal grows. The
lab keys are the lab's own LAB_BINDINGS, handled by `LabActions`; the lesson keys are here.
What the lab area shows is the lesson's `lab` spec, built by `lab_modes`.
Progress (last lesson, answers, completed lessons) is saved through `tutor.progress` after every
change. An unexpected error is written to a log file in the data folder, never over the screen.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from tutor.engine.settings import SettingsError
from tutor.lab.modes import LabMode
from tutor.lessons import Lesson, LessonsError, find_lesson, load_lessons
from tutor.progress import Progress

from .checkpoint import CheckpointView
from .predict_view import PredictionHandlers
# Only the key map is needed up front; the LabPane (charts, NumPy, the worker) is imported when
# the first lab is mounted, after the first lesson is on screen.
from .lab_keys import LAB_BINDINGS, LabActions, long_description
from .lab_modes import build_view, reuse
from .lesson_pane import COMPLETE_MARK, FirstLesson, LessonPane
from .terminal import OneLineErrors, fps_problem, run_app, start_session

WIDE_COLUMNS = 120          # from here on, lesson and lab sit side by side
MIN_SIZE = (40, 12)         # below this, a message instead of the UI

APP_BINDINGS = [
    Binding("q", "quit", "Quit", tooltip="Quit (q, ctrl+q or ctrl+c)"),
    Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    Binding("question_mark", "help", "Help", key_display="?", tooltip="This list of keys"),
    Binding("n", "next_lesson", "Next", tooltip="Next lesson"),
    Binding("p", "previous_lesson", "Previous", show=False, tooltip="Previous lesson"),
    Binding("o", "lesson_list", "Lessons",
            tooltip="Lesson list, with a mark for each completed lesson"),
    # priority: an explorer view (the map) uses v itself when it has focus; in a narrow terminal
    # v must still bring the lesson back. When both panes show, v falls through to the view.
    Binding("v", "switch_view", "Lesson/Lab", priority=True,
            tooltip="Switch between the lesson and the lab (terminals under 120 columns)"),
    Binding("X", "exercises", "Exercises", show=False,
            tooltip="Exercises: write the forward and backward steps, checked on every save"),
]

# The footer has room for a few lab keys at 80 columns; the help screen lists every key.
FOOTER_LAB_ACTIONS = {"lab_pause", "lab_clip"}
LAB_KEYS = [dataclasses.replace(b, show=b.action in FOOTER_LAB_ACTIONS) for b in LAB_BINDINGS]

HELP_GROUPS = {"quit": "App", "help": "App", "exercises": "App", "next_lesson": "Lessons",
               "previous_lesson": "Lessons", "lesson_list": "Lessons", "switch_view": "Lessons",
               "lab_*": "Lab"}
HELP_ORDER = ["Lessons", "Lab", "App"]
# Actions of this app that need a lesson set.
LESSON_ACTIONS = {"next_lesson", "previous_lesson", "lesson_list"}


# Screens opened by a key (help, lesson list, confirmation, palette) are imported when first
# opened: startup to the first lesson is a measured goal.
def _palette_provider():
    from .palette import TutorCommands
    return TutorCommands


class TutorError(Exception):
    """A problem found before the app starts (unknown lesson, unusable folder); one line."""


class TooSmall(Static):
    """Shown instead of everything else while the terminal is below MIN_SIZE."""


class MainScreen(Screen):
    """The default screen; tells the app when the terminal size changes (App.on_resize is not
    called in Textual 8: the app consumes the event and resizes its screens)."""

    def on_resize(self) -> None:
        update = getattr(self.app, "_update_layout", None)
        if update is not None:
            update()


class TutorApp(OneLineErrors, LabActions, PredictionHandlers, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "rnn-tutor"
    BINDINGS = APP_BINDINGS + LAB_KEYS
    COMMANDS = App.COMMANDS | {_palette_provider}

    show_lab = reactive(False, init=False)     # narrow terminals: the lab instead of the lesson

    def __init__(self, lessons_dir: str | Path | None = None, lesson: str | None = None,
                 fps: float = 4.0, max_steps: int | None = None, reset_progress: bool = False,
                 lab_paused: bool = False) -> None:
        """Loads the lessons and the progress store; raises TutorError (one line) for an unusable
        lessons folder or an unknown `lesson`."""
        super().__init__()
        self.fps = fps
        self.max_steps = max_steps
        self.lab_paused = lab_paused
        self.lab_mode: LabMode = None      # what the lab area shows now
        self.notices: list[str] = []
        self._last_save_error: str | None = None
        self._show_lock = asyncio.Lock()
        self._show_ticket = 0
        self._shown_ticket = -1
        self.current_index = 0

        self.progress, notice = Progress.load()
        if notice:
            self.notices.append(notice)
        if reset_progress:
            error = self.progress.reset()
            self.notices.append(error or "progress reset")

        try:
            self.lesson_set = load_lessons(Path(lessons_dir) if lessons_dir else None)
        except LessonsError as exc:
            raise TutorError(str(exc)) from None
        lessons = self.lesson_set.lessons
        if lesson is not None:
            found = find_lesson(self.lesson_set, str(lesson))
            if found is None:
                # The shipped folder's path means nothing to the learner; their own folder does.
                where = f" in {self.lesson_set.folder}" if lessons_dir else ""
                lister = "rnn-tutor lessons" + (f" --lessons {lessons_dir}" if lessons_dir else "")
                listed = (f"; the lessons are 1–{len(lessons)} ({lister} lists them)"
                          if lessons else "")
                raise TutorError(f"no lesson {lesson!r}{where}{listed}")
            self.current_index = lessons.index(found)
        elif self.progress.last:
            last = next((i for i, l in enumerate(lessons) if l.slug == self.progress.last), None)
            self.current_index = last or 0
        broken = len(self.lesson_set.broken)
        if broken:
            self.notices.append(f"{broken} lesson file{'s are' if broken > 1 else ' is'} broken; "
                                "press o to see why")

    # ---- composition -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield LessonPane(self._first_lesson(), id="lesson")
            yield Container(id="lab-area")
        yield TooSmall(id="too-small")
        yield Footer(compact=True)

    def _first_lesson(self) -> FirstLesson | None:
        """The lesson to open, drawn in the very first frame (startup time is a goal)."""
        lesson = self.current_lesson
        if lesson is None:
            return None
        width, height = self.size
        text_width = (width * 2 // 5 if width >= WIDE_COLUMNS else width) - 6
        mode_none = lesson.mode == "none"
        return FirstLesson(lesson, self._answers(lesson), self._position(self.current_index),
                           self.progress.is_complete(lesson),
                           width - 6 if mode_none else max(20, text_width), max(10, height - 2))

    def _answers(self, lesson: Lesson) -> dict[str, dict | None]:
        return {cp.id: self.progress.answer(lesson.slug, cp.id) for cp in lesson.checkpoints}

    def _position(self, index: int) -> str:
        return f"{self.lessons[index].number:02d} · {index + 1}/{len(self.lessons)}"

    @property
    def ready(self) -> bool:
        """The current lesson is fully shown and its lab mounted (tests and benches wait on it)."""
        if not self.lessons:
            return self.is_running
        return self._shown_ticket == self._show_ticket

    @property
    def lessons(self) -> list[Lesson]:
        return self.lesson_set.lessons

    @property
    def current_lesson(self) -> Lesson | None:
        return self.lessons[self.current_index] if self.lessons else None

    @property
    def lesson_pane(self) -> LessonPane | None:
        panes = self.main_screen.query(LessonPane)
        return panes.first() if panes else None

    @property
    def lab_widget(self) -> Widget | None:
        """Whatever the lab area shows: a LabPane, a WorkedView, a MapView, or None."""
        area = self.main_screen.query_one("#lab-area")
        return area.children[0] if area.children else None

    @property
    def lab_pane(self):
        """The LabPane when the lab area shows one. (.lab is imported when the first lab is
        mounted, so until then there can be none.)"""
        lab = sys.modules.get(f"{__package__}.lab")
        widget = self.lab_widget
        return widget if lab is not None and isinstance(widget, lab.LabPane) else None

    async def on_mount(self) -> None:
        self.main_screen = self.screen
        start_session(self)
        self._update_layout()
        for notice in self.notices:
            self.notify(notice, severity="warning", timeout=10)
        if not self.lessons:
            await self._set_lab(None)
            pane = self.lesson_pane
            broken = "\n".join(f"✗ {b.name}: {b.reason}" for b in self.lesson_set.broken)
            await pane.show_message(
                "No lessons",
                f"No lessons could be loaded from {self.lesson_set.folder}."
                + (f"\n\n{broken}" if broken else ""))
            return
        # The lesson's first screenful is already composed; the rest and the lab follow.
        self.main_screen.set_class(self.current_lesson.mode == "none", "-no-lab")
        self.progress.set_last(self.current_lesson.slug)
        self._show_ticket += 1
        self.run_worker(self._open(self.current_index, self._show_ticket, first=True),
                        group="open-lesson")

    # ---- layout: wide / narrow / too small -----------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def _update_layout(self) -> None:
        screen = getattr(self, "main_screen", None)
        if screen is None:
            return
        width, height = self.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        narrow = width < WIDE_COLUMNS
        changed = (screen.has_class("-narrow") != narrow
                   or screen.has_class("-too-small") != small)
        screen.set_class(small, "-too-small")
        screen.set_class(narrow, "-narrow")
        screen.set_class(narrow and self.show_lab, "-show-lab")
        if small:
            self.query_one(TooSmall).update(Text(
                f"rnn-tutor needs a terminal of at least {MIN_SIZE[0]}×{MIN_SIZE[1]};\n"
                f"this one is {width}×{height}.\nEnlarge it to continue, or press q to quit.",
                justify="center"))
        if changed:
            for footer in screen.query(Footer):
                footer.show_command_palette = not narrow
            self.refresh_bindings()
            self.call_after_refresh(self._after_layout)

    def _after_layout(self) -> None:
        self._fix_focus()
        pane = self.lesson_pane
        if pane is not None:
            pane.scrolled()

    @property
    def narrow(self) -> bool:
        return self.size.width < WIDE_COLUMNS

    @property
    def showing(self) -> str:
        """"lesson", "lab" or "both": what the main screen shows now."""
        screen = self.main_screen
        if screen.has_class("-no-lab"):
            return "lesson"
        if not self.narrow:
            return "both"
        return "lab" if self.show_lab else "lesson"

    def _fix_focus(self) -> None:
        """Keep the keyboard on something visible: the lesson text when it shows."""
        if self.screen is not self.main_screen:
            return
        focused = self.main_screen.focused
        if focused is not None and focused.display and self._widget_shown(focused):
            return
        pane = self.lesson_pane
        if pane is not None and self.showing in ("lesson", "both"):
            pane.body.focus()
        elif self.lab_widget is not None and self.lab_widget.can_focus:
            self.lab_widget.focus()
        else:
            self.main_screen.set_focus(None)

    @staticmethod
    def _widget_shown(widget: Widget) -> bool:
        node = widget
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent
        return True

    # ---- lessons -------------------------------------------------------------------------------

    def open_lesson(self, index: int) -> None:
        """Switch to lesson `index` (0-based) of the set. The switch is recorded at once; the
        drawing runs in a worker, and when keys come faster than lessons draw only the latest
        is drawn."""
        self.current_index = index
        self.progress.set_last(self.lessons[index].slug)
        # A new lesson starts with its text, even if the last one was left showing its lab.
        self.show_lab = False
        self._show_ticket += 1
        self.run_worker(self._open(index, self._show_ticket), group="open-lesson")

    async def _open(self, index: int, ticket: int, first: bool = False) -> None:
        """Show lesson `index` and give the lab its preset, unless a newer switch came since.
        `first`: the pane already drew the lesson's first screenful at startup."""
        lesson = self.lessons[index]
        async with self._show_lock:
            if ticket != self._show_ticket:
                return
            # The lesson first: it is what the learner reads while the lab's worker starts.
            self.main_screen.set_class(lesson.mode == "none", "-no-lab")
            still_wanted = lambda: ticket == self._show_ticket  # noqa: E731
            pane = self.lesson_pane
            if first:
                drawn = await pane.finish_first(still_wanted)
            else:
                drawn = await pane.show_lesson(lesson, self._answers(lesson),
                                               self._position(index),
                                               self.progress.is_complete(lesson), still_wanted)
            if not drawn:
                return                     # a newer lesson was asked for while this one drew
            self._save()                   # the last lesson open (after drawing: fsync is slow)
            if not first:
                pane.body.scroll_home(animate=False, immediate=True)
            if self.screen is self.main_screen and self.showing != "lab":
                self.lesson_pane.body.focus()
            await self._set_lab(lesson.lab)
            self._fix_focus()
            if ticket == self._show_ticket:
                self._shown_ticket = ticket

    async def _set_lab(self, mode: LabMode) -> None:
        """Show `mode` in the lab area: the same view when it can take it, else a new one (a
        LabPane stops its worker when unmounted)."""
        area = self.main_screen.query_one("#lab-area")
        current = self.lab_widget
        self.main_screen.set_class(mode is None, "-no-lab")
        old, self.lab_mode = self.lab_mode, mode
        if reuse(current, old, mode):
            return
        new = build_view(mode, fps=self.fps, max_steps=self.max_steps, paused=self.lab_paused,
                         id="lab")
        if current is not None:
            await current.remove()
        if new is not None:
            if not area.is_attached:
                return                     # the app is closing (a quit during start-up)
            await area.mount(new)
        self.refresh_bindings()

    def action_next_lesson(self) -> None:
        if self.current_index + 1 >= len(self.lessons):
            self.notify("This is the last lesson; o lists them all.", timeout=3)
            return
        self.open_lesson(self.current_index + 1)

    def action_previous_lesson(self) -> None:
        if self.current_index == 0:
            self.notify("This is the first lesson.", timeout=3)
            return
        self.open_lesson(self.current_index - 1)

    def action_lesson_list(self) -> None:
        current = self.current_lesson.slug if self.current_lesson else None

        def chosen(slug: str | None) -> None:
            if slug is None:
                return
            for i, lesson in enumerate(self.lessons):
                if lesson.slug == slug:
                    self.open_lesson(i)

        from .lesson_list import LessonListScreen
        self.push_screen(LessonListScreen(self.lesson_set, self.progress, current), chosen)

    def action_exercises(self) -> None:
        """The exercise screen over the tutor; esc comes back to the lesson, progress kept."""
        from tutor.exercises.command import ExercisesProblem, open_folder
        from tutor.exercises.record import ExerciseRecord

        from .exercises_screen import ExercisesScreen
        try:
            folder = open_folder(None).path
        except ExercisesProblem as exc:
            self.notify(str(exc), severity="warning", timeout=8)
            return
        record, notice = ExerciseRecord.load()
        if notice:
            self.notify(notice, severity="warning", timeout=8)
        self.push_screen(ExercisesScreen(folder, record=record))

    def action_switch_view(self) -> None:
        self.show_lab = not self.show_lab

    def watch_show_lab(self, show_lab: bool) -> None:
        self.main_screen.set_class(self.narrow and show_lab, "-show-lab")
        if show_lab:
            widget = self.lab_widget
            if widget is not None and widget.can_focus:
                widget.focus()
            else:
                self.main_screen.set_focus(None)
        else:
            pane = self.lesson_pane
            if pane is not None:
                pane.body.focus()
        self.call_after_refresh(self._after_layout)

    # ---- progress ------------------------------------------------------------------------------

    def _save(self) -> None:
        error = self.progress.save()
        if error and error != self._last_save_error:
            self.notify(error, severity="warning", timeout=8)
        self._last_save_error = error

    def on_checkpoint_view_answered(self, event: CheckpointView.Answered) -> None:
        lesson = self.lesson_pane.lesson if self.lesson_pane else None
        if lesson is None:
            return
        self.progress.record_answer(lesson.slug, event.view.checkpoint.id, event.choice,
                                    event.correct)
        self._completion_changed(lesson)
        self._save()

    def on_lesson_pane_read_to_end(self, event: LessonPane.ReadToEnd) -> None:
        if self.progress.is_read(event.lesson.slug):
            return
        self.progress.mark_read(event.lesson.slug)
        self._completion_changed(event.lesson)
        self._save()

    def _completion_changed(self, lesson: Lesson) -> None:
        if self.progress.update_completion(lesson):
            self.notify(f"{COMPLETE_MARK} Lesson complete: {lesson.title}. n for the next lesson.",
                        timeout=5)
            pane = self.lesson_pane
            if pane is not None and pane.lesson is lesson:
                pane.set_complete(True)

    def reset_progress(self) -> None:
        """Forget all progress (after the confirmation screen)."""
        error = self.progress.reset()
        lesson = self.current_lesson
        if lesson is not None:
            self.progress.set_last(lesson.slug)
            error = self.progress.save() or error
            self.open_lesson(self.current_index)     # redraw checkpoints as unanswered
        self.notify(error or "Progress reset.", severity="warning" if error else "information",
                    timeout=5)

    def action_reset_progress(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.reset_progress()

        from .confirm import ConfirmScreen
        self.push_screen(ConfirmScreen(
            "Reset progress",
            "Forget every completed lesson and checkpoint answer? This cannot be undone."),
            answer)

    # ---- help and the command palette -----------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        from .help_screen import describe_bindings
        return describe_bindings(self, self.BINDINGS, HELP_GROUPS, HELP_ORDER,
                                 long_description) + [
            ("Command palette", [(self.get_key_display(Binding("ctrl+p", "command_palette")),
                                  "every action above, open any lesson, reset progress")])]

    def action_help(self) -> None:
        from .help_screen import CONTEXT_KEYS, HelpScreen
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections() + CONTEXT_KEYS))

    def palette_commands(self):
        """(title, help, callback) for the command palette: each key's action, each lesson, and
        resetting progress."""
        from .lesson_list import lesson_mark
        commands = []
        seen = set()
        for binding in self.BINDINGS:
            if binding.action in seen or binding.action == "quit":
                continue
            seen.add(binding.action)
            name = binding.action.split("(", 1)[0]
            if name.startswith("lab_") and self.lab_pane is None:
                continue
            key = binding.key_display or self.get_key_display(binding)
            commands.append((binding.description, f"{long_description(binding)} · key {key}",
                             _runner(self, binding.action)))
        for i, lesson in enumerate(self.lessons):
            mark = lesson_mark(lesson, self.progress)
            commands.append((f"Open lesson {lesson.number:02d}: {lesson.title}",
                             f"{mark} {lesson.slug}", _opener(self, i)))
        commands.append(("Reset progress…", "forget completed lessons and answers (asks first)",
                         self.action_reset_progress))
        return commands

    # ---- which actions are available -------------------------------------------------------------

    def check_action(self, action: str, parameters) -> bool | None:
        if action in LESSON_ACTIONS or action in ("switch_view", "exercises"):
            if self.screen is not self.main_screen:
                return False
            if action == "exercises":
                return True
            if action == "switch_view":
                screen = self.main_screen
                return self.narrow and not screen.has_class("-no-lab")
            return bool(self.lessons)
        return super().check_action(action, parameters)

    # ---- leaving ---------------------------------------------------------------------------------

    # The lab's worker stops when its LabPane unmounts, which exiting does (LabPane.on_unmount).

    async def action_quit(self) -> None:
        self.exit(0)

    def on_unmount(self) -> None:
        # Lesson switches save once drawn; one switched to just before quitting is kept too.
        if self.lessons:
            self.progress.save()


def _runner(app: App, action: str):
    async def run() -> None:
        await app.run_action(action)
    return run


def _opener(app: TutorApp, index: int):
    def run() -> None:
        app.open_lesson(index)
    return run


def run_tutor(lessons_dir: str | Path | None = None, lesson: str | None = None,
              fps: float = 4.0, reset_progress: bool = False) -> int:
    """Run the tutor; returns an exit code. Problems are one line on stderr, never a traceback."""
    problem = fps_problem(fps)
    if problem:
        print(f"rnn-tutor: {problem}", file=sys.stderr)
        return 2
    try:
        app = TutorApp(lessons_dir=lessons_dir, lesson=lesson, fps=fps,
                       reset_progress=reset_progress,
                       lab_paused=os.environ.get("RNN_TUTOR_LAB_PAUSED") == "1")
    except (TutorError, SettingsError, OSError) as exc:
        print(f"rnn-tutor: {exc}", file=sys.stderr)
        return 1
    return run_app(app)
