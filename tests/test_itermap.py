"""The iterated-map maths against cases worked out by hand or by an independent method."""
import math

import numpy as np
import pytest

from tutor.explorers import itermap
from tutor.explorers.itermap import (LOG10_CLAMP, MapError, check_settings, describe, explore,
                                     fixed_points, running_product, trajectory)


def iterate_to_sink(fn, x, n=2000):
    """Plain fixed-point iteration: converges to a sink, a different method from bisection."""
    for _ in range(n):
        x = fn(x)
    return x


def sigma(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_small_w_tanh_single_sink_and_product_halves_each_step():
    (p,) = fixed_points("tanh", 0.5, 0.0)
    assert p.x == pytest.approx(0.0, abs=1e-14)
    assert p.slope == pytest.approx(0.5, rel=1e-14)
    assert p.kind == "sink"
    prod = running_product("tanh", 0.5, 0.0, 0.0, 40)
    t = np.arange(1, 41)
    np.testing.assert_allclose(prod.values, 0.5 ** t, rtol=1e-12)
    np.testing.assert_allclose(prod.log10_abs, t * math.log10(0.5), rtol=1e-12)
    assert not prod.clamped.any()
    assert prod.trend == "vanishing"


def test_w2_tanh_source_at_zero_and_two_sinks_found_independently():
    x_star = iterate_to_sink(lambda x: 2.0 * math.tanh(x), 1.0)
    assert abs(x_star - 2.0 * math.tanh(x_star)) < 1e-14      # the iteration really converged
    pts = fixed_points("tanh", 2.0, 0.0)
    assert [p.kind for p in pts] == ["sink", "source", "sink"]
    np.testing.assert_allclose([p.x for p in pts], [-x_star, 0.0, x_star], atol=1e-12)
    # at a fixed point tanh x* = x*/2, so f′(x*) = 2·(1 − x*²/4) by hand
    sink_slope = 2.0 * (1.0 - x_star ** 2 / 4.0)
    np.testing.assert_allclose([p.slope for p in pts], [sink_slope, 2.0, sink_slope],
                               rtol=1e-10)
    # sitting on the source, the product is exactly 2^t: exploding
    prod = running_product("tanh", 2.0, 0.0, 0.0, 30)
    np.testing.assert_allclose(prod.values, 2.0 ** np.arange(1, 31), rtol=1e-12)
    assert prod.trend == "exploding"
    # started near a sink, the product settles into geometric decay at the sink's slope
    prod = running_product("tanh", 2.0, 0.0, x_star + 1e-3, 60)
    ratio = prod.log10_abs[-1] - prod.log10_abs[-2]
    assert ratio == pytest.approx(math.log10(sink_slope), abs=1e-9)


def test_sigmoid_map_with_w_below_4_is_a_contraction():
    # σ′ ≤ 1/4, so |f′| ≤ |w|/4 < 1: exactly one fixed point, a sink, and |∏ f′| ≤ (|w|/4)^t
    for w in np.linspace(-3.9, 3.9, 26):
        for b in np.linspace(-5, 5, 11):
            pts = fixed_points("sigmoid", w, b)
            assert len(pts) == 1 and pts[0].kind == "sink", (w, b, pts)
            x_star = iterate_to_sink(lambda x: w * sigma(x) + b, 0.0)
            assert pts[0].x == pytest.approx(x_star, abs=1e-9)
            prod = running_product("sigmoid", w, b, 3.0, 25)
            bound = np.arange(1, 26) * math.log10(max(abs(w), 1e-300) / 4.0)
            assert np.all(prod.log10_abs <= bound + 1e-9)


def test_sigmoid_w8_has_source_at_zero_with_slope_2():
    # 8·σ(0) − 4 = 0, and f′(0) = 8·σ′(0) = 8/4 = 2
    pts = fixed_points("sigmoid", 8.0, -4.0)
    assert [p.kind for p in pts] == ["sink", "source", "sink"]
    assert pts[1].x == pytest.approx(0.0, abs=1e-12)
    assert pts[1].slope == pytest.approx(2.0, rel=1e-12)
    x_star = iterate_to_sink(lambda x: 8.0 * sigma(x) - 4.0, 1.0)
    np.testing.assert_allclose([pts[0].x, pts[2].x], [-x_star, x_star], atol=1e-10)


def test_tangency_gives_one_neutral_fixed_point_where_sink_and_source_merge():
    # f(x) = 2 tanh x + b touches y = x where f′ = 1: sech² x = 1/2, x_c = asinh(1)
    x_c = math.asinh(1.0)
    b_c = x_c - 2.0 * math.sqrt(0.5)             # tanh(x_c) = 1/√2
    pts = fixed_points("tanh", 2.0, b_c)
    assert len(pts) == 2
    assert pts[0].kind == "sink" and pts[0].x < 0
    assert pts[1].kind == "neutral"
    assert pts[1].x == pytest.approx(x_c, abs=1e-7)
    assert pts[1].slope == pytest.approx(1.0, abs=1e-6)
    # nudged one way the pair splits into a sink and a source, the other way it is gone
    assert [p.kind for p in fixed_points("tanh", 2.0, b_c + 1e-4)] == ["sink", "source", "sink"]
    assert [p.kind for p in fixed_points("tanh", 2.0, b_c - 1e-4)] == ["sink"]


def test_w1_tanh_is_neutral_at_zero():
    (p,) = fixed_points("tanh", 1.0, 0.0)
    assert p.x == 0.0 and p.kind == "neutral" and p.slope == pytest.approx(1.0)


@pytest.mark.parametrize("kind", itermap.MAPS)
def test_fixed_points_agree_with_a_dense_sign_change_count(kind):
    """Over a grid of settings: every reported point is a fixed point, and the number of
    transversal ones equals the sign changes of f(x) − x on a fine grid."""
    xs = np.linspace(-25, 25, 200001)
    for w in np.arange(-10, 10.01, 0.7):
        for b in np.arange(-6, 6.01, 0.9):
            pts = fixed_points(kind, w, b)
            g = itermap.f(kind, w, b, xs) - xs
            changes = int(np.count_nonzero(np.diff(np.sign(g)) != 0))
            assert len([p for p in pts if p.kind != "neutral"]) == changes, (w, b, pts)
            for p in pts:
                assert abs(float(itermap.f(kind, w, b, p.x)) - p.x) < 1e-9
                assert p.kind == ("sink" if abs(p.slope) < 1 else "source")
            assert [p.x for p in pts] == sorted(p.x for p in pts)


def test_negative_slope_alternates_sign():
    prod = running_product("tanh", -0.5, 0.0, 0.0, 6)
    np.testing.assert_allclose(prod.values, (-0.5) ** np.arange(1, 7), rtol=1e-12)
    assert list(prod.sign) == [-1, 1, -1, 1, -1, 1]


def test_zero_slope_gives_exact_zero_flagged_never_nan():
    prod = running_product("tanh", 0.0, 1.0, 0.5, 10)
    assert np.all(np.isfinite(prod.log10_abs)) and np.all(prod.log10_abs == -LOG10_CLAMP)
    assert np.all(prod.sign == 0) and prod.clamped.all()
    assert np.all(prod.values == 0.0)
    assert prod.describe() == "0 (exactly)"


def test_overflow_is_clamped_and_flagged():
    # on the source at 0 with w = 3 the true product is 3^t, past 1e300 after t = 629
    prod = running_product("tanh", 3.0, 0.0, 0.0, 1000)
    t = np.arange(1, 1001)
    exact = t * math.log10(3.0)
    assert np.all(np.isfinite(prod.log10_abs)) and np.all(np.isfinite(prod.values))
    np.testing.assert_allclose(prod.log10_abs[exact <= LOG10_CLAMP],
                               exact[exact <= LOG10_CLAMP], rtol=1e-12)
    assert np.array_equal(prod.clamped, exact > LOG10_CLAMP)
    assert prod.log10_abs.max() == LOG10_CLAMP
    assert prod.describe() == "|P| > 1e+300"


def test_deep_saturation_does_not_underflow_the_log():
    # x_0 = 20: 1 − tanh²(20) rounds to 0 in float64, yet its log is about −16.8
    prod = running_product("tanh", 1.0, 0.0, 20.0, 1)
    sech2 = 4.0 / (math.exp(20) + math.exp(-20)) ** 2
    assert prod.log10_abs[0] == pytest.approx(math.log10(sech2), rel=1e-12)
    assert not prod.clamped[0]


def test_trajectory_follows_the_map():
    xs = trajectory("sigmoid", 5.0, -2.0, 0.3, 4)
    expect = [0.3]
    for _ in range(4):
        expect.append(5.0 * sigma(expect[-1]) - 2.0)
    np.testing.assert_allclose(xs, expect, rtol=1e-14)


def test_describe_formats_values_for_people():
    prod = running_product("tanh", 0.5, 0.0, 0.0, 20)
    assert prod.describe() == "9.537e-7"                   # 0.5^20 = 9.5367e-7
    assert prod.describe(3) == "0.125"
    text = describe(explore("tanh", 2.0, 0.0, 0.0, 30))
    assert "source" in text and "sink" in text and "exploding" in text
    assert "nan" not in text.lower() and "inf" not in text.lower()


@pytest.mark.parametrize("args, words", [
    (("relu", 1, 0, 0), "unknown map"),
    (("tanh", float("nan"), 0, 0), "w must be between"),
    (("tanh", 1, 1e9, 0), "b must be between"),
    (("tanh", 1, 0, "x"), "x0 must be a number"),
    (("sigmoid", 1, 0, 0, 0), "steps must be between"),
])
def test_bad_settings_give_one_line_errors(args, words):
    with pytest.raises(MapError) as err:
        check_settings(*args)
    assert words in str(err.value) and "\n" not in str(err.value)
