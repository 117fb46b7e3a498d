"""The random cases the checker runs, with the engine's answers for them.

Each case says which of the learner's functions to call with which inputs, what the engine's
reference (`tutor/engine/reference.py`) returns for the same inputs, the symbolic shape of
every result, which results run along time or are stacked by gate, and which gradients to
compare with finite differences of the learner's own forward."""
from __future__ import annotations

from dataclasses import dataclass, field

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


CASES = {1: _rnn_cases, 2: _sequence_cases, 3: _clip_cases, 4: _lstm_cases, 5: _gru_cases}


def make_cases(number: int, rng: np.random.Generator) -> list[Case]:
    return CASES[number](rng)
