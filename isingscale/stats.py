"""Error bars for autocorrelated Monte Carlo series, possibly from several Markov chains.

Naive standard errors are too small for correlated samples. Here the variance of a mean
is inflated by twice the integrated autocorrelation time,

    SE = sqrt(2 tau_int var(x) / n),   tau_int = 1/2 + sum_{t >= 1} rho(t),

with the sum cut at Sokal's automatic window (the smallest W with W >= c tau_int(W),
c = 5; Sokal, "Monte Carlo methods in statistical mechanics", Cargèse lectures 1996,
section 3). With ``chain`` given, rho(t) is pooled over the chains: pairs are taken only
within a chain, around the common mean. Nonlinear estimators (the Binder cumulant) use the
block jackknife of :mod:`isingscale.analysis.errors`, the package's one jackknife.
"""

from __future__ import annotations

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


def tau_int(x: np.ndarray, *, chain: np.ndarray | None = None, c: float = 5.0) -> float:
    """Integrated autocorrelation time tau_int = 1/2 + sum_t rho(t), Sokal's window c.

    In units of samples; 0.5 for independent samples. Fewer than 2 samples give 0.5.
    """
    if np.size(x) < 2:
        return 0.5
    rho = autocorrelation(x, chain=chain)
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, len(rho))
    ok = windows >= c * taus
    W = int(np.argmax(ok)) if ok.any() else len(taus) - 1
    return float(max(taus[W], 0.5))


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
