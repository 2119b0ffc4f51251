"""``isingscale correlate`` end to end on synthetic files, and its one-line errors."""

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from isingscale.cli import main

from ._synthetic import random_spins, write_ensemble


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def two_files(tmp_path):
    a = write_ensemble(tmp_path / "mc.h5", random_spins(120, 16, seed=1))
    b = write_ensemble(tmp_path / "sr.h5", random_spins(90, 16, seed=2), kind="superresolved")
    return a, b


def test_correlate_writes_netcdf_plots_and_report(two_files, tmp_path):
    out = tmp_path / "rep"
    res = run(
        "correlate",
        *two_files,
        "--out",
        out,
        "--shape",
        "square",
        "--shape",
        "collinear",
        "--no-progress",
        "--blocks",
        "10",
    )
    assert res.exit_code == 0, res.output
    assert "reference: mc" in res.output
    with xr.open_dataset(out / "correlations.nc", engine="h5netcdf") as ds:
        for name in (
            "G2",
            "G2_err",
            "G4c",
            "G4c_err",
            "G4c_square",
            "G4c_collinear_err",
            "G2_radial",
            "S",
        ):
            assert ds[name].dims[0] == "ensemble"
            assert ds[name].dims[1] in ("r", "k")
        assert ds["G2"].dims == ("ensemble", "r")
        assert list(ds["ensemble"].values) == ["mc", "sr"]
        assert ds.sizes["r"] == 9
        for name in ("energy", "energy_err", "chi", "binder_err", "abs_m", "spectrum_exponent"):
            assert ds[name].dims == ("ensemble",)
        for name in ("G2_torus", "G2_plane", "G4c_square_torus", "energy_exact"):
            assert name in ds
        assert float(ds["energy_exact"]) == pytest.approx(-1.45, abs=0.03)  # Kaufman u(16)
        np.testing.assert_array_equal(ds["G4c"].values, ds["G4c_square"].values)
        spectrum_torus = float(ds["spectrum_exponent_torus"])
    for png in ("G2.png", "G4c_square.png", "G4c_collinear.png", "spectrum.png"):
        assert (out / png).stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "## G4c_square" in report and "chi2/dof" in report and "| sr | mc |" in report
    assert "2 - eta from S(k)" not in report  # the S(k) slope is no estimate of eta at finite L
    assert spectrum_torus == pytest.approx(
        1.562, abs=0.002
    )  # the same fit to the torus CFT, L = 16


def test_python_api_matches_cli(two_files, tmp_path):
    import isingscale as isc

    ds = isc.correlate(two_files, out=tmp_path / "api", labels=["A", "B"], progress=False)
    assert list(ds["ensemble"].values) == ["A", "B"]
    assert (tmp_path / "api" / "report.md").exists()


def one_line_error(res, *words):
    assert res.exit_code != 0
    msg = res.output.strip()
    assert msg.startswith("Error:") and "\n" not in msg, msg
    assert "Traceback" not in msg
    for w in words:
        assert w in msg, msg


def test_not_an_ensemble(tmp_path, two_files):
    txt = tmp_path / "notes.h5"
    txt.write_text("hello")
    one_line_error(
        run("correlate", txt, "--out", tmp_path / "o"), "notes.h5", "not a readable HDF5"
    )
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    one_line_error(
        run("correlate", foreign, "--out", tmp_path / "o"), "foreign.h5", "no lattice dataset"
    )
    one_line_error(
        run("correlate", tmp_path / "missing.h5", "--out", tmp_path / "o"), "no such file"
    )


def test_mismatched_L(tmp_path, two_files):
    c = write_ensemble(tmp_path / "big.h5", random_spins(5, 32))
    one_line_error(
        run("correlate", two_files[0], c, "--out", tmp_path / "o"),
        "mismatched L across files: mc.h5 has L=16, big.h5 has L=32",
    )


def test_empty_file(tmp_path, two_files):
    e = write_ensemble(tmp_path / "empty.h5", L=16)
    one_line_error(
        run("correlate", two_files[0], e, "--out", tmp_path / "o"), "empty.h5", "no samples"
    )


def test_out_not_writable(tmp_path, two_files):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    one_line_error(run("correlate", two_files[0], "--out", blocker), "not a directory")
    one_line_error(run("correlate", two_files[0], "--out", blocker / "sub"), "cannot create")


def test_non_pm1_spins_need_binarize(tmp_path):
    spins = random_spins(40, 8) * 3  # values +-3
    bad = write_ensemble(tmp_path / "bad.h5", spins)
    one_line_error(
        run("correlate", bad, "--out", tmp_path / "o", "--no-progress"), "bad.h5", "--binarize"
    )
    res = run("correlate", bad, "--out", tmp_path / "o", "--binarize", "--no-progress")
    assert res.exit_code == 0, res.output


def test_field_only_file_with_binarize(tmp_path):
    s = random_spins(40, 8)
    field = s * np.random.default_rng(0).uniform(0.1, 2.0, s.shape)
    f = write_ensemble(tmp_path / "field.h5", field=field)
    one_line_error(run("correlate", f, "--out", tmp_path / "o"), "field", "--binarize")
    res = run("correlate", f, "--out", tmp_path / "o", "--binarize", "--no-progress")
    assert res.exit_code == 0, res.output
    ref = run(
        "correlate", write_ensemble(tmp_path / "s.h5", s), "--out", tmp_path / "o2", "--no-progress"
    )
    assert ref.exit_code == 0
    with (
        xr.open_dataset(tmp_path / "o" / "correlations.nc", engine="h5netcdf") as a,
        xr.open_dataset(tmp_path / "o2" / "correlations.nc", engine="h5netcdf") as b,
    ):
        np.testing.assert_allclose(a["G4c"].values, b["G4c"].values)


def test_open_ensembles(tmp_path, two_files):
    from isingscale.analysis.ensemble import open_ensembles

    ds = open_ensembles(two_files)
    assert ds["spins"].dims == ("ensemble", "sample", "y", "x")
    assert list(ds["n_samples"].values) == [120, 90]
    assert int(ds["spins"].isel(ensemble=1, sample=100).sum()) == 0  # padding
    c = write_ensemble(tmp_path / "big.h5", random_spins(5, 32))
    from isingscale.errors import IsingScaleError

    with pytest.raises(IsingScaleError, match="mismatched L"):
        open_ensembles([two_files[0], c])


def test_bench_correlate_quick():
    """The whole command (a fresh process) and the kernel, against numpy on the same lattices."""
    res = run("bench", "correlate", "--L", "32", "--samples", "20", "--repeats", "1")
    assert res.exit_code == 0, res.output
    assert "the whole command" in res.output and "kernel alone" in res.output
    diffs = res.output.split("max |G4c difference| from numpy: command ")[1].split(", kernel ")
    assert float(diffs[0]) < 1e-12 and float(diffs[1]) == 0.0
