"""Conditional diffusion super-resolution in the SR3 style: the baseline SKILD is compared with.

One network per factor F (``isingscale train sr3 --factor F``), the same UNet family as
SKILD (without colored I/O: it works in pixel space) with two extra input channels holding
the coarse lattice upsampled to the fine size N:

* channel 0: a Fourier-truncated ``field`` input, band-limited (zero-padded FFT)
  interpolation — ``embed`` without noise, so truncating it returns the input exactly;
* channel 1: a majority-rule block-spin input, replicated on its b x b blocks;

the channel of the other convention is zero, so one network serves both conventions
and the pair stays odd under the global spin flip (like the UNet itself).

The diffusion is the ordinary pixel-space DDPM (Ho et al. 2020; Saharia et al. 2022,
SR3) on the fine ±1 spins: x_t = √ᾱ(t) x_0 + √(1 - ᾱ(t)) ε with white noise and the
cosine schedule ᾱ(t) = cos²(π/2 (t + c)/(1 + c)), t ∈ [0, 1], c = 0.008, ε-prediction
MSE. The network's scale input carries s = T_SCALE · t. Sampling starts from pure noise
at t = 1 (SR3 has no notion of a shorter path for a smaller factor) and runs ancestral
steps with σ² = β on a uniform grid in t; the prediction of x_0 is clipped to [-1, 1]
(the data range) unless ``clip=False``. Spins are the sign of the final x_0.

Its checkpoints use the SKILD checkpoint format with task "conditional-sr" and the factor
(:func:`isingscale.skild.checkpoint.load_checkpoint` with ``task=TASK``); training runs the
one loop of :mod:`isingscale.skild.loop`; :func:`upsample` writes files as
:func:`isingscale.skild.upsample` does, with this model's stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import IsingScaleError
from ..skild.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from ..skild.coarsen import block_spins, coarse_size, embed, fourier_truncate
from ..skild.data import TrainingData, check_same_data, load_ising, training_sources
from ..skild.loop import (
    LoopConfig,
    Task,
    check_field,
    distributed,
    resume_state,
    run,
    training_device,
)
from ..skild.process import Schedule, Whitener, draw_scales
from ..skild.sampler import model_net
from ..skild.unet import UNet, UNetConfig, count_parameters
from ..skild.upsample import UpsampleResult, superresolve

TASK = "conditional-sr"
COND_CHANNELS = 2
T_SCALE = 8.0  # network scale input s = T_SCALE * t (the UNet embeds s / s_scale, s_scale = 8)
DEFAULT_STEPS = 50
C_OFFSET = 0.008  # the cosine schedule's offset c
ALPHA_BAR_MIN = 1e-5


def alpha_bar(t: np.ndarray | float) -> np.ndarray:
    """Cosine schedule ᾱ(t), float64, clipped to [ALPHA_BAR_MIN, 1]."""
    t = np.asarray(t, dtype=np.float64)
    return np.clip(
        np.cos(0.5 * math.pi * (t + C_OFFSET) / (1.0 + C_OFFSET)) ** 2, ALPHA_BAR_MIN, 1.0
    )


def conditioning(coarse: torch.Tensor | np.ndarray, kind: str, N: int, whitener) -> torch.Tensor:
    """Coarse (B, n, n) -> (B, 2, N, N) float32 conditioning channels (see module doc)."""
    x = torch.as_tensor(np.asarray(coarse) if not torch.is_tensor(coarse) else coarse).float()
    B, n = x.shape[0], x.shape[-1]
    zero = torch.zeros(B, N, N)
    if kind == "fourier":
        up = whitener.color(embed(x, N, whitener, noise_fill=False)).float()
        return torch.stack([up, zero], dim=1)
    if kind == "block":
        if N % n:
            raise IsingScaleError(f"block-spin input needs an integer factor: {n} -> {N}")
        b = N // n
        up = x.repeat_interleave(b, dim=-2).repeat_interleave(b, dim=-1)
        return torch.stack([zero, up], dim=1)
    raise IsingScaleError(f"unknown coarse input kind {kind!r}; expected fourier or block")


def training_conditioning(
    x: torch.Tensor, factor: float, whitener, g: torch.Generator
) -> torch.Tensor:
    """Conditioning (B, 2, L, L) for fine training lattices x (B, L, L), each coarse-grained
    by a random convention (block spins only where the factor is an integer dividing L)."""
    L = x.shape[-1]
    n = coarse_size(L, factor, "fourier")
    cond = conditioning(fourier_truncate(x, n), "fourier", L, whitener)
    if abs(factor - round(factor)) < 1e-9 and L % round(factor) == 0:
        use_block = torch.rand(x.shape[0], generator=g) < 0.5
        blocks = block_spins(x.numpy().astype(np.int8), int(round(factor)))
        cond = torch.where(
            use_block[:, None, None, None], conditioning(blocks, "block", L, whitener), cond
        )
    return cond


def conditional_loss(
    net, x0: torch.Tensor, cond: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """ε-prediction MSE at times t (B,) for fine fields x0 (B, N, N)."""
    ab = torch.as_tensor(
        alpha_bar(t.detach().cpu().numpy()), dtype=torch.float32, device=x0.device
    )[:, None, None]
    x_t = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps
    eps_hat = net(x_t, T_SCALE * t, cond).float()
    return ((eps_hat - eps) ** 2).mean()


@torch.no_grad()
def sr3_sampler(
    net,
    cond: torch.Tensor | None,
    shape: tuple[int, ...],
    steps: int,
    *,
    generator: torch.Generator,
    device,
    clip: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Ancestral DDPM from pure noise at t = 1 to a sample x_{t=0} (ᾱ(0) = 1 - 1.6e-4).

    net(x_t, s, cond) -> ε̂. Step t_cur -> t_prev: α = ᾱ_cur/ᾱ_prev, β = 1 - α,
    x_prev = (x - β ε̂/√(1 - ᾱ_cur))/√α + √β z, with ε̂ recomputed from the clipped x̂_0 when
    ``clip``. For unit-variance white Gaussian data and the exact ε̂ = √(1 - ᾱ) x_t this is
    the exact reverse transition at any step size (tests rely on it). The last step adds
    noise too: returning the posterior mean E[x_0 | x_t] after few steps would shrink the
    sample (variance ᾱ(1/steps) instead of 1 for Gaussian data).
    """
    if steps < 1:
        raise IsingScaleError(f"steps must be at least 1, got {steps}")
    grid = np.linspace(1.0, 0.0, steps + 1)
    x = torch.randn(shape, generator=generator).to(device)
    for t_cur, t_prev in tqdm(
        list(zip(grid[:-1], grid[1:])), disable=not progress, desc="sampling", leave=False
    ):
        ab_cur, ab_prev = float(alpha_bar(t_cur)), float(alpha_bar(t_prev))
        s = torch.full((shape[0],), T_SCALE * t_cur, dtype=torch.float32, device=device)
        eps = net(x, s, cond).float()
        if clip:
            x0 = ((x - math.sqrt(1.0 - ab_cur) * eps) / math.sqrt(ab_cur)).clamp(-1.0, 1.0)
            eps = (x - math.sqrt(ab_cur) * x0) / math.sqrt(1.0 - ab_cur)
        alpha = ab_cur / ab_prev
        beta = 1.0 - alpha
        z = torch.randn(shape, generator=generator).to(device)
        x = (x - beta / math.sqrt(1.0 - ab_cur) * eps) / math.sqrt(alpha) + math.sqrt(beta) * z
    return x


