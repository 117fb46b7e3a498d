"""The settings panel as the learner sees it: every field shows its value, also while typing."""
from __future__ import annotations

import pytest

from tutor.engine import Settings
from tutor.lab.modes import TrainLab
from tutor.ui.host import HostApp
from tutor.ui.settings_screen import FIELDS, SettingsScreen

FAST = Settings(cell="rnn", task="echo", seq_len=10, hidden=8, batch=8)


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.mark.parametrize("size", [(80, 24), (100, 40)])
async def test_a_focused_number_field_shows_what_is_typed(size):
    app = HostApp(TrainLab(FAST), "rnn-tutor lab", paused=True)
    async with app.run_test(size=size) as pilot:
        await pilot.press("e")
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("down", "down")                     # task, then T
        assert app.screen.focused is app.screen.query_one("#field-seq_len")
        await pilot.press("4", "3", "7")                      # replaces the selected "10"
        await pilot.pause()
        text = screen_text(app)
        assert "437" in text
        # every field's label is on screen, each on its own row beside its value
        rows = text.splitlines()
        for field in FIELDS:
            assert any(field.label in row for row in rows), field.label
        lr_row = next(row for row in rows if "learning rate" in row)
        assert "0.01" in lr_row
