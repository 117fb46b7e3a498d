"""The one-unit recurrent network as an iterated map, in pure NumPy.

Two maps: x_{t+1} = w·tanh(x_t) + b, and Pascanu et al.'s x_t = w·σ(x_{t−1}) + b. The gradient
of x_T with respect to x_0 is the running product of the slopes along the trajectory,
∏ f′(x_t): it vanishes near a sink (|f′(x*)| < 1) and explodes near a source (|f′(x*)| > 1).

Slopes are handled in log space (log10 |f′| computed analytically, so it never underflows), and
every array handed out is finite: a product that is exactly zero or beyond the plotting range is
clamped and flagged, never inf or NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAPS = ("tanh", "sigmoid")
FORMULAS = {"tanh": "x_{t+1} = w·tanh(x_t) + b", "sigmoid": "x_t = w·σ(x_{t−1}) + b"}
LIMITS = {"w": (-100.0, 100.0), "b": (-100.0, 100.0), "x0": (-100.0, 100.0), "steps": (1, 1000)}
LOG10_CLAMP = 300.0        # log10 |∏ f′| is clamped to ±this (float64 ends near 1e±308)
NEUTRAL_TOL = 1e-6         # |f′(x*)| within this of 1 is neutral (a tangency or w exactly 1)
_LN10 = math.log(10.0)


class MapError(ValueError):
    """Settings the explorer cannot use; the message is one line."""


def check_settings(kind: str, w: float, b: float, x0: float, steps: int = 30) -> None:
    if kind not in MAPS:
        raise MapError(f"unknown map {kind!r} (choose {' or '.join(MAPS)})")
    for name, value in (("w", w), ("b", b), ("x0", x0), ("steps", steps)):
        lo, hi = LIMITS[name]
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise MapError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise MapError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def f(kind: str, w: float, b: float, x):
    """The map itself, elementwise."""
    x = np.asarray(x, dtype=np.float64)
    return w * (np.tanh(x) if kind == "tanh" else _sigmoid(x)) + b


def slope(kind: str, w: float, x):
    """f′(x): w·(1 − tanh² x), or w·σ(x)·(1 − σ(x)) for the sigmoid map."""
    # In the forms sech² x = 4e^{−2|x|}/(1 + e^{−2|x|})² and σ(x)σ(−x) = e^{−|x|}/(1 + e^{−|x|})²,
    # which keep full relative precision where 1 − tanh² x would round to 0.
    x = np.abs(np.asarray(x, dtype=np.float64))
    if kind == "tanh":
        e = np.exp(-2.0 * x)
        return w * 4.0 * e / ((1.0 + e) * (1.0 + e))
    e = np.exp(-x)
    return w * e / ((1.0 + e) * (1.0 + e))


def log10_abs_slope(kind: str, w: float, x) -> np.ndarray:
    """log10 |f′(x)| without underflow: −inf only where w = 0."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    if kind == "tanh":
        # 1 − tanh² x = sech² x = 4·e^{−2|x|} / (1 + e^{−2|x|})²
        ln = math.log(4.0) - 2.0 * x - 2.0 * np.log1p(np.exp(-2.0 * x))
    else:
        # σ(x)·σ(−x) = e^{−|x|} / (1 + e^{−|x|})²
        ln = -x - 2.0 * np.log1p(np.exp(-x))
    with np.errstate(divide="ignore"):
        return ln / _LN10 + np.log10(abs(w))


def max_slope(kind: str, w: float) -> float:
    """The largest |f′| anywhere: |w| for tanh, |w|/4 for the sigmoid (σ′ ≤ 1/4)."""
    return abs(w) if kind == "tanh" else abs(w) / 4.0


def contraction_note(kind: str, w: float) -> str:
    bound = max_slope(kind, w)
    if bound < 1.0:
        return "< 1 everywhere: a contraction, one sink"
    return "never above 1" if bound == 1.0 else "> 1 near the middle: can stretch"


