"""CNN super-resolver after Efthymiou, Beach & Melko, PRB 99, 075113 (2019).

Majority-rule block spins (B, n, n) -> per-site probabilities p(s = +1) on (B, f n, f n)
-> spins drawn independently per site. The network: the input replicated f x f (nearest
neighbour), then ``layers`` periodic 3 x 3 convolutions (circular padding) with tanh between
them and a sigmoid at the end. No biases and an odd activation make the logit odd in the
input, so p(-x) = 1 - p(x): the Z2 spin-flip symmetry holds by construction. Training:
binary cross-entropy on pairs (block_spins(x, f), x) of Monte Carlo lattices x, with random
translations, 90° rotations and reflections of x before blocking.

f = 2 is the native factor of the paper; ``factor=4`` trains a native ×4 network with the
same convolution stack on ×4-replicated input. ×4, ×8 from a ×2 network: :func:`cnn_upsample`
repeats it (spins of one stage are the block spins of the next);
:func:`isingscale.baselines.kernel_interp.cnn_ki_upsample` runs it in one pass instead.

Checkpoint (one ``.safetensors`` file, never pickle)::

    metadata["isingscale"]   JSON: format="isingscale-cnn", schema_version, task="cnn-sr",
                             lattice="ising-periodic", factor, L, T, model (CNNConfig),
                             parameters, package_version, training (steps, seconds,
                             lattices_seen, final_bce, batch, lr, seed, augmentation,
                             data: path, sha256, n_samples of every file)
    model.<param>            conv weights
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import IsingScaleError
from ..io import check_spins, file_sha256, package_version, read_attrs, read_ensemble
from ._inputs import check_coarse

FORMAT = "isingscale-cnn"
TASK = "cnn-sr"
SCHEMA_VERSION = 1
DEFAULT_STEPS = 2000
AUGMENTATION = (
    "random translations, 90° rotations and reflections of the fine lattice before blocking"
)

# ----------------------------------------------------------------------------
# The network.


@dataclass(frozen=True)
class CNNConfig:
    """Convolution stack: ``layers`` k x k periodic convolutions, ``channels`` wide inside."""

    channels: int = 16
    layers: int = 4
    kernel_size: int = 3

    def __post_init__(self):
        if self.channels < 1 or self.layers < 2:
            raise IsingScaleError(
                f"CNN needs channels >= 1 and layers >= 2, got {self.channels}, {self.layers}"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise IsingScaleError(
                f"CNN kernel_size must be odd and positive, got {self.kernel_size}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CNNConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class CNNNet(nn.Module):
    """Replicated coarse spins (B, 1, N, N) -> logits of p(s = +1), (B, 1, N, N); odd in x."""

    def __init__(self, config: CNNConfig = CNNConfig()):
        super().__init__()
        self.config = config
        widths = [1] + [config.channels] * (config.layers - 1) + [1]
        k = config.kernel_size
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, k, padding=k // 2, padding_mode="circular", bias=False)
            for a, b in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = torch.tanh(conv(x))
        return self.convs[-1](x)


@dataclass
class CNNModel:
    """A loaded CNN checkpoint: network (eval mode) and metadata."""

    net: CNNNet
    meta: dict
    path: Path | None = None
    sha256: str | None = None

    @property
    def factor(self) -> int:
        return int(self.meta["factor"])


def replicate(coarse: np.ndarray | torch.Tensor, factor: int) -> torch.Tensor:
    """(B, n, n) -> (B, 1, f n, f n) float32, each coarse site copied onto its f x f block."""
    x = torch.as_tensor(np.asarray(coarse), dtype=torch.float32)
    return x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)[:, None]


@torch.no_grad()
def cnn_probabilities(net: nn.Module, coarse: np.ndarray, factor: int) -> np.ndarray:
    """p(s = +1) on (B, f n, f n), float32, for block spins (B, n, n); batched by memory."""
    device = next(net.parameters()).device
    chunk = max(1, (1 << 20) // (factor * coarse.shape[-1]) ** 2)
    out = [
        torch.sigmoid(net(replicate(coarse[i : i + chunk], factor).to(device)))[:, 0].cpu()
        for i in range(0, len(coarse), chunk)
    ]
    return torch.cat(out).numpy()


def sample_spins(p: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Independent spins with p(s = +1) = p, as int8 ±1."""
    u = torch.rand(p.shape, generator=generator, dtype=torch.float32).numpy()
    return np.where(u < p, 1, -1).astype(np.int8)


