"""The linear read-out and its losses: regression (MSE), classification (cross-entropy) at the
last step, or per-step classification over the steps a mask selects (or weighs)."""
from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def loss_and_grad(kind: str, Y: np.ndarray, y, mask=None):
    """Y: (B, O) outputs for many-to-one heads, (T, B, O) for "sequence".
    mask, for "sequence": None (every step), a (T,) bool array (the steps that count), or a
    (T,) float array of weights (a weighted mean over the steps).
    Returns (loss, accuracy or None, dL/dY)."""
    if kind == "regression":
        diff = Y - y
        B = Y.shape[0]
        return float(np.mean(diff * diff)), None, (2.0 / diff.size) * diff
    if kind == "classify":
        B = Y.shape[0]
        P = softmax(Y.astype(np.float64, copy=True))
        rows = np.arange(B)
        loss = -np.log(np.maximum(P[rows, y], 1e-300)).mean()
        acc = float(np.mean(P.argmax(axis=1) == y))
        P[rows, y] -= 1.0
        return float(loss), acc, (P / B).astype(Y.dtype)
    if kind == "sequence":
        T, B, _ = Y.shape
        P = softmax(Y.astype(np.float64, copy=True))
        yt = np.asarray(y).T                      # (T, B)
        if mask is not None and np.asarray(mask).dtype.kind == "f":
            return _weighted_sequence(Y, P, yt, np.asarray(mask, dtype=np.float64))
        m = np.ones(T, dtype=bool) if mask is None else mask
        n = int(m.sum()) * B
        tt, bb = np.nonzero(np.broadcast_to(m[:, None], (T, B)))
        loss = -np.log(np.maximum(P[tt, bb, yt[tt, bb]], 1e-300)).sum() / n
        acc = float(np.mean(P[tt, bb].argmax(axis=-1) == yt[tt, bb]))
        P[tt, bb, yt[tt, bb]] -= 1.0
        P[~m] = 0.0
        return float(loss), acc, (P / n).astype(Y.dtype)
    raise ValueError(f"unknown head {kind!r}")


def _weighted_sequence(Y, P, yt, weights):
    """Per-step cross-entropy as a weighted mean: step t counts weights[t] / Σ weights. The
    reported accuracy is over the steps of non-zero weight, unweighted."""
    T, B, _ = P.shape
    w = weights / (weights.sum() * B)                          # (T,)
    picked = np.take_along_axis(P, yt[:, :, None], axis=2)[:, :, 0]   # (T, B)
    loss = -(np.log(np.maximum(picked, 1e-300)) * w[:, None]).sum()
    counted = weights > 0
    acc = float(np.mean(P[counted].argmax(axis=-1) == yt[counted]))
    np.put_along_axis(P, yt[:, :, None], picked[:, :, None] - 1.0, axis=2)
    P *= w[:, None, None]
    return float(loss), acc, P.astype(Y.dtype)
