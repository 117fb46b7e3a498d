"""The lab's charts, on textual-plotext, and the bounded histories they draw from.

textual-plotext rebuilds a whole chart on every refresh, and a naive redraw of two charts at 4 Hz
writes ~23 KiB/s to the terminal. So a chart here is built only when its data changed and it is
visible, and then only the cells that differ from the previous build are repainted (Textual
refreshes regions). Axes are quantised so they hold still while a curve moves.

Every value goes to plotext through `LabChart._line` / `_hline` / `_vline`, which drop NaN and
inf: plotext crashes on inf and silently drops NaN. Log scales are drawn as log10 of clean values on
a linear axis with labelled ticks (plotext's own log scale crashes on re-render).
"""
from __future__ import annotations

import math
import re
from collections import deque
from typing import Iterable, Sequence

import numpy as np
from rich.console import Console
from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual_plotext import PlotextPlot

from tutor.engine import Baseline, Sample, Settings, get_task
from tutor.engine.worker import RunUpdate, Update

_CONSOLE = Console(width=1000, color_system="truecolor", force_terminal=True)
HISTORY_POINTS = 240     # per series; older points are merged pairwise, so memory stays flat
MAX_EVENTS = 12

# ANSI palette indices, shared by plotext (by name) and the Rich legend (by number), so the
# terminal's own palette decides the shades: legible on 16- and 256-colour terminals alike.
PLOTEXT_COLOR = {1: "red", 2: "green", 3: "orange", 4: "blue", 5: "magenta", 6: "cyan",
                 7: "gray+", 8: "gray", 9: "red+", 12: "blue+"}
CELL_COLOR = {"rnn": 1, "irnn": 5, "lstm": 6, "gru": 3}
# Distinct markers keep overlaid curves apart when NO_COLOR turns every colour grey.
CELL_MARKER = {"rnn": "braille", "irnn": "·", "lstm": "hd", "gru": "x"}
MARKER_GLYPH = {"braille": "⠶", "hd": "▄", "·": "·", "x": "x"}
REFERENCE = 7        # baseline and clip threshold
INITIAL = 8          # the step-0 curve and the run before a restart
EVENT = 12           # a setting changed here
DIVERGED = 9


# ---- numbers -----------------------------------------------------------------------------------

