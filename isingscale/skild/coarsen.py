"""Coarse-graining operators and the embedding of a coarse lattice into a fine spectrum.

Conventions (docs/design.md, "Coarse inputs"):

* **Fourier truncation** (the forward process's own operator). An N x N lattice goes to
  an n x n field, n = round(N / F), f = N / n. Coarse orthonormal coefficients are the
  fine ones on the low band divided by f:  x̂_n(q) = x̂_N(q) / f  for |q_x|, |q_y| < n/2
  (integer indices; for even n the coarse Nyquist lines are left at zero, so truncation
  and embedding are exact inverses on the band). In real space the field is the ideal
  low-pass of the fine lattice sampled on the coarse grid, so its values are on the
  fine lattice's ±1 amplitude scale (a constant lattice of +1 gives a field of +1).
* **Majority-rule block spins**, integer b: sign of each b x b block sum. Ties (even b)
  take the block's top-left spin: a fixed rule, reproducible, and odd under the global
  spin flip like the data.
* **Embedding** coarse -> fine (N = round(f n)): multiply the low band by f (orthonormal
  bookkeeping), whiten with S_N, and fill the empty high band with unit-variance white
  noise in whitened coordinates (zeros there would leave that band with variance b² < 1
  after the forward marginal).
* **Block-spin amplitude normalisation**: block spins are not a Fourier truncation; their
  spectrum relative to the truncated one depends on |q|. The transfer function
  g_b(|q|) = √(S_trunc(q) / S_block(q)) is measured on the training data for b = 2, 4, ...
  (coarse cycles per site), stored in the checkpoint, and applied to block inputs before
  embedding (constant beyond the measured range; log-interpolated in log b for other
  factors, with g_1 ≡ 1).
* **Start scale** of super-resolution by F: s* = log2 F + offset, where k_c(s*) is the
  coarse Nyquist. The offset is 0 for Fourier inputs, whose low band is exact, and
  ``BLOCK_S_OFFSET`` for block spins: the transfer function fixes their two-point
  amplitude, but near the coarse Nyquist majority-rule spins are sharper than Fourier
  modes, so those modes are noised further and regenerated.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..blocks import block_spins
from ..errors import IsingScaleError
from .process import Whitener
from .spectral import radial_average, radial_k

# ----------------------------------------------------------------------------
# Frequency bookkeeping.


def band_indices(n: int) -> np.ndarray:
    """Integer frequencies q of the coarse low band, |q| < n/2 (the Nyquist line excluded)."""
    h = (n + 1) // 2
    return np.arange(-(h - 1), h)


def coarse_size(L: int, factor: float, method: str = "fourier") -> int:
    """Coarse lattice size n for coarse-graining L by ``factor``: round(L / factor) for
    Fourier truncation; L / factor exactly for block spins (an integer factor dividing L)."""
    if factor <= 1:
        raise IsingScaleError(f"factor must be greater than 1, got {factor}")
    if method == "block":
        if abs(factor - round(factor)) > 1e-9 or L % round(factor):
            raise IsingScaleError(
                f"block spins need an integer factor dividing L={L}, got {factor:g}"
            )
        return L // int(round(factor))
    n = int(round(L / factor))
    if n < 2 or n >= L:
        raise IsingScaleError(f"factor {factor} turns L={L} into n={n}; need 2 <= n < L")
    return n


# ----------------------------------------------------------------------------
# Fourier truncation and embedding (ising-periodic: FFT; image-dct: DCT).


def fourier_truncate(
    x: np.ndarray | torch.Tensor, n: int, *, lattice: str = "ising-periodic"
) -> torch.Tensor:
    """(B, N, N) lattice -> (B, n, n) low-band field on the fine amplitude scale (module doc)."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).double()
    N = x.shape[-1]
    f = N / n
    if lattice == "image-dct":
        from .spectral import Basis

        basis = Basis(lattice)
        return basis.inverse(basis.forward(x)[..., :n, :n] / f).float()
    q = band_indices(n)
    X = torch.fft.fft2(x, norm="ortho")
    xc = torch.zeros(x.shape[:-2] + (n, n), dtype=X.dtype)
    xc[..., (q % n)[:, None], (q % n)[None, :]] = X[..., (q % N)[:, None], (q % N)[None, :]] / f
    return torch.fft.ifft2(xc, norm="ortho").real.float()


def low_band_mask(n: int, N: int, *, lattice: str = "ising-periodic") -> np.ndarray:
    """Boolean (N, N) mask of the fine modes that a coarse n x n lattice carries."""
    m = np.zeros((N, N), dtype=bool)
    if lattice == "image-dct":
        m[:n, :n] = True
    else:
        q = band_indices(n) % N
        m[q[:, None], q[None, :]] = True
    return m


