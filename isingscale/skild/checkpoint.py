"""SKILD checkpoints: safetensors weights + JSON metadata. Loading never unpickles.

File layout (one ``.safetensors`` file)::

    metadata["isingscale"]   JSON: format="isingscale-skild", schema_version, lattice
                             ("ising-periodic" | "image-dct"), L, T, spectrum (a list,
                             one per channel, for images), schedule, channels and
                             pixel_mean (images),
                             model config, block-spin transfer functions, training
                             provenance (data files + sha256, seed, steps, lattices seen,
                             package version, ...), and for training checkpoints the
                             optimizer hyper-parameters and step
    model.<param>            EMA weights, the ones used for sampling
    coarse.<param>           (optional) EMA weights of the coarse stage, described by
                             metadata["coarse"] = {model, size, margin, s_min, training}
                             (:class:`CoarseStage`; trained and run by coarse.py)
    train.raw.<param>        (training checkpoints) raw weights
    train.optim.<i>.<key>    (training checkpoints) Adam moments and step per parameter
    train.rng                (training checkpoints) torch generator state, uint8
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import IsingScaleError
from ..io import file_sha256
from .process import Schedule, Whitener
from .spectral import Spectrum
from .unet import UNet, UNetConfig

FORMAT = "isingscale-skild"
SCHEMA_VERSION = 1
DEFAULT_CHECKPOINT = "skild_ising_L32.safetensors"


def repository_root() -> Path:
    """The source tree the package was imported from (isingscale/..)."""
    return Path(__file__).resolve().parents[2]


def default_checkpoint() -> Path:
    """The shipped checkpoint: data/checkpoints/ in the source tree (editable install), else the
    copy a regular install puts under <sys.prefix>/share/isingscale/checkpoints/ (pyproject
    data-files)."""
    import sys

    candidates = [
        repository_root() / "data" / "checkpoints" / DEFAULT_CHECKPOINT,
        Path(sys.prefix) / "share" / "isingscale" / "checkpoints" / DEFAULT_CHECKPOINT,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise IsingScaleError(
        f"no shipped checkpoint at {' or '.join(map(str, candidates))}; "
        "install isingscale from its repository, or train one with 'isingscale train skild' and "
        "pass --checkpoint"
    )


@dataclass
class CoarseStage:
    """A loaded coarse stage: network (eval mode) on size x size, handing over at s' = margin.

    Generation at N >= 2 size draws the lowest modes with it (:mod:`isingscale.skild.coarse`).
    """

    net: UNet
    size: int
    margin: float
    meta: dict

    def applies(self, N: int) -> bool:
        """Whether generation at N uses the stage (N ≥ 2 x size)."""
        return N >= 2 * self.size

    def s_lift(self, N: int) -> float:
        """The scale on N at which the state moves from the coarse to the main network."""
        return math.log2(N / self.size) + self.margin


def coarse_stage(meta: dict, tensors: dict[str, torch.Tensor], device) -> CoarseStage | None:
    """The coarse stage recorded in a checkpoint (``coarse.*`` weights, metadata["coarse"])."""
    c = meta.get("coarse")
    if c is None:
        return None
    net = UNet(UNetConfig.from_dict(c["model"]))
    net.load_state_dict(
        {k[len("coarse.") :]: v for k, v in tensors.items() if k.startswith("coarse.")}
    )
    return CoarseStage(net.to(device).eval(), int(c["size"]), float(c["margin"]), c)


@dataclass
class SkildModel:
    """A loaded checkpoint: network (eval mode), spectrum, schedule and metadata."""

    net: UNet
    spectrum: Spectrum | list[Spectrum]  # one per channel for images ("image-dct")
    schedule: Schedule
    meta: dict
    path: Path | None = None
    sha256: str | None = None
    coarse: CoarseStage | None = None  # the network generation uses for the lowest modes
    whitener: Whitener = field(init=False)

    def __post_init__(self):
        self.whitener = Whitener(self.spectrum)
        if isinstance(self.net, UNet):  # tests drive the samplers with analytic stand-in nets
            self.net.set_whitener(self.whitener)

    @property
    def lattice(self) -> str:
        return self.meta["lattice"]

    @property
    def basis(self):
        return self.whitener.basis

    @property
    def channels(self) -> int:
        return int(self.meta.get("channels", 1))

    @property
    def temperature(self) -> float | None:
        """T of the training lattices (units of J/k_B); None where there is none (images)."""
        T = self.meta.get("T")
        return None if T in (None, "none") else float(T)

    @property
    def block_transfer(self) -> list[dict]:
        return self.meta.get("block_transfer", [])


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Tensors + JSON metadata (key "isingscale") to ``path`` atomically (temporary file +
    os.replace)."""
    from safetensors.torch import save_file

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IsingScaleError(f"cannot create directory {path.parent}: {e.strerror}") from None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(tensors, str(tmp), metadata={"isingscale": json.dumps(meta)})
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise IsingScaleError(f"cannot write checkpoint {path}: {e.strerror or e}") from None


