"""Checkpoints, completion and the progress file, through the running app."""
from __future__ import annotations

import json

from textual.widgets import Static

from tutor.ui.app import TutorApp, run_tutor
from tutor.ui.checkpoint import CheckpointView
from tutor.ui.confirm import ConfirmScreen

from test_app_support import (data_dir, lessons_dir,  # noqa: F401
                              opened, saved_progress, started, wait_for)


def make_app(lessons_dir, **kwargs) -> TutorApp:
    kwargs.setdefault("lab_paused", True)
    app = TutorApp(lessons_dir=lessons_dir, **kwargs)
    app.notified = []
    original = app.notify

    def notify(message, *args, **kw):
        app.notified.append(str(message))
        return original(message, *args, **kw)

    app.notify = notify
    return app


def feedback_text(view: CheckpointView) -> str:
    feedback = view.query_one(".cp-feedback", Static)
    return str(feedback.render()) if feedback.has_class("-shown") else ""


async def test_answering_with_arrows_and_enter_saves_and_survives_a_restart(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        first, second = app.lesson_pane.checkpoints
        await pilot.press("tab")
        assert app.focused is first and first.cursor == 0 and first.state == "unanswered"
        await pilot.press("down", "enter")                 # "one-to-many": wrong
        await pilot.pause()
        assert first.state == "wrong" and first.chosen == 1
        assert "captioning" in feedback_text(first) and "try again" in feedback_text(first)
        record = saved_progress(data_dir)["answers"]["first"]["shapes"]
        assert record == {"choice": 1, "correct": False, "tries": 1, "solved": False}

        await pilot.press("up", "up")                     # up on the first answer: not consumed
        await pilot.press("enter")                         # "many-to-one": right
        await pilot.pause()
        assert first.state == "solved"
        assert "one label out" in feedback_text(first)
        assert saved_progress(data_dir)["answers"]["first"]["shapes"]["solved"] is True
        assert "first" not in saved_progress(data_dir)["completed"]
        assert "✓" not in app.lesson_pane.query_one("#lesson-header", Static).render().plain

        await pilot.press("tab")
        assert app.focused is second
        await pilot.press("down", "enter")                 # "lstm": right
        await pilot.pause()
        assert second.state == "solved"
        assert "first" in saved_progress(data_dir)["completed"]
        assert any("Lesson complete" in m for m in app.notified)
        assert "✓ complete" in str(app.lesson_pane.query_one("#lesson-header", Static).render())

    app = make_app(lessons_dir)                            # a fresh start reads the file
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        first, second = app.lesson_pane.checkpoints
        assert first.state == "solved" and first.chosen == 0
        assert second.state == "solved" and second.chosen == 1
        assert "one label out" in feedback_text(first)
        assert "✓ complete" in str(app.lesson_pane.query_one("#lesson-header", Static).render())
        await pilot.press("o")
        await pilot.pause()
        from textual.widgets import OptionList
        options = app.screen.query_one(OptionList)
        assert str(options.get_option_at_index(0).prompt).startswith("✓ 01")


async def test_clicking_an_answer_answers(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(120, 60)) as pilot:
        await started(pilot)
        first = app.lesson_pane.checkpoints[0]
        await pilot.click("#checkpoint-shapes #option-0")
        await pilot.pause()
        assert first.state == "solved" and app.focused is first
        assert saved_progress(data_dir)["answers"]["first"]["shapes"]["choice"] == 0


async def test_a_lesson_without_checkpoints_completes_when_read_to_the_end(lessons_dir, data_dir):
    app = make_app(lessons_dir, lesson="long-read")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert not app.progress.is_read("long-read")          # the end is far below
        await pilot.press("pagedown")
        await pilot.pause(0.3)
        assert not app.progress.is_read("long-read")
        await pilot.press("end")
        await wait_for(pilot, lambda: app.progress.is_read("long-read"), what="read to end")
        assert "long-read" in saved_progress(data_dir)["completed"]
        assert any("Lesson complete" in m for m in app.notified)


async def test_reading_does_not_count_while_the_lab_hides_the_lesson(lessons_dir, data_dir):
    app = make_app(lessons_dir, lesson="long-read")
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("v")
        app.lesson_pane.body.scroll_end(animate=False, immediate=True)
        await pilot.pause(0.5)
        assert not app.progress.is_read("long-read")
        await pilot.press("v")                                # the end comes into view
        await wait_for(pilot, lambda: app.progress.is_read("long-read"), what="read to end")


async def test_corrupt_progress_file_is_set_aside_with_a_notice(lessons_dir, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "progress.json").write_text('{"last": "long-re', encoding="utf-8")
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert app.lesson_pane.lesson.slug == "first"
        assert len(app.notified) == 1 and "not valid JSON" in app.notified[0]
        assert "\n" not in app.notified[0]
        await pilot.press("tab", "enter")
        await pilot.pause()
        assert saved_progress(data_dir)["answers"]["first"]["shapes"]["solved"] is True
    assert list(data_dir.glob("progress.json.corrupt-*"))


async def test_unusable_progress_path_keeps_progress_in_memory(lessons_dir, data_dir):
    (data_dir / "progress.json").mkdir(parents=True)            # a folder where the file goes
    app = make_app(lessons_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert any("folder" in m for m in app.notified)
        count = len(app.notified)
        await pilot.press("tab", "down", "enter", "up", "enter")
        await pilot.pause()
        assert app.progress.answer("first", "shapes")["solved"]
        assert app.lesson_pane.checkpoints[0].state == "solved"
        # The save failure is told once, not on every answer.
        assert len(app.notified) - count <= 1
        await pilot.press("n")
        await opened(pilot, "A long read")
    assert (data_dir / "progress.json").is_dir()


async def test_reset_progress_flag_and_palette_action(lessons_dir, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "progress.json").write_text(json.dumps({
        "version": 1, "last": "long-read", "completed": ["first"], "read": [],
        "answers": {"first": {"shapes": {"choice": 0, "correct": True, "tries": 1,
                                         "solved": True}}}}), encoding="utf-8")
    app = make_app(lessons_dir, reset_progress=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert app.lesson_pane.lesson.slug == "first"            # "last" was forgotten too
        assert app.lesson_pane.checkpoints[0].state == "unanswered"
        assert saved_progress(data_dir)["completed"] == []

        await pilot.press("tab", "enter")
        await pilot.pause()
        assert app.progress.answer("first", "shapes")["solved"]

        async def palette_reset(answer_key):
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"reset progress")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(answer_key)
            await pilot.pause(0.3)

        await palette_reset("n")
        assert app.progress.answer("first", "shapes")["solved"]
        assert saved_progress(data_dir)["answers"]["first"]["shapes"]["solved"]
        await palette_reset("y")
        assert app.screen is app.main_screen
        assert app.progress.answer("first", "shapes") is None
        assert saved_progress(data_dir)["answers"] == {}
        await wait_for(pilot, lambda: app.lesson_pane.checkpoints
                       and app.lesson_pane.checkpoints[0].state == "unanswered",
                       what="checkpoints redrawn")


async def test_palette_runs_the_same_actions_as_the_keys(lessons_dir, data_dir):
    app = make_app(lessons_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot)
        titles = [title for title, _, _ in app.palette_commands()]
        for binding in app.BINDINGS:
            if binding.action != "quit":
                assert binding.description in titles, binding
        assert any(t.startswith("Open lesson 02") for t in titles)

        async def run(query):
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*query)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.3)

        compare = next(b.description for b in app.BINDINGS if b.action == "lab_compare")
        await run(compare.lower())
        assert app.lab_pane.compare
        await run("open lesson 02")
        await opened(pilot, "A long read")
        await run("lstm")
        assert app.lab_pane.settings.cell == "lstm"


