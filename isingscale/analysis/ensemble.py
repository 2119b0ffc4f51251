"""Ensemble files as lazy xarray Datasets (dims ``sample``, ``y``, ``x``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from ..errors import IsingScaleError
from ..io import LATTICE_DATASETS, read_attrs

PathLike = str | os.PathLike

# Samples per dask chunk: about 16 MiB of int8 spins whatever L is.
_CHUNK_BYTES = 1 << 24


def default_chunk(L: int) -> int:
    """Samples per chunk so that one chunk of int8 spins is about 16 MiB."""
    return max(1, _CHUNK_BYTES // (L * L))


def _check_pm1(block: np.ndarray, path: str) -> np.ndarray:
    # Three passes without temporaries: at most 1, at least -1, and no zero.
    ok = block.max(initial=1) <= 1 and block.min(initial=-1) >= -1
    if not (ok and np.count_nonzero(block) == block.size):
        raise IsingScaleError(
            f"{path}: spins must hold only +1 and -1 (found other values); use --binarize "
            "(binarize=True) to take signs"
        )
    return block


def _signs(block: np.ndarray) -> np.ndarray:
    return np.where(block < 0, -1, 1).astype(np.int8)


def open_ensemble(
    path: PathLike, *, chunks: int | dict | None = None, binarize: bool = False
) -> xr.Dataset:
    """Open an ensemble file lazily as an xarray Dataset with dims (sample, y, x).

    Parameters
    ----------
    path : ensemble HDF5 file (see :mod:`isingscale.io`); validated first.
    chunks : samples per dask chunk (int) or a dict ``{"sample": n}``; default about
        16 MiB of spins per chunk. Nothing is read until computed.
    binarize : take the signs of ``field`` (or of non-+-1 ``spins``) as the spins,
        sign(0) = +1. Without it, spins other than +-1 raise :class:`IsingScaleError`
        when computed, and a file holding only a continuous ``field`` is refused.

    Returns
    -------
    xarray.Dataset with ``spins`` (int8, sample/y/x), ``field`` when present, the
    per-sample datasets (``energy``, ``magnetization``, ``chain``) and the file's attributes
    (``n_samples`` is the number of complete samples).
    """
    attrs = read_attrs(path)
    name = Path(path).name
    n, L = int(attrs["n_samples"]), int(attrs["L"])
    if n == 0:
        raise IsingScaleError(f"{name} holds no samples (empty ensemble)")
    if "spins" not in attrs["datasets"] and not binarize:
        raise IsingScaleError(
            f"{name} holds a continuous 'field' and no spins; use --binarize (binarize=True) "
            "to take its signs"
        )
    if isinstance(chunks, dict):
        chunks = chunks.get("sample", default_chunk(L))
    chunk = int(chunks) if chunks else default_chunk(L)
    # Lazy, uncached backend arrays cut straight into `chunk`-sample dask chunks: one HDF5 read
    # per chunk (chunking by the file's own HDF5 chunks, then rechunking, costs ~5x the read).
    raw = xr.open_dataset(
        path, engine="h5netcdf", phony_dims="access", chunks=None, cache=False, decode_cf=False
    )
    variables = {}
    for key, var in raw.data_vars.items():
        dims = ("sample", "y", "x") if key in LATTICE_DATASETS else ("sample",)
        lazy = var.variable.isel({var.dims[0]: slice(0, n)})
        variables[key] = xr.Variable(dims, lazy.chunk({var.dims[0]: chunk}).data)
    if "spins" in variables and not binarize:
        spins = variables["spins"].data.map_blocks(partial(_check_pm1, path=name), dtype=np.int8)
    else:
        source = variables["spins" if "spins" in variables else "field"].data
        spins = source.map_blocks(_signs, dtype=np.int8)
    variables["spins"] = xr.Variable(("sample", "y", "x"), spins)
    ds = xr.Dataset(variables, attrs={k: v for k, v in attrs.items() if k != "datasets"})
    ds.attrs["source"] = str(path)
    ds.attrs["binarized"] = int(binarize)
    ds.set_close(raw.close)
    return ds


def open_ensembles(
    paths: Sequence[PathLike],
    *,
    labels: Sequence[str] | None = None,
    chunks: int | dict | None = None,
    binarize: bool = False,
) -> xr.Dataset:
    """Open several ensemble files of one L as one Dataset along an ``ensemble`` dim.

    Files with fewer samples than the longest are padded with spins 0 (and nan for the
    per-sample scalars); ``n_samples`` (dim ensemble) records each file's own length.
    Mismatched L is an :class:`IsingScaleError` naming both files.
    """
    paths = list(paths)
    if not paths:
        raise IsingScaleError("no ensemble files given")
    labels = list(labels) if labels is not None else ensemble_labels(paths)
    if len(labels) != len(paths):
        raise IsingScaleError(f"{len(labels)} labels for {len(paths)} files")
    check_same_L(paths)
    parts = [open_ensemble(p, chunks=chunks, binarize=binarize) for p in paths]
    n = [ds.sizes["sample"] for ds in parts]
    keep = set.intersection(*(set(ds.data_vars) for ds in parts))
    parts = [ds[sorted(keep)].assign_coords(sample=np.arange(k)) for ds, k in zip(parts, n)]
    out = xr.concat(
        parts, dim="ensemble", join="outer", fill_value={"spins": 0}, combine_attrs="drop"
    )
    out = out.assign_coords(ensemble=labels)
    out["n_samples"] = ("ensemble", np.asarray(n))
    out.attrs["L"] = int(parts[0].attrs["L"])
    return out


def ensemble_labels(paths: Sequence[PathLike]) -> list[str]:
    """Default labels: file stems, made unique with the parent folder where they clash."""
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    labels = [f"{Path(p).parent.name}/{Path(p).stem}" for p in paths]
    if len(set(labels)) == len(labels):
        return labels
    return [f"{i}:{s}" for i, s in enumerate(stems)]


def check_same_L(paths: Sequence[PathLike]) -> int:
    """Validate every file and return their common L, or raise naming the mismatch."""
    Ls = [int(read_attrs(p)["L"]) for p in paths]
    for p, L in zip(paths[1:], Ls[1:]):
        if L != Ls[0]:
            raise IsingScaleError(
                f"mismatched L across files: {Path(paths[0]).name} has L={Ls[0]}, "
                f"{Path(p).name} has L={L}"
            )
    return Ls[0]


def iter_spin_chunks(ds: xr.Dataset) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first sample index, int8 spins of one chunk) in sample order; bounded memory.

    The next chunk is read in a background thread while the caller works on this one
    (decompression and the correlators' kernels release the GIL), so at most two chunks
    are held at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    spins = ds["spins"].data
    if not isinstance(spins, da.Array):
        yield 0, np.ascontiguousarray(spins, dtype=np.int8)
        return
    bounds = np.cumsum((0,) + tuple(spins.chunks[0]))

    def read(i: int) -> np.ndarray:
        block = spins[bounds[i] : bounds[i + 1]].compute(scheduler="synchronous")
        return np.ascontiguousarray(block, dtype=np.int8)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, 0)
        for i in range(len(bounds) - 1):
            block = pending.result()
            if i + 2 < len(bounds):
                pending = pool.submit(read, i + 1)
            yield int(bounds[i]), block
