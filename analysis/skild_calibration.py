"""Is the network's correction scaled right, mode by mode? A sampling-free check of a checkpoint.

    python analysis/skild_calibration.py                                  # shipped checkpoint
    python analysis/skild_calibration.py --s 0.4,0.8 --samples 8192 --checkpoint runs/x/model.safetensors

Held-out MC lattices (the evaluation's input chain, seed 3, never the training data) are noised
to each s by the exact forward process, and the network's non-Gaussian correction to the
posterior mean is regressed on what it should be (isingscale.skild.evaluate.calibration).
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

import isingscale as isc
from isingscale.skild import evaluate as ev


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
    info = ev.checkpoint_info(a.checkpoint)
    model = isc.skild.load_checkpoint(a.checkpoint)
    L = int(info["L"])
    spins = ev.held_out_spins(model, a.samples, a.workdir)
    masks = groups(L)
    rows = ["| s | " + " | ".join(masks) + " |", "|---" * (len(masks) + 1) + "|"]
    for s in (float(v) for v in a.s.split(",")):
        res = ev.calibration(model, spins, s, seed=a.seed)
        cells = [
            f"{np.nanmean(res['gain'][m]):.3f} ({np.nanmean(res['explained'][m]):+.2f})"
            for m in masks.values()
        ]
        rows.append(f"| {s:g} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"Calibration of `{info['path']}` (sha256 {info['sha256'][:16]}…) on {len(spins)} held-out MC lattices "
        f"(L = {L}, seed {ev.SEED_INPUTS}): gain ⟨c d*⟩/⟨|d|²⟩ (1 = calibrated) and, in brackets, the fraction "
        f"of the correction captured; {(time.perf_counter() - t0) / 60:.1f} min.\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
