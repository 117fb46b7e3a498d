"""The textbook version of every cell: one step forward, one step backward, then a loop.

Read this file first. It is the same maths as `cells.py`, written to be read rather than to be
fast: one function per step, a cache holding what the backward step needs, the shapes in every
docstring, plain NumPy, nothing reused or fused. The tests compare the fast cells against it on
random inputs (outputs, states, every gradient, every per-step norm), and the exercises
(`rnn-tutor exercises`) check a learner's code against it.

Layout as in PyTorch (torch.nn.RNN, LSTM, GRU with one layer):
    x      (B, I)    one step of input, B sequences in the batch, I input features
    h      (B, H)    hidden state
    W_ih   (G·H, I)  input weights, G = 1 (rnn), 4 (lstm: i, f, g, o), 3 (gru: r, z, n)
    W_hh   (G·H, H)  recurrent weights
    b_ih, b_hh (G·H,) the two biases (PyTorch keeps both; for rnn and lstm only their sum matters)
Sequences are time-major: X is (T, B, I) and the states are (T, B, H), h_1 … h_T.

Gradients: `dh` passed to a step's backward is ∂L/∂h_t in total (what the loss says about h_t
directly plus what flows back from step t+1). A step returns the gradients of its inputs and
parameters; the sequence backward adds the parameter gradients over the steps.
"""
from __future__ import annotations

import numpy as np

PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# ---- tanh RNN -------------------------------------------------------------------------------

def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """h = tanh(x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh).

    x (B, I), h_prev (B, H), W_ih (H, I), W_hh (H, H), b_ih (H,), b_hh (H,).
    Returns h (B, H) and the cache for the backward step."""
    h = np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
    cache = (x, h_prev, W_ih, W_hh, h)
    return h, cache


def rnn_step_backward(dh, cache):
    """dh (B, H) = ∂L/∂h. Returns dx (B, I), dh_prev (B, H), dW_ih (H, I),
    dW_hh (H, H), db_ih (H,), db_hh (H,).

    With a the pre-activation, ∂h/∂a = 1 − h² (tanh′ written with its
    output), so da = dh·(1 − h²); then a = x W_ihᵀ + h_prev W_hhᵀ + b
    gives every other gradient."""
    x, h_prev, W_ih, W_hh, h = cache
    da = dh * (1.0 - h ** 2)         # (B, H)
    dx = da @ W_ih                   # (B, I)
    dh_prev = da @ W_hh              # (B, H)
    dW_ih = da.T @ x                 # (H, I): the same layout as W_ih
    dW_hh = da.T @ h_prev            # (H, H)
    db = da.sum(axis=0)              # (H,): the bias meets every row
    return dx, dh_prev, dW_ih, dW_hh, db, db.copy()


# ---- ReLU RNN (IRNN) ------------------------------------------------------------------------

def irnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """h = relu(x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh); shapes as in `rnn_step_forward`."""
    h = np.maximum(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh, 0.0)
    return h, (x, h_prev, W_ih, W_hh, h)


def irnn_step_backward(dh, cache):
    """As `rnn_step_backward`, with relu′(a) = 1 where h > 0, else 0."""
    x, h_prev, W_ih, W_hh, h = cache
    da = dh * (h > 0)
    db = da.sum(axis=0)
    return da @ W_ih, da @ W_hh, da.T @ x, da.T @ h_prev, db, db.copy()


# ---- LSTM -----------------------------------------------------------------------------------

