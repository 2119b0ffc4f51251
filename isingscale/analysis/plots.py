"""Report figures: correlators on log-log axes with error bars, references, and ratios."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr


def preload() -> None:
    """Import matplotlib and load its fonts by drawing a tiny figure: ``correlate`` runs this
    in a thread while the correlators work (they release the GIL), so the plots start warm."""
    fig, ax, _ = _figure()
    _log_axes(ax)
    ax.set_title("preload", y=1.0)
    fig.canvas.draw()


def _figure():
    # A bare Figure (no pyplot): renders to PNG without touching the session's backend,
    # so notebooks keep showing their own inline figures. Fixed margins instead of
    # tight_layout, which draws the figure twice.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 6.4))
    fig.subplots_adjust(left=0.14, right=0.97, top=0.94, bottom=0.09, hspace=0.06)
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    return fig, ax, axr


def _log_axes(ax) -> None:
    """Log-log axes with plain-number tick labels: mathtext labels (10^k) cost more to
    typeset than the rest of the figure to draw. Decades are labelled, and 2, 3, 5 times
    them where an axis spans less than about a decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):

        def label(v, pos, axis=axis):
            lo, hi = sorted(axis.get_view_interval())
            if not (v > 0 and lo > 0):
                return ""
            mantissa = v / 10 ** np.floor(np.log10(v) + 1e-9)
            short = np.log10(hi / lo) < 1.3 and np.isclose(mantissa, (2, 3, 5)).any()
            return f"{v:g}" if np.isclose(mantissa, 1) or short else ""

        axis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))  # every tick is an artist
        axis.set_major_formatter(FuncFormatter(label))
        axis.set_minor_formatter(FuncFormatter(label))


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
    draw_curve(ax, axr, ds, name, sign=sign, ylabel=ylabel, references=references, dim=dim)
    return fig


def draw_curve(
    ax,
    axr,
    ds: xr.Dataset,
    name: str,
    *,
    sign: float = 1.0,
    ylabel: str | None = None,
    references: tuple[tuple[str, str], ...] = (),
    dim: str = "r",
) -> None:
    """:func:`curve_figure` onto given axes: the curves on ``ax`` (log-log), the ratios to the
    first ensemble on ``axr`` (errors combined in quadrature, the first's own relative error
    about 1). ``ds`` has dims (ensemble, dim) with ``name`` and ``name_err``; references are
    (variable, line style) pairs over ``dim``, drawn in black where finite."""
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
    _log_axes(ax)
    ax.set_ylabel(ylabel or (f"-{name}" if sign < 0 else name))
    ax.legend(fontsize=8)
    # A fixed title height: placing it automatically lays out every tick label of the axes
    # once more (a quarter of the figure's drawing time), and nothing stands above these axes.
    ax.set_title(f"{name}, L = {ds.attrs.get('L')}", y=1.0)
    axr.axhline(1.0, color="k", lw=0.8)
    axr.set_ylabel(f"ratio to {ds['ensemble'].values[0]}")
    axr.set_xlabel("r (lattice spacings)" if dim == "r" else "|k| (cycles per site)")


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


def plot_scaling(ds: xr.Dataset, path: str | Path, exponents: dict) -> Path:
    """Finite-size scaling figure: each observable times L^(-exact exponent) against L with
    error bars and the reported fit (a flat line is the exact exponent), and below, each
    fitted exponent against L_min (power law and corrected) with the exact value.

    exponents: observable -> (exponent name, sign in y ~ L^(sign x), exact value), as
    :data:`isingscale.analysis.scaling.EXPONENTS`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7.5))
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.08, hspace=0.3, wspace=0.25)
    axes = fig.subplots(2, 2)
    L = ds["L"].values.astype(float)
    grid = np.geomspace(L.min(), L.max(), 100)
    for col, (obs, (name, sign, exact)) in enumerate(exponents.items()):
        label = "eta" if name == "eta" else "gamma/nu"
        top, bottom = axes[0, col], axes[1, col]
        scale = L ** (-sign * exact)
        top.errorbar(L, ds[obs] * scale, ds[f"{obs}_err"] * scale, fmt="o", ms=4, capsize=3)
        j = int(np.flatnonzero(ds["L_min"].values == int(ds[f"{name}_L_min"]))[0])
        fit = ds.sel(observable=obs).isel(L_min=j)
        curve = float(fit["amplitude"]) * grid ** (sign * float(fit["exponent"]) - sign * exact)
        top.plot(grid, curve, "-", color="k", lw=1, label=f"fit, L >= {int(fit['L_min'])}")
        if obs == "G_half" and np.isfinite(ds["G_half_torus"].values).all():
            top.plot(L, ds["G_half_torus"] * scale, "--", color="0.5", lw=1, label="torus CFT")
        _plain_log_x(top, L)
        top.set_xlabel("L")
        power = f"L^{-sign * exact:+g}"
        top.set_ylabel(f"{'G(L/2)' if obs == 'G_half' else 'chi'} {power}")
        top.legend(fontsize=8)
        f = ds.sel(observable=obs)
        x = f["L_min"].values.astype(float)
        bottom.errorbar(x, f["exponent"], f["exponent_err"], fmt="o", ms=4, capsize=3,
                        label="power law")  # fmt: skip
        bottom.errorbar(x * 1.06, f["corrected_exponent"], f["corrected_exponent_err"], fmt="s",
                        ms=4, capsize=3, label=f"with L^-{ds.attrs['omega']:g}")  # fmt: skip
        bottom.axhline(exact, color="k", lw=0.8, label=f"exact {exact:g}")
        _plain_log_x(bottom, x)
        bottom.set_xlabel("L_min")
        bottom.set_ylabel(label)
        bottom.legend(fontsize=8)
    fig.suptitle(f"finite-size scaling at T = {ds.attrs['T']:.6g}")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def _plain_log_x(ax, ticks) -> None:
    """Log x axis with a tick labelled in plain numbers at each of ``ticks`` (the sizes)."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def save_png(fig, path: str | Path, *, dpi: int = 100, colors: int = 64) -> Path:
    """Write ``fig`` as a palette PNG of at most ``colors`` colours: line plots and lattices
    need no more, and the file is a few times smaller than matplotlib's RGBA (tens of kB)."""
    import io

    from PIL import Image

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as img:
        img.convert("RGB").quantize(colors).save(path, optimize=True)
    return path
