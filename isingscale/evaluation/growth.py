"""The per-stage comparison of grown lattices (:func:`isingscale.skild.grow`): ``grow_report``.

Every stage's lattices are measured in one pass (:func:`measure_growth`: G2 along the axes,
energy per site, <|m|>, and the effective exponent, all with jackknife errors over blocks
of consecutive samples) and compared with

* a Monte Carlo reference at that L when one is given, measured the same way: G2 at
  r = 1 ... L/8 within :data:`MAX_Z` combined standard errors, the energy per site within
  :data:`ENERGY_TOL` (relative), <|m|> within MAX_Z combined SE, and the effective exponent
  within :data:`SLOPE_TOL` of the reference's;
* otherwise the torus CFT G2 at that L (Di Francesco, Saleur & Zuber, normalised to the
  lattice amplitude; exact at long distance only, so from r = 4 on) with the grown
  lattices' SE alone, the exact torus energy u(L, Tc) (Kaufman), and the CFT curve's own
  slope. The CFT has no <|m|> reference.

The effective exponent is the least-squares slope of log G2 against log r over
r = 4 ... L/16 (:func:`g2_slope`): -1/4 on the infinite plane, flatter on the torus, and
undefined below L = 80 (fewer than two points).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from ..analysis.agreement import agreement
from ..errors import IsingScaleError
from .comparison import N_BLOCKS, scalar_z

MAX_Z = 2.0  # G2 and <|m|> within 2 combined standard errors
ENERGY_TOL = 0.005  # |Δu/u| < 0.5 %
SLOPE_TOL = 0.01  # |Δ slope| <= 0.01
G2_RESOLUTION = 0.01  # G2 at r = L/8 resolved to 1 % (2 combined relative SE)
R_MIN_SLOPE = 4  # effective exponent over r = 4 ... L/16
R_MIN_CFT = 4  # the CFT is compared from r = 4 on (lattice corrections below)


def slope_range(L: int) -> tuple[int, int]:
    """(r_lo, r_hi) of the effective exponent, r = 4 ... L/16 (r_hi < r_lo + 1: undefined)."""
    return R_MIN_SLOPE, L // 16


def g2_slope(G2: np.ndarray, L: int) -> np.ndarray:
    """Least-squares slope of log G2 against log r over r = 4 ... L/16.

    G2: (..., L/2 + 1) over r = 0 ... L/2 (a leading replica axis broadcasts); nan where a
    G2 in the range is not positive or the range has fewer than two points.
    """
    lo, hi = slope_range(L)
    G2 = np.asarray(G2, dtype=float)
    if hi < lo + 1:
        return np.full(G2.shape[:-1], np.nan)
    x = np.log(np.arange(lo, hi + 1, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.log(np.where(G2[..., lo : hi + 1] > 0, G2[..., lo : hi + 1], np.nan))
    xc = x - x.mean()
    return np.sum(xc * (y - y.mean(axis=-1, keepdims=True)), axis=-1) / np.sum(xc**2)


def measure_growth(source, *, n_blocks: int = N_BLOCKS) -> xr.Dataset:
    """G2 (axis, r = 0 ... L/2), energy, abs_m and slope (:func:`g2_slope`) of an ensemble,
    each with a jackknife ``_err`` over min(n_blocks, n) blocks of consecutive samples."""
    from ..analysis.correlators import accumulate, correlation_map, g2_axis
    from ..analysis.ensemble import open_ensemble
    from ..analysis.observables import energy_per_site
    from ..stats import jackknife

    ds = open_ensemble(source)
    try:
        L, n = int(ds.attrs["L"]), int(ds.sizes["sample"])
        acc = accumulate(ds, shapes=("square",), n_blocks=max(2, min(n_blocks, n)))
    finally:
        ds.close()

    def estimators(means):
        C = correlation_map(means["power"], L)
        G2 = g2_axis(C, means["m"])
        return {
            "G2": G2,
            "energy": energy_per_site(C),
            "abs_m": means["abs_m"],
            "slope": g2_slope(G2, L),
        }

    out = xr.Dataset(coords={"r": np.arange(L // 2 + 1)})
    for name, (value, err) in jackknife(acc, estimators).items():
        dims = ("r",) if value.ndim else ()
        out[name], out[f"{name}_err"] = (dims, value), (dims, err)
    out.attrs.update(L=L, n_samples=n, T=float(ds.attrs.get("T", math.nan)))
    return out


def cft_reference(L: int, T: float) -> tuple[xr.Dataset, str]:
    """The torus CFT G2 and slope, and Kaufman's energy, at L as a reference without errors
    (G2 nan below r = 4); and a note on what is missing."""
    from ..analysis.references import reference_curves

    ref, notes = reference_curves(L, T, shapes=())
    G2 = np.where(ref["r"].values >= R_MIN_CFT, ref["G2_torus"].values, np.nan)
    zero = np.zeros_like(G2)
    out = xr.Dataset(
        {
            "G2": ("r", G2),
            "G2_err": ("r", zero),
            "energy": float(ref["energy_exact"]),
            "energy_err": 0.0,
            "abs_m": math.nan,
            "abs_m_err": math.nan,
            "slope": float(g2_slope(ref["G2_torus"].values, L)),
            "slope_err": 0.0,
        },
        coords={"r": ref["r"].values},
        attrs={"L": L, "n_samples": 0},
    )
    return out, "; ".join(notes)


def compare_stage(grown: xr.Dataset, ref: xr.Dataset) -> dict:
    """One stage's row: G2 over r = 1 ... L/8 (max |z|, where, relative deviation at L/8
    and the grown lattices' relative SE there), energy and <|m|> (value, relative deviation,
    z), the slopes and their difference, and the verdict with the reasons it fails."""
    L = int(grown.attrs["L"])
    if int(ref.attrs["L"]) != L:
        raise IsingScaleError(f"a reference at L={int(ref.attrs['L'])} cannot judge L={L}")
    r8 = max(L // 8, 1)
    sel = slice(1, r8 + 1)
    st = agreement(
        grown["G2"].values[sel],
        grown["G2_err"].values[sel],
        ref["G2"].values[sel],
        ref["G2_err"].values[sel],
    )
    row = {"L": L, "n": int(grown.attrs["n_samples"]), "n_ref": int(ref.attrs["n_samples"])}
    row["G2_max_z"] = st["max_abs_z"]
    row["G2_r_at_max"] = math.nan if st["argmax"] is None else st["argmax"] + 1
    g, gr = float(grown["G2"][r8]), float(ref["G2"][r8])
    row["G2_rel_dev_L8"] = (g - gr) / abs(gr) if gr else math.nan
    row["G2_rel_err_L8"] = float(grown["G2_err"][r8]) / abs(g) if g else math.nan
    for name in ("energy", "abs_m", "slope"):
        x, ex, y, ey = (float(d[k]) for d in (grown, ref) for k in (name, f"{name}_err"))
        row[name], row[f"{name}_err"], row[f"{name}_ref"], row[f"{name}_ref_err"] = x, ex, y, ey
        row[f"{name}_rel_dev"] = (x - y) / abs(y) if y else math.nan
        row[f"{name}_z"] = scalar_z(x, ex, y, ey) if math.isfinite(y) else math.nan
    row["slope_diff"] = row["slope"] - row["slope_ref"]
    row["verdict"] = _verdict(row)
    return row


def _verdict(row: Mapping) -> str:
    """ "pass"; "fail: <reasons>" (a miss by at least MAX_Z combined SE); "unresolved:
    <reasons>" when the errors are too large to tell: a tolerance (energy, slope) missed by
    less than MAX_Z SE or met with MAX_Z SE wider than it, or G2 at L/8 not resolved to
    :data:`G2_RESOLUTION` (MAX_Z combined relative SE wider than it); "-" when nothing could
    be judged."""
    bad, unresolved = [], []
    if math.isfinite(row["G2_max_z"]) and not row["G2_max_z"] < MAX_Z:
        bad.append(f"G2 max |z| {row['G2_max_z']:.2f}")
    if math.isfinite(row["abs_m_z"]) and not abs(row["abs_m_z"]) < MAX_Z:
        bad.append(f"<|m|> z {row['abs_m_z']:+.2f}")
    g2_se = row["G2_rel_err_L8"]
    if math.isfinite(row["G2_max_z"]) and not MAX_Z * g2_se <= G2_RESOLUTION:
        unresolved.append(f"G2 SE at L/8 {100 * g2_se:.2f} %")
    for name, dev, se, tol, why in _tolerances(row):
        if not math.isfinite(dev):
            continue
        if abs(dev) > tol and not abs(dev) < MAX_Z * se:
            bad.append(why + (" %" if name == "energy" else ""))
        elif abs(dev) > tol or MAX_Z * se > tol:
            unresolved.append(
                why + (f" ± {100 * se:.2f} %" if name == "energy" else f" ± {se:.3f}")
            )
    if not any(math.isfinite(row[k]) for k in ("G2_max_z", "abs_m_z", "energy", "slope")):
        return "-"
    if bad:
        return "fail: " + ", ".join(bad + unresolved)
    return "unresolved: " + ", ".join(unresolved) if unresolved else "pass"


def _tolerances(row: Mapping) -> list[tuple[str, float, float, float, str]]:
    """(name, deviation, its combined SE, tolerance, text) of the energy (relative) and
    the slope."""
    e_se = math.hypot(row["energy_err"], row["energy_ref_err"]) / abs(row["energy_ref"])
    s_se = math.hypot(row["slope_err"], row["slope_ref_err"])
    dev_e = row["energy_rel_dev"]
    return [
        ("energy", dev_e, e_se, ENERGY_TOL, f"energy {_f(100 * dev_e, '+.2f')}"),
        ("slope", row["slope_diff"], s_se, SLOPE_TOL, f"slope {_f(row['slope_diff'], '+.3f')}"),
    ]


def grow_report(
    stages,
    *,
    references: Mapping[int, object] | None = None,
    out=None,
    n_blocks: int = N_BLOCKS,
    progress: bool = True,
) -> xr.Dataset:
    """The per-stage comparison of grown lattices, as a Dataset over ``stage``.

    stages: a :class:`isingscale.skild.GrowResult` or the stage files in order.
    references: {L: lattice source} of Monte Carlo references; a stage without one is
    compared with the torus CFT. out: folder that receives ``grow.md`` (the table) and
    ``grow.nc`` (this Dataset); None writes nothing. Variables per stage: the row of
    :func:`compare_stage` (``reference`` names what judged it), and the curves ``G2``,
    ``G2_err``, ``G2_ref``, ``G2_ref_err`` over r = 0 ... max L/2 (nan past L/2). The
    verdict: "pass", "fail: ...", or "unresolved: ..." when the energy or slope tolerance is
    missed by less than 2 combined SE (more lattices needed to tell).
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in getattr(stages, "paths", stages)]
    from ..io import read_attrs

    refs = check_references(references or {}, [int(read_attrs(p)["L"]) for p in paths])
    rows, curves = [], []
    for path in tqdm(paths, desc="compare", disable=not progress, unit="stage"):
        grown = measure_growth(path, n_blocks=n_blocks)
        L = int(grown.attrs["L"])
        if L in refs:
            ref, label = measure_growth(refs[L], n_blocks=n_blocks), f"MC {refs[L]}"
        else:
            ref, note = cft_reference(L, float(grown.attrs["T"]))
            label = "torus CFT" + (f" ({note})" if note else "")
        rows.append({**compare_stage(grown, ref), "reference": label, "path": str(path)})
        curves.append((grown, ref))
    ds = _table_dataset(rows, curves)
    if out is not None:
        write_grow_report(ds, out)
    return ds


