"""One bare app around one view, for `rnn-tutor lab`, `rnn-tutor worked` and `rnn-tutor map`.

    run_hosted(TrainLab(Settings()), "rnn-tutor lab", fps=4.0)    # -> exit code

The view comes from `lab_modes.build_view`, as in the tutor; the host adds quitting, `?` for the
keys, the command palette, and one-line errors. Lab keys reach a LabPane when the view is one.
"""
from __future__ import annotations

import os
import sys
from functools import partial

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer

from tutor.engine.settings import Settings, SettingsError
from tutor.lab.modes import LabMode, TrainLab

from .lab_keys import LAB_BINDINGS, LabActions, long_description
from .terminal import OneLineErrors, fps_problem, run_app, start_session

HOST_BINDINGS = [
    Binding("q", "quit", "Quit"),
    Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    Binding("question_mark", "toggle_keys", "Keys", key_display="?"),
]


class HostApp(OneLineErrors, LabActions, App[int]):
    """A view alone on the screen, with a footer."""

    BINDINGS = HOST_BINDINGS + LAB_BINDINGS
    CSS = "Screen { layout: vertical; }"

    def __init__(self, mode: LabMode, title: str, *, fps: float = 4.0,
                 max_steps: int | None = None, paused: bool = False):
        super().__init__()
        self.mode = mode
        self.title = title
        self.fps, self.max_steps, self.start_paused = fps, max_steps, paused

    def compose(self) -> ComposeResult:
        from .lab_modes import build_view
        self.view = build_view(self.mode, fps=self.fps, max_steps=self.max_steps,
                               paused=self.start_paused, id="lab")
        yield self.view
        yield Footer()

    def on_mount(self) -> None:
        start_session(self)
        if self.view.can_focus:
            self.view.focus()

    def _keys(self) -> list[Binding]:
        """This app's keys as the learner can use them: the lab's only around a LabPane, and the
        view's own otherwise."""
        mine = [b for b in HOST_BINDINGS if b.action != "toggle_keys"]
        if isinstance(self.mode, TrainLab):
            return mine + LAB_BINDINGS
        return mine + list(getattr(type(self.view), "BINDINGS", []))

    def action_toggle_keys(self) -> None:
        from .help_screen import HelpScreen, describe_bindings
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        elif not isinstance(self.screen, ModalScreen):
            # Untitled (the border names the list) and without ? itself, so it fits 80×24.
            sections = describe_bindings(self, self._keys(), {}, [""])
            self.push_screen(HelpScreen(sections, title=f"{self.title} keys"))

    def get_system_commands(self, screen):
        """The palette (ctrl+p) offers every key's action too, by its description."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, ModalScreen):
            return
        for binding in self._keys():
            if binding.action == "quit":
                continue
            target = self if binding in LAB_BINDINGS else self.view
            yield SystemCommand(binding.description,
                                f"{long_description(binding)} · key "
                                f"{binding.key_display or binding.key}",
                                partial(self._run_on, target, binding.action))

    async def _run_on(self, target: Widget, action: str) -> None:
        await self.run_action(action, target)


def run_hosted(mode: LabMode, title: str, *, fps: float = 4.0, max_steps: int | None = None,
               paused: bool = False) -> int:
    return run_app(HostApp(mode, title, fps=fps, max_steps=max_steps, paused=paused))


def run_lab(settings: Settings | None = None, fps: float = 4.0,
            max_steps: int | None = None) -> int:
    """`rnn-tutor lab`: the lab alone. Bad arguments: one line and exit 2."""
    problem = fps_problem(fps)
    if problem is None and max_steps is not None and (not isinstance(max_steps, int)
                                                      or max_steps < 1):
        problem = f"--steps must be a positive whole number, not {max_steps}"
    if problem is None:
        try:
            settings = (settings or Settings()).validated()
        except SettingsError as exc:
            problem = str(exc)
    if problem:
        print(f"rnn-tutor: {problem}", file=sys.stderr)
        return 2
    return run_hosted(TrainLab(settings), "rnn-tutor lab", fps=fps, max_steps=max_steps,
                      paused=os.environ.get("RNN_TUTOR_LAB_PAUSED") == "1")
