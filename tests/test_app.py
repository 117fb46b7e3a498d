"""The tutor app driven through Textual's Pilot: layout and global keys, with the real lab worker."""
from __future__ import annotations

import pytest
from textual.widgets import Footer, Markdown

from tutor.ui.app import TooSmall, TutorApp, WIDE_COLUMNS
from tutor.ui.lab_keys import long_description
from tutor.ui.help_screen import HelpScreen
from tutor.ui.lab import LabPane
from tutor.ui.lab_keys import LAB_BINDINGS
from tutor.ui.map_view import MapView
from tutor.ui.settings_screen import SettingsScreen
from tutor.ui.worked_view import WorkedView

from test_app_support import (broken_lessons_dir, data_dir, lab_step, lessons_dir,  # noqa: F401
                              opened, saved_progress, started, wait_for, wait_for_worker)


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def make_app(lessons_dir, **kwargs) -> TutorApp:
    kwargs.setdefault("lab_paused", True)
    return TutorApp(lessons_dir=lessons_dir, **kwargs)


def shown(app, widget) -> bool:
    """Displayed, with every ancestor displayed, and given some room."""
    node = widget
    while node is not None and node is not app:
        if not getattr(node, "display", True):
            return False
        node = node.parent
    return widget.size.width > 0 and widget.size.height > 0


def lesson_title(app) -> str:
    return app.lesson_pane.lesson.title


def markdown_text(app) -> str:
    return "\n".join(md.source for md in app.lesson_pane.body.query(Markdown))


# ---- layout ---------------------------------------------------------------------------------

