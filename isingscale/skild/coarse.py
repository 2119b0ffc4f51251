"""The coarse stage: a second, small network for a lattice's lowest modes, used by generation.

Why. Generation from noise runs the reverse process from s_max(N) (6.84 at N = 32) to 0;
super-resolution by F starts at s* = log2 F (+ 1 for block spins) and never sees the
largest s. The main network loses a little order there, between s ≈ 3.2 and 4.8 at N = 32
(the round trip in data/README.md), and again between 3.2 and 2.2 when it must create the
modes above an 8 x 8 band; from an exact 16 x 16 band at s = 2.2 it keeps the order. At such
s a state carries only its lowest modes (k_c(s) = k_Nyq 2^-s), so those steps are a small
problem of their own.

What. A UNet of the same class (no colored I/O) on the Nc x Nc band of whitened lattices:
y'(q) = y(q) for the modes |q_x|, |q_y| < Nc/2 that Nc shares with N
(:func:`isingscale.skild.ssd.restrict`: factor 1, the Nc Nyquist lines filled with unit noise),
trained with the ε loss of :func:`isingscale.skild.process.skild_loss` at s' ∈ [s_min, s_max(Nc)]
on Nc's own schedule. By the lift identity of :mod:`isingscale.skild.ssd`, the reverse process
on Nc at s' = s - log2(N/Nc) is that of N's band at s, so generation at N ≥ 2 Nc runs::

    noise on Nc  --coarse net: s_max(Nc) -> margin-->  lift to N at s_lift = log2(N/Nc) + margin
                 --main net: s_lift -> 0-->  lattice

The lift is exact in distribution; what it drops is the signal outside the band at s_lift,
a_N(s_lift, k) ≤ 0.05 at the band edge for margin 1.2 (w = 0.4), 0.2 % of those modes'
variance. One coarse network serves every N: the whitened lowest modes of a critical lattice
are distributed alike at every size up to corrections to scaling (the RG statement ssd.py
relies on too).

Checkpoint layout: the main checkpoint's tensors and metadata unchanged, plus ``coarse.<param>``
(EMA weights) and metadata ``coarse`` = {model, size, margin, s_min, training}; loaded into
:class:`isingscale.skild.checkpoint.CoarseStage`. Training (:func:`train_coarse`) runs the
one loop of :mod:`isingscale.skild.loop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import IsingScaleError
from ..io import file_sha256
from .checkpoint import CoarseStage, SkildModel, load_checkpoint, read_checkpoint, write_safetensors
from .data import TrainingData, check_same_data, check_temperature, load_ising, training_sources
from .loop import LoopConfig, Task, check_field, distributed, resume_state, run, training_device
from .process import draw_scales, loss_weights, skild_loss
from .sampler import SAMPLERS, default_steps, model_net
from .ssd import lift, restrict
from .unet import UNet, UNetConfig, count_parameters

# Default steps per octave on both legs. For "sde" this is a calibrated choice, not a
# convergence setting: on the validation split, generation through the shipped 16 x 16 stage
# is too disordered at 10 per octave (G2(L/4) -1.8 % mean of two seeds) and too ordered at 5.1
# (+0.5 %); 7.3, 50 steps at N = 32, lies between them (data/README.md, "The coarse stage").
STAGE_STEPS_PER_OCTAVE = {"ddpm": 20, "ddim": 6, "sde": 7.3}

__all__ = [
    "CoarseStage",
    "CoarseConfig",
    "STAGE_STEPS_PER_OCTAVE",
    "band",
    "plan",
    "describe",
    "generate_batch",
    "train_coarse",
]


def band(model: SkildModel, x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """±1 lattices (B, N, N) -> whitened size x size band (B, size, size), whitened at N."""
    return restrict(model.whitener.whiten(x.float()), size, model.basis, generator=generator)


def plan(
    model: SkildModel, N: int, sampler: str, rate: float | None = None
) -> list[tuple[int, float, float, int]]:
    """[(lattice, s_start, s_end, steps)] of the two legs of generation at N (coarse first).

    rate: steps per octave on both legs (None: STAGE_STEPS_PER_OCTAVE of the sampler).
    """
    rate = STAGE_STEPS_PER_OCTAVE[sampler] if rate is None else rate
    st = model.coarse
    s_top = model.schedule.s_max(st.size)
    s_lift = st.s_lift(N)
    return [
        (st.size, s_top, st.margin, default_steps(sampler, s_top - st.margin, rate)),
        (N, s_lift, 0.0, default_steps(sampler, s_lift, rate)),
    ]


def describe(legs) -> str:
    """The legs of :func:`plan` in words, e.g. '8x8: s 4.84 -> 1.20, 37 steps; 32x32: ...'."""
    return "; ".join(f"{n}x{n}: s {a:.2f} -> {b:.2f}, {k} steps" for n, a, b, k in legs)


def generate_batch(
    model: SkildModel,
    B: int,
    N: int,
    *,
    sampler: str,
    rate: float | None,
    generator: torch.Generator,
    device,
) -> torch.Tensor:
    """B lattices from noise through the coarse stage -> colored field (B, N, N) on the CPU."""
    legs = plan(model, N, sampler, rate)
    coarse = model.coarse.net
    nets = [lambda y, s: coarse(y, s).float(), model_net(model, torch.device(device))]
    y = torch.randn((B, legs[0][0], legs[0][0]), generator=generator).to(device)
    for i, ((n, s_start, s_end, steps), net) in enumerate(zip(legs, nets)):
        if i:
            y = lift(y, n, s_start, basis=model.basis, schedule=model.schedule, generator=generator)
        y = SAMPLERS[sampler](
            net,
            y,
            s_start,
            steps,
            basis=model.basis,
            schedule=model.schedule,
            generator=generator,
            s_end=s_end,
        )
    return model.whitener.color(y).cpu()


# ----------------------------------------------------------------------------
# Training.


@dataclass(frozen=True)
class CoarseConfig(LoopConfig):
    """Configuration of a coarse-stage training run (stored in ``coarse.training.config``).

    size: the band Nc x Nc; margin: the hand-over scale on Nc's own schedule; training scales
    s' ~ U(s_min, s_max(Nc)). init: the SKILD checkpoint whose stage this is. The network:
    base_channels, depth, channel_mult (no colored I/O: it works on a band of whitened modes).
    """

    size: int = 8
    margin: float = 1.2
    s_min: float = 1.0
    base_channels: int = 32
    depth: int = 2
    channel_mult: tuple[int, ...] = (1, 2, 2)
    batch: int = 256
    init: str | None = None

    def __post_init__(self):
        super().__post_init__()
        check_field(self, "size", isinstance(self.size, int) and self.size >= 4, "an integer >= 4")
        check_field(self, "s_min", self.s_min >= 0, "non-negative")
        check_field(
            self,
            "margin",
            self.margin > self.s_min,
            "above s_min (the stage trains below its hand-over)",
        )
        check_field(
            self, "init", bool(self.init), "the SKILD checkpoint whose stage this is (--init)"
        )
        self.model_config().check_size(self.size)

    def model_config(self) -> UNetConfig:
        return UNetConfig(
            base_channels=self.base_channels,
            depth=self.depth,
            channel_mult=tuple(self.channel_mult),
            colored_io=False,
        )


def train_coarse(
    data,
    out,
    *,
    init=None,
    steps: int | None = None,
    minutes: float | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train the coarse stage of SKILD checkpoint `init` on ±1 lattices; returns
    RUNDIR/model.safetensors: `init`'s network, spectrum and metadata unchanged plus the stage.

    The main network is not trained. options: the other fields of :class:`CoarseConfig`
    (size, margin, s_min, base_channels, depth, channel_mult, batch, lr, lr_decay, ema, seed,
    ...). resume: continue RUNDIR/checkpoint.safetensors (`init` and data are taken from it).
    """
    out = Path(out)
    resumed = resume_state(out, resume, read_checkpoint)
    if resumed is not None:
        if "coarse" not in resumed[0]:
            raise IsingScaleError(f"--resume: {out} is not a coarse-stage training run")
        saved = dict(resumed[0]["coarse"]["training"]["config"])
        if isinstance(saved.get("init"), dict):  # recorded as {path, sha256} before 0.2
            saved["init"] = saved["init"]["path"]
        given = {**options, **({"init": init} if init else {})}
        cfg = CoarseConfig.resumed(saved, given, steps, minutes)
    else:
        unknown = set(options) - set(CoarseConfig.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown coarse-stage option(s): {', '.join(sorted(unknown))}")
        init = str(Path(init).resolve()) if init else None
        cfg = CoarseConfig(steps=steps, minutes=minutes, init=init, **options)
    with distributed(device) as ctx:
        dev = training_device(device, ctx)
        # The main network comes from the run's own checkpoint when resuming (the same weights).
        main = load_checkpoint(
            out / "checkpoint.safetensors" if resumed else cfg.init,
            lattice="ising-periodic",
            task="skild",
            device=dev,
        )
        task = _coarse_task(cfg, main, data, resumed, dev)
        return run(task, out, ctx=ctx, device=dev, resumed=resumed, progress=progress)


def _coarse_data(cfg: CoarseConfig, main: SkildModel, data, resumed) -> TrainingData:
    main_meta = {k: v for k, v in main.meta.items() if k != "coarse"}
    recorded = resumed[0]["coarse"]["training"]["data"] if resumed else None
    td = load_ising(training_sources(data, recorded), main_meta)
    if resumed:
        check_same_data(td, recorded)
    check_temperature(td, main_meta)
    small = [N for N in td.sizes if N < 2 * cfg.size]
    if small:
        raise IsingScaleError(
            f"--coarse {cfg.size}: training lattices must be at least {2 * cfg.size} wide, got "
            f"{', '.join(map(str, small))}"
        )
    return td


def _coarse_task(cfg: CoarseConfig, main: SkildModel, data, resumed, dev) -> Task:
    """The coarse stage's parts of the training loop: bands of the main model's whitened data."""
    td = _coarse_data(cfg, main, data, resumed)
    schedule, basis = main.schedule, main.basis
    s_top = schedule.s_max(cfg.size)
    w = torch.as_tensor(loss_weights(cfg.size), dtype=torch.float32, device=dev)
    torch.manual_seed(cfg.seed)
    net = UNet(cfg.model_config()).to(dev)

    def step_loss(call, step, g, ctx):
        # The lattice sizes in turn; every size gives a size x size band, so the batch is the same.
        B = cfg.batch * ctx.world
        x = td.batch(B, g, td.size_at(step))
        with torch.no_grad():
            y0 = band(main, x, cfg.size, g)
        s = cfg.s_min + draw_scales(B, s_top - cfg.s_min, 1.0, g)
        eps = torch.randn(y0.shape, generator=g)
        part = ctx.part(cfg.batch)
        y0, s, eps = y0[part].to(dev), s[part].to(dev), eps[part].to(dev)
        return skild_loss(call, basis, schedule, y0, s, eps, w), B

    main_meta = {k: v for k, v in main.meta.items() if k != "coarse"}
    main_tensors = {f"model.{k}": v for k, v in main.net.state_dict().items()}
    stage = {"model": cfg.model_config().to_dict(), "size": cfg.size, "margin": cfg.margin}

    def write(path, sampling_net, training, train_tensors):
        meta = {**main_meta, "coarse": {**stage, "s_min": cfg.s_min, "training": training}}
        tensors = {
            **main_tensors,
            **{f"coarse.{k}": v for k, v in sampling_net.state_dict().items()},
        }
        write_safetensors(path, {**tensors, **(train_tensors or {})}, meta)

    if resumed:
        provenance = {"init": resumed[0]["coarse"]["training"].get("init")}
    else:
        provenance = {"init": {"path": cfg.init, "sha256": file_sha256(cfg.init)}}
    info = {"sizes": td.sizes, "s_max": s_top, "parameters": count_parameters(net)}
    return Task(
        net,
        cfg,
        step_loss,
        write,
        section=lambda meta: meta["coarse"]["training"],
        prefix="coarse.",
        seen_key="samples_seen",
        provenance={"data": td.provenance, **provenance},
        info=info,
    )
