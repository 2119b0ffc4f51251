"""The exact oracle: for a Gaussian random field, ε̂ = √(1-ᾱ) y_s (zero network) is Bayes-optimal.

Driving the samplers with it must reproduce S(k) at every |k| (generation and
super-resolution), and super-resolution must keep the low band consistent with the input
in the precise sense derived in test_superresolution_low_band_regression.
"""

import math

import numpy as np
import pytest
import torch

from isingscale.skild.coarsen import embed, fourier_truncate, low_band_mask
from isingscale.skild.process import Schedule, Whitener, coefficients, forward_marginal, net_eps
from isingscale.skild.sampler import SDE_CHURN, ddpm_sampler, ode_sampler, sde_sampler
from isingscale.skild.spectral import power_law_spectrum, shells

from .conftest import gaussian_field

N = 32
SPEC = power_law_spectrum(N, p=1.75, A=0.3, c0=2.0)  # S ∝ |k|^-7/4, zero mode set apart
SCHED = Schedule(width=0.4)
ZERO = lambda y, s: torch.zeros_like(y)  # noqa: E731


def shell_ratios(x: torch.Tensor, spectrum=SPEC) -> tuple[np.ndarray, np.ndarray]:
    """Per-|k|-shell mean of |x̂|²/S and its standard error across samples (zero mode: own shell)."""
    P = (torch.fft.fft2(x.double(), norm="ortho").abs() ** 2).numpy() / spectrum(x.shape[-1])
    idx = shells(x.shape[-1]).ravel()
    counts = np.bincount(idx)
    per_sample = np.stack([np.bincount(idx, weights=p.ravel()) / np.maximum(counts, 1) for p in P])[
        :, counts > 0
    ]
    return per_sample.mean(0), per_sample.std(0, ddof=1) / math.sqrt(len(P))


def assert_spectrum(x, what, n_sigma=5.0):
    r, se = shell_ratios(x)
    z = (r - 1.0) / se
    assert np.all(np.abs(z) < n_sigma), (
        f"{what}: S_out/S off by {np.max(np.abs(z)):.1f} sigma; ratios {np.round(r, 3)}"
    )


def test_zero_network_is_the_gaussian_posterior_mean():
    # For unit-variance y_0, E[ε | y_s] = b_s y_s exactly: check it by regression on samples.
    wh = Whitener(SPEC)
    y0 = wh.whiten(gaussian_field(SPEC, N, 4000, seed=3))
    s = torch.full((4000,), 2.0)
    eps = torch.randn(y0.shape, generator=torch.Generator().manual_seed(4))
    y_s = forward_marginal(wh.basis, SCHED, y0, s, eps)
    e_hat = net_eps(ZERO, wh.basis, SCHED, y_s, s)
    Yk, Ek = torch.fft.fft2(y_s.double(), norm="ortho"), torch.fft.fft2(eps.double(), norm="ortho")
    slope = ((Ek * Yk.conj()).real.mean(0) / (Yk.abs() ** 2).mean(0)).numpy()
    b = coefficients(SCHED, 2.0, N)[1].numpy()
    assert np.abs(slope - b).max() < 0.08  # per-mode regression slope = b_s(k) (SE ~ 0.016-0.03)
    assert torch.allclose(e_hat, wh.basis.multiply(y_s, coefficients(SCHED, s, N)[1]), atol=1e-5)


def test_forward_is_identity_at_zero_and_noise_at_s_max():
    a0, b0 = coefficients(SCHED, 0.0, N)
    assert torch.all(a0 == 1.0) and torch.all(b0 == 0.0)
    wh = Whitener(SPEC)
    y0 = wh.whiten(gaussian_field(SPEC, N, 8))
    eps = torch.randn_like(y0)
    assert torch.allclose(forward_marginal(wh.basis, SCHED, y0, 0.0, eps), y0, atol=1e-5)
    s_max = SCHED.s_max(N)
    a, b = coefficients(SCHED, s_max, N)
    assert a.max() ** 2 <= 1.0001e-4 and a[0, 0] == a.max()  # every mode, zero mode included
    assert SCHED.a(s_max - 0.05, N).max() ** 2 > 1e-4  # s_max is the smallest such s
    # Spectrum-matched noise: x_s = color(y_s) has spectrum S when y_0 is independent noise.
    # Data: signs of a Gaussian field (non-Gaussian, wrong spectrum); at s_max only ε is left.
    y0 = wh.whiten(torch.sign(gaussian_field(SPEC, N, 2000, seed=5)))
    y_s = forward_marginal(
        wh.basis,
        SCHED,
        y0,
        s_max,
        torch.randn(y0.shape, generator=torch.Generator().manual_seed(6)),
    )
    assert_spectrum(wh.color(y_s), "x at s_max", n_sigma=5)


def test_schedule_is_monotone_and_scale_covariant():
    s = np.linspace(0, SCHED.s_max(N), 50)
    a = SCHED.a(s, N)
    assert np.all(np.diff(a, axis=0) <= 1e-12)
    # Cutoff in cycles per site: a_s(k) at fixed physical k is the same on every lattice size.
    a32, a64 = SCHED.a(1.3, 32), SCHED.a(1.3, 64)
    assert np.allclose(a32[3, 5], a64[6, 10]) and np.allclose(a32[1, 0], a64[2, 0])


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "sde"])
def test_generation_reproduces_spectrum(sampler):
    wh = Whitener(SPEC)
    g = torch.Generator().manual_seed(7)
    y_start = torch.randn(1500, N, N, generator=g)
    s_max = SCHED.s_max(N)
    if sampler == "ddpm":
        y0 = ddpm_sampler(ZERO, y_start, s_max, 60, basis=wh.basis, schedule=SCHED, generator=g)
    elif sampler == "sde":
        y0 = sde_sampler(ZERO, y_start, s_max, 20, basis=wh.basis, schedule=SCHED, generator=g)
    else:
        y0 = ode_sampler(ZERO, y_start, s_max, 20, basis=wh.basis, schedule=SCHED)
    assert_spectrum(wh.color(y0), f"generation ({sampler})")


