"""How long thermalization takes from random starts, and what the "auto" rule spends.

    python analysis/mc_thermalization.py                         # Wolff, L = 8 ... 2048
    python analysis/mc_thermalization.py --algorithm sw --L 8,32,128,512
    python analysis/mc_thermalization.py --algorithm metropolis --L 8,16,32 --flips 4096

Part 1, relaxation: ``--chains`` chains per L from random +-1 starts run for ``--flips``
L^2 flipped spins each, recording energy and |m| 64 times per doubling of the work (at
fixed update counts, as the rule does). In
half-octave bins of work the chain-averaged energy is compared with Kaufman's exact value
and |m| with its mean over the last half of the run (the reference), both in units of
the per-sample standard deviation sigma over that last half. t_eq is the start of the
first bin from which on both stay within 0.25 sigma + 3 standard errors of the chain
average (from the chains' spread in that bin). The next column
is the mean flipped spins per update over the last half (Wolff: the mean cluster size),
over L^2.

Part 2, the rule: ``isingscale.simulate``'s default thermalization (``"auto"``, the
stationarity test of :mod:`isingscale.mc.thermalization`) on ``--auto-chains`` chains,
for ``--seeds`` seeds: the L^2 flipped spins it spends, its stages, and whether the
tested last half starts after t_eq.

Part 3 (``--null-runs N``), the test's false alarms: on chains already in equilibrium,
how often an explicit thermalization of 128 or 256 L^2 would be judged not stationary.
Results: data/README.md.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from isingscale.constants import STATIONARITY_Z, T_C
from isingscale.exact import torus_energy
from isingscale.mc.chains import Chains
from isingscale.mc.thermalization import History, stationarity, thermalize


def relaxation(L: int, *, algorithm: str, chains: int, flips: float, seed: int, T: float):
    """Per-bin chain-averaged deviations (sigma units) and t_eq for random starts at one L."""
    ch = Chains(L, T=T, algorithm=algorithm, seed=seed, chains=chains)
    N = ch.N
    history = History(ch)
    history.run_flips(int(flips * N))
    per_chain = [history.table(c)[1:] for c in range(chains)]
    rows = np.concatenate(per_chain)
    late = rows[:, 0] > flips * N / 2
    e_exact = torus_energy(L, T)
    m_ref = np.abs(rows[late, 3]).mean() / N
    sd_e, sd_m = (-rows[late, 2] / N).std(), (np.abs(rows[late, 3]) / N).std()
    half = [r[r[:, 0] > flips * N / 2] for r in per_chain]
    fpu = sum(h[-1, 0] - h[0, 0] for h in half) / sum(h[-1, 1] - h[0, 1] for h in half) / N
    edges = 2.0 ** np.arange(-3, math.log2(flips) + 1e-9, 0.5)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        means = []  # per chain: (energy - exact) / sd_e, (|m| - ref) / sd_m
        for r in per_chain:
            sel = (r[:, 0] > lo * N) & (r[:, 0] <= hi * N)
            if sel.any():
                means.append(
                    ((-r[sel, 2] / N).mean() - e_exact, (np.abs(r[sel, 3]) / N).mean() - m_ref)
                )
        if len(means) >= 2:
            d = np.array(means) / [sd_e, sd_m]
            bins.append((lo, *d.mean(axis=0), *(d.std(axis=0, ddof=1) / np.sqrt(len(d)))))
    t_eq = math.nan
    for i, (lo, *_rest) in enumerate(bins):
        if all(
            abs(de) <= 0.25 + 3 * se_e and abs(dm) <= 0.25 + 3 * se_m
            for _, de, dm, se_e, se_m in bins[i:]
        ):
            t_eq = lo
            break
    return dict(bins=[b[:3] for b in bins], t_eq=t_eq, fpu=fpu)


def auto_rule(L: int, *, algorithm: str, chains: int, seed: int, T: float) -> dict:
    ch = Chains(L, T=T, algorithm=algorithm, seed=seed, chains=chains)
    t0 = time.perf_counter()
    th = thermalize(ch)
    return dict(
        flips=th.flips,
        stages=th.stages,
        stationary=th.stationary,
        precision=th.flips_per_update_error / th.flips_per_update,
        seconds=time.perf_counter() - t0,
    )


def null_rate(L: int, *, algorithm: str, chains: int, runs: int, T: float) -> dict:
    """The test on chains already in equilibrium (after 512 L^2): how often does it fail?

    Each run thermalizes fresh chains for 512 L^2 flipped spins, then tests a new history
    of 128 L^2 and, continuing, of 256 L^2; counts the testable verdicts and the failures.
    """
    testable = failed = 0
    for seed in range(runs):
        ch = Chains(L, T=T, algorithm=algorithm, seed=1000 + seed, chains=chains)
        History(ch).run_flips(512 * ch.N)
        for total in (128, 256):
            h = History(ch)
            h.run_flips(total * ch.N)
            th = stationarity(h, rule="flips", amount=total)
            testable += th.testable
            failed += th.testable and not th.stationary
    return dict(tests=2 * runs, testable=testable, failed=failed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--L", default="8,16,32,64,128,256,512,1024,2048", help="lattice sizes")
    p.add_argument("--algorithm", default="wolff", choices=("wolff", "sw", "metropolis"))
    p.add_argument("--T", type=float, default=T_C, help="temperature (default Tc)")
    p.add_argument("--chains", type=int, default=16, help="chains per L for the relaxation")
    p.add_argument("--flips", type=float, default=512.0, help="L^2 flipped spins per chain")
    p.add_argument("--auto-chains", type=int, default=2, help="chains of the auto rule")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the auto rule")
    p.add_argument(
        "--null-runs", type=int, default=0, help="runs of the test at equilibrium per L (part 3)"
    )
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.L.split(",")]
    print(f"{a.algorithm} at T = {a.T:.6f}, random starts; work in L^2 flipped spins per chain")
    print(f"auto rule: windows agree and energy at exact within {STATIONARITY_Z:g} se\n")
    print(
        "| L | relaxation chains | t_eq | flips/update / L^2 | auto: L^2 flips per chain "
        "(stages) over seeds | tested half after t_eq | s per auto run |"
    )
    print("|---|---|---|---|---|---|---|")
    for L in sizes:
        t0 = time.perf_counter()
        r = relaxation(L, algorithm=a.algorithm, chains=a.chains, flips=a.flips, seed=1, T=a.T)
        runs = [
            auto_rule(L, algorithm=a.algorithm, chains=a.auto_chains, seed=s, T=a.T)
            for s in range(a.seeds)
        ]
        spent = ", ".join(f"{x['flips']:.0f} ({x['stages']})" for x in runs)
        spent += "" if all(x["stationary"] for x in runs) else " (not all stationary)"
        ok = all(x["flips"] / 2 >= r["t_eq"] for x in runs)
        secs = np.mean([x["seconds"] for x in runs])
        print(
            f"| {L} | {a.chains} | {r['t_eq']:.3g} | {r['fpu']:.3f} | {spent} | "
            f"{'yes' if ok else 'NO'} | {secs:.1f} |",
            flush=True,
        )
        detail = "  ".join(f"{lo:.3g}:{de:+.2f}/{dm:+.2f}" for lo, de, dm in r["bins"])
        print(
            f"<!-- L={L} bins work:dev_e/dev_m (sigma) {detail}; "
            f"{time.perf_counter() - t0:.0f} s -->",
            flush=True,
        )
    if a.null_runs:
        print("\n| L | tests at equilibrium | testable | failed |\n|---|---|---|---|")
        for L in sizes:
            r = null_rate(L, algorithm=a.algorithm, chains=a.auto_chains, runs=a.null_runs, T=a.T)
            print(f"| {L} | {r['tests']} | {r['testable']} | {r['failed']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
