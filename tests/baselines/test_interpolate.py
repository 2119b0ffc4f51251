"""Nearest, Fourier and bicubic baselines: contract, exactness at the coarse sites, symmetry."""

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from isingscale.baselines import bicubic, bicubic_interpolate, fourier, fourier_interpolate, nearest
from isingscale.errors import IsingScaleError
from isingscale.skild.coarsen import block_spins, fourier_truncate, low_band_mask

from .conftest import coarse_inputs

METHODS = {"nearest": nearest, "fourier": fourier, "bicubic": bicubic}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["fourier", "block"])
@pytest.mark.parametrize("n, N", [(4, 8), (8, 16), (4, 16)])
def test_contract_shape_spins_determinism(method, kind, n, N):
    fn = METHODS[method]
    x = coarse_inputs(kind, n, B=3)
    a = fn(x, kind, N, generator=torch.Generator().manual_seed(0))
    b = fn(x, kind, N, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, N, N) and a.dtype == np.int8
    assert set(np.unique(a)) <= {-1, 1}
    assert np.array_equal(a, b)


@pytest.mark.parametrize("f", [2, 4])
def test_nearest_reblocks_to_its_block_input(f):
    x = coarse_inputs("block", 8, B=4, seed=1)
    assert np.array_equal(block_spins(nearest(x, "block", 8 * f), f), x)


def test_nearest_fourier_input_is_centred_on_the_sample_points():
    x = coarse_inputs("fourier", 8, B=2, seed=2)
    s = nearest(x, "fourier", 32)
    assert np.array_equal(s[:, ::4, ::4], np.where(x >= 0, 1, -1))
    assert np.array_equal(s[:, 2::4, 2::4], np.roll(s[:, ::4, ::4], -1, axis=(1, 2)))


@pytest.mark.parametrize("n, N", [(8, 16), (8, 24), (7, 14), (8, 12), (5, 12)])
def test_fourier_interpolant_passes_through_the_coarse_samples(n, N):
    # Generic input: even n carries a Nyquist line, which must be split, not doubled.
    x = np.random.default_rng(3).normal(size=(2, n, n))
    y = fourier_interpolate(x, N)
    g = np.gcd(n, N)
    assert np.allclose(y[:, :: N // g, :: N // g], x[:, :: n // g, :: n // g], atol=1e-12)


@pytest.mark.parametrize("n, N", [(8, 16), (7, 16), (6, 15)])
def test_fourier_interpolation_inverts_fourier_truncation(n, N):
    # fourier_truncate's convention (coarse coefficients = fine / f) is undone exactly:
    # the result is the fine lattice's ideal low-pass on the truncation band.
    fine = coarse_inputs("block", N, B=2, seed=4).astype(np.float64)
    X = np.fft.fft2(fine) * low_band_mask(n, N)
    assert np.allclose(
        fourier_interpolate(fourier_truncate(fine, n).double().numpy(), N),
        np.fft.ifft2(X).real,
        atol=1e-5,
    )


def test_fourier_keeps_the_sign_of_the_coarse_field_where_it_is_large():
    x = coarse_inputs("fourier", 8, B=8, seed=5)
    s = fourier(x, "fourier", 32)
    large = np.abs(x) > 0.3
    assert large.sum() > 50
    assert np.array_equal(s[:, ::4, ::4][large], np.sign(x[large]))
    # Block input: inside a domain (3 x 3 coarse neighbourhood of one sign) the fine spins of
    # each block follow the block spin.
    noise = np.random.default_rng(5).normal(size=(8, 16, 16))
    b = np.where(uniform_filter(noise, size=(1, 7, 7), mode="wrap") >= 0, 1, -1).astype(np.int8)
    interior = np.abs(uniform_filter(b.astype(float), size=(1, 3, 3), mode="wrap")) > 1 - 1e-9
    fine = fourier(b, "block", 64).reshape(8, 16, 4, 16, 4)
    agree = (fine == b[:, :, None, :, None]).mean(axis=(2, 4))
    assert interior.sum() > 50 and agree[interior].mean() > 0.95


@pytest.mark.parametrize("kind", ["fourier", "block"])
@pytest.mark.parametrize("n, N, shift", [(8, 16, 1), (4, 16, 1), (8, 12, 2)])
def test_bicubic_is_translation_covariant_on_the_torus(kind, n, N, shift):
    x = coarse_inputs(kind, n, B=3, seed=6)
    fine_shift, rest = divmod(shift * N, n)
    assert rest == 0
    y = bicubic(x, kind, N)
    for axis in (1, 2):
        assert np.array_equal(
            bicubic(np.roll(x, shift, axis=axis), kind, N), np.roll(y, fine_shift, axis=axis)
        )


def test_bicubic_interpolant_is_exact_on_coarse_sites_and_accurate_for_smooth_fields():
    x = np.random.default_rng(7).normal(size=(2, 8, 8))
    assert np.allclose(bicubic_interpolate(x, 32)[:, ::4, ::4], x, atol=1e-12)
    u = np.arange(16) / 16
    smooth = np.cos(2 * np.pi * u)[:, None] * np.sin(2 * np.pi * u)[None, :]
    v = np.arange(64) / 64
    exact = np.cos(2 * np.pi * v)[:, None] * np.sin(2 * np.pi * v)[None, :]
    assert np.abs(bicubic_interpolate(smooth[None], 64)[0] - exact).max() < 2e-3


@pytest.mark.parametrize("method", METHODS)
def test_unsupported_inputs_raise_one_line_errors(method):
    fn = METHODS[method]
    x = coarse_inputs("block", 4)
    for args, match in [
        ((x, "gaussian", 8), "unknown coarse kind"),
        ((x[:, :, :3], "block", 8), "square"),
        ((x, "block", 4), "larger than the input"),
        ((x * 2, "block", 8), r"\+1 and -1"),
        ((np.full((1, 4, 4), np.nan), "fourier", 8), "NaN"),
    ]:
        with pytest.raises(IsingScaleError, match=match):
            fn(*args)
    if method == "nearest":
        with pytest.raises(IsingScaleError, match="integer factor"):
            fn(x, "block", 10)
    else:
        assert fn(x, "block", 10).shape == (len(x), 10, 10)
