"""The per-timestep mechanism metrics of a pass, checked by finite differences in float64:
‖∂L/∂x_t‖ over the batch and for one sequence alone, and each step's own contribution to the
recurrent layer's gradient (the gradient with respect to a copy of the parameters used at that
step only), for every cell and head."""
import numpy as np
import pytest

from test_gradcheck import CELLS, HEADS, derivative, make, rel_error
from tutor.engine import Run, Settings
from tutor.engine import reference as ref
from tutor.engine.cells import PARAM_NAMES
from tutor.engine.heads import loss_and_grad


def loss_with_step_params(model, batch, t_own, own):
    """The model's loss when step t_own uses the parameters `own` and every other step the
    model's: the textbook steps of tutor.engine.reference, then the model's head."""
    step_forward, _ = ref.STEPS[model.cell_name]
    p = model.params
    X = batch.x.swapaxes(0, 1)
    B, H = X.shape[1], model.hidden
    states = (np.zeros((B, H)),) * (2 if model.cell_name == "lstm" else 1)
    hs = []
    for t, x_t in enumerate(X):
        weights = tuple((own if t == t_own else p)[k] for k in PARAM_NAMES)
        *states, _ = step_forward(x_t, *states, *weights)
        hs.append(states[0])
    Hs = np.stack(hs)
    W, b = p["head.weight"], p["head.bias"]
    if model.head_kind == "sequence":
        return loss_and_grad("sequence", Hs @ W.T + b, batch.y, batch.mask)[0]
    return loss_and_grad(model.head_kind, Hs[-1] @ W.T + b, batch.y)[0]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
def test_each_step_contribution_is_the_gradient_of_its_own_copy(cell, head):
    B, T, H = 2, 4, 3
    model, batch = make(cell, HEADS[head], B, T, H, seed=11)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    assert loss_with_step_params(model, batch, -1, model.params) == pytest.approx(res.loss)
    per_step = []
    for t in range(T):
        own = {k: model.params[k].copy() for k in PARAM_NAMES}
        grads = {}
        for name in PARAM_NAMES:
            g = np.zeros_like(own[name])
            for idx in np.ndindex(g.shape):
                old = own[name][idx]

                def loss_at(v):
                    own[name][idx] = v
                    return loss_with_step_params(model, batch, t, own)
                g[idx] = derivative(loss_at, old)
                own[name][idx] = old
            grads[name] = g
        per_step.append(grads)
    numeric = np.array([np.sqrt(sum(np.sum(g ** 2) for g in s.values())) for s in per_step])
    err = rel_error(res.param_grad_norm_per_step, numeric)
    assert err <= 1e-6, f"{cell}/{head} param_grad_norm_per_step: relative error {err:.2e}"
    for name in PARAM_NAMES:                     # the T contributions make the gradient
        total = sum(s[name] for s in per_step)
        assert rel_error(res.grads[name], total) <= 1e-6, name


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
def test_step_contributions_sum_exactly_to_the_gradient(cell, head):
    """The textbook backward, fed the engine's total ∂L/∂h_t (and carrying ∂L/∂c_t itself), gives
    each step's parameter gradients: they add up to the engine's gradient, and their norms are
    the engine's per-step norms (to rounding)."""
    B, T, H = 3, 7, 4
    model, batch = make(cell, HEADS[head], B, T, H, seed=5)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    step_forward, step_backward = ref.STEPS[cell]
    weights = tuple(model.params[k] for k in PARAM_NAMES)
    zeros = np.zeros((B, H))
    _, caches = ref.sequence_forward(step_forward, batch.x.swapaxes(0, 1),
                                     (zeros, zeros) if cell == "lstm" else (zeros,), weights)
    carried_c = zeros
    contributions = [None] * T
    for t in reversed(range(T)):
        dh = res.back.dH[t]
        if cell == "lstm":
            out = step_backward(dh, carried_c, caches[t])
            carried_c, grads = out[2], out[3:]
        else:
            grads = step_backward(dh, caches[t])[2:]
        contributions[t] = dict(zip(PARAM_NAMES, grads))
    for name in PARAM_NAMES:
        np.testing.assert_allclose(sum(c[name] for c in contributions), res.grads[name],
                                   rtol=1e-10, atol=1e-13)
    norms = [np.sqrt(sum(np.sum(g ** 2) for g in c.values())) for c in contributions]
    np.testing.assert_allclose(res.param_grad_norm_per_step, norms, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
def test_input_gradients_match_finite_differences(cell, head):
    B, T, H = 3, 5, 3
    model, batch = make(cell, HEADS[head], B, T, H, seed=3)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    x = batch.x.copy()
    numeric = np.zeros_like(x)                   # ∂L/∂x over the batch
    alone = np.zeros_like(x)                     # ∂L_b/∂x for each sequence b on its own
    for idx in np.ndindex(x.shape):
        b = idx[0]
        old = x[idx]

        def loss_at(v):
            x[idx] = v
            return model.forward_backward(x, batch.y, batch.mask).loss

        def own_loss_at(v):
            x[idx] = v
            return model.forward_backward(x[b:b + 1], batch.y[b:b + 1], batch.mask).loss
        numeric[idx] = derivative(loss_at, old)
        alone[idx] = derivative(own_loss_at, old)
        x[idx] = old
    want = np.linalg.norm(numeric.transpose(1, 0, 2).reshape(T, -1), axis=1)
    err = rel_error(res.input_grad_norm_per_step, want)
    assert err <= 1e-6, f"{cell}/{head} input_grad_norm_per_step: relative error {err:.2e}"
    np.testing.assert_allclose(res.back.dX, numeric.transpose(1, 0, 2), rtol=1e-5, atol=1e-9)
    for b in range(B):
        err = rel_error(res.sample_input_grad_norm_per_step(b), np.linalg.norm(alone[b], axis=1))
        assert err <= 1e-6, f"{cell}/{head} sample {b}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task", ["adding", "echo", "language"])
