"""The lesson list: every lesson with a progress mark, and broken lesson files with their reason.

Enter opens the highlighted lesson (the screen returns its slug); escape closes. Broken files are
listed but cannot be opened.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from tutor.lessons import LessonSet
from tutor.progress import Progress

DONE, PARTLY, TODO, BROKEN = "✓", "◐", "·", "✗"


def lesson_mark(lesson, progress: Progress) -> str:
    """✓ complete, ◐ some checkpoints solved (or read, with checkpoints left), · not started."""
    if progress.is_complete(lesson):
        return DONE
    solved = sum(1 for cp in lesson.checkpoints
                 if (progress.answer(lesson.slug, cp.id) or {}).get("solved"))
    return PARTLY if solved or progress.is_read(lesson.slug) else TODO


class LessonListScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    LessonListScreen { align: center middle; }
    LessonListScreen > #list-panel {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-align: center;
        background: $surface;
    }
    LessonListScreen OptionList, LessonListScreen OptionList:focus {
        height: auto;
        max-height: 1fr;
        border: none;
        padding: 0 1;
    }
    LessonListScreen #list-footer { color: $text-muted; height: auto; padding: 0 1; }
    """

    BINDINGS = [Binding("escape,o", "close", "Close", key_display="esc")]

    def __init__(self, lesson_set: LessonSet, progress: Progress, current: str | None) -> None:
        super().__init__()
        self.lesson_set = lesson_set
        self.progress = progress
        self.current = current

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        for lesson in self.lesson_set.lessons:
            mark = lesson_mark(lesson, self.progress)
            prompt = Text()
            prompt.append(f"{mark} ", "bold")
            prompt.append(f"{lesson.number:02d}  ")
            prompt.append(lesson.title, "bold" if lesson.slug == self.current else "")
            if lesson.mode != "train":
                prompt.append(f"  [{_MODE_LABEL.get(lesson.mode, lesson.mode)}]", "dim")
            if lesson.slug == self.current:
                prompt.append("  ◀ open", "italic")
            options.append(Option(prompt, id=lesson.slug))
        for broken in self.lesson_set.broken:
            prompt = Text()
            prompt.append(f"{BROKEN} ", "bold")
            prompt.append(broken.name)
            prompt.append(f": {broken.reason}", "italic")
            options.append(Option(prompt, disabled=True))
        done = sum(1 for lesson in self.lesson_set.lessons if self.progress.is_complete(lesson))
        with Vertical(id="list-panel") as panel:
            panel.border_title = f"Lessons · {done}/{len(self.lesson_set.lessons)} complete"
            yield OptionList(*options, id="lesson-options")
            footer = (f"{DONE} complete  {PARTLY} started  {TODO} not started  "
                      f"{BROKEN} broken (cannot open)\nenter open · esc close")
            yield Static(Text(footer), id="list-footer")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.focus()
        if self.current is not None:
            try:
                option_list.highlighted = option_list.get_option_index(self.current)
            except OptionDoesNotExist:
                pass

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


_MODE_LABEL = {"worked": "worked example", "map": "iterated map", "none": "reading"}
