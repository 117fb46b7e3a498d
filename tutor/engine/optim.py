"""Optimisers (SGD, momentum, Adam) and gradient clipping by global norm or by value."""
from __future__ import annotations

import math

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    total = 0.0
    for g in grads.values():
        flat = g.ravel().astype(np.float64, copy=False)
        total += float(flat @ flat)
    return math.sqrt(total)


def clip_grads(grads: dict, norm: float, mode: str, threshold: float) -> bool:
    """Clip in place. norm is the global norm before clipping. Returns whether anything changed.

    By norm: when ‖g‖ > η, g ← η·g/‖g‖, the direction kept. By value: each component is cut to
    [−η, η] on its own, which can turn the direction."""
    if threshold <= 0:
        return False
    if mode == "norm":
        if norm <= threshold:
            return False
        scale = threshold / norm
        for g in grads.values():
            g *= scale
        return True
    clipped = False
    for g in grads.values():
        if np.any(np.abs(g) > threshold):
            clipped = True
            np.clip(g, -threshold, threshold, out=g)
    return clipped


class Optimizer:
    def __init__(self, kind: str, lr: float, momentum: float = 0.9,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        self.kind, self.lr, self.momentum, self.betas, self.eps = kind, lr, momentum, betas, eps
        self.state: dict[str, list[np.ndarray]] = {}
        self.t = 0

    def step(self, params: dict, grads: dict, names) -> None:
        self.t += 1
        lr = self.lr
        for name in names:
            p, g = params[name], grads[name]
            if self.kind == "sgd":
                p -= lr * g
            elif self.kind == "momentum":
                (v,) = self.state.setdefault(name, [np.zeros_like(p)])
                v *= self.momentum
                v += g
                p -= lr * v
            else:
                b1, b2 = self.betas
                m, v = self.state.setdefault(name, [np.zeros_like(p), np.zeros_like(p)])
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * (g * g)
                step = lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
                p -= step * m / (np.sqrt(v) + self.eps)
