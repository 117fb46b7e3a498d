"""The lab: live charts of a recurrent cell training in a worker process, driven from the keyboard.

`LabPane` is the widget (the tutor app mounts it beside a lesson); `LAB_BINDINGS` with the
`LabActions` mixin is the one key map both apps use; `LabApp` / `run_lab` host the pane alone for
`rnn-tutor lab`. Training runs in `tutor.engine.worker.TrainerProcess`, never on the event loop.
"""
from __future__ import annotations

import math
import os
import sys
import time
from functools import partial
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer, Static

from tutor.engine import Settings, SettingsError
from tutor.engine.settings import MAX_CLIP, MAX_LR, MAX_SEED, MAX_SEQ_LEN
from tutor.engine.worker import PACES, TrainerProcess

from .lab_keys import LAB_BINDINGS, LabActions  # noqa: F401  (re-exported)
from .session import start_session, tune_interpreter
from .charts import CHART_TYPES, LabChart, LabHistory, RunHistory
from .settings_screen import SettingsScreen

COMPARE_CELLS = ("rnn", "lstm", "gru")
SEQ_LADDER = (2, 3, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000)
DEFAULT_CLIP = 1.0
POLL_HZ = 10.0            # how often the pane reads the worker's pipe (cheap; no drawing)
SAMPLE_EVERY_S = 1.5      # a sample that changed 4 times a second could not be read
MIN_WIDTH, MIN_HEIGHT = 30, 10


