"""Lattices from anywhere, end to end: correlate, merge, export/import, show and open_ensemble
give the same numbers on a plain HDF5 file (+-1, no attributes), a .npy, a folder of SKILD's
0/254 PNGs and a numpy array as on the native ensemble file holding the same lattices; bad
input is a one-line error from the CLI; notices are one line on stderr."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import isingscale as isc
from isingscale.cli import main

from ._lattices import structured_spins, write_native, write_plain_h5, write_skild_pngs
from .test_lattices import _bad_inputs

N, L = 48, 16
COMPARED = ("G2", "G2_radial", "G4c", "S", "energy", "abs_m", "chi", "binder", "G2_err", "G4c_err")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The native file and the same lattices as (a) plain HDF5, (b) .npy, (c) PNG folder."""
    tmp = tmp_path_factory.mktemp("sources")
    s = structured_spins(N, L, seed=5)
    np.save(tmp / "lat.npy", s)
    return {
        "spins": s,
        "native": write_native(tmp / "native.h5", s),
        "plain": write_plain_h5(tmp / "plain.h5", s),
        "npy": tmp / "lat.npy",
        "png": write_skild_pngs(tmp / "skild_png", s),
    }


FOREIGN = ("plain", "npy", "png")


def _same(a: xr.Dataset, b: xr.Dataset):
    for name in COMPARED:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_correlate_cli_same_numbers_on_every_source(files, tmp_path):
    srcs = [files[k] for k in ("native", *FOREIGN)]
    res = run("correlate", *srcs, "--out", tmp_path / "o", "--no-progress")
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    for kind in FOREIGN:
        assert any(str(files[kind]) in n and "using T = Tc" in n for n in notes), (kind, notes)
    assert any("skild_png: two-valued data read as spins 0 -> -1, 254 -> +1" in n for n in notes)
    with xr.open_dataset(tmp_path / "o" / "correlations.nc", engine="h5netcdf") as ds:
        assert list(ds["ensemble"].values) == ["native", "plain", "lat", "skild_png"]
        for i in range(1, 4):
            _same(
                ds.isel(ensemble=[i]),
                ds.isel(ensemble=[0]).assign_coords(ensemble=[ds["ensemble"].values[i]]),
            )
        prov = json.loads(ds.attrs["provenance"])
        assert [p["format"] for p in prov] == ["isingscale", "hdf5", "npy", "png"]
        assert all(len(p["sha256"]) == 64 for p in prov)
        assert [p["T_from"] for p in prov] == ["recorded"] + ["default (Tc)"] * 3
        assert prov[3]["values"] == "0 -> -1, 254 -> +1 (auto)"


