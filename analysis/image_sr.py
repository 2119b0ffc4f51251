"""SKILD on images: a small CPU training on scikit-image's sample photographs, ×2 and ×4 SR.

Grey 32 x 32 patches cut at random from the sample images that ship with scikit-image
(no download); ``camera`` is held out for testing. Trains an "image-dct" SKILD checkpoint
for ``--minutes`` and scores ×2 (16 → 32) and ×4 (8 → 32) super-resolution of the held-out
patches against the originals with ``isingscale upsample --images`` (PSNR, SSIM, spectrum
error; SKILD vs bicubic and DCT zero-fill). Needs ``pip install -e ".[images]"``.

    python analysis/image_sr.py --out runs/images --minutes 10

Writes OUT/train_patches.npz, OUT/test_patches.npz, the run directory OUT/run, the SR
outputs OUT/sr_x{2,4}.npz with their reports, and OUT/image_sr.md (the table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TRAIN = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "cat",
    "coins",
    "moon",
    "page",
    "text",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "brick",
    "grass",
    "gravel",
    "clock",
)
TEST = ("camera",)
SIZE = 32


def grey_uint8(name: str) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.util import img_as_ubyte

    im = getattr(skimage.data, name)()
    if im.ndim == 3:
        im = rgb2gray(rgba2rgb(im) if im.shape[-1] == 4 else im)
    return img_as_ubyte(im)


def patches(names, per_image: int, seed: int) -> np.ndarray:
    """(n, SIZE, SIZE) uint8 random crops, per_image from each named image."""
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        im = grey_uint8(name)
        ys = rng.integers(0, im.shape[0] - SIZE + 1, per_image)
        xs = rng.integers(0, im.shape[1] - SIZE + 1, per_image)
        out += [im[y : y + SIZE, x : x + SIZE] for y, x in zip(ys, xs)]
    return np.stack(out)


def main() -> None:
    import isingscale as isc
    from isingscale.evaluation.images import upsample_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/images"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--test-patches", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    train_npz, test_npz = args.out / "train_patches.npz", args.out / "test_patches.npz"
    np.savez_compressed(train_npz, patches=patches(TRAIN, 2000, args.seed))
    np.savez_compressed(test_npz, patches=patches(TEST, args.test_patches, args.seed + 1))
    run = args.out / "run"
    resume = (run / "checkpoint.safetensors").exists()
    new = {} if resume else dict(images=train_npz, image_size=SIZE, color="grey")
    ckpt = isc.skild.train([], run, minutes=args.minutes, device="auto", resume=resume, **new)
    rows = []
    for factor in (2, 4):
        res = upsample_images(
            test_npz,
            factor=factor,
            out=args.out / f"sr_x{factor}.npz",
            checkpoint=ckpt,
            seed=args.seed,
            overwrite=True,
        )
        print(res.summary())
        for method, m in res.metrics.items():
            rows.append(
                f"| ×{factor} | {method} | {m['psnr_db']:.2f} ± {m['psnr_db_err']:.2f} | "
                f"{m['ssim']:.3f} ± {m['ssim_err']:.3f} | {m['spectrum_error_db']:.2f} |"
            )
    table = "\n".join(
        [
            "| factor | method | PSNR (dB) | SSIM | spectrum error (dB) |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    (args.out / "image_sr.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
