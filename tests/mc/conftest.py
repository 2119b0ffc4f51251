"""Fixtures for the Monte Carlo tests."""

import warnings

import pytest

from isingscale.mc.simulate import simulate


@pytest.fixture
def run(tmp_path):
    """simulate() into tmp_path with quiet defaults; returns the SimulationResult."""

    def _run(L, *, samples, name="run.h5", **kw):
        kw.setdefault("chains", 2)
        kw.setdefault("progress", False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return simulate(L, samples=samples, out=tmp_path / name, **kw)

    return _run
