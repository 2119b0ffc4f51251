"""Kernel interpolation: the 1/s² constant against the continuum operator, identity at s = 1,
output sizes, the one-pass ×F CNN, and the comparison harness."""

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from isingscale.baselines import (
    CNNNet,
    cnn_ki_upsample,
    cnn_upsample,
    fourier_interpolate,
    interpolate_kernels,
)
from isingscale.baselines.kernel_interp import resampling_matrix
from isingscale.errors import IsingScaleError

from .conftest import assert_sampler_contract, coarse_inputs, untrained_cnn

MODES = (
    (1, 0, 0.7),
    (0, 2, -0.5),
    (1, 1, 0.9),
    (2, 1, 0.4),
)  # (k_x, k_y, amplitude), cycles per box


def smooth_field(L: int) -> torch.Tensor:
    """(1, 1, L, L) float64 samples of one smooth periodic function on the unit torus."""
    u = np.arange(L) / L
    x, y = np.meshgrid(u, u, indexing="ij")
    f = 0.3 + sum(a * np.cos(2 * np.pi * (kx * x + ky * y) + kx + 0.3 * ky) for kx, ky, a in MODES)
    return torch.as_tensor(f[None, None])


def random_conv(seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()
    with torch.no_grad():
        conv.weight.uniform_(0, 1)  # all weight positive: edge taps carry real mass
    return conv


def continuum_error(
    conv: nn.Module, L: int, s: int, *, times: float = 1.0, mode: str = "tent"
) -> float:
    """max |fine conv - native conv interpolated up| / max |native| (band-limited, so exact up).

    ``times`` multiplies the interpolated kernel (to try other constants than 1/s²).
    """
    with torch.no_grad():
        native = conv(smooth_field(L))[0].numpy()
        fine = times * interpolate_kernels(conv, s, mode=mode)(smooth_field(s * L))[0].numpy()
    up = fourier_interpolate(native, s * L)
    return float(np.abs(fine - up).max() / np.abs(up).max())


@pytest.mark.parametrize("s", [2, 3, 4])
def test_resampled_taps_conserve_the_kernel_sum(s):
    T = resampling_matrix(3, s)
    assert T.shape == (2 * s + 1 + 2 * (s - 1), 3)  # 3 x 3 -> 7 x 7 at s = 2, 15 x 15 at s = 4
    assert np.allclose(T.sum(axis=0), s)  # s taps per axis replace each original tap
    assert resampling_matrix(3, s, mode="aligned").shape == (2 * s + 1, 3)
    assert np.array_equal(resampling_matrix(3, 1), np.eye(3))


@pytest.mark.parametrize("s", [2, 4])
def test_one_over_s_squared_reproduces_the_continuum_convolution(s):
    # w_j = a² W(j a) at spacing a; at a/s the taps are (1/s²) × the interpolated kernel, so the
    # fine-grid convolution of the same smooth field equals the native one up to O(a²).
    conv = random_conv()
    e16, e32 = continuum_error(conv, 16, s), continuum_error(conv, 32, s)
    assert e16 < 0.04 and e32 < 0.01 and e16 / e32 > 3.5, (e16, e32)  # second order in a
    # The alternatives are off at O(1): no constant (× s²), the paper's s² read with s > 1
    # (× s⁴), or a kernel sampled only inside its outer taps ("aligned", 3 x 3 -> 5 x 5).
    assert continuum_error(conv, 32, s, times=s**2) > 2
    assert continuum_error(conv, 32, s, times=s**4) > 10
    assert continuum_error(conv, 32, s, mode="aligned") > 0.2


def test_interpolated_network_reproduces_the_native_network_on_smooth_input():
    torch.manual_seed(0)
    net = CNNNet().double()
    ki = interpolate_kernels(net, 2)
    errors = []
    with torch.no_grad():
        for L in (32, 64):
            native = net(smooth_field(L))[0, 0]
            fine = ki(smooth_field(2 * L))[0, 0, ::2, ::2]  # the native sites
            errors.append(float((fine - native).abs().max() / native.abs().max()))
    assert errors[1] < 0.02 and errors[0] / errors[1] > 2, errors


def test_scale_one_is_the_identity_and_the_input_net_is_untouched():
    torch.manual_seed(1)
    net = CNNNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    same = interpolate_kernels(net, 1.0)
    x = torch.randn(2, 1, 8, 8)
    assert all(torch.equal(same.state_dict()[k], v) for k, v in before.items())
    assert torch.equal(same(x), net(x))
    interpolate_kernels(net, 2)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("s, k", [(2, 7), (4, 15), (1.5, 5)])
def test_interpolated_network_keeps_the_output_size(s, k):
    ki = interpolate_kernels(CNNNet(), s)
    assert all(c.kernel_size == (k, k) for c in ki.convs)
    assert ki(torch.randn(2, 1, 12, 12)).shape == (2, 1, 12, 12)


def test_unsupported_networks_and_scales_raise():
    with pytest.raises(IsingScaleError, match="positive"):
        interpolate_kernels(CNNNet(), 0)
    with pytest.raises(IsingScaleError, match="padding"):
        interpolate_kernels(nn.Conv2d(1, 1, 3), 2)
    with pytest.raises(IsingScaleError, match="stride"):
        interpolate_kernels(nn.Conv2d(1, 1, 3, stride=2, padding=1), 2)
    with pytest.raises(IsingScaleError, match="mode"):
        interpolate_kernels(CNNNet(), 2, mode="bicubic")


@pytest.mark.parametrize("n, N", [(4, 16), (4, 32), (8, 16)])
def test_ki_upsample_contract_and_determinism(n, N):
    model = untrained_cnn()
    x = coarse_inputs("block", n, B=3)
    a = assert_sampler_contract(partial(cnn_ki_upsample, model), x, N)
    if N == 2 * n:  # s = 1: the ×2 network itself
        same = cnn_upsample(model, x, "block", N, generator=torch.Generator().manual_seed(0))
        assert np.array_equal(a, same)


def test_ki_upsample_errors():
    model = untrained_cnn()
    x = coarse_inputs("block", 4)
    with pytest.raises(IsingScaleError, match="takes block spins"):
        cnn_ki_upsample(
            model, coarse_inputs("fourier", 4), "fourier", 16, generator=torch.Generator()
        )
    with pytest.raises(IsingScaleError, match="integer factor"):
        cnn_ki_upsample(model, x, "block", 10, generator=torch.Generator())
    with pytest.raises(IsingScaleError, match="F >= 4"):
        cnn_ki_upsample(untrained_cnn(factor=4), x, "block", 8, generator=torch.Generator())


def test_comparison_returns_every_method_with_g2_energy_and_timing(mc16, tmp_path):
    from isingscale.baselines.cnn import save_cnn
    from isingscale.evaluation.kernel_interp import compare_kernel_interpolation

    paths = []
    for factor in (2, 4):
        torch.manual_seed(factor)
        meta = {"format": "isingscale-cnn", "factor": factor, "model": {}}
        paths.append(save_cnn(tmp_path / f"x{factor}.safetensors", CNNNet(), meta))
    r = compare_kernel_interpolation(
        *paths, inputs=mc16, truth=mc16, workdir=tmp_path, samples=32, n_blocks=8
    )
    assert r["L"] == 16 and r["factor"] == 4 and r["samples"] == 32
    assert set(r["methods"]) == {"kernel_interpolated", "native", "repeated"}
    for row in r["methods"].values():
        assert row["seconds_per_lattice"] > 0 and math.isfinite(row["G2_chi2_dof"])
        assert math.isfinite(row["energy"]["rel_dev"])
    with pytest.raises(IsingScaleError, match="native ×8"):
        compare_kernel_interpolation(*paths, inputs=mc16, truth=mc16, workdir=tmp_path, factor=8)


def test_bench_kernel_interp_cli(mc16, tmp_path):
    from click.testing import CliRunner

    from isingscale.baselines import train_cnn
    from isingscale.cli import main

    cnn2 = train_cnn([mc16], tmp_path / "x2", factor=2, steps=3, batch=8, progress=False)
    cnn4 = train_cnn([mc16], tmp_path / "x4", factor=4, steps=3, batch=8, progress=False)
    r = CliRunner().invoke(
        main,
        [
            "bench",
            "kernel-interp",
            "--cnn",
            str(cnn2),
            "--native",
            str(cnn4),
            "--L",
            "16",
            "--samples",
            "16",
            "--out",
            str(tmp_path / "w"),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [
        line for line in r.output.splitlines() if line.startswith("| ") and "network" not in line
    ]
    assert [row.split("|")[1].strip() for row in rows] == [
        "kernel_interpolated",
        "native",
        "repeated",
    ]
    assert rows[1].rstrip(" |").endswith("1.00")  # the native network is the time baseline
    r = CliRunner().invoke(
        main,
        [
            "bench",
            "kernel-interp",
            "--cnn",
            str(cnn4),
            "--native",
            str(cnn2),
            "--L",
            "16",
            "--samples",
            "16",
            "--out",
            str(tmp_path / "w"),
        ],
    )
    assert r.exit_code != 0 and "need a ×2" in r.output
