"""Scalar observables of an ensemble as functions of ensemble means (jackknife-ready).

Every function takes means that may carry a leading replica axis and broadcasts over it.
Conventions (per site, J from the file, k_B = 1, N = L^2):

- energy per site  u = -J (<s(x,y) s(x+1,y)> + <s(x,y) s(x,y+1)>)  (= H / N on average)
- |m| = <|sum s| / N>
- susceptibility  chi = N (<m^2> - <|m|>^2) / T  (connected, with |m|: the finite-lattice
  convention that stays finite below Tc; the "signed" chi' = N <m^2> / T is also returned)
- Binder cumulant  U4 = 1 - <m^4> / (3 <m^2>^2)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..stats import binder

__all__ = ["SCALARS", "binder", "energy_per_site", "scalars", "susceptibility"]

SCALARS = ("energy", "abs_m", "m", "chi", "chi_signed", "binder")


def energy_per_site(C: np.ndarray, *, J: float = 1.0) -> np.ndarray:
    """u = -J (C(1, 0) + C(0, 1)) from the translation-averaged map C[..., dy, dx]."""
    return -J * (C[..., 0, 1] + C[..., 1, 0])


def susceptibility(m2, abs_m, *, L: int, T: float) -> np.ndarray:
    """chi = L^2 (<m^2> - <|m|>^2) / T (per site); nan for T = nan."""
    return L * L * (np.asarray(m2) - np.asarray(abs_m) ** 2) / T


def scalars(means: Mapping[str, np.ndarray], *, L: int, T: float, J: float = 1.0) -> dict:
    """All scalar observables named in :data:`SCALARS` from the per-sample means."""
    return {
        "energy": energy_per_site(means["C"], J=J),
        "abs_m": means["abs_m"],
        "m": means["m"],
        "chi": susceptibility(means["m2"], means["abs_m"], L=L, T=T),
        "chi_signed": L * L * means["m2"] / T,
        "binder": binder(means["m2"], means["m4"]),
    }
