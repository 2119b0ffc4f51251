"""Per-chain random streams: xoshiro256++ states seeded from numpy's SeedSequence.

Chain c's state comes from ``SeedSequence(seed).spawn(chains)[c]``; spawned children are
statistically independent and child c does not depend on how many siblings there are,
so chain c's stream is the same for any chain count and any thread count.
"""

from __future__ import annotations

import numpy as np


def chain_states(seed: int, chains: int) -> np.ndarray:
    """(chains, 4) uint64 xoshiro256++ states, one independent stream per chain."""
    children = np.random.SeedSequence(seed).spawn(chains)
    states = np.stack([child.generate_state(4, np.uint64) for child in children])
    # xoshiro's only forbidden state is all zeros (probability 2^-256, but be exact).
    states[~states.any(axis=1), 0] = 1
    return states


def random_starts(seed: int, chains: int, L: int) -> np.ndarray:
    """(chains, L*L) int8 random +-1 starting configurations, one per chain."""
    children = np.random.SeedSequence([seed, 0x15_1E6]).spawn(chains)
    return np.stack(
        [
            (2 * np.random.default_rng(child).integers(0, 2, L * L) - 1).astype(np.int8)
            for child in children
        ]
    )
