"""Options of an evaluation, validated before any work: :class:`Plan` and :func:`make_plan`.

Every problem (unknown method, factor <= 1 or not fitting L, bad F=PATH, missing file,
--data of the wrong L) is an :class:`~isingscale.errors.IsingScaleError` with one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IsingScaleError
from ..lattices import Lattices, open_lattices
from . import methods as registry
from .references import SEED_INPUTS, SEED_TRUTH

DEFAULT_METHODS = ("skild", "nearest", "fourier", "bicubic")
DEFAULT_FACTORS = (2.0, 4.0, 8.0)
DEFAULT_L = 32
# Settings that fix the ground truth and the outputs: a resumed run must repeat them.
RESUME_KEYS = ("L", "samples", "data", "seed", "seed_reference", "seed_inputs")


@dataclass
class Plan:
    """Validated settings of one evaluation (everything checked before any work)."""

    L: int
    factors: tuple[float, ...]
    methods: tuple[str, ...]
    coarsen: tuple[str, ...]
    samples: int
    data: Lattices | None  # --data: the ground truth from lattices given (any source)
    seed: int
    batch: int
    options: registry.Options
    n_coarse: dict = field(default_factory=dict)  # (F, c) -> n, for conventions that fit
    misfit: dict = field(default_factory=dict)  # (F, c) -> reason the convention does not fit

    @property
    def data_source(self) -> str | None:
        """--data as a string (the absolute source for files), or None."""
        return None if self.data is None else self.data.spec or self.data.source

    def settings(self) -> dict:
        return {
            "L": self.L,
            "samples": self.samples,
            "data": self.data_source,
            "seed": self.seed,
            "seed_reference": SEED_TRUTH,
            "seed_inputs": SEED_INPUTS,
            "factors": list(self.factors),
            "methods": list(self.methods),
            "coarsen": list(self.coarsen),
            "batch": self.batch,
            "device": self.options.device,
            "checkpoint": _str(self.options.checkpoint),
            "cnn_checkpoint": _str(self.options.cnn_checkpoint),
            "sr3_checkpoints": {f"{f:g}": str(p) for f, p in self.options.sr3_checkpoints.items()},
        }

    def command(self, out: Path) -> str:
        """The equivalent ``isingscale evaluate`` command line."""
        o = self.options
        words = [
            "isingscale evaluate",
            f"--factors {','.join(f'{f:g}' for f in self.factors)}",
            f"--methods {','.join(self.methods)}",
            f"--coarsen {','.join(self.coarsen)}",
            f"--L {self.L}",
            f"--samples {self.samples}",
        ]
        words += [f"--data {self.data_source}"] if self.data is not None else []
        words += [f"--checkpoint {o.checkpoint}"] if o.checkpoint else []
        words += [f"--sr3-checkpoint {f:g}={p}" for f, p in o.sr3_checkpoints.items()]
        words += [f"--cnn-checkpoint {o.cnn_checkpoint}"] if o.cnn_checkpoint else []
        words += [
            f"--seed {self.seed}",
            f"--batch {self.batch}",
            f"--device {o.device}",
            f"--out {out}",
        ]
        return " ".join(words)


def _str(p) -> str | None:
    return None if p is None else str(p)


def part_name(method: str, factor: float, coarsen: str) -> str:
    return f"{method}_x{factor:g}_{coarsen}"


# ----------------------------------------------------------------------------
# Validation (one-line errors, before any work).


def parse_list(text: str | Sequence[str], what: str) -> tuple[str, ...]:
    """ "a,b" or ["a", "b"] -> ("a", "b"), without blanks and duplicates."""
    items = text.split(",") if isinstance(text, str) else [str(t) for t in text]
    items = tuple(dict.fromkeys(t.strip() for t in items if t.strip()))
    if not items:
        raise IsingScaleError(f"no {what} given")
    return items


def parse_factors(text: str | Sequence[float]) -> tuple[float, ...]:
    """ "2,4,8" or (2, 4, 8) -> (2.0, 4.0, 8.0); every factor must exceed 1."""
    items = parse_list(text, "factors") if isinstance(text, str) else tuple(text)
    out = []
    for item in items:
        try:
            f = float(item)
        except (TypeError, ValueError):
            raise IsingScaleError(f"bad factor {item!r}; expected numbers like 2,4,8") from None
        if not f > 1 or not math.isfinite(f):
            raise IsingScaleError(f"factor must be greater than 1, got {item}")
        out.append(f)
    if not out:
        raise IsingScaleError("no factors given")
    return tuple(dict.fromkeys(out))


def parse_checkpoints_per_factor(items: Sequence[str] | dict | None) -> dict[float, Path]:
    """["4=run/x4.safetensors", ...] (or a dict) -> {4.0: Path}; one checkpoint per factor
    (the SR3 baseline's --sr3-checkpoint)."""
    if not items:
        return {}
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            f, sep, path = str(item).partition("=")
            if not sep or not f.strip() or not path.strip():
                raise IsingScaleError(
                    f"bad --sr3-checkpoint {item!r}; expected F=PATH, e.g. 4=run/x4.safetensors"
                )
            pairs.append((f.strip(), path.strip()))
    out: dict[float, Path] = {}
    for f, path in pairs:
        (factor,) = parse_factors([f])
        if factor in out:
            raise IsingScaleError(f"two SR3 checkpoints for ×{factor:g}")
        out[factor] = Path(path)
        if not out[factor].is_file():
            raise IsingScaleError(f"--sr3-checkpoint {factor:g}={path}: no such file")
    return out


def _check_file(path, what: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise IsingScaleError(f"{what} {path}: no such file")
    return path


def _open_data(data) -> Lattices | None:
    """--data (any lattice source) opened, read as ±1 spins, at least 2 lattices."""
    if data is None:
        return None
    lat = open_lattices(data)
    lat.check_spins()
    if lat.n_samples < 2:
        raise IsingScaleError(
            f"{lat.source} holds {lat.n_samples} lattice(s); need at least 2 (inputs and reference)"
        )
    return lat


def make_plan(
    *,
    L,
    factors,
    methods,
    coarsen,
    samples,
    data,
    checkpoint,
    sr3_checkpoints,
    cnn_checkpoint,
    seed,
    batch,
    device,
) -> Plan:
    """Validate every option and work out the coarse sizes; raises IsingScaleError, one line."""
    from ..skild.coarsen import coarse_size

    names = parse_list(methods, "methods")
    known = registry.method_names()
    for name in names:
        if name not in known:
            raise IsingScaleError(f"unknown method {name!r}; expected some of {', '.join(known)}")
    conventions = parse_list(coarsen, "coarse-graining conventions")
    for c in conventions:
        if c not in registry.CONVENTIONS:
            raise IsingScaleError(f"unknown coarse-graining {c!r}; expected fourier and/or block")
    factors = parse_factors(factors)
    if samples < 2:
        raise IsingScaleError(f"samples must be at least 2 (jackknife errors), got {samples}")
    if batch < 1:
        raise IsingScaleError(f"batch must be at least 1, got {batch}")
    if device not in ("auto", "cpu", "cuda"):
        raise IsingScaleError(f"unknown device {device!r}; expected auto, cpu or cuda")
    data = _open_data(data)
    if data is not None:
        if L is not None and int(L) != data.L:
            raise IsingScaleError(
                f"--data {data.source} holds L={data.L} lattices, but L={L} was asked for"
            )
        L = data.L
    L = DEFAULT_L if L is None else int(L)
    if L < 4 or L % 2:
        raise IsingScaleError(f"L must be even and at least 4, got {L}")
    options = registry.Options(
        checkpoint=_check_file(checkpoint, "--checkpoint"),
        sr3_checkpoints=parse_checkpoints_per_factor(sr3_checkpoints),
        cnn_checkpoint=_check_file(cnn_checkpoint, "--cnn-checkpoint"),
        device=device,
    )
    plan = Plan(L, factors, names, conventions, int(samples), data, int(seed), int(batch), options)
    for f in factors:
        errors = []
        for c in conventions:
            try:
                plan.n_coarse[(f, c)] = coarse_size(L, f, c)
            except IsingScaleError as e:
                plan.misfit[(f, c)] = str(e)
                errors.append(str(e))
        if len(errors) == len(conventions):
            raise IsingScaleError(f"factor {f:g} does not fit L={L}: {errors[0]}")
    return plan


__all__ = [
    "Plan",
    "make_plan",
    "parse_list",
    "parse_factors",
    "parse_checkpoints_per_factor",
    "part_name",
    "DEFAULT_METHODS",
    "DEFAULT_FACTORS",
    "DEFAULT_L",
]
