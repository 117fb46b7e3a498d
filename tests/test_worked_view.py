"""The worked-example stepper driven by keys, and `run_worked` off a terminal."""
import pytest

from tutor.explorers.worked import CELLS, build_example, plain_walkthrough
from tutor.lab.modes import WorkedLab
from tutor.ui.host import HostApp
from tutor.ui.worked_view import WorkedView, run_worked


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def host(cell="rnn"):
    return HostApp(WorkedLab(cell), "test")


async def test_keys_step_forward_and_back_and_the_screen_follows():
    app = host("rnn")
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(WorkedView)
        assert app.focused is view and view.index == 0
        lines = view.example.lines
        await pilot.press("right", "l", "enter")
        assert view.index == 3
        await pilot.press("left", "h")
        assert view.index == 1
        await pilot.pause()
        text = screen_text(app)
        assert text.splitlines()[0].strip().startswith("RNN · forward pass · t=1 · 2/")
        # the current line is on screen in full, the one before it as "name = value"
        assert lines[1].label in text and lines[1].formula in text
        assert f"= {lines[1].result}" in text
        assert f"1. a_1[1] = {lines[0].result}" in text
        await pilot.press("left", "left", "left")
        assert view.index == 0                                 # stops at the start


async def test_section_jumps_and_the_end():
    app = host("lstm")
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(WorkedView)
        ex = view.example
        await pilot.press("b")
        assert view.current.section == "backward" and view.index == ex.first_index("backward")
        await pilot.press("u")
        assert view.index == ex.first_index("update")
        await pilot.press("f")
        assert view.index == 0
        await pilot.press("end", "right")
        assert view.index == len(ex.lines) - 1                # stays on the last line
        await pilot.pause()
        text = screen_text(app)
        assert "The loss fell from" in text and ex.lines[-1].result in text
        body = view.query_one("#worked-body")
        assert body.scroll_y == body.max_scroll_y > 0         # scrolled to the current line


async def test_w_cycles_the_cell_keeping_the_section():
    app = host("rnn")
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(WorkedView)
        await pilot.press("b")
        seen = []
        for _ in CELLS:
            await pilot.press("w")
            seen.append(view.cell)
            assert view.current.section == "backward"
            assert view.index == view.example.first_index("backward")
            await pilot.pause()
            assert screen_text(app).splitlines()[0].strip().startswith(view.cell.upper())
        assert seen == ["lstm", "gru", "rnn"]


@pytest.mark.parametrize("size", [(80, 24), (40, 24), (20, 8)])
async def test_shows_every_line_of_every_cell_without_error(size):
    app = host("rnn")
    async with app.run_test(size=size) as pilot:
        view = app.query_one(WorkedView)
        for cell in CELLS:
            assert view.cell == cell
            await pilot.press("right", "right", "end", "left", "home")
            for i in range(len(view.example.lines)):    # every line, drawn in batches
                view._go(i)
                if i % 40 == 0:
                    await pilot.pause()
            await pilot.pause()
            await pilot.pause()
            assert view.current.result in screen_text(app) or size[1] < 10
            await pilot.press("w", "f")


async def test_ctrl_c_and_q_quit():
    for key in ("ctrl+c", "q", "ctrl+q"):
        app = host()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(key)
            await pilot.pause()
            assert not app.is_running, key


def test_bindings_have_descriptions_for_the_footer():
    keys = set()
    for binding in WorkedView.BINDINGS:
        assert binding.description
        keys.update(binding.key.split(","))
    assert {"right", "l", "enter", "left", "h", "f", "b", "u", "w"} <= keys
    assert not keys & set("0123456789")             # digits belong to the app


def test_unknown_cell_is_refused_with_one_line():
    with pytest.raises(ValueError, match="unknown cell"):
        WorkedView("irnn")


def test_run_worked_prints_plain_text_when_not_a_terminal(capsys):
    assert run_worked("gru", plain=False) == 0           # pytest's stdout is not a TTY
    out = capsys.readouterr().out
    assert out == plain_walkthrough("gru")
    assert "\x1b" not in out
    assert build_example("gru").lines[-1].result in out


def test_run_worked_refuses_an_unknown_cell(capsys):
    assert run_worked("elman", plain=True) == 2
    err = capsys.readouterr().err
    assert "unknown cell" in err and err.count("\n") == 1
