"""Pictures of a comparison with Monte Carlo, made from the files: what ``upsample`` measured.

:func:`upsample_figure` (``isingscale upsample`` writes it next to its output as
``<output stem>.png``): one row of lattices, the first sample's coarse input, output and
Monte Carlo truth (the :mod:`isingscale.analysis.show` machinery finds the input), and below
it G2(r) and -G4c(r) (square) of the output and of the truth on log-log axes with the torus
CFT at the ensembles' L, each over a ratio panel (output / Monte Carlo, combined errors).
:func:`correlator_figure` is the lower half alone, for any ensemble against any reference.

Curves and errors are :func:`isingscale.evaluation.measure_file`'s (jackknife over
``N_BLOCKS`` blocks of consecutive samples), the ones the comparison is judged on; r in
lattice spacings along the axes, r = 1 ... L/2. The CFT curves hold at Tc only and are
left out at another temperature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..analysis.plots import draw_curve, save_png
from ..analysis.references import reference_curves
from ..analysis.show import Row, draw_panel, images, reduce_for_display, upsample_inputs
from ..errors import IsingScaleError
from ..lattices import open_lattices
from .comparison import N_BLOCKS, measure_file

DPI = 100
CURVES = (("G2", 1.0, "G2 (axis)"), ("G4c_square", -1.0, "-G4c (square)"))


def upsample_figure(
    output,
    truth,
    *,
    out=None,
    label: str = "super-resolved",
    n_blocks: int = N_BLOCKS,
    measured: tuple[xr.Dataset, xr.Dataset] | None = None,
):
    """Lattices and correlators of a super-resolved ensemble against its Monte Carlo truth.

    output : the super-resolved ensemble file (``isingscale upsample``'s output, or any
        ensemble; its coarse input is drawn where :func:`isingscale.analysis.show.upsample_inputs`
        finds it). truth : the Monte Carlo ensemble file to compare with.
    out : write the figure there (a palette PNG, tens of kB) when given.
    label : the output's name in the legends.
    measured : (truth, output) measurements already made by :func:`measure_file` with
        ``n_blocks`` (e.g. ``compare(output, truth).measured``); None: measured here.
    Returns the matplotlib Figure (no pyplot).
    """
    from matplotlib.figure import Figure

    output, truth = Path(output), Path(truth)
    rows = lattice_rows(output, truth)
    fig = Figure(figsize=(9.0, 8.6), dpi=DPI)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 2.3])
    grid = dict(left=0.02, right=0.98, top=0.84, bottom=0.02, wspace=0.1)
    axes = top.subplots(1, len(rows), squeeze=False, gridspec_kw=grid)[0]
    for ax, row in zip(axes, rows):
        draw_panel(ax, row, 0)
        ax.set_title(row.label, fontsize=8)
    top.suptitle(
        f"{output.name} against {truth.name}: the first lattice (-1 black, +1 white)", fontsize=9
    )
    if measured is None:
        measured = measure_file(truth, n_blocks=n_blocks), measure_file(output, n_blocks=n_blocks)
    draw_correlators(bottom, *measured, labels=("Monte Carlo", label))
    if out is not None:
        save_png(fig, out, dpi=DPI)
    return fig


def correlator_figure(
    output,
    reference,
    *,
    out=None,
    labels: tuple[str, str] = ("Monte Carlo", "super-resolved"),
    n_blocks: int = N_BLOCKS,
):
    """G2 and -G4c (square) of an ensemble file against a Monte Carlo reference file, with
    the torus CFT and ratio panels (the lower half of :func:`upsample_figure`).

    labels : (reference, output) names in the legends. out : write a palette PNG there.
    Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 6.0), dpi=DPI)
    draw_correlators(
        fig,
        measure_file(reference, n_blocks=n_blocks),
        measure_file(output, n_blocks=n_blocks),
        labels=labels,
    )
    if out is not None:
        save_png(fig, out, dpi=DPI)
    return fig


def lattice_rows(output: Path, truth: Path) -> list[Row]:
    """The first lattice of the coarse input (where found), the output and the truth, each a
    one-image Row labelled with what it is and its L (shrunk for display above 256)."""
    lat = open_lattices(output)
    if len(lat) == 0:
        raise IsingScaleError(f"{output}: no lattices to draw")
    coarse, _ = upsample_inputs(lat, 1)
    out_row = images(lat, 1)
    out_row.label = f"output, L={lat.L}"
    ref = open_lattices(truth)
    truth_row = images(ref, 1)
    truth_row.label = f"Monte Carlo truth, L={ref.L}"
    rows = [out_row, truth_row]
    if coarse is not None:
        rows.insert(0, coarse)
    return [reduce_for_display(r) for r in rows]


def paired(reference: xr.Dataset, output: xr.Dataset, labels: tuple[str, str]) -> xr.Dataset:
    """The two measurements as one Dataset over (ensemble, r), reference first, with the
    torus CFT curves ``G2_torus`` and ``G4c_square_torus`` at the output's L and T.

    Ensembles of different L share the r they both have; the rest is nan on the shorter one."""
    names = [n for n, _, _ in CURVES]
    keep = names + [f"{n}_err" for n in names]
    both = [d[keep].drop_vars("r_radial", errors="ignore") for d in (reference, output)]
    ds = xr.concat(both, dim="ensemble", join="outer").assign_coords(ensemble=list(labels))
    L, T = int(output.attrs["L"]), float(output.attrs.get("T", np.nan))
    ref, _ = reference_curves(L, T, ("square",))
    for name in ("G2_torus", "G4c_square_torus"):
        ds[name] = ref[name].reindex(r=ds["r"].values)
    ds.attrs["L"] = (
        L if int(reference.attrs["L"]) == L else f"{L} (reference {reference.attrs['L']})"
    )
    return ds


def draw_correlators(fig, reference: xr.Dataset, output: xr.Dataset, labels) -> None:
    """G2 and -G4c (square) columns onto ``fig`` (a Figure or SubFigure): curves with the
    torus CFT above, ratios to the reference below."""
    ds = paired(reference, output, labels)
    grid = dict(left=0.09, right=0.98, top=0.88, bottom=0.08, hspace=0.06, wspace=0.28)
    axes = fig.subplots(2, 2, sharex="col", gridspec_kw={"height_ratios": [3, 1.3], **grid})
    for col, (name, sign, ylabel) in enumerate(CURVES):
        ax, axr = axes[0, col], axes[1, col]
        draw_curve(
            ax, axr, ds, name, sign=sign, ylabel=ylabel, references=((f"{name}_torus", "-"),)
        )
        ax.set_title(f"{ylabel}, L = {ds.attrs['L']}", fontsize=9)
        ax.legend(fontsize=7)
    n = (int(reference["n_samples"]), int(output["n_samples"]))
    fig.suptitle(
        f"{labels[1]}: {n[1]} lattices; {labels[0]}: {n[0]} lattices; torus CFT in black",
        fontsize=9,
    )


__all__ = ["upsample_figure", "correlator_figure", "draw_correlators", "lattice_rows", "paired"]
