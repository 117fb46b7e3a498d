"""The lab view: renders a `LabSession` (charts, a sample, a status line) and turns keys into its
verbs. The state is the session's; this widget owns only what it shows and how it is laid out.
Training runs in the session's worker process, never on the event loop."""
from __future__ import annotations

import math
import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from tutor.engine.settings import Settings
from tutor.lab import status as lab_status
from tutor.lab.session import LabSession

from .chart_base import LabChart
from .lab_charts import CHART_TYPES
from .sample_view import sample_text
from .settings_screen import SettingsScreen

SAMPLE_EVERY_S = 1.5      # a sample that changed 4 times a second could not be read
MIN_WIDTH, MIN_HEIGHT = 30, 10


class LabPane(Widget):
    """Charts, a sample and a status line for a live training run (or three, in compare mode)."""

    DEFAULT_CSS = (Path(__file__).with_name("lab.tcss")).read_text(encoding="utf-8")

    # repaint=False: the status widget repaints itself; a repaint of the pane would repaint the
    # charts under it too, every update (4x the bytes).
    status: reactive[tuple[Text, ...]] = reactive((), layout=False, repaint=False, init=False)
    too_small = reactive(False, init=False)
    chart_page = reactive(0, init=False)
    visible_count = reactive(len(CHART_TYPES), init=False)

    def __init__(self, settings: Settings, fps: float = 4.0, max_steps: int | None = None, *,
                 paused: bool = False, budget: int | None = None, name: str | None = None,
                 id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.session = LabSession(settings, paused=paused, max_steps=max_steps, budget=budget)
        self.session.on_change = self._show_status
        self.fps = fps if math.isfinite(fps) and fps > 0 else 4.0
        self._sample_at = 0.0
        self._sample_key = None
        self.charts: list[LabChart] = [cls(self.session.history, id=f"chart-{i}")
                                       for i, cls in enumerate(CHART_TYPES)]
        self.redraws = 0      # frames that repainted at least one chart (benches read it)

    # ---- what the tests, the app and the palette read ------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def preset(self) -> Settings:
        return self.session.preset

    @property
    def paused(self) -> bool:
        return self.session.paused

    @property
    def compare(self) -> bool:
        return self.session.compare

    @property
    def pace(self) -> float | None:
        return self.session.pace

    @property
    def history(self):
        return self.session.history

    @property
    def status_text(self) -> str:
        return "\n".join(line.plain for line in self._status_lines())

    @property
    def visible_charts(self) -> list[LabChart]:
        return [c for c in self.charts if c.display]

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
        self._show_status()
        # Start the worker once the first frame is out: a learner sees the screen sooner.
        self.call_after_refresh(self.session.start)
        self.set_interval(1.0 / self.session.trainer.send_hz, self._poll)
        # One timer slot per chart: each builds at most one chart, so a key never waits behind
        # several plotext builds in a row; every chart still redraws at up to `fps`.
        self._slot = 0
        self.set_interval(1.0 / (self.fps * len(self.charts)), self._tick)

    def on_unmount(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker process for good (idempotent); the pane then no longer trains."""
        self.session.close()

    def on_resize(self) -> None:
        self._layout_charts()
        self._show_status()

    def _poll(self) -> None:
        self.session.set_on_screen(self.on_screen)
        self.session.poll()

    @property
    def on_screen(self) -> bool:
        """Whether the learner can see the lab: shown (every ancestor displayed) on the top
        screen, or under modal screens only (help, settings)."""
        node = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent
        stack = self.app.screen_stack
        if self.screen not in stack:
            return False
        above = stack[stack.index(self.screen) + 1:]
        return all(isinstance(screen, ModalScreen) for screen in above)

    def _tick(self) -> None:
        slot, self._slot = self._slot, (self._slot + 1) % len(self.charts)
        if slot == 0:
            self._show_status()
            self._update_sample()
        chart = self.charts[slot]
        if chart.display and chart.redraw():
            self.redraws += 1

    # ---- view verbs (the rest are the session's) ----------------------------------------------------
    def step_once(self) -> None:
        self.session.step_once()
        self._sample_at = 0.0

    def next_chart(self) -> None:
        if self.visible_count >= len(self.charts):
            self._tell("all charts are on screen")
            return
        self.chart_page = (self.chart_page + self.visible_count) % len(self.charts)

    def open_settings(self) -> None:
        def done(result: Settings | None) -> None:
            if result is not None:
                self.session.apply_settings(result)

        self.app.push_screen(SettingsScreen(self.session.settings), done)

    def show_reproduce(self) -> None:
        from tutor.lab.reproduce import caveats, command_line

        from .reproduce_screen import ReproduceScreen
        self.app.push_screen(ReproduceScreen(command_line(self.session.settings),
                                             caveats(self.session)))

    def export_run(self) -> None:
        """Settings, steps and a screenshot into a new folder under the data folder, named in
        the status line; in a browser (textual-serve) the files download too."""
        from tutor.lab.export import export_run, new_run_folder
        from tutor.progress import data_dir

        try:
            folder = new_run_folder(data_dir(), self.session.settings)
            paths = export_run(self.session, folder)
            svg = folder / "lab.svg"
            svg.write_text(self.app.export_screenshot(title=f"rnn-tutor lab · {folder.name}"),
                           encoding="utf-8")
            paths.append(svg)
        except OSError as exc:
            self._tell(f"could not export the run: {exc.strerror or exc}")
            return
        if self.app.is_web:
            for path in paths:
                self.app.deliver_text(path, save_filename=f"{folder.name}-{path.name}",
                                      mime_type="image/svg+xml" if path.suffix == ".svg"
                                      else None)
        self._tell(f"exported to {_home_relative(folder)}")

    def open_autocomplete(self) -> None:
        refusal = self.session.autocomplete_refusal
        if refusal is not None:
            self._tell(refusal)
            return
        from .autocomplete_screen import AutocompleteScreen
        self.app.push_screen(AutocompleteScreen(self.session))

    def toggle_own_cell(self) -> None:
        """The learner's own cell of the lab's kind, once its exercise passes; or back to the
        engine's."""
        if self.session.own is not None:
            self.session.stop_own_cell()
            return
        from tutor.exercises.lab_offer import own_cell_offer
        offer = own_cell_offer(self.session.settings.cell)
        if isinstance(offer, str):
            self._tell(offer)
            return
        self.session.use_own_cell(offer)

    def _tell(self, message: str) -> None:
        self.session.notice = message
        self._show_status()

    # ---- layout ---------------------------------------------------------------------------------
    def _layout_charts(self) -> None:
        width, height = self.size
        if not self.is_mounted or (width, height) == (0, 0):
            return                      # not laid out yet; the resize that follows does it
        self.too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        if self.too_small:
            return
        charts_height = height - 6          # sample (with its rule) and status
        cols = 3 if width >= 114 else 2 if width >= 76 else 1
        rows = 2 if charts_height >= (28 if cols == 2 else 20) else 1
        grid = self.query_one("#lab-charts")
        grid.styles.grid_size_columns = cols
        grid.styles.grid_size_rows = rows
        self.visible_count = min(len(self.charts), cols * rows)
        self._show_page()

    def watch_too_small(self, small: bool) -> None:
        self.set_class(small, "-too-small")

    def watch_chart_page(self) -> None:
        self._show_page()
        for chart in self.visible_charts:
            chart.redraw()

    def watch_visible_count(self) -> None:
        self._show_page()

    def _show_page(self) -> None:
        n = len(self.charts)
        shown = {(self.chart_page + i) % n for i in range(self.visible_count)}
        for i, chart in enumerate(self.charts):
            chart.display = i in shown

    # ---- status and sample ----------------------------------------------------------------------
    def _status_lines(self, width: int | None = None) -> list[Text]:
        """Two logical lines (settings; progress). With a width, each wraps between fields onto
        further lines instead of being cut, so every field stays visible at 80 columns."""
        return (_wrap(lab_status.settings_fields(self.session), " ", width)
                + _wrap(lab_status.progress_fields(self.session), "  ", width))

    def _show_status(self) -> None:
        if self.is_mounted:
            width = self.size.width - 2 if self.size.width > 2 else None     # less the padding
            self.status = tuple(self._status_lines(width))

    def watch_status(self, old: tuple[Text, ...], lines: tuple[Text, ...]) -> None:
        status = self.query_one("#lab-status", Static)
        grew = len(old) != len(lines)
        if grew:
            status.styles.height = len(lines)
        status.update(Text("\n").join(lines), layout=grew)

    def _update_sample(self) -> None:
        history = self.session.history
        runs = [r for r in history.runs.values() if r.sample is not None]
        now = time.monotonic()
        generation = history.generation
        # Throttled so it can be read, but never across a reset: the first sample of a new run
        # replaces the old run's at once, or "(step 18817)" would sit beside "step 81".
        same_run = self._sample_key is not None and self._sample_key[0] == generation
        if not runs:
            key = (generation, "none")
        elif not self.session.paused and now - self._sample_at < SAMPLE_EVERY_S and same_run \
                and self._sample_key[1] != "none":
            return
        else:
            key = (generation,) + tuple((r.name, r.sample, r.step) for r in runs)
        if key == self._sample_key:
            return
        self._sample_key, self._sample_at = key, now
        width = max(20, self.size.width - 2)                       # less the padding
        text = sample_text(runs, self.session.compare, width)
        area = self.query_one("#lab-sample", Static)
        height = text.plain.count("\n") + 2                          # and the border
        if area.styles.height is None or area.styles.height.value != height:
            area.styles.height = height
            area.update(text)
            return
        self.query_one("#lab-sample", Static).update(text, layout=False)


def _home_relative(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _wrap(parts: list[tuple[str, str]], sep: str, width: int | None) -> list[Text]:
    """Styled fields joined by `sep`, wrapped between fields to `width`; only a field wider
    than a whole line (a long notice) is broken, between its words."""
    lines = [Text()]
    if width is not None and width > 0:
        parts = [piece for text, style in parts for piece in _pieces(text, style, width)]
    for text, style in parts:
        line = lines[-1]
        if line.cell_len and width is not None and line.cell_len + len(sep) + len(text) > width:
            line = Text()
            lines.append(line)
        if line.cell_len:
            line.append(sep)
        line.append(text, style)
    return lines


def _pieces(text: str, style: str, width: int) -> list[tuple[str, str]]:
    """A field as pieces of at most `width` cells, broken between words (as one piece if it
    fits)."""
    if len(text) <= width:
        return [(text, style)]
    pieces, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            pieces.append((line, style))
            line = word
        else:
            line = f"{line} {word}" if line else word
    pieces.append((line, style))
    return pieces
