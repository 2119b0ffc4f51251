"""``isingscale evaluate`` from the command line, and its one-line errors (no work done)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.errors import IsingScaleError
from isingscale.evaluation import evaluate, open_evaluation
from isingscale.evaluation.plan import make_plan

from .conftest import HALF


def run(*args):
    return CliRunner().invoke(main, ["evaluate", *[str(a) for a in args]])


def test_cli_end_to_end_with_plots(tmp_path, truth_file):
    out = tmp_path / "ev"
    res = run(
        "--data",
        truth_file,
        "--factors",
        "2",
        "--methods",
        "nearest,bicubic",
        "--coarsen",
        "block",
        "--samples",
        HALF,
        "--out",
        out,
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert "Majority-rule block-spin inputs" in res.output and "FAIL" in res.output
    assert f"wrote {out / 'evaluation.nc'}" in res.output
    ds = open_evaluation(out)
    assert dict(ds.sizes) == {"method": 2, "factor": 1, "coarsen": 1, "r": 9, "k": 9}
    assert ds.attrs["command"].startswith(
        "isingscale evaluate --factors 2 --methods nearest,bicubic"
    )
    pngs = ("G2_x2_block.png", "G4c_x2_block.png", "spectrum_x2_block.png", "deviations.png")
    for png in (*pngs, "table.png"):
        assert (out / "plots" / png).stat().st_size > 1000, png
    report = (out / "report.md").read_text()
    assert "`plots/deviations.png`" in report and "`plots/table.png`" in report


def test_help_lists_the_options():
    res = CliRunner().invoke(main, ["evaluate", "--help"])
    assert res.exit_code == 0
    for opt in (
        "--factors",
        "--methods",
        "--coarsen",
        "--L",
        "--samples",
        "--data",
        "--checkpoint",
        "--sr3-checkpoint",
        "--cnn-checkpoint",
        "--out",
        "--resume",
        "--scheduler",
        "--seed",
        "--batch",
        "--device",
        "--progress",
        "Examples",
    ):
        assert opt in res.output, opt


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--methods", "nearest,magic"],
            "unknown method 'magic'; expected some of skild, ssd, sr3, cnn",
        ),
        (["--factors", "1,2"], "factor must be greater than 1, got 1"),
        (["--factors", "2,x"], "bad factor 'x'"),
        (["--factors", "16", "--coarsen", "fourier"], "factor 16 does not fit L=16"),
        (
            ["--factors", "3", "--coarsen", "block"],
            "factor 3 does not fit L=16: block spins need an integer factor",
        ),
        (["--coarsen", "fourier,median"], "unknown coarse-graining 'median'"),
        (["--sr3-checkpoint", "4:run/x4.safetensors"], "expected F=PATH"),
        (["--sr3-checkpoint", "4=nope.safetensors"], "nope.safetensors: no such file"),
        (["--checkpoint", "nope.safetensors"], "--checkpoint nope.safetensors: no such file"),
        (["--cnn-checkpoint", "nope.safetensors"], "no such file"),
        (["--L", "32"], "holds L=16 lattices, but L=32 was asked for"),
        (["--scheduler", "not an address"], "bad scheduler address"),
    ],
)
def test_one_line_errors_before_any_work(tmp_path, truth_file, args, message):
    out = tmp_path / "ev"
    res = run("--data", truth_file, "--L", 16, "--out", out, "--no-progress", *args)
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_data_needs_two_lattices(tmp_path):
    import numpy as np

    from isingscale.io import create_ensemble

    with create_ensemble(tmp_path / "one.h5", L=8, kind="montecarlo") as w:
        w.append(np.ones((1, 8, 8), dtype=np.int8))
    with pytest.raises(IsingScaleError, match="need at least 2"):
        evaluate(tmp_path / "ev", data=tmp_path / "one.h5", methods=("nearest",), progress=False)


def test_a_convention_that_does_not_fit_a_factor_is_na_not_an_error():
    plan = make_plan(
        L=16,
        factors=(2, 2.5),
        methods="nearest",
        coarsen=("fourier", "block"),
        samples=10,
        data=None,
        checkpoint=None,
        sr3_checkpoints=None,
        cnn_checkpoint=None,
        seed=0,
        batch=8,
        device="cpu",
    )
    assert plan.n_coarse == {(2.0, "fourier"): 8, (2.0, "block"): 8, (2.5, "fourier"): 6}
    assert "integer factor" in plan.misfit[(2.5, "block")]
