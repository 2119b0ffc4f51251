"""The one training loop: resumable, logged, atomic checkpoints, torchrun-aware, budgeted.

Every network the toolkit trains (the SKILD network, its coarse stage, the SR3 and CNN
baselines) runs through :func:`run`; what differs is passed in as a :class:`Task`: the
network, the loss of one step, and how a checkpoint file is written. The loop owns the rest:

* Adam with a linear warm-up and a constant or cosine rate (:func:`learning_rate`), gradient
  clipping, and an exponential moving average of the weights (EMA, with the usual
  (1 + t)/(10 + t) warm-up) that is what sampling uses; ``ema=None`` trains without one;
* the budget: ``steps`` in total (counting steps before a resume) and/or ``minutes`` of
  this invocation;
* the run directory::

      config.json             the resolved configuration and facts about the run
      loss.csv                step, samples seen, mean loss of the last ``log_every`` steps,
                              learning rate, seconds over all invocations (appended, flushed)
      checkpoint.safetensors  the training state (raw and EMA weights, Adam moments, step,
                              RNG), written atomically every ``checkpoint_every`` steps, every
                              5 minutes and at the end of an invocation
      model.safetensors       the final weights: the checkpoint to use

* resume: the state in checkpoint.safetensors, the configuration it records (only the
  budget changes), loss.csv cut back to the checkpoint's step. Data order and noise come
  from one seeded torch generator whose state is checkpointed, so N steps in one go and
  N/2 + resume N/2 give bitwise the same weights on the CPU;
* data parallelism under ``torchrun --nproc-per-node K`` (WORLD_SIZE > 1): the network is
  wrapped in DistributedDataParallel (NCCL on GPUs, gloo on CPU); every rank draws the same
  global batch of K x batch from the shared generator and trains on its slice (the Task's
  loss sees the :class:`DistContext`), so K processes follow the loss curve of one with
  K x batch; only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..device import autocast, resolve_device
from ..errors import IsingScaleError
from ..io import writable_dir

CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
CHECKPOINT_SECONDS = 300.0  # a training checkpoint at least this often


# ----------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class LoopConfig:
    """What every training run has: budget, optimizer, EMA, seed, logging.

    Frozen and validated on construction (a bad value is a one-line IsingScaleError naming
    the field). The configurations of the models (:class:`~isingscale.skild.train.TrainConfig`
    and the others) extend it, and are stored whole in their checkpoints.
    """

    steps: int | None = None  # total optimizer steps (counting those before a resume)
    minutes: float | None = None  # wall-clock budget of this invocation
    batch: int = 64  # samples per optimizer step (per process under torchrun)
    lr: float = 1e-3  # Adam's learning rate after the warm-up
    warmup: int = 200  # linear learning-rate warm-up, steps
    lr_decay: str = "constant"  # "constant", or "cosine" from lr to lr/10 over steps
    ema: float | None = 0.999  # EMA decay per step; None: the raw weights are the model
    grad_clip: float | None = 1.0  # gradient norm clipping; None: none
    seed: int = 0  # initial weights, data order, noise
    checkpoint_every: int = 500  # steps between training checkpoints (also every 5 minutes)
    log_every: int = 20  # steps per loss.csv row

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise IsingScaleError("give steps or minutes (the training budget)")
        _at_least(self, "steps", 1, optional=True)
        _positive(self, "minutes", optional=True)
        for name in ("batch", "checkpoint_every", "log_every"):
            _at_least(self, name, 1)
        _at_least(self, "warmup", 0)
        _positive(self, "lr")
        _positive(self, "grad_clip", optional=True)
        _choice(self, "lr_decay", ("constant", "cosine"))
        if self.lr_decay == "cosine" and self.steps is None:
            raise IsingScaleError("lr_decay cosine needs steps (the decay runs over them)")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise IsingScaleError(f"ema must be in [0, 1) or None, got {self.ema!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, **changes):
        """A stored configuration (unknown keys ignored, lists back to tuples) with ``changes``."""
        known = {f.name: f for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**{**kw, **changes})

    @classmethod
    def resumed(cls, saved: dict, options: dict, steps: int | None, minutes: float | None):
        """The configuration of a resumed run: the one it recorded, with a new budget.

        options: what the caller gave besides the budget (e.g. the command line repeated with
        --resume); each must equal the recorded value, else a one-line error naming it.
        """
        cfg = cls.from_dict(saved)
        for name, value in options.items():
            if name not in cls.__dataclass_fields__:
                raise IsingScaleError(f"unknown training option {name!r}")
            have = getattr(cfg, name)
            if _comparable(value) != _comparable(have):
                raise IsingScaleError(
                    f"--resume: {name} = {value!r} differs from the run's {have!r} (a resumed "
                    "run keeps its configuration; give only --steps / --minutes)"
                )
        if cfg.lr_decay == "cosine" and steps is None:
            raise IsingScaleError(
                "--resume: this run decays its learning rate over --steps; give --steps again"
            )
        return replace(cfg, steps=steps, minutes=minutes)


def _comparable(v):
    """Lists as tuples, paths as resolved strings: values as a configuration records them."""
    if isinstance(v, (list, tuple)):
        return tuple(v)
    if isinstance(v, Path) or (isinstance(v, str) and ("/" in v or v.endswith(".safetensors"))):
        return str(Path(v).resolve())
    return v


def _value(cfg, name):
    return getattr(cfg, name)


def _at_least(cfg, name: str, low: int, *, optional: bool = False) -> None:
    v = _value(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise IsingScaleError(f"{name} must be an integer >= {low}, got {v!r}")


def _positive(cfg, name: str, *, optional: bool = False) -> None:
    v = _value(cfg, name)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise IsingScaleError(f"{name} must be a positive number, got {v!r}")


def _choice(cfg, name: str, choices) -> None:
    v = _value(cfg, name)
    if v not in choices:
        raise IsingScaleError(f"{name} must be one of {', '.join(map(str, choices))}, got {v!r}")


def check_field(cfg, name: str, ok: bool, what: str) -> None:
    """One-line error naming a configuration field: ``{name} must be {what}, got {value}``."""
    if not ok:
        raise IsingScaleError(f"{name} must be {what}, got {_value(cfg, name)!r}")


def learning_rate(cfg: LoopConfig, step: int) -> float:
    """Adam's rate at optimizer step `step` (0-based): linear warm-up, then constant or cosine
    to lr/10 over cfg.steps."""
    lr = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
    if cfg.lr_decay == "cosine":
        lr *= 0.1 + 0.45 * (1.0 + math.cos(math.pi * min(step / cfg.steps, 1.0)))
    return lr


# ----------------------------------------------------------------------------
# Data parallelism (torchrun).


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and local rank of this process (1 process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def part(self, per_rank: int) -> slice:
        """This rank's slice of a global batch of world x per_rank samples."""
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