async def test_first_run_opens_first_lesson_and_v_switches_panes_at_80x24(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert lesson_title(app) == "First steps"
        assert "fixed-size" in markdown_text(app)
        assert app.showing == "lesson"
        assert shown(app, app.lesson_pane) and not shown(app, app.lab_pane)
        assert app.focused is app.lesson_pane.body      # arrows scroll the lesson

        await pilot.press("v")
        await pilot.pause()
        assert app.showing == "lab"
        assert shown(app, app.lab_pane) and not shown(app, app.lesson_pane)

        await pilot.press("v")
        await pilot.pause()
        assert app.showing == "lesson"
        assert shown(app, app.lesson_pane) and not shown(app, app.lab_pane)
        assert app.focused is app.lesson_pane.body


async def test_a_new_lesson_opens_on_its_text_after_v_showed_the_lab_at_80x24(
        lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        for key, title in (("n", "A long read"), ("p", "First steps")):
            await pilot.press("v")
            await pilot.pause()
            assert app.showing == "lab"
            await pilot.press(key)
            await opened(pilot, title)
            assert app.showing == "lesson"
            assert shown(app, app.lesson_pane) and not shown(app, app.lab_pane)
            assert app.focused is app.lesson_pane.body


async def test_wide_terminal_shows_both_and_v_is_inactive(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(WIDE_COLUMNS, 40)) as pilot:
        await started(pilot)
        assert app.showing == "both"
        assert shown(app, app.lesson_pane) and shown(app, app.lab_pane)
        assert app.lesson_pane.region.right <= app.lab_pane.region.x   # side by side
        await pilot.press("v")
        await pilot.pause()
        assert shown(app, app.lesson_pane) and shown(app, app.lab_pane)
        # Narrowing the terminal keeps one pane; widening brings both back.
        await pilot.resize_terminal(90, 30)
        await pilot.pause()
        assert app.showing == "lesson" and not shown(app, app.lab_pane)
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        assert shown(app, app.lesson_pane) and shown(app, app.lab_pane)


async def test_small_terminal_shows_message_and_recovers(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        too_small = app.query_one(TooSmall)
        assert not shown(app, too_small)
        for size in ((39, 24), (80, 11), (20, 8)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert shown(app, too_small), size
            assert not shown(app, app.lesson_pane) and not shown(app, app.query_one(Footer))
            assert f"{size[0]}×{size[1]}" in str(too_small.render())
        await pilot.press("3")                           # keys still work while small
        await pilot.pause()
        assert app.lab_pane.settings.cell == "lstm"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not shown(app, too_small)
        assert shown(app, app.lesson_pane) and lesson_title(app) == "First steps"
        await pilot.press("v")
        await pilot.pause()
        assert shown(app, app.lab_pane)


# ---- lesson keys ----------------------------------------------------------------------------

async def test_n_and_p_move_through_lessons_and_load_each_preset(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert app.lab_pane.settings.cell == "rnn" and app.lab_pane.settings.task == "echo"
        await pilot.press("p")                            # already at the first lesson
        await pilot.pause()
        assert lesson_title(app) == "First steps"

        await pilot.press("n")
        await opened(pilot, "A long read")
        pane = app.lab_pane
        assert (pane.settings.cell, pane.settings.task, pane.settings.seq_len) == \
            ("lstm", "adding", 12)
        assert pane.settings.clip == 1.0
        assert "Paragraph 40" in markdown_text(app)
        assert saved_progress(data_dir)["last"] == "long-read"

        await pilot.press("n")                            # a worked-example lesson
        await opened(pilot, "Worked numbers")
        assert isinstance(app.lab_widget, WorkedView) and app.lab_widget.cell == "gru"
        assert app.lab_pane is None
        assert not pane.session.trainer.alive                     # the old lab's worker is gone

        await pilot.press("n")                            # mode none: the lesson alone
        await opened(pilot, "Just reading")
        assert app.lab_widget is None and app.showing == "lesson"
        await pilot.press("v")                            # nothing to switch to
        await pilot.pause()
        assert app.showing == "lesson" and shown(app, app.lesson_pane)

        await pilot.press("n")                            # the iterated-map explorer
        await opened(pilot, "The iterated map")
        assert isinstance(app.lab_widget, MapView) and app.lab_widget.preset[:2] == ("tanh", 2.5)
        await pilot.press("v")                            # the map takes the keys ...
        await pilot.pause()
        assert app.showing == "lab" and app.focused is app.lab_widget
        await pilot.press("v")                            # ... but v still brings the lesson back
        await pilot.pause()
        assert app.showing == "lesson" and app.focused is app.lesson_pane.body
        await pilot.press("n")                            # already at the last lesson
        await pilot.pause()
        assert lesson_title(app) == "The iterated map"

        await pilot.press("p", "p", "p", "p")
        await opened(pilot, "First steps")
        assert isinstance(app.lab_widget, LabPane)
        assert app.lab_pane.settings.cell == "rnn"


async def test_keys_pressed_faster_than_rendering_end_on_the_right_lesson(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press(*"nnnpnpp")
        await wait_for(pilot, lambda: app.lesson_pane.lesson is app.lessons[1],
                       what="lesson 2 after the burst")
        await pilot.pause(0.3)
        assert app.current_index == 1 and lesson_title(app) == "A long read"
        assert isinstance(app.lab_widget, LabPane) and app.lab_pane.settings.cell == "lstm"
        assert len(app.query(LabPane)) == 1


async def test_lesson_given_by_number_or_slug_and_last_lesson_reopens(lessons_dir, data_dir):
    app = make_app(lessons_dir, lesson="2")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert lesson_title(app) == "A long read"
    app = make_app(lessons_dir, lesson="just-reading")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert lesson_title(app) == "Just reading"
    app = make_app(lessons_dir)                 # no --lesson: the last one open
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert lesson_title(app) == "Just reading"


async def test_lesson_list_marks_progress_lists_broken_and_opens(broken_lessons_dir, data_dir):
    app = make_app(broken_lessons_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        await pilot.press("o")
        await pilot.pause()
        from textual.widgets import OptionList
        options = app.screen.query_one(OptionList)
        prompts = [str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)]
        assert prompts[0].startswith("· 01  First steps")
        broken = [p for p in prompts if "06-broken.md" in p]
        assert len(broken) == 1 and "banana" in broken[0]
        assert options.get_option_at_index(prompts.index(broken[0])).disabled
        assert options.highlighted == 0                    # the open lesson
        await pilot.press("down", "down", "enter")
        await opened(pilot, "Worked numbers")
        assert not isinstance(app.screen, type(None)) and app.screen is app.main_screen

        await pilot.press("o", "escape")
        await pilot.pause()
        assert app.screen is app.main_screen and lesson_title(app) == "Worked numbers"


async def test_help_lists_every_key_and_closes(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.plain_text
        for binding in app.BINDINGS:
            assert long_description(binding) in text, binding
            shown_key = binding.key_display or app.get_key_display(binding)
            assert shown_key in text, binding
        for word in ("space", "ctrl+p", "enter", "tab"):
            assert word in text.replace("^p", "ctrl+p")
        await pilot.press("1")                    # lab keys do nothing under the help
        await pilot.pause()
        assert app.lab_pane.settings.cell == "rnn"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main_screen
        await pilot.press("question_mark", "question_mark")
        await pilot.pause()
        assert app.screen is app.main_screen


def test_every_lab_binding_is_a_tutor_binding():
    keys = {(b.key, b.action) for b in TutorApp.BINDINGS}
    for binding in LAB_BINDINGS:
        assert (binding.key, binding.action) in keys
    fixed = {"q": "quit", "ctrl+q": "quit", "ctrl+c": "quit", "question_mark": "help",
             "n": "next_lesson", "p": "previous_lesson", "space": "lab_pause", "r": "lab_reset",
             "1": "lab_cell('rnn')", "2": "lab_cell('irnn')", "3": "lab_cell('lstm')",
             "4": "lab_cell('gru')", "c": "lab_clip", "v": "switch_view"}
    for key, action in fixed.items():
        assert (key, action) in keys
    ctrl_c = next(b for b in TutorApp.BINDINGS if b.key == "ctrl+c")
    assert ctrl_c.priority
    all_keys = [k for b in TutorApp.BINDINGS for k in b.key.split(",")]
    assert len(all_keys) == len(set(all_keys)), "a key bound twice"


# ---- lab keys through the app ----------------------------------------------------------------

async def test_lab_keys_change_the_run(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        pane = app.lab_pane
        await wait_for_worker(pilot, pane)
        preset = pane.settings
        assert pane.paused

        async def press(key):
            await pilot.press(key)
            await pilot.pause()

        await press("space")
        assert not pane.paused
        await press("space")
        assert pane.paused
        for key, cell in (("2", "irnn"), ("3", "lstm"), ("4", "gru"), ("1", "rnn")):
            await press(key)
            assert pane.settings.cell == cell
        await press("c")
        assert pane.settings.clipping
        threshold = pane.settings.clip
        await press("right_square_bracket")
        assert pane.settings.clip == pytest.approx(threshold * 2)
        await press("left_square_bracket")
        await press("left_square_bracket")
        assert pane.settings.clip == pytest.approx(threshold / 2)
        await press("c")
        assert not pane.settings.clipping
        await press("T")
        assert pane.settings.seq_len > preset.seq_len
        await press("t")
        await press("t")
        assert pane.settings.seq_len < preset.seq_len
        await press("plus")
        assert pane.settings.lr == pytest.approx(preset.lr * 2)
        await press("minus")
        await press("minus")
        assert pane.settings.lr == pytest.approx(preset.lr / 2)
        pace = pane.pace
        await press("f")
        assert pane.pace != pace
        seed = pane.settings.seed
        await press("d")
        assert pane.settings.seed != seed
        await press("x")
        assert pane.compare and len(pane.history.runs) == 3
        await press("x")
        assert not pane.compare
        await press("0")
        assert pane.settings == preset
        await press("v")                                   # show the lab to page its charts
        page = [c.id for c in pane.visible_charts]
        assert len(page) < 4
        await press("g")
        assert [c.id for c in pane.visible_charts] != page   # 80×24 cannot show all charts

        before = lab_step(pane)
        await press("s")
        await wait_for(pilot, lambda: lab_step(pane) == before + 1, what="one step")
        assert pane.paused
        generation = pane.history.generation
        await press("r")
        assert pane.history.generation != generation and lab_step(pane) == 0

        await press("e")
        assert isinstance(app.screen, SettingsScreen)
        await press("escape")
        assert app.screen is app.main_screen


async def test_lab_keys_work_while_the_lesson_is_shown_and_a_question_has_focus(
        lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("tab")
        await pilot.pause()
        question = app.lesson_pane.checkpoints[0]
        assert app.focused is question
        await pilot.press("3", "c", "space")
        await pilot.pause()
        pane = app.lab_pane
        assert pane.settings.cell == "lstm" and pane.settings.clipping and not pane.paused
        assert app.focused is question and question.cursor == 0 and question.chosen is None
        await pilot.press("n")
        await opened(pilot, "A long read")


async def test_lab_keys_are_inert_without_a_training_lab(lessons_dir, data_dir):
    app = make_app(lessons_dir, lesson="3")
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        assert isinstance(app.lab_widget, WorkedView)
        app.set_focus(None)
        await pilot.press("1", "space", "c", "e", "x", "r")
        await pilot.pause()
        assert app.screen is app.main_screen and app.lab_pane is None
        assert lesson_title(app) == "Worked numbers"


async def test_quit_keys_stop_the_worker(lessons_dir, data_dir):
    for key in ("q", "ctrl+c", "ctrl+q"):
        app = make_app(lessons_dir)
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            pane = app.lab_pane
            await wait_for_worker(pilot, pane)
            pid = pane.session.trainer.pid
            assert pid_alive(pid)
            await pilot.press(key)
            await pilot.pause()
        assert app.return_code == 0
        assert not pid_alive(pid), key


async def test_switching_cells_fifty_times_leaves_one_worker(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        pane = app.lab_pane
        await wait_for_worker(pilot, pane)
        pid = pane.session.trainer.pid
        for i in range(50):
            await pilot.press("1234"[i % 4])
        await pilot.pause(0.3)
        assert pane.session.trainer.pid == pid and pane.session.trainer.alive
        assert pane.settings.cell == "irnn"              # the 50th key was 2
        import multiprocessing
        assert len(multiprocessing.active_children()) == 1


async def test_every_shipped_lesson_opens_with_its_lab(data_dir):
    from tutor.lessons import load_lessons

    shipped = load_lessons()
    if not shipped.lessons:
        pytest.skip("no shipped lessons yet")
    expected = {"train": LabPane, "worked": WorkedView, "map": MapView, "none": type(None)}
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        for i, lesson in enumerate(shipped.lessons):
            if i:
                await pilot.press("n")
            await opened(pilot, lesson.title)
            assert isinstance(app.lab_widget, expected[lesson.mode]), lesson.name
            if lesson.mode == "train":
                assert app.lab_pane.settings == lesson.settings, lesson.name
            shown_ids = {cp.checkpoint.id for cp in app.lesson_pane.checkpoints}
            assert shown_ids == {cp.id for cp in lesson.checkpoints}, lesson.name
            warnings = [str(w.render()) for w in app.lesson_pane.body.query(".lesson-warning")]
            assert len(warnings) == len(lesson.warnings), lesson.name


async def test_escape_sequences_in_a_lesson_show_as_text_with_a_warning(tmp_path, data_dir):
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "01-hostile.md").write_text(
        "---\ntitle: Hostile\nmode: none\n---\n# Hostile\n\n"
        "Clear: \x1b[2J title: \x1b]0;pwned\x07 clipboard: \x1b]52;c;aGk=\x07 end.\n",
        encoding="utf-8")
    app = make_app(folder)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        warnings = [str(w.render()) for w in app.lesson_pane.body.query(".lesson-warning")]
        assert len(warnings) == 1 and "control characters" in warnings[0]
        first = app.lesson_pane.body.children[0]
        assert first.has_class("lesson-warning")           # at the top of the lesson
        screen = app.export_screenshot()
        assert "␛[2J" in screen and "␛]52;c;aGk=␇" in screen
        assert "\x1b" not in screen and "\x07" not in screen
