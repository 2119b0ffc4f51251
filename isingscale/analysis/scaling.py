"""Finite-size scaling at Tc: eta and gamma/nu from ensembles at several lattice sizes L.

At Tc on the L x L torus both observables are power laws in L up to corrections to scaling:

- G(L/2) = <s(x, y) s(x + L/2, y)>, averaged over sites, the two axes and samples, ~ L^-eta;
- chi = L^2 <m^2> / T (per site) ~ L^(gamma/nu) = L^(2 - eta).

Both are the Z2-symmetric estimators: on a finite torus without a field <m> = 0 exactly, so
nothing is subtracted (subtracting the sample's <m>^2 would only add a bias of order
chi T / (n L^2)), and chi is the signed one: the connected chi of ``correlate``,
L^2 (<m^2> - <|m|>^2) / T, mixes in <|m|>, whose finite-size corrections are larger. Each
ensemble's values carry jackknife errors over blocks of consecutive samples; ensembles at
different L are independent.

Fits: for every L_min with at least three sizes L >= L_min, a weighted least-squares line
ln y = ln a + x ln L (x = -eta or gamma/nu) with its chi^2/dof and p-value; and, where four or
more sizes remain, the same with a correction to scaling, y = a L^x (1 + b L^-omega), omega
fixed (default 2, the leading irrelevant correction of the square-lattice Ising torus; the
analytic background of chi enters as L^-(7/4), which a free b at omega = 2 absorbs at these
sizes). The estimate reported is the power-law fit from the smallest L_min whose p-value is at
least P_ACCEPT: the most precise fit the data cannot tell from a pure power law. The drift of
the exponent as L_min grows, and the corrected fits, show how far corrections move it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..constants import ETA, T_C
from ..errors import IsingScaleError
from . import kernels
from .errors import DEFAULT_BLOCKS, BlockAccumulator, jackknife

P_ACCEPT = 0.05  # smallest p-value of a fit that the report accepts as a pure power law
OMEGA = 2.0  # exponent of the correction-to-scaling term of the corrected fits
# observable -> (exponent name, sign of the exponent in y ~ L^(sign * exponent), exact value)
EXPONENTS = {"G_half": ("eta", -1.0, ETA), "chi": ("gamma_nu", 1.0, 2.0 - ETA)}

PathLike = str | os.PathLike


def ensemble_observables(ds: xr.Dataset, *, n_blocks: int = DEFAULT_BLOCKS, progress=None):
    """G(L/2), chi, U4 and <m> of one ensemble, with jackknife errors: a dict of (value, error).

    ds: an ensemble from :func:`isingscale.analysis.ensemble.open_ensemble`; streamed chunk by
    chunk (bounded memory). T is the file's temperature (chi is nan without one).
    """
    from .ensemble import iter_spin_chunks
    from .observables import binder

    L, T = int(ds.attrs["L"]), float(ds.attrs.get("T", np.nan))
    N = L * L
    acc = BlockAccumulator(ds.sizes["sample"], n_blocks)
    for start, spins in iter_spin_chunks(ds):
        sums = kernels.shifted_products(spins, L // 2)
        m = sums[:, 2] / N
        acc.add(start, {"G": (sums[:, 0] + sums[:, 1]) / (2 * N), "m": m, "m2": m**2, "m4": m**4})
        if progress is not None:
            progress.update(len(spins))
        del spins  # before the next chunk is read

    def estimators(means):
        return {
            "G_half": means["G"],
            "chi": N * means["m2"] / T,
            "binder": binder(means["m2"], means["m4"]),
            "m": means["m"],
        }

    return jackknife(acc, estimators)


def power_law_fit(L, y, err) -> dict:
    """Weighted least squares of ln y = ln a + x ln L (errors err / y): x, a, their errors,
    chi^2, dof and p-value."""
    from scipy import stats

    X = np.log(np.asarray(L, dtype=float))
    Y = np.log(y)
    w = (np.asarray(y) / np.asarray(err)) ** 2
    A = np.stack([np.ones_like(X), X], axis=1)
    cov = np.linalg.inv(A.T @ (w[:, None] * A))
    c = cov @ (A.T @ (w * Y))
    chi2 = float(np.sum(w * (Y - A @ c) ** 2))
    dof = len(X) - 2
    return {
        "exponent": float(c[1]),
        "exponent_err": float(math.sqrt(cov[1, 1])),
        "amplitude": float(math.exp(c[0])),
        "chi2": chi2,
        "dof": dof,
        "p": float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan,
    }


def corrected_fit(L, y, err, *, omega: float = OMEGA) -> dict:
    """y = a L^x (1 + b L^-omega) with omega fixed, by weighted nonlinear least squares."""
    from scipy import optimize, stats

    L = np.asarray(L, dtype=float)
    start = power_law_fit(L, y, err)

    def model(L, a, x, b):
        return a * L**x * (1.0 + b * L**-omega)

    p0 = (start["amplitude"], start["exponent"], 0.0)
    try:
        c, cov = optimize.curve_fit(model, L, y, p0=p0, sigma=err, absolute_sigma=True)
    except (RuntimeError, ValueError):  # no convergence: report nothing rather than a guess
        return {"exponent": np.nan, "exponent_err": np.nan, "b": np.nan, "chi2": np.nan,
                "dof": len(L) - 3, "p": np.nan}  # fmt: skip
    chi2 = float(np.sum(((y - model(L, *c)) / err) ** 2))
    dof = len(L) - 3
    return {
        "exponent": float(c[1]),
        "exponent_err": float(math.sqrt(cov[1, 1])),
        "b": float(c[2]),
        "chi2": chi2,
        "dof": dof,
        "p": float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan,
    }


def _open_all(sources, *, binarize: bool, values=None, T=None) -> list[xr.Dataset]:
    """Open every source (as correlate does) and check they make a size series at one T."""
    from ..lattices import open_lattices, source_list
    from .ensemble import open_ensemble

    lats = [open_lattices(s, values=values, T=T, binarize=binarize) for s in source_list(sources)]
    if not lats:
        raise IsingScaleError("no ensemble files given")
    ensembles = [open_ensemble(lat, binarize=binarize) for lat in lats]
    names = [lat.file.name if lat.file is not None else lat.name for lat in lats]
    Ls = [int(e.attrs["L"]) for e in ensembles]
    if len(set(Ls)) == 1 and len(Ls) > 1:
        raise IsingScaleError(
            f"all {len(Ls)} files are at a single L = {Ls[0]}: scaling needs ensembles at three "
            "or more sizes"
        )
    for i, L in enumerate(Ls):
        if Ls.index(L) != i:
            raise IsingScaleError(
                f"two files at L = {L} ({names[Ls.index(L)]}, {names[i]}): "
                "give one ensemble per size"
            )
    if len(Ls) < 3:
        sizes = ", ".join(str(L) for L in Ls)
        raise IsingScaleError(
            f"scaling needs ensembles at three or more sizes L, got {len(Ls)} (L = {sizes})"
        )
    Ts = [float(e.attrs["T"]) for e in ensembles]  # recorded, --T, or Tc with a notice
    for name, T in zip(names, Ts):
        if not math.isclose(T, Ts[0], rel_tol=1e-9):
            raise IsingScaleError(
                f"files at different T: {names[0]} has T = {Ts[0]:.8g}, {name} has T = {T:.8g}"
            )
    order = np.argsort(Ls)
    return [ensembles[i] for i in order]


def fits_over_L_min(
    L: np.ndarray, y: np.ndarray, err: np.ndarray, *, sign: float, omega: float
) -> dict:
    """Power-law and corrected fits over L >= L_min for every L_min with >= 3 sizes left."""
    rows = {k: [] for k in ("exponent", "exponent_err", "amplitude", "chi2", "dof", "p")}
    rows.update(
        {f"corrected_{k}": [] for k in ("exponent", "exponent_err", "b", "chi2", "dof", "p")}
    )
    for i in range(len(L) - 2):
        plain = power_law_fit(L[i:], y[i:], err[i:])
        corr = corrected_fit(L[i:], y[i:], err[i:], omega=omega) if len(L) - i >= 4 else {}
        for k in ("exponent", "exponent_err", "amplitude", "chi2", "dof", "p"):
            rows[k].append(plain[k])
        for k in ("exponent", "exponent_err", "b", "chi2", "dof", "p"):
            rows[f"corrected_{k}"].append(corr.get(k, np.nan))
    out = {k: np.asarray(v, dtype=float) for k, v in rows.items()}
    out["exponent"] *= sign
    out["corrected_exponent"] *= sign
    return out


def scaling(
    sources: Sequence[Any],
    *,
    out: PathLike | None = None,
    n_blocks: int = DEFAULT_BLOCKS,
    binarize: bool = False,
    values: str | Sequence[float] | None = None,
    T: float | None = None,
    omega: float = OMEGA,
    progress: bool = True,
) -> xr.Dataset:
    """Finite-size-scaling estimates of eta and gamma/nu from ensembles at three or more L.

    Parameters
    ----------
    sources : lattice sources (ensemble files, or anything
        :func:`isingscale.lattices.open_lattices` reads), one per lattice size, all at one
        temperature (Tc for the exponents to mean anything); any order.
    out : directory for ``scaling.nc``, ``scaling.md`` and ``scaling.png`` (None: write nothing).
    n_blocks : jackknife blocks of consecutive samples per ensemble.
    binarize : take the signs of a continuous field / non-+-1 spins (as ``correlate``).
    values, T : value convention ``"LO,HI"`` and temperature for sources that are not +-1 or
        record none (as ``correlate``; without a recorded T, Tc with a notice).
    omega : exponent of the correction term of the corrected fits.
    progress : tqdm bar over all samples.

    Returns
    -------
    xarray.Dataset over ``L`` (``G_half``, ``chi``, ``binder``, ``m``, each with ``_err``;
    ``n_samples``; ``G_half_torus``, the torus CFT value at Tc) and over (``observable``,
    ``L_min``) the fits (``exponent``, ``exponent_err``, ``amplitude``, ``chi2``, ``dof``,
    ``p`` and the ``corrected_*`` ones; exponents as eta for G_half, gamma/nu for chi), and
    the reported ``eta``, ``eta_err``, ``gamma_nu``, ``gamma_nu_err`` with their ``*_L_min``.
    """
    from tqdm.auto import tqdm

    ensembles = _open_all(sources, binarize=binarize, values=values, T=T)
    T = float(ensembles[0].attrs["T"])
    L = np.array([int(e.attrs["L"]) for e in ensembles])
    total = sum(e.sizes["sample"] for e in ensembles)
    per_L = []
    with tqdm(total=total, unit="lattice", desc="scaling", disable=not progress) as bar:
        for e in ensembles:
            per_L.append(ensemble_observables(e, n_blocks=n_blocks, progress=bar))
            e.close()
    ds = xr.Dataset(coords={"L": L, "observable": list(EXPONENTS), "L_min": L[:-2]})
    for name in ("G_half", "chi", "binder", "m"):
        ds[name] = ("L", np.array([float(r[name][0]) for r in per_L]))
        ds[f"{name}_err"] = ("L", np.array([float(r[name][1]) for r in per_L]))
    ds["n_samples"] = ("L", np.array([e.sizes["sample"] for e in ensembles]))
    ds["G_half_torus"] = ("L", _torus_g_half(L, T))
    fits = [
        fits_over_L_min(L, ds[obs].values, ds[f"{obs}_err"].values, sign=sign, omega=omega)
        for obs, (_, sign, _) in EXPONENTS.items()
    ]
    for key in fits[0]:
        ds[key] = (("observable", "L_min"), np.stack([f[key] for f in fits]))
    _report_choice(ds)
    ds.attrs.update(
        T=T,
        omega=omega,
        p_accept=P_ACCEPT,
        files=",".join(str(e.attrs.get("source", "")) for e in ensembles),
        provenance=json.dumps(
            [e.encoding["lattices"].provenance(sha256=out is not None) for e in ensembles]
        ),
    )
    if out is not None:
        write_outputs(ds, out)
    return ds


def _torus_g_half(L: np.ndarray, T: float) -> np.ndarray:
    """<s_0 s_(L/2, 0)> of the torus CFT at each L (nan away from Tc)."""
    if not math.isclose(T, T_C, rel_tol=1e-6):
        return np.full(len(L), np.nan)
    from ..exact import torus_g2

    return np.array([float(torus_g2(l // 2, 0, l)) for l in L])


def _report_choice(ds: xr.Dataset) -> None:
    """Per observable, the reported exponent: the power-law fit from the smallest acceptable
    L_min (or the last fit, flagged, if none is acceptable)."""
    for obs, (name, _, _) in EXPONENTS.items():
        f = ds.sel(observable=obs)
        ok = np.flatnonzero(f["p"].values >= P_ACCEPT)
        i = int(ok[0]) if ok.size else len(f["L_min"]) - 1
        ds[name] = f["exponent"].values[i]
        ds[f"{name}_err"] = f["exponent_err"].values[i]
        ds[f"{name}_L_min"] = int(f["L_min"].values[i])
        ds[f"{name}_accepted"] = int(ok.size > 0)


def write_outputs(ds: xr.Dataset, out: PathLike) -> Path:
    """``out/scaling.nc``, ``out/scaling.md`` (tables) and ``out/scaling.png`` (data and fits)."""
    from ..io import writable_dir, write_netcdf
    from .plots import plot_scaling

    out = writable_dir(out)
    write_netcdf(ds, out / "scaling.nc")
    (out / "scaling.md").write_text(report_markdown(ds))
    plot_scaling(ds, out / "scaling.png", EXPONENTS)
    return out


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"


def report_markdown(ds: xr.Dataset) -> str:
    """The text of scaling.md: the ensembles, one fit table per exponent, the reported values."""
    lines = [
        f"# isingscale finite-size scaling (T = {ds.attrs['T']:.8g})",
        "",
        "| L | samples | G(L/2) | G(L/2) / torus CFT | chi = L^2<m^2>/T | U4 | <m> / error |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, L in enumerate(ds["L"].values):
        e = ds.isel(L=i)
        g, ge, gt = (float(e[k]) for k in ("G_half", "G_half_err", "G_half_torus"))
        lines.append(
            f"| {L} | {int(e['n_samples'])} | {g:.5f} ± {ge:.5f} | {_f(g / gt)} ± {_f(ge / gt)} | "
            f"{float(e['chi']):.5g} ± {float(e['chi_err']):.2g} | "
            f"{float(e['binder']):.4f} ± {float(e['binder_err']):.4f} | "
            f"{float(e['m']) / float(e['m_err']):+.1f} |"
        )
    for obs, (name, _, exact) in EXPONENTS.items():
        lines += _fit_table(ds, obs, name, exact)
    lines += [
        "## How to read this",
        "",
        f"- Power law: ln y = ln a + x ln L fitted over every L >= L_min with three or more sizes; "
        f"corrected: y = a L^x (1 + b L^-omega), omega = {ds.attrs['omega']:g} fixed (four or more "
        "sizes). Errors: one standard deviation from the jackknife errors of each point.",
        "- Reported: the power-law fit from the smallest L_min with "
        f"p >= {ds.attrs['p_accept']:g}, the most precise fit consistent with a pure power "
        "law; the rows below it show the drift as the small sizes are dropped.",
        "- G(L/2) = <s(x,y) s(x+L/2,y)> averaged over sites, both axes and samples; chi is the "
        "signed L^2<m^2>/T. Neither subtracts <m>^2 (zero on the torus); the last column of the "
        "first table checks it.",
        "",
    ]
    return "\n".join(lines) + "\n"


def _fit_table(ds: xr.Dataset, obs: str, name: str, exact: float) -> list[str]:
    f = ds.sel(observable=obs)
    title = "eta from G(L/2) ~ L^-eta" if name == "eta" else "gamma/nu from chi ~ L^(gamma/nu)"
    label = "eta" if name == "eta" else "gamma/nu"
    lines = [
        f"## {title}",
        "",
        f"| L_min | sizes | {label} | chi2/dof | p | {label} (corrected) | chi2/dof |",
        "|---|---|---|---|---|---|---|",
    ]
    for j, L_min in enumerate(f["L_min"].values):
        g = f.isel(L_min=j)
        cdof = float(g["corrected_dof"])
        corr = (
            f"{_f(float(g['corrected_exponent']))} ± {_f(float(g['corrected_exponent_err']))} | "
            f"{_f(float(g['corrected_chi2']) / cdof, 2)}"
            if np.isfinite(float(g["corrected_exponent"]))
            else "n/a | n/a"
        )
        lines.append(
            f"| {L_min} | {int(g['dof']) + 2} | {_f(float(g['exponent']))} ± "
            f"{_f(float(g['exponent_err']))} | {_f(float(g['chi2']) / float(g['dof']), 2)} | "
            f"{_f(float(g['p']), 3)} | {corr} |"
        )
    v, e = float(ds[name]), float(ds[f"{name}_err"])
    verdict = "" if int(ds[f"{name}_accepted"]) else " (no fit acceptable: the last one shown)"
    lines += [
        "",
        f"**{label} = {v:.4f} ± {e:.4f}** (L >= {int(ds[f'{name}_L_min'])}){verdict}; exact "
        f"{exact:g}: {v - exact:+.4f} = {(v - exact) / e:+.1f} sigma.",
        "",
    ]
    return lines


def summary(ds: xr.Dataset) -> str:
    """Two lines for the terminal: the reported exponents against the exact ones."""
    lines = []
    for name, _, exact in EXPONENTS.values():
        v, e = float(ds[name]), float(ds[f"{name}_err"])
        lines.append(
            f"{name.replace('_', '/'):>8} = {v:.4f} ± {e:.4f} (L >= {int(ds[f'{name}_L_min'])}); "
            f"exact {exact:g}: {(v - exact) / e:+.1f} sigma"
        )
    return "\n".join(lines)


__all__ = ["scaling", "ensemble_observables", "power_law_fit", "corrected_fit", "summary"]
