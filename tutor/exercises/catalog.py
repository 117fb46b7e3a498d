"""The exercises: their files, the random cases the checker runs, the hints, the solutions.

Each case says which of the learner's functions to call with which inputs, what the engine's
reference (`tutor/engine/reference.py`) returns for the same inputs, the symbolic shape of
every result, which results run along time, and which gradients to compare with finite
differences of the learner's own forward. The solutions shown to a learner are the reference's
own source, so there is one version of each answer."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable

import numpy as np

from tutor.engine import reference as ref

FD_EPS = 1e-6
W_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh")


@dataclass
class Case:
    inputs: dict[str, np.ndarray]
    calls: list[dict]
    expected: dict[str, np.ndarray]
    shapes: dict[str, str]
    fd: list[dict] = field(default_factory=list)
    fd_of: dict[str, str] = field(default_factory=dict)     # gradient name → input name
    time: dict[str, str] = field(default_factory=dict)      # name → "forward" / "backward"
    scalars: list[str] = field(default_factory=list)
    dims: str = ""
    gates: str = ""                      # names of the stacked gates, in order ("ifgo")
    hidden: int = 0
    stacked: tuple[str, ...] = ()        # results stacked by gate: wrong blocks get named

    def to_child(self) -> dict:
        return {"inputs": self.inputs, "calls": self.calls, "fd": self.fd,
                "scalars": self.scalars}


@dataclass(frozen=True)
class Exercise:
    number: int
    file: str
    title: str
    functions: tuple[str, ...]
    make_cases: Callable[[np.random.Generator], list[Case]]
    hints: tuple[str, ...]
    helpers: tuple[str, ...] = ()        # reference functions the solution calls

    @property
    def template(self) -> str:
        return resources.files("tutor.exercises").joinpath("templates", self.file).read_text(
            encoding="utf-8")

    @property
    def solution(self) -> str:
        """The engine's reference code for this exercise's functions, as a file that runs."""
        return "import numpy as np\n\n\n" + "\n\n\n".join(
            inspect.getsource(getattr(ref, name)).rstrip()
            for name in self.helpers + self.functions) + "\n"


def _weights(rng, G, I, H):
    return {"W_ih": rng.normal(0, 0.6, (G * H, I)), "W_hh": rng.normal(0, 0.6, (G * H, H)),
            "b_ih": rng.normal(0, 0.3, G * H), "b_hh": rng.normal(0, 0.3, G * H)}


def _grad_shapes(G):
    g = f"{G}H" if G > 1 else "H"
    return {"dW_ih": f"({g}, I)", "dW_hh": f"({g}, H)", "db_ih": f"({g},)", "db_hh": f"({g},)"}


def _step_case(rng, B, I, H, kind) -> Case:
    """One step of rnn, lstm or gru: forward, backward, and finite differences of the forward."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    fwd, bwd = ref.STEPS[kind]
    w = _weights(rng, G, I, H)
    inputs = {"x": rng.normal(size=(B, I)), "h_prev": rng.normal(0, 0.8, (B, H)), **w,
              "dh": rng.normal(size=(B, H))}
    states = ["h_prev"] + (["c_prev"] if kind == "lstm" else [])
    if kind == "lstm":
        inputs["c_prev"] = rng.normal(0, 0.8, (B, H))
        inputs["dc"] = rng.normal(size=(B, H))
    args = ["x", *states, *W_NAMES]
    outs = ["h", "c"] if kind == "lstm" else ["h"]
    grads = ["dx", *("d" + s for s in states), *("d" + n for n in W_NAMES)]
    upstream = ["dh", "dc"] if kind == "lstm" else ["dh"]
    *values, cache = fwd(*(inputs[a] for a in args))
    expected = dict(zip(outs, values))
    expected.update(zip(grads, bwd(*(inputs[u] for u in upstream), cache)))
    shapes = {"h": "(B, H)", "c": "(B, H)", "dx": "(B, I)", "dh_prev": "(B, H)",
              "dc_prev": "(B, H)", **_grad_shapes(G)}
    fn = f"{kind}_step_forward"
    return Case(
        inputs=inputs,
        calls=[{"fn": fn, "args": args, "returns": [*outs, "cache"], "opaque": ["cache"]},
               {"fn": f"{kind}_step_backward", "args": [*upstream, "cache"], "returns": grads}],
        expected=expected, shapes={k: shapes[k] for k in expected},
        fd=[{"fn": fn, "args": args, "returns": [*outs, "cache"], "eps": FD_EPS,
             "weights": {str(i): u for i, u in enumerate(upstream)}, "wrt": args}],
        fd_of=dict(zip(grads, args)), dims=f"B={B}, I={I}, H={H}",
        gates={"rnn": "", "lstm": "ifgo", "gru": "rzn"}[kind], hidden=H,
        stacked=("dW_ih", "dW_hh", "db_ih", "db_hh"))


