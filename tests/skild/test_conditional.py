"""The SR3-style conditional baseline: sampler maths, conditioning, training and upsample dispatch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.errors import IsingScaleError
from isingscale.skild import conditional as cond
from isingscale.skild.coarsen import block_spins, fourier_truncate
from isingscale.skild.process import Whitener
from isingscale.skild.spectral import power_law_spectrum

from .conftest import random_spins, write_spins


@pytest.mark.parametrize("steps", [3, 12])
def test_sampler_is_exact_for_white_gaussian_data(steps):
    # Unit-variance white Gaussian x_0: E[ε | x_t] = √(1 - ᾱ) x_t exactly, and the σ² = β
    # ancestral step is then the exact reverse transition at any step size: the output
    # has unit variance per site and no correlation between sites. A σ² = β̃ sampler
    # (posterior variance), or one that returns E[x_0 | x_t] after the last step, comes
    # out 10-30 % low with 3 steps.
    B, N = 2048, 8

    def oracle(x, s, c):
        ab = cond.alpha_bar(float(s[0]) / cond.T_SCALE)
        return math.sqrt(1.0 - ab) * x

    g = torch.Generator().manual_seed(0)
    x0 = cond.sr3_sampler(
        oracle, None, (B, N, N), steps, generator=g, device="cpu", clip=False
    ).double()
    var = x0.var(dim=0)
    n = B * N * N
    assert abs(var.mean().item() - 1.0) < 5 * math.sqrt(2.0 / n)
    neighbour = (x0 * x0.roll(1, dims=-1)).mean().item()
    assert abs(neighbour) < 5 / math.sqrt(n)


def test_conditioning_channels_invert_the_coarse_graining():
    L, f = 16, 4
    spins = random_spins(8, L, seed=3)
    whitener = Whitener(power_law_spectrum(L))
    xf = fourier_truncate(spins.astype(np.float64), L // f)
    c = cond.conditioning(xf, "fourier", L, whitener)
    assert c.shape == (8, 2, L, L) and torch.all(c[:, 1] == 0)
    assert torch.allclose(fourier_truncate(c[:, 0].double(), L // f), xf, atol=1e-5)
    xb = block_spins(spins, f)
    c = cond.conditioning(xb, "block", L, whitener)
    assert torch.all(c[:, 0] == 0)
    assert np.array_equal(block_spins(c[:, 1].numpy().astype(np.int8), f), xb)
    with pytest.raises(IsingScaleError, match="integer factor"):
        cond.conditioning(block_spins(spins, 2)[:, :7, :7], "block", L, whitener)


def test_training_conditioning_mixes_conventions():
    x = torch.as_tensor(random_spins(64, 16, seed=1)).float()
    c = cond.training_conditioning(
        x, 4.0, Whitener(power_law_spectrum(16)), torch.Generator().manual_seed(0)
    )
    block = (c[:, 0] == 0).all(dim=(-1, -2))
    fourier = (c[:, 1] == 0).all(dim=(-1, -2))
    assert torch.all(block ^ fourier) and 10 < int(block.sum()) < 54
    # A factor that block spins cannot take: Fourier only.
    c = cond.training_conditioning(
        x, 2.5, Whitener(power_law_spectrum(16)), torch.Generator().manual_seed(0)
    )
    assert torch.all(c[:, 1] == 0)


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    import isingscale as isc

    tmp = tmp_path_factory.mktemp("cond")
    data = write_spins(tmp / "train.h5", random_spins(128, 16, seed=2))
    path = isc.skild.train(
        [data],
        tmp / "run",
        conditional=True,
        factor=2.0,
        steps=40,
        lr=3e-3,
        warmup=5,
        base_channels=4,
        depth=2,
        channel_mult=(1, 2, 2),
        batch=16,
        device="cpu",
        progress=False,
    )
    return tmp, path


def test_training_lowers_the_loss_and_records_the_task(conditional_run):
    import csv

    from isingscale.skild.checkpoint import read_checkpoint

    tmp, path = conditional_run
    meta = read_checkpoint(path)[0]
    assert (
        meta["task"] == cond.TASK and meta["factor"] == 2.0 and meta["model"]["cond_channels"] == 2
    )
    rows = list(csv.DictReader((tmp / "run" / "loss.csv").open()))
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])


def test_upsample_dispatches_to_the_conditional_sampler(conditional_run):
    import isingscale as isc
    from isingscale.io import read_attrs, read_ensemble

    tmp, path = conditional_run
    coarse = write_spins(tmp / "coarse.h5", block_spins(random_spins(6, 16, seed=5), 2))
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        res = isc.skild.upsample(
            coarse,
            factor=2,
            checkpoint=path,
            out=tmp / f"{name}.h5",
            steps=4,
            seed=seed,
            overwrite=True,
            progress=False,
        )
        outs.append(read_ensemble(res.path, datasets=("spins",))["spins"])
    assert outs[0].shape == (6, 16, 16) and set(np.unique(outs[0])) <= {-1, 1}
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert read_attrs(tmp / "a.h5")["method"].startswith("conditional-sr")
    with pytest.raises(IsingScaleError, match="×2 only"):
        isc.skild.upsample(coarse, factor=4, checkpoint=path, out=tmp / "d.h5", progress=False)
    with pytest.raises(IsingScaleError, match="conditional"):
        isc.skild.generate(path, L=16, samples=2, out=tmp / "g.h5", progress=False)


def test_cli_factor_and_conditional_go_together(tmp_path):
    data = write_spins(tmp_path / "d.h5", random_spins(16, 16))
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--steps",
            "1",
            "--factor",
            "4",
        ],
    )
    assert r.exit_code != 0 and "--factor belongs to --conditional" in r.output
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "r2"),
            "--steps",
            "1",
            "--conditional",
        ],
    )
    assert r.exit_code != 0 and "needs --factor" in r.output
