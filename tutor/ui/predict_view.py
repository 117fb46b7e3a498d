"""A prediction checkpoint: commit to an outcome, the lab runs the experiment, the run grades it.

The learner picks an option (arrows and enter, as in any checkpoint). That posts `Predicted`; the
app asks the lab's session to run the checkpoint's experiment and hands back the `ExperimentRun`,
which this view only reads: a timer shows the run's progress and, once the session has folded
the measurement from the run's own updates, the view grades the prediction against the option
ranges (`Checkpoint.outcome`), shows the measured value and the explanation, and posts `Graded`
for the app to save. The run happens whether or not the lab is on screen.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static

from tutor.lab.measures import MEASURES, ExperimentRun, describe_value
from tutor.lessons import Checkpoint

from .checkpoint import OPEN_MARK, RIGHT_MARK, WRONG_MARK, CheckpointView, _OptionLine

CHOSEN_MARK = "◆"
WATCH_S = 0.25


class PredictView(CheckpointView):
    """One ```predict checkpoint. `answer` is the saved record (Progress.answer) or None."""

    DEFAULT_CSS = """
    PredictView > .cp-experiment { color: $text-muted; margin-bottom: 1; }
    PredictView > .cp-option.-chosen { color: $text-accent; }
    """

    class Predicted(Message):
        """The learner committed to a prediction; the experiment should run."""

        def __init__(self, view: "PredictView", choice: int) -> None:
            super().__init__()
            self.view = view
            self.choice = choice

    class Graded(Message):
        """The experiment's measurement graded the prediction."""

        def __init__(self, view: "PredictView", choice: int, correct: bool,
                     measured: float) -> None:
            super().__init__()
            self.view = view
            self.choice = choice
            self.correct = correct
            self.measured = measured

    def __init__(self, checkpoint: Checkpoint, number: int, total: int,
                 answer: dict | None = None, **kwargs) -> None:
        super().__init__(checkpoint, number, total, answer, **kwargs)
        self.solved = False
        self.measured: float | None = None
        self.run: ExperimentRun | None = None
        self.problem: str | None = None
        if self.chosen is not None and answer.get("measured") is not None:
            self.measured = answer["measured"]
            self.solved = True

    def compose(self) -> ComposeResult:
        yield Static(Text(self.checkpoint.ask), classes="cp-ask")
        yield Static(Text(self._experiment_text()), classes="cp-experiment")
        for i, option in enumerate(self.checkpoint.options):
            yield _OptionLine(i, option.text)
        yield Static("", classes="cp-feedback", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(WATCH_S, self._watch_run)

    # ---- the app's side: the run to follow -------------------------------------------------

    def follow(self, run: ExperimentRun) -> None:
        self.run, self.problem = run, None
        self._refresh_view()

    def cannot_run(self, why: str) -> None:
        self.run, self.problem = None, why
        self._refresh_view()

    # ---- the learner's side ------------------------------------------------------------------

    def choose(self, index: int) -> None:
        self.cursor = index
        if self.measured is not None:
            return                       # graded: the prediction stands
        if self.run is not None and self.run.state == "running":
            self.problem = None if index == self.chosen else \
                "the prediction is locked while its experiment runs"
            self._refresh_view()
            return
        self.chosen, self.problem = index, None
        self._refresh_view()
        self.post_message(self.Predicted(self, index))

    def _watch_run(self) -> None:
        run = self.run
        if run is None:
            return
        state = run.state
        if state == "measured":
            self.run = None
            self.measured = run.measurement.value
            self.solved = True
            correct = self.checkpoint.outcome(self.measured) == self.chosen
            self.post_message(self.Graded(self, self.chosen, correct, self.measured))
        elif state != "running":
            self.run = None
            reason = run.measurement.failed or run.interrupted
            self.problem = f"not measured: {reason}. Press enter to run the experiment again."
        self._refresh_view()

    # ---- display ---------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """"unanswered", "predicted" (committed, not graded), "running" or "solved"."""
        if self.measured is not None:
            return "solved"
        if self.run is not None:
            return "running"
        return "unanswered" if self.chosen is None else "predicted"

    def _experiment_text(self) -> str:
        experiment = self.checkpoint.experiment
        measure = MEASURES[experiment.measure]
        changes = " ".join(f"{k}={v}" for k, v in experiment.changes)
        run = f"the lesson's preset with {changes}" if changes else "the lesson's preset"
        return f"Experiment: {run}, from step 0. Measured: {measure.label} {_when(experiment)}."

    def _refresh_view(self) -> None:
        if not self.children:
            return
        focused = self.is_attached and self.screen.focused is self
        outcome = None if self.measured is None else self.checkpoint.outcome(self.measured)
        for line in self.query(_OptionLine):
            i = line.index
            if i == outcome:
                mark = RIGHT_MARK
            elif i == self.chosen:
                mark = WRONG_MARK if outcome is not None else CHOSEN_MARK
            else:
                mark = OPEN_MARK
            pointer = "›" if i == self.cursor and focused else " "
            line.update(Text(f"{pointer} {mark} {line.text}"))
            line.set_class(i == self.cursor, "-cursor")
            line.set_class(i == outcome, "-right")
            line.set_class(outcome is not None and i == self.chosen != outcome, "-wrong")
            line.set_class(outcome is None and i == self.chosen, "-chosen")

        feedback = self.query_one(".cp-feedback", Static)
        state = self.state
        text, style = self._feedback(state, outcome)
        if text:
            feedback.update(Text(text))
            feedback.set_classes(f"cp-feedback -shown {style}")
        else:
            feedback.set_classes("cp-feedback")
        self.set_class(state == "solved", "-solved")
        right = outcome is not None and outcome == self.chosen
        status = {"solved": f"{RIGHT_MARK} predicted" if right
                  else f"{WRONG_MARK} measured otherwise",
                  "running": "running…", "predicted": "not yet run",
                  "unanswered": "predict"}[state]
        self.border_title = f"Checkpoint {self.number}/{self.total} · {status}"
        if not focused:
            self.border_subtitle = "tab to predict" if state == "unanswered" else "tab to focus"
        elif state in ("unanswered", "predicted"):
            self.border_subtitle = "↑↓ choose · enter predict and run · tab leave"
        else:
            self.border_subtitle = ("graded" if state == "solved" else "running") + " · tab leave"

    def _feedback(self, state: str, outcome: int | None) -> tuple[str, str]:
        options = self.checkpoint.options
        experiment = self.checkpoint.experiment
        if state == "unanswered":
            return (self.problem or ""), "-wrong" if self.problem else ""
        chosen = options[self.chosen].text
        if state == "solved":
            measure = MEASURES[experiment.measure]
            value = describe_value(measure, self.measured)
            lines = [f"Measured on the run: {measure.label} {_when(experiment)}: {value}."]
            if outcome == self.chosen:
                lines.append(f"{RIGHT_MARK} Your prediction was right.")
            else:
                lines.append(f"{WRONG_MARK} You predicted “{_bare(chosen)}”; the run showed "
                             f"“{_bare(options[outcome].text)}”.")
            lines.append(options[outcome].feedback)
            if outcome != self.chosen:
                lines.append(f"On your prediction: {options[self.chosen].feedback}")
            lines.append("The lab goes on with the experiment's run: r there watches it again "
                         "from step 0" + (", 0 returns to the preset." if experiment.changes
                                          else "."))
            return "\n\n".join(lines), "-right" if outcome == self.chosen else "-wrong"
        if state == "running":
            m = self.run.measurement
            where = " (v shows the lab)" if getattr(self.app, "narrow", False) else ""
            progress = f"step {m.seen} of {m.steps_needed}"
            text = (f"You predicted “{_bare(chosen)}”. The lab is running the experiment{where}: "
                    f"{progress}.")
            if self.problem:
                text += f"\n{self.problem}"
            return text, ""
        return (self.problem or
                f"You predicted “{_bare(chosen)}”. Press enter to run the experiment."), \
            "-wrong" if self.problem else ""


def _bare(text: str) -> str:
    """An option quoted inside a sentence, without its own full stop."""
    return text[:-1] if text.endswith(".") else text


def _when(experiment) -> str:
    if experiment.measure in ("max_grad_norm", "clipped_share"):
        return f"over steps 1 to {experiment.step}"
    return f"at step {experiment.step}"


class PredictionHandlers:
    """The app's part: run a prediction's experiment in the lab, save the prediction and its
    graded result. Mixed into TutorApp, which provides lesson_pane, lab_pane, progress, _save and
    _completion_changed."""

    def on_predict_view_predicted(self, event: PredictView.Predicted) -> None:
        lesson = self.lesson_pane.lesson if self.lesson_pane else None
        if lesson is None or event.view.checkpoint not in lesson.checkpoints:
            return
        checkpoint = event.view.checkpoint
        self.progress.record_prediction(lesson.slug, checkpoint.id, event.choice)
        self._save()
        lab = self.lab_pane
        if lab is None:
            event.view.cannot_run("the lab is not ready yet; press enter again in a moment")
            return
        experiment = checkpoint.experiment
        event.view.follow(lab.session.run_experiment(experiment.settings, experiment.measure,
                                                     experiment.step))

    def on_predict_view_graded(self, event: PredictView.Graded) -> None:
        lesson = self.lesson_pane.lesson if self.lesson_pane else None
        if lesson is None or event.view.checkpoint not in lesson.checkpoints:
            return
        self.progress.record_prediction(lesson.slug, event.view.checkpoint.id, event.choice,
                                        event.measured, event.correct)
        self._completion_changed(lesson)
        self._save()
