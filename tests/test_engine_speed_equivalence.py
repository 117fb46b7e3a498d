"""The speed-oriented engine against a plain, loop-by-loop NumPy reference of the same maths.

The cells compute in a feature-major layout, fold biases into one GEMM, pre-scale sigmoid rows,
run the backward in chunks, reuse result buffers across calls, and compute dA on demand. None of
that may change a number: every array the API exposes must match the textbook formulas."""
import numpy as np
import pytest

from tutor.engine import cells
from tutor.engine.init import init_params
from tutor.engine.heads import loss_and_grad
from tutor.engine.model import Model
from tutor.engine.tasks import get_task

CELLS = ["rnn", "irnn", "lstm", "gru"]
TASKS = {"regression": "adding", "classify": "agreement", "sequence": "echo"}


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference(cell, p, x, y, mask, head):
    """Forward and backward through time written out step by step (float64, batch-first x)."""
    W_ih, W_hh, b_ih, b_hh = (p[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                              "bias_hh_l0"))
    Wy, by = p["head.weight"], p["head.bias"]
    B, T, _ = x.shape
    H = W_hh.shape[1]
    hs, cs, gates, hns = [np.zeros((B, H))], [np.zeros((B, H))], [], []
    for t in range(T):
        h, c, xt = hs[-1], cs[-1], x[:, t]
        if cell in ("rnn", "irnn"):
            a = xt @ W_ih.T + b_ih + h @ W_hh.T + b_hh
            gates.append(a)                                  # the cache keeps pre-activations
            hs.append(np.tanh(a) if cell == "rnn" else np.maximum(a, 0.0))
        elif cell == "lstm":
            a = xt @ W_ih.T + b_ih + h @ W_hh.T + b_hh
            i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), \
                sig(a[:, 3 * H:])
            c = f * c + i * g
            gates.append(np.concatenate([i, f, g, o], axis=1))
            cs.append(c)
            hs.append(o * np.tanh(c))
        else:
            gi, gh = xt @ W_ih.T + b_ih, h @ W_hh.T + b_hh
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            gates.append(np.concatenate([r, z, n], axis=1))
            hns.append(gh[:, 2 * H:])
            hs.append((1 - z) * n + z * h)
    Hs = np.stack(hs[1:])                                    # (T, B, H)
    if head == "sequence":
        Y = Hs @ Wy.T + by
        loss, _, dY = loss_and_grad("sequence", Y, y, mask)
        dH_direct = dY @ Wy
        gW, gb = np.einsum("tbo,tbh->oh", dY, Hs), dY.sum(axis=(0, 1))
    else:
        Y = Hs[-1] @ Wy.T + by
        loss, _, dY = loss_and_grad(head, Y, y)
        dH_direct = np.zeros_like(Hs)
        dH_direct[-1] = dY @ Wy
        gW, gb = dY.T @ Hs[-1], dY.sum(axis=0)

    G = {k: np.zeros_like(p[k]) for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                          "bias_hh_l0")}
    dH, dC, dA, dAh = np.zeros_like(Hs), np.zeros_like(Hs), [None] * T, [None] * T
    dh_next, dc_next = np.zeros((B, H)), np.zeros((B, H))
    for t in range(T - 1, -1, -1):
        dh = dH_direct[t] + dh_next
        dH[t] = dh
        h_prev, xt = hs[t], x[:, t]
        if cell in ("rnn", "irnn"):
            a = gates[t]
            da = dh * (1 - np.tanh(a) ** 2) if cell == "rnn" else dh * (a > 0)
            dA[t] = da
            G["weight_ih_l0"] += da.T @ xt
            G["weight_hh_l0"] += da.T @ h_prev
            G["bias_ih_l0"] += da.sum(0)
            G["bias_hh_l0"] += da.sum(0)
            dh_next = da @ W_hh
        elif cell == "lstm":
            i, f, g, o = np.split(gates[t], 4, axis=1)
            tc = np.tanh(cs[t + 1])
            dc = dh * o * (1 - tc ** 2) + dc_next
            dC[t] = dc
            da = np.concatenate([dc * g * i * (1 - i), dc * cs[t] * f * (1 - f),
                                 dc * i * (1 - g ** 2), dh * tc * o * (1 - o)], axis=1)
            dA[t] = da
            G["weight_ih_l0"] += da.T @ xt
            G["weight_hh_l0"] += da.T @ h_prev
            G["bias_ih_l0"] += da.sum(0)
            G["bias_hh_l0"] += da.sum(0)
            dh_next, dc_next = da @ W_hh, dc * f
        else:
            r, z, n = np.split(gates[t], 3, axis=1)
            dn = dh * (1 - z) * (1 - n ** 2)
            dz = dh * (h_prev - n) * z * (1 - z)
            dr = dn * hns[t] * r * (1 - r)
            gi = np.concatenate([dr, dz, dn], axis=1)
            gh = np.concatenate([dr, dz, dn * r], axis=1)
            dA[t], dAh[t] = gi, gh
            G["weight_ih_l0"] += gi.T @ xt
            G["weight_hh_l0"] += gh.T @ h_prev
            G["bias_ih_l0"] += gi.sum(0)
            G["bias_hh_l0"] += gh.sum(0)
            dh_next = gh @ W_hh + dh * z
    G["head.weight"], G["head.bias"] = gW, gb
    out = {"loss": loss, "grads": G, "H": Hs, "A": np.stack(gates), "dH": dH, "dA": np.stack(dA)}
    if cell == "lstm":
        out.update(C=np.stack(cs[1:]), TC=np.tanh(np.stack(cs[1:])), dC=dC)
    if cell == "gru":
        out.update(HN=np.stack(hns), dAh=np.stack(dAh))
    return out


