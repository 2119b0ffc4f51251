"""Input checks and lattice alignment shared by every baseline.

Calling convention (shared with the SKILD sampler)::

    fn(coarse, kind, N, *, generator) -> (B, N, N) int8 ±1 spins

``coarse`` is (B, n, n): kind "fourier" a float field from
:func:`isingscale.skild.coarsen.fourier_truncate` (fine ±1 amplitude scale), kind "block"
±1 majority-rule block spins (:func:`isingscale.skild.coarsen.block_spins`).

Alignment, in fine-lattice site units with factor f = N / n: Fourier truncation samples the
low-passed fine lattice at the coarse grid points, so coarse site i sits on fine site i f;
a block spin stands for the fine block [i f, (i + 1) f), whose centre is i f + (f - 1) / 2.
A global shift changes no translation-averaged statistic, but per-site comparisons with
the fine lattice need the right one.
"""

from __future__ import annotations

import numpy as np

from ..errors import IsingScaleError
from ..io import check_spins

KINDS = ("fourier", "block")


def check_coarse(coarse, kind: str, N: int) -> np.ndarray:
    """Validated coarse input as float64 (B, n, n); raises IsingScaleError with one line."""
    if kind not in KINDS:
        raise IsingScaleError(f"unknown coarse kind {kind!r}; expected 'fourier' or 'block'")
    x = np.asarray(coarse)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise IsingScaleError(
            f"coarse lattices must have shape (B, n, n) with square lattices, got {x.shape}"
        )
    n = x.shape[-1]
    if int(N) != N or N <= n:
        raise IsingScaleError(
            f"output size N must be an integer larger than the input size n={n}, got {N}"
        )
    if kind == "block":
        check_spins(x, what="block spins")
    elif not np.all(np.isfinite(x)):
        raise IsingScaleError("the Fourier-coarsened field holds NaN or infinite values")
    return x.astype(np.float64)


def integer_factor(n: int, N: int, method: str) -> int:
    """N / n for methods that need an integer factor."""
    if N % n:
        raise IsingScaleError(f"{method} needs an integer factor: N={N} is not a multiple of n={n}")
    return N // n


def site_offset(kind: str, f: float) -> float:
    """Fine-lattice position of coarse site 0 (see the module docstring)."""
    return 0.0 if kind == "fourier" else (f - 1) / 2
