"""``correlate``: correlators of several ensembles, compared with each other and with exact
references, written as ``correlations.nc`` + PNG plots + ``report.md``.

The first file is the reference ensemble; every other one is compared with it by
z = (a - b) / sqrt(sigma_a^2 + sigma_b^2) per r, summarised as chi^2/dof = mean z^2 and the
largest |z|. Against the torus CFT references (no error of their own) only r >= 4 counts,
since the CFT describes long distances.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import IsingScaleError
from ..io import writable_dir
from .agreement import agreement
from .correlators import SHAPES, check_shapes, measure
from .ensemble import check_same_L, ensemble_labels, open_ensemble
from .errors import DEFAULT_BLOCKS
from .references import R_MIN_CFT, reference_curves

SCALAR_ROWS = (
    ("energy", "energy per site u"),
    ("abs_m", "<|m|>"),
    ("chi", "chi = L^2(<m^2> - <|m|>^2)/T"),
    ("binder", "U4 = 1 - <m^4>/(3<m^2>^2)"),
    ("spectrum_exponent", "2 - eta from S(k) fit"),
)


def _prepare_out(out: str | os.PathLike) -> Path:
    return writable_dir(out)


def correlate(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    out: str | os.PathLike,
    shapes: Sequence[str] = ("square",),
    binarize: bool = False,
    n_blocks: int = DEFAULT_BLOCKS,
    labels: Sequence[str] | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> xr.Dataset:
    """Correlate ensembles and write ``out/correlations.nc``, PNG plots and ``out/report.md``.

    Parameters
    ----------
    paths : ensemble files of one L; the first is the reference ensemble.
    out : output directory (created).
    shapes : four-point shapes among ``square``, ``collinear``, ``rectangle``; the first
        is also stored as ``G4c``.
    binarize : take signs of a continuous ``field`` / non-+-1 spins (else an error).
    n_blocks : jackknife blocks of consecutive samples per ensemble.
    labels : one name per file (default: file stems).
    progress : show a tqdm bar over samples.
    scheduler : None: compute in this process, chunk by chunk; "local": a dask LocalCluster;
        an address (tcp://host:8786): that dask.distributed scheduler. Chunks are tasks that
        read from the files, so the files must be visible to every worker; results equal
        the in-process ones bitwise.

    Returns
    -------
    The Dataset written to ``correlations.nc``: dims ``ensemble``, ``r``, ``k``; ``G2``,
    ``G2_radial``, ``G4c`` and ``G4c_<shape>``, ``S`` and the scalars, each with ``_err``,
    plus the reference curves (``*_torus``, ``*_plane``, ``energy_exact``, ...).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise IsingScaleError("no ensemble files given")
    shapes = check_shapes(shapes)
    if n_blocks < 2:
        raise IsingScaleError(f"n_blocks must be at least 2, got {n_blocks}")
    labels = list(labels) if labels else ensemble_labels(paths)
    if len(labels) != len(paths) or len(set(labels)) != len(labels):
        raise IsingScaleError(f"need {len(paths)} distinct labels, got {labels}")
    out = _prepare_out(out)
    L = check_same_L(paths)
    ensembles = [open_ensemble(p, binarize=binarize) for p in paths]
    if scheduler is None:
        ds = _measure_all(ensembles, labels, shapes, n_blocks, progress)
    else:
        from ..cluster import scheduler_client

        with scheduler_client(scheduler) as client:
            ds = _measure_all(ensembles, labels, shapes, n_blocks, progress, client=client)
    T = float(ensembles[0].attrs.get("T", np.nan))
    ref, notes = reference_curves(L, T, shapes)
    ds = xr.merge([ds, ref], combine_attrs="override")
    ds["G4c"], ds["G4c_err"] = ds[f"G4c_{shapes[0]}"], ds[f"G4c_{shapes[0]}_err"]
    ds.attrs.update(
        L=L,
        T=T,
        shapes=",".join(shapes),
        files=",".join(str(p) for p in paths),
        reference_ensemble=labels[0],
        r_min_cft=R_MIN_CFT,
        binarize=int(binarize),
        notes="; ".join(notes),
        conventions=_CONVENTIONS,
    )
    for e in ensembles:
        e.close()
    ds.to_netcdf(out / "correlations.nc", engine="h5netcdf")
    from .plots import plot_all

    plot_all(ds, out)
    (out / "report.md").write_text(report_markdown(ds, notes))
    ds.attrs["out"] = str(out)
    return ds


_CONVENTIONS = (
    "G2 = (C(r,0)+C(0,r))/2 - <m>^2; G4c = <s1s2s3s4> - <s1s2><s3s4> - <s1s3><s2s4> - "
    "<s1s4><s2s3>, translation-averaged; errors: jackknife over blocks of consecutive samples; "
    "chi = L^2(<m^2>-<|m|>^2)/T; U4 = 1-<m^4>/(3<m^2>^2); S(k) = E|x^(k)|^2 orthonormal FFT"
)


def _measure_all(ensembles, labels, shapes, n_blocks, progress, client=None) -> xr.Dataset:
    from tqdm.auto import tqdm

    total = sum(e.sizes["sample"] for e in ensembles)
    bar = tqdm(total=total, unit="lattice", desc="correlate", disable=not progress, leave=False)
    try:
        parts = [
            measure(e, shapes=shapes, n_blocks=n_blocks, progress=bar, client=client)
            for e in ensembles
        ]
    finally:
        bar.close()
    for part, e in zip(parts, ensembles):
        part["T"] = float(e.attrs.get("T", np.nan))
        part["kind"] = str(e.attrs.get("kind", ""))
    ds = xr.concat(parts, dim="ensemble", combine_attrs="override", coords="minimal")
    ds = ds.assign_coords(ensemble=list(labels))
    ds.attrs.pop("shapes", None)
    return ds


def _curves(ds: xr.Dataset) -> list[tuple[str, str, str | None]]:
    """(quantity, coordinate, torus reference or None) for every curve in the report."""
    rows = [("G2", "r", "G2_torus"), ("G2_radial", "r", None)]
    rows += [(f"G4c_{s}", "r", f"G4c_{s}_torus") for s in ds.attrs["shapes"].split(",")]
    rows.append(("S", "k", None))
    return rows


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def report_markdown(ds: xr.Dataset, notes: Sequence[str] = ()) -> str:
    """The text of report.md: inputs, one table per quantity, scalars, references."""
    L = int(ds.attrs["L"])
    labels = [str(v) for v in ds["ensemble"].values]
    lines = [
        f"# isingscale correlate report (L = {L})",
        "",
        f"Reference ensemble: **{labels[0]}** (the first file).",
        "",
        "| ensemble | kind | T | samples | jackknife blocks |",
        "|---|---|---|---|---|",
    ]
    for i, lab in enumerate(labels):
        e = ds.isel(ensemble=i)
        lines.append(
            f"| {lab} | {e['kind'].item()} | {float(e['T']):.6g} | "
            f"{int(e['n_samples'])} | {int(e['n_blocks'])} |"
        )
    lines += [
        "",
        "Agreement: z = (a - b)/sqrt(err_a^2 + err_b^2) per point; chi2/dof = mean z^2 "
        "(neighbouring r are correlated, so read it as a guide, not a p-value); max |z| "
        "and where it occurs. Between ensembles: r = 1 ... L/2 (k > 0 for S). Against "
        f"the torus CFT references (no error of their own): r = {R_MIN_CFT} ... L/2, since "
        "the CFT is a long-distance theory.",
        "",
    ]
    for name, dim, ref in _curves(ds):
        lines += _curve_table(ds, name, dim, ref, labels)
    lines += _scalar_table(ds, labels)
    lines += ["## Notes", "", f"- Conventions: {ds.attrs['conventions']}."]
    lines += [f"- {n}" for n in notes] or []
    lines += [
        "- Plots: G2.png, G2_radial.png, "
        + ", ".join(f"G4c_{s}.png (-G4c)" for s in ds.attrs["shapes"].split(","))
        + ", spectrum.png."
    ]
    return "\n".join(lines) + "\n"


def _curve_table(ds, name, dim, ref, labels) -> list[str]:
    x = ds[dim].values
    sel = x > 0
    lines = [
        f"## {name}",
        "",
        "| ensemble | against | range | chi2/dof | max abs z | at |",
        "|---|---|---|---|---|---|",
    ]
    a0, e0 = ds[name].isel(ensemble=0).values, ds[f"{name}_err"].isel(ensemble=0).values
    for i, lab in enumerate(labels):
        a, e = ds[name].isel(ensemble=i).values, ds[f"{name}_err"].isel(ensemble=i).values
        if i:
            st = agreement(a[sel], e[sel], a0[sel], e0[sel])
            lines.append(_row(lab, labels[0], f"{dim} > 0", st, x[sel]))
        if ref is not None and ref in ds and np.isfinite(ds[ref].values).any():
            cut = x >= R_MIN_CFT
            st = agreement(a[cut], e[cut], ds[ref].values[cut])
            lines.append(_row(lab, ref, f"r = {R_MIN_CFT} ... {x.max()}", st, x[cut]))
    if len(lines) == 4:
        lines.append("| (single ensemble, no reference for this quantity) | | | | | |")
    return lines + [""]


def _row(lab, against, rng, st, x) -> str:
    at = "n/a" if st["argmax"] is None else f"{dim_value(x[st['argmax']])}"
    return (
        f"| {lab} | {against} | {rng} | {_fmt(st['chi2_dof'])} | {_fmt(st['max_abs_z'])} | {at} |"
    )


def dim_value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _scalar_table(ds, labels) -> list[str]:
    lines = [
        "## Scalar observables",
        "",
        f"| quantity | ensemble | value | error | z vs {labels[0]} | exact | z vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    exact = {"energy": float(ds["energy_exact"]), "binder": float(ds["binder_critical"])}
    for name, title in SCALAR_ROWS:
        v0, e0 = float(ds[name][0]), float(ds[f"{name}_err"][0])
        for i, lab in enumerate(labels):
            v, e = float(ds[name][i]), float(ds[f"{name}_err"][i])
            z0 = agreement(v, e, v0, e0)["max_abs_z"] if i else np.nan
            ref = exact.get(name, np.nan)
            zr = (v - ref) / e if np.isfinite(ref) and e > 0 else np.nan
            lines.append(
                f"| {title} | {lab} | {v:.6g} | {e:.2g} | {_fmt(z0)} | {_fmt(ref)} | {_fmt(zr)} |"
            )
    lines += [
        "",
        "exact: u(L, T) from Kaufman's torus partition function; U4* = 0.61069 at Tc "
        "(L -> infinity; finite-L corrections are O(L^-2)). chi and 2 - eta have no finite-L "
        "reference here (2 - eta = 1.75 as L -> infinity).",
        "",
    ]
    return lines


def summary(ds: xr.Dataset) -> str:
    """A few lines for the terminal: per ensemble, energy vs exact and G2/G4c agreement."""
    labels = [str(v) for v in ds["ensemble"].values]
    shape = ds.attrs["shapes"].split(",")[0]
    lines = [f"L = {ds.attrs['L']}, {len(labels)} ensemble(s); reference: {labels[0]}"]
    for i, lab in enumerate(labels):
        u, ue = float(ds["energy"][i]), float(ds["energy_err"][i])
        parts = [
            f"u = {u:.5f} +- {ue:.1g} (exact {_fmt(float(ds['energy_exact']))})",
            f"U4 = {float(ds['binder'][i]):.4f} +- {float(ds['binder_err'][i]):.1g}",
        ]
        r = ds["r"].values
        for name, ref in (("G2", "G2_torus"), (f"G4c_{shape}", f"G4c_{shape}_torus")):
            a, e = ds[name][i].values, ds[f"{name}_err"][i].values
            if i:
                st = agreement(
                    a[r >= 1],
                    e[r >= 1],
                    ds[name][0].values[r >= 1],
                    ds[f"{name}_err"][0].values[r >= 1],
                )
                parts.append(f"{name} vs {labels[0]}: chi2/dof {_fmt(st['chi2_dof'])}")
            if np.isfinite(ds[ref].values).any():
                cut = r >= R_MIN_CFT
                st = agreement(a[cut], e[cut], ds[ref].values[cut])
                parts.append(
                    f"{name} vs torus CFT (r >= {R_MIN_CFT}): chi2/dof "
                    f"{_fmt(st['chi2_dof'])}, max |z| {_fmt(st['max_abs_z'])}"
                )
        lines.append(f"  {lab}: " + "; ".join(parts))
    return "\n".join(lines)


__all__ = ["correlate", "agreement", "report_markdown", "summary", "SHAPES"]
