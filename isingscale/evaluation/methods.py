"""The super-resolution methods the evaluation harness runs, by name (docs/design.md, "Evaluation").

Every method, once prepared for a factor, is a plain callable with one convention::

    fn(coarse, kind, N, *, generator) -> (B, N, N) int8 of ±1

``coarse`` is (B, n, n): a float32 Fourier-truncated field for ``kind="fourier"``
(:func:`isingscale.skild.coarsen.fourier_truncate`), int8 ±1 majority-rule block spins
for ``kind="block"`` (:func:`isingscale.skild.coarsen.block_spins`); ``generator`` is a
CPU :class:`torch.Generator` (deterministic methods ignore it).

A :class:`Method` says which conventions it accepts and how to build that callable from
the evaluation's options (checkpoints, device). A method that cannot run for a factor
(no checkpoint given, a checkpoint for another factor) raises :class:`NotAvailable` with
the reason; the harness records the part as "n/a", not an error.

:func:`register` adds a method (tests register trivial ones)::

    register("copy", lambda coarse, kind, N, *, generator: ..., conventions=("block",))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import IsingScaleError

CONVENTIONS = ("fourier", "block")
SSD_DECIMATE = 1  # scale-space sampling: noisy steps on N/2 ...
SSD_MARGIN = (
    1.0  # ... down to s = 1 octave (less where s* is small), then on N (isingscale.skild.ssd)
)


class Upsampler(Protocol):
    def __call__(self, coarse: np.ndarray, kind: str, N: int, *, generator: Any) -> np.ndarray: ...


class NotAvailable(Exception):
    """This method cannot run for this factor; the message is the reason shown as "n/a"."""


@dataclass
class Options:
    """What methods are built from: checkpoints and device (one per evaluation)."""

    checkpoint: Path | None = None  # SKILD (and SSD); None: the shipped one
    sr3_checkpoints: dict[float, Path] = field(default_factory=dict)  # factor -> path
    cnn_checkpoint: Path | None = None
    device: str = "auto"
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key, make: Callable[[], Any]) -> Any:
        """make() once per key (models are shared across factors and conventions)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def torch_device(self):
        from ..device import resolve_device

        return self.cached("device", lambda: resolve_device(self.device))


@dataclass
class Prepared:
    """A method ready to run at one factor, with its cost metadata."""

    fn: Upsampler
    checkpoint: str = "none"  # path (and sha256) of the weights used, "none" for a fixed rule
    train_seconds: float = math.nan  # training wall time, nan when not recorded or not trained
    note: str = ""
    describe: Callable[[int, int], str] | None = (
        None  # (n, N) -> a line for the report (e.g. cost plan)
    )

    def notes(self, n: int, N: int) -> str:
        extra = self.describe(n, N) if self.describe is not None else ""
        return "; ".join(t for t in (self.note, extra) if t)


@dataclass(frozen=True)
class Method:
    """A named method: accepted conventions and a builder ``build(options, factor) -> Prepared``."""

    name: str
    build: Callable[[Options, float], Prepared]
    conventions: tuple[str, ...] = CONVENTIONS
    description: str = ""

    def supports(self, kind: str) -> bool:
        return kind in self.conventions

    def unsupported_reason(self, kind: str) -> str:
        return f"{kind} input not supported ({' / '.join(self.conventions)} input only)"


_REGISTRY: dict[str, Method] = {}


def register(
    name: str,
    fn: Upsampler | None = None,
    *,
    build: Callable[[Options, float], Prepared] | None = None,
    conventions: tuple[str, ...] = CONVENTIONS,
    description: str = "",
    checkpoint: str = "none",
    train_seconds: float = math.nan,
    replace: bool = False,
) -> Method:
    """Add a method to the registry under ``name``; returns it.

    Give either ``fn`` (a ready callable with the calling convention of this module, the
    same at every factor) or ``build(options, factor) -> Prepared`` (raise
    :class:`NotAvailable` for a factor it cannot serve). ``replace`` overwrites a method of
    that name (otherwise an error).
    """
    if (fn is None) == (build is None):
        raise IsingScaleError("register: give exactly one of fn or build")
    if not name or any(c in name for c in " ,/\\") or name.startswith("mc"):
        raise IsingScaleError(
            f"register: bad method name {name!r} (no spaces, commas or slashes; not mc*)"
        )
    bad = [c for c in conventions if c not in CONVENTIONS]
    if bad or not conventions:
        raise IsingScaleError(
            f"register: conventions must be some of {', '.join(CONVENTIONS)}, got {conventions}"
        )
    if name in _REGISTRY and not replace:
        raise IsingScaleError(f"a method named {name!r} is already registered (use replace=True)")
    if fn is not None:
        prepared = Prepared(fn, checkpoint=checkpoint, train_seconds=train_seconds)
        build = lambda options, factor: prepared  # noqa: E731
    method = Method(name, build, tuple(conventions), description)
    _REGISTRY[name] = method
    return method


