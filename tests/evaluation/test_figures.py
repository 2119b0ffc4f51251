"""The pictures of a comparison: upsample's figure (CLI and Python) and evaluate's table."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from isingscale.analysis.show import fourier_lowpass
from isingscale.cli import main
from isingscale.evaluation import measure_file, upsample_figure
from isingscale.io import read_ensemble

from ..skild.conftest import make_checkpoint


@pytest.fixture(scope="module")
def upsampled(tmp_path_factory):
    """``isingscale upsample`` with fresh Monte Carlo (L = 16, 8 lattices, tiny checkpoint)."""
    tmp = tmp_path_factory.mktemp("upsample")
    ckpt = make_checkpoint(tmp / "tiny.safetensors")
    out = tmp / "sr.h5"
    args = ["upsample", "--factor", "2", "--L", "16", "--samples", "8", "--steps", "2"]
    args += ["--checkpoint", ckpt, "--out", out, "--no-progress", "--device", "cpu"]
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return out, tmp / "sr_truth.h5", res.output


def test_upsample_writes_its_figure_next_to_the_output_and_prints_the_path(upsampled):
    out, truth, output = upsampled
    figure = out.with_suffix(".png")
    assert truth.exists()
    assert output.strip().splitlines()[-1] == f"figure: {figure}"
    assert output.index("comparison with the ground truth") < output.index("figure:")
    with Image.open(figure) as img:
        assert img.mode == "P" and img.size == (900, 860)  # a palette PNG, 9 x 8.6 in at 100 dpi
    assert 5_000 < figure.stat().st_size < 100_000


def test_upsample_figure_draws_input_output_truth_and_the_measured_ratios(upsampled):
    out, truth, _ = upsampled
    fig = upsample_figure(out, truth)
    top, bottom = fig.subfigs
    panels = [ax.images[0].get_array() for ax in top.axes]
    titles = [ax.get_title() for ax in top.axes]
    assert titles[0].startswith("input (fourier") and titles[1:] == [
        "output, L=16",
        "Monte Carlo truth, L=16",
    ]
    sr, mc = read_ensemble(out)["spins"][0], read_ensemble(truth)["spins"][0]
    np.testing.assert_array_equal(panels[1], sr)
    np.testing.assert_array_equal(panels[2], mc)
    np.testing.assert_allclose(panels[0], fourier_lowpass(mc[None], 8)[0], atol=1e-6)
    # Below: G2 and -G4c (curves, then ratios); the ratio drawn is output / Monte Carlo.
    g2, g4c, ratio_g2, ratio_g4c = bottom.axes
    a, b = measure_file(out), measure_file(truth)
    r = np.arange(1, 9)
    for ax, name in ((ratio_g2, "G2"), (ratio_g4c, "G4c_square")):
        drawn = ax.containers[1].lines[0].get_ydata()
        np.testing.assert_allclose(drawn, a[name].values[r] / b[name].values[r], rtol=1e-6)
    # the torus CFT at L = 16 is drawn on both curve panels
    assert [ln.get_label() for ln in g2.get_lines() if ln.get_label() == "G2_torus"]
    assert [ln.get_label() for ln in g4c.get_lines() if ln.get_label() == "G4c_square_torus"]


def test_the_table_picture_colours_the_bar(tmp_path):
    import xarray as xr

    from isingscale.evaluation.plots import table_cells

    def part(method, z, du, passes, status="done", reason=""):
        return xr.Dataset(
            {
                "method": method,
                "factor": 2.0,
                "status": status,
                "reason": reason,
                "max_abs_z_G2": z,
                "r_at_max_G2": 1.0,
                "max_abs_z_G4c": 0.5,
                "r_at_max_G4c": 2.0,
                "rel_dev_energy": du,
                "rel_dev_abs_m": 0.0,
                "dev_binder": 0.0,
                "spectrum_error_db": 0.1,
                "passes": float(passes),
                "seconds_per_lattice": 1e-3,
            }
        )

    good, green = table_cells(part("skild", 1.2, 0.004, True))
    bad, red = table_cells(part("nearest", 7.5, -0.2, False))
    na, grey = table_cells(part("sr3", np.nan, np.nan, False, "n/a", "no checkpoint for ×2"))
    assert good[:4] == ["skild", "×2", "1.20 (1)", "0.50 (2)"] and good[8] == "pass"
    assert bad[4] == "-20.00 %" and bad[8] == "fail"
    assert green[2] == green[4] == green[8] != red[2] == red[4] == red[8]
    assert green[3] == red[3]  # G4c within the bar in both
    assert na[2] == "no checkpoint for ×2" and len(set(grey)) == 1 and grey[0] not in green