def clean_log10(values) -> np.ndarray:
    """log10 of the finite, positive values; NaN elsewhere (callers drop NaN before plotext)."""
    a = np.asarray(values, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (a > 0)
    out[ok] = np.log10(a[ok])
    return out


def finite_pairs(xs: Iterable, ys: Iterable) -> tuple[list[float], list[float]]:
    fx, fy = [], []
    for x, y in zip(xs, ys):
        if x is None or y is None:
            continue
        x, y = float(x), float(y)
        if math.isfinite(x) and math.isfinite(y):
            fx.append(x)
            fy.append(y)
    return fx, fy


def log_label(exponent: int) -> str:
    return {0: "1", 1: "10", 2: "100", -1: "0.1", -2: "0.01"}.get(exponent, f"1e{exponent}")


def log_ticks(lo: int, hi: int, max_ticks: int) -> tuple[list[int], list[str]]:
    """Ticks at whole powers of ten from lo to hi, at most max_ticks of them, on multiples of a
    common step (so 1 is among them when it is in range), reaching as near both ends as can be."""
    limit = max(2, max_ticks)
    best = None
    for step in range(1, max(1, hi - lo) + 1):
        ticks = [e for e in range(lo, hi + 1) if e % step == 0]
        if not ticks or len(ticks) > limit:
            continue
        # unlabelled decades at either end, plus a point for each tick short of the limit
        gap = (ticks[0] - lo) + (hi - ticks[-1]) + (limit - len(ticks))
        if best is None or gap < best[0]:
            best = (gap, ticks)
    ticks = best[1] if best else [lo, hi]
    return ticks, [log_label(e) for e in ticks]


_NICE = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def nice_ceil(x: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is ≥ x (x > 0)."""
    if not math.isfinite(x) or x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    for m in _NICE:
        v = m * 10.0 ** k
        if v >= x * (1 - 1e-12):
            return v
    return 10.0 ** (k + 1)


def nice_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / max(1, max_ticks - 1)
    k = math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * 10.0 ** k
        if step >= raw:
            break
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def tick_label(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:g}k"
    if a >= 1:
        return f"{v:g}"
    if a >= 0.001:
        return f"{v:.3g}"
    return f"{v:.0e}"


def thin(xs: Sequence[float], ys: Sequence[float], limit: int) -> tuple[list, list]:
    """At most `limit` evenly spaced points, keeping both ends."""
    n = len(xs)
    if n <= limit or limit < 2:
        return list(xs), list(ys)
    idx = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [xs[i] for i in idx], [ys[i] for i in idx]


def aggregate(xs: Sequence[float], ys: Sequence[float], limit: int) -> tuple[list, list]:
    """Means of aligned groups of 2^k points, few enough to fit `limit`. Groups are aligned to
    the start, so a new point changes only the last group and the drawn curve holds still."""
    n = len(xs)
    k = 1
    while n / k > max(2, limit):
        k *= 2
    if k == 1:
        return list(xs), list(ys)
    gx, gy = [], []
    for i in range(0, n, k):
        chunk = ys[i:i + k]
        gx.append(xs[min(i + k, n) - 1])
        gy.append(sum(chunk) / len(chunk))
    return gx, gy


# ---- histories ---------------------------------------------------------------------------------

class BoundedSeries:
    """A scalar history that never holds more than `capacity` points.

    Each stored point is the mean of `stride` consecutive inputs; when the store fills, neighbours
    are merged pairwise and the stride doubles. Non-finite inputs are skipped."""

    def __init__(self, capacity: int = HISTORY_POINTS):
        self.capacity = capacity - capacity % 2
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.stride = 1
        self._sum = 0.0
        self._n = 0
        self._x = 0.0
        self.count = 0               # finite inputs seen

    def add(self, x: float, y: float) -> None:
        if y is None or not math.isfinite(y) or not math.isfinite(x):
            return
        self.count += 1
        self._sum += y
        self._n += 1
        self._x = x
        if self._n >= self.stride:
            self.xs.append(self._x)
            self.ys.append(self._sum / self._n)
            self._sum, self._n = 0.0, 0
            if len(self.xs) >= self.capacity:
                self.xs = self.xs[1::2]
                ys = self.ys
                self.ys = [(ys[i] + ys[i + 1]) / 2 for i in range(0, len(ys) - 1, 2)]
                self.stride *= 2

    def points(self) -> tuple[list[float], list[float]]:
        if self._n:
            return self.xs + [self._x], self.ys + [self._sum / self._n]
        return list(self.xs), list(self.ys)

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._n else 0)


class RunHistory:
    """What the charts know about one run."""

    def __init__(self, name: str, settings: Settings, baseline: Baseline | None = None):
        self.name = name
        self.settings = settings
        self.baseline = baseline or get_task(settings.task).baseline(settings.seq_len)
        self.loss = BoundedSeries()
        self.accuracy = BoundedSeries()
        self.log_grad_norm = BoundedSeries()
        self.events: deque[tuple[int, str]] = deque(maxlen=MAX_EVENTS)
        self.h = self.h0 = self.gate = self.c = self.c0 = None
        self.sample: Sample | None = None
        self.step = 0
        self.steps_per_s = 0.0
        self.status = "ok"
        self.diverged_at: int | None = None
        self.done = False
        self.recent_clipped: deque[bool] = deque(maxlen=50)
        self.last_loss: float | None = None
        self.last_accuracy: float | None = None
        self.last_grad_norm: float | None = None
        self.scalars_version = 0
        self.arrays_version = 0

    @property
    def cell(self) -> str:
        return self.settings.cell

    def absorb(self, u: RunUpdate) -> None:
        if u.steps:
            for step, loss, acc, norm in zip(u.steps, u.loss, u.accuracy, u.grad_norm):
                self.loss.add(step, loss)
                if acc is not None:
                    self.accuracy.add(step, acc)
                if norm is not None and math.isfinite(norm) and norm > 0:
                    self.log_grad_norm.add(step, math.log10(norm))
            self.recent_clipped.extend(u.clipped)
            self.last_loss, self.last_accuracy = u.loss[-1], u.accuracy[-1]
            self.last_grad_norm = u.grad_norm[-1]
            self.scalars_version += 1
        if u.events:
            self.events.extend(u.events)
            self.scalars_version += 1
        if u.grad_norm_per_step is not None:
            self.h = u.grad_norm_per_step
            self.h0 = u.first_grad_norm_per_step
            self.gate = u.gate_per_step
            self.c = u.cell_grad_norm_per_step
            self.c0 = u.first_cell_grad_norm_per_step
            self.arrays_version += 1
        if u.sample is not None:
            self.sample = u.sample
        if u.status != self.status or u.diverged_at != self.diverged_at:
            self.scalars_version += 1
        self.settings, self.baseline = u.settings, u.baseline
        self.step, self.steps_per_s = u.step, u.steps_per_s
        self.status, self.diverged_at, self.done = u.status, u.diverged_at, u.done

    @property
    def clipped_share(self) -> float:
        return sum(self.recent_clipped) / len(self.recent_clipped) if self.recent_clipped else 0.0


class LabHistory:
    """The histories of the current generation's runs, plus the loss of the run before."""

    def __init__(self):
        self.generation = 0
        self.runs: dict[str, RunHistory] = {}
        self.ghost: tuple[str, list[float], list[float]] | None = None  # (label, xs, ys)
        self.version = 0
        self.paused = False

    def reset(self, generation: int, runs: dict[str, Settings], ghost_label: str | None = None):
        """A fresh generation. With a label, the single run's loss so far stays as a grey ghost
        so the learner can compare before and after the change."""
        old = self.runs.get("main")
        if ghost_label and old is not None and len(old.loss) > 1 and len(runs) == 1:
            xs, ys = old.loss.points()
            self.ghost = (ghost_label, xs, ys)
        else:
            self.ghost = None
        self.generation = generation
        self.runs = {name: RunHistory(name, s) for name, s in runs.items()}
        self.version += 1

    def absorb(self, update: Update) -> bool:
        if update.generation != self.generation:
            return False
        for name, u in update.runs.items():
            run = self.runs.get(name)
            if run is not None:
                run.absorb(u)
        self.version += 1
        return True

    @property
    def compare(self) -> bool:
        return len(self.runs) > 1

    @property
    def waiting(self) -> tuple | None:
        """What an empty chart says depends on pausing; once there is data it does not."""
        if any(r.step for r in self.runs.values()):
            return None
        return ("paused",) if self.paused else ("running",)


# ---- chart widgets -----------------------------------------------------------------------------

class Legend:
    """A chart's header line: its title, then a sample glyph and a label per curve. Each label
    has a short form, used when the full line would not fit, and a tight one for narrower still;
    a tight form of "" leaves the item out (for one the status line also shows)."""

    def __init__(self, title: str):
        self.title = title
        self.items: list[tuple[str | None, int | None, tuple[str, str, str]]] = []

    def add(self, glyph: str | None, color: int | None, label: str,
            short: str | None = None, tight: str | None = None) -> None:
        short = label if short is None else short
        self.items.append((glyph, color, (label, short, short if tight is None else tight)))

    def render(self, width: int, monochrome: bool = False) -> Text:
        for tier in range(3):
            text = Text(self.title, style="bold", no_wrap=True, end="")
            for glyph, color, labels in self.items:
                label = labels[tier]
                if not label:
                    continue
                text.append(" " if tier else "  ")
                if glyph:
                    colored = color and not monochrome
                    text.append(glyph, Style(color=f"color({color})") if colored else "")
                    text.append(" ")
                text.append(label, "" if glyph else "dim")
            if text.cell_len <= width:
                return text
        text.truncate(width, overflow="ellipsis")
        return text


class LabChart(PlotextPlot):
    """A chart that builds only when its data changed and repaints only the cells that differ."""

    DEFAULT_CSS = """
    LabChart { width: 1fr; height: 1fr; min-height: 6; min-width: 24; }
    """
    title = ""

    def __init__(self, history: LabHistory, *, id: str | None = None,
                 classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.history = history
        self.theme = "clear"          # no plotext background: fewer escape codes per cell
        self._lines: list[Text] = []
        self._strips: list[Strip] = []
        self._built_for: tuple | None = None
        self.builds = 0               # how many times plotext built this chart (tests, benches)

    # what to draw --------------------------------------------------------------------------------
    def data_key(self) -> tuple:
        """Changes whenever the chart's picture could change."""
        return (self.history.generation, self.history.version)

    def draw(self, width: int, height: int) -> Legend | None:
        """Issue the plotext calls for a plot of this size; return the header (title and
        legend). Return None to show `self.message()` instead of a plot."""
        raise NotImplementedError

    def message(self) -> str:
        if self.history.paused:
            return "no steps yet: training is paused\n(space trains, s takes one step)"
        return "waiting for the first training step…"

    @property
    def monochrome(self) -> bool:
        """NO_COLOR: Textual greys every colour by its luminance, which leaves red or blue curves
        near-invisible on a dark background; draw everything in the foreground colour instead
        and let the markers tell the curves apart."""
        return bool(getattr(self.app, "no_color", False))

    def _color(self, color: int) -> str:
        return "default" if self.monochrome else PLOTEXT_COLOR[color]

    # the only doors to plotext -------------------------------------------------------------------
    def _line(self, xs, ys, color: int, marker: str = "braille", yside: str | None = None) -> None:
        xs, ys = finite_pairs(xs, ys)
        if not xs:
            return
        kwargs = {"marker": marker, "color": self._color(color)}
        if yside:
            kwargs["yside"] = yside
        self.plt.plot(xs, ys, **kwargs)

    def _hline(self, y, color: int, yside: str | None = None) -> None:
        if y is not None and math.isfinite(y):
            self.plt.horizontal_line(float(y), color=self._color(color), yside=yside)

    def _vline(self, x, color: int) -> None:
        if x is not None and math.isfinite(x):
            self.plt.vertical_line(float(x), color=self._color(color))

    def _xaxis_steps(self, last_step: float, plot_width: int) -> None:
        top = nice_ceil(max(10.0, last_step))
        self.plt.xlim(0, top)
        ticks = nice_ticks(0, top, max(2, min(6, plot_width // 10)))
        self.plt.xticks(ticks, [tick_label(t) for t in ticks])

    def _yaxis_linear(self, lo: float, hi: float, plot_height: int, yside=None) -> None:
        self.plt.ylim(lo, hi, yside=yside)
        ticks = nice_ticks(lo, hi, max(2, min(5, plot_height // 2)))
        self.plt.yticks(ticks, [tick_label(t) for t in ticks], yside=yside)

    def _yaxis_log(self, values: Iterable[np.ndarray], plot_height: int,
                   yside=None) -> tuple[int, int]:
        finite = [v[np.isfinite(v)] for v in values if v is not None]
        finite = [v for v in finite if v.size]
        if finite:
            # A little headroom keeps a curve or a threshold off the frame.
            lo = math.floor(min(float(v.min()) for v in finite) - 0.05)
            hi = math.ceil(max(float(v.max()) for v in finite) + 0.05)
        else:
            lo, hi = -1, 1
        if hi - lo < 2:
            lo, hi = lo - 1, hi + 1
        self.plt.ylim(lo, hi, yside=yside)
        ticks, labels = log_ticks(lo, hi, max(2, min(5, plot_height // 2)))
        self.plt.yticks(ticks, labels, yside=yside)
        return lo, hi

    # building and repainting -------------------------------------------------------------------
    def _build(self, size: Size) -> list[Text]:
        width, height = size.width, size.height
        self.builds += 1
        plt = self.plt
        plt.clear_figure()
        plt.theme("clear")
        legend = None
        if height >= 6 and width >= 20:
            plt.plotsize(width, height - 1)
            legend = self.draw(width, height - 1)
        if legend is None:
            return self._message_lines(width, height)
        body = [ansi_line(line) for line in plt.build().split("\n")[: height - 1]]
        lines = [legend.render(width, self.monochrome)] + body
        for line in lines:
            line.truncate(width, pad=True)
        while len(lines) < height:
            lines.append(Text(" " * width))
        return lines

    def _message_lines(self, width: int, height: int) -> list[Text]:
        lines = [Text(self.title, style="bold")]
        for part in self.message().split("\n"):
            lines.append(Text(part))
        lines = lines[:height]
        for line in lines:
            line.truncate(width, pad=True)
        return lines + [Text(" " * width) for _ in range(height - len(lines))]

    def redraw(self, force: bool = False) -> bool:
        """Rebuild if the data changed and the chart is on screen; repaint only changed cells.
        Returns True when anything was repainted."""
        size = self.size
        if not self.display or size.width <= 0 or size.height <= 0 or not self.is_mounted \
                or not self.is_on_screen:
            return False
        key = (self.data_key(), size)
        if key == self._built_for and not force:
            return False
        old = self._lines
        self._set_lines(self._build(size), key)
        new = self._lines
        if len(old) != len(new):
            self.refresh()
            return True
        regions = []
        for y, (a, b) in enumerate(zip(old, new)):
            span = _changed_span(a, b)
            if span is not None:
                regions.append(Region(span[0], y, span[1] - span[0], 1))
        if regions:
            self.refresh(*regions)
        return bool(regions)

    def _set_lines(self, lines: list[Text], key: tuple) -> None:
        old_lines, old_strips = self._lines, self._strips
        strips = []
        for y, line in enumerate(lines):
            if y < len(old_lines) and old_lines[y] == line:
                strips.append(old_strips[y])
            else:
                strips.append(Strip(list(line.render(_CONSOLE)), line.cell_len))
        self._lines, self._strips, self._built_for = lines, strips, key

    def render_line(self, y: int) -> Strip:
        # The Line API: Textual asks only for the lines it repaints, and gets cached strips
        # (converting a whole chart's Text on every repaint costs more than building it).
        size = self.size
        if self._built_for is None or self._built_for[1] != size:
            self._set_lines(self._build(size), (self.data_key(), size))
        base = self.rich_style
        if y < len(self._strips):
            return self._strips[y].apply_style(base)
        return Strip.blank(size.width, base)

    @property
    def plain_lines(self) -> list[str]:
        return [line.plain for line in self._lines]


_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_STYLES: dict[str, Style | None] = {}


def _sgr_style(codes: str, current: Style | None) -> Style | None:
    """The style after an SGR sequence of the kinds plotext writes (reset, bold, 256-colour)."""
    if codes in ("", "0"):
        return None
    style = _STYLES.get(codes)
    if style is None:
        style = Style.parse(" ".join(_sgr_words(codes)))
        _STYLES[codes] = style
    return style if current is None else current + style


def _sgr_words(codes: str) -> list[str]:
    parts, words = codes.split(";"), []
    i = 0
    while i < len(parts):
        code = parts[i]
        if code in ("38", "48") and i + 2 < len(parts) and parts[i + 1] == "5":
            words.append(("" if code == "38" else "on ") + f"color({int(parts[i + 2])})")
            i += 3
            continue
        if code == "1":
            words.append("bold")
        elif code.isdigit() and (30 <= int(code) <= 37 or 90 <= int(code) <= 97):
            n = int(code)
            words.append(f"color({n - 30 if n < 90 else n - 82})")
        elif code not in ("0", ""):
            raise ValueError(f"unexpected SGR code {code}")
        i += 1
    return words


def ansi_line(line: str) -> Text:
    """One line of plotext output as Text, with each blank cell given the style of the cell
    before it: a blank's foreground is invisible, but every style switch costs the terminal ~40
    bytes of escape codes, and a curve broken by gaps becomes one styled run instead of many.
    (Much faster than Text.from_ansi, which matters: charts are built on the event loop.)"""
    pieces = _SGR.split(line)
    runs: list[tuple[str, Style | None]] = []
    style = None
    try:
        for i, piece in enumerate(pieces):
            if i % 2:
                style = _sgr_style(piece, style)
            elif piece:
                runs.append((piece, style))
    except ValueError:
        runs = [(seg.text, seg.style) for seg in Text.from_ansi(line).render(_CONSOLE)]
    text = Text(no_wrap=True, end="")
    previous = None
    for piece, style in runs:
        stripped = piece.lstrip(" ")
        lead = len(piece) - len(stripped)
        if lead:
            text.append(" " * lead, previous)
        if stripped:
            text.append(stripped, style)
            previous = style
    return _join_same_style(text)


def _join_same_style(text: Text) -> Text:
    spans = text.spans
    if len(spans) < 2:
        return text
    merged = [spans[0]]
    for span in spans[1:]:
        last = merged[-1]
        if span.style == last.style and span.start == last.end:
            merged[-1] = Span(last.start, span.end, last.style)
        else:
            merged.append(span)
    text.spans = merged
    return text


def _cells(line: Text) -> list:
    styles: list = [None] * len(line.plain)
    for span in line.spans:
        for i in range(span.start, min(span.end, len(styles))):
            styles[i] = span.style
    if line.style:
        styles = [(line.style, s) for s in styles]
    return list(zip(line.plain, styles))


def _changed_span(old: Text, new: Text) -> tuple[int, int] | None:
    if old.plain == new.plain and old.spans == new.spans and old.style == new.style:
        return None
    a, b = _cells(old), _cells(new)
    n = max(len(a), len(b))
    a += [None] * (n - len(a))
    b += [None] * (n - len(b))
    first = next((i for i in range(n) if a[i] != b[i]), None)
    if first is None:
        return None
    last = next(i for i in range(n - 1, -1, -1) if a[i] != b[i])
    return first, last + 1


# ---- the four charts ---------------------------------------------------------------------------

class LossChart(LabChart):
    title = "loss"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, id(h.ghost), tuple(r.scalars_version
                                                           for r in h.runs.values()))

    def draw(self, width, height):
        h = self.history
        runs = list(h.runs.values())
        if not runs or not any(len(r.loss) for r in runs):
            return None
        baseline = runs[0].baseline.loss
        all_y, last_x = [baseline], 1.0
        for run in runs:
            xs, ys = run.loss.points()
            all_y += ys
            last_x = max([last_x] + xs)
        ghost = h.ghost
        if ghost is not None:
            all_y += ghost[2]
            last_x = max([last_x] + ghost[1])
        top = nice_ceil(max(1.2 * baseline, float(np.quantile(all_y, 0.98))))
        self._xaxis_steps(last_x, width)
        self._yaxis_linear(0.0, top, height)
        legend = Legend(self.title)
        if ghost is not None:
            gx, gy = aggregate(ghost[1], ghost[2], width)
            self._line(gx, [min(y, top) for y in gy], INITIAL, marker="·")
        self._hline(baseline, REFERENCE)
        for run in runs:
            xs, ys = aggregate(*run.loss.points(), 2 * width)
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(xs, [min(y, top) for y in ys], CELL_COLOR[run.cell], marker)
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], run.cell)
        legend.add("─", REFERENCE, f"baseline {baseline:.3g}", "baseline", "")
        if ghost is not None:
            legend.add("·", INITIAL, f"before: {ghost[0]}", tight=f"was {ghost[0]}")
        _mark_events(self, runs, legend)
        return legend


class GradNormChart(LabChart):
    title = "‖∇‖ per step"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, tuple((r.scalars_version, r.settings.clip,
                                               r.settings.clip_mode) for r in h.runs.values()))

    def draw(self, width, height):
        h = self.history
        runs = list(h.runs.values())
        if not runs or not any(len(r.log_grad_norm) for r in runs):
            return None
        settings = runs[0].settings
        clip_log = math.log10(settings.clip) if settings.clipping else None
        series = [np.asarray(r.log_grad_norm.points()[1]) for r in runs]
        if clip_log is not None:
            series.append(np.asarray([clip_log]))
        self._yaxis_log(series, height)
        self._xaxis_steps(max(max(r.log_grad_norm.points()[0] or [1.0]) for r in runs), width)
        legend = Legend(self.title)
        for run in runs:
            xs, ys = aggregate(*run.log_grad_norm.points(), 2 * width)
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(xs, ys, CELL_COLOR[run.cell], marker)
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], run.cell)
        if clip_log is not None:
            self._hline(clip_log, REFERENCE)
            legend.add("─", REFERENCE, f"clip {settings.clip_mode} {settings.clip:g}",
                       f"clip {settings.clip:g}", f"{settings.clip:g}")
        else:
            legend.add(None, None, "no clipping", "no clip")
        _mark_events(self, runs, legend)
        return legend


class GradPerStepChart(LabChart):
    title = "‖∂L/∂h_t‖ by t"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, tuple(r.arrays_version for r in h.runs.values()))

    def draw(self, width, height):
        h = self.history
        runs = [r for r in h.runs.values() if r.h is not None]
        if not runs:
            return None
        limit = max(8, 2 * width)
        curves = [(r, clean_log10(r.h)) for r in runs]
        first = None
        if not h.compare and runs[0].h0 is not None:
            first = clean_log10(runs[0].h0)
        lo, _ = self._yaxis_log([c for _, c in curves] + [first], height)
        T = len(runs[0].h)
        _xaxis_timesteps(self, T, width)
        legend = Legend(self.title)
        t = list(range(1, T + 1))
        if first is not None:
            self._line(*thin(t, list(_floor_zeros(runs[0].h0, first, lo)), limit), INITIAL,
                       marker="·")
        for run, curve in curves:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            drawn = _floor_zeros(run.h, curve, lo)
            self._line(*thin(t, list(drawn), limit), CELL_COLOR[run.cell], marker)
            label = run.cell if h.compare else f"step {run.step}"
            short = run.cell if h.compare else "now"
            zeros = int(np.count_nonzero(np.asarray(run.h) == 0))
            broken = int(np.count_nonzero(~np.isfinite(np.asarray(run.h, dtype=np.float64))))
            if zeros:         # vanished below what float32 holds: drawn on the floor
                label += f" ({zeros} of {T} are 0: on the floor)"
                short += f" ({zeros}×0)"
            if broken:        # overflowed: nothing to draw there
                label += f" ({broken} of {T} overflowed)"
                short += " (inf)"
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], label, short)
        if first is not None:
            legend.add("·", INITIAL, "step 0")
        return legend


class GatesChart(LabChart):
    title = "gates by t"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, tuple(r.arrays_version for r in h.runs.values()))

    def message(self) -> str:
        runs = list(self.history.runs.values())
        if runs and all(r.cell in ("rnn", "irnn") for r in runs):
            return (f"a plain {runs[0].cell} has no gates:\n"
                    "press 3 for an LSTM (forget gate\nand ‖∂L/∂c_t‖) or 4 for a GRU\n"
                    "(update gate).")
        return super().message()

    def draw(self, width, height):
        h = self.history
        runs = [r for r in h.runs.values() if r.gate is not None]
        if not runs:
            return None
        limit = max(8, 2 * width)
        T = len(runs[0].gate)
        _xaxis_timesteps(self, T, width)
        self._yaxis_linear(0.0, 1.0, height)
        legend = Legend(self.title)
        t = list(range(1, T + 1))
        lstm = next((r for r in runs if r.cell == "lstm" and r.c is not None), None)
        for run in runs:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(*thin(t, [float(g) for g in run.gate], limit), CELL_COLOR[run.cell],
                       marker)
            gate = "forget f" if run.cell == "lstm" else "update z"
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell],
                       f"{run.cell} {gate}" if h.compare else f"mean {gate} (1 = keep)",
                       gate if not h.compare else run.cell)
        if lstm is not None:
            cells = clean_log10(lstm.c)
            lo, _ = self._yaxis_log([cells], height, yside="right")
            self._line(*thin(t, list(_floor_zeros(lstm.c, cells, lo)), limit), 2, marker="·",
                       yside="right")
            legend.add("·", 2, "‖∂L/∂c_t‖ (right axis)", "‖∂L/∂c_t‖ →")
        return legend


