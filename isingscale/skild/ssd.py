"""Scale-space sampling (SSD) for SKILD: the noisy, coarse reverse steps on a smaller lattice.

At large s the state y_s carries only long-wavelength information, so its reverse steps
need not run on the full N x N lattice (cf. Scale Space Diffusion, CVPR 2026). With
``decimate = j`` the reverse process runs on N' = N / 2^j from its start down to
s' = s_lift - j, the state is *lifted* to N at s_lift = j + margin, and the last s_lift
octaves run on N. Per lattice, the network cost (steps x sites) becomes
(s_max(N') - margin) 4^-j + (j + margin) full-size octaves instead of s_max(N) ≈
s_max(N') + j; see :func:`ssd_plan` (at N = 32, ddpm, margin 1: 0.47 of plain for j = 1, 2).

The maths, per grid, in whitened coordinates y = x̂ / √S_N (all modes unit variance):

* A mode with integer wave-vector q, |q_x|, |q_y| < N'/2 (coarsen.band_indices(N')), has
  k = q/N on N and k' = q/N' = 2^j k on N'; the zero mode too (|k|_0 = 1/(2N)). Since the
  cutoff k_c(s) is in cycles per site, log2 k_c(s) - log2 k = log2 k_c(s - j) - log2 k':
  the N' network at s - j sees the same relative cutoff as the N network at s.
* The schedules differ only by the s = 0 normalisation, so the ratio

      r(k) = a_N(s, k) / a_N'(s - j, k') = σ(log2(k_Nyq / k') / w) / σ(log2(k_Nyq / k) / w) ≤ 1

  does not depend on s. Hence a coarse state y' = a' y0 + b' ε' lifts *exactly*, mode by
  mode, to the fine marginal y = a y0 + b ε with

      y = r y' + √(1 - r²) z,    z ~ N(0, 1) independent

  (a = r a', and b² - r² b'² = 1 - r²). The coarse whitened coefficient carries over with
  factor 1: y0(q) on N is identified with y0'(q) on N'. Both have unit variance by the
  definition of S, so the identification is exact in distribution for Gaussian data, and
  for critical data it is the renormalisation-group statement that the truncated lattice
  is an N' lattice up to an amplitude, which whitening removes. (Whitening the colored
  Fourier truncation, coarsen.fourier_truncate(x, N'), with S_N' gives y(q) / g(q),
  g = f √(S_N'(k') / S_N(k)), f = 2^j: g = f^(1 - p/2) = 2^(j η/2) for S ∝ k^-p, p = 2 - η,
  and ≈ 1.13 per octave for the shipped spectrum; lifting with `embed`'s colored rule
  would inflate the low band by g and break S.)
* The N' Nyquist lines (q = N'/2, one mode on N', two on N) and the whole high band
  (modes N' does not carry) are filled with unit-variance white noise: exact for
  Gaussian data (y_s has unit variance whatever a is); for Ising data the error is the
  lost signal a_N(s_lift, k) y0(k) there, at most a_N(j + margin, k_Nyq 2^-j) ≈
  σ(-margin / w) (≈ 0.08 for margin 1, w = 0.4, i.e. ≈ 0.6 % of that band's variance).

Super-resolution from a coarse n x n input: the input is embedded into N exactly as
:func:`isingscale.skild.upsample.upsample_stage` does (coarsen.embed, block inputs
normalised first), *restricted* in whitened coordinates to N' (n < N' < N, Nyquist lines
noise-filled; the low band of n is carried with factor 1, consistent with the lift), the
forward marginal is applied at s* - j, and the reverse process runs down to s_lift - j,
is lifted, and finishes on N. For Gaussian data the result is distributed exactly like
plain SKILD super-resolution (same low-band regression on the input).

What the maths cannot supply is a network that is good on N': the coarse steps are only as
good as the model's states on the smaller lattice. (The shipped checkpoint, trained at
L = 32 only, under-disperses the magnetisation on 16 x 16, so SSD at N = 32 loses quality;
real 16 x 16 Monte Carlo lattices lifted to 32 and finished by it match plain SKILD.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..errors import IsingScaleError
from .checkpoint import SkildModel
from .coarsen import band_indices, embed, normalise_block_input, start_offset
from .process import Schedule, forward_marginal
from .sampler import SAMPLERS, default_steps, model_net, net_calls, resolve_sampler
from .spectral import Basis

# ----------------------------------------------------------------------------
# Restriction and lift between the N' = N / 2^j and N grids (whitened coordinates).


def _band(Nc: int, N: int, lattice: str) -> tuple[np.ndarray, np.ndarray]:
    """(fine, coarse) 1-D index arrays of the modes the N' x N' grid shares with N x N."""
    if lattice == "image-dct":
        i = np.arange(Nc)
        return i, i
    q = band_indices(Nc)  # |q| < Nc/2: the coarse Nyquist line is not shared
    return q % N, q % Nc


def _noise(shape, generator, like: torch.Tensor) -> torch.Tensor:
    """Unit white noise, drawn on the CPU generator as the samplers draw it, float64, on like's
    device."""
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(like.device)


def lift_coefficients(
    schedule: Schedule, N: int, Nc: int, s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(r, √(1 - r²)) on the shared band, shape (len(band), len(band)), for a lift to N at scale s.

    r(k) = a_N(s, k) / a_Nc(s - j, k'), 2^j = N / Nc; independent of s in exact arithmetic
    (the s-dependence cancels, only the s = 0 normalisations remain) and ≤ 1.
    """
    j = math.log2(N / Nc)
    fi, ci = _band(Nc, N, schedule.lattice)
    la_f = schedule.log_a(s, N)[np.ix_(fi, fi)]
    la_c = schedule.log_a(s - j, Nc)[np.ix_(ci, ci)]
    log_r = np.minimum(la_f - la_c, 0.0)
    return np.exp(log_r), np.sqrt(-np.expm1(2.0 * log_r))


