"""Generation from noise with a trained checkpoint: start at s_max(N) from white (whitened) noise.

With a coarse stage in the checkpoint (:mod:`isingscale.skild.coarse`) and N at least twice its
size, the lowest modes are drawn by the stage and lifted to N; otherwise the main network runs
from s_max(N) to 0. Spins are the sign of the final field.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..device import resolve_device
from ..errors import IsingScaleError
from ..mc.heatbath import check_sweeps, heatbath
from . import coarse
from .checkpoint import SkildModel, load_checkpoint
from .coarsen import lattice_energy
from .sampler import default_steps, resolve_sampler, reverse, to_spins


def heatbath_sweeps(
    spins: np.ndarray, model: SkildModel, sweeps: int, *, seed, preserve_blocks: int | None = None
) -> np.ndarray:
    """`sweeps` exact heat-bath sweeps of sampled ±1 lattices at the checkpoint's T (0: unchanged).

    The optional last stage of generation and super-resolution (``--sweeps``): it repairs the
    lattice scale, which the network gets slightly wrong, and leaves the large scales the
    sampler made (see :mod:`isingscale.mc.heatbath`). ``preserve_blocks=b`` keeps each
    lattice's own b x b majority image: for a lattice super-resolved from block spins, the image
    the sampler gave it (it agrees with the input in about 88 % of the blocks, data/README.md).
    """
    if sweeps == 0:
        return spins
    if model.temperature is None:
        raise IsingScaleError(f"{model.path} records no temperature, which heat-bath sweeps need")
    return heatbath(spins, model.temperature, sweeps, seed=seed, preserve_blocks=preserve_blocks)


def checkpoint_attrs(model: SkildModel) -> dict:
    """The provenance attributes every file sampled with a checkpoint carries."""
    return {
        "checkpoint": str(model.path),
        "checkpoint_sha256": model.sha256,
        "T": model.meta.get("T") or "none",
        "J": 1.0,
    }


def generate(
    checkpoint=None,
    *,
    L: int,
    samples: int,
    out=None,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    device: str = "auto",
    batch: int = 64,
    save_field: bool = False,
    sweeps: int = 0,
    coarse_stage: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> Path | np.ndarray:
    """Generate `samples` L x L lattices from noise into the ensemble file ``out`` (returns
    its path), or, with ``out=None``, into memory (returns the spins, int8 (samples, L, L);
    ``save_field`` needs a file).

    L: any size the network takes (divisible by 2**depth). steps: reverse steps from
    s_max(L) to 0 (default: the sampler's STEPS_PER_OCTAVE; with the coarse stage, the same
    steps per octave on both legs, by default coarse.STAGE_STEPS_PER_OCTAVE). coarse_stage:
    when the checkpoint has one and L is at least twice its size, draw the lowest modes with
    it (see :mod:`isingscale.skild.coarse`); False: the main network from s_max(L). sampler:
    None = DEFAULT_SAMPLER ("sde": Heun steps with forward re-noising); "ddim" is the
    deterministic Heun ODE, "ddpm" the first-order ancestral sampler. sweeps: heat-bath
    sweeps at the checkpoint's T applied to the sampled spins (default 0: the lattices are
    the diffusion model's alone; see :func:`heatbath_sweeps`). An image checkpoint (lattice
    type "image-dct") writes L x L images to an ``.npz`` instead (:func:`generate_images`).
    """
    from tqdm.auto import tqdm

    from ..io import ensemble_writer

    sampler = resolve_sampler(sampler)
    sweeps = check_sweeps(sweeps)
    _check_output(samples, out, save_field)
    dev = resolve_device(device)
    model = load_checkpoint(checkpoint, lattice=None, device=dev)
    model.net.check_size(L)
    g = torch.Generator().manual_seed(seed)
    if model.lattice == "image-dct":
        _check_images(model, sweeps, out)
        steps = steps or default_steps(sampler, model.schedule.s_max(L))
        return generate_images(
            model,
            L=L,
            samples=samples,
            out=out,
            steps=steps,
            sampler=sampler,
            seed=seed,
            generator=g,
            device=dev,
            batch=batch,
            overwrite=overwrite,
            progress=progress,
        )
    if out is not None and Path(out).suffix == ".npz":
        raise IsingScaleError(
            f"{model.path} is an Ising checkpoint: it writes HDF5 ensembles, not {out}"
        )
    draw, attrs = _sampling_plan(model, L, steps, sampler, coarse_stage, dev)
    attrs.update(seed=seed, sweeps=sweeps)
    with ensemble_writer(out, L=L, kind="generated", attrs=attrs, overwrite=overwrite) as w:
        for start in tqdm(range(0, samples, batch), disable=not progress, desc="generate"):
            x = draw(min(batch, samples - start), g)
            spins = heatbath_sweeps(to_spins(x), model, sweeps, seed=[seed, start])
            extra = {"field": x} if save_field else {}
            w.append(
                spins,
                energy=lattice_energy(spins),
                magnetization=spins.mean(axis=(-2, -1)),
                **extra,
            )
    return Path(out) if out is not None else w.arrays()["spins"]


def _check_output(samples: int, out, save_field: bool) -> None:
    if samples < 1:
        raise IsingScaleError(f"samples must be at least 1, got {samples}")
    if out is None and save_field:
        raise IsingScaleError("save_field stores the field beside the spins: give an output file")


def _check_images(model: SkildModel, sweeps: int, out) -> None:
    if sweeps:
        raise IsingScaleError("heat-bath sweeps apply to Ising lattices, not images")
    if out is None:
        raise IsingScaleError(f"{model.path} is an image checkpoint: give an .npz output file")


def _sampling_plan(model: SkildModel, L: int, steps, sampler: str, coarse_stage: bool, dev):
    """(draw(B, generator) -> field (B, L, L) numpy, file attributes) of generation at L."""
    s_max = model.schedule.s_max(L)
    attrs = {
        **checkpoint_attrs(model),
        "method": f"skild-generate ({sampler})",
        "sampler": sampler,
        "steps": steps or default_steps(sampler, s_max),
        "s_start": s_max,
        "coarse_stage": "none",
    }
    if coarse_stage and model.coarse is not None and model.coarse.applies(L):
        rate = steps / s_max if steps else None
        legs = coarse.plan(model, L, sampler, rate)
        attrs.update(steps=sum(leg[3] for leg in legs), coarse_stage=coarse.describe(legs))

        def draw(B, g):
            return coarse.generate_batch(
                model, B, L, sampler=sampler, rate=rate, generator=g, device=dev
            ).numpy()

        return draw, attrs

    def draw(B, g):
        y_start = torch.randn((B, L, L), generator=g)
        return reverse(
            model, y_start, s_max, steps=attrs["steps"], sampler=sampler, generator=g, device=dev
        ).numpy()

    return draw, attrs


def generate_images(
    model: SkildModel,
    *,
    L: int,
    samples: int,
    out,
    steps: int,
    sampler: str,
    seed: int,
    generator: torch.Generator,
    device,
    batch: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Images from noise with an "image-dct" checkpoint -> ``out`` (.npz: ``images`` uint8
    (n, L, L, C))."""
    from tqdm.auto import tqdm

    from .images import to_pixels, to_uint8_hwc, write_images_npz

    s_max = model.schedule.s_max(L)
    parts = []
    for start in tqdm(range(0, samples, batch), disable=not progress, desc="generate"):
        y_start = torch.randn(
            (min(batch, samples - start), model.channels, L, L), generator=generator
        )
        x = reverse(
            model, y_start, s_max, steps=steps, sampler=sampler, generator=generator, device=device
        ).numpy()
        parts.append(to_pixels(x, model.meta["pixel_mean"]))
    attrs = {
        **checkpoint_attrs(model),
        "kind": "generated-images",
        "method": f"skild-generate ({sampler})",
        "sampler": sampler,
        "steps": steps,
        "seed": seed,
        "s_start": s_max,
        "size": L,
    }
    return write_images_npz(
        out, overwrite=overwrite, attrs=attrs, images=to_uint8_hwc(np.concatenate(parts))
    )


