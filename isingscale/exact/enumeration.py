"""Exact thermodynamics of small periodic lattices by enumerating all 2^(L^2) states.

An oracle independent of every formula in this package: the joint density of states
g(E, M) of the L x L torus (L <= 4, at most 65,536 states) is counted once and then
reweighted to any temperature.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache

import numpy as np

from ..errors import IsingScaleError

__all__ = ["TorusEnumeration", "enumerate_torus"]

MAX_ENUMERATED_L = 4


@cache
def _density_of_states(L: int):
    """Distinct (bond sum, magnetisation) pairs and their multiplicities for the L x L torus.

    Bond sum B = sum_i s_i (s_{i+x} + s_{i+y}) over the 2 L^2 bonds, so E = -J B.
    """
    N = L * L
    states = np.arange(2**N, dtype=np.int64)
    bits = (states[:, None] >> np.arange(N)) & 1
    spins = (2 * bits - 1).astype(np.int8).reshape(-1, L, L)
    bonds = spins * (np.roll(spins, 1, axis=1) + np.roll(spins, 1, axis=2))
    B = bonds.reshape(-1, N).sum(axis=1, dtype=np.int64)
    M = spins.reshape(-1, N).sum(axis=1, dtype=np.int64)
    pairs, counts = np.unique(np.stack([B, M], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], counts


@dataclass(frozen=True)
class TorusEnumeration:
    """Exact averages on the L x L torus, per site (arrays broadcast over T).

    Attributes: ``energy`` <E>/N, ``specific_heat`` (<E^2> - <E>^2)/(N T^2),
    ``abs_magnetization`` <|m|>, ``m2`` <m^2>, ``m4`` <m^4> (m = M/N),
    ``log_partition`` ln Z, ``binder`` 1 - <m^4>/(3 <m^2>^2); also readable as
    ``result["energy"]``.
    """

    L: int
    T: np.ndarray
    energy: np.ndarray
    specific_heat: np.ndarray
    abs_magnetization: np.ndarray
    m2: np.ndarray
    m4: np.ndarray
    log_partition: np.ndarray

    @property
    def binder(self):
        """Binder cumulant U4 = 1 - <m^4> / (3 <m^2>^2)."""
        return 1.0 - self.m4 / (3.0 * self.m2**2)

    def __getitem__(self, key):
        if key == "binder":
            return self.binder
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


def enumerate_torus(L, T, J=1.0) -> TorusEnumeration:
    """Exact <E>/N, C/N, <|m|>, <m^2>, <m^4> on the L x L torus by summing all 2^(L^2) states.

    Z = sum_s exp(-H(s)/T), H = -J sum_<ij> s_i s_j over the 2 L^2 periodic bonds (for
    L = 2 every pair is joined by two bonds, as in Kaufman's formula). The density of
    states g(E, M) is counted once per L and cached.

    Parameters
    ----------
    L : int
        Linear size, 1 <= L <= 4.
    T : float or array_like
        Temperature (units of J / k_B), T > 0.
    J : float
        Coupling.

    Returns
    -------
    TorusEnumeration
        Fields with the shape of ``T`` (energy in units of J, specific heat in k_B).
    """
    if int(L) != L or not 1 <= int(L) <= MAX_ENUMERATED_L:
        raise IsingScaleError(
            f"enumeration needs an integer 1 <= L <= {MAX_ENUMERATED_L}, got {L!r}"
        )
    L = int(L)
    T = np.asarray(T, dtype=float)
    if np.any(~(T > 0)):
        raise IsingScaleError(f"temperature must be > 0, got {T!r}")
    B, M, g = _density_of_states(L)
    N = L * L
    K = (J / T)[..., None]
    # Boltzmann weights in log space, shifted by the largest exponent.
    logw = np.log(g) + K * B
    top = logw.max(axis=-1, keepdims=True)
    w = np.exp(logw - top)
    Z = w.sum(axis=-1)

    def mean(x):
        return (w * x).sum(axis=-1) / Z

    E = -J * B.astype(float)
    e_mean = mean(E)
    var_E = mean((E - e_mean[..., None]) ** 2)
    m = M / N
    return TorusEnumeration(
        L=L,
        T=T,
        energy=(e_mean / N)[()],
        specific_heat=(var_E / (N * T**2))[()],
        abs_magnetization=mean(np.abs(m))[()],
        m2=mean(m**2)[()],
        m4=mean(m**4)[()],
        log_partition=(np.log(Z) + top[..., 0])[()],
    )
