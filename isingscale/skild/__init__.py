"""SKILD: scale-invariant k-space diffusion for critical Ising lattices (DESIGN.md §3).

One unconditional model, trained with :func:`train`, does generation (:func:`generate`)
and super-resolution by any factor (:func:`upsample`); :func:`coarsen` produces the coarse
inputs (Fourier truncation or majority-rule block spins). The pieces:

``spectral``   orthonormal FFT / DCT bases, spectrum S(k) estimation and power-law fit
``process``    scale schedule a_s(k), forward marginal, loss
``unet``       the network (circular padding, odd under spin flip, global bottleneck path)
``sampler``    ddpm_sampler / ode_sampler / sde_sampler: plain functions of (net, y_start, s_start, steps)
``coarsen``    truncation, block spins, embedding, block-spin transfer function
``coarse``     the coarse stage: a small network for the lowest modes, which generation uses
``ssd``        restriction to and exact lift from a smaller lattice (scale-space sampling)
``checkpoint`` safetensors + JSON metadata, never pickle
"""

from __future__ import annotations

from .checkpoint import SkildModel, default_checkpoint, load_checkpoint, save_checkpoint
from .coarsen import block_spins, coarsen, embed, fourier_truncate
from .generate import generate, generate_summary
from .process import Schedule, Whitener, forward_marginal, skild_loss
from .sampler import ddpm_sampler, ode_sampler, sde_sampler
from .spectral import Basis, Spectrum, estimate_spectrum
from .train import train
from .unet import UNet, UNetConfig
from .upsample import UpsampleResult, upsample

__all__ = [
    "train",
    "generate",
    "generate_summary",
    "upsample",
    "coarsen",
    "UpsampleResult",
    "load_checkpoint",
    "save_checkpoint",
    "default_checkpoint",
    "SkildModel",
    "Schedule",
    "Whitener",
    "forward_marginal",
    "skild_loss",
    "ddpm_sampler",
    "ode_sampler",
    "sde_sampler",
    "Basis",
    "Spectrum",
    "estimate_spectrum",
    "block_spins",
    "fourier_truncate",
    "embed",
    "UNet",
    "UNetConfig",
]
