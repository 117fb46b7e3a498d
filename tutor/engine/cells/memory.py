"""Memory for the cells' arrays: pages the kernel may back with 2 MiB huge pages, and the
reference count that says a pooled result array is free again."""
from __future__ import annotations

import mmap
import sys

import numpy as np


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


def _pool_only_refcount() -> int:
    """What sys.getrefcount says, in `Cell._fresh`'s loop, about an array that only the pool
    holds. Measured rather than assumed: interpreters differ in which temporary references
    they count."""
    pool = [np.empty(0)]
    for a in pool:
        return sys.getrefcount(a)


_POOL_ONLY = _pool_only_refcount()
