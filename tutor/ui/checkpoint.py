"""A checkpoint question inside a lesson: pick an answer with the arrow keys and enter.

The widget takes focus (tab, or a click) and then consumes only up, down and enter, so every
letter and digit stays a global lab key while a question is focused. Up on the first answer and
down on the last one pass the key on, so the lesson keeps scrolling. Choosing an answer shows its
feedback (why it is right or wrong) and posts `CheckpointView.Answered`; the app records it in
the progress store. A wrong answer can be retried with another choice; once a question is solved
the learner may still pick other answers to read their feedback.
"""
from __future__ import annotations

from rich.text import Text
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from tutor.lessons import Checkpoint

RIGHT_MARK, WRONG_MARK, OPEN_MARK = "✓", "✗", "○"


class _OptionLine(Static):
    """One answer; clicking it answers with it."""

    def __init__(self, index: int, text: str) -> None:
        super().__init__(id=f"option-{index}", classes="cp-option", markup=False)
        self.index = index
        self.text = text

    def on_click(self, event: Click) -> None:
        event.stop()
        view = self.query_ancestor(CheckpointView)
        view.focus()
        view.choose(self.index)


class CheckpointView(Vertical, can_focus=True):
    """One checkpoint. `answer` is the saved record from Progress.answer (or None)."""

    DEFAULT_CSS = """
    CheckpointView {
        height: auto;
        margin: 1 2 1 2;
        padding: 0 1;
        border: round $primary 50%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
    }
    CheckpointView:focus {
        border: round $accent;
        background: $boost;
    }
    CheckpointView.-solved { border: round $success 70%; }
    CheckpointView.-solved:focus { border: round $success; }
    CheckpointView > .cp-ask { text-style: bold; margin-bottom: 1; }
    CheckpointView > .cp-option { padding: 0 0 0 2; }
    CheckpointView:focus > .cp-option.-cursor { text-style: bold reverse; }
    CheckpointView > .cp-option.-right { color: $text-success; }
    CheckpointView > .cp-option.-wrong { color: $text-error; }
    CheckpointView > .cp-feedback { margin-top: 1; display: none; }
    CheckpointView > .cp-feedback.-shown { display: block; }
    CheckpointView > .cp-feedback.-right { color: $text-success; }
    CheckpointView > .cp-feedback.-wrong { color: $text-warning; }
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Previous answer", show=False),
        Binding("down", "move(1)", "Next answer", show=False),
        Binding("enter", "choose", "Answer", show=False),
    ]

    cursor: reactive[int] = reactive(0, init=False)

    class Answered(Message):
        """The learner chose an answer."""

        def __init__(self, view: "CheckpointView", choice: int, correct: bool) -> None:
            super().__init__()
            self.view = view
            self.choice = choice
            self.correct = correct

        @property
        def control(self) -> "CheckpointView":
            return self.view

    def __init__(self, checkpoint: Checkpoint, number: int, total: int,
                 answer: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checkpoint = checkpoint
        self.number = number
        self.total = total
        self.chosen: int | None = None
        self.solved = False
        if answer and 0 <= answer.get("choice", -1) < len(checkpoint.options):
            self.chosen = answer["choice"]
            self.solved = bool(answer.get("solved"))
        if self.chosen is not None:
            self.set_reactive(CheckpointView.cursor, self.chosen)

    def compose(self) -> ComposeResult:
        yield Static(Text(self.checkpoint.ask), classes="cp-ask")
        for i, option in enumerate(self.checkpoint.options):
            yield _OptionLine(i, option.text)
        yield Static("", classes="cp-feedback", markup=False)

    def on_mount(self) -> None:
        self._refresh_view()

    # ---- actions --------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        target = self.cursor + delta
        if not 0 <= target < len(self.checkpoint.options):
            raise SkipAction()          # let the lesson scroll on past the question
        self.cursor = target

    def action_choose(self) -> None:
        self.choose(self.cursor)

    def choose(self, index: int) -> None:
        option = self.checkpoint.options[index]
        self.cursor = index
        self.chosen = index
        self.solved = self.solved or option.correct
        self._refresh_view()
        self.post_message(self.Answered(self, index, option.correct))

    # ---- display --------------------------------------------------------------------------

    def watch_cursor(self) -> None:
        self._refresh_view()

    def on_focus(self) -> None:
        self._refresh_view()

    def on_blur(self) -> None:
        self._refresh_view()

    @property
    def state(self) -> str:
        """"unanswered", "wrong" (last try wrong, not solved) or "solved"."""
        if self.solved:
            return "solved"
        return "unanswered" if self.chosen is None else "wrong"

    def _refresh_view(self) -> None:
        if not self.children:           # not composed yet
            return
        options = self.checkpoint.options
        # has_focus changes after on_focus / on_blur run; the screen's focus is already current.
        focused = self.is_attached and self.screen.focused is self
        for line in self.query(_OptionLine):
            i = line.index
            if i == self.chosen:
                mark = RIGHT_MARK if options[i].correct else WRONG_MARK
            else:
                mark = OPEN_MARK
            pointer = "›" if i == self.cursor and focused else " "
            line.update(Text(f"{pointer} {mark} {line.text}"))
            line.set_class(i == self.cursor, "-cursor")
            line.set_class(i == self.chosen and options[i].correct, "-right")
            line.set_class(i == self.chosen and not options[i].correct, "-wrong")

        feedback = self.query_one(".cp-feedback", Static)
        if self.chosen is None:
            feedback.set_classes("cp-feedback")
        else:
            option = options[self.chosen]
            if option.correct:
                text = f"{RIGHT_MARK} {option.feedback}"
            elif self.solved:
                text = f"{WRONG_MARK} {option.feedback}"
            else:
                text = f"{WRONG_MARK} {option.feedback}\nChoose another answer to try again."
            feedback.update(Text(text))
            feedback.set_classes("cp-feedback -shown " + ("-right" if option.correct else "-wrong"))

        state = self.state
        self.set_class(state == "solved", "-solved")
        status = {"solved": f"{RIGHT_MARK} solved", "wrong": "not yet",
                  "unanswered": "unanswered"}[state]
        self.border_title = f"Checkpoint {self.number}/{self.total} · {status}"
        self.border_subtitle = ("↑↓ choose · enter answer · tab leave" if focused
                                else "tab to answer")