# ----------------------------------------------------------------------------
# Super-resolution.


def repeats(n: int, N: int, factor: int) -> int:
    """K with N = factor**K n, or IsingScaleError."""
    K, m = 0, n
    while m < N:
        m, K = m * factor, K + 1
    if m != N:
        raise IsingScaleError(
            f"the ×{factor} CNN upsamples by powers of {factor} only (×{factor}, ×{factor**2}, ...); "
            f"got N/n = {N}/{n} = {N / n:g}"
        )
    return K


def check_block_kind(kind: str) -> None:
    if kind == "fourier":
        raise IsingScaleError(
            "the CNN baseline takes block spins (kind='block'), not Fourier-coarsened fields"
        )


def cnn_upsample(
    model: CNNModel, coarse, kind: str, N: int, *, generator: torch.Generator
) -> np.ndarray:
    """Block spins (B, n, n) -> sampled spins (B, N, N) int8, N = factor**K n (K stages)."""
    check_block_kind(kind)
    s = check_coarse(coarse, kind, N).astype(np.int8)
    for _ in range(repeats(s.shape[-1], N, model.factor)):
        s = sample_spins(cnn_probabilities(model.net, s, model.factor), generator)
    return s


# ----------------------------------------------------------------------------
# Training.


def _training_data(paths) -> tuple[np.ndarray, int, float, list[dict]]:
    """(spins (M, L, L) int8, L, T, provenance) from Monte Carlo ensemble files of one L and T."""
    if not paths:
        raise IsingScaleError("train_cnn: no data files given")
    blocks, prov, sizes, temps = [], [], set(), set()
    for p in map(Path, paths):
        attrs = read_attrs(p)
        if "spins" not in attrs["datasets"]:
            raise IsingScaleError(f"{p} has no ±1 'spins' dataset to train on")
        blocks.append(
            check_spins(read_ensemble(p, datasets=("spins",))["spins"], what=f"spins in {p}")
        )
        sizes.add(int(attrs["L"]))
        temps.add(float(attrs.get("T", math.nan)))
        prov.append(
            {
                "path": str(p.resolve()),
                "sha256": file_sha256(p),
                "n_samples": int(attrs["n_samples"]),
            }
        )
    if len(sizes) > 1 or len(temps) > 1:
        raise IsingScaleError(
            f"train_cnn: the data files differ in L or T ({sorted(sizes)}, {sorted(temps)})"
        )
    spins = np.concatenate(blocks)
    if not len(spins):
        raise IsingScaleError("train_cnn: the data files hold no lattices")
    return spins, sizes.pop(), temps.pop(), prov


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translation and dihedral transformation of each lattice in (B, L, L)."""
    B, L = x.shape[0], x.shape[-1]
    shift = torch.randint(L, (2, B, 1), generator=generator)
    i, j = (torch.arange(L) + shift) % L
    x = x[torch.arange(B)[:, None, None], i[:, :, None], j[:, None, :]]
    t, fy, fx = (torch.rand(3, B, 1, 1, generator=generator) < 0.5).unbind(0)
    x = torch.where(t, x.transpose(-2, -1), x)
    x = torch.where(fy, x.flip(-2), x)
    return torch.where(fx, x.flip(-1), x)


def bce(net: nn.Module, fine: np.ndarray | torch.Tensor, factor: int) -> torch.Tensor:
    """Mean binary cross-entropy (nats per site) of p(fine | block_spins(fine, factor))."""
    from ..skild.coarsen import block_spins

    fine = torch.as_tensor(np.asarray(fine))
    logits = net(replicate(block_spins(fine.numpy(), factor), factor))[:, 0]
    return nn.functional.binary_cross_entropy_with_logits(logits, (fine > 0).float())


def _run_steps(net, spins, factor, *, steps, minutes, batch, lr, generator, progress):
    """Adam on BCE until ``steps`` or ``minutes``; returns (steps done, seconds, losses)."""
    from tqdm.auto import tqdm

    data = torch.as_tensor(spins)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    bar = tqdm(total=steps, disable=not progress, desc="train cnn", unit="step")
    losses, t0, step = [], time.perf_counter(), 0
    while (steps is None or step < steps) and (
        minutes is None or time.perf_counter() - t0 < 60 * minutes
    ):
        idx = torch.randint(len(data), (batch,), generator=generator)
        loss = bce(net, augment(data[idx], generator), factor)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step % 10 == 0:
            rate = step * batch / (time.perf_counter() - t0)
            bar.set_postfix(bce=f"{np.mean(losses[-10:]):.4f}", lattices_s=f"{rate:.0f}")
    bar.close()
    return step, time.perf_counter() - t0, losses


def train_cnn(
    data,
    out,
    *,
    factor: int = 2,
    steps: int | None = None,
    minutes: float | None = None,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    config: CNNConfig | None = None,
    progress: bool = True,
) -> Path:
    """Train a ×factor CNN on Monte Carlo ensembles and write it to ``out`` (.safetensors).

    data: ensemble files (one L, one T; L divisible by ``factor``). Stops after ``steps``
    or ``minutes``, whichever comes first (neither: 2000 steps). Each step draws ``batch``
    lattices, augments them, and minimises the BCE of p(x | block_spins(x, factor)).
    final_bce in the metadata is the mean over the last 20 steps (nats per site).
    """
    if int(factor) != factor or factor < 2:
        raise IsingScaleError(f"factor must be an integer >= 2, got {factor}")
    spins, L, T, provenance = _training_data(data)
    if L % factor:
        raise IsingScaleError(f"factor {factor} must divide the training lattice size L={L}")
    if steps is None and minutes is None:
        steps = DEFAULT_STEPS
    config = config or CNNConfig()
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # initial weights = CNNNet(config) after torch.manual_seed(seed)
        net = CNNNet(config)
    done, seconds, losses = _run_steps(
        net,
        spins,
        int(factor),
        steps=steps,
        minutes=minutes,
        batch=batch,
        lr=lr,
        generator=g,
        progress=progress,
    )
    training = {
        "steps": done,
        "seconds": round(seconds, 2),
        "lattices_seen": done * batch,
        "final_bce": float(np.mean(losses[-20:])) if losses else None,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "augmentation": AUGMENTATION,
        "data": provenance,
    }
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "task": TASK,
        "lattice": "ising-periodic",
        "factor": int(factor),
        "L": L,
        "T": T,
        "model": config.to_dict(),
        "parameters": sum(p.numel() for p in net.parameters()),
        "package_version": package_version(),
        "training": training,
    }
    return save_cnn(out, net, meta)


# ----------------------------------------------------------------------------
# Checkpoints.


def save_cnn(path, net: CNNNet, meta: dict) -> Path:
    """Write weights (``model.*``) and metadata atomically (temporary file + os.replace)."""
    from ..skild.checkpoint import write_safetensors

    write_safetensors(Path(path), {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    return Path(path)


def load_cnn(path) -> CNNModel:
    """Load a CNN checkpoint written by :func:`train_cnn` (CPU, eval mode); never unpickles."""
    path = Path(path)
    from ..skild.checkpoint import read_safetensors

    meta, tensors = read_safetensors(path, fmt=FORMAT, schema_version=SCHEMA_VERSION, what="CNN")
    try:
        net = CNNNet(CNNConfig.from_dict(meta["model"]))
        net.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        int(meta["factor"])
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        why = type(e).__name__
        raise IsingScaleError(
            f"{path}: CNN checkpoint is incomplete or does not match its config ({why})"
        ) from None
    return CNNModel(net.eval(), meta, path=path, sha256=file_sha256(path))
