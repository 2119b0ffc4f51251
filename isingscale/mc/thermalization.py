"""Thermalization judged by the physics: work in L^2 flipped spins, run until stationary.

Work is counted in flipped spins per chain, in units of L^2 (a "sweep's worth"): the
cost of a Wolff cluster, an SW sweep or a Metropolis sweep is what it flips, so the same
amount means the same work at every L and for every algorithm. (A fixed number of Wolff
updates does not scale: from a random start clusters are a few sites, and 2,000 of them
flip less than half of an L = 256 lattice.)

While thermalizing, every chain records its state (energy, |m|) and its flipped spins
per update about every 1/128 of the work so far. The **stationarity test** looks at
the last half of the work, split into two equal windows A and B of every chain, and
passes when

- energy per site, |m| and flipped spins per update (for Wolff, the mean cluster
  size) agree between A and B: |mean_B - mean_A| <= Z sqrt(se_A^2 + se_B^2), and
- the energy per site over B agrees with Kaufman's exact value on the L x L torus:
  |mean_B - u_exact| <= Z se_B,

with Z = :data:`~isingscale.constants.STATIONARITY_Z` and autocorrelation-aware
standard errors over all chains (:func:`isingscale.stats.mean_error`; chains are
independent, so many chains make the test sharper). The energy equilibrates fastest
and is known exactly, so it catches a lattice whose short scales are still relaxing;
|m| and the cluster size are dominated by the longest wavelengths, the slowest modes at
Tc. A window too short to estimate an error (fewer than
:data:`~isingscale.constants.STATIONARITY_MIN_RECORDS` records per chain) fails the test.

Rules (``amount``, ``unit``):

- ``"auto"`` (default): :data:`~isingscale.constants.THERMALIZE_MIN` L^2 flipped spins,
  then the total is doubled (so the tested last half is always the newest stage) until
  the test passes and the flipped spins per update over the last half are known to
  :data:`~isingscale.constants.CALIBRATION_PRECISION` (relative standard error), at
  most up to :data:`~isingscale.constants.THERMALIZE_MAX`;
- a number with unit ``"flips"``: exactly that many L^2 flipped spins per chain;
- a number with unit ``"updates"``: exactly that many updates per chain (the SKILD
  paper's "2,000 Wolff transitions" is ``2000, unit="updates"``).

Either way the test is run on the last half and its outcome is returned (and written to
the file by :func:`isingscale.simulate`, which warns when it fails). The mean flipped
spins per update over that last half calibrates the saving interval.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from .. import stats
from ..constants import (
    CALIBRATION_PRECISION,
    STATIONARITY_MIN_RECORDS,
    STATIONARITY_Z,
    THERMALIZE_MAX,
    THERMALIZE_MIN,
)
from ..exact import torus_energy
from . import kernels
from .chains import Chains, J

UNITS = ("flips", "updates")
OBSERVABLES = ("energy", "abs_m", "flips_per_update")
_RECORDS_PER_STAGE = 128  # records per chain over the work done so far, at every stage
_UPDATES_PER_CALL = 4096  # unit "updates": updates per kernel call (bounds record memory)


@dataclass(frozen=True)
class WindowTest:
    """One observable's means over windows A and B with their standard errors."""

    observable: str
    mean_a: float
    se_a: float
    mean_b: float
    se_b: float

    @property
    def z(self) -> float:
        se = math.hypot(self.se_a, self.se_b)
        return (self.mean_b - self.mean_a) / se if se > 0 else math.nan


