"""Super-resolution by any factor F > 1 with the unconditional model (docs/design.md, "SKILD").

Per stage, a coarse n x n input becomes N = round(F n):

1. block-spin inputs (±1 ``spins``) are first normalised with the checkpoint's block
   transfer function; Fourier-coarsened inputs (float ``field``) are used as they are;
2. the coarse spectrum is embedded into N x N (× f = N/n, whitened, high band filled with
   unit-variance noise), the forward marginal is applied at s* = log2(N/n) + s_offset,
   where k_c(s*) is the coarse lattice's Nyquist. The default offset (``s_offset=None``)
   is 0 for Fourier inputs, whose low band is exact, and
   :data:`isingscale.skild.coarsen.BLOCK_S_OFFSET` for block
   spins: the transfer function fixes their two-point amplitude, but near the coarse
   Nyquist majority-rule spins are not Fourier modes (sharper, binary), so those modes are
   noised further and regenerated;
3. the reverse process runs from s* to 0 only; spins = sign of the field;
4. optionally (``sweeps`` > 0) exact heat-bath sweeps at the checkpoint's T repair the
   lattice scale; for a block-spin input by an integer factor b they keep the output's
   b x b majority image, so they do not move the output away from its input at the block scale.

``repeat=K`` applies K stages; stages after the first take the previous stage's spins as
block-spin input (a critical lattice is, to good approximation, the majority-rule image
of a larger one). Without an input file, fresh Monte Carlo lattices at L_fine are
simulated and coarse-grained by F**K; the result names them as its ground truth, and
``isingscale.evaluation.compare(result.path, result.ground_truth)`` compares the two (the
``upsample`` command prints that comparison). The model does not judge itself here.

:func:`superresolve` is the file-level driver (input, stages, heat-bath sweeps, output) with
the stage passed in; :func:`upsample` runs it with SKILD's stage, and the SR3 baseline
(:mod:`isingscale.baselines.sr3`) with its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..errors import IsingScaleError
from ..io import writable_dir
from ..mc.heatbath import check_sweeps
from .checkpoint import SkildModel, load_checkpoint
from .coarsen import (
    block_spins,
    coarse_size,
    embed,
    fourier_truncate,
    lattice_energy,
    normalise_block_input,
    start_offset,
)
from .generate import checkpoint_attrs, heatbath_sweeps
from .process import forward_marginal
from .sampler import default_steps, resolve_sampler, reverse, to_spins
from .stages import output_size


@dataclass
class UpsampleResult:
    """The output (a file, or arrays in memory), the sizes of every stage, and the Monte
    Carlo ground truth (or None).

    ``path``: the output file, or None when nothing was written (``out=None``); then
    ``spins`` holds the output lattices, int8 (n, N, N), ``field`` the pre-sign fields
    (float32, with ``save_field``) and ``attrs`` what the file would record.
    The ground truth is the fresh Monte Carlo the input was coarse-grained from (upsample
    without an input; a file beside ``path``, or int8 spins in memory), or the ``source`` an
    input file records when it exists. ``isingscale.evaluation.compare(result.output,
    result.ground_truth)`` compares the two.
    """

    path: Path | None
    sizes: list[int]
    ground_truth: Path | str | np.ndarray | None = None
    sweeps: int = 0
    spins: np.ndarray | None = None
    field: np.ndarray | None = None
    attrs: dict = dataclass_field(default_factory=dict)

    @property
    def output(self) -> Path | np.ndarray:
        """The output as a lattice source: the file, or the spins in memory."""
        return self.path if self.path is not None else self.spins

    def summary(self) -> str:
        hb = ""
        if self.sweeps:
            hb = f", {self.sweeps} heat-bath sweep{'s' if self.sweeps > 1 else ''} per stage"
        where = self.path if self.path is not None else f"{len(self.spins)} lattices to memory"
        return f"wrote {where} ({' -> '.join(map(str, self.sizes))}{hb})"


def read_coarse_input(source, samples: int | None):
    """('fourier', float32 field) or ('block', int8 ±1 spins) of the first `samples`
    lattices of any lattice source, and the opened :class:`~isingscale.lattices.Lattices`.

    Continuous data (a Fourier-coarsened ``field``, float data with more than two values)
    are Fourier inputs, unless opened with ``binarize`` (then their signs are block spins);
    two-valued data are block spins (``values`` convention applied)."""
    from ..lattices import open_lattices

    lat = open_lattices(source)
    if lat.field and not lat.binarize and lat.raw.data.dtype.kind == "f":
        return "fourier", lat.read_field(0, samples), lat
    try:
        return "block", lat.read(0, samples), lat
    except IsingScaleError as e:
        raise IsingScaleError(f"coarse input is neither ±1 spins nor a float field: {e}") from None


def stage_sizes(n: int, factor: float, repeat: int, model: SkildModel) -> list[int]:
    """[n, F n, ...]: the lattice size after each of `repeat` stages, each one a size the
    network takes (:func:`isingscale.skild.stages.output_size`: else a one-line error naming
    the nearest working factors)."""
    sizes = [n]
    m = 2**model.net.config.depth
    for _ in range(repeat):
        sizes.append(output_size(sizes[-1], factor, m))
    return sizes


def preserved_block(kind: str, n: int, N: int) -> int | None:
    """The b of the b x b majority image that heat-bath sweeps after an n -> N stage keep:
    N / n for block-spin input by an integer factor (the output's own image), else None."""
    return N // n if kind == "block" and N % n == 0 else None


def upsample_stage(
    model: SkildModel,
    x: np.ndarray,
    kind: str,
    N: int,
    *,
    steps: int | None,
    sampler: str,
    s_offset: float | None,
    generator: torch.Generator,
    device,
) -> np.ndarray:
    """One stage on a batch: coarse (B, n, n) -> fine field (B, N, N). s_offset None: by kind."""
    n = x.shape[-1]
    f = N / n
    if kind == "block":
        xc = normalise_block_input(x, model.block_transfer, f)
    else:
        xc = torch.as_tensor(x)
    y_embed = embed(xc, N, model.whitener, generator=generator)
    s_star = math.log2(f) + start_offset(kind, s_offset)
    eps = torch.randn(y_embed.shape, generator=generator)
    y_start = forward_marginal(model.basis, model.schedule, y_embed, s_star, eps)
    steps = steps or default_steps(sampler, s_star)
    return reverse(
        model, y_start, s_star, steps=steps, sampler=sampler, generator=generator, device=device
    ).numpy()


def upsample(
    input=None,
    *,
    factor: float,
    out=None,
    checkpoint=None,
    L: int | None = None,
    coarsen: str = "fourier",
    samples: int | None = None,
    repeat: int = 1,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    device: str = "auto",
    save_field: bool = False,
    s_offset: float | None = None,
    sweeps: int = 0,
    batch: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> UpsampleResult:
    """Super-resolve coarse lattices by `factor` (any F > 1), `repeat` times.

    input: any lattice source (``open_lattices``'s: files, arrays (B, n, n), a ``Lattices``
    opened with ``values`` / ``binarize``): continuous data (a float field, as from
    :func:`coarsen`) are Fourier-coarsened inputs, ±1 spins are block spins. None: simulate
    `samples` (default 64) fresh Monte Carlo lattices at L (default the checkpoint's L) and
    coarse-grain them with `coarsen` ("fourier" | "block") by F**repeat: the ground truth.
    out: output ensemble file (kind=superresolved); None: nothing is written, the result
    holds the lattices (``result.spins``, int8 (B, N, N)). Returns an :class:`UpsampleResult`.
    checkpoint: an unconditional SKILD checkpoint (any factor; None: the shipped one).
    sampler: None = "sde" (DEFAULT_SAMPLER: Heun steps with forward re-noising, which forgets
    that the embedded coarse input is only approximately a forward marginal); steps: default
    STEPS_PER_OCTAVE[sampler] x s* per stage. s_offset: added to s* = log2 F (None: 0 for
    Fourier inputs, BLOCK_S_OFFSET for block spins). sweeps: heat-bath sweeps at the
    checkpoint's T after every stage (default 0: the lattices are the diffusion model's
    alone); a stage from block spins by an integer factor b keeps its output's b x b
    majority image (:func:`isingscale.skild.generate.heatbath_sweeps`).
    """
    sampler = resolve_sampler(sampler)
    check_sweeps(sweeps)
    _check_request(factor, repeat, coarsen, out, overwrite)  # before loading anything
    dev = resolve_device(device)
    model = load_checkpoint(checkpoint, lattice="ising-periodic", device=dev, task="skild")

    def stage(x, kind, N, generator):
        return upsample_stage(
            model,
            x,
            kind,
            N,
            steps=steps,
            sampler=sampler,
            s_offset=s_offset,
            generator=generator,
            device=dev,
        )

    attrs = {"method": f"skild-upsample ({sampler})", "sampler": sampler}
    attrs["s_offset"] = "auto" if s_offset is None else s_offset
    return superresolve(
        model,
        stage,
        input=input,
        factor=factor,
        out=out,
        L=L,
        coarsen=coarsen,
        samples=samples,
        repeat=repeat,
        steps=steps,
        seed=seed,
        save_field=save_field,
        sweeps=sweeps,
        batch=batch,
        overwrite=overwrite,
        progress=progress,
        attrs=attrs,
        s_offset=s_offset,
    )


Stage = Callable[[np.ndarray, str, int, torch.Generator], np.ndarray]


def superresolve(
    model: SkildModel,
    stage: Stage,
    *,
    input,
    factor: float,
    out,
    L: int | None,
    coarsen: str,
    samples: int | None,
    repeat: int,
    steps: int | None,
    seed: int,
    save_field: bool,
    sweeps: int,
    batch: int,
    overwrite: bool,
    progress: bool,
    attrs: dict,
    s_offset: float | None = None,
) -> UpsampleResult:
    """The driver of :func:`upsample` with the stage passed in.

    stage(x, kind, N, generator) -> fine field (B, N, N) for coarse (B, n, n) of ``kind``
    ("fourier" or "block"). Input (any lattice source, or fresh Monte Carlo at L coarse-grained
    with ``coarsen``), ``repeat`` stages per batch (later stages read spins as block spins),
    heat-bath sweeps, output file (or arrays, ``out=None``) with the provenance attributes
    plus ``attrs``.
    """
    from tqdm.auto import tqdm

    from ..io import ensemble_writer

    out = _check_request(factor, repeat, coarsen, out, overwrite)
    sweeps = check_sweeps(sweeps)
    kind, x, source, truth = _coarse_lattices(
        model, input, factor, repeat, L, coarsen, samples, seed, out, progress
    )
    sizes = stage_sizes(x.shape[-1], factor, repeat, model)
    g = torch.Generator().manual_seed(seed)
    kinds = [kind] + ["block"] * (repeat - 1)
    attrs = {
        **checkpoint_attrs(model),
        "input_kind": kind,
        "factor": float(factor),
        "repeat": repeat,
        "sizes": sizes,
        "steps": steps or "auto",
        "seed": seed,
        "stage_s_offsets": [start_offset(k, s_offset) for k in kinds],
        "sweeps": sweeps,
        **source,
        **attrs,
    }
    with ensemble_writer(
        out, L=sizes[-1], kind="superresolved", attrs=attrs, overwrite=overwrite
    ) as w:
        for start in tqdm(range(0, len(x), batch), disable=not progress, desc="upsample"):
            xb, kb = x[start : start + batch], kind
            for i, N in enumerate(sizes[1:]):
                b = preserved_block(kb, xb.shape[-1], N)
                field_ = stage(xb, kb, N, g)
                spins = to_spins(field_)
                xb = heatbath_sweeps(spins, model, sweeps, seed=[seed, start, i], preserve_blocks=b)
                kb = "block"
            extra = {"field": field_} if save_field else {}
            w.append(xb, energy=lattice_energy(xb), magnetization=xb.mean(axis=(-2, -1)), **extra)
    if out is not None:
        return UpsampleResult(out, sizes, truth, sweeps=sweeps)
    d = w.arrays()
    return UpsampleResult(
        None, sizes, truth, sweeps, spins=d["spins"], field=d.get("field"), attrs=w.attrs
    )


def _check_request(factor, repeat, coarsen, out, overwrite) -> Path | None:
    """Checks before any work; the output path (None: the output stays in memory)."""
    if not factor > 1:
        raise IsingScaleError(f"factor must be greater than 1, got {factor}")
    if repeat < 1:
        raise IsingScaleError(f"repeat must be at least 1, got {repeat}")
    if coarsen not in ("fourier", "block"):
        raise IsingScaleError(f"unknown coarsening {coarsen!r}; expected fourier or block")
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not overwrite:
        raise IsingScaleError(f"{out} already exists (use --overwrite to replace it)")
    writable_dir(out.parent)  # fail before simulating or sampling
    return out


def _coarse_lattices(model, input, factor, repeat, L, coarsen, samples, seed, out, progress):
    """(kind, coarse lattices, source attributes, ground truth or None): read from ``input``
    (any lattice source), or fresh Monte Carlo at L (default the checkpoint's) coarse-grained
    by factor**repeat."""
    if input is not None:
        kind, x, lat = read_coarse_input(input, samples)
        source = {"source": lat.spec or lat.source, "input": lat.provenance()}
        return kind, x, source, recorded_truth(lat)
    L_fine = int(L or model.meta["L"])
    n = coarse_size(L_fine, factor**repeat, coarsen)
    stage_sizes(n, factor, repeat, model)  # fail before simulating
    truth, spins = _fresh_ground_truth(model, L_fine, samples or 64, seed, out, progress)
    if coarsen == "fourier":
        x = fourier_truncate(spins.astype(np.float64), n).numpy()
    else:
        x = block_spins(spins, L_fine // n)
    source = str(truth) if truth is not spins else "fresh Monte Carlo (in memory)"
    return coarsen, x, {"source": source}, truth


def recorded_truth(lat) -> Path | str | None:
    """The fine lattices a coarse input records as its ``source`` (``coarsen`` writes it, with
    ``source_L``), when that source still exists; else None."""
    src, source_L = lat.attrs.get("source"), lat.attrs.get("source_L", -1)
    if not src or int(source_L) <= 0:
        return None
    src = str(src)
    if Path(src).exists():
        return Path(src)
    head = src.rpartition(":")[0]
    return src if head and Path(head).is_file() else None


def _fresh_ground_truth(
    model: SkildModel, L_fine: int, samples: int, seed: int, out: Path | None, progress: bool
) -> tuple[Path | np.ndarray, np.ndarray]:
    """(the ground truth, its spins): Monte Carlo at L_fine and the checkpoint's T, written
    beside ``out`` (OUT_truth.h5), or, for ``out=None``, kept in memory (the ground truth is
    then the spins themselves)."""
    from ..io import read_ensemble
    from ..mc.simulate import simulate

    kwargs = {} if model.temperature is None else {"T": model.temperature}
    truth = None if out is None else out.with_name(out.stem + "_truth.h5")
    res = simulate(
        L_fine, samples=samples, seed=seed, out=truth, overwrite=True, progress=progress, **kwargs
    )
    if res.path is None:
        return res.spins, res.spins
    return res.path, read_ensemble(res.path, datasets=("spins",))["spins"]
