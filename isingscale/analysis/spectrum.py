"""Power spectrum S(k) = E|x^(k)|^2 (orthonormal 2-D FFT), radially averaged, and its slope.

With x^(k) = (1/L) sum_x s(x) exp(-2 pi i k.x), Wiener-Khinchin gives
S(k) = sum_d C(d) exp(-2 pi i k.d) from the translation-averaged map C, so the spectrum
costs nothing beyond the two-point function. At Tc, S ~ |k|^-(2 - eta) for 1/L << |k| << 1;
the exponent is fitted by least squares on log S vs log |k| over the integer wave numbers
|n| = L |k| in [FIT_LO, max(FIT_HI_MIN, L/8)].
"""

from __future__ import annotations

import numpy as np

from .radial import radial_bins, radial_mean

FIT_LO = 2
FIT_HI_MIN = 4


def k_bins(L: int) -> np.ndarray:
    """Mean |k| of each wave-number bin rint(|n|) = b, in cycles per site (|n| / L); same
    geometry as the radial distance bins."""
    return radial_bins(L)[2] / L


def fit_window(L: int) -> tuple[int, int]:
    return FIT_LO, max(FIT_HI_MIN, L // 8)


def spectrum(power: np.ndarray, L: int) -> dict[str, np.ndarray]:
    """Radial S(k) = <|F(k)|^2> / L^2 (including k = 0: L^2 <m^2>) from the mean power on
    the rfft2 half plane (..., L, L // 2 + 1), and the fitted exponent 2 - eta."""
    S = radial_mean(np.asarray(power) / (L * L), half=True)
    return {"S": S, "spectrum_exponent": fitted_exponent(S, L)}


def fitted_exponent(S: np.ndarray, L: int) -> np.ndarray:
    """-slope of log S vs log |k| over the bins |n| in :func:`fit_window`; nan if too few."""
    k = k_bins(L)
    lo, hi = fit_window(L)
    sel = slice(lo, hi + 1)
    x = np.log(k[sel])
    if x.size < 2:  # lattice too small for a fit window
        return np.full(np.shape(S)[:-1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(np.asarray(S)[..., sel])
    xc = x - x.mean()
    return -((y - y.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / (xc**2).sum()
