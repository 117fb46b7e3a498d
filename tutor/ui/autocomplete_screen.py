"""The lab's autocomplete prompt: type a sentence, see the live model's three likeliest next words
and how much that guess leans on each word you typed.

The answer comes from the training process (`LabSession.ask`, answered from the weights as they
are while training goes on); this screen only formats it. The sentence is asked again every
second, so the answer follows training. Each word is shaded by its sensitivity and has glyphs
under it on the sample strip's decade scale (█ the most, ▓ a tenth of that, ...), which read
without colour too. In compare mode each cell's
answer has a line of its own, and a row of bars under the same words.
"""
from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tutor.lab.autocomplete import EXAMPLE
from tutor.lab.mechanism import decade_levels, glyph, scale_legend
from tutor.lab.protocol import Prediction
from tutor.lab.session import LabSession

from .sample_view import TOKEN_STYLES

REASK_S = 1.0             # the live weights change; ask the same sentence again this often
TYPING_PAUSE_S = 0.6      # inside a word, ask once typing pauses this long
SHOW_S = 0.1              # how often the screen looks for a new answer (the pane polls the pipe)
SCALE = "leans on each word: " + scale_legend()


class AutocompleteScreen(ModalScreen[None]):
    """A prompt over the lab; training goes on underneath."""

    DEFAULT_CSS = """
    AutocompleteScreen { align: center middle; }
    #ac-box { width: 100%; max-width: 100; height: auto; max-height: 100%;
              border: round $accent; padding: 0 1; background: $surface;
              overflow-y: auto; }
    #ac-help, #ac-scale { color: $text-muted; }
    #ac-answer { height: auto; }
    """
    BINDINGS = [Binding("escape", "close", "Close", tooltip="Close the prompt")]

    def __init__(self, session: LabSession, text: str = EXAMPLE):
        super().__init__()
        self.session = session
        self.text = text
        self.asked: str | None = None
        self.shown: Prediction | None = None
        self._pending = None           # the timer of a question waiting for typing to pause
        self.answer_count = 0          # answers rendered (tests read it)

    def compose(self) -> ComposeResult:
        with Vertical(id="ac-box"):
            yield Static("", id="ac-title")
            yield Static("the task's words · answers follow training · ctrl+u clears · "
                         "esc closes", id="ac-help")
            # The example stays unselected, so a key edits it rather than replacing it all.
            yield Input(self.text, id="ac-input", placeholder="i grew up in … i speak fluent",
                        compact=True, select_on_focus=False)
            yield Static("", id="ac-notice")
            yield Static("", id="ac-answer")
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
        # At a word's end ask at once; inside a word wait for a pause in typing, or every half
        # word would be named unknown.
        value = event.value
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        if value == "" or value.endswith((" ", ".")):
            self.ask(value)
        else:
            self._pending = self.set_timer(TYPING_PAUSE_S, lambda: self.ask(value))

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
        answer = self.query_one("#ac-answer", Static)
        answer.update(render_answers(prediction, list(self.session.runs()),
                                     answer.size.width or 76) if prediction.runs else Text())

    def _title(self) -> None:
        runs = list(self.session.history.runs.values())
        state = "paused" if self.session.paused else "training"
        steps = {r.step for r in runs}
        if len(steps) == 1:
            names = ", ".join(r.name if self.session.compare else r.cell for r in runs)
            where = f"{names} at step {steps.pop()}"
        else:
            where = ", ".join(f"{r.name} at step {r.step}" for r in runs)
        self.query_one("#ac-title", Static).update(
            Text.assemble(("the live model: ", "bold"), f"{where} ({state})"))

    def _notice(self, message: str) -> None:
        self.query_one("#ac-notice", Static).update(Text(message, style="bold"))


def render_answers(prediction: Prediction, names: list[str], width: int) -> Text:
    """The runs' top three next words, one line each, then the known typed words wrapped to
    `width`, with a row of glyphs per run under each line of words (the decade scale). With
    one run the words themselves are shaded too; with several each row is labelled."""
    text = Text()
    labelled = len(names) > 1
    pad = max(len(n) for n in names) + 1 if labelled else 0
    levels: dict[str, list[int]] = {}
    for name in names:
        run = prediction.runs.get(name)
        text.append(name.ljust(pad) if labelled else "next: ", "bold")
        if run is None:
            text.append("no answer\n", "dim")
        elif run.status != "ok":
            text.append(f"{run.status}: no answer; press r for a fresh run\n", "bold red")
        else:
            text.append("  ".join(f"{n.word} {n.p:.0%}" for n in run.next) + "\n")
            levels[name] = decade_levels([s.grad_norm for s in run.sensitivity])
    if not levels:
        return text
    for line in _wrap_words(prediction.words, max(8, width - pad)):
        text.append(" " * pad)
        for i in line:
            word = prediction.words[i]
            level = levels[names[0]][i]
            shade = "" if labelled else TOKEN_STYLES[4 if level is None else level]
            text.append(("" if i == line[0] else " ") + word, shade)
        text.append("\n")
        for name, level in levels.items():
            if labelled:
                text.append(name.ljust(pad), "dim")
            for i in line:
                bar = glyph(level[i]) * max(1, len(prediction.words[i]))
                text.append(("" if i == line[0] else " ") + bar)
            text.append("\n")
    most = []
    for name in levels:
        sens = prediction.runs[name].sensitivity
        finite = [i for i, w in enumerate(sens) if math.isfinite(w.grad_norm)]
        if finite:
            word = sens[max(finite, key=lambda i: sens[i].grad_norm)].word
            most.append(f"{name} {word!r}" if labelled else repr(word))
    text.append("leans most on: " + " · ".join(most), "dim")
    return text


def _wrap_words(words: tuple[str, ...], width: int) -> list[list[int]]:
    """Word indices in lines of at most `width` cells, one space between words."""
    lines: list[list[int]] = [[]]
    used = 0
    for i, word in enumerate(words):
        need = len(word) + (1 if lines[-1] else 0)
        if lines[-1] and used + need > width:
            lines.append([])
            used, need = 0, len(word)
        lines[-1].append(i)
        used += need
    return [line for line in lines if line]
