"""Exercise 4: one LSTM step, forward and backward, as PyTorch computes it.

Run `rnn-tutor exercises check 4`.

Shapes (B, I, H as before; the four gates are stacked in PyTorch's
order i, f, g, o):
    x (B, I)        h_prev, c_prev (B, H)
    W_ih (4H, I)    W_hh (4H, H)    b_ih, b_hh (4H,)

Forward:
    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh              (B, 4H)
    a_i, a_f, a_g, a_o = a[:, 0:H], a[:, H:2H], a[:, 2H:3H], a[:, 3H:4H]
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c = f·c_prev + i·g
    h = o·tanh(c)
where σ(a) = 1 / (1 + e^−a).

Backward, given dh = ∂L/∂h and dc = ∂L/∂c (B, H) from above. dc is what
the next step sent back into c; h = o·tanh(c) adds its own share to it.
    σ′(a) = σ(a)(1 − σ(a))     tanh′(a) = 1 − tanh(a)²
"""
import numpy as np


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """Returns (h, c, cache): h and c (B, H)."""
    raise NotImplementedError


def lstm_step_backward(dh, dc, cache):
    """dh, dc (B, H). Returns (dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih,
    db_hh) with shapes (B, I), (B, H), (B, H), (4H, I), (4H, H), (4H,),
    (4H,)."""
    raise NotImplementedError
