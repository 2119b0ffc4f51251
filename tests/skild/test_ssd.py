"""Scale-space sampling (skild/ssd.py) against the exact Gaussian oracle (a zero network).

For a Gaussian random field the zero network is Bayes-optimal, the samplers are exact, and
the lift between lattices is exact in distribution, so SSD must reproduce S(k) at every |k|
and the low-band regression of plain super-resolution. The negative controls check that a
5 % error in the carried-over amplitude is caught.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.skild import ssd
from isingscale.skild.checkpoint import SkildModel, load_checkpoint
from isingscale.skild.coarsen import band_indices, embed, fourier_truncate, low_band_mask
from isingscale.skild.process import Schedule, Whitener, forward_marginal
from isingscale.skild.sampler import ddpm_sampler, default_steps, reverse
from isingscale.skild.spectral import power_law_spectrum

from .conftest import gaussian_field
from .test_gaussian_optimal import shell_ratios

N = 32
SPEC = power_law_spectrum(N, p=1.75, A=0.3, c0=2.0)  # the oracle tests' spectrum: S ∝ |k|^-7/4
SCHED = Schedule(width=0.4)


class ZeroNet(torch.nn.Module):
    """The Gaussian Bayes-optimal network (v̂ = 0) that counts its calls and site-evaluations."""

    def __init__(self, depth: int = 2):
        super().__init__()
        self.config = SimpleNamespace(depth=depth)
        self.calls = 0
        self.sites = 0  # per lattice: Σ over calls of N²

    def check_size(self, n: int) -> None:
        m = 2**self.config.depth
        if n % m or n < m:
            raise IsingScaleError(f"this network takes lattice sizes divisible by {m}; got {n}")

    def forward(self, y, s):
        self.calls += 1
        self.sites += y.shape[-1] * y.shape[-2]
        return torch.zeros_like(y)


def zero_model(depth: int = 2) -> SkildModel:
    return SkildModel(ZeroNet(depth), SPEC, SCHED, {"lattice": "ising-periodic"})


def check_spectrum(x: torch.Tensor, what: str, n_sigma: float = 5.0) -> None:
    """Every |k| shell within n_sigma, and Σ z² within 5 σ of its χ² expectation."""
    r, se = shell_ratios(x, SPEC)
    z = (r - 1.0) / se
    chi2, dof = float(np.sum(z**2)), len(z)
    assert np.all(np.abs(z) < n_sigma), (
        f"{what}: S_out/S off by {np.max(np.abs(z)):.1f} sigma; ratios {np.round(r, 3)}"
    )
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (
        f"{what}: chi2 {chi2:.1f} for {dof} shells; ratios {np.round(r, 3)}"
    )


def fft(x):
    return torch.fft.fft2(x.double(), norm="ortho")


# ----------------------------------------------------------------------------
# The lift.


@pytest.mark.parametrize("j", [1, 2])
def test_lift_ratio_is_scale_free_and_at_most_one(j):
    Nc = N >> j
    fi, ci = ssd._band(Nc, N, "ising-periodic")
    rs = [ssd.lift_coefficients(SCHED, N, Nc, s)[0] for s in (j, j + 0.5, j + 1.7, 6.0)]
    for r, s in zip(rs, (j, j + 0.5, j + 1.7, 6.0)):
        np.testing.assert_allclose(r, rs[0], rtol=1e-12)  # only the s = 0 normalisations remain
        # a_N(s, k) = r a_N'(s - j, 2^j k) on the shared band, r <= 1 (the lift never amplifies)
        a_f, a_c = SCHED.a(s, N)[np.ix_(fi, fi)], SCHED.a(s - j, Nc)[np.ix_(ci, ci)]
        np.testing.assert_allclose(a_f, r * a_c, rtol=1e-10, atol=1e-300)
    r, sd = ssd.lift_coefficients(SCHED, N, Nc, j + 1.0)
    assert np.all(r <= 1) and np.allclose(r**2 + sd**2, 1)
    zero = np.flatnonzero(band_indices(Nc) == 0)[0]
    assert r[zero, zero] > 0.999  # long wavelengths carry over unchanged
    assert r.min() < 0.5  # near the coarse Nyquist the N' normalisation is larger


def test_restriction_index_map_and_embed_convention():
    """Restriction copies the shared band (factor 1 in whitened coordinates); in colored
    terms it is Fourier truncation times g = f √(S_N'/S_N) per mode, i.e. `embed` into N
    then restriction = g x `embed` directly into N' (g = 2^(j(2-p)/2) for a power law)."""
    wh = Whitener(SPEC)
    x = gaussian_field(SPEC, N, 3, seed=11)
    for j in (1, 2):
        Nc = N >> j
        g = 2.0 ** (j * (2 - SPEC.p) / 2)
        yc = ssd.restrict(wh.whiten(x), Nc, wh.basis, generator=torch.Generator().manual_seed(0))
        fi, ci = ssd._band(Nc, N, "ising-periodic")
        Yc, Y = fft(yc), fft(wh.whiten(x))
        assert torch.allclose(
            Yc[:, ci[:, None], ci[None, :]], Y[:, fi[:, None], fi[None, :]], atol=1e-5
        )
        nyq = np.ones((Nc, Nc), bool)
        nyq[np.ix_(ci, ci)] = False  # the coarse Nyquist lines: noise, not signal
        assert nyq.sum() == 2 * Nc - 1 and torch.all(Yc[:, nyq].abs().sum(-1) > 0)
        band = torch.as_tensor(~nyq)
        Ytr = fft(wh.whiten(fourier_truncate(x, Nc)))
        assert torch.allclose(Yc[:, band], g * Ytr[:, band], rtol=1e-4, atol=1e-5)
        n = 4
        xn = fourier_truncate(x, n)
        via_N = fft(ssd.restrict(embed(xn, N, wh, noise_fill=False), Nc, wh.basis))
        direct = fft(embed(xn, Nc, wh, noise_fill=False))
        bn = torch.as_tensor(low_band_mask(n, Nc))
        assert torch.allclose(via_N[:, bn], g * direct[:, bn], rtol=1e-4, atol=1e-5)
        assert abs(g - 1) > 0.04  # the two conventions really differ


def _perturb_lift(monkeypatch, gain):
    real = ssd.lift_coefficients

    def wrong(schedule, N, Nc, s):
        r, sd = real(schedule, N, Nc, s)
        return gain(N, Nc) * r, sd

    monkeypatch.setattr(ssd, "lift_coefficients", wrong)


def _lift_regression(j, margin=1.0, B=3000, seed=21, lattice="ising-periodic"):
    """Fine y0 (Gaussian, whitened) -> coarse marginal at s_lift - j -> lift; regress on y0."""
    spec = (
        SPEC
        if lattice == "ising-periodic"
        else power_law_spectrum(N, p=1.75, A=0.3, c0=2.0, lattice=lattice)
    )
    sched = Schedule(width=0.4, lattice=lattice)
    wh = Whitener(spec)
    Nc, s_lift = N >> j, j + margin
    g = torch.Generator().manual_seed(seed)
    y0 = torch.randn(B, N, N, generator=g)
    yc0 = ssd.restrict(y0, Nc, wh.basis, generator=g)
    yc = forward_marginal(wh.basis, sched, yc0, s_lift - j, torch.randn(yc0.shape, generator=g))
    y = ssd.lift(yc, N, s_lift, basis=wh.basis, schedule=sched, generator=g)
    Y0, Y = wh.basis.forward(y0.double()), wh.basis.forward(y.double())
    slope = (Y * Y0.conj()).real.sum(0) / (Y0.abs() ** 2).sum(0)
    resid = ((Y - slope * Y0).abs() ** 2).mean(0)
    a = torch.as_tensor(sched.a(s_lift, N))
    b2 = (1 - a**2).clamp(min=1e-6)
    fi, _ = ssd._band(Nc, N, lattice)
    band = torch.zeros(N, N, dtype=torch.bool)
    band[fi[:, None], fi[None, :]] = True
    z = ((slope - a) / torch.sqrt(b2 / (Y0.abs() ** 2).sum(0)))[band]
    return Y, slope, resid, a, b2, band, z


def slope_ok(z: torch.Tensor) -> bool:
    """Per-mode slope z-scores: none beyond 5 sigma and mean z² below 1.5 (null: ≈ 0.5-0.6, since
    the slope uses the real part of a complex regression; a 2 % gain error gives ≈ 4.5)."""
    return bool(z.abs().max() < 5.0 and (z**2).mean() < 1.5)


@pytest.mark.parametrize(
    "j,lattice", [(1, "ising-periodic"), (2, "ising-periodic"), (1, "image-dct")]
)
def test_lift_is_exact_in_distribution(j, lattice):
    """Shared band: y = a_N(s_lift) y0 + b ε exactly (slope a, residual variance b² per mode);
    every mode has unit variance; the high band is fresh noise whose missing signal
    a_N(s_lift, k) is small for margin = 1 (the only approximation, exact for Gaussian y_s)."""
    Y, slope, resid, a, b2, band, z = _lift_regression(j, lattice=lattice)
    assert slope_ok(z), f"slope off by {z.abs().max():.1f} sigma, mean z² {(z**2).mean():.2f}"
    assert torch.allclose(resid[band], b2[band], rtol=0.15, atol=0.01)
    var = (Y.abs() ** 2).mean(0)
    assert torch.allclose(var, torch.ones_like(var), atol=0.15)  # per mode, 3000 samples
    assert abs(var.mean().item() - 1) < 0.01
    assert (
        slope[~band].abs().max() < 0.1 and a[~band].max() < 0.085
    )  # high band: noise, a ≤ σ(-1/w)/σ(j/w)


@pytest.mark.parametrize("gain", ["5 % amplitude", "no noise, copy"])
def test_lift_check_catches_a_wrong_constant(monkeypatch, gain):
    if gain == "5 % amplitude":
        _perturb_lift(monkeypatch, lambda N, Nc: 1.05)
    else:  # y = y' on the band: the naive lift (variance right, covariance with y0 wrong)
        r_true = ssd.lift_coefficients(SCHED, N, N // 2, 2.0)[0]
        monkeypatch.setattr(
            ssd, "lift_coefficients", lambda *a: (np.ones_like(r_true), np.zeros_like(r_true))
        )
    *_, z = _lift_regression(1, B=1500)
    assert not slope_ok(z)


# ----------------------------------------------------------------------------
# Generation and super-resolution with the oracle.


@pytest.mark.parametrize(
    "sampler,decimate", [("ddpm", 1), ("ddpm", 2), ("ddim", 1), ("ddim", 2), ("sde", 1)]
)
def test_ssd_generation_reproduces_spectrum(sampler, decimate):
    # The oracle samplers are exact at any step count, so few steps suffice here.
    model = zero_model()
    g = torch.Generator().manual_seed(30 + decimate)
    x = ssd.ssd_generate_batch(
        model, 2000, N, decimate=decimate, steps_per_octave=3, sampler=sampler, generator=g
    )
    assert x.shape == (2000, N, N) and x.dtype == torch.float32
    check_spectrum(x, f"SSD generation ({sampler}, decimate {decimate})")


@pytest.mark.parametrize("error", ["5 % amplitude", "colored embed rule"])
def test_spectrum_check_catches_a_wrong_lift_amplitude(monkeypatch, error):
    # Carrying the coarse coefficient over with factor 1.05, or with `embed`'s colored rule
    # g = f √(S_N'/S_N) (= 2^(1/8) here), puts ~10 % (~19 %) too much power in the low band.
    if error == "5 % amplitude":
        _perturb_lift(monkeypatch, lambda N_, Nc: 1.05)
    else:
        _perturb_lift(monkeypatch, lambda N_, Nc: (N_ / Nc) ** ((2 - SPEC.p) / 2))
    g = torch.Generator().manual_seed(31)
    x = ssd.ssd_generate_batch(zero_model(), 2000, N, decimate=1, steps_per_octave=3, generator=g)
    with pytest.raises(AssertionError):
        check_spectrum(x, "wrong lift")


@pytest.mark.parametrize(
    "sampler,decimate,margin", [("ddpm", 1, 1.0), ("ddim", 1, 1.0), ("ddpm", 2, 0.5)]
)
def test_ssd_superresolution_spectrum_and_low_band(sampler, decimate, margin):
    """x8 (4 -> 32) from Fourier-truncated Gaussian fields. As for plain SR (test_gaussian_optimal),
    per input-band mode the output regresses on the whitened input with slope a_N(s*)² (ddpm) or
    a_N(s*) (ddim) and residual variance 1 - slope²: the coarse steps and lift change nothing."""
    B, n = 2000, 4
    wh = Whitener(SPEC)
    x_true = gaussian_field(SPEC, N, B, seed=40 + decimate)
    g = torch.Generator().manual_seed(41)
    out = ssd.ssd_upsample_stage(
        zero_model(),
        fourier_truncate(x_true, n).numpy(),
        "fourier",
        N,
        decimate=decimate,
        margin=margin,
        steps=9,
        sampler=sampler,
        generator=g,
    )
    out = torch.as_tensor(out)
    check_spectrum(out, f"SSD super-resolution ({sampler}, decimate {decimate})")
    Yi, Yo = fft(wh.whiten(x_true)), fft(wh.whiten(out))
    band = torch.as_tensor(low_band_mask(n, N))
    slope = (Yo * Yi.conj()).real.sum(0) / (Yi.abs() ** 2).sum(0)
    resid = ((Yo - slope * Yi).abs() ** 2).mean(0)
    a = torch.as_tensor(SCHED.a(math.log2(N / n), N))
    want = a**2 if sampler == "ddpm" else a
    se = torch.sqrt((1 - want**2).clamp(min=1e-6) / (Yi.abs() ** 2).sum(0))
    z = ((slope - want) / se)[band]
    assert z.abs().max() < 5.0, f"slope off by {z.abs().max():.1f} sigma"
    assert torch.allclose(resid[band], (1 - want**2)[band], atol=0.1)


# ----------------------------------------------------------------------------
# Plan, cost, bit-for-bit fallback, errors.


@pytest.mark.parametrize(
    "sampler,n,decimate,margin",
    [
        ("ddpm", None, 1, 1.0),
        ("ddpm", None, 2, 1.0),
        ("ddim", None, 1, 0.5),
        ("ddpm", 4, 1, 1.0),
        ("ddim", 4, 2, 0.5),
        ("sde", 4, 1, 1.0),
    ],
)
def test_plan_cost_matches_counted_network_calls(sampler, n, decimate, margin):
    model = zero_model()
    plan = ssd.ssd_plan(model, n, N, decimate, margin, sampler)
    g = torch.Generator().manual_seed(50)
    if n is None:
        ssd.ssd_generate_batch(
            model, 1, N, decimate=decimate, margin=margin, sampler=sampler, generator=g
        )
        s_top = SCHED.s_max(N)
    else:
        ssd.ssd_upsample_stage(
            model,
            np.zeros((1, n, n), np.float32),
            "fourier",
            N,
            decimate=decimate,
            margin=margin,
            sampler=sampler,
            generator=g,
        )
        s_top = math.log2(N / n)
    assert model.net.calls == plan.net_calls and model.net.sites == plan.site_evals
    assert plan.ratio < 1 and plan.site_evals < plan.plain_site_evals
    assert plan.plain.steps == default_steps(
        sampler, s_top
    )  # 20 (ddpm) / 6 (ddim) / 10 (sde) steps per octave
    assert [lv.N for lv in plan.levels] == [N >> decimate, N]
    assert plan.levels[1].steps == default_steps(sampler, decimate + margin)
    model.net.calls = model.net.sites = 0  # plain SKILD (decimate 0) costs what the plan says
    if n is None:
        ssd.ssd_generate_batch(model, 1, N, decimate=0, sampler=sampler, generator=g)
    else:
        ssd.ssd_upsample_stage(
            model,
            np.zeros((1, n, n), np.float32),
            "fourier",
            N,
            decimate=0,
            sampler=sampler,
            generator=g,
        )
    assert (
        model.net.sites == plan.plain_site_evals
        and ssd.ssd_plan(model, n, N, 0, margin, sampler).ratio == 1.0
    )


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "sde"])
def test_decimate_zero_is_plain_skild_bit_for_bit(sampler):
    from isingscale.skild.upsample import upsample_stage

    model = zero_model()
    x = ssd.ssd_generate_batch(
        model, 4, N, decimate=0, sampler=sampler, generator=torch.Generator().manual_seed(60)
    )
    g = torch.Generator().manual_seed(60)  # what generate.generate does with seed 60
    s_max = SCHED.s_max(N)
    want = reverse(
        model,
        torch.randn((4, N, N), generator=g),
        s_max,
        steps=default_steps(sampler, s_max),
        sampler=sampler,
        generator=g,
        device=torch.device("cpu"),
    )
    assert torch.equal(x, want)
    xc = fourier_truncate(gaussian_field(SPEC, N, 4, seed=61), 8).numpy()
    for steps in (None, 7):
        a = ssd.ssd_upsample_stage(
            model,
            xc,
            "fourier",
            N,
            decimate=0,
            steps=steps,
            sampler=sampler,
            s_offset=0.25,
            generator=torch.Generator().manual_seed(62),
        )
        b = upsample_stage(
            model,
            xc,
            "fourier",
            N,
            steps=steps,
            sampler=sampler,
            s_offset=0.25,
            generator=torch.Generator().manual_seed(62),
            device=torch.device("cpu"),
        )
        assert np.array_equal(a, b)


