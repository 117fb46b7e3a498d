"""The command line that reproduces the lab's run, shown whole, and copied on request."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ReproduceScreen(ModalScreen[None]):
    """`c` copies the command to the clipboard (OSC 52 in a terminal; the browser's own in
    textual-serve); escape closes."""

    DEFAULT_CSS = """
    ReproduceScreen { align: center middle; }
    ReproduceScreen > #reproduce-panel {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 100%;
        border: thick $accent;
        border-title-align: center;
        background: $surface;
        padding: 1 2;
    }
    ReproduceScreen #reproduce-command { text-style: bold; }
    ReproduceScreen .reproduce-note { margin-top: 1; }
    ReproduceScreen #reproduce-keys { margin-top: 1; text-align: center; }
    """

    BINDINGS = [
        Binding("c", "copy", "Copy"),
        Binding("escape,q,R", "close", "Close", key_display="esc"),
    ]

    def __init__(self, command: str, notes: list[str]) -> None:
        super().__init__()
        self.command = command
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(id="reproduce-panel") as panel:
            panel.border_title = "Reproduce this run"
            yield Static(Text(self.command), id="reproduce-command")
            yield Static(Text("rnn-tutor train takes the same options (with --steps N) and "
                              "prints the same losses, step by step."), classes="reproduce-note")
            for note in self.notes:
                yield Static(Text(note), classes="reproduce-note")
            yield Static(Text("c copy to the clipboard · esc close"), id="reproduce-keys")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.command)
        self.query_one("#reproduce-keys", Static).update(Text(
            "copied to the clipboard (in a terminal this needs OSC 52, which some terminals "
            "and tmux turn off) · esc close"))

    def action_close(self) -> None:
        self.dismiss(None)
