"""Infinite-lattice square Ising thermodynamics (Onsager 1944, Yang 1952) and the
diagonal spin-spin correlation at Tc (McCoy & Wu).

Notation: K = J/T, S = sinh 2K, C = cosh 2K, elliptic modulus k = 2 S / C^2,
complementary k'^2 = 1 - k^2 = (S - 1)^2 (C^2 + 2S) / C^4 (no cancellation near Tc).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ellipe, ellipkm1

from ..constants import CORRELATION_AMPLITUDE, ETA
from ..errors import IsingScaleError

__all__ = [
    "onsager_energy",
    "onsager_specific_heat",
    "onsager_magnetization",
    "diagonal_correlation",
    "correlation_asymptote",
]


# Beyond K = J/T = 30 every correction to the ground state is below e^-120: clip there so
# that sinh/cosh cannot overflow at tiny T.
_K_MAX = 30.0
_K_C = 0.5 * np.log1p(np.sqrt(2.0))  # sinh 2K_c = 1


def _coupling(T, J):
    T = np.asarray(T, dtype=float)
    if np.any(~(T > 0)):
        raise IsingScaleError(f"temperature must be > 0, got {T!r}")
    return J / T


def _elliptic(K):
    """k'^2, K(k), E(k) with k = 2 sinh 2K / cosh^2 2K (scipy's parameter m = k^2)."""
    S, C = np.sinh(2 * K), np.cosh(2 * K)
    kp2 = (S - 1) ** 2 * (C**2 + 2 * S) / C**4
    with np.errstate(divide="ignore"):
        return kp2, ellipkm1(kp2), ellipe(1 - kp2)


def onsager_energy(T, J=1.0):
    """Energy per site u = -J coth 2K [1 + (2/pi)(2 tanh^2 2K - 1) K(k)], K = J/T.

    Onsager, Phys. Rev. 65, 117 (1944); form of Huang, *Statistical Mechanics* (2nd ed.),
    eq. (15.147) with k = 2 sinh 2K / cosh^2 2K, K(k) the complete elliptic integral of
    the first kind. u(Tc) = -sqrt(2) J exactly (the divergent K(k) is multiplied by 0).

    Parameters
    ----------
    T : float or array_like
        Temperature (units of J / k_B), T > 0.
    J : float
        Coupling.

    Returns
    -------
    ndarray or float
        Energy per site (units of J), in [-2J, 0].
    """
    K = np.minimum(_coupling(T, J), _K_MAX)
    kp2, Kk, _ = _elliptic(K)
    t2 = np.tanh(2 * K) ** 2
    with np.errstate(invalid="ignore"):
        bracket = 1 + (2 / np.pi) * (2 * t2 - 1) * Kk
    bracket = np.where(kp2 == 0, 1.0, bracket)
    return (-J / np.tanh(2 * K) * bracket)[()]


def onsager_specific_heat(T, J=1.0):
    """Specific heat per site c = du/dT = -K^2 d(u/J)/dK of Onsager's energy, K = J/T.

    Analytic derivative of :func:`onsager_energy` (Onsager 1944) using
    dK(k)/dk = E(k)/(k k'^2) - K(k)/k and dk/dK = 4 (1 - sinh^2 2K)/cosh^3 2K, with the
    0/0 at Tc removed in closed form. Logarithmically divergent at Tc,
    c ~ -(8/pi) K_c^2 ln|1 - T/Tc| (k_B = 1).

    Parameters
    ----------
    T : float or array_like
        Temperature (units of J / k_B), T > 0.
    J : float
        Coupling.

    Returns
    -------
    ndarray or float
        Specific heat per site (units of k_B); ``inf`` exactly at Tc.
    """
    K = _coupling(T, J)
    Kc = np.minimum(K, _K_MAX)
    _, Kk, Ek = _elliptic(Kc)
    S, C = np.sinh(2 * Kc), np.cosh(2 * Kc)
    a = (S**2 - 1) / C**2  # = 2 tanh^2 2K - 1
    da = 8 * (S / C) / C**2
    kappa = 2 * S / C**2
    # a (1 - S^2) / k'^2 in closed form (finite at Tc).
    a_ratio = -((S + 1) ** 2) * C**2 / (C**2 + 2 * S)
    with np.errstate(invalid="ignore"):
        chain = 4 / (kappa * C**3) * (a_ratio * Ek + a * (S**2 - 1) * Kk)
        du_dK = 2 / S**2 * (1 + (2 / np.pi) * a * Kk) - (C / S) * (2 / np.pi) * (da * Kk + chain)
    c = -(K**2) * du_dK
    # Exactly at Tc (to rounding of T_C) the log divergence is returned as inf.
    at_tc = np.abs(K / _K_C - 1) < 8 * np.finfo(float).eps
    return np.where(at_tc | np.isinf(Kk), np.inf, np.where(K > _K_MAX, 0.0, c))[()]


def onsager_magnetization(T, J=1.0):
    """Spontaneous magnetisation per site m0 = (1 - sinh^-4 2K)^(1/8) below Tc, 0 above.

    Yang, Phys. Rev. 85, 808 (1952) (announced by Onsager 1949). Exponent beta = 1/8.

    Parameters
    ----------
    T : float or array_like
        Temperature (units of J / k_B), T > 0.
    J : float
        Coupling.

    Returns
    -------
    ndarray or float
        m0 in [0, 1]; exactly 0 for T >= Tc.
    """
    K = np.minimum(_coupling(T, J), _K_MAX)
    x = 1 - np.sinh(2 * K) ** -4.0
    return np.where(x > 0, np.abs(x) ** 0.125, 0.0)[()]


def diagonal_correlation(n):
    """<s_00 s_nn> = (2/pi)^n prod_{k=1}^{n-1} (1 - 1/(4k^2))^(k-n) on the infinite lattice at Tc.

    McCoy & Wu, *The Two-Dimensional Ising Model* (1973), ch. XI (Toeplitz determinant
    of the diagonal correlation evaluated at Tc); Au-Yang & Perk. Values: n = 0 -> 1,
    n = 1 -> 2/pi; for large n -> A (sqrt(2) n)^(-1/4) (1 - 1/(64 n^2) + ...).

    Parameters
    ----------
    n : int or array_like of int
        Diagonal separation, n >= 0 (Euclidean distance sqrt(2) n lattice spacings).

    Returns
    -------
    ndarray or float
        The correlation (dimensionless), same shape as ``n``.
    """
    n = np.asarray(n)
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise IsingScaleError(f"diagonal separation must be an integer >= 0, got {n!r}")
    n = n.astype(np.int64)
    nmax = int(n.max(initial=0))
    k = np.arange(1, max(nmax, 1), dtype=float)
    a = np.log1p(-0.25 / k**2)
    # ln G(n) = n ln(2/pi) + sum_{k<n} k a_k - n sum_{k<n} a_k, by cumulative sums.
    s0 = np.concatenate([[0.0, 0.0], np.cumsum(a)])
    s1 = np.concatenate([[0.0, 0.0], np.cumsum(k * a)])
    log_g = n * np.log(2 / np.pi) + s1[n] - n * s0[n]
    return np.exp(log_g)[()]


def correlation_asymptote(r):
    """Large-distance critical correlation <s_0 s_r> ~ A r^(-1/4), A = 0.70338...

    Wu, McCoy, Tracy & Barouch, Phys. Rev. B 13, 316 (1976); A from
    :data:`isingscale.constants.CORRELATION_AMPLITUDE`.

    Parameters
    ----------
    r : float or array_like
        Euclidean distance in lattice spacings, r > 0.

    Returns
    -------
    ndarray or float
        A r^(-eta), eta = 1/4.
    """
    return (CORRELATION_AMPLITUDE * np.asarray(r, dtype=float) ** -ETA)[()]
