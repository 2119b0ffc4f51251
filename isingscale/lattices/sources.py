"""Where lattices come from: files of several formats and in-memory arrays.

:func:`resolve` turns a lattice source into a :class:`Raw`: a lazily sliceable
(n, L, L) array (nothing is read but the file's header), the metadata the source records,
and a note when a dataset had to be guessed. Formats are told by their content, not their
name: HDF5 (isingscale's own layout, mcising's, or any other), ``.npy``, ``.npz`` (a zip
of ``.npy``), PNG images (one file, or a folder of them), and numpy / xarray / dask / torch
arrays. Shapes (n, L, L) and (L, L) are accepted here; :mod:`.reader` checks them.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import IsingScaleError
from ..io import FORMAT, LATTICE_DATASETS, SCALAR_DATASETS, read_attrs

#: Metadata file written next to PNG lattices by ``isingscale export --to png``.
PNG_SIDECAR = "isingscale.json"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# What a file's name promises, for the error when its content is none of the formats.
SUFFIXES = {
    ".h5": "HDF5",
    ".hdf5": "HDF5",
    ".hdf": "HDF5",
    ".npy": ".npy",
    ".npz": ".npz",
    ".png": "PNG",
}
# Attribute names that record a temperature (beta is inverted).
T_KEYS = ("T", "temperature", "Temperature", "temp")


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


# ---------------------------------------------------------------- arrays


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
    """A dataset of an HDF5 file, reopened for each read (thread- and pickle-safe)."""

    def __init__(self, path: Path, name: str, shape, dtype, n: int | None = None):
        super().__init__(shape, dtype)
        if n is not None:  # isingscale files: only complete samples count
            self.shape = (n, *self.shape[1:])
        self.path, self.name = path, name

    def _read(self, start, stop):
        try:
            with h5py.File(self.path, "r") as f:
                d = f[self.name]
                return d[()] if d.ndim == 2 else d[start:stop]
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


# ---------------------------------------------------------------- file formats


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


def sniff(path: Path) -> str:
    """The format of a file from its first bytes: hdf5, npy, npz, png (or unknown)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise IsingScaleError(f"{path}: cannot read ({e.strerror or first_line(e)})") from None
    if head.startswith(HDF5_MAGIC) or h5py.is_hdf5(path):  # is_hdf5 finds user blocks too
        return "hdf5"
    for magic, kind in ((NPY_MAGIC, "npy"), (ZIP_MAGIC, "npz"), (PNG_MAGIC, "png")):
        if head.startswith(magic):
            return kind
    return "unknown"


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:DATASET`` -> (file, dataset): the first ``:`` after which the part
    before names an existing file (so paths that contain ``:`` still work)."""
    if os.path.exists(spec):
        return Path(spec), None
    for m in re.finditer(":", spec):
        head = spec[: m.start()]
        if head and os.path.isfile(head):
            return Path(head), spec[m.end() :] or None
    return Path(spec), None


def resolve(source: Any) -> Raw:
    """A :class:`Raw` for a path (``FILE``, ``FILE:DATASET``, a folder) or an array."""
    if isinstance(source, (str, os.PathLike)):
        return resolve_path(source)
    return resolve_array(source)


def resolve_path(spec: str | os.PathLike) -> Raw:
    """A :class:`Raw` for a file or folder path, with an optional ``:DATASET`` suffix."""
    path, dataset = split_spec(os.fspath(spec))
    if not path.exists():
        raise IsingScaleError(f"{path}: no such file or folder")
    if path.is_dir():
        if dataset:
            raise IsingScaleError(f"{path}: a folder takes no ':{dataset}' suffix")
        return png_folder(path)
    raw = resolve_file(path, dataset)
    if dataset:  # a named dataset is part of the default label: run:T=2.269185
        raw.name = f"{path.stem}:{dataset.strip('/')}"
    return raw


def resolve_file(path: Path, dataset: str | None) -> Raw:
    kind = sniff(path)
    if kind == "unknown":
        expected = SUFFIXES.get(path.suffix.lower(), "lattice")
        raise IsingScaleError(
            f"{path}: not a readable {expected} file (its content is neither HDF5, .npy, .npz "
            "nor PNG)"
        )
    if kind == "hdf5":
        return hdf5(path, dataset)
    if kind == "npz":
        return npz(path, dataset)
    if dataset:
        raise IsingScaleError(f"{path}: a {kind} file takes no ':{dataset}' suffix")
    if kind == "npy":
        return Raw(NpyArray(path), "npy", path)
    return png_files([path], path)


# ---------------------------------------------------------------- HDF5


def hdf5(path: Path, dataset: str | None) -> Raw:
    """isingscale's own layout, mcising's output, or any HDF5 file (see :func:`pick`)."""
    try:
        with h5py.File(path, "r") as f:
            if dataset is None and f.attrs.get("format") in (FORMAT, FORMAT.encode()):
                return native(path)
            if dataset is None and is_mcising(f):
                return mcising(f, path, None)
            if dataset is not None and is_mcising(f) and dataset.strip("/").startswith("T="):
                return mcising(f, path, dataset)
            name, note = pick(f, path, dataset)
            d = f[name]
            check_numeric(d, f"{path}:{name}")
            attrs = recorded_attrs(f, name)
            return Raw(H5Array(path, name, d.shape, d.dtype), "hdf5", path, name, attrs, note=note)
    except OSError as e:
        raise IsingScaleError(f"{path}: not a readable HDF5 file ({first_line(e)})") from None


def native(path: Path) -> Raw:
    """An isingscale ensemble file: ``spins`` (or, without it, the continuous ``field``)."""
    attrs = read_attrs(path)
    n = int(attrs["n_samples"])
    names = attrs["datasets"]
    main = "spins" if "spins" in names else "field" if "field" in names else None
    if main is None or n == 0:
        raise IsingScaleError(f"{path}: holds no samples (empty ensemble)")
    with h5py.File(path, "r") as f:
        arrays = {
            k: H5Array(path, k, f[k].shape, f[k].dtype, n=n) for k in LATTICE_DATASETS if k in f
        }
    extras = {k: a for k, a in arrays.items() if k != main}
    extras.update({k: ScalarSeries(path, k, n) for k in SCALAR_DATASETS if k in names})
    meta = {k: v for k, v in attrs.items() if k != "datasets"}
    return Raw(arrays[main], "isingscale", path, f"/{main}", meta, extras)


class ScalarSeries:
    """A per-sample dataset (n,) of an isingscale file, read lazily."""

    def __init__(self, path: Path, name: str, n: int):
        self.path, self.name, self.shape = path, name, (n,)
        with h5py.File(path, "r") as f:
            self.dtype = f[name].dtype
        self.ndim = 1

    def __getitem__(self, key):
        s = key[0] if isinstance(key, tuple) else key
        start, stop, step = s.indices(self.shape[0])
        with h5py.File(self.path, "r") as f:
            return f[self.name][start:stop:step]


def datasets(f: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    found = []
    f.visititems(
        lambda name, obj: found.append(("/" + name, obj)) if isinstance(obj, h5py.Dataset) else None
    )
    return found


def pick(f: h5py.File, path: Path, dataset: str | None) -> tuple[str, str | None]:
    """The dataset to read: the one named, else (inside the named group, or the file) a
    ``spins`` dataset, else the only 3-D dataset, else the only 2-D one. Returns (name, note)."""
    group = f
    if dataset is not None:
        obj = f.get(dataset)
        if obj is None:
            raise IsingScaleError(
                f"{path}: no dataset {dataset!r} (it holds {_listing(datasets(f))})"
            )
        if isinstance(obj, h5py.Dataset):
            return obj.name, None
        group = obj
    found = datasets(group)
    base = "" if group.name == "/" else group.name
    spins = [n for n, d in found if n.rsplit("/", 1)[-1] == "spins"]
    if f"{base}/spins" in spins:
        return f"{base}/spins", None
    if len(spins) == 1:
        return spins[0], f"{path}: reading {spins[0]}"
    for rank in (3, 2):
        cands = [n for n, d in found if d.ndim == rank]
        if len(cands) == 1:
            return cands[
                0
            ], f"{path}: no 'spins' dataset; reading the only {rank}-D dataset {cands[0]}"
        if len(cands) > 1:
            raise IsingScaleError(
                f"{path}: no 'spins' dataset and {len(cands)} {rank}-D datasets "
                f"({_listing([(n, f[n]) for n in cands])}); name one as {path}:{cands[0]}"
            )
    raise IsingScaleError(f"{path}: no lattice dataset (it holds {_listing(found)})")


def _listing(found) -> str:
    if not found:
        return "no datasets"
    shown = ", ".join(f"{n} {tuple(d.shape)}" for n, d in found[:6])
    return shown + (f", ... ({len(found)} in all)" if len(found) > 6 else "")


def check_numeric(d: h5py.Dataset, where: str) -> None:
    if d.dtype.kind not in "iufb":
        raise IsingScaleError(f"{where}: holds {d.dtype} data, not numbers")


def decode(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    return v


def recorded_attrs(f: h5py.File, name: str) -> dict:
    """Attributes of the dataset and of its groups up to the root (the nearest wins);
    ``T`` from T / temperature, or 1/beta."""
    attrs: dict = {}
    node = f[name]
    while True:
        for k, v in node.attrs.items():
            attrs.setdefault(k, decode(v))
        if node.name == "/":
            break
        node = node.parent
    T = next((attrs[k] for k in T_KEYS if k in attrs), None)
    if T is None and "beta" in attrs:
        T = 1.0 / float(attrs["beta"])
    if T is not None:
        attrs["T"] = float(T)
    return {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, bool))}


# ---------------------------------------------------------------- mcising


def is_mcising(f: h5py.File) -> bool:
    """mcising's layout: a ``metadata`` group and one ``T=<temperature>`` group per T."""
    return "metadata" in f and any(k.startswith("T=") for k in f.keys())


