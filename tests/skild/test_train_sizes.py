"""Training on several lattice sizes, fine-tuning a checkpoint (--init), the cosine learning rate,
the distribution of training scales (--s-power), and the frozen, validated configuration."""

import csv

import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.io import file_sha256
from isingscale.skild.checkpoint import load_checkpoint, read_checkpoint
from isingscale.skild.data import load_ising
from isingscale.skild.loop import learning_rate, training_seconds
from isingscale.skild.process import draw_scales
from isingscale.skild.train import TrainConfig, train

from .conftest import make_checkpoint, random_spins, write_spins
from .test_cli import assert_one_line_error, run

KW = dict(
    base_channels=8,
    depth=2,
    channel_mult=(1, 2, 2),
    seed=3,
    device="cpu",
    progress=False,
    log_every=1,
    warmup=2,
)


@pytest.fixture()
def two_sizes(tmp_path):
    return (
        write_spins(tmp_path / "L16.h5", random_spins(24, 16, seed=1)),
        write_spins(tmp_path / "L8.h5", random_spins(40, 8, seed=2)),
    )


def test_sizes_take_turns_with_equal_sites_per_step(tmp_path, two_sizes):
    td = load_ising(list(two_sizes), None)
    assert td.L == 16 and td.sizes == [8, 16]  # primary size = first file's
    assert [td.size_at(i) for i in range(4)] == [8, 16, 8, 16]
    assert td.batch_size(4, 16) == 4 and td.batch_size(4, 8) == 16 and td.batch_size(4, 64) == 1
    assert td.spectrum.L == 16  # measured at the largest size
    g = torch.Generator().manual_seed(0)
    assert td.batch(5, g, 8).shape == (5, 8, 8) and td.batch(5, g).shape == (5, 16, 16)

    path = train(list(two_sizes), tmp_path / "run", batch=4, steps=4, **KW)
    meta = read_checkpoint(path)[0]
    assert meta["L"] == 16 and meta["sizes"] == [8, 16]
    assert [d["L"] for d in meta["training"]["data"]] == [16, 8]
    seen = [int(r["lattices"]) for r in csv.DictReader((tmp_path / "run" / "loss.csv").open())]
    assert seen == [16, 20, 36, 40]  # 16 lattices of 8², then 4 of 16², in turn
    model = load_checkpoint(path)
    assert model.meta["sizes"] == [8, 16]


def test_sizes_must_fit_the_network(tmp_path, two_sizes):
    odd = write_spins(tmp_path / "L12.h5", random_spins(4, 12, seed=3))
    with pytest.raises(IsingScaleError, match="divisible by 8"):
        train(
            [two_sizes[0], odd],
            tmp_path / "r",
            batch=2,
            steps=1,
            **{**KW, "depth": 3, "channel_mult": (1, 2, 2, 2)},
        )


def test_init_starts_from_the_checkpoint(tmp_path, two_sizes):
    ckpt = make_checkpoint(tmp_path / "base.safetensors", L=16, base_channels=8, depth=2)
    base = load_checkpoint(ckpt)
    # A vanishing learning rate leaves the weights where --init put them (Adam moves each by ~lr).
    path = train(
        [two_sizes[0]],
        tmp_path / "ft",
        batch=2,
        steps=2,
        lr=1e-12,
        init=str(ckpt),
        **{**KW, "base_channels": 16},
    )
    tuned = load_checkpoint(path)
    assert tuned.meta["model"] == base.meta["model"]  # the network shape comes from the checkpoint
    assert (
        tuned.meta["spectrum"] == base.meta["spectrum"]
        and tuned.meta["block_transfer"] == base.meta["block_transfer"]
    )
    for (k, a), b in zip(base.net.state_dict().items(), tuned.net.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=0, msg=k)
    init = tuned.meta["training"]["init"]
    assert init["sha256"] == file_sha256(ckpt) and tuned.meta["training"]["config"]["init"] == str(
        ckpt.resolve()
    )
    # A normal rate does move it: the weights are trained, not frozen.
    path = train([two_sizes[0]], tmp_path / "ft2", batch=2, steps=3, lr=1e-2, init=str(ckpt), **KW)
    moved = load_checkpoint(path).net.state_dict()
    assert any(
        not torch.equal(a, moved[k])
        for k, a in base.net.state_dict().items()
        if a.dtype.is_floating_point
    )
    # ... and the fine-tuning run itself resumes.
    again = train([], tmp_path / "ft2", steps=4, resume=True, device="cpu", progress=False)
    assert read_checkpoint(again)[0]["training"]["step"] == 4
    # Training time adds up along a chain of fine-tunings (the base records none).
    m2 = read_checkpoint(again)[0]
    assert training_seconds(m2) == m2["training"]["seconds"] > 0
    m3 = read_checkpoint(
        train([two_sizes[0]], tmp_path / "ft3", batch=2, steps=1, init=str(again), **KW)
    )[0]
    assert training_seconds(m3) == pytest.approx(
        m3["training"]["seconds"] + training_seconds(m2), abs=0.002
    )


