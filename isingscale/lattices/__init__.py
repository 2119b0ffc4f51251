"""Lattices from anywhere: one reader for every command and API function that takes lattices.

:func:`open_lattices` reads HDF5 of any layout (isingscale's own, mcising's, or any other:
``FILE.h5`` or ``FILE.h5:/group/dataset``), ``.npy``, ``.npz`` (``FILE.npz:key``), PNG
images (a file or a folder, as SKILD's reference code writes them) and numpy / dask / xarray
/ torch arrays, lazily, with their metadata, value convention and provenance.
:func:`export_lattices` writes ``.npz`` or PNG folders; :func:`merge_ensembles` and
:func:`import_lattices` write isingscale ensemble files from any sources.
"""

from .export import export_lattices
from .merge import import_lattices, merge_ensembles
from .reader import (
    Lattices,
    check_same_L,
    default_chunk,
    open_lattices,
    source_list,
    unique_names,
)
from .values import Values, parse_values

__all__ = [
    "Lattices",
    "Values",
    "check_same_L",
    "default_chunk",
    "export_lattices",
    "import_lattices",
    "merge_ensembles",
    "open_lattices",
    "parse_values",
    "source_list",
    "unique_names",
]
