"""Optimisers (SGD, momentum, Adam) and gradient clipping by global norm or by value."""
from __future__ import annotations

import math

import numpy as np


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """‖g‖ over all arrays. An array's float32 sum of squares that overflows, or is too small
    to be exact, is summed again in float64."""
    total = 0.0
    for g in grads.values():
        s = float(np.vdot(g, g))
        if not 1e-30 < s < 1e36 and g.dtype != np.float64:
            wide = g.astype(np.float64)
            s = float(np.vdot(wide, wide))
        total += s
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
    """Updates parameters in place. Adam keeps its moments for all parameters in one flat
    buffer, so a step is a dozen NumPy calls instead of a dozen per parameter."""

    def __init__(self, kind: str, lr: float, momentum: float = 0.9,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        self.kind, self.lr, self.momentum, self.betas, self.eps = kind, lr, momentum, betas, eps
        self.state: dict[str, list[np.ndarray]] = {}   # per parameter: views into the flat state
        self.t = 0
        self._layout: tuple | None = None
        self._flat: list[np.ndarray] = []

    def step(self, params: dict, grads: dict, names) -> None:
        self.t += 1
        names = list(names)
        lr = self.lr
        if self.kind == "sgd":
            for name in names:
                params[name] -= lr * grads[name]
        elif self.kind == "momentum":
            for name in names:
                (v,) = self.state.get(name) or self.state.setdefault(
                    name, [np.zeros_like(params[name])])
                v *= self.momentum
                v += grads[name]
                params[name] -= lr * v
        else:
            self._adam(params, grads, names)

    def _adam(self, params, grads, names):
        m, v, tmp, upd = self._flat_state(params, names)
        g = np.concatenate([grads[name].ravel() for name in names])
        b1, b2 = self.betas
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.multiply(m, step, out=upd)
        upd /= tmp
        start = 0
        for name in names:
            p = params[name]
            p -= upd[start:start + p.size].reshape(p.shape)
            start += p.size

    def _flat_state(self, params, names):
        """Moments m and v for `names`, laid end to end; rebuilt, keeping what each parameter
        has accumulated, only when the set of parameters changes."""
        layout = tuple((name, params[name].shape, params[name].dtype) for name in names)
        if layout != self._layout:
            dtype = np.result_type(*(params[name].dtype for name in names))
            total = sum(params[name].size for name in names)
            m, v = np.zeros(total, dtype), np.zeros(total, dtype)
            start = 0
            for name in names:
                p = params[name]
                views = [m[start:start + p.size].reshape(p.shape),
                         v[start:start + p.size].reshape(p.shape)]
                old = self.state.get(name)
                if old is not None and len(old) == 2 and old[0].shape == p.shape:
                    views[0][...] = old[0]
                    views[1][...] = old[1]
                self.state[name] = views
                start += p.size
            self._layout = layout
            self._flat = [m, v, np.empty(total, dtype), np.empty(total, dtype)]
        return self._flat
