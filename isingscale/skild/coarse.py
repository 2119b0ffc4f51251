"""The coarse stage: a second, small network for a lattice's lowest modes, used by generation.

Why. Generation from noise runs the reverse process from s_max(N) (6.84 at N = 32) to 0;
super-resolution by F starts at s* = log2 F (+ 1 for block spins) and never sees the
largest s. The main network loses a little order there, between s ≈ 3.2 and 4.8 at N = 32
(the round trip in data/README.md), and again between 3.2 and 2.2 when it must create the
modes above an 8 x 8 band; from an exact 16 x 16 band at s = 2.2 it keeps the order. At such
s a state carries only its lowest modes (k_c(s) = k_Nyq 2^-s), so those steps are a small
problem of their own.

What. A UNet of the same class (no colored I/O) on the Nc x Nc band of whitened lattices:
y'(q) = y(q) for the modes |q_x|, |q_y| < Nc/2 that Nc shares with N (:func:`ssd.restrict`:
factor 1, the Nc Nyquist lines filled with unit noise), trained with the ε loss of
:func:`process.skild_loss` at s' ∈ [s_min, s_max(Nc)] on Nc's own schedule. By the lift
identity of :mod:`isingscale.skild.ssd`, the reverse process on Nc at s' = s - log2(N/Nc) is
that of N's band at s, so generation at N ≥ 2 Nc runs::

    noise on Nc  --coarse net: s_max(Nc) -> margin-->  lift to N at s_lift = log2(N/Nc) + margin
                 --main net: s_lift -> 0-->  lattice

The lift is exact in distribution; what it drops is the signal outside the band at s_lift,
a_N(s_lift, k) ≤ 0.05 at the band edge for margin 1.2 (w = 0.4), 0.2 % of those modes'
variance. One coarse network serves every N: the whitened lowest modes of a critical lattice
are distributed alike at every size up to corrections to scaling (the RG statement ssd.py
relies on too).

Checkpoint layout: the main checkpoint's tensors and metadata unchanged, plus ``coarse.<param>``
(EMA weights) and metadata ``coarse`` = {model, size, margin, s_min, training}.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..errors import IsingScaleError
from .process import loss_weights, skild_loss
from .sampler import SAMPLERS
from .ssd import _steps, lift, restrict
from .unet import UNet, UNetConfig, count_parameters

# Default steps per octave on both legs. For "sde" this is a calibrated choice, not a
# convergence setting: on the validation split, generation through the shipped 16 x 16 stage
# is too disordered at 10 per octave (G2(L/4) -1.8 % mean of two seeds) and too ordered at 5.1
# (+0.5 %); 7.3, 50 steps at N = 32, lies between them (data/README.md, "The coarse stage").
STEPS_PER_OCTAVE = {"ddpm": 20, "ddim": 6, "sde": 7.3}


@dataclass
class CoarseStage:
    """A loaded coarse stage: network (eval mode) on size x size, handing over at s' = margin."""

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


def from_checkpoint(meta: dict, tensors: dict[str, torch.Tensor], device) -> CoarseStage | None:
    """The coarse stage recorded in a checkpoint, or None when it has none."""
    c = meta.get("coarse")
    if c is None:
        return None
    net = UNet(UNetConfig.from_dict(c["model"]))
    net.load_state_dict(
        {k[len("coarse.") :]: v for k, v in tensors.items() if k.startswith("coarse.")}
    )
    return CoarseStage(net.to(device).eval(), int(c["size"]), float(c["margin"]), c)


