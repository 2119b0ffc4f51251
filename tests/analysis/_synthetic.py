"""Synthetic ensemble files for the analysis tests."""

import numpy as np

import isingscale as isc


def random_spins(n, L, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, L, L)) < 0.5, -1, 1).astype(np.int8)


def write_ensemble(path, spins=None, *, L=None, T=isc.T_C, field=None, kind="montecarlo"):
    """Write spins (and/or field) to an ensemble file; no samples if both are None."""
    L = L or (spins if spins is not None else field).shape[-1]
    with isc.create_ensemble(path, L=L, kind=kind, attrs={"T": T, "J": 1.0}, overwrite=True) as w:
        if spins is not None or field is not None:
            n = len(spins if spins is not None else field)
            w.append(
                spins, field=field, energy=np.zeros(n), magnetization=np.zeros(n), chain=np.zeros(n)
            )
    return path
