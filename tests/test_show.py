"""isingscale show: rows of lattices; a super-resolved file brings its coarse input and its
Monte Carlo truth; small grey PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import isingscale as isc
from isingscale.analysis.show import fourier_lowpass
from isingscale.blocks import block_spins
from isingscale.cli import main

from ._lattices import structured_spins, write_native

L, N = 16, 6


def panels(fig):
    """Per row: the images drawn (as float arrays) and the row's first title."""
    ncols = sum(1 for ax in fig.axes if ax.get_subplotspec().rowspan.start == 0)
    rows = [fig.axes[i : i + ncols] for i in range(0, len(fig.axes), ncols)]
    return [
        (
            [np.asarray(ax.images[0].get_array()) for ax in row if ax.images],
            row[0].get_title("left"),
        )
        for row in rows
    ]


@pytest.fixture
def truth(tmp_path):
    return write_native(tmp_path / "truth.h5", structured_spins(N, L, seed=2))


def _superresolved(path, spins, **attrs):
    with isc.create_ensemble(path, L=spins.shape[-1], kind="superresolved", attrs=attrs) as w:
        w.append(spins)
    return path


def test_rows_samples_and_titles(tmp_path, truth):
    s = isc.read_ensemble(truth)["spins"]
    fig = isc.show([truth, s[:2]], samples=3, labels=["mc", "mine"])
    rows = panels(fig)
    assert [len(imgs) for imgs, _ in rows] == [3, 2]
    assert rows[0][1] == "mc, L=16, #0" and rows[1][1] == "mine, L=16, #0"
    np.testing.assert_array_equal(rows[0][0][2], s[2])
    assert [ax.get_title("right") for ax in fig.axes[1:3]] == ["#1", "#2"]


def test_superresolved_from_a_coarse_file_shows_input_output_truth(tmp_path, truth):
    s = isc.read_ensemble(truth)["spins"]
    coarse = tmp_path / "coarse.h5"
    field = fourier_lowpass(s, 8).astype(np.float32)
    with isc.create_ensemble(
        coarse, L=8, kind="coarse", attrs={"source": str(truth.resolve()), "source_L": L}
    ) as w:
        w.append(field=field)
    sr = _superresolved(tmp_path / "sr.h5", -s, source=str(coarse.resolve()), sizes=[8, 16])
    res = CliRunner().invoke(
        main, ["show", str(sr), "--samples", "2", "--out", str(tmp_path / "f.png")]
    )
    assert res.exit_code == 0, res.output
    rows = panels(isc.show(sr, samples=2))
    assert [t for _, t in rows] == [
        "input coarse.h5, L=8, #0",
        "sr (super-resolved), L=16, #0",
        "truth truth.h5, L=16, #0",
    ]
    np.testing.assert_allclose(rows[0][0][1], field[1])
    np.testing.assert_array_equal(rows[1][0][0], -s[0])
    np.testing.assert_array_equal(rows[2][0][1], s[1])


@pytest.mark.parametrize("kind", ["block", "fourier"])
def test_superresolved_from_fresh_monte_carlo_recomputes_the_input(
    tmp_path, truth, kind, monkeypatch
):
    s = isc.read_ensemble(truth)["spins"]
    sr = _superresolved(tmp_path / "sr.h5", s, source="truth.h5", sizes=[8, 16], input_kind=kind)
    monkeypatch.chdir(tmp_path.parent)  # 'truth.h5' is found next to the output
    rows = panels(isc.show(sr, samples=2))
    assert rows[0][1] == f"input ({kind}, from truth), L=8, #0"
    want = block_spins(s[:2], 2) if kind == "block" else fourier_lowpass(s[:2], 8)
    np.testing.assert_allclose(rows[0][0][1], want[1], atol=1e-6)
    assert rows[2][1] == "truth truth.h5, L=16, #0"


def test_superresolved_without_its_sources_shows_itself(tmp_path):
    sr = _superresolved(tmp_path / "sr.h5", structured_spins(2, L), source="/nowhere/x.h5")
    assert [t for _, t in panels(isc.show(sr))] == ["sr (super-resolved), L=16, #0"]


def test_fourier_lowpass_is_upsample_s_fourier_coarsening():
    from isingscale.skild.coarsen import fourier_truncate

    s = structured_spins(3, 24, seed=4)
    for n in (6, 8, 11, 12):
        np.testing.assert_allclose(
            fourier_lowpass(s, n), fourier_truncate(s.astype(np.float64), n).numpy(), atol=1e-5
        )


def test_small_grey_png_and_large_lattices_in_blocks(tmp_path):
    big = structured_spins(2, 600, seed=1)
    fig = isc.show(big, out=tmp_path / "big.png", T=2.0, samples=2)
    ((imgs, title),) = panels(fig)
    assert title == "array, L=600 (3x3 majority blocks), #0"
    np.testing.assert_array_equal(imgs[1], block_spins(big[1:2], 3)[0])
    with Image.open(tmp_path / "big.png") as img:
        assert img.mode == "L"
    s = structured_spins(4, 128, seed=1)
    isc.show([s, s], out=tmp_path / "l128.png", T=2.0)
    assert (tmp_path / "l128.png").stat().st_size < 120_000