def band(model, x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """±1 lattices (B, N, N) -> whitened size x size band (B, size, size), whitened at N."""
    return restrict(model.whitener.whiten(x.float()), size, model.basis, generator=generator)


def plan(
    model, N: int, sampler: str, rate: float | None = None
) -> list[tuple[int, float, float, int]]:
    """[(lattice, s_start, s_end, steps)] of the two legs of generation at N (coarse first).

    rate: steps per octave on both legs (None: this module's STEPS_PER_OCTAVE of the sampler).
    """
    rate = STEPS_PER_OCTAVE[sampler] if rate is None else rate
    st = model.coarse
    s_top = model.schedule.s_max(st.size)
    s_lift = st.s_lift(N)
    return [
        (st.size, s_top, st.margin, _steps(sampler, s_top - st.margin, rate)),
        (N, s_lift, 0.0, _steps(sampler, s_lift, rate)),
    ]


def describe(legs) -> str:
    """The legs of :func:`plan` in words, e.g. '8x8: s 4.84 -> 1.20, 37 steps; 32x32: s 3.20 -> 0.00, 32 steps'."""
    return "; ".join(f"{n}x{n}: s {a:.2f} -> {b:.2f}, {k} steps" for n, a, b, k in legs)


def generate_batch(
    model, B: int, N: int, *, sampler: str, rate: float | None, generator: torch.Generator, device
) -> torch.Tensor:
    """B lattices from noise through the coarse stage -> colored real-space field (B, N, N) on the CPU."""
    from .generate import model_net

    legs = plan(model, N, sampler, rate)
    coarse = model.coarse.net
    nets = [lambda y, s: coarse(y, s).float(), model_net(model, torch.device(device))]
    y = torch.randn((B, legs[0][0], legs[0][0]), generator=generator).to(device)
    for i, ((n, s_start, s_end, steps), net) in enumerate(zip(legs, nets)):
        if i:
            y = lift(y, n, s_start, basis=model.basis, schedule=model.schedule, generator=generator)
        y = SAMPLERS[sampler](
            net,
            y,
            s_start,
            steps,
            basis=model.basis,
            schedule=model.schedule,
            generator=generator,
            s_end=s_end,
        )
    return model.whitener.color(y).cpu()


# ----------------------------------------------------------------------------
# Training.


@dataclass
class CoarseConfig:
    size: int = 8
    margin: float = 1.2  # hand-over scale on size's own schedule
    s_min: float = 1.0  # training scales s' ~ U(s_min, s_max(size))
    base_channels: int = 32
    depth: int = 2
    channel_mult: tuple[int, ...] = (1, 2, 2)
    batch: int = 256
    steps: int | None = None
    minutes: float | None = None
    lr: float = 1e-3
    warmup: int = 200
    lr_decay: str = "constant"  # or "cosine" from lr to lr/10 over --steps
    ema: float = 0.999
    seed: int = 0
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 20
    init: dict = field(default_factory=dict)  # the main checkpoint: path, sha256
    data: list = field(default_factory=list)

    def model_config(self) -> UNetConfig:
        return UNetConfig(
            base_channels=self.base_channels,
            depth=self.depth,
            channel_mult=tuple(self.channel_mult),
        )


def _check(cfg: CoarseConfig, sizes) -> None:
    UNet(cfg.model_config()).check_size(cfg.size)
    small = [N for N in sizes if N < 2 * cfg.size]
    if small:
        raise IsingScaleError(
            f"--coarse {cfg.size}: training lattices must be at least {2 * cfg.size} wide, got "
            f"{', '.join(map(str, small))}"
        )
    if cfg.lr_decay not in ("constant", "cosine"):
        raise IsingScaleError(f"lr_decay must be 'constant' or 'cosine', got {cfg.lr_decay!r}")
    if cfg.lr_decay == "cosine" and cfg.steps is None:
        raise IsingScaleError("--lr-decay cosine needs --steps (the decay runs over them)")
    if not 0 <= cfg.s_min < cfg.margin:
        raise IsingScaleError(
            f"the coarse stage must train below its hand-over: need 0 <= s_min < margin, got "
            f"{cfg.s_min}, {cfg.margin}"
        )


def _coarse_meta(cfg: CoarseConfig, state: dict) -> dict:
    from .. import __version__

    return {
        "model": cfg.model_config().to_dict(),
        "size": cfg.size,
        "margin": cfg.margin,
        "s_min": cfg.s_min,
        "training": {
            "data": cfg.data,
            "config": {k: v for k, v in asdict(cfg).items() if k != "data"},
            "step": state["step"],
            "samples_seen": state["seen"],
            "seconds": round(state.get("seconds", 0.0), 3),
            "last_loss": state.get("loss"),
            "package_version": __version__,
            "torch_version": torch.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }


def train_coarse(
    data,
    out,
    *,
    init=None,
    steps: int | None = None,
    minutes: float | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train the coarse stage of SKILD checkpoint `init` on ±1 lattices; returns RUNDIR/model.safetensors.

    The output is `init`'s network, spectrum and metadata unchanged plus the coarse stage. The
    main network is not trained. options: the fields of :class:`CoarseConfig` (size, margin,
    s_min, base_channels, depth, channel_mult, batch, lr, lr_decay, ema, seed, ...). resume:
    continue RUNDIR/checkpoint.safetensors (coarse weights, EMA, Adam, step, RNG; `init` and
    data are taken from it).
    """
    from ..io import file_sha256, writable_dir
    from .checkpoint import (
        load_checkpoint,
        optimizer_tensors,
        read_checkpoint,
        restore_optimizer,
        write_safetensors,
    )
    from .train import (
        DistContext,
        _loop,
        _truncate_log,
        draw_scales,
        learning_rate,
        load_ising,
        optimizer_step,
        resolve_device,
    )

    if steps is None and minutes is None:
        raise IsingScaleError("give --steps or --minutes")
    out = Path(out)
    ckpt_path = out / "checkpoint.safetensors"
    dev = resolve_device(device)
    if resume:
        if not ckpt_path.exists():
            raise IsingScaleError(f"--resume: {out} holds no checkpoint.safetensors")
        meta, tensors = read_checkpoint(ckpt_path)
        if "coarse" not in meta:
            raise IsingScaleError(f"--resume: {ckpt_path} is not a coarse-stage training run")
        saved = meta["coarse"]["training"]["config"]
        cfg = CoarseConfig(
            **{
                **saved,
                "channel_mult": tuple(saved["channel_mult"]),
                "steps": steps,
                "minutes": minutes,
            }
        )
        cfg.data = meta["coarse"]["training"]["data"]
        main_path = ckpt_path
        data = data or [d["path"] for d in cfg.data]
    else:
        if ckpt_path.exists():
            raise IsingScaleError(
                f"{out} already holds a training run; use --resume or another --out"
            )
        if init is None:
            raise IsingScaleError(
                "--coarse trains the coarse stage of a SKILD checkpoint: give it with --init"
            )
        unknown = set(options) - set(CoarseConfig.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown coarse-stage option(s): {', '.join(sorted(unknown))}")
        cfg = CoarseConfig(
            **{
                **options,
                "steps": steps,
                "minutes": minutes,
                "init": {"path": str(Path(init).resolve()), "sha256": file_sha256(init)},
            }
        )
        main_path = init
    model = load_checkpoint(main_path, lattice="ising-periodic", task="skild", device=dev)
    main_meta = {k: v for k, v in model.meta.items() if k != "coarse"}
    main_tensors = {f"model.{k}": v for k, v in model.net.state_dict().items()}
    td = load_ising(data, main_meta)
    if resume and [p["sha256"] for p in td.provenance] != [p["sha256"] for p in cfg.data]:
        raise IsingScaleError("--resume: the data files differ from those the run was started with")
    if (
        td.T is not None
        and main_meta.get("T") is not None
        and abs(float(td.T) - float(main_meta["T"])) > 1e-9
    ):
        raise IsingScaleError(
            f"--init: the checkpoint was trained at T={main_meta['T']}, the data are at T={td.T}"
        )
    cfg.data = td.provenance
    _check(cfg, td.sizes)
    schedule, basis = model.schedule, model.basis
    s_top = schedule.s_max(cfg.size)
    w = torch.as_tensor(loss_weights(cfg.size), dtype=torch.float32, device=dev)
    torch.manual_seed(cfg.seed)
    net = UNet(cfg.model_config()).to(dev)
    net_ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    state = {"step": 0, "seen": 0}
    if resume:
        t = meta["coarse"]["training"]
        net.load_state_dict(
            {k[len("train.raw.") :]: v for k, v in tensors.items() if k.startswith("train.raw.")}
        )
        net_ema.load_state_dict(
            {k[len("coarse.") :]: v for k, v in tensors.items() if k.startswith("coarse.")}
        )
        restore_optimizer(opt, tensors, t["optimizer"])
        g.set_state(tensors["train.rng"])
        state.update(step=int(t["step"]), seen=int(t["samples_seen"]), seconds=float(t["seconds"]))
        _truncate_log(out / "loss.csv", state["step"])
    else:
        writable_dir(out)
    (out / "config.json").write_text(
        json.dumps(
            {
                **asdict(cfg),
                "device": str(dev),
                "sizes": td.sizes,
                "s_max": s_top,
                "parameters": count_parameters(net),
            },
            indent=1,
        )
    )
    amp = dev.type == "cuda"

    def save(path: Path, training: bool = False) -> None:
        meta = {**main_meta, "coarse": _coarse_meta(cfg, state)}
        extra = {}
        if training:  # the resumable state too
            opt_t, groups = optimizer_tensors(opt)
            meta["coarse"]["training"]["optimizer"] = groups
            extra = {
                **{f"train.raw.{k}": v for k, v in net.state_dict().items()},
                **opt_t,
                "train.rng": g.get_state(),
            }
        tensors = {
            **main_tensors,
            **{f"coarse.{k}": v for k, v in net_ema.state_dict().items()},
            **extra,
        }
        write_safetensors(path, tensors, meta)

    def step_once() -> float:
        # The lattice sizes in turn; every size gives a size x size band, so the batch is the same.
        N = td.size_at(state["step"])
        x = td.batch(cfg.batch, g, N)
        with torch.no_grad():
            y0 = band(model, x, cfg.size, g)
        s = cfg.s_min + draw_scales(cfg.batch, s_top - cfg.s_min, 1.0, g)
        eps = torch.randn(y0.shape, generator=g)
        lr_now = learning_rate(cfg, state["step"])
        for group in opt.param_groups:
            group["lr"] = lr_now
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = skild_loss(net, basis, schedule, y0.to(dev), s.to(dev), eps.to(dev), w)
        optimizer_step(loss, opt, net, net_ema, cfg, state["step"])
        state["step"] += 1
        state["seen"] += cfg.batch
        state["lr"] = lr_now
        return loss.item()

    _loop(
        cfg, out, DistContext(), state, step_once, lambda: save(ckpt_path, training=True), progress
    )
    final = out / "model.safetensors"
    save(final)
    return final
