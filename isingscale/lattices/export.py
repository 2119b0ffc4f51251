"""Lattices out: ``.npz`` archives and PNG folders that other codes read as they are.

* ``npz``: ``DIR/<name>.npz`` with ``spins`` (int8 +-1, (n, L, L)) and 0-d members ``T``,
  ``J``, ``L``, ``kind`` and ``provenance`` (a JSON string); ``np.load`` reads it without pickle.
  Written as a stream (bounded memory), deflated, into a temporary file renamed into place.
* ``png``: ``DIR/ising_00000.png``, ... one 8-bit grey image per lattice, spin -1 -> 0 and
  +1 -> 254, as the SKILD reference code writes its Ising data (``(s + 1) * 127``, mode "L").
  ``DIR/isingscale.json`` records T, J, L, the convention ``values: [0, 254]`` and the
  provenance, so that ``import``/``open_lattices`` read the folder back without guessing
  (image loaders that read a folder by image extension ignore it). Written into a
  temporary folder renamed into place.

Both go back through :func:`isingscale.lattices.open_lattices` bit for bit (spins) with T and L.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IsingScaleError
from ..io import writable_dir
from .reader import Lattices, open_lattices
from .sources import PNG_SIDECAR

FORMATS = ("npz", "png")
# SKILD's reference code maps spins s to (s + 1) * 127: -1 -> 0, +1 -> 254.
PNG_DOWN, PNG_UP = 0, 254


def export_lattices(
    source: Any,
    directory: str | os.PathLike,
    *,
    to: str = "npz",
    values: str | None = None,
    T: float | None = None,
    binarize: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write the spins of a lattice source as ``.npz`` or a PNG folder; returns the path.

    ``directory`` is created. npz: ``directory/<name>.npz``. png: ``directory`` itself holds
    the images and must not exist or be empty (else ``overwrite``). ``values``, ``T``,
    ``binarize``: as :func:`open_lattices`.
    """
    if to not in FORMATS:
        raise IsingScaleError(f"unknown export format {to!r}; expected npz or png")
    lat = open_lattices(source, values=values, T=T, binarize=binarize)
    lat.check_spins()
    directory = Path(directory)
    meta = {
        "T": lat.attrs["T"],
        "J": lat.attrs["J"],
        "L": lat.L,
        "kind": lat.attrs["kind"],
        "provenance": lat.provenance(progress=progress),
    }
    if to == "npz":
        return _write_npz(
            lat, writable_dir(directory) / f"{lat.name}.npz", meta, overwrite, progress
        )
    return _write_png(lat, directory, meta, overwrite, progress)


def _bar(lat: Lattices, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=lat.n_samples, disable=not progress, desc=desc, unit="lattice")


def _write_npz(lat: Lattices, path: Path, meta: dict, overwrite: bool, progress: bool) -> Path:
    if path.exists() and not overwrite:
        raise IsingScaleError(f"{path} already exists (use --overwrite to replace it)")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int8)), "fortran_order": False}
    header["shape"] = (lat.n_samples, lat.L, lat.L)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            with (
                z.open("spins.npy", "w", force_zip64=True) as f,
                _bar(lat, progress, "export") as bar,
            ):
                np.lib.format.write_array_header_2_0(f, header)
                for _, spins in lat.chunks():
                    f.write(spins.tobytes())
                    bar.update(len(spins))
            for key in ("T", "J", "L", "kind"):
                _member(z, key, np.asarray(meta[key]))
            _member(z, "provenance", np.asarray(json.dumps(meta["provenance"])))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _member(z: zipfile.ZipFile, key: str, value: np.ndarray) -> None:
    with z.open(f"{key}.npy", "w") as f:
        np.lib.format.write_array(f, value, allow_pickle=False)


def _write_png(lat: Lattices, directory: Path, meta: dict, overwrite: bool, progress: bool) -> Path:
    from PIL import Image

    if directory.exists() and not directory.is_dir():
        raise IsingScaleError(f"{directory} exists and is not a folder")
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise IsingScaleError(f"{directory} is not empty (use --overwrite to replace it)")
    writable_dir(directory.parent if str(directory.parent) else ".")
    tmp = directory.with_name(f".{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    digits = max(5, len(str(lat.n_samples - 1)))
    try:
        with _bar(lat, progress, "export") as bar:
            for start, spins in lat.chunks():
                pixels = ((spins.astype(np.int16) + 1) * 127).astype(np.uint8)
                for i, img in enumerate(pixels):
                    Image.fromarray(img).save(tmp / f"ising_{start + i:0{digits}d}.png")
                bar.update(len(spins))
        sidecar = {**meta, "values": [PNG_DOWN, PNG_UP], "convention": "pixel = (spin + 1) * 127"}
        (tmp / PNG_SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
