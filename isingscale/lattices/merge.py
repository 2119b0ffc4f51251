"""Lattices in: join sources into one isingscale ensemble file (``merge``, ``import``).

Inputs are any lattice sources (:func:`open_lattices`); they are copied block by block
(bounded memory) in the order given. The output records, in the attribute ``merged_from``
(JSON list, one entry per input), each input's file, dataset, format, sha256, samples, value
convention and where its T came from (plus seed, chains and creation time for isingscale
files), so a derived file names exactly what it was made of.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IsingScaleError
from ..io import SCALAR_DATASETS, create_ensemble
from .reader import Lattices, open_lattices, source_list

# Attributes every input must share, and those of the first input not carried over.
MERGE_SAME = ("L", "T", "J", "algorithm", "kind", "schedule", "decorrelate", "thermalize")
MERGE_DROP = (
    "format",
    "schema_version",
    "package_version",
    "created",
    "n_samples",
    "datasets",
    "seed",
    "chains",
)


def merge_ensembles(
    sources: Any,
    out: str | os.PathLike,
    *,
    values: str | None = None,
    T: float | None = None,
    binarize: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Join lattice sources of one L, T and kind (e.g. ``simulate --shards`` output) into
    the ensemble file ``out``; returns its path.

    Inputs that are isingscale files keep their per-sample datasets (energy, magnetization,
    chain); ``chain`` ids are offset so that chains of different shards stay distinct, and
    ``seed`` (JSON list) and ``chains`` (their total) are recorded. The per-shard resume
    state is not carried over: a merged file is complete, not resumable. Other inputs give
    ``spins``, or a float32 ``field`` (on the ``values`` scale) for continuous float data
    without ``binarize``. ``values``, ``T``, ``binarize``: as :func:`open_lattices`.
    """
    lats = [open_lattices(s, values=values, T=T, binarize=binarize) for s in source_list(sources)]
    if not lats:
        raise IsingScaleError("merge: no input files given")
    _check_inputs(lats, Path(out))
    names = _datasets(lats)
    header = _header(lats, progress)
    L, total = lats[0].L, sum(lat.n_samples for lat in lats)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, desc="merge", unit="lattice")
    kind = lats[0].attrs["kind"]
    with create_ensemble(out, L=L, kind=kind, attrs=header, overwrite=overwrite) as w:
        chain_offset = 0
        for lat in lats:
            for n, block in _blocks(lat, names):
                if "chain" in block:
                    block["chain"] = block["chain"] + chain_offset
                w.append(block.pop("spins", None), field=block.pop("field", None), **block)
                bar.update(n)
            chain_offset += int(lat.attrs.get("chains") or 0)
    bar.close()
    return Path(out)


def import_lattices(source: Any, out: str | os.PathLike, **kwargs) -> Path:
    """One lattice source -> an isingscale ensemble file (:func:`merge_ensembles` of one)."""
    return merge_ensembles([source], out, **kwargs)


def _check_inputs(lats: list[Lattices], out: Path) -> None:
    for key in MERGE_SAME:
        found = {str(lat.attrs.get(key)) for lat in lats}
        if len(found) > 1:
            raise IsingScaleError(
                f"merge: the files differ in {key} ({', '.join(sorted(found))}); "
                "only lattices of one ensemble can be joined"
            )
    target = out.resolve()
    for lat in lats:
        if lat.file is not None and lat.file.resolve() == target:
            raise IsingScaleError(f"merge: the output {out} is one of the inputs")


def _datasets(lats: list[Lattices]) -> tuple[str, ...]:
    """The datasets every input gives, in file order; a one-line error when they differ."""
    per_input = [_names(lat) for lat in lats]
    for lat, names in zip(lats[1:], per_input[1:]):
        if names != per_input[0]:
            raise IsingScaleError(
                f"merge: {lat.source} holds datasets {list(names)}, {lats[0].source} "
                f"holds {list(per_input[0])}"
            )
    return per_input[0]


def _names(lat: Lattices) -> tuple[str, ...]:
    continuous = lat.field and lat.raw.data.dtype.kind == "f" and not lat.binarize
    if not continuous:
        lat.check_spins()
    main = "field" if continuous else "spins"
    extra = [k for k in ("spins", "field", *SCALAR_DATASETS) if k in lat.raw.extras]
    return tuple(k for k in ("spins", "field", *SCALAR_DATASETS) if k == main or k in extra)


def _blocks(lat: Lattices, names: tuple[str, ...]):
    """(samples, dict of numpy blocks, one per dataset in ``names``), ~16 MiB of spins each."""
    from .reader import default_chunk

    step = default_chunk(lat.L)
    for start in range(0, lat.n_samples, step):
        stop = min(start + step, lat.n_samples)
        block = {}
        for name in names:
            if name in lat.raw.extras:
                block[name] = np.asarray(lat.raw.extras[name][start:stop])
            elif name == "field":
                block[name] = lat.read_field(start, stop)
            else:
                block[name] = lat.read(start, stop)
        yield stop - start, block


def _header(lats: list[Lattices], progress: bool) -> dict:
    first = lats[0]
    if first.format == "isingscale":
        header = {k: v for k, v in first.raw.attrs.items() if k not in MERGE_DROP}
    else:
        header = {"J": first.attrs["J"]}
        if len(lats) == 1:
            header["source"] = first.source
    header["T"] = first.attrs["T"]
    header["merged_from"] = [lat.provenance(progress=progress) for lat in lats]
    seeds = [lat.attrs.get("seed") for lat in lats]
    if any(s is not None for s in seeds):
        header["seed"] = seeds
    chains = int(sum(int(lat.attrs.get("chains") or 0) for lat in lats))
    header["chains"] = chains or "none"
    conventions = sorted({lat.values.describe() for lat in lats})
    header["values"] = "; ".join(conventions) + (" binarized" if first.binarize else "")
    return header
