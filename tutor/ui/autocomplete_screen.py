"""The lab's autocomplete prompt: type a sentence, see the live model's three likeliest next words
and how much that guess leans on each word you typed.

The answer comes from the training process (`LabSession.ask`, answered from the weights as they
are while training goes on); this screen only formats it. The sentence is asked again every
second, so the answer follows training. Each word is shaded by its sensitivity and has a glyph
bar under it (▁ little … █ the most), which reads without colour too. In compare mode each cell's
answer stands in its own column.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tutor.lab.autocomplete import GLYPHS, shade_levels
from tutor.lab.protocol import Prediction, RunPrediction
from tutor.lab.session import LabSession

REASK_S = 1.0             # the live weights change; ask the same sentence again this often
SHOW_S = 0.1              # how often the screen looks for a new answer (the pane polls the pipe)
EXAMPLE = "i grew up in brazil . it was windy on friday . my friends called . i speak fluent"
# word colours from little sensitivity to the most, one per glyph level
SHADES = ("grey35", "grey46", "grey58", "grey70", "khaki3", "yellow3", "gold1", "bold yellow1")
SCALE = f"{GLYPHS[0]} little … {GLYPHS[-1]} most: how much the top guess leans on each word"


class AutocompleteScreen(ModalScreen[None]):
    """A prompt over the lab; training goes on underneath."""

    DEFAULT_CSS = """
    AutocompleteScreen { align: center middle; }
    #ac-box { width: 100%; max-width: 100; height: auto; max-height: 100%;
              border: round $accent; padding: 0 1; background: $surface; }
    #ac-help, #ac-scale { color: $text-muted; }
    #ac-answers { height: auto; }
    .ac-answer { width: 1fr; height: auto; padding: 0 1 0 0; }
    """
    BINDINGS = [Binding("escape", "close", "Close", tooltip="Close the prompt")]

    def __init__(self, session: LabSession, text: str = EXAMPLE):
        super().__init__()
        self.session = session
        self.text = text
        self.asked: str | None = None
        self.shown: Prediction | None = None
        self.answer_count = 0          # answers rendered (tests read it)

    def compose(self) -> ComposeResult:
        with Vertical(id="ac-box"):
            yield Static("", id="ac-title")
            yield Static("type words from the task; the answer follows training. "
                         "enter asks · esc closes", id="ac-help")
            yield Input(self.text, id="ac-input", placeholder=EXAMPLE)
            yield Static("", id="ac-notice")
            with Horizontal(id="ac-answers"):
                for name in self.session.runs():
                    yield Static("", classes="ac-answer", id=f"ac-{name}")
            yield Static(SCALE, id="ac-scale")

    def on_mount(self) -> None:
        self.query_one("#ac-box").border_title = "autocomplete"
        self._title()
        self.ask(self.text)
        self.set_interval(REASK_S, self._reask)
        self.set_interval(SHOW_S, self._show)

    # ---- asking -----------------------------------------------------------------------------------
    def ask(self, text: str) -> None:
        self.asked = text
        if not self.session.ask(text):
            self._notice(self.session.notice)

    def on_input_changed(self, event: Input.Changed) -> None:
        # Ask at each word's end, not on every letter: half a word would be named unknown.
        value = event.value
        if value == "" or value.endswith((" ", ".")):
            self.ask(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.ask(event.value)

    def _reask(self) -> None:
        if self.asked is not None and not self.session.paused:
            self.session.ask(self.asked)

    def action_close(self) -> None:
        self.dismiss(None)

    # ---- showing ----------------------------------------------------------------------------------
    def _show(self) -> None:
        self.session.poll()       # also folds training updates; the pane does the same
        self._title()
        prediction = self.session.prediction
        if prediction is None or prediction is self.shown:
            return
        self.shown = prediction
        self.answer_count += 1
        notices = []
        if prediction.unknown:
            names = ", ".join(repr(w) for w in prediction.unknown)
            one = len(prediction.unknown) == 1
            notices.append(f"unknown word{'' if one else 's'} {names}: left out, "
                           f"the other {len(prediction.words)} kept")
        if prediction.message:
            notices.append(prediction.message)
        self._notice("; ".join(notices))
        columns = list(self.query(".ac-answer"))
        width = max(12, self.query_one("#ac-answers").size.width // max(1, len(columns)) - 1)
        for column in columns:
            name = column.id.removeprefix("ac-")
            run = prediction.runs.get(name)
            label = name if self.session.compare else ""
            column.update(render_answer(run, label, width) if run else Text())

    def _title(self) -> None:
        runs = self.session.history.runs.values()
        steps = ", ".join(f"{r.name if self.session.compare else r.cell} at step {r.step}"
                          for r in runs)
        state = "paused" if self.session.paused else "training"
        self.query_one("#ac-title", Static).update(
            Text.assemble(("the live model", "bold"), f": {steps} ({state})"))

    def _notice(self, message: str) -> None:
        self.query_one("#ac-notice", Static).update(Text(message, style="bold"))


def render_answer(run: RunPrediction, label: str, width: int) -> Text:
    """A run's top three next words, then the typed words wrapped to `width`, each shaded by its
    sensitivity with a glyph bar beneath it."""
    text = Text()
    if label:
        text.append(label + "\n", "bold underline")
    if run.status != "ok":
        text.append(f"{run.status}: no answer; press r for a fresh run\n", "bold red")
        return text
    text.append("next: ", "bold")
    text.append("  ".join(f"{n.word} {n.p:.0%}" for n in run.next) + "\n")
    levels = shade_levels(run.sensitivity)
    words, bars, used = Text(), Text(), 0
    for s, level in zip(run.sensitivity, levels):
        cell = max(len(s.word), 1)
        if used and used + 1 + cell > width:
            text.append_text(words)
            text.append("\n")
            text.append_text(bars)
            text.append("\n")
            words, bars, used = Text(), Text(), 0
        if used:
            words.append(" ")
            bars.append(" ")
            used += 1
        words.append(s.word, SHADES[level])
        bars.append(GLYPHS[level] * cell, SHADES[level])
        used += cell
    if used:
        text.append_text(words)
        text.append("\n")
        text.append_text(bars)
    top = max(run.sensitivity, key=lambda s: s.grad_norm, default=None)
    if top is not None:
        text.append(f"\nleans most on: {top.word!r}", "dim")
    return text