def test_new_networks_have_colored_io_and_init_keeps_the_checkpoints_architecture(
    tmp_path, two_sizes
):
    path = train([two_sizes[0]], tmp_path / "cio", batch=2, steps=2, **KW)
    model = load_checkpoint(path)
    assert model.meta["model"]["colored_io"] is True and model.net.whitener is model.whitener
    # A checkpoint without colored I/O is fine-tuned as it is: no grown channels, same outputs
    # at a vanishing learning rate.
    plain = make_checkpoint(
        tmp_path / "plain.safetensors", L=16, base_channels=8, depth=2, colored_io=False
    )
    base = load_checkpoint(plain)
    with torch.no_grad():  # a trained-looking network: outputs that are not all zero
        for p in base.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    from isingscale.skild.checkpoint import read_checkpoint as read
    from isingscale.skild.checkpoint import save_checkpoint

    save_checkpoint(plain, base.net, read(plain)[0])
    tuned = load_checkpoint(
        train([two_sizes[0]], tmp_path / "ft", batch=2, steps=2, lr=1e-12, init=str(plain), **KW)
    )
    assert tuned.meta["model"]["colored_io"] is False
    y, s = torch.randn(2, 16, 16), torch.tensor([0.3, 2.0])
    torch.testing.assert_close(tuned.net(y, s), base.net(y, s), atol=1e-6, rtol=0)


def test_init_refuses_other_checkpoints_and_temperatures(tmp_path, two_sizes):
    img = make_checkpoint(tmp_path / "img.safetensors", lattice="image-dct", depth=2)
    with pytest.raises(IsingScaleError, match="image-dct"):
        train([two_sizes[0]], tmp_path / "a", batch=2, steps=1, init=str(img), **KW)
    ckpt = make_checkpoint(tmp_path / "base.safetensors", L=16, depth=2)
    hot = write_spins(tmp_path / "hot.h5", random_spins(4, 16, seed=4), T=3.0)
    with pytest.raises(IsingScaleError, match="T="):
        train([hot], tmp_path / "b", batch=2, steps=1, init=str(ckpt), **KW)
    train([two_sizes[0]], tmp_path / "c", batch=2, steps=1, **KW)
    assert_one_line_error(
        run("train", "skild", "--init", ckpt, "--resume", "--out", tmp_path / "c", "--steps", 2),
        "differs from the run's None",
    )


def test_cosine_learning_rate():
    cfg = TrainConfig(lr=1e-3, warmup=10, steps=1000, lr_decay="cosine")
    lrs = [learning_rate(cfg, i) for i in range(1000)]
    assert lrs[0] == pytest.approx(1e-4 * 1.0, rel=1e-3)  # warm-up: 1/10 of the rate
    assert lrs[9] == pytest.approx(1e-3, rel=1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # then decreasing ...
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-3)  # ... to lr/10
    assert learning_rate(TrainConfig(lr=1e-3, warmup=10, steps=1000), 999) == 1e-3
    with pytest.raises(IsingScaleError, match="cosine needs steps"):
        train(["x.h5"], "unused", minutes=1.0, lr_decay="cosine")


