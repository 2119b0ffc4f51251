"""The quality regression guard: ×4 super-resolution of stored Monte Carlo lattices, paired.

The shipped checkpoint super-resolves Fourier-truncated 8 x 8 inputs of ``SAMPLES`` stored
L = 32 Wolff lattices at Tc back to 32 x 32, through the public API (``coarsen`` then
``upsample``, the default ``sde`` sampler). Each output is compared with the very lattice its
input came from: per lattice, d(r) = G2_out(r) - G2_in(r) for r = 1 ... 4 (nearest-image
correlations along both axes, averaged) and the energy per site difference. For a correct
sampler E[d] = 0; pairing cancels most of the large-scale fluctuation that the output
inherits from its input, so the standard error of the mean difference (from the per-lattice
differences, hence valid for the paired design) is 2-3 times smaller than for independent
ensembles. Verdict: every |mean d(r) / mean G2_in(r)| below ``TOLERANCE``. The energy per
site is -2 G2(1) (J = 1), so its relative deviation is that of G2(1).

The statistics are brute-force numpy (np.roll), independent of isingscale.analysis.
``tests/data/ising_L32_seed23.npz`` holds the lattices (bits packed): made once with
explicit Monte Carlo settings, so the guard does not move when simulate's defaults do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "ising_L32_seed23.npz"
FACTOR = 4
SAMPLES = 512
R_MAX = 4
TOLERANCE = 0.02  # relative |Δ| allowed in G2(r), r = 1 ... R_MAX (r = 1: the energy)
MAX_SE = 0.006  # the guard must resolve a 3 % shift: its relative SE must stay below this


def stored_lattices(n: int | None = None) -> np.ndarray:
    """The stored ±1 lattices (512, 32, 32) int8 (the first n)."""
    with np.load(DATA) as f:
        L = int(f["L"])
        bits = np.unpackbits(f["packed"], axis=-1)[..., :L]
    spins = np.where(bits > 0, 1, -1).astype(np.int8)
    return spins if n is None else spins[:n]


def g2_axes(spins: np.ndarray, r_max: int = R_MAX) -> np.ndarray:
    """Per lattice, <s_x s_{x+r}> averaged over sites and both axes, r = 1 ... r_max: (B, r_max)."""
    s = np.asarray(spins, dtype=np.float64)
    cols = [
        0.5 * ((s * np.roll(s, r, -1)).mean((-2, -1)) + (s * np.roll(s, r, -2)).mean((-2, -1)))
        for r in range(1, r_max + 1)
    ]
    return np.stack(cols, axis=1)


def paired_deviation(out: np.ndarray, ref: np.ndarray) -> dict:
    """Relative mean deviation of out from ref (paired lattice by lattice) and its SE:
    {"G2": (R_MAX,), "G2_se": (R_MAX,)}, r = 1 ... R_MAX."""
    a, b = g2_axes(out), g2_axes(ref)
    d, n = a - b, len(a)
    scale = b.mean(axis=0)
    return {"G2": d.mean(axis=0) / scale, "G2_se": d.std(axis=0, ddof=1) / np.sqrt(n) / scale}


def verdict(dev: dict, tolerance: float = TOLERANCE) -> tuple[bool, str]:
    """(passes, why): every relative deviation within ``tolerance``."""
    bad = [
        f"G2({r}) {100 * v:+.2f} ± {100 * e:.2f} %"
        for r, (v, e) in enumerate(zip(dev["G2"], dev["G2_se"]), 1)
        if not abs(v) < tolerance
    ]
    return not bad, "; ".join(bad) or "ok"


def super_resolve(
    fine: np.ndarray, workdir: Path, *, checkpoint=None, seed: int = 0, steps=None, name="sr"
) -> np.ndarray:
    """Fourier-truncate ``fine`` by FACTOR and super-resolve it back with the public API."""
    import isingscale as isc

    workdir = Path(workdir)
    src = workdir / f"{name}_fine.h5"
    with isc.create_ensemble(
        src, L=fine.shape[-1], kind="montecarlo", attrs={"T": isc.T_C}, overwrite=True
    ) as w:
        w.append(fine)
    coarse = isc.skild.coarsen(
        src, factor=FACTOR, method="fourier", out=workdir / f"{name}_coarse.h5", overwrite=True
    )
    res = isc.skild.upsample(
        coarse,
        factor=FACTOR,
        checkpoint=checkpoint,
        out=workdir / f"{name}.h5",
        seed=seed,
        steps=steps,
        batch=128,
        device="cpu",
        overwrite=True,
        progress=False,
    )
    return isc.read_ensemble(res.path, datasets=("spins",))["spins"]


def scaled_residual_checkpoint(checkpoint, scale: float, out: Path) -> Path:
    """A copy of a SKILD checkpoint whose network output (the residual over the Gaussian
    denoiser) is multiplied by ``scale``: the main network's last convolution scaled."""
    from isingscale.skild.checkpoint import read_checkpoint
    from isingscale.skild.checkpoint import write_safetensors as write

    meta, tensors = read_checkpoint(checkpoint)
    tensors = dict(tensors)
    tensors["model.out.weight"] = tensors["model.out.weight"] * scale
    write(Path(out), tensors, meta)
    return Path(out)
