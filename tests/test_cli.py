"""The headless contract of `rnn-tutor train`, and one-line errors everywhere."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "tutor", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def lines(out):
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("rnn-tutor ")


def test_train_prints_the_contract_fields():
    out = cli("train", "--cell", "lstm", "--task", "adding", "--seq-len", "12", "--steps", "7",
              "--log-every", "3")
    assert out.returncode == 0, out.stderr
    records = lines(out)
    steps = [r["step"] for r in records[:-1]]
    assert steps == [1, 3, 6, 7]
    for r in records[:-1]:
        assert set(r) >= {"step", "loss", "accuracy", "elapsed_s", "grad_norm", "clipped",
                          "grad_norm_per_step", "gate_per_step", "cell_grad_norm_per_step"}
        assert len(r["grad_norm_per_step"]) == 12 == len(r["gate_per_step"])
        assert len(r["cell_grad_norm_per_step"]) == 12
        for name in ("input_grad_norm_per_step", "param_grad_norm_per_step",
                     "jacobian_norm_per_step"):
            assert len(r[name]) == 12 and all(v is None or v >= 0 for v in r[name]), name
        assert r["accuracy"] is None
    final = records[-1]
    assert set(final["sample"]) == {"inputs", "target", "prediction"}
    assert final["sample"]["inputs"].startswith("12 numbers; marked t=")
    assert final["final"] is True and final["status"] == "ok" and final["diverged_at"] is None
    assert abs(final["baseline"] - 1 / 6) < 1e-9 and final["baseline_accuracy"] is None
    assert final["steps_per_s"] > 0


def test_rnn_has_no_gates_and_classification_has_accuracy():
    records = lines(cli("train", "--cell", "rnn", "--task", "remember", "-T", "5", "--steps", "2"))
    assert records[0]["gate_per_step"] is None and records[0]["cell_grad_norm_per_step"] is None
    assert 0 <= records[0]["accuracy"] <= 1
    assert records[-1]["baseline_accuracy"] == 0.25


def test_divergence_ends_the_run_with_nulls_and_valid_json():
    out = cli("train", "--cell", "rnn", "--task", "adding", "--seq-len", "50", "--steps", "300",
              "--radius", "1.5", "--optimizer", "sgd", "--lr", "0.1", "--log-every", "100")
    assert out.returncode == 0 and out.stderr == ""
    records = lines(out)
    final = records[-1]
    assert final["status"] == "diverged" and final["steps"] == final["diverged_at"] < 300
    assert records[-2]["step"] == final["diverged_at"] and records[-2]["loss"] is None


def test_clip_zero_is_off_and_clip_reports():
    on = lines(cli("train", "--cell", "rnn", "--task", "adding", "-T", "20", "--steps", "1",
                   "--clip", "0.001"))
    off = lines(cli("train", "--cell", "rnn", "--task", "adding", "-T", "20", "--steps", "1",
                    "--clip", "0"))
    assert on[0]["clipped"] is True and off[0]["clipped"] is False
    assert on[0]["grad_norm"] == off[0]["grad_norm"]   # the norm before clipping


def test_same_seed_same_output_different_seed_different():
    args = ("train", "--cell", "gru", "--task", "agreement", "-T", "10", "--steps", "3")
    a, b = lines(cli(*args, "--seed", "4")), lines(cli(*args, "--seed", "4"))
    c = lines(cli(*args, "--seed", "5"))
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("elapsed_s", "steps_per_s")}
                        for r in rs]
    assert strip(a) == strip(b) and strip(a) != strip(c)


@pytest.mark.parametrize("bad", [
    ["--seq-len", "0"], ["--seq-len", "-3"], ["--seq-len", "2001"], ["--lr", "nan"],
    ["--lr", "inf"], ["--lr", "-0.1"], ["--lr", "0"], ["--hidden", "1025"], ["--batch", "4097"],
    ["--batch", "0"], ["--cell", "transformer"], ["--task", "nope"], ["--clip", "-1"],
    ["--clip", "nan"], ["--radius", "0"], ["--radius", "inf"], ["--steps", "0"],
    ["--seed", "-1"], ["--log-every", "0"], ["--forget-bias", "nan"], ["--hidden", "3.5"],
    ["--optimizer", "rmsprop"], ["--frobnicate"], ["--truncate", "-1"], ["--truncate", "2.5"],
    ["--truncate", "2001"], ["--truncate", "nan"],
])
def test_bad_arguments_get_one_line_and_exit_2(bad):
    args = ["train", "--cell", "rnn", "--task", "adding", "--seq-len", "10", "--steps", "2"]
    for i in range(0, len(bad), 2):
        if bad[i] in args:
            j = args.index(bad[i])
            del args[j:j + 2]
    out = cli(*args, *bad)
    assert out.returncode == 2, out
    assert out.stdout == "" and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_truncate_cuts_the_gradient_and_zero_is_full():
    args = ("train", "--cell", "lstm", "--task", "adding", "-T", "12", "--steps", "1")
    cut = lines(cli(*args, "--truncate", "3"))
    full, zero = lines(cli(*args)), lines(cli(*args, "--truncate", "0"))
    norms = cut[0]["grad_norm_per_step"]
    assert norms[:8] == [0.0] * 8 and all(v > 0 for v in norms[8:])
    assert cut[-1]["settings"]["truncate"] == 3 and zero[-1]["settings"]["truncate"] is None
    assert zero[0]["grad_norm_per_step"] == full[0]["grad_norm_per_step"]
    assert all(v > 0 for v in full[0]["grad_norm_per_step"])


def test_missing_required_option_is_one_line():
    out = cli("train", "--cell", "rnn")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_weights_round_trip_and_refusals(tmp_path):
    w = tmp_path / "w.npz"
    base = ["train", "--cell", "gru", "--task", "echo", "--seq-len", "6", "--hidden", "8"]
    assert cli(*base, "--steps", "5", "--save-weights", str(w)).returncode == 0
    resumed = lines(cli(*base[:-2], "--steps", "1", "--load-weights", str(w)))
    assert resumed[-1]["settings"]["hidden"] == 8     # taken from the file

    def refused(*extra, match):
        out = cli(*extra)
        assert out.returncode == 1, out
        assert len(out.stderr.strip().splitlines()) == 1 and match in out.stderr
        assert "Traceback" not in out.stderr

    refused(*base, "--steps", "1", "--load-weights", str(tmp_path / "none.npz"),
            match="no weight file")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(os.urandom(200))
    refused(*base, "--steps", "1", "--load-weights", str(corrupt), match="not a readable")
    refused("train", "--cell", "lstm", "--task", "echo", "-T", "6", "--steps", "1",
            "--load-weights", str(w), match="gru")
    refused("train", "--cell", "gru", "--task", "adding", "-T", "6", "--steps", "1",
            "--load-weights", str(w), match="needs")
    refused(*base, "--steps", "1", "--load-weights", str(w), "--hidden", "9", match="hidden")
    refused(*base, "--steps", "1", "--save-weights", str(tmp_path / "no" / "such" / "w.npz"),
            match="cannot write")
    refused(*base, "--steps", "1", "--save-weights", str(tmp_path), match="folder")
    refused(*base, "--steps", "1", "--save-weights", "/proc/version", match="cannot write")


def test_help_shows_defaults():
    out = cli("train", "--help")
    assert out.returncode == 0
    for text in ("--log-every", "--clip-mode", "default: adam", "default: 0.01"):
        assert text in out.stdout


def test_broken_pipe_is_quiet():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        f"{sys.executable} -m tutor train --cell rnn --task adding -T 10 --steps 3000 | head -1",
        shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr and proc.stderr == ""