@dataclass(frozen=True)
class Thermalization:
    """What thermalization did and what the stationarity test found (see module doc)."""

    rule: str  # "auto", "flips" or "updates"
    amount: float  # requested: L^2 flipped spins ("auto": the minimum) or updates
    flips: float  # L^2 flipped spins per chain spent (mean over chains)
    updates: float  # updates per chain spent (mean over chains)
    stages: int  # runs of the kernel between tests ("auto" doubles the work each stage)
    window: float  # length of each window A, B in L^2 flipped spins per chain
    records: int  # fewest records of any chain in a window
    tests: tuple[WindowTest, ...]
    energy_exact: float  # Kaufman's energy per site on the L x L torus at T
    flips_per_update: float  # over A and B pooled: the calibration of the saving interval
    flips_per_update_error: float

    @property
    def energy_z(self) -> float:
        """(energy over B - exact) / se_B."""
        b = self._test("energy")
        return (b.mean_b - self.energy_exact) / b.se_b if b.se_b > 0 else math.nan

    @property
    def stationary(self) -> bool:
        if self.records < STATIONARITY_MIN_RECORDS:
            return False
        zs = [t.z for t in self.tests] + [self.energy_z]
        return all(abs(z) <= STATIONARITY_Z for z in zs)  # nan fails

    @property
    def calibrated(self) -> bool:
        """Is the flipped spins per update known to CALIBRATION_PRECISION (relative, 1 se)?"""
        f, se = self.flips_per_update, self.flips_per_update_error
        return f > 0 and se <= CALIBRATION_PRECISION * f  # nan fails

    def _test(self, name: str) -> WindowTest:
        return next(t for t in self.tests if t.observable == name)

    def verdict(self) -> str:
        """One line: the windows, each z and the outcome."""
        if self.records < STATIONARITY_MIN_RECORDS:
            return (
                f"too short to test: {self.records} records per window "
                f"(needs {STATIONARITY_MIN_RECORDS})"
            )
        zs = ", ".join(f"{t.observable} z = {t.z:+.1f}" for t in self.tests)
        word = "stationary" if self.stationary else "NOT stationary"
        return (
            f"{word} over the last {2 * self.window:.3g} L^2 flipped spins per chain "
            f"(windows A vs B: {zs}; energy vs exact z = {self.energy_z:+.1f}; |z| <= "
            f"{STATIONARITY_Z:g} required)"
        )

    def attrs(self) -> dict:
        """File attributes ``thermalization_*`` recording the rule, the work and the test."""
        a = {
            "thermalization_rule": self.rule,
            "thermalization_amount": self.amount,
            "thermalization_flips_per_site": self.flips,
            "thermalization_updates": self.updates,
            "thermalization_stages": self.stages,
            "thermalization_stationary": self.stationary,
            "thermalization_test": (
                "windows A, B = the two halves of the last half of the work of every chain; "
                f"pass: |mean_B - mean_A| <= {STATIONARITY_Z:g} se for "
                f"{', '.join(OBSERVABLES)}, and |energy_B - exact| <= {STATIONARITY_Z:g} se_B"
            ),
            "thermalization_window_flips_per_site": self.window,
            "thermalization_window_records": self.records,
            "thermalization_energy_exact": self.energy_exact,
            "thermalization_energy_exact_z": self.energy_z,
            "thermalization_mean_flips_per_update": self.flips_per_update,
            "thermalization_mean_flips_per_update_error": self.flips_per_update_error,
        }
        for t in self.tests:
            for k in ("mean_a", "se_a", "mean_b", "se_b", "z"):
                a[f"thermalization_{t.observable}_{k}"] = getattr(t, k)
        return a


