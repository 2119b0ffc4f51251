"""Images for SKILD (docs/design.md, "Images"): loaders, normalisation, output files.

Sources, read by :func:`load_images` (a directory is searched recursively):

* PNG / JPEG (also BMP, GIF, TIFF: whatever Pillow decodes) — one image per file;
* ``.npy`` / ``.npz`` arrays: (H, W), (H, W, C), (n, H, W), (n, H, W, C) or (n, C, H, W)
  with C in {1, 3, 4}; uint8 is divided by 255, floats are taken as [0, 1] when their
  maximum is at most 1, else divided by 255; every array of an ``.npz`` is read;
* the CIFAR-10 "python version" batches (``data_batch_1`` ... ``data_batch_5``,
  ``test_batch``: pickled dicts whose ``data`` is (n, 3072) uint8, channel-major). They
  are read with a restricted unpickler that builds numpy arrays and plain containers
  only, never arbitrary objects.

Each image is centre-cropped to a square, resized to ``size`` x ``size`` (antialiased
bicubic) and returned in [0, 1] as float32 (n, C, size, size), C = 1 (grey, ITU-R 601
luma) or 3 (RGB). The model sees ``x = 2 (p - mean_c)``: pixels p centred on the dataset's
per-channel mean (stored in the checkpoint as ``pixel_mean``), range about [-1, 1].

Scoring super-resolved images against their originals (PSNR, SSIM, spectrum error) is
evaluation, in :mod:`isingscale.evaluation.images`.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import IsingScaleError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
CIFAR_NAMES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
)
COLOR_MODES = ("auto", "grey", "rgb")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ----------------------------------------------------------------------------
# Decoding one source into HWC float arrays in [0, 1].


def _to_float(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise IsingScaleError(f"{what}: unsupported array dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise IsingScaleError(f"{what}: array holds non-finite values")
    return a if a.size == 0 or a.max() <= 1.0 else a / 255.0


def _as_hwc_stack(a: np.ndarray, what: str) -> list[np.ndarray]:
    """An array of one or many images -> list of (H, W, C) float arrays."""
    a = _to_float(np.asarray(a), what)
    if a.ndim == 2:
        return [a[:, :, None]]
    if a.ndim == 3:
        if a.shape[-1] in (1, 3, 4) and a.shape[0] > 4:  # one (H, W, C) image
            return [a]
        return [x[:, :, None] for x in a]  # n grey images
    if a.ndim == 4:
        if a.shape[-1] in (1, 3, 4):
            return list(a)
        if a.shape[1] in (1, 3, 4):
            return list(a.transpose(0, 2, 3, 1))
    raise IsingScaleError(f"{what}: cannot read images from an array of shape {a.shape}")


def _read_picture(path: Path) -> list[np.ndarray]:
    try:
        from PIL import Image
    except ImportError:
        raise IsingScaleError(
            "reading PNG/JPEG needs Pillow: pip install 'isingscale[images]'"
        ) from None
    try:
        with Image.open(path) as im:
            im = im.convert(
                "RGBA"
                if im.mode in ("RGBA", "LA", "P")
                else ("RGB" if im.mode not in ("L", "I;16") else im.mode)
            )
            a = np.asarray(im)
    except Exception as e:  # Pillow raises many types for corrupt or foreign files
        raise IsingScaleError(
            f"{path}: unreadable image ({str(e).splitlines()[0][:100] or type(e).__name__})"
        ) from None
    if a.dtype == np.int32:  # 16-bit greyscale decoded as I
        a = a.astype(np.uint16)
    return _as_hwc_stack(a, str(path))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only (the CIFAR batch layout)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("_codecs", "encode"),
    }  # protocol-2 pickles carry array bytes as latin-1 text

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar(path: Path) -> list[np.ndarray]:
    try:
        d = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = d[b"data"] if b"data" in d else d["data"]
        data = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    except Exception as e:
        raise IsingScaleError(
            f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})"[:200]
        ) from None
    return list(data.transpose(0, 2, 3, 1).astype(np.float32) / 255.0)


def _read_array(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = [z[k] for k in z.files] if isinstance(z, np.lib.npyio.NpzFile) else None
    except TypeError:  # a plain .npy is not a context manager in old numpy
        arrays = None
    except Exception as e:
        raise IsingScaleError(
            f"{path}: unreadable array file ({type(e).__name__}: {e})"[:200]
        ) from None
    if arrays is None:
        try:
            arrays = [np.load(path, allow_pickle=False)]
        except Exception as e:
            raise IsingScaleError(
                f"{path}: unreadable array file ({type(e).__name__}: {e})"[:200]
            ) from None
    return [im for a in arrays for im in _as_hwc_stack(a, str(path))]


def image_files(source) -> list[Path]:
    """The image, array and CIFAR batch files under ``source`` (recursive, sorted), or [source]."""
    source = Path(source)
    if not source.exists():
        raise IsingScaleError(f"{source}: no such file or directory")
    if source.is_file():
        return [source]
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and (p.suffix.lower() in IMAGE_SUFFIXES + ARRAY_SUFFIXES or p.name in CIFAR_NAMES)
    )
    if not files:
        raise IsingScaleError(
            f"{source}: no images found (PNG/JPEG, .npy/.npz or CIFAR-10 batches, searched "
            "recursively)"
        )
    return files


def _read_any(path: Path) -> list[np.ndarray]:
    if path.name in CIFAR_NAMES:
        return _read_cifar(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return _read_array(path)
    return _read_picture(path)


# ----------------------------------------------------------------------------
# Colour, crop, resize.


def _colour(im: np.ndarray, mode: str) -> np.ndarray:
    """(H, W, C) -> (H, W, 1) grey or (H, W, 3) RGB (alpha dropped)."""
    im = im[..., :3] if im.shape[-1] == 4 else im
    if mode == "grey":
        return im if im.shape[-1] == 1 else (im @ _LUMA)[..., None]
    return np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im


def crop_resize(im: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) in [0, 1] -> (C, size, size): centre square crop, antialiased bicubic resize."""
    H, W = im.shape[:2]
    m = min(H, W)
    y0, x0 = (H - m) // 2, (W - m) // 2
    t = torch.as_tensor(np.ascontiguousarray(im[y0 : y0 + m, x0 : x0 + m].transpose(2, 0, 1)))[None]
    if m != size:
        t = torch.nn.functional.interpolate(
            t, size=(size, size), mode="bicubic", antialias=m > size, align_corners=False
        )
    return t[0].clamp(0.0, 1.0).numpy()


