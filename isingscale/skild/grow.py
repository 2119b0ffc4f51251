"""Growing lattices stage by stage to a size nobody simulated: ``grow(source, to=1024)``.

The stages (:func:`isingscale.skild.stages.plan_stages`) multiply the size by an octave
(``stage_factor`` = 2) until the next octave would pass ``to``; the last stage takes the
remaining factor. Every stage is one super-resolution stage of the unconditional model
(:func:`isingscale.skild.upsample.upsample_stage`) with the previous lattices as block-spin
input (a critical lattice is, to good approximation, the majority-rule image of a larger
one), optionally followed by heat-bath sweeps. Each stage's lattices go to their own
ensemble file (``stage{i}_L{N}.h5``) in the output folder, with provenance: the input
source (and its sha256), the stage, its factor, the checkpoint.

The model does not judge itself here: :func:`isingscale.evaluation.grow_report` compares
every stage with Monte Carlo references or the torus CFT.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..errors import IsingScaleError
from ..io import numbered_path, writable_dir
from ..lattices import Lattices, open_lattices
from ..mc.heatbath import check_sweeps
from .checkpoint import SkildModel, load_checkpoint
from .coarsen import lattice_energy, start_offset
from .generate import checkpoint_attrs, heatbath_sweeps
from .sampler import resolve_sampler, to_spins
from .stages import plan_stages
from .upsample import preserved_block, upsample_stage

# Sites per sampling batch: lattices per batch shrink with the stage's size (64 at 128²,
# 4 at 512², 1 at 1024²) so that memory stays bounded at every stage.
BATCH_SITES = 1 << 20


@dataclass
class GrowResult:
    """The output folder, the size after every stage (input first) and the stage files."""

    out: Path
    sizes: list[int]
    paths: list[Path] = field(default_factory=list)
    source: str = ""
    n_samples: int = 0

    def summary(self) -> str:
        return (
            f"grew {self.n_samples} lattices {' -> '.join(map(str, self.sizes))} "
            f"into {self.out} ({len(self.paths)} stage files)"
        )


def grow(
    source,
    *,
    to: int,
    out=None,
    checkpoint=None,
    stage_factor: float = 2.0,
    samples: int | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    sweeps: int = 0,
    seed: int = 0,
    device: str = "auto",
    batch: int = 32,
    values=None,
    T: float | None = None,
    binarize: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> GrowResult:
    """Grow ±1 lattices of any source to ``to`` x ``to`` stage by stage; one file per stage.

    source: anything :func:`isingscale.lattices.open_lattices` reads (an ensemble file,
    ``FILE.h5:/dataset``, ``.npy``, ``.npz``, PNGs, an (n, L, L) array); ``values`` /
    ``binarize`` / ``T`` as there (a field or non-±1 data are refused without them; lattices
    at a temperature other than the checkpoint's are refused).
    out: output folder (default ``data/grow-NNNN``, the first unused); it receives
    ``stage{i}_L{N}.h5`` per stage. samples: the first this many lattices (None: all).
    stage_factor: the factor of every stage but the last (an octave by default).
    steps, sampler, sweeps, seed, device: as in :func:`isingscale.skild.upsample`; batch:
    lattices per batch at most (fewer at large sizes, :data:`BATCH_SITES`).
    resume: continue the stage files already in ``out`` (complete stages are kept, a stage
    cut short goes on from its last flushed batch) instead of refusing them; every batch's
    noise is seeded by (seed, stage, first lattice), so a resumed run writes the lattices an
    uninterrupted one would, bit for bit. The stage files must record this run's settings.
    """
    sampler = resolve_sampler(sampler)
    check_sweeps(sweeps)
    lat = _open_input(source, values=values, T=T, binarize=binarize, samples=samples)
    dev = resolve_device(device)
    model = load_checkpoint(checkpoint, lattice="ising-periodic", device=dev, task="skild")
    sizes = _plan(lat, model, to, stage_factor)
    out = _out_dir(out)
    paths = [out / f"stage{i}_L{N}.h5" for i, N in enumerate(sizes[1:], start=1)]
    if overwrite and resume:
        raise IsingScaleError("overwrite and resume exclude each other")
    for p in paths:
        if p.exists() and not (overwrite or resume):
            raise IsingScaleError(
                f"{p} already exists (use --resume to continue it or --overwrite to replace it)"
            )
    n = min(lat.n_samples, samples or lat.n_samples)
    provenance = lat.provenance(progress=progress)
    settings = dict(steps=steps, sampler=sampler, sweeps=sweeps, seed=seed, batch=batch)
    previous: Lattices = lat
    for i, (path, N) in enumerate(zip(paths, sizes[1:]), start=1):
        attrs = _stage_attrs(model, provenance, paths, sizes, i, settings)
        _grow_stage(
            model,
            previous,
            n,
            N,
            path,
            attrs=attrs,
            device=dev,
            stage=i,
            overwrite=overwrite,
            resume=resume,
            progress=progress,
            **settings,
        )
        previous = open_lattices(path)
    return GrowResult(out, sizes, paths, source=provenance["source"], n_samples=n)


RESUME_KEYS = ("sizes", "stage", "seed", "sampler", "steps", "sweeps", "checkpoint_sha256")


@contextlib.contextmanager
def _stage_writer(path: Path, N: int, attrs: dict, *, overwrite: bool, resume: bool):
    """(writer, lattices already there) of a stage file: a new one, or with ``resume`` the
    existing one reopened for appending (its settings checked against this run's)."""
    from ..io import append_ensemble, create_ensemble, read_attrs

    if resume and path.exists():
        expect = {k: attrs[k] for k in RESUME_KEYS} | {"L": N, "source": attrs["source"]}
        with append_ensemble(path, expect=expect) as w:
            yield w, int(read_attrs(path)["n_samples"])
        return
    with create_ensemble(path, L=N, kind="superresolved", attrs=attrs, overwrite=overwrite) as w:
        yield w, 0


def _stage_attrs(
    model: SkildModel, provenance: dict, paths: list[Path], sizes: list[int], i: int, settings
) -> dict:
    """Provenance of stage i's file: input, previous stage, stage, factor, checkpoint, sampler."""
    return {
        **checkpoint_attrs(model),
        "input_source": provenance,
        "source": provenance["source"],
        "previous_stage": str(paths[i - 2]) if i > 1 else provenance["source"],
        "stage": i,
        "stages": len(paths),
        "sizes": sizes,
        "factor": sizes[i] / sizes[i - 1],
        "method": f"skild-grow ({settings['sampler']})",
        "input_kind": "block",
        "s_offset": start_offset("block", None),
        "steps": settings["steps"] or "auto",
        "sampler": settings["sampler"],
        "sweeps": settings["sweeps"],
        "seed": settings["seed"],
    }


def grow_plan(
    source,
    *,
    to: int,
    checkpoint=None,
    stage_factor: float = 2.0,
    values=None,
    T: float | None = None,
    binarize: bool = False,
) -> list[int]:
    """The sizes :func:`grow` would make (input first), or its one-line error, before any
    sampling: the input read and checked, the checkpoint's size rule applied."""
    lat = _open_input(source, values=values, T=T, binarize=binarize, samples=None)
    model = load_checkpoint(checkpoint, lattice="ising-periodic", device="cpu", task="skild")
    return _plan(lat, model, to, stage_factor)


def _plan(lat: Lattices, model: SkildModel, to: int, stage_factor: float) -> list[int]:
    T_model = model.temperature
    if T_model is not None and not np.isclose(lat.attrs["T"], T_model, rtol=1e-6):
        raise IsingScaleError(
            f"{lat.source}: lattices at T = {lat.attrs['T']:.6g}, but the checkpoint was "
            f"trained at T = {T_model:.6g}; grow needs lattices at the checkpoint's temperature"
        )
    multiple = 2**model.net.config.depth
    return plan_stages(lat.L, int(to), multiple=multiple, stage_factor=stage_factor)


def _open_input(source, *, values, T, binarize: bool, samples: int | None) -> Lattices:
    """The input lattices, checked as spins before any work (one-line errors)."""
    lat = open_lattices(source, values=values, T=T, binarize=binarize)
    if binarize and not lat.binarize:
        lat = lat.binarized()
    lat.check_spins()
    if samples is not None and samples < 1:
        raise IsingScaleError(f"samples must be at least 1, got {samples}")
    lat.read(0, 1)  # the first lattice's values, checked now rather than mid-stage
    return lat


def _out_dir(out) -> Path:
    """The output folder (default data/grow-NNNN, the first unused), created and writable."""
    out = Path(out) if out is not None else numbered_path("grow", suffix="")
    return writable_dir(out)


def _grow_stage(
    model: SkildModel,
    previous: Lattices,
    n_samples: int,
    N: int,
    path: Path,
    *,
    attrs: dict,
    steps: int | None,
    sampler: str,
    sweeps: int,
    seed: int,
    batch: int,
    device,
    stage: int,
    overwrite: bool,
    resume: bool,
    progress: bool,
) -> None:
    """One stage: previous.L -> N for the first n_samples lattices, appended batch by batch
    (flushed: an interrupted stage leaves the lattices done so far, and ``resume`` goes on
    from there)."""
    from tqdm.auto import tqdm

    n = previous.L
    per_batch = max(1, min(batch, BATCH_SITES // (N * N)))
    desc = f"stage {stage}/{attrs['stages']}: {n} -> {N}"
    b = preserved_block("block", n, N)
    with _stage_writer(path, N, attrs, overwrite=overwrite, resume=resume) as (w, done):
        with tqdm(
            total=n_samples, initial=min(done, n_samples), desc=desc, disable=not progress,
            unit="lattice",
        ) as bar:  # fmt: skip
            for start in range(done, n_samples, per_batch):
                g = torch.Generator().manual_seed(
                    int(np.random.SeedSequence([seed, stage, start]).generate_state(1)[0])
                )
                x = previous.read(start, min(start + per_batch, n_samples))
                field_ = upsample_stage(
                    model,
                    x,
                    "block",
                    N,
                    steps=steps,
                    sampler=sampler,
                    s_offset=None,
                    generator=g,
                    device=device,
                )
                spins = to_spins(field_)
                spins = heatbath_sweeps(
                    spins, model, sweeps, seed=[seed, stage, start], preserve_blocks=b
                )
                w.append(
                    spins, energy=lattice_energy(spins), magnetization=spins.mean(axis=(-2, -1))
                )
                bar.update(len(spins))
