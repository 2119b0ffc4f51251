"""Kernel interpolation: a trained network run at s times its training resolution, no retraining.

After "Supersampling Stable Diffusion and Beyond" (papers/kernel_interpolation_supersampling.txt):
every spatial convolution kernel is resampled on a grid s times finer and multiplied by a
constant so that the layer approximates the same continuum operator.

The constant. A k x k kernel w_j acting on a field sampled at spacing a is the Riemann sum
of a continuum convolution,

    (w * f)(x) = sum_j w_j f(x - j a)  ~  ∫ W(u) f(x - u) d²u,   w_j = a² W(j a).

On a grid of spacing a / s the same operator is sum_m (a/s)² W(m a / s) f(x - m a / s), so the
new taps are w'_m = (1/s²) ŵ(m / s), with ŵ(u) = a² W(u a) the kernel interpolated at
fractional tap positions. Interpolation alone multiplies the tap sum by about s² (s² times
as many taps of similar size), and 1/s² brings it back: a constant field gets the same
response. The paper states the constant as s²; that is the same rule if its s is the ratio
of sample spacings (new / old), i.e. 1 / (our s). With our s = new resolution / old
resolution > 1, multiplying by s² instead would scale every layer's response by s⁴.
``tests/baselines/test_kernel_interp.py`` checks 1/s² against the continuum statement.

The continuous kernel. ŵ is the bilinear interpolant of the taps with zeros one tap beyond
the edge (``mode="tent"``, the default): support |u| < R + 1 for R = k // 2, sampled at
m / s for |m| <= R' = ceil((R + 1) s) - 1 (3 x 3 at s = 2 -> 7 x 7, at s = 4 -> 15 x 15;
sizes stay odd, the kernel centred). For integer s this conserves the tap sum exactly
(the tent functions sampled at spacing 1/s sum to s per axis). ``mode="aligned"`` samples
only |u| <= R (3 x 3 at s = 2 -> 5 x 5, align-corners resizing): it drops the outer half
tap of mass, an O(1) error in the response for kernels with weight at the edge.

Only kernels larger than 1 x 1 are resampled (a 1 x 1 kernel is a pointwise map at any
resolution); biases are kept. Convolutions must be stride 1, dilation 1, with
size-preserving padding k // 2 (circular for periodic lattices); the padding is enlarged
with the kernel so output sizes are unchanged.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..errors import IsingScaleError
from .cnn import CNNModel, check_block_kind, cnn_probabilities, sample_spins
from .inputs import check_coarse, integer_factor

MODES = ("tent", "aligned")

# ----------------------------------------------------------------------------
# Kernel resampling.


def resampling_matrix(k: int, scale: float, *, mode: str = "tent") -> np.ndarray:
    """(k', k) matrix T with T[m, j] = tent(m / s - j): new taps along one axis are T w."""
    if mode not in MODES:
        raise IsingScaleError(
            f"unknown kernel interpolation mode {mode!r}; expected 'tent' or 'aligned'"
        )
    R = k // 2
    if mode == "tent":
        R_new = math.ceil((R + 1) * scale - 1e-9) - 1
    else:
        R_new = math.floor(R * scale + 1e-9)
    u = np.arange(-R_new, R_new + 1) / scale
    j = np.arange(-R, R + 1)
    return np.maximum(0.0, 1.0 - np.abs(u[:, None] - j[None, :]))


def _resample_conv(conv: nn.Conv2d, scale: float, mode: str, name: str) -> None:
    kh, kw = conv.kernel_size
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or kh % 2 == 0 or kw % 2 == 0:
        raise IsingScaleError(
            f"cannot interpolate {name}: need stride 1, dilation 1 and odd kernel sizes"
        )
    if tuple(conv.padding) != (kh // 2, kw // 2):
        raise IsingScaleError(
            f"cannot interpolate {name}: padding {conv.padding} does not keep the output size"
        )
    w = conv.weight.detach()
    Ty, Tx = (
        torch.as_tensor(resampling_matrix(k, scale, mode=mode), dtype=w.dtype) for k in (kh, kw)
    )
    w_new = torch.einsum("ai,ocij,bj->ocab", Ty, w, Tx) / scale**2
    ph, pw = w_new.shape[-2] // 2, w_new.shape[-1] // 2
    conv.weight = nn.Parameter(w_new.contiguous(), requires_grad=conv.weight.requires_grad)
    conv.kernel_size = tuple(w_new.shape[-2:])
    conv.padding = (ph, pw)
    conv._reversed_padding_repeated_twice = [pw, pw, ph, ph]


def interpolate_kernels(net: nn.Module, scale: float, *, mode: str = "tent") -> nn.Module:
    """A copy of ``net`` whose spatial conv kernels act at ``scale`` times the resolution.

    Each nn.Conv2d kernel larger than 1 x 1 is resampled at spacing 1/scale and multiplied
    by 1/scale² (module docstring); padding grows with it, so every output keeps its size.
    scale = 1 returns an identical copy. ``net`` itself is not modified.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise IsingScaleError(
            f"kernel interpolation scale must be positive and finite, got {scale}"
        )
    out = copy.deepcopy(net)
    for name, m in out.named_modules():
        if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1:
            _resample_conv(m, scale, mode, name or type(m).__name__)
    return out


# ----------------------------------------------------------------------------
# The ×2 CNN as a one-pass ×F network.


def cnn_ki_upsample(
    model: CNNModel, coarse, kind: str, N: int, *, generator: torch.Generator, mode: str = "tent"
) -> np.ndarray:
    """Block spins (B, n, n) -> spins (B, N, N) int8 in one pass, F = N / n integer >= model.factor.

    The input is replicated F x F and run through the network with kernels interpolated by
    s = F / model.factor; no retraining. F = model.factor is :func:`cnn_upsample` exactly.
    """
    check_block_kind(kind)
    x = check_coarse(coarse, kind, N).astype(np.int8)
    F = integer_factor(x.shape[-1], N, "the kernel-interpolated CNN")
    if F < model.factor:
        raise IsingScaleError(
            f"the kernel-interpolated ×{model.factor} CNN needs F >= {model.factor}, got {F}"
        )
    net = interpolate_kernels(model.net, F / model.factor, mode=mode)
    return sample_spins(cnn_probabilities(net, x, F), generator)
