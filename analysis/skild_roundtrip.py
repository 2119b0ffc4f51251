"""Where a SKILD defect is made: held-out MC lattices noised to s0, sampled back, compared with themselves.

    python analysis/skild_roundtrip.py                                   # shipped checkpoint
    python analysis/skild_roundtrip.py --s0 0.4,0.8,1.6 --samplers sde,ddim --samples 2000

For each sampler and start scale s0 the exact forward marginal of real lattices is the start
(unlike an embedded coarse input), so a perfect network returns the Monte Carlo distribution
from any s0. Output against its own input (paired, so the inputs' sampling noise largely
cancels): G2(r) along the axes, out/in − 1, and the spin structure factor out/in at the
zone-edge modes k = 3π/4, 7π/8, π along an axis and the diagonal. The inputs are the
evaluation's held-out input chain (seed 3), never the training data.

Public API only; the computation is isingscale.skild.evaluate.roundtrip / paired_deviation.
"""

from __future__ import annotations

import argparse
import sys
import time

import isingscale as isc
from isingscale.skild import evaluate as ev


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default: the shipped one)")
    p.add_argument("--samples", type=int, default=2000, help="lattices (default 2000)")
    p.add_argument("--s0", default="0.2,0.4,0.8,1.6", help="comma-separated start scales, octaves")
    p.add_argument("--samplers", default="sde,ddim", help="comma-separated: ddpm, ddim, sde")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument(
        "--workdir", default="runs/skild_quality", help="held-out MC is cached (and reused) here"
    )
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    info = ev.checkpoint_info(a.checkpoint)
    model = isc.skild.load_checkpoint(a.checkpoint)
    L = int(info["L"])
    spins = ev.held_out_spins(model, a.samples, a.workdir)
    rows = [
        "| sampler | s0 | G2(1) | G2(2) | G2(4) | G2(L/4) | S axis 3π/4, 7π/8, π | S diagonal 3π/4, 7π/8, π |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sampler in a.samplers.split(","):
        for s0 in (float(v) for v in a.s0.split(",")):
            out = ev.roundtrip(model, spins, s0, sampler=sampler, seed=a.seed, device=a.device)
            d = ev.paired_deviation(spins, out)
            g = d["G2_axes"]
            rows.append(
                f"| {sampler} | {s0:g} | "
                + " | ".join(f"{100 * g[r - 1]:+.2f} %" for r in (1, 2, 4, L // 4))
                + " | "
                + ", ".join(f"{v:.3f}" for v in d["S_axis"])
                + " | "
                + ", ".join(f"{v:.3f}" for v in d["S_diagonal"])
                + " |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"Round trip of {len(spins)} held-out MC lattices (L = {L}, seed {ev.SEED_INPUTS}) through "
        f"`{info['path']}` (sha256 {info['sha256'][:16]}…); out/in − 1 and S_out/S_in; "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
