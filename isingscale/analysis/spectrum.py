"""Power spectrum S(k) = E|x^(k)|^2 (orthonormal 2-D FFT), radially averaged, and its slope.

With x^(k) = (1/L) sum_x s(x) exp(-2 pi i k.x), Wiener-Khinchin gives
S(k) = sum_d C(d) exp(-2 pi i k.d) from the translation-averaged map C, so the spectrum
costs nothing beyond the two-point function. At Tc, S ~ |k|^-(2 - eta) for 1/L << |k| << 1;
the exponent is fitted by least squares on log S vs log |k| over the integer wave numbers
|n| = L |k| in [FIT_LO, max(FIT_HI_MIN, L/8)].
"""

from __future__ import annotations

import numpy as np

from .correlators import radial_bins

FIT_LO = 2
FIT_HI_MIN = 4


def k_bins(L: int) -> tuple[np.ndarray, np.ndarray]:
    """Averaging matrix over wave vectors with rint(|n|) = b, and the mean |k| of each bin
    in cycles per site (|n| / L); same geometry as the radial distance bins."""
    M, n_mean = radial_bins(L)
    return M, n_mean / L


def fit_window(L: int) -> tuple[int, int]:
    return FIT_LO, max(FIT_HI_MIN, L // 8)


def spectrum(C: np.ndarray) -> dict[str, np.ndarray]:
    """Radial S(k) (including k = 0: L^2 <m^2>) and the fitted exponent 2 - eta."""
    L = C.shape[-1]
    S2 = np.fft.fft2(C).real
    M, k = k_bins(L)
    S = S2.reshape(*S2.shape[:-2], L * L) @ M.T
    lo, hi = fit_window(L)
    sel = slice(lo, hi + 1)
    x = np.log(k[sel])
    if x.size < 2:  # lattice too small for a fit window
        return {"S": S, "spectrum_exponent": np.full(S.shape[:-1], np.nan)}
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(S[..., sel])
    xc = x - x.mean()
    slope = ((y - y.mean(axis=-1, keepdims=True)) * xc).sum(axis=-1) / (xc**2).sum()
    return {"S": S, "spectrum_exponent": -slope}
