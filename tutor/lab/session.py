"""The lab session: the one owner of a lab's state, with no Textual.

It holds the settings and the lesson's preset, compare mode, pause, pace, the clipping threshold
to come back to, and the generation; turns verbs (a key press, a settings panel, a lesson) into
typed commands for the training process, deciding once whether a change is live or a fresh run;
and folds the updates that come back into a bounded `LabHistory`. A view renders it and calls
its verbs; `on_change` is called after every verb (updates are the view's to poll, at the rate
it draws).

Every run has an end (see `ending`): at its step budget, or once its loss has levelled off, the
session sets `ended` and the training process waits; space (`toggle_pause`) or a single step
trains on, for another budget. While the view says the lab is off screen for longer than
OFF_SCREEN_S, training is held, and it picks up when the lab is shown again.
"""
from __future__ import annotations

import time
from typing import Callable

from tutor.engine.settings import (MAX_CLIP, MAX_LR, MAX_SEED, MAX_SEQ_LEN, TASK_MIN_LEN,
                                   Settings)

from .autocomplete import offers_autocomplete
from .ending import DEFAULT_BUDGET, MIN_WINDOW, PlateauTest
from .history import LabHistory
from .measures import ExperimentRun, Measurement
from .own_cell import OwnCell
from .protocol import (CellFailed, Error, Limit, Live, Pace, Pause, Predict, Prediction, Start,
                       Step, Update)
from .worker import PACES, TrainerProcess

COMPARE_CELLS = ("rnn", "lstm", "gru")
SEQ_LADDER = (2, 3, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000)
DEFAULT_CLIP = 1.0
SEND_HZ = 10.0            # the session reads the pipe this often (cheap: no drawing)
OFF_SCREEN_S = 30.0       # training is held once the lab has been off screen this long


