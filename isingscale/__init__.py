"""isingscale: critical 2-D Ising lattices, simulated, super-resolved by SKILD, and checked.

The public API is imported lazily (torch and numba load only when first used)::

    import isingscale as isc
    r = isc.simulate(L=64, samples=1000, out="mc.h5")  # Wolff Monte Carlo at Tc -> HDF5
    ds = isc.open_ensemble(r.path)                     # xarray Dataset (sample, y, x)
    x = isc.simulate(L=64, samples=1000).spins         # no out: numpy int8 (n, L, L)
"""

from __future__ import annotations

import importlib

from .constants import BINDER_CRITICAL, CORRELATION_AMPLITUDE, T_C, U_C
from .errors import IsingScaleError
from .io import append_ensemble, create_ensemble, read_attrs, read_ensemble
from .version import __version__

# name -> module that defines it (a module listed under its own name is returned whole).
_LAZY = {
    # Monte Carlo
    "simulate": "isingscale.mc.simulate",
    "SimulationResult": "isingscale.mc.simulate",
    # exact references
    "exact": "isingscale.exact",
    # lattices from anywhere
    "open_lattices": "isingscale.lattices",
    "import_lattices": "isingscale.lattices",
    "export_lattices": "isingscale.lattices",
    "merge_ensembles": "isingscale.lattices",
    # analysis
    "open_ensemble": "isingscale.analysis.ensemble",
    "correlate": "isingscale.analysis.report",
    "show": "isingscale.analysis.show",
    "scaling": "isingscale.analysis.scaling",
    # SKILD, the baselines, and their evaluation against Monte Carlo
    "skild": "isingscale.skild",
    "baselines": "isingscale.baselines",
    "evaluation": "isingscale.evaluation",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if _LAZY[name] == f"isingscale.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'isingscale' has no attribute {name!r}")


__all__ = [
    "__version__",
    "T_C",
    "U_C",
    "BINDER_CRITICAL",
    "CORRELATION_AMPLITUDE",
    "IsingScaleError",
    "create_ensemble",
    "append_ensemble",
    "read_attrs",
    "read_ensemble",
    *_LAZY,
]