def test_reading_the_metrics_leaves_every_number_of_training_as_it_was(cell, task):
    """float32 training at the lessons' shapes, the metrics read at every step or never: the
    same losses, gradients and weights, bit for bit. Without the metrics at all (the engine
    before them, one GEMM for the weight gradients instead of the sum of the per-step terms)
    the same to float32 rounding."""
    runs = []
    for on in (True, True, False):
        run = Run(Settings(cell=cell, task=task, seq_len=20, batch=8, hidden=16, clip=1.0))
        run.model.cell.step_metrics = on
        runs.append(run)
    for _ in range(4):
        recs = [r.step() for r in runs]
        runs[0].attach_mechanism(recs[0])              # made, and read, at every step
        assert recs[0].loss == recs[1].loss
        for name, g in runs[0].last_pass.grads.items():
            np.testing.assert_array_equal(g, runs[1].last_pass.grads[name])
            np.testing.assert_allclose(g, runs[2].last_pass.grads[name], rtol=1e-4,
                                       atol=1e-6 * np.abs(g).max())
        np.testing.assert_array_equal(recs[0].grad_norm_per_step, recs[1].grad_norm_per_step)
    for name, w in runs[0].model.params.items():
        np.testing.assert_array_equal(w, runs[1].model.params[name])
        np.testing.assert_allclose(w, runs[2].model.params[name], rtol=1e-4, atol=1e-5)
    shape = recs[0].grad_norm_per_step.shape
    assert runs[1].attach_mechanism(recs[1]).param_grad_norm_per_step.shape == shape
    assert runs[2].attach_mechanism(recs[2]).param_grad_norm_per_step is None


