"""Kaufman's torus partition function against enumeration, finite differences and Onsager."""

import numpy as np
import pytest

from isingscale.errors import IsingScaleError
from isingscale.exact import (
    T_C,
    enumerate_torus,
    onsager_energy,
    torus_energy,
    torus_log_partition,
    torus_specific_heat,
)

TEMPS = np.array([0.3, 1.0, 2.0, T_C, 2.5, 3.0, 10.0])


@pytest.mark.parametrize("L", [2, 3, 4])
def test_kaufman_equals_enumeration(L):
    # L = 3 included: the four-term formula also holds for odd tori.
    exact = enumerate_torus(L, TEMPS)
    np.testing.assert_allclose(torus_log_partition(L, TEMPS), exact.log_partition, rtol=1e-13)
    np.testing.assert_allclose(torus_energy(L, TEMPS), exact.energy, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        torus_specific_heat(L, TEMPS), exact.specific_heat, rtol=1e-10, atol=1e-13
    )


def test_enumeration_limits():
    # Infinite T: independent spins, <m^2> = 1/N, <m^4> = 3/N^2 - 2/N^3, <E> = 0.
    N = 16
    hot = enumerate_torus(4, 1e9)
    assert abs(hot.energy) < 1e-8
    assert hot.m2 == pytest.approx(1 / N, rel=1e-8)
    assert hot.m4 == pytest.approx(3 / N**2 - 2 / N**3, rel=1e-8)
    cold = enumerate_torus(4, 0.05)
    assert cold.energy == pytest.approx(-2.0, abs=1e-12)
    assert cold.abs_magnetization == pytest.approx(1.0, abs=1e-12)
    assert cold["binder"] == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize("L", [16, 64])
@pytest.mark.parametrize("T", [1.5, T_C, 3.0])
def test_energy_is_derivative_of_log_partition(L, T):
    # 8th-order central difference in beta; u = -(1/L^2) d lnZ / d beta. Near Tc lnZ
    # varies on the scale d beta ~ 1/L, hence h ~ 0.01/L (truncation ~ (hL)^8).
    beta, h = 1 / T, 0.01 / L
    c = np.array([1 / 280, -4 / 105, 1 / 5, -4 / 5, 0, 4 / 5, -1 / 5, 4 / 105, -1 / 280])
    lnz = torus_log_partition(L, 1 / (beta + h * np.arange(-4, 5)))
    u_fd = -np.dot(c, lnz) / h / L**2
    assert torus_energy(L, T) == pytest.approx(u_fd, rel=1e-10)
    e = torus_energy(L, 1 / (beta + h * np.arange(-4, 5)))
    c_fd = -(beta**2) * np.dot(c, e) / h
    assert torus_specific_heat(L, T) == pytest.approx(c_fd, rel=1e-9)


def test_large_lattices_are_finite_and_converge_to_onsager():
    T = np.array([0.1, 2.0, T_C, 3.0, 100.0])
    for L in (512, 2048):
        for f in (torus_log_partition, torus_energy, torus_specific_heat):
            assert np.all(np.isfinite(f(L, T)))
    # Away from Tc the finite-size correction is exponentially small.
    off = np.array([2.0, 3.0])
    np.testing.assert_allclose(torus_energy(512, off), onsager_energy(off), atol=1e-13)


def test_energy_at_tc_has_one_over_L_correction():
    # Ferdinand & Fisher: u_L(Tc) = -sqrt 2 + a/L + O(1/L^2 ...); a = -0.6224...
    L = np.array([32, 64, 128, 256, 512])
    a = np.array([L_ * (torus_energy(L_, T_C) + np.sqrt(2)) for L_ in L])
    steps = np.abs(np.diff(a))
    assert np.all(np.diff(steps) < 0) and steps[-1] < 1e-4
    assert a[-1] == pytest.approx(-0.6224, abs=2e-4)
    assert np.all(torus_energy(L, T_C) < 0)


def test_specific_heat_peak_grows_logarithmically():
    # Ferdinand & Fisher: c_L(Tc) = (8/pi) K_c^2 ln L + const + O(ln L / L).
    b = 8 / np.pi * (1 / T_C) ** 2
    c = [torus_specific_heat(L, T_C) for L in (256, 512, 1024)]
    assert (c[2] - c[1]) / np.log(2) == pytest.approx(b, rel=2e-3)
    assert (c[1] - c[0]) / np.log(2) == pytest.approx(b, rel=4e-3)


def test_vectorised_and_validated():
    assert torus_energy(8, TEMPS).shape == TEMPS.shape
    assert np.ndim(torus_energy(8, T_C)) == 0
    with pytest.raises(IsingScaleError):
        torus_energy(1, T_C)
    with pytest.raises(IsingScaleError):
        torus_energy(8, -1.0)
    with pytest.raises(IsingScaleError):
        enumerate_torus(5, T_C)