@contextlib.contextmanager
def distributed(device: str = "auto"):
    """The torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, gloo on CPU), else a
    single-process context; a group joined here is left again on exit."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield DistContext()
        return
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"
        try:
            dist.init_process_group(backend)
        except (RuntimeError, ValueError) as e:
            raise IsingScaleError(
                f"cannot join the torch.distributed group ({str(e).splitlines()[0][:120]}); "
                "start with torchrun --nproc-per-node K"
            ) from None
    try:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        yield DistContext(dist.get_rank(), dist.get_world_size(), local)
    finally:
        if owns:
            dist.destroy_process_group()


def training_device(device: str, ctx: DistContext) -> torch.device:
    """resolve_device, and under torchrun on GPUs each rank's own GPU (LOCAL_RANK)."""
    dev = resolve_device(device)
    if dev.type == "cuda" and ctx.world > 1:
        dev = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(dev)
    return dev


def _barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _mean_over_ranks(value: torch.Tensor, ctx: DistContext) -> float:
    if ctx.world == 1:
        return value.item()
    import torch.distributed as dist

    v = value.detach().float().reshape(1).clone()
    dist.all_reduce(v)
    return v.item() / ctx.world


def _rank0_says(flag: bool, ctx: DistContext) -> bool:
    """Rank 0's decision (e.g. wall-clock budget spent), the same on every rank."""
    if ctx.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)])
    dist.broadcast(t, src=0)
    return bool(t.item())


# ----------------------------------------------------------------------------
# What a model passes in.

StepLoss = Callable[[Callable, int, torch.Generator, DistContext], "tuple[torch.Tensor, int]"]
Write = Callable[[Path, torch.nn.Module, dict, "dict[str, torch.Tensor] | None"], None]


