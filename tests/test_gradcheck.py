"""Finite-difference checks in float64: parameter gradients, and the per-timestep ‖∂L/∂h_t‖
(and ‖∂L/∂c_t‖) as total derivatives through the recurrence."""
import zlib

import numpy as np
import pytest

from tutor.engine.init import init_params
from tutor.engine.model import Model
from tutor.engine.tasks import get_task

CELLS = ["rnn", "irnn", "lstm", "gru"]
HEADS = {"regression": "adding", "classify": "agreement", "sequence": "echo"}
SHAPES = [(3, 5, 4), (2, 1, 3), (4, 7, 2)]   # (B, T, H)


def make(cell, task_name, B, T, H, seed):
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        task = get_task(task_name)
        params = init_params(cell, task.input_size, H, task.output_size, rng, "default", None,
                             0.5, np.float64)
        for name in params:  # well away from PyTorch's small init: every path carries gradient
            params[name] = rng.normal(0, 0.6, size=params[name].shape)
        batch = task.batch(rng, B, max(T, task.min_len), np.float64)
        model = Model(cell, params, task.head)
        # ReLU is not differentiable at 0: check it at a point with no pre-activation near a kink.
        A = model.forward_backward(batch.x, batch.y, batch.mask).cache.A
        if cell != "irnn" or np.abs(A).min() > 0.05:
            return model, batch
    raise AssertionError("no kink-free point found")


def derivative(f, x, h=1e-3):
    """Five-point central difference: truncation error O(h⁴), so 1e-6 is within reach."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def step(cell):
    return 1e-3


def crosses_kink(model, batch, p, idx, old, h):
    patterns = []
    for v in (old - 2 * h, old + 2 * h):
        p[idx] = v
        patterns.append(model.forward_backward(batch.x, batch.y, batch.mask).cache.A > 0)
    p[idx] = old
    return not np.array_equal(*patterns)


def rel_error(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-6, np.abs(a) + np.abs(b)))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("shape", SHAPES)
def test_parameter_gradients_match_finite_differences(cell, head, shape):
    model, batch = make(cell, HEADS[head], *shape, seed=zlib.crc32(f"{cell}{head}{shape}".encode()))
    analytic = model.forward_backward(batch.x, batch.y, batch.mask).grads
    h = step(cell)
    for name, p in model.params.items():
        numeric = np.zeros_like(p)
        kinked = np.zeros(p.shape, dtype=bool)
        for idx in np.ndindex(p.shape):
            old = p[idx]

            def loss_at(v):
                p[idx] = v
                return model.forward_backward(batch.x, batch.y, batch.mask).loss
            numeric[idx] = derivative(loss_at, old, h)
            kinked[idx] = cell == "irnn" and crosses_kink(model, batch, p, idx, old, h)
            p[idx] = old
        # Where the stencil straddles a ReLU kink the loss is not smooth, so no difference
        # quotient is exact there. Most entries must still be checked.
        assert kinked.mean() < 0.5
        err = rel_error(analytic[name][~kinked], numeric[~kinked])
        assert err <= 1e-6, f"{cell}/{head} {name}: relative error {err:.2e}"


def _loss_nudged_state(model, batch, t, which, index, eps):
    delta = np.zeros((batch.x.shape[0], model.hidden))
    delta[index] = eps
    return model.forward_backward(batch.x, batch.y, batch.mask, nudge=(t, which, delta)).loss


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", ["classify", "sequence"])
def test_per_step_norms_are_total_derivatives(cell, head):
    """∂L/∂h_t from backward equals a finite difference of L with h_t nudged inside the
    recurrence, so every later step sees the change: the total derivative."""
    B, T, H = 2, 6, 3
    model, batch = make(cell, HEADS[head], B, T, H, seed=7)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    states = ["h", "c"] if cell == "lstm" else ["h"]
    for which in states:
        analytic = res.back.dH if which == "h" else res.back.dC
        for t in range(T):
            numeric = np.zeros((B, H))
            for b, j in np.ndindex(B, H):
                numeric[b, j] = derivative(
                    lambda e: _loss_nudged_state(model, batch, t, which, (b, j), e), 0.0,
                    step(cell))
            err = rel_error(analytic[t], numeric)
            assert err <= 1e-6, f"{cell} ∂L/∂{which}_{t + 1}: relative error {err:.2e}"
        norms = res.grad_norm_per_step if which == "h" else res.cell_grad_norm_per_step
        np.testing.assert_allclose(norms, np.linalg.norm(analytic.reshape(T, -1), axis=1))
