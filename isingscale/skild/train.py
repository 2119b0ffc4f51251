"""Training loop: ε-prediction at random continuous s on whitened, augmented lattices.

The run directory holds::

    config.json                 resolved options, data provenance (paths, sha256)
    spectrum.json               the measured spectrum S(k) and its power-law fit
    loss.csv                    step, lattices, loss, lr, seconds (appended, flushed)
    checkpoint.safetensors      last training state (model, EMA, Adam, step, RNG), atomic
    model.safetensors           final EMA weights + metadata: the checkpoint to ship

Data order and augmentation come from one seeded torch generator whose state is
checkpointed, so N steps in one go and N/2 + --resume N/2 give bitwise the same weights
on CPU. Augmentations are exact symmetries of the periodic Ising ensemble: random
periodic translations, the 8 symmetries of the square, and the global spin flip.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import IsingScaleError
from .checkpoint import optimizer_tensors, read_checkpoint, restore_optimizer, save_checkpoint, sha256
from .coarsen import measure_block_transfer
from .process import Schedule, Whitener, loss_weights, skild_loss
from .spectral import estimate_spectrum
from .unet import UNet, UNetConfig, count_parameters


def resolve_device(device: str = "auto") -> torch.device:
    """auto -> cuda if available else cpu; an explicit 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise IsingScaleError("--device cuda requested but no CUDA GPU is available (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise IsingScaleError(f"unknown device {device!r}; expected auto, cpu or cuda")
    return torch.device(device)


@dataclass
class TrainConfig:
    base_channels: int = 16
    depth: int = 3
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    batch: int = 64
    steps: int | None = None  # total optimizer steps (None: use minutes)
    minutes: float | None = None  # wall-clock budget for this invocation
    lr: float = 1e-3
    warmup: int = 200  # linear learning-rate warm-up, steps
    ema: float = 0.999  # EMA decay per step (with the usual (1+t)/(10+t) warm-up)
    seed: int = 0
    width: float = 0.4  # logistic width of a_s(k), octaves
    alpha_bar_min: float = 1e-4  # ᾱ of every mode at s_max
    loss_power: float = 1.0  # low-mode weight w(k) ∝ |k|^-loss_power
    grad_clip: float = 1.0
    checkpoint_every: int = 500  # steps between training checkpoints (also every 5 minutes)
    log_every: int = 20  # steps per loss.csv row
    data: list = field(default_factory=list)

    def model_config(self) -> UNetConfig:
        return UNetConfig(base_channels=self.base_channels, depth=self.depth, channel_mult=tuple(self.channel_mult))


# ----------------------------------------------------------------------------
# Data.


def load_training_data(paths) -> tuple[np.ndarray, list[dict], float | None]:
    """All ±1 lattices of the given ensemble files (same L), their provenance, and T."""
    from ..io import check_spins, read_attrs, read_ensemble

    if not paths:
        raise IsingScaleError("no training data given (--data FILE.h5 ...)")
    arrays, prov, Ts = [], [], set()
    for p in paths:
        attrs = read_attrs(p)
        if "spins" not in attrs["datasets"] or attrs["n_samples"] == 0:
            raise IsingScaleError(f"{p} holds no ±1 'spins' to train on")
        spins = check_spins(read_ensemble(p, datasets=("spins",))["spins"], what=f"{p}: spins")
        if arrays and spins.shape[-1] != arrays[0].shape[-1]:
            raise IsingScaleError(f"{p} has L={spins.shape[-1]}, other data files have L={arrays[0].shape[-1]}")
        arrays.append(spins)
        T = attrs.get("T")
        Ts.add(None if T is None else round(float(T), 9))
        prov.append({"path": str(Path(p).resolve()), "sha256": sha256(p), "n_samples": int(len(spins)), "L": int(spins.shape[-1]), "T": T})
    if len(Ts) > 1:
        raise IsingScaleError(f"training files were simulated at different temperatures {sorted(Ts, key=str)}")
    return np.concatenate(arrays), prov, Ts.pop()


def augmented_batch(data: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """A batch of lattices with random translation, square symmetry and spin flip (float32)."""
    n, L, _ = data.shape
    idx = torch.randint(n, (batch,), generator=g)
    shift = torch.randint(L, (2, batch), generator=g)
    sym = torch.randint(8, (batch,), generator=g)
    flip = torch.randint(2, (batch,), generator=g) * 2 - 1
    r = torch.arange(L)
    iy = (r[None, :, None] + shift[0][:, None, None]) % L
    ix = (r[None, None, :] + shift[1][:, None, None]) % L
    x = data[idx[:, None, None], iy, ix].float()
    m = lambda bit: ((sym >> bit) & 1).bool()[:, None, None]  # noqa: E731
    x = torch.where(m(2), x.transpose(-1, -2), x)
    x = torch.where(m(1), x.flip(-1), x)
    x = torch.where(m(0), x.flip(-2), x)
    return x * flip[:, None, None]


# ----------------------------------------------------------------------------
# Training.


def _metadata(cfg: TrainConfig, spectrum, schedule, transfer, T, L, state: dict) -> dict:
    from .. import __version__

    return {
        "lattice": "ising-periodic",
        "L": L,
        "T": T,
        "spectrum": spectrum.to_dict(),
        "schedule": {**schedule.to_dict(), "s_max_train": schedule.s_max(L)},
        "model": cfg.model_config().to_dict(),
        "block_transfer": transfer,
        "training": {
            "data": cfg.data,
            "config": {k: v for k, v in asdict(cfg).items() if k != "data"},
            "step": state["step"],
            "lattices_seen": state["step"] * cfg.batch,
            "last_loss": state.get("loss"),
            "package_version": __version__,
            "torch_version": torch.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }


def _truncate_log(log: Path, step: int) -> None:
    """Drop loss.csv rows written after the checkpoint being resumed."""
    if not log.exists():
        return
    rows = list(csv.reader(log.open()))
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    with log.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


def train(
    data,
    out,
    *,
    base_channels: int = 16,
    depth: int = 3,
    channel_mult: tuple[int, ...] = (1, 2, 4, 4),
    batch: int = 64,
    steps: int | None = None,
    minutes: float | None = None,
    lr: float = 1e-3,
    ema: float = 0.999,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train a SKILD model on ±1 lattices; returns the path of the final model checkpoint.

    data: ensemble files (same L, same T). out: run directory. steps: total optimizer
    steps (counting those before a resume); minutes: wall-clock budget of this call; at
    least one must be given. Other options (width, alpha_bar_min, loss_power, warmup,
    grad_clip, checkpoint_every, log_every) are the fields of :class:`TrainConfig`.
    """
    if steps is None and minutes is None:
        raise IsingScaleError("give --steps or --minutes")
    out = Path(out)
    dev = resolve_device(device)
    ckpt_path = out / "checkpoint.safetensors"
    if resume:
        if not ckpt_path.exists():
            raise IsingScaleError(f"--resume: {out} holds no checkpoint.safetensors")
        meta, tensors = read_checkpoint(ckpt_path)
        saved = meta["training"]["config"]
        cfg = TrainConfig(**{**saved, "channel_mult": tuple(saved["channel_mult"]), "steps": steps, "minutes": minutes})
        cfg.data = meta["training"]["data"]
    else:
        if ckpt_path.exists():
            raise IsingScaleError(f"{out} already holds a training run; use --resume or another --out")
        unknown = set(options) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        cfg = TrainConfig(base_channels=base_channels, depth=depth, channel_mult=tuple(channel_mult), batch=batch,
                          steps=steps, minutes=minutes, lr=lr, ema=ema, seed=seed, **options)
    # Data, spectrum, block-spin transfer functions.
    spins, prov, T = load_training_data(data if not resume or data else [d["path"] for d in cfg.data])
    L = spins.shape[-1]
    if resume and [p["sha256"] for p in prov] != [p["sha256"] for p in cfg.data]:
        raise IsingScaleError("--resume: the data files differ from those the run was started with")
    cfg.data = prov
    net = UNet(cfg.model_config())
    net.check_size(L)
    if resume:
        spectrum_d, transfer = meta["spectrum"], meta["block_transfer"]
        from .spectral import Spectrum

        spectrum = Spectrum.from_dict(spectrum_d)
    else:
        sub = spins[: min(len(spins), 20000)]
        spectrum = estimate_spectrum(sub.astype(np.float64))
        transfer = [measure_block_transfer(sub, b) for b in (2, 4, 8) if L % b == 0 and L // b >= 4]
    schedule = Schedule(width=cfg.width, alpha_bar_min=cfg.alpha_bar_min)
    s_max = schedule.s_max(L)
    whitener = Whitener(spectrum)
    basis = whitener.basis
    w = torch.as_tensor(loss_weights(L, power=cfg.loss_power), dtype=torch.float32, device=dev)
    # Model, EMA, optimizer, RNG.
    torch.manual_seed(cfg.seed)
    net = UNet(cfg.model_config()).to(dev)
    net_ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    state = {"step": 0}
    if resume:
        net.load_state_dict({k[len("train.raw.") :]: v for k, v in tensors.items() if k.startswith("train.raw.")})
        net_ema.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizer(opt, tensors, meta["training"]["optimizer"])
        g.set_state(tensors["train.rng"])
        state["step"] = int(meta["training"]["step"])
        _truncate_log(out / "loss.csv", state["step"])
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise IsingScaleError(f"cannot create run directory {out}: {e.strerror}") from None
        if not os.access(out, os.W_OK):
            raise IsingScaleError(f"cannot write to {out}: permission denied")
        (out / "spectrum.json").write_text(json.dumps(spectrum.to_dict(), indent=1))
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "device": str(dev), "L": L, "T": T, "s_max": s_max,
                                                 "parameters": count_parameters(net)}, indent=1))
    data_t = torch.as_tensor(spins)
    amp = dev.type == "cuda"

    def net_call(y, s):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            return net(y, s)

    def checkpoint():
        opt_t, groups = optimizer_tensors(opt)
        meta = _metadata(cfg, spectrum, schedule, transfer, T, L, state)
        meta["training"]["optimizer"] = groups
        train_state = {**{f"train.raw.{k}": v for k, v in net.state_dict().items()}, **opt_t, "train.rng": g.get_state()}
        save_checkpoint(ckpt_path, net_ema, meta, train_state=train_state)

    log = (out / "loss.csv").open("a", newline="")
    writer = csv.writer(log)
    if log.tell() == 0:
        writer.writerow(["step", "lattices", "loss", "lr", "seconds"])
    t0 = t_ckpt = time.monotonic()
    bar = tqdm(total=cfg.steps, initial=state["step"], disable=not progress, desc="train", unit="step")
    loss_sum, loss_n, step0 = 0.0, 0, state["step"]
    try:
        while (cfg.steps is None or state["step"] < cfg.steps) and (
            cfg.minutes is None or time.monotonic() - t0 < 60.0 * cfg.minutes
        ):
            # One optimizer step on an augmented batch at random continuous scales.
            x = augmented_batch(data_t, cfg.batch, g)
            s = torch.rand(cfg.batch, generator=g) * s_max
            eps = torch.randn(x.shape, generator=g)
            x, s, eps = x.to(dev), s.to(dev), eps.to(dev)
            lr_now = cfg.lr * min(1.0, (state["step"] + 1) / max(cfg.warmup, 1))
            for group in opt.param_groups:
                group["lr"] = lr_now
            loss = skild_loss(net_call, basis, schedule, whitener.whiten(x), s, eps, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            # EMA update.
            d = min(cfg.ema, (1.0 + state["step"]) / (10.0 + state["step"]))
            with torch.no_grad():
                for p_ema, p in zip(net_ema.parameters(), net.parameters()):
                    p_ema.lerp_(p, 1.0 - d)
            state["step"] += 1
            loss_sum += loss.item()
            loss_n += 1
            if state["step"] % cfg.log_every == 0:
                state["loss"] = loss_sum / loss_n
                rate = (state["step"] - step0) * cfg.batch / max(time.monotonic() - t0, 1e-9)
                writer.writerow([state["step"], state["step"] * cfg.batch, f"{state['loss']:.6g}", f"{lr_now:.3g}",
                                 f"{time.monotonic() - t0:.1f}"])
                log.flush()
                bar.set_postfix(loss=f"{state['loss']:.4f}", lattices_per_s=f"{rate:.0f}")
                loss_sum, loss_n = 0.0, 0
            bar.update(1)
            if state["step"] % cfg.checkpoint_every == 0 or time.monotonic() - t_ckpt > 300:
                checkpoint()
                t_ckpt = time.monotonic()
    finally:
        bar.close()
        log.close()
        if state["step"] > step0:
            checkpoint()
    final = out / "model.safetensors"
    meta = _metadata(cfg, spectrum, schedule, transfer, T, L, state)
    save_checkpoint(final, net_ema, meta)
    return final
