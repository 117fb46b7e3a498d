"""The lab's key map and the actions behind it, shared by the tutor app and `rnn-tutor lab`.

Kept apart from `lab.py` on purpose: the tutor app needs these at start-up, and importing the
lab itself would load NumPy, plotext and the charts before the first lesson is on screen. So this
module imports only Textual, and finds the pane by its class name.
"""
from __future__ import annotations

from textual.binding import Binding
from textual.screen import ModalScreen

# description: the footer's short name; tooltip: what the help screen and the palette say.
LAB_BINDINGS = [
    Binding("space", "lab_pause", "Pause/run", tooltip="Pause or resume training"),
    Binding("r", "lab_reset", "Reset",
            tooltip="Reset the run: fresh weights, same settings and seed"),
    Binding("1", "lab_cell('rnn')", "RNN", show=False),
    Binding("2", "lab_cell('irnn')", "IRNN", show=False),
    Binding("3", "lab_cell('lstm')", "LSTM", show=False),
    Binding("4", "lab_cell('gru')", "GRU", show=False),
    Binding("y", "lab_cell('own')", "Yours, once its exercise passes",
            show=False),
    Binding("c", "lab_clip", "Clip",
            tooltip="Gradient clipping on or off (live, from the next step)"),
    Binding("right_square_bracket", "lab_clip_scale(2.0)", "Clip threshold ×2", show=False,
            key_display="]"),
    Binding("left_square_bracket", "lab_clip_scale(0.5)", "Clip threshold ÷2", show=False,
            key_display="["),
    Binding("T", "lab_seq_len(True)", "Longer T", show=False),
    Binding("t", "lab_seq_len(False)", "Shorter T", show=False),
    Binding("plus,equals_sign", "lab_lr(2.0)", "Learning rate ×2", show=False, key_display="+"),
    Binding("minus", "lab_lr(0.5)", "Learning rate ÷2", show=False, key_display="-"),
    Binding("e", "lab_settings", "Settings",
            tooltip="Settings panel: every preset field, from the keyboard"),
    Binding("f", "lab_pace", "Pace: full, 50, 10, 2 steps/s", show=False,
            tooltip="Pace: full speed, 50, 10 or 2 steps a second"),
    Binding("s", "lab_step", "Step once", show=False,
            tooltip="One training step (pauses first)"),
    Binding("0", "lab_preset", "Restore preset", show=False,
            tooltip="Back to the lesson's preset"),
    Binding("d", "lab_reseed", "New seed", show=False, tooltip="New seed (a fresh run)"),
    Binding("x", "lab_compare", "Compare rnn, lstm, gru", show=False,
            tooltip="Compare mode: rnn, lstm and gru side by side"),
    Binding("a", "lab_autocomplete", "Autocomplete", show=False,
            tooltip="Autocomplete (language task): the live model's next word"),
    Binding("g", "lab_next_chart", "More charts", tooltip="Next chart, when they do not all fit"),
    Binding("R", "lab_reproduce", "Reproduce", show=False,
            tooltip="The command line that reproduces this run; c copies it"),
    Binding("E", "lab_export", "Export", show=False,
            tooltip="Export the run: settings, every step (JSON Lines), an SVG screenshot"),
]


def long_description(binding: Binding) -> str:
    """What the help screen and the palette say of a key: its tooltip, else its description."""
    return binding.tooltip or binding.description


class LabActions:
    """Mix into an App whose BINDINGS include LAB_BINDINGS: each action is a verb of the lab
    session on the current screen (or, for what only the view knows, of its LabPane). Lab keys
    do nothing while a modal screen (settings, help) is on top."""

    def _lab_pane(self):
        """The LabPane on the current screen, or None (also while a modal screen is on top)."""
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return None
        panes = screen.query("LabPane")
        return panes.first() if panes else None

    def check_action(self, action: str, parameters) -> bool | None:
        if action.startswith("lab_") and self._lab_pane() is None:
            return False
        return super().check_action(action, parameters)

    def _session(self, verb: str, *args) -> None:
        pane = self._lab_pane()
        if pane is not None:
            getattr(pane.session, verb)(*args)

    def _view(self, verb: str) -> None:
        pane = self._lab_pane()
        if pane is not None:
            getattr(pane, verb)()

    def action_lab_pause(self) -> None:
        self._session("toggle_pause")

    def action_lab_reset(self) -> None:
        self._session("reset_run")

    def action_lab_cell(self, name: str) -> None:
        if name == "own":                    # the learner's own cell of the lab's kind
            self._view("toggle_own_cell")
        else:
            self._session("set_cell", name)

    def action_lab_clip(self) -> None:
        self._session("toggle_clip")

    def action_lab_clip_scale(self, factor: float) -> None:
        self._session("scale_clip", float(factor))

    def action_lab_seq_len(self, up: bool) -> None:
        self._session("change_seq_len", bool(up))

    def action_lab_lr(self, factor: float) -> None:
        self._session("scale_lr", float(factor))

    def action_lab_pace(self) -> None:
        self._session("cycle_pace")

    def action_lab_preset(self) -> None:
        self._session("restore_preset")

    def action_lab_reseed(self) -> None:
        self._session("reseed")

    def action_lab_compare(self) -> None:
        self._session("toggle_compare")

    def action_lab_step(self) -> None:
        self._view("step_once")

    def action_lab_settings(self) -> None:
        self._view("open_settings")

    def action_lab_next_chart(self) -> None:
        self._view("next_chart")

    def action_lab_reproduce(self) -> None:
        self._view("show_reproduce")

    def action_lab_export(self) -> None:
        self._view("export_run")

    def action_lab_autocomplete(self) -> None:
        self._view("open_autocomplete")
