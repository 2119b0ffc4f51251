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
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import IsingScaleError
from ._inputs import check_coarse, integer_factor
from .cnn import CNNModel, check_block_kind, cnn_probabilities, cnn_upsample, load_cnn, sample_spins

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


# ----------------------------------------------------------------------------
# Comparison: kernel-interpolated vs native vs repeated, against Monte Carlo.


def _as_model(m) -> CNNModel:
    return m if isinstance(m, CNNModel) else load_cnn(m)


def _write(path: Path, spins: np.ndarray, attrs: dict) -> Path:
    from ..io import create_ensemble
    from ..skild.coarsen import lattice_energy

    with create_ensemble(
        path, L=spins.shape[-1], kind="superresolved", attrs=attrs, overwrite=True
    ) as w:
        w.append(spins, energy=lattice_energy(spins), magnetization=spins.mean(axis=(-2, -1)))
    return path


def _summary(cmp: dict, seconds: float, path: Path) -> dict:
    return {
        "seconds_per_lattice": seconds,
        "path": str(path),
        "G2_chi2_dof": cmp["G2"]["chi2_dof"],
        "G2_max_abs_z": cmp["G2"]["max_abs_z"],
        "G2_rel_r1": cmp["G2_rel_r1"],
        "G2_rel_rL4": cmp["G2_rel_rL4"],
        "energy": cmp["energy"],
        "comparison": cmp,
    }


def compare_kernel_interpolation(
    model2,
    model_native,
    *,
    inputs,
    truth,
    workdir,
    factor: int = 4,
    samples: int | None = None,
    seed: int = 0,
    n_blocks: int = 32,
    progress: bool = False,
) -> dict:
    """×factor super-resolution three ways, each measured against Monte Carlo.

    ``kernel_interpolated``: the ×2 net (``model2``) in one pass with kernels interpolated by
    factor / 2; ``native``: a ×factor net of the same architecture (``model_native``);
    ``repeated``: the ×2 net applied log2(factor) times. Inputs: block_spins(x, factor) of the
    first ``samples`` lattices of ``inputs``; reference: ``truth`` (an independent ensemble at
    the same L). Output ensembles go to ``workdir``. Models are CNNModel or checkpoint paths.

    Returns {"L", "factor", "samples", "mc": {"path", "energy", "energy_err"},
    "methods": {name: {"seconds_per_lattice", "G2_chi2_dof", "G2_max_abs_z", "G2_rel_r1",
    "G2_rel_rL4", "energy": {...}, "comparison": skild.evaluate.compare(...), "path"}}}.
    """
    from ..io import read_attrs, read_ensemble
    from ..skild.coarsen import block_spins
    from ..skild.evaluate import compare, measure_file

    model2, model_native = _as_model(model2), _as_model(model_native)
    if model2.factor != 2 or model_native.factor != factor:
        have = f"×{model2.factor} and ×{model_native.factor}"
        raise IsingScaleError(f"need a ×2 and a native ×{factor} CNN, got {have}")
    fine = read_ensemble(inputs, stop=samples, datasets=("spins",))["spins"]
    L, T = fine.shape[-1], read_attrs(inputs).get("T")
    if int(read_attrs(truth)["L"]) != L:
        raise IsingScaleError(f"{truth} and {inputs} hold different lattice sizes")
    coarse = block_spins(fine, factor)
    methods = {
        "kernel_interpolated": (partial(cnn_ki_upsample, model2), model2),
        "native": (partial(cnn_upsample, model_native), model_native),
        "repeated": (partial(cnn_upsample, model2), model2),
    }
    mc = measure_file(Path(truth), n_blocks=n_blocks)
    result = {
        "L": L,
        "factor": factor,
        "samples": len(fine),
        "mc": {
            "path": str(truth),
            "energy": float(mc["energy"]),
            "energy_err": float(mc["energy_err"]),
        },
        "methods": {},
    }
    for name, (fn, model) in methods.items():
        t0 = time.perf_counter()
        spins = fn(coarse, "block", L, generator=torch.Generator().manual_seed(seed))
        seconds = (time.perf_counter() - t0) / len(spins)
        attrs = {
            "method": f"cnn-{name}",
            "factor": float(factor),
            "checkpoint": str(model.path),
            "checkpoint_sha256": str(model.sha256),
            "source": str(Path(inputs).resolve()),
            "T": T,
        }
        path = _write(Path(workdir) / f"cnn_{name}_x{factor}.h5", spins, attrs)
        result["methods"][name] = _summary(
            compare(measure_file(path, n_blocks=n_blocks), mc), seconds, path
        )
        if progress:
            row = result["methods"][name]
            print(
                f"{name:>20}: G2 chi2/dof {row['G2_chi2_dof']:.2f}, energy rel {row['energy']['rel_dev']:+.4f}, "
                f"{1e3 * seconds:.3f} ms/lattice",
                file=sys.stderr,
                flush=True,
            )
    return result
