"""Thermalization judged by the physics: work in L^2 flipped spins, run until stationary.

Work is counted in flipped spins per chain, in units of L^2 (a "sweep's worth"): the
cost of a Wolff cluster, an SW sweep or a Metropolis sweep is what it flips, so the same
amount means the same work at every L and for every algorithm. (A fixed number of Wolff
updates does not scale: from a random start clusters are a few sites, and 2,000 of them
flip less than half of an L = 256 lattice.)

While thermalizing, every chain records its state (energy, |m|) and its flipped spins
per update about 64 times per doubling of the work, at fixed update counts (a record
taken when a flip count crosses a threshold would favour states just after large
clusters, the bias of the ``threshold`` saving schedule). The **stationarity test** looks
at the last half of the work, split into two equal windows A and B of every chain, and
passes when

- energy per site, |m| and flipped spins per update (for Wolff, the mean cluster
  size) agree between A and B: |mean_B - mean_A| <= Z sqrt(se_A^2 + se_B^2), and
- the energy per site over B agrees with Kaufman's exact value on the L x L torus:
  |mean_B - u_exact| <= Z se_B,

with Z = :data:`~isingscale.constants.STATIONARITY_Z` and standard errors
se = sqrt(2 tau_int var / n) over all chains (chains are independent, so many chains
make the test sharper), with one integrated autocorrelation time
(:func:`isingscale.stats.tau_int`, corrected for the bias of subtracting a window's
mean) estimated on both windows together, each about its own mean: per-window
estimates from short windows come out too small, and at equilibrium the test would
then fail several times more often than Z promises. The
energy equilibrates fastest and is known exactly, so it catches a lattice whose short
scales are still relaxing; |m| and the cluster size are dominated by the longest
wavelengths, the slowest modes at Tc. Windows too short to judge fail the test: fewer
than :data:`~isingscale.constants.STATIONARITY_MIN_RECORDS` records per chain, or fewer
than :data:`~isingscale.constants.STATIONARITY_MIN_EFFECTIVE` independent samples
(n / 2 tau_int, all chains) of some observable.

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
    STATIONARITY_MIN_EFFECTIVE,
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
_RECORDS_PER_CHUNK = 64  # records per chain in one run of the kernel


@dataclass(frozen=True)
class WindowTest:
    """One observable's means over windows A and B with their standard errors."""

    observable: str
    mean_a: float
    se_a: float
    mean_b: float
    se_b: float
    effective: float  # fewer independent samples of the two windows (n / 2 tau_int)

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
    stages: int  # stages of work, each followed by a test ("auto" doubles the work each stage)
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
    def testable(self) -> bool:
        """Do the windows hold enough records and independent samples to judge?"""
        effective = min(t.effective for t in self.tests)
        return self.records >= STATIONARITY_MIN_RECORDS and effective >= STATIONARITY_MIN_EFFECTIVE

    @property
    def stationary(self) -> bool:
        zs = [t.z for t in self.tests] + [self.energy_z]
        return self.testable and all(abs(z) <= STATIONARITY_Z for z in zs)  # nan fails

    @property
    def calibrated(self) -> bool:
        """Is the flipped spins per update known to CALIBRATION_PRECISION (relative, 1 se)?"""
        f, se = self.flips_per_update, self.flips_per_update_error
        return f > 0 and se <= CALIBRATION_PRECISION * f  # nan fails

    def _test(self, name: str) -> WindowTest:
        return next(t for t in self.tests if t.observable == name)

    def verdict(self) -> str:
        """One line: the outcome, the windows and each z.

        A clear drift (some |z| > Z) is "NOT stationary" however short the windows; a pass
        counts only with enough data ("too short to test" otherwise).
        """
        zs = ", ".join(f"{t.observable} z = {t.z:+.1f}" for t in self.tests)
        detail = (
            f"over the last {2 * self.window:.3g} L^2 flipped spins per chain (windows A vs B: "
            f"{zs}; energy vs exact z = {self.energy_z:+.1f}; |z| <= {STATIONARITY_Z:g} required)"
        )
        if any(abs(z) > STATIONARITY_Z for z in [t.z for t in self.tests] + [self.energy_z]):
            return f"NOT stationary {detail}"
        if not self.testable:
            effective = min(t.effective for t in self.tests)
            return (
                f"too short to test: {self.records} records per chain and {effective:.1f} "
                f"independent samples in a window (needs {STATIONARITY_MIN_RECORDS} and "
                f"{STATIONARITY_MIN_EFFECTIVE:g}) {detail}"
            )
        return f"stationary {detail}"

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
                f"{', '.join(OBSERVABLES)}, and |energy_B - exact| <= {STATIONARITY_Z:g} se_B; "
                f"se = sqrt(2 tau_int var / n), one tau_int for both windows, all chains; "
                f"testable with >= {STATIONARITY_MIN_RECORDS} records per chain and "
                f">= {STATIONARITY_MIN_EFFECTIVE:g} independent samples per window"
            ),
            "thermalization_window_flips_per_site": self.window,
            "thermalization_window_records": self.records,
            "thermalization_energy_exact": self.energy_exact,
            "thermalization_energy_exact_z": self.energy_z,
            "thermalization_mean_flips_per_update": self.flips_per_update,
            "thermalization_mean_flips_per_update_error": self.flips_per_update_error,
        }
        for t in self.tests:
            for k in ("mean_a", "se_a", "mean_b", "se_b", "z", "effective"):
                a[f"thermalization_{t.observable}_{k}"] = getattr(t, k)
        return a


