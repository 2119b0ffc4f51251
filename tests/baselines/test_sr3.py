"""The SR3-style conditional baseline: sampler maths, conditioning, training, upsample, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from isingscale.baselines import sr3 as cond
from isingscale.cli import main
from isingscale.errors import IsingScaleError
from isingscale.skild.coarsen import block_spins, fourier_truncate
from isingscale.skild.process import Whitener
from isingscale.skild.spectral import power_law_spectrum

from ..skild.conftest import random_spins, write_spins


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
    tmp = tmp_path_factory.mktemp("cond")
    data = write_spins(tmp / "train.h5", random_spins(128, 16, seed=2))
    path = cond.train_sr3(
        [data],
        tmp / "run",
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


def test_upsample_runs_the_sr3_sampler_and_the_cli_dispatches_to_it(conditional_run):
    import isingscale as isc
    from isingscale.io import read_attrs, read_ensemble

    tmp, path = conditional_run
    coarse = write_spins(tmp / "coarse.h5", block_spins(random_spins(6, 16, seed=5), 2))
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        res = cond.upsample(
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
        cond.upsample(coarse, factor=4, checkpoint=path, out=tmp / "d.h5", progress=False)
    with pytest.raises(IsingScaleError, match="SR3 baseline"):
        isc.skild.generate(path, L=16, samples=2, out=tmp / "g.h5", progress=False)
    with pytest.raises(IsingScaleError, match="SR3 baseline"):
        isc.skild.upsample(coarse, factor=2, checkpoint=path, out=tmp / "e.h5", progress=False)
    # `isingscale upsample --checkpoint SR3` runs the same stage: the same spins for the same seed.
    args = ["upsample", "--factor", "2", "--input", str(coarse), "--checkpoint", str(path)]
    args += ["--out", str(tmp / "cli.h5"), "--steps", "4", "--no-progress", "--device", "cpu"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert np.array_equal(read_ensemble(tmp / "cli.h5", datasets=("spins",))["spins"], outs[0])
    bad = CliRunner().invoke(main, [*args[:-5], "--out", str(tmp / "x.h5"), "--sampler", "sde"])
    assert bad.exit_code == 1 and "no --sampler" in bad.output


def test_cli_trains_one_factor_and_resumes(tmp_path):
    from isingscale.skild.checkpoint import read_checkpoint

    data = write_spins(tmp_path / "d.h5", random_spins(16, 16))
    net = ["--base-channels", "4", "--depth", "2", "--channel-mult", "1,2,2", "--batch", "4"]
    common = ["--out", str(tmp_path / "r"), "--no-progress", "--device", "cpu"]
    r = CliRunner().invoke(main, ["train", "sr3", "--data", str(data), "--steps", "1", *common])
    assert r.exit_code == 1 and "factor must be a number > 1" in r.output
    args = ["train", "sr3", "--data", str(data), "--factor", "2", "--steps", "2", *net, *common]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "SR3 baseline, 2 steps" in r.output, r.output
    r = CliRunner().invoke(main, ["train", "sr3", "--steps", "3", "--resume", *common])
    assert r.exit_code == 0, r.output
    meta = read_checkpoint(tmp_path / "r" / "model.safetensors")[0]
    assert meta["training"]["step"] == 3 and meta["training"]["config"]["factor"] == 2.0
