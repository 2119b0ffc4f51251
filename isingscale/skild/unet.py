"""The SKILD network: a fully convolutional UNet, conditioned on the scale s only.

Properties the maths relies on (docs/design.md, "The network"), each tested:

* fully convolutional with circular padding (periodic lattices; reflect for DCT images),
  so it runs at any N divisible by 2**depth and commutes with periodic translations by
  multiples of 2**depth (the pooling grid); no positional input of any kind;
* odd under the spin flip, f(-y) = -f(y), by construction: convolutions and linear maps
  carry no bias, the activation is odd (y tanh|y|), group normalisation has a scale but
  no shift, and s enters only multiplicatively. The magnetisation therefore cannot drift
  (a per-pixel output bias b would be N·b in the zero mode);
* a global path at the bottleneck (spatial mean -> MLP -> broadcast), so the zero mode
  and the largest scales see the whole lattice whatever N is;
* images (lattice type "image-dct", ``channels`` 1 or 3) keep the same network with
  reflecting padding. Oddness there means p(x) = p(-x) about the per-channel dataset mean
  (a photographic negative about the mean colour is as likely as the image). That is not
  an exact symmetry of natural images, but the Gaussian (spectral) part of the model is
  exactly odd anyway and the constraint keeps the zero mode (mean brightness) from
  drifting; kept deliberately, so one network serves both data types;
* the output convolution starts at zero, so an untrained network is the Gaussian
  Bayes-optimal denoiser (see process.py);
* colored I/O (``colored_io``, the architecture of every new network): the network also
  sees the field in data units, x_s = color(y_s) (for
  Ising, spin units: near s = 0 it is the ±1 lattice itself), as a second input channel,
  and a second output channel u, written in data units, is whitened and added:
  v̂ = o + whiten(u). A correction that is local in spins (E[x_0 | x_s] near the sign of
  x_s) then needs no long-range kernel to undo the whitening. Both maps are linear and
  diagonal in k, so oddness and periodic translation equivariance are kept, and a zero
  output is still the Gaussian optimum. The network needs the spectrum's Whitener
  (:meth:`UNet.set_whitener`; a loaded :class:`~isingscale.skild.checkpoint.SkildModel`
  attaches it). Checkpoints written before it was the default record ``colored_io: false``
  (or nothing) and load and run as they were trained. Networks that work on something other
  than the whitened field of one spectrum (the coarse stage's band, the SR3 baseline's pixel
  space) set it to False.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import IsingScaleError


@dataclass(frozen=True)
class UNetConfig:
    base_channels: int = 32
    depth: int = 3  # number of 2x poolings; N must be divisible by 2**depth
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)  # channels per level = base * mult (depth + 1)
    blocks: int = 1  # residual blocks per level
    padding: str = "circular"  # "circular" (ising-periodic) or "reflect" (image-dct)
    s_scale: float = 8.0  # s is embedded as s / s_scale
    channels: int = 1  # field channels: 1 (Ising, grey; input (B, N, N)) or 3 (RGB, (B, 3, N, N))
    cond_channels: int = 0  # extra input channels (the SR3 baseline's coarse lattice)
    colored_io: bool = True  # also see and write the field in data units (needs set_whitener)

    def __post_init__(self):
        if self.base_channels < 4 or self.base_channels % 4:
            raise IsingScaleError(
                f"base_channels must be a positive multiple of 4, got {self.base_channels}"
            )
        if self.channels < 1:
            raise IsingScaleError(f"channels must be at least 1, got {self.channels}")
        if self.cond_channels < 0:
            raise IsingScaleError(f"cond_channels must be non-negative, got {self.cond_channels}")
        if self.depth < 1:
            raise IsingScaleError(f"depth must be at least 1, got {self.depth}")
        if len(self.channel_mult) < self.depth + 1:
            mult = tuple(self.channel_mult) + (self.channel_mult[-1],) * (
                self.depth + 1 - len(self.channel_mult)
            )
            object.__setattr__(self, "channel_mult", mult)
        object.__setattr__(
            self, "channel_mult", tuple(int(m) for m in self.channel_mult[: self.depth + 1])
        )

    def check_size(self, N: int) -> None:
        """Sizes this network takes: multiples of 2**depth."""
        m = 2**self.depth
        if N % m or N < m:
            raise IsingScaleError(
                f"this network takes lattice sizes divisible by {m} (depth {self.depth}); got {N}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        """A checkpoint's model config. One without ``colored_io`` predates it: False."""
        if int(d.get("head_blocks", 0)):
            raise IsingScaleError(
                "this checkpoint's network has full-resolution head blocks, an experiment this "
                "version no longer runs (data/README.md records its results)"
            )
        d = {"colored_io": False, **{k: v for k, v in d.items() if k in cls.__dataclass_fields__}}
        if "channel_mult" in d:
            d["channel_mult"] = tuple(d["channel_mult"])
        return cls(**d)


