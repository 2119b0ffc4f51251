"""``isingscale evaluate``: every super-resolution method at every factor against Monte Carlo.

Protocol (docs/design.md, "Evaluation"; the SKILD quality table is
:mod:`isingscale.evaluation.quality`, with the same measurement and comparison):

1. Ground truth at L: two independent Wolff ensembles of ``samples`` lattices, the
   *reference* (seed 2) that outputs are compared with and the *inputs* (seed 3) that are
   coarse-grained; training data used seed 1. With ``data`` (any lattice source) the first
   half of its lattices is the inputs and the second half the reference.
2. For each factor F and convention c (Fourier truncation, majority-rule block spins):
   the coarse inputs, n = coarse_size(L, F, c), written once to DIR/coarse/.
3. For each (method, F, c) *part*: the method's output ensemble (L x L) written
   atomically to DIR/ensembles/, measured (G2, square G4c, energy, |m|, Binder, S(k) with
   jackknife errors) and saved atomically as DIR/parts/{method}_x{F:g}_{c}.nc. A part
   whose .nc exists is skipped with ``resume=True``; an interrupt loses at most the part
   in progress.
4. DIR/evaluation.nc (all parts + the MC reference), DIR/plots/*.png and DIR/report.md.

Layout of DIR::

    settings.json  evaluation.nc  report.md  plots/
    mc/            reference and input ensembles, reference.nc (the measured reference)
    coarse/        coarse_x{F:g}_{c}.h5
    ensembles/     {method}_x{F:g}_{c}.h5   (attrs: method, factor, coarsen, seconds, ...)
    parts/         {method}_x{F:g}_{c}.nc   (measured part + cost attrs)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import IsingScaleError
from ..io import writable_dir
from . import methods as registry
from .comparison import N_BLOCKS, measure_file
from .plan import DEFAULT_FACTORS, DEFAULT_METHODS, RESUME_KEYS, Plan, make_plan, part_name
from .references import SEED_INPUTS, SEED_TRUTH, mc_ensemble
from .results import PartResult, assemble, netcdf_attrs, part_metrics

# ----------------------------------------------------------------------------
# Output directory, ground truth, coarse inputs.


def _prepare_out(out: Path, plan: Plan, resume: bool) -> Path:
    out = writable_dir(out)
    settings = out / "settings.json"
    done = sorted((out / "parts").glob("*.nc")) if (out / "parts").is_dir() else []
    if not resume and (done or settings.exists()):
        raise IsingScaleError(
            f"{out} already holds an evaluation ({len(done)} part(s) done); "
            "use --resume to continue it or another --out"
        )
    new = plan.settings()
    if resume and settings.exists():
        old = json.loads(settings.read_text())
        for key in RESUME_KEYS:
            if old.get(key) != new[key]:
                raise IsingScaleError(
                    f"cannot resume {out}: it was made with {key}={old.get(key)!r}, "
                    f"this run has {key}={new[key]!r}"
                )
    for sub in ("mc", "coarse", "ensembles", "parts"):
        (out / sub).mkdir(exist_ok=True)
        for stale in (out / sub).glob(".*.tmp*"):  # left by a run that was killed, not interrupted
            stale.unlink(missing_ok=True)
    _write_atomic(settings, json.dumps(new, indent=2) + "\n")
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _copy_range(src, start: int, stop: int, out: Path, role: str) -> Path:
    """Lattices start:stop of a lattice source (an ensemble file, or any other source
    :func:`isingscale.lattices.open_lattices` reads) into the ensemble file ``out``
    (atomically), with provenance."""
    from ..io import create_ensemble, read_attrs
    from ..lattices import open_lattices

    if out.exists() and read_attrs(out)["n_samples"] == stop - start:
        return out
    lat = open_lattices(src)
    keep = {k: lat.attrs[k] for k in ("T", "J", "seed", "algorithm") if k in lat.attrs}
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    attrs = {"source": lat.spec or lat.source, "source_range": [start, stop], "role": role}
    attrs["input"] = lat.provenance()
    try:
        with create_ensemble(
            tmp, L=lat.L, kind="montecarlo", overwrite=True, attrs={**keep, **attrs}
        ) as w:
            step = max(1, (1 << 24) // lat.L**2)
            for a in range(start, stop, step):
                w.append(lat.read(a, min(a + step, stop)))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def ground_truth(plan: Plan, out: Path, progress: bool) -> tuple[Path, Path]:
    """(reference, inputs) ensemble files of ``plan.samples`` lattices each, independent."""
    from ..io import read_attrs

    mc = out / "mc"
    if plan.data is not None:
        half = plan.data.n_samples // 2
        k = min(plan.samples, half)
        inputs = _copy_range(plan.data, 0, k, mc / "inputs.h5", "inputs (first half of --data)")
        reference = _copy_range(
            plan.data, half, half + k, mc / "reference.h5", "reference (second half of --data)"
        )
        return reference, inputs
    paths = []
    for seed, role in ((SEED_TRUTH, "reference"), (SEED_INPUTS, "inputs")):
        path = mc_ensemble(plan.L, plan.samples, seed, mc, progress=progress)
        if read_attrs(path)["n_samples"] != plan.samples:
            path = _copy_range(path, 0, plan.samples, mc / f"{role}.h5", role)
        paths.append(path)
    return paths[0], paths[1]


def coarse_input(
    plan: Plan, out: Path, inputs: Path, factor: float, kind: str
) -> tuple[np.ndarray, Path]:
    """The coarse-grained inputs for (factor, kind), written once to DIR/coarse/."""
    from ..io import read_attrs
    from ..skild.coarsen import coarsen
    from ..skild.upsample import read_coarse_input

    path = out / "coarse" / f"coarse_x{factor:g}_{kind}.h5"
    if not (path.exists() and read_attrs(path)["n_samples"] == read_attrs(inputs)["n_samples"]):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            coarsen(inputs, factor=factor, method=kind, out=tmp, overwrite=True)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    got, x, _ = read_coarse_input(path, None)
    if got != kind:
        raise IsingScaleError(
            f"{path} holds {got} input, expected {kind}; remove it and rerun with --resume"
        )
    return x, path


# ----------------------------------------------------------------------------
# Measurement.


def _save_nc(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    ds = ds.copy()
    ds.attrs = netcdf_attrs(ds.attrs)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_nc(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def measured_reference(reference: Path, out: Path, client) -> xr.Dataset:
    path = out / "mc" / "reference.nc"
    if path.exists():
        ds = _load_nc(path)
        if ds.attrs.get("ensemble") == str(reference):
            return ds
    ds = measure_file(reference, client=client)
    ds.attrs["ensemble"] = str(reference)
    _save_nc(ds, path)
    return ds


# ----------------------------------------------------------------------------
# One part: run the method, write its ensemble, measure it.


def _check_output(spins, B: int, N: int, method: str) -> np.ndarray:
    spins = np.asarray(spins)
    if spins.shape != (B, N, N):
        raise IsingScaleError(
            f"method {method!r} returned shape {spins.shape}, expected {(B, N, N)}"
        )
    if not np.all(np.abs(spins) == 1):
        raise IsingScaleError(f"method {method!r} returned values other than ±1")
    return spins.astype(np.int8)


def run_part(
    plan: Plan,
    out: Path,
    part: PartResult,
    prepared: registry.Prepared,
    coarse: np.ndarray,
    coarse_path: Path,
    T,
    progress: bool,
) -> Path:
    """The method's output ensemble for one part, written atomically; returns its path."""
    import torch
    from tqdm.auto import tqdm

    from ..io import create_ensemble
    from ..skild.coarsen import lattice_energy

    name = part_name(part.method, part.factor, part.coarsen)
    path = out / "ensembles" / f"{name}.h5"
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    g = torch.Generator().manual_seed(plan.seed)
    N, seconds = plan.L, 0.0
    attrs = {
        "method": part.method,
        "factor": part.factor,
        "coarsen": part.coarsen,
        "n_coarse": coarse.shape[-1],
        "checkpoint": prepared.checkpoint,
        "seed": plan.seed,
        "source": str(coarse_path),
        "T": T,
        "J": 1.0,
    }
    try:
        with create_ensemble(tmp, L=N, kind="superresolved", attrs=attrs, overwrite=True) as w:
            for start in tqdm(
                range(0, len(coarse), plan.batch), desc=name, leave=False, disable=not progress
            ):
                xb = coarse[start : start + plan.batch]
                t0 = time.perf_counter()
                spins = prepared.fn(xb, part.coarsen, N, generator=g)
                seconds += time.perf_counter() - t0
                spins = _check_output(spins, len(xb), N, part.method)
                w.append(
                    spins, energy=lattice_energy(spins), magnetization=spins.mean(axis=(-2, -1))
                )
            w.attrs.update(
                seconds=seconds,
                seconds_per_lattice=seconds / len(coarse),
                train_seconds=prepared.train_seconds,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _log(msg: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)


def _part_line(res: PartResult, seconds: float) -> str:
    m = res.metrics
    verdict = "PASS" if m["passes"] == 1 else "FAIL"
    return (
        f"[evaluate] {res.method} ×{res.factor:g} {res.coarsen}: {seconds:.1f} s; "
        f"G2 max|z| {m['max_abs_z_G2']:.2f} (r={m['r_at_max_G2']:.0f}), "
        f"G4c max|z| {m['max_abs_z_G4c']:.2f} (r={m['r_at_max_G4c']:.0f}), "
        f"Δu/u {100 * m['rel_dev_energy']:+.2f} % -> {verdict}"
    )


# ----------------------------------------------------------------------------
# The evaluation.


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: the Dataset in evaluation.nc, the report text, the files."""

    out: Path
    dataset: xr.Dataset
    report: str
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        from .report import summary

        return summary(self.dataset, files=self.files)


def _parts(plan: Plan) -> list[PartResult]:
    parts = []
    for f in plan.factors:
        for c in plan.coarsen:
            for m in plan.methods:
                method = registry.get_method(m)
                if (f, c) in plan.misfit:
                    parts.append(PartResult(m, f, c, "n/a", plan.misfit[(f, c)]))
                elif not method.supports(c):
                    parts.append(PartResult(m, f, c, "n/a", method.unsupported_reason(c)))
                else:
                    parts.append(PartResult(m, f, c, "pending"))
    return parts


def _run_parts(
    plan: Plan,
    out: Path,
    parts: list[PartResult],
    mc: xr.Dataset,
    reference: Path,
    inputs: Path,
    client,
    progress: bool,
) -> None:
    """Fill ``parts`` in place: done parts from DIR/parts (resume) or computed now."""
    from tqdm.auto import tqdm

    T = mc.attrs.get("T", "none")
    T = "none" if isinstance(T, float) and math.isnan(T) else T
    prepared: dict = {}  # (method, factor) -> Prepared, or the reason it is n/a
    todo = [p for p in parts if p.status == "pending"]
    with tqdm(total=len(todo), desc="evaluate", unit="part", disable=not progress) as bar:
        for part in todo:
            nc = out / "parts" / f"{part_name(part.method, part.factor, part.coarsen)}.nc"
            resumed = nc.exists()
            if resumed:
                part.measured, part.status = _load_nc(nc), "done"
            else:
                _compute_part(plan, out, part, prepared, nc, inputs, reference, T, client, progress)
            if part.status == "done":
                part.metrics = part_metrics(part.measured, mc)
                if not resumed:
                    _log(_part_line(part, float(part.measured.attrs["seconds"])), progress)
            else:
                _log(
                    f"[evaluate] {part.method} ×{part.factor:g} {part.coarsen}: n/a "
                    f"({part.reason})",
                    progress,
                )
            bar.update(1)


def _compute_part(
    plan: Plan,
    out: Path,
    part: PartResult,
    prepared: dict,
    nc: Path,
    inputs: Path,
    reference: Path,
    T,
    client,
    progress: bool,
) -> None:
    """Run, write and measure one part (or mark it n/a); the measured part is saved as ``nc``."""
    from ..io import read_attrs

    key = (part.method, part.factor)
    if key not in prepared:
        try:
            prepared[key] = registry.get_method(part.method).build(plan.options, part.factor)
        except (registry.NotAvailable, IsingScaleError) as e:
            prepared[key] = str(e)
    if isinstance(prepared[key], str):
        part.status, part.reason = "n/a", prepared[key]
        return
    coarse, coarse_path = coarse_input(plan, out, inputs, part.factor, part.coarsen)
    try:
        ens = run_part(plan, out, part, prepared[key], coarse, coarse_path, T, progress)
    except IsingScaleError as e:  # e.g. a network that needs other lattice sizes
        part.status, part.reason = "n/a", str(e)
        return
    measured = measure_file(ens, client=client)
    attrs = read_attrs(ens)
    keep = (
        "method",
        "factor",
        "coarsen",
        "n_coarse",
        "checkpoint",
        "seconds",
        "seconds_per_lattice",
        "train_seconds",
    )
    measured.attrs.update(
        {k: attrs[k] for k in keep},
        ensemble=str(ens),
        reference=str(reference),
        note=prepared[key].notes(coarse.shape[-1], plan.L),
    )
    _save_nc(measured, nc)
    part.measured, part.status = measured, "done"


def _outputs(
    plan: Plan,
    out: Path,
    parts: list[PartResult],
    mc: xr.Dataset,
    reference: Path,
    inputs: Path,
    *,
    plots: bool,
    interrupted: bool = False,
) -> Evaluation:
    from ..version import __version__
    from .report import report_markdown

    settings = plan.settings()
    attrs = {
        **{
            k: settings[k]
            for k in ("L", "samples", "seed", "seed_reference", "seed_inputs", "data")
        },
        "T": mc.attrs.get("T", math.nan),
        "command": plan.command(out),
        "options": settings,
        "reference": str(reference),
        "inputs": str(inputs),
        "mc_samples": int(mc["n_samples"]),
        "package_version": __version__,
        "interrupted": int(interrupted),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "conventions": "curves and errors from isingscale.analysis.correlators.measure (jackknife, "
        f"{N_BLOCKS} blocks of consecutive samples); agreement over r = 1 ... L/2",
    }
    ds = assemble(
        parts,
        mc,
        methods=plan.methods,
        factors=plan.factors,
        coarsen=plan.coarsen,
        n_coarse=plan.n_coarse,
        attrs=attrs,
    )
    files = []
    if plots and any(p.status == "done" for p in parts):
        from .plots import plot_evaluation

        files += plot_evaluation(ds, out / "plots")
    why = {
        (p.method, p.factor, p.coarsen): p.metrics["why"].replace("(SKILD ", f"({p.method} ")
        for p in parts
        if p.status == "done"
    }
    report = report_markdown(ds, why=why, plots=files)
    _save_nc(ds, out / "evaluation.nc")
    _write_atomic(out / "report.md", report)
    return Evaluation(out, ds, report, [out / "evaluation.nc", out / "report.md", *files])


def evaluate(
    out,
    *,
    L: int | None = None,
    factors: Sequence[float] | str = DEFAULT_FACTORS,
    methods: Sequence[str] | str = DEFAULT_METHODS,
    coarsen: Sequence[str] | str = registry.CONVENTIONS,
    samples: int = 1000,
    data=None,
    checkpoint=None,
    sr3_checkpoints: dict | Sequence[str] | None = None,
    cnn_checkpoint=None,
    seed: int = 0,
    resume: bool = False,
    scheduler: str | None = None,
    batch: int = 64,
    device: str = "auto",
    progress: bool = True,
    plots: bool = True,
) -> Evaluation:
    """Every method at every factor and coarse-graining convention against Monte Carlo.

    Parameters
    ----------
    out : output directory (see the module docstring for its layout).
    L : output lattice size; default 32, or the L of ``data``.
    factors : super-resolution factors F > 1 ("2,4,8" or a sequence).
    methods : names from :func:`isingscale.evaluation.methods.method_names`: skild, ssd,
        sr3, cnn, cnn-ki, nearest, fourier, bicubic, and any registered ones.
    coarsen : conventions of the coarse input: "fourier" (truncation) and/or "block"
        (majority rule). A convention that does not fit a factor (block spins need an
        integer factor dividing L) is n/a for it; a factor that fits none is an error.
    samples : lattices in the reference and in the inputs (each), hence per method.
    data : ±1 lattices at L, any lattice source (``open_lattices``'s, or a ``Lattices``):
        first half inputs, second half reference (instead of simulating).
    checkpoint : SKILD checkpoint for "skild" and "ssd" (None: the shipped one).
    sr3_checkpoints : {F: path} or ["F=PATH", ...], one SR3 checkpoint per factor.
    cnn_checkpoint : ×2 CNN checkpoint for "cnn" and "cnn-ki".
    seed : seed of each method's noise (the same fresh generator for every part).
    resume : continue ``out``: parts whose DIR/parts/*.nc exists are skipped, MC and
        coarse files reused. Without it an ``out`` holding an evaluation is an error.
    scheduler : None: measure in this process; "local" or tcp://host:port: measure the
        ensembles' chunks on that dask.distributed scheduler (same numbers).
    batch : lattices per method call. device : auto | cpu | cuda (torch methods).
    progress : progress bars and one log line per part on stderr. plots : write PNGs.

    Returns
    -------
    :class:`Evaluation` with ``dataset`` (evaluation.nc), ``report`` (report.md) and
    ``summary()``. A method that cannot run for a part (no checkpoint, unsupported input)
    is recorded as n/a with the reason. On KeyboardInterrupt, evaluation.nc and report.md
    are written for the parts done so far (the rest "pending"), then the interrupt is
    re-raised; ``resume=True`` continues.
    """
    plan = make_plan(
        L=L,
        factors=factors,
        methods=methods,
        coarsen=coarsen,
        samples=samples,
        data=data,
        checkpoint=checkpoint,
        sr3_checkpoints=sr3_checkpoints,
        cnn_checkpoint=cnn_checkpoint,
        seed=seed,
        batch=batch,
        device=device,
    )
    with _client(scheduler) as client:  # a bad address fails here, before anything is written
        out = _prepare_out(Path(out), plan, resume)
        parts = _parts(plan)
        reference, inputs = ground_truth(plan, out, progress)
        mc = measured_reference(reference, out, client)
        try:
            _run_parts(plan, out, parts, mc, reference, inputs, client, progress)
        except KeyboardInterrupt:
            _outputs(plan, out, parts, mc, reference, inputs, plots=False, interrupted=True)
            raise
    return _outputs(plan, out, parts, mc, reference, inputs, plots=plots)


def _client(scheduler):
    if scheduler is None:
        return contextlib.nullcontext(None)
    from ..cluster import scheduler_client

    return scheduler_client(scheduler)


def open_evaluation(out) -> xr.Dataset:
    """DIR/evaluation.nc as a Dataset (loaded into memory)."""
    path = Path(out) / "evaluation.nc" if Path(out).is_dir() else Path(out)
    if not path.exists():
        raise IsingScaleError(f"{path}: no such file")
    return _load_nc(path)


__all__ = [
    "evaluate",
    "Evaluation",
    "open_evaluation",
    "ground_truth",
    "coarse_input",
    "run_part",
]
