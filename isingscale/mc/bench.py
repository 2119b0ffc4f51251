"""Throughput of the Monte Carlo engine at Tc, side by side with mcising.

Work unit: flipped spins (a Wolff update flips its whole cluster, so for Wolff this is
the summed cluster size; for SW and Metropolis the spins actually flipped). mcising
(the optional ``bench`` extra) counts the same: its ``sweep`` returns the accepted
flips, which are the flipped spins for all three algorithms.

Two measurements, each a ratio of runs made side by side:

- kernel (:func:`kernel_table`): flipped spins per second of the update kernels on
  equilibrated lattices (one Wolff-equilibrated configuration, brought from an ordered
  start, is the starting point of every algorithm and of mcising), on one core (one
  chain, one thread) and on all cores (one chain per thread). Ours and mcising's runs
  alternate in rounds and the ratio is the median over rounds; each row's per-core
  rate is also given relative to the first (smallest) L.
- command (:func:`command_table`): wall time of the whole command a user runs:
  ``isingscale simulate`` (thermalization, calibration, HDF5 output) against
  ``mcising run`` producing the same ensemble (same L, T, algorithm, thermalization
  updates, updates between saves and saved configurations, HDF5 output), each on one
  core, and ours on all cores too; the commands alternate, the best of ``repeats`` counts.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..constants import T_C
from ..io import read_attrs
from .chains import Chains

_WARM_FLIPS = 32  # L^2 flipped spins of Wolff from an ordered start: equilibrated (data/README.md)
_MCISING_NAMES = {"wolff": "wolff", "sw": "swendsen_wang", "metropolis": "metropolis"}


def equilibrated(L: int, *, T: float = T_C, seed: int = 12345) -> np.ndarray:
    """One (L*L,) int8 lattice after Wolff updates worth 32 L^2 flipped spins from all +1."""
    ch = Chains(L, T=T, algorithm="wolff", seed=seed, chains=1)
    ch.spins[:] = 1
    big = 1 << 40
    ch.run_recorded(
        max_flipped=np.array([_WARM_FLIPS * ch.N]), max_updates=np.array([big]), every=big
    )
    return ch.spins[0].copy()


def _sized(run, seconds: float) -> int:
    """Updates per call so that ``run(n)`` (-> (flipped, seconds)) lasts about ``seconds``."""
    n, dt = 1, 0.0
    while dt < seconds / 4:
        _, dt = run(n)
        if dt < seconds / 4:
            n *= 2
    return max(1, int(n * seconds / max(dt, 1e-6)))


def _ours(L: int, *, algorithm: str, spins: np.ndarray, chains: int, T: float):
    """``run(n)``: n updates of every chain on ``chains`` threads -> (flipped, seconds)."""
    ch = Chains(L, T=T, algorithm=algorithm, seed=12345, chains=chains)
    ch.spins[:] = spins
    ones = np.ones(chains, np.int64)

    def run(n: int) -> tuple[int, float]:
        before = int(ch.production.flipped.sum())
        t0 = time.perf_counter()
        ch.produce(ones, interval=n)
        return int(ch.production.flipped.sum()) - before, time.perf_counter() - t0

    return run


def _mcising(L: int, *, algorithm: str, spins: np.ndarray, T: float):
    """``run(n)`` for mcising's engine on one chain, or None when mcising is absent."""
    try:
        from mcising._core import IsingSimulation
    except ImportError:
        return None
    sim = IsingSimulation(L, 1.0, 0.0, 0.0, 0.0, 12345, _MCISING_NAMES[algorithm])
    sim.set_spins(spins.reshape(L, L).astype(np.int8))

    def run(n: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        accepted, _, _ = sim.sweep(n, temperature=T)
        return int(accepted), time.perf_counter() - t0

    return run


def _threads(n: int):
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return previous


def _rates(runs: dict, *, seconds: float, rounds: int) -> dict[str, list[float]]:
    """Alternate the runs for ``rounds`` rounds of ~seconds/rounds each; rates per round."""
    sizes = {k: _sized(run, seconds / rounds) for k, run in runs.items()}
    out: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            flipped, dt = run(sizes[k])
            out[k].append(flipped / dt)
    return out


def kernel_row(
    L: int, algorithm: str, *, threads: int, seconds: float, rounds: int = 3, T: float = T_C
) -> dict:
    """Per-core and all-core rates of ours, mcising's per-core rate, and the median ratio."""
    import numba

    spins = equilibrated(L, T=T)
    previous = _threads(1)
    try:
        runs = {"one_core": _ours(L, algorithm=algorithm, spins=spins, chains=1, T=T)}
        mc = _mcising(L, algorithm=algorithm, spins=spins, T=T)
        if mc is not None:
            runs["mcising"] = mc
        rates = _rates(runs, seconds=seconds, rounds=rounds)
        _threads(threads)
        many = _ours(
            L, algorithm=algorithm, spins=np.tile(spins, (threads, 1)), chains=threads, T=T
        )
        rates["all_cores"] = _rates({"x": many}, seconds=seconds, rounds=1)["x"]
    finally:
        numba.set_num_threads(previous)
    row = dict(L=L, algorithm=algorithm, threads=threads, mcising=math.nan, ratio=math.nan)
    row.update({k: float(np.median(v)) for k, v in rates.items()})
    if "mcising" in rates:
        row["ratio"] = float(np.median(np.array(rates["one_core"]) / np.array(rates["mcising"])))
    return row


def kernel_table(
    sizes, algorithms, *, seconds: float, threads: int, with_mcising: bool = True
) -> list[dict]:
    """One :func:`kernel_row` per (algorithm, L); ``scale`` = per-core rate / first L's."""
    rows = []
    for algorithm in algorithms:
        first = None
        for L in sizes:
            row = kernel_row(L, algorithm, threads=threads, seconds=seconds)
            if not with_mcising:
                row["mcising"], row["ratio"] = math.nan, math.nan
            first = first or row["one_core"]
            row["scale"] = row["one_core"] / first
            rows.append(row)
    return rows


def format_kernel_table(rows: list[dict]) -> str:
    """Plain-text table, rates in millions of flipped spins per second."""
    head = (
        f"{'L':>5} {'algorithm':<11} {'1 core':>8} {'vs L0':>6} {'all cores':>10} "
        f"{'mcising':>8} {'ours/mcising':>13}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        mc = f"{r['mcising'] / 1e6:>8.1f} {r['ratio']:>12.2f}x" if r["ratio"] == r["ratio"] else ""
        lines.append(
            f"{r['L']:>5} {r['algorithm']:<11} {r['one_core'] / 1e6:>8.1f} {r['scale']:>6.2f} "
            f"{r['all_cores'] / 1e6:>10.1f} {mc}"
        )
    threads = rows[0]["threads"] if rows else 0
    lines.append(
        f"M flipped spins/s at Tc on equilibrated lattices; vs L0: per-core rate relative to the "
        f"first L; all cores = {threads} chains on {threads} threads; mcising: one chain, same "
        "lattice, alternating rounds (median ratio)."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Whole commands.


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed: {done.stderr.decode()[-300:]}")
    return time.perf_counter() - t0


def command_row(
    L: int, *, samples: int, algorithm: str = "wolff", threads: int, repeats: int = 2
) -> dict:
    """Wall times of ``isingscale simulate`` (1 core, all cores) and the same ensemble by
    ``mcising run`` (1 core), best of ``repeats`` alternating runs each."""
    exe = shutil.which("mcising")
    env1 = {**os.environ, "NUMBA_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
    ours = [sys.executable, "-m", "isingscale", "simulate", "--L", str(L), "--samples"]
    ours += [str(samples), "--algorithm", algorithm, "--no-progress", "--overwrite", "--out"]
    times: dict[str, list[float]] = {"one_core": [], "all_cores": [], "mcising": []}
    with tempfile.TemporaryDirectory() as tmp:
        one, many = str(Path(tmp) / "one.h5"), str(Path(tmp) / "many.h5")
        for _ in range(repeats):
            times["one_core"].append(_timed([*ours, one, "--chains", "1"], env1))
            times["all_cores"].append(_timed([*ours, many, "--chains", str(threads)], os.environ))
            if exe:
                a = read_attrs(one)
                sweeps = int(a["interval"]) * samples
                mc = [exe, "run", "-L", str(L), "-T", repr(T_C), "--algorithm"]
                mc += [
                    _MCISING_NAMES[algorithm],
                    "--therm",
                    str(round(a["thermalization_updates"])),
                ]
                mc += ["--sweeps", str(sweeps), "--interval", str(a["interval"]), "--mode"]
                mc += ["independent", "--store-configs", "-o", str(Path(tmp) / "mc.h5")]
                times["mcising"].append(_timed(mc, env1))
    best = {k: min(v) if v else math.nan for k, v in times.items()}
    return dict(L=L, samples=samples, algorithm=algorithm, threads=threads, **best)


def format_command_table(rows: list[dict]) -> str:
    head = (
        f"{'L':>5} {'samples':>8} {'algorithm':<10} {'ours 1 core':>12} {'ours all':>9} "
        f"{'mcising':>8} {'mcising/ours 1 core':>20} {'mcising/ours all':>17}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['L']:>5} {r['samples']:>8} {r['algorithm']:<10} {r['one_core']:>11.2f}s "
            f"{r['all_cores']:>8.2f}s {r['mcising']:>7.2f}s "
            f"{r['mcising'] / r['one_core']:>19.2f}x {r['mcising'] / r['all_cores']:>16.2f}x"
        )
    lines.append(
        "wall time of the whole command (start-up, thermalization, saving to HDF5); mcising run "
        "makes the same ensemble (thermalization updates and updates between saves taken from "
        f"ours); all = {rows[0]['threads'] if rows else 0} chains; best of the alternating runs."
    )
    return "\n".join(lines)
