"""Conditional diffusion super-resolution in the SR3 style: the baseline SKILD is compared with.

One network per factor F (``isingscale train --conditional --factor F``), the same UNet
family as SKILD with two extra input channels holding the coarse lattice upsampled to
the fine size N:

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
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import IsingScaleError
from .coarsen import embed

TASK = "conditional-sr"
COND_CHANNELS = 2
T_SCALE = 8.0  # network scale input s = T_SCALE * t (the UNet embeds s / s_scale, s_scale = 8)
DEFAULT_STEPS = 50
_C = 0.008
ALPHA_BAR_MIN = 1e-5


def alpha_bar(t: np.ndarray | float) -> np.ndarray:
    """Cosine schedule ᾱ(t), float64, clipped to [ALPHA_BAR_MIN, 1]."""
    t = np.asarray(t, dtype=np.float64)
    return np.clip(np.cos(0.5 * math.pi * (t + _C) / (1.0 + _C)) ** 2, ALPHA_BAR_MIN, 1.0)


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
    from .coarsen import block_spins, coarse_size, fourier_truncate

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
            f"asked for ×{factor:g} (train one per factor: isingscale train --conditional --factor F)"
        )


def conditional_upsample_stage(
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
    from .generate import model_net

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


__all__ = [
    "TASK",
    "alpha_bar",
    "conditioning",
    "training_conditioning",
    "conditional_loss",
    "sr3_sampler",
    "conditional_upsample_stage",
    "check_factor",
    "DEFAULT_STEPS",
]
