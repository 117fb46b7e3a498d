"""Truncated backpropagation through time (Williams & Peng's BPTT(k)): the gradient of each
loss term is carried back at most k steps, so ∂L/∂h_t gathers only the losses at steps t..t+k.

A loss at the last step alone (a many-to-one head) needs one cut: nothing flows back past state
T−1−k. A loss at every step needs one horizon per loss term, which no single backward pass has.
But the backward pass is linear in its seeds, and two seeds m = k + 1 steps apart (τ and τ + m)
never meet inside their horizons: τ + m reaches back to τ + 1 only. So the seeds split into m
groups, τ ≡ g (mod m); group g's backward pass drops what it carries into each of its own seed
steps before adding that seed; the groups' passes add up to the truncated gradient. They run side
by side as copies of the batch in one wide backward pass (the forward cache tiled), at most
`MAX_COLUMNS` columns at a time: the price is about m backward passes for a per-step head.
"""
from __future__ import annotations

import numpy as np

from .cells import Backward, Cache, Cell

MAX_COLUMNS = 1024                      # batch copies side by side in one wide pass, at most


def last_step_drop(T: int, k: int) -> dict | None:
    """The cut for a loss at the last step only: drop what would reach state T−2−k."""
    return {T - 2 - k: slice(None)} if T - 2 - k >= 0 else None


def truncated_backprop(cell: Cell, p: dict, cache: Cache, direct: np.ndarray,
                       k: int) -> Backward:
    """The truncated backward pass for a loss at every step. direct (T, H, B): the loss's own
    ∂L/∂h_t in the cells' layout. The Backward has dH, dC, their norms, the gradients and the
    per-step metrics (computed here, at once); dA is not provided (None)."""
    T, Hn, B = direct.shape
    m = k + 1
    per_pass = max(1, min(m, MAX_COLUMNS // B))
    dH = np.zeros((T, B, Hn))
    dC = np.zeros((T, B, Hn)) if cache.C is not None else None
    grads = None
    dX = P = weights = None
    for g0 in range(0, m, per_pass):
        n = min(per_pass, m - g0)
        wide = _tiled(cache, n)
        seeds = np.zeros((T, Hn, n * B), direct.dtype)
        drop = {}
        for s in range(T):
            j = s % m - g0
            if 0 <= j < n:
                cols = slice(j * B, (j + 1) * B)
                seeds[s, :, cols] = direct[s]
                drop[s] = cols
        back = cell.backprop(p, wide, seeds[-1], seeds, drop=drop)
        dH += _fold(back.dH, n)
        if dC is not None:
            dC += _fold(back.dC, n)
        grads = ({k_: g.copy() for k_, g in back.grads.items()} if grads is None else
                 {k_: grads[k_] + g for k_, g in back.grads.items()})
        if back._step_metrics is not None:
            x, c, weights = back._step_metrics.parts()
            x = _fold(x.transpose(1, 2, 0), n)
            dX, P = (x, c) if dX is None else (dX + x, P + c)
    dtype = direct.dtype
    metrics = None
    if dX is not None:
        sq = np.einsum("tbi,tbi->t", dX, dX)
        done = {"dX": dX.astype(dtype), "dX_norm": np.sqrt(sq),
                "param_norm": np.sqrt((P * P).reshape(T, -1) @ weights.astype(np.float64))}
        metrics = lambda: done
    return Backward(grads={k_: g.astype(dtype) for k_, g in grads.items()},
                    dH=dH.astype(dtype), dC=None if dC is None else dC.astype(dtype),
                    dH_norm=_norms(dH), dC_norm=None if dC is None else _norms(dC),
                    step_metrics=metrics)


def _tiled(cache: Cache, n: int) -> Cache:
    """The forward cache of n copies of the batch side by side (T, n·B, ·)."""
    tile = lambda a: None if a is None else np.tile(a, (1, n, 1))
    return Cache(X=tile(cache.X), H=tile(cache.H), A=tile(cache.A), C=tile(cache.C),
                 TC=tile(cache.TC), HN=tile(cache.HN))


def _fold(a: np.ndarray, n: int) -> np.ndarray:
    """(T, n·B, ·) → (T, B, ·): the copies' sum, in float64."""
    T, nB, R = a.shape
    return np.asarray(a, np.float64).reshape(T, n, nB // n, R).sum(axis=1)


def _norms(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("tbh,tbh->t", a, a))
