"""The help screen: every key of the tutor, grouped, built from the app's own bindings so the list
cannot drift from what the keys do."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# Keys that belong to a focused widget rather than to the app; shown so nothing is hidden.
CONTEXT_KEYS = [
    ("Reading a lesson", [
        ("↑ ↓", "scroll the lesson (when it has focus)"),
        ("pgup pgdn", "scroll a page"),
        ("home end", "top / bottom of the lesson"),
        ("tab shift+tab", "move focus: lesson text, checkpoint questions, lab"),
    ]),
    ("Answering a checkpoint (when the question has focus)", [
        ("↑ ↓", "choose an answer"),
        ("enter", "answer; a wrong answer can be retried"),
        ("", "every other key keeps its global meaning"),
    ]),
]


def describe_bindings(app, bindings: list[Binding], groups: dict[str, str], order: list[str],
                      describe=lambda binding: binding.description
                      ) -> list[tuple[str, list[tuple[str, str]]]]:
    """Group bindings for display, one row per action name: keys that share an action, or an
    action with other arguments (the cell keys 1 2 3 4, ] and [), share a row, and their
    descriptions are joined with " / ", so the lab's keys fit 80×24.

    `groups` maps an action name (without arguments) or prefix ending in "*" to a group title;
    `describe` gives the text shown for a binding.
    """
    def group_of(action: str) -> str:
        name = action.split("(", 1)[0]
        if name in groups:
            return groups[name]
        for key, title in groups.items():
            if key.endswith("*") and name.startswith(key[:-1]):
                return title
        return order[-1]

    rows: dict[str, dict[str, tuple[list[str], list[str]]]] = {title: {} for title in order}
    seen: set[str] = set()
    for binding in bindings:
        title = group_of(binding.action)
        entry = rows.setdefault(title, {})
        name = binding.action.split("(", 1)[0]
        keys, descriptions = entry.get(name, ([], []))
        for key in binding.key.split(","):
            key = key.strip()
            shown = binding.key_display if binding.key_display and "," not in binding.key \
                else app.get_key_display(Binding(key, binding.action))
            if shown not in keys:
                keys.append(shown)
        if binding.action not in seen:          # the first binding of an action describes it
            seen.add(binding.action)
            descriptions.append(describe(binding) or binding.action)
        entry[name] = (keys, descriptions)
    return [(title, [(" ".join(keys), " / ".join(descs)) for keys, descs in rows[title].values()])
            for title in rows if rows[title]]


class HelpScreen(ModalScreen[None]):
    """Lists every key. escape or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > #help-panel {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-align: center;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen #help-body { height: auto; max-height: 100%; }
    HelpScreen #help-footer { color: $text-muted; text-align: center; height: 1; }
    """

    BINDINGS = [
        Binding("escape,question_mark", "close", "Close help", key_display="esc"),
    ]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]],
                 title: str = "rnn-tutor keys") -> None:
        super().__init__()
        self.sections = sections
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="help-panel") as panel:
            panel.border_title = self.title_text
            with VerticalScroll(id="help-body"):
                yield Static(self._table(), id="help-table")
            yield Static(Text("esc or ? closes this · ↑ ↓ scroll"), id="help-footer")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column()
        first = True
        for title, rows in self.sections:
            if not first:
                table.add_row("", "")
            first = False
            if title:                         # an untitled section needs no heading row
                table.add_row("", Text(title, style="bold underline"))
            for keys, description in rows:
                table.add_row(Text(keys), Text(description))
        return table

    @property
    def plain_text(self) -> str:
        """Everything the screen lists, as plain text (tests read it)."""
        lines = []
        for title, rows in self.sections:
            lines.append(title)
            lines.extend(f"{keys}  {desc}" for keys, desc in rows)
        return "\n".join(lines)

    def action_close(self) -> None:
        self.dismiss()
