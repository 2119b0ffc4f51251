"""Agreement of one measured part with the Monte Carlo reference, and the evaluation.nc Dataset.

A *part* is one (method, factor, convention): its output ensemble measured by
:func:`isingscale.analysis.correlators.measure` (G2, square G4c, energy, |m|, Binder
U4 = 1 - <m^4>/(3<m^2>^2) and the radial spectrum S(k), all with jackknife errors). Its
agreement with the reference is :func:`isingscale.evaluation.comparison.compare_measured` (z per
r = 1 ... L/2 with the combined standard error, χ²/dof, max |z| and where) plus the Binder
deviation and the spectrum ratio; the bar is :func:`isingscale.evaluation.comparison.passes_bar`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .comparison import compare_measured, passes_bar, scalar_z

# Per-part scalars in evaluation.nc (dims method, factor, coarsen), nan for n/a parts.
SCALARS = (
    "chi2_dof_G2",
    "max_abs_z_G2",
    "r_at_max_G2",
    "chi2_dof_G4c",
    "max_abs_z_G4c",
    "r_at_max_G4c",
    "energy",
    "energy_err",
    "rel_dev_energy",
    "z_energy",
    "abs_m",
    "abs_m_err",
    "rel_dev_abs_m",
    "z_abs_m",
    "binder",
    "binder_err",
    "dev_binder",
    "z_binder",
    "spectrum_error_db",
    "n_samples",
    "seconds",
    "seconds_per_lattice",
    "train_seconds",
    "passes",
)
R_CURVES = (
    "G2",
    "G2_err",
    "G4c_square",
    "G4c_square_err",
    "z_G2",
    "z_G4c",
    "ratio_G2",
    "ratio_G4c",
)
K_CURVES = ("S", "S_err", "S_ratio")
# Monte Carlo reference variables (prefixed "mc_" in evaluation.nc).
MC_VARS = (
    "G2",
    "G2_err",
    "G4c_square",
    "G4c_square_err",
    "S",
    "S_err",
    "energy",
    "energy_err",
    "abs_m",
    "abs_m_err",
    "binder",
    "binder_err",
    "n_samples",
)

INDEPENDENCE = (
    "The reference and the coarse-grained inputs are independent Monte Carlo ensembles "
    "(different seeds, or the two halves of --data). Comparing outputs with the very lattices "
    "their inputs came from would correlate the two sides and make every z look better "
    "than it is; with independent ensembles sqrt(se_method² + se_MC²) is the right yardstick."
)


@dataclass
class PartResult:
    """One (method, factor, convention): "done" with its measured Dataset, "n/a" or "pending"."""

    method: str
    factor: float
    coarsen: str
    status: str
    reason: str = ""
    measured: xr.Dataset | None = None
    metrics: dict = field(default_factory=dict)


def _rel(a: float, b: float) -> float:
    return (a - b) / abs(b) if b else math.nan


def part_metrics(part: xr.Dataset, mc: xr.Dataset) -> dict:
    """Scalars (see :data:`SCALARS`, cost excluded), r and k curves, and the bar's verdict."""
    c = compare_measured(part, mc)
    ok, why = passes_bar(c)
    out = {"why": why}
    for name, short in (("G2", "G2"), ("G4c_square", "G4c")):
        g = c[name]
        out[f"chi2_dof_{short}"] = g["chi2_dof"]
        out[f"max_abs_z_{short}"] = g["max_abs_z"]
        out[f"r_at_max_{short}"] = math.nan if g["r_at_max"] is None else float(g["r_at_max"])
        out[f"z_{short}"] = np.concatenate([[np.nan], np.asarray(g["z"], dtype=float)])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"ratio_{short}"] = part[name].values / mc[name].values
    e = c["energy"]
    out.update(
        energy=e["skild"], energy_err=e["skild_err"], rel_dev_energy=e["rel_dev"], z_energy=e["z"]
    )
    m = c["abs_m"]
    out.update(
        abs_m=m["skild"],
        abs_m_err=m["skild_err"],
        rel_dev_abs_m=_rel(m["skild"], m["mc"]),
        z_abs_m=m["z"],
    )
    b, eb, bm, ebm = (
        float(part["binder"]),
        float(part["binder_err"]),
        float(mc["binder"]),
        float(mc["binder_err"]),
    )
    out.update(binder=b, binder_err=eb, dev_binder=b - bm, z_binder=scalar_z(b, eb, bm, ebm))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = part["S"].values / mc["S"].values
        db = 10 * np.log10(ratio[1:])
    out["S_ratio"] = ratio
    out["spectrum_error_db"] = (
        float(np.sqrt(np.nanmean(db**2))) if np.isfinite(db).any() else math.nan
    )
    out["n_samples"] = float(part["n_samples"])
    out["passes"] = float(ok)
    return out