def test_run_tutor_refuses_unknown_lesson_and_missing_folder(lessons_dir, data_dir, capsys,
                                                             tmp_path):
    assert run_tutor(lessons_dir=lessons_dir, lesson="99") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no lesson '99'" in err and "Traceback" not in err
    assert str(lessons_dir) in err                     # the learner's own folder is named
    assert run_tutor(lesson="99") == 1
    err = capsys.readouterr().err
    # The shipped folder's path is an install detail: the message points at the listing instead.
    assert "no lesson '99'; the lessons are 1–" in err and "rnn-tutor lessons lists" in err
    assert "/" not in err.split("lists")[0]
    assert run_tutor(lessons_dir=lessons_dir, lesson="no-such-slug") == 1
    assert "no-such-slug" in capsys.readouterr().err
    assert run_tutor(lessons_dir=tmp_path / "nowhere") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert run_tutor(lessons_dir=lessons_dir, fps=float("nan")) == 2
    assert capsys.readouterr().err.count("\n") == 1


async def test_an_unexpected_error_goes_to_the_log_not_the_screen(lessons_dir, data_dir,
                                                                  monkeypatch, capsys):
    def broken_help(self):
        raise RuntimeError("a bug in the help screen")

    monkeypatch.setattr(TutorApp, "action_help", broken_help)
    app = make_app(lessons_dir)
    raised = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
    except RuntimeError as exc:          # Pilot re-raises what the app caught
        raised = exc
    assert raised is not None and "a bug in the help screen" in str(raised)
    assert app.crash_summary == "RuntimeError: a bug in the help screen"
    log = (data_dir / "rnn-tutor.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "broken_help" in log
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out     # nothing printed over the terminal


async def test_one_tab_gives_an_off_screen_question_the_keys_at_80x24(data_dir):
    # Shipped lesson 1: its first question starts below the fold, so tab has to scroll to it.
    app = TutorApp(lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        first, second = app.lesson_pane.checkpoints[:2]
        body = app.lesson_pane.body
        assert not body.region.overlaps(first.region)
        await pilot.press("tab")
        await pilot.pause(0.3)
        assert app.focused is first
        assert first.border_subtitle.startswith("↑↓ choose")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert first.chosen == 1 and app.focused is first
        await pilot.press("tab")
        await pilot.pause(0.3)
        assert app.focused is second
        assert first.border_subtitle == "tab to answer"
        assert second.border_subtitle.startswith("↑↓ choose")
        # Scrolled away by the keyboard, a question gives the keys back to the text.
        await pilot.press("shift+tab")
        await pilot.pause(0.3)
        assert app.focused is first
        for _ in range(4):
            await pilot.press("pagedown")
        await pilot.pause(0.3)
        assert app.focused is body
        assert first.border_subtitle == "tab to answer"
