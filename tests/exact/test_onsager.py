"""Onsager, Yang and McCoy-Wu infinite-lattice references."""

import mpmath
import numpy as np
import pytest

from isingscale.constants import CORRELATION_AMPLITUDE
from isingscale.exact import (
    BINDER_CRITICAL,
    T_C,
    correlation_asymptote,
    diagonal_correlation,
    onsager_energy,
    onsager_magnetization,
    onsager_specific_heat,
    torus_energy,
)


def test_critical_energy_is_minus_sqrt2():
    assert onsager_energy(T_C) == pytest.approx(-np.sqrt(2), rel=1e-15)
    # Continuous through Tc (0 * log-divergence on either side).
    assert onsager_energy(T_C * (1 + 1e-9)) == pytest.approx(-np.sqrt(2), abs=1e-7)
    assert onsager_energy(T_C * (1 - 1e-9)) == pytest.approx(-np.sqrt(2), abs=1e-7)


def test_energy_limits_and_large_torus():
    assert onsager_energy(1e-2) == pytest.approx(-2.0, abs=1e-12)
    # High T: u = -2 tanh K + O(K^3) per site -> -2/T.
    assert onsager_energy(1e3) == pytest.approx(-2e-3, rel=1e-5)
    T = np.array([1.0, 2.0, 2.5, 4.0])
    np.testing.assert_allclose(onsager_energy(T), torus_energy(256, T), atol=1e-12)


@pytest.mark.parametrize("T", [0.8, 1.5, 2.2, 2.35, 3.0, 6.0])
def test_specific_heat_is_derivative_of_energy(T):
    h = 1e-4 * T
    du = (onsager_energy(T + h) - onsager_energy(T - h)) / (2 * h)
    assert onsager_specific_heat(T) == pytest.approx(du, rel=1e-6)


def test_specific_heat_diverges_at_tc():
    assert np.isinf(onsager_specific_heat(T_C))
    # c ~ -(8/pi) K_c^2 ln|1 - T/Tc| on both sides.
    b = 8 / np.pi / T_C**2
    for t in (1e-6, -1e-6):
        c1, c2 = onsager_specific_heat(T_C * (1 + t)), onsager_specific_heat(T_C * (1 + t / 10))
        assert (c2 - c1) / np.log(10) == pytest.approx(b, rel=1e-3)


def test_magnetization():
    T = np.array([1e-3, 1.0, 2.0, T_C, 2.5, 10.0])
    m = onsager_magnetization(T)
    assert m[0] == pytest.approx(1.0, abs=1e-12)
    assert np.all(m[3:] == 0.0) and np.all(np.diff(m[:4]) < 0)
    # Yang's value at T = 2 (J = 1): (1 - sinh(1)^-4)^(1/8) = 0.91131937...
    assert m[2] == pytest.approx((1 - np.sinh(1.0) ** -4) ** 0.125, rel=1e-15)
    # beta = 1/8: m ~ B (1 - T/Tc)^(1/8), B = 2^(5/16) ln(1 + sqrt2)^(1/8) (Yang).
    t = 1e-8
    B = 2 ** (5 / 16) * np.log1p(np.sqrt(2)) ** 0.125
    assert onsager_magnetization(T_C * (1 - t)) / t**0.125 == pytest.approx(B, rel=1e-6)


def test_diagonal_correlation_values():
    n = np.arange(0, 200)
    g = diagonal_correlation(n)
    assert g[0] == 1.0
    assert g[1] == pytest.approx(2 / np.pi, rel=1e-15)
    assert g[2] == pytest.approx((2 / np.pi) ** 2 / (3 / 4), rel=1e-15)
    assert np.all(np.diff(g) < 0)
    # Independent evaluation with mpmath at 30 digits.
    with mpmath.workdps(30):
        N = 137
        ref = (2 / mpmath.pi) ** N * mpmath.fprod(
            (1 - mpmath.mpf(1) / (4 * k * k)) ** (k - N) for k in range(1, N)
        )
    assert diagonal_correlation(N) == pytest.approx(float(ref), rel=1e-12)


def test_diagonal_correlation_approaches_asymptote():
    # Ratio to A (sqrt2 n)^(-1/4) is 1 - 1/(64 n^2) + O(n^-4) (checked numerically here).
    n = np.array([5, 10, 20, 40, 80, 1000])
    ratio = diagonal_correlation(n) / correlation_asymptote(np.sqrt(2) * n)
    dev = 1 - ratio
    assert np.all(dev > 0) and np.all(np.diff(dev) < 0)
    np.testing.assert_allclose(dev * 64 * n**2, 1.0, rtol=0.05)


def test_constants_re_exported():
    assert BINDER_CRITICAL == pytest.approx(0.61069, abs=1e-5)
    assert correlation_asymptote(1.0) == CORRELATION_AMPLITUDE
