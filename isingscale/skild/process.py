"""The SKILD forward process: schedule a_s(k), marginals, loss (docs/design.md, "SKILD").

Whitened coordinates y(k) = x̂(k) / √S(k). Forward marginal, per frequency::

    y_s(k) = a_s(k) y_0(k) + b_s(k) ε(k),   b_s = √(1 - a_s²),   ε ~ N(0, I)

i.e. a DDPM with a frequency-dependent ᾱ_s(k) = a_s(k)². The scale coordinate s counts
octaves removed: the cutoff k_c(s) = k_Nyq 2^(-s) (cycles per site) and

    a_s(k) = σ((log2 k_c(s) - log2|k|) / w) / σ((log2 k_c(0) - log2|k|) / w)

a logistic step of width w octaves, normalised so that a_0 ≡ 1 exactly (corner modes then
lose power at once, which is why the last reverse step adds noise too). The zero mode
uses |k|_0 = 1/(2N). s_max(N) is the smallest s with ᾱ ≤ alpha_bar_min for every mode.

Network parametrisation: ε̂ = b_s y_s + a_s v̂, with v̂ the network output. The first term
is the Bayes-optimal ε for Gaussian data (y_0 has unit variance per mode), so a network
that outputs zero is exactly optimal for a Gaussian random field; the residual a_s v̂
makes the network a v-predictor (v = a ε - b y_0): where a mode is pure noise (a = 0)
ε̂ = y_s is exact, and no sampler coefficient ever divides by a.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .spectral import K_NYQUIST, Basis, Spectrum, radial_k


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


# ----------------------------------------------------------------------------
# Scale schedule.


@dataclass(frozen=True)
class Schedule:
    """a_s(k) on N x N grids. width: logistic width in octaves; alpha_bar_min: ᾱ at s_max."""

    width: float = 0.4
    alpha_bar_min: float = 1e-4
    lattice: str = "ising-periodic"

    def log_a(self, s: np.ndarray | float, N: int) -> np.ndarray:
        """log a_s(k), shape (*s.shape, N, N), float64 (stable where a underflows)."""
        s = np.asarray(s, dtype=np.float64)[..., None, None]
        lk = np.log2(radial_k(N, self.lattice))
        lkc0 = math.log2(K_NYQUIST)
        return _log_sigmoid((lkc0 - s - lk) / self.width) - _log_sigmoid((lkc0 - lk) / self.width)

    def a(self, s, N: int) -> np.ndarray:
        return np.exp(self.log_a(s, N))

    def s_max(self, N: int) -> float:
        """Smallest s at which every mode, the zero mode included, has ᾱ ≤ alpha_bar_min."""
        # a is decreasing in s and largest at the zero mode |k| = 1/(2N).
        lo, hi = 0.0, math.log2(2.0 * N) + 40.0 * self.width
        target = 0.5 * math.log(self.alpha_bar_min)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self.log_a(mid, N).max() > target:
                lo = mid
            else:
                hi = mid
        return hi

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# ----------------------------------------------------------------------------
# Whitening and the forward marginal.


class Whitener:
    """y = x̂ / √S and back, on N x N fields, for one spectrum and basis (cached per N).

    ``spectrum`` is one :class:`Spectrum` (fields (B, N, N), the Ising lattices) or a list
    of one per channel (fields (B, C, N, N), images: each channel whitened by its own S).
    """

    def __init__(self, spectrum: Spectrum | Sequence[Spectrum]):
        self.spectrum = spectrum
        self.spectra = list(spectrum) if isinstance(spectrum, (list, tuple)) else [spectrum]
        self.basis = Basis(self.spectra[0].lattice)
        self._sqrtS: dict[tuple, torch.Tensor] = {}

    @property
    def channels(self) -> int | None:
        """Number of channels (None: single-channel fields without a channel axis)."""
        return len(self.spectra) if isinstance(self.spectrum, (list, tuple)) else None

    def S(self, N: int) -> np.ndarray:
        """S(k) on the N x N grid: (N, N), or (C, N, N) with per-channel spectra."""
        if self.channels is None:
            return self.spectrum(N)
        return np.stack([sp(N) for sp in self.spectra])

    def sqrt_S(self, N: int, device=None) -> torch.Tensor:
        key = (N, str(device))
        if key not in self._sqrtS:
            self._sqrtS[key] = torch.as_tensor(
                np.sqrt(self.S(N)), dtype=torch.float32, device=device
            )
        return self._sqrtS[key]

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        return self.basis.multiply(x, 1.0 / self.sqrt_S(x.shape[-1], x.device))

    def color(self, y: torch.Tensor) -> torch.Tensor:
        return self.basis.multiply(y, self.sqrt_S(y.shape[-1], y.device))


def coefficients(
    schedule: Schedule, s: torch.Tensor | float, N: int, device=None, *, channel_axis: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(a_s(k), b_s(k)) as float32 tensors of shape (*s.shape, N, N).

    channel_axis: fields are (B, C, N, N) (images); per-sample coefficients get a
    singleton channel axis, (B, 1, N, N), so every channel of a sample shares its s.
    """
    s_np = (
        s.detach().cpu().double().numpy() if torch.is_tensor(s) else np.asarray(s, dtype=np.float64)
    )
    a = schedule.a(s_np, N)
    b = np.sqrt(-np.expm1(2.0 * schedule.log_a(s_np, N)))
    if channel_axis and a.ndim == 3:
        a, b = a[:, None], b[:, None]
    return (
        torch.as_tensor(a, dtype=torch.float32, device=device),
        torch.as_tensor(b, dtype=torch.float32, device=device),
    )


