"""Kernel-level checks: RNG, lattice helpers, and an exact Boltzmann oracle on a 4x4 torus."""

import numpy as np
import pytest
from numba import njit
from scipy import stats as sps

from isingscale.mc import kernels
from isingscale.mc.chains import Chains
from isingscale.mc.rng import chain_states, random_starts

ALGS = ("wolff", "sw", "metropolis")


def test_chain_states_reproducible_and_independent_of_chain_count():
    a, b = chain_states(7, 3), chain_states(7, 5)
    assert a.dtype == np.uint64 and a.shape == (3, 4)
    np.testing.assert_array_equal(a, b[:3])  # chain c's stream does not depend on siblings
    assert not np.array_equal(chain_states(7, 3), chain_states(8, 3))
    assert len({tuple(r) for r in b}) == 5


def test_xoshiro_uniform():
    rng = chain_states(0, 1)
    u = np.array([kernels.next_u53(rng, 0) for _ in range(20000)], dtype=np.float64) / 2.0**53
    # Kolmogorov-Smirnov at the 1e-4 level: fails for a broken generator, not by chance.
    assert sps.kstest(u, "uniform").pvalue > 1e-4


@pytest.mark.parametrize("L", [2, 3, 5, 8])
def test_energy_helpers(L):
    up = np.ones(L * L, np.int8)
    assert kernels.bond_sum(up, L) == 2 * L * L
    spins = random_starts(3, 1, L)[0]
    s = spins.reshape(L, L).astype(int)
    assert kernels.bond_sum(spins, L) == np.sum(s * np.roll(s, 1, 0) + s * np.roll(s, 1, 1))
    assert kernels.spin_sum(spins) == s.sum()


@njit
def _trials(rng, r, p_hi, p_lo, n):
    """``n`` calls of the four-trials kernel on the fixed 64 bits ``r`` (fresh bits from rng)."""
    hits = np.zeros(4, np.int64)
    s0, s1, s2, s3 = rng[0, 0], rng[0, 1], rng[0, 2], rng[0, 3]
    for _ in range(n):
        b0, b1, b2, b3, s0, s1, s2, s3 = kernels._four_trials(r, p_hi, p_lo, s0, s1, s2, s3)
        hits[0] += b0
        hits[1] += b1
        hits[2] += b2
        hits[3] += b3
    return hits


def test_bond_trials_are_exact():
    """Each 16-bit slice u decides u < p_hi at once; a tie u == p_hi compares 37 fresh bits
    with the low bits of p53, so every trial succeeds with probability exactly p53 / 2^53."""
    p53 = int(0.5857864376269 * 2**53)
    p_hi, p_lo = kernels.split_probability(p53)
    h = int(p_hi)
    r = np.uint64(h | ((h + 1) << 16) | ((h - 1) << 32) | (h << 48))  # tie, above, below, tie
    n = 100000
    hits = _trials(chain_states(5, 1), r, p_hi, p_lo, n)
    assert hits[1] == 0 and hits[2] == n
    q = int(p_lo) / 2.0**37  # success probability given a tie
    for k in (0, 3):
        assert abs(hits[k] / n - q) < 5 * np.sqrt(q * (1 - q) / n), (hits, q)
    # the fresh bits are the stream's next outputs, top 37 bits compared with p_lo
    rng = chain_states(5, 1)
    v = [kernels.next_u64(rng, 0) for _ in range(2)]
    first = _trials(chain_states(5, 1), r, p_hi, p_lo, 1)
    assert first[0] == ((v[0] >> np.uint64(27)) < p_lo) and first[3] == (
        (v[1] >> np.uint64(27)) < p_lo
    )


# --------------------------------------------------------------------------------------
# Exact oracle: all 2^16 states of the 4x4 torus.


def _exact_classes(L, T):
    """Exact probability of each (bond sum, spin sum) class on the L x L torus."""
    n = L * L
    states = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.int8) * 2 - 1
    s = states.reshape(-1, L, L).astype(np.int32)
    bonds = np.sum(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2), axis=(1, 2))
    sums = s.sum(axis=(1, 2))
    keys, inverse = np.unique(np.stack([bonds, sums], 1), axis=0, return_inverse=True)
    w = np.exp((bonds - bonds.max()) / T)
    p = np.bincount(inverse.ravel(), weights=w) / w.sum()
    return keys, p


def _g_statistic(keys, p, bonds, sums):
    """G = 2 sum O ln(O/E) over classes, classes with E < 5 pooled into one bin."""
    index = {tuple(k): i for i, k in enumerate(keys)}
    observed = np.bincount([index[(b, m)] for b, m in zip(bonds, sums)], minlength=len(p))
    expected = p * len(bonds)
    small = expected < 5
    O = np.append(observed[~small], observed[small].sum())
    E = np.append(expected[~small], expected[small].sum())
    nz = O > 0
    return 2.0 * np.sum(O[nz] * np.log(O[nz] / E[nz])), len(O) - 1


def _threshold(dof):
    """G ~ chi2(dof) for independent samples; reject at p = 1e-6 (a false alarm per 10^6 runs)."""
    return sps.chi2.isf(1e-6, dof)


@pytest.mark.parametrize("algorithm", ALGS)
def test_boltzmann_oracle_4x4(algorithm):
    """Sampled (E, M) classes on the 4x4 torus at T = 3 match exact Boltzmann weights.

    Saves are spaced (interval updates) so that consecutive samples are nearly independent;
    any residual autocorrelation inflates G by about 2 tau_int, so G / (2 tau_int) is compared
    with the chi-square threshold (tau_int of the energy, >= 1/2).
    """
    from isingscale.stats import tau_int

    L, T, n = 4, 3.0, 40000
    chains = Chains(L, T=T, algorithm=algorithm, seed=11, chains=2)
    interval = {"wolff": 6, "sw": 2, "metropolis": 3}[algorithm]
    chains.produce(np.full(2, 5), interval=interval)  # forget the random start
    _, bonds, sums = chains.produce(np.full(2, n // 2), interval=interval)
    keys, p = _exact_classes(L, T)
    G, dof = _g_statistic(keys, p, bonds.ravel(), sums.ravel())
    tau = max(tau_int(bonds[0]), tau_int(bonds[1]))
    assert G / (2 * tau) < _threshold(dof), (
        f"{algorithm}: G = {G:.1f}, dof = {dof}, tau_int = {tau:.2f}"
    )


def test_oracle_catches_wrong_temperature():
    """MC-free power check: exact samples at 1.12 T fail the test against weights at T."""
    L, T, n = 4, 3.0, 40000
    keys, p = _exact_classes(L, T)
    _, p_wrong = _exact_classes(L, 1.12 * T)
    draws = np.random.default_rng(0).choice(len(p), size=n, p=p_wrong)
    G, dof = _g_statistic(keys, p, keys[draws, 0], keys[draws, 1])
    assert G > _threshold(dof)
    draws = np.random.default_rng(0).choice(len(p), size=n, p=p)
    G, dof = _g_statistic(keys, p, keys[draws, 0], keys[draws, 1])
    assert G < _threshold(dof)
