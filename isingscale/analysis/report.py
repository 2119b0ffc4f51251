"""``correlate``: correlators of several ensembles, compared with each other and with exact
references, written as ``correlations.nc`` + PNG plots + ``report.md``.

The first file is the reference ensemble; every other one is compared with it by
z = (a - b) / sqrt(sigma_a^2 + sigma_b^2) per r, summarised as chi^2/dof = mean z^2 and the
largest |z|. Against the torus CFT references (no error of their own) only r >= 4 counts,
since the CFT describes long distances.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IsingScaleError
from ..io import writable_dir, write_netcdf
from ..lattices import check_same_L, open_lattices, source_list, unique_names
from .agreement import agreement
from .correlators import SHAPES, check_shapes, measure, sample_count
from .errors import DEFAULT_BLOCKS
from .references import R_MIN_CFT, reference_curves

if TYPE_CHECKING:
    import xarray as xr

SCALAR_ROWS = (
    ("energy", "energy per site u"),
    ("abs_m", "<|m|>"),
    ("chi", "chi = L^2(<m^2> - <|m|>^2)/T"),
    ("binder", "U4 = 1 - <m^4>/(3<m^2>^2)"),
)


def _prepare_out(out: str | os.PathLike) -> Path:
    return writable_dir(out)


def correlate(
    sources: Any,
    *,
    out: str | os.PathLike | None = None,
    shapes: Sequence[str] = ("square",),
    binarize: bool = False,
    values: str | Sequence[float] | None = None,
    T: float | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    labels: Sequence[str] | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> xr.Dataset:
    """Correlate ensembles; with ``out``, write correlations.nc, PNG plots and report.md there.

    Parameters
    ----------
    sources : one lattice source or a list of them, of one L; the first is the reference
        ensemble. A source is an ensemble file, any other file
        :func:`isingscale.lattices.open_lattices` reads (``FILE.h5:/dataset``, ``.npy``,
        ``.npz``, a PNG folder) or an array (numpy, xarray, torch) of shape (n, L, L).
    out : output directory (created); None: return the Dataset, write nothing.
    shapes : four-point shapes among ``square``, ``collinear``, ``rectangle``; the first
        is also stored as ``G4c``.
    binarize : take signs of a continuous field / non-+-1 spins (else an error).
    values : ``"LO,HI"``: stored LO is spin -1, HI is +1, for sources that are not +-1.
    T : temperature of sources that record none (else Tc, with a notice).
    n_blocks : jackknife blocks of consecutive samples per ensemble.
    labels : one name per source (default: file stems).
    progress : show a tqdm bar over samples.
    scheduler : None: compute in this process, chunk by chunk; "local": a dask LocalCluster;
        an address (tcp://host:8786): that dask.distributed scheduler. Chunks are tasks that
        read from the files, so the files must be visible to every worker (in-memory arrays
        are refused); results equal the in-process ones bitwise.

    Returns
    -------
    The Dataset (written to ``correlations.nc`` when ``out`` is given): dims ``ensemble``,
    ``r``, ``k``; ``G2``, ``G2_radial``, ``G4c`` and ``G4c_<shape>``, ``S`` and the scalars,
    each with ``_err``, plus the reference curves (``*_torus``, ``*_plane``,
    ``energy_exact``, ...); attribute ``provenance`` records every input (with sha256 when
    written).
    """
    lats = [open_lattices(s, values=values, T=T, binarize=binarize) for s in source_list(sources)]
    shapes = check_shapes(shapes)
    labels = _check_inputs(lats, labels, n_blocks, scheduler)
    out = _prepare_out(out) if out is not None else None
    check_same_L(lats)
    # While the correlators run (their kernels, FFTs and reads release the GIL), another
    # thread imports xarray and matplotlib, draws a first figure and hashes the inputs.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="isingscale-warm") as background:
        warm = background.submit(_warm_up, out is not None)
        provenance = background.submit(
            lambda: [lat.provenance(sha256=out is not None, progress=progress) for lat in lats]
        )
        try:
            ds = _measure_with(scheduler, lats, labels, shapes, n_blocks, progress, binarize)
        except BaseException:
            provenance.cancel()  # no hashing of the inputs for a run that failed (if not begun)
            raise
        warm.result()
        provenance = provenance.result()
    ds, notes = _with_references(ds, lats, shapes, reference_ensemble=labels[0])
    ds.attrs.update(provenance=json.dumps(provenance), binarize=int(binarize))
    if out is None:
        return ds
    from . import plots

    write_netcdf(ds, out / "correlations.nc")
    plots.plot_all(ds, out)
    (out / "report.md").write_text(report_markdown(ds, notes))
    ds.attrs["out"] = str(out)
    return ds


def _with_references(ds, lats, shapes, *, reference_ensemble) -> tuple[xr.Dataset, list[str]]:
    """The measured Dataset with the reference curves, ``G4c`` (the first shape) and the
    attributes that say what was compared; and the notes on missing references."""
    import xarray as xr

    L, T = lats[0].L, float(lats[0].attrs.get("T", np.nan))
    ref, notes = reference_curves(L, T, shapes)
    ds = xr.merge([ds, ref], combine_attrs="override")
    ds["G4c"], ds["G4c_err"] = ds[f"G4c_{shapes[0]}"], ds[f"G4c_{shapes[0]}_err"]
    ds.attrs.update(L=L, T=T, shapes=",".join(shapes), files=",".join(x.source for x in lats))
    ds.attrs.update(
        reference_ensemble=reference_ensemble,
        r_min_cft=R_MIN_CFT,
        notes="; ".join(notes),
        conventions=_CONVENTIONS,
    )
    return ds, notes


def _warm_up(plots: bool) -> None:
    """Import what follows the correlators (xarray, and the array modules it looks up when it
    first builds a Dataset: dask where installed; with ``plots``, matplotlib and its fonts)."""
    import xarray as xr

    xr.Dataset({"x": ("r", np.zeros(1))}, coords={"r": [0]})

    if plots:
        from . import plots as figures

        figures.preload()


def _measure_with(scheduler, lats, labels, shapes, n_blocks, progress, binarize) -> xr.Dataset:
    """Every ensemble measured in this process (``scheduler`` None: the lattices streamed as
    they are, no dask) or on a dask scheduler (lazy ensemble Datasets whose chunks are tasks)."""
    from .ensemble import open_ensemble, spin_lattices

    if scheduler is None:
        ensembles = [spin_lattices(lat, binarize=binarize) for lat in lats]
        return _measure_all(ensembles, labels, shapes, n_blocks, progress)
    from ..cluster import scheduler_client

    ensembles = [open_ensemble(lat, binarize=binarize) for lat in lats]
    try:
        with scheduler_client(scheduler) as client:
            return _measure_all(ensembles, labels, shapes, n_blocks, progress, client=client)
    finally:
        for e in ensembles:
            e.close()


def _check_inputs(lats, labels, n_blocks, scheduler) -> list[str]:
    """The labels (given, or the sources' names); one-line errors for bad arguments."""
    if not lats:
        raise IsingScaleError("no ensemble files given")
    if n_blocks < 2:
        raise IsingScaleError(f"n_blocks must be at least 2, got {n_blocks}")
    labels = list(labels) if labels else unique_names(lats)
    if len(labels) != len(lats) or len(set(labels)) != len(labels):
        raise IsingScaleError(f"need {len(lats)} distinct labels, got {labels}")
    in_memory = [lat.name for lat in lats if lat.file is None]
    if scheduler is not None and in_memory:
        raise IsingScaleError(
            f"--scheduler reads lattices from files on its workers; {in_memory[0]} is an array"
        )
    return labels


_CONVENTIONS = (
    "G2 = (C(r,0)+C(0,r))/2 - <m>^2; G4c = <s1s2s3s4> - <s1s2><s3s4> - <s1s3><s2s4> - "
    "<s1s4><s2s3>, translation-averaged; errors: jackknife over blocks of consecutive samples; "
    "chi = L^2(<m^2>-<|m|>^2)/T; U4 = 1-<m^4>/(3<m^2>^2); S(k) = E|x^(k)|^2 orthonormal FFT"
)


def _measure_all(ensembles, labels, shapes, n_blocks, progress, client=None) -> xr.Dataset:
    import xarray as xr
    from tqdm.auto import tqdm

    total = sum(sample_count(e) for e in ensembles)
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
        "(L -> infinity; finite-L corrections are O(L^-2)). chi has no finite-L reference here.",
        "",
        _spectrum_note(ds, labels),
        "",
    ]
    return lines


def _spectrum_note(ds: xr.Dataset, labels) -> str:
    """The S(k) slope, said with what it is at this L: no estimate of eta."""
    L = int(ds.attrs["L"])
    values = ", ".join(
        f"{float(ds['spectrum_exponent'][i]):.4f} ± {float(ds['spectrum_exponent_err'][i]):.4f} "
        f"({lab})"
        for i, lab in enumerate(labels)
    )
    torus = float(ds["spectrum_exponent_torus"])
    cft = (
        f"the same fit to the torus CFT spectrum at L = {L} gives {torus:.4f} (the CFT lacks "
        "the lattice's short-distance correlations, which move this fit by about 0.005)"
        if np.isfinite(torus)
        else "no torus CFT value away from Tc"
    )
    return (
        f"S(k) log-slope over L|k| in [2, max(4, L/8)] (`spectrum_exponent`): {values}; {cft}. "
        "At finite L this window is not yet in the k^-(2 - eta) regime, so the slope is not "
        "2 - eta = 1.75; the exponents come from `isingscale scaling` over several L."
    )


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
