"""Numba kernels of the Monte Carlo engine: plain arrays, scalars and RNG state only.

Lattice convention: an L x L periodic square lattice stored flat (row-major, site
``i = y * L + x``) as int8 spins of +-1; ``nbr`` is the (L*L, 4) int32 table of the right,
left, down and up neighbours. H = -J sum_<ij> s_i s_j over nearest-neighbour pairs.

One *update* (a "transition") means, per algorithm:

- ``wolff``: one Wolff single cluster grown from a random seed site with bond
  probability p = 1 - exp(-2J/T) and flipped (Wolff, PRL 62, 361 (1989));
- ``sw``: one Swendsen-Wang sweep: every bond drawn with probability p, every cluster
  flipped with probability 1/2 (Swendsen & Wang, PRL 58, 86 (1987));
- ``metropolis``: one checkerboard Metropolis sweep: all even sites, then all odd
  sites, each flipped with probability min(1, exp(-dE/T)).

Every kernel returns the number of spins it flipped, the work unit of the package.
Random numbers come from xoshiro256++ (Blackman & Vigna 2018), one (4,) uint64 state
per chain, so every chain's stream is independent of how chains map onto threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

WOLFF, SW, METROPOLIS = 0, 1, 2
ALGORITHMS = {"wolff": WOLFF, "sw": SW, "metropolis": METROPOLIS}

# Saving schedules (see isingscale.mc.simulate): a fixed number of updates between saves,
# or the biased "threshold" stopping time on the chain's own flipped-spin count.
FIXED_UPDATES, THRESHOLD = 0, 1


# --------------------------------------------------------------------------------------
# xoshiro256++ (https://prng.di.unimi.it/xoshiro256plusplus.c)


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << uint64(k)) | (x >> uint64(64 - k))


@njit(cache=True, inline="always")
def _xoshiro(s0, s1, s2, s3):
    """xoshiro256++ on a state held in registers: returns (64 bits, new state...)."""
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@njit(cache=True, inline="always")
def next_u64(state, c):
    """Advance chain ``c``'s xoshiro256++ state (row ``c`` of (chains, 4)); return 64 bits."""
    result, s0, s1, s2, s3 = _xoshiro(state[c, 0], state[c, 1], state[c, 2], state[c, 3])
    state[c, 0], state[c, 1], state[c, 2], state[c, 3] = s0, s1, s2, s3
    return result


@njit(cache=True, inline="always")
def next_u53(state, c):
    """A uniform integer in [0, 2^53): compare with ``int(p * 2**53)`` for probability p."""
    return next_u64(state, c) >> uint64(11)


@njit(cache=True, inline="always")
def next_below(state, c, n):
    """A uniform integer in [0, n) (n << 2^53, so the modulo bias is below 1e-11)."""
    return np.int64(next_u53(state, c) % uint64(n))


# --------------------------------------------------------------------------------------
# Lattice helpers


def neighbour_table(L: int) -> np.ndarray:
    """(L*L, 4) int32 table of right, left, down, up neighbours on the periodic lattice."""
    y, x = np.divmod(np.arange(L * L), L)
    return np.stack(
        [y * L + (x + 1) % L, y * L + (x - 1) % L, ((y + 1) % L) * L + x, ((y - 1) % L) * L + x],
        axis=1,
    ).astype(np.int32)


@njit(cache=True)
def bond_sum(spins, nbr):
    """sum_<ij> s_i s_j over the 2N bonds (each counted once: right and down)."""
    total = 0
    for i in range(spins.size):
        total += spins[i] * (spins[nbr[i, 0]] + spins[nbr[i, 2]])
    return total


@njit(cache=True)
def spin_sum(spins):
    total = 0
    for i in range(spins.size):
        total += spins[i]
    return total


# --------------------------------------------------------------------------------------
# Updates on one chain: spins (N,) int8, rng (chains, 4) uint64 with row c.


