"""``isingscale generate | coarsen | upsample`` and ``bench skild``: wrappers over isingscale.skild.

``upsample`` ends with the comparison against its Monte Carlo ground truth, computed by
:func:`isingscale.evaluation.compare` after the file is written (the model package does not
judge itself); an SR3 baseline checkpoint runs through :func:`isingscale.baselines.sr3.upsample`,
an image checkpoint with ``--images`` through :func:`isingscale.evaluation.images.upsample_images`.
"""

from __future__ import annotations

import click

from . import bench, main
from .options import device_option, lattice_options, open_source

_out_file = click.Path(dir_okay=False)
_in_file = click.Path(dir_okay=False)
_sampler = click.option(
    "--sampler",
    type=click.Choice(["ddpm", "ddim", "sde"]),
    default=None,
    show_default="sde",
    help="ddpm: ancestral per-frequency sampler; ddim: deterministic Heun ODE sampler; "
    "sde: Heun ODE steps with forward re-noising (churn).",
)
_steps = click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="per octave: 20 ddpm, 6 ddim, 10 sde",
    help="Reverse steps.",
)
_sweeps = click.option(
    "--sweeps",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="K",
    help="Exact heat-bath sweeps at the checkpoint's T on the sampled spins (repairs the lattice "
    "scale; a stage from block spins keeps its output's majority image). 0: the diffusion model "
    "alone.",
)
_checkpoint = click.option(
    "--checkpoint",
    type=_in_file,
    default=None,
    metavar="CKPT",
    show_default="data/checkpoints/skild_ising_L32.safetensors",
    help="SKILD checkpoint (.safetensors).",
)


def _threads(device: str) -> None:
    import torch

    from .options import default_threads

    if device != "cuda":
        torch.set_num_threads(default_threads())


