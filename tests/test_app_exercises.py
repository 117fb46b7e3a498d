"""The exercise screen from inside the tutor: X opens it over the lesson, esc comes back."""
from __future__ import annotations

from test_app_support import data_dir, lessons_dir, started  # noqa: F401

from tutor.ui.app import TutorApp
from tutor.ui.exercises_screen import ExercisesScreen


async def test_x_opens_the_exercises_and_esc_returns_to_the_lesson(lessons_dir, data_dir):
    app = TutorApp(lessons_dir=lessons_dir, lab_paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        lesson = app.current_lesson
        await pilot.press("X")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ExercisesScreen)
        assert (data_dir / "exercises" / "01_rnn_step.py").is_file()
        await pilot.press("n", "o")            # the screen's own keys, not the tutor's
        await pilot.pause(0.2)
        assert isinstance(app.screen, ExercisesScreen) and app.current_lesson is lesson
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is app.main_screen and app.current_lesson is lesson
