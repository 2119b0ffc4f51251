"""Kernel interpolation measured: the ×2 CNN run at ×F in one pass, against a native ×F CNN
and the ×2 CNN applied repeatedly, each against Monte Carlo (``isingscale bench kernel-interp``).

The networks and the interpolation are :mod:`isingscale.baselines.cnn` and
:mod:`isingscale.baselines.kernel_interp`; the measurement and comparison are
:mod:`isingscale.evaluation.comparison`'s.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..baselines.cnn import CNNModel, cnn_upsample, load_cnn
from ..baselines.kernel_interp import cnn_ki_upsample
from ..errors import IsingScaleError
from ..skild.coarsen import block_spins, lattice_energy
from .comparison import compare_measured, measure_file


def _as_model(m) -> CNNModel:
    return m if isinstance(m, CNNModel) else load_cnn(m)


def _write(path: Path, spins: np.ndarray, attrs: dict) -> Path:
    from ..io import create_ensemble

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
    first ``samples`` lattices of ``inputs``; reference: ``truth`` (independent, same L; both
    lattice sources). Outputs go to ``workdir``. Models are CNNModel or checkpoint paths.

    Returns {"L", "factor", "samples", "mc": {"path", "energy", "energy_err"},
    "methods": {name: {"seconds_per_lattice", "G2_chi2_dof", "G2_max_abs_z", "G2_rel_r1",
    "G2_rel_rL4", "energy": {...}, "comparison": compare_measured(...), "path"}}}.
    """
    from ..lattices import open_lattices

    model2, model_native = _as_model(model2), _as_model(model_native)
    if model2.factor != 2 or model_native.factor != factor:
        have = f"×{model2.factor} and ×{model_native.factor}"
        raise IsingScaleError(f"need a ×2 and a native ×{factor} CNN, got {have}")
    lat = open_lattices(inputs)
    fine = lat.read(0, samples)
    L, T = lat.L, lat.attrs["T"]
    if open_lattices(truth).L != L:
        raise IsingScaleError(f"{truth} and {inputs} hold different lattice sizes")
    coarse = block_spins(fine, factor)
    methods = {
        "kernel_interpolated": (partial(cnn_ki_upsample, model2), model2),
        "native": (partial(cnn_upsample, model_native), model_native),
        "repeated": (partial(cnn_upsample, model2), model2),
    }
    mc = measure_file(truth, n_blocks=n_blocks)
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
            "source": lat.spec or lat.source,
            "T": T,
        }
        path = _write(Path(workdir) / f"cnn_{name}_x{factor}.h5", spins, attrs)
        result["methods"][name] = _summary(
            compare_measured(measure_file(path, n_blocks=n_blocks), mc), seconds, path
        )
        if progress:
            row = result["methods"][name]
            print(
                f"{name:>20}: G2 chi2/dof {row['G2_chi2_dof']:.2f}, energy rel "
                f"{row['energy']['rel_dev']:+.4f}, "
                f"{1e3 * seconds:.3f} ms/lattice",
                file=sys.stderr,
                flush=True,
            )
    return result
