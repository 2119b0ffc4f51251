"""Conformal-field-theory spin correlators of the critical Ising model, torus and plane.

Di Francesco, Saleur & Zuber, "Critical Ising correlation functions in the plane and on
the torus", Nucl. Phys. B 290, 527 (1987); see also Di Francesco, Mathieu & Senechal,
*Conformal Field Theory* (1997), ch. 12. On a torus with periods (1, tau) the spin
2n-point function is a sum over the four spin structures nu of the square roots of the
Dirac (Ising^2) correlators in that spin structure::

    <s(w_1)...s(w_2n)> = sum_{nu=1}^{4} sqrt( 2^-n sum_eps |theta_nu(sum_i eps_i w_i / 2)|^2
                             prod_{i<j} |theta_1(w_ij) / theta_1'(0)|^(eps_i eps_j / 2) )
                         / sum_{nu=2}^{4} |theta_nu(0)|,

eps_i = +-1 with sum_i eps_i = 0. For 2n = 2 this is the DSZ two-point function
|theta_1'(0)/theta_1(w)|^(1/4) sum_nu |theta_nu(w/2)| / sum_nu |theta_nu(0)|; the
denominator is 2 |eta| Z_Ising(tau), Z_Ising = (|theta2| + |theta3| + |theta4|)/(2|eta|).
In the plane limit (all w -> 0) it becomes <s...s>^2 = 2^-n sum_eps prod |z_ij|^(eps_i eps_j/2).

Lattice normalisation: a lattice spin is A^(1/2) times the CFT field (A = 0.70338...,
so <s_0 s_r> -> A r^(-1/4) at 1 << r << L), and on the L x L torus w = (x + i y)/L,
tau = i, giving <s_1...s_2n>_lattice = A^n L^(-n/4) <s...s>_CFT(w).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from ..constants import CORRELATION_AMPLITUDE, ETA
from ..errors import IsingScaleError

__all__ = [
    "torus_spin_correlator",
    "torus_g2",
    "torus_g4c",
    "plane_g2",
    "plane_g4c",
    "plane_spin_correlator",
    "four_point_positions",
]

_TAU = 1j  # square torus
_NTERMS = 12  # theta series terms; q = e^{-pi}, |Im w| <= 1/2 after reduction: ~1e-40 tail


def _log_abs_theta(nu: int, w, tau=_TAU):
    """ln|theta_nu(w | tau)|, periods (1, tau), Im tau > 0; w complex array.

    Jacobi's series (DMS eq. 10.35 with z -> pi w) after reducing Im w to
    |Im w| <= Im tau / 2 with |theta(w + k tau)| = |theta(w)| e^{pi k^2 Im tau + 2 pi k Im w}.
    """
    w = np.asarray(w, dtype=complex)
    k = np.round(w.imag / tau.imag)
    w0 = w - k * tau
    shift = np.pi * k**2 * tau.imag + 2 * np.pi * k * w0.imag
    q = np.exp(1j * np.pi * tau)
    n = np.arange(_NTERMS).reshape(-1, *([1] * w0.ndim))
    if nu in (1, 2):
        h = n + 0.5
        sign = (-1.0) ** n if nu == 1 else 1.0
        trig = np.sin if nu == 1 else np.cos
        val = 2 * np.sum(sign * q ** (h**2) * trig(2 * np.pi * h * w0), axis=0)
    else:
        m = n[1:]
        sign = (-1.0) ** m if nu == 4 else 1.0
        val = 1 + 2 * np.sum(sign * q ** (m**2) * np.cos(2 * np.pi * m * w0), axis=0)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(val)) + shift


def _log_theta1_prime(tau=_TAU) -> float:
    """ln theta_1'(0) = ln(2 pi sum_n (-1)^n (2n+1) q^{(n+1/2)^2}) = ln(2 pi eta^3)."""
    n = np.arange(_NTERMS)
    q = np.exp(1j * np.pi * tau)
    series = np.sum((-1.0) ** n * (2 * n + 1) * q ** ((n + 0.5) ** 2))
    return float(np.log(np.abs(2 * np.pi * series)))


def _eps_configs(npts: int) -> np.ndarray:
    """All eps in {+1,-1}^npts with sum 0, shape (n_conf, npts)."""
    half = npts // 2
    conf = []
    for plus in combinations(range(npts), half):
        e = -np.ones(npts)
        e[list(plus)] = 1
        conf.append(e)
    return np.array(conf)


