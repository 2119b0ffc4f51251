"""Report figures: correlators on log-log axes with error bars, references, and ratios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


def _figure():
    # A bare Figure (no pyplot): renders to PNG without touching the session's backend,
    # so notebooks keep showing their own inline figures.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.4))
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    return fig, ax, axr


def plot_curve(ds: xr.Dataset, name: str, path: str | Path, **kwargs) -> Path:
    """:func:`curve_figure` written to ``path`` (PNG)."""
    path = Path(path)
    curve_figure(ds, name, **kwargs).savefig(path, dpi=110)
    return path


def curve_figure(
    ds: xr.Dataset,
    name: str,
    *,
    sign: float = 1.0,
    ylabel: str | None = None,
    references: tuple[tuple[str, str], ...] = (),
    dim: str = "r",
):
    """Log-log plot of ``sign * ds[name]`` for every ensemble with error bars, the named
    reference curves, and below it the ratio of each ensemble to the first; returns the
    matplotlib Figure (e.g. ``curve_figure(isc.correlate(...), "G2",
    references=(("G2_torus", "-"),))`` in a notebook)."""
    fig, ax, axr = _figure()
    x = ds[dim].values
    keep = x > 0
    base = sign * ds[name].isel(ensemble=0).values
    base_err = ds[f"{name}_err"].isel(ensemble=0).values
    for i, label in enumerate(ds["ensemble"].values):
        y = sign * ds[name].isel(ensemble=i).values
        e = ds[f"{name}_err"].isel(ensemble=i).values
        ax.errorbar(x[keep], y[keep], e[keep], fmt="o", ms=3, capsize=2, label=str(label))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = y / base
            rerr = np.abs(ratio) * np.hypot(e / y, base_err / base) if i else np.abs(e / base)
        axr.errorbar(x[keep], ratio[keep], rerr[keep], fmt="o", ms=3, capsize=2)
    for ref, style in references:
        if ref in ds and np.isfinite(ds[ref].values[keep]).any():
            ax.plot(x[keep], sign * ds[ref].values[keep], style, color="k", lw=1, label=ref)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(ylabel or (f"-{name}" if sign < 0 else name))
    ax.legend(fontsize=8)
    ax.set_title(f"{name}, L = {ds.attrs.get('L')}")
    axr.axhline(1.0, color="k", lw=0.8)
    axr.set_ylabel(f"ratio to {ds['ensemble'].values[0]}")
    axr.set_xlabel("r (lattice spacings)" if dim == "r" else "|k| (cycles per site)")
    fig.tight_layout()
    return fig


def plot_all(ds: xr.Dataset, out: str | Path) -> list[Path]:
    """G2.png, G2_radial.png, G4c_<shape>.png (as -G4c) and spectrum.png in ``out``."""
    out = Path(out)
    files = [
        plot_curve(ds, "G2", out / "G2.png", references=(("G2_torus", "-"), ("G2_plane", "--"))),
        plot_curve(ds, "G2_radial", out / "G2_radial.png", references=(("G2_plane", "--"),)),
    ]
    for shape in ds.attrs["shapes"].split(","):
        files.append(
            plot_curve(
                ds,
                f"G4c_{shape}",
                out / f"G4c_{shape}.png",
                sign=-1.0,
                references=((f"G4c_{shape}_torus", "-"), (f"G4c_{shape}_plane", "--")),
            )
        )
    files.append(plot_curve(ds, "S", out / "spectrum.png", ylabel="S(k)", dim="k"))
    return files