def restrict(
    y: torch.Tensor, Nc: int, basis: Basis, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Whitened N x N field -> whitened Nc x Nc field: shared modes copied (factor 1), the
    coarse Nyquist lines (periodic, even Nc) filled with unit-variance white noise."""
    N = y.shape[-1]
    fi, ci = _band(Nc, N, basis.lattice)
    Y = basis.forward(y.double())
    Yc = basis.forward(_noise(y.shape[:-2] + (Nc, Nc), generator, y))
    Yc[..., ci[:, None], ci[None, :]] = Y[..., fi[:, None], fi[None, :]]
    return basis.inverse(Yc).float()


def lift(
    y_coarse: torch.Tensor,
    N: int,
    s: float,
    *,
    basis: Basis,
    schedule: Schedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Whitened state on Nc at scale s - j  ->  whitened state on N at scale s (see module doc).

    Shared band: y = r y' + √(1 - r²) z; everything else (the high band and the fine modes
    on the coarse Nyquist lines): unit-variance white noise z. One N x N noise field is drawn.
    """
    Nc = y_coarse.shape[-1]
    if N <= Nc:
        raise IsingScaleError(f"lift needs a larger lattice: {Nc} -> {N}")
    fi, ci = _band(Nc, N, basis.lattice)
    r, sd = lift_coefficients(schedule, N, Nc, s)
    r = torch.as_tensor(r, device=y_coarse.device)
    sd = torch.as_tensor(sd, device=y_coarse.device)
    Yc = basis.forward(y_coarse.double())
    Z = basis.forward(_noise(y_coarse.shape[:-2] + (N, N), generator, y_coarse))
    Y = Z.clone()
    Y[..., fi[:, None], fi[None, :]] = (
        r * Yc[..., ci[:, None], ci[None, :]] + sd * Z[..., fi[:, None], fi[None, :]]
    )
    return basis.inverse(Y).float()


# ----------------------------------------------------------------------------
# The plan: levels, steps, cost.


@dataclass
class SSDLevel:
    N: int
    s_start: float  # on this lattice's own scale coordinate
    s_end: float
    steps: int
    net_calls: int

    @property
    def site_evals(self) -> int:
        """Network site-evaluations per lattice: net_calls x N²."""
        return self.net_calls * self.N * self.N


@dataclass
class SSDPlan:
    """Levels of an SSD run (coarsest first) and its cost against plain SKILD, per lattice."""

    N: int
    n: int | None  # coarse input size (super-resolution) or None (generation)
    decimate: int
    margin: float
    sampler: str
    s_lift: float | None  # fine-lattice scale of the lift (None: decimate = 0)
    levels: list[SSDLevel]
    plain: SSDLevel
    rate: float | None = None  # steps per octave (None: sampler.STEPS_PER_OCTAVE)
    notes: list[str] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return [lv.steps for lv in self.levels]

    @property
    def net_calls(self) -> int:
        return sum(lv.net_calls for lv in self.levels)

    @property
    def site_evals(self) -> int:
        return sum(lv.site_evals for lv in self.levels)

    @property
    def plain_site_evals(self) -> int:
        return self.plain.site_evals

    @property
    def ratio(self) -> float:
        """SSD cost / plain SKILD cost (network site-evaluations); 1 - ratio is what is saved."""
        return self.site_evals / self.plain_site_evals

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            site_evals=self.site_evals, plain_site_evals=self.plain_site_evals, ratio=self.ratio
        )
        return d

    def summary(self) -> str:
        what = f"super-resolution {self.n} -> {self.N}" if self.n else f"generation at N={self.N}"
        lv = ", ".join(
            f"{x.N}^2: s {x.s_start:.2f} -> {x.s_end:.2f}, {x.steps} steps" for x in self.levels
        )
        return (
            f"SSD {what}, decimate {self.decimate}, margin {self.margin:g} ({self.sampler}): {lv}; "
            f"cost {self.site_evals} vs plain {self.plain_site_evals} site-evaluations per lattice "
            f"(ratio {self.ratio:.3f}, {100 * (1 - self.ratio):.0f} % saved)"
        )


