"""CNN super-resolver: Z2 by construction, training lowers the BCE, checkpoints, sampling."""

import json
from functools import partial

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from isingscale.baselines import CNNConfig, CNNNet, cnn_upsample, load_cnn, train_cnn
from isingscale.baselines.cnn import augment, bce, cnn_probabilities
from isingscale.errors import IsingScaleError
from isingscale.io import read_ensemble

from .conftest import assert_sampler_contract, coarse_inputs, untrained_cnn


@pytest.fixture(scope="module")
def trained(mc16, tmp_path_factory):
    run = tmp_path_factory.mktemp("cnn") / "cnn_x2"
    return train_cnn([mc16], run, steps=30, batch=64, seed=0, progress=False, device="cpu")


def test_network_is_odd_and_small():
    torch.manual_seed(0)
    net = CNNNet()
    x = torch.as_tensor(coarse_inputs("block", 8), dtype=torch.float32).repeat_interleave(2, -1)
    x = x.repeat_interleave(2, -2)[:, None]
    assert torch.allclose(net(-x), -net(x), atol=1e-6)  # p(-x) = 1 - p(x): Z2 by construction
    assert 1000 < sum(p.numel() for p in net.parameters()) < 10000


def test_augmentation_keeps_energy_and_abs_magnetisation(mc16):
    x = torch.as_tensor(read_ensemble(mc16, stop=8)["spins"])
    y = augment(x, torch.Generator().manual_seed(0))

    def energy(s):
        s = s.float()
        return -(s * (s.roll(1, -1) + s.roll(1, -2))).mean((-2, -1))

    assert torch.allclose(energy(y), energy(x)) and torch.equal(
        y.sum((-2, -1)).abs(), x.sum((-2, -1)).abs()
    )
    assert not torch.equal(x, y)


def test_training_lowers_bce_and_checkpoint_round_trips(mc16, trained):
    spins = read_ensemble(mc16)["spins"]
    model = load_cnn(trained)
    torch.manual_seed(0)  # train_cnn's initialisation
    with torch.no_grad():
        before, after = bce(CNNNet(), spins, 2).item(), bce(model.net, spins, 2).item()
    assert before > 0.6 and after < 0.8 * before, (before, after)
    meta = model.meta
    assert meta["format"] == "isingscale-cnn" and meta["task"] == "cnn-sr" and meta["factor"] == 2
    assert (
        meta["L"] == 16
        and meta["lattice"] == "ising-periodic"
        and meta["model"] == CNNConfig().to_dict()
    )
    t = meta["training"]
    assert t["step"] == 30 and t["lattices_seen"] == 30 * 64 and t["last_loss"] < before
    assert len(t["data"][0]["sha256"]) == 64
    again = load_cnn(trained)
    x = coarse_inputs("block", 8)
    assert np.array_equal(cnn_probabilities(model.net, x, 2), cnn_probabilities(again.net, x, 2))


@pytest.mark.parametrize("n, N", [(4, 8), (8, 16), (4, 16), (4, 32)])
def test_sampling_contract_and_determinism(n, N):
    model = untrained_cnn()
    x = coarse_inputs("block", n, B=3)
    assert_sampler_contract(partial(cnn_upsample, model), x, N)


def test_unsupported_inputs_raise(tmp_path):
    model = untrained_cnn()
    x = coarse_inputs("block", 4)
    with pytest.raises(IsingScaleError, match="takes block spins"):
        cnn_upsample(model, coarse_inputs("fourier", 4), "fourier", 8, generator=torch.Generator())
    for N in (12, 24, 10):
        with pytest.raises(IsingScaleError, match="powers of 2"):
            cnn_upsample(model, x, "block", N, generator=torch.Generator())


def test_training_rejects_a_factor_that_does_not_divide_L(mc16, tmp_path):
    with pytest.raises(IsingScaleError, match="divide the training lattice size L=16"):
        train_cnn([mc16], tmp_path / "x", factor=3, steps=1, progress=False)
    with pytest.raises(IsingScaleError, match="integer >= 2"):
        train_cnn([mc16], tmp_path / "y", factor=1.5, steps=1, progress=False)
    with pytest.raises(IsingScaleError, match="no such file"):
        train_cnn([tmp_path / "missing.h5"], tmp_path / "z", steps=1, progress=False)


def test_load_rejects_wrong_files(tmp_path):
    with pytest.raises(IsingScaleError, match="no such CNN checkpoint"):
        load_cnn(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(IsingScaleError, match="not a readable safetensors"):
        load_cnn(junk)
    skild = tmp_path / "skild.safetensors"
    meta = {"isingscale": json.dumps({"format": "isingscale-skild"})}
    save_file({"model.w": torch.zeros(2)}, str(skild), metadata=meta)
    with pytest.raises(IsingScaleError, match="not an isingscale CNN checkpoint.*isingscale-skild"):
        load_cnn(skild)
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(IsingScaleError, match="no isingscale metadata"):
        load_cnn(bare)
    broken = tmp_path / "broken.safetensors"
    save_file(
        {"model.w": torch.zeros(2)},
        str(broken),
        metadata={"isingscale": json.dumps({"format": "isingscale-cnn", "factor": 2, "model": {}})},
    )
    with pytest.raises(IsingScaleError, match="incomplete"):
        load_cnn(broken)


def test_cli_trains_the_cnn_into_a_run_directory_and_resumes_bitwise(mc16, tmp_path):
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from isingscale.baselines import load_cnn
    from isingscale.cli import main

    def args(out, steps, *extra):
        return ["train", "cnn", "--out", str(tmp_path / out), "--steps", str(steps), *extra]

    data = ["--data", str(mc16), "--batch", "8", "--device", "cpu", "--no-progress"]
    r = CliRunner().invoke(main, args("cnn", 6, *data))
    assert r.exit_code == 0, r.output
    model = load_cnn(tmp_path / "cnn" / "model.safetensors")
    assert model.factor == 2 and model.meta["training"]["step"] == 6 and "×2 CNN" in r.output
    r = CliRunner().invoke(main, args("cnn", 6, *data))
    assert r.exit_code == 1 and "already holds a training run" in r.output
    # 3 steps, then --resume to 6: the same weights as 6 in one go (the one training loop).
    assert CliRunner().invoke(main, args("half", 3, *data)).exit_code == 0
    r = CliRunner().invoke(main, args("half", 6, "--resume", "--no-progress"))
    assert r.exit_code == 0, r.output
    a = load_file(str(tmp_path / "cnn" / "model.safetensors"))
    b = load_file(str(tmp_path / "half" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    r = CliRunner().invoke(main, ["train", "cnn", "--factor", "2.5", *args("c2", 1, *data)[2:]])
    assert r.exit_code == 2 and "'--factor'" in r.output
