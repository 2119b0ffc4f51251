"""Error bars: block sums of per-sample averages, jackknife over blocks, and binning.

Every estimator in :mod:`isingscale.analysis` is a (possibly nonlinear) function of
ensemble means of per-sample quantities (lattice averages of spin products, m, m^2, ...).
Samples are streamed through a :class:`BlockAccumulator` that keeps one running sum per
block of consecutive samples, so memory does not grow with the number of samples. The
jackknife then re-evaluates the function with one block left out at a time, which carries
the error through products of averages (the G4c pair terms, chi, U4) and keeps the
autocorrelation inside a block (Efron & Stein 1981; Berg, *Markov Chain Monte Carlo
Simulations*, ch. 2.7).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

DEFAULT_BLOCKS: int = 32


def block_index(start: int, stop: int, n_samples: int, n_blocks: int) -> np.ndarray:
    """Block of each sample start..stop-1: block b holds samples [b n / B, (b + 1) n / B)."""
    return (np.arange(start, stop, dtype=np.int64) * n_blocks) // n_samples


class BlockAccumulator:
    """Running per-block sums of named per-sample arrays over ``n_samples`` samples."""

    def __init__(self, n_samples: int, n_blocks: int = DEFAULT_BLOCKS):
        if n_samples < 1:
            raise ValueError("BlockAccumulator needs at least one sample")
        self.n_samples = int(n_samples)
        self.n_blocks = int(max(1, min(n_blocks, n_samples)))
        self.sums: dict[str, np.ndarray] = {}
        self.counts = np.zeros(self.n_blocks, dtype=np.int64)
        self._seen = 0

    def add(self, start: int, values: Mapping[str, np.ndarray]) -> None:
        """Add samples start, start+1, ... whose per-sample values are ``values[name][i]``."""
        n = len(next(iter(values.values())))
        blocks = block_index(start, start + n, self.n_samples, self.n_blocks)
        edges = np.flatnonzero(np.diff(blocks)) + 1
        segments = np.split(np.arange(n), edges)
        for name, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            acc = self.sums.setdefault(name, np.zeros((self.n_blocks, *v.shape[1:])))
            for seg in segments:
                acc[blocks[seg[0]]] += v[seg].sum(axis=0)
        np.add.at(self.counts, blocks, 1)
        self._seen += n

    def merge(self, other: BlockAccumulator) -> None:
        """Add the sums of ``other`` (same n_samples and blocks), e.g. one chunk computed elsewhere.

        Merging per-chunk accumulators in sample order performs the same float additions as
        :meth:`add` on those chunks in that order, so the result is bitwise the same.
        """
        if (other.n_samples, other.n_blocks) != (self.n_samples, self.n_blocks):
            raise ValueError("merge: accumulators over different samples or blocks")
        for name, s in other.sums.items():
            acc = self.sums.setdefault(name, np.zeros_like(s))
            acc += s
        self.counts += other.counts
        self._seen += other._seen

    def replicas(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Means over all samples, and leave-one-block-out means (leading axis = block)."""
        if self._seen != self.n_samples:
            raise RuntimeError(f"accumulated {self._seen} samples, expected {self.n_samples}")
        full, loo = {}, {}
        for name, s in self.sums.items():
            total = s.sum(axis=0)
            full[name] = total / self.n_samples
            shape = (-1,) + (1,) * (s.ndim - 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                loo[name] = (total - s) / (self.n_samples - self.counts).reshape(shape)
        return full, loo


def jackknife(
    acc: BlockAccumulator, func: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Estimate and jackknife error of each output of ``func(means)``.

    ``func`` maps a dict of means to a dict of results and must broadcast over a leading
    replica axis. The estimate is ``func`` of the full means; the error is
    sqrt((B - 1)/B sum_b (f_b - mean f)^2) over the B leave-one-block-out replicas.
    Returns ``{name: (estimate, error)}``; the error is nan with fewer than two blocks.
    """
    full, loo = acc.replicas()
    est = func(full)
    rep = func(loo)
    B = acc.n_blocks
    out = {}
    for name, value in est.items():
        value = np.asarray(value, dtype=np.float64)
        if B < 2:
            out[name] = (value, np.full_like(value, np.nan))
            continue
        r = np.asarray(rep[name], dtype=np.float64)
        err = np.sqrt((B - 1) / B * np.sum((r - r.mean(axis=0)) ** 2, axis=0))
        out[name] = (value, err)
    return out


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
