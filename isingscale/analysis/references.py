"""Exact reference curves at an ensemble's L, drawn from :mod:`isingscale.exact`.

Torus CFT forms (Di Francesco, Saleur & Zuber 1987, normalised to the lattice amplitude A)
are the references the report judges against; the plane forms are their L -> infinity
limit, drawn for orientation. CFT references hold at Tc only: at another temperature they
are nan. A reference the exact module cannot give (not implemented, or failing at some r)
is nan, never an exception, and ``notes`` says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..constants import BINDER_CRITICAL, T_C

if TYPE_CHECKING:
    import xarray as xr

# The CFT is a long-distance theory: references are compared from this r on.
R_MIN_CFT = 4


def _curve(f: Callable, rs: np.ndarray, notes: list[str], what: str) -> np.ndarray:
    """f at every r > 0 in one vectorised call; r = 0 and non-finite values (coincident
    points on the torus) are nan, and a failing reference is nan throughout, with a note."""
    out = np.full(len(rs), np.nan)
    pos = rs > 0
    try:
        with np.errstate(all="ignore"):
            out[pos] = np.broadcast_to(np.asarray(f(rs[pos]), dtype=float), (int(pos.sum()),))
    except Exception as e:  # noqa: BLE001 - a missing reference must not stop a report
        first = str(e).splitlines()[0] if str(e) else ""
        notes.append(f"{what}: unavailable ({type(e).__name__}: {first})")
        return np.full(len(rs), np.nan)
    return np.where(np.isfinite(out), out, np.nan)


def reference_curves(L: int, T: float, shapes: Sequence[str]) -> tuple[xr.Dataset, list[str]]:
    """Reference Dataset over ``r`` = 0 ... L/2 (r = 0 is nan) and notes on what is missing.

    Variables: ``G2_torus`` (torus CFT along an axis), ``G2_plane``, ``G4c_<shape>_torus``,
    ``G4c_<shape>_plane``, ``spectrum_exponent_torus`` (:func:`torus_spectrum_exponent`),
    ``energy_exact`` (Kaufman torus energy u(L, T)),
    ``energy_onsager`` (L = infinity), ``binder_critical`` (U4* at Tc).
    """
    import isingscale.exact as exact

    notes: list[str] = []
    rs = np.arange(L // 2 + 1)
    at_tc = bool(np.isfinite(T) and math.isclose(T, T_C, rel_tol=1e-6))
    import xarray as xr

    ref = xr.Dataset(coords={"r": rs})
    nan = np.full(len(rs), np.nan)
    if not at_tc:
        notes.append(f"T = {T:g} is not Tc: CFT references and U4* omitted")
    cft = [
        ("G2_torus", lambda r: exact.torus_g2(r, 0, L)),
        ("G2_plane", lambda r: exact.plane_g2(r)),
    ]
    for shape in shapes:
        cft.append((f"G4c_{shape}_torus", lambda r, s=shape: exact.torus_g4c(r, L, shape=s)))
        cft.append((f"G4c_{shape}_plane", lambda r, s=shape: exact.plane_g4c(r, shape=s)))
    for name, f in cft:
        ref[name] = ("r", _curve(f, rs, notes, name) if at_tc else nan)
    ref["spectrum_exponent_torus"] = (
        _scalar(lambda: torus_spectrum_exponent(L), notes, "spectrum_exponent_torus")
        if at_tc
        else np.nan
    )
    ref["energy_exact"] = _scalar(lambda: exact.torus_energy(L, T), notes, "energy_exact")
    ref["energy_onsager"] = _scalar(lambda: exact.onsager_energy(T), notes, "energy_onsager")
    ref["binder_critical"] = BINDER_CRITICAL if at_tc else np.nan
    ref.attrs["r_min_cft"] = R_MIN_CFT
    return ref, notes


def _scalar(f: Callable[[], float], notes: list[str], what: str) -> float:
    try:
        with np.errstate(all="ignore"):
            return float(f())
    except Exception as e:  # noqa: BLE001
        notes.append(f"{what}: unavailable ({type(e).__name__})")
        return float("nan")


def torus_spectrum_exponent(L: int) -> float:
    """What the S(k) fit of ``correlate`` gives for exact critical lattices at this L.

    The spectrum of the torus CFT two-point function (every displacement; 1 at d = 0, the
    lattice value), radially averaged and fitted over the same window as the data
    (:func:`isingscale.analysis.spectrum.fitted_exponent`). On an L x L torus the fit window
    |n| in [2, L/8] sits where S(k) still bends away from |k|^-(2 - eta): the fitted slope
    is about 1.63 at L = 32 and approaches 1.75 only slowly, so the data are judged against
    this value, not 1.75.
    """
    import isingscale.exact as exact

    from .radial import radial_mean
    from .spectrum import fitted_exponent

    d = np.arange(L // 2 + 1)
    with np.errstate(all="ignore"):
        quarter = exact.torus_g2(d[None, :], d[:, None], L)  # [dy, dx], 0 <= dx, dy <= L/2
    quarter[0, 0] = 1.0
    full = np.empty((L, L))
    idx = np.minimum(np.arange(L), L - np.arange(L))
    full[:, :] = quarter[np.ix_(idx, idx)]
    S = radial_mean(np.fft.fft2(full).real)
    return float(fitted_exponent(S, L))
