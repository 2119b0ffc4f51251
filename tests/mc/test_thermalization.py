"""Thermalization by the stationarity test, at sizes where a fixed update count fails."""

import math
import warnings

import numpy as np
import pytest

from isingscale.constants import STATIONARITY_Z, T_C
from isingscale.exact import torus_energy
from isingscale.io import read_attrs, read_ensemble
from isingscale.mc.chains import Chains
from isingscale.mc.simulate import ThermalizationWarning, simulate
from isingscale.mc.thermalization import thermalize


@pytest.mark.parametrize("L, samples", [(256, 60), (512, 24)])
def test_auto_is_stationary_and_calibrates_at_large_L(run, L, samples):
    """Defaults at L = 256 and 512: the test passes, the interval gives 1-1.5 x the asked
    flipped spins per save, and the first samples after thermalization already have the
    exact energy (an independent check of equilibrium at short scales)."""
    r = run(L, samples=samples, seed=L)
    a = read_attrs(r.path)
    assert r.stationary and a["thermalization_stationary"] and a["thermalization_rule"] == "auto"
    assert 1.0 <= r.flips_per_save / r.decorrelate <= 1.5, r.flips_per_save
    e = read_ensemble(r.path, datasets=("energy",))["energy"][:12]
    sigma = 0.015 * 256 / L  # per-sample sd of the energy per site at Tc (0.0145 at L = 256)
    # 12 samples, tau_int ~ 1: 2 sigma is ~5 standard errors; 2,000 Wolff updates from a random
    # start leave L = 256 at +1.0 (70 sigma)
    assert abs(e.mean() - torus_energy(L, T_C)) < 2 * sigma


def test_attributes_record_the_test(run):
    r = run(64, samples=10, seed=3)
    a = read_attrs(r.path)
    zs = [a[f"thermalization_{k}_z"] for k in ("energy", "abs_m", "flips_per_update")]
    e_z = (a["thermalization_energy_mean_b"] - a["thermalization_energy_exact"]) / a[
        "thermalization_energy_se_b"
    ]
    assert a["thermalization_energy_exact_z"] == pytest.approx(e_z)
    assert all(abs(z) <= STATIONARITY_Z for z in [*zs, e_z])
    assert a["thermalization_window_flips_per_site"] == pytest.approx(
        a["thermalization_flips_per_site"] / 4
    )
    assert a["thermalization_stages"] >= 1 and "windows A, B" in a["thermalization_test"]
    assert a["calibrated_updates_between_saves"] == math.ceil(
        2
        * 64**2
        / max(
            a["thermalization_mean_flips_per_update"]
            - 3 * a["thermalization_mean_flips_per_update_error"],
            a["thermalization_mean_flips_per_update"] / 2,
        )
    )


@pytest.mark.parametrize(
    "kw, why",
    [
        (dict(thermalize=2000, thermalize_unit="updates"), r"energy vs exact z = \+\d\d"),
        (dict(thermalize=4), "NOT stationary"),  # a drift the windows see
    ],
)
def test_explicit_too_short_warns(tmp_path, kw, why):
    with pytest.warns(ThermalizationWarning, match=why) as w:
        r = simulate(256, samples=2, chains=2, out=tmp_path / "x.h5", progress=False, **kw)
    assert len(w) == 1 and "\n" not in str(w[0].message) and "too short" in str(w[0].message)
    assert not r.stationary and not read_attrs(r.path)["thermalization_stationary"]


def test_explicit_long_enough_is_quiet(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ThermalizationWarning)
        r = simulate(32, samples=4, chains=2, thermalize=64, out=tmp_path / "x.h5", progress=False)
    assert r.stationary and r.thermalization_rule == "flips"
    assert 64 <= r.thermalization_flips < 64 + 2  # exactly the asked work, up to one cluster


def test_equilibrium_start_passes_at_once():
    """At T = 50 a random start is already (nearly) in equilibrium: the rule stops as soon
    as the windows hold enough independent samples (the second stage, 32 L^2)."""
    th = thermalize(Chains(64, T=50.0, algorithm="wolff", seed=2, chains=2))
    assert th.stationary and th.stages <= 2 and th.flips < 33


@pytest.mark.parametrize("algorithm", ["sw", "metropolis"])
def test_other_algorithms_thermalize_by_the_same_rule(run, algorithm):
    r = run(16, samples=400, algorithm=algorithm, seed=5)
    assert r.stationary and read_attrs(r.path)["thermalization_rule"] == "auto"
    assert 1.0 <= r.flips_per_save / r.decorrelate <= 1.5


def test_metropolis_at_tc_says_where_it_stops(tmp_path):
    """Metropolis relaxes as L^2.17 at Tc: 16 L^2 flipped spins leave L = 128 far from it."""
    with pytest.warns(ThermalizationWarning, match="NOT stationary"):
        simulate(
            128,
            samples=1,
            chains=2,
            algorithm="metropolis",
            thermalize=16,
            out=tmp_path / "m.h5",
            progress=False,
        )


def test_mean_cluster_size_is_the_improved_estimator(run):
    """Wolff at Tc: the mean cluster size over production updates equals N <m^2>."""
    r = run(32, samples=3000, seed=8)
    assert abs(r.mean_cluster_size - r.n_m2) < 4 * r.n_m2_error, (r.mean_cluster_size, r.n_m2)
    assert r.n_m2_error < 0.05 * r.n_m2  # the comparison has teeth
    # thermalization work is not in it: flips and updates of the same production updates
    assert r.mean_cluster_size == pytest.approx(r.flips_per_save * 32**2 / r.updates_between_saves)


def test_counters_survive_resume(run):
    full = run(16, samples=40, chains=2, name="full.h5")
    run(16, samples=15, chains=2, name="part.h5")
    part = run(16, samples=40, chains=2, name="part.h5", resume=True)
    assert part.mean_cluster_size == full.mean_cluster_size
    assert part.flips_per_save == full.flips_per_save
    assert part.thermalization_flips == full.thermalization_flips and part.stationary
    d = {k: np.asarray(v) for k, v in read_ensemble(part.path, datasets=("energy",)).items()}
    assert len(d["energy"]) == 40


def test_resume_keeps_the_files_thermalization(run):
    """Resume continues thermalized chains as they are, whatever --thermalize says now."""
    full = run(16, samples=20, chains=2, name="full.h5")
    run(16, samples=8, chains=2, name="part.h5")
    part = run(16, samples=20, chains=2, name="part.h5", resume=True, thermalize=3)
    np.testing.assert_array_equal(
        read_ensemble(full.path)["spins"], read_ensemble(part.path)["spins"]
    )
    assert read_attrs(part.path)["thermalize"] == "auto"


def test_resume_file_without_counters(run):
    """Files whose resume state predates the production counters still resume."""
    import h5py

    r = run(16, samples=8, chains=2, name="old.h5")
    with h5py.File(r.path, "r+") as f:
        del f["_state/flipped"], f["_state/updates"]
    part = run(16, samples=12, chains=2, name="old.h5", resume=True)
    assert part.n_samples == 12 and part.mean_cluster_size > 0
