"""A worked numeric example: one tiny recurrent cell, forward, backward and one SGD step.

Every activation, state, δ and gradient shown is read from the engine's own forward/backward
pass (`Model.forward_backward`, float64); the updated weights come from the engine's SGD
optimiser and the new loss from a second engine pass. Only pre-activations, which the engine
does not keep for gated cells, are recomputed for display from the engine's weights, inputs
and cached states.

Notation: x_t, h_t, c_t are vectors at step t = 1..3; [j] picks unit or input j (from 1).
Weights use PyTorch's names: W_ii is the input-to-hidden weight of the LSTM input gate, W_hf
the hidden-to-hidden weight of the forget gate, and so on; W_ii[j,k] links input k to unit j.
"""
from __future__ import annotations

import itertools
import math
import textwrap
from dataclasses import dataclass

import numpy as np

from tutor.engine.model import Model, Pass
from tutor.engine.optim import Optimizer

CELLS = ("rnn", "lstm", "gru")
SECTIONS = ("forward", "backward", "update")
GATES = {"rnn": ("a",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
GATE_NAMES = {"a": "pre-activation", "i": "input gate", "f": "forget gate",
              "g": "candidate", "o": "output gate", "r": "reset gate", "z": "update gate",
              "n": "new state"}

INPUTS = ((0.5, 1.0), (1.0, -0.5), (-0.5, 0.5))    # x_1, x_2, x_3
TARGET = -0.5
LEARNING_RATE = 0.1
HIDDEN = 2
# Weights are read off this cycle in order; 13 is prime, so rows and gates never repeat.
_CYCLE = (0.5, -0.3, 0.2, 0.4, -0.6, 0.1, 0.3, -0.2, 0.6, -0.4, 0.2, -0.1, 0.7)
HEAD_WEIGHT = (1.0, -0.8)
HEAD_BIAS = 0.1


def fmt(v: float) -> str:
    """4 significant digits, trailing zeros dropped, short exponents (1.234e-5)."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    s = f"{v:.4g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def _factor(v: float) -> str:
    s = fmt(v)
    return f"({s})" if s.startswith("-") else s


def _product(*values: float) -> str:
    return fmt(values[0]) + "".join("·" + _factor(v) for v in values[1:])


def _sum(terms: list[str]) -> str:
    out = terms[0]
    for term in terms[1:]:
        out += f" - {term[1:]}" if term.startswith("-") else f" + {term}"
    return out


@dataclass(frozen=True)
class Line:
    section: str          # "forward", "backward" or "update"
    label: str            # what is computed, in words
    formula: str
    numbers: str          # the formula with the numbers plugged in
    result: str           # the value to 4 significant digits
    value: float          # the engine's value at full precision
    # Where the value lives in the engine: ("cache", field, t, column) and ("back", field, t,
    # column) index Pass.cache / Pass.back at batch row 0; ("grad", name, *index) and
    # ("param_after", name, *index) a gradient or an updated weight; ("pre", gate, t, unit) a
    # recomputed pre-activation; ("output",), ("loss",), ("dy",), ("output_after",),
    # ("loss_after",) the head and the loss before and after the update.
    key: tuple
    step: int | None = None   # timestep 1..T, or None for the head, loss and weights


@dataclass
class WorkedExample:
    cell: str
    x: np.ndarray                    # (1, T, 2)
    y: np.ndarray                    # (1, 1)
    lr: float
    params: dict[str, np.ndarray]    # the weights before the update
    updated: dict[str, np.ndarray]   # after one SGD step by the engine's optimiser
    before: Pass
    after: Pass
    lines: list[Line]

    def first_index(self, section: str) -> int:
        return next(i for i, line in enumerate(self.lines) if line.section == section)


def example_params(cell: str) -> dict[str, np.ndarray]:
    """The fixed, readable starting weights (PyTorch's names and layout, float64)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r} (choose {', '.join(CELLS)})")
    G = len(GATES[cell])
    n = G * HIDDEN
    stream = itertools.cycle(_CYCLE)
    take = lambda *shape: np.array([next(stream) for _ in range(int(np.prod(shape)))],
                                   dtype=np.float64).reshape(shape)
    return {
        "weight_ih_l0": take(n, len(INPUTS[0])),
        "weight_hh_l0": take(n, HIDDEN),
        "bias_ih_l0": take(n),
        "bias_hh_l0": np.zeros(n),       # starts at 0, so each sum shows one live bias
        "head.weight": np.array([HEAD_WEIGHT], dtype=np.float64),
        "head.bias": np.array([HEAD_BIAS], dtype=np.float64),
    }


def example_data() -> tuple[np.ndarray, np.ndarray]:
    return np.array([INPUTS], dtype=np.float64), np.array([[TARGET]], dtype=np.float64)


def param_label(cell: str, name: str, idx: tuple) -> str:
    """`weight_ih_l0`[5, 0] of an LSTM -> "W_if[2,1]" (1-based unit, input)."""
    if name == "head.weight":
        return f"W_y[{idx[1] + 1}]"
    if name == "head.bias":
        return "b_y"
    side = "i" if "_ih_" in name else "h"
    gate, unit = divmod(idx[0], HIDDEN)
    stem = ("W" if name.startswith("weight") else "b") + "_" + side
    stem += "h" if cell == "rnn" else GATES[cell][gate]
    return f"{stem}[{unit + 1},{idx[1] + 1}]" if len(idx) == 2 else f"{stem}[{unit + 1}]"


class _Builder:
    def __init__(self, cell: str, model: Model, x: np.ndarray, y: float, p: Pass):
        self.cell, self.model, self.p = cell, model, p
        self.P = model.params
        self.x = x[0]                                # (T, I)
        self.y = y
        self.T = self.x.shape[0]
        self.lines: list[Line] = []
        self.section = "forward"

    def add(self, label, formula, numbers, value, key, step=None):
        value = float(value)
        self.lines.append(Line(self.section, label, formula, numbers, fmt(value), value, key,
                               step))

    # engine values: batch row 0 of the time-major arrays
    def cache(self, field, t, col):
        return float(getattr(self.p.cache, field)[t, 0, col])

    def back(self, field, t, col):
        return float(getattr(self.p.back, field)[t, 0, col])

    def h(self, t, j):
        return 0.0 if t < 0 else self.cache("H", t, j)

    def gate_row(self, gate: str, j: int) -> int:
        return GATES[self.cell].index(gate) * HIDDEN + j

    def w(self, name, gate, j, k=None):
        row = self.gate_row(gate, j)
        return float(self.P[name][row] if k is None else self.P[name][row, k])

    def wname(self, side, gate, j, k=None):
        name = "weight_ih_l0" if side == "i" else "weight_hh_l0"
        idx = (self.gate_row(gate, j),) if k is None else (self.gate_row(gate, j), k)
        return param_label(self.cell, name, idx)

    # ---- forward ----
    def affine(self, gate, t, j, recurrent=True):
        """W_i?[j]·x_t + b_i?[j] (+ W_h?[j]·h_{t-1} + b_h?[j]): value, formula, numbers."""
        I = self.x.shape[1]
        terms = [_product(self.w("weight_ih_l0", gate, j, k), self.x[t, k]) for k in range(I)]
        terms.append(fmt(self.w("bias_ih_l0", gate, j)))
        value = sum(self.w("weight_ih_l0", gate, j, k) * self.x[t, k] for k in range(I))
        value += self.w("bias_ih_l0", gate, j)
        row = self.wname("i", gate, j).split("[")[0]
        formula = f"{row}[{j + 1}]·x_{t + 1} + b_i{row[3:]}[{j + 1}]"
        if recurrent:
            terms += [_product(self.w("weight_hh_l0", gate, j, k), self.h(t - 1, k))
                      for k in range(HIDDEN)]
            terms.append(fmt(self.w("bias_hh_l0", gate, j)))
            value += sum(self.w("weight_hh_l0", gate, j, k) * self.h(t - 1, k)
                         for k in range(HIDDEN))
            value += self.w("bias_hh_l0", gate, j)
            hrow = self.wname("h", gate, j).split("[")[0]
            formula += f" + {hrow}[{j + 1}]·h_{t} + b_h{hrow[3:]}[{j + 1}]"
        return value, formula, _sum(terms)

    def forward_rnn(self, t):
        for j in range(HIDDEN):
            _, formula, numbers = self.affine("a", t, j)
            self.add(f"pre-activation a_{t + 1}[{j + 1}]", f"a_{t + 1}[{j + 1}] = {formula}",
                     numbers, self.cache("A", t, j), ("cache", "A", t, j), t + 1)
        for j in range(HIDDEN):
            a = self.cache("A", t, j)
            self.add(f"hidden state h_{t + 1}[{j + 1}]", f"h_{t + 1}[{j + 1}] = tanh(a_{t + 1}"
                     f"[{j + 1}])", f"tanh({fmt(a)})", self.cache("H", t, j),
                     ("cache", "H", t, j), t + 1)

    def gate_lines(self, gate, t, j, act, value_key):
        """The pre-activation (recomputed) and the activation (the engine's) of one gate."""
        value, formula, numbers = self.affine(gate, t, j)
        name = GATE_NAMES[gate]
        self.add(f"{name} {gate}, unit {j + 1}: pre-activation",
                 f"a{gate}_{t + 1}[{j + 1}] = {formula}", numbers, value,
                 ("pre", gate, t, j), t + 1)
        self.add(f"{name} {gate}_{t + 1}[{j + 1}]",
                 f"{gate}_{t + 1}[{j + 1}] = {act}(a{gate}_{t + 1}[{j + 1}])",
                 f"{act}({fmt(value)})", self.cache(*value_key), ("cache",) + value_key, t + 1)

    def forward_lstm(self, t):
        acts = {"i": "σ", "f": "σ", "g": "tanh", "o": "σ"}
        for gate in "ifgo":
            for j in range(HIDDEN):
                self.gate_lines(gate, t, j, acts[gate], ("A", t, self.gate_row(gate, j)))
        g = lambda gate, j: self.cache("A", t, self.gate_row(gate, j))
        for j in range(HIDDEN):
            c_prev = self.cache("C", t - 1, j) if t else 0.0
            u, s = j + 1, t + 1
            self.add(f"cell state c_{s}[{u}]",
                     f"c_{s}[{u}] = f_{s}[{u}]·c_{t}[{u}] + i_{s}[{u}]·g_{s}[{u}]",
                     _sum([_product(g("f", j), c_prev), _product(g("i", j), g("g", j))]),
                     self.cache("C", t, j), ("cache", "C", t, j), s)
        for j in range(HIDDEN):
            u, s = j + 1, t + 1
            self.add(f"squashed cell state tanh(c_{s}[{u}])", f"tanh(c_{s}[{u}])",
                     f"tanh({fmt(self.cache('C', t, j))})", self.cache("TC", t, j),
                     ("cache", "TC", t, j), s)
        for j in range(HIDDEN):
            u, s = j + 1, t + 1
            self.add(f"hidden state h_{s}[{u}]", f"h_{s}[{u}] = o_{s}[{u}]·tanh(c_{s}[{u}])",
                     _product(g("o", j), self.cache("TC", t, j)), self.cache("H", t, j),
                     ("cache", "H", t, j), s)

    def forward_gru(self, t):
        s = t + 1
        for gate in "rz":
            for j in range(HIDDEN):
                self.gate_lines(gate, t, j, "σ", ("A", t, self.gate_row(gate, j)))
        for j in range(HIDDEN):
            u = j + 1
            terms = [_product(self.w("weight_hh_l0", "n", j, k), self.h(t - 1, k))
                     for k in range(HIDDEN)] + [fmt(self.w("bias_hh_l0", "n", j))]
            self.add(f"recurrent part of n, unit {u}",
                     f"hn_{s}[{u}] = W_hn[{u}]·h_{t} + b_hn[{u}]", _sum(terms),
                     self.cache("HN", t, j), ("cache", "HN", t, j), s)
        for j in range(HIDDEN):
            u = j + 1
            r = self.cache("A", t, self.gate_row("r", j))
            hn = self.cache("HN", t, j)
            base, _, numbers = self.affine("n", t, j, recurrent=False)
            value = base + r * hn
            self.add(f"new state n, unit {u}: pre-activation",
                     f"an_{s}[{u}] = W_in[{u}]·x_{s} + b_in[{u}] + r_{s}[{u}]·hn_{s}[{u}]",
                     _sum([numbers, _product(r, hn)]), value, ("pre", "n", t, j), s)
            self.add(f"new state n_{s}[{u}]", f"n_{s}[{u}] = tanh(an_{s}[{u}])",
                     f"tanh({fmt(value)})", self.cache("A", t, self.gate_row("n", j)),
                     ("cache", "A", t, self.gate_row("n", j)), s)
        for j in range(HIDDEN):
            u = j + 1
            z = self.cache("A", t, self.gate_row("z", j))
            n = self.cache("A", t, self.gate_row("n", j))
            self.add(f"hidden state h_{s}[{u}]",
                     f"h_{s}[{u}] = (1 - z_{s}[{u}])·n_{s}[{u}] + z_{s}[{u}]·h_{t}[{u}]",
                     f"(1 - {fmt(z)})·{_factor(n)} + {_product(z, self.h(t - 1, j))}"
                     .replace("+ -", "- "),
                     self.cache("H", t, j), ("cache", "H", t, j), s)

    def forward(self):
        for t in range(self.T):
            getattr(self, f"forward_{self.cell}")(t)
        T = self.T
        Wy, by = self.P["head.weight"][0], float(self.P["head.bias"][0])
        out = float(self.p.output[0, 0])
        self.add("output ŷ", f"ŷ = W_y·h_{T} + b_y",
                 _sum([_product(Wy[j], self.h(T - 1, j)) for j in range(HIDDEN)] + [fmt(by)]),
                 out, ("output",))
        self.add("loss L (squared error)", "L = (ŷ - y)²", f"({fmt(out)} - {_factor(self.y)})²",
                 self.p.loss, ("loss",))

    # ---- backward ----
    def backward(self):
        self.section = "backward"
        T = self.T
        out = float(self.p.output[0, 0])
        dy = float(self.p.grads["head.bias"][0])
        Wy = self.P["head.weight"][0]
        self.add("loss gradient at the output", "dL/dŷ = 2·(ŷ - y)",
                 f"2·({fmt(out)} - {_factor(self.y)})", dy, ("dy",))
        for j in range(HIDDEN):
            self.add(f"head weight gradient, unit {j + 1}",
                     f"∂L/∂W_y[{j + 1}] = dL/dŷ·h_{T}[{j + 1}]", _product(dy, self.h(T - 1, j)),
                     self.p.grads["head.weight"][0, j], ("grad", "head.weight", 0, j))
        self.add("head bias gradient", "∂L/∂b_y = dL/dŷ", fmt(dy),
                 self.p.grads["head.bias"][0], ("grad", "head.bias", 0))
        for t in range(T - 1, -1, -1):
            self.dh_lines(t, dy, Wy)
            getattr(self, f"backward_{self.cell}")(t)
        self.weight_grads()

    def dh_lines(self, t, dy, Wy):
        s = t + 1
        for j in range(HIDDEN):
            u = j + 1
            if t == self.T - 1:
                formula = f"∂L/∂h_{s}[{u}] = dL/dŷ·W_y[{u}]"
                numbers = _product(dy, Wy[j])
            else:
                formula, numbers = self.dh_recurrent(t, j)
            self.add(f"gradient reaching h_{s}[{u}]", formula, numbers,
                     self.back("dH", t, j), ("back", "dH", t, j), s)

    def dh_recurrent(self, t, j):
        """∂L/∂h_t[j] = Σ over gates and units of δ_{t+1}·W_h?[k, j] (+ the GRU's z path)."""
        s, u, nxt = t + 1, j + 1, t + 1
        parts, terms = [], []
        if self.cell == "gru":
            parts.append(f"∂L/∂h_{s + 1}[{u}]·z_{s + 1}[{u}]")
            terms.append(_product(self.back("dH", nxt, j),
                                  self.cache("A", nxt, self.gate_row("z", j))))
        dfield = "dAh" if self.cell == "gru" else "dA"
        for gate in GATES[self.cell]:
            delta = "δa" if gate == "a" else ("δhn" if gate == "n" else f"δ{gate}")
            hname = self.wname("h", gate, 0, 0).split("[")[0]
            parts.append(f"{delta}_{s + 1}[k]·{hname}[k,{u}]")
            for k in range(HIDDEN):
                terms.append(_product(self.back(dfield, nxt, self.gate_row(gate, k)),
                                      self.w("weight_hh_l0", gate, k, j)))
        sums = " + ".join(p if "[k]" not in p else f"Σ_k {p}" for p in parts)
        return f"∂L/∂h_{s}[{u}] = {sums}", _sum(terms)

    def backward_rnn(self, t):
        s = t + 1
        for j in range(HIDDEN):
            u = j + 1
            self.add(f"δ at the pre-activation a_{s}[{u}]",
                     f"δa_{s}[{u}] = ∂L/∂h_{s}[{u}]·(1 - h_{s}[{u}]²)",
                     f"{fmt(self.back('dH', t, j))}·(1 - {_factor(self.h(t, j))}²)",
                     self.back("dA", t, j), ("back", "dA", t, j), s)

    def backward_lstm(self, t):
        s = t + 1
        g = lambda gate, j, tt=t: self.cache("A", tt, self.gate_row(gate, j))
        for j in range(HIDDEN):
            u = j + 1
            dh, o, tc = self.back("dH", t, j), g("o", j), self.cache("TC", t, j)
            formula = f"∂L/∂c_{s}[{u}] = ∂L/∂h_{s}[{u}]·o_{s}[{u}]·(1 - tanh²(c_{s}[{u}]))"
            numbers = f"{_product(dh, o)}·(1 - {_factor(tc)}²)"
            if t < self.T - 1:
                formula += f" + ∂L/∂c_{s + 1}[{u}]·f_{s + 1}[{u}]"
                numbers = _sum([numbers, _product(self.back("dC", t + 1, j), g("f", j, t + 1))])
            self.add(f"gradient reaching the cell state c_{s}[{u}]", formula, numbers,
                     self.back("dC", t, j), ("back", "dC", t, j), s)
        for gate in "ifgo":
            for j in range(HIDDEN):
                u = j + 1
                dc, dh = self.back("dC", t, j), self.back("dH", t, j)
                i, f, gg, o = g("i", j), g("f", j), g("g", j), g("o", j)
                c_prev = self.cache("C", t - 1, j) if t else 0.0
                cp = f"c_{t}[{u}]"
                formula, numbers = {
                    "i": (f"∂L/∂c_{s}[{u}]·g_{s}[{u}]·i(1 - i)",
                          f"{_product(dc, gg, i)}·(1 - {_factor(i)})"),
                    "f": (f"∂L/∂c_{s}[{u}]·{cp}·f(1 - f)",
                          f"{_product(dc, c_prev, f)}·(1 - {_factor(f)})"),
                    "g": (f"∂L/∂c_{s}[{u}]·i_{s}[{u}]·(1 - g²)",
                          f"{_product(dc, i)}·(1 - {_factor(gg)}²)"),
                    "o": (f"∂L/∂h_{s}[{u}]·tanh(c_{s}[{u}])·o(1 - o)",
                          f"{_product(dh, self.cache('TC', t, j), o)}·(1 - {_factor(o)})"),
                }[gate]
                row = self.gate_row(gate, j)
                self.add(f"δ at the {GATE_NAMES[gate]} pre-activation, unit {u}",
                         f"δ{gate}_{s}[{u}] = {formula}", numbers, self.back("dA", t, row),
                         ("back", "dA", t, row), s)

    def backward_gru(self, t):
        s = t + 1
        g = lambda gate, j: self.cache("A", t, self.gate_row(gate, j))
        for j in range(HIDDEN):
            u, row = j + 1, self.gate_row("n", j)
            dh, z, n = self.back("dH", t, j), g("z", j), g("n", j)
            self.add(f"δ at the new-state pre-activation, unit {u}",
                     f"δn_{s}[{u}] = ∂L/∂h_{s}[{u}]·(1 - z_{s}[{u}])·(1 - n_{s}[{u}]²)",
                     f"{fmt(dh)}·(1 - {_factor(z)})·(1 - {_factor(n)}²)",
                     self.back("dA", t, row), ("back", "dA", t, row), s)
        for j in range(HIDDEN):
            u, row = j + 1, self.gate_row("z", j)
            dh, z, n = self.back("dH", t, j), g("z", j), g("n", j)
            self.add(f"δ at the update-gate pre-activation, unit {u}",
                     f"δz_{s}[{u}] = ∂L/∂h_{s}[{u}]·(h_{t}[{u}] - n_{s}[{u}])·z(1 - z)",
                     f"{fmt(dh)}·({fmt(self.h(t - 1, j))} - {_factor(n)})·{_factor(z)}"
                     f"·(1 - {_factor(z)})", self.back("dA", t, row), ("back", "dA", t, row), s)
        for j in range(HIDDEN):
            u, row = j + 1, self.gate_row("r", j)
            r = g("r", j)
            dn = self.back("dA", t, self.gate_row("n", j))
            self.add(f"δ at the reset-gate pre-activation, unit {u}",
                     f"δr_{s}[{u}] = δn_{s}[{u}]·hn_{s}[{u}]·r(1 - r)",
                     f"{_product(dn, self.cache('HN', t, j), r)}·(1 - {_factor(r)})",
                     self.back("dA", t, row), ("back", "dA", t, row), s)
        for j in range(HIDDEN):
            u, row = j + 1, self.gate_row("n", j)
            dn = self.back("dA", t, row)
            self.add(f"δ at hn (W_hn·h + b_hn), unit {u}",
                     f"δhn_{s}[{u}] = δn_{s}[{u}]·r_{s}[{u}]", _product(dn, g("r", j)),
                     self.back("dAh", t, row), ("back", "dAh", t, row), s)

    def delta(self, side, row, t):
        """The δ that multiplies weights on one side: GRU's n row differs between the sides."""
        field = "dAh" if side == "h" and self.cell == "gru" else "dA"
        return self.back(field, t, row)

    def delta_name(self, side, gate):
        if self.cell == "rnn":
            return "δa"
        if self.cell == "gru" and gate == "n" and side == "h":
            return "δhn"
        return f"δ{gate}"

    def weight_grads(self):
        grads = self.p.grads
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            side = "i" if "_ih_" in name else "h"
            for idx in np.ndindex(grads[name].shape):
                row = idx[0]
                gate, j = divmod(row, HIDDEN)
                gate = GATES[self.cell][gate]
                d = self.delta_name(side, gate)
                label = param_label(self.cell, name, idx)
                steps = range(self.T) if side == "i" else range(1, self.T)
                if len(idx) == 2:
                    k = idx[1]
                    src = "x" if side == "i" else "h"
                    other = (lambda t: self.x[t, k]) if side == "i" else (
                        lambda t: self.h(t - 1, k))
                    lag = "t" if side == "i" else "{t-1}"
                    rng = "t=1..3" if side == "i" else "t=2..3"
                    formula = (f"∂L/∂{label} = Σ_{rng} {d}_t[{j + 1}]·{src}_{lag}[{k + 1}]")
                    numbers = _sum([_product(self.delta(side, row, t), other(t)) for t in steps])
                else:
                    formula = f"∂L/∂{label} = Σ_t=1..3 {d}_t[{j + 1}]"
                    numbers = _sum([fmt(self.delta(side, row, t)) for t in range(self.T)])
                note = " (h_0 = 0, so t=1 adds nothing)" if name == "weight_hh_l0" else ""
                self.add(f"gradient of {label}{note}", formula, numbers, grads[name][idx],
                         ("grad", name) + idx)

    # ---- update ----
    def update(self, lr: float, updated: dict, after: Pass):
        self.section = "update"
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                     "head.weight", "head.bias"):
            for idx in np.ndindex(self.P[name].shape):
                label = param_label(self.cell, name, idx)
                old, grad = float(self.P[name][idx]), float(self.p.grads[name][idx])
                self.add(f"SGD step on {label}", f"{label} ← {label} - η·∂L/∂{label}",
                         f"{fmt(old)} - {_product(lr, grad)}", updated[name][idx],
                         ("param_after", name) + idx)
        T = self.T
        h_new = after.cache.H[T - 1, 0]
        Wy, by = updated["head.weight"][0], float(updated["head.bias"][0])
        out = float(after.output[0, 0])
        self.add("output with the new weights (a second forward pass)",
                 f"ŷ' = W_y'·h_{T}' + b_y'",
                 _sum([_product(Wy[j], h_new[j]) for j in range(HIDDEN)] + [fmt(by)]),
                 out, ("output_after",))
        self.add("new loss: lower than before", "L' = (ŷ' - y)²",
                 f"({fmt(out)} - {_factor(self.y)})²", after.loss, ("loss_after",))


def build_example(cell: str = "rnn", lr: float = LEARNING_RATE) -> WorkedExample:
    params = example_params(cell)
    x, y = example_data()
    model = Model(cell, {k: v.copy() for k, v in params.items()}, "regression")
    with np.errstate(all="ignore"):
        before = model.forward_backward(x, y)
        updated = {k: v.copy() for k, v in params.items()}
        Optimizer("sgd", lr).step(updated, before.grads, list(updated))
        after = Model(cell, {k: v.copy() for k, v in updated.items()},
                      "regression").forward_backward(x, y)
    b = _Builder(cell, model, x, float(y[0, 0]), before)
    b.forward()
    b.backward()
    b.update(lr, updated, after)
    return WorkedExample(cell, x, y, lr, params, updated, before, after, b.lines)


def worked_lines(cell: str = "rnn") -> list[Line]:
    return build_example(cell).lines


def setup_text(example: WorkedExample) -> list[str]:
    """The given numbers: inputs, target, learning rate and the starting weights, by gate."""
    cell, p = example.cell, example.params
    x = example.x[0]
    rows = [f"{example.cell.upper()} cell: 2 inputs, 2 hidden units, 3 steps, one target, "
            f"squared-error loss, h_0 = 0" + (", c_0 = 0" if cell == "lstm" else ""),
            "inputs: " + "  ".join(f"x_{t + 1} = ({fmt(x[t, 0])}, {fmt(x[t, 1])})"
                                   for t in range(x.shape[0])),
            f"target y = {fmt(example.y[0, 0])}   learning rate η = {fmt(example.lr)}"]
    for gate in GATES[cell]:
        g = GATES[cell].index(gate)
        sl = slice(g * HIDDEN, (g + 1) * HIDDEN)
        suffix = "h" if cell == "rnn" else gate
        wi, wh = p["weight_ih_l0"][sl], p["weight_hh_l0"][sl]
        bi, bh = p["bias_ih_l0"][sl], p["bias_hh_l0"][sl]
        mat = lambda m: "[" + "; ".join(", ".join(fmt(v) for v in r) for r in m) + "]"
        vec = lambda v: "(" + ", ".join(fmt(e) for e in v) + ")"
        rows.append(f"W_i{suffix} = {mat(wi)}  W_h{suffix} = {mat(wh)}")
        rows.append(f"b_i{suffix} = {vec(bi)}  b_h{suffix} = {vec(bh)}")
    rows.append(f"head: W_y = ({', '.join(fmt(v) for v in p['head.weight'][0])})  "
                f"b_y = {fmt(p['head.bias'][0])}")
    rows.append("[a, b; c, d] lists a matrix row by row; W[j,k] links input (or unit) k to "
                "unit j; [j] picks unit j; σ is the logistic sigmoid; δ is ∂L/∂ of a "
                "pre-activation.")
    return rows


_HEADINGS = {"forward": "FORWARD PASS", "backward": "BACKWARD PASS (backpropagation through time)",
             "update": "ONE SGD STEP, THEN THE LOSS AGAIN"}


def format_plain(lines: list[Line], example: WorkedExample | None = None, width: int = 78) -> str:
    """The whole walk-through as plain text: no escape codes, wrapped to `width` columns."""
    out: list[str] = []
    wrap = lambda text, indent: textwrap.fill(text, width, initial_indent=indent,
                                              subsequent_indent=indent + "    ",
                                              break_on_hyphens=False)
    if example is not None:
        out.append(f"Worked example: {example.cell.upper()}")
        out.append("")
        out += [wrap(row, "") for row in setup_text(example)]
    section, step = None, None
    for n, line in enumerate(lines, 1):
        if line.section != section:
            section, step = line.section, None
            out += ["", _HEADINGS[section], ""]
        if line.step != step:
            step = line.step
            if step is not None:
                out.append(f"t = {step}")
        out.append(wrap(f"{n:>3}. {line.label}", ""))
        out.append(wrap(line.formula, "     "))
        out.append(wrap(f"= {line.numbers}", "       "))
        out.append(wrap(f"= {line.result}", "       "))
    return "\n".join(out) + "\n"


def plain_walkthrough(cell: str) -> str:
    example = build_example(cell)
    return format_plain(example.lines, example)
