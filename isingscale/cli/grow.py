"""``isingscale grow``: lattices grown stage by stage (isingscale.skild.grow), then compared
stage by stage (isingscale.evaluation.grow_report)."""

from __future__ import annotations

import click

from . import main
from .options import device_option, lattice_options


def _references(ctx, param, value) -> dict[int, str]:
    """``L=FILE`` pairs -> {L: FILE}."""
    out: dict[int, str] = {}
    for item in value:
        L, sep, source = item.partition("=")
        if not sep or not L.strip().isdigit() or not source:
            raise click.BadParameter(f"{item!r} is not L=FILE (e.g. 256=wolff_L256.h5)")
        if int(L) in out:
            raise click.BadParameter(f"two references for L={int(L)}")
        out[int(L)] = source
    return out


@main.command()
@click.argument("source", metavar="INPUT")
@click.option(
    "--to",
    "to",
    type=click.IntRange(min=2),
    required=True,
    metavar="N",
    help="Final lattice size (larger than the input's, divisible by 2**depth of the network).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    show_default="data/grow-NNNN, first unused",
    help="Folder for stage{i}_L{N}.h5 per stage, grow.md, grow.nc and grow.png.",
)
@click.option(
    "--reference",
    "references",
    multiple=True,
    callback=_references,
    metavar="L=FILE",
    help="Monte Carlo lattices at L to compare the stage at L with (repeatable); stages "
    "without one are compared with the torus CFT.",
)
@click.option(
    "--stage-factor",
    type=click.FloatRange(min=1, min_open=True),
    default=2.0,
    metavar="F",
    help="Factor of every stage but the last, which takes the remaining factor.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="all",
    help="Grow the first INT lattices.",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="CKPT",
    show_default="data/checkpoints/skild_ising_L32.safetensors",
    help="SKILD checkpoint.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="per octave: 20 ddpm, 6 ddim, 10 sde",
    help="Reverse steps per stage.",
)
@click.option(
    "--sampler",
    type=click.Choice(["ddpm", "ddim", "sde"]),
    default=None,
    show_default="sde",
    help="Sampler (as in upsample).",
)
@click.option(
    "--sweeps",
    type=click.IntRange(min=0),
    default=0,
    metavar="K",
    help="Heat-bath sweeps at the checkpoint's T after every stage (0: the model alone).",
)
@click.option("--seed", type=int, default=0, metavar="INT", help="Seed of the noise.")
@device_option
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=32,
    metavar="INT",
    help="Lattices per batch at most (fewer at large sizes: about 1M sites per batch).",
)
@lattice_options()
@click.option("--overwrite", is_flag=True, help="Replace existing stage files.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the stage files in --out (an interrupted run); the same settings.",
)
@click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")
def grow(source, to, out, references, stage_factor, samples, checkpoint, steps, sampler,
         sweeps, seed, device, batch, values, T, binarize, overwrite, resume,
         progress):  # fmt: skip
    """Grow lattices stage by stage (x2 octaves, the last stage the remaining factor) to
    --to x --to, writing every stage's lattices, then compare every stage with Monte Carlo
    (--reference L=FILE) or the torus CFT G2 at that L.

    Examples:

    \b
    isingscale grow wolff_L128.h5 --to 1024 --out grown/
    isingscale grow wolff_L64.h5 --to 256 --reference 256=wolff_L256.h5 --out g256/
    isingscale grow lattices.npz --to 96 --samples 40
    isingscale grow wolff_L128.h5 --to 1024 --out grown/ --resume   # after an interruption
    """
    import torch

    from ..evaluation import check_references, grow_markdown, grow_report
    from ..skild import grow as run
    from ..skild import grow_plan
    from .options import default_threads

    if device != "cuda":
        torch.set_num_threads(default_threads())
    reading = dict(values=values, T=T, binarize=binarize)
    sizes = grow_plan(source, to=to, checkpoint=checkpoint, stage_factor=stage_factor, **reading)
    check_references(references, sizes[1:])  # before any sampling
    res = run(
        source, to=to, out=out, checkpoint=checkpoint, stage_factor=stage_factor,
        samples=samples, steps=steps, sampler=sampler, sweeps=sweeps, seed=seed,
        device=device, batch=batch, **reading,
        overwrite=overwrite, resume=resume, progress=progress,
    )  # fmt: skip
    click.echo(res.summary())
    ds = grow_report(res, references=references, out=res.out, progress=progress)
    click.echo(grow_markdown(ds))
    click.echo(f"wrote {res.out / 'grow.md'}, {res.out / 'grow.nc'} and {res.out / 'grow.png'}")
