"""CNN super-resolver after Efthymiou, Beach & Melko, PRB 99, 075113 (2019).

Majority-rule block spins (B, n, n) -> per-site probabilities p(s = +1) on (B, f n, f n)
-> spins drawn independently per site. The network: the input replicated f x f (nearest
neighbour), then ``layers`` periodic 3 x 3 convolutions (circular padding) with tanh between
them and a sigmoid at the end. No biases and an odd activation make the logit odd in the
input, so p(-x) = 1 - p(x): the Z2 spin-flip symmetry holds by construction. Training:
binary cross-entropy on pairs (block_spins(x, f), x) of Monte Carlo lattices x, with random
translations, 90° rotations and reflections of x before blocking, in the one training loop
of :mod:`isingscale.skild.loop` (plain Adam: no warm-up, EMA or clipping; resumable).

f = 2 is the native factor of the paper; ``factor=4`` trains a native ×4 network with the
same convolution stack on ×4-replicated input. ×4, ×8 from a ×2 network: :func:`cnn_upsample`
repeats it (spins of one stage are the block spins of the next);
:func:`isingscale.baselines.kernel_interp.cnn_ki_upsample` runs it in one pass instead.

Checkpoint (one ``.safetensors`` file, never pickle)::

    metadata["isingscale"]   JSON: format="isingscale-cnn", schema_version, task="cnn-sr",
                             lattice="ising-periodic", factor, L, T, model (CNNConfig),
                             parameters, training (config, step, seconds, lattices_seen,
                             last_loss: the final BCE, augmentation, versions, data: path,
                             sha256, n_samples of every file)
    model.<param>            conv weights
    train.*                  (training checkpoints) Adam moments, step, RNG
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import IsingScaleError
from ..io import file_sha256
from ..skild.checkpoint import write_safetensors
from ..skild.coarsen import block_spins
from ..skild.data import load_training_data, training_sources
from ..skild.loop import (
    LoopConfig,
    Task,
    check_field,
    distributed,
    resume_state,
    run,
    training_device,
)
from .inputs import check_coarse

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
            f"the ×{factor} CNN upsamples by powers of {factor} only (×{factor}, ×{factor**2}, "
            "...); "
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


def bce(net, fine: np.ndarray | torch.Tensor, factor: int, *, device="cpu") -> torch.Tensor:
    """Mean binary cross-entropy (nats per site) of p(fine | block_spins(fine, factor))."""
    fine = torch.as_tensor(np.asarray(fine))
    logits = net(replicate(block_spins(fine.numpy(), factor), factor).to(device))[:, 0]
    return nn.functional.binary_cross_entropy_with_logits(logits, (fine > 0).float().to(device))


@dataclass(frozen=True)
class CNNTrainConfig(LoopConfig):
    """Configuration of a CNN training run (stored in its checkpoints' ``training.config``).

    factor: the network's native factor (integer >= 2); channels, layers, kernel_size: the
    convolution stack (:class:`CNNConfig`). Plain Adam on the BCE: no warm-up, no EMA, no
    gradient clipping (the paper's recipe).
    """

    factor: int = 2
    channels: int = 16
    layers: int = 4
    kernel_size: int = 3
    lr: float = 3e-3
    warmup: int = 0
    ema: float | None = None
    grad_clip: float | None = None

    def __post_init__(self):
        super().__post_init__()
        ok = isinstance(self.factor, int) and not isinstance(self.factor, bool) and self.factor >= 2
        check_field(self, "factor", ok, "an integer >= 2")
        self.network()

    def network(self) -> CNNConfig:
        return CNNConfig(channels=self.channels, layers=self.layers, kernel_size=self.kernel_size)


def train_cnn(
    data,
    out,
    *,
    factor: int | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    **options,
) -> Path:
    """Train a ×factor CNN on Monte Carlo ensembles; returns RUNDIR/model.safetensors.

    data: ensemble files (one L, one T; L divisible by ``factor``, default 2). Stops after ``steps``
    or ``minutes`` (neither: DEFAULT_STEPS steps). Each step draws ``batch`` lattices,
    augments them, and minimises the BCE of p(x | block_spins(x, factor)); ``last_loss``
    in the checkpoint's training section is the mean BCE of the last ``log_every`` steps
    (nats per site). options: the other fields of :class:`CNNTrainConfig`. resume: continue
    RUNDIR/checkpoint.safetensors with its configuration (only the budget changes).
    """
    out = Path(out)
    resumed = resume_state(out, resume, _read)
    if resumed is not None:
        saved = resumed[0]["training"]["config"]
        given = {**options, **({"factor": factor} if factor is not None else {})}
        cfg = CNNTrainConfig.resumed(saved, given, steps, minutes)
    else:
        factor = 2 if factor is None else factor
        if int(factor) != factor:
            raise IsingScaleError(f"factor must be an integer >= 2, got {factor}")
        unknown = set(options) - set(CNNTrainConfig.__dataclass_fields__)
        if unknown:
            raise IsingScaleError(f"unknown CNN option(s): {', '.join(sorted(unknown))}")
        if steps is None and minutes is None:
            steps = DEFAULT_STEPS
        cfg = CNNTrainConfig(steps=steps, minutes=minutes, factor=int(factor), **options)
    with distributed(device) as ctx:
        dev = training_device(device, ctx)
        recorded = resumed[0]["training"]["data"] if resumed else None
        by_size, provenance, T = load_training_data(training_sources(data, recorded))
        if resumed and [p["sha256"] for p in provenance] != [p["sha256"] for p in recorded]:
            raise IsingScaleError(
                "--resume: the data files differ from those the run was started with"
            )
        task = _cnn_task(cfg, by_size, provenance, T, dev)
        return run(task, out, ctx=ctx, device=dev, resumed=resumed, progress=progress)


def _read(path):
    from ..skild.checkpoint import read_safetensors

    return read_safetensors(path, fmt=FORMAT, schema_version=SCHEMA_VERSION, what="CNN")


def _cnn_task(cfg: CNNTrainConfig, by_size: dict, provenance: list, T, dev) -> Task:
    """The CNN's parts of the training loop: BCE of fine lattices given their block spins."""
    if len(by_size) > 1:
        raise IsingScaleError(f"the CNN trains on one lattice size, got {sorted(by_size)}")
    ((L, spins),) = by_size.items()
    if L % cfg.factor:
        raise IsingScaleError(f"factor {cfg.factor} must divide the training lattice size L={L}")
    data = torch.as_tensor(spins)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)  # initial weights = CNNNet(config) after manual_seed(seed)
        net = CNNNet(cfg.network()).to(dev)

    def step_loss(call, step, g, ctx):
        B = cfg.batch * ctx.world
        idx = torch.randint(len(data), (B,), generator=g)
        fine = augment(data[idx], g)[ctx.part(cfg.batch)]
        return bce(call, fine, cfg.factor, device=dev), B

    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "task": TASK,
        "lattice": "ising-periodic",
        "factor": cfg.factor,
        "L": L,
        "T": T,
        "model": cfg.network().to_dict(),
        "parameters": sum(p.numel() for p in net.parameters()),
    }

    def write(path, sampling_net, training, train_tensors):
        tensors = {f"model.{k}": v for k, v in sampling_net.state_dict().items()}
        write_safetensors(
            Path(path), {**tensors, **(train_tensors or {})}, {**meta, "training": training}
        )

    provenance = {"data": provenance, "augmentation": AUGMENTATION}
    return Task(net, cfg, step_loss, write, provenance=provenance, info={"L": L, "T": T})


# ----------------------------------------------------------------------------
# Checkpoints.


def save_cnn(path, net: CNNNet, meta: dict) -> Path:
    """Write weights (``model.*``) and metadata atomically (temporary file + os.replace)."""
    write_safetensors(Path(path), {f"model.{k}": v for k, v in net.state_dict().items()}, meta)
    return Path(path)


def load_cnn(path) -> CNNModel:
    """Load a CNN checkpoint written by :func:`train_cnn` (CPU, eval mode); never unpickles."""
    path = Path(path)
    meta, tensors = _read(path)
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
