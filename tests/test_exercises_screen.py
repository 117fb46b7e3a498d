"""The exercises screen at 80×24: marks, watch mode, targeted hints, the solution only after a
failed check and a yes, the record, and a hanging check that does not block the keys."""
import asyncio
import json
import time

import pytest

from tutor.exercises.catalog import BY_NUMBER
from tutor.exercises.runner import Limits
from tutor.exercises.workspace import open_workspace
from tutor.ui.confirm import ConfirmScreen
from tutor.ui.exercises_screen import ExercisesApp, ExercisesScreen, SolutionScreen

FAST = Limits(seconds=1.0, memory_bytes=512 << 20)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_TUTOR_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def ws(tmp_path, data_dir):
    return open_workspace(tmp_path / "ex")


async def until(pilot, condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def marks(screen):
    listing = screen.query_one("#ex-list")
    return [listing.get_option_at_index(i).prompt.plain[0] for i in range(listing.option_count)]


def report(screen):
    """The report pane's text as rendered at its width, wrapped lines joined."""
    widget = screen.query_one("#ex-report-text")
    text = " ".join(line.text for line in widget.render_lines(widget.region.reset_offset))
    return " ".join(text.split())


def idle(screen):
    return screen._checking is None and not screen._pending


async def test_stubs_solution_refused_then_fail_confirm_hint_and_pass(ws, data_dir):
    app = ExercisesApp(ws.path, limits=FAST, poll_seconds=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: len(screen.results) == 5 and idle(screen))
        assert marks(screen) == ["·"] * 5
        assert screen.query_one("#ex-side").region.right <= 30
        assert screen.query_one("#ex-report").region.right == 80
        assert "not written yet: rnn_step_forward() still raises" in report(screen)

        await pilot.press("s")                            # nothing failed yet: refused
        assert isinstance(app.screen, ExercisesScreen)
        assert "the solution opens after a check of your attempt fails" in str(
            screen.query_one("#ex-status").render())

        path = ws.file(BY_NUMBER[1])                      # a save: checked again
        path.write_text(BY_NUMBER[1].solution.replace("dW_hh = da.T @ h_prev",
                                                      "dW_hh = h_prev.T @ da"))
        await until(pilot, lambda: marks(screen)[0] == "✗" and idle(screen))
        assert "dW_hh is transposed" in report(screen)

        await pilot.press("h")                            # the hint about dW_hh first
        assert screen.hints_shown[1] == [2]
        assert "Hint 1 of 3: A weight gradient has the weight's shape" in report(screen)
        await pilot.press("h")
        assert screen.hints_shown[1] == [2, 1]

        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, ExercisesScreen)
        await pilot.press("s", "y")
        assert isinstance(app.screen, SolutionScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, ExercisesScreen)

        path.write_text(BY_NUMBER[1].solution)
        await until(pilot, lambda: marks(screen)[0] == "✓" and idle(screen))
        shown = str(screen.query_one("#ex-status").render())
        assert "n: next exercise" in shown and "y in the lab trains your rnn" in shown
        await pilot.press("n")
        assert screen.current.number == 2

    saved = json.loads((data_dir / "exercises.json").read_text())["exercises"]
    assert saved["1"]["passed"] and saved["1"]["solution_seen"] and saved["1"]["hints"] == 2
    assert saved["1"]["failures"] == 1
    assert saved["2"]["status"] == "todo" and not saved["2"]["passed"]


async def test_a_hanging_check_does_not_block_the_keys(ws, data_dir):
    ws.file(BY_NUMBER[1]).write_text(
        BY_NUMBER[1].template.replace("    raise NotImplementedError\n",
                                      "    while True:\n        pass\n", 1))
    app = ExercisesApp(ws.path, limits=FAST, poll_seconds=0.05, check_on_open=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await pilot.press("c")
        await until(pilot, lambda: screen._checking == 1)
        assert marks(screen)[0] == "…"
        start = time.monotonic()
        await pilot.press("down", "h")                   # answered while the check runs
        assert time.monotonic() - start < 0.5
        assert screen.current.number == 2 and screen.hints_shown[2] == [0]
        await until(pilot, lambda: 1 in screen.results)
        assert "stopped after 1 s (the time limit)" in screen.results[1].summary
        assert marks(screen)[0] == "✗"


async def test_leaving_kills_a_running_check(ws, data_dir):
    ws.file(BY_NUMBER[1]).write_text(
        BY_NUMBER[1].template.replace("    raise NotImplementedError\n",
                                      "    import time\n    time.sleep(30)\n", 1))
    app = ExercisesApp(ws.path, limits=Limits(seconds=30), check_on_open=False)
    start = time.monotonic()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: app.screen._checking == 1)
        await asyncio.sleep(0.5)
        await pilot.press("escape")                      # the only screen: leaves the app
    assert time.monotonic() - start < 10


async def test_no_color_keeps_the_marks(ws, data_dir, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    ws.file(BY_NUMBER[3]).write_text(BY_NUMBER[3].solution)
    app = ExercisesApp(ws.path, limits=FAST)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        screen = app.screen
        await until(pilot, lambda: len(screen.results) == 5 and idle(screen))
        assert marks(screen) == ["·", "·", "✓", "·", "·"]
        assert screen.query_one("#ex-list").border_title == "Exercises 1/5"
