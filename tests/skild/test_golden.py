"""Fixed-seed outputs of ``upsample`` and ``generate`` (shipped checkpoint), kept bit for bit.

Six small runs through the public API (Fourier and block inputs, factors 2, 2.5 and 4, one
run in two stages, the three samplers, generation through the coarse stage and without it)
are compared with ``tests/data/golden_skild.npz``, written by the code before the package
was reorganised. The inputs are the first lattices of the stored Monte Carlo file
``tests/data/ising_L32_seed23.npz`` (see tests/skild/guard.py), not fresh Monte Carlo, so
the outputs do not depend on simulate's defaults.

Fields (the pre-sign sampler output) must agree to 2e-3 and spins exactly wherever the
golden field is farther than that from zero. On the reference platform (x86-64 CPU with AVX2,
torch 2.13 CPU build) they are bitwise equal; a CPU with other floating-point kernels rounds
the convolutions differently, and the samplers amplify that: on an AVX-512 CPU the fields
differ by 1e-6 (median) and up to 5.1e-4 (every spin equal). A real change of numbers (a
seed, a schedule, a network weight) moves fields by O(1). A change of numbers that is intended
(a retrained checkpoint, a new sampler default) rewrites the file with
``python -m tests.skild.test_golden`` and says why in the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from .guard import stored_lattices

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_skild.npz"
FIELD_ATOL = 2e-3


def _file(path: Path, spins: np.ndarray) -> Path:
    import isingscale as isc

    with isc.create_ensemble(
        path, L=spins.shape[-1], kind="montecarlo", attrs={"T": isc.T_C}, overwrite=True
    ) as w:
        w.append(spins)
    return path


def runs(workdir: Path) -> dict[str, np.ndarray]:
    """{case/spins, case/field} of every fixed-seed run (the shipped checkpoint, one CPU thread).

    The thread count is fixed because it changes the order of the float sums inside the
    convolutions, and the samplers amplify that to ~1e-4 in the field. It is set after the
    package is imported: numba's import resets the OpenMP runtime torch shares with it.
    """
    import torch

    import isingscale as isc
    import isingscale.skild.upsample  # noqa: F401  (imports numba before the thread count is set)

    torch.set_num_threads(1)
    workdir = Path(workdir)
    fine = stored_lattices(24)
    common = dict(device="cpu", progress=False, overwrite=True, save_field=True)
    coarse = {
        "x2_fourier": isc.skild.coarsen(
            _file(workdir / "a.h5", fine[:6]), factor=2, method="fourier", out=workdir / "ca.h5"
        ),
        "x4_block": isc.skild.coarsen(
            _file(workdir / "b.h5", fine[6:12]), factor=4, method="block", out=workdir / "cb.h5"
        ),
        "x2.5_fourier_ddpm": isc.skild.coarsen(
            _file(workdir / "c.h5", fine[12:16]), factor=2, method="fourier", out=workdir / "cc.h5"
        ),
        "x2_twice_block_ddim": isc.skild.coarsen(
            _file(workdir / "d.h5", fine[16:20]), factor=4, method="block", out=workdir / "cd.h5"
        ),
    }
    settings = {
        "x2_fourier": dict(factor=2, seed=0),
        "x4_block": dict(factor=4, seed=1),
        "x2.5_fourier_ddpm": dict(factor=2.5, seed=2, sampler="ddpm", steps=8),
        "x2_twice_block_ddim": dict(factor=2, repeat=2, seed=3, sampler="ddim"),
    }
    out = {}
    for case, path in coarse.items():
        torch.set_num_threads(1)  # again: a numba call (e.g. a comparison) resets it
        res = isc.skild.upsample(path, out=workdir / f"{case}.h5", **settings[case], **common)
        out.update(_read(case, res.path))
    gen = {
        "generate_coarse_stage": dict(L=32, samples=3, seed=4),
        "generate_main_ddim": dict(L=32, samples=2, seed=5, sampler="ddim", coarse_stage=False),
    }
    for case, kw in gen.items():
        torch.set_num_threads(1)
        path = isc.skild.generate(None, out=workdir / f"{case}.h5", **kw, **common)
        out.update(_read(case, path))
    return out


def _read(case: str, path) -> dict[str, np.ndarray]:
    import isingscale as isc

    d = isc.read_ensemble(path, datasets=("spins", "field"))
    return {f"{case}/spins": d["spins"], f"{case}/field": d["field"]}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return runs(tmp_path_factory.mktemp("golden"))


def test_golden_file_covers_every_case(outputs):
    with np.load(GOLDEN) as g:
        assert sorted(g.files) == sorted(outputs)


@pytest.mark.parametrize(
    "case",
    [
        "x2_fourier",
        "x4_block",
        "x2.5_fourier_ddpm",
        "x2_twice_block_ddim",
        "generate_coarse_stage",
        "generate_main_ddim",
    ],
)
def test_fixed_seed_output_unchanged(case, outputs):
    with np.load(GOLDEN) as g:
        spins, field = g[f"{case}/spins"], g[f"{case}/field"]
    got_spins, got_field = outputs[f"{case}/spins"], outputs[f"{case}/field"]
    assert got_spins.shape == spins.shape and got_field.shape == field.shape
    diff = np.abs(got_field.astype(np.float64) - field)
    assert diff.max() < FIELD_ATOL, f"{case}: field differs by up to {diff.max():.3g}"
    decided = np.abs(field) > FIELD_ATOL  # rounding cannot move the sign of these
    flipped = int((got_spins != spins)[decided].sum())
    assert flipped == 0, f"{case}: {flipped} of {int(decided.sum())} decided spins differ"


if __name__ == "__main__":  # python -m tests.skild.test_golden: rewrite the golden file
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        np.savez_compressed(GOLDEN, **runs(Path(tmp)))
    print(f"wrote {GOLDEN}", file=sys.stderr)
