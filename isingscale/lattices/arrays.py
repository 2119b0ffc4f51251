"""Lazily read stacks of lattices, one class per storage (HDF5 dataset, ``.npy``, ``.npz``
member, PNG files, memory), and :class:`Raw`: a resolved source with what it records."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import IsingScaleError
from .chunks import read_lattices


@dataclass
class Raw:
    """A resolved source: ``data`` (an :class:`Array`) plus what the source records.

    format : "isingscale", "hdf5", "mcising", "npy", "npz", "png" or "array".
    file, dataset : the file (or PNG folder) and the dataset path / npz key inside it.
    attrs : recorded metadata (T, J, kind, ... as the source names them).
    extras : isingscale files' other per-sample datasets (field, energy, ...), by name.
    values : a value convention the source records (PNG exports), (LO, HI).
    note : one line saying which dataset was picked when that was a guess.
    """

    data: Array
    format: str
    file: Path | None = None
    dataset: str | None = None
    attrs: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    values: tuple[float, float] | None = None
    note: str | None = None
    name: str | None = None

    @property
    def where(self) -> str:
        """How errors name this source: ``file``, ``file:/dataset`` or ``array``."""
        if self.file is None:
            return self.dataset or "array"
        return f"{self.file}:{self.dataset}" if self.dataset else str(self.file)


class Array:
    """A lazily read stack of lattices: ``shape`` (n, L, L) (a stored (L, L) is one sample),
    ``dtype``; ``read(start, stop)`` returns samples as numpy. ``__getitem__`` serves dask."""

    ndim = 3

    def __init__(self, shape: tuple, dtype):
        self.stored_shape = tuple(int(s) for s in shape)
        self.single = len(self.stored_shape) == 2
        self.shape = (1, *self.stored_shape) if self.single else self.stored_shape
        self.dtype = np.dtype(np.uint8) if np.dtype(dtype) == bool else np.dtype(dtype)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.shape[0] if stop is None else min(stop, self.shape[0])
        start = min(max(start, 0), stop)
        block = np.asarray(self._read(start, stop))
        if self.single:  # a stored (L, L) lattice comes back whole
            block = block[None][start:stop]
        return block.view(np.uint8) if block.dtype == bool else block

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Samples start:stop as stored (the whole lattice when it is stored as (L, L))."""
        raise NotImplementedError

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        s = key[0] if isinstance(key[0], slice) else slice(key[0], key[0] + 1)
        start, stop, step = s.indices(self.shape[0])
        block = self.read(start, stop)[::step]
        rest = key[1:]
        return block[(slice(None), *rest)] if rest else block


class MemoryArray(Array):
    """An in-memory (numpy) or lazily computed (dask) array."""

    def __init__(self, x):
        super().__init__(x.shape, x.dtype)
        self.x = x

    def read(self, start=0, stop=None):
        x = self.x[None] if self.single else self.x
        block = np.asarray(x[start:stop])
        return block.view(np.uint8) if block.dtype == bool else block


class H5Array(Array):
    """A dataset of an HDF5 file, reopened for each read (thread- and pickle-safe); chunks of
    whole lattices are inflated outside HDF5 (:mod:`.chunks`), without the GIL."""

    def __init__(self, path: Path, name: str, shape, dtype, n: int | None = None):
        super().__init__(shape, dtype)
        if n is not None:  # isingscale files: only complete samples count
            self.shape = (n, *self.shape[1:])
        self.path, self.name = path, name

    def _read(self, start, stop):
        try:
            with h5py.File(self.path, "r") as f:
                d = f[self.name]
                if d.ndim == 2:
                    return d[()]
                block = read_lattices(d, start, stop) if stop > start else None
                return d[start:stop] if block is None else block
        except OSError as e:
            raise IsingScaleError(
                f"{self.path}:{self.name}: cannot read ({first_line(e)})"
            ) from None


class NpyArray(Array):
    """A ``.npy`` file, memory-mapped for each read (only the slice is read)."""

    def __init__(self, path: Path):
        x = load_npy(path)
        super().__init__(x.shape, x.dtype)
        self.path = path

    def _read(self, start, stop):
        x = load_npy(self.path)
        return np.array(x if x.ndim == 2 else x[start:stop])


class NpzArray(Array):
    """One member of a ``.npz`` archive, streamed: only the bytes up to the end of the slice
    are inflated. A member stored in Fortran order has no contiguous samples: it is read
    whole, once, and kept."""

    def __init__(self, path: Path, key: str, header: tuple):
        shape, fortran, dtype = header
        super().__init__(shape, dtype)
        self.path, self.key, self.fortran = path, key, fortran
        self.whole: np.ndarray | None = None

    def _read(self, start, stop):
        if self.fortran or self.single:
            if self.whole is None:
                with zipfile.ZipFile(self.path) as z, z.open(self.key + ".npy") as f:
                    self.whole = np.lib.format.read_array(f, allow_pickle=False)
            return self.whole if self.single else self.whole[start:stop]
        with zipfile.ZipFile(self.path) as z, z.open(self.key + ".npy") as f:
            shape, _, dtype = npy_header(f)
            offset = f.tell()
            row = int(np.prod(shape[1:])) * dtype.itemsize
            f.seek(offset + start * row)
            buf = f.read((stop - start) * row)
        return np.frombuffer(buf, dtype=dtype).reshape((stop - start, *shape[1:])).copy()


class PngArray(Array):
    """PNG images, one lattice each, read in the given order; each is checked to be square,
    the same size as the first, and grey (colour images with equal channels are grey)."""

    def __init__(self, files: list[Path]):
        first = png_pixels(files[0])
        super().__init__((len(files), *first.shape), first.dtype)
        self.files = files

    def _read(self, start, stop):
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        for i, path in enumerate(self.files[start:stop]):
            px = png_pixels(path)
            if px.shape != self.shape[1:] or px.dtype != self.dtype:
                raise IsingScaleError(
                    f"{path}: image is {px.shape[1]}x{px.shape[0]} {px.dtype}, the first image "
                    f"({self.files[0].name}) is {self.shape[2]}x{self.shape[1]} {self.dtype}"
                )
            out[i] = px
        return out


# ---------------------------------------------------------------- helpers


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e) or "Object arrays" in str(e):
            raise IsingScaleError(f"{path}: holds Python objects, not numbers") from None
        raise IsingScaleError(f"{path}: not a readable .npy file ({first_line(e)})") from None
    except OSError as e:
        raise IsingScaleError(f"{path}: cannot read ({first_line(e)})") from None


def npy_header(f) -> tuple:
    """(shape, fortran_order, dtype) of an open ``.npy`` stream, positioned after the header."""
    major, _ = np.lib.format.read_magic(f)
    read = {1: np.lib.format.read_array_header_1_0}.get(major, np.lib.format.read_array_header_2_0)
    return read(f)


def png_pixels(path: Path) -> np.ndarray:
    """Pixels of a grey PNG as a 2-D array (uint8, uint16 or int32; 1-bit images as uint8)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                mode = img.mode
            px = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise IsingScaleError(f"{path}: not a readable PNG image ({first_line(e)})") from None
    if px.dtype == bool:
        px = px.view(np.uint8)
    if px.ndim == 3:
        colour = px[..., :3] if px.shape[-1] >= 3 else px[..., :1]
        if (colour != colour[..., :1]).any():
            raise IsingScaleError(f"{path}: a colour image (mode {mode}); lattices are grey images")
        px = colour[..., 0]
    return np.ascontiguousarray(px)


def decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    return v


def json_dict(text) -> dict:
    try:
        out = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}
