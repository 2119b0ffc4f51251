"""SKILD on images: loaders, metrics, and train / upsample / generate through the CLI.

Images come from scikit-image's package data (shipped inside the wheel, never downloaded).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import PIL  # noqa: F401  (a declared test extra: a broken install fails here, it does not skip)
import pytest
import skimage
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.errors import IsingScaleError
from isingscale.evaluation.images import image_quality, psnr, spectrum_error, ssim
from isingscale.skild.images import load_images

DATA = Path(skimage.__file__).parent / "data"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """PNG/JPEG in nested folders, an .npz array, and a CIFAR-10-layout batch made from them."""
    d = tmp_path_factory.mktemp("images")
    (d / "rgb" / "deeper").mkdir(parents=True)
    shutil.copy(DATA / "astronaut.png", d / "rgb" / "astronaut.png")
    shutil.copy(DATA / "coffee.png", d / "rgb" / "deeper" / "coffee.png")
    shutil.copy(DATA / "rocket.jpg", d / "rgb" / "rocket.jpg")
    faces = np.load(DATA / "lfw_subset.npy")[:3]  # (3, 25, 25) float grey faces
    np.savez(d / "faces.npz", faces=faces)
    return d


def test_loaders_read_every_layout(image_dir, tmp_path):
    x, prov = load_images(image_dir, size=16)
    assert x.shape == (6, 3, 16, 16) and x.dtype == np.float32  # 3 pictures + 3 faces, RGB (auto)
    assert 0.0 <= x.min() and x.max() <= 1.0 and len(prov) == 4
    g, _ = load_images(image_dir, size=8, color="grey", limit=2)
    assert g.shape == (2, 1, 8, 8)
    # CIFAR-10 python batch layout: {b"data": (n, 3072) uint8 channel-major, b"labels": [...]}.
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    (tmp_path / "data_batch_1").write_bytes(
        pickle.dumps({b"data": raw, b"labels": [0, 1, 2, 3]}, protocol=2)
    )
    c, _ = load_images(tmp_path, size=32, color="rgb")
    assert c.shape == (4, 3, 32, 32)
    np.testing.assert_allclose(c[1, 2], raw[1, 2048:].reshape(32, 32) / 255.0, atol=1e-6)


def test_loader_errors_are_one_line(tmp_path):
    with pytest.raises(IsingScaleError, match="no such file"):
        load_images(tmp_path / "missing", size=8)
    with pytest.raises(IsingScaleError, match="no images found"):
        load_images(tmp_path, size=8)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(IsingScaleError, match="broken.png: unreadable image"):
        load_images(tmp_path, size=8)
    evil = tmp_path / "cifar"
    evil.mkdir()
    (evil / "test_batch").write_bytes(pickle.dumps({b"data": Path("x")}))
    with pytest.raises(IsingScaleError, match="not a readable CIFAR-10"):
        load_images(evil, size=8)


def test_metrics_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    a = rng.random((2, 3, 24, 24))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ref = [
        np.mean(
            [
                structural_similarity(
                    a[i, c],
                    b[i, c],
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=1.0,
                )
                for c in range(3)
            ]
        )
        for i in range(2)
    ]
    np.testing.assert_allclose(ssim(b, a), ref, rtol=1e-10)
    np.testing.assert_allclose(
        psnr(b, a), [peak_signal_noise_ratio(a[i], b[i], data_range=1.0) for i in range(2)]
    )
    assert spectrum_error(a, a) == 0.0 and spectrum_error(0.5 * a, a) == pytest.approx(
        20 * np.log10(2), rel=1e-9
    )
    q = image_quality(a, a)
    assert q["ssim"] == pytest.approx(1.0) and np.isinf(q["psnr_db"])


def _run(args):
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.output


def test_train_upsample_generate_on_images(image_dir, tmp_path, tiny_checkpoint):
    from isingscale.skild.checkpoint import load_checkpoint

    run = tmp_path / "run"
    code, out = _run(
        [
            "train",
            "skild",
            "--images",
            str(image_dir),
            "--image-size",
            "16",
            "--out",
            str(run),
            "--steps",
            "3",
            "--base-channels",
            "4",
            "--depth",
            "2",
            "--channel-mult",
            "1,2,2",
            "--batch",
            "2",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0, out
    ckpt = run / "model.safetensors"
    model = load_checkpoint(ckpt, lattice="image-dct")
    m = model.meta
    assert (
        m["lattice"] == "image-dct"
        and m["channels"] == 3
        and m["L"] == 16
        and len(m["spectrum"]) == 3
    )
    assert (
        m["model"]["channels"] == 3
        and m["model"]["padding"] == "reflect"
        and len(m["pixel_mean"]) == 3
    )
    # Super-resolution x2 against the originals: PSNR, SSIM and spectrum error in the report.
    sr = tmp_path / "sr.npz"
    code, out = _run(
        [
            "upsample",
            "--images",
            str(image_dir),
            "--factor",
            "2",
            "--checkpoint",
            str(ckpt),
            "--steps",
            "2",
            "--out",
            str(sr),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0, out
    assert "PSNR" in out and "SSIM" in out and "spectrum error" in out
    z = np.load(sr)
    assert z["skild"].shape == z["originals"].shape == (6, 16, 16, 3) and z["coarse"].shape == (
        6,
        8,
        8,
        3,
    )
    metrics = json.loads(str(z["attrs"]))["metrics"]
    assert set(metrics) == {"skild", "bicubic", "dct zero-fill"}
    assert metrics["dct zero-fill"]["psnr_db"] > 10 and 0 < metrics["bicubic"]["ssim"] <= 1
    assert "| skild |" in sr.with_suffix(".md").read_text()
    # Generation from noise with the same checkpoint.
    gen = tmp_path / "gen.npz"
    code, out = _run(
        [
            "generate",
            "--checkpoint",
            str(ckpt),
            "--L",
            "16",
            "--samples",
            "2",
            "--steps",
            "2",
            "--out",
            str(gen),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert code == 0, out
    assert np.load(gen)["images"].shape == (2, 16, 16, 3)
    # Image checkpoint on lattices, and a lattice checkpoint on images: one-line errors.
    res = CliRunner().invoke(
        main,
        [
            "upsample",
            "--factor",
            "2",
            "--checkpoint",
            str(ckpt),
            "--input",
            str(sr),
            "--out",
            str(tmp_path / "x.h5"),
        ],
    )
    assert (
        res.exit_code == 1 and "trained on images" in res.output and "Traceback" not in res.output
    )
    res = CliRunner().invoke(
        main,
        [
            "upsample",
            "--images",
            str(image_dir),
            "--factor",
            "2",
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "y.npz"),
        ],
    )
    assert res.exit_code == 1 and "trained on Ising lattices" in res.output
    res = CliRunner().invoke(
        main,
        [
            "train",
            "skild",
            "--images",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "r2"),
            "--steps",
            "1",
        ],
    )
    assert res.exit_code == 1 and "no such file or directory" in res.output