def trajectory(kind: str, w: float, b: float, x0: float, steps: int) -> np.ndarray:
    """x_0 .. x_steps. Bounded: every iterate after x_0 lies within |w| + |b| of 0."""
    xs = np.empty(steps + 1)
    xs[0] = x0
    for t in range(steps):
        xs[t + 1] = f(kind, w, b, xs[t])
    return xs


@dataclass(frozen=True)
class FixedPoint:
    x: float
    slope: float       # f′(x*)
    kind: str          # "sink", "source" or "neutral"


def classify(s: float) -> str:
    if abs(abs(s) - 1.0) <= NEUTRAL_TOL:
        return "neutral"
    return "sink" if abs(s) < 1.0 else "source"


def _critical_points(kind: str, w: float) -> list[float]:
    """Where f′(x) = 1, the only places g(x) = f(x) − x can turn: between them g is
    monotone, so each stretch holds at most one fixed point."""
    if kind == "tanh":
        if w < 1.0:
            return []
        c = math.atanh(math.sqrt(max(0.0, 1.0 - 1.0 / w)))
    else:
        if w < 4.0:
            return []
        s = 0.5 * (1.0 + math.sqrt(max(0.0, 1.0 - 4.0 / w)))     # σ(c)·(1 − σ(c)) = 1/w
        c = math.log(s / (1.0 - s))
    return sorted({-c, c})


