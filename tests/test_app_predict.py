"""A prediction checkpoint through the running app: predict, the lab runs the experiment (also
while the lab is hidden at 80×24), the run's own numbers grade it, and progress keeps it."""
from __future__ import annotations

import math

from textual.widgets import Static

from tutor.ui.app import TutorApp
from tutor.ui.predict_view import PredictView

from test_app_support import data_dir, saved_progress, started, wait_for  # noqa: F401


def feedback(view: PredictView) -> str:
    box = view.query_one(".cp-feedback", Static)
    return str(box.render()) if box.has_class("-shown") else ""


async def focus_prediction(pilot, checkpoint_id: str) -> PredictView:
    """Tab through the lesson's questions, as a learner would, until the prediction has focus."""
    app = pilot.app
    view = app.lesson_pane.query_one(f"#checkpoint-{checkpoint_id}", PredictView)
    for _ in range(6):
        if app.focused is view:
            break
        await pilot.press("tab")
        await pilot.pause(0.3)
    assert app.focused is view
    return view


async def test_predict_run_and_graded_explanation_on_the_gru_lesson(data_dir):
    app = TutorApp(lesson="gru", lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert app.showing == "lesson"                    # the lab is hidden at 80 columns
        lab = app.lab_pane
        generation = lab.session.generation
        view = await focus_prediction(pilot, "gru-start")
        assert view.state == "unanswered" and view.border_subtitle.startswith("↑↓ choose")
        assert "Experiment: the lesson's preset" in str(view.query_one(".cp-experiment").render())

        await pilot.press("down", "enter")                # "In between, like the LSTM's": wrong
        await pilot.pause()
        assert view.chosen == 1 and view.state in ("running", "solved")
        assert lab.session.generation == generation + 1 and not lab.session.paused
        record = saved_progress(data_dir)["answers"]["gru"]["gru-start"]
        assert record["choice"] == 1                      # saved at once (a step-0 grade is quick)

        await wait_for(pilot, lambda: view.state == "solved", 30, "the experiment's grade")
        await pilot.pause()                               # the app saves on the Graded message
        # The graded number is the one the learner's own run shows on its ‖∂L/∂h_t‖ chart.
        g = lab.history.runs["main"].first["grad_norm_per_step"]
        assert math.isclose(view.measured, float(g[0] / g[-1]), rel_tol=1e-6)
        assert view.measured < 1e-6 and app.showing == "lesson"
        text = feedback(view)
        assert f"Measured on the run: ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ at step 0: {view.measured:.1e}." \
            in text
        assert "You predicted “In between, like the LSTM's: 10⁻⁶ to 10⁻²”" in text
        assert "halves the direct path" in text            # the explanation of the outcome
        assert "On your prediction: The LSTM starts" in text
        assert text.endswith("r there watches it again from step 0.")   # no run: changes
        assert "measured otherwise" in view.border_title
        record = saved_progress(data_dir)["answers"]["gru"]["gru-start"]
        assert record["choice"] == 1 and record["solved"] and not record["correct"]
        assert record["measured"] == view.measured

        await pilot.press("up", "enter")                  # graded: the prediction stands
        await pilot.pause()
        assert view.chosen == 1 and saved_progress(data_dir)["answers"]["gru"]["gru-start"] \
            == record

    again = TutorApp(lesson="gru", lab_paused=True)        # reopened: the grade is still shown
    async with again.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        view = again.lesson_pane.query_one("#checkpoint-gru-start", PredictView)
        assert view.state == "solved" and view.measured == record["measured"]
        assert "Measured on the run" in feedback(view)


async def test_a_run_changed_mid_experiment_is_not_graded_and_can_be_rerun(data_dir):
    app = TutorApp(lesson="forget-bias", lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        view = await focus_prediction(pilot, "bias3-accuracy")
        await pilot.press("down", "down", "enter")         # "Learned: 90% or more"
        await pilot.pause()
        lab = app.lab_pane
        assert lab.settings.forget_bias == 3.0 and view.state == "running"
        assert "step" in feedback(view) and "of 300" in feedback(view)
        assert saved_progress(data_dir)["answers"]["forget-bias"]["bias3-accuracy"] == {
            "choice": 2, "correct": False, "tries": 1, "solved": False}   # committed, ungraded
        lab.session.reseed()                               # the learner presses d mid-run
        await wait_for(pilot, lambda: view.state == "predicted", 10, "the interruption")
        assert "not measured: the lab's settings changed during the experiment" in feedback(view)
        assert not saved_progress(data_dir)["answers"]["forget-bias"]["bias3-accuracy"]["solved"]
        await pilot.press("enter")                         # run it again, same prediction
        await pilot.pause()
        assert view.state == "running" and lab.settings.seed == app.current_lesson.settings.seed


async def test_a_prediction_committed_before_quitting_waits_for_its_run(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "progress.json").write_text(
        '{"version": 1, "answers": {"gru": {"gru-start": '
        '{"choice": 0, "correct": false, "tries": 1, "solved": false}}}}', encoding="utf-8")
    app = TutorApp(lesson="gru", lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        view = app.lesson_pane.query_one("#checkpoint-gru-start", PredictView)
        assert view.state == "predicted" and view.chosen == 0
        assert "You predicted “It vanishes like the plain RNN's: below 10⁻⁶”. Press enter to run " \
            "the experiment." in feedback(view)
        assert "not yet run" in view.border_title
        await focus_prediction(pilot, "gru-start")
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.state == "solved", 30, "the experiment's grade")
        await pilot.pause()
        assert "Your prediction was right" in feedback(view)
        record = saved_progress(data_dir)["answers"]["gru"]["gru-start"]
        assert record["correct"] and record["solved"] and record["measured"] < 1e-6
        assert app.progress.answer("gru", "gru-start") == record
