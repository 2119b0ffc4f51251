"""HDF5 files of any layout: isingscale's own, mcising's output, or any other (which dataset
is read, and the metadata recorded on it and its groups)."""

from __future__ import annotations

from pathlib import Path

import h5py

from ..errors import IsingScaleError
from ..io import FORMAT, LATTICE_DATASETS, SCALAR_DATASETS, read_attrs
from .arrays import H5Array, Raw, decode, first_line, json_dict

# Attribute names that record a temperature (beta is inverted).
T_KEYS = ("T", "temperature", "Temperature", "temp")


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


def is_mcising(f: h5py.File) -> bool:
    """mcising's layout: a ``metadata`` group and one ``T=<temperature>`` group per T."""
    return "metadata" in f and any(k.startswith("T=") for k in f.keys())


def mcising(f: h5py.File, path: Path, group: str | None) -> Raw:
    """``/T=<t>/configurations`` of an mcising file (read as it is; int8 +-1, square lattice
    only); with several temperatures the group must be named (FILE:/T=<t>)."""
    meta = {k: decode(v) for k, v in f["metadata"].attrs.items()}
    config = json_dict(meta.get("config_json"))
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
