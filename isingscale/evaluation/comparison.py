"""One comparison of an ensemble with a Monte Carlo reference, used by every evaluation.

``evaluate`` (the method × factor harness), the SKILD quality table
(:mod:`isingscale.evaluation.quality`), the kernel-interpolation benchmark and ``upsample``'s
closing comparison all measure with :func:`measure_file` and compare with
:func:`compare_measured`, and judge with :func:`passes_bar`:

* measurement: :func:`isingscale.analysis.correlators.measure` (G2, square G4c, energy,
  |m|, Binder U4, S(k); jackknife errors over ``N_BLOCKS`` blocks of consecutive samples);
* per r = 1 ... L/2 (r = 0 is fixed by s² = 1), z = (a - b)/sqrt(se_a² + se_b²), summarised
  by :func:`isingscale.analysis.agreement.agreement` (χ²/dof, max |z| and where);
* the bar (:func:`bar_for` the output size): G2 and square G4c within ``MAX_Z`` combined
  standard errors at every r = 1 ... L/2 and the energy per site within 1 % below L = 128;
  from L = 128 (the SKILD paper's size) r = 1 ... L/4, the energy within 0.5 %, and <|m|> and
  the Binder cumulant within ``MAX_Z`` combined standard errors as well.

From Python, ``compare(sr_path, truth_path)`` is what ``isingscale upsample`` prints after it
writes its file. The z-scores assume independent ensembles; an output compared with the
very lattices its input came from is correlated with them, and z then understates the
differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..analysis.agreement import agreement
from ..errors import IsingScaleError

N_BLOCKS = 32  # jackknife blocks of consecutive samples
MAX_Z = 2.0  # "within 2 combined standard errors at every r"
ENERGY_TOL = 0.01  # |Δu / u| < 1 % (the bar below L = 128)


@dataclass(frozen=True)
class Bar:
    """What an ensemble must meet against its Monte Carlo reference.

    G2 and square G4c within MAX_Z combined standard errors at every r = 1 ... r_fraction L,
    the energy per site within energy_tol (relative), and each of ``scalars`` (keys of
    :func:`compare_measured`: "abs_m", "binder") within MAX_Z combined standard errors.
    """

    r_fraction: float
    energy_tol: float
    scalars: tuple[str, ...] = ()

    def describe(self) -> str:
        r = {0.5: "L/2", 0.25: "L/4", 0.125: "L/8"}.get(self.r_fraction, f"{self.r_fraction:g} L")
        names = {"abs_m": "<|m|>", "binder": "Binder U4"}
        text = (
            f"G2 and square G4c within {MAX_Z:g} combined standard errors at every r = 1 ... "
            f"{r}, and |Δu/u| < {100 * self.energy_tol:g} % (energy per site)"
        )
        if self.scalars:
            text += ", " + " and ".join(names.get(k, k) for k in self.scalars)
            text += f" within {MAX_Z:g} combined standard errors"
        return text


BAR_SMALL = Bar(0.5, ENERGY_TOL)  # L < 128: every r, energy within 1 %
BAR_PAPER = Bar(0.25, 0.005, ("abs_m", "binder"))  # L >= 128, the SKILD paper's Ising size


def bar_for(L: int) -> Bar:
    """The bar at output size L: :data:`BAR_PAPER` from L = 128 on, :data:`BAR_SMALL` below."""
    return BAR_PAPER if L >= 128 else BAR_SMALL


def measure_file(path, *, n_blocks: int = N_BLOCKS, client=None) -> xr.Dataset:
    """Correlators and observables of an ensemble file (square G4c), loaded into memory.

    client: a dask.distributed client to measure the chunks on (same numbers), or None.
    A degenerate ensemble (e.g. all-equal lattices) gives nan where S(k) = 0, without warnings.
    """
    from ..analysis.correlators import measure
    from ..analysis.ensemble import open_ensemble

    ds = open_ensemble(path)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = measure(ds, shapes=("square",), n_blocks=n_blocks, client=client).load()
    finally:
        ds.close()
    out.attrs["shapes"] = "square"
    return out


def _scalar(a: xr.Dataset, b: xr.Dataset, name: str) -> dict:
    x, ex, y, ey = (float(d[k]) for d in (a, b) for k in (name, f"{name}_err"))
    return {
        "skild": x,
        "skild_err": ex,
        "mc": y,
        "mc_err": ey,
        "rel_dev": (x - y) / abs(y) if y else math.nan,
        "rel_err": math.hypot(ex, ey) / abs(y) if y else math.nan,
        "z": scalar_z(x, ex, y, ey),
    }


def scalar_z(x: float, ex: float, y: float, ey: float) -> float:
    """z of one scalar against a reference (agreement's z; nan when both errors vanish)."""
    return float(agreement(x, ex, y, ey)["z"][0])


def _curve(a: xr.Dataset, b: xr.Dataset, name: str, r: slice) -> dict:
    x, ex = a[name].values[r], a[f"{name}_err"].values[r]
    y, ey = b[name].values[r], b[f"{name}_err"].values[r]
    st = agreement(x, ex, y, ey)
    z = st["z"]
    finite = np.isfinite(z)
    return {
        "chi2_dof": st["chi2_dof"],
        "max_abs_z": st["max_abs_z"],
        "r_at_max": None if st["argmax"] is None else int(st["argmax"]) + r.start,
        "dof": st["dof"],
        "within": bool(np.all(np.abs(z[finite]) < MAX_Z)) and st["dof"] > 0,
        "n_outside": int(np.sum(np.abs(z[finite]) >= MAX_Z)),
        "z": z.tolist(),
        "rel_dev": ((x - y) / np.abs(y)).tolist(),
        "values": {
            "skild": x.tolist(),
            "skild_err": ex.tolist(),
            "mc": y.tolist(),
            "mc_err": ey.tolist(),
        },
    }


def compare_measured(a: xr.Dataset, b: xr.Dataset) -> dict:
    """Agreement of a measured ensemble ``a`` with a measured reference ``b`` (same L).

    Returns {"L", "r_range", "G2", "G4c_square" (each: chi2_dof, max_abs_z, r_at_max, dof,
    within, n_outside, z, rel_dev and both curves' values per r), "energy", "abs_m", "binder"
    (each: the two values and
    errors, rel_dev, rel_err, z), "G2_rel_r1", "G2_rel_rL4", "mc_G2_rel_err_rL4",
    "skild_G2_rel_err_rL4", "n_skild", "n_mc"}; "skild" names the compared ensemble
    whatever made it, "mc" the reference.
    """
    L = int(b.attrs["L"])
    if int(a.attrs["L"]) != L:
        raise IsingScaleError(f"cannot compare L={int(a.attrs['L'])} with a reference at L={L}")
    r, q = slice(1, L // 2 + 1), L // 4
    out: dict = {"L": L, "r_range": [1, L // 2]}
    for name in ("G2", "G4c_square"):
        out[name] = _curve(a, b, name, r)
    out["G2_rel_r1"] = float((a["G2"][1] - b["G2"][1]) / abs(b["G2"][1]))
    out["G2_rel_rL4"] = float((a["G2"][q] - b["G2"][q]) / abs(b["G2"][q]))
    out["mc_G2_rel_err_rL4"] = float(b["G2_err"][q] / abs(b["G2"][q]))
    out["skild_G2_rel_err_rL4"] = float(a["G2_err"][q] / abs(a["G2"][q]))
    out["energy"] = _scalar(a, b, "energy")
    out["abs_m"] = _scalar(a, b, "abs_m")
    out["binder"] = _scalar(a, b, "binder")
    out["n_skild"] = int(a["n_samples"])
    out["n_mc"] = int(b["n_samples"])
    return out


def passes_bar(c: dict, bar: Bar | None = None) -> tuple[bool, str]:
    """The bar (default: :func:`bar_for` the compared L) on a :func:`compare_measured`
    result: (passes, why it fails or "ok")."""
    bar = bar or bar_for(int(c["L"]))
    n_r = int(bar.r_fraction * c["L"])
    bad = []
    for name in ("G2", "G4c_square"):
        z = np.abs(np.asarray(c[name]["z"], dtype=float)[:n_r])  # index i is r = i + 1
        finite = np.isfinite(z)
        if not (finite.any() and np.all(z[finite] < MAX_Z)):
            at = int(np.nanargmax(z)) + 1 if finite.any() else None
            bad.append(
                f"{name}: {int(np.sum(z[finite] >= MAX_Z))} of {int(finite.sum())} r outside "
                f"2 SE (max |z| = {np.nanmax(z) if at else math.nan:.2f} at r = {at}, "
                f"chi2/dof = {c[name]['chi2_dof']:.2f})"
            )
    e = c["energy"]
    if not abs(e["rel_dev"]) < bar.energy_tol:
        bad.append(
            f"energy per site off by {100 * e['rel_dev']:+.2f} % "
            f"(SKILD {e['skild']:.4f}, MC {e['mc']:.4f})"
        )
    for name in bar.scalars:
        if not abs(c[name]["z"]) < MAX_Z:
            bad.append(f"{name} off by {c[name]['z']:+.2f} combined SE")
    return not bad, "; ".join(bad) or "ok"


class Comparison(dict):
    """:func:`compare_measured`'s dict (or energy and |m| only, for different sizes), with
    the verdict and a few lines for the terminal."""

    @property
    def passes(self) -> bool | None:
        return passes_bar(self)[0] if "G2" in self else None

    def summary(self) -> str:
        lines = []
        for name in ("G2", "G4c_square"):
            if name in self:
                g = self[name]
                lines.append(
                    f"  {name:<10}  chi2/dof {g['chi2_dof']:.2f}, max |z| {g['max_abs_z']:.2f} "
                    f"at r = {g['r_at_max']} (r = 1 ... {self['L'] // 2})"
                )
        for name, label in (("energy", "energy"), ("abs_m", "<|m|>")):
            v = self[name]
            lines.append(
                f"  {label:<10}  {v['skild']:+.4f} ± {v['skild_err']:.4f} vs MC {v['mc']:+.4f} "
                f"± {v['mc_err']:.4f} ({100 * v['rel_dev']:+.2f} %, z = {v['z']:+.2f})"
            )
        if "note" in self:
            lines.append(f"  {self['note']}")
        else:
            ok, why = passes_bar(self)
            bar = bar_for(int(self["L"]))
            lines.append(f"  bar ({bar.describe()}): {'pass' if ok else 'fail: ' + why}")
            se = energy_resolution(self)
            if not ok and 2 * se >= bar.energy_tol:
                lines.append(
                    f"  note: the energy's combined SE here is {100 * se:.2f} %, too large to "
                    f"resolve the {100 * bar.energy_tol:g} % tolerance; more lattices "
                    "(--samples) do"
                )
        return "\n".join(lines)


def energy_resolution(c: dict) -> float:
    """The combined standard error of the relative energy deviation, sqrt(SE_a² + SE_b²)/|u_ref|
    (dimensionless): the bar's energy tolerance is resolved only when it is over 2 of these."""
    e = c["energy"]
    return float(np.hypot(e["skild_err"], e["mc_err"]) / abs(e["mc"]))


def compare(path, reference, *, n_blocks: int = N_BLOCKS) -> Comparison:
    """Compare an ensemble file with a reference ensemble file (e.g. upsample's output and
    its Monte Carlo ground truth): :func:`compare_measured` of the two measurements.

    Lattices of different sizes (a super-resolution whose factor does not return to the
    source's L) are compared in energy per site and <|m|> only, with a note: finite-size
    effects then enter. ``result.measured`` keeps the two measurements (reference, path)
    for whatever draws them next (:func:`isingscale.evaluation.upsample_figure`).
    """
    a, b = measure_file(path, n_blocks=n_blocks), measure_file(reference, n_blocks=n_blocks)
    La, Lb = int(a.attrs["L"]), int(b.attrs["L"])
    if La == Lb:
        c = Comparison(compare_measured(a, b))
    else:
        note = (
            f"sizes differ ({La} and reference {Lb}): energy and <|m|> only, "
            "finite-size effects enter"
        )
        c = Comparison(energy=_scalar(a, b, "energy"), abs_m=_scalar(a, b, "abs_m"), note=note)
    c.measured = (b, a)
    return c
