"""A seeded burst of random keys and resizes while the lab trains: no unhandled exception, and the
app still answers keys afterwards. (The long run belongs in bench/; this is the short one.)"""
from __future__ import annotations

import random
import string

from tutor.engine import Settings
from tutor.ui.app import TutorApp

from test_app_support import (data_dir, lessons_dir, opened, started,  # noqa: F401
                              wait_for)

QUIT_KEYS = {"q", "ctrl+q", "ctrl+c"}
EXTRA_KEYS = ["up", "down", "pageup", "pagedown", "home", "end", "tab", "shift+tab", "enter",
              "escape", "ctrl+p", "backspace", "left", "right"]


async def test_random_keys_and_resizes_leave_the_app_working(lessons_dir, data_dir):
    rng = random.Random(1234)
    app = TutorApp(lessons_dir=lessons_dir)           # training at full speed
    bound = sorted({key for b in app.BINDINGS for key in b.key.split(",")} - QUIT_KEYS)
    printable = [c for c in string.ascii_letters + string.digits + ".,/;'" if c not in QUIT_KEYS]
    keys = bound + EXTRA_KEYS + printable
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        for i in range(300):
            if rng.random() < 0.03:
                await pilot.resize_terminal(rng.randint(20, 160), rng.randint(8, 50))
            await pilot.press(rng.choice(keys))
            if i % 25 == 0:
                await pilot.pause()
        assert app.is_running
        # Back to a known state: close whatever is open, normal size, first lesson.
        await pilot.resize_terminal(80, 24)
        for _ in range(4):
            if app.screen is app.main_screen:
                break
            await pilot.press("escape")
            await pilot.pause(0.2)
        assert app.screen is app.main_screen
        await wait_for(pilot, lambda: app.ready, what="the app to settle")
        app.open_lesson(0)
        await opened(pilot, "First steps")
        app.set_focus(None)
        await pilot.press("3")
        await wait_for(pilot, lambda: app.lab_pane is not None
                       and app.lab_pane.settings.cell == "lstm", what="a key to work")
        await pilot.press("n")
        await opened(pilot, "A long read")


async def test_the_lab_alone_has_no_lesson_keys(data_dir):
    from tutor.lab.modes import TrainLab
    from tutor.ui.host import HostApp
    from tutor.ui.lab import LabPane

    app = HostApp(TrainLab(Settings(cell="gru", task="echo", seq_len=10, hidden=8, batch=8)),
                  "rnn-tutor lab", paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        pane = app.query_one(LabPane)
        assert pane.settings.cell == "gru"
        await pilot.press("n", "p", "o", "v")
        await pilot.pause()
        assert app.screen is app.screen_stack[0] and len(app.screen_stack) == 1
        await pilot.press("1")
        await pilot.pause()
        assert pane.settings.cell == "rnn"


async def test_an_empty_lessons_folder_says_so(tmp_path, data_dir):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "01-bad.md").write_text("no front matter", encoding="utf-8")
    app = TutorApp(lessons_dir=folder, lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        body = "\n".join(str(w.render()) for w in app.lesson_pane.body.children)
        assert "No lessons could be loaded" in body and "01-bad.md" in body
        await pilot.press("n", "p", "1", "space")
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert app.screen is app.main_screen           # nothing to list but broken files