def odd_act(x: torch.Tensor) -> torch.Tensor:
    """x tanh|x|: smooth, odd, ~x|x| near 0 and ~x for large |x|."""
    if torch.is_grad_enabled():
        return x * torch.tanh(x.abs())
    return x.abs().tanh_().mul_(x)  # sampling: the same numbers, without two temporaries


class OddGroupNorm(nn.Module):
    """GroupNorm with a per-channel scale and no shift, hence odd: GN(-x) = -GN(x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.groups = math.gcd(8, channels)
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        return nn.functional.group_norm(x, self.groups, eps=1e-5) * self.weight[:, None, None]


class PeriodicConv2d(nn.Conv2d):
    """Bias-free convolution on a torus: wrap-around padding by concatenation.

    Same result as ``padding_mode="circular"``, but ~1.3x faster to train on CPU: the
    backward of ``cat`` is slicing, while that of ``F.pad(mode="circular")`` zero-fills and
    copies a padded gradient per layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.kernel_size[0] // 2
        if p:
            x = torch.cat([x[..., -p:, :], x, x[..., :p, :]], dim=-2)
            x = torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)
        return nn.functional.conv2d(x, self.weight)


def conv(cin: int, cout: int, k: int, padding: str) -> nn.Conv2d:
    if padding == "circular":
        return PeriodicConv2d(cin, cout, k, bias=False)
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode=padding, bias=False)


class ResBlock(nn.Module):
    """Pre-norm residual block, (f(x) + skip(x)) / √2, with s as a per-channel gain inside f."""

    def __init__(self, cin: int, cout: int, emb: int, padding: str):
        super().__init__()
        self.norm1, self.conv1 = OddGroupNorm(cin), conv(cin, cout, 3, padding)
        self.scale = nn.Linear(emb, cout)  # s -> multiplicative modulation (keeps oddness)
        self.norm2, self.conv2 = OddGroupNorm(cout), conv(cout, cout, 3, padding)
        self.skip = conv(cin, cout, 1, padding) if cin != cout else nn.Identity()
        nn.init.zeros_(self.scale.weight)
        nn.init.zeros_(self.scale.bias)

    def forward(self, x, e):
        h = self.conv1(odd_act(self.norm1(x)))
        h = h * (1.0 + self.scale(e))[:, :, None, None]
        h = self.conv2(odd_act(self.norm2(h)))
        return (h + self.skip(x)) / math.sqrt(2.0)


class GlobalBlock(nn.Module):
    """Spatial mean -> bias-free MLP -> broadcast: a global path whatever the lattice size."""

    def __init__(self, channels: int, emb: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, 2 * channels, bias=False)
        self.fc2 = nn.Linear(2 * channels, channels, bias=False)
        self.scale = nn.Linear(emb, 2 * channels)
        nn.init.zeros_(self.scale.weight)
        nn.init.zeros_(self.scale.bias)

    def forward(self, x, e):
        g = odd_act(self.fc1(x.mean(dim=(-2, -1))) * (1.0 + self.scale(e)))
        return x + self.fc2(g)[:, :, None, None]


