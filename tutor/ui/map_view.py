"""The iterated-map explorer: a cobweb plot, the running product of slopes, the fixed points.

Keys move w, b and x_0 so a learner can watch a sink turn into a source and the product
∏ f′(x_t) switch from vanishing to exploding. Charts are rebuilt only when a setting changes.
"""
from __future__ import annotations

import math
import sys

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tutor.explorers import itermap
from tutor.explorers.itermap import FORMULAS, LIMITS, MAPS, MapError, MapState, explore
from tutor.lab.modes import MapLab

from .axes import log_ticks, nice_ticks, tick_label
from .host import run_hosted
from .terminal import interactive, print_text

STEP = 0.1
MAX_KEY_STEPS = 200    # T from the keys; a lesson may preset up to LIMITS["steps"]
WIDE = 70              # below this many columns the two charts take turns
KIND_COLORS = {"sink": "green", "source": "red", "neutral": "yellow"}


class _Chart(PlotextPlot):
    """A plotext chart that says so instead of drawing when it has no room."""

    def render(self):
        if self.size.width < 16 or self.size.height < 6:
            return Text("(no room for the chart)", style="dim")
        return super().render()


class CobwebChart(_Chart):
    def draw(self, s: MapState) -> None:
        plt = self.plt
        plt.clear_figure()
        fixed = [p.x for p in s.fixed]
        if s.kind == "tanh":
            f_lo, f_hi = s.b - abs(s.w), s.b + abs(s.w)
        else:
            f_lo, f_hi = min(s.b, s.b + s.w), max(s.b, s.b + s.w)
        lo = min([f_lo, float(s.xs.min())] + fixed)
        hi = max([f_hi, float(s.xs.max())] + fixed)
        pad = 0.1 * max(hi - lo, 1.0)
        lo, hi = lo - pad, hi + pad
        grid = np.linspace(lo, hi, 241)
        plt.plot([lo, hi], [lo, hi], color="gray", marker="braille")
        plt.plot(grid.tolist(), itermap.f(s.kind, s.w, s.b, grid).tolist(), color="blue",
                 marker="braille")
        px, py = [s.xs[0]], [s.xs[0]]
        for t in range(s.steps):           # up to the curve, across to the diagonal
            px += [s.xs[t], s.xs[t + 1]]
            py += [s.xs[t + 1], s.xs[t + 1]]
        plt.plot([float(v) for v in px], [float(v) for v in py], color="orange",
                 marker="braille")
        for kind, color in KIND_COLORS.items():
            pts = [p.x for p in s.fixed if p.kind == kind]
            if pts:
                plt.scatter(pts, pts, color=color, marker="●", label=kind)
        plt.xlim(lo, hi)
        plt.ylim(lo, hi)
        ticks = nice_ticks(lo, hi, 5)
        labels = [tick_label(v) for v in ticks]
        plt.xticks(ticks, labels)
        plt.yticks(ticks, labels)
        plt.title("cobweb: x_t → x_{t+1}")
        self.refresh()


class ProductChart(_Chart):
    def draw(self, s: MapState) -> None:
        plt = self.plt
        plt.clear_figure()
        P = s.product
        t = list(range(1, s.steps + 1))
        y = [float(v) for v in P.log10_abs]            # finite by construction
        lo, hi = min(min(y), 0.0), max(max(y), 0.0)
        if hi - lo < 1.0:
            lo, hi = lo - 0.5, hi + 0.5
        plt.plot(t, y, color="orange", marker="braille")
        plt.hline(0.0, "gray")
        ticks, labels = log_ticks(math.ceil(lo), math.floor(hi), 5)
        plt.yticks(ticks, labels)
        plt.ylim(lo, hi)
        xt = sorted({1, s.steps} | {int(v) for v in np.linspace(1, s.steps, 5).round()})
        plt.xticks(xt, [str(v) for v in xt])
        plt.xlim(1, max(2, s.steps))
        plt.title("|∂x_t/∂x_0| = |∏ f′|, log scale")
        self.refresh()


