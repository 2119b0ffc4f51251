"""Error bars: independent random spins give zero connected correlators within error, and
z-scores of independent replicas have about unit variance."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import isingscale as isc
from isingscale.analysis.correlators import SHAPES, measure
from isingscale.analysis.errors import BlockAccumulator, binning_error, jackknife

from ._synthetic import random_spins


def as_dataset(spins, chunk=100):
    L = spins.shape[-1]
    return xr.Dataset(
        {"spins": (("sample", "y", "x"), da.from_array(spins, chunks=(chunk, L, L)))},
        attrs={"L": L, "T": isc.T_C},
    )


def test_independent_spins_have_zero_connected_correlators():
    L = 16
    res = measure(as_dataset(random_spins(800, L, seed=11)), shapes=SHAPES, n_blocks=20)
    r = res["r"].values
    # r where some corners coincide (k r = 0 mod L) carry a trivial O(1/L^2) bias; skip them.
    ok = (r > 0) & (r < L // 2) & ((3 * r) % L != 0)
    for name in ["G2", "G2_radial", *(f"G4c_{s}" for s in SHAPES)]:
        z = (res[name] / res[f"{name}_err"]).values[ok]
        assert np.all(np.abs(z) < 4.5), (name, z)
        assert np.all(res[f"{name}_err"].values[ok] > 0)
    assert np.all(np.abs(res["G2"].values[ok]) < 0.01)


def test_z_scores_of_replicas_have_unit_variance():
    L, n, replicas = 8, 200, 120
    z = {"G2": [], "G4c_square": [], "chi": []}
    for i in range(replicas):
        res = measure(as_dataset(random_spins(n, L, seed=1000 + i)), n_blocks=20)
        for name in ("G2", "G4c_square"):
            z[name].append(float(res[name].sel(r=2) / res[f"{name}_err"].sel(r=2)))
        z["chi"].append(float(res["chi"]))
    for name in ("G2", "G4c_square"):
        var = np.var(z[name])
        assert 0.6 < var < 1.6, (name, var)
        assert abs(np.mean(z[name])) < 0.35, (name, np.mean(z[name]))


def test_jackknife_of_mean_is_standard_error_and_of_product_propagates():
    rng = np.random.default_rng(3)
    a = rng.normal(1.0, 1.0, 4000)
    b = rng.normal(2.0, 1.0, 4000)
    acc = BlockAccumulator(4000, 40)
    acc.add(0, {"a": a[:1234], "b": b[:1234]})
    acc.add(1234, {"a": a[1234:], "b": b[1234:]})
    res = jackknife(acc, lambda m: {"a": m["a"], "ab": m["a"] * m["b"]})
    est, err = res["a"]
    assert est == pytest.approx(a.mean())
    assert err == pytest.approx(binning_error(a, n_blocks=40), rel=1e-9)  # linear: identical
    est, err = res["ab"]
    assert est == pytest.approx(a.mean() * b.mean())
    delta = np.hypot(b.mean() * a.std(), a.mean() * b.std()) / np.sqrt(4000)  # delta method
    assert err == pytest.approx(delta, rel=0.3)


def test_binning_error_grows_with_autocorrelation():
    rng = np.random.default_rng(4)
    x = np.repeat(rng.normal(size=500), 20)  # blocks of 20 identical values
    naive = x.std() / np.sqrt(x.size)
    assert binning_error(x, n_blocks=25) > 3 * naive
