"""isingscale.evaluation end to end on L = 16 (fast): baselines vs Monte Carlo, n/a parts,
the nearest-neighbour baseline's known failure, resume and interruption."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from isingscale.errors import IsingScaleError
from isingscale.evaluation import evaluate, open_evaluation

from .conftest import HALF, L, replicate

BASELINES = ("nearest", "fourier", "bicubic")


def sel(ds, method, factor, coarsen):
    # "method" is also a keyword of Dataset.sel, so the dimension is selected with a dict.
    return ds.sel({"method": method, "factor": factor, "coarsen": coarsen})


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, truth_file, reference_spins):
    """nearest, fourier, bicubic, a method returning the reference lattices themselves, and
    two methods without checkpoints, at ×2 with both conventions (no plots: test_cli draws them)."""
    from isingscale.evaluation import register, unregister

    register(
        "truth", lambda coarse, kind, N, *, generator: reference_spins[: len(coarse)], replace=True
    )
    out = tmp_path_factory.mktemp("eval") / "api"
    try:
        res = evaluate(
            out,
            data=truth_file,
            factors=(2,),
            methods=(*BASELINES, "truth", "cnn", "sr3"),
            samples=HALF,
            batch=2 * HALF,
            progress=False,
            plots=False,
        )
    finally:
        unregister("truth")
    return out, res


def test_writes_dataset_report_and_ensembles(api_run):
    from isingscale.io import read_attrs

    out, res = api_run
    ds = open_evaluation(out)
    assert dict(ds.sizes) == {
        "method": 6,
        "factor": 1,
        "coarsen": 2,
        "r": L // 2 + 1,
        "k": L // 2 + 1,
    }
    assert list(ds["method"].values) == [*BASELINES, "truth", "cnn", "sr3"]
    assert list(ds["coarsen"].values) == ["fourier", "block"]
    for name in ("G2", "G2_err", "G4c_square", "G4c_square_err", "z_G2", "z_G4c", "ratio_G2"):
        assert ds[name].dims == ("method", "factor", "coarsen", "r"), name
    assert ds["S"].dims == ("method", "factor", "coarsen", "k") and ds["S_ratio"].dims[-1] == "k"
    for name in (
        "chi2_dof_G2",
        "max_abs_z_G2",
        "r_at_max_G4c",
        "energy",
        "rel_dev_abs_m",
        "binder",
        "seconds_per_lattice",
        "train_seconds",
        "passes",
    ):
        assert ds[name].dims == ("method", "factor", "coarsen"), name
    assert ds["mc_G2"].dims == ("r",) and int(ds["mc_n_samples"]) == HALF
    assert (
        ds.attrs["L"] == L
        and ds.attrs["samples"] == HALF
        and "isingscale evaluate" in ds.attrs["command"]
    )
    assert ds["n_coarse"].sel(factor=2.0).values.tolist() == [8, 8]
    done = ds["status"].sel({"method": [*BASELINES, "truth"]})
    assert (done == "done").all()
    assert np.isfinite(ds["seconds_per_lattice"].sel({"method": "nearest"})).all()
    # The returned Dataset is the one on disk.
    xr.testing.assert_allclose(res.dataset[["G2", "passes"]], ds[["G2", "passes"]])
    attrs = read_attrs(out / "ensembles" / "bicubic_x2_block.h5")
    assert attrs["method"] == "bicubic" and attrs["factor"] == 2.0 and attrs["coarsen"] == "block"
    assert attrs["n_samples"] == HALF and attrs["seconds"] >= 0 and attrs["checkpoint"] == "none"
    assert {"seconds_per_lattice", "n_coarse"} <= set(attrs)
    assert not list(out.rglob(".*tmp*")) and not (out / "plots").exists()


def test_report_has_a_method_by_factor_table_per_convention(api_run):
    out, res = api_run
    text = (out / "report.md").read_text()
    assert text == res.report
    for title in ("## Fourier-truncated inputs", "## Majority-rule block-spin inputs"):
        assert title in text
    tables = [b for b in text.split("\n\n") if b.startswith("| method |")]
    assert len(tables) == 2
    for table in tables:
        rows = table.splitlines()
        ncols = rows[0].count("|") - rows[0].count("\\|")
        assert all(r.count("|") - r.count("\\|") == ncols for r in rows), table
        assert len(rows) == 2 + 6  # header, rule, methods x factors
    assert "| nearest | ×2 | 8 → 16 |" in text and "**fail**" in text
    # n/a rows say why, not an error.
    assert "| cnn | ×2 | 8 → 16 | n/a: fourier input not supported (block input only) |" in text
    assert "n/a: no CNN checkpoint given (--cnn-checkpoint PATH)" in text
    assert "n/a: no SR3 checkpoint for ×2" in text
    assert "independent" in text and "second half" in text
    summary = res.summary()
    assert "nearest" in summary and "FAIL" in summary and "wrote" in summary


def test_nearest_known_failure_is_detected_and_the_reference_itself_passes(api_run):
    """Block replication makes every r = 1 neighbour pair inside a 2 x 2 block equal, so G2(1)
    comes out far above Monte Carlo: the report must fail it with the largest |z| at small r."""
    out, _ = api_run
    ds = open_evaluation(out)
    for c in ("fourier", "block"):
        p = sel(ds, "nearest", 2.0, c)
        assert p["passes"] == 0, c
        assert p["r_at_max_G2"] <= 2 and p["max_abs_z_G2"] > 3, c
        assert p["ratio_G2"].sel(r=1) > 1.05 and p["z_G2"].sel(r=1) > 3, c
        assert p["rel_dev_energy"] < -0.05, c  # more ordered: u further below zero
        t = sel(ds, "truth", 2.0, c)
        assert t["passes"] == 1 and t["max_abs_z_G2"] == 0 and t["max_abs_z_G4c"] == 0, c
    assert (ds["passes"].sel({"method": "truth"}) == 1).all()
    assert ds["passes"].sel({"method": "cnn"}).isnull().all()
    assert (ds["status"].sel({"method": "cnn"}) == "n/a").all()


def test_resume_skips_done_parts(tmp_path, truth_file, registered):
    calls = []

    def counting(coarse, kind, N, *, generator):
        calls.append(N / coarse.shape[-1])
        return replicate(coarse, kind, N, generator=generator)

    registered("count", counting)
    kw = dict(
        data=truth_file,
        methods=("count",),
        coarsen=("block",),
        samples=HALF,
        batch=2 * HALF,
        progress=False,
        plots=False,
    )
    evaluate(tmp_path, factors=(2,), **kw)
    part = tmp_path / "parts" / "count_x2_block.nc"
    stamp = part.stat().st_mtime_ns
    assert calls == [2.0]
    with pytest.raises(IsingScaleError, match="use --resume"):
        evaluate(tmp_path, factors=(2,), **kw)
    res = evaluate(tmp_path, factors=(2, 4), resume=True, **kw)
    assert calls == [2.0, 4.0] and part.stat().st_mtime_ns == stamp
    assert (res.dataset["status"] == "done").all()
    with pytest.raises(IsingScaleError, match="samples"):
        evaluate(tmp_path, factors=(2,), resume=True, **{**kw, "samples": HALF - 1})


def test_interrupt_keeps_done_parts_and_resume_finishes(tmp_path, truth_file, registered):
    """Ctrl-C in the third part (CLI: exit 130): the two parts done survive, none half-written."""
    from click.testing import CliRunner

    from isingscale.cli import main

    state = {"interrupt": True, "calls": 0}

    def fragile(coarse, kind, N, *, generator):
        state["calls"] += 1
        if state["interrupt"] and N / coarse.shape[-1] == 4:
            raise KeyboardInterrupt
        return replicate(coarse, kind, N, generator=generator)

    registered("fragile", fragile)
    args = [
        "evaluate",
        "--data",
        truth_file,
        "--factors",
        "2,4",
        "--methods",
        "nearest,fragile",
        "--coarsen",
        "block",
        "--samples",
        HALF,
        "--batch",
        2 * HALF,
        "--out",
        tmp_path,
        "--no-progress",
        "--no-plots",
    ]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 130 and "Interrupted" in res.output
    parts = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert parts == ["fragile_x2_block.nc", "nearest_x2_block.nc", "nearest_x4_block.nc"]
    assert (
        not list(tmp_path.rglob(".*tmp*"))
        and not (tmp_path / "ensembles" / "fragile_x4_block.h5").exists()
    )
    partial = open_evaluation(tmp_path)
    assert partial.attrs["interrupted"] == 1
    assert sel(partial, "fragile", 4.0, "block")["status"].item() == "pending"
    assert "--resume" in (tmp_path / "report.md").read_text()
    state.update(interrupt=False, calls=0)
    res = CliRunner().invoke(main, [str(a) for a in args + ["--resume"]])
    assert res.exit_code == 0, res.output
    assert state["calls"] == 1
    ds = open_evaluation(tmp_path)
    assert (ds["status"] == "done").all() and ds.attrs["interrupted"] == 0


def test_simulated_ground_truth_uses_two_independent_seeds(tmp_path):
    from isingscale.io import read_attrs, read_ensemble

    res = evaluate(
        tmp_path,
        L=8,
        factors=(2,),
        methods=("nearest",),
        coarsen=("block",),
        samples=8,
        progress=False,
        plots=False,
    )
    ref, inp = (tmp_path / "mc" / "mc_L8_seed2.h5"), (tmp_path / "mc" / "mc_L8_seed3.h5")
    assert read_attrs(ref)["seed"] == 2 and read_attrs(inp)["seed"] == 3
    assert not np.array_equal(read_ensemble(ref)["spins"], read_ensemble(inp)["spins"])
    assert res.dataset.attrs["reference"] == str(ref) and res.dataset.attrs["inputs"] == str(inp)
    assert sel(res.dataset, "nearest", 2.0, "block")["status"].item() == "done"
