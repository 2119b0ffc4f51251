"""Overfitting one batch, checkpoint round trip (safetensors, no pickle), bitwise resume."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from isingscale.errors import IsingScaleError
from isingscale.skild.checkpoint import (
    SkildModel,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from isingscale.skild.data import augmented_batch
from isingscale.skild.process import Schedule, Whitener, loss_weights, skild_loss
from isingscale.skild.spectral import estimate_spectrum
from isingscale.skild.train import train
from isingscale.skild.unet import UNet, UNetConfig

from .conftest import make_checkpoint, random_spins, write_spins


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    spins = random_spins(8, 16, seed=2)
    wh = Whitener(estimate_spectrum(spins.astype(float)))
    sched = Schedule()
    y0 = wh.whiten(torch.as_tensor(spins).float())
    g = torch.Generator().manual_seed(1)
    s = torch.rand(8, generator=g) * 2.0 + 0.5
    eps = torch.randn(y0.shape, generator=g)
    w = torch.as_tensor(loss_weights(16), dtype=torch.float32)
    net = UNet(UNetConfig(base_channels=16, depth=2, channel_mult=(1, 2, 2))).set_whitener(wh)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = skild_loss(net, wh.basis, sched, y0, s, eps, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, f"loss {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_augmentation_is_a_symmetry_of_the_batch():
    data = torch.as_tensor(random_spins(4, 8, seed=3))
    x = augmented_batch(data, 64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 8, 8) and set(x.unique().tolist()) <= {-1.0, 1.0}
    # Each augmented lattice has the |m| and energy of some source lattice.
    abs_m = {round(abs(v), 6) for v in data.float().mean((-2, -1)).tolist()}
    assert {round(abs(v), 6) for v in x.mean((-2, -1)).tolist()} <= abs_m


def test_batches_are_built_where_the_data_are():
    # On a GPU the lattices move to the device and batches are assembled there; the draws
    # come from the same CPU generator, so a given seed gives the same batch on either side.
    from isingscale.skild.data import TrainingData

    spins = {8: torch.as_tensor(random_spins(6, 8, seed=4))}
    td = TrainingData(spins, spectrum=None, provenance=[])
    a = td.batch(16, torch.Generator().manual_seed(1))
    b = td.on("cpu").batch(16, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and td.on("cpu").fields[8].dtype == torch.int8
    meta = td.on("meta").batch(16, torch.Generator().manual_seed(1))  # no copy back to the CPU
    assert meta.device.type == "meta" and meta.shape == (16, 8, 8)


def test_checkpoint_round_trip(tmp_path, tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint)
    meta, tensors = read_checkpoint(tiny_checkpoint)
    again = save_checkpoint(
        tmp_path / "again.safetensors", model.net, {k: v for k, v in meta.items()}
    )
    m2 = load_checkpoint(again)
    for (k, a), (_, b) in zip(model.net.state_dict().items(), m2.net.state_dict().items()):
        assert torch.equal(a, b), k
    assert m2.meta["spectrum"] == meta["spectrum"] and m2.meta["lattice"] == "ising-periodic"
    assert m2.temperature == pytest.approx(2.269185314213022)
    assert (
        SkildModel(m2.net, m2.spectrum, m2.schedule, {**m2.meta, "T": "none"}).temperature is None
    )
    assert all(k.startswith("model.") for k in load_file(str(again)))


def test_image_checkpoint_refused_on_lattices(tmp_path):
    path = make_checkpoint(tmp_path / "img.safetensors", lattice="image-dct")
    with pytest.raises(IsingScaleError, match="image-dct"):
        load_checkpoint(path)
    assert load_checkpoint(path, lattice="image-dct").lattice == "image-dct"


def test_default_checkpoint_found_after_a_regular_install(tmp_path, monkeypatch, tiny_checkpoint):
    """Source tree first (editable install), then <prefix>/share/isingscale/checkpoints
    (pyproject data-files)."""
    import sys

    from isingscale.skild import checkpoint as ck

    monkeypatch.setattr(ck, "repository_root", lambda: tmp_path / "site-packages")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    with pytest.raises(IsingScaleError, match="no shipped checkpoint"):
        ck.default_checkpoint()
    shared = tmp_path / "venv" / "share" / "isingscale" / "checkpoints" / ck.DEFAULT_CHECKPOINT
    shared.parent.mkdir(parents=True)
    shared.write_bytes(Path(tiny_checkpoint).read_bytes())
    assert ck.default_checkpoint() == shared
    assert load_checkpoint(None).sha256 == load_checkpoint(tiny_checkpoint).sha256
    src = tmp_path / "site-packages" / "data" / "checkpoints" / ck.DEFAULT_CHECKPOINT
    src.parent.mkdir(parents=True)
    src.write_bytes(b"x")
    assert ck.default_checkpoint() == src


def test_pyproject_ships_the_default_checkpoint():
    tomllib = pytest.importorskip("tomllib")
    from isingscale.skild import checkpoint as ck

    root = ck.repository_root()
    if not (root / "pyproject.toml").is_file():
        pytest.skip("not a source tree")
    files = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert files["share/isingscale/checkpoints"] == [f"data/checkpoints/{ck.DEFAULT_CHECKPOINT}"]
    assert (root / "data" / "checkpoints" / ck.DEFAULT_CHECKPOINT).is_file()


@pytest.mark.parametrize(
    "content", [b"", b"not a checkpoint at all" * 10, b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "]
)
def test_corrupt_checkpoint_is_a_clean_error(tmp_path, content):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(IsingScaleError):
        load_checkpoint(p)
    with pytest.raises(IsingScaleError, match="no such"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_no_pickle_anywhere():
    """Checkpoints never unpickle. The one pickle reader is images.py's CIFAR-10 batch loader,
    whose Unpickler refuses every global except numpy's array reconstruction."""
    src = Path(__file__).resolve().parents[2] / "isingscale" / "skild"
    for f in src.glob("*.py"):
        text = f.read_text()
        assert "torch.load" not in text, f
        if f.name == "images.py":
            assert (
                "def find_class" in text
                and "pickle.load(" not in text
                and "pickle.loads(" not in text
            ), f
        else:
            assert "import pickle" not in text, f


