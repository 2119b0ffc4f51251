"""``isingscale train skild | coarse-stage | sr3 | cnn``: one subcommand per model.

Each subcommand builds its model's frozen configuration (defaults live there; an option
left out takes the configuration's default, which ``--help`` shows) and runs the one
training loop. ``--resume`` continues RUNDIR with the configuration it recorded and a new
budget (--steps / --minutes); options repeated from the first command must be unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from . import Group, main
from .options import device_option, lattice_options, open_source

_in_file = click.Path(dir_okay=False)

# The old spelling (one command, flags choosing the model) and what it is now.
_OLD_FLAGS = {
    "--conditional": "train sr3",
    "--cnn": "train cnn",
    "--coarse": "train coarse-stage --size NC",
    "--images": "train skild --images",
}


class TrainGroup(Group):
    """`isingscale train --data ...` (the spelling before subcommands) gets a one-line pointer."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].startswith("-") and args[0] not in ("-h", "--help"):
            new = next((v for k, v in _OLD_FLAGS.items() if k in args), "train skild")
            raise click.ClickException(
                f"'isingscale train {args[0]} ...' is now 'isingscale {new} ...' (one subcommand "
                "per model: train skild | coarse-stage | sr3 | cnn; see isingscale train --help)"
            )
        return super().parse_args(ctx, args)


@main.group(cls=TrainGroup)
def train() -> None:
    """Train a model: the SKILD network, its coarse stage, or a baseline (SR3, CNN).

    Every run writes RUNDIR/config.json, loss.csv, checkpoint.safetensors (the resumable
    state, atomic) and model.safetensors (the checkpoint to use). Under torchrun
    (torchrun --nproc-per-node K -m isingscale train skild ...) --batch is per process and
    only rank 0 writes.
    """


def _budget(f):
    f = click.option(
        "--minutes",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="FLOAT",
        help="Wall-clock budget of this invocation (instead of, or as well as, --steps).",
    )(f)
    return click.option(
        "--steps",
        type=click.IntRange(min=1),
        default=None,
        metavar="INT",
        help="Total optimizer steps (counting those before a --resume).",
    )(f)


