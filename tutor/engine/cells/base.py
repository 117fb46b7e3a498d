"""What every cell shares: the Cache and Backward records, the per-step squared norms, the
buffer pool, the stacked weights and inputs, and the weight gradients over all steps at once.
How this makes the cells fast is told in the package docstring (`tutor.engine.cells`)."""
from __future__ import annotations

import sys

import numpy as np

from .memory import _POOL_ONLY, _alloc

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
        dX      (T, B, I) ∂L/∂x_t, through every path;  dX_norm  (T,) its norm per step
        param_norm  (T,) the norm of step t's own contribution to the recurrent layer's
                gradient (over the four PyTorch arrays together; see `_WeightGrads.step_norms`)
        dA      (T, B, G·H) gradients at the gate pre-activations
        dAh     GRU: the recurrent side's pre-activation gradients
    A training step never reads dA, so a cell may hand over a function that computes it (from
    dH, dC and the forward cache, with the very operations the backward loop used) on first
    access instead of storing it. dX, dX_norm and param_norm, likewise, are computed on first
    access (from the δ of every step, which the pass keeps), so a step that nobody asks them of
    costs nothing more."""

    def __init__(self, grads, dH, dC=None, dA=None, dAh=None, *, dH_norm, dC_norm=None,
                 gate_grads=None, step_metrics=None):
        self.grads, self.dH, self.dC = grads, dH, dC
        self.dH_norm, self.dC_norm = dH_norm, dC_norm
        self._dA, self._dAh, self._gate_grads = dA, dAh, gate_grads
        self._step_metrics, self._metrics = step_metrics, None

    def _metric(self, name: str):
        if self._metrics is None:
            self._metrics = {} if self._step_metrics is None else self._step_metrics()
            self._step_metrics = None
        return self._metrics.get(name)

    @property
    def dX(self) -> np.ndarray | None:
        return self._metric("dX")

    @property
    def dX_norm(self) -> np.ndarray | None:
        return self._metric("dX_norm")

    @property
    def param_norm(self) -> np.ndarray | None:
        return self._metric("param_norm")

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


def _swap(a: np.ndarray) -> np.ndarray:
    """(T, B, R) ↔ (T, R, B) as a view: the public layout and the internal one."""
    return a.transpose(0, 2, 1)


def _drop(drop: dict, s: int, *carried: np.ndarray) -> bool:
    """Truncation: zero, in the columns `drop[s]` names, what the backward pass carries into
    state s from the step after it (the seed at s is added afterwards). True if it did.

    With cuts at many states (a loss at every step) it also flushes entries below
    `Cell._cutoff` to zero at every step: some columns then always hold a fresh seed, so the
    whole-array test that stops a vanishing gradient never fires, and the other columns would
    decay into the subnormal range (in float32, each operation on them in microcode: measured
    a hundred times slower). A single cut needs no flush: the whole-array test works."""
    cols = drop.get(s)
    if len(drop) > 1:
        cut = Cell._cutoff(carried[0].dtype)
        for a in carried:
            np.copyto(a, 0.0, where=np.abs(a) < cut)
    if cols is None:
        return False
    for a in carried:
        a[:, cols] = 0.0
    return True


def _carry_back(t: int, carried: tuple, drop: dict | None, direct, cut: float) -> bool:
    """What every cell does once the gradient has been carried from step t into the state
    before it (`carried`: ∂L/∂h, and for the LSTM ∂L/∂c too): truncation's cut, then that
    state's own loss term (`direct`), then the test for a gradient too small to carry on
    (every fourth step, or just after a cut). True when the backward pass can stop there: no
    earlier step has a loss of its own. With per-step losses a negligible carry is zeroed
    instead, and the pass goes on."""
    dropped = drop is not None and _drop(drop, t - 1, *carried)
    if direct is not None:
        np.add(carried[0], direct[t - 1], carried[0])
    if (not t & 3 or dropped) and all(_negligible(x, cut) for x in carried):
        if direct is None:
            return True
        for x in carried:
            x[...] = 0.0
    return False


def _negligible(x: np.ndarray, cut: float) -> bool:
    """Every entry within ±cut (False when x holds NaN)."""
    return bool(x.max() < cut) and bool(x.min() > -cut)


def _diagonals(v: np.ndarray) -> np.ndarray:
    """(T, n) → (T, n, n): diag(v_t) at each step."""
    out = np.zeros(v.shape + v.shape[-1:], v.dtype)
    idx = np.arange(v.shape[-1])
    out[:, idx, idx] = v
    return out


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
    step_metrics = True                      # False: no dX, dX_norm, param_norm (bench/engine.py)

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
                 direct: np.ndarray | None = None, drop: dict | None = None) -> Backward:
        """`backward` with the loss's gradient in the cells' layout: last (H, B) at the last
        step, and direct (T, H, B) at every step, or None when only the last step has one.
        drop {s: columns}: what flows back into state s from step s+1 is dropped in those
        columns (truncated backpropagation, `tutor.engine.truncate`)."""
        raise NotImplementedError

    def gate_per_step(self, cache: Cache) -> np.ndarray | None:
        """Batch-mean of the gate that decides how much memory is kept, per step."""
        return None

    def state_jacobians(self, W_hh: np.ndarray, cache: Cache, sample: int) -> np.ndarray:
        """(T, S, S) in float64: ∂s_t/∂s_{t−1} at t = 1..T for one sequence of the batch (s_0 is
        the zero initial state), s = h (S = H), or the stacked (h, c) for the LSTM (S = 2H)."""
        raise NotImplementedError

    @staticmethod
    def _sequence(cache: Cache, sample: int, *names):
        """The arrays `names` of the cache for one sequence, (T, ·) in float64, and the
        previous hidden states h_0..h_{T-1}."""
        H = np.asarray(cache.H[:, sample], np.float64)
        h_prev = np.concatenate([np.zeros_like(H[:1]), H[:-1]])
        return [np.asarray(getattr(cache, n)[:, sample], np.float64) for n in names], h_prev

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

    def _contribution_weights(self, rows: int, Hn: int, I: int, dtype) -> np.ndarray:
        """`_contribution_layout` flattened, kept on the cell."""
        key = ("cw", rows, Hn, I, np.dtype(dtype))
        w = self._scratch.get(key)
        if w is None:
            w = self._scratch[key] = self._contribution_layout(rows, Hn, I).astype(dtype).ravel()
        return w

    @staticmethod
    def _contribution_layout(rows: int, Hn: int, I: int) -> np.ndarray:
        """(rows, H+I+1): how often each entry of δ_t·[h_{t-1}; x_t; 1]ᵀ appears among the four
        PyTorch gradients. The bias column is both bias_ih and bias_hh: twice."""
        w = np.ones((rows, Hn + I + 1))
        w[:, Hn + I] = 2.0
        return w

    def _step_metrics(self, wg: "_WeightGrads", W_x: np.ndarray) -> "_StepMetrics | None":
        """What makes the per-step metrics of a backward pass for `Backward` (dX, dX_norm,
        param_norm) when first asked. W_x (I, r): the input weights' transpose in the row order
        of δ's first r rows (the rows that meet x), copied now since the weights change after
        the step. None when the cell is told not to (`step_metrics`)."""
        if not self.step_metrics:
            return None
        return _StepMetrics(wg, np.array(W_x))

    @staticmethod
    def _split_grads(G, Hn, I) -> dict:
        """The stacked gradient [dW_hh | dW_ih | db] into PyTorch's four arrays."""
        return {                             # copies: G may be a buffer the cell reuses
            "weight_ih_l0": G[:, Hn:Hn + I].copy(),
            "weight_hh_l0": G[:, :Hn].copy(),
            "bias_ih_l0": G[:, Hn + I].copy(),
            "bias_hh_l0": G[:, Hn + I].copy(),
        }