def build(cell, task_name, B, T, H, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    task = get_task(task_name)
    params = init_params(cell, task.input_size, H, task.output_size, rng, "default", None, 1.0,
                         np.float64)
    for name in params:                  # larger than the default init: every path matters
        params[name] = rng.normal(0, 0.5, size=params[name].shape)
    batch = task.batch(rng, B, max(T, task.min_len), np.float64)
    model = Model(cell, {k: v.astype(dtype) for k, v in params.items()}, task.head)
    return model, params, batch, task


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", list(TASKS))
@pytest.mark.parametrize("shape", [(5, 9, 6), (3, 40, 8), (1, 1, 3)])   # (B, T, H)
@pytest.mark.parametrize("chunk_bytes", [None, 2000])   # 2000: the backward in chunks of 1-10 steps
def test_every_exposed_array_matches_the_reference(cell, head, shape, chunk_bytes, monkeypatch):
    if chunk_bytes:
        monkeypatch.setattr(cells._WeightGrads, "CHUNK_BYTES", chunk_bytes)
    B, T, H = shape
    model, params, batch, task = build(cell, TASKS[head], B, T, H, seed=hash((cell, head)) % 1000)
    ref = reference(cell, params, batch.x, batch.y, batch.mask, task.head)
    res = model.forward_backward(batch.x, batch.y, batch.mask)
    close = lambda a, b, what: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12,
                                                          err_msg=f"{cell}/{head} {what}")
    close(res.loss, ref["loss"], "loss")
    for name, g in ref["grads"].items():
        close(res.grads[name], g, name)
    for field in ("H", "A", "C", "TC", "HN"):
        if field in ref:
            close(getattr(res.cache, field), ref[field], f"cache.{field}")
    close(res.back.dH, ref["dH"], "dH")
    close(res.back.dA, ref["dA"], "dA")
    if cell == "lstm":
        close(res.back.dC, ref["dC"], "dC")
    if cell == "gru":
        close(res.back.dAh, ref["dAh"], "dAh")
    close(res.grad_norm_per_step, np.linalg.norm(ref["dH"].reshape(len(ref["dH"]), -1), axis=1),
          "grad_norm_per_step")
    gate = {"lstm": 1, "gru": 1}.get(cell)
    if gate is not None:
        expect = ref["A"][:, :, gate * H:(gate + 1) * H].mean(axis=(1, 2))
        close(model.cell.gate_per_step(res.cache), expect, "gate_per_step")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(4, 12, 5), (32, 50, 32)])   # the second: buffers on mmap
