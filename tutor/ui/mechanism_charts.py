"""The mechanism charts: where the weight update comes from (each timestep's share of it), and the
local factor ‖∂s_t/∂s_{t−1}‖ that the gradient is multiplied by at each step back."""
from __future__ import annotations

import numpy as np

from tutor.lab.mechanism import first_half_share, format_share, update_shares

from .axes import clean_log10, thin
from .chart_base import (CELL_COLOR, CELL_MARKER, MARKER_GLYPH, REFERENCE, LabChart, Legend,
                         floor_zeros)


class UpdateShareChart(LabChart):
    """Each timestep's share of the recurrent layer's weight update, on a log scale, with the
    share of the sequence's first half as one number in the legend."""
    title = "update share by t"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, tuple(r.arrays_version for r in h.runs.values()))

    def draw(self, width, height):
        h = self.history
        runs = [r for r in h.runs.values() if "param_grad_norm_per_step" in r.latest]
        if not runs:
            return None
        limit = max(8, 2 * width)
        shares = [(r, update_shares(r.latest["param_grad_norm_per_step"])) for r in runs]
        curves = [(r, s, clean_log10(s)) for r, s in shares]
        lo, _ = self._yaxis_log([c for _, _, c in curves], height)
        T = len(shares[0][1])
        self._xaxis_timesteps(T, width)
        t = list(range(1, T + 1))
        legend = Legend(self.title)
        for run, share, curve in curves:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(*thin(t, list(floor_zeros(share, curve, lo)), limit),
                       CELL_COLOR[run.cell], marker)
            half = format_share(first_half_share(run.latest["param_grad_norm_per_step"]))
            label = (f"{run.cell} 1st half {half}" if h.compare
                     else f"from t ≤ {T // 2}: {half}")
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], label,
                       f"{run.cell} {half}" if h.compare else f"1st half {half}",
                       half)
        return legend


class LocalFactorChart(LabChart):
    """‖∂s_t/∂s_{t−1}‖ at each t for the sample sequence, with the line at 1: below it, one step
    back shrinks the gradient; above it, the step can stretch it."""
    title = "‖∂s_t/∂s_t−1‖ by t"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, tuple(r.arrays_version for r in h.runs.values()))

    def message(self) -> str:
        if self.history.runs and not any(r.step for r in self.history.runs.values()):
            return super().message()
        return "the one-step factors come with\nthe next update…"

    def draw(self, width, height):
        h = self.history
        runs = [r for r in h.runs.values() if "jacobian_norm_per_step" in r.latest]
        if not runs:
            return None
        limit = max(8, 2 * width)
        curves = [(r, clean_log10(r.latest["jacobian_norm_per_step"])) for r in runs]
        self._yaxis_log([c for _, c in curves] + [np.zeros(1)], height)
        T = len(runs[0].latest["jacobian_norm_per_step"])
        self._xaxis_timesteps(T, width)
        t = list(range(1, T + 1))
        legend = Legend(self.title)
        self._hline(0.0, REFERENCE)
        for run, curve in curves:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(*thin(t, list(curve), limit), CELL_COLOR[run.cell], marker)
            factors = np.asarray(run.latest["jacobian_norm_per_step"], dtype=np.float64)
            finite = factors[np.isfinite(factors)]
            median = f"median {np.median(finite):.2g}" if finite.size else "no finite factor"
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell],
                       f"{run.cell} {median}" if h.compare else median,
                       run.cell if h.compare else median, "" if h.compare else median)
        legend.add("─", REFERENCE, "1", "1", "")
        return legend
