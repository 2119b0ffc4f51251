"""Where a SKILD defect is made: held-out MC lattices noised to s0, sampled back, compared.

    python analysis/skild_roundtrip.py                                   # shipped checkpoint
    python analysis/skild_roundtrip.py --s0 0.4,0.8,1.6 --samplers sde,ddim --samples 2000

For each sampler and start scale s0 the exact forward marginal of real lattices is the start
(unlike an embedded coarse input), so a perfect network returns the Monte Carlo distribution
from any s0. Output against its own input (paired, so the inputs' sampling noise largely
cancels): G2(r) along the axes, out/in − 1, and the spin structure factor out/in at the
zone-edge modes k = 3π/4, 7π/8, π along an axis and the diagonal. The inputs are the
evaluation's held-out input chain (seed 3), never the training data.

Public API only: isingscale.skild's forward marginal and reverse sampler, the held-out chain of
isingscale.evaluation.references, and isingscale.analysis's correlator and spectrum.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import isingscale as isc
from isingscale.analysis.correlators import g2_axis
from isingscale.device import resolve_device
from isingscale.evaluation.quality import checkpoint_info
from isingscale.evaluation.references import SEED_INPUTS, held_out_spins
from isingscale.skild import default_steps, forward_marginal, reverse, to_spins
from isingscale.skild.spectral import power_spectrum


def roundtrip(
    model,
    spins: np.ndarray,
    s0: float,
    *,
    sampler: str = "sde",
    steps: int | None = None,
    seed: int = 0,
    batch: int = 250,
    device: str = "cpu",
) -> np.ndarray:
    """Held-out ±1 lattices (B, N, N) noised to scale s0 by the exact forward process, then
    sampled back to s = 0 with ``model`` (a loaded SkildModel); returns the output spins
    (B, N, N) int8. steps: default the sampler's per-octave rule."""
    dev = resolve_device(device)
    steps = steps or default_steps(sampler, s0)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(spins), batch):
        x = torch.as_tensor(np.asarray(spins[i : i + batch], dtype=np.float32))
        y0 = model.whitener.whiten(x)
        eps = torch.randn(y0.shape, generator=g)
        y = forward_marginal(model.basis, model.schedule, y0, s0, eps)
        x = reverse(model, y, s0, steps=steps, sampler=sampler, generator=g, device=dev)
        out.append(to_spins(x))
    return np.concatenate(out)


def paired_deviation(inputs: np.ndarray, outputs: np.ndarray) -> dict:
    """Output against input ensemble (both (B, N, N) ±1): relative deviations.

    G2_axes: G2(r) along the axes, r = 1 … N/2, out/in − 1. S_axis, S_diagonal: mean spin
    structure factor out/in at the zone-edge modes k = 2πj/N along an axis and the diagonal,
    j = 3N/8, 7N/16, N/2 (k = 3π/4, 7π/8, π), the four equivalent modes averaged.
    """
    P_in, P_out = power_spectrum(inputs), power_spectrum(outputs)
    # Orthonormal FFT: the pair-correlation map <s(0) s(d)> is the inverse transform of E|ŝ(k)|².
    g2_in, g2_out = (g2_axis(np.fft.ifft2(P).real, 0.0)[1:] for P in (P_in, P_out))
    N = inputs.shape[-1]
    S = P_out / P_in
    js = [3 * N // 8, 7 * N // 16, N // 2]
    axis = [float(np.mean([S[j, 0], S[0, j], S[-j, 0], S[0, -j]])) for j in js]
    diag = [float(np.mean([S[j, j], S[-j, j], S[j, -j], S[-j, -j]])) for j in js]
    return {
        "G2_axes": (g2_out / g2_in - 1.0).tolist(),
        "S_axis": axis,
        "S_diagonal": diag,
        "modes": js,
    }


def _row(sampler: str, s0: float, d: dict, L: int) -> str:
    g = d["G2_axes"]
    return (
        f"| {sampler} | {s0:g} | "
        + " | ".join(f"{100 * g[r - 1]:+.2f} %" for r in (1, 2, 4, L // 4))
        + " | "
        + ", ".join(f"{v:.3f}" for v in d["S_axis"])
        + " | "
        + ", ".join(f"{v:.3f}" for v in d["S_diagonal"])
        + " |"
    )


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
    info = checkpoint_info(a.checkpoint)
    model = isc.skild.load_checkpoint(a.checkpoint)
    L = int(info["L"])
    spins = held_out_spins(L, a.samples, a.workdir, T=model.temperature)
    rows = [
        "| sampler | s0 | G2(1) | G2(2) | G2(4) | G2(L/4) | S axis 3π/4, 7π/8, π "
        "| S diagonal 3π/4, 7π/8, π |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sampler in a.samplers.split(","):
        for s0 in (float(v) for v in a.s0.split(",")):
            out = roundtrip(model, spins, s0, sampler=sampler, seed=a.seed, device=a.device)
            rows.append(_row(sampler, s0, paired_deviation(spins, out), L))
            print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"Round trip of {len(spins)} held-out MC lattices (L = {L}, seed {SEED_INPUTS}) through "
        f"`{info['path']}` (sha256 {info['sha256'][:16]}…); out/in − 1 and S_out/S_in; "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
