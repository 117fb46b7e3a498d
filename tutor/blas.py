"""One BLAS thread per process. The engine's matrices are small, and on a 2-core machine a second
BLAS thread fights the UI (or the other run) for the core: a T = 200 rnn step took 17.7 ms instead
of 2.3 ms. These variables only take effect if set before NumPy is first imported."""
from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
ONE_THREAD = {name: "1" for name in THREAD_VARS}


def prefer_one_thread() -> None:
    """Ask for one thread unless the user chose otherwise (call before importing NumPy)."""
    for name in THREAD_VARS:
        os.environ.setdefault(name, "1")
