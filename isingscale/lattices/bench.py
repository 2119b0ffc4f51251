"""``isingscale bench read``: how fast each lattice format is read, against isingscale's own.

The same random +-1 lattices are written once in every format (ensemble file, plain HDF5,
``.npy``, ``.npz``, a folder of SKILD-style PNGs); then, side by side in one process and in
turns (so that load from other jobs falls on all formats alike), each is (a) opened and
streamed chunk by chunk into int8 spins, the reader's kernel, and (b) imported into a new
ensemble file, the whole ``isingscale import`` command. Times are reported as ratios to the
ensemble file, and every format is checked to give the same spins.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from ..io import create_ensemble
from .export import export_lattices
from .merge import import_lattices
from .reader import open_lattices

FORMATS = ("isingscale", "hdf5", "npy", "npz", "png")


def write_formats(directory: Path, spins: np.ndarray) -> dict[str, Path]:
    """``spins`` in every format under ``directory``: name -> source."""
    native = directory / "native.h5"
    with create_ensemble(native, L=spins.shape[-1], kind="montecarlo", attrs={"T": 2.0}) as w:
        w.append(spins)
    with h5py.File(directory / "plain.h5", "w") as f:
        f.create_dataset("spins", data=spins, chunks=True, compression="gzip", compression_opts=1)
        f.attrs["T"] = 2.0
    np.save(directory / "plain.npy", spins)
    out = {"isingscale": native, "hdf5": directory / "plain.h5", "npy": directory / "plain.npy"}
    out["npz"] = export_lattices(native, directory, to="npz")
    out["png"] = export_lattices(native, directory / "png", to="png")
    return out


def _stream(source) -> tuple[float, int]:
    t = time.perf_counter()
    lat = open_lattices(source)
    check = sum(int(block[:, 0, 0].astype(np.int64).sum()) for _, block in lat.chunks())
    return time.perf_counter() - t, check


def _import(source, out: Path) -> float:
    t = time.perf_counter()
    import_lattices(source, out, overwrite=True)
    return time.perf_counter() - t


def bench_read(
    *, L: int = 128, samples: int = 2000, repeats: int = 3, seed: int = 0, workdir=None
) -> list[dict]:
    """Rows (format, stream_s, import_s, ratios to the ensemble file, MB on disk); the best of
    ``repeats`` turns. Raises if a format reads different spins."""
    rng = np.random.default_rng(seed)
    spins = np.where(rng.random((samples, L, L)) < 0.5, -1, 1).astype(np.int8)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, contextlib.redirect_stderr(io.StringIO()):
        tmp = Path(tmp)
        sources = write_formats(tmp, spins)
        want = int(spins[:, 0, 0].astype(np.int64).sum())
        best = {k: [np.inf, np.inf] for k in FORMATS}
        for _ in range(repeats):
            for name in FORMATS:
                t, check = _stream(sources[name])
                if check != want:
                    raise AssertionError(f"{name} read different spins")
                best[name][0] = min(best[name][0], t)
                best[name][1] = min(best[name][1], _import(sources[name], tmp / "imported.h5"))
        sizes = {k: _size(p) for k, p in sources.items()}
    base = best["isingscale"]
    return [
        {
            "format": k,
            "stream_s": best[k][0],
            "import_s": best[k][1],
            "stream_ratio": best[k][0] / base[0],
            "import_ratio": best[k][1] / base[1],
            "mb": sizes[k] / 1e6,
        }
        for k in FORMATS
    ]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def format_table(rows: list[dict], *, L: int, samples: int) -> str:
    lines = [
        f"{samples} random lattices of {L}x{L}; best of the turns; ratios to the ensemble file",
        f"{'format':<11} {'MB':>8} {'stream s':>9} {'x':>6} {'import s':>9} {'x':>6}",
    ]
    for r in rows:
        lines.append(
            f"{r['format']:<11} {r['mb']:8.1f} {r['stream_s']:9.3f} {r['stream_ratio']:6.2f} "
            f"{r['import_s']:9.3f} {r['import_ratio']:6.2f}"
        )
    return "\n".join(lines)