class LabPane(Widget):
    """Charts, a sample and a status line for a live training run (or three, in compare mode)."""

    DEFAULT_CSS = (Path(__file__).with_name("lab.tcss")).read_text(encoding="utf-8")

    def __init__(self, settings: Settings, fps: float = 4.0, max_steps: int | None = None, *,
                 paused: bool = False, name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._preset = settings.validated()
        self._settings = self._preset
        self.fps = fps if math.isfinite(fps) and fps > 0 else 4.0
        self.max_steps = max_steps
        self._paused = paused
        self._pace_index = 0
        self._compare = False
        self._clip_threshold = self._preset.clip if self._preset.clipping else DEFAULT_CLIP
        self._chart_page = 0
        self._visible_count = len(CHART_TYPES)
        self._sample_at = 0.0
        self._sample_key = None
        self._status_key = None
        self._notice = ""
        self._early_steps = 0
        self._shut_down = False
        self.history = LabHistory()
        self.history.reset(1, self._runs_for(self._settings))
        self.history.paused = paused
        self.trainer: TrainerProcess | None = None
        self.charts: list[LabChart] = [cls(self.history, id=f"chart-{i}")
                                       for i, cls in enumerate(CHART_TYPES)]
        self.redraws = 0      # frames that repainted at least one chart (benches read it)

    # ---- composition and timers ----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Container(id="lab-charts"):
            yield from self.charts
        yield Static("", id="lab-sample")
        yield Static("", id="lab-status")
        yield Static("the lab needs at least 30×10 cells; enlarge the terminal",
                     id="lab-too-small")

    def on_mount(self) -> None:
        # Lay out now too, not only on resize: under load the first Resize can come before the
        # pane is ready and the grid would stay at its default 2×1.
        self.call_after_refresh(self._layout_charts)
        self._update_status()
        # Start the worker once the first frame is out: a learner sees the screen sooner.
        self.call_after_refresh(self._start_trainer)
        self.set_interval(1.0 / POLL_HZ, self._poll)
        # One timer slot per chart: each builds at most one chart, so a key never waits behind
        # several plotext builds in a row; every chart still redraws at up to `fps`.
        self._slot = 0
        self.set_interval(1.0 / (self.fps * len(self.charts)), self._tick)

    def _start_trainer(self) -> None:
        if self.trainer is not None or self._shut_down:
            return
        self.trainer = TrainerProcess(self._runs_for(self._settings), paused=self._paused,
                                      pace=PACES[self._pace_index], max_steps=self.max_steps,
                                      send_hz=POLL_HZ)
        self.trainer.start()
        self.history.reset(self.trainer.generation, self.trainer.runs)
        for _ in range(self._early_steps):
            self.trainer.step_once()
        self._early_steps = 0

    def on_unmount(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker process for good (idempotent); the pane then no longer trains."""
        self._shut_down = True
        if self.trainer is not None:
            self.trainer.close()

    def on_resize(self) -> None:
        self._layout_charts()
        self._update_status()

    # ---- per-tick work ---------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.trainer is None:
            return
        update = self.trainer.poll()
        if update is None:
            return
        if update.error:
            self._notice = update.error
        if update.generation == self.history.generation:
            self.history.absorb(update)

    def _tick(self) -> None:
        slot, self._slot = self._slot, (self._slot + 1) % len(self.charts)
        if slot == 0:
            self._update_status()
            self._update_sample()
        chart = self.charts[slot]
        if chart.display and chart.redraw():
            self.redraws += 1

    # ---- layout ---------------------------------------------------------------------------------
    def _layout_charts(self) -> None:
        width, height = self.size
        if not self.is_mounted or (width, height) == (0, 0):
            return                      # not laid out yet; the resize that follows does it
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        if small:
            return
        charts_height = height - 5          # sample (with its rule) and status
        cols = 2 if width >= 76 else 1
        rows = 2 if charts_height >= (28 if cols == 2 else 20) else 1
        self._visible_count = min(len(self.charts), cols * rows)
        grid = self.query_one("#lab-charts")
        grid.styles.grid_size_columns = cols
        grid.styles.grid_size_rows = rows
        self._show_page()

    def _show_page(self) -> None:
        n = len(self.charts)
        shown = {(self._chart_page + i) % n for i in range(self._visible_count)}
        for i, chart in enumerate(self.charts):
            chart.display = i in shown

    @property
    def visible_charts(self) -> list[LabChart]:
        return [c for c in self.charts if c.display]

    # ---- runs -----------------------------------------------------------------------------------
    def _runs_for(self, settings: Settings) -> dict[str, Settings]:
        if self._compare:
            return {cell: settings.replace(cell=cell) for cell in COMPARE_CELLS}
        return {"main": settings}

    def _apply(self, settings: Settings, change: str | None = None,
               fresh: bool = False) -> None:
        """Take new settings: clipping applies live, anything else starts a fresh run. `change`
        labels the previous run's loss curve, kept grey for comparison."""
        self._settings = settings
        self._notice = ""
        runs = self._runs_for(settings)
        if self.trainer is None:
            self.history.reset(self.history.generation, runs)
        elif fresh:
            self.trainer.restart(runs)
        else:
            fresh = self.trainer.replace(runs)
        if self.trainer is not None and fresh:
            self.history.reset(self.trainer.generation, runs, change)
        self._update_status()

    def load_preset(self, settings: Settings) -> None:
        """Start a fresh run from a lesson's preset and remember it for `restore_preset`."""
        self._preset = settings.validated()
        self._compare = False
        self._clip_threshold = self._preset.clip if self._preset.clipping else DEFAULT_CLIP
        self._apply(self._preset, fresh=True)

    def restore_preset(self) -> None:
        self.load_preset(self._preset)

    def toggle_pause(self) -> None:
        self._paused = not self._paused
        if self.trainer is not None:
            self.trainer.set_paused(self._paused)
        self.history.paused = self._paused
        self._update_status()

    def reset_run(self) -> None:
        """A fresh run with the same settings and seed (also restarts a dead worker)."""
        self._apply(self._settings, fresh=True)

    def reseed(self) -> None:
        s = self._settings
        self._apply(s.replace(seed=(s.seed + 1) % (MAX_SEED + 1)), f"seed {s.seed}", fresh=True)

    def set_cell(self, name: str) -> None:
        before = "compare" if self._compare else self._settings.cell
        self._compare = False
        self._apply(self._settings.replace(cell=name), before, fresh=True)

    def toggle_clip(self) -> None:
        s = self._settings
        if s.clipping:
            self._clip_threshold = s.clip
            self._apply(s.replace(clip=0.0))
        else:
            self._apply(s.replace(clip=self._clip_threshold))

    def scale_clip(self, factor: float) -> None:
        """Change the clipping threshold (turning clipping on); live, from the next step."""
        s = self._settings
        base = s.clip if s.clipping else self._clip_threshold
        threshold = _round3(min(MAX_CLIP, max(1e-3, base * factor)))
        self._clip_threshold = threshold
        self._apply(s.replace(clip=threshold))

    def change_seq_len(self, up: bool) -> None:
        s = self._settings
        T = s.seq_len
        if up:
            options = [t for t in SEQ_LADDER if t > T and t <= MAX_SEQ_LEN]
        else:
            options = [t for t in SEQ_LADDER if t < T and (t >= 2 or s.task != "echo")][::-1]
        if not options:
            self._tell(f"T is already {T}, the {'longest' if up else 'shortest'} on the ladder")
            return
        self._apply(s.replace(seq_len=options[0]), f"T={T}", fresh=True)

    def scale_lr(self, factor: float) -> None:
        s = self._settings
        lr = _round3(min(MAX_LR, max(1e-6, s.lr * factor)))
        if lr == s.lr:
            self._tell(f"the learning rate is already {lr:g}, at its limit")
            return
        self._apply(s.replace(lr=lr), f"lr {s.lr:g}", fresh=True)

    def step_once(self) -> None:
        """One training step; pauses first if training was running."""
        if not self._paused:
            self.toggle_pause()
        if self.trainer is not None:
            self.trainer.step_once()
        else:
            self._early_steps += 1            # the worker starts after the first frame
        self._sample_at = 0.0

    def cycle_pace(self) -> None:
        self._pace_index = (self._pace_index + 1) % len(PACES)
        if self.trainer is not None:
            self.trainer.set_pace(PACES[self._pace_index])
        self._update_status()

    def toggle_compare(self) -> None:
        self._compare = not self._compare
        self._apply(self._settings, fresh=True)

    def next_chart(self) -> None:
        if self._visible_count >= len(self.charts):
            self._tell("all charts are on screen")
            return
        self._chart_page = (self._chart_page + self._visible_count) % len(self.charts)
        self._show_page()
        for chart in self.visible_charts:
            chart.redraw()

    def open_settings(self) -> None:
        def done(result: Settings | None) -> None:
            if result is None:
                return
            old = self._settings
            if result.clipping:
                self._clip_threshold = result.clip
            fresh = old.needs_restart(result)
            self._apply(result, _difference(old, result) if fresh else None, fresh=fresh)

        self.app.push_screen(SettingsScreen(self._settings), done)

    def apply_settings(self, settings: Settings) -> None:
        """Take settings from elsewhere (e.g. a command): live or fresh as appropriate."""
        old = self._settings
        settings = settings.validated()
        fresh = old.needs_restart(settings)
        self._apply(settings, _difference(old, settings) if fresh else None, fresh=fresh)

    # ---- state ----------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def preset(self) -> Settings:
        return self._preset

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def compare(self) -> bool:
        return self._compare

    @property
    def pace(self) -> float | None:
        return PACES[self._pace_index]

    @property
    def status_text(self) -> str:
        return "\n".join(line.plain for line in self._status_lines())

    def _tell(self, message: str) -> None:
        self._notice = message
        self._update_status()

    # ---- status and sample ----------------------------------------------------------------------
    def _status_lines(self, width: int | None = None) -> list[Text]:
        """Two logical lines (settings; progress). With a width, each wraps between fields onto
        further lines instead of being cut, so every field stays visible at 80 columns."""
        s = self._settings
        runs = list(self.history.runs.values())
        cell = "+".join(COMPARE_CELLS) if self._compare else s.cell
        clip = f"clip {s.clip_mode} {s.clip:g}" if s.clipping else "clip off"
        top = [f"{cell} {s.task}", f"T={s.seq_len}", f"H={s.hidden}", s.optimizer,
               f"lr={s.lr:g}", f"seed={s.seed}", f"reverse {'on' if s.reverse_input else 'off'}",
               clip]
        if s.radius is not None:
            top.append(f"radius={s.radius:g}")
        if s.init != "auto":
            top.append(f"init={s.init}")
        bottom: list[tuple[str, str]] = []
        flag = self._flag(runs)
        if flag:
            bottom.append(flag)
        pace = PACES[self._pace_index]
        pace_text = f"pace {pace:g}/s" if pace else "pace full"
        step = max((r.step for r in runs), default=0)
        if self._paused:
            bottom.append((pace_text, ""))   # `f` while paused still shows what it chose
        bottom.append((f"step {step}", ""))
        if not self._paused and step == 0:
            bottom.append(("starting…", ""))
        elif not self._paused and runs and not any(r.done or r.diverged_at for r in runs):
            rate = sum(r.steps_per_s for r in runs) / len(runs)
            bottom.append((f"{rate:.0f} steps/s" + (f" (pace {pace:g})" if pace else ""), ""))
        bottom += [(part, "") for part in _metric(runs)]
        if self._notice:
            bottom.append((self._notice, "italic"))
        return (_wrap([(part, "") for part in top], " ", width)
                + _wrap(bottom, "  ", width))

    def _flag(self, runs: list[RunHistory]) -> tuple[str, str] | None:
        diverged = [r for r in runs if r.diverged_at]
        if diverged and len(diverged) == len(runs):
            return f"diverged at step {diverged[0].diverged_at}, press r to reset", "bold reverse"
        if self._paused:
            return "paused", "bold reverse"
        if runs and all(r.done or r.diverged_at for r in runs):
            return f"stopped after {self.max_steps} steps", "bold"
        if diverged:
            names = ", ".join(f"{r.name} diverged at {r.diverged_at}" for r in diverged)
            return names, "bold"
        return None

    def _update_status(self) -> None:
        if not self.is_mounted:
            return
        width = self.size.width - 2 if self.size.width > 2 else None     # less the padding
        lines = self._status_lines(width)
        key = tuple(line.markup for line in lines)
        if key == self._status_key:
            return
        self._status_key = key
        status = self.query_one("#lab-status", Static)
        grew = status.styles.height is None or status.styles.height.value != len(lines)
        if grew:
            status.styles.height = len(lines)
        status.update(Text("\n").join(lines), layout=grew)

    def _update_sample(self) -> None:
        runs = [r for r in self.history.runs.values() if r.sample is not None]
        now = time.monotonic()
        generation = self.history.generation
        # Throttled so it can be read, but never across a reset: the first sample of a new run
        # replaces the old run's at once, or "(step 18817)" would sit beside "step 81".
        same_run = self._sample_key is not None and self._sample_key[0] == generation
        if not runs:
            key = (generation, "none")
        elif not self._paused and now - self._sample_at < SAMPLE_EVERY_S and same_run \
                and self._sample_key[1] != "none":
            return
        else:
            key = (generation,) + tuple((r.name, r.sample, r.step) for r in runs)
        if key == self._sample_key:
            return
        self._sample_key, self._sample_at = key, now
        text = Text(no_wrap=True, overflow="ellipsis")
        if not runs:
            text.append("sample: appears after the first step", "dim")
        else:
            sample = runs[0].sample
            text.append("input  ", "bold")
            text.append(sample.inputs)
            text.append("\ntarget ", "bold")
            text.append(sample.target)
            for run in runs:
                label = f"  {run.name}" if self._compare else "  prediction"
                text.append(label + " ", "bold")
                text.append(run.sample.prediction)
            text.append(f"   (step {runs[0].step})", "dim")
        self.query_one("#lab-sample", Static).update(text, layout=False)


def _metric(runs: list[RunHistory]) -> list[str]:
    """The loss (and accuracy) against what a constant guess scores."""
    if not runs:
        return []
    base = runs[0].baseline
    many = len(runs) > 1

    def name(r):
        return f"{r.name} " if many else ""

    if any(r.last_loss is None for r in runs):
        return [f"baseline loss {base.loss:.3g}"]
    parts = []
    if base.accuracy is not None:
        accs = " ".join(f"{name(r)}{r.last_accuracy:.0%}" for r in runs
                        if r.last_accuracy is not None)
        parts.append(f"acc {accs} (guess {base.accuracy:.0%})")
    losses = " ".join(f"{name(r)}{_fmt(r.last_loss)}" for r in runs)
    parts.append(f"loss {losses} (base {base.loss:.3g})")
    return parts


def _wrap(parts: list[tuple[str, str]], sep: str, width: int | None) -> list[Text]:
    """Styled fields joined by `sep`, wrapped between fields (never inside one) to `width`."""
    lines = [Text()]
    for text, style in parts:
        line = lines[-1]
        if line.cell_len and width is not None and line.cell_len + len(sep) + len(text) > width:
            line = Text()
            lines.append(line)
        if line.cell_len:
            line.append(sep)
        line.append(text, style)
    return lines


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "nan" if x is not None and math.isnan(x) else "inf"
    return f"{x:.3g}"


def _round3(x: float) -> float:
    return float(f"{x:.3g}")


def _difference(old: Settings, new: Settings) -> str:
    """A short label for what the previous run had, e.g. "rnn" or "T=50"."""
    if old.cell != new.cell:
        return old.cell
    labels = {"seq_len": "T={}", "lr": "lr {:g}", "seed": "seed {}", "hidden": "H={}",
              "task": "{}", "optimizer": "{}"}
    for name, fmt in labels.items():
        if getattr(old, name) != getattr(new, name):
            return fmt.format(getattr(old, name))
    return "before"


class LabApp(LabActions, App):
    """The lab alone: `rnn-tutor lab`."""

    TITLE = "rnn-tutor lab"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "toggle_keys", "Keys", key_display="?"),
    ] + LAB_BINDINGS
    CSS = "Screen { layout: vertical; }"

    def __init__(self, settings: Settings | None = None, fps: float = 4.0,
                 max_steps: int | None = None, paused: bool = False):
        super().__init__()
        self.lab_settings = (settings or Settings()).validated()
        self.fps = fps
        self.max_steps = max_steps
        self.start_paused = paused

    def compose(self) -> ComposeResult:
        yield LabPane(self.lab_settings, fps=self.fps, max_steps=self.max_steps,
                      paused=self.start_paused, id="lab")
        yield Footer()

    def on_mount(self) -> None:
        start_session(self)

    def action_toggle_keys(self) -> None:
        """The same help screen as the tutor's, listing this app's own keys."""
        from .help_screen import HelpScreen, describe_bindings
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        elif not isinstance(self.screen, ModalScreen):
            # Untitled (the border names the list) and without ? itself, so it fits 80×24.
            keys = [b for b in self.BINDINGS if b.action != "toggle_keys"]
            sections = describe_bindings(self, keys, {}, [""])
            self.push_screen(HelpScreen(sections, title="rnn-tutor lab keys"))

    def get_system_commands(self, screen):
        """The palette (ctrl+p) offers every lab key's action too, by its description."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, ModalScreen):
            return
        for binding in LAB_BINDINGS:
            action = binding.action
            yield SystemCommand(binding.description, f"lab key {binding.key_display or binding.key}",
                                partial(self.run_action, action))


def run_lab(settings: Settings | None = None, fps: float = 4.0,
            max_steps: int | None = None) -> int:
    """Run the lab alone; returns an exit code and never lets a traceback reach the terminal."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= 60):
        print(f"rnn-tutor: --fps must be a number between 0 and 60, not {fps}", file=sys.stderr)
        return 2
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        print(f"rnn-tutor: --steps must be a positive whole number, not {max_steps}",
              file=sys.stderr)
        return 2
    try:
        settings = (settings or Settings()).validated()
    except SettingsError as exc:
        print(f"rnn-tutor: {exc}", file=sys.stderr)
        return 2
    app = LabApp(settings, fps=fps, max_steps=max_steps,
                 paused=os.environ.get("RNN_TUTOR_LAB_PAUSED") == "1")
    # Textual reads keys and writes the screen from helper threads; a shorter GIL switch
    # interval lets them in between the event loop's chart builds sooner.
    tune_interpreter()
    try:
        app.run()
    except Exception as exc:  # the terminal is restored by then; say what happened in one line
        print(f"rnn-tutor: the lab stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return app.return_code or 0


def _main(argv: list[str]) -> int:
    """`python -m tutor.ui.lab [key=value ...] [--fps F] [--steps N]`: a stand-in for
    `rnn-tutor lab` until the CLI wires it."""
    import argparse
    import dataclasses

    parser = argparse.ArgumentParser(prog="python -m tutor.ui.lab")
    parser.add_argument("--fps", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("fields", nargs="*", help="settings as field=value, e.g. cell=rnn")
    args = parser.parse_args(argv)
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    changes = {}
    for item in args.fields:
        key, _, value = item.partition("=")
        if key not in types:
            print(f"rnn-tutor: unknown setting {key!r}", file=sys.stderr)
            return 2
        default = getattr(Settings(), key)
        if value.lower() in ("none", "off") and key in ("radius", "clip"):
            changes[key] = None if key == "radius" else 0.0
        elif isinstance(default, bool):
            changes[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            kind = int if isinstance(default, int) else float if (
                isinstance(default, float) or key == "radius") else str
            try:
                changes[key] = kind(value)
            except ValueError:
                print(f"rnn-tutor: {key} must be a {'whole ' if kind is int else ''}number, "
                      f"not {value!r}", file=sys.stderr)
                return 2
    try:
        settings = Settings(**changes).validated()
    except (SettingsError, ValueError) as exc:
        print(f"rnn-tutor: {exc}", file=sys.stderr)
        return 2
    return run_lab(settings, args.fps, args.steps)


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
