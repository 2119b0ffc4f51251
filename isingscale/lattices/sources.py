"""Where lattices come from: files of several formats and in-memory arrays.

:func:`resolve` turns a lattice source into a :class:`~.arrays.Raw`: a lazily sliceable
(n, L, L) array (nothing is read but the file's header), the metadata the source records,
and a note when a dataset had to be guessed. Formats are told by their content, not their
name: HDF5 (:mod:`.hdf5`: isingscale's own layout, mcising's, or any other), ``.npy``,
``.npz`` (a zip of ``.npy``), PNG images (one file, or a folder of them), and numpy / xarray
/ dask / torch arrays. Shapes (n, L, L) and (L, L) are accepted here; :mod:`.reader` checks
them.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import IsingScaleError
from .arrays import (
    MemoryArray,
    NpyArray,
    NpzArray,
    PngArray,
    Raw,
    decode,
    first_line,
    json_dict,
    npy_header,
)
from .hdf5 import hdf5

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
    meta = json_dict(sidecar.read_text()) if sidecar is not None and sidecar.is_file() else {}
    recorded = meta.pop("values", None)
    values = tuple(float(v) for v in recorded) if recorded and len(recorded) == 2 else None
    attrs = {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}
    return Raw(PngArray(files), "png", where, None, attrs, values=values)


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
