"""The SKILD quality table: a checkpoint's ensembles against held-out Monte Carlo.

Used by ``analysis/skild_quality.py`` (the markdown table) and by the slow test
``tests/evaluation/test_quality.py`` (the bar: G2(r) and square G4c(r) within 2 combined
standard errors at every r = 1 ... L/2, energy per site within 1 %; from L = 128 the paper
bar of :func:`isingscale.evaluation.comparison.bar_for`).

Protocol, per case (:class:`QualityCase`):

* Two independent held-out Monte Carlo ensembles per lattice size
  (:mod:`isingscale.evaluation.references`): the reference (100,000 lattices by default, so
  that its own fluctuation, shared by every case at that L, is negligible) and the inputs.
* Super-resolution: ``isingscale.skild.coarsen`` (Fourier truncation or majority-rule
  block spins) of the input lattices, then ``isingscale.skild.upsample`` by the case's
  factor (``repeat`` stages). Generation: ``isingscale.skild.generate`` from noise.
* Measurement, comparison and bar: :mod:`isingscale.evaluation.comparison`, the code the
  ``evaluate`` harness and upsample's closing comparison use.

Everything is written under a work directory; Monte Carlo files are reused when a file
with the same L, seed and at least the requested number of samples is already there.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import IsingScaleError
from .comparison import bar_for, compare_measured, measure_file, passes_bar
from .references import (
    MC_REFERENCE_SAMPLES,
    SEED_INPUTS,
    SEED_TRUTH,
    SPLITS,
    first_lattices,
    log,
    mc_ensemble,
)

MC_REL_ERR = 0.02  # MC error of G2 at r = L/4 below 2 %


@dataclass
class QualityCase:
    """One SKILD ensemble to compare with Monte Carlo at output size ``L``.

    mode: "upsample" (coarse input n = L / factor**repeat from held-out MC at L) or
    "generate" (from noise at L). coarsen: "fourier" | "block" (upsample only).
    samples: SKILD lattices for this case (None: the evaluation's default).
    """

    key: str
    label: str
    mode: str
    L: int
    factor: float | None = None
    repeat: int = 1
    coarsen: str = "fourier"
    samples: int | None = None

    @property
    def n_coarse(self) -> int | None:
        if self.mode != "upsample":
            return None
        return int(round(self.L / self.factor**self.repeat))

    def sizes(self) -> list[int]:
        if self.mode != "upsample":
            return [self.L]
        sizes = [self.n_coarse]
        for _ in range(self.repeat):
            sizes.append(int(round(self.factor * sizes[-1])))
        return sizes


def default_cases(L: int = 32, *, samples_large: int | None = None) -> list[QualityCase]:
    """The issue-4 set at training size L (default 32).

    ×2 and ×4 SR (Fourier and block inputs), ×8 SR from L >= 64, generation, ×2.5 (L/2 ->
    1.25 L), the network at 2L (×4 from L/2 to 2L), and two repeated ×2 steps (L/4 -> L/2 -> L).
    """
    big = 2 * L
    n25 = L // 2
    return [
        QualityCase(
            "sr2_fourier", f"×2 SR {L // 2}→{L}, Fourier input", "upsample", L, 2.0, 1, "fourier"
        ),
        QualityCase(
            "sr2_block", f"×2 SR {L // 2}→{L}, block-spin input", "upsample", L, 2.0, 1, "block"
        ),
        QualityCase(
            "sr4_fourier", f"×4 SR {L // 4}→{L}, Fourier input", "upsample", L, 4.0, 1, "fourier"
        ),
        QualityCase(
            "sr4_block", f"×4 SR {L // 4}→{L}, block-spin input", "upsample", L, 4.0, 1, "block"
        ),
        *(
            QualityCase(
                f"sr8_{conv}", f"×8 SR {L // 8}→{L}, {name} input", "upsample", L, 8.0, 1, conv
            )
            for conv, name in (("fourier", "Fourier"), ("block", "block-spin"))
            if L >= 64
        ),
        QualityCase("generate", f"generation from noise, L={L}", "generate", L),
        QualityCase(
            "sr2.5_fourier",
            f"×2.5 SR {n25}→{int(round(2.5 * n25))}, Fourier input",
            "upsample",
            int(round(2.5 * n25)),
            2.5,
            1,
            "fourier",
        ),
        QualityCase(
            "sr4_fourier_2L",
            f"×4 SR {big // 4}→{big} (net at 2× training size), Fourier input",
            "upsample",
            big,
            4.0,
            1,
            "fourier",
            samples=samples_large,
        ),
        QualityCase(
            "sr2x2_fourier",
            f"×2 twice {L // 4}→{L // 2}→{L}, Fourier input",
            "upsample",
            L,
            2.0,
            2,
            "fourier",
        ),
    ]


BAR_CASES = ("sr2_fourier", "sr2_block", "sr4_fourier", "sr4_block", "generate")


def sampler_plan(case: QualityCase, model, sampler: str | None = None, steps=None) -> dict:
    """The s-range and number of reverse steps the sampler runs for this case (from the code
    that runs it: the samplers' default steps, the coarse stage's plan, the start offset)."""
    from ..skild import coarse
    from ..skild.coarsen import start_offset
    from ..skild.sampler import default_steps, resolve_sampler

    sampler = resolve_sampler(sampler)
    if case.mode == "generate":
        s0 = model.schedule.s_max(case.L)
        if model.coarse is not None and model.coarse.applies(case.L):  # what generate() does
            legs = coarse.plan(model, case.L, sampler, steps / s0 if steps else None)
            return {
                "s_start": [leg[1] for leg in legs],
                "steps": [leg[3] for leg in legs],
                "coarse_stage": coarse.describe(legs),
            }
        return {"s_start": [s0], "steps": [steps or default_steps(sampler, s0)]}
    sizes = case.sizes()
    kinds = [case.coarsen] + ["block"] * (len(sizes) - 2)  # later stages read spins
    s_star = [math.log2(N / n) + start_offset(k) for n, N, k in zip(sizes[:-1], sizes[1:], kinds)]
    return {"s_start": s_star, "steps": [steps or default_steps(sampler, s) for s in s_star]}


def skild_ensemble(
    case: QualityCase,
    *,
    checkpoint,
    workdir: Path,
    mc_inputs: Path | None,
    samples: int,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    sweeps: int = 0,
    batch: int = 64,
    progress: bool = True,
) -> tuple[Path, float]:
    """Make the case's SKILD ensemble; returns (path, seconds spent sampling)."""
    from ..skild import coarsen, generate, upsample

    out = workdir / f"skild_{case.key}.h5"
    run = dict(seed=seed, sampler=sampler, steps=steps, sweeps=sweeps, batch=batch)
    run.update(overwrite=True, progress=progress)
    t0 = time.perf_counter()
    if case.mode == "generate":
        generate(checkpoint, L=case.L, samples=samples, out=out, **run)
    elif case.mode == "upsample":
        path = workdir / f"coarse_{case.key}.h5"
        total = case.factor**case.repeat
        coarsen(mc_inputs, factor=total, method=case.coarsen, out=path, overwrite=True)
        t0 = time.perf_counter()
        upsample(
            path,
            factor=case.factor,
            repeat=case.repeat,
            out=out,
            checkpoint=checkpoint,
            samples=samples,
            **run,
        )
    else:
        raise IsingScaleError(f"unknown case mode {case.mode!r}")
    return out, time.perf_counter() - t0


def evaluate_quality(
    checkpoint=None,
    *,
    cases: list[QualityCase] | None = None,
    samples: int = 1000,
    mc_samples: int = MC_REFERENCE_SAMPLES,
    workdir,
    seed_truth: int = SEED_TRUTH,
    seed_inputs: int = SEED_INPUTS,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    sweeps: int = 0,
    batch: int = 64,
    progress: bool = True,
) -> list[dict]:
    """Run every case; returns one dict per case (case, plan, seconds, comparison, passes).

    sweeps: heat-bath sweeps after sampling (``upsample``/``generate`` ``sweeps``); 0, the
    default, measures the diffusion model alone, which is what the bar is about.
    """
    from ..skild.checkpoint import load_checkpoint

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(checkpoint)
    cases = cases if cases is not None else default_cases(int(model.meta["L"]))
    run = dict(seed=seed, sampler=sampler, steps=steps, sweeps=sweeps, batch=batch)
    results, references = [], {}
    for i, case in enumerate(cases, 1):
        n = case.samples or samples
        log(f"[{i}/{len(cases)}] {case.label}: {n} SKILD lattices", progress)
        if case.L not in references:
            references[case.L] = _reference(
                case.L, mc_samples, seed_truth, workdir, model, progress
            )
        inputs = None
        if case.mode == "upsample":
            inputs = mc_ensemble(
                case.L, n, seed_inputs, workdir, T=model.temperature, progress=progress
            )
        path, seconds = skild_ensemble(
            case,
            checkpoint=model.path,
            workdir=workdir,
            mc_inputs=inputs,
            samples=n,
            progress=progress,
            **run,
        )
        res = _result(case, model, path, references[case.L], seconds, n, sampler, steps, sweeps)
        results.append(res)
        c = res["comparison"]
        log(
            f"    {seconds:.0f} s; G2 max|z| {c['G2']['max_abs_z']:.2f}, G4c max|z| "
            f"{c['G4c_square']['max_abs_z']:.2f}, Δu/u {100 * c['energy']['rel_dev']:+.2f} %"
            f" -> {'PASS' if res['passes'] else 'FAIL'}",
            progress,
        )
    return results


def _reference(L, mc_samples, seed_truth, workdir, model, progress):
    """The measured Monte Carlo reference at L (the first mc_samples lattices of the chain)."""
    truth = mc_ensemble(L, mc_samples, seed_truth, workdir, T=model.temperature, progress=progress)
    truth = first_lattices(
        truth, mc_samples, workdir / f"mc_L{L}_seed{seed_truth}_n{mc_samples}.h5"
    )
    measured = measure_file(truth)
    rel = float(measured["G2_err"][L // 4] / measured["G2"][L // 4])
    log(f"[mc] L={L}: {mc_samples} lattices, MC error of G2(L/4) = {100 * rel:.2f} %", progress)
    return measured


def _result(case, model, path, reference, seconds, n, sampler, steps, sweeps) -> dict:
    from ..skild.sampler import resolve_sampler

    cmp = compare_measured(measure_file(path), reference)
    passes, why = passes_bar(cmp)
    return {
        "case": asdict(case),
        "sizes": case.sizes(),
        "plan": sampler_plan(case, model, sampler, steps),
        "sampler": resolve_sampler(sampler),
        "sweeps": sweeps,
        "seconds": seconds,
        "lattices_per_s": n / seconds,
        "comparison": cmp,
        "path": str(path),
        "passes": passes,
        "why": why,
    }


# ----------------------------------------------------------------------------
# Cost and training figures.


def sr_throughput(
    checkpoint=None,
    *,
    L_in: int = 32,
    factor: float = 4.0,
    samples: int = 16,
    workdir,
    seed_inputs: int = SEED_INPUTS,
    sampler: str | None = None,
    steps: int | None = None,
    progress: bool = True,
) -> dict:
    """Lattices/s of ×factor super-resolution of L_in MC lattices (±1 spins, block-input path;
    checkpoint loading included)."""
    import torch

    from ..skild import upsample
    from ..skild.checkpoint import load_checkpoint
    from ..skild.sampler import default_steps, resolve_sampler

    sampler = resolve_sampler(sampler)
    workdir = Path(workdir)
    model = load_checkpoint(checkpoint)
    chain = mc_ensemble(L_in, samples, seed_inputs, workdir, T=model.temperature, progress=progress)
    inputs = first_lattices(chain, samples, workdir / f"mc_L{L_in}_seed{seed_inputs}_n{samples}.h5")
    N = int(round(factor * L_in))
    s_star = math.log2(N / L_in)
    n_steps = steps or default_steps(sampler, s_star)
    log(
        f"[cost] ×{factor:g} SR {L_in}→{N}: {samples} lattices, {n_steps} steps from s* = "
        f"{s_star:.3f}",
        progress,
    )
    t0 = time.perf_counter()
    upsample(
        inputs,
        factor=factor,
        out=workdir / f"skild_cost_{L_in}x{factor:g}.h5",
        checkpoint=model.path,
        samples=samples,
        sampler=sampler,
        steps=steps,
        batch=samples,
        overwrite=True,
        progress=progress,
    )
    dt = time.perf_counter() - t0
    return {
        "L_in": L_in,
        "L_out": N,
        "factor": factor,
        "samples": samples,
        "seconds": dt,
        "lattices_per_s": samples / dt,
        "s_start": s_star,
        "steps": n_steps,
        "sampler": sampler,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }


def training_summary(run_dir) -> dict | None:
    """Steps, lattices, wall time, throughput and final loss from a run directory's loss.csv."""
    run_dir = Path(run_dir)
    log = run_dir / "loss.csv"
    if not log.exists():
        return None
    rows = [r for r in csv.DictReader(log.open()) if r.get("step")]
    if not rows:
        return None
    last = rows[-1]
    tail = [float(r["loss"]) for r in rows[-10:]]
    secs = float(last["seconds"])
    out = {
        "steps": int(last["step"]),
        "lattices": int(last["lattices"]),
        "seconds": secs,
        "lattices_per_s": int(last["lattices"]) / secs if secs > 0 else float("nan"),
        "final_loss": float(np.mean(tail)),
        "final_loss_rows": len(tail),
        "first_loss": float(rows[0]["loss"]),
    }
    cfg = run_dir / "config.json"
    if cfg.exists():
        out["config"] = json.loads(cfg.read_text())
    return out


# ----------------------------------------------------------------------------
# Markdown.


def _f(x, spec=".2f") -> str:
    return (
        "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)
    )


def quality_table(results: list[dict]) -> str:
    """One markdown row per case."""
    head = (
        "| case | N SKILD / MC | sampler: s* → 0, steps | G2 max\\|z\\| (r) | G2 χ²/dof | G4c "
        "max\\|z\\| (r) | G4c χ²/dof "
        "| within 2 SE at every r (G2 / G4c) | G2(1) Δ | G2(L/4) Δ | Δu/u | \\|m\\| SKILD | "
        "\\|m\\| MC | bar |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - head.count("\\|") - 1)]
    for res in results:
        c, p = res["comparison"], res["plan"]
        if p.get("coarse_stage"):
            plan = f"{res['sampler']}, coarse stage: {p['coarse_stage']}"
        else:
            plan = f"{res['sampler']}: " + " + ".join(
                f"{s:.2f}→0, {n}" for s, n in zip(p["s_start"], p["steps"])
            )
        if res.get("sweeps"):
            k = res["sweeps"]
            plan += f" + {k} heat-bath sweep{'s' if k > 1 else ''}" + (
                " after each stage" if len(p["steps"]) > 1 else ""
            )
        g2, g4 = c["G2"], c["G4c_square"]
        yes = lambda b: "yes" if b else "**no**"  # noqa: E731
        e, m = c["energy"], c["abs_m"]
        lines.append(
            f"| {res['case']['label']} | {c['n_skild']} / {c['n_mc']} | {plan} "
            f"| {_f(g2['max_abs_z'])} ({g2['r_at_max']}) | {_f(g2['chi2_dof'])} "
            f"| {_f(g4['max_abs_z'])} ({g4['r_at_max']}) | {_f(g4['chi2_dof'])} "
            f"| {yes(g2['within'])} / {yes(g4['within'])} "
            f"| {100 * c['G2_rel_r1']:+.1f} % | {100 * c['G2_rel_rL4']:+.1f} % "
            f"| {100 * e['rel_dev']:+.2f} ± {100 * e['rel_err']:.2f} % "
            f"| {m['skild']:.3f} ± {m['skild_err']:.3f} | {m['mc']:.3f} ± {m['mc_err']:.3f} "
            f"| {'pass' if res['passes'] else 'fail'} |"
        )
    return "\n".join(lines)


def mc_error_table(results: list[dict]) -> str:
    seen, lines = (
        {},
        [
            "| L | MC lattices | MC rel. error of G2(L/4) | SKILD rel. error of G2(L/4) (per case, "
            "max) |",
            "|---|---|---|---|",
        ],
    )
    for res in results:
        c = res["comparison"]
        row = seen.setdefault(c["L"], [c["n_mc"], c["mc_G2_rel_err_rL4"], 0.0])
        row[2] = max(row[2], c["skild_G2_rel_err_rL4"])
    for L, (n, e, es) in sorted(seen.items()):
        lines.append(f"| {L} | {n} | {100 * e:.2f} % | {100 * es:.2f} % |")
    return "\n".join(lines)


def _sizes(results: list[dict]) -> list[int]:
    return sorted({int(r["comparison"]["L"]) for r in results})


def quality_report(
    results: list[dict],
    *,
    checkpoint_info: dict,
    cost: dict | None = None,
    training: dict | None = None,
    settings: dict | None = None,
    split: str = "test",
) -> str:
    seed_truth, seed_inputs = SPLITS[split]
    lines = ["## SKILD quality against held-out Monte Carlo", ""]
    ci = checkpoint_info
    lines.append(
        f"Checkpoint `{ci['path']}` (sha256 `{ci['sha256'][:16]}…`), trained at L = {ci['L']}, "
        f"T = {ci['T']}, {ci.get('steps')} steps, {ci.get('lattices_seen')} lattices seen, "
        f"{ci.get('parameters', '?')} parameters."
    )
    if settings:
        lines.append("Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()) + ".")
    lines += [
        "",
        f"Reference ({split} split): Wolff MC at the checkpoint's T, seed {seed_truth} (training "
        "data: seed 1); "
        f"SR inputs are coarse-grained from an independent MC ensemble (seed {seed_inputs}). Per r "
        "= 1 … L/2: z = (SKILD − MC)/√(se²_SKILD + se²_MC), "
        "jackknife errors (32 blocks) from `isingscale.analysis.correlators.measure`. Δ columns: "
        "relative "
        "deviation SKILD/MC − 1. Bar: "
        + "; ".join(f"L = {L}: {bar_for(L).describe()}" for L in _sizes(results))
        + ".",
        "",
        quality_table(results),
        "",
        mc_error_table(results),
        "",
    ]
    if cost:
        lines.append(
            f"Cost: ×{cost['factor']:g} super-resolution {cost['L_in']} → {cost['L_out']} on CPU "
            f"({cost['torch_threads']} torch threads), {cost['sampler']} sampler with the default "
            f"{cost['steps']} steps from s* = {cost['s_start']:.2f} to 0: {cost['samples']} "
            "lattices in "
            f"{cost['seconds']:.1f} s = **{cost['lattices_per_s']:.2f} lattices/s** (checkpoint "
            "loading "
            f"included)."
        )
    samp = [f"{res['case']['key']}: {res['lattices_per_s']:.1f}/s" for res in results]
    lines.append("Sampling rate per case (lattices/s, CPU): " + "; ".join(samp) + ".")
    if training:
        lines.append(
            f"Training (from loss.csv): {training['steps']} steps, {training['lattices']:,} "
            "lattices in "
            f"{training['seconds'] / 60:.1f} min = {training['lattices_per_s']:.0f} lattices/s; "
            f"loss {training['first_loss']:.3f} (first row) → {training['final_loss']:.4f} "
            f"(mean of the last {training['final_loss_rows']} rows)."
        )
    lines.append("")
    return "\n".join(lines)


def checkpoint_info(checkpoint=None) -> dict:
    """Path, sha256, L, T, training steps and lattices, and parameters of a checkpoint."""
    from ..skild.checkpoint import load_checkpoint
    from ..skild.unet import count_parameters

    model = load_checkpoint(checkpoint)
    tr = model.meta.get("training", {})
    return {
        "path": str(model.path),
        "sha256": model.sha256,
        "L": model.meta.get("L"),
        "T": model.meta.get("T"),
        "steps": tr.get("step"),
        "lattices_seen": tr.get("lattices_seen"),
        "last_loss": tr.get("last_loss"),
        "parameters": count_parameters(model.net),
    }
