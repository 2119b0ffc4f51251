"""Baseline test fixtures: one torch thread (2 shared cores), a small Monte Carlo ensemble."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def coarse_inputs(kind: str, n: int, B: int = 4, seed: int = 0) -> np.ndarray:
    """(B, n, n) coarse-grained ±1 lattices (4n x 4n, correlated over ~5 sites), spins or field."""
    from scipy.ndimage import uniform_filter

    from isingscale.skild.coarsen import block_spins, fourier_truncate

    noise = np.random.default_rng(seed).normal(size=(B, 4 * n, 4 * n))
    fine = np.where(uniform_filter(noise, size=(1, 5, 5), mode="wrap") >= 0, 1, -1).astype(np.int8)
    return block_spins(fine, 4) if kind == "block" else fourier_truncate(fine, n).numpy()


def assert_sampler_contract(fn, x: np.ndarray, N: int) -> np.ndarray:
    """fn(x, "block", N, generator=...): (B, N, N) int8 ±1, one output per seed, not per call."""
    a, b, c = (
        fn(x, "block", N, generator=torch.Generator().manual_seed(seed)) for seed in (0, 0, 1)
    )
    assert a.shape == (len(x), N, N) and a.dtype == np.int8 and set(np.unique(a)) <= {-1, 1}
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    return a


def untrained_cnn(factor: int = 2, seed: int = 0):
    from isingscale.baselines.cnn import CNNModel, CNNNet

    torch.manual_seed(seed)
    return CNNModel(CNNNet().eval(), {"factor": factor})


@pytest.fixture(scope="session")
def mc16(tmp_path_factory):
    """64 Wolff lattices at L = 16, Tc."""
    import isingscale

    out = tmp_path_factory.mktemp("mc") / "mc16.h5"
    path = isingscale.simulate(16, samples=64, seed=1, out=out, progress=False).path
    # numba's OpenMP layer shares the OpenMP runtime with torch and leaves it at
    # NUMBA_NUM_THREADS; two spinning torch threads cost ~30x CPU on the shared cores.
    torch.set_num_threads(1)
    return path