def check_references(references: Mapping[int, object], sizes: list[int]) -> dict:
    """{L: source}, each source holding lattices of that L and each L one of ``sizes`` (the
    stages' sizes); one-line errors otherwise (before growing, from the plan)."""
    from ..lattices import open_lattices

    refs = {}
    for L, source in references.items():
        if int(L) not in sizes:
            raise IsingScaleError(
                f"--reference {L}={source}: no stage at L={L} (stages: "
                f"{', '.join(map(str, sizes))})"
            )
        got = open_lattices(source).L
        if got != int(L):
            raise IsingScaleError(f"--reference {L}={source} holds lattices of L={got}, not {L}")
        refs[int(L)] = source
    return refs


def _table_dataset(rows: list[dict], curves: list) -> xr.Dataset:
    """Rows -> Dataset over stage (strings as strings), curves padded over r."""
    stage = np.arange(1, len(rows) + 1)
    ds = xr.Dataset(coords={"stage": stage})
    for key in rows[0]:
        ds[key] = ("stage", [row[key] for row in rows])
    r = np.arange(max(int(g.attrs["L"]) // 2 for g, _ in curves) + 1)
    ds = ds.assign_coords(r=r)
    for name, which, var in (
        ("G2", 0, "G2"),
        ("G2_err", 0, "G2_err"),
        ("G2_ref", 1, "G2"),
        ("G2_ref_err", 1, "G2_err"),
    ):
        arr = np.full((len(rows), len(r)), np.nan)
        for i, pair in enumerate(curves):
            v = pair[which][var].values
            arr[i, : len(v)] = v
        ds[name] = (("stage", "r"), arr)
    ds.attrs.update(
        bar=(
            f"G2 within {MAX_Z:g} combined SE at r = 1 ... L/8; |du/u| < {100 * ENERGY_TOL:g} %; "
            f"<|m|> within {MAX_Z:g} combined SE; |d slope| <= {SLOPE_TOL:g} "
            "(slope of log G2 vs log r over r = 4 ... L/16)"
        )
    )
    return ds


def _f(x: float, fmt: str) -> str:
    return format(x, fmt) if math.isfinite(x) else "-"


def grow_markdown(ds: xr.Dataset) -> str:
    """The per-stage table as markdown (what ``isingscale grow`` prints and writes)."""
    head = (
        "| stage | L | n | reference | G2 max abs z (r) | G2 dev at L/8 (SE) | energy (dev, z) "
        "| <abs m> (z) | slope (ref) | verdict |"
    )
    lines = [head, "|" + "---|" * 10]
    for i in range(ds.sizes["stage"]):
        v = {k: ds[k].values[i].item() for k in ds.data_vars if ds[k].dims == ("stage",)}
        lines.append(
            f"| {i + 1} | {v['L']} | {v['n']} | {v['reference']} "
            f"| {_f(v['G2_max_z'], '.2f')} ({_f(v['G2_r_at_max'], '.0f')}) "
            f"| {_f(100 * v['G2_rel_dev_L8'], '+.2f')} % ({_f(100 * v['G2_rel_err_L8'], '.2f')} %) "
            f"| {_f(v['energy'], '.5f')} ({_f(100 * v['energy_rel_dev'], '+.3f')} %, "
            f"{_f(v['energy_z'], '+.2f')}) "
            f"| {_f(v['abs_m'], '.4f')} ({_f(v['abs_m_z'], '+.2f')}) "
            f"| {_f(v['slope'], '.3f')} ± {_f(v['slope_err'], '.3f')} "
            f"({_f(v['slope_ref'], '.3f')}) | {v['verdict']} |"
        )
    lines.append("")
    lines.append(
        f"Bar: {ds.attrs['bar']}. Against the torus CFT: the grown lattices' SE alone, "
        "G2 from r = 4, energy against Kaufman's u(L, Tc), no <|m|> reference."
    )
    return "\n".join(lines)


def plot_growth(ds: xr.Dataset, path) -> Path:
    """``grow.png``: G2 of every stage against its reference (log-log, left) and the relative
    deviation G2 / G2_ref - 1 with the combined SE band over r / L (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    ax, dev = fig.subplots(1, 2)
    r = ds["r"].values
    for i in range(ds.sizes["stage"]):
        L = int(ds["L"].values[i])
        g, e = ds["G2"].values[i], ds["G2_err"].values[i]
        gr, er = ds["G2_ref"].values[i], ds["G2_ref_err"].values[i]
        sel = (r >= 1) & (r <= L // 2)
        lines = ax.errorbar(r[sel], g[sel], e[sel], fmt="o", ms=2.5, label=f"grown L={L}")
        ax.plot(r[sel], gr[sel], "-", color=lines[0].get_color(), lw=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel, band = g / gr - 1, np.hypot(e, er) / np.abs(gr)
        dev.plot(r[sel] / L, rel[sel], "o-", ms=2.5, color=lines[0].get_color(), label=f"L={L}")
        dev.fill_between(
            r[sel] / L, -2 * band[sel], 2 * band[sel], alpha=0.12, color=lines[0].get_color()
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="r",
        ylabel="G2(r)",
        title="grown (points) and reference (lines)",
    )
    dev.axhline(0, color="k", lw=0.8)
    dev.axvline(1 / 8, color="grey", ls=":", lw=0.8)
    dev.set(
        xlabel="r / L",
        ylabel="G2 / G2_ref - 1",
        title="deviation, 2 combined SE shaded",
        ylim=(-0.15, 0.15),
    )
    ax.legend(fontsize=8)
    dev.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def write_grow_report(ds: xr.Dataset, out) -> tuple[Path, Path]:
    """``grow.md``, ``grow.nc`` and ``grow.png`` in folder ``out`` (the table and the netCDF
    written to a temporary file and renamed into place)."""
    import os

    from ..io import writable_dir

    out = writable_dir(out)
    md, nc = out / "grow.md", out / "grow.nc"
    tmp = out / f".grow.nc.tmp{os.getpid()}"
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, nc)
    tmp = out / f".grow.md.tmp{os.getpid()}"
    tmp.write_text(grow_markdown(ds) + "\n")
    os.replace(tmp, md)
    plot_growth(ds, out / "grow.png")
    return md, nc
