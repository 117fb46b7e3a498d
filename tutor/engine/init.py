"""Parameter initialisation: PyTorch's default, orthogonal, identity; spectral-radius rescaling
of the recurrent matrix; the LSTM forget-gate bias."""
from __future__ import annotations

import numpy as np

from .cells import make_cell


def init_params(cell: str, I: int, H: int, O: int, rng: np.random.Generator, init: str,
                radius: float | None, forget_bias: float, dtype) -> dict[str, np.ndarray]:
    G = make_cell(cell).gates
    k = 1.0 / np.sqrt(H)
    uni = lambda *shape: rng.uniform(-k, k, size=shape)
    p = {
        "weight_ih_l0": uni(G * H, I),
        "weight_hh_l0": uni(G * H, H),
        "bias_ih_l0": uni(G * H),
        "bias_hh_l0": uni(G * H),
    }
    # `init` chooses the recurrent matrix; the input weights always take PyTorch's default.
    if init == "orthogonal":
        p["weight_hh_l0"] = np.concatenate([_orthogonal(rng, H) for _ in range(G)])
    elif init == "identity":
        # Le, Jaitly & Hinton (2015): W_hh = I and zero biases, so a ReLU cell starts as a pure
        # accumulator. The input weights keep PyTorch's default scale.
        p["weight_hh_l0"] = np.concatenate([np.eye(H) for _ in range(G)])
        p["bias_ih_l0"][:] = 0.0
        p["bias_hh_l0"][:] = 0.0
    if radius is not None:
        for g in range(G):
            block = p["weight_hh_l0"][g * H:(g + 1) * H]
            rho = spectral_radius(block)
            if rho > 0:
                block *= radius / rho
    if cell == "lstm":
        p["bias_ih_l0"][H:2 * H] = forget_bias
        p["bias_hh_l0"][H:2 * H] = 0.0
    kh = 1.0 / np.sqrt(H)
    p["head.weight"] = rng.uniform(-kh, kh, size=(O, H))
    p["head.bias"] = rng.uniform(-kh, kh, size=O)
    return {name: np.ascontiguousarray(a, dtype=dtype) for name, a in p.items()}


def spectral_radius(W: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W.astype(np.float64)))))


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))