def _tensors(path):
    return load_file(str(path))


def meta_seconds(path) -> float:
    return read_checkpoint(path)[0]["training"]["seconds"]


def test_resume_is_bitwise(tmp_path):
    data = write_spins(tmp_path / "d.h5", random_spins(32, 16, seed=5))
    kw = dict(
        base_channels=8,
        depth=2,
        channel_mult=(1, 2, 2),
        batch=4,
        seed=3,
        device="cpu",
        progress=False,
        log_every=2,
        warmup=3,
    )
    full = train([data], tmp_path / "full", steps=8, **kw)
    train([data], tmp_path / "half", steps=4, **kw)
    half = train([data], tmp_path / "half", steps=8, resume=True, device="cpu", progress=False)
    a, b = _tensors(full), _tensors(half)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ta, tb = (
        _tensors(tmp_path / "full" / "checkpoint.safetensors"),
        _tensors(tmp_path / "half" / "checkpoint.safetensors"),
    )
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    meta = read_checkpoint(full)[0]
    assert meta["training"]["step"] == 8 and meta["training"]["data"][0]["sha256"]
    rows = (tmp_path / "half" / "loss.csv").read_text().splitlines()[1:]
    assert len(rows) == 4
    seconds = [
        float(r.split(",")[-1]) for r in rows
    ]  # wall time over both invocations: the resumed rows go on
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(meta_seconds(half), abs=0.1)
    assert json.loads((tmp_path / "full" / "config.json").read_text())["L"] == 16
    with pytest.raises(IsingScaleError, match="already holds"):
        train([data], tmp_path / "full", steps=8, **kw)
