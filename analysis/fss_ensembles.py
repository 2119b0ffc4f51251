"""Wolff ensembles at Tc for the finite-size-scaling estimate of eta and gamma/nu.

    python analysis/fss_ensembles.py --sizes 32,64,128,256,512,1024 \\
        --samples 16000,16000,8000,8000,4000,2000 --out data/fss
    isingscale scaling data/fss/fss_L*.h5 --out data/fss/scaling

One file per L (``OUT/fss_L<L>.h5``, seed SEED + L), then one line per L: wall time, the
thermalization used, the energy per site against Kaufman's exact torus value, the Binder
cumulant, and a stationarity check (<m^2> of the first and second half of the saved samples,
which differ if the first saves came before equilibrium).

Thermalization (``--thermalize auto``): from a random start at Tc, Wolff clusters stay tiny
(~10 spins) for about 0.065 L^2 updates, then reach their equilibrium size ~1.07 L^1.75 within
a few thousand updates (measured: L = 256, 512, 1024 reach it after ~4,500, ~17,000 and
~68,000 updates). ``auto`` runs ceil(0.08 L^2) updates (at least 2,000): past that ramp, plus
hundreds of sweeps at equilibrium. Saves use the ``fixed`` schedule with ceil(d L^2 / (1.074
L^1.75)) updates between saves (d = --decorrelate, the equilibrium mean cluster size measured
at L = 128 and 512), since a calibration over the second half of such a thermalization would
average in the ramp. ``--thermalize default`` uses ``simulate``'s own defaults instead.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import isingscale as isc
from isingscale.stats import mean_error

RAMP_UPDATES_PER_SITE = 0.08  # thermalization updates per site (auto): past the small-cluster ramp
CLUSTER_AMPLITUDE = 1.074  # equilibrium mean Wolff cluster size / L^1.75 at Tc


def auto_thermalize(L: int) -> int:
    return max(2000, math.ceil(RAMP_UPDATES_PER_SITE * L * L))


def auto_interval(L: int, decorrelate: float) -> int:
    return max(1, math.ceil(decorrelate * L * L / (CLUSTER_AMPLITUDE * L**1.75)))


def stationarity_z(m: np.ndarray, chain: np.ndarray) -> float:
    """z of <m^2> between the first and second half of the saved samples."""
    half = len(m) // 2
    a, ea, _ = mean_error(m[:half] ** 2, chain=chain[:half])
    b, eb, _ = mean_error(m[half:] ** 2, chain=chain[half:])
    return (a - b) / math.hypot(ea, eb)


def run(L: int, samples: int, *, args) -> dict:
    path = Path(args.out) / f"fss_L{L}.h5"
    kw = dict(samples=samples, seed=args.seed + L, decorrelate=args.decorrelate, progress=True)
    kw.update(chains=args.chains, out=path, overwrite=True)
    if args.thermalize == "auto":
        kw.update(thermalize=auto_thermalize(L), schedule="fixed")
        kw.update(interval=auto_interval(L, args.decorrelate))
    t0 = time.perf_counter()
    res = isc.simulate(L, **kw)
    seconds = time.perf_counter() - t0
    data = isc.read_ensemble(path, datasets=("magnetization", "chain"))
    return {
        "L": L,
        "samples": res.n_samples,
        "seconds": seconds,
        "thermalize": kw.get("thermalize", "default"),
        "interval": res.updates_between_saves,
        "energy": res.energy,
        "energy_err": res.energy_error,
        "energy_exact": res.energy_exact,
        "binder": res.binder,
        "binder_err": res.binder_error,
        "stationarity_z": stationarity_z(data["magnetization"], data["chain"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="32,64,128,256,512,1024")
    p.add_argument("--samples", default="16000,16000,8000,8000,4000,2000", help="one, or one per L")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--decorrelate", type=float, default=2.0)
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--thermalize", choices=("auto", "default"), default="auto")
    p.add_argument("--out", default="data/fss")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    samples = [int(s) for s in args.samples.split(",")]
    samples = samples * len(sizes) if len(samples) == 1 else samples
    if len(samples) != len(sizes):
        p.error(f"{len(samples)} sample counts for {len(sizes)} sizes")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(
        "| L | samples | seconds | thermalize | interval | u - u_exact (z) | U4 | stationarity z |"
    )
    print("|---|---|---|---|---|---|---|---|")
    total = 0.0
    for L, n in zip(sizes, samples):
        r = run(L, n, args=args)
        total += r["seconds"]
        dz = (r["energy"] - r["energy_exact"]) / r["energy_err"]
        print(
            f"| {L} | {r['samples']} | {r['seconds']:.0f} | {r['thermalize']} | {r['interval']} | "
            f"{r['energy'] - r['energy_exact']:+.1e} ({dz:+.1f}) | "
            f"{r['binder']:.4f} ± {r['binder_err']:.4f} | {r['stationarity_z']:+.1f} |",
            flush=True,
        )
    print(f"total {total / 60:.1f} min")


if __name__ == "__main__":
    main()