def mcising(f: h5py.File, path: Path, group: str | None) -> Raw:
    """``/T=<t>/configurations`` of an mcising file (read as it is; int8 +-1, square lattice
    only); with several temperatures the group must be named (FILE:/T=<t>)."""
    meta = {k: decode(v) for k, v in f["metadata"].attrs.items()}
    config = _json(meta.get("config_json"))
    lattice = config.get("lattice", {})
    kind = lattice.get("lattice_type", "square")
    if kind != "square":
        raise IsingScaleError(
            f"{path}: an mcising {kind} lattice; isingscale reads square lattices"
        )
    groups = sorted((k for k in f.keys() if k.startswith("T=")), key=lambda k: float(k[2:]))
    if group is None:
        if len(groups) > 1:
            raise IsingScaleError(
                f"{path}: an mcising file with {len(groups)} temperatures "
                f"({', '.join(groups[:6])}{', ...' if len(groups) > 6 else ''}); name one as "
                f"{path}:/{groups[0]}"
            )
        group = groups[0]
    name = "/" + group.strip("/")
    if name.count("/") == 1:
        name += "/configurations"
    if name not in f:
        raise IsingScaleError(
            f"{path}: no {name} (mcising stores lattices only with store_configs)"
        )
    d = f[name]
    check_numeric(d, f"{path}:{name}")
    attrs = {
        "T": float(f[name].parent.attrs["temperature"]),
        "J": float(lattice.get("j1", 1.0)),
        "h": float(lattice.get("h", 0.0)),
        "algorithm": str(meta.get("algorithm", config.get("algorithm", ""))),
        "seed": meta.get("seed", config.get("seed", "")),
        "kind": "montecarlo",
        "producer": f"mcising {meta.get('version', '')}".strip(),
    }
    return Raw(H5Array(path, name, d.shape, d.dtype), "mcising", path, name, attrs)