def load_images(
    source, *, size: int, color: str = "auto", limit: int | None = None, progress: bool = False
) -> tuple[np.ndarray, list[dict]]:
    """Images under ``source`` as float32 (n, C, size, size) in [0, 1], and their provenance.

    color: "grey", "rgb", or "auto" (RGB if any image has colour, else grey). limit: at
    most this many images (in sorted file order). Provenance: one dict per file (path,
    images read).
    """
    from tqdm.auto import tqdm

    if color not in COLOR_MODES:
        raise IsingScaleError(
            f"unknown colour mode {color!r}; expected one of {', '.join(COLOR_MODES)}"
        )
    if size < 2:
        raise IsingScaleError(f"image size must be at least 2, got {size}")
    raw, prov = [], []
    for path in tqdm(
        image_files(source), disable=not progress, desc="images", unit="file", leave=False
    ):
        ims = [im for im in _read_any(path) if min(im.shape[:2]) >= 1]
        prov.append({"path": str(path.resolve()), "images": len(ims)})
        raw += ims
        if limit is not None and len(raw) >= limit:
            raw = raw[:limit]
            break
    if not raw:
        raise IsingScaleError(f"{source}: no images found")
    if color == "auto":
        color = "rgb" if any(im.shape[-1] >= 3 and not _is_grey(im) for im in raw) else "grey"
    out = np.stack([crop_resize(_colour(im, color), size) for im in raw]).astype(np.float32)
    return out, prov


def _is_grey(im: np.ndarray) -> bool:
    return bool(np.allclose(im[..., 0], im[..., 1]) and np.allclose(im[..., 1], im[..., 2]))


def to_model(p: np.ndarray, pixel_mean: np.ndarray) -> np.ndarray:
    """Pixels p (n, C, H, W) in [0, 1] -> model field x = 2 (p - mean_c)."""
    return 2.0 * (p - np.asarray(pixel_mean, dtype=np.float32)[:, None, None])


def to_pixels(x, pixel_mean) -> np.ndarray:
    """Model field -> pixels in [0, 1] (clipped), float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(0.5 * x + np.asarray(pixel_mean, dtype=np.float32)[:, None, None], 0.0, 1.0)


def to_uint8_hwc(p: np.ndarray) -> np.ndarray:
    """(n, C, H, W) in [0, 1] -> (n, H, W, C) uint8 (what PNG writers and viewers expect)."""
    return np.rint(np.clip(p, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------
# Output files.


def write_images_npz(out, *, overwrite: bool, attrs: dict, **arrays: np.ndarray) -> Path:
    """Write arrays (images: uint8 (n, H, W, C)) and JSON ``attrs`` to ``out`` (.npz) atomically."""
    import json
    import os

    out = Path(out)
    if out.suffix != ".npz":
        raise IsingScaleError(f"image outputs are .npz files; got {out}")
    if out.exists() and not overwrite:
        raise IsingScaleError(f"{out} already exists (use --overwrite to replace it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, attrs=np.array(json.dumps(attrs, default=str)), **arrays)
        os.replace(tmp, out)
    except OSError as e:
        raise IsingScaleError(f"cannot write {out}: {e.strerror or e}") from None
    return out
