"""The lab's pure pieces: bounded histories, axis helpers, the ANSI reader, settings parsing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from rich.text import Text
from textual_plotext.plot import Plot

from tutor.engine import Settings
from tutor.engine.tasks import get_task
from tutor.lab.history import BoundedSeries, LabHistory
from tutor.lab.protocol import RunUpdate, Update
from tutor.ui.axes import aggregate, clean_log10, log_ticks, nice_ceil, nice_ticks
from tutor.ui.chart_base import Legend, _changed_span, ansi_line
from tutor.ui.settings_screen import FIELDS, format_field, parse_field


def test_bounded_series_keeps_flat_memory_and_the_mean():
    s = BoundedSeries(capacity=64)
    rng = np.random.default_rng(0)
    values = rng.random(100_000)
    for i, v in enumerate(values, start=1):
        s.add(i, float(v))
        assert len(s) <= 65
    xs, ys = s.points()
    assert xs == sorted(xs) and xs[-1] == 100_000
    assert np.mean(ys) == pytest.approx(values.mean(), abs=0.01)
    assert s.count == 100_000


def test_bounded_series_skips_non_finite():
    s = BoundedSeries()
    for i, v in enumerate([1.0, math.nan, math.inf, -math.inf, 2.0]):
        s.add(i, v)
    assert s.points() == ([0, 4], [1.0, 2.0]) and s.count == 2


def test_aggregate_fits_the_limit_and_a_new_point_moves_only_the_tail():
    xs = list(range(1, 1001))
    ys = [math.sin(x / 30) for x in xs]
    gx, gy = aggregate(xs, ys, 100)
    assert 50 <= len(gx) <= 100 and gx[-1] == 1000
    gx2, gy2 = aggregate(xs + [1001], ys + [0.5], 100)
    assert gy2[:-1] == gy[:-1]                     # the drawn curve holds still


def test_log_ticks_label_powers_of_ten_and_anchor_on_one():
    ticks, labels = log_ticks(-12, 2, 5)
    assert len(ticks) <= 5 and 0 in ticks
    assert dict(zip(ticks, labels))[0] == "1"
    assert all(label in ("1", "100") or label.startswith("1e") or label in ("0.1", "10")
               for label in labels)
    assert log_ticks(-8, 0, 3) == ([-8, -4, 0], ["1e-8", "1e-4", "1"])


@pytest.mark.parametrize("x", [0.0013, 0.17, 1.0, 7.3, 99.0, 1234.0])
def test_nice_ceil_is_just_above(x):
    assert x <= nice_ceil(x) <= 1.25 * x


def test_nice_ticks_cover_the_range_with_round_steps():
    ticks = nice_ticks(0, 600, 5)
    assert ticks[0] == 0 and ticks[-1] <= 600 and len(ticks) <= 5
    assert len({round(b - a, 9) for a, b in zip(ticks, ticks[1:])}) == 1


def test_clean_log10_marks_what_cannot_be_plotted():
    out = clean_log10([100.0, 0.0, -1.0, math.inf, math.nan, 1e-8])
    assert out[0] == 2 and out[5] == pytest.approx(-8)
    assert np.isnan(out[1:5]).all()


def test_ansi_line_reads_plotext_like_rich_but_with_fewer_style_runs():
    plt = Plot()
    plt.theme("clear")
    plt.plotsize(40, 12)
    rng = np.random.default_rng(1)
    plt.plot(list(range(60)), list(rng.random(60)), color="cyan", marker="braille")
    plt.plot(list(range(60)), list(rng.random(60)), color="red", marker="hd")
    plt.horizontal_line(0.5, color="gray+")
    fewer = 0
    for raw in plt.build().split("\n"):
        mine, rich = ansi_line(raw), Text.from_ansi(raw)
        assert mine.plain == rich.plain
        for i, ch in enumerate(mine.plain):
            if ch != " ":                          # blanks may take their neighbour's style
                assert _style_at(mine, i) == _style_at(rich, i)
        fewer += len(mine.spans) < len(rich.spans)
    assert fewer > 0


def _style_at(text: Text, i: int):
    style = None
    for span in text.spans:
        if span.start <= i < span.end:
            style = span.style
    return style


def test_changed_span_finds_the_cells_that_differ():
    a = Text("abcdef")
    b = Text("abXdeY")
    assert _changed_span(a, b) == (2, 6)
    c = Text("abcdef")
    c.stylize("red", 4, 5)
    assert _changed_span(a, c) == (4, 5)
    assert _changed_span(a, Text("abcdef")) is None


def test_legend_shortens_to_fit():
    legend = Legend("loss")
    legend.add("⠶", 6, "lstm")
    legend.add("─", 7, "baseline 0.167", "baseline", "")
    legend.add("·", 8, "before: lr 0.04", tight="was lr 0.04")
    legend.add("│", 12, "clip norm 1 @812", "clip @812")
    assert legend.render(80).plain == ("loss  ⠶ lstm  ─ baseline 0.167  · before: lr 0.04  "
                                       "│ clip norm 1 @812")
    assert legend.render(52).plain == "loss ⠶ lstm ─ baseline · before: lr 0.04 │ clip @812"
    assert legend.render(39).plain == "loss ⠶ lstm · was lr 0.04 │ clip @812"
    assert legend.render(12).cell_len <= 12


def test_history_drops_non_finite_and_stale_generations():
    history = LabHistory()
    s = Settings(cell="rnn")
    history.reset(3, {"main": s})
    run = history.runs["main"]
    baseline = get_task(s.task).baseline(s.seq_len)
    update = RunUpdate("main", s, baseline, steps=[1, 2, 3], loss=[1.0, math.nan, math.inf],
                       accuracy=[None] * 3, grad_norm=[2.0, math.inf, 0.0],
                       clipped=[False] * 3, step=3, status="diverged", diverged_at=2)
    assert not history.absorb(Update(2, {"main": update}))
    assert run.step == 0
    assert history.absorb(Update(3, {"main": update}))
    assert run.loss.points() == ([1], [1.0])
    assert run.log_grad_norm.points() == ([1], [pytest.approx(math.log10(2))])
    assert run.diverged_at == 2


def test_settings_fields_cover_every_preset_key():
    preset_keys = {"cell", "task", "seq_len", "hidden", "batch", "optimizer", "lr", "clip",
                   "clip_mode", "init", "radius", "truncate", "forget_bias", "reverse_input",
                   "freeze_head", "seed"}
    assert {f.name for f in FIELDS} == preset_keys


@pytest.mark.parametrize("name,text,value", [
    ("clip", "off", 0.0), ("clip", "2.5", 2.5), ("radius", "none", None), ("radius", "1.1", 1.1),
    ("seq_len", " 20 ", 20), ("lr", "1e-3", 0.001), ("truncate", "off", None),
    ("truncate", "0", None), ("truncate", "10", 10)])
def test_parse_field_reads_numbers_and_words(name, text, value):
    field = next(f for f in FIELDS if f.name == name)
    assert parse_field(field, text) == value
    assert parse_field(field, format_field(field, value)) == value


@pytest.mark.parametrize("name,text,message", [
    ("seq_len", "2.5", "sequence length must be a whole number, not '2.5'"),
    ("lr", "fast", "learning rate must be a number, not 'fast'"),
    ("clip", "x", "clip threshold must be a number (or off), not 'x'"),
    ("truncate", "2.5", "truncation must be a whole number (or off), not '2.5'")])
def test_parse_field_says_what_is_wrong_in_one_line(name, text, message):
    field = next(f for f in FIELDS if f.name == name)
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       + "$"):
        parse_field(field, text)


async def test_vanished_gradients_sit_on_the_floor_and_overflow_is_named(monkeypatch):
    from textual.app import App

    from tutor.ui.lab_charts import GradPerStepChart

    drawn: list[list[float]] = []
    original = Plot.plot

    def spy(self, xs, ys, **kwargs):
        drawn.append(list(ys))
        return original(self, xs, ys, **kwargs)

    monkeypatch.setattr(Plot, "plot", spy)
    history = LabHistory()
    s = Settings(cell="rnn", seq_len=6)
    history.reset(1, {"main": s})
    h = np.array([0.0, 0.0, 1e-30, 1e-10, 1e-3, 1.0])
    update = RunUpdate("main", s, get_task(s.task).baseline(s.seq_len), steps=[5], loss=[0.2],
                       accuracy=[None], grad_norm=[1.0], clipped=[False], step=5,
                       latest={"grad_norm_per_step": h},
                       first={"grad_norm_per_step": h * 0 + 1e-3})
    history.absorb(Update(1, {"main": update}))

    class Host(App):
        def compose(self):
            yield GradPerStepChart(history)

    async with Host().run_test(size=(60, 20)) as pilot:
        chart = pilot.app.query_one(GradPerStepChart)
        chart.redraw(force=True)
        assert "2 of 6 are 0" in chart.plain_lines[0] or "2×0" in chart.plain_lines[0]
        current = drawn[-1]
        assert current[0] == current[1] == min(current) and current[2] > current[0]
        h[3] = np.inf
        update.latest = {"grad_norm_per_step": h}
        history.absorb(Update(1, {"main": update}))
        drawn.clear()
        chart.redraw(force=True)
        assert "overflowed" in chart.plain_lines[0] or "(inf)" in chart.plain_lines[0]
        assert all(math.isfinite(v) for ys in drawn for v in ys)
