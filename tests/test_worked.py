"""The worked example shows the engine's own numbers, and those numbers are right."""
import ast
import math
import operator

import numpy as np
import pytest

from tutor.engine.model import Model
from tutor.explorers import worked
from tutor.explorers.worked import CELLS, build_example, example_data, example_params, fmt

ACT = {"σ": lambda v: 1.0 / (1.0 + math.exp(-v)), "tanh": math.tanh}
GATE_ACT = {"i": "σ", "f": "σ", "g": "tanh", "o": "σ", "r": "σ", "z": "σ", "n": "tanh"}


class EnginePasses:
    """An independent engine run on the example's weights and data, before and after SGD."""

    def __init__(self, cell):
        self.cell = cell
        self.params = example_params(cell)
        self.x, self.y = example_data()
        self.before = Model(cell, {k: v.copy() for k, v in self.params.items()},
                            "regression").forward_backward(self.x, self.y)
        lr = worked.LEARNING_RATE
        self.updated = {k: v - lr * self.before.grads[k] for k, v in self.params.items()}
        self.after = Model(cell, {k: v.copy() for k, v in self.updated.items()},
                           "regression").forward_backward(self.x, self.y)

    def value(self, key):
        kind, rest = key[0], key[1:]
        if kind == "cache":
            field, t, col = rest
            return getattr(self.before.cache, field)[t, 0, col]
        if kind == "back":
            field, t, col = rest
            return getattr(self.before.back, field)[t, 0, col]
        if kind == "grad":
            return self.before.grads[rest[0]][rest[1:]]
        if kind == "param_after":
            return self.updated[rest[0]][rest[1:]]
        if kind == "dy":
            return 2.0 * (self.before.output[0, 0] - self.y[0, 0])      # d/dŷ of (ŷ − y)²
        return {"output": self.before.output[0, 0], "loss": self.before.loss,
                "output_after": self.after.output[0, 0], "loss_after": self.after.loss}[kind]


@pytest.fixture(scope="module", params=CELLS)
def case(request):
    return build_example(request.param), EnginePasses(request.param)


def test_every_displayed_value_is_the_engines(case):
    example, engine = case
    H = worked.HIDDEN
    for line in example.lines:
        if line.key[0] == "pre":
            # a recomputed pre-activation: through its activation it must give the engine's gate
            gate, t, j = line.key[1:]
            row = worked.GATES[example.cell].index(gate) * H + j
            activated = engine.before.cache.A[t, 0, row]
            assert ACT[GATE_ACT[gate]](line.value) == pytest.approx(activated, abs=1e-14), line
        else:
            assert line.value == pytest.approx(float(engine.value(line.key)), rel=1e-14,
                                               abs=1e-15), line
        assert line.result == fmt(line.value)


def test_lines_cover_every_state_delta_gradient_and_weight(case):
    example, engine = case
    keys = {line.key for line in example.lines}
    cache, back = engine.before.cache, engine.before.back
    fields = {"rnn": ["A", "H"], "lstm": ["A", "H", "C", "TC"], "gru": ["A", "H", "HN"]}
    for field in fields[example.cell]:
        T, _, n = getattr(cache, field).shape
        assert {("cache", field, t, c) for t in range(T) for c in range(n)} <= keys, field
    for field in ["dH", "dA"] + (["dC"] if example.cell == "lstm" else []):
        T, _, n = getattr(back, field).shape
        assert {("back", field, t, c) for t in range(T) for c in range(n)} <= keys, field
    if example.cell == "gru":     # the recurrent-side δ differs from the input side only for n
        n_rows = range(2 * worked.HIDDEN, 3 * worked.HIDDEN)
        assert {("back", "dAh", t, r) for t in range(3) for r in n_rows} <= keys
    if example.cell != "rnn":
        gates = worked.GATES[example.cell]
        assert {("pre", g, t, j) for g in gates for t in range(3) for j in range(2)} <= keys
    for name, grad in engine.before.grads.items():
        for idx in np.ndindex(grad.shape):
            assert ("grad", name) + idx in keys
            assert ("param_after", name) + idx in keys
    for key in [("output",), ("loss",), ("dy",), ("output_after",), ("loss_after",)]:
        assert key in keys


