"""Recurrent cells with exact backpropagation through time, in PyTorch's parameter layout.

One module per cell (`rnn` for the tanh RNN and the IRNN, `lstm`, `gru`), what they share in
`base` (the Cache and Backward records, the buffer pool, the stacked GEMM operands, the weight
gradients and per-step norms over all steps) and the memory they run in (`memory`).

Each cell has `forward(params, X)` returning the states and a cache, and
`backward(params, cache, dH_out)` returning parameter gradients plus the total derivative
∂L/∂h_t at every step. The public arrays are time-major, batch second: X is (T, B, I), the
cache's H is (T, B, H), A is (T, B, G·H), and so are the gradients in `Backward`.

How it is fast in pure NumPy. A step of the loop works on arrays of a few thousand numbers, so
what costs is the number of NumPy calls, how much memory each call touches, and the small GEMMs;
`bench/engine.py` measures the result against PyTorch.
- Inside, each step's arrays are feature-major, (rows, B), so every gate is one contiguous
  block and every elementwise call runs on contiguous memory. The public (T, B, ·) arrays are
  transposed views of these buffers, not copies.
- The input, the previous state and a row of ones are stacked into Z_t = [h_{t-1}; x_t; 1], so
  one GEMM per step, written straight into its output buffer, gives every gate's
  pre-activation with both biases.
- The sigmoid gates' weight rows are pre-scaled by ½, so a single tanh over all gates, then
  σ(a) = ½ + ½·tanh(a/2), activates every gate.
- Backward runs over chunks of steps, latest first, sized to stay in the CPU's L2 cache. The
  weight gradients are Σ_t δ_t·[h_{t-1}; x_t; 1]ᵀ: each chunk's terms are made by one batched
  GEMM while its δ are in cache, summed, and kept for the per-step metrics (each step's share
  of the update is the norm of its own term). With the metrics turned off (`step_metrics`, for
  `bench/engine.py`) each chunk's δ are copied into one (rows, T·B) matrix instead and a
  single GEMM after the loop makes the gradients: a few percent faster, and the engine as it
  was before the metrics.
  rnn and gru compute a chunk's recurrence-free factors (σ′, tanh′ and their products) in a few
  calls over all its steps; lstm, with more of them, computes them step by step while the
  step's gates are in cache, which measured faster.
- The per-step norms ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) are summed inside the backward loop, while
  each step's gradient is still in cache.
- dA (and the GRU's dAh) are computed only when read: a training step never needs them.
- A vanishing float32 gradient is cut to exactly zero once it falls below ~2e-31 (see
  `Cell._cutoff`) instead of decaying through the subnormal range, where arithmetic runs in
  microcode and a step slows down tenfold.
- Scratch buffers live on the cell. Result arrays come from a small pool on the cell and are
  reused only when nothing refers to them any more, so a Cache or Backward a caller keeps is
  never overwritten, while a training loop does not fault fresh pages in every step. (A cell
  instance is therefore not for use from two threads at once.) Large ones are mapped so that
  Linux may back them with 2 MiB pages (see `_alloc`).
"""
from __future__ import annotations

from .base import (PARAM_NAMES, Backward, Cache, Cell, _SquaredNorms, _WeightGrads, _gate_mean,
                   _row_means, _swap)
from .gru import GRU
from .lstm import LSTM
from .memory import _alloc
from .rnn import ReLURNN, TanhRNN

__all__ = ["PARAM_NAMES", "Backward", "Cache", "Cell", "CELL_TYPES", "GRU", "LSTM", "ReLURNN",
           "TanhRNN", "make_cell"]

CELL_TYPES = {c.name: c for c in (TanhRNN, ReLURNN, LSTM, GRU)}


def make_cell(name: str) -> Cell:
    return CELL_TYPES[name]()