class LabSession:
    """A lab's state and verbs. `start()` launches the training process; until then verbs only
    change the state (and single steps are remembered)."""

    def __init__(self, preset: Settings, *, paused: bool = False, max_steps: int | None = None,
                 send_hz: float = SEND_HZ, budget: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.preset = preset.validated()
        self.max_steps = max_steps
        self.budget = self._budget(budget)
        self.limit = self.budget       # the step this stretch of training ends at
        self.ended: str | None = None  # "budget" or "plateau" once the run stopped by itself
        self.plateau: dict[str, PlateauTest] = {}
        self.clock = clock
        self.held = False              # training held while the lab is off screen
        self._off_screen_since: float | None = None
        self.settings = self.preset
        self.compare = False
        self.paused = paused
        self.pace_index = 0
        self.clip_threshold = _threshold_of(self.preset)
        self.generation = 1
        self.notice = ""               # a one-line message about the last verb, or an error
        self.history = LabHistory()
        self.history.paused = paused
        self.history.reset(self.generation, self.runs())
        self.trainer = TrainerProcess(max_steps=max_steps, send_hz=send_hz)
        self.started = False
        self.closed = False
        self._early_steps = 0
        self.experiment: ExperimentRun | None = None     # a prediction checkpoint's run
        self.prediction: Prediction | None = None   # the newest autocomplete answer
        self._request = 0
        # The learner's own cell (`use_own_cell`), trained in a limited process of its own; the
        # line saying why it stopped, once it has.
        self.own: OwnCell | None = None
        self.own_failed: str | None = None
        self.on_change: Callable[[], None] = lambda: None

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or, after a crash, restart) the training process on the current settings."""
        if self.closed:
            return
        self.started = True
        self.trainer.start(Start(self.generation, self.runs()), paused=self.paused or self.held,
                           pace=self.pace, limit=self.limit, own=self.own)
        for _ in range(self._early_steps):
            self.trainer.send(Step())
        self._early_steps = 0

    def close(self) -> None:
        """Stop the training process for good (idempotent)."""
        self.closed = True
        self.trainer.close()

    @property
    def pace(self) -> float | None:
        return PACES[self.pace_index]

    def runs(self, settings: Settings | None = None) -> dict[str, Settings]:
        settings = settings or self.settings
        if self.compare:
            return {cell: settings.replace(cell=cell) for cell in COMPARE_CELLS}
        return {"main": settings}

    # ---- updates ----------------------------------------------------------------------------------
    def poll(self) -> bool:
        """Fold in what the training process sent; True when anything changed."""
        changed = False
        for message in self.trainer.poll():
            if isinstance(message, CellFailed):
                if message.generation == self.generation and self.own is not None:
                    self.own_failed = self.notice = message.message
                    self._end_experiment(message.message)
                    changed = True
            elif isinstance(message, Error):
                if self.own is not None and self.own_failed is None:
                    self.own_failed = message.message
                self.notice = message.message
                self._end_experiment(message.message)
                changed = True
            elif isinstance(message, Update):
                if self.experiment is not None:
                    self.experiment.absorb(message)
                if self.history.absorb(message):
                    changed = True
                    for name, run in message.runs.items():
                        test = self.plateau.get(name)
                        if test is None:
                            test = self.plateau[name] = PlateauTest(run.baseline.loss)
                        for loss in run.loss:
                            test.add(loss)
            elif isinstance(message, Prediction) and message.generation == self.generation:
                self.prediction = message
                changed = True
        if self.ended is None and self._check_end():
            changed = True
        return changed

    # ---- autocomplete -----------------------------------------------------------------------------
    @property
    def autocomplete_refusal(self) -> str | None:
        """Why autocomplete is not offered here (one line), or None when it is."""
        task = self.settings.task
        if not offers_autocomplete(task):
            return f"autocomplete needs the language task; this lab trains {task}"
        return None

    def ask(self, text: str) -> bool:
        """Ask the live runs for the next word after `text`; the answer arrives in `poll` as
        `prediction`. False, with a notice, when autocomplete is not offered or nothing trains."""
        refusal = self.autocomplete_refusal
        if refusal is None and not (self.started and self.trainer.alive):
            refusal = "the training process is not running; press r to restart it"
        if refusal is not None:
            self._tell(refusal)
            return False
        self._request += 1
        self.trainer.send(Predict(self.generation, self._request, text))
        return True


    # ---- ending by itself, and being off screen -----------------------------------------------------
    @property
    def step(self) -> int:
        return max((r.step for r in self.history.runs.values()), default=0)

    def _check_end(self) -> bool:
        """End the run when it reached its budget or every live run levelled off. With an
        explicit step count (`rnn-tutor lab --steps N`) the run goes exactly that far instead."""
        if self.max_steps is not None:
            return False
        runs = [r for r in self.history.runs.values() if not r.diverged_at]
        if not runs:
            return False
        if all(r.step >= self.limit for r in runs):
            self.ended = "budget"
        elif all(self.plateau.get(r.name) is not None and self.plateau[r.name].plateaued
                 for r in runs):
            self.ended = "plateau"
            self.trainer.send(Limit(self.step))    # it may be a step or two further already
        else:
            return False
        self.on_change()
        return True

    def _train_on(self) -> None:
        """After an end: another budget of steps, and a fresh look for a plateau from here."""
        self.ended = None
        self.limit = self.step + self.budget
        self.plateau = {name: PlateauTest(test.baseline_loss, earliest=MIN_WINDOW)
                        for name, test in self.plateau.items()}
        self.trainer.send(Limit(self.limit))

    def _restart_ending(self) -> None:
        self.ended = None
        self.limit = self.budget
        self.plateau = {}

    def set_on_screen(self, on_screen: bool) -> None:
        """The view says whether the lab can be seen (called often; cheap)."""
        now = self.clock()
        if on_screen:
            self._off_screen_since = None
            if self.held:
                self.held = False
                self.trainer.send(Pause(self.paused))
                self.on_change()
        elif self._off_screen_since is None:
            self._off_screen_since = now
        elif self.experiment_running:
            return                     # a prediction's run goes on while the learner reads
        elif not self.held and now - self._off_screen_since >= OFF_SCREEN_S:
            self.held = True
            self.trainer.send(Pause(True))
            self.on_change()

    # ---- the one place a change becomes live or a fresh run -----------------------------------------
    def _apply(self, settings: Settings, label: str | None = None, *,
               fresh: bool | None = None) -> None:
        """Take new settings. Fresh unless only live fields changed (or `fresh` says so); a fresh
        run's `label` names the previous run, whose loss stays on the chart in grey."""
        old_runs, old = self.runs(), self.settings
        self._end_experiment("the lab's settings changed during the experiment")
        self.settings = settings.validated()
        new_runs = self.runs()
        if fresh is None:
            fresh = set(old_runs) != set(new_runs) or old.needs_restart(self.settings)
        self.notice = ""
        if self.own is not None and (self.compare or self.settings.cell != self.own.kind
                                     or (fresh and self.own_failed)):
            self.own = None                  # another cell, or after a failure: the engine's
            self.own_failed = None
        if fresh:
            self.generation += 1
            self.history.reset(self.generation, new_runs, label)
            self._restart_ending()
            if self.started and not self.closed:
                if self.trainer.own != self.own:
                    self.start()             # the learner's code gets a process of its own
                elif self.trainer.alive:
                    self.trainer.send(Limit(self.limit))
                    self.trainer.send(Start(self.generation, new_runs))
                else:
                    self.start()             # the process died: r brings it back
        elif self.started:
            self.trainer.send(Live(self.generation, new_runs))
        self.on_change()

    def _tell(self, message: str) -> None:
        self.notice = message
        self.on_change()

    # ---- verbs ------------------------------------------------------------------------------------
    def _budget(self, budget: int | None) -> int:
        """An explicit step count (`rnn-tutor lab --steps N`) is the budget; else the lesson's."""
        return self.max_steps or budget or DEFAULT_BUDGET

    def load_preset(self, settings: Settings, budget: int | None = None) -> None:
        """Start a fresh run from a lesson's preset (and its step budget; None: the default)
        and remember it for `restore_preset`."""
        self.preset = settings.validated()
        self.budget = self._budget(budget)
        self.compare = False
        self.own = self.own_failed = None
        self.clip_threshold = _threshold_of(self.preset)
        self._apply(self.preset, fresh=True)

    def run_experiment(self, settings: Settings, measure: str, step: int) -> ExperimentRun:
        """A prediction's experiment: a fresh run of `settings` (training resumes if paused),
        whose own updates fold the declared measurement. Any other verb that changes the run
        ends it, unmeasured. The experiment is the engine's cell's."""
        self.compare = False
        self.own = self.own_failed = None
        self._apply(settings, difference(self.settings, settings), fresh=True)
        self.experiment = ExperimentRun(self.generation, Measurement(measure, step))
        if self.paused:
            self.toggle_pause()
        if self.held:                  # started with the lab off screen: it runs all the same
            self.held = False
            self.trainer.send(Pause(self.paused))
        return self.experiment

    @property
    def experiment_running(self) -> bool:
        return self.experiment is not None and self.experiment.state == "running"

    def _end_experiment(self, why: str) -> None:
        if self.experiment is not None:
            self.experiment.interrupt(why)
            self.experiment = None

    def use_own_cell(self, own: OwnCell) -> None:
        """Train the learner's own cell (`own.kind`, from their exercise file) from fresh
        weights, in a training process of its own with a memory and a per-step time limit."""
        label = "compare" if self.compare else self.settings.cell
        self.compare = False
        self.own, self.own_failed = own, None
        self._apply(self.settings.replace(cell=own.kind), label, fresh=True)

    def stop_own_cell(self) -> None:
        """Back to the engine's cell, in a fresh process."""
        if self.own is None:
            return
        label = f"your {self.own.kind}"
        self.own = self.own_failed = None
        self._apply(self.settings, label, fresh=True)

    def restore_preset(self) -> None:
        self.load_preset(self.preset, self.budget)

    def toggle_pause(self) -> None:
        """Pause or resume; after the run ended by itself, train on."""
        if self.ended:
            self._train_on()
            self.paused = False
        else:
            self.paused = not self.paused
        self.history.paused = self.paused
        self.trainer.send(Pause(self.paused or self.held))
        self.on_change()

    def reset_run(self) -> None:
        """A fresh run with the same settings and seed (also restarts a dead process); after
        the learner's own cell failed, with the engine's cell."""
        label = f"your {self.own.kind}" if self.own_failed else None
        self._apply(self.settings, label, fresh=True)

    def reseed(self) -> None:
        s = self.settings
        self._apply(s.replace(seed=(s.seed + 1) % (MAX_SEED + 1)), f"seed {s.seed}", fresh=True)

    def set_cell(self, name: str) -> None:
        """The engine's cell `name` (also from the learner's own cell of that kind)."""
        before = ("compare" if self.compare else f"your {self.own.kind}" if self.own
                  else self.settings.cell)
        self.compare = False
        self.own = self.own_failed = None
        self._apply(self.settings.replace(cell=name), before, fresh=True)

    def toggle_compare(self) -> None:
        self.compare = not self.compare
        self._apply(self.settings, fresh=True)

    def toggle_clip(self) -> None:
        s = self.settings
        if s.clipping:
            self.clip_threshold = s.clip
            self._apply(s.replace(clip=0.0))
        else:
            self._apply(s.replace(clip=self.clip_threshold))

    def scale_clip(self, factor: float) -> None:
        """Change the clipping threshold (turning clipping on); live, from the next step."""
        s = self.settings
        base = s.clip if s.clipping else self.clip_threshold
        self.clip_threshold = _round3(min(MAX_CLIP, max(1e-3, base * factor)))
        self._apply(s.replace(clip=self.clip_threshold))

    def change_seq_len(self, up: bool) -> None:
        s = self.settings
        T = s.seq_len
        if up:
            options = [t for t in SEQ_LADDER if T < t <= MAX_SEQ_LEN]
        else:
            options = [t for t in SEQ_LADDER if TASK_MIN_LEN[s.task] <= t < T][::-1]
        if not options:
            self._tell(f"T is already {T}, the {'longest' if up else 'shortest'} on the ladder")
            return
        self._apply(s.replace(seq_len=options[0]), f"T={T}")

    def scale_lr(self, factor: float) -> None:
        s = self.settings
        lr = _round3(min(MAX_LR, max(1e-6, s.lr * factor)))
        if lr == s.lr:
            self._tell(f"the learning rate is already {lr:g}, at its limit")
            return
        self._apply(s.replace(lr=lr), f"lr {s.lr:g}")

    def apply_settings(self, settings: Settings) -> None:
        """Settings from the panel or elsewhere: live or fresh as they need."""
        settings = settings.validated()
        if settings.clipping:
            self.clip_threshold = settings.clip
        self._apply(settings, difference(self.settings, settings))

    def step_once(self) -> None:
        """One training step; pauses first if training was running."""
        if self.ended:
            self._train_on()
        if not self.paused:
            self.toggle_pause()
        if self.started:
            self.trainer.send(Step())
        else:
            self._early_steps += 1          # the process starts after the first frame
        self.on_change()

    def cycle_pace(self) -> None:
        self.pace_index = (self.pace_index + 1) % len(PACES)
        self.trainer.send(Pace(self.pace))
        self.on_change()


def _threshold_of(settings: Settings) -> float:
    return settings.clip if settings.clipping else DEFAULT_CLIP


def _round3(x: float) -> float:
    return float(f"{x:.3g}")


def difference(old: Settings, new: Settings) -> str:
    """A short label for what the previous run had, e.g. "rnn" or "T=50"."""
    if old.cell != new.cell:
        return old.cell
    labels = {"seq_len": "T={}", "lr": "lr {:g}", "seed": "seed {}", "hidden": "H={}",
              "task": "{}", "optimizer": "{}"}
    for name, fmt in labels.items():
        if getattr(old, name) != getattr(new, name):
            return fmt.format(getattr(old, name))
    return "before"