@pytest.mark.parametrize("cell", CELLS)
def test_float32_step_contributions_survive_vanishing_and_exploding_scales(cell):
    """A float32 pass whose loss is scaled by 1e-25 or 1e25 has per-step norms scaled by the
    same factor: the squares neither underflow nor overflow."""
    model, batch = make(cell, "echo", 4, 12, 5, seed=2)
    narrow = type(model)(cell, {k: v.astype(np.float32) for k, v in model.params.items()},
                         model.head_kind)
    X = np.asarray(batch.x, np.float32).swapaxes(0, 1)
    cache = narrow.cell.forward(narrow.params, X)
    for factor in (1e-25, 1.0, 1e25):
        direct = np.zeros_like(np.asarray(cache.H))
        direct[-1] = np.float32(factor)
        back = narrow.cell.backward(narrow.params, cache, direct)
        base = narrow.cell.backward(narrow.params, cache, direct / np.float32(factor))
        np.testing.assert_allclose(back.param_norm, base.param_norm * factor, rtol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", ["regression", "sequence"])
def test_state_jacobians_match_finite_differences_of_one_step(cell, head):
    """∂s_t/∂s_{t−1} from the cache against central differences of one textbook step from the
    pass's own s_{t−1} (s_0 = 0), and the spectral norms against those of the differences."""
    B, T, H = 3, 5, 4
    model, batch = make(cell, HEADS[head], B, T, H, seed=9)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    step_forward, _ = ref.STEPS[cell]
    weights = tuple(model.params[k] for k in PARAM_NAMES)
    lstm = cell == "lstm"
    for sample in (0, 2):
        J = res.state_jacobians(sample)
        assert J.shape == (T, 2 * H if lstm else H, 2 * H if lstm else H)
        numeric = np.zeros_like(J)
        for t in range(T):
            x_t = batch.x[sample:sample + 1, t]
            prev = np.zeros(J.shape[1])
            if t:
                prev[:H] = res.cache.H[t - 1, sample]
                if lstm:
                    prev[H:] = res.cache.C[t - 1, sample]

            def state_after(s):
                states = (s[None, :H], s[None, H:]) if lstm else (s[None],)
                out = step_forward(x_t, *states, *weights)
                return np.concatenate([o[0] for o in out[:-1]])
            for j in range(J.shape[1]):
                e = np.zeros_like(prev)
                e[j] = 1.0
                numeric[t, :, j] = derivative(lambda v: state_after(prev + v * e), 0.0)
        err = rel_error(J, numeric)
        assert err <= 1e-6, f"{cell} ∂s_t/∂s_(t-1): relative error {err:.2e}"
        np.testing.assert_allclose(res.jacobian_norm_per_step(sample),
                                   [np.linalg.norm(n, 2) for n in numeric], rtol=1e-6)


def test_jacobian_uses_the_weights_of_its_pass_not_later_ones():
    run = Run(Settings(cell="rnn", task="adding", seq_len=10, batch=4, hidden=6, lr=0.5))
    run.step()
    before = run.last_pass.jacobian_norm_per_step()
    kept = run.last_pass
    run.step()
    np.testing.assert_array_equal(kept.jacobian_norm_per_step(), before)


def test_sample_sensitivity_is_in_the_order_the_task_shows():
    for reverse in (False, True):
        run = Run(Settings(cell="gru", task="remember", seq_len=12, batch=4, hidden=6,
                           reverse_input=reverse))
        run.step()
        own = run.last_pass.sample_input_grad_norm_per_step(1)
        shown = run.sample(1).input_grad_norm_per_step
        np.testing.assert_array_equal(shown, own[::-1] if reverse else own)


def test_mechanism_arrays_are_attached_only_to_the_step_the_run_still_holds():
    run = Run(Settings(cell="lstm", task="adding", seq_len=8, batch=4, hidden=5))
    old = run.step()
    new = run.step()
    assert new.param_grad_norm_per_step is None          # not made unless asked for
    run.attach_mechanism(old)
    assert old.jacobian_norm_per_step is None and old.input_grad_norm_per_step is None
    run.attach_mechanism(new)
    p = run.last_pass
    np.testing.assert_array_equal(new.jacobian_norm_per_step, p.jacobian_norm_per_step())
    np.testing.assert_array_equal(new.input_grad_norm_per_step, p.input_grad_norm_per_step)
    np.testing.assert_array_equal(new.param_grad_norm_per_step, p.param_grad_norm_per_step)
    assert new.to_json()["jacobian_norm_per_step"] == new.jacobian_norm_per_step.tolist()


@pytest.mark.parametrize("cell", CELLS)
def test_a_kept_pass_keeps_its_metrics_after_later_passes(cell):
    """The per-step metrics are made on first access from buffers the pass keeps: a later pass
    must not overwrite them."""
    model, batch = make(cell, "echo", 3, 9, 4, seed=4)
    twin = type(model)(cell, {k: v.copy() for k, v in model.params.items()}, model.head_kind)
    want = twin.forward_backward(batch.x, batch.y, batch.mask)
    kept = model.forward_backward(batch.x, batch.y, batch.mask)
    other = batch.x[::-1].copy()
    for _ in range(3):
        model.forward_backward(other, batch.y, batch.mask).param_grad_norm_per_step
    np.testing.assert_array_equal(kept.param_grad_norm_per_step, want.param_grad_norm_per_step)
    np.testing.assert_array_equal(kept.input_grad_norm_per_step, want.input_grad_norm_per_step)