@dataclass
class Task:
    """The model-specific parts of a training run.

    net: the network to train (its initial weights already set).
    config: its configuration (a :class:`LoopConfig` subclass), stored in the checkpoint.
    step_loss(call, step, generator, ctx) -> (loss on this rank's slice, samples in the
        global batch): one optimizer step's batch, drawn from ``generator`` (the same draws
        on every rank), through ``call`` (the network, DDP-wrapped and autocast as needed;
        ``call(*inputs)``).
    write(path, net, training, train_tensors): write a checkpoint file with the sampling
        weights ``net`` (EMA, or raw without EMA) and the training section ``training``
        (config, step, samples seen, seconds, losses, versions, plus ``provenance``);
        ``train_tensors`` (raw weights, Adam moments, RNG) only for training checkpoints.
    section(meta): where a checkpoint of this kind keeps its training section.
    prefix: the tensor-name prefix of the sampling weights in a checkpoint file.
    seen_key: the name of the samples-seen count in the training section.
    provenance: merged into the training section (e.g. the data files with their sha256).
    info: merged into config.json (e.g. device, lattice sizes, parameters).
    files: extra text files written into a new run directory (name -> text).
    """

    net: torch.nn.Module
    config: LoopConfig
    step_loss: StepLoss
    write: Write
    section: Callable[[dict], dict] = lambda meta: meta["training"]
    prefix: str = "model."
    seen_key: str = "lattices_seen"
    provenance: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def resume_state(out: Path, resume: bool, read) -> tuple[dict, dict] | None:
    """(metadata, tensors) of RUNDIR/checkpoint.safetensors to resume, or None for a new run.

    ``read(path) -> (meta, tensors)`` reads the format. A new run into a directory that holds
    one, or --resume without one, is a one-line error.
    """
    path = Path(out) / CHECKPOINT
    if resume:
        if not path.exists():
            raise IsingScaleError(f"--resume: {out} holds no {CHECKPOINT}")
        return read(path)
    if path.exists():
        raise IsingScaleError(f"{out} already holds a training run; use --resume or another --out")
    return None


# ----------------------------------------------------------------------------
# The loop.


@dataclass
class _State:
    step: int = 0
    seen: int = 0
    seconds: float = 0.0
    loss: float | None = None
    lr: float | None = None


