"""Engine behaviour: determinism, clipping, baselines, divergence, weights, the import rule."""
import math
import subprocess
import sys

import numpy as np
import pytest

from tutor.engine import Model, Run, Settings, SettingsError, WeightsError, get_task
from tutor.engine.init import spectral_radius
from tutor.engine.optim import clip_grads, global_norm


def test_engine_imports_without_textual():
    code = ("import sys, tutor.engine, tutor.engine.run, tutor.lab, tutor.lab.worker, tutor.lab.session\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'plotext')]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("cell", ["rnn", "irnn", "lstm", "gru"])
def test_same_seed_same_numbers(cell):
    s = Settings(cell=cell, task="agreement", seq_len=12, seed=5)
    a, b = Run(s), Run(s)
    for _ in range(5):
        ra, rb = a.step(), b.step()
        assert ra.loss == rb.loss
        np.testing.assert_array_equal(ra.grad_norm_per_step, rb.grad_norm_per_step)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])
    other = Run(s.replace(seed=6))
    assert other.step().loss != Run(s).step().loss


def test_clip_by_norm_rescales_to_threshold_and_keeps_direction():
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    before = {k: v.copy() for k, v in grads.items()}
    norm = global_norm(grads)
    assert clip_grads(grads, norm, "norm", norm / 4)
    assert math.isclose(global_norm(grads), norm / 4, rel_tol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], before[k] / 4)
    assert not clip_grads(grads, global_norm(grads), "norm", norm)  # under threshold: untouched


def test_global_norm_of_float32_gradients_survives_overflow_and_underflow():
    """Squares of 1e20 overflow float32 and squares of 1e-25 underflow it; the norm must still
    be the float64 one."""
    rng = np.random.default_rng(1)
    for scale in (1e20, 1e-25, 1.0):
        wide = {"a": rng.normal(size=(30, 40)) * scale, "b": rng.normal(size=7) * scale}
        grads = {k: v.astype(np.float32) for k, v in wide.items()}
        want = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        assert math.isclose(global_norm(grads), want, rel_tol=1e-6), scale


def test_clip_by_value_cuts_each_component():
    grads = {"a": np.array([-3.0, 0.5, 2.0])}
    assert clip_grads(grads, global_norm(grads), "value", 1.0)
    np.testing.assert_array_equal(grads["a"], [-1.0, 0.5, 1.0])


def test_step_reports_norm_before_clipping_and_whether_it_clipped():
    s = Settings(cell="rnn", task="adding", seq_len=20, clip=1e-6)
    rec = Run(s).step()
    assert rec.clipped and rec.grad_norm > 1e-6
    assert not Run(s.replace(clip=0.0)).step().clipped


def test_clip_change_applies_live_without_restart():
    run = Run(Settings(cell="gru", task="echo", seq_len=10))
    run.step()
    run.apply_live(run.settings.replace(clip=1e-9))
    assert run.step().clipped and run.steps == 2
    with pytest.raises(ValueError):
        run.apply_live(run.settings.replace(cell="lstm"))


def test_adding_baseline_is_the_constant_one_guess():
    task = get_task("adding")
    batch = task.batch(np.random.default_rng(0), 20000, 30, np.float64)
    mse_of_one = float(np.mean((batch.y - 1.0) ** 2))
    assert abs(mse_of_one - task.baseline(30).loss) < 0.005
    assert abs(task.baseline(30).loss - 0.1667) < 1e-3


@pytest.mark.parametrize("name", ["remember", "agreement", "echo"])
def test_classification_baselines_match_a_uniform_guess(name):
    task = get_task(name)
    model_free = Run(Settings(task=name, seq_len=8, cell="rnn"))
    k = task.output_size
    assert math.isclose(task.baseline(8).loss, math.log(k))
    assert math.isclose(task.baseline(8).accuracy, 1 / k)
    # Labels really are balanced, so no input-blind guess beats uniform by much.
    batch = task.batch(np.random.default_rng(1), 4000, 8, np.float64)
    labels = np.asarray(batch.y).ravel() if batch.mask is None else np.asarray(batch.y)[:, 1:].ravel()
    freq = np.bincount(labels, minlength=k) / labels.size
    assert np.all(np.abs(freq - 1 / k) < 0.03)
    assert model_free.baseline.loss == task.baseline(8).loss


def test_tasks_put_the_answer_where_they_say():
    rng = np.random.default_rng(3)
    b = get_task("remember").batch(rng, 50, 20, np.float64)
    np.testing.assert_array_equal(b.x[:, 0, :4].argmax(axis=1), b.y)
    b = get_task("agreement").batch(rng, 50, 20, np.float64)
    np.testing.assert_array_equal(b.x[:, 0].argmax(axis=1) >= 3, b.y == 1)
    b = get_task("adding").batch(rng, 50, 20, np.float64)
    assert np.all(b.x[:, :, 1].sum(axis=1) == 2)
    np.testing.assert_allclose(b.y[:, 0], (b.x[:, :, 0] * b.x[:, :, 1]).sum(axis=1), rtol=1e-12)


def test_reversal_feeds_the_sequence_backwards():
    s = Settings(task="remember", seq_len=15, seed=2)
    plain, rev = Run(s), Run(s.replace(reverse_input=True))
    xb, rb = plain.next_batch(), rev.next_batch()
    np.testing.assert_array_equal(xb.x[:, ::-1], rb.x)
    np.testing.assert_array_equal(xb.y, rb.y)


