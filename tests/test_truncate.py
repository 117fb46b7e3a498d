"""Truncated backpropagation through time: each loss term's gradient goes back at most k steps.
Checked against a plain reference that backpropagates every loss term on its own for k steps
with the textbook steps of tutor.engine.reference, in float64, for every cell and head."""
import numpy as np
import pytest

from test_gradcheck import CELLS, HEADS, make
from tutor.engine import Run, Settings, SettingsError
from tutor.engine import reference as ref
from tutor.engine import truncate as truncation
from tutor.engine.cells import PARAM_NAMES
from tutor.engine.heads import loss_and_grad


def per_term_reference(model, batch, k):
    """Σ over loss terms τ of the term's gradient carried back k steps (to state τ − k):
    returns ∂L/∂h_t (T, B, H), the parameter gradients and each step's own contribution."""
    cell = model.cell_name
    step_forward, step_backward = ref.STEPS[cell]
    p = model.params
    X = batch.x.swapaxes(0, 1)
    T, B, _ = X.shape
    H = model.hidden
    zeros = np.zeros((B, H))
    states, caches = ref.sequence_forward(step_forward, X, (zeros, zeros) if cell == "lstm"
                                          else (zeros,), tuple(p[n] for n in PARAM_NAMES))
    Hs = states[0]
    W, b = p["head.weight"], p["head.bias"]
    seeds = np.zeros_like(Hs)                    # the loss's own ∂L/∂h_τ
    if model.head_kind == "sequence":
        seeds[:] = loss_and_grad("sequence", Hs @ W.T + b, batch.y, batch.mask)[2] @ W
    else:
        seeds[-1] = loss_and_grad(model.head_kind, Hs[-1] @ W.T + b, batch.y)[2] @ W
    dH = np.zeros_like(Hs)
    steps = [{n: np.zeros_like(p[n]) for n in PARAM_NAMES} for _ in range(T)]
    for tau in range(T):
        dh, dc = seeds[tau], zeros
        for t in range(tau, max(-1, tau - k - 1), -1):
            dH[t] += dh
            if cell == "lstm":
                out = step_backward(dh, dc, caches[t])
                dh, dc, grads = out[1], out[2], out[3:]
            else:
                _, dh, *grads = step_backward(dh, caches[t])
            for n, g in zip(PARAM_NAMES, grads):
                steps[t][n] += g
    total = {n: sum(s[n] for s in steps) for n in PARAM_NAMES}
    return dH, total, steps


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("k", [1, 3, 6])
def test_truncated_pass_matches_the_per_term_reference(cell, head, k):
    B, T, H = 3, 9, 4
    model, batch = make(cell, HEADS[head], B, T, H, seed=21)
    res = model.forward_backward(batch.x, batch.y, batch.mask, truncate=k)
    dH, grads, steps = per_term_reference(model, batch, k)
    close = lambda a, b, what: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13,
                                                          err_msg=f"{cell}/{head} k={k} {what}")
    close(res.back.dH, dH, "dH")
    close(res.grad_norm_per_step, np.linalg.norm(dH.reshape(T, -1), axis=1), "norms")
    for n in PARAM_NAMES:
        close(res.grads[n], grads[n], n)
    close(res.param_grad_norm_per_step,
          [np.sqrt(sum(np.sum(g ** 2) for g in s.values())) for s in steps], "per step")
    full = model.forward_backward(batch.x, batch.y, batch.mask)
    assert res.loss == full.loss
    for n in ("head.weight", "head.bias"):       # the read-out's gradient is not truncated
        np.testing.assert_array_equal(res.grads[n], full.grads[n])


