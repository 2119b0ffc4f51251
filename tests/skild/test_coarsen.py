"""Fourier truncation, embedding, block spins, transfer function, the coarsen file API."""

import numpy as np
import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.skild.coarsen import (
    block_spins,
    coarsen,
    embed,
    fourier_truncate,
    low_band_mask,
    measure_block_transfer,
    transfer_multiplier,
)
from isingscale.skild.process import Whitener
from isingscale.skild.spectral import power_law_spectrum

from .conftest import gaussian_field, random_spins, write_spins


@pytest.mark.parametrize("N, n", [(32, 8), (32, 16), (24, 9), (30, 12)])
def test_truncate_then_embed_reproduces_low_band_exactly(N, n):
    spec = power_law_spectrum(N)
    wh = Whitener(spec)
    x = gaussian_field(spec, N, 16, seed=1).double()
    y = embed(fourier_truncate(x, n), N, wh, noise_fill=False)
    X, Xe = torch.fft.fft2(x, norm="ortho"), torch.fft.fft2(wh.color(y).double(), norm="ortho")
    band = torch.as_tensor(low_band_mask(n, N))
    assert torch.allclose(Xe[:, band], X[:, band], atol=1e-4)
    assert Xe[:, ~band].abs().max() < 1e-4
    # Noise fill: unit variance in whitened coordinates outside the band, input untouched inside.
    yf = embed(fourier_truncate(x, n), N, wh, generator=torch.Generator().manual_seed(0))
    Yf = torch.fft.fft2(yf.double(), norm="ortho")
    assert torch.allclose(Yf[:, band], torch.fft.fft2(y.double(), norm="ortho")[:, band], atol=1e-4)
    assert abs((Yf[:, ~band].abs() ** 2).mean().item() - 1.0) < 0.1


def test_orthonormal_scaling_factor_f():
    # Coarse orthonormal coefficients = fine ones / f, f = N/n; a constant keeps its value.
    N, n = 32, 8
    x = torch.full((1, N, N), 0.7, dtype=torch.float64)
    xc = fourier_truncate(x, n)
    assert torch.allclose(xc, torch.full((1, n, n), 0.7), atol=1e-6)
    xr = gaussian_field(power_law_spectrum(N), N, 4).double()
    Xc = torch.fft.fft2(fourier_truncate(xr, n).double(), norm="ortho")
    X = torch.fft.fft2(xr, norm="ortho")
    assert torch.allclose(Xc[:, 1, 2], X[:, 1, 2] / (N / n), atol=1e-5)
    assert torch.allclose(Xc[:, -3, 1], X[:, -3, 1] / (N / n), atol=1e-5)
    assert torch.all(Xc[:, n // 2, :].abs() < 1e-6)  # even n: the coarse Nyquist line stays empty


def test_block_spins_hand_computed_with_ties():
    s = np.array([[[1, 1, -1, 1], [1, -1, -1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]], dtype=np.int8)
    # Blocks: (1+1+1-1)=2 -> +1; (-1+1-1-1)=-2 -> -1; (-1+1+1-1)=0 tie -> top-left -1;
    # (1-1-1+1)=0 tie -> top-left +1.
    assert block_spins(s, 2).tolist() == [[[1, -1], [-1, 1]]]
    assert block_spins(-s, 2).tolist() == [[[-1, 1], [1, -1]]]  # the tie rule is odd too
    r = random_spins(8, 16, seed=3)
    assert np.array_equal(block_spins(r, 4), block_spins(r.copy(), 4))
    with pytest.raises(IsingScaleError):
        block_spins(r, 3)


def test_block_transfer_function():
    spins = random_spins(256, 32, seed=4)
    t = measure_block_transfer(spins, 2)
    assert t["factor"] == 2 and len(t["k"]) == len(t["g"]) > 2 and t["g0"] > 0
    g = transfer_multiplier([t], 2.0, 16)
    assert g.shape == (16, 16) and np.isclose(g[0, 0], t["g0"])
    g15 = transfer_multiplier([t], 1.5, 16)  # log-interpolated towards g_1 = 1
    assert np.all(np.minimum(g, 1) - 1e-9 <= g15) and np.all(g15 <= np.maximum(g, 1) + 1e-9)


def test_coarsen_file_api(tmp_path):
    src = write_spins(tmp_path / "in.h5", random_spins(6, 16, seed=5))
    from isingscale.io import read_ensemble

    out = read_ensemble(coarsen(src, factor=4, method="fourier", out=tmp_path / "f.h5"))
    assert (
        out["field"].shape == (6, 4, 4) and out["field"].dtype == np.float32 and "spins" not in out
    )
    assert (
        out["attrs"]["method"] == "fourier"
        and out["attrs"]["factor"] == 4
        and out["attrs"]["source_L"] == 16
    )
    out = read_ensemble(coarsen(src, factor=2, method="block", out=tmp_path / "b.h5"))
    assert out["spins"].shape == (6, 8, 8) and set(np.unique(out["spins"])) <= {-1, 1}
    out = read_ensemble(coarsen(src, factor=2.5, method="fourier", out=tmp_path / "f25.h5"))
    assert out["field"].shape == (6, 6, 6)
    for bad in (
        dict(factor=1.0, method="fourier"),
        dict(factor=3, method="block"),
        dict(factor=2.5, method="block"),
    ):
        with pytest.raises(IsingScaleError):
            coarsen(src, out=tmp_path / "bad.h5", **bad)