def _cost(measured: xr.Dataset) -> dict:
    return {
        k: float(measured.attrs.get(k, math.nan))
        for k in ("seconds", "seconds_per_lattice", "train_seconds")
    }


def assemble(
    results: list[PartResult],
    mc: xr.Dataset,
    *,
    methods,
    factors,
    coarsen,
    n_coarse: dict,
    attrs: dict,
) -> xr.Dataset:
    """The evaluation.nc Dataset: dims (method, factor, coarsen, r | k), nan where a part is n/a."""
    shape = (len(methods), len(factors), len(coarsen))
    nr, nk = mc.sizes["r"], mc.sizes["k"]
    scal = {name: np.full(shape, np.nan) for name in SCALARS}
    rc = {name: np.full(shape + (nr,), np.nan) for name in R_CURVES}
    kc = {name: np.full(shape + (nk,), np.nan) for name in K_CURVES}
    status = np.full(shape, "pending", dtype=object)
    reason = np.full(shape, "", dtype=object)
    checkpoint = np.full(shape, "", dtype=object)
    note = np.full(shape, "", dtype=object)
    index = {
        (m, float(f), c): (i, j, k)
        for i, m in enumerate(methods)
        for j, f in enumerate(factors)
        for k, c in enumerate(coarsen)
    }
    for res in results:
        ijk = index[(res.method, float(res.factor), res.coarsen)]
        status[ijk], reason[ijk] = res.status, res.reason
        if res.status != "done":
            continue
        values = {**res.metrics, **_cost(res.measured)}
        checkpoint[ijk] = str(res.measured.attrs.get("checkpoint", ""))
        note[ijk] = str(res.measured.attrs.get("note", ""))
        for name in SCALARS:
            scal[name][ijk] = values[name]
        for name in R_CURVES:
            rc[name][ijk] = values[name] if name in values else res.measured[name].values
        for name in K_CURVES:
            kc[name][ijk] = values[name] if name in values else res.measured[name].values
    dims = ("method", "factor", "coarsen")
    ds = xr.Dataset(
        coords={
            "method": list(methods),
            "factor": [float(f) for f in factors],
            "coarsen": list(coarsen),
            "r": mc["r"].values,
            "k": mc["k"].values,
        }
    )
    for name, v in scal.items():
        ds[name] = (dims, v)
    for name, v in rc.items():
        ds[name] = (dims + ("r",), v)
    for name, v in kc.items():
        ds[name] = (dims + ("k",), v)
    ds["status"] = (dims, status.astype(str))
    ds["reason"] = (dims, reason.astype(str))
    ds["checkpoint"] = (dims, checkpoint.astype(str))
    ds["note"] = (dims, note.astype(str))
    ds["n_coarse"] = (
        ("factor", "coarsen"),
        np.array(
            [[n_coarse.get((float(f), c), -1) for c in coarsen] for f in factors], dtype=np.int64
        ),
    )
    for name in MC_VARS:
        ds[f"mc_{name}"] = (mc[name].dims, mc[name].values)
    _describe(ds)
    ds.attrs.update({k: _attr(v) for k, v in attrs.items()})
    return ds


def _describe(ds: xr.Dataset) -> None:
    text = {
        "passes": "1 = meets the bar at L (evaluation.comparison.bar_for), 0 = fails, "
        "nan = n/a or pending",
        "r_at_max_G2": "r of the largest |z| of G2 (r = 1 ... L/2)",
        "z_G2": "(G2 - mc_G2) / sqrt(G2_err^2 + mc_G2_err^2); nan at r = 0",
        "spectrum_error_db": "RMS over k > 0 of 10 log10(S / mc_S)",
        "rel_dev_energy": "u / mc_u - 1 (energy per site)",
        "dev_binder": "U4 - mc_U4, U4 = 1 - <m^4>/(3<m^2>^2)",
        "seconds_per_lattice": "wall time of the method's calls per output lattice "
        "(checkpoint loading excluded)",
        "train_seconds": "training wall time from the checkpoint metadata or its loss.csv; "
        "nan if not recorded",
        "status": "done | n/a | pending",
        "reason": "why a part is n/a",
        "n_coarse": "coarse lattice size n for (factor, coarsen); -1 where the convention "
        "does not fit",
    }
    for name, t in text.items():
        ds[name].attrs["description"] = t


def _attr(v):
    if v is None:
        return "none"
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    return v


def netcdf_attrs(attrs: dict) -> dict:
    """Attributes netCDF can hold: None -> "none", bool -> int, containers -> JSON."""
    return {k: _attr(v) for k, v in attrs.items()}


__all__ = [
    "PartResult",
    "part_metrics",
    "assemble",
    "SCALARS",
    "R_CURVES",
    "K_CURVES",
    "MC_VARS",
    "INDEPENDENCE",
    "netcdf_attrs",
]
