"""``isingscale evaluate``: every super-resolution method at every factor against Monte Carlo."""

from __future__ import annotations

import click

from . import bench, main
from .options import device_option, lattice_options, open_source

_in_file = click.Path(dir_okay=False)


@main.command()
# Main options.
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Output directory: evaluation.nc, report.md, plots/, parts/, ensembles/.",
)
@click.option(
    "--factors",
    default="2,4,8",
    show_default=True,
    metavar="F,F,...",
    help="Super-resolution factors (> 1), comma-separated.",
)
@click.option(
    "--methods",
    default="skild,nearest,fourier,bicubic",
    show_default=True,
    metavar="NAME,...",
    help="Methods, comma-separated: skild, ssd, sr3, cnn, cnn-ki, nearest, fourier, bicubic.",
)
@click.option(
    "--coarsen",
    default="fourier,block",
    show_default=True,
    metavar="CONV,...",
    help="Coarse-graining of the inputs: fourier (truncation) and/or block (majority rule).",
)
# Ground truth.
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=4),
    default=None,
    metavar="N",
    show_default="32, or --data's L",
    help="Output lattice size (the ground truth's L).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    metavar="N",
    help="Lattices in the reference and in the inputs (each), hence per method.",
)
@click.option(
    "--data",
    default=None,
    metavar="SOURCE",
    show_default="simulate (seeds 2 and 3)",
    help="Ground truth from lattices (an ensemble file or any lattice source): first half = "
    "inputs, second half = reference.",
)
@lattice_options()
# Checkpoints.
@click.option(
    "--checkpoint",
    type=_in_file,
    default=None,
    metavar="CKPT",
    show_default="data/checkpoints/skild_ising_L32.safetensors",
    help="SKILD checkpoint for skild and ssd.",
)
@click.option(
    "--sr3-checkpoint",
    "sr3",
    multiple=True,
    metavar="F=PATH",
    help="SR3 baseline checkpoint for factor F (isingscale train sr3); repeatable, one per factor.",
)
@click.option(
    "--cnn-checkpoint",
    type=_in_file,
    default=None,
    metavar="PATH",
    help="×2 CNN checkpoint for cnn and cnn-ki.",
)
# Run control.
@click.option(
    "--resume",
    is_flag=True,
    help="Continue DIR: skip parts already measured, reuse MC and coarse files.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    show_default="in-process",
    help="Measure on a dask.distributed scheduler: 'local' (a LocalCluster here) or tcp://host:8786.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="INT",
    help="Seed of the methods' noise.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    metavar="INT",
    help="Lattices per method call.",
)
@device_option
# I/O-related.
@click.option(
    "--plots/--no-plots", default=True, show_default=True, help="Write PNG figures to DIR/plots/."
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Progress bars and one log line per part on stderr.",
)
def evaluate(
    out,
    factors,
    methods,
    coarsen,
    L,
    samples,
    data,
    values,
    T,
    binarize,
    checkpoint,
    sr3,
    cnn_checkpoint,
    resume,
    scheduler,
    seed,
    batch,
    device,
    plots,
    progress,
):
    """Super-resolution methods against Monte Carlo: a method × factor table of agreement and cost.

    Simulates two independent Monte Carlo ensembles at L (or splits --data), coarse-grains
    the inputs with each convention, runs every method, and compares G2, square G4c, energy,
    |m|, Binder U4 and S(k) with the reference. Writes DIR/evaluation.nc, DIR/plots/ and
    DIR/report.md. A method without a checkpoint for a factor, or not accepting an input
    convention, is n/a. Interrupt at any time; --resume continues.

    Examples:

    \b
      isingscale evaluate --factors 2,4 --methods nearest,fourier,bicubic --samples 500 --out eval/
      isingscale evaluate --methods skild,sr3,cnn --sr3-checkpoint 4=runs/sr3/model.safetensors \\
          --cnn-checkpoint runs/cnn_x2/model.safetensors --factors 2,4,8 --out eval/
      isingscale evaluate --data data/ising_L32_test.h5 --factors 4 --out eval/ --resume
      isingscale evaluate --L 128 --samples 1000 --scheduler tcp://scheduler:8786 --out eval128/
    """
    from ..evaluation import evaluate as run

    res = run(
        out,
        L=L,
        factors=factors,
        methods=methods,
        coarsen=coarsen,
        samples=samples,
        data=open_source(data, values=values, T=T, binarize=binarize),
        checkpoint=checkpoint,
        sr3_checkpoints=list(sr3),
        cnn_checkpoint=cnn_checkpoint,
        seed=seed,
        resume=resume,
        scheduler=scheduler,
        batch=batch,
        device=device,
        progress=progress,
        plots=plots,
    )
    click.echo(res.summary())


@bench.command("kernel-interp")
@click.option(
    "--cnn",
    "cnn2",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="CKPT",
    help="×2 CNN checkpoint (isingscale train cnn --factor 2).",
)
@click.option(
    "--native",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="CKPT",
    help="CNN trained natively at the target factor (isingscale train cnn --factor F).",
)
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=8),
    default=32,
    show_default=True,
    metavar="N",
    help="Output lattice size.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    metavar="N",
    help="Lattices per method (and in the Monte Carlo reference).",
)
@click.option(
    "--out",
    "workdir",
    type=click.Path(file_okay=False),
    default="bench_kernel_interp",
    show_default=True,
    metavar="DIR",
    help="Work directory: Monte Carlo and output ensembles.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="INT",
    help="Seed of the spin sampling.",
)
def kernel_interp(cnn2, native, L, samples, workdir, seed):
    """Kernel interpolation: the ×2 CNN run at ×F in one pass vs a native ×F CNN vs ×2 repeated.

    Block-spin inputs from held-out Monte Carlo (seed 3), reference seed 2; G2 and energy
    against Monte Carlo and seconds per lattice, as ratios to the native network.
    """
    from pathlib import Path

    from ..baselines.cnn import load_cnn
    from ..evaluation.kernel_interp import compare_kernel_interpolation
    from ..evaluation.references import SEED_INPUTS, SEED_TRUTH, mc_ensemble

    model2, model_native = load_cnn(cnn2), load_cnn(native)
    work = Path(workdir)
    truth = mc_ensemble(L, samples, SEED_TRUTH, work)
    inputs = mc_ensemble(L, samples, SEED_INPUTS, work)
    res = compare_kernel_interpolation(
        model2,
        model_native,
        inputs=inputs,
        truth=truth,
        workdir=work,
        factor=model_native.factor,
        samples=samples,
        seed=seed,
        progress=True,
    )
    base = res["methods"]["native"]["seconds_per_lattice"]
    click.echo(
        f"×{res['factor']} CNN super-resolution, L = {res['L']}, {res['samples']} lattices "
        f"(MC energy {res['mc']['energy']:.4f} ± {res['mc']['energy_err']:.4f}):"
    )
    click.echo(
        "| network | G2 χ²/dof | G2 max|z| | G2(1) Δ | G2(L/4) Δ | Δu/u | ms/lattice | × native "
        "time |"
    )
    click.echo("|---|---|---|---|---|---|---|---|")
    for name, row in res["methods"].items():
        t = row["seconds_per_lattice"]
        click.echo(
            f"| {name} | {row['G2_chi2_dof']:.2f} | {row['G2_max_abs_z']:.2f} | "
            f"{100 * row['G2_rel_r1']:+.1f} % "
            f"| {100 * row['G2_rel_rL4']:+.1f} % | {100 * row['energy']['rel_dev']:+.2f} % | "
            f"{1e3 * t:.3g} "
            f"| {t / base:.2f} |"
        )
