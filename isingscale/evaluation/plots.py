"""Evaluation figures (PNG, no pyplot state): per factor and convention, G2, -G4c and S(k)
of every method with Monte Carlo and the ratio to it (:func:`isingscale.analysis.plots.plot_curve`),
and one figure of the energy, |m| and Binder deviations of every part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

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
    return files


__all__ = ["plot_evaluation", "plot_deviations"]
