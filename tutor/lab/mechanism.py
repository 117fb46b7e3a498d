"""The mechanism views' arithmetic, without a screen: where the weight update comes from, which
inputs a prediction feels, and what the one-step factors predict for ‖∂L/∂h_t‖.

Every function takes the engine's per-step arrays by their record names
(`param_grad_norm_per_step`, `input_grad_norm_per_step`, `jacobian_norm_per_step`,
`grad_norm_per_step`) and never raises on NaN, inf or zeros: it returns NaN where no answer
exists, and the charts leave those out.
"""
from __future__ import annotations

import math

import numpy as np

# One glyph per decade below the largest value: the sensitivity strip reads without colour.
DECADE_GLYPHS = "█▓▒░"
BELOW_GLYPH = " "            # more than len(DECADE_GLYPHS) decades below the largest
UNKNOWN_GLYPH = "?"          # NaN or inf: nothing to shade by


def update_shares(param_grad_norm_per_step) -> np.ndarray:
    """(T,) each timestep's share of the recurrent layer's update: the norm of step t's own
    contribution over the sum of all T norms. NaN everywhere when there is no finite total."""
    norms = np.asarray(param_grad_norm_per_step, dtype=np.float64)
    with np.errstate(all="ignore"):
        total = norms.sum()
        if not math.isfinite(total) or total <= 0:
            return np.full(norms.shape, np.nan)
        return norms / total


def first_half_share(param_grad_norm_per_step) -> float:
    """The share of the update that comes from timesteps 1..T/2 (NaN when there is none).
    For a last-step loss these are the steps farthest from the loss."""
    shares = update_shares(param_grad_norm_per_step)
    if shares.size == 0 or not np.all(np.isfinite(shares)):
        return math.nan
    return float(shares[: shares.size // 2].sum())


def format_share(share: float) -> str:
    """0.4 → '40%', 3e-7 → '3e-05%': a share too small for a percentage keeps its exponent."""
    if not math.isfinite(share):
        return "?"
    percent = 100.0 * share
    if percent == 0:
        return "0%"
    if percent >= 1:
        return f"{percent:.0f}%"
    if percent >= 0.1:
        return f"{percent:.1f}%"
    return f"{percent:.0e}%"


def decade_levels(values) -> list[int | None]:
    """Per value, how many whole decades it lies below the largest finite value (0 = within a
    factor of ten), capped at len(DECADE_GLYPHS); None for NaN or inf."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    top = float(v[finite].max()) if finite.any() else 0.0
    levels: list[int | None] = []
    for x, ok in zip(v, finite):
        if not ok:
            levels.append(None)
        elif top <= 0 or x <= 0:
            levels.append(len(DECADE_GLYPHS))
        else:
            levels.append(min(len(DECADE_GLYPHS), int(math.floor(math.log10(top / x)))))
    return levels


def glyph(level: int | None) -> str:
    if level is None:
        return UNKNOWN_GLYPH
    return DECADE_GLYPHS[level] if level < len(DECADE_GLYPHS) else BELOW_GLYPH


def scale_legend() -> str:
    """What the glyphs mean, for the line under the strip."""
    parts = ["█ max", "▓ ÷10", "▒ ÷100", "░ ÷1000"]
    return "  ".join(parts) + "  (blank: less)"


def fit_tokens(tokens: list[str], width: int) -> list[int | None]:
    """Indices of the tokens to show in `width` cells, each followed by a space, with None
    for one '…' where a middle stretch is left out. The first tokens (where a long-range
    dependency starts) and the last ones (nearest the prediction) are kept."""
    def cost(i):
        return len(tokens[i]) + 1
    if sum(cost(i) for i in range(len(tokens))) <= width:
        return list(range(len(tokens)))
    budget = width - 2                              # the "… " marker
    head, tail = [], []
    i, j = 0, len(tokens) - 1
    # Alternate, two from the end for each from the start: the end is what a plain RNN feels.
    turn = 0
    while i <= j:
        take_head = turn % 3 == 0
        k = i if take_head else j
        if cost(k) > budget:
            break
        budget -= cost(k)
        if take_head:
            head.append(k)
            i += 1
        else:
            tail.append(k)
            j -= 1
        turn += 1
    return head + [None] + tail[::-1]


def predicted_grad_norms(jacobian_norm_per_step, grad_norm_per_step) -> np.ndarray:
    """(T,) what the one-step factors alone predict for ‖∂L/∂h_t‖ of a last-step loss:
    ‖∂L/∂h_T‖ · ∏_{k=t+1..T} ‖∂s_k/∂s_{k−1}‖. An upper bound (each factor is the most that
    step can stretch); the measured curve sits on it, or below where directions disagree."""
    J = np.asarray(jacobian_norm_per_step, dtype=np.float64)
    g = np.asarray(grad_norm_per_step, dtype=np.float64)
    if J.shape != g.shape or g.size == 0:
        return np.full(g.shape, np.nan)
    with np.errstate(all="ignore"):
        logs = np.log10(J[1:])
        # suffix sums: entry t (0-based) is the sum of log factors t+1..T-1
        tail = np.concatenate([np.cumsum(logs[::-1])[::-1], [0.0]])
        out = g[-1] * np.power(10.0, tail)
    out[~np.isfinite(out)] = np.nan
    return out


def loss_at_last_step(task_name: str) -> bool:
    """True when the task's loss is taken after the last step only, so ‖∂L/∂h_t‖ is the last
    step's gradient carried back, and the product of the factors is its prediction."""
    from tutor.engine.tasks import get_task
    return get_task(task_name).head in ("regression", "classify")