def test_cosine_run_resumes_only_with_its_steps(tmp_path, two_sizes):
    train([two_sizes[0]], tmp_path / "r", batch=2, steps=2, lr_decay="cosine", **KW)
    with pytest.raises(IsingScaleError, match="--steps"):
        train([], tmp_path / "r", minutes=0.1, resume=True, device="cpu", progress=False)
    path = train([], tmp_path / "r", steps=3, resume=True, device="cpu", progress=False)
    assert read_checkpoint(path)[0]["training"]["step"] == 3


def test_training_scales_follow_the_power_law():
    # s = s_max u^P: P(s < x) = (x / s_max)^(1/P); P = 1 is uniform, P = 2 puts half the steps
    # below s_max / 4.
    g = torch.Generator().manual_seed(0)
    for power, want in ((1.0, 0.25), (2.0, 0.5), (3.0, 0.25 ** (1 / 3))):
        s = draw_scales(200_000, 6.0, power, g)
        assert 0.0 <= s.min() and s.max() <= 6.0
        assert abs((s < 1.5).double().mean().item() - want) < 0.005, power
    # P = 1 draws exactly the uniform scales training drew before the option existed.
    a = draw_scales(64, 6.0, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(a, torch.rand(64, generator=torch.Generator().manual_seed(1)) * 6.0)


def test_s_power_is_recorded_and_kept_by_resume(tmp_path, two_sizes):
    res = run(
        "train",
        "skild",
        "--data",
        two_sizes[0],
        "--out",
        tmp_path / "r",
        "--steps",
        2,
        "--batch",
        2,
        "--s-power",
        2,
        "--base-channels",
        8,
        "--depth",
        2,
        "--channel-mult",
        "1,2,2",
        "--no-progress",
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.output
    config = read_checkpoint(tmp_path / "r" / "model.safetensors")[0]["training"]["config"]
    assert config["s_power"] == 2.0 and "loss_power" not in config
    again = train([], tmp_path / "r", steps=3, resume=True, device="cpu", progress=False)
    assert read_checkpoint(again)[0]["training"]["config"]["s_power"] == 2.0
    with pytest.raises(IsingScaleError, match="s_power = 1.0 differs from the run's 2.0"):
        train([], tmp_path / "r", steps=4, resume=True, s_power=1.0, device="cpu")
    # The same command line again with --resume is fine: equal values are not a change.
    again = train([], tmp_path / "r", steps=4, resume=True, s_power=2, batch=2, device="cpu")
    assert read_checkpoint(again)[0]["training"]["step"] == 4
    bad = run("train", "skild", "--data", two_sizes[0], "--out", tmp_path / "x", "--s-power", 0)
    assert bad.exit_code == 2 and "Invalid value for '--s-power'" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("batch", 0, "batch must be an integer >= 1, got 0"),
        ("lr", -1.0, "lr must be a positive number, got -1.0"),
        ("lr_decay", "linear", "lr_decay must be one of constant, cosine, got 'linear'"),
        ("ema", 1.0, "ema must be in [0, 1) or None, got 1.0"),
        ("s_power", 0.0, "s_power must be positive, got 0.0"),
        ("width", 0.0, "width must be positive (octaves), got 0.0"),
        ("color", "sepia", "color must be one of auto, grey, rgb, got 'sepia'"),
        ("base_channels", 6, "base_channels must be a positive multiple of 4, got 6"),
    ],
)
def test_config_is_frozen_and_validated_naming_the_field(field, value, message):
    cfg = TrainConfig(steps=10)
    with pytest.raises(IsingScaleError) as err:
        TrainConfig(steps=10, **{field: value})
    assert str(err.value) == message
    with pytest.raises(AttributeError):
        cfg.batch = 2  # frozen
    with pytest.raises(IsingScaleError, match="give steps or minutes"):
        TrainConfig()
    assert TrainConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