def unregister(name: str) -> None:
    """Remove a registered method (no error if absent)."""
    _REGISTRY.pop(name, None)


def method_names() -> list[str]:
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IsingScaleError(
            f"unknown method {name!r}; expected some of {', '.join(_REGISTRY)}"
        ) from None


# ----------------------------------------------------------------------------
# Helpers for the builders.


def train_seconds(path, meta: dict | None = None) -> float:
    """Training wall time of a checkpoint (with that of the checkpoint it was fine-tuned
    from), else the loss.csv beside it; nan when neither records it."""
    from ..skild.loop import training_seconds
    from .quality import training_summary

    seconds = training_seconds(meta or {})
    if seconds is not None:
        return float(seconds)
    if path is None:
        return math.nan
    summary = training_summary(Path(path).parent)
    return float(summary["seconds"]) if summary else math.nan


def _checkpoint_id(path, sha256: str | None) -> str:
    return f"{path} (sha256 {sha256[:16]})" if sha256 else str(path)


def _file_meta(path: Path) -> dict:
    """JSON metadata of a safetensors file (any producer), {} when there is none."""
    import json

    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # noqa: BLE001  (not safetensors: a torch or other file; no metadata)
        return {}
    for value in meta.values():
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}


# ----------------------------------------------------------------------------
# Fixed-rule baselines (isingscale.baselines.interpolate).


def _interpolation(name: str) -> Callable[[Options, float], Prepared]:
    def build(options: Options, factor: float) -> Prepared:
        from ..baselines import interpolate

        return Prepared(getattr(interpolate, name))

    return build


# ----------------------------------------------------------------------------
# SKILD, scale-space sampling, conditional diffusion.


def _skild_model(options: Options):
    from ..skild import load_checkpoint

    dev = options.torch_device
    return options.cached(
        ("skild", options.checkpoint), lambda: load_checkpoint(options.checkpoint, device=dev)
    )


def _build_skild(options: Options, factor: float) -> Prepared:
    from ..skild.coarsen import BLOCK_S_OFFSET
    from ..skild.sampler import resolve_sampler, to_spins
    from ..skild.upsample import upsample_stage

    model, dev = _skild_model(options), options.torch_device
    sampler = resolve_sampler(None)

    def fn(coarse, kind, N, *, generator):
        field_ = upsample_stage(
            model,
            coarse,
            kind,
            N,
            steps=None,
            sampler=sampler,
            s_offset=None,
            generator=generator,
            device=dev,
        )
        return to_spins(field_)

    return Prepared(
        fn,
        _checkpoint_id(model.path, model.sha256),
        train_seconds(model.path, model.meta),
        note=f"{sampler} sampler, default steps, s* = log2 F (+ {BLOCK_S_OFFSET:g} for block "
        "spins)",
    )


def ssd_margin(n: int, N: int) -> float:
    """SSD_MARGIN, or half the room below s* - decimate when that is smaller (×4 from s* = 2)."""
    room = math.log2(N / n) - SSD_DECIMATE
    return min(SSD_MARGIN, room / 2) if room > 0 else SSD_MARGIN


def _build_ssd(options: Options, factor: float) -> Prepared:
    from ..skild import ssd
    from ..skild.sampler import to_spins

    model, dev = _skild_model(options), options.torch_device

    def fn(coarse, kind, N, *, generator):
        margin = ssd_margin(coarse.shape[-1], N)
        return to_spins(
            ssd.ssd_upsample_stage(
                model,
                coarse,
                kind,
                N,
                decimate=SSD_DECIMATE,
                margin=margin,
                steps=None,
                sampler="ddpm",
                generator=generator,
                device=dev,
            )
        )

    return Prepared(
        fn,
        _checkpoint_id(model.path, model.sha256),
        train_seconds(model.path, model.meta),
        note="the SKILD checkpoint",
        describe=lambda n, N: ssd_cost(options, n, N),
    )