def test_correlate_python_on_arrays_writes_nothing(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ref = isc.correlate(files["native"], progress=False)
    ds = isc.correlate([files["spins"], files["png"]], labels=["mc", "png"], progress=False)
    assert list(tmp_path.iterdir()) == []
    for i in range(2):
        _same(ds.isel(ensemble=[i]).assign_coords(ensemble=["native"]), ref)
    assert list(ds["ensemble"].values) == ["mc", "png"]


def test_correlate_distributed_keeps_the_convention(files, tmp_path):
    import distributed

    ref = isc.correlate(files["png"], progress=False, values="254,0")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        ds = isc.correlate(
            files["png"], progress=False, values="254,0", scheduler=c.scheduler_address
        )
    _same(ds, ref)
    flipped = isc.correlate(-files["spins"], progress=False)
    _same(ref.assign_coords(ensemble=["array"]), flipped)


def test_merge_and_import_same_spins_as_native(files, tmp_path):
    want = isc.read_ensemble(files["native"])["spins"]
    for kind in FOREIGN:
        out = tmp_path / f"merged_{kind}.h5"
        res = run("merge", files[kind], files[kind], "--out", out, "--T", isc.T_C, "--no-progress")
        assert res.exit_code == 0, res.output
        d = isc.read_ensemble(out)
        np.testing.assert_array_equal(d["spins"], np.concatenate([want, want]))
        prov = json.loads(d["attrs"]["merged_from"])
        assert len(prov) == 2 and prov[0]["sha256"] == prov[1]["sha256"]
        assert d["attrs"]["kind"] == "imported" and d["attrs"]["T"] == isc.T_C
        res = run("import", files[kind], "--out", tmp_path / f"imp_{kind}.h5", "--no-progress")
        assert res.exit_code == 0, res.output
        np.testing.assert_array_equal(isc.read_ensemble(tmp_path / f"imp_{kind}.h5")["spins"], want)
    path = isc.merge_ensembles([files["spins"], files["npy"]], tmp_path / "mixed.h5", T=isc.T_C)
    assert isc.read_attrs(path)["n_samples"] == 2 * N
    res = run("merge", files["native"], files["npy"], "--out", tmp_path / "x.h5")
    assert res.exit_code == 1 and "differ in kind" in res.output
    res = run("merge", files["npy"], "--out", files["npy"])
    assert res.exit_code == 1 and "is one of the inputs" in res.output
    assert np.load(files["npy"]).shape == (N, L, L)


def test_export_then_import_round_trips_from_every_source(files, tmp_path):
    for kind in ("native", *FOREIGN):
        for to in ("npz", "png"):
            out = tmp_path / f"{kind}_{to}"
            res = run("export", files[kind], "--to", to, out, "--T", 2.5, "--no-progress")
            if kind == "native":  # the native file records Tc: --T 2.5 contradicts it
                assert res.exit_code == 1 and "records T = 2.26919" in res.output
                res = run("export", files[kind], "--to", to, out, "--no-progress")
            assert res.exit_code == 0, res.output
            src = out / f"{files[kind].stem}.npz" if to == "npz" else out
            back = tmp_path / f"{kind}_{to}.h5"
            res = run("import", src, "--out", back, "--no-progress")
            assert res.exit_code == 0, res.output
            assert "note:" not in res.output  # T and the convention are recorded
            d = isc.read_ensemble(back)
            np.testing.assert_array_equal(d["spins"], files["spins"])
            assert d["attrs"]["L"] == L
            assert d["attrs"]["T"] == (isc.T_C if kind == "native" else 2.5)


def test_open_ensemble_same_spins(files):
    ref = isc.open_ensemble(files["native"])
    for src in (files["plain"], files["npy"], files["png"], files["spins"]):
        ds = isc.open_ensemble(src, chunks=10)
        assert ds["spins"].dims == ("sample", "y", "x") and ds["spins"].dtype == np.int8
        assert ds["spins"].data.chunks[0][0] == 10
        np.testing.assert_array_equal(ds["spins"].values, ref["spins"].values)
        assert ds.attrs["L"] == L and ds.attrs["T"] == isc.T_C
    assert isc.open_ensemble(files["png"]).attrs["values"] == "0,254"


def test_show_same_pixels(files, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def pixels(src):
        fig = isc.show(src, samples=3, labels=["x"])
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())

    ref = pixels(files["native"])
    for kind in ("plain", "npy", "png", "spins"):
        np.testing.assert_array_equal(pixels(files[kind]), ref, err_msg=kind)
    res = run("show", files["native"], files["png"], "--samples", 3, "--out", tmp_path / "f.png")
    assert res.exit_code == 0, res.output
    assert 2_000 < (tmp_path / "f.png").stat().st_size < 100_000


def one_line_error(res, *words):
    assert res.exit_code != 0
    lines = [line for line in res.output.strip().splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0], lines[0]


def test_every_bad_input_is_one_line_from_every_command(tmp_path):
    import os

    bad = _bad_inputs(tmp_path)
    for name, words in bad.items():
        if name == "unreadable.npy" and os.geteuid() == 0:
            continue
        src = f"{tmp_path}/{name}"
        for cmd in (
            ["correlate", src, "--out", tmp_path / "o", "--no-progress"],
            ["import", src, "--out", tmp_path / "o.h5", "--no-progress"],
            ["show", src, "--out", tmp_path / "o.png"],
        ):
            res = run(*cmd)
            drawn = cmd[0] == "show" and name in ("three.npy", "field.npy")
            if drawn or (cmd[0] == "import" and name == "field.npy"):
                assert res.exit_code == 0, res.output  # show draws any numbers; a float field
                continue  # is imported as a 'field' dataset
            one_line_error(res, name.split(":")[0], *words)
    res = run("correlate", f"{tmp_path}/rank4.npy", "--values", "1,x", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "--values must be two numbers" in res.output


def test_bench_read_quick(tmp_path):
    res = run("bench", "read", "--L", 8, "--samples", 30, "--repeats", 1, "--workdir", tmp_path)
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split() for line in res.output.splitlines()[2:]}
    assert list(rows) == ["isingscale", "hdf5", "npy", "npz", "png"]
    assert rows["isingscale"][3] == "1.00" and list(tmp_path.iterdir()) == []


def test_scaling_same_numbers_on_npy_and_png_as_on_native_files(tmp_path):
    sizes = (8, 16, 32)
    native, npy, png = [], [], []
    for L in sizes:
        s = structured_spins(40, L, seed=L)
        native.append(write_native(tmp_path / f"n{L}.h5", s))
        np.save(tmp_path / f"l{L}.npy", s)
        npy.append(tmp_path / f"l{L}.npy")
        png.append(write_skild_pngs(tmp_path / f"png{L}", s))
    ref = isc.scaling(native, n_blocks=8, progress=False)
    for srcs in (npy, png):
        res = run(
            "scaling",
            *srcs,
            "--T",
            isc.T_C,
            "--blocks",
            8,
            "--out",
            tmp_path / "o",
            "--no-progress",
        )
        assert res.exit_code == 0, res.output
        with xr.open_dataset(tmp_path / "o" / "scaling.nc", engine="h5netcdf") as ds:
            for name in ("G_half", "chi", "binder", "exponent", "G_half_err"):
                np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
            prov = json.loads(ds.attrs["provenance"])
            assert [p["T_from"] for p in prov] == ["given"] * 3 and len(prov[0]["sha256"]) == 64