def test_sections_run_forward_backward_update_and_the_loss_drops(case):
    example, engine = case
    sections = [line.section for line in example.lines]
    assert sections == sorted(sections, key=worked.SECTIONS.index)
    assert [example.first_index(s) for s in worked.SECTIONS] == [
        sections.index("forward"), sections.index("backward"), sections.index("update")]
    assert example.lines[-1].key == ("loss_after",)
    # one SGD step visibly lowers the loss: the drop shows in the first digits
    assert engine.after.loss < 0.9 * engine.before.loss


def test_weight_gradients_match_finite_differences(case):
    example, engine = case
    shown = {line.key[1:]: line.value for line in example.lines if line.key[0] == "grad"}

    def loss(params):
        return Model(example.cell, params, "regression").forward_backward(
            engine.x, engine.y).loss

    h = 1e-5
    for name, value in engine.params.items():
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in engine.params.items()}
            minus = {k: v.copy() for k, v in engine.params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            numeric = (loss(plus) - loss(minus)) / (2 * h)
            assert shown[(name,) + idx] == pytest.approx(numeric, rel=1e-6, abs=1e-9), \
                (name, idx)


def test_gradients_through_time_match_finite_differences(case):
    """∂L/∂h_t (and ∂L/∂c_t) as shown are total derivatives: nudge the state as step t
    computes it and watch the loss."""
    example, engine = case
    model = Model(example.cell, engine.params, "regression")
    h = 1e-6
    for line in example.lines:
        if line.key[:2] not in (("back", "dH"), ("back", "dC")):
            continue
        _, field, t, j = line.key
        delta = np.zeros((1, worked.HIDDEN))
        delta[0, j] = h
        state = "h" if field == "dH" else "c"
        up = model.forward_backward(engine.x, engine.y, nudge=(t, state, delta)).loss
        down = model.forward_backward(engine.x, engine.y, nudge=(t, state, -delta)).loss
        assert line.value == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9), line


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def evaluate(node):
    """(value, size) of an arithmetic expression; size bounds what rounding can move it by."""
    if isinstance(node, ast.Expression):
        return evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value), abs(float(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v, m = evaluate(node.operand)
        return -v, m
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        v, m = evaluate(node.left)
        assert node.right.value == 2
        return v * v, m * m
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        (a, ma), (b, mb) = evaluate(node.left), evaluate(node.right)
        size = ma * mb if isinstance(node.op, ast.Mult) else ma + mb
        return _OPS[type(node.op)](a, b), size
    if isinstance(node, ast.Call) and node.func.id in ("sig", "tanh"):
        v, m = evaluate(node.args[0])
        return ACT["σ" if node.func.id == "sig" else "tanh"](v), m
    raise AssertionError(f"unexpected {ast.dump(node)}")


def test_the_numbers_plugged_in_compute_the_result(case):
    """Each line's arithmetic, read back from its text, gives its result (to the rounding of
    4 significant digits): the plugged-in numbers are the right ones."""
    example, _ = case
    for line in example.lines:
        text = line.numbers.replace("·", "*").replace("²", "**2").replace("σ", "sig")
        value, size = evaluate(ast.parse(text, mode="eval"))
        assert value == pytest.approx(line.value, abs=2e-3 * size + 1e-12), line


def test_fmt_gives_four_significant_digits():
    assert fmt(2 / 3) == "0.6667"
    assert fmt(-2 / 3) == "-0.6667"
    assert fmt(12345.6) == "1.235e4"
    assert fmt(-1 / 70000) == "-1.429e-5"
    assert fmt(0.5) == "0.5"
    assert fmt(0.0) == "0" and fmt(-0.0) == "0"


def test_plain_text_is_complete_and_safe_to_paste():
    for cell in CELLS:
        example = build_example(cell)
        text = worked.format_plain(example.lines, example)
        assert "\x1b" not in text
        assert all(ch == "\n" or ch.isprintable() for ch in text)
        assert max(len(row) for row in text.splitlines()) <= 78
        flat = " ".join(text.split())
        for n, line in enumerate(example.lines, 1):
            assert f"{n}. {line.label}" in flat
            assert f"= {line.result}" in flat
        for heading in ("FORWARD PASS", "BACKWARD PASS", "ONE SGD STEP"):
            assert heading in text


def test_unknown_cell_is_a_one_line_error():
    with pytest.raises(ValueError) as err:
        build_example("irnn")
    assert "unknown cell" in str(err.value) and "\n" not in str(err.value)
