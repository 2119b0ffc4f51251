"""Samplers: plain functions of (net, y_start, s_start, steps, ...) -> y_0 (EDM style), and
the helpers every sampling path shares (default sampler and step counts, the network call of
a loaded checkpoint, the reverse process to a colored field, the sign of a field).

``net(y_s, s)`` is any callable returning v̂ (zero = the Gaussian Bayes-optimal denoiser,
see process.py), so tests drive the samplers with ``lambda y, s: torch.zeros_like(y)``.
All fields are whitened and real, shape (B, N, N); the reverse process runs on the
uniform grid s_i = s_end + (s_start - s_end) i / steps, i = steps ... 0 (s_end = 0 unless
the caller stops early, as scale-space sampling does before lifting to a larger lattice, see
ssd.py). Coefficients are formed in float64 from log a (stable where a_s(k) underflows) and
applied per frequency.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import autocast
from ..errors import IsingScaleError
from .process import Schedule
from .spectral import Basis


def _grid(s_start: float, steps: int, s_end: float = 0.0) -> np.ndarray:
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if s_end < 0.0 or (s_end > 0.0 and s_end >= s_start):  # s_end = 0: the grid as it always was
        raise ValueError(f"need 0 <= s_end < s_start, got s_end={s_end}, s_start={s_start}")
    return np.linspace(float(s_end), float(s_start), steps + 1)[::-1]


def _t(x: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=like.device)


def _s(s: float, y: torch.Tensor) -> torch.Tensor:
    return torch.full((y.shape[0],), float(s), dtype=torch.float32, device=y.device)


# ----------------------------------------------------------------------------
# Per-frequency DDPM ancestral sampler (Ho et al. 2020, ᾱ_s(k) = a_s(k)²).


@torch.no_grad()
def ddpm_sampler(
    net,
    y_start: torch.Tensor,
    s_start: float,
    steps: int,
    *,
    basis: Basis,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    progress: bool = False,
    s_end: float = 0.0,
) -> torch.Tensor:
    """Ancestral sampling from s_start to s_end (default 0) with the reverse variance σ² = β_s.

    Step s_cur -> s_prev (per frequency): α = (a_cur / a_prev)², β = 1 - α and
        y_prev = √α y - (β a_prev / b_cur) v̂ + √β z,
    which is (1/√α)(y - β/b_cur ε̂) + √β z with ε̂ = b_cur y + a_cur v̂ written without any
    division by a (β / b_cur ≤ b_cur, so clipping b_cur away from 0 is harmless).
    σ² = β is the exact reverse variance for unit-variance (whitened Gaussian) data; the
    last step, to s = 0, adds noise too (a_0 = 1 while corner modes fall off at once).
    """
    N = y_start.shape[-1]
    s_grid = _grid(s_start, steps, s_end)
    y = y_start.float()
    for s_cur, s_prev in tqdm(
        list(zip(s_grid[:-1], s_grid[1:])), disable=not progress, desc="sampling", leave=False
    ):
        la_cur, la_prev = schedule.log_a(s_cur, N), schedule.log_a(s_prev, N)
        alpha = np.exp(2.0 * (la_cur - la_prev))
        beta = -np.expm1(2.0 * (la_cur - la_prev))
        b_cur = np.sqrt(-np.expm1(2.0 * la_cur))
        c_v = np.where(b_cur > 0, beta * np.exp(la_prev) / np.maximum(b_cur, 1e-30), 0.0)
        # Posterior mean and noise, per frequency.
        v_hat = net(y, _s(s_cur, y)).float()
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device="cpu").to(y.device)
        y_k = basis.forward(y) * _t(np.sqrt(alpha), y) - basis.forward(v_hat) * _t(c_v, y)
        y = basis.inverse(y_k + basis.forward(z) * _t(np.sqrt(beta), y))
    return y


# ----------------------------------------------------------------------------
# Heun samplers: the probability-flow ODE (Karras et al. 2022), deterministic or with churn.


def _heun(net, y_start, s_start, steps, *, basis, schedule, churn, generator, progress, s_end):
    N = y_start.shape[-1]
    s_grid = _grid(s_start, steps, s_end)
    s_top = schedule.s_max(N) if churn > 0 else 0.0  # the cap of the re-noising
    y = y_start.float()
    theta = lambda s: np.arccos(np.clip(schedule.a(s, N), 0.0, 1.0))  # noqa: E731
    for i, (s_cur, s_prev) in enumerate(
        tqdm(list(zip(s_grid[:-1], s_grid[1:])), disable=not progress, desc="sampling", leave=False)
    ):
        s_hat = min(s_cur + churn * (s_cur - s_prev), max(s_top, s_cur))
        if s_hat > s_cur:  # exact forward transition s_cur -> s_hat, per frequency
            alpha = np.exp(2.0 * (schedule.log_a(s_hat, N) - schedule.log_a(s_cur, N)))
            z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device="cpu").to(y.device)
            y = basis.inverse(
                basis.forward(y) * _t(np.sqrt(alpha), y)
                + basis.forward(z) * _t(np.sqrt(1.0 - alpha), y)
            )
        d_theta = _t(theta(s_prev) - theta(s_hat), y)
        # Euler step.
        d_cur = basis.forward(net(y, _s(s_hat, y)).float())
        y_k = basis.forward(y)
        y_next = basis.inverse(y_k + d_theta * d_cur)
        # Second-order correction.
        if i < steps - 1 or s_end > 0:
            d_next = basis.forward(net(y_next, _s(s_prev, y)).float())
            y_next = basis.inverse(y_k + d_theta * 0.5 * (d_cur + d_next))
        y = y_next
    return y


@torch.no_grad()
def ode_sampler(
    net,
    y_start: torch.Tensor,
    s_start: float,
    steps: int,
    *,
    basis: Basis,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    progress: bool = False,
    s_end: float = 0.0,
) -> torch.Tensor:
    """Deterministic (DDIM-like) sampling with fewer steps: 2 network calls per step.

    With a_s = cos θ_s(k), b_s = sin θ_s(k) per frequency, the probability-flow ODE of the
    forward process is dy/dθ = E[v | y_s] = v̂ (v = a ε - b y_0), so a network that outputs
    zero leaves y unchanged: the Gaussian part is integrated exactly and only the learned
    residual is discretised (plain DDIM would shrink a Gaussian field by cos Δθ per step).
    Heun's second-order correction is applied on every step except the last, unless the
    run stops early (s_end > 0): then the network is evaluated at s_end too (2 x steps calls).
    `generator` is unused (the signature is shared with the stochastic samplers).
    """
    return _heun(
        net,
        y_start,
        s_start,
        steps,
        basis=basis,
        schedule=schedule,
        churn=0.0,
        generator=None,
        progress=progress,
        s_end=s_end,
    )


SDE_CHURN = 1.0  # re-noising per step, in units of the step (measured: data/README.md)


@torch.no_grad()
def sde_sampler(
    net,
    y_start: torch.Tensor,
    s_start: float,
    steps: int,
    *,
    basis: Basis,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    progress: bool = False,
    s_end: float = 0.0,
    churn: float = SDE_CHURN,
) -> torch.Tensor:
    """Stochastic Heun sampling (Karras et al. 2022, Algorithm 2, in the scale coordinate).

    Each step s_cur -> s_prev first moves up to ŝ = s_cur + churn (s_cur - s_prev) (capped
    at s_max) with the exact per-frequency forward transition y <- √α y + √(1-α) z,
    α = (a_ŝ / a_cur)², then takes one Heun step of the probability-flow ODE from ŝ to s_prev
    (as :func:`ode_sampler`). The re-noising forgets errors of the start (an embedded coarse
    input is only approximately a forward marginal) and of the network; the ODE step keeps
    the discretisation error second order, which the first-order ancestral sampler lacks.
    Both parts are exact for Gaussian data, so the zero network reproduces the spectrum at
    any step count. 2 network calls per step (the last step's correction skipped at s_end = 0).
    """
    return _heun(
        net,
        y_start,
        s_start,
        steps,
        basis=basis,
        schedule=schedule,
        churn=float(churn),
        generator=generator,
        progress=progress,
        s_end=s_end,
    )


SAMPLERS = {"ddpm": ddpm_sampler, "ddim": ode_sampler, "sde": sde_sampler}

# ----------------------------------------------------------------------------
# Shared by generation, super-resolution, scale-space sampling and the coarse stage.

STEPS_PER_OCTAVE = {"ddpm": 20, "ddim": 6, "sde": 10}
# The stochastic Heun sampler forgets an approximate start (an embedded coarse input) and
# corrects its own step errors on the way down; on the shipped checkpoint it is the best of
# the three for generation and for super-resolution alike (data/README.md, "Samplers").
DEFAULT_SAMPLER = "sde"


def resolve_sampler(sampler: str | None) -> str:
    """`sampler`, checked, or DEFAULT_SAMPLER when None."""
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise IsingScaleError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    return sampler


def default_steps(sampler: str, octaves: float, rate: float | None = None) -> int:
    """Reverse steps over `octaves` of s: STEPS_PER_OCTAVE[sampler] per octave, or `rate`; >= 2."""
    if rate is None:
        return max(2, math.ceil(STEPS_PER_OCTAVE[sampler] * octaves))
    return max(2, math.ceil(rate * octaves - 1e-9))


def net_calls(sampler: str, steps: int, s_end: float = 0.0) -> int:
    """Network calls of a run: Heun samplers 2 a step (the last correction skipped at s_end = 0)."""
    if sampler in ("ddim", "sde"):
        return 2 * steps - (1 if s_end == 0.0 else 0)
    return steps


# Sites per network call on the CPU: about 2^16 keeps the activations in cache. Measured on 2
# cores, the time per site is lowest at 2^16 - 2^17 and 1.5-1.8x higher from 2^18 on (L = 32
# ... 256; data/README.md, "isingscale bench skild").
CPU_CALL_SITES = 1 << 16


def model_net(model, device):
    """net(y, s[, cond]) of a loaded checkpoint's network, float32 out (bf16 autocast on CUDA).

    On the CPU a large batch is run in chunks of about :data:`CPU_CALL_SITES` sites (the same
    numbers per lattice, faster); on a GPU in one call.
    """
    device = torch.device(device)

    def net(y, s, *cond):
        with autocast(device):
            return model.net(y, s, *cond).float()

    if device.type != "cpu":
        return net

    def chunked(y, s, *cond):
        n = max(1, CPU_CALL_SITES // (y.shape[-1] * y.shape[-2]))
        if len(y) <= n:
            return net(y, s, *cond)
        s = torch.as_tensor(s).expand(len(y))
        parts = [slice(i, i + n) for i in range(0, len(y), n)]
        return torch.cat([net(y[p], s[p], *(c[p] for c in cond)) for p in parts])

    return chunked


def reverse(
    model,
    y_start: torch.Tensor,
    s_start: float,
    *,
    steps: int,
    sampler: str,
    generator: torch.Generator,
    device,
) -> torch.Tensor:
    """Reverse process of a loaded checkpoint (``model``: net, basis, schedule, whitener) from
    the whitened state y_start at s_start to 0; returns the fine field x, colored (data units),
    on the CPU."""
    net = model_net(model, device)
    y0 = SAMPLERS[sampler](
        net,
        y_start.to(device),
        s_start,
        steps,
        basis=model.basis,
        schedule=model.schedule,
        generator=generator,
    )
    return model.whitener.color(y0).cpu()


def to_spins(x) -> np.ndarray:
    """Sign of a field (array or tensor), 0 mapped to +1, as int8 ±1."""
    return np.where(np.asarray(x) >= 0, 1, -1).astype(np.int8)
