"""report.md and the terminal summary, both written from the evaluation.nc Dataset alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import xarray as xr

from .comparison import bar_for
from .results import INDEPENDENCE

_TITLE = {"fourier": "Fourier-truncated inputs", "block": "Majority-rule block-spin inputs"}
_HEAD = (
    "| method | ×F | n → L | G2 χ²/dof | G2 max\\|z\\| (r) | G4c χ²/dof | G4c max\\|z\\| (r) | "
    "Δu/u "
    "| Δ\\|m\\|/\\|m\\| | ΔU4 | S(k) err | bar | s / lattice | training |"
)
_NCOLS = _HEAD.count("|") - _HEAD.count("\\|") - 1


def _f(x: float, spec: str = ".2f") -> str:
    return "–" if x is None or not math.isfinite(x) else format(x, spec)


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:+.2f} %"


def duration(seconds: float) -> str:
    """Seconds as "12 s", "3.5 min", "2.1 h"; "not recorded" for nan."""
    if not math.isfinite(seconds):
        return "not recorded"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _row(p: xr.Dataset, L: int, n: int) -> str:
    size = f"{n} → {L}" if n > 0 else "–"
    lead = f"| {p['method'].item()} | ×{float(p['factor']):g} | {size} "
    status = str(p["status"].item())
    if status != "done":
        what = "n/a" if status == "n/a" else "pending (interrupted; --resume)"
        reason = f": {_cell(p['reason'].item())}" if str(p["reason"].item()) else ""
        return lead + f"| {what}{reason} |" + " |" * (_NCOLS - 4)

    def zr(short: str) -> str:
        return f"{_f(float(p[f'max_abs_z_{short}']))} ({_f(float(p[f'r_at_max_{short}']), '.0f')})"

    bar = "pass" if float(p["passes"]) == 1 else "**fail**"
    training = (
        "none" if str(p["checkpoint"].item()) == "none" else duration(float(p["train_seconds"]))
    )
    return (
        lead + f"| {_f(float(p['chi2_dof_G2']))} | {zr('G2')} "
        f"| {_f(float(p['chi2_dof_G4c']))} | {zr('G4c')} "
        f"| {_pct(float(p['rel_dev_energy']))} | {_pct(float(p['rel_dev_abs_m']))} "
        f"| {float(p['dev_binder']):+.3f} ± {_f(float(p['binder_err']), '.3f')} "
        f"| {_f(float(p['spectrum_error_db']))} dB | {bar} | "
        f"{_f(float(p['seconds_per_lattice']), '.3g')} "
        f"| {training} |"
    )


def method_table(ds: xr.Dataset, coarsen: str) -> str:
    """Markdown table, one row per (method, factor), for one convention."""
    L = int(ds.attrs["L"])
    lines = [_HEAD, "|" + "---|" * _NCOLS]
    for m in ds["method"].values:
        for f in ds["factor"].values:
            p = ds.sel({"method": m, "factor": f, "coarsen": coarsen})
            lines.append(_row(p, L, int(ds["n_coarse"].sel(factor=f, coarsen=coarsen))))
    return "\n".join(lines)


def _mc_line(ds: xr.Dataset) -> str:
    return (
        f"Monte Carlo reference ({int(ds['mc_n_samples'])} lattices): u = "
        f"{float(ds['mc_energy']):.5f} ± "
        f"{float(ds['mc_energy_err']):.5f}, <|m|> = {float(ds['mc_abs_m']):.4f} ± "
        f"{float(ds['mc_abs_m_err']):.4f}, "
        f"U4 = {float(ds['mc_binder']):.4f} ± {float(ds['mc_binder_err']):.4f} (U4* = 0.6107 as L "
        "→ ∞)."
    )


_HOW_TO_READ = (
    "How to read: per r = 1 … L/2, z = (method − MC) / sqrt(se²_method + se²_MC) with jackknife "
    "errors; χ²/dof = mean z² (neighbouring r are correlated, so read it as a guide, not a "
    "p-value); "
    "max |z| and the r where it occurs locate the failure (small r: wrong short-distance "
    "structure, "
    "e.g. block replication; large r: wrong magnetisation or long-range order). Δ columns are "
    "relative deviations method/MC − 1 (energy per site u, <|m|>); ΔU4 is the Binder cumulant "
    "difference ± the method's error; S(k) err is the RMS over k > 0 of 10 log10(S_method / S_MC). "
    "Bar: {bar}. s / lattice: wall time of the method's calls per output lattice (checkpoint "
    "loading excluded); training: from the checkpoint's metadata or loss.csv. n/a: the method "
    "cannot run for that factor or input (reason given)."
)


def report_markdown(ds: xr.Dataset, *, why: dict | None = None, plots=()) -> str:
    """The text of report.md: command, settings, one method × factor table per convention."""
    L = int(ds.attrs["L"])
    opts = json.loads(ds.attrs["options"]) if isinstance(ds.attrs.get("options"), str) else {}
    lines = [
        f"# isingscale evaluate report (L = {L})",
        "",
        "```",
        str(ds.attrs.get("command", "")),
        "```",
        "",
    ]
    if int(ds.attrs.get("interrupted", 0)):
        lines += [
            "**Interrupted**: parts marked pending were not run; repeat the command with --resume.",
            "",
        ]
    source = (
        f"`{ds.attrs['data']}`, first half = inputs, second half = reference (independent as far "
        "as "
        "the file's lattices are: samples of one Markov chain next to the split are correlated)"
        if ds.attrs.get("data") not in (None, "none")
        else f"Wolff Monte Carlo at L = {L}, seeds {ds.attrs['seed_reference']} (reference) and "
        f"{ds.attrs['seed_inputs']} (inputs); training data used seed 1"
    )
    lines += [
        f"Settings: L = {L}, {ds.attrs['samples']} lattices requested per ensemble, methods' noise "
        "seed "
        f"{ds.attrs['seed']}, device {opts.get('device', '?')}, isingscale "
        f"{ds.attrs.get('package_version')}, "
        f"{ds.attrs.get('created', '')}.",
        "",
        f"Ground truth: {source}. Reference `{ds.attrs['reference']}`; inputs "
        f"`{ds.attrs['inputs']}`. " + INDEPENDENCE,
        "",
        _mc_line(ds),
        "",
        _HOW_TO_READ.format(bar=bar_for(L).describe()),
        "",
    ]
    for c in ds["coarsen"].values:
        lines += [f"## {_TITLE.get(str(c), str(c))}", "", method_table(ds, str(c)), ""]
    failing = [f"- {m} ×{f:g} {c}: {w}" for (m, f, c), w in (why or {}).items() if w and w != "ok"]
    if failing:
        lines += ["## Why parts fail the bar", "", *failing, ""]
    notes = [
        f"- {m} ×{float(f):g} {c}: "
        f"{_cell(ds['note'].sel({'method': m, 'factor': f, 'coarsen': c}).item())}"
        for m in ds["method"].values
        for f in ds["factor"].values
        for c in ds["coarsen"].values
        if str(ds["note"].sel({"method": m, "factor": f, "coarsen": c}).item())
    ]
    if notes:
        lines += ["## Method notes", "", *notes, ""]
    ckpts = sorted({str(v) for v in ds["checkpoint"].values.ravel() if str(v) not in ("", "none")})
    if ckpts:
        lines += ["## Checkpoints", "", *[f"- `{c}`" for c in ckpts], ""]
    lines += [
        "## Files",
        "",
        "- `evaluation.nc`: every curve and metric (dims method, factor, coarsen, r, k; "
        "MC reference as mc_*); `parts/`: one measured part each; `ensembles/`: the output "
        "lattices.",
    ]
    if plots:
        lines.append("- Plots: " + ", ".join(f"`plots/{Path(p).name}`" for p in plots) + ".")
    return "\n".join(lines) + "\n"


def summary(ds: xr.Dataset, *, files=()) -> str:
    """One screen: per convention and part, G2 / G4c max |z|, Δu/u, verdict and cost."""
    lines = [
        f"L = {ds.attrs['L']}, {int(ds['mc_n_samples'])} MC reference lattices; "
        "max|z| over r = 1..L/2 (r at max)"
    ]
    head = (
        f"  {'method':<12} {'×F':>5}  {'G2 max|z|':>12}  {'G4c max|z|':>12}  {'Δu/u':>9}  "
        f"{'bar':<5} "
        f"{'s/lattice':>9}"
    )
    for c in ds["coarsen"].values:
        lines += [f"{_TITLE.get(str(c), str(c))}:", head]
        for m in ds["method"].values:
            for f in ds["factor"].values:
                p = ds.sel({"method": m, "factor": f, "coarsen": c})
                st = str(p["status"].item())
                if st != "done":
                    why = str(p["reason"].item())
                    lines.append(f"  {str(m):<12} {f:>5g}  {st}{': ' + why if why else ''}"[:110])
                    continue
                z2 = f"{float(p['max_abs_z_G2']):.2f} ({float(p['r_at_max_G2']):.0f})"
                z4 = f"{float(p['max_abs_z_G4c']):.2f} ({float(p['r_at_max_G4c']):.0f})"
                bar = "pass" if float(p["passes"]) == 1 else "FAIL"
                lines.append(
                    f"  {str(m):<12} {f:>5g}  {z2:>12}  {z4:>12}  "
                    f"{_pct(float(p['rel_dev_energy'])):>9}  "
                    f"{bar:<5} {float(p['seconds_per_lattice']):>9.3g}"
                )
    if files:
        lines.append(
            "wrote "
            + ", ".join(str(f) for f in files[:2])
            + (f" and {len(files) - 2} plot(s)" if len(files) > 2 else "")
        )
    return "\n".join(lines)


__all__ = ["report_markdown", "summary", "method_table", "duration"]
