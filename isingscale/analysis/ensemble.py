"""Ensembles as lazy xarray Datasets (dims ``sample``, ``y``, ``x``), from any lattice source."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IsingScaleError
from ..lattices import Lattices, check_same_L, default_chunk, open_lattices, unique_names

if TYPE_CHECKING:
    import xarray as xr


def open_ensemble(
    source: Any,
    *,
    chunks: int | dict | None = None,
    binarize: bool = False,
    values: str | Sequence[float] | None = None,
    T: float | None = None,
    name: str | None = None,
) -> xr.Dataset:
    """Open a lattice source lazily as an xarray Dataset with dims (sample, y, x).

    Parameters
    ----------
    source : anything :func:`isingscale.lattices.open_lattices` reads: an ensemble file,
        ``FILE.h5:/group/dataset``, ``.npy``, ``.npz[:key]``, a PNG folder, a numpy / dask /
        xarray / torch array of shape (n, L, L) or (L, L), or a ``Lattices``.
    chunks : samples per dask chunk (int) or a dict ``{"sample": n}``; default about
        16 MiB of spins per chunk. Nothing is read until computed (the reader looks at the
        first lattices of a foreign source to settle its value convention).
    binarize : take the signs of a continuous field (or of non-+-1 spins) as the spins,
        sign(0) = +1. Without it, a field is refused, and spins that break the value
        convention raise :class:`IsingScaleError` when computed.
    values, T, name : value convention ``"LO,HI"``, temperature for sources that record
        none, label; see :func:`isingscale.lattices.open_lattices`.

    Returns
    -------
    xarray.Dataset with ``spins`` (int8 +-1, sample/y/x), ``field`` when the source holds
    one, an isingscale file's per-sample datasets (``energy``, ``magnetization``, ``chain``)
    and attributes: the source's metadata (``L``, ``T``, ``J``, ``kind``, ``n_samples``, ...),
    ``source``, ``binarized``, ``values`` (the convention), ``provenance`` (JSON, no sha256).
    """
    import xarray as xr

    lat = spin_lattices(
        open_lattices(source, values=values, T=T, binarize=binarize, name=name), binarize=binarize
    )
    if isinstance(chunks, dict):
        chunks = chunks.get("sample")
    chunk = int(chunks) if chunks else default_chunk(lat.L)
    variables = _variables(lat, chunk)
    attrs = {k: v for k, v in lat.attrs.items() if isinstance(v, (int, float, str))}
    attrs.update(
        source=lat.source,
        name=lat.name,
        binarized=int(lat.binarize),
        values=lat.values.as_attr(),
        provenance=json.dumps(lat.provenance(sha256=False)),
    )
    ds = xr.Dataset(variables, attrs=attrs)
    ds.encoding["lattices"] = lat
    return ds


def spin_lattices(lat: Lattices, *, binarize: bool = False) -> Lattices:
    """``lat`` read as spins (its signs when ``binarize``), or the one-line reason it cannot be.

    What :func:`isingscale.analysis.correlators.measure` streams without dask (the
    in-process ``correlate``); :func:`open_ensemble` wraps the same lattices lazily."""
    if binarize and not lat.binarize:
        lat = lat.binarized()
    lat.check_spins()
    return lat


def _variables(lat: Lattices, chunk: int) -> dict[str, xr.Variable]:
    """Dask-backed ``spins`` (convention applied per chunk), ``field`` for continuous data,
    and an ensemble file's other datasets, ``chunk`` samples per chunk."""
    import dask.array as da
    import xarray as xr

    raw = lat.raw
    stored = da.from_array(
        raw.data,
        chunks=(chunk, lat.L, lat.L),
        asarray=False,
        meta=np.empty((0, 0, 0), raw.data.dtype),
    )
    spins = stored.map_blocks(_spins_of, lat=lat, dtype=np.int8)
    variables = {"spins": xr.Variable(("sample", "y", "x"), spins)}
    if lat.field:
        variables["field"] = xr.Variable(
            ("sample", "y", "x"), stored.map_blocks(_field_of, lat=lat, dtype=np.float32)
        )
    for key, arr in raw.extras.items():
        dims = ("sample", "y", "x") if len(arr.shape) == 3 else ("sample",)
        chunks = (chunk, *arr.shape[1:])
        if isinstance(arr, da.Array):
            data = arr.rechunk(chunks)
        else:
            meta = np.empty((0,) * len(dims), arr.dtype)
            data = da.from_array(arr, chunks=chunks, asarray=False, meta=meta)
        variables[key] = xr.Variable(dims, data)
    return variables


