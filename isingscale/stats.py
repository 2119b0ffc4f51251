"""Error bars for autocorrelated Monte Carlo series, possibly from several Markov chains.

Naive standard errors are too small for correlated samples. Here the variance of a mean
is inflated by twice the integrated autocorrelation time,

    SE = sqrt(2 tau_int var(x) / n),   tau_int = 1/2 + sum_{t >= 1} rho(t),

with the sum cut at Sokal's automatic window (the smallest W with W >= c tau_int(W),
c = 5; Sokal, "Monte Carlo methods in statistical mechanics", Cargèse lectures 1996,
section 3). With ``chain`` given, rho(t) is pooled over the chains: pairs are taken only
within a chain, around the common mean.

Nonlinear estimators (the Binder cumulant, the connected correlators of
:mod:`isingscale.analysis`) are functions of ensemble means of per-sample quantities.
Samples are streamed through a :class:`BlockAccumulator` that keeps one running sum per
block of consecutive samples, so memory does not grow with the number of samples; the
:func:`jackknife` then re-evaluates the function with one block left out at a time,
which carries the error through products of averages and keeps the autocorrelation
inside a block (Efron & Stein 1981; Berg, *Markov Chain Monte Carlo Simulations*,
ch. 2.7). This is the package's one jackknife.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def _split(x: np.ndarray, chain: np.ndarray | None) -> list[np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if chain is None:
        return [x]
    chain = np.asarray(chain)
    return [x[chain == c] for c in np.unique(chain)]


def autocorrelation(x: np.ndarray, *, chain: np.ndarray | None = None) -> np.ndarray:
    """Normalised autocorrelation rho(t), t = 0 .. n_max - 1, pooled over chains.

    Returns an array starting with rho(0) = 1; all-constant input gives rho = [1, 0, ...].
    """
    series = [s for s in _split(x, chain) if len(s)]
    mu = np.concatenate(series).mean()
    n_max = max(len(s) for s in series)
    num = np.zeros(n_max)
    pairs = np.zeros(n_max)
    for s in series:
        n = len(s)
        size = 1 << int(2 * n - 1).bit_length()
        f = np.fft.rfft(s - mu, size)
        num[:n] += np.fft.irfft(f * np.conj(f), size)[:n]
        pairs[:n] += np.arange(n, 0, -1)
    cov = num / np.maximum(pairs, 1)
    if cov[0] <= 0:
        rho = np.zeros(n_max)
        rho[0] = 1.0
        return rho
    return cov / cov[0]


def tau_int(
    x: np.ndarray, *, chain: np.ndarray | None = None, c: float = 5.0, n_mean: int | None = None
) -> float:
    """Integrated autocorrelation time tau_int = 1/2 + sum_t rho(t), Sokal's window c.

    In units of samples; 0.5 for independent samples. Fewer than 2 samples give 0.5.
    The autocorrelations are measured about an estimated mean, which biases each rho(t)
    low by about 2 tau_int / n; the sum up to the window W is corrected for it,
    tau_int (1 + (2W + 1) / n) (U. Wolff, Comput. Phys. Commun. 156, 143 (2004)), with n
    the samples behind that mean: ``n_mean`` when the caller subtracted means of smaller
    groups itself (default: all of x). The correction matters for short series (n of a
    few tens of tau_int) and vanishes for long ones.
    """
    if np.size(x) < 2:
        return 0.5
    rho = autocorrelation(x, chain=chain)
    if len(rho) < 2:  # every chain holds a single sample
        return 0.5
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, len(rho))
    ok = windows >= c * taus
    W = int(np.argmax(ok)) if ok.any() else len(taus) - 1
    n = int(n_mean or np.size(x))
    return float(max(taus[W] * (1 + (2 * (W + 1) + 1) / n), 0.5))


def mean_error(x: np.ndarray, *, chain: np.ndarray | None = None) -> tuple[float, float, float]:
    """Mean of ``x`` with its autocorrelation-aware standard error.

    Returns ``(mean, se, tau_int)``; se = sqrt(2 tau_int var / n). One sample gives se = nan.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return (float(x.mean()) if x.size else float("nan")), float("nan"), 0.5
    tau = tau_int(x, chain=chain)
    se = np.sqrt(2.0 * tau * x.var(ddof=1) / x.size)
    return float(x.mean()), float(se), tau


# --------------------------------------------------------------------------------------
# Block jackknife of functions of means.

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


def binder(m2, m4) -> np.ndarray:
    """Binder cumulant U4 = 1 - <m^4> / (3 <m^2>^2) from the means of m^2 and m^4.

    Broadcasts over a leading replica axis (jackknife-ready); nan where <m^2> = 0.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.asarray(m4) / (3.0 * np.asarray(m2) ** 2)
