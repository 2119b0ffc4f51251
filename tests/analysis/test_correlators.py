"""Every correlator against an independent brute-force loop over sites."""

import itertools

import numpy as np
import pytest

from isingscale.analysis.correlators import SHAPES, measure
from isingscale.analysis.ensemble import open_ensemble

from ._synthetic import random_spins, write_ensemble

# Corners (dx, dy) of each shape and orientation at size r.
CORNERS = {
    "square": [[(0, 0), (1, 0), (0, 1), (1, 1)]],
    "collinear": [[(0, 0), (1, 0), (2, 0), (3, 0)], [(0, 0), (0, 1), (0, 2), (0, 3)]],
    "rectangle": [[(0, 0), (1, 0), (0, 2), (1, 2)], [(0, 0), (2, 0), (0, 1), (2, 1)]],
}


def site_average(s, points):
    """(1/L^2) sum over all sites of the product of spins at site + each point (periodic)."""
    L = s.shape[0]
    total = 0.0
    for y in range(L):
        for x in range(L):
            p = 1
            for dx, dy in points:
                p *= int(s[(y + dy) % L, (x + dx) % L])
            total += p
    return total / (L * L)


def brute_g4c(spins, shape, r):
    """G4c averaged over orientations, each term an explicit sample mean of site averages."""
    values = []
    for corners in CORNERS[shape]:
        pts = [(cx * r, cy * r) for cx, cy in corners]

        def mean(sel, pts=pts):
            return np.mean([site_average(s, [pts[i] for i in sel]) for s in spins])

        g = mean((0, 1, 2, 3))
        g -= mean((0, 1)) * mean((2, 3)) + mean((0, 2)) * mean((1, 3)) + mean((0, 3)) * mean((1, 2))
        values.append(g)
    return np.mean(values)


def brute_g2(spins, r):
    m = np.mean([site_average(s, [(0, 0)]) for s in spins])
    cx = np.mean([site_average(s, [(0, 0), (r, 0)]) for s in spins])
    cy = np.mean([site_average(s, [(0, 0), (0, r)]) for s in spins])
    return 0.5 * (cx + cy) - m * m


def brute_g2_radial(spins, b):
    L = spins.shape[-1]
    m = np.mean([site_average(s, [(0, 0)]) for s in spins])
    vals = []
    for dx, dy in itertools.product(range(L), repeat=2):
        d = np.hypot(min(dx, L - dx), min(dy, L - dy))
        if round(d) == b:
            vals.append(np.mean([site_average(s, [(0, 0), (dx, dy)]) for s in spins]))
    return np.mean(vals) - m * m


@pytest.fixture(params=[(4, 0), (5, 1), (7, 2), (8, 3)], ids=lambda p: f"L{p[0]}")
def case(request, tmp_path):
    L, seed = request.param
    # Biased spins so that <m> != 0 and every pair term matters.
    rng = np.random.default_rng(seed)
    spins = np.where(rng.random((6, L, L)) < 0.35, -1, 1).astype(np.int8)
    path = write_ensemble(tmp_path / "e.h5", spins)
    return spins, measure(open_ensemble(path, chunks=4), shapes=SHAPES, n_blocks=3)


