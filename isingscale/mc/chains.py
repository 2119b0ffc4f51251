"""Independent Markov chains of one algorithm at one temperature, and their work counters.

:class:`Chains` holds what the kernels of :mod:`isingscale.mc.kernels` need (spins, one
xoshiro256++ stream per chain, the bond and Metropolis acceptance probabilities) and
counts the work done, kept apart by phase: ``thermalization`` and ``production`` each
count flipped spins and updates per chain, so that a mean flips per update (for Wolff,
the mean cluster size) is always a ratio of two counts over the same updates.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from . import kernels
from .rng import chain_states, random_starts

J = 1.0


@dataclass
class Work:
    """Flipped spins and updates per chain, (chains,) int64 each."""

    flipped: np.ndarray
    updates: np.ndarray

    @classmethod
    def zeros(cls, chains: int) -> Work:
        return cls(np.zeros(chains, np.int64), np.zeros(chains, np.int64))

    def add(self, flipped: np.ndarray, updates: np.ndarray) -> None:
        self.flipped += flipped
        self.updates += updates

    @property
    def flips_per_update(self) -> float:
        """Mean flipped spins per update over all chains (nan before any update)."""
        u = int(self.updates.sum())
        return float(self.flipped.sum() / u) if u else math.nan


@dataclass
class Chains:
    """``chains`` independent L x L chains from random +-1 starts (see :mod:`.rng`)."""

    L: int
    _: KW_ONLY
    T: float
    algorithm: str
    seed: int
    chains: int
    thermalization: Work = field(init=False)
    production: Work = field(init=False)

    def __post_init__(self):
        if not 2 <= self.L <= kernels.MAX_L:
            raise ValueError(f"L must be in [2, {kernels.MAX_L}]")
        self.N = self.L * self.L
        self.code = kernels.ALGORITHMS[self.algorithm]
        # Bond probability p = 1 - exp(-2J/T); Metropolis accepts exp(-2 J h / T), h = 2, 4.
        self.p53 = int(-math.expm1(-2.0 * J / self.T) * 2.0**53)
        self.p_hi, self.p_lo = kernels.split_probability(self.p53)
        self.accept53 = np.array(
            [2**53] + [int(math.exp(-2.0 * J * h / self.T) * 2.0**53) for h in (2, 4)], np.uint64
        )
        self.spins = random_starts(self.seed, self.chains, self.L)
        self.rng = chain_states(self.seed, self.chains)
        self.thermalization = Work.zeros(self.chains)
        self.production = Work.zeros(self.chains)

    def run_recorded(
        self, *, max_flipped: np.ndarray, max_updates: np.ndarray, every: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Thermalization updates, recording the state every ``every`` updates (see
        :func:`kernels.run_recorded`).

        Returns ``(records, n_records)``: records (chains, R, 4) int64 of (flipped, updates,
        bond sum, spin sum) counted from the start of this call, and how many rows of each
        chain are filled. The work done is added to ``self.thermalization``.
        """
        max_flipped = np.asarray(max_flipped, np.int64)
        max_updates = np.asarray(max_updates, np.int64)
        rows = int(max_updates.max()) // every + 1
        records = np.zeros((self.chains, rows, len(kernels.RECORD_FIELDS)), np.int64)
        n_records = np.zeros(self.chains, np.int64)
        flipped = np.zeros(self.chains, np.int64)
        updates = np.zeros(self.chains, np.int64)
        kernels.run_recorded(
            self.code,
            self.spins,
            self.L,
            self.rng,
            self.p_hi,
            self.p_lo,
            self.accept53,
            max_flipped,
            max_updates,
            int(every),
            records,
            n_records,
            flipped,
            updates,
        )
        self.thermalization.add(flipped, updates)
        return records, n_records

    def produce(
        self, todo: np.ndarray, *, interval: int, threshold: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``todo[c]`` saves from chain c, ``interval`` updates apart (or the threshold rule
        when ``interval`` is 0); returns (spins (C, k, N), bond sums (C, k), spin sums (C, k))."""
        k = int(todo.max())
        out_spins = np.empty((self.chains, k, self.N), np.int8)
        out_bonds = np.empty((self.chains, k), np.int64)
        out_sum = np.empty((self.chains, k), np.int64)
        flipped = np.zeros(self.chains, np.int64)
        updates = np.zeros(self.chains, np.int64)
        kernels.produce_samples(
            self.code,
            kernels.FIXED_UPDATES if interval else kernels.THRESHOLD,
            self.spins,
            self.L,
            self.rng,
            self.p_hi,
            self.p_lo,
            self.accept53,
            int(interval),
            int(threshold),
            np.asarray(todo, np.int64),
            out_spins,
            out_bonds,
            out_sum,
            flipped,
            updates,
        )
        self.production.add(flipped, updates)
        return out_spins, out_bonds, out_sum
