"""Every SKILD command reads lattices from anywhere, and gives the same numbers from each.

The same lattices are written four ways: an isingscale ensemble file (the reference), a plain
HDF5 file holding only a ``spins`` dataset (no attributes), a ``.npy`` and a folder of 0/254
PNGs (``isc.export_lattices``). ``coarsen``, ``upsample --input``, ``evaluate --data`` and
``train skild | sr3 | cnn --data`` run on each through the CLI with fixed seeds; the outputs
must equal those from the ensemble file bit for bit (a source read transposed, flipped, with
the wrong convention or with other lattices would change them). Bad input is a one-line error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import isingscale as isc
from isingscale.cli import main
from isingscale.skild.checkpoint import read_checkpoint

from .._lattices import structured_spins, write_native, write_plain_h5

FORMATS = ("plain", "npy", "png")
CPU = ("--device", "cpu", "--no-progress")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """The commands give torch every core the process may use; here one thread, as the rest
    of the SKILD tests (on 2 shared cores more threads wait for each other). Every run in a
    comparison uses the same count."""
    monkeypatch.setattr("isingscale.cli.options.default_threads", lambda: 1)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    res = run(*args)
    assert res.exit_code == 0, res.output
    return res


def assert_one_line_error(res, match):
    """Exit code 1 and one line ``Error: ...`` naming the problem (besides the reader's notes)."""
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.strip().splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert match in lines[0], res.output


def write_sources(folder, spins) -> dict:
    """{"native", "plain", "npy", "png"}: the same ±1 lattices in each format."""
    folder.mkdir(parents=True, exist_ok=True)
    native = write_native(folder / "native.h5", spins)
    np.save(folder / "lattices.npy", spins)
    return {
        "native": native,
        "plain": write_plain_h5(folder / "plain.h5", spins),
        "npy": folder / "lattices.npy",
        "png": isc.export_lattices(native, folder / "png", to="png"),
    }


@pytest.fixture(scope="module")
def fine(tmp_path_factory):
    """32 structured 16 x 16 lattices in every format."""
    return write_sources(tmp_path_factory.mktemp("fine"), structured_spins(32, 16, seed=5))


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    """8 x 8 majority-rule block spins of 6 lattices in every format."""
    spins = isc.skild.block_spins(structured_spins(6, 16, seed=6), 2)
    return write_sources(tmp_path_factory.mktemp("coarse"), spins)


def spins_of(path, dataset="spins"):
    return isc.read_ensemble(path, datasets=(dataset,))[dataset]


@pytest.mark.parametrize("method", ["fourier", "block"])
def test_coarsen_reads_every_source(tmp_path, fine, method):
    dataset = "field" if method == "fourier" else "spins"
    outs = {}
    for fmt, src in fine.items():
        ok("coarsen", src, "--factor", 2, "--method", method, "--out", tmp_path / f"{fmt}.h5")
        outs[fmt] = spins_of(tmp_path / f"{fmt}.h5", dataset)
    for fmt in FORMATS:
        np.testing.assert_array_equal(outs[fmt], outs["native"], err_msg=fmt)
    attrs = isc.read_attrs(tmp_path / "plain.h5")
    recorded = json.loads(attrs["input"]) if isinstance(attrs["input"], str) else attrs["input"]
    assert recorded["dataset"] == "/spins" and recorded["file"] == str(fine["plain"].resolve())
    assert len(recorded["sha256"]) == 64 and attrs["source"] == f"{fine['plain'].resolve()}:/spins"


def test_upsample_reads_every_source(tmp_path, coarse, tiny_checkpoint):
    common = ("--factor", 2, "--checkpoint", tiny_checkpoint, "--steps", 3, "--seed", 7, *CPU)
    outs = {}
    for fmt, src in coarse.items():
        ok("upsample", "--input", src, "--out", tmp_path / f"{fmt}.h5", *common)
        outs[fmt] = spins_of(tmp_path / f"{fmt}.h5")
        assert isc.read_attrs(tmp_path / f"{fmt}.h5")["input_kind"] == "block"
    for fmt in FORMATS:
        np.testing.assert_array_equal(outs[fmt], outs["native"], err_msg=fmt)
    # A Fourier-coarsened field (float) from a plain HDF5 file or a .npy: Fourier input.
    field = isc.skild.coarsen(coarse["native"], factor=2)  # (6, 4, 4) float32, in memory
    np.save(tmp_path / "field.npy", field)
    write_plain_h5(tmp_path / "field.h5", field, name="field", dtype=np.float32)
    with isc.create_ensemble(tmp_path / "field_native.h5", L=4, kind="coarse") as w:
        w.append(field=field)
    got = []
    for src in ("field_native.h5", "field.npy", "field.h5"):
        out = tmp_path / f"up_{src}.h5"
        ok("upsample", "--input", tmp_path / src, "--out", out, *common)
        assert isc.read_attrs(out)["input_kind"] == "fourier"
        got.append(spins_of(out))
    np.testing.assert_array_equal(got[1], got[0])
    np.testing.assert_array_equal(got[2], got[0])


def test_evaluate_reads_every_source(tmp_path, fine):
    values = {}
    for fmt, src in fine.items():
        out = tmp_path / fmt
        args = ("--factors", 2, "--methods", "nearest", "--coarsen", "block", "--samples", 16)
        ok("evaluate", "--data", src, *args, "--out", out, "--no-progress", "--no-plots")
        ds = isc.evaluation.open_evaluation(out)
        values[fmt] = {k: ds[k].values for k in ("G2", "G4c_square", "energy", "mc_G2", "z_G2")}
    for fmt in FORMATS:
        for k, v in values[fmt].items():
            np.testing.assert_array_equal(v, values["native"][k], err_msg=f"{fmt} {k}")


NET = ("--base-channels", 4, "--depth", 2, "--channel-mult", "1,2,2", "--ema", 0)
TRAINERS = {  # no EMA: the written weights are those of the last step, which saw the data
    "skild": (*NET, "--batch", 2),
    "sr3": ("--factor", 2, *NET, "--batch", 4),
    "cnn": ("--factor", 2, "--batch", 4),
}


def metadata(path, model: str) -> dict:
    if model == "cnn":
        from isingscale.baselines.cnn import load_cnn

        return load_cnn(path).meta
    return read_checkpoint(path)[0]


@pytest.mark.parametrize("model", list(TRAINERS))
def test_train_reads_every_source(tmp_path, fine, model):
    from safetensors.numpy import load_file

    weights, recorded = {}, {}
    other = tmp_path / "other.npy"  # other lattices: the weights must show it
    np.save(other, structured_spins(32, 16, seed=8))
    for fmt, src in {**fine, "other": other}.items():
        out = tmp_path / fmt
        args = ("--out", out, "--steps", 2, "--seed", 3, *TRAINERS[model], *CPU)
        ok("train", model, "--data", src, *args)
        weights[fmt] = load_file(out / "model.safetensors")
        recorded[fmt] = metadata(out / "model.safetensors", model)["training"]["data"][0]
    for fmt in FORMATS:
        assert weights[fmt].keys() == weights["native"].keys()
        for name, w in weights[fmt].items():
            np.testing.assert_array_equal(w, weights["native"][name], err_msg=f"{fmt} {name}")
        assert recorded[fmt]["n_samples"] == 32 and recorded[fmt]["L"] == 16
    ref = weights["native"]
    changed = [n for n, w in weights["other"].items() if not np.array_equal(w, ref[n])]
    assert len(changed) > len(ref) // 2, changed
    assert recorded["plain"]["dataset"] == "/spins" and recorded["png"]["format"] == "png"
    assert recorded["native"]["sha256"] != recorded["npy"]["sha256"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Bad lattice sources and the words their error must contain."""
    d = tmp_path_factory.mktemp("bad")
    np.save(d / "nonsquare.npy", np.ones((4, 8, 6), dtype=np.int8))
    np.save(d / "three.npy", np.arange(4 * 8 * 8).reshape(4, 8, 8) % 3)
    nan = np.random.default_rng(0).normal(size=(4, 8, 8)).astype(np.float32)
    nan[2, 1, 1] = np.nan
    np.save(d / "nan.npy", nan)
    write_plain_h5(d / "plain.h5", structured_spins(4, 8))
    return {
        d / "nonsquare.npy": "not square",
        d / "three.npy": "more than two distinct values",
        d / "nan.npy": "sample 2",
        f"{d / 'plain.h5'}:/missing": "missing",
    }


@pytest.mark.parametrize("command", ["coarsen", "upsample", "evaluate", "train"])
def test_bad_sources_are_one_line_errors(tmp_path, bad, tiny_checkpoint, command):
    for i, (src, words) in enumerate(bad.items()):
        out = tmp_path / f"o{i}"
        args = {
            "coarsen": ("coarsen", src, "--factor", 2, "--out", f"{out}.h5"),
            "upsample": ("upsample", "--input", src, "--factor", 2, "--out", f"{out}.h5"),
            "evaluate": ("evaluate", "--data", src, "--methods", "nearest", "--out", out),
            "train": ("train", "skild", "--data", src, "--out", out, "--steps", 1),
        }[command]
        extra = ("--checkpoint", tiny_checkpoint, *CPU) if command == "upsample" else ()
        assert_one_line_error(run(*args, *extra), words)
        assert not (tmp_path / f"o{i}.h5").exists()


def test_python_api_arrays_in_arrays_out(tmp_path, fine, tiny_checkpoint):
    """coarsen, upsample and generate take numpy / torch / xarray lattices and, without
    ``out``, return arrays equal bit for bit to what they write with ``out``."""
    import torch
    import xarray as xr

    x = isc.read_ensemble(fine["native"], datasets=("spins",))["spins"][:4]
    for method, dataset in (("fourier", "field"), ("block", "spins")):
        path = isc.skild.coarsen(fine["native"], factor=2, method=method, out=tmp_path / method)
        on_file = spins_of(path, dataset)[:4]
        for given in (x, torch.as_tensor(x), xr.DataArray(x, dims=("sample", "y", "x"))):
            got = isc.skild.coarsen(given, factor=2, method=method)
            assert got.dtype == on_file.dtype
            np.testing.assert_array_equal(got, on_file, err_msg=f"{method} {type(given)}")
    common = dict(factor=2, checkpoint=tiny_checkpoint, steps=2, seed=1, device="cpu")
    blocks = isc.skild.coarsen(x, factor=2, method="block")
    res = isc.skild.upsample(torch.as_tensor(blocks), save_field=True, progress=False, **common)
    written = isc.skild.upsample(blocks, out=tmp_path / "up.h5", progress=False, **common)
    assert res.path is None and res.spins.shape == (4, 16, 16) and res.field.dtype == np.float32
    np.testing.assert_array_equal(res.spins, spins_of(written.path))
    assert res.attrs["input_kind"] == "block" and len(res.attrs["input"]["sha256"]) == 64
    kw = dict(L=16, samples=3, steps=2, seed=2, device="cpu", progress=False)
    spins = isc.skild.generate(tiny_checkpoint, **kw)
    path = isc.skild.generate(tiny_checkpoint, out=tmp_path / "g.h5", **kw)
    assert spins.dtype == np.int8 and spins.shape == (3, 16, 16)
    np.testing.assert_array_equal(spins, spins_of(path))


def test_reading_options_reach_the_reader(tmp_path, fine, coarse, tiny_checkpoint):
    """--values, --T and --binarize are those of correlate and import, passed to the reader."""
    ok("coarsen", fine["native"], "--factor", 2, "--method", "block", "--out", tmp_path / "a.h5")
    flipped = ("--values", "254,0", "--factor", 2, "--method", "block", "--out", tmp_path / "b.h5")
    ok("coarsen", fine["png"], *flipped)  # 254 -> -1: every spin the other way
    np.testing.assert_array_equal(spins_of(tmp_path / "b.h5"), -spins_of(tmp_path / "a.h5"))
    ok("coarsen", fine["npy"], "--T", 2.5, "--factor", 2, "--out", tmp_path / "t.h5")
    assert isc.read_attrs(tmp_path / "t.h5")["T"] == 2.5
    field = isc.skild.coarsen(coarse["native"], factor=2)
    np.save(tmp_path / "field.npy", field)
    common = ("--factor", 2, "--checkpoint", tiny_checkpoint, "--steps", 2, *CPU)
    ok(
        "upsample",
        "--input",
        tmp_path / "field.npy",
        "--binarize",
        "--out",
        tmp_path / "s.h5",
        *common,
    )
    assert isc.read_attrs(tmp_path / "s.h5")["input_kind"] == "block"