def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """PyTorch's LSTM step, gates in the order i, f, g, o:
        a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh     (B, 4H)
        split into a_i, a_f, a_g, a_o
        i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
        c = f·c_prev + i·g;  h = o·tanh(c)

    x (B, I), h_prev and c_prev (B, H), W_ih (4H, I), W_hh (4H, H),
    b_ih and b_hh (4H,). Returns h (B, H), c (B, H) and the cache."""
    H = h_prev.shape[1]
    a = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    i = sigmoid(a[:, 0:H])
    f = sigmoid(a[:, H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    cache = (x, h_prev, c_prev, W_ih, W_hh, i, f, g, o, tc)
    return h, c, cache


def lstm_step_backward(dh, dc, cache):
    """dh, dc (B, H): ∂L/∂h and ∂L/∂c from above (dc holds what step t+1
    sent back). Returns dx (B, I), dh_prev (B, H), dc_prev (B, H),
    dW_ih (4H, I), dW_hh (4H, H), db_ih (4H,), db_hh (4H,).

    h = o·tanh(c) sends dh·o·(1 − tanh²c) into c as well, so the cell's
    total gradient is dc + dh·o·(1 − tanh²c); from c = f·c_prev + i·g
    each gate gets its factor, times the derivative of its activation
    (σ′ = σ(1 − σ), tanh′ = 1 − tanh²)."""
    x, h_prev, c_prev, W_ih, W_hh, i, f, g, o, tc = cache
    dc = dc + dh * o * (1.0 - tc ** 2)
    di = dc * g * i * (1.0 - i)
    df = dc * c_prev * f * (1.0 - f)
    dg = dc * i * (1.0 - g ** 2)
    do = dh * tc * o * (1.0 - o)
    da = np.concatenate([di, df, dg, do], axis=1)   # (B, 4H), i f g o
    dx = da @ W_ih
    dh_prev = da @ W_hh
    dc_prev = dc * f
    dW_ih = da.T @ x
    dW_hh = da.T @ h_prev
    db = da.sum(axis=0)
    return dx, dh_prev, dc_prev, dW_ih, dW_hh, db, db.copy()


# ---- GRU ------------------------------------------------------------------------------------

def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """PyTorch's GRU step, gates in the order r, z, n, the reset applied
    after the recurrent product (so the two biases of n differ):
        gi = x W_ihᵀ + b_ih;  gh = h_prev W_hhᵀ + b_hh     (B, 3H) each
        r = σ(gi_r + gh_r);  z = σ(gi_z + gh_z)
        n = tanh(gi_n + r·gh_n) = tanh(W_in x + b_in + r·(W_hn h + b_hn))
        h = (1 − z)·n + z·h_prev

    x (B, I), h_prev (B, H), W_ih (3H, I), W_hh (3H, H), b_ih and b_hh
    (3H,). Returns h (B, H) and the cache."""
    H = h_prev.shape[1]
    gi = x @ W_ih.T + b_ih
    gh = h_prev @ W_hh.T + b_hh
    r = sigmoid(gi[:, 0:H] + gh[:, 0:H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:3 * H]          # W_hn h_prev + b_hn, before the reset
    n = np.tanh(gi[:, 2 * H:3 * H] + r * hn)
    h = (1.0 - z) * n + z * h_prev
    cache = (x, h_prev, W_ih, W_hh, r, z, n, hn)
    return h, cache


def gru_step_backward(dh, cache):
    """dh (B, H) = ∂L/∂h. Returns dx (B, I), dh_prev (B, H), dW_ih (3H, I),
    dW_hh (3H, H), db_ih (3H,), db_hh (3H,).

    The input side and the recurrent side differ only in n's block: the
    input side's pre-activation gradient is dn·(1 − n²), the recurrent
    side's is that times r."""
    x, h_prev, W_ih, W_hh, r, z, n, hn = cache
    dn = dh * (1.0 - z) * (1.0 - n ** 2)     # at n's pre-activation
    dz = dh * (h_prev - n) * z * (1.0 - z)
    dr = dn * hn * r * (1.0 - r)
    dgi = np.concatenate([dr, dz, dn], axis=1)      # (B, 3H) at gi
    dgh = np.concatenate([dr, dz, dn * r], axis=1)  # (B, 3H) at gh
    dx = dgi @ W_ih
    dh_prev = dgh @ W_hh + dh * z
    dW_ih = dgi.T @ x
    dW_hh = dgh.T @ h_prev
    return dx, dh_prev, dW_ih, dW_hh, dgi.sum(axis=0), dgh.sum(axis=0)


# ---- whole sequences ------------------------------------------------------------------------

def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """x (T, B, I), h0 (B, H). Returns h (T, B, H) holding h_1 … h_T, and
    the caches."""
    h, caches, h_t = [], [], h0
    for x_t in x:
        h_t, cache = rnn_step_forward(x_t, h_t, W_ih, W_hh, b_ih, b_hh)
        h.append(h_t)
        caches.append(cache)
    return np.stack(h), caches


def rnn_backward(dh, cache):
    """Backpropagation through time. dh (T, B, H): the loss's own gradient
    at each h_t (not through the recurrence). Returns dx (T, B, I),
    dh0 (B, H), dW_ih, dW_hh, db_ih, db_hh (summed over the steps) and
    dh_norms (T,): ‖∂L/∂h_t‖ of the total gradient at each step, the norm
    over the whole (B, H) array.

    Going back in time, step t's total gradient is its own dh[t] plus what
    step t+1 sent back through W_hh; that sum is what the norm measures and
    what the step's backward receives."""
    T = dh.shape[0]
    dx = np.zeros((T,) + cache[0][0].shape)
    dW_ih, dW_hh = np.zeros_like(cache[0][2]), np.zeros_like(cache[0][3])
    db_ih, db_hh = np.zeros(dW_ih.shape[0]), np.zeros(dW_hh.shape[0])
    dh_norms = np.zeros(T)
    dh_next = np.zeros_like(dh[0])   # nothing flows back into step T
    for t in reversed(range(T)):
        dh_t = dh[t] + dh_next       # the total ∂L/∂h_t
        dh_norms[t] = np.linalg.norm(dh_t)
        dx[t], dh_next, gW_ih, gW_hh, gb_ih, gb_hh = rnn_step_backward(
            dh_t, cache[t])
        dW_ih += gW_ih
        dW_hh += gW_hh
        db_ih += gb_ih
        db_hh += gb_hh
    return dx, dh_next, dW_ih, dW_hh, db_ih, db_hh, dh_norms


def sequence_forward(step_forward, x, states, weights):
    """Run any step over x (T, B, I). states: the initial state(s), a tuple ((h0,) or
    (h0, c0) for the LSTM); weights: (W_ih, W_hh, b_ih, b_hh). Returns the states at every
    step as a tuple of (T, B, H) arrays (h, or h and c) and the per-step caches."""
    per_step, caches = [], []
    for x_t in x:
        *states, cache = step_forward(x_t, *states, *weights)
        per_step.append(states)
        caches.append(cache)
    return tuple(np.stack(s) for s in zip(*per_step)), caches


def sequence_backward(step_backward, dh, caches, dc=None):
    """Backpropagation through time for any step. dh (T, B, H) (and for the LSTM dc, or None
    for zeros): the loss's own gradients at each step. Returns dx (T, B, I), the gradients of
    the initial state(s) (dh0, or dh0 and dc0), dW_ih, dW_hh, db_ih, db_hh, and the per-step
    norms ‖∂L/∂h_t‖ (T,) (for the LSTM then also ‖∂L/∂c_t‖)."""
    T = dh.shape[0]
    lstm = len(caches[0]) == 10
    dx = [None] * T
    grads = None
    dh_norms, dc_norms = np.zeros(T), np.zeros(T)
    dh_next = np.zeros_like(dh[0])           # nothing flows back into the last step
    dc_next = np.zeros_like(dh[0])
    for t in reversed(range(T)):
        dh_t = dh[t] + dh_next
        dh_norms[t] = np.linalg.norm(dh_t)
        if lstm:
            dc_t = dc_next + (0.0 if dc is None else dc[t])
            out = step_backward(dh_t, dc_t, caches[t])
            dx[t], dh_next, dc_next, step_grads = out[0], out[1], out[2], out[3:]
            # ‖∂L/∂c_t‖ of the cell's total gradient, including what h_t sends into c_t
            o, tc = caches[t][8], caches[t][9]
            dc_norms[t] = np.linalg.norm(dc_t + dh_t * o * (1.0 - tc ** 2))
        else:
            dx[t], dh_next, *step_grads = step_backward(dh_t, caches[t])
        grads = step_grads if grads is None else [g + s for g, s in zip(grads, step_grads)]
    initial = (dh_next, dc_next) if lstm else (dh_next,)
    norms = (dh_norms, dc_norms) if lstm else (dh_norms,)
    return (np.stack(dx), *initial, *grads, *norms)


STEPS = {
    "rnn": (rnn_step_forward, rnn_step_backward),
    "irnn": (irnn_step_forward, irnn_step_backward),
    "lstm": (lstm_step_forward, lstm_step_backward),
    "gru": (gru_step_forward, gru_step_backward),
}


def cell_forward_backward(cell, params, X, dH_out):
    """The whole pass for a cell by name with PyTorch-named params, h_0 = c_0 = 0: the same
    call shape as the fast cells' forward + backward, for comparing the two. X (T, B, I),
    dH_out (T, B, H). Returns a dict: H (and C), grads by PyTorch's names, dH_norm (and
    dC_norm)."""
    step_forward, step_backward = STEPS[cell]
    weights = tuple(params[k] for k in PARAM_NAMES)
    B, H = X.shape[1], params["weight_hh_l0"].shape[1]
    zeros = np.zeros((B, H), np.result_type(X, weights[1]))
    states = (zeros, zeros) if cell == "lstm" else (zeros,)
    outs, caches = sequence_forward(step_forward, X, states, weights)
    back = sequence_backward(step_backward, dH_out, caches)
    n_init = len(states)
    result = {"H": outs[0], "dX": back[0],
              "grads": dict(zip(PARAM_NAMES, back[1 + n_init:5 + n_init])),
              "dH_norm": back[5 + n_init]}
    if cell == "lstm":
        result.update(C=outs[1], dC_norm=back[-1])
    return result


# ---- clipping -------------------------------------------------------------------------------

def global_norm(grads):
    """‖g‖ over every array in the dict, as if they were one long vector."""
    return float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))


def clip_by_norm(grads, max_norm):
    """grads: dict of name → array. When the global norm exceeds max_norm,
    scale every array by max_norm / norm (the direction is kept); otherwise
    leave them as they are. Returns new arrays (the input is not changed)
    and the norm before clipping."""
    norm = global_norm(grads)
    scale = max_norm / norm if norm > max_norm else 1.0
    return {name: g * scale for name, g in grads.items()}, norm


def clip_by_value(grads, limit):
    """Cut every entry of every array to [−limit, limit] on its own (the
    direction may turn). Returns new arrays."""
    return {name: np.clip(g, -limit, limit) for name, g in grads.items()}
