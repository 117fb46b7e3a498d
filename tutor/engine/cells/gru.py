"""PyTorch's GRU."""
from __future__ import annotations

import numpy as np

from .base import (Backward, Cache, Cell, _carry_back, _diagonals, _SquaredNorms, _gate_mean,
                   _swap)


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
        A = self._fresh("A", (T, 4 * Hn, B), dtype)  # rows r, z, n, hn
        tmp = self._buf("tmp", (Hn, B), dtype)
        half = np.array(0.5, dtype)
        mm, mul, add, sub, tanh = np.matmul, np.multiply, np.add, np.subtract, np.tanh
        nt = -1 if nudge is None else nudge[0]
        for t, (a, zt, rz, r, z, n, hn, h_prev, h) in enumerate(zip(
                A, Z, A[:, :2 * Hn], A[:, :Hn], A[:, Hn:2 * Hn], A[:, 2 * Hn:3 * Hn],
                A[:, 3 * Hn:], Hs, Hs[1:])):
            mm(W, zt, a)
            tanh(rz, rz)
            mul(rz, half, rz)
            add(rz, half, rz)
            mul(r, hn, tmp)
            add(n, tmp, n)
            tanh(n, n)
            sub(h_prev, n, tmp)
            mul(tmp, z, tmp)
            add(tmp, n, h)
            if t == nt:
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs[1:]), A=_swap(A[:, :3 * Hn]), HN=_swap(A[:, 3 * Hn:]))

    def backprop(self, p, cache, last, direct=None, drop=None):
        X, Hs, HN = cache.X, _swap(cache.H), _swap(cache.HN)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        A = _swap(cache.A).reshape(T, 3, Hn, B)
        r, z = A[:, 0], A[:, 1]
        W_hh = p["weight_hh_l0"]
        # The recurrent GEMM over the rows [r; z; n; hn] of a step's δ: the n block (input
        # side only) meets zeros.
        WT = self._buf("WT", (Hn, 4 * Hn), dtype)
        WT[:, :2 * Hn] = W_hh[:2 * Hn].T
        WT[:, 2 * Hn:3 * Hn] = 0.0
        WT[:, 3 * Hn:] = W_hh[2 * Hn:].T
        dH = self._fresh("dH", (T, Hn, B), dtype)
        dA = self._fresh("dA", (T, 4, Hn, B), dtype)  # rows r, z, n, hn
        dH[T - 1] = last
        wg = self._weight_grads(X, Hs, 4 * Hn, dtype)
        P = self._buf("P", (wg.steps, 3, Hn, B), dtype)
        tmp = self._buf("tmp", (Hn, B), dtype)
        mm, mul, add = np.matmul, np.multiply, np.add
        cut = self._cutoff(dtype)
        norms = _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        for t0, t1 in wg.chunks(T):
            p3 = P[:t1 - t0]
            self._factors(A[t0:t1], Hs, HN[t0:t1], t0, p3)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                dh, da = dH[t], dA[t]
                norms.take(t, dh)
                mul(dh, p3[k, 1:], da[1:3])  # dz, dn
                mul(da[2], p3[k, 0], da[0])  # dr = dn·hn·σ′(r)
                mul(da[2], r[t], da[3])      # dhn = dn·r
                if t:
                    prev = dH[t - 1]
                    mm(WT, da.reshape(4 * Hn, B), prev)
                    mul(dh, z[t], tmp)       # h_t = … + z ⊙ h_{t-1}
                    add(prev, tmp, prev)
                    if _carry_back(t, (prev,), drop, direct, cut):
                        dH[:t] = 0.0         # nothing reaches the earlier steps any more
                        dA[:t] = 0.0
                        stop = t
                        break
            wg.add(dA.reshape(T, 4 * Hn, B)[max(t0, stop):t1], max(t0, stop), t1)
            if stop:
                break
        G = wg.total()
        I = X.shape[2]
        hidden_rows = np.r_[0:2 * Hn, 3 * Hn:4 * Hn]
        grads = {
            "weight_ih_l0": G[:3 * Hn, Hn:Hn + I].copy(),
            "weight_hh_l0": G[hidden_rows, :Hn],
            "bias_ih_l0": G[:3 * Hn, Hn + I].copy(),
            "bias_hh_l0": G[hidden_rows, Hn + I],
        }
        dH_norm = norms.norms()
        metrics = self._step_metrics(wg, p["weight_ih_l0"].T)
        # dA (r, z, n rows) is a view; dAh (r, z, hn) needs a copy, made only if asked for.
        return Backward(grads=grads, dH=_swap(dH), dH_norm=dH_norm, gate_grads=lambda: (
            _swap(dA.reshape(T, 4 * Hn, B)[:, :3 * Hn]),
            _swap(dA[:, [0, 1, 3]].reshape(T, 3 * Hn, B))), step_metrics=metrics)

    @staticmethod
    def _contribution_layout(rows, Hn, I):
        """Rows r, z, n, hn against [h; x; 1]: r and z as in every cell; n (input side) meets
        x and b_in only, hn (recurrent side) h and b_hn only."""
        w = np.ones((rows, Hn + I + 1))
        w[:2 * Hn, Hn + I] = 2.0
        w[2 * Hn:3 * Hn, :Hn] = 0.0
        w[3 * Hn:, Hn:Hn + I] = 0.0
        return w

    @staticmethod
    def _factors(a, Hs, hn, t0, P):
        """For the chunk of steps t0.. (a: its gates (n, 3, H, B), hn: its W_hn h + b_hn),
        every factor of the backward step that does not depend on the recurrence:
          dr = dn·P[0]           P[0] = hn·σ′(r)
          dz, dn = dh_t·P[1:]    P[1] = (h_{t-1} − n)·σ′(z),  P[2] = (1 − z)·(1 − n²)"""
        mul, sub = np.multiply, np.subtract
        n = a.shape[0]
        one = np.array(1.0, a.dtype)
        z, nn = a[:, 1], a[:, 2]
        sig = P[:, :2]                       # σ′ = σ − σ² for r and z together
        mul(a[:, :2], a[:, :2], sig)
        sub(a[:, :2], sig, sig)
        mul(P[:, 0], hn, P[:, 0])
        tmp = P[:, 2]
        if t0:
            sub(Hs[t0 - 1:t0 + n - 1], nn, tmp)
        else:                                # h_0 = 0
            sub(Hs[:n - 1], nn[1:], tmp[1:])
            np.negative(nn[0], tmp[0])
        mul(P[:, 1], tmp, P[:, 1])
        mul(nn, nn, P[:, 2])
        sub(one, P[:, 2], P[:, 2])
        tmp = np.subtract(one, z)
        mul(P[:, 2], tmp, P[:, 2])

    def state_jacobians(self, W_hh, cache, sample):
        """With h_t = (1 − z)·n + z·h_{t−1} and n = tanh(W_in x + b_in + r·hn), hn = W_hn h_{t−1}
        + b_hn, σ′ = σ(1 − σ):
            ∂h_t/∂h_{t−1} = diag(z) + diag((h_{t−1} − n)σ′(z))W_z
                            + diag((1 − z)(1 − n²))·(diag(r)W_n + diag(hn·σ′(r))W_r)"""
        (A, HN), h_prev = self._sequence(cache, sample, "A", "HN")
        Hn = HN.shape[1]
        W = np.asarray(W_hh, np.float64).reshape(3, Hn, Hn)          # W_r, W_z, W_n
        r, z, n = (A[:, k * Hn:(k + 1) * Hn] for k in range(3))
        d = lambda v: v[:, :, None]
        into_n = (1 - z) * (1 - n * n)
        return (_diagonals(z) + d((h_prev - n) * z * (1 - z)) * W[1]
                + d(into_n * r) * W[2] + d(into_n * HN * r * (1 - r)) * W[0])

    def gate_per_step(self, cache):
        return _gate_mean(cache, 1)