def _rnn_cases(rng):
    return [_step_case(rng, 3, 4, 5, "rnn"), _step_case(rng, 1, 2, 3, "rnn")]


def _lstm_cases(rng):
    return [_step_case(rng, 3, 2, 4, "lstm"), _step_case(rng, 1, 3, 2, "lstm")]


def _gru_cases(rng):
    return [_step_case(rng, 3, 2, 4, "gru"), _step_case(rng, 1, 3, 2, "gru")]


def _sequence_case(rng, T, B, I, H) -> Case:
    w = _weights(rng, 1, I, H)
    inputs = {"x": rng.normal(size=(T, B, I)), "h0": rng.normal(0, 0.8, (B, H)), **w,
              "dh": rng.normal(size=(T, B, H))}
    args = ["x", "h0", *W_NAMES]
    h, caches = ref.rnn_forward(*(inputs[a] for a in args))
    grads = ["dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh", "dh_norms"]
    expected = {"h": h, **dict(zip(grads, ref.rnn_backward(inputs["dh"], caches)))}
    shapes = {"h": "(T, B, H)", "dx": "(T, B, I)", "dh0": "(B, H)", "dh_norms": "(T,)",
              **_grad_shapes(1)}
    return Case(
        inputs=inputs,
        calls=[{"fn": "rnn_forward", "args": args, "returns": ["h", "cache"],
                "opaque": ["cache"]},
               {"fn": "rnn_backward", "args": ["dh", "cache"], "returns": grads}],
        expected=expected, shapes=shapes,
        fd=[{"fn": "rnn_forward", "args": args, "returns": ["h", "cache"], "eps": FD_EPS,
             "weights": {"0": "dh"}, "wrt": args}],
        fd_of=dict(zip(grads[:6], args)),
        time={"h": "forward", "dx": "backward", "dh_norms": "backward"},
        dims=f"T={T}, B={B}, I={I}, H={H}")


def _sequence_cases(rng):
    return [_sequence_case(rng, 6, 2, 3, 4), _sequence_case(rng, 3, 1, 2, 3)]


def _clip_case(rng, scale, threshold) -> Case:
    H, I = 4, 3
    grads = {"weight_ih_l0": rng.normal(0, scale, (H, I)),
             "weight_hh_l0": rng.normal(0, scale, (H, H)),
             "bias_ih_l0": rng.normal(0, scale, H), "bias_hh_l0": rng.normal(0, scale, H)}
    inputs = {f"grads/{k}": v for k, v in grads.items()}
    inputs["threshold"] = np.array(threshold)
    by_norm, norm = ref.clip_by_norm(grads, threshold)
    by_value = ref.clip_by_value(grads, threshold)
    expected = {"norm": np.array(norm)}
    expected.update({f"by_norm/{k}": v for k, v in by_norm.items()})
    expected.update({f"by_value/{k}": v for k, v in by_value.items()})
    shapes = {"norm": "a number"}
    shapes.update({k: str(grads[k.split("/")[1]].shape) for k in expected if "/" in k})
    return Case(
        inputs=inputs,
        calls=[{"fn": "clip_by_norm", "args": ["grads", "threshold"],
                "returns": ["by_norm", "norm"], "dicts": ["by_norm"]},
               {"fn": "clip_by_value", "args": ["grads", "threshold"],
                "returns": ["by_value"], "dicts": ["by_value"]}],
        expected=expected, shapes=shapes, scalars=["threshold"],
        dims=f"threshold {threshold:g}, ‖g‖ = {norm:.3g}")


