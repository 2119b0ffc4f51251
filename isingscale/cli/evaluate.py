"""``isingscale evaluate``: every super-resolution method at every factor against Monte Carlo."""

from __future__ import annotations

import click

from . import main
from ._options import device_option

_in_file = click.Path(dir_okay=False)


@main.command()
# Main options.
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Output directory: evaluation.nc, report.md, plots/, parts/, ensembles/.")
@click.option("--factors", default="2,4,8", show_default=True, metavar="F,F,...",
              help="Super-resolution factors (> 1), comma-separated.")
@click.option("--methods", default="skild,nearest,fourier,bicubic", show_default=True, metavar="NAME,...",
              help="Methods, comma-separated: skild, ssd, conditional, cnn, cnn-ki, nearest, fourier, bicubic.")
@click.option("--coarsen", default="fourier,block", show_default=True, metavar="CONV,...",
              help="Coarse-graining of the inputs: fourier (truncation) and/or block (majority rule).")
# Ground truth.
@click.option("--L", "L", type=click.IntRange(min=4), default=None, metavar="N", show_default="32, or --data's L",
              help="Output lattice size (the ground truth's L).")
@click.option("--samples", type=click.IntRange(min=2), default=1000, show_default=True, metavar="N",
              help="Lattices in the reference and in the inputs (each), hence per method.")
@click.option("--data", type=_in_file, default=None, metavar="FILE.h5", show_default="simulate (seeds 2 and 3)",
              help="Ground truth from a file: first half = inputs, second half = reference.")
# Checkpoints.
@click.option("--checkpoint", type=_in_file, default=None, metavar="CKPT",
              show_default="data/checkpoints/skild_ising_L32.safetensors",
              help="SKILD checkpoint for skild and ssd.")
@click.option("--conditional-checkpoint", "conditional", multiple=True, metavar="F=PATH",
              help="Conditional (SR3-style) checkpoint for factor F; repeatable, one per factor.")
@click.option("--cnn-checkpoint", type=_in_file, default=None, metavar="PATH",
              help="×2 CNN checkpoint for cnn and cnn-ki.")
# Run control.
@click.option("--resume", is_flag=True, help="Continue DIR: skip parts already measured, reuse MC and coarse files.")
@click.option("--scheduler", default=None, metavar="ADDRESS", show_default="in-process",
              help="Measure on a dask.distributed scheduler: 'local' (a LocalCluster here) or tcp://host:8786.")
@click.option("--seed", type=int, default=0, show_default=True, metavar="INT", help="Seed of the methods' noise.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True, metavar="INT",
              help="Lattices per method call.")
@device_option
# I/O-related.
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write PNG figures to DIR/plots/.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bars and one log line per part on stderr.")
def evaluate(out, factors, methods, coarsen, L, samples, data, checkpoint, conditional, cnn_checkpoint, resume,
             scheduler, seed, batch, device, plots, progress):
    """Compare super-resolution methods with Monte Carlo: a method × factor table of agreement and cost.

    Simulates two independent Monte Carlo ensembles at L (or splits --data), coarse-grains
    the inputs with each convention, runs every method, and compares G2, square G4c, energy,
    |m|, Binder U4 and S(k) with the reference. Writes DIR/evaluation.nc, DIR/plots/ and
    DIR/report.md. A method without a checkpoint for a factor, or not accepting an input
    convention, is n/a. Interrupt at any time; --resume continues.

    Examples:

    \b
      isingscale evaluate --factors 2,4 --methods nearest,fourier,bicubic --L 32 --samples 500 --out eval/
      isingscale evaluate --methods skild,conditional,cnn --conditional-checkpoint 4=runs/cond_x4/model.safetensors \\
          --cnn-checkpoint runs/cnn/model.pt --factors 2,4,8 --out eval/
      isingscale evaluate --data data/ising_L32_test.h5 --factors 4 --out eval/ --resume
      isingscale evaluate --L 128 --samples 1000 --scheduler tcp://scheduler:8786 --out eval128/
    """
    from ..evaluation import evaluate as run

    res = run(out, L=L, factors=factors, methods=methods, coarsen=coarsen, samples=samples, data=data,
              checkpoint=checkpoint, conditional_checkpoints=list(conditional), cnn_checkpoint=cnn_checkpoint,
              seed=seed, resume=resume, scheduler=scheduler, batch=batch, device=device, progress=progress,
              plots=plots)
    click.echo(res.summary())