class ScaleEmbedding(nn.Module):
    """Sinusoidal features of s / s_scale -> MLP (biases are fine: s is not the field)."""

    def __init__(self, dim: int, s_scale: float):
        super().__init__()
        self.s_scale = s_scale
        self.register_buffer(
            "freqs", torch.exp(torch.linspace(0.0, math.log(100.0), dim // 2)), persistent=False
        )
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s):
        z = (s.float() / self.s_scale)[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([torch.sin(z), torch.cos(z)], dim=1))


class UNet(nn.Module):
    """v̂ = net(y_s, s): (B, N, N) whitened field and (B,) scales -> (B, N, N).

    With ``channels`` C > 1 (RGB images) fields are (B, C, N, N) in and out; a
    single-channel network also takes (B, 1, N, N) and then returns that shape.
    With ``cond_channels`` > 0 (the SR3 baseline, :mod:`isingscale.baselines.sr3`)
    ``cond`` (B, cond_channels, N, N) is concatenated to the input channels.
    """

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = c = config
        ch = [c.base_channels * m for m in c.channel_mult]
        emb = 4 * c.base_channels
        self.embed = ScaleEmbedding(emb, c.s_scale)
        io = c.channels * (2 if c.colored_io else 1)
        self.whitener = None  # the spectrum's Whitener, for colored_io (set_whitener)
        self.inp = conv(io + c.cond_channels, ch[0], 3, c.padding)
        self.down = nn.ModuleList()
        for i in range(c.depth + 1):
            cin = ch[max(i - 1, 0)]
            self.down.append(
                nn.ModuleList(
                    [
                        ResBlock(cin if j == 0 else ch[i], ch[i], emb, c.padding)
                        for j in range(c.blocks)
                    ]
                )
            )
        self.mid1 = ResBlock(ch[-1], ch[-1], emb, c.padding)
        self.glob = GlobalBlock(ch[-1], emb)
        self.mid2 = ResBlock(ch[-1], ch[-1], emb, c.padding)
        self.up = nn.ModuleList()
        for i in reversed(range(c.depth + 1)):
            cin = ch[min(i + 1, c.depth)] + ch[i]
            self.up.append(
                nn.ModuleList(
                    [
                        ResBlock(cin if j == 0 else ch[i], ch[i], emb, c.padding)
                        for j in range(c.blocks)
                    ]
                )
            )
        self.out_norm = OddGroupNorm(ch[0])
        self.out = conv(ch[0], io, 3, c.padding)
        nn.init.zeros_(self.out.weight)
        # NHWC kernels are ~1.2x faster for these narrow convolutions on CPU and GPU alike.
        self.to(memory_format=torch.channels_last)

    def check_size(self, N: int) -> None:
        self.config.check_size(N)

    def forward(
        self, y: torch.Tensor, s: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.check_size(y.shape[-1])
        if y.shape[-1] != y.shape[-2]:
            raise IsingScaleError(f"lattices must be square, got {tuple(y.shape[-2:])}")
        s = torch.as_tensor(s, dtype=torch.float32, device=y.device).expand(y.shape[0])
        e = self.embed(s)
        squeeze = y.ndim == 3
        if squeeze:
            y = y[:, None]
        if y.shape[1] != self.config.channels:
            raise IsingScaleError(
                f"this network takes {self.config.channels} channel(s), got {y.shape[1]}"
            )
        if (cond is None) != (self.config.cond_channels == 0):
            raise IsingScaleError(
                f"this network takes {self.config.cond_channels} conditioning channel(s)"
            )
        inputs = [y]
        if self.config.colored_io:
            inputs.append(self._colored().color(y.float()).to(y.dtype))
        if cond is not None:
            inputs.append(cond.to(y.dtype))
        h = self.inp(torch.cat(inputs, dim=1).to(self.inp.weight.dtype))
        skips = []
        for i, blocks in enumerate(self.down):
            if i > 0:
                h = nn.functional.avg_pool2d(h, 2)
            for block in blocks:
                h = block(h, e)
            skips.append(h)
        h = self.mid2(self.glob(self.mid1(h, e), e), e)
        for i, blocks in enumerate(self.up):
            if i > 0:
                h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, e)
        out = self.out(odd_act(self.out_norm(h)))
        if self.config.colored_io:
            C = self.config.channels
            out = out[:, :C] + self._colored().whiten(out[:, C:].float()).to(out.dtype)
        return out[:, 0] if squeeze else out

    def set_whitener(self, whitener) -> UNet:
        """Attach the spectrum's :class:`~isingscale.skild.process.Whitener` (for colored I/O)."""
        self.whitener = whitener
        return self

    def _colored(self):
        if self.whitener is None:
            raise IsingScaleError(
                "this network also works in data units (colored_io); attach its spectrum with "
                "set_whitener (load_checkpoint does)"
            )
        return self.whitener


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
