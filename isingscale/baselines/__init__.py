"""Super-resolution baselines for critical Ising lattices (docs/design.md, "Baselines").

Every baseline shares the SKILD sampler's calling convention::

    fn(coarse, kind, N, *, generator) -> (B, N, N) int8 ±1 spins, periodic

coarse (B, n, n): kind "fourier" a float field from ``skild.coarsen.fourier_truncate`` (fine ±1
amplitude scale), kind "block" ±1 majority-rule block spins. Unsupported inputs raise
IsingScaleError. The CNN functions take the model first: ``functools.partial(cnn_upsample,
model)`` fits the convention.

``inputs``         input checks and lattice alignment shared by every baseline
``interpolate``    nearest (integer f), fourier (band-limited), bicubic (periodic); deterministic
``cnn``            CNN super-resolver after Efthymiou, Beach & Melko, PRB 99, 075113 (2019)
``kernel_interp``  kernel interpolation of a trained network (×2 CNN run as ×F in one pass)
``sr3``            SR3-style conditional diffusion, one model per factor (Saharia et al. 2022)

Trainable baselines (CNN, SR3) train in SKILD's one loop (:mod:`isingscale.skild.loop`).
"""

from __future__ import annotations

from .cnn import (
    CNNConfig,
    CNNModel,
    CNNNet,
    CNNTrainConfig,
    cnn_probabilities,
    cnn_upsample,
    load_cnn,
    train_cnn,
)
from .interpolate import bicubic, bicubic_interpolate, fourier, fourier_interpolate, nearest
from .kernel_interp import cnn_ki_upsample, interpolate_kernels
from .sr3 import SR3Config, sr3_upsample_stage, train_sr3

__all__ = [
    "nearest",
    "fourier",
    "bicubic",
    "fourier_interpolate",
    "bicubic_interpolate",
    "CNNConfig",
    "CNNTrainConfig",
    "CNNNet",
    "CNNModel",
    "train_cnn",
    "load_cnn",
    "cnn_probabilities",
    "cnn_upsample",
    "interpolate_kernels",
    "cnn_ki_upsample",
    "SR3Config",
    "train_sr3",
    "sr3_upsample_stage",
]
