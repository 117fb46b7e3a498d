"""Recurrent cells with exact backpropagation through time, in PyTorch's parameter layout.

Each cell has `forward(params, X)` returning the states and a cache, and
`backward(params, cache, dH_out)` returning parameter gradients plus the total derivative
∂L/∂h_t at every step. The public arrays are time-major, batch second: X is (T, B, I), the
cache's H is (T, B, H), A is (T, B, G·H), and so are the gradients in `Backward`.

How it is fast in pure NumPy (a step of the loop is small, so call count and memory layout
decide the speed, not arithmetic):
- Inside, each step's arrays are feature-major, (rows, B), so every gate is one contiguous
  block and every elementwise call runs on contiguous memory. The public (T, B, ·) arrays are
  transposed views of these buffers, not copies.
- The input, the previous state and a row of ones are stacked into Z_t = [h_{t-1}; x_t; 1], so
  one GEMM per step, written straight into its output buffer, gives every gate's
  pre-activation with both biases.
- The sigmoid gates' weight rows are pre-scaled by ½, so a single tanh over all gates, then
  σ(a) = ½ + ½·tanh(a/2), activates every gate.
- Backward computes every factor that does not depend on the recurrence (σ′, tanh′ and their
  products) for all steps at once before the loop, leaving a handful of calls per step; the
  weight gradients are one GEMM over all steps after the loop.
- Scratch buffers live on the cell and are reused while the shape stays the same; everything a
  caller receives is freshly allocated, so a returned Cache or Backward is never overwritten by
  a later call. (A cell instance is therefore not for use from two threads at once.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


@dataclass
class Cache:
    """What the backward pass needs from the forward pass, plus what the charts show."""
    X: np.ndarray                     # (T, B, I) inputs
    H: np.ndarray                     # (T, B, H) hidden states h_1..h_T
    A: np.ndarray                     # (T, B, G·H) activated gates (or pre-activations for rnn)
    C: np.ndarray | None = None       # (T, B, H) LSTM cell states
    TC: np.ndarray | None = None      # (T, B, H) tanh(c_t) for LSTM
    HN: np.ndarray | None = None      # (T, B, H) W_hn h + b_hn for GRU
    extra: dict = field(default_factory=dict)


@dataclass
class Backward:
    grads: dict[str, np.ndarray]
    dH: np.ndarray                    # (T, B, H) total ∂L/∂h_t
    dC: np.ndarray | None = None      # (T, B, H) total ∂L/∂c_t (LSTM)
    dA: np.ndarray | None = None      # (T, B, G·H) gradients at the gate pre-activations
    dAh: np.ndarray | None = None     # GRU: the recurrent side's pre-activation gradients


def _swap(a: np.ndarray) -> np.ndarray:
    """(T, B, R) ↔ (T, R, B) as a view: the public layout and the internal one."""
    return a.transpose(0, 2, 1)


def _gate_mean(cache: Cache, gate: int) -> np.ndarray:
    """Batch-and-unit mean of one gate's block at each step."""
    T, _, Hn = cache.H.shape
    block = _swap(cache.A)[:, gate * Hn:(gate + 1) * Hn]      # (T, H, B), contiguous per step
    return block.reshape(T, -1).mean(axis=1)


