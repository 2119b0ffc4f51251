"""isingscale.lattices: every source format reads the same spins; conventions, T, provenance,
bounded memory, and a one-line error for every kind of bad input."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import h5py
import numpy as np
import pytest

import isingscale as isc
from isingscale.errors import IsingScaleError
from isingscale.lattices import export_lattices, import_lattices, open_lattices

from ._lattices import structured_spins, write_native, write_plain_h5, write_skild_pngs

N, L = 40, 16


@pytest.fixture(scope="module")
def spins():
    return structured_spins(N, L, seed=3)


def _sources(tmp, s):
    """name -> source holding exactly the lattices ``s`` (values 0/254 for PNG)."""
    np.save(tmp / "a.npy", s)
    np.save(tmp / "f.npy", s.astype(np.float64))
    np.savez(tmp / "a.npz", spins=s, T=isc.T_C)
    np.savez(tmp / "k.npz", configs=s, other=np.zeros(3))
    np.savez_compressed(tmp / "fortran.npz", spins=np.asfortranarray(s))
    with h5py.File(tmp / "nested.h5", "w") as f:
        f.create_group("run/3").create_dataset("configs", data=s)
        f["run"].attrs["temperature"] = isc.T_C
    import dask.array as da
    import torch
    import xarray as xr

    return {
        "native": write_native(tmp / "n.h5", s),
        "plain h5": write_plain_h5(tmp / "p.h5", s),
        "plain h5 float": write_plain_h5(tmp / "pf.h5", s, dtype=np.float32),
        "h5 dataset path": f"{tmp / 'nested.h5'}:/run/3/configs",
        "h5 only 3-D dataset": tmp / "nested.h5",
        "npy": tmp / "a.npy",
        "npy float": tmp / "f.npy",
        "npz": tmp / "a.npz",
        "npz key": f"{tmp / 'k.npz'}:configs",
        "npz compressed, Fortran order": tmp / "fortran.npz",
        "png folder": write_skild_pngs(tmp / "png", s),
        "numpy": s,
        "numpy float32": s.astype(np.float32),
        "xarray DataArray": xr.DataArray(s, dims=("sample", "y", "x")),
        "xarray Dataset": xr.Dataset({"spins": (("sample", "y", "x"), s)}),
        "torch": torch.from_numpy(s.copy()),
        "dask": da.from_array(s, chunks=(7, L, L)),
    }


def test_every_source_reads_the_same_spins(tmp_path, spins):
    for name, src in _sources(tmp_path, spins).items():
        lat = open_lattices(src, T=isc.T_C)
        assert (lat.n_samples, lat.L) == (N, L), name
        np.testing.assert_array_equal(lat.read(), spins, err_msg=name)
        chunks = list(lat.chunks(size=7))
        assert [a for a, _ in chunks] == list(range(0, N, 7)), name
        np.testing.assert_array_equal(np.concatenate([b for _, b in chunks]), spins, err_msg=name)
        assert lat.read(5, 9).dtype == np.int8


def test_single_lattice_and_bool(tmp_path, spins, capsys):
    lat = open_lattices(spins[0])
    assert lat.n_samples == 1
    np.testing.assert_array_equal(lat.read()[0], spins[0])
    capsys.readouterr()
    np.testing.assert_array_equal(open_lattices(spins > 0, T=2.0).read(), spins)
    assert "0 -> -1, 1 -> +1 (auto-detected" in capsys.readouterr().err  # False, True
    from PIL import Image

    Image.fromarray(((spins[0] + 1) * 127).astype(np.uint8)).save(tmp_path / "one.png")
    np.testing.assert_array_equal(open_lattices(tmp_path / "one.png").read()[0], spins[0])


def one_line(err: pytest.ExceptionInfo, *words):
    msg = str(err.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize(
    "stored, given, expect",
    [
        ({0: 0, 1: 1}, None, "0 -> -1, 1 -> +1 (auto-detected"),
        ({0: 0, 1: 255}, None, "0 -> -1, 255 -> +1 (auto-detected"),
        ({0: 0, 1: 254}, None, "0 -> -1, 254 -> +1 (auto-detected"),
        ({0: 254, 1: 0}, "254,0", None),
        ({0: 3, 1: 7}, (3, 7), None),
    ],
)
def test_two_valued_data_need_a_recorded_convention(tmp_path, spins, capsys, stored, given, expect):
    raw = np.where(spins > 0, stored[1], stored[0]).astype(np.uint8)
    np.save(tmp_path / "x.npy", raw)
    capsys.readouterr()
    lat = open_lattices(tmp_path / "x.npy", values=given, T=2.0)
    np.testing.assert_array_equal(lat.read(), spins)
    err = capsys.readouterr().err.strip()
    if expect is None:
        assert err == ""
        assert lat.values.origin == "given"
    else:
        assert err.count("\n") == 0 and "x.npy" in err and expect in err, err
        assert lat.values.origin == "auto"
    assert lat.provenance()["values"].startswith(f"{lat.values.describe()}")


def test_values_that_do_not_fit(tmp_path, spins, capsys):
    np.save(tmp_path / "pm.npy", spins)
    lat = open_lattices(tmp_path / "pm.npy", values="0,254", T=2.0)
    np.testing.assert_array_equal(lat.read(), spins)  # +-1 data are used as stored
    assert "does not apply" in capsys.readouterr().err
    np.save(tmp_path / "u.npy", ((spins + 1) // 2).astype(np.uint8))
    with pytest.raises(IsingScaleError) as e:
        open_lattices(tmp_path / "u.npy", values="0,254", T=2.0)
    one_line(e, "u.npy", "holds the values 0, 1, not the --values 0,254")
    np.testing.assert_array_equal(open_lattices(-spins, values="1,-1").read(), spins)


def test_temperature_default_recorded_and_given(tmp_path, spins, capsys):
    np.save(tmp_path / "a.npy", spins)
    capsys.readouterr()
    lat = open_lattices(tmp_path / "a.npy")
    err = capsys.readouterr().err.strip()
    assert lat.attrs["T"] == isc.T_C and lat.T_from == "default (Tc)"
    assert err.count("\n") == 0 and "a.npy: no temperature recorded; using T = Tc" in err
    assert open_lattices(tmp_path / "a.npy", T=2.5).attrs["T"] == 2.5
    assert capsys.readouterr().err == ""
    native = write_native(tmp_path / "n.h5", spins, T=2.4)
    assert open_lattices(native).attrs["T"] == 2.4
    with pytest.raises(IsingScaleError) as e:
        open_lattices(native, T=2.3)
    one_line(e, "n.h5", "records T = 2.4", "--T 2.3")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["spins"] = spins
        f.attrs["beta"] = 0.5
    assert open_lattices(tmp_path / "b.h5").attrs["T"] == 2.0


def _bad_inputs(tmp):
    s = structured_spins(6, 8)
    np.save(tmp / "rank4.npy", s[:, None])
    np.save(tmp / "rank1.npy", np.ones(8))
    np.save(tmp / "nonsquare.npy", np.ones((3, 8, 6)))
    np.save(tmp / "empty.npy", np.ones((0, 8, 8)))
    np.save(tmp / "tiny.npy", np.ones((3, 1, 1)))
    three = s.astype(np.int16)
    three[2, 3, 3] = 5
    np.save(tmp / "three.npy", three + 1)  # 0, 2 and 6
    nan = s.astype(np.float32)
    nan[4, 1, 1] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "const.npy", np.zeros((3, 8, 8), np.uint8))
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp / "field.npy", np.random.default_rng(0).normal(size=(3, 8, 8)))
    (tmp / "junk.h5").write_bytes(b"not hdf5 at all" * 10)
    (tmp / "cut.npy").write_bytes((tmp / "rank4.npy").read_bytes()[:100])
    with h5py.File(tmp / "two.h5", "w") as f:
        f["a"], f["b"] = s, s
    with h5py.File(tmp / "strings.h5", "w") as f:
        f["spins"] = np.array([b"ab", b"cd"])
    (tmp / "nopng").mkdir()
    (tmp / "unreadable.npy").write_bytes(b"")
    (tmp / "unreadable.npy").chmod(0)
    return {
        "rank4.npy": ("rank 4",),
        "rank1.npy": ("rank 1",),
        "nonsquare.npy": ("not square",),
        "empty.npy": ("holds no lattices",),
        "tiny.npy": ("L must be at least 2",),
        "three.npy": ("more than two distinct values (0, 2, 6, ...)",),
        "nan.npy": ("sample 4 holds NaN",),
        "const.npy": ("every site holds 0", "--values"),
        "objects.npy": ("Python objects",),
        "field.npy": ("continuous field", "--binarize"),
        "junk.h5": ("not a readable HDF5 file",),
        "cut.npy": ("not a readable .npy file",),
        "two.h5": ("no 'spins' dataset and 2 3-D datasets", "two.h5:/a"),
        "two.h5:/c": ("no dataset '/c'", "/a (6, 8, 8)"),
        "strings.h5": ("not numbers",),
        "missing.npy": ("no such file",),
        "nopng": ("without .png files",),
        "unreadable.npy": ("cannot read",),
    }


def test_bad_input_gives_one_line_naming_file_dataset_and_problem(tmp_path):
    import os

    for name, words in _bad_inputs(tmp_path).items():
        if name == "unreadable.npy" and os.geteuid() == 0:
            continue  # root reads everything
        with pytest.raises(IsingScaleError) as e:
            open_lattices(f"{tmp_path}/{name}", T=2.0).read()
        one_line(e, name.split(":")[0], *words)


def test_a_third_value_after_the_first_chunk_names_its_sample():
    """Detection reads the first 256 lattices; a value that breaks the convention later is
    an error when its chunk is read, naming its sample."""
    raw = np.random.default_rng(0).integers(0, 2, (1100, 128, 128)).astype(np.uint8) * 254
    raw[1050, 2, 2] = 17
    lat = open_lattices(raw, T=2.0)
    np.testing.assert_array_equal(lat.read(0, 30), np.where(raw[:30] > 0, 1, -1))
    with pytest.raises(IsingScaleError) as e:
        list(lat.chunks())
    one_line(e, "sample 1050 holds 17, not 0 or 254")


def test_fields_need_binarize_and_threshold_on_the_given_scale(spins):
    rng = np.random.default_rng(1)
    field = spins * rng.uniform(0.1, 2.0, spins.shape)
    with pytest.raises(IsingScaleError, match="continuous field"):
        open_lattices(field, T=2.0).read()
    np.testing.assert_array_equal(open_lattices(field, T=2.0, binarize=True).read(), spins)
    pixels = np.round(127 + 100 * field / np.abs(field).max()).astype(np.uint8)  # 8-bit image
    with pytest.raises(IsingScaleError, match="--binarize and --values"):
        open_lattices(pixels, T=2.0, binarize=True).read()
    lat = open_lattices(pixels, T=2.0, binarize=True, values="0,254")
    np.testing.assert_array_equal(lat.read(), spins)
    np.testing.assert_allclose(lat.read_field(), (2 * pixels.astype(np.float32) - 254) / 254)


def test_hdf5_picks_and_says_which(tmp_path, spins, capsys):
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_group("sim").create_dataset("lattices", data=spins)
        f["sim/energy"] = np.zeros(N)
    lat = open_lattices(tmp_path / "g.h5", T=2.0)
    assert lat.dataset == "/sim/lattices"
    err = capsys.readouterr().err.strip()
    guess = "no 'spins' dataset; reading the only 3-D dataset /sim/lattices"
    assert err == f"note: {tmp_path / 'g.h5'}: {guess}"
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["spins"], f["other"] = spins, spins
    assert open_lattices(tmp_path / "s.h5", T=2.0).dataset == "/spins"
    assert capsys.readouterr().err == ""
    lat = open_lattices(f"{tmp_path / 's.h5'}:other", T=2.0)
    assert lat.dataset == "/other" and lat.name == "s:other"


def test_mcising_output_read_as_it_is(tmp_path, capsys):
    from mcising.config import Algorithm, LatticeConfig, SimulationConfig
    from mcising.io import save_hdf5
    from mcising.simulation import Simulation

    cfg = SimulationConfig(
        lattice=LatticeConfig(size=8),
        algorithm=Algorithm.WOLFF,
        seed=3,
        temperatures=(2.5, isc.T_C),
        n_sweeps=40,
        n_thermalization=10,
        measurement_interval=2,
    )
    res = Simulation(cfg).run(show_progress=False)
    save_hdf5(res, tmp_path / "mc.h5")
    with pytest.raises(IsingScaleError) as e:
        open_lattices(tmp_path / "mc.h5")
    one_line(e, "mcising file with 2 temperatures", "T=2.269185")
    group = next(g for g in h5py.File(tmp_path / "mc.h5") if g.startswith("T=2.26"))
    capsys.readouterr()
    lat = open_lattices(f"{tmp_path / 'mc.h5'}:/{group}")
    assert capsys.readouterr().err == ""  # T and the dataset are recorded, nothing guessed
    assert lat.format == "mcising" and lat.attrs["kind"] == "montecarlo"
    assert lat.attrs["T"] == pytest.approx(isc.T_C, abs=1e-6) and lat.attrs["algorithm"] == "wolff"
    stored = np.asarray(res.configurations[min(res.configurations, key=lambda t: abs(t - 2.27))])
    np.testing.assert_array_equal(lat.read(), stored)
    assert lat.dataset == f"/{group}/configurations"


def test_provenance_records_file_dataset_and_sha256(tmp_path, spins):
    path = write_plain_h5(tmp_path / "p.h5", spins)
    prov = open_lattices(path, T=2.0).provenance()
    assert prov["file"] == str(path.resolve()) and prov["dataset"] == "/spins"
    assert prov["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["T_from"] == "given" and prov["values"] == "+-1 as stored"
    a, b = open_lattices(spins, T=2.0).sha256(), open_lattices(spins.copy(), T=2.0).sha256()
    assert a == b != open_lattices(-spins, T=2.0).sha256()
    png = write_skild_pngs(tmp_path / "png", spins)
    h1 = open_lattices(png, T=2.0).sha256()
    write_skild_pngs(png, -spins[:1])
    assert open_lattices(png, T=2.0).sha256() != h1


def test_opening_reads_one_chunk_and_chunks_stream_in_bounded_memory(tmp_path):
    """A 96 MiB file: opening (format, shape, value convention) allocates a few MiB (256
    lattices), and streaming it whole in 4 MiB chunks stays bounded by a chunk, not the file."""
    n, L = 6 * 1024, 128
    big = np.lib.format.open_memmap(tmp_path / "big.npy", "w+", np.uint8, (n, L, L))
    for i in range(0, n, 512):
        big[i : i + 512] = np.random.default_rng(i).integers(0, 2, (512, L, L)) * 254
    big.flush()
    del big
    with h5py.File(tmp_path / "big.h5", "w") as f:
        d = f.create_dataset("x/y", shape=(n, L, L), dtype=np.uint8)
        for i in range(0, n, 512):
            d[i : i + 512] = np.load(tmp_path / "big.npy", mmap_mode="r")[i : i + 512]
    for src in (tmp_path / "big.npy", tmp_path / "big.h5"):
        tracemalloc.start()
        lat = open_lattices(src, T=2.0)
        _, open_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = sum(int(b[:, 0, 0].sum()) for _, b in lat.chunks(size=256))
        _, stream_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert lat.n_samples == n and abs(total) < n
        assert open_peak < 8 * 2**20, open_peak  # the file is 96 MiB
        assert stream_peak < 28 * 2**20, stream_peak


def test_export_import_round_trip_bit_for_bit(tmp_path, spins):
    native = write_native(tmp_path / "n.h5", spins, T=2.4)
    for to in ("npz", "png"):
        out = export_lattices(native, tmp_path / to, to=to)
        back = import_lattices(out, tmp_path / f"back_{to}.h5")
        d = isc.read_ensemble(back)
        np.testing.assert_array_equal(d["spins"], spins)
        assert d["attrs"]["T"] == 2.4 and d["attrs"]["L"] == L
        prov = json.loads(d["attrs"]["merged_from"])[0]
        assert prov["format"] == to and len(prov["sha256"]) == 64
        with pytest.raises(IsingScaleError, match="use --overwrite"):
            export_lattices(native, tmp_path / to, to=to)


def test_png_export_is_what_the_skild_reference_code_reads(tmp_path, spins):
    """SKILD writes ((s + 1) * 127) as mode-L PNGs and reads them back through an image
    folder loader as RGB scaled to [-1, 1]: bright (254) is up."""
    from PIL import Image

    out = export_lattices(spins, tmp_path / "png", to="png", T=2.0)
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files[:2]] == ["ising_00000.png", "ising_00001.png"]
    assert len(files) == N
    for i, f in enumerate(files[:5]):
        img = Image.open(f)
        assert img.mode == "L" and img.size == (L, L)
        px = np.asarray(img)
        np.testing.assert_array_equal(px, ((spins[i].astype(np.int16) + 1) * 127).astype(np.uint8))
        rgb = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255 * 2 - 1
        np.testing.assert_array_equal(np.sign(rgb[..., 0]).astype(np.int8), spins[i])
    side = json.loads((out / "isingscale.json").read_text())
    assert side["values"] == [0, 254] and side["T"] == 2.0 and side["L"] == L


def test_reading_arrays_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, isingscale as isc\n"
        "x = np.ones((3, 4, 4), np.int8)\n"
        "isc.open_ensemble(x, T=2.0).spins.values; isc.show(x, T=2.0)\n"
        "isc.correlate(x, T=2.0, n_blocks=2, progress=False)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