class _StepMetrics:
    """The per-step metrics of one backward pass, from what its `_WeightGrads` keeps."""

    def __init__(self, wg: "_WeightGrads", W_x: np.ndarray):
        self.wg, self.W_x = wg, W_x

    def __call__(self) -> dict:
        dX = self.wg.input_grads(self.W_x)
        wide = dX.astype(np.float64)                      # I·T·B numbers: no range trouble
        return {"dX": dX.transpose(1, 2, 0),
                "dX_norm": np.sqrt(np.square(wide, out=wide).sum(axis=(0, 2))),
                "param_norm": self.wg.step_norms()}

    def parts(self):
        """For adding passes together (truncation): dX (I, T, B), every step's contribution
        P_t (T, rows, H+I+1) as float64 (the pass's own products, in its dtype), and the
        weights of its entries."""
        return self.wg.input_grads(self.W_x), self.wg.contributions(), self.wg.weights


class _WeightGrads:
    """Σ_t δ_t·[h_{t-1}; x_t; 1]ᵀ, the stacked gradient [dW_hh | dW_ih | db]. The backward loop
    hands over δ a chunk of steps at a time (rows × B per step, time-major, as the loop wrote
    them), and each chunk is used while it is still in cache.

    Without per-step metrics (`Cell.step_metrics` False), each chunk is copied into one
    (rows, T·B) matrix, and one GEMM over all steps, faster here than one per chunk, makes the
    gradient at the end. With them, each chunk's own terms P_t = δ_t·[h_{t-1}; x_t; 1]ᵀ are
    made at once (one batched GEMM: the products the single GEMM would do), summed into the
    gradient and kept, so that the per-step norms cost a pass over P when asked for, not a
    second round of products (measured: that round alone was a sixth of a training step)."""

    CHUNK_BYTES = 1 << 18                    # a chunk of δ: a quarter MiB, at home in L2

    def __init__(self, cell: Cell, X, Hs, rows: int, dtype):
        T, Hn, B = Hs.shape
        I = X.shape[2]
        self.per_step = cell.step_metrics
        # The single GEMM is faster with zero columns up to a multiple of 8.
        K = Hn + I + 1 if self.per_step else -(-(Hn + I + 1) // 8) * 8
        self.rows, self.B, self.T = rows, B, T
        self.steps = max(1, min(T, self.CHUNK_BYTES // (rows * B * np.dtype(dtype).itemsize)))
        Zb = cell._buf("Zb", (T, B, K), dtype)   # [h_{t-1}; x_t; 1; 0…] per step and row
        Zb[0, :, :Hn] = 0.0
        Zb[1:, :, :Hn] = Hs[:-1].transpose(0, 2, 1)
        Zb[:, :, Hn:Hn + I] = X
        Zb[:, :, Hn + I] = 1.0
        Zb[:, :, Hn + I + 1:] = 0.0
        self.Zb = Zb.reshape(T * B, K)
        self.Zt = Zb[:, :, :Hn + I + 1]      # (T, B, H+I+1): each step's [h_{t-1}; x_t; 1]ᵀ
        self.cell = cell
        # With per-step metrics, what they read later (D, P) comes from the result pool, not
        # scratch: a Backward that nobody has asked for its metrics yet keeps them, and the
        # next pass must not overwrite them.
        keep = cell._fresh if self.per_step else cell._buf
        self.D = keep("Dwg", (rows, T, B), dtype)
        self.first = T                       # steps first.. have been added
        self.G = cell._buf("Gwg", (rows, K), dtype)
        if self.per_step:
            self.G[...] = 0.0                # the chunks' sums are added in
            self.P = keep("Pwg", (T, rows, K), dtype)
            self.ones = np.ones(self.steps, dtype)
            self.weights = cell._contribution_weights(rows, Hn, I, dtype)

    def chunks(self, T: int):
        """(t0, t1) ranges covering 0..T, the latest first."""
        return [(max(0, t1 - self.steps), t1) for t1 in range(T, 0, -self.steps)]

    def add(self, deltas: np.ndarray, t0: int, t1: int) -> None:
        """Add steps t0..t1-1, whose δ are deltas (t1 − t0, rows, B); the latest steps first."""
        if t1 <= t0:
            return
        np.copyto(self.D[:, t0:t1], deltas.transpose(1, 0, 2))
        if self.per_step:
            n = t1 - t0
            P = self.P[t0:t1]
            np.matmul(deltas, self.Zt[t0:t1], out=P)
            G = self.G.reshape(-1)
            G += self.ones[:n] @ P.reshape(n, -1)
        self.first = t0

    def total(self) -> np.ndarray:
        if self.per_step:
            return self.G
        c = self.first * self.B
        lhs = self.D.reshape(self.rows, self.T * self.B)[:, c:]
        return np.matmul(lhs, self.Zb[c:], out=self.G)

    def input_grads(self, W_x: np.ndarray) -> np.ndarray:
        """∂L/∂x_t for every step, (I, T, B): W_xᵀ·δ_t over the first W_x.shape[1] rows of δ
        (those that meet the input), one GEMM over all steps (a GEMV per input when there are
        four or fewer); zero before `first`."""
        I, r = W_x.shape
        dX = np.zeros((I, self.T, self.B), self.D.dtype)
        c = self.first * self.B
        D = self.D.reshape(self.rows, self.T * self.B)[:r, c:]
        out = dX.reshape(I, -1)[:, c:]
        if I <= 4:                           # a GEMV per input: measured 2.4× a GEMM this thin
            for i in range(I):
                np.matmul(W_x[i], D, out=out[i])
        else:
            np.matmul(W_x, D, out=out)
        return dX

    def contributions(self) -> np.ndarray:
        """P_t = δ_t·[h_{t-1}; x_t; 1]ᵀ for every step, (T, rows, H+I+1) as float64: the kept
        products, made in the pass's dtype."""
        P = np.zeros((self.T, self.rows, self.Zt.shape[2]))
        P[self.first:] = self.P[self.first:]
        return P

    def step_norms(self) -> np.ndarray:
        """‖P_t‖ per step, P_t = δ_t·[h_{t-1}; x_t; 1]ᵀ: step t's own term of the stacked
        gradient (the terms sum to `total()`), its entries counted as the cell's
        `_contribution_layout` says: the norm over the four PyTorch arrays of the gradient with
        respect to a copy of the parameters used at step t only. A pass over the kept P: its
        squares, then a GEMV against the weights.

        In float32 a square below ~1e-38 is subnormal or lost and one above ~3e38 is inf: a
        vanishing or exploding gradient reaches both. Each step is squared in float32 first
        (squares that come out subnormal measured about twice as slow: cheaper than dividing
        every step by its size beforehand); a step whose sum falls outside (1e-28, 1e36),
        where what underflowed could matter or something overflowed, is summed again in
        float64, where no float32 number's square is out of range."""
        n0, T = self.first, self.T
        sq = np.zeros(T)
        if n0 >= T:
            return sq
        P = self.P.reshape(T, -1)[n0:]
        Q = self.cell._buf("Pstep", self.P.shape, P.dtype).reshape(T, -1)[n0:]
        out = sq[n0:]
        with np.errstate(over="ignore", invalid="ignore"):    # what overflows is redone
            out[:] = np.square(P, out=Q) @ self.weights
        if P.dtype != np.float64 and not (1e-28 < out.min() and out.max() < 1e36):
            redo = ~((out > 1e-28) & (out < 1e36))
            wide = P[redo].astype(np.float64)
            out[redo] = np.square(wide, out=wide) @ self.weights.astype(np.float64)
        return np.sqrt(sq)