def save_checkpoint(
    path, net: torch.nn.Module, meta: dict, *, train_state: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write weights (``model.*``), metadata and optional training state, atomically."""
    meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, **meta}
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    tensors.update(train_state or {})
    write_safetensors(Path(path), tensors, meta)
    return Path(path)


def read_safetensors(
    path, *, fmt: str, schema_version: int, what: str
) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of an isingscale safetensors file of format ``fmt``; never unpickles.

    what: the kind named in error messages ("SKILD", "CNN"). Each problem (missing file,
    not safetensors, no or corrupt metadata, another format, a newer schema) is a one-line
    :class:`IsingScaleError`.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise IsingScaleError(f"{path}: no such {what} checkpoint file")
    if path.is_dir():
        raise IsingScaleError(f"{path} is a directory, not a checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("isingscale")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for foreign/corrupt files
        raise IsingScaleError(
            f"{path} is not a readable safetensors checkpoint ({str(e).splitlines()[0][:120]})"
        ) from None
    if raw is None:
        raise IsingScaleError(
            f"{path} is not an isingscale {what} checkpoint (no isingscale metadata)"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise IsingScaleError(f"{path}: checkpoint metadata is corrupt (not JSON)") from None
    if meta.get("format") != fmt:
        raise IsingScaleError(
            f"{path} is not an isingscale {what} checkpoint (format {meta.get('format')!r})"
        )
    if int(meta.get("schema_version", 0)) > schema_version:
        raise IsingScaleError(
            f"{path} uses {what} checkpoint schema {meta['schema_version']}, newer than this "
            "isingscale; upgrade"
        )
    return meta, tensors


def read_checkpoint(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata, tensors) of a SKILD checkpoint file, validated; never unpickles."""
    return read_safetensors(path, fmt=FORMAT, schema_version=SCHEMA_VERSION, what="SKILD")


def load_checkpoint(
    path=None,
    *,
    lattice: str | None = "ising-periodic",
    device: str | torch.device = "cpu",
    task: str | None = "skild",
) -> SkildModel:
    """Load a checkpoint for sampling (EMA weights). ``path=None``: the shipped checkpoint.

    ``lattice`` is what the caller will run it on; a mismatch (e.g. an "image-dct"
    checkpoint used on periodic lattices) is an error. ``task``: "skild" (unconditional),
    "conditional-sr" (the SR3 baseline, :mod:`isingscale.baselines.sr3`), or None for either.
    """
    path = default_checkpoint() if path is None else Path(path)
    meta, tensors = read_checkpoint(path)
    have_task = meta.get("task", "skild")
    if task is not None and have_task != task:
        what = {
            "skild": "an unconditional SKILD checkpoint",
            "conditional-sr": f"an SR3 baseline ×{meta.get('factor', '?')} super-resolver",
        }
        raise IsingScaleError(
            f"{path} is {what.get(have_task, repr(have_task))}, not {what.get(task, repr(task))}"
        )
    if lattice is not None and meta.get("lattice") != lattice:
        what = {"image-dct": "images", "ising-periodic": "Ising lattices"}
        have = meta.get("lattice")
        raise IsingScaleError(
            f"{path} was trained on {what.get(have, 'data')} ({have!r}) and cannot be used on "
            f"{what.get(lattice, 'data')} ({lattice!r})"
        )
    try:
        net = UNet(UNetConfig.from_dict(meta["model"]))
        net.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        spectrum = spectrum_from_meta(meta["spectrum"])
        schedule = Schedule.from_dict(meta["schedule"])
        coarse = coarse_stage(meta, tensors, device)
    except (KeyError, RuntimeError, TypeError) as e:
        raise IsingScaleError(
            f"{path}: checkpoint is incomplete or does not match its model config "
            f"({type(e).__name__})"
        ) from None
    net.to(device).eval()
    return SkildModel(
        net, spectrum, schedule, meta, path=path, sha256=file_sha256(path), coarse=coarse
    )


def spectrum_from_meta(d: dict | list) -> Spectrum | list[Spectrum]:
    """A checkpoint's ``spectrum``: one dict (Ising) or a list, one per image channel."""
    return [Spectrum.from_dict(x) for x in d] if isinstance(d, list) else Spectrum.from_dict(d)