@main.command()
@_checkpoint
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=2),
    required=True,
    metavar="N",
    help="Lattice size (divisible by 2**depth of the network).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    metavar="INT",
    help="Lattices.",
)
@click.option(
    "--out",
    type=_out_file,
    required=True,
    metavar="FILE.h5|FILE.npz",
    help="Output ensemble (kind=generated); an .npz of uint8 images for an image checkpoint.",
)
@_steps
@_sampler
@_sweeps
@click.option(
    "--coarse-stage/--no-coarse-stage",
    default=True,
    show_default=True,
    help="Draw the lowest modes with the checkpoint's coarse stage, where it has one (L >= twice "
    "its size); "
    "default steps with it: 7.3 per octave for sde.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, metavar="INT", help="Seed of the noise."
)
@device_option
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    metavar="INT",
    help="Lattices per batch.",
)
@click.option("--save-field", is_flag=True, help="Also store the continuous pre-sign field.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
def generate(
    checkpoint,
    L,
    samples,
    out,
    steps,
    sampler,
    sweeps,
    coarse_stage,
    seed,
    device,
    batch,
    save_field,
    overwrite,
    progress,
):
    """Generate lattices from noise with a SKILD checkpoint (start at s_max, run to s = 0).

    Examples:

    \b
    isingscale generate --L 64 --samples 256 --out gen_L64.h5
    isingscale generate --checkpoint runs/img64/model.safetensors --L 64 --samples 16 --out g.npz
    """
    from ..skild import generate as _generate
    from ..skild import generate_summary

    _threads(device)
    path = _generate(
        checkpoint,
        L=L,
        samples=samples,
        out=out,
        steps=steps,
        sampler=sampler,
        seed=seed,
        device=device,
        batch=batch,
        save_field=save_field,
        sweeps=sweeps,
        coarse_stage=coarse_stage,
        overwrite=overwrite,
        progress=progress,
    )
    click.echo(
        f"wrote {path}"
        + (
            f" ({sweeps} heat-bath sweep{'s' if sweeps > 1 else ''} after sampling)"
            if sweeps
            else ""
        )
    )
    if path.suffix != ".npz":
        click.echo(generate_summary(path))


@main.command()
@click.argument("input_path", metavar="SOURCE")
@click.option(
    "--factor",
    type=float,
    required=True,
    metavar="F",
    help="Coarse-graining factor > 1 (fourier: any, n = round(L/F); block: integer dividing L).",
)
@click.option(
    "--method",
    type=click.Choice(["fourier", "block"]),
    default="fourier",
    show_default=True,
    help="fourier: low-band field (float 'field', fine amplitude scale); block: majority rule (±1 "
    "'spins').",
)
@click.option(
    "--out", type=_out_file, required=True, metavar="OUT.h5", help="Output ensemble (kind=coarse)."
)
@lattice_options()
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def coarsen(input_path, factor, method, out, values, T, binarize, overwrite):
    """Coarse-grain lattices: Fourier truncation or majority-rule block spins.

    SOURCE is an ensemble file or any lattice source (FILE.h5:/dataset, .npy, .npz, a PNG
    folder; see README "Lattices from anywhere").

    Fourier: orthonormal low-band coefficients (|q| < n/2) divided by f = L/n, i.e. the
    ideal low-pass of the lattice sampled on the coarse grid. Block: ties take the block's
    top-left spin.

    Examples:

    \b
    isingscale coarsen ising_L32.h5 --factor 4 --method fourier --out coarse8.h5
    isingscale coarsen ising_L32.h5 --factor 2 --method block --out block16.h5
    isingscale coarsen skild_pngs/ --values 0,254 --factor 4 --out coarse.h5
    """
    from ..errors import IsingScaleError
    from ..skild import coarsen as _coarsen

    if not factor > 1:
        raise IsingScaleError(f"factor must be greater than 1, got {factor}")
    src = open_source(input_path, values=values, T=T, binarize=binarize)
    click.echo(f"wrote {_coarsen(src, factor=factor, method=method, out=out, overwrite=overwrite)}")


@main.command()
@click.option(
    "--factor",
    type=float,
    required=True,
    metavar="F",
    help="Upsampling factor F > 1, non-integer allowed.",
)
@click.option(
    "--input",
    "input_path",
    default=None,
    metavar="SOURCE",
    help="Coarse lattices, any lattice source: a continuous field = Fourier-coarsened, ±1 "
    "spins = block spins (--binarize: a field's signs, as block spins).  Default: fresh Monte "
    "Carlo lattices, coarse-grained here and used as ground truth.",
)
@click.option(
    "--images",
    "images",
    type=click.Path(),
    default=None,
    metavar="DIR",
    help="Original images (folder or file; PNG/JPEG, .npy/.npz, CIFAR-10 batches): DCT-coarsened "
    "by F, "
    "super-resolved with an image checkpoint, scored by PSNR/SSIM/spectrum error. Writes .npz + "
    ".md.",
)
@click.option(
    "--size",
    type=click.IntRange(min=8),
    default=None,
    metavar="N",
    show_default="checkpoint's size",
    help="Fine image size N x N the originals are resized to (with --images).",
)
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=4),
    default=None,
    metavar="N",
    show_default="checkpoint's L",
    help="Fine size of the fresh Monte Carlo ground truth (without --input).",
)
@click.option(
    "--coarsen",
    "coarsen_method",
    type=click.Choice(["fourier", "block"]),
    default="fourier",
    show_default=True,
    help="How fresh Monte Carlo lattices are coarse-grained (without --input).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="all / 64 fresh",
    help="Lattices to super-resolve.",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="K",
    help="Apply the factor K times (e.g. 32 -> 128 -> 512).",
)
@_checkpoint
@_steps
@_sampler
@click.option(
    "--s-offset",
    type=click.FloatRange(0, 2),
    default=None,
    metavar="OCTAVES",
    show_default="0 for Fourier inputs and images, 1 for block spins",
    help="Start at s* = log2 F + offset.",
)
@_sweeps
@click.option(
    "--out",
    type=_out_file,
    default=None,
    metavar="FILE.h5",
    show_default="data/upsample_x{F}-NNNN.h5, first unused",
    help="Output ensemble (kind=superresolved).",
)
@click.option("--save-field", is_flag=True, help="Also store the continuous pre-sign field.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="INT",
    help="Seed (Monte Carlo and noise).",
)
@device_option
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    metavar="INT",
    help="Lattices per batch.",
)
@lattice_options(temperature=False)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
def upsample(
    factor,
    input_path,
    images,
    size,
    L,
    coarsen_method,
    samples,
    repeat,
    checkpoint,
    steps,
    sampler,
    s_offset,
    sweeps,
    out,
    save_field,
    seed,
    device,
    batch,
    values,
    binarize,
    overwrite,
    progress,
):
    """Super-resolve coarse lattices by any factor with the unconditional SKILD model.

    Embeds the coarse spectrum, noises it to s* = log2 F and runs the reverse process from
    s* to 0. Without --input, simulates fresh Monte Carlo lattices, coarse-grains them, and
    ends with a comparison to that ground truth (energy, |m|, G2 / G4c).

    Examples:

    \b
    isingscale upsample --factor 4
    isingscale upsample --factor 4 --L 64 --samples 512 --coarsen block --out sr_x4.h5
    isingscale upsample --factor 2.5 --input coarse.h5 --out sr.h5 --sampler ddpm --steps 60
    isingscale upsample --factor 2 --repeat 2 --L 64 --coarsen block --out sr.h5
    isingscale upsample --factor 4 --sweeps 1
    isingscale upsample --images photos/ --factor 4 --checkpoint runs/img64/model.safetensors
    """
    from ..errors import IsingScaleError
    from ..io import numbered_path

    _threads(device)
    common = dict(samples=samples, steps=steps, seed=seed, device=device, batch=batch)
    common.update(overwrite=overwrite, progress=progress)
    if images is not None:
        if input_path is not None or repeat != 1 or save_field or sweeps:
            raise IsingScaleError(
                "--images does not combine with --input, --repeat, --save-field or --sweeps"
            )
        from ..evaluation.images import upsample_images

        res = upsample_images(
            images,
            factor=factor,
            out=out,
            checkpoint=checkpoint,
            size=size,
            sampler=sampler,
            s_offset=s_offset,
            **common,
        )
        click.echo(res.summary())
        return
    common.update(L=L, coarsen=coarsen_method, repeat=repeat, save_field=save_field, sweeps=sweeps)
    input_path = open_source(input_path, values=values, binarize=binarize)
    out = out or numbered_path(f"upsample_x{factor:g}")
    if _is_sr3(checkpoint):
        from ..baselines import sr3

        if sampler is not None or s_offset is not None:
            raise IsingScaleError(
                "an SR3 checkpoint runs its own sampler: no --sampler or --s-offset"
            )
        res = sr3.upsample(input_path, factor=factor, out=out, checkpoint=checkpoint, **common)
    else:
        from ..skild import upsample as run

        res = run(
            input_path,
            factor=factor,
            out=out,
            checkpoint=checkpoint,
            sampler=sampler,
            s_offset=s_offset,
            **common,
        )
    click.echo(res.summary())
    if res.ground_truth is not None:
        _compare(res.path, res.ground_truth)