def test_results_of_a_call_survive_later_calls(cell, shape):
    """Result arrays are reused only once nothing refers to them: a kept Pass stays intact,
    and so do the gate arrays it builds only when read, after later calls."""
    B, T, H = shape
    model, params, batch, task = build(cell, "echo", B, T, H, seed=1)
    twin = Model(cell, {k: v.copy() for k, v in model.params.items()}, task.head)
    want = twin.forward_backward(batch.x, batch.y, batch.mask)
    first = model.forward_backward(batch.x, batch.y, batch.mask)
    fields = [first.cache.H, first.back.dH, first.back.dH_norm]
    if cell == "lstm":
        fields += [first.cache.C, first.cache.TC, first.back.dC, first.back.dC_norm]
    kept = [f.copy() for f in fields]
    other = task.batch(np.random.default_rng(99), B, T, np.float64)
    for _ in range(3):
        later = model.forward_backward(other.x, other.y, other.mask)
        assert not np.array_equal(later.back.dH, first.back.dH)
    for f, k in zip(fields, kept):
        np.testing.assert_array_equal(f, k)
    np.testing.assert_array_equal(first.cache.A, want.cache.A)
    np.testing.assert_array_equal(first.back.dA, want.back.dA)
    # A result nobody holds may be recycled; the numbers that come back are still right.
    del first, later
    again = model.forward_backward(batch.x, batch.y, batch.mask)
    np.testing.assert_array_equal(again.back.dH, kept[1])


@pytest.mark.parametrize("cell", CELLS)
def test_float32_weights_with_float64_inputs_compute_in_float64(cell):
    """The cells work in the wider of the two dtypes: float64 results, equal to those of the
    same weights in float64 but for the float32 sum of the two biases."""
    model, _, batch, _ = build(cell, "agreement", 6, 10, 7, seed=4, dtype=np.float32)
    wide = {k: v.astype(np.float64) for k, v in model.params.items()}
    X = np.asarray(batch.x, np.float64).swapaxes(0, 1)
    last = np.random.default_rng(5).normal(size=(7, 6))
    results = []
    for p in (model.params, wide):
        c = cells.make_cell(cell)
        cache = c.forward(p, X)
        results.append((cache.H, c.backprop(p, cache, last)))
    (h32, b32), (h64, b64) = results
    assert h32.dtype == b32.dH.dtype == np.float64
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    close(h32, h64)
    close(b32.dH, b64.dH)
    for name in b64.grads:
        assert b32.grads[name].dtype == np.float64
        close(b32.grads[name], b64.grads[name])