def embed(
    x_coarse: torch.Tensor,
    N: int,
    whitener: Whitener,
    *,
    generator: torch.Generator | None = None,
    noise_fill: bool = True,
) -> torch.Tensor:
    """Coarse (B, n, n) field -> whitened fine (B, N, N): low band × f / √S_N, high band noise.

    With ``noise_fill=False`` the high band is zero (used to check that embedding inverts
    truncation exactly: ``fourier_truncate(color(embed(...)))`` returns the input).
    """
    x_coarse = x_coarse.double()
    n = x_coarse.shape[-1]
    if N <= n:
        raise IsingScaleError(f"output size N={N} must exceed the input size n={n}")
    f = N / n
    basis = whitener.basis
    lattice = basis.lattice
    mask = torch.as_tensor(low_band_mask(n, N, lattice=lattice))
    if lattice == "image-dct":
        Xn = basis.forward(x_coarse)
        X = torch.zeros(x_coarse.shape[:-2] + (N, N), dtype=Xn.dtype)
        X[..., :n, :n] = Xn * f
    else:
        q = band_indices(n)
        Xn = torch.fft.fft2(x_coarse, norm="ortho")
        X = torch.zeros(x_coarse.shape[:-2] + (N, N), dtype=Xn.dtype)
        X[..., (q % N)[:, None], (q % N)[None, :]] = Xn[..., (q % n)[:, None], (q % n)[None, :]] * f
    Y = X / torch.as_tensor(np.sqrt(whitener.S(N)))
    if noise_fill:
        z = torch.randn(x_coarse.shape[:-2] + (N, N), generator=generator, dtype=torch.float64)
        Y = torch.where(mask, Y, basis.forward(z))
    else:
        Y = torch.where(mask, Y, torch.zeros_like(Y))
    return basis.inverse(Y).float()


# ----------------------------------------------------------------------------
# Block-spin transfer function and start scale.

BLOCK_S_OFFSET = 1.0  # octaves added to s* for block-spin inputs (measured: data/README.md)


def start_offset(kind: str, s_offset: float | None = None) -> float:
    """The s* offset of a stage: `s_offset` if given, else 0 (Fourier) or BLOCK_S_OFFSET (block)."""
    if s_offset is not None:
        return float(s_offset)
    return BLOCK_S_OFFSET if kind == "block" else 0.0


def measure_block_transfer(spins: np.ndarray, b: int) -> dict:
    """g_b(|q|) = √(S_trunc / S_block) on the coarse grid, from fine ±1 lattices (B, L, L).

    Returns {"factor": b, "k": shell |q| (coarse cycles per site), "g": ..., "g0": zero mode}.
    Only modes inside the truncation band enter (the coarse Nyquist lines are empty).
    """
    spins = np.asarray(spins)
    n = spins.shape[-1] // b
    xb = torch.as_tensor(block_spins(spins, b)).double()
    xt = fourier_truncate(spins, n).double()
    Pb = (torch.fft.fft2(xb, norm="ortho").abs() ** 2).mean(0).numpy()
    Pt = (torch.fft.fft2(xt, norm="ortho").abs() ** 2).mean(0).numpy()
    band = np.zeros((n, n), dtype=bool)
    q = band_indices(n) % n
    band[q[:, None], q[None, :]] = True
    band[0, 0] = False
    ratio = np.where(band, Pt / np.maximum(Pb, 1e-12), np.nan)
    k = radial_k(n)
    # Shell average over band modes only (NaN outside the band).
    w = band.astype(float)
    ks, wsum = radial_average(w * k, "ising-periodic")[1], radial_average(w, "ising-periodic")[1]
    rs = radial_average(np.nan_to_num(ratio), "ising-periodic")[1]
    keep = wsum > 0
    return {
        "factor": int(b),
        "k": (ks[keep] / wsum[keep]).tolist(),
        "g": np.sqrt(rs[keep] / wsum[keep]).tolist(),
        "g0": float(math.sqrt(Pt[0, 0] / max(Pb[0, 0], 1e-12))),
    }


def _transfer_on_grid(table: dict, n: int) -> np.ndarray:
    k = radial_k(n)
    g = np.interp(k, table["k"], table["g"])  # constant beyond the measured range
    g[0, 0] = table["g0"]
    return g


