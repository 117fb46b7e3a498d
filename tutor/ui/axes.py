"""Axis maths shared by every chart (the lab's and the map explorer's): round ticks, ticks at
powers of ten for log scales drawn on a linear axis, and thinning a curve to the cells it has."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

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


def log_ticks(lo: float, hi: float, max_ticks: int) -> tuple[list[int], list[str]]:
    """Ticks at whole powers of ten from lo to hi, at most max_ticks of them, on multiples of a
    common step (so 1 is among them when it is in range), reaching as near both ends as can be.
    A range with no whole power inside gets the one nearest its middle."""
    lo, hi = math.ceil(lo), math.floor(hi)
    if hi < lo:
        middle = round((lo + hi) / 2)
        return [middle], [log_label(middle)]
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
        ticks.append(round(v, 12) + 0.0)     # + 0.0: never a "-0" label
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
