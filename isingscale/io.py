"""Ensemble files: one HDF5 file holds one ensemble of L x L lattices.

On-disk layout (schema 1)::

    /                      attrs: format="isingscale-ensemble", schema_version=1, kind, L,
                                  T, J, package_version, created, plus whatever the
                                  producer records (algorithm, seed, chains, method,
                                  factor, checkpoint, source, config JSON, ...)
    /spins                 int8    (n_samples, L, L)  values +-1, chunked, compressed
    /field      optional   float32 (n_samples, L, L)  continuous field (Fourier-coarsened
                                                       or pre-sign super-resolved lattices)
    /energy     optional   float64 (n_samples,)       energy per site, H/L^2 with J from attrs
    /magnetization optional float64 (n_samples,)      magnetization per site, sum(s)/L^2
    /chain      optional   int32   (n_samples,)       index of the Markov chain / source

``kind`` is one of ``montecarlo``, ``coarse``, ``superresolved``, ``generated``, ``imported``
(lattices read from elsewhere, whose origin the file's provenance records).
A file holding only ``field`` (no ``spins``) is valid: that is a Fourier-coarsened ensemble.

Samples are appended and flushed in blocks, so a process killed at any moment leaves
a readable file holding every completed block. Per-sample datasets always have the
same length after a completed append; on reopening, the shortest length wins (a block
cut short between two dataset resizes is dropped, never half-read).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import IsingScaleError

FORMAT = "isingscale-ensemble"
SCHEMA_VERSION = 1
KINDS = ("montecarlo", "coarse", "superresolved", "generated", "imported")
LATTICE_DATASETS = ("spins", "field")
SCALAR_DATASETS = {"energy": np.float64, "magnetization": np.float64, "chain": np.int32}


def package_version() -> str:
    from .version import __version__

    return __version__


def _lattice_dataset(f: h5py.File, name: str, L: int, dtype) -> h5py.Dataset:
    chunk_samples = max(1, min(1024, (1 << 18) // (L * L)))
    return f.create_dataset(
        name,
        shape=(0, L, L),
        maxshape=(None, L, L),
        dtype=dtype,
        chunks=(chunk_samples, L, L),
        compression="gzip",
        compression_opts=1,
        shuffle=True,
    )


def sample_blocks(
    L: int, spins, field, scalars: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], int]:
    """One appended block as stored dtypes ({name: array}) and its number of samples, checked:
    spins (n, L, L) -> int8, field (n, L, L) -> float32, known scalars (n,); every array the
    same n. One-line IsingScaleError otherwise."""
    blocks: dict[str, np.ndarray] = {}
    if spins is not None:
        blocks["spins"] = np.asarray(spins, dtype=np.int8)
    if field is not None:
        blocks["field"] = np.asarray(field, dtype=np.float32)
    for name, values in scalars.items():
        if name not in SCALAR_DATASETS:
            raise IsingScaleError(f"unknown per-sample dataset {name!r}")
        blocks[name] = np.asarray(values, dtype=SCALAR_DATASETS[name])
    n = {len(v) for v in blocks.values()}
    if len(n) != 1:
        raise IsingScaleError("append: datasets in one block have different lengths")
    for name, block in blocks.items():
        shape = (L, L) if name in LATTICE_DATASETS else ()
        if block.shape[1:] != shape:
            want = f"(n, {L}, {L})" if shape else "(n,)"
            raise IsingScaleError(f"append: {name} block has shape {block.shape}, expected {want}")
    return blocks, n.pop()


class EnsembleWriter:
    """Append-and-flush writer for an ensemble file; use :func:`create_ensemble` or
    :func:`append_ensemble` to get one. Usable as a context manager."""

    def __init__(self, f: h5py.File):
        self._f = f
        self.L = int(f.attrs["L"])
        self.n_samples = _consistent_length(f)
        for name in (*LATTICE_DATASETS, *SCALAR_DATASETS):
            if name in f and f[name].shape[0] != self.n_samples:
                f[name].resize(self.n_samples, axis=0)

    @property
    def path(self) -> Path:
        return Path(self._f.filename)

    @property
    def attrs(self) -> h5py.AttributeManager:
        return self._f.attrs

    @property
    def h5file(self) -> h5py.File:
        """The open h5py file, for producers that keep extra groups (e.g. MC resume state)."""
        return self._f

    def append(
        self,
        spins: np.ndarray | None = None,
        *,
        field: np.ndarray | None = None,
        **scalars: np.ndarray,
    ) -> int:
        """Append a block of samples and flush. Returns the new number of samples.

        spins: (n, L, L) of +-1 (stored int8); field: (n, L, L) float; scalars: any of
        ``energy``, ``magnetization``, ``chain``, each shape (n,). Every dataset the file
        already has must be given, so lengths stay equal.
        """
        blocks, n_new = sample_blocks(self.L, spins, field, scalars)
        missing = [
            k for k in (*LATTICE_DATASETS, *SCALAR_DATASETS) if k in self._f and k not in blocks
        ]
        if missing:
            raise IsingScaleError(f"append: block lacks {', '.join(missing)} that the file holds")
        start = self.n_samples
        for name, block in blocks.items():
            if name not in self._f:
                if start:
                    raise IsingScaleError(
                        f"append: cannot add new dataset {name!r} to a non-empty file"
                    )
                if name in LATTICE_DATASETS:
                    _lattice_dataset(self._f, name, self.L, block.dtype)
                else:
                    self._f.create_dataset(
                        name, shape=(0,), maxshape=(None,), dtype=block.dtype, chunks=(4096,)
                    )
            ds = self._f[name]
            ds.resize(start + n_new, axis=0)
            ds[start:] = block
        self.n_samples = start + n_new
        self._f.attrs["n_samples"] = self.n_samples
        self._f.flush()
        return self.n_samples

    def close(self) -> None:
        if self._f.id.valid:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> EnsembleWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ArrayWriter:
    """The in-memory counterpart of :class:`EnsembleWriter` (``out=None``): the same
    ``append`` (same dtypes and shape checks), the blocks kept as numpy arrays.

    ``attrs`` is a dict (what the file would record); :meth:`arrays` gives every dataset
    concatenated, e.g. ``{"spins": int8 (n, L, L), "energy": float64 (n,), ...}``.
    """

    path = None

    def __init__(self, *, L: int, kind: str, attrs: Mapping[str, Any] | None = None):
        self.L = int(L)
        self.attrs: dict[str, Any] = {"kind": kind, "L": self.L, **(attrs or {})}
        self.n_samples = 0
        self._blocks: dict[str, list[np.ndarray]] = {}

    def append(
        self,
        spins: np.ndarray | None = None,
        *,
        field: np.ndarray | None = None,
        **scalars: np.ndarray,
    ) -> int:
        """Keep a block of samples (see :meth:`EnsembleWriter.append`); the new count."""
        blocks, n_new = sample_blocks(self.L, spins, field, scalars)
        for name, block in blocks.items():
            self._blocks.setdefault(name, []).append(block)
        self.n_samples += n_new
        return self.n_samples

    def arrays(self) -> dict[str, np.ndarray]:
        """Every dataset appended so far, concatenated along samples."""
        return {name: np.concatenate(parts) for name, parts in self._blocks.items()}

    def close(self) -> None:
        pass

    def __enter__(self) -> ArrayWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ensemble_writer(
    out: str | os.PathLike | None,
    *,
    L: int,
    kind: str,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> EnsembleWriter | ArrayWriter:
    """Where a producer's lattices go: the file ``out`` (:func:`create_ensemble`), or, for
    ``out=None``, memory (:class:`ArrayWriter`)."""
    if out is None:
        return ArrayWriter(L=L, kind=kind, attrs=attrs)
    return create_ensemble(out, L=L, kind=kind, attrs=attrs, overwrite=overwrite)


def writable_dir(path: str | os.PathLike) -> Path:
    """Create directory ``path`` (and parents) if needed and check it is writable.

    Raises :class:`IsingScaleError` with a one-line reason (a file in the way, no
    permission); returns ``path`` as a Path.
    """
    path = Path(path) if str(path) else Path(".")
    if path.exists() and not path.is_dir():
        raise IsingScaleError(f"cannot create directory {path}: it exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IsingScaleError(f"cannot create directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise IsingScaleError(f"cannot write to {path}: permission denied")
    return path


def numbered_path(stem: str, *, directory: str | os.PathLike = "data", suffix: str = ".h5") -> Path:
    """First unused ``directory/stem-NNNN.h5`` (NNNN = 0001, 0002, ...): a default output
    name that never overwrites an earlier run's file."""
    directory = Path(directory)
    n = 1
    while (path := directory / f"{stem}-{n:04d}{suffix}").exists():
        n += 1
    return path