class Cell:
    name = ""
    gates = 1

    def __init__(self):
        self._scratch: dict[str, np.ndarray] = {}

    def forward(self, p: dict, X: np.ndarray, nudge=None) -> Cache:
        """nudge=(t, "h" or "c", delta) adds delta to that state as step t computes it: the
        hook a finite-difference check of the total derivative ∂L/∂h_t uses."""
        raise NotImplementedError

    def backward(self, p: dict, cache: Cache, dH_out: np.ndarray) -> Backward:
        raise NotImplementedError

    def gate_per_step(self, cache: Cache) -> np.ndarray | None:
        """Batch-mean of the gate that decides how much memory is kept, per step."""
        return None

    # ---- shared machinery ----
    def _buf(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A scratch array kept on the cell; never handed to a caller."""
        a = self._scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._scratch[name] = np.empty(shape, dtype)
        return a

    @staticmethod
    def _dtype(p, X):
        return np.result_type(X.dtype, p["weight_hh_l0"].dtype)

    def _stacked_weights(self, p, dtype, half_rows=()) -> np.ndarray:
        """[W_hh | W_ih | b_ih + b_hh], so that W @ [h; x; 1] is the pre-activation. Rows in
        `half_rows` (sigmoid gates) are halved: tanh of them gives tanh(a/2)."""
        W_hh, W_ih = p["weight_hh_l0"], p["weight_ih_l0"]
        GH, Hn = W_hh.shape
        I = W_ih.shape[1]
        W = self._buf("W", (GH, Hn + I + 1), dtype)
        W[:, :Hn] = W_hh
        W[:, Hn:Hn + I] = W_ih
        np.add(p["bias_ih_l0"], p["bias_hh_l0"], out=W[:, Hn + I])
        for rows in half_rows:
            W[rows] *= 0.5
        return W

    @staticmethod
    def _stacked_inputs(X, Hn, dtype) -> np.ndarray:
        """Z (T+1, H+I+1, B): Z[t] = [h_{t-1}; x_t; 1], with h_0 = 0. The loop writes h_t into
        Z[t+1, :H], so the hidden states H are the view Z[1:, :H]."""
        T, B, I = X.shape
        Z = np.empty((T + 1, Hn + I + 1, B), dtype)
        Z[0, :Hn] = 0.0
        Z[:T, Hn:Hn + I] = _swap(X)
        Z[:T, Hn + I] = 1.0
        Z[T, Hn:] = 0.0
        return Z

    def _recurrent_T(self, p, dtype) -> np.ndarray:
        """W_hhᵀ as a contiguous (H, G·H) array: the backward GEMM runs twice as fast on it."""
        W_hh = p["weight_hh_l0"]
        WT = self._buf("WT", W_hh.shape[::-1], dtype)
        WT[...] = W_hh.T
        return WT

    def _layer_inputs(self, X, Hs, dtype) -> np.ndarray:
        """[h_{t-1}; x_t; 1] for all steps side by side, (H+I+1, T·B): the right operand of the
        one GEMM that gives every weight gradient."""
        T, Hn, B = Hs.shape
        I = X.shape[2]
        Zb = self._buf("Zb", (Hn + I + 1, T, B), dtype)
        Zb[:Hn, 0] = 0.0
        Zb[:Hn, 1:] = Hs[:-1].transpose(1, 0, 2)
        Zb[Hn:Hn + I] = X.transpose(2, 0, 1)
        Zb[Hn + I] = 1.0
        return Zb.reshape(Hn + I + 1, T * B)

    @staticmethod
    def _direct_grad(dH_out, dtype):
        """The loss's own ∂L/∂h_t as (T, H, B), and whether any step but the last has one
        (a many-to-one head has none, and then the loop skips the additions)."""
        dHo = _swap(np.asarray(dH_out, dtype=dtype))
        return dHo, bool(dHo[:-1].any())

    @staticmethod
    def _split_grads(G, Hn, I) -> dict:
        """The stacked gradient [dW_hh | dW_ih | db] into PyTorch's four arrays."""
        return {
            "weight_ih_l0": np.ascontiguousarray(G[:, Hn:Hn + I]),
            "weight_hh_l0": np.ascontiguousarray(G[:, :Hn]),
            "bias_ih_l0": G[:, Hn + I].copy(),
            "bias_hh_l0": G[:, Hn + I].copy(),
        }


class TanhRNN(Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    name = "rnn"

    def _act(self, a, out):
        np.tanh(a, out=out)

    def _slope(self, A, Hs, out):
        """dh_t/da_t for all steps: tanh' = 1 − h²."""
        np.multiply(Hs, Hs, out=out)
        np.subtract(1.0, out, out=out)

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype)
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        A = np.empty((T, Hn, B), dtype)
        for t in range(T):
            np.matmul(W, Z[t], out=A[t])
            self._act(A[t], Hs[t])
            if nudge is not None and nudge[0] == t:
                Hs[t] += nudge[2].T
        return Cache(X=X, H=_swap(Hs), A=_swap(A))

    def backward(self, p, cache, dH_out):
        X, Hs, A = cache.X, _swap(cache.H), _swap(cache.A)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        WT = self._recurrent_T(p, dtype)
        D = self._buf("D", (T, Hn, B), dtype)
        self._slope(A, Hs, D)
        dHo, dense = self._direct_grad(dH_out, dtype)
        dH = np.empty((T, Hn, B), dtype)
        dH[T - 1] = dHo[T - 1]
        dA = np.empty((Hn, T, B), dtype)     # steps side by side: one GEMM operand after the loop
        for t in range(T - 1, -1, -1):
            da = dA[:, t]
            np.multiply(dH[t], D[t], out=da)
            if t:
                np.matmul(WT, da, out=dH[t - 1])
                if dense:
                    dH[t - 1] += dHo[t - 1]
        G = dA.reshape(Hn, T * B) @ self._layer_inputs(X, Hs, dtype).T
        grads = self._split_grads(G, Hn, X.shape[2])
        return Backward(grads=grads, dH=_swap(dH), dA=dA.transpose(1, 2, 0))


class ReLURNN(TanhRNN):
    """IRNN: h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), identity-initialised."""
    name = "irnn"

    def _act(self, a, out):
        np.maximum(a, 0.0, out=out)

    def _slope(self, A, Hs, out):
        # relu'(a) is 1 where h = relu(a) > 0 and 0 elsewhere: the sign of h.
        np.sign(Hs, out=out)


class LSTM(Cell):
    """PyTorch's LSTM, gates in the order i, f, g, o."""
    name = "lstm"
    gates = 4

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype, (slice(0, 2 * Hn), slice(3 * Hn, 4 * Hn)))
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        A = np.empty((T, 4 * Hn, B), dtype)
        C = np.empty((T, Hn, B), dtype)
        TC = np.empty_like(C)
        fc = self._buf("fc", (Hn, B), dtype)
        for t in range(T):
            a = A[t]
            np.matmul(W, Z[t], out=a)
            np.tanh(a, out=a)
            i_f, g, o = a[:2 * Hn], a[2 * Hn:3 * Hn], a[3 * Hn:]
            i_f *= 0.5                       # σ(a) = ½ + ½·tanh(a/2)
            i_f += 0.5
            o *= 0.5
            o += 0.5
            c = C[t]
            np.multiply(i_f[:Hn], g, out=c)
            if t:
                np.multiply(i_f[Hn:], C[t - 1], out=fc)
                c += fc
            if nudge is not None and nudge[0] == t and nudge[1] == "c":
                c += nudge[2].T
            np.tanh(c, out=TC[t])
            np.multiply(o, TC[t], out=Hs[t])
            if nudge is not None and nudge[0] == t and nudge[1] == "h":
                Hs[t] += nudge[2].T
        return Cache(X=X, H=_swap(Hs), A=_swap(A), C=_swap(C), TC=_swap(TC))

    def backward(self, p, cache, dH_out):
        X, Hs, C, TC = cache.X, _swap(cache.H), _swap(cache.C), _swap(cache.TC)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        A = _swap(cache.A).reshape(T, 4, Hn, B)
        i, f, g, o = A[:, 0], A[:, 1], A[:, 2], A[:, 3]
        WT = self._recurrent_T(p, dtype)
        # Every factor that does not depend on the recurrence, for all steps at once:
        #   dc_t = dh_t·Q_t + dc_{t+1}·f_{t+1}         Q = o·(1 − tanh² c)
        #   di, df, dg = dc_t·P_t                      P = [g·σ′(i); c_{t-1}·σ′(f); i·(1 − g²)]
        #   do = dh_t·Po_t                             Po = tanh c·σ′(o)
        P = self._buf("P", (T, 3, Hn, B), dtype)
        Pi, Pf, Pg = P[:, 0], P[:, 1], P[:, 2]
        np.multiply(i, i, out=Pi)
        np.subtract(i, Pi, out=Pi)
        Pi *= g
        np.multiply(f, f, out=Pf)
        np.subtract(f, Pf, out=Pf)
        Pf[1:] *= C[:-1]
        Pf[0] = 0.0                          # c_0 = 0: the forget gate has nothing to act on
        np.multiply(g, g, out=Pg)
        np.subtract(1.0, Pg, out=Pg)
        Pg *= i
        Po = self._buf("Po", (T, Hn, B), dtype)
        np.multiply(o, o, out=Po)
        np.subtract(o, Po, out=Po)
        Po *= TC
        Q = self._buf("Q", (T, Hn, B), dtype)
        np.multiply(TC, TC, out=Q)
        np.subtract(1.0, Q, out=Q)
        Q *= o

        dHo, dense = self._direct_grad(dH_out, dtype)
        dH = np.empty((T, Hn, B), dtype)
        dH[T - 1] = dHo[T - 1]
        dC = np.empty((T, Hn, B), dtype)
        dA = np.empty((4 * Hn, T, B), dtype)  # steps side by side: one GEMM operand after the loop
        step = self._buf("step", (4 * Hn, B), dtype)
        ifg = step[:3 * Hn].reshape(3, Hn, B)
        do = step[3 * Hn:]
        tmp = self._buf("tmp", (Hn, B), dtype)
        for t in range(T - 1, -1, -1):
            dh, dc = dH[t], dC[t]
            if t == T - 1:
                np.multiply(dh, Q[t], out=dc)
            else:                            # dc holds dc_{t+1}·f_{t+1} already
                np.multiply(dh, Q[t], out=tmp)
                dc += tmp
            np.multiply(dc, P[t], out=ifg)
            np.multiply(dh, Po[t], out=do)
            dA[:, t] = step
            if t:
                np.multiply(dc, f[t], out=dC[t - 1])
                np.matmul(WT, step, out=dH[t - 1])
                if dense:
                    dH[t - 1] += dHo[t - 1]
        G = dA.reshape(4 * Hn, T * B) @ self._layer_inputs(X, Hs, dtype).T
        grads = self._split_grads(G, Hn, X.shape[2])
        return Backward(grads=grads, dH=_swap(dH), dC=_swap(dC), dA=dA.transpose(1, 2, 0))

    def gate_per_step(self, cache):
        return _gate_mean(cache, 1)


