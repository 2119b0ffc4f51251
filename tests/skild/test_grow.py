"""isingscale grow: stage planning, the size errors, the per-stage comparison, and a tiny
end-to-end growth (untrained network: the plumbing, not the physics; see the slow tests)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

from isingscale.errors import IsingScaleError
from isingscale.skild.stages import output_size, plan_stages

from .conftest import random_spins, write_spins
from .test_cli import assert_one_line_error, run

# -- stage planning


@pytest.mark.parametrize(
    ("n", "to", "sizes"),
    [
        (64, 1024, [64, 128, 256, 512, 1024]),  # octaves
        (128, 1024, [128, 256, 512, 1024]),
        (8, 32, [8, 16, 32]),
        (64, 96, [64, 96]),  # one stage, factor 1.5
        (32, 96, [32, 64, 96]),  # last stage takes the remaining factor 1.5
        (64, 1000, [64, 128, 256, 512, 1000]),  # not a power-of-2 multiple: last x1.953
        (100, 1024, [100, 200, 400, 800, 1024]),  # input not a multiple of 8
        (10, 64, [10, 16, 32, 64]),  # 20 is no size the network takes: 16
    ],
)
def test_plan_stages(n, to, sizes):
    got = plan_stages(n, to, multiple=8)
    assert got == sizes
    assert all(N % 8 == 0 for N in got[1:]) and got[-1] == to
    assert all(1 < b / a <= 2 for a, b in zip(got, got[1:])), got


def test_plan_stages_other_stage_factor():
    assert plan_stages(32, 1024, multiple=8, stage_factor=4) == [32, 128, 512, 1024]


@pytest.mark.parametrize(
    ("n", "to", "match"),
    [
        (64, 64, "--to 64 is not larger than the input size L=64"),
        (64, 32, "--to 32 is not larger than the input size L=64"),
        (64, 1020, "nearest working targets: 1016, 1024"),
    ],
)
def test_plan_stages_refusals(n, to, match):
    with pytest.raises(IsingScaleError, match=match):
        plan_stages(n, to, multiple=8)
    with pytest.raises(IsingScaleError, match="stage factor"):
        plan_stages(8, 64, multiple=8, stage_factor=1.0)


def test_output_size_names_nearest_working_factors():
    with pytest.raises(IsingScaleError) as e:
        output_size(32, 2.3, 8)
    msg = str(e.value)
    assert "factor 2.3 from L=32 gives 73.6" in msg and "2.25 (72), 2.5 (80)" in msg, msg
    assert output_size(32, 2.25, 8) == 72 and output_size(16, 2.5, 8) == 40
    # every factor the message names works, for awkward sizes and factors too
    rng = np.random.default_rng(0)
    for n, f in zip(rng.integers(5, 300, 40), rng.uniform(1.05, 4, 40)):
        try:
            output_size(int(n), float(f), 8)
        except IsingScaleError as err:
            named = str(err).split("nearest working factors: ")[1].split(", ")
            for item in named:
                factor, N = item.split(" (")
                assert output_size(int(n), float(factor), 8) == int(N.rstrip(")")), item


# -- the effective exponent and the per-stage comparison


def test_g2_slope_of_a_power_law_and_the_torus():
    from isingscale.evaluation.growth import g2_slope
    from isingscale.exact import plane_g2, torus_g2

    L = 256
    r = np.arange(L // 2 + 1, dtype=float)
    G2 = np.where(r > 0, plane_g2(np.maximum(r, 1)), 1.0)
    assert g2_slope(G2, L) == pytest.approx(-0.25, abs=1e-12)
    assert g2_slope(np.stack([G2, 2 * G2]), L) == pytest.approx([-0.25, -0.25], abs=1e-12)
    torus = np.where(r > 0, torus_g2(np.maximum(r, 1), 0, L), 1.0)
    assert -0.25 < g2_slope(torus, L) < -0.2  # flatter on the torus, by its finite size
    assert np.isnan(g2_slope(G2[:33], 64))  # r = 4 ... 4: one point


def _measured(G2, err, energy, abs_m, n=100, slope_err=1e-3):
    L = 2 * (len(G2) - 1)
    ds = xr.Dataset(coords={"r": np.arange(len(G2))}, attrs={"L": L, "n_samples": n})
    ds["G2"], ds["G2_err"] = ("r", G2), ("r", err)
    for name, v in (("energy", energy), ("abs_m", abs_m)):
        ds[name], ds[f"{name}_err"] = v, abs(v) * 1e-3
    from isingscale.evaluation.growth import g2_slope

    ds["slope"], ds["slope_err"] = float(g2_slope(G2, L)), slope_err
    return ds


def test_compare_stage_passes_itself_and_fails_a_shift():
    from isingscale.evaluation.growth import compare_stage

    L = 128
    r = np.arange(L // 2 + 1)
    G2 = 0.7 * np.maximum(r, 1) ** -0.25
    a = _measured(G2, 1e-3 * G2, -1.414, 0.6)
    row = compare_stage(a, a)
    assert row["verdict"] == "pass" and row["G2_max_z"] == 0 and row["slope_diff"] == 0
    b = _measured(1.02 * G2, 1e-3 * G2, -1.414 * 1.01, 0.6)
    row = compare_stage(a, b)
    assert row["verdict"].startswith("fail") and "G2 max |z|" in row["verdict"]
    assert "energy +0.99" in row["verdict"], row["verdict"]
    c = _measured(0.7 * np.maximum(r, 1) ** -0.30, 1e-3 * G2, -1.414, 0.6)
    assert "slope +0.050" in compare_stage(a, c)["verdict"]
    # the same slope difference with errors too large to tell: unresolved, not failed
    d = _measured(G2, 1e-3 * G2, -1.414, 0.6, slope_err=0.03)
    e = d.copy()
    e["slope"] = d["slope"] - 0.05
    assert compare_stage(d, e)["verdict"] == "unresolved: slope +0.050 ± 0.042"
    d["slope_err"] = e["slope_err"] = 0.01
    assert compare_stage(d, e)["verdict"] == "fail: slope +0.050"
    with pytest.raises(IsingScaleError, match="cannot judge L=128"):
        compare_stage(a, _measured(G2[:33], G2[:33] * 1e-3, -1.4, 0.6))


def test_measure_growth_matches_measure(tmp_path):
    """The one-pass grow measurement agrees with the package's measure (tested against
    brute force) on the same file."""
    from isingscale.evaluation import measure_file, measure_growth

    path = write_spins(tmp_path / "s.h5", random_spins(40, 32, seed=4))
    g, m = measure_growth(path, n_blocks=8), measure_file(path, n_blocks=8)
    for name in ("G2", "G2_err", "energy", "energy_err", "abs_m", "abs_m_err"):
        np.testing.assert_allclose(g[name].values, m[name].values, rtol=1e-10, err_msg=name)


# -- errors through the CLI: one line, exit code 1


def test_grow_errors(tmp_path, tiny_checkpoint):
    src = write_spins(tmp_path / "in8.h5", random_spins(3, 8, seed=1))
    ck = ("--checkpoint", tiny_checkpoint, "--device", "cpu", "--no-progress")
    out = ("--out", tmp_path / "g")
    assert_one_line_error(run("grow", src, "--to", 8, *out, *ck), "not larger than the input")
    assert_one_line_error(run("grow", src, "--to", 4, *out, *ck), "not larger than the input")
    assert_one_line_error(
        run("grow", src, "--to", 36, *out, *ck), "nearest working targets: 32, 40"
    )
    field = tmp_path / "field.h5"
    with h5py.File(field, "w") as f:
        f.create_dataset("spins", data=np.random.default_rng(0).normal(size=(3, 8, 8)))
        f.attrs["T"] = 2.269185314213022
    assert_one_line_error(run("grow", field, "--to", 16, *out, *ck), "--binarize")
    ref = write_spins(tmp_path / "ref32.h5", random_spins(3, 32, seed=2))
    assert_one_line_error(
        run("grow", src, "--to", 32, "--reference", f"64={ref}", *out, *ck), "no stage at L=64"
    )
    assert_one_line_error(
        run("grow", src, "--to", 32, "--reference", f"16={ref}", *out, *ck),
        "holds lattices of L=32",
    )
    hot = write_spins(tmp_path / "hot.h5", random_spins(3, 8), T=3.0)
    assert_one_line_error(run("grow", hot, "--to", 16, *out, *ck), "checkpoint's temperature")
    assert not (tmp_path / "g").exists()  # refused before anything was written
    # upsample: a factor whose output size the network cannot take
    assert_one_line_error(
        run("upsample", "--factor", 2.3, "--input", src, "--out", tmp_path / "u.h5", *ck),
        "nearest working factors: 2 (16), 3 (24)",
    )


# -- end to end


def test_grow_end_to_end_cli(tmp_path, tiny_checkpoint):
    src = write_spins(tmp_path / "in8.h5", random_spins(4, 8, seed=1))
    ref = write_spins(tmp_path / "ref32.h5", random_spins(8, 32, seed=2))
    res = run(
        "grow", src, "--to", 32, "--out", tmp_path / "g", "--reference", f"32={ref}",
        "--checkpoint", tiny_checkpoint, "--steps", 2, "--device", "cpu", "--no-progress",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "grew 4 lattices 8 -> 16 -> 32" in res.output and "| stage | L |" in res.output
    for i, N in ((1, 16), (2, 32)):
        with h5py.File(tmp_path / "g" / f"stage{i}_L{N}.h5") as f:
            assert f["spins"].shape == (4, N, N) and set(np.unique(f["spins"][:])) <= {-1, 1}
            assert f.attrs["stage"] == i and f.attrs["factor"] == 2.0
            assert len(f.attrs["checkpoint_sha256"]) == 64
            prov = json.loads(f.attrs["input_source"])
            assert prov["file"] == str(src.resolve()) and len(prov["sha256"]) == 64
    md = (tmp_path / "g" / "grow.md").read_text()
    assert (
        "\n| 1 | 16 | 4 | torus CFT" in md
        and "\n| 2 | 32 | 4 | MC" in md
        and f"MC {ref}" in md
        and "torus CFT" in md
    )
    assert (tmp_path / "g" / "grow.png").stat().st_size > 10_000
    with xr.open_dataset(tmp_path / "g" / "grow.nc", engine="h5netcdf") as ds:
        assert list(ds["L"].values) == [16, 32] and ds["n_ref"].values.tolist() == [0, 8]
    args = ["grow", src, "--to", 32, "--out", tmp_path / "g", "--checkpoint", tiny_checkpoint]
    again = run(*args, "--steps", 2, "--device", "cpu", "--no-progress", "--resume")
    assert again.exit_code == 0 and "grew 4 lattices 8 -> 16 -> 32" in again.output


def test_grow_python_non_power_of_two(tmp_path, tiny_checkpoint):
    import isingscale as isc

    x = random_spins(3, 8, seed=5)  # an in-memory array as the source
    res = isc.skild.grow(
        x, to=24, out=tmp_path / "g", checkpoint=tiny_checkpoint, steps=2, device="cpu",
        progress=False,
    )  # fmt: skip
    assert res.sizes == [8, 16, 24] and [p.name for p in res.paths] == [
        "stage1_L16.h5",
        "stage2_L24.h5",
    ]
    assert isc.read_attrs(res.paths[1])["factor"] == 1.5
    ds = isc.evaluation.grow_report(res, progress=False)  # torus CFT only, nothing written
    assert list(ds["reference"].values) == ["torus CFT", "torus CFT"]
    assert not (tmp_path / "g" / "grow.md").exists()
    with pytest.raises(IsingScaleError, match="already exists"):
        isc.skild.grow(x, to=24, out=tmp_path / "g", checkpoint=tiny_checkpoint, progress=False)


def _interrupt(path, keep: int) -> None:
    """The state a killed stage leaves: its flushed batches only."""
    with h5py.File(path, "r+") as f:
        for name in ("spins", "energy", "magnetization"):
            f[name].resize(keep, axis=0)
        f.attrs["n_samples"] = keep


def test_grow_resumes_bit_for_bit(tmp_path, tiny_checkpoint):
    import shutil

    import isingscale as isc

    x = random_spins(6, 8, seed=7)
    opts = dict(to=32, checkpoint=tiny_checkpoint, steps=2, device="cpu", batch=2, progress=False)
    full = isc.skild.grow(x, out=tmp_path / "full", **opts)
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    _interrupt(tmp_path / "cut" / "stage2_L32.h5", keep=2)  # stage 1 done, stage 2 cut short
    res = isc.skild.grow(x, out=tmp_path / "cut", resume=True, **opts)
    for a, b in zip(full.paths, res.paths):
        want, got = (isc.read_ensemble(p)["spins"] for p in (a, b))
        assert got.shape == (6, *want.shape[1:]) and np.array_equal(got, want), b.name
    # A stage file written with other settings is not continued; nor are both flags taken.
    _interrupt(tmp_path / "cut" / "stage2_L32.h5", keep=2)
    with pytest.raises(IsingScaleError, match="cannot resume .*stage1_L16.h5: it has seed=0"):
        isc.skild.grow(x, out=tmp_path / "cut", resume=True, **{**opts, "seed": 1})
    with pytest.raises(IsingScaleError, match="overwrite and resume exclude each other"):
        isc.skild.grow(x, out=tmp_path / "cut", resume=True, overwrite=True, **opts)
    with pytest.raises(IsingScaleError, match="use --resume to continue it"):
        isc.skild.grow(x, out=tmp_path / "cut", **opts)


# -- physics with the shipped checkpoint (slow: minutes on 2 cores)


def _wolff(tmp_path, L, samples, seed):
    from isingscale.mc.simulate import simulate

    out = tmp_path / f"wolff_L{L}_seed{seed}.h5"
    return simulate(L, samples=samples, seed=seed, chains=1, out=out, progress=False).path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("L_in", "to", "seeds"),
    [
        (64, 128, (11, 12)),  # one octave, the stage every growth repeats
        (64, 96, (21, 22)),  # the non-integer factor 1.5 in one stage
    ],
)
def test_grown_stage_matches_wolff(tmp_path, L_in, to, seeds):
    """64 held-out Wolff lattices grown with the shipped checkpoint against 1,000 independent
    Wolff lattices at the output size: the growth bar at the resolution 64 lattices give (G2
    within 2 combined SE at every r <= L/8, <|m|> within 2 SE, no significant miss of
    |du/u| < 0.5 % or |d slope| <= 0.01: "unresolved" is accepted, since the slope's SE with
    64 lattices is about 0.02)."""
    import isingscale as isc

    inp, ref = _wolff(tmp_path, L_in, 64, seeds[0]), _wolff(tmp_path, to, 1000, seeds[1])
    res = isc.skild.grow(inp, to=to, out=tmp_path / "g", device="cpu", progress=False)
    assert res.sizes == [L_in, to]
    ds = isc.evaluation.grow_report(res, references={to: ref}, progress=False)
    verdict = str(ds["verdict"].values[0])
    assert verdict == "pass" or verdict.startswith("unresolved"), isc.evaluation.grow_markdown(ds)


@pytest.mark.slow
@pytest.mark.parametrize(("L", "seed"), [(128, 12), (256, 13)])
def test_wolff_lattices_pass_the_torus_cft_judge(tmp_path, L, seed):
    """The judge of stages without a reference is fair: 1,000 Wolff lattices do not fail it
    (G2 within 2 SE of the torus CFT at r = 4 ... L/8, Kaufman's energy and the CFT curve's
    slope not missed by 2 SE; measured: max |z| 0.81 and 0.59, slope -0.232 ± 0.004 vs
    -0.229 at L = 128). 1,000 lattices do not resolve G2 at L/8 to 1 % (SE 0.9 %), so the
    verdict is "unresolved", not "pass"."""
    from isingscale.constants import T_C
    from isingscale.evaluation.growth import cft_reference, compare_stage, measure_growth

    grown = measure_growth(_wolff(tmp_path, L, 1000, seed))
    row = compare_stage(grown, cft_reference(L, T_C)[0])
    assert row["G2_max_z"] < 2 and not row["verdict"].startswith("fail"), row