def _check_plan_options(decimate, margin, steps, steps_per_octave) -> int:
    """One-line errors for bad SSD options; returns decimate as an int."""
    if int(decimate) != decimate or decimate < 0:
        raise IsingScaleError(f"decimate must be a non-negative integer, got {decimate}")
    if not (math.isfinite(margin) and margin >= 0):
        raise IsingScaleError(f"margin must be a non-negative number of octaves, got {margin}")
    if steps is not None and steps < 1:
        raise IsingScaleError(f"steps must be at least 1, got {steps}")
    if steps_per_octave is not None and not steps_per_octave > 0:
        raise IsingScaleError(f"steps_per_octave must be positive, got {steps_per_octave}")
    return int(decimate)


def _intermediate_size(model: SkildModel, n: int | None, N: int, decimate: int) -> int:
    """N' = N / 2^decimate, checked: divides N, exceeds the input n, and the network takes it."""
    f = 2**decimate
    what = f"decimate={decimate} (N' = {N}/{f})"
    if N % f:
        raise IsingScaleError(f"{what}: N={N} is not divisible by {f}")
    Nc = N // f
    if n is not None and Nc <= n:
        raise IsingScaleError(
            f"{what}: the intermediate lattice {Nc} must exceed the input size n={n}"
        )
    try:
        model.net.check_size(Nc)
    except IsingScaleError as e:
        raise IsingScaleError(f"{what}: {e}") from None
    return Nc


def ssd_plan(
    model: SkildModel,
    n: int | None,
    N: int,
    decimate: int,
    margin: float = 1.0,
    sampler: str = "ddpm",
    *,
    steps_per_octave: float | None = None,
    steps: int | None = None,
    s_offset: float = 0.0,
) -> SSDPlan:
    """Levels, step counts and cost of SSD generation (n=None) or super-resolution n -> N.

    Steps: the same steps per octave as plain SKILD on each level: steps_per_octave (default
    sampler.STEPS_PER_OCTAVE[sampler]); for super-resolution, ``steps`` (plain SKILD's step
    count from s* to 0, as upsample_stage takes it) sets the rate steps / s* instead. Cost:
    network calls x N'² per lattice, against plain SKILD with the same rate.
    Raises IsingScaleError when the decimation leaves no room.
    """
    sampler = resolve_sampler(sampler)
    decimate = _check_plan_options(decimate, margin, steps, steps_per_octave)
    model.net.check_size(N)
    schedule = model.schedule
    if n is None:
        s_top = schedule.s_max(N)
        rate = steps_per_octave
    else:
        if not 1 < n < N:
            raise IsingScaleError(f"super-resolution needs 1 < n < N, got n={n}, N={N}")
        s_top = math.log2(N / n) + s_offset
        if not s_top > 0:
            raise IsingScaleError(f"start scale s* = log2({N}/{n}) + {s_offset} must be positive")
        rate = steps / s_top if steps is not None else steps_per_octave
    plain_steps = (
        steps if (n is not None and steps is not None) else default_steps(sampler, s_top, rate)
    )
    plain = SSDLevel(N, s_top, 0.0, plain_steps, net_calls(sampler, plain_steps, 0.0))
    common = dict(
        N=N, n=n, decimate=decimate, margin=float(margin), sampler=sampler, plain=plain, rate=rate
    )
    if decimate == 0:
        return SSDPlan(s_lift=None, levels=[plain], **common)
    Nc = _intermediate_size(model, n, N, decimate)
    s_lift = decimate + float(margin)
    s_coarse = s_top - decimate if n is not None else schedule.s_max(Nc)  # on N''s own scale
    if not s_coarse > margin:
        where = f"s* - {decimate}" if n is not None else f"s_max({Nc})"
        raise IsingScaleError(
            f"decimate={decimate} (N' = {Nc}), margin {margin:g}: no room for coarse steps "
            f"({where} = {s_coarse:.3f} <= margin); use a smaller decimate or margin"
        )
    c_steps = default_steps(sampler, s_coarse - margin, rate)
    f_steps = default_steps(sampler, s_lift, rate)
    levels = [
        SSDLevel(Nc, s_coarse, float(margin), c_steps, net_calls(sampler, c_steps, float(margin))),
        SSDLevel(N, s_lift, 0.0, f_steps, net_calls(sampler, f_steps, 0.0)),
    ]
    return SSDPlan(s_lift=s_lift, levels=levels, **common)


