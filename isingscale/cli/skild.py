"""``isingscale train | generate | coarsen | upsample`` and ``bench skild``: wrappers over isingscale.skild."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from . import bench, main
from ._options import device_option

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
    "scale; a stage from block spins keeps its output's majority image). 0: the diffusion model alone.",
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

    from ._options import default_threads

    if device != "cuda":
        torch.set_num_threads(default_threads())


def _train_cnn(files, out, factor, steps, minutes, batch, lr, seed, progress) -> None:
    from ..baselines.cnn import train_cnn
    from ..errors import IsingScaleError
    from ..io import writable_dir

    if not files:
        raise IsingScaleError("no training data given (--data FILE.h5 ...)")
    factor = 2.0 if factor is None else factor
    if factor != int(factor):
        raise IsingScaleError(f"the CNN baseline takes an integer --factor, got {factor:g}")
    path = Path(out) / "model.safetensors"
    if path.exists():
        raise IsingScaleError(f"{path} already exists; use another --out")
    writable_dir(Path(out))
    kwargs = {} if lr is None else {"lr": lr}
    path = train_cnn(
        files,
        path,
        factor=int(factor),
        steps=steps,
        minutes=minutes,
        batch=batch,
        seed=seed,
        progress=progress,
        **kwargs,
    )
    from ..baselines.cnn import load_cnn

    t = load_cnn(path).meta["training"]
    click.echo(
        f"wrote {path}: ×{int(factor)} CNN, {t['steps']} steps, {t['lattices_seen']:,} lattices in "
        f"{t['seconds']:.0f} s, final BCE {t['final_bce']:.4f} nats/site"
    )


def _training_summary(path) -> None:
    from ..skild.checkpoint import read_checkpoint

    t = read_checkpoint(path)[0]["training"]
    loss = f", last logged loss {t['last_loss']:.4g}" if t.get("last_loss") is not None else ""
    click.echo(
        f"wrote {path}: {t['step']} steps, {t['lattices_seen']:,} samples seen{loss}"
        f" (loss log and training checkpoint in {Path(path).parent})"
    )


def _coarse_summary(path) -> None:
    from ..skild.checkpoint import read_checkpoint

    c = read_checkpoint(path)[0]["coarse"]
    t = c["training"]
    loss = f", last logged loss {t['last_loss']:.4g}" if t.get("last_loss") is not None else ""
    click.echo(
        f"wrote {path}: the --init network plus a {c['size']}x{c['size']} coarse stage, {t['step']} steps, "
        f"{t['samples_seen']:,} samples seen in {t['seconds'] / 60:.1f} min{loss}"
    )


@main.command()
# Main options.
@click.option(
    "--data",
    type=_in_file,
    multiple=True,
    required=False,
    metavar="FILE.h5",
    help="Training ensemble(s) of ±1 lattices (repeat, or list after one --data).",
)
@click.argument("more_data", nargs=-1, type=_in_file, metavar="[FILE.h5 ...]")
@click.option(
    "--images",
    "images",
    type=click.Path(),
    default=None,
    metavar="DIR",
    help="Train on images instead: a folder (searched recursively) of PNG/JPEG, .npy/.npz arrays or "
    "CIFAR-10 python batches, or one such file. DCT basis, per-channel spectrum.",
)
@click.option(
    "--image-size",
    type=click.IntRange(min=8),
    default=32,
    show_default=True,
    metavar="N",
    help="Images are centre-cropped and resized to N x N (with --images).",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "grey", "rgb"]),
    default="auto",
    show_default=True,
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
    "--conditional",
    is_flag=True,
    help="Train the SR3-style conditional baseline instead (coarse lattice as extra input; one per --factor).",
)
@click.option(
    "--cnn",
    is_flag=True,
    help="Train the Efthymiou-style CNN baseline instead (block spins -> per-site probabilities, BCE); "
    "writes RUNDIR/model.safetensors.",
)
@click.option(
    "--factor",
    type=click.FloatRange(min=1, min_open=True),
    default=None,
    metavar="F",
    help="Super-resolution factor of a --conditional or --cnn model (CNN default 2).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    metavar="RUNDIR",
    help="Run directory: config.json, spectrum.json, loss.csv, checkpoints.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    help="Total optimizer steps.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="FLOAT",
    help="Wall-clock budget of this invocation (instead of, or as well as, --steps).",
)
# Hyperparameters.
@click.option(
    "--base-channels",
    type=click.IntRange(min=4),
    default=None,
    metavar="INT",
    show_default="16; 32 with --coarse",
    help="Channels at full resolution.",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="3; 2 with --coarse",
    help="2x poolings; lattice sizes must be divisible by 2**depth.",
)
@click.option(
    "--channel-mult",
    default=None,
    metavar="LIST",
    show_default="1,2,4,4; 1,2,2 with --coarse",
    help="Channel multipliers per level (depth + 1 entries).",
)
@click.option(
    "--head-blocks",
    type=click.IntRange(min=0),
    default=None,
    metavar="INT",
    show_default="0; with --init, the checkpoint's",
    help="Residual blocks at full resolution before the output; with --init, extra "
    "ones are added starting as the identity.",
)
@click.option(
    "--colored-io",
    is_flag=True,
    help="The network also sees and writes the field in data units (spins), "
    "whitened on output; with --init, grows a checkpoint without it (new weights start at zero).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="64; 256 with --coarse",
    help="Batch size.",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="FLOAT",
    show_default="1e-3; 3e-3 with --cnn",
    help="Adam learning rate (linear warm-up over 200 steps).",
)
@click.option(
    "--ema",
    type=click.FloatRange(0, 1),
    default=0.999,
    show_default=True,
    metavar="FLOAT",
    help="EMA decay per step of the sampling weights.",
)
@click.option(
    "--width",
    type=click.FloatRange(min=0.05),
    default=0.4,
    show_default=True,
    metavar="OCTAVES",
    help="Logistic width of the scale schedule a_s(k).",
)
@click.option(
    "--lr-decay",
    type=click.Choice(["constant", "cosine"]),
    default="constant",
    show_default=True,
    help="Learning rate after warm-up: constant, or cosine down to lr/10 over --steps.",
)
@click.option(
    "--s-power",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="FLOAT",
    help="Training scales s = s_max u^P, u uniform: P > 1 spends more steps at small s (fine detail).",
)
@click.option(
    "--loss-power",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    metavar="FLOAT",
    help="Loss weight per mode w(k) ∝ |k|^-P (mean 1): P = 0 weighs every mode alike.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="INT",
    help="Seed (init, data order, noise).",
)
@click.option(
    "--init",
    "init",
    type=_in_file,
    default=None,
    metavar="CKPT",
    help="Fine-tune a SKILD checkpoint: start from its weights (keeps its network, schedule and spectrum).",
)
@click.option(
    "--coarse",
    "coarse",
    type=click.IntRange(min=4),
    default=None,
    metavar="NC",
    help="Train the coarse stage of the --init checkpoint instead: a small network for the lowest NC x NC "
    "modes, which generation then uses (writes --init's network plus it).",
)
# I/O-related.
@device_option
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from RUNDIR/checkpoint.safetensors (model, EMA, Adam, step, RNG).",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    metavar="INT",
    help="Steps between atomic training checkpoints (also every 5 minutes).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Progress bar with loss and lattices/s.",
)
def train(
    data,
    more_data,
    images,
    image_size,
    color,
    max_images,
    conditional,
    cnn,
    factor,
    out,
    steps,
    minutes,
    base_channels,
    depth,
    channel_mult,
    head_blocks,
    colored_io,
    batch,
    lr,
    ema,
    width,
    lr_decay,
    s_power,
    loss_power,
    seed,
    init,
    coarse,
    device,
    resume,
    checkpoint_every,
    progress,
):
    """Train a SKILD diffusion model (or, with --conditional / --cnn, a baseline) on Monte Carlo lattices.

    One unconditional network learns to reverse the scale-space forward process; the
    same checkpoint then generates lattices and super-resolves by any factor.

    Examples:

    \b
    isingscale train --data data/ising_L32.h5 --out runs/L32 --minutes 38
    isingscale train --data data/ising_L32.h5 --out runs/L32 --steps 30000 --resume
    isingscale train --data data/ising_L32.h5 data/ising_L16.h5 data/ising_L64.h5 --out runs/multi --minutes 60
    isingscale train --init data/checkpoints/skild_ising_L32.safetensors --data data/ising_L32.h5 --out runs/ft --steps 5000 --lr-decay cosine
    isingscale train --coarse 8 --init data/checkpoints/skild_ising_L32.safetensors --data data/ising_L32.h5 --out runs/coarse --steps 8000 --lr-decay cosine
    isingscale train --images photos/ --image-size 64 --out runs/img64 --steps 20000
    isingscale train --conditional --factor 4 --data data/ising_L32.h5 --out runs/cond_x4 --minutes 30
    isingscale train --cnn --factor 2 --data data/ising_L32.h5 --out runs/cnn_x2 --steps 4000
    torchrun --nproc-per-node 2 -m isingscale train --data data/ising_L32.h5 --out runs/ddp --batch 32 --steps 30000

    Under torchrun, --batch is per process (global batch = batch x processes); only rank 0 writes.
    """
    from ..errors import IsingScaleError
    from ..skild import train as _train

    try:
        mult = None if channel_mult is None else tuple(int(v) for v in channel_mult.split(","))
    except ValueError:
        raise IsingScaleError(
            f"--channel-mult must be comma-separated integers, got {channel_mult!r}"
        ) from None
    files = list(data) + list(more_data)
    if coarse is not None:
        if conditional or cnn or images:
            raise IsingScaleError(
                "--coarse trains the coarse stage of an unconditional SKILD checkpoint on --data "
                "(no --conditional, --cnn or --images)"
            )
        net = {
            k: v
            for k, v in dict(
                base_channels=base_channels, depth=depth, channel_mult=mult, batch=batch
            ).items()
            if v is not None
        }
        _threads(device)
        from ..skild.coarse import train_coarse

        path = train_coarse(
            files,
            out,
            init=init,
            size=coarse,
            steps=steps,
            minutes=minutes,
            lr=1e-3 if lr is None else lr,
            lr_decay=lr_decay,
            ema=ema,
            seed=seed,
            device=device,
            resume=resume,
            progress=progress,
            checkpoint_every=checkpoint_every,
            **net,
        )
        _coarse_summary(path)
        return
    base_channels = 16 if base_channels is None else base_channels
    depth = 3 if depth is None else depth
    mult = (1, 2, 4, 4) if mult is None else mult
    batch = 64 if batch is None else batch
    if images and files:
        raise IsingScaleError("give either ensemble files (--data) or --images, not both")
    if not images and not files and not resume:
        raise IsingScaleError("no training data given (--data FILE.h5 ... or --images DIR)")
    extra = dict(image_size=image_size, color=color, max_images=max_images) if images else {}
    if factor is not None and not (conditional or cnn):
        raise IsingScaleError(
            "--factor belongs to --conditional or --cnn (an unconditional SKILD model serves every "
            "factor)"
        )
    if cnn:
        if conditional or images or resume:
            raise IsingScaleError(
                "--cnn trains from --data alone (no --conditional, --images or --resume)"
            )
        _threads(device)
        _train_cnn(files, out, factor, steps, minutes, batch, lr, seed, progress)
        return
    lr = 1e-3 if lr is None else lr
    if init and (conditional or images or resume):
        raise IsingScaleError(
            "--init fine-tunes an unconditional SKILD model on --data (no --conditional, --images "
            "or --resume)"
        )
    if init:
        extra["init"] = init
    if lr_decay != "constant":
        extra["lr_decay"] = lr_decay
    if s_power != 1.0:
        extra["s_power"] = s_power
    if loss_power != 1.0:
        extra["loss_power"] = loss_power
    if head_blocks is not None:
        extra["head_blocks"] = head_blocks
    if colored_io:
        extra["colored_io"] = True
    if conditional and not resume:
        extra.update(conditional=True, factor=factor)
    _threads(device)
    path = _train(
        files,
        out,
        images=images,
        base_channels=base_channels,
        depth=depth,
        channel_mult=mult,
        batch=batch,
        steps=steps,
        minutes=minutes,
        lr=lr,
        ema=ema,
        seed=seed,
        device=device,
        resume=resume,
        progress=progress,
        width=width,
        checkpoint_every=checkpoint_every,
        **extra,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        _training_summary(path)


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
    help="Draw the lowest modes with the checkpoint's coarse stage, where it has one (L >= twice its size); "
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
    isingscale generate --checkpoint runs/img64/model.safetensors --L 64 --samples 16 --out gen_img.npz
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
@click.argument("input_path", type=_in_file, metavar="IN.h5")
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
    help="fourier: low-band field (float 'field', fine amplitude scale); block: majority rule (±1 'spins').",
)
@click.option(
    "--out", type=_out_file, required=True, metavar="OUT.h5", help="Output ensemble (kind=coarse)."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def coarsen(input_path, factor, method, out, overwrite):
    """Coarse-grain an ensemble: Fourier truncation or majority-rule block spins.

    Fourier: orthonormal low-band coefficients (|q| < n/2) divided by f = L/n, i.e. the
    ideal low-pass of the lattice sampled on the coarse grid. Block: ties take the block's
    top-left spin.

    Examples:

    \b
    isingscale coarsen ising_L32.h5 --factor 4 --method fourier --out coarse8.h5
    isingscale coarsen ising_L32.h5 --factor 2 --method block --out block16.h5
    """
    from ..errors import IsingScaleError
    from ..skild import coarsen as _coarsen

    if not factor > 1:
        raise IsingScaleError(f"factor must be greater than 1, got {factor}")
    click.echo(
        f"wrote {_coarsen(input_path, factor=factor, method=method, out=out, overwrite=overwrite)}"
    )


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
    type=_in_file,
    default=None,
    metavar="FILE.h5",
    help="Coarse lattices: float 'field' = Fourier-coarsened, ±1 'spins' = block spins.  "
    "Default: fresh Monte Carlo lattices, coarse-grained here and used as ground truth.",
)
@click.option(
    "--images",
    "images",
    type=click.Path(),
    default=None,
    metavar="DIR",
    help="Original images (folder or file; PNG/JPEG, .npy/.npz, CIFAR-10 batches): DCT-coarsened by F, "
    "super-resolved with an image checkpoint, scored by PSNR/SSIM/spectrum error. Writes .npz + .md.",
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
    isingscale upsample --images photos/ --factor 4 --checkpoint runs/img64/model.safetensors --out sr_img.npz
    """
    from ..errors import IsingScaleError
    from ..skild import upsample as _upsample

    _threads(device)
    if images is not None:
        if input_path is not None or repeat != 1 or save_field or sweeps:
            raise IsingScaleError(
                "--images does not combine with --input, --repeat, --save-field or --sweeps"
            )
        from ..skild.upsample import upsample_images

        res = upsample_images(
            images,
            factor=factor,
            out=out,
            checkpoint=checkpoint,
            size=size,
            samples=samples,
            steps=steps,
            sampler=sampler,
            seed=seed,
            device=device,
            s_offset=s_offset,
            batch=batch,
            overwrite=overwrite,
            progress=progress,
        )
        click.echo(res.summary())
        return
    res = _upsample(
        input_path,
        factor=factor,
        out=out,
        checkpoint=checkpoint,
        L=L,
        coarsen=coarsen_method,
        samples=samples,
        repeat=repeat,
        steps=steps,
        sampler=sampler,
        seed=seed,
        device=device,
        save_field=save_field,
        s_offset=s_offset,
        sweeps=sweeps,
        batch=batch,
        overwrite=overwrite,
        progress=progress,
    )
    click.echo(res.summary())