def check_factor(model, factor: float) -> None:
    """A conditional checkpoint serves only the factor it was trained for."""
    trained = float(model.meta["factor"])
    if abs(factor - trained) > 1e-6:
        raise IsingScaleError(
            f"{model.path} is a conditional super-resolver for ×{trained:g} only, "
            f"asked for ×{factor:g} (train one per factor: isingscale train sr3 --factor F)"
        )


def sr3_upsample_stage(
    model,
    coarse: np.ndarray,
    kind: str,
    N: int,
    *,
    steps: int | None = None,
    generator: torch.Generator,
    device,
    clip: bool = True,
) -> np.ndarray:
    """Coarse (B, n, n) -> fine x_0 field (B, N, N) with a conditional checkpoint; spins = sign."""
    n = coarse.shape[-1]
    check_factor(model, N / n)
    model.net.check_size(N)
    cond = conditioning(coarse, kind, N, model.whitener).to(device)
    x = sr3_sampler(
        model_net(model, device),
        cond,
        (coarse.shape[0], N, N),
        steps or DEFAULT_STEPS,
        generator=generator,
        device=device,
        clip=clip,
    )
    return x.cpu().numpy()


def upsample(
    input=None,
    *,
    factor: float,
    checkpoint,
    out=None,
    L: int | None = None,
    coarsen: str = "fourier",
    samples: int | None = None,
    repeat: int = 1,
    steps: int | None = None,
    seed: int = 0,
    device: str = "auto",
    save_field: bool = False,
    sweeps: int = 0,
    batch: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> UpsampleResult:
    """Super-resolve by the checkpoint's factor with an SR3 checkpoint (``train_sr3``); the
    file, options and result of :func:`isingscale.skild.upsample` (steps: default 50 ancestral
    steps from pure noise, whatever the factor; there is no sampler choice)."""
    dev = resolve_device(device)
    model = load_checkpoint(checkpoint, lattice="ising-periodic", device=dev, task=TASK)
    check_factor(model, factor)

    def stage(x, kind, N, generator):
        return sr3_upsample_stage(model, x, kind, N, steps=steps, generator=generator, device=dev)

    attrs = {"method": "conditional-sr (ddpm)", "sampler": "ddpm", "s_offset": "none"}
    return superresolve(
        model,
        stage,
        input=input,
        factor=factor,
        out=out,
        L=L,
        coarsen=coarsen,
        samples=samples,
        repeat=repeat,
        steps=steps,
        seed=seed,
        save_field=save_field,
        sweeps=sweeps,
        batch=batch,
        overwrite=overwrite,
        progress=progress,
        attrs=attrs,
    )


# ----------------------------------------------------------------------------
# Training.


@dataclass(frozen=True)
class SR3Config(LoopConfig):
    """Configuration of an SR3 training run (stored in its checkpoints' ``training.config``).

    factor: the one super-resolution factor the model serves. The network: base_channels,
    depth, channel_mult (the SKILD network's family, two conditioning channels). width and
    alpha_bar_min fix the SKILD schedule whose s_max(L) sets the training times
    t = s / s_max, s = s_max u^s_power.
    """

    factor: float | None = None
    base_channels: int = 16
    depth: int = 3
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    width: float = 0.4
    alpha_bar_min: float = 1e-4
    s_power: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        ok = self.factor is not None and self.factor > 1
        check_field(self, "factor", ok, "a number > 1 (one SR3 model per factor: --factor F)")
        check_field(self, "s_power", self.s_power > 0, "positive")
        self.model_config()

    def model_config(self) -> UNetConfig:
        return UNetConfig(
            base_channels=self.base_channels,
            depth=self.depth,
            channel_mult=tuple(self.channel_mult),
            cond_channels=COND_CHANNELS,
            colored_io=False,
        )


def train_sr3(
    data,
    out,
    *,
    factor: float | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train an SR3 model for ×factor on ±1 lattices of one size; returns RUNDIR/model.safetensors.

    Training draws the input convention at random per lattice (block spins only where the
    factor is an integer dividing L). options: the other fields of :class:`SR3Config`
    (base_channels, depth, channel_mult, batch, lr, lr_decay, ema, seed, ...). resume:
    continue RUNDIR/checkpoint.safetensors with its configuration (only the budget changes).
    """
    out = Path(out)
    resumed = resume_state(out, resume, read_checkpoint)
    if resumed is not None:
        given = {**options, **({"factor": factor} if factor is not None else {})}
        cfg = SR3Config.resumed(resumed[0]["training"]["config"], given, steps, minutes)
    else:
        unknown = set(options) - set(SR3Config.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown SR3 option(s): {', '.join(sorted(unknown))}")
        cfg = SR3Config(steps=steps, minutes=minutes, factor=factor, **options)
    with distributed(device) as ctx:
        dev = training_device(device, ctx)
        recorded = resumed[0]["training"]["data"] if resumed else None
        td = load_ising(training_sources(data, recorded), resumed and resumed[0])
        if resumed:
            check_same_data(td, recorded)
        task = _sr3_task(cfg, td, dev)
        return run(task, out, ctx=ctx, device=dev, resumed=resumed, progress=progress)


def _sr3_task(cfg: SR3Config, td: TrainingData, dev) -> Task:
    """The SR3 model's parts of the training loop: ε-prediction of noised fine lattices."""
    if len(td.sizes) > 1:
        raise IsingScaleError("the SR3 baseline trains on one lattice size")
    L = td.L
    coarse_size(L, cfg.factor, "fourier")
    model_config = cfg.model_config()
    model_config.check_size(L)
    schedule = Schedule(width=cfg.width, alpha_bar_min=cfg.alpha_bar_min)
    s_max = schedule.s_max(L)
    whitener = Whitener(td.spectrum)
    torch.manual_seed(cfg.seed)
    net = UNet(model_config).to(dev).set_whitener(whitener)

    def step_loss(call, step, g, ctx):
        b = cfg.batch
        x = td.batch(b * ctx.world, g, L)
        s = draw_scales(b * ctx.world, s_max, cfg.s_power, g)
        eps = torch.randn(x.shape, generator=g)
        cond = training_conditioning(x, cfg.factor, whitener, g)
        part = ctx.part(b)
        x, s, eps, cond = x[part].to(dev), s[part].to(dev), eps[part].to(dev), cond[part].to(dev)
        return conditional_loss(call, x.float(), cond, s / s_max, eps), b * ctx.world

    meta = {
        "lattice": "ising-periodic",
        "task": TASK,
        "factor": cfg.factor,
        "L": L,
        "sizes": td.sizes,
        "T": td.T,
        "spectrum": td.spectrum_dict(),
        "schedule": {**schedule.to_dict(), "s_max_train": s_max},
        "model": model_config.to_dict(),
        "block_transfer": td.transfer,
    }

    def write(path, sampling_net, training, train_tensors):
        save_checkpoint(
            path, sampling_net, {**meta, "training": training}, train_state=train_tensors
        )

    info = {"L": L, "T": td.T, "s_max": s_max, "parameters": count_parameters(net)}
    return Task(net, cfg, step_loss, write, provenance={"data": td.provenance}, info=info)
