"""The fast cells against the textbook reference (tutor/engine/reference.py), and the reference
against finite differences: so the readable file is the ground truth and the fast one agrees."""
import numpy as np
import pytest

from tutor.engine import reference as ref
from tutor.engine.cells import make_cell
from tutor.engine.optim import clip_grads, global_norm

GATES = {"rnn": 1, "irnn": 1, "lstm": 4, "gru": 3}


def random_params(cell, I, H, rng):
    G = GATES[cell]
    return {"weight_ih_l0": rng.normal(0, 0.5, (G * H, I)),
            "weight_hh_l0": rng.normal(0, 0.5, (G * H, H)),
            "bias_ih_l0": rng.normal(0, 0.5, G * H),
            "bias_hh_l0": rng.normal(0, 0.5, G * H)}


@pytest.mark.parametrize("cell", list(GATES))
@pytest.mark.parametrize("shape", [(3, 7, 4, 5), (1, 1, 2, 3), (2, 30, 3, 6)])  # B, T, I, H
@pytest.mark.parametrize("every_step", [True, False])
def test_fast_cell_matches_the_reference(cell, shape, every_step):
    B, T, I, H = shape
    rng = np.random.default_rng(hash((cell, shape, every_step)) % 2**32)
    p = random_params(cell, I, H, rng)
    X = rng.normal(size=(T, B, I))
    dH_out = rng.normal(size=(T, B, H))
    if not every_step:                       # a many-to-one head: only the last step
        dH_out[:-1] = 0.0
    fast = make_cell(cell)
    cache = fast.forward(p, X)
    back = fast.backward(p, cache, dH_out)
    want = ref.cell_forward_backward(cell, p, X, dH_out)
    close = lambda a, b, what: np.testing.assert_allclose(
        a, b, rtol=1e-10, atol=1e-12, err_msg=f"{cell} {shape} {what}")
    close(cache.H, want["H"], "H")
    for name, g in want["grads"].items():
        close(back.grads[name], g, name)
    close(back.dH_norm, want["dH_norm"], "dH_norm")
    if cell == "lstm":
        close(cache.C, want["C"], "C")
        close(back.dC_norm, want["dC_norm"], "dC_norm")


def numeric_grad(f, arrays, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of every array."""
    out = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = f()
            a[idx] = old - eps
            down = f()
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        out.append(g)
    return out


@pytest.mark.parametrize("cell", list(GATES))
def test_reference_steps_match_finite_differences(cell):
    rng = np.random.default_rng(7)
    B, I, H = 3, 4, 5
    p = random_params(cell, I, H, rng)
    W = [p[k] for k in ref.PARAM_NAMES]
    x, h = rng.normal(size=(B, I)), rng.normal(size=(B, H))
    dh = rng.normal(size=(B, H))
    forward, backward = ref.STEPS[cell]
    if cell == "irnn":                       # fewer pre-activations near relu's kink
        x[...], h[...] = np.abs(x), np.abs(h)
    if cell == "lstm":
        c, dc = rng.normal(size=(B, H)), rng.normal(size=(B, H))

        def loss():
            h2, c2, _ = forward(x, h, c, *W)
            return np.sum(dh * h2) + np.sum(dc * c2)
        got = backward(dh, dc, forward(x, h, c, *W)[2])
        wrt = [x, h, c, *W]
    else:
        def loss():
            return np.sum(dh * forward(x, h, *W)[0])
        got = backward(dh, forward(x, h, *W)[1])
        wrt = [x, h, *W]
    for g, n in zip(got, numeric_grad(loss, wrt)):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)


def test_rnn_backward_is_the_generic_loop_and_matches_finite_differences():
    rng = np.random.default_rng(3)
    T, B, I, H = 6, 2, 3, 4
    p = random_params("rnn", I, H, rng)
    W = [p[k] for k in ref.PARAM_NAMES]
    x, h0, dh = rng.normal(size=(T, B, I)), rng.normal(size=(B, H)), rng.normal(size=(T, B, H))
    h, caches = ref.rnn_forward(x, h0, *W)
    mine = ref.rnn_backward(dh, caches)
    generic = ref.sequence_backward(ref.rnn_step_backward, dh, caches)
    for a, b in zip(mine, generic):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    numeric = numeric_grad(lambda: np.sum(dh * ref.rnn_forward(x, h0, *W)[0]), [x, h0, *W])
    for g, n in zip(mine[:6], numeric):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)
    # the norms: total ∂L/∂h_T is the loss's own; earlier ones grow by what flows back
    assert mine[6][-1] == pytest.approx(np.linalg.norm(dh[-1]))


@pytest.mark.parametrize("threshold", [0.3, 1e3])
def test_clipping_matches_the_engine(threshold):
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    clipped, norm = ref.clip_by_norm(grads, threshold)
    assert norm == pytest.approx(global_norm(grads))
    for mode, mine in (("norm", clipped), ("value", ref.clip_by_value(grads, threshold))):
        engine = {k: v.copy() for k, v in grads.items()}
        clip_grads(engine, global_norm(engine), mode, threshold)
        for k in grads:
            np.testing.assert_allclose(mine[k], engine[k], rtol=1e-14)
    assert grads["a"].max() > 0.3            # the input is left as it was
