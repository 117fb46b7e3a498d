"""The language task: its generated sentences, its scoring on the language word, and `predict`."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from tutor import cli
from tutor.engine import Run, Settings, get_task
from tutor.engine.grammar import CATEGORIES, CLOSING, GRAMMAR, OPENING, PAIRS
from tutor.engine.init import init_params
from tutor.engine.model import Model
from tutor.engine.predict import (UnknownWord, encode, logits_and_input_grads, predict_next,
                                  split_words)
from tutor.engine.tasks import focus_metrics

TASK = get_task("language")
LANGUAGE_OF = dict(PAIRS)


def sentences(seed: int, B: int, gap: int) -> list[list[str]]:
    ids, _ = GRAMMAR.sentences(np.random.default_rng(seed), B, gap)
    return [GRAMMAR.text(row).split(" ") for row in ids]


# --- the grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize("gap", [5, 6, 7, 8, 9, 13, 30, 61])
def test_the_two_phrases_appear_literally_and_the_gap_is_honoured(gap):
    for words in sentences(gap, 64, gap):
        assert len(words) == gap + 5
        assert tuple(words[:4]) == OPENING and words[5] == "."
        assert tuple(words[-4:-1]) == CLOSING
        country, language = words[4], words[-1]
        assert LANGUAGE_OF[country] == language
        assert (len(words) - 1) - 4 == gap          # positions of the language and the country
        text = " ".join(words)
        assert text == text.lower() and "  " not in text
        assert f"i grew up in {country} ." in text and text.endswith(f"i speak fluent {language}")


def test_the_filler_never_names_a_country_a_language_or_the_closing_phrase():
    named = {c for c, _ in PAIRS} | {lang for _, lang in PAIRS} | {"speak", "fluent", "grew"}
    for words in sentences(1, 200, 40):
        assert not named & set(words[6:-4]), words


def test_full_stops_are_words_of_their_own_and_end_every_filler_sentence():
    for words in sentences(2, 100, 30):
        assert all(w == "." or "." not in w for w in words)
        filler = " ".join(words[6:-4])
        # every filler sentence ends with " ." and what follows the last one is a short lead-in
        tail = filler.rsplit(" .", 1)[-1].split()
        assert len(tail) <= 2


def test_subjects_agree_with_their_verbs():
    singular, plural = set(CATEGORIES["person"]), set(CATEGORIES["people"])
    verb_s, verb_p = set(CATEGORIES["verb_s"]), set(CATEGORIES["verb_p"])
    checked = 0
    for words in sentences(3, 300, 40):
        for a, b in zip(words, words[1:]):
            if a in singular:
                assert b not in verb_p and b not in ("are", "live", "work", "were"), (a, b)
                checked += b in verb_s
            if a in plural:
                assert b not in verb_s and b not in ("is", "lives", "works", "was"), (a, b)
                checked += b in verb_p
    assert checked > 50


def test_sentences_are_deterministic_from_the_seed_and_varied():
    a, b, c = sentences(7, 50, 30), sentences(7, 50, 30), sentences(8, 50, 30)
    assert a == b and a != c
    fillers = {" ".join(w[6:-4]) for w in a + c}
    assert len(fillers) == 100                      # no two sequences share their filler
    starts = {w[6] for w in a + c}
    assert len(starts) >= 8                         # sentences of many shapes, not one template


def test_a_gap_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="at least 5"):
        GRAMMAR.sentences(np.random.default_rng(0), 2, 4)
    assert TASK.min_len == 5


# --- the task -----------------------------------------------------------------------------------

def test_a_batch_is_one_hot_words_with_next_word_targets_and_the_language_in_focus():
    T = 12
    b = TASK.batch(np.random.default_rng(0), 16, T, np.float32)
    assert b.x.shape == (16, T + 4, TASK.input_size) and b.x.dtype == np.float32
    assert np.all(b.x.sum(axis=2) == 1)
    assert b.y.shape == (16, T + 4) and b.focus == T + 3
    # every next word trains; the language word weighs as much as all the others together
    assert b.mask.dtype.kind == "f" and np.all(b.mask[:-1] == 1) and b.mask[-1] == T + 3
    ids = b.x.argmax(axis=2)
    assert np.array_equal(ids[:, 1:], b.y[:, :-1])  # the target is the next input
    for row in range(16):
        country = TASK.words[ids[row, 4]]
        assert TASK.words[b.y[row, b.focus]] == LANGUAGE_OF[country]


def test_the_baseline_is_the_input_blind_guess_of_the_language_word():
    base = TASK.baseline(30)
    K = len(PAIRS)
    assert base.loss == pytest.approx(math.log(K)) and base.accuracy == pytest.approx(1 / K)
    # The languages are equally likely, so no input-blind guess beats 1/K.
    _, pair = GRAMMAR.sentences(np.random.default_rng(0), 20_000, 5)
    freq = np.bincount(pair, minlength=K) / len(pair)
    assert freq.max() < 1 / K + 0.01
    entropy = -np.sum(freq * np.log(freq))
    assert entropy == pytest.approx(base.loss, abs=0.01)


def test_accuracy_and_long_range_loss_score_the_language_word_alone():
    B, T, O = 8, 6, TASK.output_size
    rng = np.random.default_rng(0)
    y = rng.integers(0, O, size=(B, T))
    right = np.full((B, T, O), -10.0)
    right[np.arange(B)[:, None], np.arange(T), y] = 10.0      # every word right
    wrong_elsewhere = -right.copy()
    wrong_elsewhere[:, 3] = right[:, 3]                        # only step 3 right
    loss, acc = focus_metrics(wrong_elsewhere, y, 3)
    assert acc == 1.0 and loss < 1e-3
    wrong_here = right.copy()
    wrong_here[:, 3] = -right[:, 3]
    loss, acc = focus_metrics(wrong_here, y, 3)
    assert acc == 0.0 and loss > 9


def test_the_weighted_sequence_loss_and_its_gradient():
    from tutor.engine.heads import loss_and_grad
    rng = np.random.default_rng(0)
    T, B, O = 4, 3, 5
    Y = rng.normal(size=(T, B, O))
    y = rng.integers(0, O, size=(B, T))
    w = np.array([1.0, 1.0, 0.0, 3.0])
    loss, acc, dY = loss_and_grad("sequence", Y, y, w)
    logp = Y - np.log(np.exp(Y).sum(axis=2, keepdims=True))
    want = -sum(w[t] * logp[t, b, y[b, t]] for t in range(T) for b in range(B)) / (w.sum() * B)
    assert loss == pytest.approx(want)
    counted = [t for t in range(T) if w[t] > 0]
    assert acc == pytest.approx(np.mean([logp[t, b].argmax() == y[b, t]
                                         for t in counted for b in range(B)]))
    eps = 1e-6
    for idx in [(0, 0, 1), (2, 1, 3), (3, 2, y[2, 3])]:
        Yp, Ym = Y.copy(), Y.copy()
        Yp[idx] += eps
        Ym[idx] -= eps
        fd = (loss_and_grad("sequence", Yp, y, w)[0] - loss_and_grad("sequence", Ym, y, w)[0])
        assert dY[idx] == pytest.approx(fd / (2 * eps), abs=1e-8)
    # equal weights are the plain mean over the steps
    plain = loss_and_grad("sequence", Y, y, None)
    same = loss_and_grad("sequence", Y, y, np.ones(T))
    assert same[0] == pytest.approx(plain[0]) and np.allclose(same[2], plain[2])


def test_a_run_records_accuracy_and_long_range_loss_on_the_language_word():
    run = Run(Settings(cell="gru", task="language", seq_len=7, hidden=8, seed=3))
    for _ in range(3):
        rec = run.step()
    b, out = run._last_batch, run.last_pass.output
    lr_loss, acc = focus_metrics(out, b.y, b.focus)
    assert rec.accuracy == acc and rec.long_range_loss == lr_loss
    per_word = float(np.mean(out.argmax(axis=-1) == b.y))
    assert rec.loss != pytest.approx(lr_loss)                 # the training loss is every word's
    assert rec.to_json()["long_range_loss"] == pytest.approx(lr_loss)
    assert 0 <= per_word <= 1
    other = Run(Settings(cell="gru", task="remember", seq_len=7, hidden=8)).step()
    assert other.long_range_loss is None and other.to_json()["long_range_loss"] is None


def test_the_sample_reads_as_words_with_the_language_word_as_target():
    run = Run(Settings(cell="lstm", task="language", seq_len=9, hidden=8, seed=1))
    run.step()
    s = run.sample()
    words = s.inputs.split()
    assert words[:4] == list(OPENING) and words[-4:] == ["i", "speak", "fluent", "…"]
    assert s.target == LANGUAGE_OF[words[4]]
    assert re.fullmatch(r"[a-z.]+ \(\d+%\)", s.prediction)


def test_input_reversal_is_refused_for_the_language_task():
    from tutor.engine.settings import SettingsError
    with pytest.raises(SettingsError, match="every step"):
        Settings(task="language", seq_len=10, reverse_input=True).validated()


# --- predict ------------------------------------------------------------------------------------

def test_split_words_lowercases_and_separates_full_stops():
    assert split_words("I grew up in France. I speak  fluent") == \
        ["i", "grew", "up", "in", "france", ".", "i", "speak", "fluent"]


def _model(cell: str, seed: int = 0, H: int = 6) -> Model:
    p = init_params(cell, TASK.input_size, H, TASK.output_size, np.random.default_rng(seed),
                    "default", None, 1.0, np.float64)
    for name in p:                                   # larger weights: gradients far from zero
        p[name] *= 3.0
    return Model(cell, p, "sequence")


def _log_p(model, X, k):
    z, _, _ = logits_and_input_grads(model, X, target=k)
    z = z - z.max()
    return float(z[k] - np.log(np.exp(z).sum()))


@pytest.mark.parametrize("cell", ["rnn", "irnn", "lstm", "gru"])
def test_sensitivity_matches_finite_differences_in_float64(cell):
    model = _model(cell)
    words = split_words("i grew up in kenya . it snowed . so i speak fluent")
    X = encode(TASK, words)
    z, k, dX = logits_and_input_grads(model, X)
    assert k == int(np.argmax(z))
    rng = np.random.default_rng(1)
    eps = 1e-6
    for t in range(len(words)):
        cols = [int(X[t].argmax())] + rng.integers(0, X.shape[1], size=3).tolist()
        for i in cols:
            Xp, Xm = X.copy(), X.copy()
            Xp[t, i] += eps
            Xm[t, i] -= eps
            fd = (_log_p(model, Xp, k) - _log_p(model, Xm, k)) / (2 * eps)
            assert dX[t, i] == pytest.approx(fd, rel=1e-5, abs=1e-9), (t, i)
    answer = predict_next(model, TASK, words)
    norms = [s["grad_norm"] for s in answer["sensitivity"]]
    assert norms == pytest.approx(np.linalg.norm(dX, axis=1).tolist(), rel=1e-5)


def test_predict_names_the_first_unknown_word():
    with pytest.raises(UnknownWord, match="'narnia'"):
        encode(TASK, ["i", "grew", "up", "in", "narnia", "atlantis"])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "gru.npz"
    code = cli.main(["train", "--cell", "gru", "--task", "language", "--seq-len", "6",
                     "--hidden", "8", "--steps", "3", "--log-every", "3",
                     "--save-weights", str(path)])
    assert code == 0
    return path


def test_predict_prints_one_json_object_with_the_top_three_and_a_sensitivity_per_word(
        weights, capsys):
    capsys.readouterr()
    code = cli.main(["predict", "--cell", "gru", "--task", "language", "--load-weights",
                     str(weights), "--text", "I grew up in Brazil. now i speak fluent"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert set(answer) == {"next", "sensitivity"}
    ps = [n["p"] for n in answer["next"]]
    assert len(ps) == 3 and ps == sorted(ps, reverse=True) and 0 < sum(ps) <= 1 + 1e-6
    assert all(set(n) == {"word", "p"} and n["word"] in TASK.words for n in answer["next"])
    assert [s["word"] for s in answer["sensitivity"]] == \
        "i grew up in brazil . now i speak fluent".split()
    assert all(set(s) == {"word", "grad_norm"} and s["grad_norm"] >= 0
               for s in answer["sensitivity"])
    # the same answer as the engine gives from the same weights
    model = Model.from_arrays("gru", Model.load_arrays(str(weights)), "sequence")
    direct = predict_next(model, TASK, split_words("i grew up in brazil . now i speak fluent"))
    assert [n["word"] for n in direct["next"]] == [n["word"] for n in answer["next"]]


@pytest.mark.parametrize("args, code, message", [
    (["--cell", "gru", "--text", "i grew up in narnia"], 1, "unknown word 'narnia'"),
    (["--cell", "lstm", "--text", "i grew up"], 1, "holds a gru cell, not lstm"),
    (["--cell", "gru", "--task", "agreement", "--text", "the cat"], 1, "does not fit"),
    (["--cell", "gru", "--text", " . "[:1]], 2, "no words"),
    (["--cell", "gru", "--task", "adding", "--text", "i"], 2, "invalid choice"),
])
def test_predict_errors_are_one_line(weights, capsys, args, code, message):
    argv = ["predict", "--load-weights", str(weights)] + args
    if "--task" not in argv:
        argv += ["--task", "language"]
    capsys.readouterr()
    assert cli.main(argv) == code
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and message in err


def test_predict_refuses_a_missing_or_corrupt_weight_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    for path in (tmp_path / "none.npz", bad):
        assert cli.main(["predict", "--cell", "gru", "--task", "language", "--load-weights",
                         str(path), "--text", "i"]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(path) in err


# --- training ---------------------------------------------------------------------------------

def test_train_logs_long_range_loss_with_the_task_defaults(capsys):
    capsys.readouterr()
    code = cli.main(["train", "--cell", "lstm", "--task", "language", "--seq-len", "5",
                     "--steps", "40", "--log-every", "20", "--seed", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    records = [json.loads(line) for line in out]
    assert all(r["long_range_loss"] is not None for r in records[:-1])
    final = records[-1]
    for name in cli.TASK_DEPENDENT:
        assert final["settings"][name] == cli.S.task_default("language", name)
    assert final["baseline"] == pytest.approx(math.log(len(PAIRS)))
    assert final["long_range_loss"] == records[-2]["long_range_loss"]


def test_a_gap_below_five_is_a_usage_error(capsys):
    assert cli.main(["train", "--cell", "rnn", "--task", "language", "--seq-len", "4",
                     "--steps", "1"]) == 2
    assert "at least 5" in capsys.readouterr().err


def test_predict_on_the_agreement_task_answers_was_or_were():
    task = get_task("agreement")
    p = init_params("gru", task.input_size, 6, task.output_size, np.random.default_rng(0),
                    "default", None, 1.0, np.float64)
    answer = predict_next(Model("gru", p, "classify"), task, ["cats", "which", "gray"])
    assert {n["word"] for n in answer["next"]} == {"was", "were"}
    assert sum(n["p"] for n in answer["next"]) == pytest.approx(1.0, abs=1e-5)
    assert len(answer["sensitivity"]) == 3
