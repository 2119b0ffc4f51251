"""Test-wide settings: small thread counts (CI has 2 shared cores), fixed seeds."""

import os

# Two threads per process thrash on a shared 2-core machine; numba reads this at import.
os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