@njit(cache=True)
def wolff_update(spins, nbr, rng, c, p53, stack):
    """Grow one Wolff cluster from a random site, flipping as it grows; return its size.

    Branch-free growth: a bond test draws one random number per neighbour (aligned or
    not), so the unpredictable accept/reject never becomes a branch; sites are flipped
    on joining, so a site joins at most once. The RNG state stays in registers.
    """
    n = spins.size
    s0, s1, s2, s3 = rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3]
    r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
    seed = np.int64((r >> uint64(11)) % uint64(n))
    s_old = spins[seed]
    flip = np.int8(-2 * s_old)  # adding flip turns s_old into -s_old
    spins[seed] = -s_old
    stack[0] = seed
    top = 1
    size = 1
    while top > 0:
        top -= 1
        i = stack[top]
        for k in range(4):
            j = nbr[i, k]
            r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            join = np.int8((spins[j] == s_old) & ((r >> uint64(11)) < p53))
            spins[j] += flip * join
            stack[top] = j
            top += join
            size += join
    rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3] = s0, s1, s2, s3
    return size


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def sw_update(spins, nbr, rng, c, p53, parent, flip):
    """One Swendsen-Wang sweep (union-find clusters, coin per cluster); return spins flipped."""
    n = spins.size
    for i in range(n):
        parent[i] = i
    for i in range(n):
        for k in (0, 2):  # right and down: every bond once
            j = nbr[i, k]
            if spins[i] == spins[j] and next_u53(rng, c) < p53:
                ri, rj = _find(parent, i), _find(parent, j)
                if ri != rj:
                    if ri < rj:
                        parent[rj] = ri
                    else:
                        parent[ri] = rj
    # Coins are drawn in the order roots are first met, so the stream is deterministic.
    for i in range(n):
        flip[i] = -1
    flipped = 0
    for i in range(n):
        r = _find(parent, i)
        if flip[r] < 0:
            flip[r] = np.int8(next_u64(rng, c) >> uint64(63))
        if flip[r] == 1:
            spins[i] = -spins[i]
            flipped += 1
    return flipped


@njit(cache=True)
def metropolis_update(spins, nbr, rng, c, accept53, L):
    """One checkerboard Metropolis sweep; ``accept53[h // 2]`` = 2^53 exp(-2h/T), h = s_i sum s_j."""
    flipped = 0
    for parity in range(2):
        for y in range(L):
            for x in range((y + parity) % 2, L, 2):
                i = y * L + x
                h = spins[i] * (
                    spins[nbr[i, 0]] + spins[nbr[i, 1]] + spins[nbr[i, 2]] + spins[nbr[i, 3]]
                )
                if h <= 0 or next_u53(rng, c) < accept53[h // 2]:
                    spins[i] = -spins[i]
                    flipped += 1
    return flipped


@njit(cache=True)
def update(algorithm, spins, nbr, rng, c, L, p53, accept53, work_i, work_b):
    """One update of chain ``c`` with the chosen algorithm; return the spins flipped."""
    if algorithm == WOLFF:
        return wolff_update(spins, nbr, rng, c, p53, work_i)
    if algorithm == SW:
        return sw_update(spins, nbr, rng, c, p53, work_i, work_b)
    return metropolis_update(spins, nbr, rng, c, accept53, L)


# --------------------------------------------------------------------------------------
# Parallel drivers: prange over chains, each chain touching only its own rows.


@njit(cache=True, parallel=True)
def thermalize_chains(
    algorithm, spins, nbr, rng, L, p53, accept53, n_updates, flipped, updates_counted
):
    """Run ``n_updates`` updates on every chain; count flips over the second half only.

    ``flipped[c]`` and ``updates_counted[c]`` receive chain c's flipped spins and number
    of updates in the second half of thermalization (the calibration window).
    """
    chains, n = spins.shape
    for c in prange(chains):
        work_i = np.empty(n + 4, np.int32)
        work_b = np.empty(n, np.int8)
        total = 0
        counted = 0
        for u in range(n_updates):
            f = update(algorithm, spins[c], nbr, rng, c, L, p53, accept53, work_i, work_b)
            if 2 * u >= n_updates:
                total += f
                counted += 1
        flipped[c] = total
        updates_counted[c] = counted


@njit(cache=True, parallel=True)
def produce_samples(
    algorithm,
    schedule,
    spins,
    nbr,
    rng,
    L,
    p53,
    accept53,
    interval,
    threshold,
    todo,
    out_spins,
    out_bonds,
    out_sum,
    flipped,
    updates,
):
    """Produce ``todo[c]`` saved samples from every chain c.

    Between saves: ``interval`` updates (schedule FIXED_UPDATES) or as many updates as it
    takes for the chain's own flipped-spin count since its last save to reach
    ``threshold`` (schedule THRESHOLD, biased: a stopping time). Sample k of chain c goes
    to ``out_spins[c, k]`` with its bond sum and spin sum; ``flipped[c]`` and
    ``updates[c]`` accumulate the work done.
    """
    chains, n = spins.shape
    for c in prange(chains):
        work_i = np.empty(n + 4, np.int32)
        work_b = np.empty(n, np.int8)
        s = spins[c]
        for k in range(todo[c]):
            since = 0
            u = 0
            while (schedule == FIXED_UPDATES and u < interval) or (
                schedule == THRESHOLD and since < threshold
            ):
                since += update(algorithm, s, nbr, rng, c, L, p53, accept53, work_i, work_b)
                u += 1
            flipped[c] += since
            updates[c] += u
            out_spins[c, k] = s
            out_bonds[c, k] = bond_sum(s, nbr)
            out_sum[c, k] = spin_sum(s)
