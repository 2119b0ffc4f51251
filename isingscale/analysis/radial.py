"""Radial bins of an L x L periodic map: every displacement (or wave vector) d, minimal
image, in bin rint(|d|) = 0 ... L/2; |d| > L/2 + 1/2 is dropped. Shared by the radial
two-point function and the radial power spectrum."""

from __future__ import annotations

import numpy as np


def radial_bins(L: int, *, half: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin rint(|d|) of every displacement (minimal image), with the bins' weights and mean |d|.

    Returns (bin (L, L) int, weight (L, L), mean |d| per bin (L/2 + 1,)); displacements with
    |d| > L/2 + 1/2 get bin L/2 + 1 (dropped). ``half``: only columns 0 ... L // 2 (an
    rfft2 half plane), each column that stands for itself and its mirror weighted 2, so that
    weighted means over the half plane equal plain means over the whole plane of a map with
    X(-d) = X(d).
    """
    d = np.minimum(np.arange(L), L - np.arange(L))
    cols = L // 2 + 1 if half else L
    dist = np.hypot(d[:, None], d[None, :cols])
    nb = L // 2 + 1
    b = np.minimum(np.rint(dist).astype(np.int64), nb)
    w = np.ones((L, cols))
    if half:
        x = np.arange(cols)
        w[:, (x > 0) & (2 * x != L)] = 2.0
    count = np.bincount(b.ravel(), weights=w.ravel(), minlength=nb + 1)[:nb]
    mean = np.bincount(b.ravel(), weights=(w * dist).ravel(), minlength=nb + 1)[:nb] / count
    return b, w, mean


def radial_mean(X: np.ndarray, *, half: bool = False) -> np.ndarray:
    """Weighted mean of X (..., L, L or L // 2 + 1) over each rint(|d|) bin: (..., L/2 + 1).

    One bincount per leading index, so the working memory is one map, not all of them.
    """
    L = X.shape[-2]
    b, w, _ = radial_bins(L, half=half)
    nb = L // 2 + 1
    b, w = b.ravel(), w.ravel()
    count = np.bincount(b, weights=w, minlength=nb + 1)[:nb]
    flat = X.reshape(-1, b.size)
    out = np.stack([np.bincount(b, weights=w * row, minlength=nb + 1)[:nb] for row in flat])
    return (out / count).reshape(*X.shape[:-2], nb)
