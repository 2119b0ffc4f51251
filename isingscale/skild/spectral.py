"""Orthonormal spectral bases and the data spectrum S(k) (docs/design.md, "Spectrum").

Two bases, both orthonormal so that Parseval holds and white noise stays white:

* ``ising-periodic``: the 2-D FFT with ``norm="ortho"`` (periodic lattices). Frequencies
  k = (k_x, k_y) in cycles per site, k_i in [-1/2, 1/2).
* ``image-dct``: the 2-D DCT-II, orthonormal (reflecting edges). Mode i has k_i = i / (2L).

Every operator SKILD needs is *diagonal* in k with a real multiplier m(|k|) (whitening,
the schedule a_s(k), noise shaping), so the code works with real fields and applies
multipliers with :meth:`Basis.multiply`; the zero mode gets the effective radius
|k|_0 = 1 / (2L) (docs/design.md, "Spectrum").

The spectrum S(k) = E|x̂(k)|² is estimated from data, radially averaged in shells of
width 1/L, floored away from zero, and fitted by a power law A |k|^(-p) over the lowest
shells; the fit extrapolates S below the smallest measured |k| so that a spectrum measured
at L serves lattices of any size N. The zero mode is treated apart: S_N(0) = c_0 A |k|_0^(-p)
with c_0 measured at the training size (for critical Ising S(0) = L² <m²> ~ L^(2-η),
which is exactly this form with p = 2 - η).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..errors import IsingScaleError

LATTICE_TYPES = ("ising-periodic", "image-dct")
K_NYQUIST = 0.5  # cycles per site


# ----------------------------------------------------------------------------
# Bases.


def radial_k(N: int, lattice: str = "ising-periodic") -> np.ndarray:
    """|k| in cycles per site on the N x N grid of the basis, zero mode set to 1/(2N)."""
    if lattice == "ising-periodic":
        k1 = np.fft.fftfreq(N)
    elif lattice == "image-dct":
        k1 = np.arange(N) / (2.0 * N)
    else:
        raise IsingScaleError(f"unknown lattice type {lattice!r}; expected one of {LATTICE_TYPES}")
    k = np.hypot(k1[:, None], k1[None, :])
    k[0, 0] = 1.0 / (2.0 * N)
    return k


def _dct_matrix(N: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix C (C @ C.T = I); coefficients are C x C^T."""
    n = torch.arange(N, dtype=torch.float64)
    C = torch.cos(math.pi * (n[None, :] + 0.5) * n[:, None] / N) * math.sqrt(2.0 / N)
    C[0] /= math.sqrt(2.0)
    return C.to(dtype=dtype, device=device)


