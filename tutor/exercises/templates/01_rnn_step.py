"""Exercise 1: one step of a tanh RNN, forward and backward.

Write the two functions below with NumPy, then run

    rnn-tutor exercises check 1

or keep the exercises screen open: it checks again every time you save.
The checker calls your functions on random float64 inputs, compares every
output and gradient with the tutor's engine, and compares your gradients
with finite differences of your own forward.

Shapes, in PyTorch's layout (B sequences, I inputs, H hidden units):
    x       (B, I)      h_prev  (B, H)
    W_ih    (H, I)      W_hh    (H, H)      b_ih (H,)   b_hh (H,)

Forward:
    a = x W_ihᵀ + b_ih + h_prev W_hhᵀ + b_hh        (B, H)
    h = tanh(a)

Backward, given dh = ∂L/∂h (B, H):
    tanh′(a) = 1 − tanh(a)² = 1 − h²
    Every gradient has the shape of what it is the gradient of:
    dW_ih is (H, I) like W_ih.
"""
import numpy as np


def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """Returns (h, cache): h (B, H), and cache, anything your backward
    step needs (a tuple of the arrays it will use, say)."""
    raise NotImplementedError


def rnn_step_backward(dh, cache):
    """dh (B, H). Returns (dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh) with
    shapes (B, I), (B, H), (H, I), (H, H), (H,), (H,)."""
    raise NotImplementedError
