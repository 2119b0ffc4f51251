"""Majority-rule block spins on ±1 lattices (numpy only; for coarse-graining and heat-bath sweeps).

Convention: the block spin of a b x b block is the sign of its sum; a tie (even b) takes
the block's top-left spin, a fixed rule that is reproducible and odd under the global flip.
"""

from __future__ import annotations

import numpy as np

from .errors import IsingScaleError


def majority_rule(total: np.ndarray, top_left: np.ndarray) -> np.ndarray:
    """Block spin from a block's spin sum and its top-left spin (the tie-break)."""
    return np.where(total != 0, np.sign(total), top_left)


def block_totals(spins: np.ndarray, b) -> tuple[np.ndarray, np.ndarray]:
    """Spin sums and top-left spins of the b x b blocks of (B, L, L) spins: (B, L/b, L/b) int32."""
    spins = np.asarray(spins)
    B, L, _ = spins.shape
    if int(b) != b or b < 2:
        raise IsingScaleError(f"block spins need an integer factor >= 2, got {b}")
    b = int(b)
    if L % b:
        raise IsingScaleError(f"block factor {b} does not divide L={L}")
    n = L // b
    return spins.reshape(B, n, b, n, b).astype(np.int32).sum(axis=(2, 4)), spins[
        :, ::b, ::b
    ].astype(np.int32)


def block_spins(spins: np.ndarray, b: int) -> np.ndarray:
    """Majority rule on b x b blocks of (B, L, L) ±1 spins -> (B, L/b, L/b) int8."""
    return majority_rule(*block_totals(spins, b)).astype(np.int8)