def generate_summary(path) -> str:
    """One line on a generated Ising ensemble: size, sampler legs, energy per site u against
    the exact torus value (Kaufman) at the file's L and T as (u - u_exact)/|u_exact|
    (positive: less ordered), and ⟨|m|⟩, with standard errors of independent lattices when
    there are several."""
    from ..exact import torus_energy
    from ..io import read_ensemble

    d = read_ensemble(path, datasets=("energy", "magnetization"))
    a, u, m = d["attrs"], d["energy"], np.abs(d["magnetization"])
    n, L = len(u), int(a["L"])

    def pm(x, digits):  # "± se", or nothing for a single lattice
        return f" ± {x.std(ddof=1) / math.sqrt(n):.{digits}f}" if n > 1 else ""

    u_exact = float(torus_energy(L, float(a["T"]), float(a.get("J", 1.0))))
    legs = a.get("coarse_stage", "none")
    how = f"{a['sampler']}, {legs}" if legs != "none" else f"{a['sampler']}, {a['steps']} steps"
    return (
        f"{n} lattice{'s' if n > 1 else ''} {L}x{L} ({how}); energy per site "
        f"{u.mean():.4f}{pm(u, 4)} "
        f"(exact {u_exact:.4f}, {100 * (u.mean() - u_exact) / abs(u_exact):+.2f} %), <|m|> "
        f"{m.mean():.3f}{pm(m, 3)}"
    )
