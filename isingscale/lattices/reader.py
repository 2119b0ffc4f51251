"""One reader for every command and API function that takes lattices: :func:`open_lattices`.

A *lattice source* is a path (``FILE.h5``, ``FILE.h5:/group/dataset``, ``FILE.npy``,
``FILE.npz``, ``FILE.npz:key``, ``FILE.png``, a folder of PNG images), a numpy / dask /
xarray / torch array of shape (n, L, L) or (L, L), or a :class:`Lattices` (returned as it
is). The result reads lazily, chunk by chunk, and carries the lattices' metadata (L, T, J,
kind, ...) and provenance (file, dataset, sha256, value convention, where T came from).

What the reader says on stderr, one line each: the dataset it picked when it had to guess,
a value convention it detected, and T = Tc when the source records no temperature.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import T_C
from ..errors import IsingScaleError
from . import sources, values
from .arrays import Array, Raw
from .values import Values

# Samples per chunk: about 16 MiB of int8 spins whatever L is.
CHUNK_BYTES = 1 << 24
# Lattices per block read to settle a source's value convention (more only while the data
# show a single value): a few suffice, and a PNG folder is read file by file.
DETECT_SAMPLES = 256
# Hashing sources larger than this shows a progress bar (when asked to).
HASH_BAR_BYTES = 1 << 28


def default_chunk(L: int) -> int:
    """Samples per chunk so that one chunk of int8 spins is about 16 MiB."""
    return max(1, CHUNK_BYTES // (L * L))


def notice(message: str) -> None:
    """One line on stderr: what the reader guessed or defaulted."""
    print(f"note: {message}", file=sys.stderr, flush=True)


class Lattices:
    """Lattices from one source, read lazily: (n, L, L) data, metadata and provenance.

    Use :func:`open_lattices` to make one. ``read``/``chunks`` give int8 +-1 spins (the
    value convention applied and checked); ``read_field`` gives continuous data as float32
    on the +-1 scale. ``attrs`` holds the metadata (always ``L``, ``T``, ``J``, ``kind``,
    ``n_samples``), ``provenance()`` what a derived file records about its input.
    """

    def __init__(self, raw: Raw, *, convention: Values, T: float, T_from: str, **kw):
        self.raw = raw
        self.values = convention
        self.binarize: bool = kw["binarize"]
        self.name: str = kw["name"]
        self.notes: list[str] = kw["notes"]
        n, L, _ = raw.data.shape
        self.n_samples, self.L = int(n), int(L)
        self.attrs: dict[str, Any] = {
            **raw.attrs,
            "L": self.L,
            "T": float(T),
            "J": float(raw.attrs.get("J", 1.0)),
            "kind": str(raw.attrs.get("kind", "imported")),
            "n_samples": self.n_samples,
        }
        self.T_from = T_from

    # -- identity

    @property
    def format(self) -> str:
        return self.raw.format

    @property
    def file(self) -> Path | None:
        return self.raw.file

    @property
    def dataset(self) -> str | None:
        return self.raw.dataset if self.raw.file is not None else None

    @property
    def source(self) -> str:
        """The source as a string that :func:`open_lattices` accepts again (for files)."""
        return self.raw.where

    @property
    def spec(self) -> str | None:
        """The source as an absolute ``FILE`` or ``FILE:DATASET`` (PNG folder: the folder)
        that :func:`open_lattices` reads again; None for an in-memory array. What derived
        files record as their ``source``."""
        if self.raw.file is None:
            return None
        path = str(Path(self.raw.file).resolve())
        if self.format in ("hdf5", "mcising", "npz") and self.raw.dataset:
            return f"{path}:{self.raw.dataset}"
        return path

    @property
    def field(self) -> bool:
        """The data are continuous (more than two values); spins need ``binarize``."""
        return self.values.field

    def __repr__(self) -> str:
        return (
            f"<Lattices {self.source}: {self.n_samples} x {self.L}x{self.L} {self.raw.data.dtype}, "
            f"T={self.attrs['T']:.6g}, values {self.values.describe()}>"
        )

    def __len__(self) -> int:
        return self.n_samples

    def binarized(self) -> Lattices:
        """The same lattices with ``binarize`` on (continuous data read as their signs)."""
        other = copy.copy(self)
        other.binarize = True
        return other

    # -- data

    def check_spins(self) -> None:
        """Raise the one-line reason why these data cannot be read as spins, if any."""
        problem = values.spins_problem(
            self.values, where=self.source, binarize=self.binarize, dtype=self.raw.data.dtype
        )
        if problem:
            raise IsingScaleError(problem)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Spins of samples start:stop, int8 +-1, shape (k, L, L)."""
        self.check_spins()
        return self.spins_block(self.raw.data.read(start, stop), start)

    def spins_block(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        """Stored data -> int8 spins (convention applied, checked; ``start`` names samples)."""
        return values.to_spins(
            block, self.values, binarize=self.binarize, where=self.source, start=start
        )

    def read_field(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The data of samples start:stop as float32 on the +-1 scale (any data, not only
        continuous ones: a lattice's field is its spins)."""
        return self.field_block(self.raw.data.read(start, stop), start)

    def field_block(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        """Stored data -> float32 on the +-1 scale (NaN and +-inf refused, naming the sample)."""
        values.check_finite(block, self.source, start)
        return values.to_field(block, self.values)

    def chunks(self, size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample index, int8 spins) chunk by chunk, in order; bounded memory."""
        self.check_spins()
        size = size or default_chunk(self.L)
        for start in range(0, self.n_samples, size):
            yield start, self.spins_block(self.raw.data.read(start, start + size), start)

    # -- provenance

    def sha256(self, *, progress: bool = False) -> str:
        """sha256 of the source: the file's bytes; a PNG folder's images (name and bytes,
        in reading order); an in-memory array's dtype, shape and C-order bytes. A progress
        bar (stderr) for sources over 256 MiB when ``progress``."""
        from tqdm.auto import tqdm

        h = hashlib.sha256()
        total, pieces = self._hash_pieces()
        desc = f"sha256 {self.name}"
        quiet = not progress or total < HASH_BAR_BYTES
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=quiet) as bar:
            for piece in pieces:
                h.update(piece)
                bar.update(len(piece))
        return h.hexdigest()

    def _hash_pieces(self) -> tuple[int, Iterator[bytes]]:
        """(total bytes, the byte strings hashed in order)."""
        if self.raw.format == "png":
            files = self.raw.data.files
            total = sum(p.stat().st_size for p in files)
            return total, (p.name.encode() + b"\0" + p.read_bytes() for p in files)
        if self.raw.file is not None:
            return self.raw.file.stat().st_size, _file_pieces(self.raw.file)
        data, step = self.raw.data, default_chunk(self.L)
        head = f"{data.dtype.str}{data.shape}".encode()
        blocks = (
            np.ascontiguousarray(data.read(i, i + step)).tobytes()
            for i in range(0, self.n_samples, step)
        )
        return int(np.prod(data.shape)) * data.dtype.itemsize, itertools.chain([head], blocks)

    def provenance(self, *, sha256: bool = True, progress: bool = False) -> dict[str, Any]:
        """What a derived file records about this input (JSON-ready); ``progress``: a bar
        while hashing a large source."""
        out = {
            "source": self.source,
            "file": str(Path(self.raw.file).resolve()) if self.raw.file is not None else None,
            "dataset": self.raw.dataset,
            "format": self.raw.format,
            "n_samples": self.n_samples,
            "L": self.L,
            "dtype": str(self.raw.data.dtype),
            "values": self.values.describe() + (" binarized" if self.binarize else ""),
            "T": self.attrs["T"],
            "T_from": self.T_from,
        }
        if sha256:
            out["sha256"] = self.sha256(progress=progress)
        for key in ("kind", "seed", "chains", "created", "producer", "algorithm"):
            if key in self.raw.attrs:
                out[key] = self.raw.attrs[key]
        return out


def _file_pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(1 << 20), b"")


def open_lattices(
    source: Any,
    *,
    values: str | Sequence[float] | None = None,
    T: float | None = None,
    binarize: bool = False,
    name: str | None = None,
) -> Lattices:
    """Open a lattice source lazily (see the module docstring for what a source can be).

    Parameters
    ----------
    source : path (``FILE``, ``FILE:DATASET``), PNG folder, array, or :class:`Lattices`.
    values : ``"LO,HI"`` or (LO, HI): stored LO is spin -1, HI is +1. Without it, +-1
        data are used as they are and other two-valued data are mapped smaller -> -1 with a
        notice on stderr (:mod:`isingscale.lattices.values`).
    T : temperature (J = 1 units) for sources that record none; a source that records a
        different T is an error. Without it such sources get T = Tc, with a notice.
    binarize : continuous data (a field) become spins by their signs (after the ``values``
        scale); without it they are refused when spins are read.
    name : label for reports and figures (default: the file's stem, or "array").

    Raises :class:`IsingScaleError` with one line naming the file, the dataset and the
    problem: no such file, unreadable or unknown format, a dataset that does not exist,
    rank other than 2 or 3, non-square lattices, L < 2, no samples, non-numeric data, NaN,
    a single value (ambiguous), a temperature conflict.
    """
    if isinstance(source, Lattices):
        return source
    given = values if values is None else _parse(values)
    raw = sources.resolve(source)
    check_shape(raw)
    notes = [raw.note] if raw.note else []
    if raw.format == "isingscale" and given is None:
        convention = (
            Values(field=True) if raw.dataset == "/field" else Values()
        )  # the format says +-1 spins; every chunk read is checked
        message = None
    else:
        blocks = chunks_of(raw.data, min(default_chunk(raw.data.shape[-1]), DETECT_SAMPLES))
        convention, message = values_detect(blocks, raw, given)
    notes += [message] if message else []
    T_value, T_from, T_note = temperature(raw, T)
    notes += [T_note] if T_note else []
    for line in notes:
        notice(line)
    label = name or default_name(raw)
    return Lattices(
        raw,
        convention=convention,
        T=T_value,
        T_from=T_from,
        binarize=bool(binarize),
        name=label,
        notes=notes,
    )


def _parse(v):
    return values.parse_values(v if isinstance(v, str) else tuple(v))


def values_detect(blocks, raw: Raw, given) -> tuple[Values, str | None]:
    return values.detect(blocks, where=raw.where, given=given, recorded=raw.values)


def chunks_of(data: Array, size: int) -> Iterator[np.ndarray]:
    for start in range(0, data.shape[0], size):
        yield data.read(start, start + size)


def check_shape(raw: Raw) -> None:
    """(n, L, L) or (L, L) with L >= 2 and n >= 1, numbers; one-line errors otherwise."""
    shape = raw.data.stored_shape
    where = raw.where
    if len(shape) not in (2, 3):
        raise IsingScaleError(
            f"{where}: has shape {shape}; lattices are (n, L, L) or (L, L) (rank {len(shape)})"
        )
    if shape[-1] != shape[-2]:
        raise IsingScaleError(
            f"{where}: lattices are {shape[-2]} x {shape[-1]}, not square (shape {shape})"
        )
    if 0 in shape:
        raise IsingScaleError(f"{where}: holds no lattices (empty, shape {shape})")
    if shape[-1] < 2:
        raise IsingScaleError(f"{where}: lattices of size L = {shape[-1]}; L must be at least 2")
    if raw.data.dtype.kind not in "iufb":
        raise IsingScaleError(f"{where}: holds {raw.data.dtype} data, not numbers")


def temperature(raw: Raw, T: float | None) -> tuple[float, str, str | None]:
    """(T, where it came from, notice or None)."""
    recorded = raw.attrs.get("T")
    try:
        recorded = None if recorded in (None, "none", "") else float(recorded)
    except (TypeError, ValueError):
        recorded = None
    if T is not None:
        T = float(T)
        if not T > 0 or not np.isfinite(T):
            raise IsingScaleError(f"--T must be a positive temperature, got {T}")
        if recorded is not None and not np.isclose(recorded, T, rtol=1e-9, atol=0):
            raise IsingScaleError(
                f"{raw.where}: records T = {recorded:.6g}, but --T {T:.6g} was given"
            )
        return T, "recorded" if recorded is not None else "given", None
    if recorded is not None:
        return recorded, "recorded", None
    return (
        T_C,
        "default (Tc)",
        f"{raw.where}: no temperature recorded; using T = Tc = {T_C:.6f} (--T sets it)",
    )


def default_name(raw: Raw) -> str:
    if raw.name:
        return raw.name
    if raw.file is None:
        return "array"
    return raw.file.name if raw.file.is_dir() else raw.file.stem


def source_list(sources_: Any) -> list:
    """One source or a list/tuple of sources -> a list (an array is one source)."""
    if isinstance(sources_, (list, tuple)):
        return list(sources_)
    return [sources_]


def check_same_L(lattices: Sequence[Lattices]) -> int:
    """The common L of several sources, or a one-line error naming the first mismatch."""
    first = lattices[0]
    for other in lattices[1:]:
        if other.L != first.L:
            raise IsingScaleError(
                f"mismatched L across files: {_short(first)} has L={first.L}, "
                f"{_short(other)} has L={other.L}"
            )
    return first.L


def _short(lat: Lattices) -> str:
    if lat.file is None:
        return lat.name
    return lat.file.name + (f":{lat.raw.dataset}" if lat.format in ("hdf5", "npz") else "")


def unique_names(lattices: Sequence[Lattices]) -> list[str]:
    """Labels: each source's name, made unique with the parent folder or an index."""
    names = [lat.name for lat in lattices]
    if len(set(names)) == len(names):
        return names
    parents = [
        f"{lat.file.parent.name}/{lat.name}" if lat.file is not None else lat.name
        for lat in lattices
    ]
    if len(set(parents)) == len(parents):
        return parents
    return [f"{i}:{n}" for i, n in enumerate(names)]
