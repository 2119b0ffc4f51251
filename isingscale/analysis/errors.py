"""Error bars: block sums of per-sample averages, jackknife over blocks, and binning.

Every estimator in :mod:`isingscale.analysis` is a (possibly nonlinear) function of
ensemble means of per-sample quantities (lattice averages of spin products, m, m^2, ...).
Samples are streamed through a :class:`BlockAccumulator` that keeps one running sum per
block of consecutive samples, so memory does not grow with the number of samples. The
jackknife then re-evaluates the function with one block left out at a time, which carries
the error through products of averages (the G4c pair terms, chi, U4) and keeps the
autocorrelation inside a block (Efron & Stein 1981; Berg, *Markov Chain Monte Carlo
Simulations*, ch. 2.7). The accumulator and the jackknife are defined once, in the
bottom layer :mod:`isingscale.stats` (the Monte Carlo driver uses them too).
"""

from __future__ import annotations

import numpy as np

from ..stats import DEFAULT_BLOCKS, BlockAccumulator, block_index, jackknife

__all__ = ["DEFAULT_BLOCKS", "BlockAccumulator", "block_index", "jackknife", "binning_error"]


def binning_error(x: np.ndarray, *, n_blocks: int = DEFAULT_BLOCKS, axis: int = 0) -> np.ndarray:
    """Standard error of the mean of ``x`` along ``axis`` from B block means (binning).

    sigma = std(block means, ddof=1) / sqrt(B); blocks of consecutive samples absorb
    autocorrelation shorter than a block. nan for fewer than two blocks.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    B = max(1, min(n_blocks, n))
    if B < 2:
        return np.full(x.shape[1:], np.nan)
    blocks = block_index(0, n, n, B)
    means = np.stack([x[blocks == b].mean(axis=0) for b in range(B)])
    return means.std(axis=0, ddof=1) / np.sqrt(B)