def test_spectrum_check_can_fail():
    # A network that is not the Gaussian optimum (v̂ = 0.3 y) must be caught by the same check.
    wh = Whitener(SPEC)
    g = torch.Generator().manual_seed(8)
    y0 = ddpm_sampler(
        lambda y, s: 0.3 * y,
        torch.randn(1500, N, N, generator=g),
        SCHED.s_max(N),
        60,
        basis=wh.basis,
        schedule=SCHED,
        generator=g,
    )
    with pytest.raises(AssertionError):
        assert_spectrum(wh.color(y0), "wrong network")


def _superresolve(sampler, f=4, B=2000, seed=9):
    wh = Whitener(SPEC)
    n = N // f
    g = torch.Generator().manual_seed(seed)
    x_true = gaussian_field(SPEC, N, B, seed=seed + 1)
    y_in = embed(fourier_truncate(x_true, n), N, wh, generator=g)
    s_star = math.log2(N / n)
    y_start = forward_marginal(wh.basis, SCHED, y_in, s_star, torch.randn(y_in.shape, generator=g))
    if sampler == "ddpm":
        y0 = ddpm_sampler(ZERO, y_start, s_star, 40, basis=wh.basis, schedule=SCHED, generator=g)
    elif sampler == "sde":
        y0 = sde_sampler(
            ZERO, y_start, s_star, SDE_STEPS, basis=wh.basis, schedule=SCHED, generator=g
        )
    else:
        y0 = ode_sampler(ZERO, y_start, s_star, 8, basis=wh.basis, schedule=SCHED)
    return wh, n, s_star, x_true, y_in, y0


SDE_STEPS = 8


def sde_decay(s_star: float, steps: int = SDE_STEPS) -> np.ndarray:
    """Π_i a_ŝ(i)/a_s(i): what the re-noising of the stochastic Heun sampler leaves of y_{s*}
    (its flow steps are the identity for Gaussian data), per mode."""
    grid = np.linspace(0.0, s_star, steps + 1)[::-1]
    decay = np.ones((N, N))
    for s_cur, s_prev in zip(grid[:-1], grid[1:]):
        s_hat = min(s_cur + SDE_CHURN * (s_cur - s_prev), SCHED.s_max(N))
        decay *= SCHED.a(s_hat, N) / SCHED.a(s_cur, N)
    return decay


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "sde"])
def test_superresolution_reproduces_spectrum(sampler):
    wh, *_, y0 = _superresolve(sampler)
    assert_spectrum(wh.color(y0), f"super-resolution x4 ({sampler})")


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "sde"])
def test_superresolution_low_band_regression(sampler):
    """Low-band consistency, stated exactly.

    Embedding a Fourier-truncated field reproduces its whitened low band: y_in = y_true there.
    With y_{s*} = a y_in + b ε (a = a_{s*}(k)) and the exact Gaussian reverse process, the output
    is y_out = a² y_in + r with Var r = 1 - a⁴ (ancestral, a sample of p(y_0 | y_{s*})), or
    y_out = y_{s*} = a y_in + b ε (deterministic flow, the identity for Gaussian data). So per
    low-band mode the regression slope of y_out on y_in is a² (resp. a) and the residual
    variance 1 - a⁴ (resp. 1 - a²); modes well inside the band (a ≈ 1) copy the input. The
    stochastic Heun sampler's forward re-noising multiplies y by a_ŝ/a_s per step (and keeps
    unit variance): slope a·Π a_ŝ/a_s (:func:`sde_decay`), residual variance 1 - slope².
    """
    wh, n, s_star, x_true, y_in, y0 = _superresolve(sampler)
    Yi = torch.fft.fft2(y_in.double(), norm="ortho")
    Yt = torch.fft.fft2(wh.whiten(x_true).double(), norm="ortho")
    band = torch.as_tensor(low_band_mask(n, N))
    assert torch.allclose(Yi[:, band], Yt[:, band], atol=1e-4)  # embedding is exact on the band
    Yo = torch.fft.fft2(y0.double(), norm="ortho")
    slope = (Yo * Yi.conj()).real.sum(0) / (Yi.abs() ** 2).sum(0)
    resid = ((Yo - slope * Yi).abs() ** 2).mean(0)
    a = torch.as_tensor(SCHED.a(s_star, N))
    want_slope = {"ddpm": a**2, "ddim": a, "sde": a * torch.as_tensor(sde_decay(s_star))}[sampler]
    want_var = 1 - want_slope**2
    se = torch.sqrt(want_var.clamp(min=1e-6) / (Yi.abs() ** 2).sum(0))
    z = ((slope - want_slope) / se)[band]
    assert z.abs().max() < 5.5, f"slope off by {z.abs().max():.1f} sigma"
    assert torch.allclose(resid[band], want_var[band].double(), atol=0.12)
    if sampler == "ddim":
        assert torch.all(a[0, 0] > 0.999) and abs(slope[0, 0] - 1) < 1e-3  # the zero mode is copied