class _Trainer:
    """Optimizer, EMA, generator and bookkeeping of one run (see :func:`run`)."""

    def __init__(self, task: Task, out: Path, ctx: DistContext, device: torch.device):
        self.task, self.out, self.ctx, self.device = task, out, ctx, device
        self.cfg = task.config
        self.net = task.net
        self.ema = None
        if self.cfg.ema is not None:
            self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.g = torch.Generator().manual_seed(self.cfg.seed)
        self.state = _State()
        self.model = self.net

    @property
    def sampling_net(self) -> torch.nn.Module:
        return self.net if self.ema is None else self.ema

    def restore(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Weights, EMA, Adam moments, generator and counters of a training checkpoint."""
        section = self.task.section(meta)
        # Without EMA the sampling weights are the raw ones, stored once.
        raw = "train.raw." if self.ema is not None else self.task.prefix
        self.net.load_state_dict(_strip(tensors, raw))
        if self.ema is not None:
            self.ema.load_state_dict(_strip(tensors, self.task.prefix))
        restore_optimizer(self.opt, tensors, section["optimizer"])
        self.g.set_state(tensors["train.rng"])
        step = int(section["step"])
        self.state = _State(
            step=step,
            seen=int(section.get(self.task.seen_key, step * self.cfg.batch)),
            seconds=float(section.get("seconds", 0.0)),
        )

    def section(self) -> dict:
        """The training section of a checkpoint written now."""
        from ..version import __version__

        s = self.state
        return {
            **self.task.provenance,
            "config": self.cfg.to_dict(),
            "world_size": self.ctx.world,
            "step": s.step,
            self.task.seen_key: s.seen,
            "seconds": round(s.seconds, 3),  # training wall time over all invocations
            "last_loss": s.loss,
            "package_version": __version__,
            "torch_version": torch.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def checkpoint(self) -> None:
        """The resumable training state, atomically (rank 0 only)."""
        if not self.ctx.is_writer:
            return
        opt_tensors, groups = optimizer_tensors(self.opt)
        train_tensors = {**opt_tensors, "train.rng": self.g.get_state()}
        if self.ema is not None:
            train_tensors.update({f"train.raw.{k}": v for k, v in self.net.state_dict().items()})
        section = {**self.section(), "optimizer": groups}
        self.task.write(self.out / CHECKPOINT, self.sampling_net, section, train_tensors)

    def step(self) -> float:
        """One optimizer step; returns its loss averaged over the ranks."""
        cfg, step = self.cfg, self.state.step
        lr = learning_rate(cfg, step)
        for group in self.opt.param_groups:
            group["lr"] = lr

        def call(*inputs):
            with autocast(self.device):
                return self.model(*inputs)

        loss, n = self.task.step_loss(call, step, self.g, self.ctx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        self.opt.step()
        if self.ema is not None:
            d = min(cfg.ema, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                for p_ema, p in zip(self.ema.parameters(), self.net.parameters()):
                    p_ema.lerp_(p, 1.0 - d)
        self.state.step += 1
        self.state.seen += n
        self.state.lr = lr
        return _mean_over_ranks(loss, self.ctx)


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def run(
    task: Task,
    out,
    *,
    ctx: DistContext,
    device: torch.device,
    resumed: tuple[dict, dict] | None = None,
    progress: bool = True,
) -> Path:
    """Train ``task`` into the run directory ``out``; returns out/model.safetensors.

    resumed: (metadata, tensors) of out/checkpoint.safetensors (:func:`resume_state`), whose
    state the run continues; None starts afresh (``task.net`` holds the initial weights).
    """
    out = Path(out)
    tr = _Trainer(task, out, ctx, device)
    if resumed is not None:
        tr.restore(*resumed)
        if ctx.is_writer:
            truncate_log(out / "loss.csv", tr.state.step)
    elif ctx.is_writer:
        writable_dir(out)
        for name, text in task.files.items():
            (out / name).write_text(text)
    if ctx.is_writer:
        info = {**task.config.to_dict(), "device": str(device), **task.info}
        (out / "config.json").write_text(json.dumps(info, indent=1))
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        tr.model = DistributedDataParallel(tr.net, device_ids=ids)
        _barrier(ctx)  # every rank has passed its start-up checks before rank 0 writes
    _steps(tr, progress)
    final = out / MODEL
    if ctx.is_writer:
        task.write(final, tr.sampling_net, tr.section(), None)
    _barrier(ctx)  # the final checkpoint exists when any rank returns
    return final


def _steps(tr: _Trainer, progress: bool) -> None:
    """Steps until the budget is spent; log rows (rank 0), checkpoints every N steps and
    5 minutes, and one when the invocation ends for any reason (Ctrl-C included)."""
    cfg, ctx, state = tr.cfg, tr.ctx, tr.state
    log = (tr.out / "loss.csv").open("a", newline="") if ctx.is_writer else None
    writer = csv.writer(log) if log else None
    if log and log.tell() == 0:
        writer.writerow(["step", "lattices", "loss", "lr", "seconds"])
        log.flush()
    t0 = t_ckpt = time.monotonic()
    seconds0, step0, seen0 = state.seconds, state.step, state.seen
    show = progress and ctx.is_writer
    bar = tqdm(total=cfg.steps, initial=state.step, disable=not show, desc="train", unit="step")
    loss_sum, loss_n = 0.0, 0
    try:
        while (cfg.steps is None or state.step < cfg.steps) and not _rank0_says(
            cfg.minutes is not None and time.monotonic() - t0 >= 60.0 * cfg.minutes, ctx
        ):
            loss_sum += tr.step()
            loss_n += 1
            state.seconds = seconds0 + time.monotonic() - t0
            if state.step % cfg.log_every == 0:
                state.loss = loss_sum / loss_n
                rate = (state.seen - seen0) / max(time.monotonic() - t0, 1e-9)
                if writer:
                    row = [state.step, state.seen, f"{state.loss:.6g}", f"{state.lr:.3g}"]
                    writer.writerow(row + [f"{state.seconds:.1f}"])
                    log.flush()
                bar.set_postfix(loss=f"{state.loss:.4f}", samples_per_s=f"{rate:.0f}")
                loss_sum, loss_n = 0.0, 0
            bar.update(1)
            if state.step % cfg.checkpoint_every == 0 or (
                time.monotonic() - t_ckpt > CHECKPOINT_SECONDS
            ):
                tr.checkpoint()
                t_ckpt = time.monotonic()
    finally:
        bar.close()
        if log:
            log.close()
        if state.step > step0:
            tr.checkpoint()


def truncate_log(log: Path, step: int) -> None:
    """Drop loss.csv rows written after the checkpoint being resumed (and a row cut short by
    a killed process); an empty file stays empty."""
    if not log.exists():
        return
    rows = list(csv.reader(log.open()))
    keep = rows[:1] + [r for r in rows[1:] if len(r) == len(rows[0]) and int(r[0]) <= step]
    with log.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


# ----------------------------------------------------------------------------
# Adam state in safetensors.


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam state as flat tensors ``train.optim.<i>.<key>`` + JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {}
    for i, st in sd["state"].items():
        for key, value in st.items():
            tensors[f"train.optim.{i}.{key}"] = torch.as_tensor(value)
    return tensors, {"param_groups": sd["param_groups"]}


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: dict[str, Any]
) -> None:
    """Load what :func:`optimizer_tensors` wrote."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("train.optim."):
            i, key = name[len("train.optim.") :].split(".", 1)
            state.setdefault(int(i), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": groups["param_groups"]})


def training_seconds(meta: dict) -> float | None:
    """A checkpoint's total training wall time: its own run's plus, when it was fine-tuned from
    another (``init``), that one's. None when the checkpoint does not record it."""
    training = meta.get("training") or {}
    own = training.get("seconds")
    init = training.get("init") or (training.get("config") or {}).get("init")
    init = init if isinstance(init, dict) else {}  # a path (the configuration) records no time
    if own is None:
        return None
    return float(own) + float(init.get("seconds") or 0.0)
