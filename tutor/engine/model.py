"""A recurrent cell plus a linear head, with parameters under PyTorch's names.

`params` holds `weight_ih_l0` (G·H×I), `weight_hh_l0` (G·H×H), `bias_ih_l0`, `bias_hh_l0`
exactly as `torch.nn.RNN/LSTM/GRU(batch_first=True)` lays them out, and `head.weight` (O×H),
`head.bias` (O) as `torch.nn.Linear` does.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .cells import PARAM_NAMES, Backward, Cache, Cell, make_cell
from .heads import loss_and_grad
from .truncate import last_step_drop, truncated_backprop

HEAD_NAMES = ("head.weight", "head.bias")


class WeightsError(ValueError):
    """A weight file or dict that cannot be used; the message is one line."""


@dataclass
class Pass:
    """One forward and backward pass over a batch."""
    loss: float
    accuracy: float | None
    grads: dict[str, np.ndarray]
    output: np.ndarray               # head output: (B, O), or (B, T, O) for per-step heads
    cache: Cache
    back: Backward
    recurrent_weights: np.ndarray | None = None   # weight_hh_l0 as this pass used it
    cell: object = None                          # the Cell that made the pass

    def state_jacobians(self, sample: int = 0) -> np.ndarray:
        """(T, S, S): the one-step state Jacobians ∂s_t/∂s_{t−1}, t = 1..T, of sequence
        `sample` (s_0 is the zero initial state; s is h, or the stacked (h, c) for the LSTM)."""
        return self.cell.state_jacobians(self.recurrent_weights, self.cache, sample)

    def jacobian_norm_per_step(self, sample: int = 0) -> np.ndarray:
        """(T,) the spectral norm ‖∂s_t/∂s_{t−1}‖₂ at t = 1..T for one sequence: the factor by
        which one step back can at most stretch a gradient. Computed on each call."""
        with np.errstate(all="ignore"):
            J = self.state_jacobians(sample)
            if not np.all(np.isfinite(J)):
                return np.array([np.linalg.norm(j, 2) if np.all(np.isfinite(j)) else np.nan
                                 for j in J])
            return np.linalg.norm(J, 2, axis=(1, 2))

    @property
    def grad_norm_per_step(self) -> np.ndarray:
        """‖∂L/∂h_t‖ for t = 1..T (Frobenius norm over the batch)."""
        return self.back.dH_norm

    @property
    def cell_grad_norm_per_step(self) -> np.ndarray | None:
        return self.back.dC_norm

    @property
    def input_grad_norm_per_step(self) -> np.ndarray:
        """‖∂L/∂x_t‖ for t = 1..T over the batch: how strongly the loss depends on the input
        at step t, through every path."""
        return self.back.dX_norm

    @property
    def param_grad_norm_per_step(self) -> np.ndarray:
        """Step t's contribution to the recurrent layer's gradient, t = 1..T: the Frobenius
        norm, over weight_ih_l0, weight_hh_l0, bias_ih_l0 and bias_hh_l0 together, of the
        gradient with respect to a copy of those parameters used at step t only. The T
        contributions sum to `grads`."""
        return self.back.param_norm

    def sample_input_grad_norm_per_step(self, sample: int = 0) -> np.ndarray:
        """‖∂L_b/∂x_t‖ for t = 1..T, for sequence b = `sample` of the batch alone, L_b being
        its own loss (the batch's loss is the mean of the L_b, so this is B·‖∂L/∂x_{t,b}‖)."""
        dX = self.back.dX[:, sample]                       # (T, I)
        wide = dX.astype(np.float64)
        return np.sqrt(np.einsum("ti,ti->t", wide, wide)) * self.back.dX.shape[1]


class Model:
    def __init__(self, cell: str, params: dict[str, np.ndarray], head_kind: str,
                 implementation: Cell | None = None):
        """implementation: the Cell object that computes `cell` (e.g. a `StepwiseCell` of a
        learner's step functions); None, the engine's own."""
        self.cell_name = cell
        self.cell = make_cell(cell) if implementation is None else implementation
        self.head_kind = head_kind
        self.params = params
        self.check_shapes()

    @property
    def hidden(self) -> int:
        return self.params["weight_hh_l0"].shape[1]

    @property
    def dtype(self):
        return self.params["weight_hh_l0"].dtype

    @classmethod
    def from_arrays(cls, cell: str, arrays: dict, head_kind: str = "regression",
                    dtype="float64", implementation: Cell | None = None) -> "Model":
        """Build a model from a dict of arrays with PyTorch's names (plain numpy arrays, or
        anything np.asarray accepts). Names may carry a module prefix such as `rnn.`."""
        params = {}
        for name in PARAM_NAMES + HEAD_NAMES:
            match = [k for k in arrays if k == name or k.endswith("." + name)]
            if not match:
                raise WeightsError(f"missing {name}")
            params[name] = np.array(arrays[match[0]], dtype=dtype)
        return cls(cell, params, head_kind, implementation)

    def check_shapes(self, input_size: int | None = None, output_size: int | None = None):
        p = self.params
        G = self.cell.gates
        try:
            H = p["weight_hh_l0"].shape[1]
            I = p["weight_ih_l0"].shape[1]
            O = p["head.weight"].shape[0]
        except (KeyError, IndexError) as exc:
            raise WeightsError(f"weights are missing or mis-shaped ({exc})") from None
        want = {"weight_ih_l0": (G * H, I), "weight_hh_l0": (G * H, H), "bias_ih_l0": (G * H,),
                "bias_hh_l0": (G * H,), "head.weight": (O, H), "head.bias": (O,)}
        if input_size is not None:
            want["weight_ih_l0"] = (G * H, input_size)
        if output_size is not None:
            want["head.weight"] = (output_size, H)
            want["head.bias"] = (output_size,)
        for name, shape in want.items():
            got = p[name].shape
            if got != shape:
                raise WeightsError(f"{name} has shape {got}, a {self.cell_name} needs {shape}")
        for name, arr in p.items():
            if not np.all(np.isfinite(arr)):
                raise WeightsError(f"{name} holds NaN or inf")

    def forward_backward(self, x: np.ndarray, y, mask=None, nudge=None,
                         truncate: int | None = None) -> Pass:
        """x: (B, T, I) batch-first; y as the task makes it. nudge: see `Cell.forward`.
        truncate: carry each loss term's gradient back at most this many steps (truncated
        BPTT, `tutor.engine.truncate`); None, or T − 1 and more, is the full backward pass."""
        if truncate is not None and (isinstance(truncate, bool) or truncate < 1):
            raise ValueError(f"truncate must be a whole number of steps of at least 1, not "
                             f"{truncate!r}")
        p = self.params
        X = np.asarray(x, dtype=self.dtype).swapaxes(0, 1)    # (T, B, I) view
        cache = self.cell.forward(p, X, nudge)
        W, b = p["head.weight"], p["head.bias"]
        H = cache.H
        T = H.shape[0]
        k = truncate if truncate is not None and truncate < T - 1 else None
        # The cells keep each step's state as (H, B); work in that layout to avoid copies.
        Hf = H.transpose(0, 2, 1)                             # (T, H, B)
        if self.head_kind == "sequence":
            Yf = W @ Hf                                       # (T, O, B)
            Yf += b[:, None]
            Y = Yf.transpose(0, 2, 1)                         # (T, B, O)
            loss, acc, dY = loss_and_grad("sequence", Y, y, mask)
            dYf = np.ascontiguousarray(dY.transpose(0, 2, 1))
            direct = W.T @ dYf                                # (T, H, B)
            gW = np.einsum("tob,thb->oh", dYf, Hf)
            gb = dY.sum(axis=(0, 1))
            output = np.swapaxes(Y, 0, 1)
            if k is None:
                back = self.cell.backprop(p, cache, direct[-1], direct)
            else:
                back = truncated_backprop(self.cell, p, cache, direct, k)
        else:
            hT = H[-1]
            Y = hT @ W.T + b
            loss, acc, dY = loss_and_grad(self.head_kind, Y, y)
            gW = dY.T @ hT
            gb = dY.sum(axis=0)
            output = Y
            back = self.cell.backprop(p, cache, W.T @ dY.T,
                                      drop=None if k is None else last_step_drop(T, k))
        grads = dict(back.grads)
        grads["head.weight"] = gW
        grads["head.bias"] = gb
        return Pass(loss=loss, accuracy=acc, grads=grads, output=output, cache=cache, back=back,
                    recurrent_weights=p["weight_hh_l0"].copy(), cell=self.cell)

    def save(self, path: str) -> None:
        """Write an .npz with PyTorch's names; atomic, so a failed write leaves no half file."""
        directory = os.path.dirname(os.path.abspath(path))
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, cell=np.array(self.cell_name), **self.params)
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise WeightsError(f"cannot write {path}: {exc.strerror or exc}") from None

    @staticmethod
    def load_arrays(path: str) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise WeightsError(f"no weight file at {path}") from None
        except IsADirectoryError:
            raise WeightsError(f"{path} is a folder, not a weight file") from None
        except PermissionError:
            raise WeightsError(f"cannot read {path}: permission denied") from None
        except Exception as exc:  # np.load raises many kinds on a corrupt file
            raise WeightsError(f"{path} is not a readable .npz weight file "
                               f"({type(exc).__name__})") from None