def test_sampler_s_end():
    wh = Whitener(SPEC)
    y = torch.randn(2, N, N, generator=torch.Generator().manual_seed(70))
    kw = dict(basis=wh.basis, schedule=SCHED)
    a = ddpm_sampler(
        lambda y, s: 0.1 * y, y, 3.0, 5, generator=torch.Generator().manual_seed(1), **kw
    )
    b = ddpm_sampler(
        lambda y, s: 0.1 * y, y, 3.0, 5, generator=torch.Generator().manual_seed(1), s_end=0.0, **kw
    )
    assert torch.equal(a, b)
    seen = []
    ddpm_sampler(lambda y, s: seen.append(float(s[0])) or 0 * y, y, 3.0, 4, s_end=1.0, **kw)
    assert np.allclose(seen, [3.0, 2.5, 2.0, 1.5])
    for bad in (-0.5, 3.0, 4.0):
        with pytest.raises(ValueError):
            ddpm_sampler(lambda y, s: 0 * y, y, 3.0, 4, s_end=bad, **kw)


@pytest.mark.parametrize(
    "n,decimate,margin,match",
    [
        (
            None,
            3,
            1.0,
            "divisible by 8",
        ),  # N' = 4: too small for a depth-3 network (like the shipped one)
        (None, 6, 1.0, "not divisible by 64"),
        (None, -1, 1.0, "non-negative integer"),
        (None, 1.5, 1.0, "non-negative integer"),
        (None, 1, -0.5, "margin"),
        (None, 1, 6.0, "no room"),
        (8, 2, 0.5, "must exceed the input size"),
        (8, 1, 1.0, "no room"),
        (4, 1, 2.0, "no room"),
    ],
)
def test_impossible_decimations_raise(n, decimate, margin, match):
    model = zero_model(depth=3)
    with pytest.raises(IsingScaleError, match=match):
        ssd.ssd_plan(model, n, N, decimate, margin)
    with pytest.raises(IsingScaleError, match=match):
        if n is None:
            ssd.ssd_generate_batch(
                model, 1, N, decimate=decimate, margin=margin, generator=torch.Generator()
            )
        else:
            ssd.ssd_upsample_stage(
                model,
                np.zeros((1, n, n), np.float32),
                "fourier",
                N,
                decimate=decimate,
                margin=margin,
                generator=torch.Generator(),
            )


