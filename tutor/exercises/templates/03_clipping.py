"""Exercise 3: gradient clipping, by the global norm and by value.

Run `rnn-tutor exercises check 3`. grads is a dict of name → array, for
example {"weight_ih_l0": (H, I) array, "weight_hh_l0": (H, H) array,
"bias_ih_l0": (H,) array, "bias_hh_l0": (H,) array}. Return new arrays
under the same names (changing the given ones in place is fine too).

By norm: the global norm ‖g‖ = sqrt(Σ over every array of Σ g²) is the
length of all the gradients laid end to end. When ‖g‖ > max_norm,
multiply every array by max_norm / ‖g‖: the step keeps its direction and
gets length max_norm. Otherwise leave them as they are.

By value: cut every entry to [−limit, limit] on its own (np.clip).
Cheaper, but the clipped step can point in another direction.
"""
import numpy as np


def clip_by_norm(grads, max_norm):
    """Returns (clipped, norm): a dict of the clipped arrays, and ‖g‖
    before clipping."""
    raise NotImplementedError


def clip_by_value(grads, limit):
    """Returns a dict of the clipped arrays."""
    raise NotImplementedError
