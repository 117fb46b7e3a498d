"""Exercise 2: a whole sequence forward, and backpropagation through time
with ‖∂L/∂h_t‖ at every step.

Run `rnn-tutor exercises check 2`. This file stands alone: the checker
loads only this file, so copy your step functions from 01_rnn_step.py
into it if you want to call them.

Shapes (T steps, time first as in PyTorch; B, I, H as in exercise 1):
    x   (T, B, I)     h0  (B, H)     the weights as in exercise 1
    h   (T, B, H)     h[t] is the state after step t: h_1 … h_T
                      (h0 is not in it)

Forward: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), t = 1 … T.

Backward: dh (T, B, H) is what the loss says about each h_t directly (a
loss at every step). But h_t also feeds h_{t+1}, so the total gradient
at step t is

    ∂L/∂h_t = dh[t] + (what step t+1's backward sent back as dh_prev)

Walk t from T down to 1, give each step's backward that total, and add
up the weight gradients over the steps. dh_norms[t] is ‖∂L/∂h_t‖ of that
total: the norm over the whole (B, H) array (np.linalg.norm of it). It
is the curve the lab plots: watch it vanish.
"""
import numpy as np


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Returns (h, cache): h (T, B, H), and whatever your backward needs."""
    raise NotImplementedError


def rnn_backward(dh, cache):
    """dh (T, B, H). Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh, dh_norms)
    with shapes (T, B, I), (B, H), (H, I), (H, H), (H,), (H,), (T,)."""
    raise NotImplementedError
