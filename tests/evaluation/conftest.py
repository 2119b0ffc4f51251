"""Evaluation-harness fixtures: one small Monte Carlo file (L = 16) shared by the tests,
and registered test methods that are removed again afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

L = 16
HALF = 80  # lattices per half of the data file: inputs, then reference


@pytest.fixture(scope="session")
def truth_file(tmp_path_factory):
    """2 x 80 Wolff lattices at L = 16, Tc (seed 7): first half inputs, second half reference."""
    from isingscale.mc.simulate import simulate

    path = tmp_path_factory.mktemp("truth") / "mc_L16.h5"
    simulate(L, samples=2 * HALF, seed=7, chains=2, thermalize=500, out=path, progress=False)
    return path


@pytest.fixture(scope="session")
def reference_spins(truth_file):
    from isingscale.io import read_ensemble

    return read_ensemble(truth_file, start=HALF, stop=2 * HALF)["spins"]


@pytest.fixture
def registered():
    """register(name, fn, ...) for one test; every method registered through it is removed after."""
    from isingscale.evaluation import register, unregister

    names = []

    def add(name, fn, **kw):
        names.append(name)
        return register(name, fn, replace=True, **kw)

    yield add
    for name in names:
        unregister(name)


def replicate(coarse, kind, N, *, generator):
    """Block replication of the signs (a stand-in that needs no baseline module)."""
    s = np.where(np.asarray(coarse) >= 0, 1, -1).astype(np.int8)
    b = N // s.shape[-1]
    return np.repeat(np.repeat(s, b, axis=-1), b, axis=-2)