class History:
    """Records (flipped, updates, bond sum, spin sum) of every chain from now on.

    The chains run in chunks, each a fixed number of updates (a quarter of the work done
    so far, or one L^2, at the pooled flips per update of the previous chunk, so that the
    rate changes little within a chunk even while clusters grow from a random start; a
    chain also stops once it reaches the requested flipped spins) with a record every
    ``every`` updates: about :data:`_RECORDS_PER_CHUNK` records per chunk, at times that
    do not depend on the chain's own state.
    """

    def __init__(self, chains: Chains):
        self.chains = chains
        work = chains.thermalization
        self.rows = [
            [np.array([[f, u, kernels.bond_sum(s, chains.L), kernels.spin_sum(s)]], np.int64)]
            for f, u, s in zip(work.flipped, work.updates, chains.spins)
        ]
        self.stages = 0
        self.rate = 1.0  # pooled flips per update of the latest chunk (a random start: ~1)

    def _run(self, *, max_flipped: np.ndarray, updates: np.ndarray) -> None:
        work = self.chains.thermalization
        base = np.stack([work.flipped, work.updates], axis=1)
        every = max(1, int(updates.max()) // _RECORDS_PER_CHUNK)
        records, n = self.chains.run_recorded(
            max_flipped=max_flipped, max_updates=updates, every=every
        )
        done = np.stack([work.flipped, work.updates], axis=1) - base
        if done[:, 1].sum():
            self.rate = max(float(done[:, 0].sum() / done[:, 1].sum()), 1.0)
        for c, rows in enumerate(self.rows):
            r = records[c, : n[c]].copy()
            r[:, :2] += base[c]
            rows.append(r)

    def _since_start(self, column: int) -> np.ndarray:
        work = self.chains.thermalization
        now = work.flipped if column == 0 else work.updates
        return now - np.array([rows[0][0, column] for rows in self.rows])

    def run_flips(self, total: int) -> None:
        """Run every chain until it has flipped ``total`` spins since the history began.

        A chunk that flips under 1 % of what it was given ends the stage early: sweeps that
        almost never flip (Metropolis far below Tc) cannot reach a flip count, and the
        test then judges what was done.
        """
        N = self.chains.N
        while (todo := total - (done := self._since_start(0))).max() > 0:
            chunk = min(int(todo.max()), max(int(done.mean()) // 4, N))
            updates = math.ceil(chunk / self.rate)
            if self.chains.algorithm != "wolff":  # an update is a sweep of N spins
                updates = min(updates, 64 * math.ceil(chunk / N))
            given = np.clip(todo, 0, chunk)
            self._run(max_flipped=given, updates=np.where(todo > 0, updates, 0))
            if (self._since_start(0) - done).sum() < 0.01 * given.sum():
                break
        self.stages += 1

    def run_updates(self, total: int) -> None:
        """Run every chain until it has done ``total`` updates since the history began."""
        todo = np.maximum(total - self._since_start(1), 0)
        if todo.max() > 0:
            self._run(max_flipped=np.full_like(todo, _NO_LIMIT), updates=todo)
        self.stages += 1

    def table(self, c: int) -> np.ndarray:
        """All records of chain c, (k, 4), the state when the history began first."""
        return np.concatenate(self.rows[c])


_NO_LIMIT = np.iinfo(np.int64).max // 4


def _windows(history: History) -> dict[str, dict[str, np.ndarray]]:
    """Per-record series of windows A and B (and the flips/updates between records)."""
    N = history.chains.N
    out = {w: {k: [] for k in ("chain", "energy", "abs_m", "df", "du")} for w in "AB"}
    for c in range(history.chains.chains):
        t = history.table(c)
        f, rec = t[1:, 0] - t[0, 0], t[1:]
        total = t[-1, 0] - t[0, 0]
        d = np.diff(t[:, :2], axis=0)
        for w, lo, hi in (("A", total / 2, 3 * total / 4), ("B", 3 * total / 4, total)):
            sel = (f > lo) & (f <= hi)
            out[w]["chain"].append(np.full(int(sel.sum()), c))
            out[w]["energy"].append(-J * rec[sel, 2] / N)
            out[w]["abs_m"].append(np.abs(rec[sel, 3]) / N)
            out[w]["df"].append(d[sel, 0])
            out[w]["du"].append(d[sel, 1])
    return {w: {k: np.concatenate(v) for k, v in d.items()} for w, d in out.items()}


def _residuals(w: dict, name: str) -> tuple[dict, dict]:
    """Per-window estimates and zero-mean residual series of one observable.

    Means for energy and |m|; for flipped spins per update the ratio estimator
    sum(df) / sum(du), whose residuals df - r du carry its error (delta method). (The
    mean of per-record ratios would be length-biased towards records with large clusters.)
    """
    est, res = {}, {}
    for k in "AB":
        if name == "flips_per_update":
            df, du = w[k]["df"], w[k]["du"]
            est[k] = float(df.sum() / du.sum()) if du.sum() else math.nan
            res[k] = (df - est[k] * du) / du.mean() if len(du) else df * 0.0
        else:
            x = w[k][name]
            est[k] = float(x.mean()) if len(x) else math.nan
            res[k] = x - est[k]
    return est, res


def _compare(w: dict, name: str, *, chains: int) -> WindowTest:
    """Window means with standard errors sqrt(2 tau var / n), one tau_int for both windows.

    tau_int is estimated on the residuals of A and B together (each about its own mean,
    chains kept apart): twice the data of one window, which matters for short windows.
    """
    est, res = _residuals(w, name)
    n = {k: len(res[k]) for k in "AB"}
    if min(n.values()) < 2:
        return WindowTest(name, est["A"], math.nan, est["B"], math.nan, 0.0)
    chain = np.concatenate([w["A"]["chain"], w["B"]["chain"] + chains])
    tau = stats.tau_int(np.concatenate([res["A"], res["B"]]), chain=chain, n_mean=min(n.values()))
    se = {k: math.sqrt(2 * tau * np.var(res[k], ddof=1) / n[k]) for k in "AB"}
    return WindowTest(name, est["A"], se["A"], est["B"], se["B"], min(n.values()) / (2 * tau))


def stationarity(history: History, *, rule: str, amount: float) -> Thermalization:
    """The stationarity test on the last half of the recorded work (see module doc)."""
    ch = history.chains
    w = _windows(history)
    tests = tuple(_compare(w, name, chains=ch.chains) for name in OBSERVABLES)
    both = {"A": {k: np.concatenate([w["A"][k], w["B"][k]]) for k in ("df", "du", "chain")}}
    both["B"] = both["A"]
    fpu = _compare(both, "flips_per_update", chains=ch.chains)
    records = min(int(np.sum(w[k]["chain"] == c)) for k in "AB" for c in range(ch.chains))
    window = float(ch.thermalization.flipped.mean() / ch.N / 4)
    return Thermalization(
        rule=rule,
        amount=float(amount),
        flips=float(ch.thermalization.flipped.mean() / ch.N),
        updates=float(ch.thermalization.updates.mean()),
        stages=history.stages,
        window=window,
        records=records,
        tests=tests,
        energy_exact=float(torus_energy(ch.L, ch.T, J=J)),
        flips_per_update=fpu.mean_a,
        flips_per_update_error=fpu.se_a,
    )


def thermalize(
    chains: Chains, *, amount: float | str = "auto", unit: str = "flips", progress: bool = False
) -> Thermalization:
    """Thermalize ``chains`` from their current state by the rule (amount, unit); see module doc."""
    from tqdm.auto import tqdm

    history = History(chains)
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
