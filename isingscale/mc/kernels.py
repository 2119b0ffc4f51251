"""Numba kernels of the Monte Carlo engine: plain arrays, scalars and RNG state only.

Lattice convention: an L x L periodic square lattice stored flat (row-major, site
``i = y * L + x``) as int8 spins of +-1. Neighbours (right, left, down, up) are computed
from the coordinates, never looked up in a table: a table costs 16 bytes per site and,
beyond L ~ 512, turns every neighbour visit into a cache miss. Cluster stacks hold
packed coordinates ``(y << 16) | x`` (so L <= 32768). H = -J sum_<ij> s_i s_j over
nearest-neighbour pairs.

One *update* (a "transition") means, per algorithm:

- ``wolff``: one Wolff single cluster grown from a random seed site with bond
  probability p = 1 - exp(-2J/T) and flipped (Wolff, PRL 62, 361 (1989));
- ``sw``: one Swendsen-Wang sweep: every cluster of the bond configuration (bonds
  between aligned neighbours, each with probability p) flipped with probability 1/2
  (Swendsen & Wang, PRL 58, 86 (1987)); clusters are grown site by site, each bond
  drawn when it is first needed, which samples the same bond configuration;
- ``metropolis``: one checkerboard Metropolis sweep: all even sites, then all odd
  sites, each flipped with probability min(1, exp(-dE/T)).

Every kernel returns the number of spins it flipped, the work unit of the package.
Random numbers come from xoshiro256++ (Blackman & Vigna 2018), one (4,) uint64 state
per chain, so every chain's stream is independent of how chains map onto threads.

Bond tests are exact Bernoulli(p53 / 2^53) trials, four per 64-bit draw: each 16-bit
slice u is compared with the top 16 bits of p53, and only when they are equal
(probability 2^-16) are 37 fresh bits compared with the remaining bits of p53.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

WOLFF, SW, METROPOLIS = 0, 1, 2
ALGORITHMS = {"wolff": WOLFF, "sw": SW, "metropolis": METROPOLIS}

# Saving schedules (see isingscale.mc.simulate): a fixed number of updates between saves,
# or the biased "threshold" stopping time on the chain's own flipped-spin count.
FIXED_UPDATES, THRESHOLD = 0, 1

MAX_L = 32768  # packed (y << 16) | x coordinates in int32 cluster stacks
RECORD_FIELDS = ("flipped", "updates", "bond_sum", "spin_sum")  # columns of a record


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


def split_probability(p53: int) -> tuple[np.uint64, np.uint64]:
    """(top 16 bits, low 37 bits) of ``p53`` for the four-trials-per-draw bond tests."""
    return np.uint64(int(p53) >> 37), np.uint64(int(p53) & ((1 << 37) - 1))


@njit(cache=True, inline="always")
def _four_trials(r, p_hi, p_lo, s0, s1, s2, s3):
    """Four Bernoulli(p53 / 2^53) outcomes from the 16-bit slices of ``r`` (see module doc)."""
    m = uint64(0xFFFF)
    u0, u1, u2, u3 = r & m, (r >> uint64(16)) & m, (r >> uint64(32)) & m, r >> uint64(48)
    b0, b1, b2, b3 = u0 < p_hi, u1 < p_hi, u2 < p_hi, u3 < p_hi
    if (u0 == p_hi) | (u1 == p_hi) | (u2 == p_hi) | (u3 == p_hi):  # rare: 37 more bits
        if u0 == p_hi:
            v, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            b0 = (v >> uint64(27)) < p_lo
        if u1 == p_hi:
            v, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            b1 = (v >> uint64(27)) < p_lo
        if u2 == p_hi:
            v, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            b2 = (v >> uint64(27)) < p_lo
        if u3 == p_hi:
            v, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            b3 = (v >> uint64(27)) < p_lo
    return b0, b1, b2, b3, s0, s1, s2, s3


# --------------------------------------------------------------------------------------
# Lattice helpers


@njit(cache=True, inline="always")
def _wrap_up(v, L):
    return v + 1 if v + 1 < L else 0


@njit(cache=True, inline="always")
def _wrap_down(v, L):
    return v - 1 if v > 0 else L - 1


@njit(cache=True)
def bond_sum(spins, L):
    """sum_<ij> s_i s_j over the 2 L^2 bonds (each counted once: right and down)."""
    total = 0
    for y in range(L):
        row, down = y * L, _wrap_up(y, L) * L
        for x in range(L):
            s = np.int64(spins[row + x])
            total += s * (spins[row + _wrap_up(x, L)] + spins[down + x])
    return total


@njit(cache=True)
def spin_sum(spins):
    total = 0
    for i in range(spins.size):
        total += spins[i]
    return total


# --------------------------------------------------------------------------------------
# Updates on one chain: spins (L*L,) int8, rng (chains, 4) uint64 with row c.


@njit(cache=True, inline="always")
def _try_join(spins, stack, top, j, packed, s_old, step, bond):
    """Join site j (packed coordinates) if it holds s_old and is bonded: add ``step``."""
    join = np.int8((spins[j] == s_old) & bond)
    spins[j] += step * join
    stack[top] = packed
    return top + join


@njit(cache=True)
def wolff_update(spins, L, rng, c, p_hi, p_lo, queue):
    """Grow one Wolff cluster from a random site, flipping as it grows; return its size.

    Branch-free growth: every neighbour gets a bond trial (aligned or not), so the
    unpredictable accept/reject never becomes a branch; sites are flipped on joining,
    so a site joins at most once. Breadth first: the next site to grow from is the next
    queue entry, known before the current site's joins are decided, so consecutive sites
    overlap in the pipeline (10-15 % faster than a stack). The RNG state stays in
    registers. ``queue`` is an int32 array of at least L*L + 1 entries; it ends holding
    the cluster's packed coordinates.
    """
    s0, s1, s2, s3 = rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3]
    r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
    seed = np.int64((r >> uint64(11)) % uint64(L * L))
    y0 = seed // L
    s_old = spins[seed]
    flip = np.int8(-2 * s_old)  # adding flip turns s_old into -s_old
    spins[seed] = -s_old
    queue[0] = (y0 << 16) | (seed - y0 * L)
    head, tail = 0, 1
    while head < tail:
        e = np.int64(queue[head])
        head += 1
        y, x = e >> 16, e & 0xFFFF
        r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
        b0, b1, b2, b3, s0, s1, s2, s3 = _four_trials(r, p_hi, p_lo, s0, s1, s2, s3)
        row, xr, xl = y * L, _wrap_up(x, L), _wrap_down(x, L)
        yd, yu = _wrap_up(y, L), _wrap_down(y, L)
        tail = _try_join(spins, queue, tail, row + xr, (y << 16) | xr, s_old, flip, b0)
        tail = _try_join(spins, queue, tail, row + xl, (y << 16) | xl, s_old, flip, b1)
        tail = _try_join(spins, queue, tail, yd * L + x, (yd << 16) | x, s_old, flip, b2)
        tail = _try_join(spins, queue, tail, yu * L + x, (yu << 16) | x, s_old, flip, b3)
    rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3] = s0, s1, s2, s3
    return tail


@njit(cache=True)
def sw_update(spins, L, rng, c, p_hi, p_lo, stack):
    """One Swendsen-Wang sweep; return the spins flipped.

    Clusters are grown in site order from every site no earlier cluster holds, each with
    one fair coin drawn first (flip it or not) and flipped (or kept) as it grows. A bond
    is drawn only between a cluster site and an aligned neighbour no cluster holds yet: a
    bond to a site of an earlier cluster was drawn (and closed) from that side, so every
    bond of the Fortuin-Kasteleyn configuration is drawn at most once, as in a full
    sweep. Sites already placed in a cluster are marked by storing 3 s instead of s (one
    array for spin and mark keeps large lattices in cache); a last pass restores +-1.
    """
    n = L * L
    s0, s1, s2, s3 = rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3]
    flipped = 0
    for start in range(n):
        s_old = spins[start]
        if s_old != 1 and s_old != -1:
            continue
        r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
        coin = np.int8(r >> uint64(63))
        step = np.int8(3 * (1 - 2 * coin) * s_old - s_old)  # s_old -> +-3 s_old (marked)
        spins[start] += step
        y0 = start // L
        stack[0] = (y0 << 16) | (start - y0 * L)
        top = 1
        size = 1
        while top > 0:
            top -= 1
            e = np.int64(stack[top])
            y, x = e >> 16, e & 0xFFFF
            r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
            b0, b1, b2, b3, s0, s1, s2, s3 = _four_trials(r, p_hi, p_lo, s0, s1, s2, s3)
            row, xr, xl = y * L, _wrap_up(x, L), _wrap_down(x, L)
            yd, yu = _wrap_up(y, L), _wrap_down(y, L)
            before = top
            top = _try_join(spins, stack, top, yu * L + x, (yu << 16) | x, s_old, step, b3)
            top = _try_join(spins, stack, top, yd * L + x, (yd << 16) | x, s_old, step, b2)
            top = _try_join(spins, stack, top, row + xl, (y << 16) | xl, s_old, step, b1)
            top = _try_join(spins, stack, top, row + xr, (y << 16) | xr, s_old, step, b0)
            size += top - before
        flipped += size * coin
    for i in range(n):
        spins[i] = np.int8(2 * (spins[i] > 0) - 1)
    rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3] = s0, s1, s2, s3
    return flipped


@njit(cache=True)
def metropolis_update(spins, L, rng, c, accept53):
    """One checkerboard Metropolis sweep; accept53[h // 2] = 2^53 exp(-2h/T), h = s_i sum s_j."""
    s0, s1, s2, s3 = rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3]
    flipped = 0
    for parity in range(2):
        for y in range(L):
            row, down, up = y * L, _wrap_up(y, L) * L, _wrap_down(y, L) * L
            for x in range((y + parity) % 2, L, 2):
                i = row + x
                h = spins[i] * (
                    spins[row + _wrap_up(x, L)]
                    + spins[row + _wrap_down(x, L)]
                    + spins[down + x]
                    + spins[up + x]
                )
                accept = h <= 0
                if not accept:
                    r, s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
                    accept = (r >> uint64(11)) < accept53[h >> 1]
                if accept:
                    spins[i] = -spins[i]
                    flipped += 1
    rng[c, 0], rng[c, 1], rng[c, 2], rng[c, 3] = s0, s1, s2, s3
    return flipped