def _json(text) -> dict:
    try:
        out = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


# ---------------------------------------------------------------- npz and PNG


def npz(path: Path, key: str | None) -> Raw:
    """``FILE.npz:KEY``; without a key, ``spins``, else the only array of rank 2 or 3.
    0-d members (T, J, L, a JSON string) are metadata."""
    try:
        with zipfile.ZipFile(path) as z:
            headers = {}
            for info in z.infolist():
                if info.filename.endswith(".npy"):
                    with z.open(info) as f:
                        headers[info.filename[:-4]] = npy_header(f)
            scalars = {k: _npz_scalar(z, k) for k, h in headers.items() if h[0] == ()}
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise IsingScaleError(f"{path}: not a readable .npz file ({first_line(e)})") from None
    arrays = {k: h for k, h in headers.items() if h[0] != ()}
    if key is None:
        cands = (
            ["spins"]
            if "spins" in arrays
            else [k for k, h in arrays.items() if len(h[0]) in (2, 3)]
        )
        if len(cands) != 1:
            listing = ", ".join(f"{k} {h[0]}" for k, h in arrays.items()) or "no arrays"
            count = len(cands) or "no"
            raise IsingScaleError(
                f"{path}: {count} lattice arrays ({listing}); name one as "
                f"{path}:{cands[0] if cands else 'KEY'}"
            )
        key = cands[0]
    elif key not in arrays:
        raise IsingScaleError(
            f"{path}: no array {key!r} (it holds {', '.join(headers) or 'nothing'})"
        )
    if arrays[key][2].hasobject:
        raise IsingScaleError(f"{path}:{key}: holds Python objects, not numbers")
    attrs = {k: v for k, v in scalars.items() if v is not None}
    return Raw(NpzArray(path, key, arrays[key]), "npz", path, key, attrs)


