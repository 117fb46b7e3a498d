"""Recurrent cells with exact backpropagation through time, in PyTorch's parameter layout.

Each cell has `forward(params, X)` returning the hidden states and a cache, and
`backward(params, cache, dH_out)` returning parameter gradients plus the total derivative
∂L/∂h_t at every step. Arrays are time-major inside: X is (T, B, I), H is (T, B, H).

Speed comes from doing the work that does not depend on the recurrence outside the time loop:
one GEMM for every step's input projection, and the weight gradients accumulated after the loop
from the stored per-step pre-activation gradients.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # 0.5·(1 + tanh(x/2)) equals the logistic function and never overflows.
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


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


class Cell:
    name = ""
    gates = 1

    def forward(self, p: dict, X: np.ndarray, nudge=None) -> Cache:
        """nudge=(t, "h" or "c", delta) adds delta to that state as step t computes it: the
        hook a finite-difference check of the total derivative ∂L/∂h_t uses."""
        raise NotImplementedError

    def backward(self, p: dict, cache: Cache, dH_out: np.ndarray) -> Backward:
        raise NotImplementedError

    def gate_per_step(self, cache: Cache) -> np.ndarray | None:
        """Batch-mean of the gate that decides how much memory is kept, per step."""
        return None

    @staticmethod
    def _weight_grads(X, H, dGi, dGh, grads_dtype) -> dict:
        """Weight gradients from all steps at once: sums over t of outer products."""
        T, B, I = X.shape
        Hn = H.shape[2]
        Gi = dGi.reshape(T * B, -1)
        Gh = dGh.reshape(T * B, -1)
        dW_ih = Gi.T @ X.reshape(T * B, I)
        # h_{t-1} pairs with step t; h_0 is zero so step 0 adds nothing to dW_hh.
        G = Gh.shape[1]
        dW_hh = dGh[1:].reshape((T - 1) * B, G).T @ H[:-1].reshape((T - 1) * B, Hn)
        return {
            "weight_ih_l0": dW_ih.astype(grads_dtype, copy=False),
            "weight_hh_l0": dW_hh.astype(grads_dtype, copy=False),
            "bias_ih_l0": Gi.sum(axis=0),
            "bias_hh_l0": Gh.sum(axis=0),
        }


class TanhRNN(Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    name = "rnn"

    def _act(self, a, out):
        return np.tanh(a, out=out)

    def _act_grad(self, a, h, dh, out):
        # tanh'(a) = 1 − h²
        np.multiply(h, h, out=out)
        np.subtract(1.0, out, out=out)
        out *= dh
        return out

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        W_hh_T = p["weight_hh_l0"].T
        A = X @ p["weight_ih_l0"].T
        A += p["bias_ih_l0"] + p["bias_hh_l0"]
        H = np.empty((T, B, W_hh_T.shape[0]), dtype=X.dtype)
        for t in range(T):
            if t:
                A[t] += H[t - 1] @ W_hh_T
            self._act(A[t], H[t])
            if nudge is not None and nudge[0] == t:
                H[t] += nudge[2]
        return Cache(X=X, H=H, A=A)

    def backward(self, p, cache, dH_out):
        W_hh = p["weight_hh_l0"]
        T = dH_out.shape[0]
        dH = dH_out.copy()
        dA = np.empty_like(dH)
        for t in range(T - 1, -1, -1):
            self._act_grad(cache.A[t], cache.H[t], dH[t], dA[t])
            if t:
                dH[t - 1] += dA[t] @ W_hh
        grads = self._weight_grads(cache.X, cache.H, dA, dA, dH.dtype)
        return Backward(grads=grads, dH=dH, dA=dA)


class ReLURNN(TanhRNN):
    """IRNN: h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), identity-initialised."""
    name = "irnn"

    def _act(self, a, out):
        return np.maximum(a, 0.0, out=out)

    def _act_grad(self, a, h, dh, out):
        np.multiply(dh, a > 0, out=out)
        return out


class LSTM(Cell):
    """PyTorch's LSTM, gates in the order i, f, g, o."""
    name = "lstm"
    gates = 4

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        W_hh_T = p["weight_hh_l0"].T
        Hn = W_hh_T.shape[0]
        A = X @ p["weight_ih_l0"].T
        A += p["bias_ih_l0"] + p["bias_hh_l0"]
        H = np.empty((T, B, Hn), dtype=X.dtype)
        C = np.empty_like(H)
        TC = np.empty_like(H)
        for t in range(T):
            a = A[t]
            if t:
                a += H[t - 1] @ W_hh_T
            sigmoid(a[:, :2 * Hn], out=a[:, :2 * Hn])
            np.tanh(a[:, 2 * Hn:3 * Hn], out=a[:, 2 * Hn:3 * Hn])
            sigmoid(a[:, 3 * Hn:], out=a[:, 3 * Hn:])
            i, f, g, o = a[:, :Hn], a[:, Hn:2 * Hn], a[:, 2 * Hn:3 * Hn], a[:, 3 * Hn:]
            c = C[t]
            np.multiply(i, g, out=c)
            if t:
                c += f * C[t - 1]
            if nudge is not None and nudge[0] == t and nudge[1] == "c":
                c += nudge[2]
            np.tanh(c, out=TC[t])
            np.multiply(o, TC[t], out=H[t])
            if nudge is not None and nudge[0] == t and nudge[1] == "h":
                H[t] += nudge[2]
        return Cache(X=X, H=H, A=A, C=C, TC=TC)

    def backward(self, p, cache, dH_out):
        W_hh = p["weight_hh_l0"]
        A, C, TC = cache.A, cache.C, cache.TC
        T, B, Hn = dH_out.shape
        dH = dH_out.copy()
        dC = np.empty_like(dH)
        dA = np.empty_like(A)
        tmp = np.empty((B, Hn), dtype=dH.dtype)
        for t in range(T - 1, -1, -1):
            a, da, dh, dc = A[t], dA[t], dH[t], dC[t]
            i, f, g, o = a[:, :Hn], a[:, Hn:2 * Hn], a[:, 2 * Hn:3 * Hn], a[:, 3 * Hn:]
            di, df, dg, do = da[:, :Hn], da[:, Hn:2 * Hn], da[:, 2 * Hn:3 * Hn], da[:, 3 * Hn:]
            # dc_t = dh_t · o_t · (1 − tanh² c_t) + (dc_{t+1} · f_{t+1}, added below at t+1)
            np.multiply(TC[t], TC[t], out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            if t < T - 1:
                dc += tmp            # dc already holds dc_{t+1} · f_{t+1}
            else:
                dc[...] = tmp
            np.multiply(dh, TC[t], out=do)
            do *= o * (1.0 - o)
            np.multiply(dc, g, out=di)
            di *= i * (1.0 - i)
            np.multiply(dc, i, out=dg)
            dg *= 1.0 - g * g
            if t:
                np.multiply(dc, C[t - 1], out=df)
                df *= f * (1.0 - f)
                np.multiply(dc, f, out=dC[t - 1])
                dH[t - 1] += da @ W_hh
            else:
                df[...] = 0.0
        grads = self._weight_grads(cache.X, cache.H, dA, dA, dH.dtype)
        return Backward(grads=grads, dH=dH, dC=dC, dA=dA)

    def gate_per_step(self, cache):
        Hn = cache.H.shape[2]
        return cache.A[:, :, Hn:2 * Hn].mean(axis=(1, 2))


class GRU(Cell):
    """PyTorch's GRU, gates r, z, n, with the reset applied after the recurrent product:
    n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}."""
    name = "gru"
    gates = 3

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        W_hh_T = p["weight_hh_l0"].T
        b_hh = p["bias_hh_l0"]
        Hn = W_hh_T.shape[0]
        A = X @ p["weight_ih_l0"].T
        A += p["bias_ih_l0"]
        H = np.empty((T, B, Hn), dtype=X.dtype)
        HN = np.empty_like(H)
        h_prev = np.zeros((B, Hn), dtype=X.dtype)
        hp = np.empty((B, 3 * Hn), dtype=X.dtype)
        for t in range(T):
            a = A[t]
            np.matmul(h_prev, W_hh_T, out=hp)
            hp += b_hh
            a[:, :2 * Hn] += hp[:, :2 * Hn]
            sigmoid(a[:, :2 * Hn], out=a[:, :2 * Hn])
            HN[t] = hp[:, 2 * Hn:]
            r, z, n = a[:, :Hn], a[:, Hn:2 * Hn], a[:, 2 * Hn:]
            n += r * HN[t]
            np.tanh(n, out=n)
            h = H[t]
            np.subtract(h_prev, n, out=h)
            h *= z
            h += n
            if nudge is not None and nudge[0] == t:
                h += nudge[2]
            h_prev = h
        return Cache(X=X, H=H, A=A, HN=HN)

    def backward(self, p, cache, dH_out):
        W_hh = p["weight_hh_l0"]
        A, H, HN = cache.A, cache.H, cache.HN
        T, B, Hn = dH_out.shape
        dH = dH_out.copy()
        dGi = np.empty_like(A)
        dGh = np.empty_like(A)
        zeros = np.zeros((B, Hn), dtype=dH.dtype)
        for t in range(T - 1, -1, -1):
            a, dh = A[t], dH[t]
            r, z, n = a[:, :Hn], a[:, Hn:2 * Hn], a[:, 2 * Hn:]
            h_prev = H[t - 1] if t else zeros
            gi, gh = dGi[t], dGh[t]
            dr, dz, dn = gi[:, :Hn], gi[:, Hn:2 * Hn], gi[:, 2 * Hn:]
            np.multiply(dh, 1.0 - z, out=dn)
            dn *= 1.0 - n * n
            np.subtract(h_prev, n, out=dz)
            dz *= dh
            dz *= z * (1.0 - z)
            np.multiply(dn, HN[t], out=dr)
            dr *= r * (1.0 - r)
            gh[:, :2 * Hn] = gi[:, :2 * Hn]
            np.multiply(dn, r, out=gh[:, 2 * Hn:])
            if t:
                dH[t - 1] += dh * z
                dH[t - 1] += gh @ W_hh
        grads = self._weight_grads(cache.X, H, dGi, dGh, dH.dtype)
        return Backward(grads=grads, dH=dH, dA=dGi, dAh=dGh)

    def gate_per_step(self, cache):
        Hn = cache.H.shape[2]
        return cache.A[:, :, Hn:2 * Hn].mean(axis=(1, 2))


CELL_TYPES = {c.name: c for c in (TanhRNN, ReLURNN, LSTM, GRU)}


def make_cell(name: str) -> Cell:
    return CELL_TYPES[name]()
