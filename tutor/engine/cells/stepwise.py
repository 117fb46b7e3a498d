"""A cell made of one-step functions: forward and backward called once per timestep, in the
layout of `tutor/engine/reference.py` (and of the exercises a learner writes).

    cell = StepwiseCell("lstm", lstm_step_forward, lstm_step_backward)
    Model("lstm", params, "regression", cell=cell)     # trains like the engine's LSTM

The step functions work in float64 on (B, ·) arrays, as the exercises check them; this cell
loops over time, carries the states and their gradients, adds the parameter gradients over the
steps, and hands the Model what the fast cells do (states, ∂L/∂h_t and ∂L/∂c_t per step, dX,
each step's share of the gradient), so every chart has its numbers. Only what the charts need
beyond that (the gate values, for the gate chart and the state Jacobians) is computed here from
the step functions' own states with the reference formulas.

Whatever the step functions do wrong (raise, return the wrong number or shape of arrays, NaN or
inf from finite inputs) becomes a `StepError` naming the function, the result and the step. The
cell knows nothing of files or limits: `tutor.lab.own_cell` runs a learner's functions in it.
"""
from __future__ import annotations

import numpy as np

from .. import reference as ref
from .base import PARAM_NAMES, Backward, Cache, Cell, _gate_mean
from .gru import GRU
from .lstm import LSTM
from .rnn import TanhRNN

ENGINE_CELLS = {"rnn": TanhRNN, "lstm": LSTM, "gru": GRU}
GRAD_NAMES = ("dW_ih", "dW_hh", "db_ih", "db_hh")


class StepError(Exception):
    """A step function failed. `function` is its name, `t` the timestep (1 … T), `cause` the
    exception it raised (None when what it returned was wrong), `first` whether it was the
    function's first call of the pass (else earlier calls returned)."""

    def __init__(self, message: str, function: str, t: int, cause: BaseException | None = None,
                 first: bool = True):
        super().__init__(message)
        self.message, self.function, self.t, self.cause = message, function, t, cause
        self.first = first


