"""The lab's settings panel: every preset field, edited from the keyboard.

↑/↓ (or tab) move between fields, ←/→ change a choice, type into a number; enter applies, escape
cancels. Values are validated by `Settings.validated()`, and a bad one shows its one-line message
under the fields while the panel stays open.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from tutor.engine import Settings, SettingsError
from tutor.engine.settings import CELLS, CLIP_MODES, INITS, OPTIMIZERS, TASKS


@dataclass(frozen=True)
class Field:
    name: str                 # Settings attribute
    label: str
    kind: str                 # "choice", "int", "float", "clip", "radius", "truncate", "bool"
    choices: tuple = ()


FIELDS = (
    Field("cell", "cell", "choice", CELLS),
    Field("task", "task", "choice", TASKS),
    Field("seq_len", "T (sequence length)", "int"),
    Field("hidden", "hidden size", "int"),
    Field("batch", "batch", "int"),
    Field("optimizer", "optimiser", "choice", OPTIMIZERS),
    Field("lr", "learning rate", "float"),
    Field("clip", "clip threshold (or off)", "clip"),
    Field("clip_mode", "clip mode", "choice", CLIP_MODES),
    Field("init", "init", "choice", INITS),
    Field("radius", "spectral radius (or none)", "radius"),
    Field("truncate", "truncate BPTT at K (or off)", "truncate"),
    Field("forget_bias", "forget bias (LSTM)", "float"),
    Field("reverse_input", "reverse input", "bool", (False, True)),
    Field("freeze_head", "freeze head", "bool", (False, True)),
    Field("seed", "seed", "int"),
)

_NUMBER_LABELS = {"seq_len": "sequence length", "hidden": "hidden size", "batch": "batch",
                  "seed": "seed", "lr": "learning rate", "forget_bias": "forget bias",
                  "clip": "clip threshold", "radius": "radius", "truncate": "truncation"}


def parse_field(field: Field, text: str):
    """The value typed into a number field; ValueError with a one-line message if it is none."""
    raw = text.strip()
    label = _NUMBER_LABELS.get(field.name, field.label)
    if field.kind == "clip" and raw.lower() in ("", "off", "none", "0"):
        return 0.0
    if field.kind == "radius" and raw.lower() in ("", "none", "off"):
        return None
    if field.kind == "truncate" and raw.lower() in ("", "off", "none", "0"):
        return None
    if field.kind in ("int", "truncate"):
        try:
            return int(raw)
        except ValueError:
            hint = " (or off)" if field.kind == "truncate" else ""
            raise ValueError(f"{label} must be a whole number{hint}, not {raw!r}") from None
    try:
        value = float(raw)
    except ValueError:
        hint = {"clip": " (or off)", "radius": " (or none)"}.get(field.kind, "")
        raise ValueError(f"{label} must be a number{hint}, not {raw!r}") from None
    return value


def format_field(field: Field, value) -> str:
    if field.kind == "clip":
        return "off" if not value else f"{value:g}"
    if field.kind == "radius":
        return "none" if value is None else f"{value:g}"
    if field.kind == "truncate":
        return "off" if value is None else str(value)
    if field.kind == "float":
        return f"{value:g}"
    return str(value)


class ChoiceField(Widget, can_focus=True):
    """One of a few values, changed with ←/→ (or space)."""

    DEFAULT_CSS = """
    ChoiceField { height: 1; width: 1fr; padding: 0 1; }
    ChoiceField:focus { background: $accent 40%; text-style: bold; }
    """
    BINDINGS = [
        Binding("right,space", "move(1)", "Next value", show=False),
        Binding("left", "move(-1)", "Previous value", show=False),
    ]

    def __init__(self, field: Field, value, *, id: str | None = None):
        super().__init__(id=id)
        self.field = field
        choices = field.choices
        self.index = choices.index(value) if value in choices else 0

    @property
    def value(self):
        return self.field.choices[self.index]

    def action_move(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.field.choices)
        self.refresh()

    def render(self) -> Text:
        value = self.value
        shown = ("on" if value else "off") if self.field.kind == "bool" else str(value)
        return Text.assemble(("◀ ", "dim"), shown, (" ▶", "dim"))


class SettingsScreen(ModalScreen[Settings | None]):
    """Dismisses with the new Settings (enter), or None (escape)."""

    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    SettingsScreen #settings-title { text-style: bold; width: 1fr; }
    SettingsScreen Grid {
        grid-size: 2; grid-columns: 28 1fr; height: auto; grid-gutter: 0 1;
    }
    SettingsScreen Label { height: 1; width: 1fr; }
    /* Input's own `:focus` rule draws a tall border, which on a one-row field would leave
       only the border and hide the value being typed: no border, focused or not. */
    SettingsScreen Input, SettingsScreen Input:focus {
        border: none; height: 1; padding: 0 1; width: 1fr;
    }
    SettingsScreen Input:focus { background: $accent 40%; }
    SettingsScreen #settings-error { color: $error; text-style: bold; height: auto; }
    SettingsScreen #settings-help { color: $text-muted; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "apply", "Apply"),
        Binding("down", "app.focus_next", "Next field", show=False),
        Binding("up", "app.focus_previous", "Previous field", show=False),
    ]

    def __init__(self, settings: Settings):
        super().__init__()
        self.original = settings
        self.error = ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("lab settings", id="settings-title")
            with Grid():
                for field in FIELDS:
                    value = getattr(self.original, field.name)
                    yield Label(field.label)
                    if field.kind in ("choice", "bool"):
                        yield ChoiceField(field, value, id=f"field-{field.name}")
                    else:
                        yield Input(format_field(field, value), id=f"field-{field.name}",
                                    select_on_focus=True)
            yield Static("", id="settings-error")
            yield Static("↑↓ field  ←→ choice  enter apply  esc cancel", id="settings-help")

    def on_mount(self) -> None:
        self.query_one(f"#field-{FIELDS[0].name}").focus()

    def read(self) -> Settings:
        """The settings as the fields stand; raises ValueError / SettingsError (one line)."""
        changes = {}
        for field in FIELDS:
            widget = self.query_one(f"#field-{field.name}")
            if isinstance(widget, ChoiceField):
                changes[field.name] = widget.value
            else:
                changes[field.name] = parse_field(field, widget.value)
        return dataclasses.replace(self.original, **changes).validated()

    def show_error(self, message: str) -> None:
        self.error = " ".join(message.split())
        self.query_one("#settings-error", Static).update(self.error)

    def action_apply(self) -> None:
        try:
            settings = self.read()
        except (SettingsError, ValueError) as exc:
            self.show_error(str(exc))
            return
        self.dismiss(settings)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_cancel(self) -> None:
        self.dismiss(None)
