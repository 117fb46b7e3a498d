"""Test-wide setup, run before any test module imports NumPy."""
import os

# The engine's matrices are small: a second BLAS thread only fights the other core (inside pytest
# it made training 10-25x slower on a 2-core machine). The app's worker process does the same.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
