"""The lab's charts: loss, gradient norm per training step, ‖∂L/∂h_t‖ by timestep, gates by
timestep. Each reads the session's `LabHistory` and draws through `LabChart`'s clean doors."""
from __future__ import annotations

import math

import numpy as np

from tutor.lab.history import RunHistory
from tutor.lab.mechanism import loss_at_last_step, predicted_grad_norms

from .axes import aggregate, clean_log10, nice_ceil, thin
from .chart_base import (CELL_COLOR, CELL_MARKER, DIVERGED, EVENT, INITIAL, MARKER_GLYPH,
                         PREDICTED, REFERENCE, LabChart, Legend, floor_zeros)
from .mechanism_charts import LocalFactorChart, UpdateShareChart

class LossChart(LabChart):
    """The training loss against the input-blind baseline; for a task that scores one long-range
    word (language), the loss on that word alone, which is what the baseline is the guess of."""
    title = "loss"

    def data_key(self):
        h = self.history
        return (h.generation, h.waiting, id(h.ghost), tuple(r.scalars_version
                                                           for r in h.runs.values()))

    def draw(self, width, height):
        h = self.history
        runs = list(h.runs.values())
        if not runs or not any(len(r.charted_loss) for r in runs):
            return None
        baseline = runs[0].baseline.loss
        focused = any(len(r.long_range_loss) for r in runs)
        all_y, last_x = [baseline], 1.0
        for run in runs:
            xs, ys = run.charted_loss.points()
            all_y += ys
            last_x = max([last_x] + xs)
        ghost = h.ghost
        if ghost is not None:
            all_y += ghost[2]
            last_x = max([last_x] + ghost[1])
        top = nice_ceil(max(1.2 * baseline, float(np.quantile(all_y, 0.98))))
        self._xaxis_steps(last_x, width)
        self._yaxis_linear(0.0, top, height)
        legend = Legend(f"loss: {runs[0].settings.task} word" if focused else self.title)
        if ghost is not None:
            gx, gy = aggregate(ghost[1], ghost[2], width)
            self._line(gx, [min(y, top) for y in gy], INITIAL, marker="·")
        self._hline(baseline, REFERENCE)
        for run in runs:
            xs, ys = aggregate(*run.charted_loss.points(), 2 * width)
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(xs, [min(y, top) for y in ys], CELL_COLOR[run.cell], marker)
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], run.cell)
        if focused:
            legend.add("─", REFERENCE, f"blind guess {baseline:.3g}", f"guess {baseline:.3g}",
                       "")
        else:
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
            legend.add("─", REFERENCE, settings.clip_label,
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
        runs = [r for r in h.runs.values() if "grad_norm_per_step" in r.latest]
        if not runs:
            return None
        limit = max(8, 2 * width)
        curves = [(r, clean_log10(r.latest["grad_norm_per_step"])) for r in runs]
        first = None
        first_raw = None if h.compare else runs[0].first.get("grad_norm_per_step")
        if first_raw is not None:
            first = clean_log10(first_raw)
        predicted = None
        run0 = runs[0]
        if not h.compare and "jacobian_norm_per_step" in run0.latest \
                and loss_at_last_step(run0.settings.task):
            predicted = clean_log10(predicted_grad_norms(run0.latest["jacobian_norm_per_step"],
                                                         run0.latest["grad_norm_per_step"]))
            # A product of factors can run decades past the measured curve: the chart keeps to
            # the measured range (and three decades under it), the rest is off the axis.
            measured = np.concatenate([c for _, c in curves])
            measured = measured[np.isfinite(measured)]
            if measured.size:
                keep = (predicted >= measured.min() - 3) & (predicted <= measured.max() + 1)
                predicted = np.where(keep, predicted, np.nan)
        lo, _ = self._yaxis_log([c for _, c in curves] + [first, predicted], height)
        T = len(runs[0].latest["grad_norm_per_step"])
        self._xaxis_timesteps(T, width)
        legend = Legend(self.title)
        t = list(range(1, T + 1))
        if first is not None:
            self._line(*thin(t, list(floor_zeros(first_raw, first, lo)), limit), INITIAL,
                       marker="·")
        for run, curve in curves:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            raw = run.latest["grad_norm_per_step"]
            drawn = floor_zeros(raw, curve, lo)
            self._line(*thin(t, list(drawn), limit), CELL_COLOR[run.cell], marker)
            label = run.cell if h.compare else f"step {run.step}"
            short = run.cell if h.compare else "now"
            kept = np.asarray(raw)
            cut = run.settings.truncate
            if cut is not None and loss_at_last_step(run.settings.task):
                kept = kept[max(0, T - cut - 1):]      # zeros past a truncation cut are the cut
            zeros = int(np.count_nonzero(kept == 0))
            broken = int(np.count_nonzero(~np.isfinite(np.asarray(raw, dtype=np.float64))))
            if zeros:         # vanished below what float32 holds: drawn on the floor
                label += f" ({zeros} of {T} are 0: on the floor)"
                short += f" ({zeros}×0)"
            if broken:        # overflowed: nothing to draw there
                label += f" ({broken} of {T} overflowed)"
                short += " (inf)"
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell], label, short)
        if first is not None:
            legend.add("·", INITIAL, "step 0")
        cut = run0.settings.truncate
        if cut is not None and cut < T and loss_at_last_step(run0.settings.task):
            # Truncated BPTT: the loss's gradient reaches back to t = T − K and no further.
            self._vline(T - cut - 0.5, REFERENCE)
            legend.add("│", REFERENCE, f"cut: truncate {cut}", f"cut {cut}", f"cut {cut}")
        if predicted is not None:
            self._line(*thin(t, list(predicted), limit), PREDICTED, marker="x")
            legend.add("x", PREDICTED, "Π local factors", "Π factors", "")
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
        runs = [r for r in h.runs.values() if "gate_per_step" in r.latest]
        if not runs:
            return None
        limit = max(8, 2 * width)
        T = len(runs[0].latest["gate_per_step"])
        self._xaxis_timesteps(T, width)
        self._yaxis_linear(0.0, 1.0, height)
        legend = Legend(self.title)
        t = list(range(1, T + 1))
        lstm = next((r for r in runs if "cell_grad_norm_per_step" in r.latest), None)
        for run in runs:
            marker = CELL_MARKER[run.cell] if h.compare else "braille"
            self._line(*thin(t, [float(g) for g in run.latest["gate_per_step"]], limit),
                       CELL_COLOR[run.cell],
                       marker)
            gate = "forget f" if run.cell == "lstm" else "update z"
            legend.add(MARKER_GLYPH[marker], CELL_COLOR[run.cell],
                       f"{run.cell} {gate}" if h.compare else f"mean {gate} (1 = keep)",
                       gate if not h.compare else run.cell)
        if lstm is not None:
            raw = lstm.latest["cell_grad_norm_per_step"]
            cells = clean_log10(raw)
            lo, _ = self._yaxis_log([cells], height, yside="right")
            self._line(*thin(t, list(floor_zeros(raw, cells, lo)), limit), 2, marker="·",
                       yside="right")
            legend.add("·", 2, "‖∂L/∂c_t‖ (right axis)", "‖∂L/∂c_t‖ →")
        return legend


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


# The order is the paging order at 80×24: symptom first (loss, ‖∂L/∂h_t‖), then the mechanism.
CHART_TYPES = (LossChart, GradPerStepChart, UpdateShareChart, LocalFactorChart, GradNormChart,
               GatesChart)