def _npz_scalar(z: zipfile.ZipFile, key: str):
    with z.open(key + ".npy") as f:
        try:
            v = np.lib.format.read_array(f, allow_pickle=False)
        except ValueError:
            return None
    return decode(v[()])


def natural_key(path: Path):
    """Sort key that orders ising_9.png before ising_10.png."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def png_folder(path: Path) -> Raw:
    """A folder of PNG lattices (SKILD's reference code writes ``ising_00000.png``, ... with
    spins 0/254), in natural name order; ``isingscale.json`` beside them adds metadata."""
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file()), key=natural_key
    )
    if not files:
        subs = sorted(d.name for d in path.iterdir() if d.is_dir() and any(d.glob("*.png")))
        hint = f" (its subfolders {', '.join(subs[:4])} do: name one)" if subs else ""
        raise IsingScaleError(f"{path}: a folder without .png files{hint}")
    return png_files(files, path)


def png_files(files: list[Path], where: Path) -> Raw:
    sidecar = where / PNG_SIDECAR if where.is_dir() else None
    meta = _json(sidecar.read_text()) if sidecar is not None and sidecar.is_file() else {}
    recorded = meta.pop("values", None)
    values = tuple(float(v) for v in recorded) if recorded and len(recorded) == 2 else None
    attrs = {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}
    return Raw(PngArray(files), "png", where, None, attrs, values=values)


# ---------------------------------------------------------------- in-memory arrays


def resolve_array(x: Any) -> Raw:
    """numpy arrays, dask arrays, xarray DataArrays / Datasets and torch tensors (torch is
    never imported here: a tensor is recognised by its type's module)."""
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        t = x.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return Raw(MemoryArray(t.numpy()), "array", dataset=f"torch tensor {tuple(t.shape)}")
    if module == "xarray":
        return xarray_source(x)
    if module == "dask":
        return Raw(MemoryArray(x), "array", dataset=f"dask array {tuple(x.shape)}")
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise IsingScaleError(
            f"not a lattice source: {type(x).__name__} ({first_line(e)})"
        ) from None
    if a.dtype.kind not in "iufb":
        raise IsingScaleError(f"array of {a.dtype} is not a lattice (numbers needed)")
    return Raw(MemoryArray(a), "array", dataset=f"{type(x).__name__} {a.dtype} {a.shape}")


def xarray_source(x) -> Raw:
    import xarray as xr

    attrs = {k: decode(v) for k, v in x.attrs.items()}
    extras = {}
    if isinstance(x, xr.Dataset):
        names = [k for k, v in x.data_vars.items() if v.ndim in (2, 3)]
        name = (
            "spins"
            if "spins" in x
            else "field"
            if "field" in x
            else (names[0] if len(names) == 1 else None)
        )
        if name is None:
            raise IsingScaleError(
                f"xarray Dataset without 'spins' and with {len(names)} candidate variables "
                f"({', '.join(names) or 'none'}); pass one DataArray"
            )
        extras = {k: v.data for k, v in x.data_vars.items() if k != name and v.dims == ("sample",)}
        x = x[name]
    if {"sample", "y", "x"} <= set(x.dims):
        x = x.transpose("sample", "y", "x")
    data = x.data
    raw = Raw(
        MemoryArray(data), "array", dataset=f"xarray {x.name or 'DataArray'} {tuple(x.shape)}"
    )
    raw.attrs = {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, bool))}
    raw.extras = extras
    return raw