class StepwiseCell(Cell):
    def __init__(self, kind: str, step_forward, step_backward):
        super().__init__()
        if kind not in ENGINE_CELLS:
            raise ValueError(f"a stepwise cell is rnn, lstm or gru, not {kind!r}")
        self.name, self.kind = kind, kind
        self.engine = ENGINE_CELLS[kind]()   # for the chart formulas (Jacobians, gates)
        self.gates = self.engine.gates
        self.step_forward, self.step_backward = step_forward, step_backward
        self.lstm = kind == "lstm"

    # ---- calling the step functions -------------------------------------------------------------
    def _call(self, fn, t: int, args: tuple, names: tuple[str, ...], shapes: tuple,
              first: bool):
        """fn(*args) as len(names) float64 arrays of the given shapes (None: anything); `first`:
        the function's first call of this pass."""
        label = getattr(fn, "__name__", "the step function")
        try:
            result = fn(*args)
        except BaseException as e:           # noqa: BLE001 – a time limit, exit(), anything
            if isinstance(e, KeyboardInterrupt):
                raise
            raise StepError(f"{type(e).__name__}: {_first_line(e)}", label, t + 1, e,
                            first) from e
        if len(names) > 1:
            if not isinstance(result, (tuple, list)) or len(result) != len(names):
                got = (f"{len(result)} values" if isinstance(result, (tuple, list))
                       else f"one {type(result).__name__}")
                raise StepError(f"returned {got}; expected {len(names)}: {', '.join(names)}",
                                label, t + 1)
        else:
            result = (result,)
        out = []
        for name, value, shape in zip(names, result, shapes):
            if shape is None:
                out.append(value)
                continue
            try:
                a = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise StepError(f"returned {name} as a {type(value).__name__}, not an array",
                                label, t + 1) from None
            if a.shape != shape:
                raise StepError(f"returned {name} of shape {a.shape}; it should be {shape}",
                                label, t + 1)
            out.append(a)
        return out

    @staticmethod
    def _weights(p) -> tuple:
        return tuple(np.array(p[n], dtype=np.float64) for n in PARAM_NAMES)

    # ---- forward ----------------------------------------------------------------------------------
    def forward(self, p, X, nudge=None):
        T, B, I = X.shape
        dtype = self._dtype(p, X)
        W = self._weights(p)
        Hn = W[1].shape[1]
        X64 = np.asarray(X, dtype=np.float64)
        Hs = np.empty((T, B, Hn))
        Cs = np.empty((T, B, Hn)) if self.lstm else None
        h = np.zeros((B, Hn))
        c = np.zeros((B, Hn))
        names = ("h", "c", "cache") if self.lstm else ("h", "cache")
        shapes = ((B, Hn), (B, Hn), None) if self.lstm else ((B, Hn), None)
        steps = []
        nt = -1 if nudge is None else nudge[0]
        for t in range(T):
            states = (h.copy(), c.copy()) if self.lstm else (h.copy(),)
            out = self._call(self.step_forward, t, (X64[t].copy(), *states, *W), names, shapes,
                             t == 0)
            h = out[0]
            if self.lstm:
                c = out[1]
            if t == nt:
                if nudge[1] == "c" and self.lstm:
                    c = c + nudge[2]
                else:
                    h = h + nudge[2]
            if not (np.isfinite(h).all() and np.isfinite(c).all()):
                self._blame_forward(t, h, c, X64, W, Hs, Cs)
            Hs[t] = h
            if self.lstm:
                Cs[t] = c
            steps.append(out[-1])
        gates, HN = self._public_gates(X64, Hs, Cs, W)
        return Cache(X=X, H=Hs.astype(dtype, copy=False), A=gates.astype(dtype, copy=False),
                     C=None if Cs is None else Cs.astype(dtype, copy=False),
                     TC=None if Cs is None else np.tanh(Cs).astype(dtype, copy=False),
                     HN=None if HN is None else HN.astype(dtype, copy=False),
                     extra={"steps": steps, "batch": B})

    def _blame_forward(self, t, h, c, X64, W, Hs, Cs):
        inputs = [X64[t], *W] + ([Hs[t - 1]] + ([Cs[t - 1]] if self.lstm else []) if t else [])
        if all(np.isfinite(a).all() for a in inputs):
            which = "h" if not np.isfinite(h).all() else "c"
            bad = h if which == "h" else c
            raise StepError(f"returned {_nonfinite(bad)} in {which} from finite inputs",
                            getattr(self.step_forward, "__name__", "forward"), t + 1)

    def _public_gates(self, X64, Hs, Cs, W):
        """The gates as the engine's cache holds them (T, B, G·H), PyTorch's order (for the rnn:
        the pre-activation), and the GRU's W_hn h + b_hn, from the states the steps made."""
        T, B, Hn = Hs.shape
        rows = lambda a: a.reshape(T * B, -1)
        h_prev = np.concatenate([np.zeros((1, B, Hn)), Hs[:-1]])
        with np.errstate(all="ignore"):
            if self.kind == "rnn":
                a = rows(X64) @ W[0].T + W[2] + rows(h_prev) @ W[1].T + W[3]
                return a.reshape(T, B, Hn), None
            if self.kind == "lstm":
                c_prev = np.concatenate([np.zeros((1, B, Hn)), Cs[:-1]])
                *_, cache = ref.lstm_step_forward(rows(X64), rows(h_prev), rows(c_prev), *W)
                i, f, g, o = cache[5:9]
                return np.concatenate([i, f, g, o], axis=1).reshape(T, B, 4 * Hn), None
            _, cache = ref.gru_step_forward(rows(X64), rows(h_prev), *W)
            r, z, n, hn = cache[4:8]
            return (np.concatenate([r, z, n], axis=1).reshape(T, B, 3 * Hn),
                    hn.reshape(T, B, Hn))

    # ---- backward ---------------------------------------------------------------------------------
    def backprop(self, p, cache, last, direct=None, drop=None):
        X = cache.X
        T, B, I = X.shape
        steps = cache.extra.get("steps")
        if steps is None or cache.extra.get("batch") != B:   # a cache made elsewhere (tiled)
            steps = self.forward(p, X).extra["steps"]
        W = self._weights(p)
        G, Hn = W[1].shape
        dtype = cache.H.dtype
        shapes = [(B, I), (B, Hn)] + ([(B, Hn)] if self.lstm else []) + [w.shape for w in W]
        names = ("dx", "dh_prev") + (("dc_prev",) if self.lstm else ()) + GRAD_NAMES
        dH = np.empty((T, B, Hn))
        dC_in = np.zeros((T, B, Hn)) if self.lstm else None
        dX = np.empty((T, B, I))
        totals = [np.zeros_like(w) for w in W]
        share = np.zeros(T)                  # Σ of squares of step t's own gradient
        contributions = np.empty((T, 1, sum(w.size for w in W))) if drop else None
        carry_h = np.array(np.asarray(last, np.float64).T)
        carry_c = np.zeros((B, Hn))
        fn = getattr(self.step_backward, "__name__", "backward")
        for t in range(T - 1, -1, -1):
            dH[t] = carry_h
            upstream = (carry_h.copy(), carry_c.copy()) if self.lstm else (carry_h.copy(),)
            if self.lstm:
                dC_in[t] = carry_c
            out = self._call(self.step_backward, t, (*upstream, steps[t]), names, shapes,
                             t == T - 1)
            grads = out[-4:]
            sq = [float(np.vdot(a, a)) for a in out]
            if not all(np.isfinite(s) for s in sq):
                if all(np.isfinite(a).all() for a in upstream):
                    k = next(k for k, s in enumerate(sq) if not np.isfinite(s))
                    raise StepError(f"returned {_nonfinite(out[k])} in {names[k]} from finite "
                                    "inputs", fn, t + 1)
            dX[t] = out[0]
            for total, g in zip(totals, grads):
                total += g
            share[t] = sum(sq[-4:])
            if contributions is not None:
                contributions[t, 0] = np.concatenate([g.ravel() for g in grads])
            carry_h = out[1]
            carry_c = out[2] if self.lstm else carry_c
            if t:
                cols = None if drop is None else drop.get(t - 1)
                if cols is not None:
                    carry_h[cols] = 0.0
                    carry_c[cols] = 0.0
                if direct is not None:
                    carry_h = carry_h + np.asarray(direct[t - 1], np.float64).T
        grads = {name: total.astype(dtype) for name, total in zip(PARAM_NAMES, totals)}
        dC = None
        if self.lstm:                        # the cell's total gradient, h's share added
            o, tc = cache.A[:, :, 3 * Hn:].astype(np.float64), cache.TC.astype(np.float64)
            dC = dC_in + dH * o * (1.0 - tc * tc)
        metrics = _Metrics(dX, share, contributions, dtype)
        return Backward(grads=grads, dH=dH.astype(dtype), dC=None if dC is None else
                        dC.astype(dtype), dH_norm=_norms(dH),
                        dC_norm=None if dC is None else _norms(dC), step_metrics=metrics)

    # ---- what the charts ask of a cell ------------------------------------------------------------
    def gate_per_step(self, cache):
        return None if self.kind == "rnn" else _gate_mean(cache, 1)

    def state_jacobians(self, W_hh, cache, sample):
        return self.engine.state_jacobians(W_hh, cache, sample)


class _Metrics:
    """`Backward`'s per-step metrics, from what the step functions returned; `parts` is what
    truncated backpropagation adds over its passes (each step's gradient flattened)."""

    def __init__(self, dX, share, contributions, dtype):
        self.dX, self.share, self.contributions, self.dtype = dX, share, contributions, dtype

    def __call__(self) -> dict:
        return {"dX": self.dX.astype(self.dtype), "dX_norm": _norms(self.dX),
                "param_norm": np.sqrt(self.share)}

    def parts(self):
        P = self.contributions
        return self.dX.transpose(2, 0, 1), P, np.ones(P.shape[1] * P.shape[2])


def _norms(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("tbh,tbh->t", a, a))


def _nonfinite(a: np.ndarray) -> str:
    return "NaN" if np.isnan(a).any() else "inf"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return " ".join(text[0].split())[:160] if text else "(no message)"