class GRU(Cell):
    """PyTorch's GRU, gates r, z, n, with the reset applied after the recurrent product:
    n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    Inside, the per-step GEMM has four row blocks [r; z; n; hn]: n gets only the input side
    (W_in x + b_in) and hn only the recurrent side (W_hn h + b_hn), since r multiplies hn alone.
    """
    name = "gru"
    gates = 3

    def _gru_weights(self, p, dtype) -> np.ndarray:
        W_hh, W_ih = p["weight_hh_l0"], p["weight_ih_l0"]
        b_ih, b_hh = p["bias_ih_l0"], p["bias_hh_l0"]
        Hn = W_hh.shape[1]
        I = W_ih.shape[1]
        rz, n = slice(0, 2 * Hn), slice(2 * Hn, 3 * Hn)
        W = self._buf("W", (4 * Hn, Hn + I + 1), dtype)
        W[rz, :Hn] = W_hh[rz]
        W[rz, Hn:Hn + I] = W_ih[rz]
        np.add(b_ih[rz], b_hh[rz], out=W[rz, Hn + I])
        W[rz] *= 0.5                         # r and z are sigmoids: see the module docstring
        W[n, :Hn] = 0.0
        W[n, Hn:Hn + I] = W_ih[n]
        W[n, Hn + I] = b_ih[n]
        W[3 * Hn:, :Hn] = W_hh[n]
        W[3 * Hn:, Hn:Hn + I] = 0.0
        W[3 * Hn:, Hn + I] = b_hh[n]
        return W

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._gru_weights(p, dtype)
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[:, :Hn]                       # Hs[t] is h_{t-1}; Hs[t + 1] is h_t
        A = np.empty((T, 4 * Hn, B), dtype)  # rows r, z, n, hn
        tmp = self._buf("tmp", (Hn, B), dtype)
        for t in range(T):
            a = A[t]
            np.matmul(W, Z[t], out=a)
            rz, n, hn = a[:2 * Hn], a[2 * Hn:3 * Hn], a[3 * Hn:]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            np.multiply(rz[:Hn], hn, out=tmp)
            n += tmp
            np.tanh(n, out=n)
            h = Hs[t + 1]
            np.subtract(Hs[t], n, out=tmp)
            tmp *= rz[Hn:]
            np.add(tmp, n, out=h)
            if nudge is not None and nudge[0] == t:
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs[1:]), A=_swap(A[:, :3 * Hn]), HN=_swap(A[:, 3 * Hn:]))

    def backward(self, p, cache, dH_out):
        X, Hs, HN = cache.X, _swap(cache.H), _swap(cache.HN)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        A = _swap(cache.A).reshape(T, 3, Hn, B)
        r, z, n = A[:, 0], A[:, 1], A[:, 2]
        W_hh = p["weight_hh_l0"]
        # The recurrent GEMM over the rows [r; z; n; hn] of a step's gradient: the n block
        # (input side only) meets zeros.
        WT = self._buf("WT", (Hn, 4 * Hn), dtype)
        WT[:, :2 * Hn] = W_hh[:2 * Hn].T
        WT[:, 2 * Hn:3 * Hn] = 0.0
        WT[:, 3 * Hn:] = W_hh[2 * Hn:].T
        # Factors for all steps at once:
        #   dz, dn = dh_t·P_t     P = [(h_{t-1} − n)·σ′(z); (1 − z)·(1 − n²)]
        #   dr = dn·Pr_t          Pr = hn·σ′(r)
        #   dhn = dn·r_t
        P = self._buf("P", (T, 2, Hn, B), dtype)
        Pz, Pn = P[:, 0], P[:, 1]
        tmp_all = self._buf("tmp_all", (T, Hn, B), dtype)
        np.multiply(z, z, out=tmp_all)
        np.subtract(z, tmp_all, out=tmp_all)
        np.subtract(0.0, n[0], out=Pz[0])
        np.subtract(Hs[:-1], n[1:], out=Pz[1:])
        Pz *= tmp_all
        np.multiply(n, n, out=Pn)
        np.subtract(1.0, Pn, out=Pn)
        np.subtract(1.0, z, out=tmp_all)
        Pn *= tmp_all
        Pr = self._buf("Pr", (T, Hn, B), dtype)
        np.multiply(r, r, out=Pr)
        np.subtract(r, Pr, out=Pr)
        Pr *= HN

        dHo, dense = self._direct_grad(dH_out, dtype)
        dH = np.empty((T, Hn, B), dtype)
        dH[T - 1] = dHo[T - 1]
        dA = np.empty((4 * Hn, T, B), dtype)  # rows r, z, n, hn; steps side by side
        step = self._buf("step", (4 * Hn, B), dtype)
        dr, zn, dn, dhn = step[:Hn], step[Hn:3 * Hn].reshape(2, Hn, B), step[2 * Hn:3 * Hn], \
            step[3 * Hn:]
        tmp = self._buf("tmp", (Hn, B), dtype)
        for t in range(T - 1, -1, -1):
            dh = dH[t]
            np.multiply(dh, P[t], out=zn)
            np.multiply(dn, Pr[t], out=dr)
            np.multiply(dn, r[t], out=dhn)
            dA[:, t] = step
            if t:
                prev = dH[t - 1]
                np.matmul(WT, step, out=prev)
                np.multiply(dh, z[t], out=tmp)   # h_t = … + z ⊙ h_{t-1}
                prev += tmp
                if dense:
                    prev += dHo[t - 1]
        G = dA.reshape(4 * Hn, T * B) @ self._layer_inputs(X, Hs, dtype).T
        I = X.shape[2]
        hidden_rows = np.r_[0:2 * Hn, 3 * Hn:4 * Hn]
        grads = {
            "weight_ih_l0": np.ascontiguousarray(G[:3 * Hn, Hn:Hn + I]),
            "weight_hh_l0": G[hidden_rows, :Hn],
            "bias_ih_l0": G[:3 * Hn, Hn + I].copy(),
            "bias_hh_l0": G[hidden_rows, Hn + I],
        }
        dAh = np.concatenate((dA[:2 * Hn], dA[3 * Hn:]))
        return Backward(grads=grads, dH=_swap(dH), dA=dA[:3 * Hn].transpose(1, 2, 0),
                        dAh=dAh.transpose(1, 2, 0))

    def gate_per_step(self, cache):
        return _gate_mean(cache, 1)


CELL_TYPES = {c.name: c for c in (TanhRNN, ReLURNN, LSTM, GRU)}


def make_cell(name: str) -> Cell:
    return CELL_TYPES[name]()