def test_real_unet_runs(tiny_checkpoint):
    """Smoke test with a real (untrained) UNet checkpoint: generation and super-resolution."""
    model = load_checkpoint(tiny_checkpoint)
    g = torch.Generator().manual_seed(80)
    x = ssd.ssd_generate_batch(model, 2, 32, decimate=2, steps_per_octave=2, generator=g)
    assert x.shape == (2, 32, 32) and torch.isfinite(x).all()
    spins = np.sign(np.random.default_rng(0).standard_normal((2, 4, 4))).astype(np.int8)
    y = ssd.ssd_upsample_stage(
        model, spins, "block", 32, decimate=1, steps=6, sampler="ddim", generator=g
    )
    assert y.shape == (2, 32, 32) and np.isfinite(y).all()


def test_default_start_offset_depends_on_the_input_kind():
    """s_offset=None starts block spins BLOCK_S_OFFSET octaves higher and Fourier fields at log2 F,
    in plain SKILD and SSD alike (bit for bit the explicit value)."""
    from isingscale.skild.coarsen import BLOCK_S_OFFSET, start_offset
    from isingscale.skild.upsample import upsample_stage

    assert start_offset("fourier") == 0.0 and start_offset("block") == BLOCK_S_OFFSET > 0
    assert start_offset("block", 0.0) == 0.0
    model, n, N = zero_model(), 8, 16
    spins = np.where(np.random.default_rng(0).normal(size=(2, n, n)) > 0, 1, -1).astype(np.int8)
    model.meta["block_transfer"] = [
        {"factor": 2, "k": [0.05, 0.5], "g": [1.0, 1.0], "g0": 1.0}
    ]  # identity

    def run(kind, x, s_offset, ssd_=False):
        g = torch.Generator().manual_seed(1)
        if ssd_:
            return ssd.ssd_upsample_stage(
                model, x, kind, N, decimate=0, s_offset=s_offset, generator=g
            )
        return upsample_stage(
            model,
            x,
            kind,
            N,
            steps=None,
            sampler="ddpm",
            s_offset=s_offset,
            generator=g,
            device="cpu",
        )

    for ssd_ in (False, True):
        assert np.array_equal(
            run("block", spins, None, ssd_), run("block", spins, BLOCK_S_OFFSET, ssd_)
        )
        assert not np.array_equal(run("block", spins, None, ssd_), run("block", spins, 0.0, ssd_))
        xf = spins.astype(np.float32)
        assert np.array_equal(run("fourier", xf, None, ssd_), run("fourier", xf, 0.0, ssd_))
