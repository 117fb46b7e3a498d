"""The tanh RNN and the IRNN (ReLU, identity-initialised)."""
from __future__ import annotations

import numpy as np

from .base import Backward, Cache, Cell, _SquaredNorms, _carry_back, _swap


class TanhRNN(Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    name = "rnn"

    def _act(self, a, out):
        np.tanh(a, out)

    def _slope(self, A, Hs, out):
        """dh_t/da_t for all steps: tanh' = 1 − h²."""
        np.multiply(Hs, Hs, out)
        np.subtract(1.0, out, out)

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype)
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        A = self._fresh("A", (T, Hn, B), dtype)
        mm, act = np.matmul, self._act
        nt = -1 if nudge is None else nudge[0]
        for t, (a, z, h) in enumerate(zip(A, Z, Hs)):
            mm(W, z, a)
            act(a, h)
            if t == nt:
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs), A=_swap(A))

    def backprop(self, p, cache, last, direct=None, drop=None):
        X, Hs, A = cache.X, _swap(cache.H), _swap(cache.A)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        WT = self._recurrent_T(p, dtype)
        dH = self._fresh("dH", (T, Hn, B), dtype)
        dA = self._fresh("dA", (T, Hn, B), dtype)
        dH[T - 1] = last
        wg = self._weight_grads(X, Hs, Hn, dtype)
        D = self._buf("D", (wg.steps, Hn, B), dtype)
        mm, mul = np.matmul, np.multiply
        cut = self._cutoff(dtype)
        norms = _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        for t0, t1 in wg.chunks(T):
            slope = D[:t1 - t0]
            self._slope(A[t0:t1], Hs[t0:t1], slope)
            for t in range(t1 - 1, t0 - 1, -1):
                norms.take(t, dH[t])
                mul(dH[t], slope[t - t0], dA[t])
                if t:
                    prev = dH[t - 1]
                    mm(WT, dA[t], prev)
                    if _carry_back(t, (prev,), drop, direct, cut):
                        dH[:t] = 0.0         # nothing reaches the earlier steps any more
                        dA[:t] = 0.0
                        stop = t
                        break
            wg.add(dA[max(t0, stop):t1], max(t0, stop), t1)
            if stop:
                break
        grads = self._split_grads(wg.total(), Hn, X.shape[2])
        dH_norm = norms.norms()
        return Backward(grads=grads, dH=_swap(dH), dA=_swap(dA), dH_norm=dH_norm,
                        step_metrics=self._step_metrics(wg, p["weight_ih_l0"].T))


    def state_jacobians(self, W_hh, cache, sample):
        """∂h_t/∂h_{t−1} = diag(f′(a_t))·W_hh."""
        (H,), _ = self._sequence(cache, sample, "H")
        slope = np.empty_like(H)
        self._slope(None, H, slope)
        return slope[:, :, None] * np.asarray(W_hh, np.float64)


class ReLURNN(TanhRNN):
    """IRNN: h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), identity-initialised."""
    name = "irnn"

    def _act(self, a, out):
        np.maximum(a, 0.0, out=out)

    def _slope(self, A, Hs, out):
        # relu'(a) is 1 where h = relu(a) > 0 and 0 elsewhere: the sign of h.
        np.sign(Hs, out)