def ssd_cost(options: Options, n: int, N: int) -> str:
    """isingscale.skild.ssd.ssd_plan's cost summary against plain SKILD, per input convention
    (block spins start BLOCK_S_OFFSET octaves higher, so their plan differs)."""
    from ..skild import ssd
    from ..skild.coarsen import start_offset

    try:
        model = _skild_model(options)
        return "; ".join(
            f"{kind} input: "
            + ssd.ssd_plan(
                model, n, N, SSD_DECIMATE, ssd_margin(n, N), "ddpm", s_offset=start_offset(kind)
            ).summary()
            for kind in ("fourier", "block")
        )
    except IsingScaleError as e:
        return f"(no SSD plan: {e})"


def _lookup_factor(table: dict[float, Path], factor: float) -> Path | None:
    for f, path in table.items():
        if abs(float(f) - factor) < 1e-6:
            return Path(path)
    return None


def _build_sr3(options: Options, factor: float) -> Prepared:
    from ..baselines import sr3
    from ..skild import load_checkpoint
    from ..skild.sampler import to_spins

    path = _lookup_factor(options.sr3_checkpoints, factor)
    if path is None:
        raise NotAvailable(
            f"no SR3 checkpoint for ×{factor:g} (one per factor: --sr3-checkpoint {factor:g}=PATH)"
        )
    dev = options.torch_device
    model = options.cached(("sr3", path), lambda: load_checkpoint(path, device=dev, task=None))
    if model.meta.get("task") != sr3.TASK:
        raise NotAvailable(f"{path} is not an SR3 (conditional super-resolution) checkpoint")
    trained = float(model.meta.get("factor", math.nan))
    if not abs(trained - factor) < 1e-6:
        raise NotAvailable(f"{path} was trained for ×{trained:g}, not ×{factor:g}")

    def fn(coarse, kind, N, *, generator):
        return to_spins(
            sr3.sr3_upsample_stage(
                model, coarse, kind, N, steps=None, generator=generator, device=dev
            )
        )

    return Prepared(
        fn,
        _checkpoint_id(model.path, model.sha256),
        train_seconds(model.path, model.meta),
        note="SR3-style, one model per factor",
    )


# ----------------------------------------------------------------------------
# CNN super-resolver (Efthymiou, Beach & Melko) and its kernel-interpolated variant.


def _cnn(module: str, func: str) -> Callable[[Options, float], Prepared]:
    def build(options: Options, factor: float) -> Prepared:
        import importlib

        from ..baselines import cnn

        if options.cnn_checkpoint is None:
            raise NotAvailable("no CNN checkpoint given (--cnn-checkpoint PATH)")
        mod = importlib.import_module(f"isingscale.baselines.{module}")
        path = Path(options.cnn_checkpoint)
        model = options.cached(("cnn", path), lambda: cnn.load_cnn(path))
        run = getattr(mod, func)

        def fn(coarse, kind, N, *, generator):
            return run(model, coarse, kind, N, generator=generator)

        meta = getattr(model, "meta", None) or _file_meta(path)
        sha = getattr(model, "sha256", None)
        return Prepared(
            fn,
            _checkpoint_id(path, sha),
            train_seconds(path, meta),
            note=f"×{meta.get('factor', '?')} CNN checkpoint",
        )

    return build


register(
    "skild", build=_build_skild, description="SKILD, one unconditional checkpoint for every factor"
)
register(
    "ssd", build=_build_ssd, description="scale-space diffusion sampling with the SKILD checkpoint"
)
register(
    "sr3",
    build=_build_sr3,
    description="SR3-style conditional diffusion, one model per factor",
)
register(
    "cnn",
    build=_cnn("cnn", "cnn_upsample"),
    conventions=("block",),
    description="CNN super-resolver (×2 network, repeated), block-spin input",
)
register(
    "cnn-ki",
    build=_cnn("kernel_interp", "cnn_ki_upsample"),
    conventions=("block",),
    description="the ×2 CNN with kernels interpolated to act as ×F in one pass",
)
for _name, _what in (
    ("nearest", "block replication"),
    ("fourier", "band-limited (zero-padded FFT) interpolation"),
    ("bicubic", "bicubic interpolation"),
):
    register(_name, build=_interpolation(_name), description=f"{_what}, then signs")

__all__ = [
    "CONVENTIONS",
    "Method",
    "NotAvailable",
    "Options",
    "Prepared",
    "Upsampler",
    "register",
    "unregister",
    "method_names",
    "get_method",
    "train_seconds",
    "ssd_cost",
    "ssd_margin",
]