@njit(cache=True)
def update(algorithm, spins, L, rng, c, p_hi, p_lo, accept53, stack):
    """One update of chain ``c`` with the chosen algorithm; return the spins flipped."""
    if algorithm == WOLFF:
        return wolff_update(spins, L, rng, c, p_hi, p_lo, stack)
    if algorithm == SW:
        return sw_update(spins, L, rng, c, p_hi, p_lo, stack)
    return metropolis_update(spins, L, rng, c, accept53)


# --------------------------------------------------------------------------------------
# Parallel drivers: prange over chains, each chain touching only its own rows.


@njit(cache=True, parallel=True)
def run_recorded(
    algorithm,
    spins,
    L,
    rng,
    p_hi,
    p_lo,
    accept53,
    max_flipped,
    max_updates,
    every,
    records,
    n_records,
    flipped,
    updates,
):
    """Update chain c until it has flipped ``max_flipped[c]`` spins or done ``max_updates[c]``.

    After every ``every``-th update a record (flipped, updates, bond sum, spin sum) of
    the chain's state is written to ``records[c, k]`` (flipped and updates counted from
    the start of this call); ``n_records[c]`` is the count, and ``records`` needs
    ``max(max_updates) // every`` rows per chain. Records are taken at fixed update
    counts, never when a flip count crosses a threshold: that would be a stopping time
    and favour states just after large clusters (the bias of the threshold schedule).
    ``flipped[c]`` and ``updates[c]`` receive this call's totals.
    """
    chains, n = spins.shape
    for c in prange(chains):
        stack = np.empty(n + 1, np.int32)
        s = spins[c]
        f, u, k = 0, 0, 0
        while f < max_flipped[c] and u < max_updates[c]:
            f += update(algorithm, s, L, rng, c, p_hi, p_lo, accept53, stack)
            u += 1
            if u % every == 0:
                records[c, k, 0], records[c, k, 1] = f, u
                records[c, k, 2], records[c, k, 3] = bond_sum(s, L), spin_sum(s)
                k += 1
        n_records[c], flipped[c], updates[c] = k, f, u


@njit(cache=True, parallel=True)
def produce_samples(
    algorithm,
    schedule,
    spins,
    L,
    rng,
    p_hi,
    p_lo,
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
        stack = np.empty(n + 1, np.int32)
        s = spins[c]
        for k in range(todo[c]):
            since = 0
            u = 0
            while (schedule == FIXED_UPDATES and u < interval) or (
                schedule == THRESHOLD and since < threshold
            ):
                since += update(algorithm, s, L, rng, c, p_hi, p_lo, accept53, stack)
                u += 1
            flipped[c] += since
            updates[c] += u
            out_spins[c, k] = s
            out_bonds[c, k] = bond_sum(s, L)
            out_sum[c, k] = spin_sum(s)