def forward_marginal(
    basis: Basis, schedule: Schedule, y0: torch.Tensor, s: torch.Tensor | float, eps: torch.Tensor
) -> torch.Tensor:
    """y_s = a_s y_0 + b_s ε (per frequency), for whitened real fields y0, ε of shape (B, N, N)."""
    a, b = coefficients(schedule, s, y0.shape[-1], y0.device, channel_axis=y0.ndim == 4)
    return basis.multiply(y0, a) + basis.multiply(eps, b)


def eps_hat(
    basis: Basis, a: torch.Tensor, b: torch.Tensor, y_s: torch.Tensor, v_hat: torch.Tensor
) -> torch.Tensor:
    """ε̂ = b_s y_s + a_s v̂: the Gaussian (Bayes-optimal) part plus the network residual."""
    return basis.inverse(basis.forward(y_s) * b + basis.forward(v_hat) * a)


def net_eps(
    net, basis: Basis, schedule: Schedule, y_s: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """ε̂(y_s, s) for a network net(y_s, s) -> v̂ (any callable; zero output = Gaussian optimum)."""
    a, b = coefficients(schedule, s, y_s.shape[-1], y_s.device, channel_axis=y_s.ndim == 4)
    return eps_hat(basis, a, b, y_s, net(y_s, s))


# ----------------------------------------------------------------------------
# Loss.


def loss_weights(N: int, lattice: str = "ising-periodic") -> np.ndarray:
    """w(k) ∝ k_Nyq/|k|, mean 1: the lowest modes (the zero mode N-fold) weighted up.

    A pixel-space MSE gives the zero mode 1/N² of the loss although it carries the
    magnetisation; this weighting (scale-free, like the data) restores it.
    """
    w = K_NYQUIST / radial_k(N, lattice)
    return w / w.mean()


def skild_loss(
    net,
    basis: Basis,
    schedule: Schedule,
    y0: torch.Tensor,
    s: torch.Tensor,
    eps: torch.Tensor,
    w: torch.Tensor,
) -> torch.Tensor:
    """Weighted ε-prediction MSE, Σ_k w(k) |ε̂(k) - ε(k)|² / N², averaged over the batch."""
    a, b = coefficients(schedule, s, y0.shape[-1], y0.device, channel_axis=y0.ndim == 4)
    eps_k = basis.forward(eps)
    ys_k = basis.forward(y0) * a + eps_k * b
    v_hat = net(basis.inverse(ys_k), s)
    err = ys_k * b + basis.forward(v_hat.float()) * a - eps_k
    return (err.abs() ** 2 * w).mean()


def draw_scales(B: int, s_max: float, power: float, generator: torch.Generator) -> torch.Tensor:
    """B training scales s = s_max u^power, u ~ U(0, 1) (octaves; power 1: uniform on [0, s_max]).

    power > 1 puts more of the steps at small s, where the finest modes are decided: the
    density is ∝ s^(1/power - 1), P(s < x) = (x / s_max)^(1/power).
    """
    return torch.rand(B, generator=generator) ** power * s_max
