"""Statistical assertions for Monte Carlo tests: autocorrelation-aware standard errors.

Failure messages print the mean, SE, tau_int and the z-score, so a failing physics test
says by how much it failed.
"""

from __future__ import annotations

import numpy as np

from isingscale.stats import mean_error

SEEDS = (1, 2, 3, 5, 8)


def assert_within_sigma(
    x, expected: float, *, chain=None, n_sigma: float = 3.0, what: str = "mean"
) -> float:
    """Assert |mean(x) - expected| < n_sigma SE (SE from tau_int); return the z-score."""
    mean, se, tau = mean_error(np.asarray(x), chain=chain)
    z = (mean - expected) / se
    assert abs(z) < n_sigma, (
        f"{what}: {mean:.6f} ± {se:.6f} (tau_int {tau:.2f}) vs {expected:.6f}: z = {z:+.2f}"
    )
    return z


def assert_samples_agree(
    x, y, *, chain_x=None, chain_y=None, n_sigma: float = 3.0, what: str = "mean"
) -> float:
    """Assert two independent series have equal means within n_sigma combined SE."""
    mx, sx, tx = mean_error(np.asarray(x), chain=chain_x)
    my, sy, ty = mean_error(np.asarray(y), chain=chain_y)
    z = (mx - my) / np.hypot(sx, sy)
    assert abs(z) < n_sigma, (
        f"{what}: {mx:.6f} ± {sx:.6f} (tau {tx:.2f}) vs {my:.6f} ± {sy:.6f} (tau {ty:.2f}): "
        f"z = {z:+.2f}"
    )
    return z