def _run_options(f):
    """--out, --resume, --seed, --device, --checkpoint-every, --progress (every trainer)."""
    for decorator in reversed(
        [
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                required=True,
                metavar="RUNDIR",
                help="Run directory: config.json, loss.csv, checkpoints.",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Continue RUNDIR/checkpoint.safetensors with its configuration.",
            ),
            click.option(
                "--seed", type=int, default=None, metavar="INT", show_default="0", help="Seed."
            ),
            device_option,
            click.option(
                "--checkpoint-every",
                type=click.IntRange(min=1),
                default=None,
                metavar="INT",
                show_default="500",
                help="Steps between training checkpoints (also every 5 minutes).",
            ),
            click.option(
                "--progress/--no-progress",
                default=True,
                show_default=True,
                help="Progress bar with loss and samples/s.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def _data(f):
    f = lattice_options()(f)
    f = click.argument("more_data", nargs=-1, metavar="[SOURCE ...]")(f)
    return click.option(
        "--data",
        multiple=True,
        metavar="SOURCE",
        help="Training lattices: ensemble files or any lattice source (FILE.h5:/dataset, .npy, "
        ".npz, PNG folders; repeat, or list after one --data).",
    )(f)


def _sources(data, more_data, options: dict) -> list:
    """--data's sources opened with --values, --T and --binarize (popped from ``options``)."""
    reading = {k: options.pop(k) for k in ("values", "T", "binarize")}
    return [open_source(s, **reading) for s in (*data, *more_data)]


def _optimizer(batch: str, lr: str):
    def wrap(f):
        f = click.option(
            "--lr-decay",
            type=click.Choice(["constant", "cosine"]),
            default=None,
            show_default="constant",
            help="Learning rate after warm-up: constant, or cosine down to lr/10 over --steps.",
        )(f)
        f = click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            metavar="FLOAT",
            show_default=lr,
            help="Adam learning rate.",
        )(f)
        return click.option(
            "--batch",
            type=click.IntRange(min=1),
            default=None,
            metavar="INT",
            show_default=batch,
            help="Samples per optimizer step (per process under torchrun).",
        )(f)

    return wrap


def _network(base: str, depth: str, mult: str):
    def wrap(f):
        f = click.option(
            "--channel-mult",
            default=None,
            metavar="LIST",
            show_default=mult,
            help="Channel multipliers per level (depth + 1 entries).",
        )(f)
        f = click.option(
            "--depth",
            type=click.IntRange(min=1),
            default=None,
            metavar="INT",
            show_default=depth,
            help="2x poolings; lattice sizes must be divisible by 2**depth.",
        )(f)
        return click.option(
            "--base-channels",
            type=click.IntRange(min=4),
            default=None,
            metavar="INT",
            show_default=base,
            help="Channels at full resolution.",
        )(f)

    return wrap


_ema = click.option(
    "--ema",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    show_default="0.999",
    metavar="FLOAT",
    help="EMA decay per step of the sampling weights.",
)


def _given(**options) -> dict:
    """The options the user gave (None: left to the configuration's default)."""
    from ..errors import IsingScaleError

    out = {k: v for k, v in options.items() if v is not None}
    if "channel_mult" in out:
        try:
            out["channel_mult"] = tuple(int(v) for v in out["channel_mult"].split(","))
        except ValueError:
            raise IsingScaleError(
                f"--channel-mult must be comma-separated integers, got {out['channel_mult']!r}"
            ) from None
    return out


def _threads(device: str) -> None:
    import torch

    from .options import default_threads

    if device != "cuda":
        torch.set_num_threads(default_threads())


def _say(text: str) -> None:
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        click.echo(text)


def _summary(path, section: dict, what: str) -> str:
    loss = section.get("last_loss")
    loss = f", last logged loss {loss:.4g}" if loss is not None else ""
    seen = section.get("lattices_seen", section.get("samples_seen", 0))
    return (
        f"wrote {path}: {what}, {section['step']} steps, {seen:,} samples seen in "
        f"{section.get('seconds', 0) / 60:.1f} min{loss} (loss log and training checkpoint in "
        f"{Path(path).parent})"
    )


@train.command("skild")
@_data
@click.option(
    "--images",
    type=click.Path(),
    default=None,
    metavar="DIR",
    help="Train on images instead: a folder (searched recursively) of PNG/JPEG, .npy/.npz arrays "
    "or CIFAR-10 python batches, or one such file. DCT basis, per-channel spectrum.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=8),
    default=None,
    show_default="32",
    metavar="N",
    help="Images are centre-cropped and resized to N x N (with --images).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "grey", "rgb"]),
    default=None,
    show_default="auto",
    help="Image channels (with --images): auto = RGB if any image has colour.",
)
@click.option(
    "--max-images",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="all",
    help="Read at most this many images (with --images).",
)
@click.option(
    "--init",
    type=_in_file,
    default=None,
    metavar="CKPT",
    help="Fine-tune a SKILD checkpoint: its network, schedule and spectrum, a fresh optimizer.",
)
@_budget
@_network("16", "3", "1,2,4,4")
@_optimizer("64", "0.001")
@_ema
@click.option(
    "--width",
    type=click.FloatRange(min=0.05),
    default=None,
    show_default="0.4",
    metavar="OCTAVES",
    help="Logistic width of the scale schedule a_s(k).",
)
@click.option(
    "--s-power",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    show_default="1.0",
    metavar="FLOAT",
    help="Training scales s = s_max u^P, u uniform: P > 1 spends more steps at small s.",
)
@_run_options
def train_skild(data, more_data, out, resume, device, progress, **options):
    """Train the SKILD network on Monte Carlo lattices (or, with --images, on images).

    One unconditional network learns to reverse the scale-space forward process; the same
    checkpoint then generates lattices and super-resolves by any factor. Several ensembles
    of different L train one network for all of them (the first file's L is the primary).

    Examples:

    \b
    isingscale train skild --data data/ising_L32.h5 --out runs/L32 --minutes 38
    isingscale train skild --out runs/L32 --steps 30000 --resume
    isingscale train skild --data L32.h5 L16.h5 L64.h5 --out runs/multi --steps 16000
    isingscale train skild --init CKPT --data data/ising_L32.h5 --out runs/ft --steps 5000 --lr 2e-4
    isingscale train skild --images photos/ --image-size 64 --out runs/img64 --steps 20000
    torchrun --nproc-per-node 2 -m isingscale train skild --data L32.h5 --out runs/ddp --steps 30000
    """
    from ..skild import train as run

    _threads(device)
    files = _sources(data, more_data, options)
    opts = dict(device=device, resume=resume, progress=progress)
    path = run(files, out, **opts, **_given(**options))
    _report(path, "the SKILD network", lambda meta: meta["training"])


def _report(path, what: str, section) -> None:
    from ..skild.checkpoint import read_checkpoint

    _say(_summary(path, section(read_checkpoint(path)[0]), what))


@train.command("coarse-stage")
@_data
@click.option(
    "--init",
    type=_in_file,
    default=None,
    metavar="CKPT",
    help="The SKILD checkpoint whose coarse stage this is (its network is kept unchanged).",
)
@click.option(
    "--size",
    type=click.IntRange(min=4),
    default=None,
    metavar="NC",
    show_default="8",
    help="The stage works on the lowest NC x NC modes (generation uses it at L >= 2 NC).",
)
@_budget
@_network("32", "2", "1,2,2")
@_optimizer("256", "0.001")
@_ema
@_run_options
def train_coarse_stage(data, more_data, out, resume, device, progress, **options):
    """Train the coarse stage of a SKILD checkpoint: a small network for its lowest modes.

    Writes --init's network, spectrum and metadata unchanged plus the stage, which
    generation then uses to draw the lowest modes (isingscale generate --no-coarse-stage
    skips it).

    Examples:

    \b
    isingscale train coarse-stage --size 16 --init runs/L32/model.safetensors --data data/ising_L32.h5 --out runs/coarse16 --steps 12000 --batch 128 --lr-decay cosine
    isingscale train coarse-stage --out runs/coarse16 --steps 16000 --resume
    """  # noqa: E501
    from ..skild import train_coarse

    _threads(device)
    files = _sources(data, more_data, options)
    opts = dict(device=device, resume=resume, progress=progress)
    path = train_coarse(files, out, **opts, **_given(**options))
    _report(
        path, "the --init network plus its coarse stage", lambda meta: meta["coarse"]["training"]
    )


@train.command("sr3")
@_data
@click.option(
    "--factor",
    type=click.FloatRange(min=1, min_open=True),
    default=None,
    metavar="F",
    help="The one super-resolution factor this model serves (required for a new run).",
)
@_budget
@_network("16", "3", "1,2,4,4")
@_optimizer("64", "0.001")
@_ema
@_run_options
def train_sr3(data, more_data, out, resume, device, progress, **options):
    """Train the SR3-style conditional baseline for one factor (coarse lattice as input).

    Examples:

    \b
    isingscale train sr3 --factor 4 --data data/ising_L32.h5 --out runs/sr3_x4 --minutes 30
    isingscale evaluate --methods skild,sr3 --sr3-checkpoint 4=runs/sr3_x4/model.safetensors --out eval/
    """  # noqa: E501
    from ..baselines import train_sr3 as run

    _threads(device)
    files = _sources(data, more_data, options)
    opts = dict(device=device, resume=resume, progress=progress)
    path = run(files, out, **opts, **_given(**options))
    _report(path, "SR3 baseline", lambda meta: meta["training"])


@train.command("cnn")
@_data
@click.option(
    "--factor",
    type=click.IntRange(min=2),
    default=None,
    metavar="F",
    show_default="2",
    help="The network's native factor (integer).",
)
@_budget
@_optimizer("64", "0.003")
@_run_options
def train_cnn(data, more_data, out, resume, device, progress, **options):
    """Train the CNN baseline after Efthymiou, Beach & Melko (block spins -> p(s = +1), BCE).

    Without --steps or --minutes it trains 2000 steps.

    Examples:

    \b
    isingscale train cnn --factor 2 --data data/ising_L32.h5 --out runs/cnn_x2 --steps 4000
    isingscale evaluate --methods cnn,cnn-ki --cnn-checkpoint runs/cnn_x2/model.safetensors --out eval/
    """  # noqa: E501
    from ..baselines import train_cnn as run
    from ..baselines.cnn import load_cnn

    _threads(device)
    files = _sources(data, more_data, options)
    opts = dict(device=device, resume=resume, progress=progress)
    path = run(files, out, **opts, **_given(**options))
    meta = load_cnn(path).meta
    _say(_summary(path, meta["training"], f"×{meta['factor']} CNN"))
