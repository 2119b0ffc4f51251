"""Training loop: ε-prediction at random continuous s on whitened, augmented lattices.

The run directory holds::

    config.json                 resolved options, data provenance (paths, sha256)
    spectrum.json               the measured spectrum S(k) and its power-law fit
    loss.csv                    step, lattices, loss, lr, seconds of training over all invocations
                                (appended, flushed)
    checkpoint.safetensors      last training state (model, EMA, Adam, step, RNG), atomic
    model.safetensors           final EMA weights + metadata: the checkpoint to ship

Data order and augmentation come from one seeded torch generator whose state is
checkpointed, so N steps in one go and N/2 + --resume N/2 give bitwise the same weights
on CPU. Augmentations are exact symmetries of the periodic Ising ensemble: random
periodic translations, the 8 symmetries of the square, and the global spin flip. Images
(``images=DIR``, lattice type "image-dct": DCT basis, per-channel spectrum, reflecting
padding) get horizontal mirror images only.

Several lattice sizes (ensemble files of different L) train one network for all of them:
optimizer steps take the sizes in turn, each with the same number of sites, and every
size has its own s_max and loss weights. ``init`` fine-tunes an existing checkpoint.

Data-parallel training: under ``torchrun --nproc-per-node K`` (WORLD_SIZE > 1 in the
environment) the network is wrapped in DistributedDataParallel (NCCL on GPUs, gloo on
CPU). ``batch`` is per process; every rank draws the same global batch of K x batch
from the shared generator and trains on its own slice, so K processes give the loss
curve of one process with batch K x batch (up to the order of float sums), and resume
works for any K. Only rank 0 writes (run directory, loss.csv, checkpoints).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import IsingScaleError
from ..io import file_sha256, writable_dir
from .checkpoint import optimizer_tensors, read_checkpoint, restore_optimizer, save_checkpoint
from .coarsen import measure_block_transfer
from .conditional import conditional_loss, training_conditioning
from .process import Schedule, Whitener, loss_weights, skild_loss
from .spectral import estimate_spectrum
from .unet import UNet, UNetConfig, count_parameters


def resolve_device(device: str = "auto") -> torch.device:
    """auto -> cuda if available else cpu; an explicit 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise IsingScaleError(
            "--device cuda requested but no CUDA GPU is available (use --device cpu or auto)"
        )
    if device not in ("cpu", "cuda"):
        raise IsingScaleError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return torch.device(device)


def draw_scales(B: int, s_max: float, power: float, generator: torch.Generator) -> torch.Tensor:
    """B training scales s = s_max u^power, u ~ U(0, 1) (octaves; power 1: uniform on [0, s_max]).

    power > 1 puts more of the steps at small s, where the finest modes are decided: the
    density is ∝ s^(1/power - 1), P(s < x) = (x / s_max)^(1/power).
    """
    return torch.rand(B, generator=generator) ** power * s_max


@dataclass
class TrainConfig:
    base_channels: int = 16
    depth: int = 3
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    head_blocks: int = (
        0  # full-resolution blocks before the output; with init, may exceed the checkpoint's
    )
    colored_io: bool = (
        False  # the network also sees and writes the field in data units (UNetConfig.colored_io)
    )
    batch: int = 64
    steps: int | None = None  # total optimizer steps (None: use minutes)
    minutes: float | None = None  # wall-clock budget for this invocation
    lr: float = 1e-3
    warmup: int = 200  # linear learning-rate warm-up, steps
    lr_decay: str = "constant"  # "constant", or "cosine" from lr to lr/10 over --steps
    init: dict | None = (
        None  # fine-tuning: the checkpoint the weights started from (path, sha256, its training)
    )
    ema: float = 0.999  # EMA decay per step (with the usual (1+t)/(10+t) warm-up)
    seed: int = 0
    width: float = 0.4  # logistic width of a_s(k), octaves
    alpha_bar_min: float = 1e-4  # ᾱ of every mode at s_max
    loss_power: float = 1.0  # low-mode weight w(k) ∝ |k|^-loss_power
    s_power: float = (
        1.0  # training scales s = s_max u^s_power, u ~ U(0, 1): > 1 oversamples small s
    )
    grad_clip: float = 1.0
    checkpoint_every: int = 500  # steps between training checkpoints (also every 5 minutes)
    log_every: int = 20  # steps per loss.csv row
    images: str | None = None  # image file or directory: train on images (lattice type image-dct)
    image_size: int = 32  # images are centre-cropped and resized to image_size x image_size
    color: str = "auto"  # images: grey, rgb or auto (rgb if any image has colour)
    max_images: int | None = None  # images: read at most this many
    channels: int = 1  # set from the data: 1 (Ising, grey) or 3 (RGB)
    conditional: bool = (
        False  # SR3-style conditional super-resolver (skild.conditional), one per factor
    )
    factor: float | None = None  # conditional: the super-resolution factor it is trained for
    world_size: int = (
        1  # data-parallel processes of the latest invocation (global batch = batch x world_size)
    )
    data: list = field(default_factory=list)

    @property
    def lattice(self) -> str:
        return "image-dct" if self.images else "ising-periodic"

    def model_config(self) -> UNetConfig:
        from .conditional import COND_CHANNELS

        return UNetConfig(
            base_channels=self.base_channels,
            depth=self.depth,
            channel_mult=tuple(self.channel_mult),
            head_blocks=self.head_blocks,
            colored_io=self.colored_io,
            channels=self.channels,
            padding="reflect" if self.images else "circular",
            cond_channels=COND_CHANNELS if self.conditional else 0,
        )

    @property
    def task(self) -> str:
        from .conditional import TASK

        return TASK if self.conditional else "skild"


