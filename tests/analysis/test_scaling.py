"""Finite-size scaling: the fits on synthetic power laws, the estimator end to end on ensembles
with a known exponent, its one-line errors, and (slow) eta and gamma/nu from Wolff ensembles."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import isingscale as isc
from isingscale.analysis.scaling import corrected_fit, power_law_fit, scaling
from isingscale.cli import main

from ._synthetic import write_ensemble

SIZES = np.array([16, 32, 64, 128, 256, 512, 1024])


def noisy(y, rel, rng):
    return y * (1 + rel * rng.standard_normal(len(y)))


def test_power_law_fit_recovers_exponent_and_its_error():
    """Over 400 noisy data sets: unbiased exponent, reported error = the scatter, chi2/dof ~ 1."""
    rng = np.random.default_rng(0)
    rel = np.full(len(SIZES), 0.01)
    y = 0.9 * SIZES**-0.25
    fits = [power_law_fit(SIZES, noisy(y, rel, rng), y * rel) for _ in range(400)]
    x = np.array([f["exponent"] for f in fits])
    err = fits[0]["exponent_err"]
    assert abs(x.mean() + 0.25) < 4 * err / np.sqrt(len(x))
    assert x.std() == pytest.approx(err, rel=0.12)
    assert np.mean([f["chi2"] / f["dof"] for f in fits]) == pytest.approx(1.0, abs=0.1)
    exact = power_law_fit(SIZES, 0.9 * SIZES**1.75, 0.01 * SIZES**1.75)
    assert exact["exponent"] == pytest.approx(1.75, abs=1e-12)
    assert exact["amplitude"] == pytest.approx(0.9, rel=1e-12) and exact["chi2"] < 1e-20


def test_corrections_show_as_bad_fits_and_drift_and_the_corrected_fit_removes_them():
    """y = a L^-1/4 (1 + 20 L^-2) with 0.2 % errors: the pure power law from L = 16 fails its
    chi2, its exponent drifts to 1/4 as L_min grows, and the L^-2 term recovers 1/4 from L = 16."""
    from isingscale.analysis.scaling import fits_over_L_min

    y = 0.9 * SIZES**-0.25 * (1 + 20.0 * SIZES**-2.0)
    err = 0.002 * y
    f = fits_over_L_min(SIZES, y, err, sign=-1.0, omega=2.0)
    assert f["p"][0] < 1e-6  # L >= 16: the correction is seen
    assert abs(f["exponent"][0] - 0.25) > 5 * f["exponent_err"][0]
    assert np.all(np.diff(np.abs(f["exponent"] - 0.25)) < 0)  # drift towards the true value
    assert abs(f["exponent"][-1] - 0.25) < f["exponent_err"][-1]
    assert f["corrected_exponent"][0] == pytest.approx(0.25, abs=1e-6)
    assert corrected_fit(SIZES, y, err)["b"] == pytest.approx(20.0, rel=1e-4)


def biased_ensemble(path, L, *, c, eta, n, seed, T=isc.T_C):
    """Lattices of independent spins with per-lattice magnetisation +-mu, mu^2 = c L^-eta: then
    <s_0 s_r> = mu^2 for r != 0 exactly, so G(L/2) ~ L^-eta and chi = (L^2 mu^2 + 1 - mu^2)/T."""
    rng = np.random.default_rng(seed)
    mu = np.sqrt(c * L**-eta)
    sign = rng.choice([-1.0, 1.0], size=(n, 1, 1))
    up = rng.random((n, L, L)) < (1 + sign * mu) / 2
    return write_ensemble(path, np.where(up, 1, -1).astype(np.int8), T=T)


def test_scaling_recovers_a_known_exponent_and_detects_a_wrong_one(tmp_path):
    paths = [
        biased_ensemble(tmp_path / f"e{L}.h5", L, c=0.8, eta=0.4, n=400, seed=L)
        for L in (8, 16, 32, 64)
    ]
    ds = scaling(paths[::-1], out=tmp_path / "fss", n_blocks=20, progress=False)
    assert list(ds["L"].values) == [8, 16, 32, 64]
    mu2 = 0.8 * ds["L"].values ** -0.4
    np.testing.assert_allclose(ds["G_half"], mu2, rtol=5 * float(ds["G_half_err"][0] / mu2[0]))
    eta, err = float(ds["eta"]), float(ds["eta_err"])
    assert 0 < err < 0.01
    assert abs(eta - 0.4) < 4 * err  # the exponent the ensembles were made with
    assert abs(eta - 0.25) > 10 * err  # ... told apart from the Ising one
    # chi = L^2 mu^2 / T + a background: gamma/nu = 2 - 0.4 from the power-law fits
    assert abs(float(ds["gamma_nu"]) - 1.6) < 4 * float(ds["gamma_nu_err"])
    for name in ("scaling.md", "scaling.png", "scaling.nc"):
        assert (tmp_path / "fss" / name).stat().st_size > 500
    with xr.open_dataset(tmp_path / "fss" / "scaling.nc", engine="h5netcdf") as saved:
        assert float(saved["eta"]) == eta
        assert saved["exponent"].dims == ("observable", "L_min")
    report = (tmp_path / "fss" / "scaling.md").read_text()
    assert "| L_min | sizes | eta | chi2/dof |" in report and f"{eta:.4f}" in report


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(res, *words):
    assert res.exit_code != 0
    msg = res.output.strip()
    assert msg.startswith("Error:") and "\n" not in msg and "Traceback" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_bad_input_is_a_one_line_error(tmp_path):
    def make(name, L, T=isc.T_C):
        return biased_ensemble(tmp_path / name, L, c=0.5, eta=0.25, n=8, seed=L, T=T)

    a, b, c = make("a.h5", 8), make("b.h5", 16), make("c.h5", 32)
    out = ("--out", tmp_path / "o", "--no-progress")
    one_line_error(run("scaling", a, b, *out), "three or more sizes", "L = 8, 16")
    same = [make(f"s{i}.h5", 16) for i in range(3)]
    one_line_error(run("scaling", *same, *out), "single L = 16")
    one_line_error(run("scaling", a, b, same[0], c, *out), "two files at L = 16")
    hot = make("hot.h5", 64, T=2.5)
    one_line_error(run("scaling", a, b, c, hot, *out), "different T", "hot.h5", "T = 2.5")
    res = run("scaling", a, b, c, *out)
    assert res.exit_code == 0, res.output
    assert "eta" in res.output and "gamma/nu" in res.output


@pytest.mark.slow
def test_wolff_ensembles_give_the_ising_exponents(tmp_path):
    """Wolff at Tc, L = 16 ... 128 (about 10 minutes on 2 cores): eta and gamma/nu within
    three of their error bars of 1/4 and 7/4, with error bars below 0.006."""
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "analysis" / "fss_ensembles.py"
    spec = importlib.util.spec_from_file_location("fss_ensembles", script)
    fss = importlib.util.module_from_spec(spec)
    sys.modules["fss_ensembles"] = fss
    spec.loader.exec_module(fss)
    paths = []
    for L, n in ((16, 20000), (32, 20000), (64, 16000), (128, 8000)):
        path = tmp_path / f"L{L}.h5"
        isc.simulate(
            L,
            samples=n,
            seed=11 + L,
            out=path,
            thermalize=fss.auto_thermalize(L),
            schedule="fixed",
            interval=fss.auto_interval(L, 2.0),
            progress=False,
        )
        paths.append(path)
    ds = scaling(paths, out=tmp_path / "fss", progress=False)
    for name, exact in (("eta", 0.25), ("gamma_nu", 1.75)):
        v, e = float(ds[name]), float(ds[f"{name}_err"])
        assert e < 0.006, (name, e)
        assert abs(v - exact) < 3 * e, (name, v, e)
    ratio = ds["G_half"] / ds["G_half_torus"]
    assert np.all(np.abs(ratio - 1) < 4 * ds["G_half_err"] / ds["G_half_torus"] + 0.002)