# ----------------------------------------------------------------------------
# Sampling.


def _reverse(
    model: SkildModel,
    net,
    y: torch.Tensor,
    level: SSDLevel,
    sampler: str,
    generator: torch.Generator,
) -> torch.Tensor:
    return SAMPLERS[sampler](
        net,
        y,
        level.s_start,
        level.steps,
        basis=model.basis,
        schedule=model.schedule,
        generator=generator,
        s_end=level.s_end,
    )


def _field_shape(model: SkildModel, B: int, N: int) -> tuple[int, ...]:
    return (B, model.channels, N, N) if model.lattice == "image-dct" else (B, N, N)


def _run_plan(
    model: SkildModel, plan: SSDPlan, y: torch.Tensor, generator: torch.Generator, device
) -> torch.Tensor:
    """Reverse on each level of the plan (y: whitened start on the first level), lift between."""
    net = model_net(model, torch.device(device))
    y = y.to(device)
    for i, level in enumerate(plan.levels):
        if i:
            y = lift(
                y,
                level.N,
                plan.s_lift,
                basis=model.basis,
                schedule=model.schedule,
                generator=generator,
            )
        y = _reverse(model, net, y, level, plan.sampler, generator)
    return model.whitener.color(y).cpu()


def ssd_generate_batch(
    model: SkildModel,
    B: int,
    N: int,
    *,
    decimate: int,
    margin: float = 1.0,
    steps_per_octave: float | None = None,
    sampler: str = "ddpm",
    generator: torch.Generator,
    device="cpu",
) -> torch.Tensor:
    """B lattices from noise with scale-space sampling -> colored real-space field (B, N, N).

    Reverse on N' = N / 2^decimate from s_max(N') to margin, lift to N at s_lift = decimate +
    margin, reverse on N to 0. decimate=0 is plain SKILD generation, bit for bit (same
    generator draws as generate.generate).
    """
    plan = ssd_plan(model, None, N, decimate, margin, sampler, steps_per_octave=steps_per_octave)
    y_start = torch.randn(_field_shape(model, B, plan.levels[0].N), generator=generator)
    return _run_plan(model, plan, y_start, generator, device)


def ssd_upsample_stage(
    model: SkildModel,
    coarse: np.ndarray | torch.Tensor,
    kind: str,
    N: int,
    *,
    decimate: int,
    margin: float = 1.0,
    steps: int | None = None,
    sampler: str = "ddpm",
    s_offset: float | None = None,
    generator: torch.Generator,
    device="cpu",
) -> np.ndarray:
    """Super-resolution stage coarse (B, n, n) -> fine field (B, N, N) with scale-space sampling.

    kind: "fourier" (float field) or "block" (±1 spins, normalised with the checkpoint's block
    transfer function). steps: plain SKILD's step count from s* to 0 (None: default), turned
    into the same steps per octave on each level. decimate=0 is upsample.upsample_stage, bit
    for bit. s_offset None: by input kind, as coarsen.start_offset.
    """
    if kind not in ("fourier", "block"):
        raise IsingScaleError(f"unknown coarse input kind {kind!r}; expected fourier or block")
    n = coarse.shape[-1]
    plan = ssd_plan(
        model, n, N, decimate, margin, sampler, steps=steps, s_offset=start_offset(kind, s_offset)
    )
    f = N / n
    xc = (
        normalise_block_input(coarse, model.block_transfer, f)
        if kind == "block"
        else torch.as_tensor(coarse)
    )
    y_embed = embed(xc, N, model.whitener, generator=generator)
    first = plan.levels[0]
    if first.N < N:
        y_embed = restrict(y_embed, first.N, model.basis, generator=generator)
    eps = torch.randn(y_embed.shape, generator=generator)
    y_start = forward_marginal(model.basis, model.schedule, y_embed, first.s_start, eps)
    return _run_plan(model, plan, y_start, generator, device).numpy()