def _clip_cases(rng):
    # one where clipping acts (‖g‖ well above the threshold), one where it must not
    return [_clip_case(rng, 1.0, 0.7), _clip_case(rng, 0.05, 2.0)]


EXERCISES = (
    Exercise(1, "01_rnn_step.py", "RNN step, forward and backward",
             ("rnn_step_forward", "rnn_step_backward"), _rnn_cases, (
                 "Forward is one line of NumPy: products with the transposed weights "
                 "(x @ W_ih.T is (B, H)), both biases, then np.tanh. The cache can be a tuple "
                 "of x, h_prev, W_ih, W_hh and h.",
                 "Backward starts at the pre-activation: da = dh * (1 - h**2), shape (B, H). "
                 "Then a = x W_ihᵀ + … makes dx = da @ W_ih and dh_prev = da @ W_hh.",
                 "A weight gradient has the weight's shape: dW_ih = da.T @ x is (H, I). A bias "
                 "is added to every row of the batch, so db = da.sum(axis=0), shape (H,); "
                 "db_ih and db_hh are equal.")),
    Exercise(2, "02_rnn_sequence.py", "Backprop through time, ‖∂L/∂h_t‖ per step",
             ("rnn_forward", "rnn_backward"), _sequence_cases, (
                 "Forward: loop t over range(T), h_t = step(x[t], h_{t-1}), collect the states "
                 "with np.stack and keep every step's cache in a list.",
                 "Backward: loop t over reversed(range(T)) carrying dh_next (zeros at the "
                 "start): total = dh[t] + dh_next. Its norm is dh_norms[t]; feed the total to "
                 "the step's backward, whose dh_prev becomes the next dh_next.",
                 "Add the weight gradients over the steps (+=), write dx[t] per step, and after "
                 "the loop the last dh_prev is dh0."),
             ("rnn_step_forward", "rnn_step_backward")),
    Exercise(3, "03_clipping.py", "Gradient clipping by norm and by value",
             ("clip_by_norm", "clip_by_value"), _clip_cases, (
                 "norm = np.sqrt(sum(np.sum(g**2) for g in grads.values())): one norm over "
                 "every array, not one per array.",
                 "Scale only when norm > max_norm, and by max_norm / norm; return the norm you "
                 "measured before scaling.",
                 "By value: {name: np.clip(g, -limit, limit) for name, g in grads.items()}."),
             ("global_norm",)),
    Exercise(4, "04_lstm_step.py", "LSTM step, forward and backward",
             ("lstm_step_forward", "lstm_step_backward"), _lstm_cases, (
                 "Split a (B, 4H) into four (B, H) blocks in the order i, f, g, o; only g uses "
                 "tanh. Cache x, h_prev, c_prev, the weights, the four gates and tanh(c).",
                 "In backward, first add h's share to the cell: dc_total = dc + dh·o·(1 − "
                 "tanh(c)²). Then do = dh·tanh(c)·o(1 − o), di = dc_total·g·i(1 − i), "
                 "df = dc_total·c_prev·f(1 − f), dg = dc_total·i·(1 − g²).",
                 "Stack [di, df, dg, do] into da (B, 4H) and finish as in the RNN: "
                 "dx = da @ W_ih, dh_prev = da @ W_hh, dW = da.T @ input; dc_prev = "
                 "dc_total·f."),
             ("sigmoid",)),
    Exercise(5, "05_gru_step.py", "GRU step, forward and backward",
             ("gru_step_forward", "gru_step_backward"), _gru_cases, (
                 "Compute gi = x @ W_ih.T + b_ih and gh = h_prev @ W_hh.T + b_hh separately; "
                 "keep hn = gh[:, 2H:3H] (before the reset) in the cache: backward needs it.",
                 "dn = dh·(1 − z)·(1 − n²), dz = dh·(h_prev − n)·z(1 − z), dr = dn·hn·r(1 − r).",
                 "The input side's gradient is [dr, dz, dn]; the recurrent side's is "
                 "[dr, dz, dn·r]. dh_prev = (recurrent side) @ W_hh + dh·z; the biases take "
                 "the sum over the batch of their own side."),
             ("sigmoid",)),
)

BY_NUMBER = {e.number: e for e in EXERCISES}