def _attr_value(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    if isinstance(value, Path):
        return str(value)
    return value


def create_ensemble(
    path: str | os.PathLike,
    *,
    L: int,
    kind: str,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> EnsembleWriter:
    """Create a new, empty ensemble file for L x L lattices and return its writer.

    Refuses an existing ``path`` unless ``overwrite``; ``attrs`` (scalars, strings,
    or dicts/lists stored as JSON) are written as file attributes next to the
    format, schema version, package version and creation time.
    """
    path = Path(path)
    if L < 2:
        raise IsingScaleError(f"lattice size L must be at least 2, got {L}")
    if kind not in KINDS:
        raise IsingScaleError(f"unknown ensemble kind {kind!r}; expected one of {', '.join(KINDS)}")
    if path.exists() and not overwrite:
        raise IsingScaleError(
            f"{path} already exists (use --resume to continue it or --overwrite to replace it)"
        )
    if path.exists() and path.is_dir():
        raise IsingScaleError(f"{path} is a directory, not a file")
    writable_dir(path.parent)
    # Build the header in a temporary file and rename it into place, so that an
    # existing file being overwritten is replaced atomically, never half-erased.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["kind"] = kind
            f.attrs["L"] = int(L)
            f.attrs["package_version"] = package_version()
            f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            f.attrs["n_samples"] = 0
            for key, value in (attrs or {}).items():
                f.attrs[key] = _attr_value(value)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise IsingScaleError(f"cannot write {path}: {e.strerror or e}") from None
    return EnsembleWriter(h5py.File(path, "r+"))


def append_ensemble(
    path: str | os.PathLike, *, expect: Mapping[str, Any] | None = None
) -> EnsembleWriter:
    """Reopen an existing ensemble file to append more samples (``--resume``).

    ``expect`` maps attribute names to the values this run would write (L, T, seed,
    ...); any mismatch is an error naming the attribute, so a resume never mixes
    two different ensembles in one file.
    """
    attrs = read_attrs(path)
    for key, want in (expect or {}).items():
        have = attrs.get(key)
        want = _attr_value(want)
        same = (
            np.isclose(float(have), float(want), rtol=1e-12, atol=0)
            if isinstance(want, (float, np.floating)) and isinstance(have, (int, float, np.number))
            else have == want
        )
        if not same:
            raise IsingScaleError(
                f"cannot resume {path}: it has {key}={have!r}, this run has {key}={want!r}"
            )
    try:
        return EnsembleWriter(h5py.File(path, "r+"))
    except OSError as e:
        raise IsingScaleError(f"cannot open {path} for writing: {e}") from None


def _consistent_length(f: h5py.File) -> int:
    lengths = [f[k].shape[0] for k in (*LATTICE_DATASETS, *SCALAR_DATASETS) if k in f]
    return min(lengths) if lengths else 0


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Validate that ``path`` is an ensemble file and return its attributes as a dict.

    Raises :class:`IsingScaleError` with a one-line reason for a missing file, a file
    that is not HDF5, a foreign HDF5 file, a newer schema, or malformed datasets.
    """
    path = Path(path)
    if not path.exists():
        raise IsingScaleError(f"{path}: no such file")
    if path.is_dir():
        raise IsingScaleError(f"{path} is a directory, not an ensemble file")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise IsingScaleError(
                    f"{path} is an HDF5 file but not an isingscale ensemble (no format attribute)"
                )
            if int(attrs.get("schema_version", 0)) > SCHEMA_VERSION:
                raise IsingScaleError(
                    f"{path} uses ensemble schema {attrs['schema_version']}, newer than this "
                    f"isingscale ({SCHEMA_VERSION}); upgrade isingscale"
                )
            L = int(attrs.get("L", 0))
            if not any(k in f for k in LATTICE_DATASETS):
                if attrs.get("n_samples", 0):
                    raise IsingScaleError(f"{path} has neither a 'spins' nor a 'field' dataset")
            for k in LATTICE_DATASETS:
                if k in f and (f[k].ndim != 3 or f[k].shape[1:] != (L, L)):
                    raise IsingScaleError(
                        f"{path}: dataset {k!r} has shape {f[k].shape}, expected (n, {L}, {L})"
                    )
            attrs["n_samples"] = _consistent_length(f)
            attrs["datasets"] = sorted(k for k in f.keys())
    except OSError as e:
        raise IsingScaleError(f"{path} is not a readable HDF5 file ({_first_line(e)})") from None
    return attrs


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def read_ensemble(
    path: str | os.PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    datasets: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Read samples ``start:stop`` of an ensemble file into memory.

    Returns a dict with ``attrs`` and one numpy array per dataset present (all, or only
    those named in ``datasets``). For files larger than memory use
    :func:`isingscale.open_ensemble`, which is lazy.
    """
    attrs = read_attrs(path)
    n = attrs["n_samples"]
    stop = n if stop is None else min(stop, n)
    out: dict[str, Any] = {"attrs": attrs}
    with h5py.File(path, "r") as f:
        for name in (*LATTICE_DATASETS, *SCALAR_DATASETS):
            if name in f and (datasets is None or name in datasets):
                out[name] = f[name][start:stop]
    return out


def check_spins(spins: np.ndarray, *, what: str = "spins") -> np.ndarray:
    """Return ``spins`` as int8 after checking it is (n, L, L) and holds only +-1."""
    spins = np.asarray(spins)
    if spins.ndim != 3 or spins.shape[1] != spins.shape[2]:
        raise IsingScaleError(
            f"{what} must have shape (n, L, L) with square lattices, got {spins.shape}"
        )
    if spins.size and not np.all(np.abs(spins) == 1):
        raise IsingScaleError(
            f"{what} must hold only +1 and -1 (found other values); use --binarize to take signs"
        )
    return spins.astype(np.int8, copy=False)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_netcdf(ds, path: str | os.PathLike) -> None:
    """An xarray Dataset ``ds`` to a netCDF4 file through h5netcdf: what ``ds.to_netcdf(path,
    engine="h5netcdf")`` writes, without the lock it takes against dask schedulers (looking
    for one imports dask.distributed, 0.1-0.2 s of a command's CPU time; the Dataset's
    variables must be in memory, and one thread writes the file)."""
    from xarray.backends import H5NetCDFStore

    store = H5NetCDFStore.open(os.fspath(path), mode="w", lock=False)
    try:
        ds.dump_to_store(store)
    finally:
        store.close()
