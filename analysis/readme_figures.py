"""The README's figures, regenerated from documented runs with the shipped checkpoint.

    python analysis/readme_figures.py                 # docs/figures/, runs in runs/readme_figures/
    python analysis/readme_figures.py --quick --out /tmp/figs   # a smoke run (tests)

``--quick`` uses tiny sizes (L = 32 lattices, L = 16 elsewhere) and evaluates only nearest and
bicubic at ×2: it checks the script, its figures mean nothing.

Writes three small PNGs (tens of kB each) into ``--out``:

``lattices.png``     ×4 super-resolution 32 → 128 from majority-rule block spins: for each of
                     ``--lattices`` fresh Wolff lattices at L = 128 (seed 0), its block-spin
                     input, the SKILD output and the Monte Carlo lattice itself
                     (:func:`isingscale.show` of the super-resolved file).
``correlators.png``  G2 and -G4c (square) of ``--samples`` SKILD ×4 outputs at ``--L`` from
                     Fourier-coarsened held-out Wolff lattices (input seed 3) against an
                     independent Wolff reference of ``--mc-samples`` lattices (seed 2) and the
                     torus CFT, with ratio panels
                     (:func:`isingscale.evaluation.correlator_figure`).
``evaluation.png``   the table of :func:`isingscale.evaluation.evaluate` (SKILD, nearest, Fourier,
                     bicubic; ×2 and ×4; both input conventions) at L = ``--eval-L`` with
                     ``--eval-samples`` lattices per ensemble (its ``plots/table.png``).

Public API only. Prints what it ran and how long each part took.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import isingscale as isc
from isingscale.evaluation import correlator_figure
from isingscale.evaluation.references import SEED_INPUTS, SEED_TRUTH, mc_ensemble

DEFAULTS = dict(lattices=4, L=32, samples=400, mc_samples=4000, eval_L=32, eval_samples=200)
QUICK = dict(lattices=2, L=16, samples=16, mc_samples=64, eval_L=16, eval_samples=24)
EVAL_FACTORS, EVAL_METHODS = (2, 4), ("skild", "nearest", "fourier", "bicubic")


def lattices_figure(out: Path, work: Path, *, n: int, checkpoint=None, L: int = 128) -> Path:
    """×4 from block spins at L (fresh Monte Carlo, seed 0): input, output, truth rows."""
    res = isc.skild.upsample(
        factor=4,
        L=L,
        samples=n,
        coarsen="block",
        checkpoint=checkpoint,
        out=work / f"x4_block_L{L}.h5",
        overwrite=True,
        progress=False,
    )
    isc.show(res.path, samples=n, out=out)
    return out


def correlators_figure(
    out: Path, work: Path, *, L: int, n: int, n_mc: int, checkpoint=None
) -> Path:
    """×4 from Fourier-coarsened held-out inputs against an independent Monte Carlo reference."""
    reference = mc_ensemble(L, n_mc, SEED_TRUTH, work, progress=False)
    inputs = mc_ensemble(L, n, SEED_INPUTS, work, progress=False)
    coarse = isc.skild.coarsen(
        inputs, factor=4, method="fourier", out=work / f"coarse_L{L}.h5", overwrite=True
    )
    res = isc.skild.upsample(
        coarse,
        factor=4,
        samples=n,
        checkpoint=checkpoint,
        out=work / f"x4_fourier_L{L}.h5",
        overwrite=True,
        progress=False,
    )
    labels = (f"Monte Carlo (seed {SEED_TRUTH})", "SKILD ×4 from Fourier inputs")
    correlator_figure(res.path, reference, out=out, labels=labels)
    return out


def evaluation_figure(
    out: Path,
    work: Path,
    *,
    L: int,
    n: int,
    checkpoint=None,
    factors=EVAL_FACTORS,
    methods=EVAL_METHODS,
) -> Path:
    """evaluate's table at L: SKILD and the interpolation baselines, ×2 and ×4 (a fresh run:
    the previous one in ``work`` is removed)."""
    shutil.rmtree(work / f"evaluate_L{L}", ignore_errors=True)
    res = isc.evaluation.evaluate(
        work / f"evaluate_L{L}",
        L=L,
        factors=factors,
        methods=methods,
        coarsen=("fourier", "block"),
        samples=n,
        checkpoint=checkpoint,
        progress=False,
    )
    shutil.copyfile(res.out / "plots" / "table.png", out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="docs/figures", help="folder of the PNGs (docs/figures)")
    p.add_argument("--workdir", default="runs/readme_figures", help="ensembles and runs go here")
    p.add_argument("--checkpoint", default=None, help="SKILD checkpoint (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not the figures")
    for name, value in DEFAULTS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"({value})")
    a = p.parse_args(argv)
    size = {k: getattr(a, k) or (QUICK if a.quick else DEFAULTS)[k] for k in DEFAULTS}
    out, work = Path(a.out), Path(a.workdir)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    big = 32 if a.quick else 128
    parts = (
        (
            f"lattices.png: x4 block spins {big // 4} -> {big}, {size['lattices']} lattices",
            lambda: lattices_figure(
                out / "lattices.png", work, n=size["lattices"], checkpoint=a.checkpoint, L=big
            ),
        ),
        (
            f"correlators.png: x4 Fourier at L = {size['L']}, {size['samples']} SKILD "
            f"lattices against {size['mc_samples']} Monte Carlo",
            lambda: correlators_figure(
                out / "correlators.png",
                work,
                L=size["L"],
                n=size["samples"],
                n_mc=size["mc_samples"],
                checkpoint=a.checkpoint,
            ),
        ),
        (
            f"evaluation.png: evaluate at L = {size['eval_L']}, {size['eval_samples']} lattices",
            lambda: evaluation_figure(
                out / "evaluation.png",
                work,
                L=size["eval_L"],
                n=size["eval_samples"],
                checkpoint=a.checkpoint,
                **({"factors": (2,), "methods": ("nearest", "bicubic")} if a.quick else {}),
            ),
        ),
    )
    for what, make in parts:
        t0 = time.perf_counter()
        path = make()
        kb = path.stat().st_size / 1e3
        print(f"{what}: {path} ({kb:.0f} kB, {time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
