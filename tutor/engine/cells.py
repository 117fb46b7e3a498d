"""Recurrent cells with exact backpropagation through time, in PyTorch's parameter layout.

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
- Backward runs over chunks of steps, latest first, sized to stay in the CPU's L2 cache. Each
  chunk's δ are copied into one (rows, T·B) matrix, and after the loop a single GEMM makes
  every weight gradient, Σ_t δ_t·[h_{t-1}; x_t; 1]ᵀ (measured faster than one per chunk).
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

import mmap
import sys

import numpy as np

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class Cache:
    """What the backward pass needs from the forward pass, plus what the charts show:
        X    (T, B, I) inputs
        H    (T, B, H) hidden states h_1..h_T
        A    (T, B, G·H) activated gates (pre-activations for rnn and irnn)
        C    (T, B, H) LSTM cell states;  TC  tanh(c_t)
        HN   (T, B, H) GRU: W_hn h + b_hn
    A cell whose own layout differs may hand over a function that builds A on first access."""

    def __init__(self, X, H, A=None, C=None, TC=None, HN=None, extra=None, *, gates=None):
        self.X, self.H, self.C, self.TC, self.HN = X, H, C, TC, HN
        self.extra = {} if extra is None else extra
        self._A, self._gates = A, gates

    @property
    def A(self) -> np.ndarray:
        if self._A is None and self._gates is not None:
            self._A, self._gates = self._gates(), None
        return self._A


class Backward:
    """What the backward pass found:
        grads   parameter gradients under PyTorch's names
        dH      (T, B, H) total ∂L/∂h_t
        dC      (T, B, H) total ∂L/∂c_t (LSTM)
        dH_norm, dC_norm   (T,) ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖ over the batch, in float64
        dA      (T, B, G·H) gradients at the gate pre-activations
        dAh     GRU: the recurrent side's pre-activation gradients
    A training step never reads dA, so a cell may hand over a function that computes it (from
    dH, dC and the forward cache, with the very operations the backward loop used) on first
    access instead of storing it."""

    def __init__(self, grads, dH, dC=None, dA=None, dAh=None, *, dH_norm, dC_norm=None,
                 gate_grads=None):
        self.grads, self.dH, self.dC = grads, dH, dC
        self.dH_norm, self.dC_norm = dH_norm, dC_norm
        self._dA, self._dAh, self._gate_grads = dA, dAh, gate_grads

    def _materialise(self):
        if self._gate_grads is not None:
            self._dA, self._dAh = self._gate_grads()
            self._gate_grads = None

    @property
    def dA(self) -> np.ndarray | None:
        self._materialise()
        return self._dA

    @property
    def dAh(self) -> np.ndarray | None:
        self._materialise()
        return self._dAh


_HUGE = 1 << 21                             # a transparent huge page on x86-64 Linux


def _alloc(shape: tuple, dtype) -> np.ndarray:
    """np.empty, except that a large array gets memory the kernel may back with 2 MiB pages.
    A step sweeps several MiB of such arrays, forward and then backward; with 4 KiB pages
    that is more pages than the TLB maps, and the misses measured 6% of an LSTM step."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    if size < _HUGE // 8 or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.empty(shape, dtype)
    try:
        m = mmap.mmap(-1, size + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return np.empty(shape, dtype)
    start = np.frombuffer(m, np.uint8, count=1).ctypes.data
    return np.ndarray(shape, dtype, buffer=m, offset=-start % _HUGE)


class _SquaredNorms:
    """Σ x² of each step's gradient, taken in the backward loop while the step is in cache
    (measured: two to three times cheaper than a pass over the finished (T, H, B) array).

    In float32, squaring entries below ~1e-19 makes subnormals, which the CPU handles in
    microcode (measured: 125 times slower), and entries above ~1e18 overflow the sum; vanishing
    and exploding gradients reach both. A step whose float32 sum falls outside (1e-28, 1e36) is
    summed again in float64; while those float64 sums stay outside (1e-26, 1e30), the steps
    after it (earlier in time) go straight to float64."""

    def __init__(self, T: int, dtype):
        self.sq = np.zeros(T)                # steps the loop never reaches stay 0: cut to zero
        self.narrow = np.dtype(dtype) != np.float64
        self.safe = True

    def take(self, t: int, a: np.ndarray) -> None:
        if self.narrow:
            if self.safe:
                s = float(np.vdot(a, a))
                if 1e-28 < s < 1e36:
                    self.sq[t] = s
                    return
            wide = a.astype(np.float64)
            s = float(np.vdot(wide, wide))
            self.safe = 1e-26 < s < 1e30
            self.sq[t] = s
        else:
            self.sq[t] = np.vdot(a, a)

    def norms(self) -> np.ndarray:
        return np.sqrt(self.sq)


def _pool_only_refcount() -> int:
    """What sys.getrefcount says, in `Cell._fresh`'s loop, about an array that only the pool
    holds. Measured rather than assumed: interpreters differ in which temporary references
    they count."""
    pool = [np.empty(0)]
    for a in pool:
        return sys.getrefcount(a)


_POOL_ONLY = _pool_only_refcount()


def _swap(a: np.ndarray) -> np.ndarray:
    """(T, B, R) ↔ (T, R, B) as a view: the public layout and the internal one."""
    return a.transpose(0, 2, 1)


def _negligible(x: np.ndarray, cut: float) -> bool:
    """Every entry within ±cut (False when x holds NaN)."""
    return bool(x.max() < cut) and bool(x.min() > -cut)


def _gate_mean(cache: Cache, gate: int) -> np.ndarray:
    """Batch-and-unit mean of one gate's block at each step."""
    T, _, Hn = cache.H.shape
    return _row_means(_swap(cache.A)[:, gate * Hn:(gate + 1) * Hn].reshape(T, -1))


def _row_means(block: np.ndarray) -> np.ndarray:
    """Mean of each row of a (T, n) array."""
    return block @ np.full(block.shape[1], 1.0 / block.shape[1], block.dtype)  # BLAS: 4× mean()


class Cell:
    name = ""
    gates = 1

    def __init__(self):
        self._scratch: dict[str, np.ndarray] = {}
        self._pool: dict[str, list[np.ndarray]] = {}

    def forward(self, p: dict, X: np.ndarray, nudge=None) -> Cache:
        """nudge=(t, "h" or "c", delta) adds delta to that state as step t computes it: the
        hook a finite-difference check of the total derivative ∂L/∂h_t uses."""
        raise NotImplementedError

    def backward(self, p: dict, cache: Cache, dH_out: np.ndarray) -> Backward:
        """dH_out (T, B, H): the loss's own ∂L/∂h_t at each step (not through the recurrence)."""
        direct = _swap(np.asarray(dH_out, dtype=cache.H.dtype))
        # A many-to-one head reaches only the last step; then the loop skips the additions.
        return self.backprop(p, cache, direct[-1], direct if direct[:-1].any() else None)

    def backprop(self, p: dict, cache: Cache, last: np.ndarray,
                 direct: np.ndarray | None = None) -> Backward:
        """`backward` with the loss's gradient in the cells' layout: last (H, B) at the last
        step, and direct (T, H, B) at every step, or None when only the last step has one."""
        raise NotImplementedError

    def gate_per_step(self, cache: Cache) -> np.ndarray | None:
        """Batch-mean of the gate that decides how much memory is kept, per step."""
        return None

    # ---- shared machinery ----
    def _buf(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A scratch array kept on the cell; never handed to a caller."""
        a = self._scratch.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._scratch[name] = _alloc(shape, dtype)
        return a

    def _fresh(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An array for results handed to the caller: one from an earlier call that nothing
        refers to any more (no reference, no view: its reference count says so), else a new
        one. Large arrays freed and allocated anew each step can go back to the OS and fault
        in again page by page (measured: 450 page faults per LSTM step at hidden 64, about a
        tenth of its time); reuse keeps them mapped and warm."""
        pool = self._pool.setdefault(name, [])
        dtype = np.dtype(dtype)
        for a in pool:
            if sys.getrefcount(a) <= _POOL_ONLY and a.shape == shape and a.dtype == dtype:
                return a
        a = _alloc(shape, dtype)
        pool.append(a)
        if len(pool) > 4:                    # shapes changed, or callers keep old results
            del pool[0]
        return a

    @staticmethod
    def _dtype(p, X):
        return np.result_type(X.dtype, p["weight_hh_l0"].dtype)

    def _stacked_weights(self, p, dtype, half_rows=(), order=slice(None)) -> np.ndarray:
        """[W_hh | W_ih | b_ih + b_hh], so that W @ [h; x; 1] is the pre-activation, its rows
        taken in `order`. Rows in `half_rows` (sigmoid gates) are halved: tanh of them gives
        tanh(a/2)."""
        W_hh, W_ih = p["weight_hh_l0"], p["weight_ih_l0"]
        GH, Hn = W_hh.shape
        I = W_ih.shape[1]
        W = self._buf("W", (GH, Hn + I + 1), dtype)
        W[:, :Hn] = W_hh[order]
        W[:, Hn:Hn + I] = W_ih[order]
        np.add(p["bias_ih_l0"][order], p["bias_hh_l0"][order], out=W[:, Hn + I])
        for rows in half_rows:
            W[rows] *= 0.5
        return W

    def _stacked_inputs(self, X, Hn, dtype) -> np.ndarray:
        """Z (T+1, H+I+1, B): Z[t] = [h_{t-1}; x_t; 1], with h_0 = 0. The loop writes h_t into
        Z[t+1, :H], so the hidden states H are the view Z[1:, :H]."""
        T, B, I = X.shape
        Z = self._fresh("Z", (T + 1, Hn + I + 1, B), dtype)
        Z[0, :Hn] = 0.0
        Z[:T, Hn:Hn + I] = _swap(X)
        Z[:T, Hn + I] = 1.0
        Z[T, Hn:] = 0.0
        return Z

    def _recurrent_T(self, p, dtype) -> np.ndarray:
        """W_hhᵀ as a contiguous (H, G·H) array: the backward GEMM is faster on it than on a
        transposed view."""
        W_hh = p["weight_hh_l0"]
        WT = self._buf("WT", W_hh.shape[::-1], dtype)
        WT[...] = W_hh.T
        return WT

    def _weight_grads(self, X, Hs, rows, dtype) -> "_WeightGrads":
        return _WeightGrads(self, X, Hs, rows, dtype)

    @staticmethod
    def _cutoff(dtype) -> float:
        """Below this the backward recurrence treats ∂L/∂h_t (and ∂L/∂c_t) as exactly zero:
        2^24 times the smallest normal number, about 2e-31 in float32. A vanishing gradient
        would otherwise decay through the subnormal range, where every arithmetic operation
        is handled in microcode and a training step slows down tenfold or more."""
        return float(np.finfo(dtype).tiny) * 2.0 ** 24

    @staticmethod
    def _split_grads(G, Hn, I) -> dict:
        """The stacked gradient [dW_hh | dW_ih | db] into PyTorch's four arrays."""
        return {                             # copies: G may be a buffer the cell reuses
            "weight_ih_l0": G[:, Hn:Hn + I].copy(),
            "weight_hh_l0": G[:, :Hn].copy(),
            "bias_ih_l0": G[:, Hn + I].copy(),
            "bias_hh_l0": G[:, Hn + I].copy(),
        }


class _WeightGrads:
    """Σ_t δ_t·[h_{t-1}; x_t; 1]ᵀ, the stacked gradient [dW_hh | dW_ih | db]. The backward loop
    hands over δ a chunk of steps at a time (rows × B per step, time-major, as the loop wrote
    them); each chunk is copied into one (rows, T·B) matrix while it is still in cache, and one
    GEMM over all steps, faster here than one per chunk, makes the gradient at the end."""

    CHUNK_BYTES = 1 << 18                    # a chunk of δ: a quarter MiB, at home in L2

    def __init__(self, cell: Cell, X, Hs, rows: int, dtype):
        T, Hn, B = Hs.shape
        I = X.shape[2]
        K = -(-(Hn + I + 1) // 8) * 8        # zero columns up to a multiple of 8: a faster GEMM
        self.rows, self.B, self.T = rows, B, T
        self.steps = max(1, min(T, self.CHUNK_BYTES // (rows * B * np.dtype(dtype).itemsize)))
        # [h_{t-1}; x_t; 1; 0…] for every step and batch row: (T·B, K), the GEMM's right side.
        Zb = cell._buf("Zb", (T, B, K), dtype)
        Zb[0, :, :Hn] = 0.0
        Zb[1:, :, :Hn] = Hs[:-1].transpose(0, 2, 1)
        Zb[:, :, Hn:Hn + I] = X
        Zb[:, :, Hn + I] = 1.0
        Zb[:, :, Hn + I + 1:] = 0.0
        self.Zb = Zb.reshape(T * B, K)
        self.D = cell._buf("Dwg", (rows, T, B), dtype)
        self.first = T                       # steps first.. have been added
        self.G = cell._buf("Gwg", (rows, K), dtype)

    def chunks(self, T: int):
        """(t0, t1) ranges covering 0..T, the latest first."""
        return [(max(0, t1 - self.steps), t1) for t1 in range(T, 0, -self.steps)]

    def add(self, deltas: np.ndarray, t0: int, t1: int) -> None:
        """Add steps t0..t1-1, whose δ are deltas (t1 − t0, rows, B); the latest steps first."""
        if t1 > t0:
            np.copyto(self.D[:, t0:t1], deltas.transpose(1, 0, 2))
            self.first = t0

    def total(self) -> np.ndarray:
        c = self.first * self.B
        lhs = self.D.reshape(self.rows, self.T * self.B)[:, c:]
        return np.matmul(lhs, self.Zb[c:], out=self.G)


class TanhRNN(Cell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    name = "rnn"

    def _act(self, a, out):
        np.tanh(a, out)

    def _slope(self, A, Hs, out):
        """dh_t/da_t for all steps: tanh' = 1 − h²."""
        np.multiply(Hs, Hs, out)
        np.subtract(1.0, out, out)

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype)
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        A = self._fresh("A", (T, Hn, B), dtype)
        mm, act = np.matmul, self._act
        nt = -1 if nudge is None else nudge[0]
        for t, (a, z, h) in enumerate(zip(A, Z, Hs)):
            mm(W, z, a)
            act(a, h)
            if t == nt:
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs), A=_swap(A))

    def backprop(self, p, cache, last, direct=None):
        X, Hs, A = cache.X, _swap(cache.H), _swap(cache.A)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        WT = self._recurrent_T(p, dtype)
        dH = self._fresh("dH", (T, Hn, B), dtype)
        dA = self._fresh("dA", (T, Hn, B), dtype)
        dH[T - 1] = last
        wg = self._weight_grads(X, Hs, Hn, dtype)
        D = self._buf("D", (wg.steps, Hn, B), dtype)
        mm, mul, add = np.matmul, np.multiply, np.add
        cut = self._cutoff(dtype)
        norms = _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        for t0, t1 in wg.chunks(T):
            slope = D[:t1 - t0]
            self._slope(A[t0:t1], Hs[t0:t1], slope)
            for t in range(t1 - 1, t0 - 1, -1):
                norms.take(t, dH[t])
                mul(dH[t], slope[t - t0], dA[t])
                if t:
                    prev = dH[t - 1]
                    mm(WT, dA[t], prev)
                    if direct is not None:
                        add(prev, direct[t - 1], prev)
                    if not t & 3 and _negligible(prev, cut):
                        if direct is None:   # nothing reaches the earlier steps any more
                            dH[:t] = 0.0
                            dA[:t] = 0.0
                            stop = t
                            break
                        prev[...] = 0.0
            wg.add(dA[max(t0, stop):t1], max(t0, stop), t1)
            if stop:
                break
        grads = self._split_grads(wg.total(), Hn, X.shape[2])
        return Backward(grads=grads, dH=_swap(dH), dA=_swap(dA), dH_norm=norms.norms())


class ReLURNN(TanhRNN):
    """IRNN: h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), identity-initialised."""
    name = "irnn"

    def _act(self, a, out):
        np.maximum(a, 0.0, out=out)

    def _slope(self, A, Hs, out):
        # relu'(a) is 1 where h = relu(a) > 0 and 0 elsewhere: the sign of h.
        np.sign(Hs, out)


class LSTM(Cell):
    """PyTorch's LSTM, gates in the order i, f, g, o.

    Inside, step t's gates live in one slab S[t] = [i; f; o; g; c_{t-1}] (rows of H × B): the
    three sigmoid gates are contiguous, so they are activated together, and [i; f]·[g; c_{t-1}]
    is one call. The GEMM's weight rows are permuted to that order once per call; the public
    `Cache.A` (PyTorch's order) is built from the slab only when read."""
    name = "lstm"
    gates = 4

    @staticmethod
    def _order(Hn):
        """Weight rows in the slab's gate order i, f, o, g (PyTorch's is i, f, g, o)."""
        return np.r_[0:2 * Hn, 3 * Hn:4 * Hn, 2 * Hn:3 * Hn]

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._stacked_weights(p, dtype, (slice(0, 3 * Hn),), self._order(Hn))
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[1:, :Hn]
        S = self._fresh("S", (T + 1, 5, Hn, B), dtype)  # S[T] holds only c_T
        S[0, 4] = 0.0                                    # c_0
        TC = self._fresh("TC", (T, Hn, B), dtype)
        P = self._buf("P", (2, Hn, B), dtype)
        half = np.array(0.5, dtype)          # a 0-d array: cheaper per call than a Python float
        mm, mul, add, tanh = np.matmul, np.multiply, np.add, np.tanh
        nt = -1 if nudge is None else nudge[0]
        for t, (a, z, s3, if_, gc, o, c, tc, h) in enumerate(zip(
                S[:, :4].reshape(T + 1, 4 * Hn, B), Z, S[:, :3], S[:, :2], S[:, 3:5],
                S[:, 2], S[1:, 4], TC, Hs)):
            mm(W, z, a)
            tanh(a, a)
            mul(s3, half, s3)                # σ(a) = ½ + ½·tanh(a/2)
            add(s3, half, s3)
            mul(if_, gc, P)                  # i·g, f·c_{t-1}
            add(P[0], P[1], c)
            if t == nt and nudge[1] == "c":
                c += nudge[2].T
            tanh(c, tc)
            mul(o, tc, h)
            if t == nt and nudge[1] == "h":
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs), C=_swap(S[1:, 4]), TC=_swap(TC), extra={"S": S},
                     gates=lambda: self._public_gates(S[:T]))

    @staticmethod
    def _public_gates(S):
        """(T, B, 4H) in PyTorch's order from the slab's i, f, o, g."""
        T, _, Hn, B = S.shape
        return _swap(S[:, [0, 1, 3, 2]].reshape(T, 4 * Hn, B))

    @staticmethod
    def _slab(cache):
        """The forward slab, rebuilt from the public arrays for a cache made elsewhere."""
        T, B, Hn = cache.H.shape
        S = np.zeros((T + 1, 5, Hn, B), cache.H.dtype)
        S[:T, [0, 1, 3, 2]] = _swap(cache.A).reshape(T, 4, Hn, B)
        S[1:, 4] = _swap(cache.C)
        return S

    def backprop(self, p, cache, last, direct=None):
        X, Hs, TC = cache.X, _swap(cache.H), _swap(cache.TC)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        S = cache.extra.get("S")
        if S is None:
            S = self._slab(cache)
        order = self._order(Hn)
        Wr = self._buf("Wr", (4 * Hn, Hn), dtype)
        Wr[...] = p["weight_hh_l0"][order]
        WT = Wr.T
        # dH with a spare slot in front: step t's ∂L/∂h_t is dHs[t + 1], and step t writes
        # what it passes back to step t − 1 into dHs[t].
        dHs = self._fresh("dH", (T + 1, Hn, B), dtype)
        dC = self._fresh("dC", (T, Hn, B), dtype)
        dHs[T] = last
        wg = self._weight_grads(X, Hs, 4 * Hn, dtype)
        # A step's δ, in the slab's order [di; df; do; dg], lives in this ring until its chunk
        # goes into the weight gradients.
        ring = self._buf("ring", (wg.steps, 4, Hn, B), dtype)
        Y = self._buf("Y", (4, Hn, B), dtype)
        M = self._buf("M", (2, Hn, B), dtype)
        v, x = self._buf("v", (Hn, B), dtype), self._buf("x", (Hn, B), dtype)
        M[1] = 0.0                           # the carry dc_{t+1}·f_{t+1}; none after step T
        m, carry, y0, y2, y3 = M[0], M[1], Y[0], Y[2], Y[3]
        y01 = Y[:2]
        mm, mul, add, sub = np.matmul, np.multiply, np.add, np.subtract
        cut = self._cutoff(dtype)
        norm_h, norm_c = _SquaredNorms(T, dtype), _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        # Per step, with the gates i, f, o, g, tc = tanh c_t and c_{t-1}, every call a product
        # or difference of (H, B) blocks (or of several adjacent ones):
        #   v = dh·o, Y_o = v·tc,        dc_t = carry + v − Y_o·tc
        #   m, carry = dc_t·i, dc_t·f    Y_i, Y_f = m·g, carry·c_{t-1},   Y_g = m + Y_i
        #   δ = Y − Y·[i; f; o; g]       so di = dc·g·σ′(i), df = dc·c_{t-1}·σ′(f),
        #                                do = dh·tc·σ′(o),   dg = dc·i·(1 + g)(1 − g)
        # `_gate_grads` repeats these operations for all steps when dA is asked for.
        for t0, t1 in wg.chunks(T):
            n = t1 - t0
            back = slice(t1 - 1, t0 - 1 if t0 else None, -1)      # steps t1−1 … t0
            ahead = slice(t1, t0, -1)                             # the same steps, shifted
            for t, o, tc, dh, dc, i, f, gc, gates, da, dh_prev in zip(
                    range(t1 - 1, t0 - 1, -1), S[back, 2], TC[back], dHs[ahead], dC[back],
                    S[back, 0], S[back, 1], S[back, 3:5], S[back, :4], ring[n - 1::-1],
                    dHs[back]):
                norm_h.take(t, dh)
                mul(dh, o, v)
                mul(v, tc, y2)
                mul(y2, tc, x)
                sub(v, x, x)
                add(carry, x, dc)
                norm_c.take(t, dc)
                mul(dc, i, m)
                mul(dc, f, carry)
                mul(M, gc, y01)
                add(m, y0, y3)
                mul(Y, gates, da)
                sub(Y, da, da)
                if not t:
                    break
                mm(WT, da.reshape(4 * Hn, B), dh_prev)
                if direct is not None:
                    add(dh_prev, direct[t - 1], dh_prev)
                if not t & 3 and _negligible(dh_prev, cut) and _negligible(carry, cut):
                    if direct is None:       # nothing reaches the earlier steps any more
                        dHs[:t + 1] = 0.0
                        dC[:t] = 0.0
                        stop = t
                        break
                    dh_prev[...] = 0.0
                    carry[...] = 0.0
            first = max(t0, stop)
            wg.add(ring.reshape(wg.steps, 4 * Hn, B)[first - t0:n], first, t1)
            if stop:
                break
        G = wg.total()
        G = G.reshape(4, Hn, -1)[[0, 1, 3, 2]].reshape(G.shape)   # back to PyTorch's order
        grads = self._split_grads(G, Hn, X.shape[2])
        dH = dHs[1:]
        return Backward(grads=grads, dH=_swap(dH), dC=_swap(dC),
                        dH_norm=norm_h.norms(), dC_norm=norm_c.norms(),
                        gate_grads=lambda: (self._gate_grads(S, TC, dH, dC), None))

    @staticmethod
    def _gate_grads(S, TC, dH, dC):
        """dA (T, B, 4H) in PyTorch's order for all steps from the stored dH, dC (T, H, B) and
        the slab, with the same operations as the backward loop: the same numbers."""
        T, Hn, B = dH.shape
        mul, add, sub = np.multiply, np.add, np.subtract
        i, f, o, g, c_prev = (S[:T, k] for k in range(5))
        Y = np.empty((T, 4, Hn, B), dH.dtype)
        v = mul(dH, o)
        mul(v, TC, Y[:, 2])
        m = mul(dC, i)
        mul(m, g, Y[:, 0])
        mul(mul(dC, f), c_prev, Y[:, 1])
        add(m, Y[:, 0], Y[:, 3])
        dA = sub(Y, mul(Y, S[:T, :4]))
        return _swap(dA[:, [0, 1, 3, 2]].reshape(T, 4 * Hn, B))

    def gate_per_step(self, cache):
        S = cache.extra.get("S")
        if S is None:
            return _gate_mean(cache, 1)
        T = cache.H.shape[0]
        return _row_means(S[:T, 1].reshape(T, -1))            # the forget gate, (T, H·B)


class GRU(Cell):
    """PyTorch's GRU, gates r, z, n, with the reset applied after the recurrent product:
    n_t = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.

    Inside, the per-step GEMM has four row blocks [r; z; n; hn]: n gets only the input side
    (W_in x + b_in) and hn only the recurrent side (W_hn h + b_hn), since r multiplies hn alone.
    """
    name = "gru"
    gates = 3

    def _gru_weights(self, p, dtype) -> np.ndarray:
        W_hh, W_ih = p["weight_hh_l0"], p["weight_ih_l0"]
        b_ih, b_hh = p["bias_ih_l0"], p["bias_hh_l0"]
        Hn = W_hh.shape[1]
        I = W_ih.shape[1]
        rz, n = slice(0, 2 * Hn), slice(2 * Hn, 3 * Hn)
        W = self._buf("W", (4 * Hn, Hn + I + 1), dtype)
        W[rz, :Hn] = W_hh[rz]
        W[rz, Hn:Hn + I] = W_ih[rz]
        np.add(b_ih[rz], b_hh[rz], out=W[rz, Hn + I])
        W[rz] *= 0.5                         # r and z are sigmoids: see the module docstring
        W[n, :Hn] = 0.0
        W[n, Hn:Hn + I] = W_ih[n]
        W[n, Hn + I] = b_ih[n]
        W[3 * Hn:, :Hn] = W_hh[n]
        W[3 * Hn:, Hn:Hn + I] = 0.0
        W[3 * Hn:, Hn + I] = b_hh[n]
        return W

    def forward(self, p, X, nudge=None):
        T, B, _ = X.shape
        dtype = self._dtype(p, X)
        Hn = p["weight_hh_l0"].shape[1]
        W = self._gru_weights(p, dtype)
        Z = self._stacked_inputs(X, Hn, dtype)
        Hs = Z[:, :Hn]                       # Hs[t] is h_{t-1}; Hs[t + 1] is h_t
        A = self._fresh("A", (T, 4 * Hn, B), dtype)  # rows r, z, n, hn
        tmp = self._buf("tmp", (Hn, B), dtype)
        half = np.array(0.5, dtype)
        mm, mul, add, sub, tanh = np.matmul, np.multiply, np.add, np.subtract, np.tanh
        nt = -1 if nudge is None else nudge[0]
        for t, (a, zt, rz, r, z, n, hn, h_prev, h) in enumerate(zip(
                A, Z, A[:, :2 * Hn], A[:, :Hn], A[:, Hn:2 * Hn], A[:, 2 * Hn:3 * Hn],
                A[:, 3 * Hn:], Hs, Hs[1:])):
            mm(W, zt, a)
            tanh(rz, rz)
            mul(rz, half, rz)
            add(rz, half, rz)
            mul(r, hn, tmp)
            add(n, tmp, n)
            tanh(n, n)
            sub(h_prev, n, tmp)
            mul(tmp, z, tmp)
            add(tmp, n, h)
            if t == nt:
                h += nudge[2].T
        return Cache(X=X, H=_swap(Hs[1:]), A=_swap(A[:, :3 * Hn]), HN=_swap(A[:, 3 * Hn:]))

    def backprop(self, p, cache, last, direct=None):
        X, Hs, HN = cache.X, _swap(cache.H), _swap(cache.HN)
        T, Hn, B = Hs.shape
        dtype = Hs.dtype
        A = _swap(cache.A).reshape(T, 3, Hn, B)
        r, z = A[:, 0], A[:, 1]
        W_hh = p["weight_hh_l0"]
        # The recurrent GEMM over the rows [r; z; n; hn] of a step's δ: the n block (input
        # side only) meets zeros.
        WT = self._buf("WT", (Hn, 4 * Hn), dtype)
        WT[:, :2 * Hn] = W_hh[:2 * Hn].T
        WT[:, 2 * Hn:3 * Hn] = 0.0
        WT[:, 3 * Hn:] = W_hh[2 * Hn:].T
        dH = self._fresh("dH", (T, Hn, B), dtype)
        dA = self._fresh("dA", (T, 4, Hn, B), dtype)  # rows r, z, n, hn
        dH[T - 1] = last
        wg = self._weight_grads(X, Hs, 4 * Hn, dtype)
        P = self._buf("P", (wg.steps, 3, Hn, B), dtype)
        tmp = self._buf("tmp", (Hn, B), dtype)
        mm, mul, add = np.matmul, np.multiply, np.add
        cut = self._cutoff(dtype)
        norms = _SquaredNorms(T, dtype)
        stop = 0                             # steps before this one are known to be zero
        for t0, t1 in wg.chunks(T):
            p3 = P[:t1 - t0]
            self._factors(A[t0:t1], Hs, HN[t0:t1], t0, p3)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                dh, da = dH[t], dA[t]
                norms.take(t, dh)
                mul(dh, p3[k, 1:], da[1:3])  # dz, dn
                mul(da[2], p3[k, 0], da[0])  # dr = dn·hn·σ′(r)
                mul(da[2], r[t], da[3])      # dhn = dn·r
                if t:
                    prev = dH[t - 1]
                    mm(WT, da.reshape(4 * Hn, B), prev)
                    mul(dh, z[t], tmp)       # h_t = … + z ⊙ h_{t-1}
                    add(prev, tmp, prev)
                    if direct is not None:
                        add(prev, direct[t - 1], prev)
                    if not t & 3 and _negligible(prev, cut):
                        if direct is None:   # nothing reaches the earlier steps any more
                            dH[:t] = 0.0
                            dA[:t] = 0.0
                            stop = t
                            break
                        prev[...] = 0.0
            wg.add(dA.reshape(T, 4 * Hn, B)[max(t0, stop):t1], max(t0, stop), t1)
            if stop:
                break
        G = wg.total()
        I = X.shape[2]
        hidden_rows = np.r_[0:2 * Hn, 3 * Hn:4 * Hn]
        grads = {
            "weight_ih_l0": G[:3 * Hn, Hn:Hn + I].copy(),
            "weight_hh_l0": G[hidden_rows, :Hn],
            "bias_ih_l0": G[:3 * Hn, Hn + I].copy(),
            "bias_hh_l0": G[hidden_rows, Hn + I],
        }
        # dA (r, z, n rows) is a view; dAh (r, z, hn) needs a copy, made only if asked for.
        return Backward(grads=grads, dH=_swap(dH), dH_norm=norms.norms(), gate_grads=lambda: (
            _swap(dA.reshape(T, 4 * Hn, B)[:, :3 * Hn]),
            _swap(dA[:, [0, 1, 3]].reshape(T, 3 * Hn, B))))

    @staticmethod
    def _factors(a, Hs, hn, t0, P):
        """For the chunk of steps t0.. (a: its gates (n, 3, H, B), hn: its W_hn h + b_hn),
        every factor of the backward step that does not depend on the recurrence:
          dr = dn·P[0]           P[0] = hn·σ′(r)
          dz, dn = dh_t·P[1:]    P[1] = (h_{t-1} − n)·σ′(z),  P[2] = (1 − z)·(1 − n²)"""
        mul, sub = np.multiply, np.subtract
        n = a.shape[0]
        one = np.array(1.0, a.dtype)
        z, nn = a[:, 1], a[:, 2]
        sig = P[:, :2]                       # σ′ = σ − σ² for r and z together
        mul(a[:, :2], a[:, :2], sig)
        sub(a[:, :2], sig, sig)
        mul(P[:, 0], hn, P[:, 0])
        tmp = P[:, 2]
        if t0:
            sub(Hs[t0 - 1:t0 + n - 1], nn, tmp)
        else:                                # h_0 = 0
            sub(Hs[:n - 1], nn[1:], tmp[1:])
            np.negative(nn[0], tmp[0])
        mul(P[:, 1], tmp, P[:, 1])
        mul(nn, nn, P[:, 2])
        sub(one, P[:, 2], P[:, 2])
        tmp = np.subtract(one, z)
        mul(P[:, 2], tmp, P[:, 2])

    def gate_per_step(self, cache):
        return _gate_mean(cache, 1)


CELL_TYPES = {c.name: c for c in (TanhRNN, ReLURNN, LSTM, GRU)}


def make_cell(name: str) -> Cell:
    return CELL_TYPES[name]()