@bench.command("skild")
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=8),
    default=32,
    show_default=True,
    metavar="N",
    help="Lattice size.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    metavar="INT",
    help="Batch size.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="FLOAT",
    help="Time per measurement.",
)
@click.option(
    "--base-channels",
    type=click.IntRange(min=4),
    default=16,
    show_default=True,
    metavar="INT",
    help="Channels at full resolution.",
)
@device_option
def bench_skild(L, batch, seconds, base_channels, device):
    """Training throughput (lattices/s) of the SKILD UNet on synthetic lattices, vs a plain conv baseline."""
    import torch

    from ..skild.process import Schedule, Whitener, loss_weights, skild_loss
    from ..skild.spectral import power_law_spectrum
    from ..skild.train import resolve_device
    from ..skild.unet import UNet, UNetConfig, count_parameters

    dev = resolve_device(device)
    _threads(device)
    torch.manual_seed(0)
    wh = Whitener(power_law_spectrum(L))
    sch = Schedule()
    w = torch.as_tensor(loss_weights(L), dtype=torch.float32, device=dev)

    def rate(net) -> float:
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            x = torch.randn(batch, L, L, device=dev)
            loss = skild_loss(
                net, wh.basis, sch, x, torch.rand(batch, device=dev) * 6, torch.randn_like(x), w
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += batch
        return n / (time.perf_counter() - t0)

    net = UNet(UNetConfig(base_channels=base_channels, channel_mult=(1, 2, 4, 4))).to(dev)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular").to(dev)
    base = rate(lambda y, s: conv(y[:, None])[:, 0])
    r = rate(net)
    click.echo(
        f"UNet ({count_parameters(net):,} parameters, L={L}, batch {batch}, {dev}): {r:.0f} lattices/s; "
        f"single-conv baseline {base:.0f} lattices/s; ratio {r / base:.3f}"
    )