def transfer_multiplier(tables: list[dict], factor: float, n: int) -> np.ndarray:
    """g(|q|) on the n x n coarse grid for any factor: measured, or log-interpolated in log b."""
    if not tables:
        raise IsingScaleError(
            "this checkpoint has no block-spin transfer function; use Fourier-coarsened input"
        )
    tables = sorted(tables, key=lambda t: t["factor"])
    logs = [np.zeros((n, n))] + [np.log(_transfer_on_grid(t, n)) for t in tables]
    lb = [0.0] + [math.log(t["factor"]) for t in tables]
    x = math.log(factor)
    if x >= lb[-1]:
        i = len(lb) - 2 if len(lb) > 2 else 0
    else:
        i = max(j for j in range(len(lb) - 1) if lb[j] <= x)
    t = (x - lb[i]) / (lb[i + 1] - lb[i])
    return np.exp(logs[i] + t * (logs[i + 1] - logs[i]))


def normalise_block_input(
    spins: np.ndarray | torch.Tensor, tables: list[dict], factor: float
) -> torch.Tensor:
    """Block-spin lattices (B, n, n) -> fields with the Fourier-truncated spectrum."""
    x = torch.as_tensor(np.asarray(spins), dtype=torch.float64)
    g = torch.as_tensor(transfer_multiplier(tables, factor, x.shape[-1]))
    return torch.fft.ifft2(torch.fft.fft2(x, norm="ortho") * g, norm="ortho").real.float()


# ----------------------------------------------------------------------------
# File-level API.


def lattice_energy(spins: np.ndarray) -> np.ndarray:
    """Energy per site -(1/L²) Σ_<ij> s_i s_j on the periodic lattice (J = 1), per sample."""
    s = np.asarray(spins, dtype=np.float64)
    return -(s * (np.roll(s, 1, -1) + np.roll(s, 1, -2))).mean(axis=(-2, -1))


def coarsen(
    source,
    *,
    factor: float,
    method: str = "fourier",
    out=None,
    overwrite: bool = False,
    batch: int = 1024,
) -> Path | np.ndarray:
    """Coarse-grain every lattice of a lattice source by `factor`.

    source: any lattice source :func:`isingscale.lattices.open_lattices` reads (an ensemble
    file, ``FILE.h5:/dataset``, ``.npy``, ``.npz``, a PNG folder, a numpy / torch / xarray
    array (n, L, L), or a :class:`~isingscale.lattices.Lattices` opened with ``values`` /
    ``T`` / ``binarize``); it must read as ±1 spins.
    method="fourier": n = round(L / factor), a float field (low-band field on the fine
    amplitude scale, see the module docstring). method="block": integer factor dividing L,
    majority rule, ±1 spins.

    out: an ensemble file (kind=coarse: ``field``, or ``spins`` with energy and
    magnetization; attributes record method, factor, source, source_L, T, J, the
    convention and the input's provenance: file, dataset, sha256) -> returns its path.
    None: nothing is written -> returns the coarse lattices, float32 (N, n, n) for
    "fourier", int8 (N, n, n) for "block".
    """
    from ..io import ensemble_writer
    from ..lattices import open_lattices

    if method not in ("fourier", "block"):
        raise IsingScaleError(f"unknown coarsening method {method!r}; expected fourier or block")
    lat = open_lattices(source)
    lat.check_spins()
    L = lat.L
    n = coarse_size(L, factor, method)
    new_attrs = {
        "method": method,
        "factor": float(factor),
        "source": lat.spec or lat.source,
        "source_L": L,
        "convention": COARSE_CONVENTIONS[method],
        "T": lat.attrs["T"],
        "J": lat.attrs["J"],
        "input": lat.provenance(sha256=out is not None),
    }
    with ensemble_writer(out, L=n, kind="coarse", attrs=new_attrs, overwrite=overwrite) as w:
        for start in range(0, lat.n_samples, batch):
            spins = lat.read(start, start + batch)
            if method == "fourier":
                w.append(field=fourier_truncate(spins.astype(np.float64), n).numpy())
            else:
                sb = block_spins(spins, int(round(factor)))
                w.append(sb, energy=lattice_energy(sb), magnetization=sb.mean(axis=(-2, -1)))
    if out is None:
        return w.arrays()["field" if method == "fourier" else "spins"]
    return Path(out)


COARSE_CONVENTIONS = {
    "fourier": "field = ideal low-pass of the fine lattice (|q| < n/2) sampled on the coarse "
    "grid; orthonormal coarse coefficients = fine / (L/n); values on the fine +-1 scale",
    "block": "majority rule on b x b blocks; ties take the block's top-left spin",
}
