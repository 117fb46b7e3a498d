"""PyTorch's LSTM."""
from __future__ import annotations

import numpy as np

from .base import (Backward, Cache, Cell, _carry_back, _diagonals, _SquaredNorms, _gate_mean,
                   _row_means, _swap)


class LSTM(Cell):
    """PyTorch's LSTM, gates in the order i, f, g, o.

    Inside, step t's gates live in one slab S[t] = [i; f; o; g; c_{t-1}] (rows of H × B): the
    three sigmoid gates are contiguous, so they are activated together, and [i; f]·[g; c_{t-1}]
    is one call. The GEMM's weight rows are permuted to that order once per call; the public
    `Cache.A` (PyTorch's order) is built from the slab only when read."""
    name = "lstm"
    gates = 4

    @staticmethod
    def _order(Hn):
        """Weight rows in the slab's gate order i, f, o, g (PyTorch's is i, f, g, o)."""
        return np.r_[0:2 * Hn, 3 * Hn:4 * Hn, 2 * Hn:3 * Hn]

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype, (slice(0, 3 * Hn),), self._order(Hn))
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        S = self._fresh("S", (T + 1, 5, Hn, B), dtype)  # S[T] holds only c_T
        S[0, 4] = 0.0                                    # c_0
        TC = self._fresh("TC", (T, Hn, B), dtype)
        P = self._buf("P", (2, Hn, B), dtype)
        half = np.array(0.5, dtype)          # a 0-d array: cheaper per call than a Python float
        mm, mul, add, tanh = np.matmul, np.multiply, np.add, np.tanh
        nt = -1 if nudge is None else nudge[0]
        for t, (a, z, s3, if_, gc, o, c, tc, h) in enumerate(zip(
                S[:, :4].reshape(T + 1, 4 * Hn, B), Z, S[:, :3], S[:, :2], S[:, 3:5],
                S[:, 2], S[1:, 4], TC, Hs)):
            mm(W, z, a)
            tanh(a, a)
            mul(s3, half, s3)                # σ(a) = ½ + ½·tanh(a/2)
            add(s3, half, s3)
            mul(if_, gc, P)                  # i·g, f·c_{t-1}
            add(P[0], P[1], c)
            if t == nt and nudge[1] == "c":
                c += nudge[2].T
            tanh(c, tc)
            mul(o, tc, h)
            if t == nt and nudge[1] == "h":
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs), C=_swap(S[1:, 4]), TC=_swap(TC), extra={"S": S},
                     gates=lambda: self._public_gates(S[:T]))

    @staticmethod
    def _public_gates(S):
        """(T, B, 4H) in PyTorch's order from the slab's i, f, o, g."""
        T, _, Hn, B = S.shape
        return _swap(S[:, [0, 1, 3, 2]].reshape(T, 4 * Hn, B))

    @staticmethod
    def _slab(cache):
        """The forward slab, rebuilt from the public arrays for a cache made elsewhere."""
        T, B, Hn = cache.H.shape
        S = np.zeros((T + 1, 5, Hn, B), cache.H.dtype)
        S[:T, [0, 1, 3, 2]] = _swap(cache.A).reshape(T, 4, Hn, B)
        S[1:, 4] = _swap(cache.C)
        return S

    def backprop(self, p, cache, last, direct=None, drop=None):
        X, Hs, TC = cache.X, _swap(cache.H), _swap(cache.TC)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        S = cache.extra.get("S")
        if S is None:
            S = self._slab(cache)
        order = self._order(Hn)
        Wr = self._buf("Wr", (4 * Hn, Hn), dtype)
        Wr[...] = p["weight_hh_l0"][order]
        WT = Wr.T
        # dH with a spare slot in front: step t's ∂L/∂h_t is dHs[t + 1], and step t writes
        # what it passes back to step t − 1 into dHs[t].
        dHs = self._fresh("dH", (T + 1, Hn, B), dtype)
        dC = self._fresh("dC", (T, Hn, B), dtype)
        dHs[T] = last
        wg = self._weight_grads(X, Hs, 4 * Hn, dtype)
        # A step's δ, in the slab's order [di; df; do; dg], lives in this ring until its chunk
        # goes into the weight gradients.
        ring = self._buf("ring", (wg.steps, 4, Hn, B), dtype)
        Y = self._buf("Y", (4, Hn, B), dtype)
        M = self._buf("M", (2, Hn, B), dtype)
        v, x = self._buf("v", (Hn, B), dtype), self._buf("x", (Hn, B), dtype)
        M[1] = 0.0                           # the carry dc_{t+1}·f_{t+1}; none after step T
        m, carry, y0, y2, y3 = M[0], M[1], Y[0], Y[2], Y[3]
        y01 = Y[:2]
        mm, mul, add, sub = np.matmul, np.multiply, np.add, np.subtract
        cut = self._cutoff(dtype)
        norm_h, norm_c = _SquaredNorms(T, dtype), _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        # Per step, with the gates i, f, o, g, tc = tanh c_t and c_{t-1}, every call a product
        # or difference of (H, B) blocks (or of several adjacent ones):
        #   v = dh·o, Y_o = v·tc,        dc_t = carry + v − Y_o·tc
        #   m, carry = dc_t·i, dc_t·f    Y_i, Y_f = m·g, carry·c_{t-1},   Y_g = m + Y_i
        #   δ = Y − Y·[i; f; o; g]       so di = dc·g·σ′(i), df = dc·c_{t-1}·σ′(f),
        #                                do = dh·tc·σ′(o),   dg = dc·i·(1 + g)(1 − g)
        # `_gate_grads` repeats these operations for all steps when dA is asked for.
        for t0, t1 in wg.chunks(T):
            n = t1 - t0
            back = slice(t1 - 1, t0 - 1 if t0 else None, -1)      # steps t1−1 … t0
            ahead = slice(t1, t0, -1)                             # the same steps, shifted
            for t, o, tc, dh, dc, i, f, gc, gates, da, dh_prev in zip(
                    range(t1 - 1, t0 - 1, -1), S[back, 2], TC[back], dHs[ahead], dC[back],
                    S[back, 0], S[back, 1], S[back, 3:5], S[back, :4], ring[n - 1::-1],
                    dHs[back]):
                norm_h.take(t, dh)
                mul(dh, o, v)
                mul(v, tc, y2)
                mul(y2, tc, x)
                sub(v, x, x)
                add(carry, x, dc)
                norm_c.take(t, dc)
                mul(dc, i, m)
                mul(dc, f, carry)
                mul(M, gc, y01)
                add(m, y0, y3)
                mul(Y, gates, da)
                sub(Y, da, da)
                if not t:
                    break
                mm(WT, da.reshape(4 * Hn, B), dh_prev)
                if _carry_back(t, (dh_prev, carry), drop, direct, cut):
                    dHs[:t + 1] = 0.0        # nothing reaches the earlier steps any more
                    dC[:t] = 0.0
                    stop = t
                    break
            first = max(t0, stop)
            wg.add(ring.reshape(wg.steps, 4 * Hn, B)[first - t0:n], first, t1)
            if stop:
                break
        G = wg.total()
        G = G.reshape(4, Hn, -1)[[0, 1, 3, 2]].reshape(G.shape)   # back to PyTorch's order
        grads = self._split_grads(G, Hn, X.shape[2])
        dH = dHs[1:]
        dH_norm, dC_norm = norm_h.norms(), norm_c.norms()
        metrics = self._step_metrics(wg, p["weight_ih_l0"][order].T)
        return Backward(grads=grads, dH=_swap(dH), dC=_swap(dC),
                        dH_norm=dH_norm, dC_norm=dC_norm,
                        gate_grads=lambda: (self._gate_grads(S, TC, dH, dC), None),
                        step_metrics=metrics)

    @staticmethod
    def _gate_grads(S, TC, dH, dC):
        """dA (T, B, 4H) in PyTorch's order for all steps from the stored dH, dC (T, H, B) and
        the slab, with the same operations as the backward loop: the same numbers."""
        T, Hn, B = dH.shape
        mul, add, sub = np.multiply, np.add, np.subtract
        i, f, o, g, c_prev = (S[:T, k] for k in range(5))
        Y = np.empty((T, 4, Hn, B), dH.dtype)
        v = mul(dH, o)
        mul(v, TC, Y[:, 2])
        m = mul(dC, i)
        mul(m, g, Y[:, 0])
        mul(mul(dC, f), c_prev, Y[:, 1])
        add(m, Y[:, 0], Y[:, 3])
        dA = sub(Y, mul(Y, S[:T, :4]))
        return _swap(dA[:, [0, 1, 3, 2]].reshape(T, 4 * Hn, B))

    def state_jacobians(self, W_hh, cache, sample):
        """s = (h, c). With c_t = f·c_{t−1} + i·g and h_t = o·tanh c_t, σ′ = σ(1 − σ):
            ∂c_t/∂h_{t−1} = diag(c_{t−1}σ′(f))W_f + diag(gσ′(i))W_i + diag(i(1 − g²))W_g
            ∂c_t/∂c_{t−1} = diag(f)
            ∂h_t/∂h_{t−1} = diag(tanh c_t·σ′(o))W_o + diag(o(1 − tanh²c_t))·∂c_t/∂h_{t−1}
            ∂h_t/∂c_{t−1} = diag(o(1 − tanh²c_t)·f)"""
        (A, C, TC), _ = self._sequence(cache, sample, "A", "C", "TC")
        T, Hn = C.shape
        W = np.asarray(W_hh, np.float64).reshape(4, Hn, Hn)          # W_i, W_f, W_g, W_o
        i, f, g, o = (A[:, k * Hn:(k + 1) * Hn] for k in range(4))
        c_prev = np.concatenate([np.zeros_like(C[:1]), C[:-1]])
        d = lambda v: v[:, :, None]                                 # diag(v)·M as broadcasting
        dc_dh = (d(c_prev * f * (1 - f)) * W[1] + d(g * i * (1 - i)) * W[0]
                 + d(i * (1 - g * g)) * W[2])
        through_c = o * (1 - TC * TC)
        J = np.zeros((T, 2 * Hn, 2 * Hn))
        J[:, :Hn, :Hn] = d(TC * o * (1 - o)) * W[3] + d(through_c) * dc_dh
        J[:, :Hn, Hn:] = _diagonals(through_c * f)
        J[:, Hn:, :Hn] = dc_dh
        J[:, Hn:, Hn:] = _diagonals(f)
        return J

    def gate_per_step(self, cache):
        S = cache.extra.get("S")
        if S is None:
            return _gate_mean(cache, 1)
        T = cache.H.shape[0]
        return _row_means(S[:T, 1].reshape(T, -1))            # the forget gate, (T, H·B)