# ----------------------------------------------------------------------------
# Data.


def load_training_data(paths) -> tuple[dict[int, np.ndarray], list[dict], float | None]:
    """The ±1 lattices of the given ensemble files grouped by size, their provenance, and T.

    Returns ({L: spins (n, L, L) int8}, provenance per file, T). Sizes keep the order of
    their first file: the first is the run's primary size (the checkpoint's default L).
    All files must share one temperature.
    """
    from ..io import check_spins, read_attrs, read_ensemble

    if not paths:
        raise IsingScaleError("no training data given (--data FILE.h5 ...)")
    by_size, prov, Ts = {}, [], set()
    for p in paths:
        attrs = read_attrs(p)
        if "spins" not in attrs["datasets"] or attrs["n_samples"] == 0:
            raise IsingScaleError(f"{p} holds no ±1 'spins' to train on")
        spins = check_spins(read_ensemble(p, datasets=("spins",))["spins"], what=f"{p}: spins")
        by_size.setdefault(int(spins.shape[-1]), []).append(spins)
        T = attrs.get("T")
        Ts.add(None if T is None else round(float(T), 9))
        prov.append(
            {
                "path": str(Path(p).resolve()),
                "sha256": file_sha256(p),
                "n_samples": int(len(spins)),
                "L": int(spins.shape[-1]),
                "T": T,
            }
        )
    if len(Ts) > 1:
        raise IsingScaleError(
            f"training files were simulated at different temperatures {sorted(Ts, key=str)}"
        )
    return {L: np.concatenate(a) for L, a in by_size.items()}, prov, Ts.pop()


