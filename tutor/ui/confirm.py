"""A yes/no confirmation screen for actions that lose something (resetting progress)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """Returns True for y, False for n or escape."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > #confirm-panel {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        border-title-align: center;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #confirm-keys { margin-top: 1; text-style: bold; text-align: center; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No", key_display="n"),
    ]

    def __init__(self, title: str, question: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-panel") as panel:
            panel.border_title = self.title_text
            yield Static(Text(self.question), id="confirm-question")
            yield Static(Text("y yes · n or esc no"), id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(bool(yes))