def _is_sr3(checkpoint) -> bool:
    """Whether a --checkpoint is an SR3 baseline's (task conditional-sr)."""
    if checkpoint is None:
        return False
    from ..skild.checkpoint import read_checkpoint

    return read_checkpoint(checkpoint)[0].get("task") == "conditional-sr"


def _compare(path, truth) -> None:
    """upsample's closing comparison: isingscale.evaluation.compare of the output and its truth,
    and its figure (isingscale.evaluation.upsample_figure) as <output stem>.png."""
    from pathlib import Path

    from ..evaluation import compare, upsample_figure

    click.echo(
        f"comparison with the ground truth {truth} (the input was coarse-grained from it, so the "
        "two are correlated and z understates differences; 'isingscale evaluate' compares "
        "independent ensembles):"
    )
    comparison = compare(path, truth)
    click.echo(comparison.summary())
    figure = Path(path).with_suffix(".png")
    upsample_figure(path, truth, out=figure, measured=comparison.measured)
    click.echo(f"figure: {figure}")


@bench.command("skild")
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=16),
    default=128,
    show_default=True,
    metavar="N",
    help="Output lattice size.",
)
@click.option(
    "--factor",
    type=click.FloatRange(min=1, min_open=True),
    default=4.0,
    show_default=True,
    metavar="F",
    help="Super-resolution factor of the upsample command.",
)
@click.option(
    "--coarsen",
    type=click.Choice(["block", "fourier"]),
    default="block",
    show_default=True,
    help="Coarse inputs of the upsample command.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    metavar="INT",
    help="Lattices per command.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="INT",
    help="Runs per command and tree (median).",
)
@click.option(
    "--baseline",
    default=None,
    metavar="REV",
    help="Git revision to run side by side (from a checkout; e.g. a release tag or main~1).",
)
@device_option
def bench_skild(L, factor, coarsen, samples, repeats, baseline, device):
    """What sampling costs: the whole upsample and generate commands and the network call.

    Fresh processes, median of --repeats runs after a warm-up; with --baseline the same
    commands from that git revision run alternately with this tree's, and the table gives
    the ratios. Run it with the cores free.

    Examples:

      isingscale bench skild                                 # x4 32 -> 128 and generation at 128
      isingscale bench skild --baseline v0.4 --samples 32
    """
    from ..device import resolve_device
    from ..evaluation.cost import bench_sampling, format_sampling_table

    dev = resolve_device(device)
    res = bench_sampling(
        L=L,
        factor=factor,
        coarsen=coarsen,
        samples=samples,
        repeats=repeats,
        baseline=baseline,
        device=dev.type,
        log=lambda msg: click.echo(msg, err=True),
    )
    click.echo(format_sampling_table(res))
