"""Training the SKILD network: ε-prediction at random continuous s on whitened, augmented lattices.

One optimizer step draws a batch at the step's lattice size (the sizes in turn, equal sites
per step; :mod:`isingscale.skild.data`), scales s = s_max(N) u^s_power (u uniform) and noise,
and minimises the weighted ε loss of :func:`isingscale.skild.process.skild_loss`. The loop
(budget, Adam, EMA, logging, checkpoints, resume, torchrun) is :mod:`isingscale.skild.loop`;
the run directory holds its files plus ``spectrum.json``, the measured spectrum S(k) and its
power-law fit.

Images (``images=DIR``, lattice type "image-dct": DCT basis, per-channel spectrum,
reflecting padding) train the same network. ``init`` fine-tunes an existing checkpoint: its
network (shape, colored I/O or not), schedule and spectrum are kept, the optimizer starts
afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import IsingScaleError
from ..io import file_sha256
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .data import (
    TrainingData,
    check_same_data,
    check_temperature,
    load_image_data,
    load_ising,
    training_sources,
)
from .loop import LoopConfig, Task, check_field, distributed, resume_state, run, training_device
from .loop import training_seconds as _seconds_of
from .process import Schedule, Whitener, draw_scales, loss_weights, skild_loss
from .unet import UNet, UNetConfig, count_parameters

COLORS = ("auto", "grey", "rgb")


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """Configuration of a SKILD training run (stored in its checkpoints' ``training.config``).

    Network: base_channels, depth, channel_mult (channels per level = base x mult; lattice
    sizes divisible by 2**depth). Schedule: width (logistic width of a_s(k), octaves),
    alpha_bar_min (ᾱ of every mode at s_max). s_power: training scales s = s_max u^s_power,
    u ~ U(0, 1) (> 1 oversamples small s). init: a SKILD checkpoint to fine-tune. images: an
    image file or directory to train on instead of lattices (image_size, color, max_images).
    The loop's fields are :class:`~isingscale.skild.loop.LoopConfig`'s.
    """

    base_channels: int = 16
    depth: int = 3
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    width: float = 0.4
    alpha_bar_min: float = 1e-4
    s_power: float = 1.0
    init: str | None = None
    images: str | None = None
    image_size: int = 32
    color: str = "auto"
    max_images: int | None = None

    def __post_init__(self):
        super().__post_init__()
        check_field(self, "width", self.width > 0, "positive (octaves)")
        check_field(self, "alpha_bar_min", 0 < self.alpha_bar_min < 1, "in (0, 1)")
        check_field(self, "s_power", self.s_power > 0, "positive")
        check_field(self, "image_size", self.image_size >= 8, "at least 8")
        check_field(self, "color", self.color in COLORS, f"one of {', '.join(COLORS)}")
        check_field(self, "max_images", self.max_images is None or self.max_images >= 1, ">= 1")
        check_field(self, "init", not (self.init and self.images), "unset with images")
        self.model_config()  # the network's own checks (channels, depth)

    @property
    def lattice(self) -> str:
        return "image-dct" if self.images else "ising-periodic"

    def model_config(self, channels: int = 1) -> UNetConfig:
        """The network of a new run (colored I/O: the architecture)."""
        return UNetConfig(
            base_channels=self.base_channels,
            depth=self.depth,
            channel_mult=tuple(self.channel_mult),
            channels=channels,
            padding="reflect" if self.images else "circular",
        )

    def schedule(self) -> Schedule:
        return Schedule(width=self.width, alpha_bar_min=self.alpha_bar_min, lattice=self.lattice)


def train(
    data,
    out,
    *,
    images=None,
    steps: int | None = None,
    minutes: float | None = None,
    init=None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train a SKILD network on ±1 lattices or on images; returns RUNDIR/model.safetensors.

    data: ensemble files or any other lattice sources (one or a list: ``FILE.h5:/dataset``,
    ``.npy``, ``.npz``, PNG folders, arrays, ``Lattices``; same T; several sizes train one
    network for all of them, the first source's size being the checkpoint's default L); or
    images: an image file or
    directory (PNG/JPEG, .npy/.npz, CIFAR-10 batches; :mod:`isingscale.skild.images`),
    trained with the DCT basis and a per-channel spectrum. out: run directory. steps: total
    optimizer steps (counting those before a resume); minutes: wall-clock budget of this
    call; at least one. init: a SKILD checkpoint to fine-tune (its network, schedule and
    spectrum are kept; the optimizer starts afresh). resume: continue out's checkpoint with
    its configuration (only the budget changes: other options, if given, must equal the
    recorded ones; data default to the recorded files).
    options: the other fields of :class:`TrainConfig` (base_channels, depth, channel_mult,
    batch, lr, warmup, lr_decay, ema, grad_clip, seed, width, alpha_bar_min, s_power,
    image_size, color, max_images, checkpoint_every, log_every). Under torchrun, batch is
    per process (global batch = batch x WORLD_SIZE) and only rank 0 writes.
    """
    out = Path(out)
    resumed = resume_state(out, resume, read_checkpoint)
    if resumed is not None:
        given = {
            **options,
            **({"init": init} if init else {}),
            **({"images": images} if images else {}),
        }
        cfg = TrainConfig.resumed(resumed[0]["training"]["config"], given, steps, minutes)
    else:
        unknown = set(options) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        images = str(images) if images else None
        cfg = TrainConfig(steps=steps, minutes=minutes, images=images, **options)
        if init:
            cfg = _with_init(cfg, init)
    with distributed(device) as ctx:
        dev = training_device(device, ctx)
        td = _data(cfg, data, resumed, progress and ctx.is_writer)
        task = _task(cfg, td, resumed, dev, ctx)
        return run(task, out, ctx=ctx, device=dev, resumed=resumed, progress=progress)


def _with_init(cfg: TrainConfig, init) -> TrainConfig:
    """The configuration of a fine-tuning run: the checkpoint's network shape and schedule."""
    meta = load_checkpoint(init, lattice="ising-periodic", task="skild").meta
    m, sched = meta["model"], meta["schedule"]
    return replace(
        cfg,
        init=str(Path(init).resolve()),
        base_channels=m["base_channels"],
        depth=m["depth"],
        channel_mult=tuple(m["channel_mult"]),
        width=sched["width"],
        alpha_bar_min=sched["alpha_bar_min"],
    )


def _data(cfg: TrainConfig, data, resumed, progress: bool) -> TrainingData:
    """The training data; a resumed run's default is the recorded files, checked by sha256."""
    meta = resumed[0] if resumed else (read_checkpoint(cfg.init)[0] if cfg.init else None)
    if cfg.images:
        if training_sources(data, None):
            raise IsingScaleError("give either ensemble files (--data) or --images, not both")
        td = load_image_data(
            cfg.images,
            size=cfg.image_size,
            color=cfg.color,
            limit=cfg.max_images,
            meta=meta,
            progress=progress,
        )
    else:
        recorded = resumed[0]["training"]["data"] if resumed else None
        td = load_ising(training_sources(data, recorded), meta)
        if cfg.init:
            check_temperature(td, meta)
    if resumed:
        check_same_data(td, resumed[0]["training"]["data"])
    return td


def _network(cfg: TrainConfig, td: TrainingData, resumed, dev) -> UNet:
    """The network with its initial weights: fresh (seeded), or the --init checkpoint's."""
    if resumed:
        config = UNetConfig.from_dict(resumed[0]["model"])
    elif cfg.init:
        meta, tensors = read_checkpoint(cfg.init)
        config = UNetConfig.from_dict(meta["model"])
    else:
        config = cfg.model_config(td.channels)
    for N in td.sizes:
        config.check_size(N)
    torch.manual_seed(cfg.seed)
    net = UNet(config).to(dev).set_whitener(Whitener(td.spectrum))
    if cfg.init and not resumed:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return net


def _task(cfg: TrainConfig, td: TrainingData, resumed, dev, ctx) -> Task:
    """The SKILD network's parts of the training loop."""
    schedule = cfg.schedule()
    s_max = {N: schedule.s_max(N) for N in td.sizes}
    net = _network(cfg, td, resumed, dev)
    if dev.type == "cuda":
        td = td.on(dev)
    whitener = net.whitener
    w = {
        N: torch.as_tensor(loss_weights(N, cfg.lattice), dtype=torch.float32, device=dev)
        for N in td.sizes
    }

    def step_loss(call, step, g, ctx):
        # This rank's slice of the global batch at random continuous scales, at this step's
        # lattice size (the sizes in turn, equal sites per step).
        N = td.size_at(step)
        b = td.batch_size(cfg.batch, N)
        x = td.batch(b * ctx.world, g, N)
        s = draw_scales(b * ctx.world, s_max[N], cfg.s_power, g)
        eps = torch.randn(x.shape, generator=g)
        part = ctx.part(b)
        x, s, eps = x[part].to(dev), s[part].to(dev), eps[part].to(dev)
        y0 = whitener.whiten(x.float())
        return skild_loss(call, whitener.basis, schedule, y0, s, eps, w[N]), b * ctx.world

    meta = _metadata(cfg, td, schedule, net.config)

    def write(path, sampling_net, training, train_tensors):
        save_checkpoint(
            path, sampling_net, {**meta, "training": training}, train_state=train_tensors
        )

    provenance = {"data": td.provenance, **_init_provenance(cfg, resumed)}
    info = {
        "L": td.L,
        "sizes": td.sizes,
        "T": td.T,
        "s_max": s_max[td.L],
        "parameters": count_parameters(net),
    }
    spectrum = json.dumps(td.spectrum_dict(), indent=1)
    return Task(
        net,
        cfg,
        step_loss,
        write,
        provenance=provenance,
        info=info,
        files={"spectrum.json": spectrum},
    )


def _init_provenance(cfg: TrainConfig, resumed) -> dict:
    """The checkpoint a fine-tuning run started from (kept when the run is resumed)."""
    if resumed:
        init = resumed[0]["training"].get("init")
        return {"init": init} if init else {}
    if not cfg.init:
        return {}
    t = read_checkpoint(cfg.init)[0]["training"]
    return {
        "init": {
            "path": cfg.init,
            "sha256": file_sha256(cfg.init),
            "step": t.get("step"),
            "lattices_seen": t.get("lattices_seen"),
            "seconds": _seconds_of({"training": t}),
        }
    }


def _metadata(cfg: TrainConfig, td: TrainingData, schedule: Schedule, model: UNetConfig) -> dict:
    """A SKILD checkpoint's metadata, the training section aside (checkpoint.py's layout)."""
    return {
        "lattice": cfg.lattice,
        "task": "skild",
        "L": td.L,
        "sizes": td.sizes,
        "T": td.T,
        **td.extra,
        "spectrum": td.spectrum_dict(),
        "schedule": {**schedule.to_dict(), "s_max_train": schedule.s_max(td.L)},
        "model": model.to_dict(),
        "block_transfer": td.transfer,
    }