def _cft_torus_correlator(w, tau=_TAU):
    """<s(w_1)...s(w_2n)> on the torus (1, tau), unit CFT normalisation; w (..., 2n) complex."""
    npts = w.shape[-1]
    pairs = list(combinations(range(npts), 2))
    i, j = np.array(pairs).T
    log_t1 = _log_abs_theta(1, w[..., i] - w[..., j], tau) - _log_theta1_prime(tau)
    eps = _eps_configs(npts)
    # Cross-ratio part: sum_{i<j} eps_i eps_j / 2 ln|theta1(w_ij)/theta1'(0)| per eps config.
    with np.errstate(invalid="ignore"):
        cross = log_t1 @ (0.5 * eps[:, i] * eps[:, j]).T  # (..., n_conf)
    charge = (w @ eps.T) / 2  # (..., n_conf)
    total = 0.0
    for nu in (1, 2, 3, 4):
        terms = 2 * _log_abs_theta(nu, charge, tau) + cross
        top = np.max(terms, axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            log_sum = np.log(np.sum(np.exp(terms - top), axis=-1)) + top[..., 0]
        total = total + np.exp(0.5 * (log_sum - (npts // 2) * np.log(2.0)))
    norm = sum(np.exp(_log_abs_theta(nu, 0.0, tau)) for nu in (2, 3, 4))
    return total / norm


def torus_spin_correlator(points, L):
    """<s_1 ... s_2n> on the L x L torus at Tc, CFT (Di Francesco-Saleur-Zuber 1987).

    A^n L^(-n/4) sum_{nu=1}^4 sqrt(2^-n sum_eps |theta_nu(sum eps_i w_i/2)|^2
    prod_{i<j} |theta_1(w_ij)/theta_1'(0)|^(eps_i eps_j/2)) / sum_{nu=2}^4 |theta_nu(0)|,
    w = (x + i y)/L, tau = i; see the module docstring. Normalised so that
    <s_0 s_r> = A r^(-1/4) for 1 << r << L (A = CORRELATION_AMPLITUDE).

    Parameters
    ----------
    points : array_like, shape (..., 2n, 2)
        Positions (x, y) in lattice spacings (any reals; periodic mod L). 2n even, 2n >= 2.
    L : float
        Linear size of the torus in lattice spacings.

    Returns
    -------
    ndarray or float
        The (full, not connected) 2n-point function, shape ``points.shape[:-2]``;
        ``inf`` where two points coincide. Scaling-limit value: lattice corrections at
        distances of a few spacings are not included.
    """
    p = np.asarray(points, dtype=float)
    if p.ndim < 2 or p.shape[-1] != 2 or p.shape[-2] % 2 or p.shape[-2] < 2:
        raise IsingScaleError(f"points must have shape (..., 2n, 2), got {p.shape}")
    p = np.mod(p, L)
    w = (p[..., 0] + 1j * p[..., 1]) / L
    npair = p.shape[-2] // 2
    return (CORRELATION_AMPLITUDE**npair * L ** (-npair * ETA) * _cft_torus_correlator(w))[()]


def torus_g2(x, y, L):
    """<s_0 s_(x,y)> = A L^(-1/4) |th1'(0)/th1(w)|^(1/4) sum_nu |th_nu(w/2)| / sum_nu |th_nu(0)|.

    Two-point function on the L x L torus at Tc, sum over nu = 1..4 in the numerator and
    2..4 in the denominator.
    w = (x + i y)/L, tau = i (Di Francesco, Saleur & Zuber 1987); scaling form
    A L^(-1/4) F(r/L) with F -> (r/L)^(-1/4) as r/L -> 0.

    Parameters
    ----------
    x, y : array_like
        Separation in lattice spacings (broadcast together).
    L : float
        Linear size of the torus.

    Returns
    -------
    ndarray or float
        The two-point function (dimensionless; <s> = 0 on the finite torus, so it is also
        the connected one); ``inf`` at zero separation.
    """
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    pts = np.zeros(x.shape + (2, 2))
    pts[..., 1, 0] = x
    pts[..., 1, 1] = y
    return torus_spin_correlator(pts, L)


def four_point_positions(r, shape="square", aspect=2.0):
    """Corner positions (..., 4, 2) of the four spins used for G4c.

    ``"square"``: (0,0), (r,0), (0,r), (r,r); ``"collinear"``: (0,0), (r,0), (2r,0), (3r,0);
    ``"rectangle"``: (0,0), (r,0), (0,aspect r), (r,aspect r). Points are numbered 1..4 in
    this order.
    """
    r = np.asarray(r, dtype=float)
    if shape == "square":
        corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    elif shape == "collinear":
        corners = np.array([[0, 0], [1, 0], [2, 0], [3, 0]], dtype=float)
    elif shape == "rectangle":
        corners = np.array([[0, 0], [1, 0], [0, aspect], [1, aspect]], dtype=float)
    else:
        raise IsingScaleError(f"shape must be 'square', 'collinear' or 'rectangle', got {shape!r}")
    return r[..., None, None] * corners


def _connected(full, g2):
    """G4c = <1234> - <12><34> - <13><24> - <14><23> from a pair-correlator callable."""
    return full - g2(0, 1) * g2(2, 3) - g2(0, 2) * g2(1, 3) - g2(0, 3) * g2(1, 2)


def torus_g4c(r, L, shape="square", aspect=2.0):
    """Connected G4c = <1234> - <12><34> - <13><24> - <14><23> on the L x L torus at Tc.

    CFT (Di Francesco, Saleur & Zuber 1987) via :func:`torus_spin_correlator`.
    Points (see :func:`four_point_positions`): square (0,0),(r,0),(0,r),(r,r); collinear
    0, r, 2r, 3r along x; rectangle r x (aspect r). Lattice normalisation A^2 L^(-1/2).

    Parameters
    ----------
    r : array_like
        Size in lattice spacings, 0 < r < L.
    L : float
        Linear size of the torus.
    shape : {"square", "collinear", "rectangle"}
    aspect : float
        Height / width of the rectangle.

    Returns
    -------
    ndarray or float
        G4c (dimensionless), shape of ``r``; negative for the square.
    """
    pts = four_point_positions(r, shape, aspect)

    def g2(a, b):
        return torus_spin_correlator(pts[..., [a, b], :], L)

    return _connected(torus_spin_correlator(pts, L), g2)


def plane_spin_correlator(points):
    """<s_1...s_2n> in the plane at Tc: A^n [2^-n sum_eps prod_{i<j} |z_ij|^(eps_i eps_j/2)]^(1/2).

    Infinite-volume limit of :func:`torus_spin_correlator` (Di Francesco, Saleur & Zuber
    1987). For 2n = 4 this equals Belavin-Polyakov-Zamolodchikov's
    A^2 |z13 z24/(z12 z34 z14 z23)|^(1/4) (|1 + sqrt(1-x)| + |1 - sqrt(1-x)|)/2,
    x = z12 z34/(z13 z24).

    Parameters
    ----------
    points : array_like, shape (..., 2n, 2)
        Positions in lattice spacings.

    Returns
    -------
    ndarray or float
        The 2n-point function, shape ``points.shape[:-2]``.
    """
    p = np.asarray(points, dtype=float)
    npts = p.shape[-2]
    pairs = np.array(list(combinations(range(npts), 2)))
    d = p[..., pairs[:, 0], :] - p[..., pairs[:, 1], :]
    with np.errstate(divide="ignore"):
        log_r = 0.5 * np.log(np.sum(d**2, axis=-1))
    eps = _eps_configs(npts)
    terms = log_r @ (0.5 * eps[:, pairs[:, 0]] * eps[:, pairs[:, 1]]).T
    val = np.sqrt(np.sum(np.exp(terms), axis=-1) / 2 ** (npts // 2))
    return (CORRELATION_AMPLITUDE ** (npts // 2) * val)[()]


def plane_g2(r):
    """Plane two-point function at Tc, A r^(-1/4) (same as :func:`correlation_asymptote`)."""
    return (CORRELATION_AMPLITUDE * np.asarray(r, dtype=float) ** -ETA)[()]


def plane_g4c(r, shape="square", aspect=2.0):
    """Plane G4c at Tc; square: G4c = (2^(1/4) - 2 - 2^(-1/4)) A^2 r^(-1/2).

    L -> infinity limit of :func:`torus_g4c`, same corner conventions
    (:func:`four_point_positions`); computed from :func:`plane_spin_correlator`.

    Parameters
    ----------
    r : array_like
        Size in lattice spacings, r > 0.
    shape : {"square", "collinear", "rectangle"}
    aspect : float
        Height / width of the rectangle.

    Returns
    -------
    ndarray or float
        G4c (dimensionless), shape of ``r``; scales as r^(-1/2).
    """
    pts = four_point_positions(r, shape, aspect)

    def g2(a, b):
        return plane_spin_correlator(pts[..., [a, b], :])

    return _connected(plane_spin_correlator(pts), g2)
