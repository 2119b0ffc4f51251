"""Heat-bath sweeps: exact local equilibration of given lattices at temperature T.

Each sweep visits every site once as c x c interleaved sublattices, (y mod c, x mod c) =
(dy, dx) in row order, with c = 2 (or c = b when block images are preserved). Sites of
one sublattice are c >= 2 apart, so no two are neighbours and all are updated at once
from their exact conditional, P(s_i = +1 | rest) = 1 / (1 + exp(-2 h_i / T)) with
h_i = J x (sum of the four neighbours), J = 1. Every sublattice update leaves the
Boltzmann distribution at T invariant (a Gibbs step), so a sweep can only bring an
ensemble closer to it (the KL divergence to a stationary distribution never grows under a
Markov kernel). Local dynamics relax correlations over about sweeps^(1/z) sites (z ≈ 2.17
at Tc), so a few sweeps repair the lattice scale of an approximate sampler's output and
leave its large scales as they are.

With ``preserve_blocks=b`` an update that would change the majority-rule image of its
b x b block (:mod:`isingscale.blocks`: ties take the block's top-left spin)
is not made. One site per block moves at a time, so this is the exact Gibbs step of the
Boltzmann distribution conditioned on the block image: the lattice's block spins are
unchanged, spin for spin.
"""

from __future__ import annotations

import numpy as np

from ..blocks import block_totals, majority_rule
from ..errors import IsingScaleError


def check_sweeps(sweeps) -> int:
    """`sweeps` as an int, or a one-line error unless it is a non-negative integer."""
    if int(sweeps) != sweeps or sweeps < 0:
        raise IsingScaleError(f"sweeps must be a non-negative integer, got {sweeps}")
    return int(sweeps)


def heatbath(
    spins: np.ndarray, T: float, sweeps: int, *, seed=0, preserve_blocks: int | None = None
) -> np.ndarray:
    """`sweeps` heat-bath sweeps of (B, L, L) or (L, L) ±1 lattices on the torus at T (J = k_B = 1).

    Returns new int8 lattices of the same shape; the input is not modified. L must be a
    multiple of 2, or of b with ``preserve_blocks=b`` (then each lattice's b x b majority
    image is kept exactly). The result is a deterministic function of ``seed`` (anything
    :func:`numpy.random.default_rng` takes, e.g. an int or a list of ints).
    """
    s = np.array(spins, dtype=np.int8, copy=True)
    squeeze = s.ndim == 2
    if squeeze:
        s = s[None]
    if s.ndim != 3 or s.shape[1] != s.shape[2]:
        raise IsingScaleError(
            f"heat-bath sweeps need square lattices (B, L, L), got shape {np.shape(spins)}"
        )
    if not np.all(np.abs(s) == 1):
        raise IsingScaleError("heat-bath sweeps need ±1 spins")
    sweeps = check_sweeps(sweeps)
    if not T > 0:
        raise IsingScaleError(f"temperature must be positive, got {T}")
    L = s.shape[-1]
    c = 2 if preserve_blocks is None else int(preserve_blocks)
    if c < 2 or L % c:
        what = "2" if preserve_blocks is None else f"the block size {preserve_blocks} (at least 2)"
        raise IsingScaleError(f"heat-bath sweeps need L divisible by {what}; got L = {L}")
    rng = np.random.default_rng(seed)
    beta2 = 2.0 / float(T)
    n = L // c
    for _ in range(sweeps):
        for dy in range(c):
            for dx in range(c):
                h = (np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2))[
                    :, dy::c, dx::c
                ]
                p_up = 1.0 / (1.0 + np.exp(-beta2 * h))
                new = np.where(rng.random((s.shape[0], n, n)) < p_up, 1, -1).astype(np.int8)
                if preserve_blocks is not None:
                    old = s[:, dy::c, dx::c]
                    total, top_left = block_totals(s, c)
                    new_top_left = new if (dy, dx) == (0, 0) else top_left
                    keep = majority_rule(total - old + new, new_top_left) == majority_rule(
                        total, top_left
                    )
                    new = np.where(keep, new, old)
                s[:, dy::c, dx::c] = new
    return s[0] if squeeze else s