def test_divergence_is_a_state_with_no_warning_on_stderr():
    code = ("from tutor.engine import Run, Settings\n"
            "r = Run(Settings(cell='rnn', task='adding', seq_len=50, radius=1.5, "
            "optimizer='sgd', lr=0.1))\n"
            "recs = [r.step() for _ in range(200)]\n"
            "print(r.status, r.diverged_at, recs[-1], sum(x is not None for x in recs))")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stderr == ""
    status, at, last, n = out.stdout.split()
    assert status == "diverged" and last == "None" and int(n) == int(at) < 200


def test_frozen_head_is_not_updated():
    run = Run(Settings(task="adding", seq_len=10, freeze_head=True))
    head = run.model.params["head.weight"].copy()
    rec = [run.step() for _ in range(3)][-1]
    np.testing.assert_array_equal(run.model.params["head.weight"], head)
    assert rec.loss > 0


def test_radius_and_forget_bias_and_identity():
    s = Settings(cell="rnn", task="adding", seq_len=5, radius=1.7, hidden=16)
    assert math.isclose(spectral_radius(Run(s).model.params["weight_hh_l0"]), 1.7, rel_tol=1e-5)
    lstm = Run(Settings(cell="lstm", task="adding", seq_len=5, hidden=8, forget_bias=2.5)).model
    np.testing.assert_array_equal(lstm.params["bias_ih_l0"][8:16], 2.5)
    np.testing.assert_array_equal(lstm.params["bias_hh_l0"][8:16], 0.0)
    irnn = Run(Settings(cell="irnn", task="adding", seq_len=5, hidden=8)).model
    np.testing.assert_array_equal(irnn.params["weight_hh_l0"], np.eye(8, dtype=np.float32))


def test_dtype_float32_by_default_float64_on_request():
    assert Run(Settings()).model.params["weight_hh_l0"].dtype == np.float32
    assert Run(Settings(dtype="float64")).model.params["weight_hh_l0"].dtype == np.float64


@pytest.mark.parametrize("cell,gates", [("rnn", 1), ("irnn", 1), ("lstm", 4), ("gru", 3)])
def test_pytorch_layout(cell, gates):
    p = Run(Settings(cell=cell, task="agreement", hidden=6, seq_len=4)).model.params
    assert p["weight_ih_l0"].shape == (gates * 6, 16)
    assert p["weight_hh_l0"].shape == (gates * 6, 6)
    assert p["bias_ih_l0"].shape == p["bias_hh_l0"].shape == (gates * 6,)
    assert p["head.weight"].shape == (2, 6)


def test_save_and_load_round_trip(tmp_path):
    run = Run(Settings(cell="gru", task="echo", seq_len=6, seed=1))
    run.step()
    path = tmp_path / "w.npz"
    run.model.save(str(path))
    arrays = Model.load_arrays(str(path))
    assert str(arrays["cell"]) == "gru"
    again = Run(run.settings, weights=arrays)
    for name in run.model.params:
        np.testing.assert_array_equal(again.model.params[name], run.model.params[name])


def test_weights_that_do_not_fit_are_refused(tmp_path):
    arrays = Model.load_arrays(_saved(tmp_path, Settings(cell="lstm", task="adding", seq_len=4)))
    with pytest.raises(WeightsError, match="needs"):
        Run(Settings(cell="lstm", task="agreement", seq_len=4), weights=arrays)
    arrays["weight_hh_l0"][0, 0] = np.nan
    with pytest.raises(WeightsError, match="NaN"):
        Run(Settings(cell="lstm", task="adding", seq_len=4), weights=arrays)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(WeightsError):
        Model.load_arrays(str(bad))
    with pytest.raises(WeightsError, match="no weight file"):
        Model.load_arrays(str(tmp_path / "missing.npz"))


def _saved(tmp_path, settings):
    path = tmp_path / "w.npz"
    Run(settings).model.save(str(path))
    return str(path)


@pytest.mark.parametrize("change", [
    {"seq_len": 0}, {"lr": -1.0}, {"lr": float("nan")}, {"lr": float("inf")},
    {"hidden": 10**6}, {"batch": 5000}, {"seq_len": 2001}, {"cell": "transformer"},
    {"task": "french"}, {"clip": -1.0}, {"radius": 0.0}, {"seed": -1}, {"hidden": 2.5},
    {"task": "echo", "reverse_input": True}, {"task": "adding", "seq_len": 1},
])
def test_settings_refuse_bad_values_with_one_line(change):
    with pytest.raises(SettingsError) as err:
        Settings(**change).validated()
    assert "\n" not in str(err.value) and str(err.value)


def test_sample_shows_the_task():
    run = Run(Settings(task="agreement", seq_len=6))
    run.step()
    sample = run.sample()
    assert sample.target in ("was", "were") and sample.inputs.split()[0] in (
        "cat", "dog", "bird", "cats", "dogs", "birds")


def test_settings_task_facts_match_the_tasks():
    from tutor.engine import settings as S
    from tutor.engine.tasks import TASKS as TASK_OBJECTS

    assert set(S.TASKS) == set(TASK_OBJECTS) == set(S.TASK_MIN_LEN)
    for name, task in TASK_OBJECTS.items():
        assert S.TASK_MIN_LEN[name] == task.min_len
        assert (name in S.PER_STEP_TASKS) == (task.head == "sequence")


def test_settings_load_without_numpy():
    code = ("import sys, tutor.engine, tutor.engine.settings\n"
            "from tutor.engine import Settings\n"
            "Settings(task='echo', seq_len=3).validated()\n"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