def augmented_batch(data: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """A batch of lattices with random translation, square symmetry and spin flip (float32)."""
    n, L, _ = data.shape
    idx = torch.randint(n, (batch,), generator=g)
    shift = torch.randint(L, (2, batch), generator=g)
    sym = torch.randint(8, (batch,), generator=g)
    flip = torch.randint(2, (batch,), generator=g) * 2 - 1
    r = torch.arange(L)
    iy = (r[None, :, None] + shift[0][:, None, None]) % L
    ix = (r[None, None, :] + shift[1][:, None, None]) % L
    x = data[idx[:, None, None], iy, ix].float()
    m = lambda bit: ((sym >> bit) & 1).bool()[:, None, None]  # noqa: E731
    x = torch.where(m(2), x.transpose(-1, -2), x)
    x = torch.where(m(1), x.flip(-1), x)
    x = torch.where(m(0), x.flip(-2), x)
    return x * flip[:, None, None]


def augmented_images(data: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """A batch of images (n, C, N, N) with random horizontal mirroring (the DCT basis's symmetry)."""
    idx = torch.randint(data.shape[0], (batch,), generator=g)
    flip = torch.randint(2, (batch,), generator=g).bool()[:, None, None, None]
    x = data[idx]
    return torch.where(flip, x.flip(-1), x)


@dataclass
class TrainingData:
    """What a run trains on: fields per lattice size, their spectrum (per channel for images), provenance.

    Several sizes (Ising only) train one network for all of them: steps cycle through the
    sizes, each with a batch of the same number of sites (see :meth:`batch_size`).
    """

    fields: dict  # {L: (n, L, L) int8 spins, or (n, C, L, L) float32 images (model scale)}; first key = primary size
    spectrum: object  # Spectrum, or a list of one per channel
    provenance: list
    T: float | None = None
    transfer: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # image metadata: channels, pixel_mean, color

    @property
    def L(self) -> int:
        """The primary training size: the checkpoint's default lattice size."""
        return int(next(iter(self.fields)))

    @property
    def sizes(self) -> list[int]:
        return sorted(int(L) for L in self.fields)

    def size_at(self, step: int) -> int:
        """The lattice size trained at optimizer step `step` (0-based): the sizes in turn."""
        return self.sizes[step % len(self.sizes)]

    def batch_size(self, batch: int, N: int) -> int:
        """Lattices per step at size N for `batch` at the primary size: equal sites per step."""
        return max(1, round(batch * (self.L / N) ** 2))

    def batch(self, batch: int, g: torch.Generator, N: int | None = None) -> torch.Tensor:
        data = self.fields[self.L if N is None else N]
        if data.ndim == 4:
            return augmented_images(data, batch, g)
        return augmented_batch(data, batch, g)


def load_ising(paths, meta: dict | None) -> TrainingData:
    """Ising ensembles; spectrum and block transfer from ``meta`` (resume, --init) or measured.

    A measured spectrum comes from the largest size (its shells reach the lowest |k|);
    block-spin transfer functions from the primary size.
    """
    spins, prov, T = load_training_data(paths)
    L = next(iter(spins))
    if meta is not None:
        from .checkpoint import spectrum_from_meta

        spectrum, transfer = spectrum_from_meta(meta["spectrum"]), meta["block_transfer"]
    else:
        big = spins[max(spins)]
        spectrum = estimate_spectrum(big[: min(len(big), 20000)].astype(np.float64))
        sub = spins[L][: min(len(spins[L]), 20000)]
        transfer = [measure_block_transfer(sub, b) for b in (2, 4, 8) if L % b == 0 and L // b >= 4]
    return TrainingData(
        {n: torch.as_tensor(a) for n, a in spins.items()}, spectrum, prov, T, transfer
    )


def load_image_data(cfg: TrainConfig, meta: dict | None, progress: bool) -> TrainingData:
    """Images of ``cfg.images`` at cfg.image_size, centred per channel; per-channel DCT spectra."""
    from .checkpoint import spectrum_from_meta
    from .images import load_images, to_model

    pixels, files = load_images(
        cfg.images, size=cfg.image_size, color=cfg.color, limit=cfg.max_images, progress=progress
    )
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
    prov = [
        {
            "images": str(Path(cfg.images).resolve()),
            "n_images": int(len(pixels)),
            "files": len(files),
            "size": cfg.image_size,
            "color": cfg.color,
            "pixels_sha256": digest,
        }
    ]
    if meta is not None:
        pixel_mean = np.asarray(meta["pixel_mean"], dtype=np.float32)
        spectrum = spectrum_from_meta(meta["spectrum"])
    else:
        pixel_mean = pixels.mean(axis=(0, 2, 3)).astype(np.float32)
        x = to_model(pixels, pixel_mean)
        spectrum = [
            estimate_spectrum(x[:, c].astype(np.float64), lattice="image-dct")
            for c in range(x.shape[1])
        ]
    fields = torch.as_tensor(to_model(pixels, pixel_mean))
    extra = {
        "channels": int(pixels.shape[1]),
        "pixel_mean": pixel_mean.tolist(),
        "color": "rgb" if pixels.shape[1] == 3 else "grey",
    }
    return TrainingData({int(fields.shape[-1]): fields}, spectrum, prov, None, [], extra)


# ----------------------------------------------------------------------------
# Data parallelism (torchrun).


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and local rank of this process (1 process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def distributed_context(device: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"
        try:
            dist.init_process_group(backend)
        except (RuntimeError, ValueError) as e:
            raise IsingScaleError(
                f"cannot join the torch.distributed group ({str(e).splitlines()[0][:120]}); "
                "start with torchrun --nproc-per-node K"
            ) from None
    return DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns
    )


def _mean_over_ranks(value: torch.Tensor, ctx: DistContext) -> float:
    if ctx.world == 1:
        return value.item()
    import torch.distributed as dist

    v = value.detach().float().reshape(1).clone()
    dist.all_reduce(v)
    return v.item() / ctx.world


def _rank0_says(flag: bool, ctx: DistContext) -> bool:
    """Rank 0's decision (e.g. wall-clock budget spent), the same on every rank."""
    if ctx.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)])
    dist.broadcast(t, src=0)
    return bool(t.item())


# ----------------------------------------------------------------------------
# Training.


def _metadata(cfg: TrainConfig, td: TrainingData, schedule, state: dict) -> dict:
    from .. import __version__

    sp = td.spectrum
    L = td.L
    return {
        "lattice": cfg.lattice,
        "task": cfg.task,
        **({"factor": cfg.factor} if cfg.conditional else {}),
        "L": L,
        "sizes": td.sizes,
        "T": td.T,
        **td.extra,
        "spectrum": [x.to_dict() for x in sp] if isinstance(sp, list) else sp.to_dict(),
        "schedule": {**schedule.to_dict(), "s_max_train": schedule.s_max(L)},
        "model": cfg.model_config().to_dict(),
        "block_transfer": td.transfer,
        "training": {
            "data": cfg.data,
            "config": {k: v for k, v in asdict(cfg).items() if k != "data"},
            "step": state["step"],
            "lattices_seen": state.get("seen", state["step"] * cfg.batch * cfg.world_size),
            "seconds": round(
                state.get("seconds", 0.0), 3
            ),  # training wall time over all invocations
            "last_loss": state.get("loss"),
            "package_version": __version__,
            "torch_version": torch.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }


def _truncate_log(log: Path, step: int) -> None:
    """Drop loss.csv rows written after the checkpoint being resumed."""
    if not log.exists():
        return
    rows = list(csv.reader(log.open()))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with log.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


def _resolve_config(
    out: Path, resume: bool, steps, minutes, options: dict
) -> tuple[TrainConfig, dict | None, dict]:
    """(config, resumed checkpoint metadata or None, its tensors) for a new or resumed run."""
    ckpt_path = out / "checkpoint.safetensors"
    if resume:
        if not ckpt_path.exists():
            raise IsingScaleError(f"--resume: {out} holds no checkpoint.safetensors")
        meta, tensors = read_checkpoint(ckpt_path)
        saved = meta["training"]["config"]
        known = set(TrainConfig.__dataclass_fields__)
        cfg = TrainConfig(
            **{
                **{k: v for k, v in saved.items() if k in known},
                "channel_mult": tuple(saved["channel_mult"]),
                "steps": steps,
                "minutes": minutes,
            }
        )
        cfg.data = meta["training"]["data"]
        if cfg.lr_decay == "cosine" and steps is None:
            raise IsingScaleError(
                "--resume: this run decays its learning rate over --steps; give --steps again"
            )
        return cfg, meta, tensors
    if ckpt_path.exists():
        raise IsingScaleError(f"{out} already holds a training run; use --resume or another --out")
    unknown = set(options) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise IsingScaleError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    if options.get("lr_decay", "constant") not in ("constant", "cosine"):
        raise IsingScaleError(
            f"lr_decay must be 'constant' or 'cosine', got {options['lr_decay']!r}"
        )
    if options.get("lr_decay") == "cosine" and steps is None:
        raise IsingScaleError("--lr-decay cosine needs --steps (the decay runs over them)")
    options = {
        **options,
        "channel_mult": tuple(options["channel_mult"]),
        "steps": steps,
        "minutes": minutes,
    }
    if options.get("init"):
        return _init_config(options)
    return TrainConfig(**options), None, {}


def _init_config(options: dict) -> tuple[TrainConfig, dict, dict]:
    """Fine-tuning from a SKILD checkpoint: its network shape, schedule and spectrum, new data and optimizer."""
    from ..io import file_sha256
    from .checkpoint import load_checkpoint

    path = options["init"]
    model = load_checkpoint(path, lattice="ising-periodic", task="skild")
    meta = model.meta
    mc = meta["model"]
    had = int(mc.get("head_blocks", 0))
    options.setdefault("head_blocks", had)
    if options["head_blocks"] < had:
        raise IsingScaleError(
            f"--init: the checkpoint has {had} head block(s); --head-blocks can add blocks, not remove them"
        )
    if mc.get("colored_io", False):
        options["colored_io"] = (
            True  # kept; without it, --colored-io grows the network (UNet.load_grown)
        )
    options.update(
        base_channels=mc["base_channels"],
        depth=mc["depth"],
        channel_mult=tuple(mc["channel_mult"]),
        width=meta["schedule"]["width"],
        alpha_bar_min=meta["schedule"]["alpha_bar_min"],
        init={
            "path": str(Path(path).resolve()),
            "sha256": file_sha256(path),
            "step": meta["training"].get("step"),
            "lattices_seen": meta["training"].get("lattices_seen"),
            "seconds": training_seconds(meta),
        },
    )
    tensors = {k: v.detach().cpu() for k, v in model.net.state_dict().items()}
    return (
        TrainConfig(**options),
        {
            "spectrum": meta["spectrum"],
            "block_transfer": meta["block_transfer"],
            "T": meta.get("T"),
            "init": True,
        },
        tensors,
    )


def _load_data(cfg: TrainConfig, data, meta: dict | None, progress: bool) -> TrainingData:
    if cfg.images:
        if data:
            raise IsingScaleError("give either ensemble files (--data) or --images, not both")
        td = load_image_data(cfg, meta, progress)
        if meta is not None and td.provenance[0]["pixels_sha256"] != cfg.data[0]["pixels_sha256"]:
            raise IsingScaleError("--resume: the images differ from those the run was started with")
        cfg.channels = td.extra["channels"]
    else:
        resumed = meta is not None and not meta.get("init")
        td = load_ising(data if not resumed or data else [d["path"] for d in cfg.data], meta)
        if resumed and [p["sha256"] for p in td.provenance] != [p["sha256"] for p in cfg.data]:
            raise IsingScaleError(
                "--resume: the data files differ from those the run was started with"
            )
        if (
            meta is not None
            and meta.get("init")
            and meta["T"] is not None
            and td.T is not None
            and abs(float(meta["T"]) - float(td.T)) > 1e-9
        ):
            raise IsingScaleError(
                f"--init: the checkpoint was trained at T={meta['T']}, the data are at T={td.T}"
            )
    cfg.data = td.provenance
    return td


def _prepare_run_dir(out: Path, spectrum) -> None:
    writable_dir(out)
    d = [x.to_dict() for x in spectrum] if isinstance(spectrum, list) else spectrum.to_dict()
    (out / "spectrum.json").write_text(json.dumps(d, indent=1))


def train(
    data,
    out,
    *,
    images=None,
    base_channels: int = 16,
    depth: int = 3,
    channel_mult: tuple[int, ...] = (1, 2, 4, 4),
    batch: int = 64,
    steps: int | None = None,
    minutes: float | None = None,
    lr: float = 1e-3,
    ema: float = 0.999,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train a SKILD model on ±1 lattices or on images; returns the path of the final model checkpoint.

    data: ensemble files (same T; several sizes train one network for all of them, the
    first file's size being the checkpoint's default L); or images: an image file or directory (PNG/JPEG,
    .npy/.npz, CIFAR-10 batches; see :mod:`isingscale.skild.images`), trained with the DCT
    basis and a per-channel spectrum (options image_size, color, max_images). out: run
    directory. steps: total optimizer steps (counting those before a resume); minutes:
    wall-clock budget of this call; at least one must be given. batch: per process (under
    torchrun the global batch is batch x WORLD_SIZE); with several sizes it is the batch at
    the primary size, other sizes get as many sites per step. init: a SKILD checkpoint to
    fine-tune (its network shape, schedule and spectrum are kept; the optimizer starts
    afresh). Other options (width, alpha_bar_min, loss_power, s_power, warmup, lr_decay, grad_clip,
    checkpoint_every, log_every) are the fields of :class:`TrainConfig`.
    """
    if steps is None and minutes is None:
        raise IsingScaleError("give --steps or --minutes")
    out = Path(out)
    ctx = distributed_context(device)
    try:
        return _train(
            data,
            out,
            ctx,
            resume=resume,
            progress=progress and ctx.is_writer,
            device=device,
            steps=steps,
            minutes=minutes,
            options=dict(
                images=str(images) if images else None,
                base_channels=base_channels,
                depth=depth,
                channel_mult=channel_mult,
                batch=batch,
                lr=lr,
                ema=ema,
                seed=seed,
                **options,
            ),
        )
    finally:
        if ctx.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def training_seconds(meta: dict) -> float | None:
    """A checkpoint's total training wall time: its own run's plus, when fine-tuned (--init), its start's.

    None when the checkpoint does not record it.
    """
    training = meta.get("training") or {}
    own = training.get("seconds")
    init = (training.get("config") or {}).get("init") or {}
    if own is None:
        return None
    return float(own) + float(init.get("seconds") or 0.0)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Adam's rate at optimizer step `step` (0-based): linear warm-up, then constant or cosine to lr/10."""
    lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
    if cfg.lr_decay == "cosine":
        lr *= 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(step / cfg.steps, 1.0)))
    return lr


def optimizer_step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    net: torch.nn.Module,
    net_ema: torch.nn.Module,
    cfg,
    step: int,
) -> None:
    """Backward, gradient clipping to cfg.grad_clip, one Adam step, and the EMA update of net_ema
    (decay cfg.ema with the usual (1 + step) / (10 + step) warm-up; step is 0-based)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    opt.step()
    d = min(cfg.ema, (1.0 + step) / (10.0 + step))
    with torch.no_grad():
        for p_ema, p in zip(net_ema.parameters(), net.parameters()):
            p_ema.lerp_(p, 1.0 - d)


def _check_conditional(cfg: TrainConfig, L: int) -> None:
    from .coarsen import coarse_size

    if cfg.images:
        raise IsingScaleError("--conditional trains on Ising lattices only, not on --images")
    if cfg.factor is None:
        raise IsingScaleError("--conditional needs --factor F (one conditional model per factor)")
    coarse_size(L, cfg.factor, "fourier")


def _train(
    data, out: Path, ctx: DistContext, *, resume, progress, device, steps, minutes, options
) -> Path:
    dev = resolve_device(device)
    if dev.type == "cuda" and ctx.world > 1:
        dev = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(dev)
    cfg, meta, tensors = _resolve_config(out, resume, steps, minutes, options)
    cfg.world_size = ctx.world
    td = _load_data(cfg, data, meta, progress)
    init = meta is not None and meta.get("init")
    meta = None if init else meta
    L = td.L
    shape_check = UNet(cfg.model_config())
    for N in td.sizes:
        shape_check.check_size(N)
    if len(td.sizes) > 1 and (cfg.conditional or cfg.images):
        raise IsingScaleError(
            "training on several lattice sizes is for unconditional SKILD models on Ising lattices"
        )
    if cfg.conditional:
        _check_conditional(cfg, L)
    schedule = Schedule(width=cfg.width, alpha_bar_min=cfg.alpha_bar_min, lattice=cfg.lattice)
    s_max = {N: schedule.s_max(N) for N in td.sizes}
    whitener = Whitener(td.spectrum)
    basis = whitener.basis
    w = {
        N: torch.as_tensor(
            loss_weights(N, cfg.lattice, power=cfg.loss_power), dtype=torch.float32, device=dev
        )
        for N in td.sizes
    }
    # Model, EMA, optimizer, RNG (identical on every rank).
    torch.manual_seed(cfg.seed)
    net = UNet(cfg.model_config()).to(dev).set_whitener(whitener)
    net_ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    state = {"step": 0, "seen": 0}
    if init:
        # Grown parts (extra head blocks, colored_io channels) start so that the network computes what it did.
        net.load_grown(tensors)
        net_ema.load_state_dict(net.state_dict())
    if meta is not None:
        net.load_state_dict(
            {k[len("train.raw.") :]: v for k, v in tensors.items() if k.startswith("train.raw.")}
        )
        net_ema.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        restore_optimizer(opt, tensors, meta["training"]["optimizer"])
        g.set_state(tensors["train.rng"])
        state["step"] = int(meta["training"]["step"])
        state["seen"] = int(meta["training"].get("lattices_seen", state["step"] * cfg.batch))
        state["seconds"] = float(meta["training"].get("seconds", 0.0))
        if ctx.is_writer:
            _truncate_log(out / "loss.csv", state["step"])
    elif ctx.is_writer:
        _prepare_run_dir(out, td.spectrum)
    if ctx.is_writer:
        (out / "config.json").write_text(
            json.dumps(
                {
                    **asdict(cfg),
                    "device": str(dev),
                    "L": L,
                    "sizes": td.sizes,
                    "T": td.T,
                    "s_max": s_max[L],
                    "parameters": count_parameters(net),
                },
                indent=1,
            )
        )
    model = net
    if ctx.world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
        dist.barrier()  # every rank has passed its start-up checks before rank 0 writes a checkpoint
    amp = dev.type == "cuda"

    def net_call(y, s, cond=None):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            return model(y, s) if cond is None else model(y, s, cond)

    def checkpoint():
        if not ctx.is_writer:
            return
        opt_t, groups = optimizer_tensors(opt)
        meta = _metadata(cfg, td, schedule, state)
        meta["training"]["optimizer"] = groups
        train_state = {
            **{f"train.raw.{k}": v for k, v in net.state_dict().items()},
            **opt_t,
            "train.rng": g.get_state(),
        }
        save_checkpoint(out / "checkpoint.safetensors", net_ema, meta, train_state=train_state)

    def step_once() -> float:
        # One optimizer step: this rank's slice of the global batch at random continuous scales,
        # at this step's lattice size (the sizes in turn, equal sites per step).
        N = td.size_at(state["step"])
        b = td.batch_size(cfg.batch, N)
        B = b * ctx.world
        x = td.batch(B, g, N)
        s = draw_scales(B, s_max[N], cfg.s_power, g)
        eps = torch.randn(x.shape, generator=g)
        cond = training_conditioning(x, cfg.factor, whitener, g) if cfg.conditional else None
        part = slice(ctx.rank * b, (ctx.rank + 1) * b)
        x, s, eps = x[part].to(dev), s[part].to(dev), eps[part].to(dev)
        lr_now = learning_rate(cfg, state["step"])
        for group in opt.param_groups:
            group["lr"] = lr_now
        if cfg.conditional:
            loss = conditional_loss(net_call, x.float(), cond[part].to(dev), s / s_max[N], eps)
        else:
            loss = skild_loss(net_call, basis, schedule, whitener.whiten(x.float()), s, eps, w[N])
        optimizer_step(loss, opt, net, net_ema, cfg, state["step"])
        state["step"] += 1
        state["seen"] += B
        state["lr"] = lr_now
        return _mean_over_ranks(loss, ctx)

    _loop(cfg, out, ctx, state, step_once, checkpoint, progress)
    final = out / "model.safetensors"
    if ctx.is_writer:
        save_checkpoint(final, net_ema, _metadata(cfg, td, schedule, state))
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()  # the final checkpoint exists when any rank returns
    return final


def _loop(
    cfg: TrainConfig,
    out: Path,
    ctx: DistContext,
    state: dict,
    step_once,
    checkpoint,
    progress: bool,
) -> None:
    """Run steps until --steps or --minutes; log (rank 0), checkpoint every N steps and 5 minutes."""
    log = (out / "loss.csv").open("a", newline="") if ctx.is_writer else None
    writer = csv.writer(log) if log else None
    if log and log.tell() == 0:
        writer.writerow(["step", "lattices", "loss", "lr", "seconds"])
    t0 = t_ckpt = time.monotonic()
    seconds0 = state.get("seconds", 0.0)
    bar = tqdm(
        total=cfg.steps, initial=state["step"], disable=not progress, desc="train", unit="step"
    )
    loss_sum, loss_n, step0, seen0 = 0.0, 0, state["step"], state["seen"]
    try:
        while (cfg.steps is None or state["step"] < cfg.steps) and not _rank0_says(
            cfg.minutes is not None and time.monotonic() - t0 >= 60.0 * cfg.minutes, ctx
        ):
            loss_sum += step_once()
            loss_n += 1
            state["seconds"] = seconds0 + time.monotonic() - t0
            if state["step"] % cfg.log_every == 0:
                state["loss"] = loss_sum / loss_n
                rate = (state["seen"] - seen0) / max(time.monotonic() - t0, 1e-9)
                if writer:
                    writer.writerow(
                        [
                            state["step"],
                            state["seen"],
                            f"{state['loss']:.6g}",
                            f"{state['lr']:.3g}",
                            f"{state['seconds']:.1f}",
                        ]
                    )
                    log.flush()
                bar.set_postfix(loss=f"{state['loss']:.4f}", lattices_per_s=f"{rate:.0f}")
                loss_sum, loss_n = 0.0, 0
            bar.update(1)
            if state["step"] % cfg.checkpoint_every == 0 or time.monotonic() - t_ckpt > 300:
                checkpoint()
                t_ckpt = time.monotonic()
    finally:
        bar.close()
        if log:
            log.close()
        if state["step"] > step0:
            checkpoint()