def _floor_zeros(raw, logs: np.ndarray, floor: float) -> np.ndarray:
    """Exact zeros (a gradient that vanished below float range) at the axis floor, so the curve
    is seen to hit bottom; inf and NaN stay NaN and are not drawn."""
    out = logs.copy()
    out[np.asarray(raw) == 0] = floor
    return out


def _xaxis_timesteps(chart: LabChart, T: int, width: int) -> None:
    chart.plt.xlim(1, max(2, T))
    ticks = [t for t in nice_ticks(0, T, max(2, min(6, width // 10))) if 1 <= t < T]
    ticks = sorted(set([1] + ticks + [T]))
    if len(ticks) > 2 and ticks[-1] - ticks[-2] < T / 8:
        del ticks[-2]
    chart.plt.xticks(ticks, [f"{t:g}" for t in ticks])


def _mark_events(chart: LabChart, runs: list[RunHistory], legend: Legend) -> None:
    """Vertical lines where a setting changed live, and where a run diverged."""
    seen = set()
    latest = None
    for run in runs:
        for step, label in run.events:
            if step not in seen:
                chart._vline(step, EVENT)
                seen.add(step)
            latest = (step, label)
    if latest is not None:
        # e.g. "clip norm 1 @812", shortened to "clip @812": what changed stays readable
        what = latest[1].split()[0] if latest[1].split() else "change"
        legend.add("│", EVENT, f"{latest[1]} @{latest[0]}", f"{what} @{latest[0]}")
    diverged = [r.diverged_at for r in runs if r.diverged_at]
    for step in diverged:
        chart._vline(step, DIVERGED)
    if diverged:
        legend.add("│", DIVERGED, f"diverged @{min(diverged)}", f"diverged @{min(diverged)}")


CHART_TYPES = (LossChart, GradPerStepChart, GradNormChart, GatesChart)