class MapView(Widget, can_focus=True):
    DEFAULT_CSS = """
    MapView {
        width: 1fr;
        height: 1fr;
        layout: vertical;
    }
    MapView > #map-charts {
        height: 1fr;
        min-height: 6;
    }
    MapView _Chart {
        width: 1fr;
        height: 1fr;
    }
    MapView > #map-info {
        height: auto;
        max-height: 9;
        padding: 0 1;
        background: $panel;
    }
    MapView:focus > #map-info {
        background: $accent 25%;
    }
    """

    BINDINGS = [
        Binding("w", "nudge('w', -1)", "w−"),
        Binding("W", "nudge('w', 1)", "w+"),
        Binding("b", "nudge('b', -1)", "b−"),
        Binding("B", "nudge('b', 1)", "b+"),
        Binding("x", "nudge('x0', -1)", "x₀−"),
        Binding("X", "nudge('x0', 1)", "x₀+"),
        Binding("m", "toggle_map", "tanh/σ"),
        # g as in the lab's "next chart"; v too when run alone (the tutor app keeps v for itself)
        Binding("g,v", "switch_chart", "Chart"),
        Binding("0", "reset", "Reset"),
        Binding("t", "steps(-10)", "Fewer steps T", show=False),
        Binding("T", "steps(10)", "More steps T", show=False),
    ]

    def __init__(self, kind: str = "tanh", w: float = 2.0, b: float = 0.0, x0: float = 0.5,
                 steps: int = 30, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        itermap.check_settings(kind, w, b, x0, steps)     # MapError, one line
        super().__init__(name=name, id=id, classes=classes)
        self.preset = (kind, float(w), float(b), float(x0), int(steps))
        self.kind, self.w, self.b, self.x0, self.steps = self.preset
        self.chart = "both"              # "both", "cobweb" or "product"
        self.state = explore(self.kind, self.w, self.b, self.x0, self.steps)
        self.draws = 0                   # chart rebuilds, for the redraw-on-change test

    def compose(self) -> ComposeResult:
        with Horizontal(id="map-charts"):
            yield CobwebChart(id="cobweb")
            yield ProductChart(id="product")
        yield Static(id="map-info")

    def on_mount(self) -> None:
        self._layout()
        self._draw()

    def on_resize(self) -> None:
        self._layout()

    # ---- actions ----
    def action_nudge(self, name: str, direction: int) -> None:
        lo, hi = LIMITS[name]
        value = round(getattr(self, name) + direction * STEP, 10)   # 0.1·10 lands on 1.0
        self._set(**{name: min(hi, max(lo, value))})

    def action_steps(self, delta: int) -> None:
        self._set(steps=min(MAX_KEY_STEPS, max(10, self.steps + delta)))

    def action_toggle_map(self) -> None:
        self._set(kind=MAPS[(MAPS.index(self.kind) + 1) % len(MAPS)])

    def action_reset(self) -> None:
        kind, w, b, x0, steps = self.preset
        self._set(kind=kind, w=w, b=b, x0=x0, steps=steps)

    def action_switch_chart(self) -> None:
        if self.size.width >= WIDE:
            order = ("both", "cobweb", "product")
        else:
            order = ("cobweb", "product")
        current = self._shown()
        self.chart = order[(order.index(current) + 1) % len(order)] if current in order \
            else order[0]
        self._layout()

    def _set(self, **changes) -> None:
        new = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not new:
            return
        for k, v in new.items():
            setattr(self, k, v)
        self.state = explore(self.kind, self.w, self.b, self.x0, self.steps)
        self._draw()

    # ---- drawing ----
    def _shown(self) -> str:
        if self.chart == "both" and 0 < self.size.width < WIDE:
            return "cobweb"
        return self.chart

    def _layout(self) -> None:
        shown = self._shown()
        self.query_one(CobwebChart).display = shown in ("both", "cobweb")
        self.query_one(ProductChart).display = shown in ("both", "product")

    def _draw(self) -> None:
        self.draws += 1
        self.query_one(CobwebChart).draw(self.state)
        self.query_one(ProductChart).draw(self.state)
        self.query_one("#map-info", Static).update(self.info_text())

    def info_text(self) -> Text:
        s = self.state
        P = s.product
        text = Text()
        text.append(FORMULAS[s.kind], style="bold")
        text.append(f"  w = {s.w:g}  b = {s.b:g}  x_0 = {s.x0:g}  T = {s.steps}\n")
        style = {"vanishing": "bold blue", "exploding": "bold red", "steady": "bold"}[P.trend]
        text.append("∂x_T/∂x_0 = ∏ f′(x_t) = ")
        text.append(P.describe(), style=style)
        text.append(f"  {P.trend}\n")
        for p in s.fixed:
            text.append(f"x* = {p.x:.4g}  f′ = {p.slope:.4g}  ")
            text.append(p.kind, style=f"bold {KIND_COLORS[p.kind]}")
            text.append("\n")
        bound = itermap.max_slope(s.kind, s.w)
        note = "a contraction" if bound < 1 else ("never stretches" if bound == 1
                                                  else "can stretch")
        text.append(f"max |f′| = {bound:.4g}: {note}", style="dim")
        return text


def run_map(kind: str = "tanh", w: float = 2.0, b: float = 0.0, x0: float = 0.5,
            steps: int = 30) -> int:
    try:
        state = explore(kind, w, b, x0, steps)
    except MapError as exc:
        print(f"rnn-tutor map: {exc}", file=sys.stderr)
        return 2
    if not interactive():
        return print_text(itermap.describe(state) + "\n")
    return run_hosted(MapLab(kind, w, b, x0, steps), "rnn-tutor · iterated map")