@pytest.mark.parametrize("cell", CELLS)
def test_the_gradient_is_exactly_zero_more_than_k_steps_before_every_loss(cell):
    """A per-step head whose loss counts at steps 7 and 9 only (T = 12), truncated at k = 2:
    ∂L/∂h_t is exactly 0 before step 5 and after step 9, and not between."""
    B, T, H = 4, 12, 5
    model, batch = make(cell, "echo", B, T, H, seed=8)
    mask = np.zeros(T, dtype=bool)
    mask[[6, 8]] = True
    norms = model.forward_backward(batch.x, batch.y, mask, truncate=2).grad_norm_per_step
    assert np.all(norms[:4] == 0.0) and np.all(norms[9:] == 0.0)
    assert np.all(norms[4:9] > 0.0)
    model, batch = make(cell, "adding", B, T, H, seed=8)      # one loss, at the last step
    res = model.forward_backward(batch.x, batch.y, truncate=3)
    assert np.all(res.grad_norm_per_step[:T - 4] == 0.0)
    assert np.all(res.grad_norm_per_step[T - 4:] > 0.0)
    assert np.all(res.param_grad_norm_per_step[:T - 4] == 0.0)
    assert np.all(res.input_grad_norm_per_step[:T - 4] == 0.0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(HEADS))
def test_no_truncation_or_a_long_one_is_the_full_pass_bit_for_bit(cell, head):
    B, T, H = 3, 8, 4
    model, batch = make(cell, HEADS[head], B, T, H, seed=2)
    full = model.forward_backward(batch.x, batch.y, batch.mask)
    for k in (None, T - 1, T, 10 * T):
        res = model.forward_backward(batch.x, batch.y, batch.mask, truncate=k)
        for n, g in full.grads.items():
            np.testing.assert_array_equal(res.grads[n], g)
        np.testing.assert_array_equal(res.back.dH, full.back.dH)


def test_wide_passes_split_into_several_give_the_same_numbers(monkeypatch):
    model, batch = make("lstm", "echo", 3, 10, 4, seed=6)
    one = model.forward_backward(batch.x, batch.y, batch.mask, truncate=4)
    monkeypatch.setattr(truncation, "MAX_COLUMNS", 6)          # two groups per pass
    split = model.forward_backward(batch.x, batch.y, batch.mask, truncate=4)
    np.testing.assert_allclose(split.back.dH, one.back.dH, rtol=1e-12, atol=1e-15)
    for n, g in one.grads.items():
        np.testing.assert_allclose(split.grads[n], g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(split.param_grad_norm_per_step, one.param_grad_norm_per_step,
                               rtol=1e-12)


def test_truncation_is_a_live_setting_and_trains_in_float32():
    run = Run(Settings(cell="gru", task="language", seq_len=10, batch=8, hidden=16))
    full = run.step()
    s = run.settings.replace(truncate=2)
    assert not run.settings.needs_restart(s)
    assert run.settings.live_change(s) == "truncate 2"
    assert s.live_change(run.settings) == "full BPTT"
    run.apply_live(s)
    rec = run.step()
    assert rec.grad_norm_per_step.dtype == full.grad_norm_per_step.dtype
    assert np.isfinite(rec.loss) and rec.status == "ok"
    both = run.settings.replace(truncate=None, clip=1.0)
    assert run.settings.live_change(both) == "clip norm 1, full BPTT"


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", 2001])
def test_settings_refuse_a_bad_truncation_with_one_line(bad):
    with pytest.raises(SettingsError) as err:
        Settings(truncate=bad).validated()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_float32_per_step_pass_holds_no_subnormals(cell):
    """In a truncated per-step pass some columns always hold a fresh seed, so vanishing columns
    are flushed to zero instead of decaying through the subnormal range."""
    model, batch = make(cell, "echo", 4, 60, 8, seed=3)
    params = {k: v.astype(np.float32) for k, v in model.params.items()}
    params["weight_hh_l0"] *= 0.02                 # a strongly contracting recurrence
    if cell != "rnn":
        params["bias_ih_l0"][8:16] = -6.0
    narrow = type(model)(cell, params, "sequence")
    wide = []
    backprop = narrow.cell.backprop

    def keep(*args, **kwargs):                   # the wide pass, before its copies are summed
        wide.append(backprop(*args, **kwargs))
        return wide[-1]
    narrow.cell.backprop = keep
    narrow.forward_backward(batch.x.astype(np.float32), batch.y, batch.mask, truncate=40)
    d = np.asarray(wide[0].dH)
    tiny = np.finfo(np.float32).tiny
    assert d.dtype == np.float32 and d.shape[1] == 41 * 4
    assert not np.any((d != 0) & (np.abs(d) < tiny)), "subnormal gradients in float32"
