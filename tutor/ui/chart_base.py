"""The chart base: a textual-plotext chart that builds only when its data changed and repaints
only the cells that differ.

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
from typing import Iterable

import numpy as np
from rich.console import Console
from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual_plotext import PlotextPlot

from tutor.lab.history import LabHistory

from .axes import finite_pairs, log_ticks, nice_ceil, nice_ticks, tick_label

_CONSOLE = Console(width=1000, color_system="truecolor", force_terminal=True)

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
PREDICTED = 5        # what the one-step factors predict


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

    def _xaxis_timesteps(self, T: int, width: int) -> None:
        """An x axis for t = 1..T, with 1 and T always labelled."""
        self.plt.xlim(1, max(2, T))
        ticks = [t for t in nice_ticks(0, T, max(2, min(6, width // 10))) if 1 <= t < T]
        ticks = sorted(set([1] + ticks + [T]))
        if len(ticks) > 2 and ticks[-1] - ticks[-2] < T / 8:
            del ticks[-2]
        self.plt.xticks(ticks, [f"{t:g}" for t in ticks])

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


def floor_zeros(raw, logs: np.ndarray, floor: float) -> np.ndarray:
    """Exact zeros (a gradient that vanished below float range) at the axis floor, so the curve
    is seen to hit bottom; inf and NaN stay NaN and are not drawn."""
    out = logs.copy()
    out[np.asarray(raw) == 0] = floor
    return out


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