class _History:
    """Records (flipped, updates, bond sum, spin sum) of every chain, counted from its start."""

    def __init__(self, chains: Chains):
        self.chains = chains
        self.rows = [
            [np.array([[0, 0, kernels.bond_sum(s, chains.L), kernels.spin_sum(s)]], np.int64)]
            for s in chains.spins
        ]
        self.stages = 0

    def _run(self, *, max_flipped: np.ndarray, max_updates: np.ndarray, spacing: int) -> None:
        work = self.chains.thermalization
        base = np.stack([work.flipped, work.updates], axis=1)
        records, n = self.chains.run_recorded(
            max_flipped=max_flipped, max_updates=max_updates, spacing=spacing
        )
        for c, rows in enumerate(self.rows):
            r = records[c, : n[c]].copy()
            r[:, :2] += base[c]
            rows.append(r)

    def run_flips(self, total: int) -> None:
        """Run every chain until it has flipped ``total`` spins since its start."""
        todo = np.maximum(total - self.chains.thermalization.flipped, 1)
        spacing = max(1, total // _RECORDS_PER_STAGE)
        self._run(max_flipped=todo, max_updates=np.full_like(todo, _NO_LIMIT), spacing=spacing)
        self.stages += 1

    def run_updates(self, total: int) -> None:
        """Run every chain until it has done ``total`` updates since its start."""
        spacing = max(1, self.chains.N // 32)
        while (todo := total - self.chains.thermalization.updates).max() > 0:
            step = np.clip(todo, 0, _UPDATES_PER_CALL)
            self._run(max_flipped=np.full_like(step, _NO_LIMIT), max_updates=step, spacing=spacing)
        self.stages += 1

    def table(self, c: int) -> np.ndarray:
        """All records of chain c, (k, 4), the random start first."""
        return np.concatenate(self.rows[c])


_NO_LIMIT = np.iinfo(np.int64).max // 4


def _windows(history: _History) -> dict[str, dict[str, np.ndarray]]:
    """Per-record series of windows A and B (and the flips/updates between records)."""
    N = history.chains.N
    out = {w: {k: [] for k in ("chain", "energy", "abs_m", "df", "du")} for w in "AB"}
    for c in range(history.chains.chains):
        t = history.table(c)
        f, rec = t[1:, 0], t[1:]
        total = t[-1, 0]
        d = np.diff(t[:, :2], axis=0)
        for w, lo, hi in (("A", total / 2, 3 * total / 4), ("B", 3 * total / 4, total)):
            sel = (f > lo) & (f <= hi)
            out[w]["chain"].append(np.full(int(sel.sum()), c))
            out[w]["energy"].append(-J * rec[sel, 2] / N)
            out[w]["abs_m"].append(np.abs(rec[sel, 3]) / N)
            out[w]["df"].append(d[sel, 0])
            out[w]["du"].append(d[sel, 1])
    return {w: {k: np.concatenate(v) for k, v in d.items()} for w, d in out.items()}


def _ratio(df: np.ndarray, du: np.ndarray, chain: np.ndarray) -> tuple[float, float]:
    """Ratio estimator sum(df) / sum(du) and its autocorrelation-aware error (delta method).

    The mean of per-record ratios would be length-biased: records are spaced in flipped
    spins, so a record holding one huge cluster has few updates and a large ratio.
    """
    if len(du) < 2 or du.sum() == 0:
        return math.nan, math.nan
    r = float(df.sum() / du.sum())
    _, se, _ = stats.mean_error(df - r * du, chain=chain)
    return r, float(se / du.mean())


def stationarity(history: _History, *, rule: str, amount: float) -> Thermalization:
    """The stationarity test on the last half of the recorded work (see module doc)."""
    ch = history.chains
    w = _windows(history)
    tests = []
    for name in OBSERVABLES:
        values = {}
        for k in "AB":
            if name == "flips_per_update":
                values[k] = _ratio(w[k]["df"], w[k]["du"], w[k]["chain"])
            else:
                values[k] = stats.mean_error(w[k][name], chain=w[k]["chain"])[:2]
        tests.append(WindowTest(name, *values["A"], *values["B"]))
    both = {k: np.concatenate([w["A"][k], w["B"][k]]) for k in ("df", "du", "chain")}
    fpu, fpu_err = _ratio(both["df"], both["du"], both["chain"])
    records = min(int(np.sum(w[k]["chain"] == c)) for k in "AB" for c in range(ch.chains))
    return Thermalization(
        rule=rule,
        amount=float(amount),
        flips=float(ch.thermalization.flipped.mean() / ch.N),
        updates=float(ch.thermalization.updates.mean()),
        stages=history.stages,
        window=float(ch.thermalization.flipped.mean() / ch.N / 4),
        records=records,
        tests=tuple(tests),
        energy_exact=float(torus_energy(ch.L, ch.T, J=J)),
        flips_per_update=fpu,
        flips_per_update_error=fpu_err,
    )


def thermalize(
    chains: Chains, *, amount: float | str = "auto", unit: str = "flips", progress: bool = False
) -> Thermalization:
    """Thermalize ``chains`` from their current state by the rule (amount, unit); see module doc."""
    from tqdm.auto import tqdm

    history = _History(chains)
    N = chains.N
    if amount == "auto":
        target = THERMALIZE_MIN
        with tqdm(
            total=target, unit="L^2 flips", file=sys.stderr, disable=not progress, desc="thermalize"
        ) as bar:
            while True:
                history.run_flips(int(math.ceil(target * N)))
                bar.update(target - bar.n)
                result = stationarity(history, rule="auto", amount=THERMALIZE_MIN)
                bar.set_postfix_str("stationary" if result.stationary else "not stationary")
                if (result.stationary and result.calibrated) or 2 * target > THERMALIZE_MAX:
                    return result
                target *= 2
                bar.total = target
    if unit == "flips":
        history.run_flips(int(math.ceil(float(amount) * N)))
    else:
        history.run_updates(int(amount))
    return stationarity(history, rule=unit, amount=amount)
