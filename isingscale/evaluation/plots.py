"""Evaluation figures (PNG, no pyplot state): per factor and convention, G2, -G4c and S(k)
of every method with Monte Carlo and the ratio to it (:func:`isingscale.analysis.plots.plot_curve`),
one figure of the energy, |m| and Binder deviations of every part, and the method × factor
table of report.md as a picture (``table.png``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import xarray as xr

from .comparison import ENERGY_TOL, MAX_Z, bar_for

_CURVES = (("G2", "r", 1.0, "G2"), ("G4c_square", "r", -1.0, "G4c"), ("S", "k", 1.0, "spectrum"))


def _with_mc(
    ds: xr.Dataset, factor: float, coarsen: str, name: str, dim: str, title: str
) -> xr.Dataset | None:
    """An ``ensemble`` Dataset [MC, done methods...] in the layout plot_curve expects."""
    sel = ds.sel(factor=factor, coarsen=coarsen)
    done = [
        str(m) for m in ds["method"].values if sel["status"].sel({"method": m}).item() == "done"
    ]
    if not done:
        return None
    vals = [ds[f"mc_{name}"].values] + [sel[name].sel({"method": m}).values for m in done]
    errs = [ds[f"mc_{name}_err"].values] + [
        sel[f"{name}_err"].sel({"method": m}).values for m in done
    ]
    return xr.Dataset(
        {
            title: (("ensemble", dim), np.stack(vals)),
            f"{title}_err": (("ensemble", dim), np.stack(errs)),
        },
        coords={"ensemble": ["Monte Carlo", *done], dim: ds[dim].values},
        attrs={"L": ds.attrs["L"]},
    )


def plot_deviations(ds: xr.Dataset, path: Path) -> Path:
    """Δu/u, Δ|m|/|m| (%) and ΔU4 per method; a marker per (factor, convention), combined errors."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 7.5))
    axes = fig.subplots(3, 1, sharex=True)
    methods = [str(m) for m in ds["method"].values]
    combos = [(float(f), str(c)) for f in ds["factor"].values for c in ds["coarsen"].values]
    width = 0.7 / max(1, len(combos))
    rows = (
        ("rel_dev_energy", "energy", 100.0, "Δu/u (%)", True),
        ("rel_dev_abs_m", "abs_m", 100.0, "Δ|m|/|m| (%)", True),
        ("dev_binder", "binder", 1.0, "ΔU4", False),
    )
    for ax, (dev, base, scale, label, relative) in zip(axes, rows):
        for j, (f, c) in enumerate(combos):
            sel = ds.sel(factor=f, coarsen=c)
            y = scale * sel[dev].values
            e = np.hypot(sel[f"{base}_err"].values, float(ds[f"mc_{base}_err"]))
            e = scale * (e / abs(float(ds[f"mc_{base}"])) if relative else e)
            x = np.arange(len(methods)) - 0.35 + (j + 0.5) * width
            ax.errorbar(
                x, y, e, fmt="o" if c == "fourier" else "s", ms=4, capsize=2, label=f"×{f:g} {c}"
            )
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_ylabel(label)
    axes[0].set_title(f"Deviation from Monte Carlo, L = {ds.attrs['L']} (error: combined SE)")
    axes[0].legend(fontsize=7, ncol=max(1, len(combos) // 3))
    axes[-1].set_xticks(np.arange(len(methods)), methods)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


_TABLE_HEAD = (
    "method",
    "×F",
    "G2 max|z| (r)",
    "G4c max|z| (r)",
    "Δu/u",
    "Δ|m|/|m|",
    "ΔU4",
    "S(k) err",
    "bar",
    "s / lattice",
)
_GOOD, _BAD, _NA = "#d9f0d3", "#f4c7c3", "#eeeeee"


def table_cells(p: xr.Dataset) -> tuple[list[str], list[str]]:
    """Cell texts and colours of one part (a row of :func:`plot_table`, columns as report.md's
    table): the bar's cells green within it, red outside; an n/a or pending part grey, with
    its reason in the third cell."""
    lead = [str(p["method"].item()), f"×{float(p['factor']):g}"]
    if str(p["status"].item()) != "done":
        why = str(p["reason"].item()) or str(p["status"].item())
        cells = lead + [why[:60]] + [""] * (len(_TABLE_HEAD) - 3)
        return cells, [_NA] * len(_TABLE_HEAD)

    def z(short: str) -> tuple[str, str]:
        v = float(p[f"max_abs_z_{short}"])
        text = f"{v:.2f} ({float(p[f'r_at_max_{short}']):.0f})" if np.isfinite(v) else "–"
        return text, _GOOD if v < MAX_Z else _BAD

    du = float(p["rel_dev_energy"])
    ok = float(p["passes"]) == 1
    cells = [
        *lead,
        z("G2")[0],
        z("G4c")[0],
        f"{100 * du:+.2f} %",
        f"{100 * float(p['rel_dev_abs_m']):+.2f} %",
        f"{float(p['dev_binder']):+.3f}",
        f"{float(p['spectrum_error_db']):.2f} dB",
        "pass" if ok else "fail",
        f"{float(p['seconds_per_lattice']):.3g}",
    ]
    tol = bar_for(int(p.attrs["L"])).energy_tol if "L" in p.attrs else ENERGY_TOL
    colours = ["w", "w", z("G2")[1], z("G4c")[1], _GOOD if abs(du) < tol else _BAD]
    colours += ["w", "w", "w", _GOOD if ok else _BAD, "w"]
    return cells, colours


def plot_table(ds: xr.Dataset, path: Path) -> Path:
    """report.md's method × factor table as a picture, one table per convention: the bar's
    cells (G2 and G4c max |z| < 2, |Δu/u| < 1 %, the verdict) green when met, red when not;
    n/a and pending parts grey with the reason. A palette PNG (tens of kB)."""
    from matplotlib.figure import Figure

    from ..analysis.plots import save_png

    conventions = [str(c) for c in ds["coarsen"].values]
    n_rows = ds.sizes["method"] * ds.sizes["factor"]
    height = 0.55 + len(conventions) * (0.35 + 0.2 * (n_rows + 1))
    fig = Figure(figsize=(7.4, height))
    axes = fig.subplots(len(conventions), 1, squeeze=False)[:, 0]
    for ax, c in zip(axes, conventions):
        rows = [
            table_cells(ds.sel({"method": m, "factor": f, "coarsen": c}))
            for m in ds["method"].values
            for f in ds["factor"].values
        ]
        ax.set_axis_off()
        table = ax.table(
            cellText=[r[0] for r in rows],
            cellColours=[r[1] for r in rows],
            colLabels=_TABLE_HEAD,
            loc="upper center",
            cellLoc="center",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.auto_set_column_width(list(range(len(_TABLE_HEAD))))
        ax.set_title(f"{c} inputs", fontsize=9, loc="left")
    fig.suptitle(
        f"isingscale evaluate, L = {ds.attrs['L']}, {int(ds['mc_n_samples'])} Monte Carlo "
        "reference lattices\n"
        + textwrap.fill(f"green: within the bar ({bar_for(int(ds.attrs['L'])).describe()}); ", 130)
        + "red: outside it",
        fontsize=8,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.5 / height, bottom=0.0, hspace=0.3)
    return save_png(fig, path, dpi=110)


def plot_evaluation(ds: xr.Dataset, out) -> list[Path]:
    """All evaluation figures into directory ``out``; returns the paths written."""
    from ..analysis.plots import plot_curve

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for f in ds["factor"].values:
        for c in ds["coarsen"].values:
            for name, dim, sign, stem in _CURVES:
                title = f"{stem} ×{float(f):g} {c}"
                sub = _with_mc(ds, float(f), str(c), name, dim, title)
                if sub is None:
                    continue
                ylabel = f"-G4c (square) ×{float(f):g} {c}" if sign < 0 else None
                files.append(
                    plot_curve(
                        sub,
                        title,
                        out / f"{stem}_x{float(f):g}_{c}.png",
                        sign=sign,
                        dim=dim,
                        ylabel=ylabel,
                    )
                )
    files.append(plot_deviations(ds, out / "deviations.png"))
    files.append(plot_table(ds, out / "table.png"))
    return files


__all__ = ["plot_evaluation", "plot_deviations", "plot_table", "table_cells"]
