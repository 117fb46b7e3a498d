"""Exercise 5: one GRU step, forward and backward, as PyTorch computes it.

Run `rnn-tutor exercises check 5`.

Shapes (gates stacked in PyTorch's order r, z, n):
    x (B, I)        h_prev (B, H)
    W_ih (3H, I)    W_hh (3H, H)    b_ih, b_hh (3H,)

Forward. PyTorch applies the reset gate r AFTER the recurrent product,
so keep the input side and the recurrent side apart for n:
    gi = x W_ihᵀ + b_ih        gh = h_prev W_hhᵀ + b_hh     (B, 3H) each
    r = σ(gi_r + gh_r)         z = σ(gi_z + gh_z)     (blocks 0:H, H:2H)
    n = tanh(gi_n + r·gh_n)
      = tanh(W_in x + b_in + r·(W_hn h_prev + b_hn))
    h = (1 − z)·n + z·h_prev

Backward, given dh = ∂L/∂h (B, H). h_prev reaches h along two roads:
through the gates, and directly through z·h_prev. db_ih and db_hh
differ here (in n's block).
"""
import numpy as np


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """Returns (h, cache): h (B, H)."""
    raise NotImplementedError


def gru_step_backward(dh, cache):
    """dh (B, H). Returns (dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh) with
    shapes (B, I), (B, H), (3H, I), (3H, H), (3H,), (3H,)."""
    raise NotImplementedError
