"""The iterated-map explorer driven by keys, and `run_map` off a terminal."""
import numpy as np
import math

import pytest

from tutor.explorers import itermap
from tutor.lab.modes import MapLab
from tutor.ui.axes import log_ticks, nice_ticks
from tutor.ui.host import HostApp
from tutor.ui.map_view import CobwebChart, MapView, ProductChart, run_map


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def host(**kw):
    return HostApp(MapLab(**kw), "test")


async def test_raising_w_turns_the_sink_into_a_source_and_the_product_explodes():
    app = host(kind="tanh", w=0.5, b=0.0, x0=0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MapView)
        assert app.focused is view
        assert [p.kind for p in view.state.fixed] == ["sink"]
        assert view.state.product.trend == "vanishing"
        await pilot.press(*["W"] * 5)
        assert view.w == 1.0                                  # five steps of 0.1, exactly
        assert [p.kind for p in view.state.fixed] == ["neutral"]
        await pilot.press(*["W"] * 5)
        assert view.w == 1.5
        assert [p.kind for p in view.state.fixed] == ["sink", "source", "sink"]
        assert view.state.product.trend == "exploding"        # x_0 = 0 sits on the source
        await pilot.pause()
        text = screen_text(app)
        assert "source" in text and "exploding" in text and "w = 1.5" in text
        await pilot.press("w")
        assert view.w == 1.4


async def test_b_x0_map_and_reset_keys():
    app = host(kind="tanh", w=2.0, b=0.0, x0=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MapView)
        await pilot.press("B", "B", "b")
        assert view.b == pytest.approx(0.1)
        await pilot.press("X", "x", "x")
        assert view.x0 == pytest.approx(0.4)
        assert view.state.xs[0] == pytest.approx(0.4)
        await pilot.press("m")
        assert view.kind == "sigmoid"
        assert view.state.fixed == itermap.fixed_points("sigmoid", 2.0, view.b)
        await pilot.press("m")
        assert view.kind == "tanh"
        await pilot.press("T", "T")
        assert view.steps == 50 and len(view.state.product.log10_abs) == 50
        await pilot.press(*["t"] * 6)
        assert view.steps == 10
        await pilot.press("m", "0")
        assert (view.kind, view.w, view.b, view.x0, view.steps) == ("tanh", 2.0, 0.0, 0.5, 30)


async def test_redraws_only_on_change_and_stops_at_limits():
    app = host(kind="tanh", w=99.8, b=0.0, x0=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MapView)
        drawn = view.draws
        await pilot.press("W", "W", "W", "W")
        assert view.w == itermap.LIMITS["w"][1]
        assert view.draws == drawn + 2                        # 99.9 and 100; then nothing
        await pilot.press("0", "0")
        assert view.draws == drawn + 3


async def test_v_switches_charts_and_narrow_panes_show_one_at_a_time():
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MapView)
        cob, prod = view.query_one(CobwebChart), view.query_one(ProductChart)
        assert cob.display and prod.display
        await pilot.press("v")
        assert cob.display and not prod.display
        await pilot.press("v")
        assert prod.display and not cob.display
        await pilot.press("v")
        assert cob.display and prod.display
    app = host()
    async with app.run_test(size=(44, 24)) as pilot:
        view = app.query_one(MapView)
        cob, prod = view.query_one(CobwebChart), view.query_one(ProductChart)
        await pilot.pause()
        assert cob.display and not prod.display
        await pilot.press("g")
        assert prod.display and not cob.display
        await pilot.pause()
        text = screen_text(app)
        assert "log scale" in text and "x* = " in text


@pytest.mark.parametrize("settings", [
    dict(kind="tanh", w=0.0, b=1.0, x0=0.5),          # product exactly 0
    dict(kind="tanh", w=10.0, b=0.0, x0=0.0),         # on a source: 10^30
    dict(kind="sigmoid", w=-10.0, b=10.0, x0=20.0),
    dict(kind="tanh", w=1.0, b=0.0, x0=-20.0),        # neutral, deep saturation
])
async def test_extreme_settings_render_with_finite_charts(settings):
    app = host(**settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "x* = " in text and "nan" not in text.lower() and "inf" not in text.lower()
        view = app.query_one(MapView)
        assert np.all(np.isfinite(view.state.product.log10_abs))


async def test_key_mashing_at_tiny_and_normal_sizes():
    rng = np.random.default_rng(0)
    keys = ["w", "W", "b", "B", "x", "X", "m", "v", "0", "t", "T"]
    for size in [(20, 8), (80, 24)]:
        app = host(kind="sigmoid", w=8.0, b=-4.0, x0=0.3)
        async with app.run_test(size=size) as pilot:
            await pilot.press(*rng.choice(keys, 60).tolist())
            await pilot.pause()
            assert app.is_running


def test_log_ticks_are_whole_powers_within_range():
    # The map's log axis shares the lab's tick maths (tutor/ui/axes.py).
    assert log_ticks(-20.3, 0.0, 5)[0] == [-20, -15, -10, -5, 0]
    assert log_ticks(-0.4, 0.4, 5)[0] == [0]
    for lo, hi in [(-300, 5), (-7.2, 3.1), (0.0, 30.0), (-1.5, -1.2)]:
        ticks, labels = log_ticks(lo, hi, 5)
        assert 1 <= len(ticks) <= 5 and all(isinstance(t, int) for t in ticks)
        assert all(math.floor(lo) <= t <= math.ceil(hi) for t in ticks)
        assert len({b - a for a, b in zip(ticks, ticks[1:])}) <= 1      # evenly spaced


def test_bad_settings_are_refused():
    with pytest.raises(itermap.MapError):
        MapView(kind="relu")
    with pytest.raises(itermap.MapError):
        MapView(w=float("inf"))


def test_run_map_prints_a_summary_when_not_a_terminal(capsys):
    assert run_map("tanh", 2.0, 0.0, 0.5) == 0
    out = capsys.readouterr().out
    assert "source" in out and "sink" in out and "\x1b" not in out
    assert out == itermap.describe(itermap.explore("tanh", 2.0, 0.0, 0.5)) + "\n"


def test_run_map_refuses_bad_input_in_one_line(capsys):
    assert run_map("tanh", float("nan"), 0.0, 0.5) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnn-tutor map: w must be") and err.count("\n") == 1


def test_nice_ticks_are_round_and_inside():
    assert nice_ticks(-2.64, 2.64, 5) == [-2.0, 0.0, 2.0]
    assert nice_ticks(-4.6, 3.0, 5) == [-4.0, -2.0, 0.0, 2.0]
    for lo, hi in [(-0.98, 1.18), (-22.0, 22.0), (0.3, 0.31), (-11.2, -9.9), (-0.4, 0.0)]:
        ticks = nice_ticks(lo, hi, 5)
        assert 1 <= len(ticks) <= 5 and all(lo - 1e-9 <= t <= hi + 1e-9 for t in ticks)
        assert "-0" not in [f"{t:g}" for t in ticks]