def _spins_of(block: np.ndarray, *, lat: Lattices, block_info=None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return lat.spins_block(block, start)


def _field_of(block: np.ndarray, *, lat: Lattices, block_info=None) -> np.ndarray:
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return lat.field_block(block, start)


def open_ensembles(
    sources: Sequence[Any],
    *,
    labels: Sequence[str] | None = None,
    chunks: int | dict | None = None,
    binarize: bool = False,
    values: str | Sequence[float] | None = None,
    T: float | None = None,
) -> xr.Dataset:
    """Open several lattice sources of one L as one Dataset along an ``ensemble`` dim.

    Sources with fewer samples than the longest are padded with spins 0 (and nan for the
    per-sample scalars); ``n_samples`` (dim ensemble) records each source's own length.
    Mismatched L is an :class:`IsingScaleError` naming both sources.
    """
    import xarray as xr

    lats = [open_lattices(s, values=values, T=T, binarize=binarize) for s in list(sources)]
    if not lats:
        raise IsingScaleError("no ensemble files given")
    labels = list(labels) if labels is not None else unique_names(lats)
    if len(labels) != len(lats):
        raise IsingScaleError(f"{len(labels)} labels for {len(lats)} files")
    check_same_L(lats)
    parts = [open_ensemble(lat, chunks=chunks, binarize=binarize) for lat in lats]
    n = [ds.sizes["sample"] for ds in parts]
    keep = set.intersection(*(set(ds.data_vars) for ds in parts))
    parts = [ds[sorted(keep)].assign_coords(sample=np.arange(k)) for ds, k in zip(parts, n)]
    out = xr.concat(
        parts, dim="ensemble", join="outer", fill_value={"spins": 0}, combine_attrs="drop"
    )
    out = out.assign_coords(ensemble=labels)
    out["n_samples"] = ("ensemble", np.asarray(n))
    out.attrs["L"] = int(lats[0].L)
    return out


def chunk_reader(ds: xr.Dataset | Lattices) -> tuple[list[int], Callable[[int], np.ndarray]]:
    """(bounds, read): chunk i holds samples bounds[i]:bounds[i + 1], and read(i) returns its
    int8 spins. ds: an ensemble Dataset (its dask chunks) or a :class:`Lattices` read as
    spins (chunks of about 16 MiB, the default of :func:`open_ensemble`, no dask). read is
    thread-safe: every call opens the file afresh."""
    if isinstance(ds, Lattices):
        size = default_chunk(ds.L)
        bounds = list(range(0, ds.n_samples, size)) + [ds.n_samples]
        return bounds, lambda i: ds.read(bounds[i], bounds[i + 1])
    spins = ds["spins"].data
    if not hasattr(spins, "chunks"):  # numpy-backed
        return [0, len(spins)], lambda i: np.ascontiguousarray(spins, dtype=np.int8)
    bounds = [int(b) for b in np.cumsum((0,) + tuple(spins.chunks[0]))]

    def read(i: int) -> np.ndarray:
        block = spins[bounds[i] : bounds[i + 1]].compute(scheduler="synchronous")
        return np.ascontiguousarray(block, dtype=np.int8)

    return bounds, read


def iter_spin_chunks(ds: xr.Dataset | Lattices) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first sample index, int8 spins of one chunk) in sample order; bounded memory.

    ds: as in :func:`chunk_reader`. The next chunk is read in a background thread while the
    caller works on this one (decompression and the correlators' kernels release the GIL),
    so at most two chunks are held at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    bounds, read = chunk_reader(ds)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, 0)
        for i in range(len(bounds) - 1):
            block = pending.result()
            if i + 2 < len(bounds):
                pending = pool.submit(read, i + 1)
            yield bounds[i], block