class Basis:
    """Orthonormal basis on N x N fields of one lattice type.

    ``multiply(x, m)`` applies the real, even multiplier m(k) (shape (N, N) or
    (B, N, N)) to real fields x of shape (..., N, N) and returns a real field.
    """

    def __init__(self, lattice: str):
        if lattice not in LATTICE_TYPES:
            raise IsingScaleError(
                f"unknown lattice type {lattice!r}; expected one of {LATTICE_TYPES}"
            )
        self.lattice = lattice
        self._dct: dict[tuple, torch.Tensor] = {}

    def _C(self, N: int, x: torch.Tensor) -> torch.Tensor:
        key = (N, x.dtype, x.device)
        if key not in self._dct:
            self._dct[key] = _dct_matrix(N, dtype=x.dtype, device=x.device)
        return self._dct[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Orthonormal coefficients x̂(k) (complex for the FFT, real for the DCT)."""
        if self.lattice == "ising-periodic":
            return torch.fft.fft2(x, norm="ortho")
        C = self._C(x.shape[-1], x)
        return C @ x @ C.T

    def inverse(self, xh: torch.Tensor) -> torch.Tensor:
        if self.lattice == "ising-periodic":
            return torch.fft.ifft2(xh, norm="ortho").real
        C = self._C(xh.shape[-1], xh)
        return C.T @ xh @ C

    def multiply(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.inverse(self.forward(x) * m.to(x.dtype))

    def k(self, N: int) -> np.ndarray:
        return radial_k(N, self.lattice)


# ----------------------------------------------------------------------------
# Spectrum estimation, fit and extrapolation.


@dataclass
class Spectrum:
    """Radially averaged data spectrum S(|k|) with a power-law tail for small |k|.

    k_shell, S_shell: measured shells (cycles per site), excluding the zero mode.
    A, p: S ≈ A |k|^(-p) fitted over the lowest shells; used below min(k_shell).
    c0: zero-mode factor, S_N(0) = c0 * A * (1/(2N))^(-p).
    L: lattice size the spectrum was measured at. floor: lower bound on S.
    """

    lattice: str
    L: int
    k_shell: list[float]
    S_shell: list[float]
    A: float
    p: float
    c0: float
    floor: float
    n_samples: int = 0
    extra: dict = field(default_factory=dict)

    def __call__(self, N: int) -> np.ndarray:
        """S(k) on the N x N grid of the basis (float64, strictly positive)."""
        k = radial_k(N, self.lattice)
        lk, lks = np.log(k), np.log(np.asarray(self.k_shell))
        lS = np.interp(lk, lks, np.log(np.asarray(self.S_shell)))
        # Below the lowest shell: the power law, joined continuously to the lowest shell.
        k_lo, S_lo = self.k_shell[0], self.S_shell[0]
        low = k < k_lo
        lS[low] = math.log(S_lo) - self.p * (lk[low] - math.log(k_lo))
        S = np.exp(lS)
        S[0, 0] = self.c0 * self.A * (1.0 / (2.0 * N)) ** (-self.p)
        return np.maximum(S, self.floor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Spectrum:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def power_spectrum(x: np.ndarray | torch.Tensor, lattice: str = "ising-periodic") -> np.ndarray:
    """Mode-resolved E|x̂(k)|² of fields x (n, N, N), averaged over the n samples."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    basis = Basis(lattice)
    P = torch.zeros(x.shape[-2:], dtype=torch.float64)
    for start in range(0, x.shape[0], 4096):
        P += (basis.forward(x[start : start + 4096]).abs() ** 2).sum(0)
    return (P / x.shape[0]).numpy()


def shells(N: int, lattice: str = "ising-periodic") -> np.ndarray:
    """Shell index round(|k| N) of each mode (0 for the zero mode only)."""
    k = radial_k(N, lattice)
    idx = np.rint(k * N).astype(int)
    idx[0, 0] = 0
    idx[(idx == 0) & (k > 1.0 / (2.0 * N))] = 1  # never share the zero mode's shell
    return idx


def radial_average(P: np.ndarray, lattice: str = "ising-periodic") -> tuple[np.ndarray, np.ndarray]:
    """(k_shell, P_shell): mean |k| and mean P in each shell of width 1/N, zero mode excluded."""
    N = P.shape[-1]
    k, idx = radial_k(N, lattice), shells(N, lattice)
    n = np.bincount(idx.ravel())
    ks = np.bincount(idx.ravel(), weights=k.ravel())
    Ps = np.bincount(idx.ravel(), weights=P.ravel())
    keep = (np.arange(len(n)) > 0) & (n > 0)
    return ks[keep] / n[keep], Ps[keep] / n[keep]


def estimate_spectrum(
    x: np.ndarray,
    *,
    lattice: str = "ising-periodic",
    fit_shells: int | None = None,
    floor_fraction: float = 1e-4,
) -> Spectrum:
    """Estimate S(k) from fields x (n, L, L): radial average, power-law fit, zero mode.

    The power law is fitted (least squares in log-log) over shells 1 .. fit_shells
    (default max(3, L // 8), the long-wavelength range where critical Ising follows
    |k|^-(2-η)); S is floored at floor_fraction times its largest shell value.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1] != x.shape[2] or x.shape[0] < 1:
        raise IsingScaleError(f"spectrum estimation needs fields of shape (n, L, L), got {x.shape}")
    L = x.shape[-1]
    P = power_spectrum(x, lattice)
    ks, Ss = radial_average(P, lattice)
    floor = float(floor_fraction * Ss.max())
    Ss = np.maximum(Ss, floor)
    m = min(len(ks), fit_shells or max(3, L // 8))
    slope, icept = np.polyfit(np.log(ks[:m]), np.log(Ss[:m]), 1)
    A, p = float(math.exp(icept)), float(-slope)
    c0 = float(max(P[0, 0], floor) / (A * (1.0 / (2.0 * L)) ** (-p)))
    return Spectrum(
        lattice=lattice,
        L=L,
        k_shell=ks.tolist(),
        S_shell=Ss.tolist(),
        A=A,
        p=p,
        c0=c0,
        floor=floor,
        n_samples=int(x.shape[0]),
    )


def power_law_spectrum(
    L: int, *, p: float = 1.75, A: float = 1.0, c0: float = 1.0, lattice="ising-periodic"
) -> Spectrum:
    """An exact power-law spectrum S = A |k|^(-p) (zero mode c0 A (1/2L)^(-p)), for tests."""
    ks = np.unique(np.round(radial_k(L, lattice)[radial_k(L, lattice) > 1.0 / (2 * L)], 12))
    return Spectrum(lattice, L, ks.tolist(), (A * ks ** (-p)).tolist(), A, p, c0, floor=0.0)
