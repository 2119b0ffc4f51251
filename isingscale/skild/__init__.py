"""SKILD: scale-invariant k-space diffusion for critical Ising lattices (docs/design.md, "SKILD").

One unconditional model, trained with :func:`train`, does generation (:func:`generate`)
and super-resolution by any factor (:func:`upsample`), stage by stage to any size
(:func:`grow`); :func:`coarsen` produces the coarse
inputs (Fourier truncation or majority-rule block spins). The pieces:

``spectral``   orthonormal FFT / DCT bases, spectrum S(k) estimation and power-law fit
``process``    scale schedule a_s(k), forward marginal, loss
``unet``       the network (circular padding, odd under spin flip, global path, colored I/O)
``sampler``    ddpm / ode / sde samplers, plain functions of (net, y_start, s_start, steps),
               and what every sampling path shares (default steps, reverse, to_spins)
``coarsen``    truncation, block spins, embedding, block-spin transfer function, start scale
``stages``     the sizes a network takes; the stages that grow a lattice to a target size
``grow``       growing lattices stage by stage, one file per stage
``coarse``     the coarse stage: a small network for the lowest modes, which generation uses
``ssd``        restriction to and exact lift from a smaller lattice (scale-space sampling)
``checkpoint`` safetensors + JSON metadata, never pickle
``data``       training data: ensembles (and images), spectrum, augmented batches
``loop``       the one training loop (resume, logs, checkpoints, torchrun), used by every model
``train``      the SKILD network's training configuration and loss
``images``     image loaders and files (the "image-dct" lattice type)

The model does not judge itself: comparisons with Monte Carlo live in
:mod:`isingscale.evaluation`.
"""

from __future__ import annotations

from .checkpoint import SkildModel, default_checkpoint, load_checkpoint, save_checkpoint
from .coarse import CoarseConfig, train_coarse
from .coarsen import block_spins, coarsen, embed, fourier_truncate
from .generate import generate, generate_summary
from .grow import GrowResult, grow, grow_plan
from .loop import LoopConfig
from .process import Schedule, Whitener, forward_marginal, skild_loss
from .sampler import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    STEPS_PER_OCTAVE,
    ddpm_sampler,
    default_steps,
    model_net,
    ode_sampler,
    reverse,
    sde_sampler,
    to_spins,
)
from .spectral import Basis, Spectrum, estimate_spectrum
from .train import TrainConfig, train
from .unet import UNet, UNetConfig
from .upsample import UpsampleResult, upsample

__all__ = [
    "train",
    "TrainConfig",
    "train_coarse",
    "CoarseConfig",
    "LoopConfig",
    "generate",
    "generate_summary",
    "upsample",
    "grow",
    "grow_plan",
    "GrowResult",
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
    "SAMPLERS",
    "DEFAULT_SAMPLER",
    "STEPS_PER_OCTAVE",
    "default_steps",
    "ddpm_sampler",
    "ode_sampler",
    "sde_sampler",
    "model_net",
    "reverse",
    "to_spins",
    "Basis",
    "Spectrum",
    "estimate_spectrum",
    "block_spins",
    "fourier_truncate",
    "embed",
    "UNet",
    "UNetConfig",
]