def test_g2_axis_and_radial_equal_brute_force(case):
    spins, res = case
    for r in res["r"].values:
        assert res["G2"].sel(r=r) == pytest.approx(brute_g2(spins, r), abs=1e-12)
        assert res["G2_radial"].sel(r=r) == pytest.approx(brute_g2_radial(spins, r), abs=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_g4c_equals_brute_force(case, shape):
    spins, res = case
    for r in res["r"].values:
        assert res[f"G4c_{shape}"].sel(r=r) == pytest.approx(brute_g4c(spins, shape, r), abs=1e-12)


@pytest.mark.parametrize("L", [6, 64, 70])
def test_kernel_rows_equal_brute_force(L):
    """Every row of the bit-packed kernel (one and two words per row, a partial last word)."""
    from isingscale.analysis import kernels as K

    spins = random_spins(2, L, seed=5)
    out, sums = K.lattice_products(spins, L // 2, True, True, True, True)
    np.testing.assert_array_equal(sums, spins.sum(axis=(1, 2)))
    pts = {
        K.P4_SQUARE: [(0, 0), (1, 0), (0, 1), (1, 1)],
        K.C_X: [(0, 0), (1, 0)],
        K.C_Y: [(0, 0), (0, 1)],
        K.C_DIAG: [(0, 0), (1, 1)],
        K.C_ANTI: [(1, 0), (0, 1)],
        K.P4_COLLINEAR_X: [(0, 0), (1, 0), (2, 0), (3, 0)],
        K.P4_COLLINEAR_Y: [(0, 0), (0, 1), (0, 2), (0, 3)],
        K.P4_RECT_X: [(0, 0), (1, 0), (0, 2), (1, 2)],
        K.P4_RECT_Y: [(0, 0), (2, 0), (0, 1), (2, 1)],
    }
    rs = range(4) if L < 10 else (0, 1, 7, L // 2 - 1, L // 2)
    for row, p in pts.items():
        for r in rs:
            for i, s in enumerate(spins):
                prod = np.ones((L, L), dtype=np.int64)
                for dx, dy in p:
                    prod *= np.roll(s, (-dy * r, -dx * r), axis=(0, 1))
                assert out[i, row, r] == pytest.approx(prod.mean(), abs=1e-14), (row, r)
    only_square, _ = K.lattice_products(spins, L // 2, True, False, False, False)
    np.testing.assert_array_equal(only_square[:, K.P4_SQUARE], out[:, K.P4_SQUARE])
    assert not only_square[:, K.C_X :].any()


def test_scalars_equal_direct_formulas(case):
    spins, res = case
    L = spins.shape[-1]
    m = spins.mean(axis=(1, 2))
    e = [-site_average(s, [(0, 0), (1, 0)]) - site_average(s, [(0, 0), (0, 1)]) for s in spins]
    assert float(res["energy"]) == pytest.approx(np.mean(e), abs=1e-12)
    assert float(res["abs_m"]) == pytest.approx(np.abs(m).mean(), abs=1e-12)
    chi = L * L * ((m**2).mean() - np.abs(m).mean() ** 2) / float(res.attrs["T"])
    assert float(res["chi"]) == pytest.approx(chi, rel=1e-10)
    assert float(res["binder"]) == pytest.approx(
        1 - (m**4).mean() / (3 * (m**2).mean() ** 2), rel=1e-10
    )


def test_spectrum_is_mean_squared_orthonormal_fft(case):
    spins, res = case
    L = spins.shape[-1]
    S2 = (np.abs(np.fft.fft2(spins, norm="ortho")) ** 2).mean(axis=0)
    assert float(res["S"].isel(k=0)) == pytest.approx(S2[0, 0], rel=1e-10)
    n = np.minimum(np.arange(L), L - np.arange(L))
    b1 = np.rint(np.hypot(n[:, None], n[None, :])) == 1
    assert float(res["S"].isel(k=1)) == pytest.approx(S2[b1].mean(), rel=1e-10)


def test_streaming_over_chunks_gives_identical_results(tmp_path):
    path = write_ensemble(tmp_path / "e.h5", random_spins(50, 8, seed=9))
    ds_small = open_ensemble(path, chunks=3)
    assert len(ds_small["spins"].data.chunks[0]) == 17  # many chunks, read one at a time
    a = measure(ds_small, shapes=SHAPES, n_blocks=10)
    b = measure(open_ensemble(path, chunks=1000), shapes=SHAPES, n_blocks=10)
    for name in a.data_vars:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, atol=1e-14)


def test_lattices_without_dask_equal_the_ensemble_dataset(tmp_path):
    """``correlate`` streams a Lattices (no dask) in the chunks an ensemble Dataset has by
    default, through the same sums: bitwise the same results."""
    from isingscale.analysis.ensemble import spin_lattices
    from isingscale.lattices import open_lattices

    path = write_ensemble(tmp_path / "e.h5", random_spins(50, 8, seed=4))
    a = measure(spin_lattices(open_lattices(path)), shapes=SHAPES, n_blocks=10)
    b = measure(open_ensemble(path), shapes=SHAPES, n_blocks=10)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
