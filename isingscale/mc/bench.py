"""Throughput benchmark of the Monte Carlo kernels: flipped spins per second at Tc.

Work unit: flipped spins (a Wolff update flips its whole cluster, so for Wolff this is
the summed cluster size; for SW and Metropolis the spins actually flipped). Each
measurement warms the chains up first (random starts have small clusters), then times
whole kernel calls sized to last about ``seconds``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..constants import T_C
from .simulate import _Engine


def _config(L: int, algorithm: str, chains: int, T: float) -> dict:
    return dict(
        L=L,
        T=T,
        algorithm=algorithm,
        seed=12345,
        chains=chains,
        thermalize=0,
        decorrelate=2.0,
        schedule="fixed",
        interval=1,
    )


def _timed_updates(engine: _Engine, n: int) -> tuple[int, int, float]:
    """Run ``n`` updates on every chain; return (flipped, updates, seconds)."""
    engine.interval = n
    f0, u0 = engine.flipped.sum(), engine.updates.sum()
    t0 = time.perf_counter()
    engine.produce(np.ones(engine.C, np.int64))
    dt = time.perf_counter() - t0
    return int(engine.flipped.sum() - f0), int(engine.updates.sum() - u0), dt


def _calibrate_and_time(run, seconds: float) -> tuple[int, int, float, int]:
    """Compile, warm up for ~seconds/2 (doubling ``run(n)``), then time one call of ~seconds."""
    run(1)  # compilation (or cache load) happens here, untimed
    n, spent, warm, dt = 1, 0.0, 1, 0.0
    while spent < seconds / 2:
        _, _, dt = run(n)
        spent += dt
        warm += n
        n *= 2
    n = max(1, int(n / 2 * seconds / max(dt, 1e-6)))
    flipped, updates, dt = run(n)
    return flipped, updates, dt, warm


def ours(L: int, algorithm: str, *, chains: int, seconds: float, T: float = T_C) -> dict:
    """Flipped spins/s of ``chains`` parallel chains on ``chains`` numba threads."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(chains, numba.config.NUMBA_NUM_THREADS))
    try:
        engine = _Engine(_config(L, algorithm, chains, T))
        flipped, updates, dt, warm = _calibrate_and_time(
            lambda n: _timed_updates(engine, n), seconds
        )
    finally:
        numba.set_num_threads(previous)
    return {"rate": flipped / dt, "flips_per_update": flipped / updates, "warmup_updates": warm}


def mcising_wolff(
    L: int, *, seconds: float, T: float = T_C, warmup_updates: int = 0
) -> dict | None:
    """Flipped spins/s of mcising's Wolff on one chain, or None if mcising is absent.

    mcising's ``IsingSimulation.sweep`` returns (accepted, attempted, clusters); for Wolff
    ``accepted`` is the summed cluster size, i.e. the flipped spins, counted by mcising itself.
    """
    try:
        from mcising._core import IsingSimulation
    except ImportError:
        return None
    sim = IsingSimulation(L, 1.0, 0.0, 0.0, 0.0, 12345, "wolff")
    if warmup_updates:
        sim.sweep(warmup_updates, temperature=T)

    def run(n):
        t0 = time.perf_counter()
        accepted, _, clusters = sim.sweep(n, temperature=T)
        return accepted, clusters, time.perf_counter() - t0

    flipped, updates, dt, _ = _calibrate_and_time(run, seconds)
    return {"rate": flipped / dt, "flips_per_update": flipped / updates}


def bench_table(
    sizes, algorithms, *, seconds: float, threads: int, with_mcising: bool = True
) -> list[dict]:
    """One row per (L, algorithm): one-core and all-core rates and mcising's Wolff rate."""
    rows = []
    for L in sizes:
        for algorithm in algorithms:
            one = ours(L, algorithm, chains=1, seconds=seconds)
            many = ours(L, algorithm, chains=threads, seconds=seconds)
            ref = None
            if with_mcising and algorithm == "wolff":
                ref = mcising_wolff(L, seconds=seconds, warmup_updates=one["warmup_updates"])
            rows.append(
                dict(
                    L=L,
                    algorithm=algorithm,
                    threads=threads,
                    one_core=one["rate"],
                    all_cores=many["rate"],
                    flips_per_update=one["flips_per_update"],
                    mcising=ref["rate"] if ref else math.nan,
                    mcising_flips_per_update=ref["flips_per_update"] if ref else math.nan,
                )
            )
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text table, rates in millions of flipped spins per second."""
    head = (
        f"{'L':>5} {'algorithm':<11} {'1 core':>9} {'all cores':>10} {'scaling':>8} "
        f"{'flips/upd':>10} {'mcising':>9} {'ours/mcising':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = r["one_core"] / r["mcising"] if r["mcising"] == r["mcising"] else math.nan
        lines.append(
            f"{r['L']:>5} {r['algorithm']:<11} {r['one_core'] / 1e6:>9.1f} {r['all_cores'] / 1e6:>10.1f} "
            f"{r['all_cores'] / r['one_core']:>7.2f}x {r['flips_per_update']:>10.1f} "
            + (
                f"{r['mcising'] / 1e6:>9.1f} {ratio:>12.2f}x"
                if ratio == ratio
                else f"{'-':>9} {'-':>13}"
            )
        )
    threads = rows[0]["threads"] if rows else 0
    lines.append(
        f"M flipped spins/s at Tc; all cores = {threads} chains on {threads} threads; "
        "mcising: its Wolff on one chain, same T and warm-up."
    )
    return "\n".join(lines)