def _bisect(g, lo: float, hi: float) -> float:
    """A root of g in [lo, hi] where g(lo) and g(hi) have opposite signs, to full precision."""
    glo = g(lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        gm = g(mid)
        if gm == 0.0:
            return mid
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def fixed_points(kind: str, w: float, b: float) -> list[FixedPoint]:
    """Every x* with f(x*) = x*, sorted, each with f′(x*) and its class.

    g(x) = f(x) − x is positive far left and negative far right (f is bounded), and turns only
    where f′ = 1, so the real line splits into at most three monotone stretches, each holding
    at most one sign change, found by bisection. A turning point where g is zero (to rounding)
    is a tangency: one neutral fixed point where a sink and a source merge."""
    g = lambda x: float(f(kind, w, b, x)) - x
    if kind == "tanh":
        lo, hi = b - abs(w), b + abs(w)
    else:
        lo, hi = min(b, b + w), max(b, b + w)
    lo, hi = lo - 1.0, hi + 1.0                  # every fixed point lies strictly inside
    tol = 1e-12 * max(1.0, abs(w), abs(b))
    edges = [lo] + [c for c in _critical_points(kind, w) if lo < c < hi] + [hi]
    values = []
    for x in edges:
        gx = g(x)
        values.append(0.0 if abs(gx) <= tol else gx)
    roots: list[float] = []
    for i, (x, gx) in enumerate(zip(edges, values)):
        if gx == 0.0:
            roots.append(x)                      # a tangency at a turning point
        if i + 1 < len(edges) and gx * values[i + 1] < 0:
            roots.append(_bisect(g, x, edges[i + 1]))
    roots.sort()
    merged: list[float] = []
    for r in roots:                              # a double turning point (w = 1) counts once
        if not merged or abs(r - merged[-1]) > 1e-9:
            merged.append(r)
    out = []
    for r in merged:
        s = float(slope(kind, w, r))
        out.append(FixedPoint(float(r) + 0.0, s, classify(s)))     # + 0.0: no "-0"
    return out


@dataclass(frozen=True)
class Product:
    """The running product P_t = ∏_{k<t} f′(x_k) = ∂x_t/∂x_0 for t = 1..T, all finite."""
    log10_abs: np.ndarray    # (T,) log10 |P_t|, clamped to ±LOG10_CLAMP
    sign: np.ndarray         # (T,) −1, 0 or +1
    clamped: np.ndarray      # (T,) bool: the true value is 0 or lies beyond the clamp

    @property
    def values(self) -> np.ndarray:
        """P_t as floats: exact where representable, ±1e±300 where clamped, 0 where zero."""
        with np.errstate(over="ignore", under="ignore"):
            v = self.sign * np.power(10.0, self.log10_abs)
        return np.where(self.sign == 0, 0.0, v)

    def describe(self, t: int | None = None) -> str:
        """One value for a person: "3.2e-12", "0 (exactly)", "< 1e-300"."""
        i = len(self.sign) - 1 if t is None else t - 1
        if self.sign[i] == 0:
            return "0 (exactly)"
        lg = float(self.log10_abs[i])
        sign = "-" if self.sign[i] < 0 else ""
        if self.clamped[i]:
            return f"|P| {'<' if lg < 0 else '>'} 1e{lg:+.0f}"
        if -4 <= lg < 4:
            return f"{sign}{10.0 ** lg:.4g}"
        exp = math.floor(lg)
        mant = 10.0 ** (lg - exp)
        if mant >= 9.9995:          # 9.99996e-5 rounds up to 1.000e-4
            mant, exp = mant / 10.0, exp + 1
        return f"{sign}{mant:.3f}e{exp:+d}"

    @property
    def trend(self) -> str:
        """"vanishing", "exploding" or "steady", from the last step's size."""
        lg = float(self.log10_abs[-1]) if self.sign[-1] != 0 else -math.inf
        if lg < -1.0:
            return "vanishing"
        if lg > 1.0:
            return "exploding"
        return "steady"


def running_product(kind: str, w: float, b: float, x0: float, steps: int) -> Product:
    xs = trajectory(kind, w, b, x0, steps)[:-1]          # the slopes at x_0 .. x_{T−1}
    logs = log10_abs_slope(kind, w, xs)
    signs = np.sign(slope(kind, w, xs)) if w != 0 else np.zeros(steps)
    if w != 0:
        signs = np.where(signs == 0, np.sign(w), signs)   # f′ underflowed, its sign is w's
    cum = np.cumsum(logs)                                  # −inf once a slope is exactly 0
    sign = np.cumprod(signs)
    zero = sign == 0
    clamped = zero | (np.abs(cum) > LOG10_CLAMP)
    log10_abs = np.clip(np.where(zero, -LOG10_CLAMP, cum), -LOG10_CLAMP, LOG10_CLAMP)
    return Product(log10_abs.astype(np.float64), sign.astype(np.int8), clamped)


@dataclass(frozen=True)
class MapState:
    """Everything the explorer shows for one setting."""
    kind: str
    w: float
    b: float
    x0: float
    steps: int
    xs: np.ndarray
    fixed: list[FixedPoint]
    product: Product


def explore(kind: str, w: float, b: float, x0: float, steps: int = 30) -> MapState:
    check_settings(kind, w, b, x0, steps)
    w, b, x0, steps = float(w), float(b), float(x0), int(steps)
    return MapState(kind, w, b, x0, steps, trajectory(kind, w, b, x0, steps),
                    fixed_points(kind, w, b), running_product(kind, w, b, x0, steps))


def describe(state: MapState) -> str:
    """The state as plain text: the map, its fixed points and the product."""
    s = state
    rows = [f"{FORMULAS[s.kind]}   w = {s.w:g}   b = {s.b:g}   x_0 = {s.x0:g}   T = {s.steps}"]
    rows.append(f"max |f′| = {max_slope(s.kind, s.w):.4g} ({contraction_note(s.kind, s.w)})")
    for p in s.fixed:
        rows.append(f"fixed point x* = {p.x:.4g}   f′(x*) = {p.slope:.4g}   {p.kind}")
    P = s.product
    rows.append(f"x_T = {s.xs[-1]:.4g}   ∂x_T/∂x_0 = ∏ f′(x_t) = {P.describe()}   ({P.trend})")
    return "\n".join(rows)