@pytest.mark.parametrize("cell", CELLS)
def test_float32_stays_float32(cell):
    """No float64 array sneaks into a float32 step (an upcast would also halve the speed)."""
    model, _, batch, _ = build(cell, "agreement", 8, 10, 6, seed=2, dtype=np.float32)
    res = model.forward_backward(batch.x, batch.y)
    arrays = [res.cache.H, res.cache.A, res.back.dH, res.back.dA, *res.grads.values()]
    arrays += [a for a in (res.cache.C, res.cache.TC, res.cache.HN, res.back.dC, res.back.dAh)
               if a is not None]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}
    assert model.cell.gate_per_step(res.cache) is None or \
        model.cell.gate_per_step(res.cache).dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_vanishing_float32_gradient_ends_in_zeros_not_subnormals(cell):
    """Far enough back, a vanishing float32 gradient is set to exactly zero instead of decaying
    through the subnormal range (where arithmetic is many times slower); float64 keeps it, and
    the steps before the cut agree with float64."""
    rng = np.random.default_rng(3)
    task = get_task("adding")
    params = init_params(cell, task.input_size, 8, 1, rng, "default", None, 1.0, np.float64)
    params["weight_hh_l0"] *= 0.05                 # a strongly contracting recurrence
    if cell != "rnn":                              # LSTM forget / GRU update gate nearly shut
        params["bias_ih_l0"][8:16] = -6.0
    batch = task.batch(rng, 4, 120, np.float64)
    res = {dt: Model(cell, {k: v.astype(dt) for k, v in params.items()}, "regression")
           .forward_backward(batch.x, batch.y) for dt in (np.float32, np.float64)}
    d32, d64 = np.asarray(res[np.float32].back.dH), np.asarray(res[np.float64].back.dH)
    tiny = np.finfo(np.float32).tiny
    assert not np.any((d32 != 0) & (np.abs(d32) < tiny)), "subnormal gradients in float32"
    zero_steps = np.flatnonzero(~d32.reshape(len(d32), -1).any(axis=1))
    assert len(zero_steps) > 0 and zero_steps.max() < len(d32) - 1
    assert np.all(np.abs(d64[zero_steps]).max(axis=(1, 2)) < 1e-25)   # truly negligible there
    assert np.all(d64.reshape(len(d64), -1).any(axis=1))               # float64 does not cut
    live = d32.reshape(len(d32), -1).any(axis=1)
    norms32 = res[np.float32].grad_norm_per_step
    norms64 = res[np.float64].grad_norm_per_step
    np.testing.assert_allclose(norms32[live][-10:], norms64[live][-10:], rtol=1e-3)


@pytest.mark.parametrize("order", ["latest first", "earliest first"])
def test_float32_norms_per_step_cover_tiny_huge_and_nan_steps(order):
    """The per-step norms are summed in the backward loop; steps whose float32 squares would
    be subnormal or overflow must still come out right, and so must the steps after them."""
    from tutor.engine.cells import _SquaredNorms
    rng = np.random.default_rng(4)
    d = rng.standard_normal((9, 8, 5))
    d[1] *= 1e-25                          # squares would be subnormal in float32
    d[2] *= 1e-12                          # small, but fine in float32
    d[4] *= 1e20                           # squares would overflow float32
    d[6] = 0.0
    d[7, 0, 0] = np.nan
    d32 = d.astype(np.float32)
    norms = _SquaredNorms(len(d), np.float32)
    steps = range(len(d) - 1, -1, -1) if order == "latest first" else range(len(d))
    for t in steps:
        norms.take(t, d32[t])
    got = norms.norms()
    want = np.linalg.norm(d32.astype(np.float64).reshape(len(d), -1), axis=1)
    ok = [t for t in range(len(d)) if t != 7]
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6)
    assert np.isnan(got[7])


def test_flat_adam_matches_the_textbook_update_even_when_parameters_change():
    """Adam keeps all moments in one flat buffer; the numbers must be those of the per-array
    formula, also after the set of trained parameters changes (the head frozen, then not)."""
    from tutor.engine.optim import Optimizer
    rng = np.random.default_rng(5)
    shapes = {"w": (4, 3), "b": (4,), "head": (2, 4)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros(s) for k, s in shapes.items()}
    v = {k: np.zeros(s) for k, s in shapes.items()}
    opt, lr, (b1, b2), eps = Optimizer("adam", 0.01), 0.01, (0.9, 0.999), 1e-8
    for step in range(1, 7):
        names = ["w", "b"] if step in (3, 4) else ["w", "b", "head"]
        grads = {k: rng.standard_normal(shapes[k]) for k in names}
        opt.step(params, grads, names)
        for k in names:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            ref[k] -= lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step) * m[k] / (np.sqrt(v[k]) + eps)
        for k in shapes:
            np.testing.assert_allclose(params[k], ref[k], rtol=1e-12, atol=1e-15, err_msg=k)
