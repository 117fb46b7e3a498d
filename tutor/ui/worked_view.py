"""The worked-example stepper: one operation of a tiny RNN, LSTM or GRU per key press.

Past lines stay above as `name = value`; the current line is shown in full (what is computed,
the formula, the numbers plugged in, the result). All numbers come from the engine via
`tutor.explorers.worked`.
"""
from __future__ import annotations

import sys

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from tutor.explorers.worked import (CELLS, SECTIONS, WorkedExample, build_example, fmt,
                                    plain_walkthrough, setup_text)
from tutor.lab.modes import WorkedLab

from .host import run_hosted
from .terminal import interactive, print_text

_SECTION_TITLES = {"forward": "forward pass", "backward": "backward pass",
                   "update": "SGD update"}


def _short(line) -> str:
    """A past line in one row: the formula's left-hand side and the result."""
    for sep in (" ← ", " = "):
        if sep in line.formula:
            return f"{line.formula.split(sep, 1)[0]}{sep}{line.result}"
    return f"{line.formula} = {line.result}"


class _Body(VerticalScroll, can_focus=False):
    """Scrolls with the wheel; keys go to the WorkedView around it."""


class WorkedView(Widget, can_focus=True):
    DEFAULT_CSS = """
    WorkedView {
        width: 1fr;
        height: 1fr;
        layout: vertical;
    }
    WorkedView > #worked-header {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
        text-style: bold;
    }
    WorkedView:focus > #worked-header {
        background: $accent 40%;
    }
    WorkedView > #worked-body {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    WorkedView #worked-past {
        padding: 0 1;
    }
    WorkedView #worked-current {
        margin: 0 1 0 0;
        padding: 0 1;
        border-left: thick $accent;
        background: $boost;
    }
    """

    BINDINGS = [
        Binding("right,l,enter", "next", "Next"),
        Binding("left,h", "previous", "Prev"),
        Binding("f", "jump('forward')", "Forward"),
        Binding("b", "jump('backward')", "Backward"),
        Binding("u", "jump('update')", "Update"),
        Binding("w", "cycle_cell", "Cell"),
        Binding("home", "first", "First step", show=False),
        Binding("end", "last", "Last step", show=False),
        Binding("up,k", "scroll('up')", "Scroll up", show=False),
        Binding("down,j", "scroll('down')", "Scroll down", show=False),
        Binding("pageup", "scroll('pageup')", "Page up", show=False),
        Binding("pagedown", "scroll('pagedown')", "Page down", show=False),
    ]

    def __init__(self, cell: str = "rnn", *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r} for the worked example "
                             f"(choose {', '.join(CELLS)})")
        super().__init__(name=name, id=id, classes=classes)
        self._examples: dict[str, WorkedExample] = {}
        self.cell = cell
        self.index = 0
        self._ready = False

    @property
    def example(self) -> WorkedExample:
        if self.cell not in self._examples:
            self._examples[self.cell] = build_example(self.cell)
        return self._examples[self.cell]

    @property
    def current(self):
        return self.example.lines[self.index]

    def compose(self) -> ComposeResult:
        yield Static(id="worked-header")
        with _Body(id="worked-body"):
            yield Static(id="worked-past")
            yield Static(id="worked-current")

    def on_mount(self) -> None:
        self._ready = True
        self.query_one(_Body).anchor()      # the layout keeps the current line in view
        self._show()

    # ---- actions ----
    def action_next(self) -> None:
        self._go(self.index + 1)

    def action_previous(self) -> None:
        self._go(self.index - 1)

    def action_first(self) -> None:
        self._go(0)

    def action_last(self) -> None:
        self._go(len(self.example.lines) - 1)

    def action_jump(self, section: str) -> None:
        if section in SECTIONS:
            self._go(self.example.first_index(section))

    def action_cycle_cell(self) -> None:
        section = self.current.section
        self.cell = CELLS[(CELLS.index(self.cell) + 1) % len(CELLS)]
        self.index = self.example.first_index(section)
        self._show()

    def action_scroll(self, how: str) -> None:
        body = self.query_one(_Body)
        {"up": body.scroll_up, "down": body.scroll_down, "pageup": body.scroll_page_up,
         "pagedown": body.scroll_page_down}[how](animate=False)

    def _go(self, index: int) -> None:
        index = max(0, min(index, len(self.example.lines) - 1))
        if index != self.index:
            self.index = index
            self._show()

    # ---- drawing ----
    def _show(self) -> None:
        if not self._ready:
            return
        lines, line = self.example.lines, self.current
        where = _SECTION_TITLES[line.section]
        if line.step is not None:
            where += f" · t={line.step}"
        self.query_one("#worked-header", Static).update(Text(
            f"{self.cell.upper()} · {where} · {self.index + 1}/{len(lines)}", no_wrap=True,
            overflow="ellipsis"))
        self.query_one("#worked-past", Static).update(self._past_text())
        # a grid, so wrapped numbers stay indented under their "="
        sums = Table.grid(expand=True)
        sums.add_column(no_wrap=True)
        sums.add_column(ratio=1)
        sums.add_row("  = ", Text(line.numbers))
        sums.add_row("  = ", Text(line.result, style="bold reverse"))
        parts = [Text(f"{self.index + 1}. {line.label}", style="bold"), Text(line.formula), sums]
        if self.index == len(lines) - 1:
            parts.append(Text(f"The loss fell from {fmt(self.example.before.loss)} to "
                              f"{line.result}. Press w for the next cell.", style="italic"))
        current = Group(*parts)
        self.query_one("#worked-current", Static).update(current)
        self.query_one(_Body).scroll_end(animate=False)    # runs after the layout refresh

    def _past_text(self) -> Text:
        text = Text()
        for row in setup_text(self.example):
            text.append(row + "\n", style="dim")
        section, step = None, None
        for n, line in enumerate(self.example.lines[:self.index]):
            if line.section != section:
                section, step = line.section, None
                text.append(f"\n── {_SECTION_TITLES[section]} ──\n", style="bold")
            if line.step != step:
                step = line.step
                if step is not None:
                    text.append(f"t = {step}\n", style="underline")
            text.append(f"{n + 1:>3}. {_short(line)}\n")
        line = self.current
        if line.section != section:
            text.append(f"\n── {_SECTION_TITLES[line.section]} ──\n", style="bold")
            step = None
        if line.step is not None and line.step != step:
            text.append(f"t = {line.step}\n", style="underline")
        text.rstrip()
        return text


def run_worked(cell: str = "rnn", plain: bool = False) -> int:
    if cell not in CELLS:
        print(f"rnn-tutor worked: unknown cell {cell!r} (choose {', '.join(CELLS)})",
              file=sys.stderr)
        return 2
    if plain or not interactive():
        return print_text(plain_walkthrough(cell))
    return run_hosted(WorkedLab(cell), "rnn-tutor · worked example")
