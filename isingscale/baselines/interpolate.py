"""Deterministic super-resolution baselines: nearest, Fourier (band-limited) and bicubic.

Each follows the baseline convention ``fn(coarse, kind, N, *, generator) -> (B, N, N) int8``
(see :mod:`isingscale.baselines.inputs`): interpolate the coarse input to N x N on the
torus, then take spins = sign(field), sign(0) = +1. Block spins are treated as a ±1 field.
The coarse sites are placed where each coarse-graining convention puts them (kind
"fourier": fine site i f; kind "block": block centre i f + (f - 1) / 2), so an interpolant
passes through the input values there. ``generator`` is accepted and unused.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from ..skild.sampler import to_spins
from .inputs import check_coarse, integer_factor, site_offset

# ----------------------------------------------------------------------------
# Nearest neighbour (block replication).


def nearest(coarse, kind: str, N: int, *, generator=None) -> np.ndarray:
    """Each fine site takes the sign of its nearest coarse site; integer f = N / n only.

    Block input: plain f x f replication, so ``block_spins(nearest(x, "block", N), f) == x``.
    Fourier input: the same blocks shifted by floor(f / 2) sites, centred on the sample points.
    """
    x = check_coarse(coarse, kind, N)
    f = integer_factor(x.shape[-1], N, "nearest-neighbour upsampling")
    s = np.repeat(np.repeat(to_spins(x), f, axis=1), f, axis=2)
    return s if kind == "block" else np.roll(s, -(f // 2), axis=(1, 2))


# ----------------------------------------------------------------------------
# Band-limited (Fourier) interpolation.


def _pad_axis(X: np.ndarray, N: int, axis: int, offset: float) -> np.ndarray:
    """Zero-pad one axis of an unnormalised spectrum from n to N modes, shifted by ``offset``.

    An even n's Nyquist coefficient is split in halves between +n/2 and -n/2, the
    real interpolant cos(pi u) of that mode; the result is scaled by N / n so the
    interpolant passes through the input.
    """
    X = np.moveaxis(X, axis, -1)
    n = X.shape[-1]
    q = np.rint(np.fft.fftfreq(n, 1 / n)).astype(int)
    Y = np.zeros(X.shape[:-1] + (N,), dtype=complex)
    inner = np.abs(q) < n / 2
    Y[..., q[inner] % N] = X[..., inner]
    if n % 2 == 0:
        Y[..., n // 2] += X[..., n // 2] / 2
        Y[..., N - n // 2] += X[..., n // 2] / 2
    k = np.fft.fftfreq(N, 1 / N)
    Y *= (N / n) * np.exp(-2j * np.pi * k * offset / N)
    return np.moveaxis(Y, -1, axis)


def fourier_interpolate(coarse: np.ndarray, N: int, *, offset: float = 0.0) -> np.ndarray:
    """Band-limited periodic interpolation (B, n, n) -> (B, N, N) float64, any N > n.

    The trigonometric interpolant of the coarse samples (orthonormal coefficients × N / n,
    high modes zero) evaluated at fine site m, which sits at coarse coordinate
    (m - offset) n / N. With offset 0 and integer f = N / n, ``out[:, ::f, ::f]`` equals the
    input; applied to ``fourier_truncate(x, n)`` it returns the ideal low-pass of x.
    """
    X = np.fft.fft2(np.asarray(coarse, dtype=np.float64))
    for axis in (-2, -1):
        X = _pad_axis(X, N, axis, offset)
    return np.fft.ifft2(X).real


def fourier(coarse, kind: str, N: int, *, generator=None) -> np.ndarray:
    """Spins = sign of the band-limited interpolant (:func:`fourier_interpolate`); any N > n."""
    x = check_coarse(coarse, kind, N)
    return to_spins(fourier_interpolate(x, N, offset=site_offset(kind, N / x.shape[-1])))


# ----------------------------------------------------------------------------
# Periodic cubic-spline interpolation.


def cubic_matrix(n: int, N: int, *, offset: float = 0.0) -> np.ndarray:
    """(N, n) matrix A of periodic cubic-spline interpolation along one axis: y = A x.

    Row m evaluates the interpolating cubic B-spline (scipy ``order=3``,
    ``mode="grid-wrap"``) at coarse coordinate (m - offset) n / N.
    """
    u = (np.arange(N) - offset) * n / N
    eye = np.eye(n)
    cols = [map_coordinates(eye[i], u[None], order=3, mode="grid-wrap") for i in range(n)]
    return np.stack(cols, axis=1)


def bicubic_interpolate(coarse: np.ndarray, N: int, *, offset: float = 0.0) -> np.ndarray:
    """Periodic bicubic-spline interpolation (B, n, n) -> (B, N, N) float64, any N > n."""
    x = np.asarray(coarse, dtype=np.float64)
    A = cubic_matrix(x.shape[-1], N, offset=offset)
    return np.einsum("mi,bij,nj->bmn", A, x, A, optimize=True)


def bicubic(coarse, kind: str, N: int, *, generator=None) -> np.ndarray:
    """Spins = sign of the periodic bicubic-spline interpolant; any N > n."""
    x = check_coarse(coarse, kind, N)
    return to_spins(bicubic_interpolate(x, N, offset=site_offset(kind, N / x.shape[-1])))
