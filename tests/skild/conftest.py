"""SKILD test fixtures: one torch thread (2 shared cores), tiny checkpoints and ensembles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def gaussian_field(spectrum, N: int, B: int, seed: int = 0) -> torch.Tensor:
    """B samples of the Gaussian random field with spectrum S_N (orthonormal FFT)."""
    from isingscale.skild.process import Whitener

    g = torch.Generator().manual_seed(seed)
    return Whitener(spectrum).color(torch.randn(B, N, N, generator=g))


def write_spins(path, spins, **attrs):
    from isingscale.io import create_ensemble

    with create_ensemble(
        path, L=spins.shape[-1], kind="montecarlo", attrs={"T": 2.269185314213022, **attrs}
    ) as w:
        w.append(spins)
    return path


def random_spins(n: int, L: int, seed: int = 0) -> np.ndarray:
    """Smooth-ish ±1 lattices: signs of a power-law Gaussian field (cheap stand-in for Ising)."""
    from isingscale.skild.spectral import power_law_spectrum

    x = gaussian_field(power_law_spectrum(L), L, n, seed).numpy()
    return np.where(x >= 0, 1, -1).astype(np.int8)


def make_checkpoint(
    path,
    *,
    L: int = 16,
    lattice: str = "ising-periodic",
    base_channels: int = 8,
    depth: int = 3,
    seed: int = 0,
    colored_io: bool = True,
):
    """An untrained (zero-output) checkpoint with real metadata and block transfer functions
    (colored_io=False: the network of checkpoints written before colored I/O)."""
    from isingscale.skild.checkpoint import save_checkpoint
    from isingscale.skild.coarsen import measure_block_transfer
    from isingscale.skild.process import Schedule
    from isingscale.skild.spectral import estimate_spectrum
    from isingscale.skild.unet import UNet, UNetConfig

    torch.manual_seed(seed)
    spins = random_spins(256, L, seed)
    cfg = UNetConfig(
        base_channels=base_channels, depth=depth, channel_mult=(1, 2, 2, 2), colored_io=colored_io
    )
    meta = {
        "lattice": lattice,
        "L": L,
        "T": 2.269185314213022,
        "spectrum": estimate_spectrum(spins.astype(float), lattice=lattice).to_dict(),
        "schedule": Schedule(lattice=lattice).to_dict(),
        "model": cfg.to_dict(),
        "block_transfer": [measure_block_transfer(spins, b) for b in (2, 4)],
        "training": {"data": [], "note": "test fixture, untrained"},
    }
    return save_checkpoint(path, UNet(cfg), meta)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def spins_file(tmp_path_factory):
    return write_spins(tmp_path_factory.mktemp("data") / "spins16.h5", random_spins(64, 16, seed=1))
