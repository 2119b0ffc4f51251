"""Is the network's correction scaled right, mode by mode? A sampling-free check of a checkpoint.

    python analysis/skild_calibration.py                                  # shipped checkpoint
    python analysis/skild_calibration.py --s 0.4,0.8 --samples 8192 --checkpoint CKPT

Held-out MC lattices (the evaluation's input chain, seed 3, never the training data) are noised
to each s by the exact forward process, and the network's non-Gaussian correction to the
posterior mean is regressed on what it should be (:func:`calibration`, below).
A Bayes-optimal network has gain 1 at every mode; > 1 is under-confident (its correction
shrunk towards the Gaussian denoiser), < 1 over-confident. Printed per mode group of the
lattice (j = 0 … L/2 along each axis): the axis zone edge (one |j| = L/2, the other ≤ L/8),
the diagonal zone edge (both ≥ 13L/32), mid (L/8 ≤ |j| < L/4) and low (|j| ≤ L/16, zero
mode excluded); gain, and in brackets the fraction of the correction captured.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import isingscale as isc
from isingscale.evaluation.quality import checkpoint_info
from isingscale.evaluation.references import SEED_INPUTS, held_out_spins
from isingscale.skild.process import coefficients


def calibration(model, x: np.ndarray, s: float, *, seed: int = 0, batch: int = 256) -> dict:
    """How well the network's non-Gaussian correction is scaled, mode by mode, at scale s.

    x: lattices (B, N, N) (±1 spins, or any real fields the model's whitener applies to),
    noised to s by the exact forward process. Per mode, c = y0 − a y_s is what the posterior
    mean adds to its Gaussian part a y_s, and d = −b v̂ is the network's estimate of it
    (whitened coordinates, process.py). Returns, folded over the eight symmetries of the square
    lattice onto (|j_x|, |j_y|), j = 0 … N/2 (arrays (N/2 + 1, N/2 + 1), symmetric):

    gain: ⟨Re c d*⟩ / ⟨|d|²⟩, the least-squares rescaling of the network's correction. A
      Bayes-optimal network has error orthogonal to any function of y_s, so gain 1 at every
      mode; > 1 means under-confident (the correction shrunk towards the Gaussian one).
      NaN where the correction vanishes (b = 0: the mode is still noiseless).
    explained: 1 − ⟨|c − d|²⟩ / ⟨|c|²⟩, the fraction of the correction the network captures
      (negative: it adds more error than it removes).

    No sampling, one network call per lattice: a quick check of a checkpoint at the scales
    and modes where samples go wrong (this script).
    """
    N = x.shape[-1]
    H = N // 2
    a, b = coefficients(model.schedule, s, N)
    g = torch.Generator().manual_seed(seed)
    sums = np.zeros((4, N, N))  # Re c d*, |d|², |c − d|², |c|²
    for i in range(0, len(x), batch):
        y0 = model.whitener.whiten(torch.as_tensor(np.asarray(x[i : i + batch], dtype=np.float32)))
        y0k = model.basis.forward(y0)
        ysk = y0k * a + model.basis.forward(torch.randn(y0.shape, generator=g)) * b
        with torch.no_grad():
            v = model.net(model.basis.inverse(ysk), torch.full((len(y0),), float(s))).float()
        c, d = y0k - a * ysk, -b * model.basis.forward(v)
        for k, t in enumerate(
            ((c * d.conj()).real, d.abs() ** 2, (c - d).abs() ** 2, c.abs() ** 2)
        ):
            sums[k] += t.sum(0).double().numpy()
    j = np.abs(np.fft.fftfreq(N) * N).astype(int)
    jx, jy = np.meshgrid(j, j, indexing="ij")
    folded = np.zeros((4, H + 1, H + 1))
    for k in range(4):
        np.add.at(folded[k], (np.minimum(jx, jy), np.maximum(jx, jy)), sums[k])
        folded[k] = np.triu(folded[k]) + np.triu(folded[k], 1).T
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(folded[1] > 0, folded[0] / folded[1], np.nan)
        explained = np.where(folded[3] > 0, 1.0 - folded[2] / folded[3], np.nan)
    return {"gain": gain, "explained": explained}


def groups(L: int) -> dict[str, np.ndarray]:
    """Boolean masks on the folded (L/2 + 1) x (L/2 + 1) grid of (|j_x|, |j_y|)."""
    H = L // 2
    jx, jy = np.meshgrid(np.arange(H + 1), np.arange(H + 1), indexing="ij")
    r = np.hypot(jx, jy)
    return {
        "axis edge": ((jx == H) & (jy <= L // 8)) | ((jy == H) & (jx <= L // 8)),
        "diagonal edge": (jx >= 13 * L // 32) & (jy >= 13 * L // 32),
        "mid": (r >= L / 8) & (r < L / 4),
        "low": (r <= L / 16) & (r > 0),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one)")
    p.add_argument("--samples", type=int, default=4096, help="lattices per s (default 4096)")
    p.add_argument(
        "--s", default="0.2,0.4,0.6,0.8,1.0,1.2,1.6", help="comma-separated scales, octaves"
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument(
        "--workdir", default="runs/skild_quality", help="held-out MC is cached (and reused) here"
    )
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    info = checkpoint_info(a.checkpoint)
    model = isc.skild.load_checkpoint(a.checkpoint)
    L = int(info["L"])
    spins = held_out_spins(L, a.samples, a.workdir, T=model.temperature)
    masks = groups(L)
    rows = ["| s | " + " | ".join(masks) + " |", "|---" * (len(masks) + 1) + "|"]
    for s in (float(v) for v in a.s.split(",")):
        res = calibration(model, spins, s, seed=a.seed)
        cells = [
            f"{np.nanmean(res['gain'][m]):.3f} ({np.nanmean(res['explained'][m]):+.2f})"
            for m in masks.values()
        ]
        rows.append(f"| {s:g} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"Calibration of `{info['path']}` (sha256 {info['sha256'][:16]}…) on {len(spins)} held-out "
        "MC lattices "
        f"(L = {L}, seed {SEED_INPUTS}): gain ⟨c d*⟩/⟨|d|²⟩ (1 = calibrated) and, in brackets, the "
        "fraction "
        f"of the correction captured; {(time.perf_counter() - t0) / 60:.1f} min.\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
