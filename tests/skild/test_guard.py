"""The quality regression guard (fast suite): the shipped checkpoint passes, a degraded one fails.

What it checks (tests/skild/guard.py): ×4 super-resolution of Fourier-truncated 8 x 8 inputs of
512 stored L = 32 Wolff lattices at Tc, through the public API, compared lattice by lattice
with the lattices the inputs came from; every |ΔG2(r)/G2(r)|, r = 1 ... 4, below 2 % (r = 1 is
the energy per site). A refactor that breaks SKILD (whitening, schedule, embedding, sampler,
network) moves these by far more; the fixed-seed outputs (test_golden.py) catch any change
of numbers at all, this test whether a change of numbers is still a correct model.

Measured rates (tests/skild/test_guard_rates.py, ``pytest -m slow``; 512 lattices per run):

* correct model: the shipped checkpoint, 4 input sets (the stored one and three more Monte
  Carlo ensembles, seeds 24-26) x sampling seeds: relative deviations +0.3 ... +0.5 % with
  standard errors 0.19 % (r = 1) to 0.39 % (r = 4), so the 2 % tolerance is 4 or more
  standard errors away: no false alarm in RATES_CORRECT runs;
* a known shift, G2(r >= 1) and the energy multiplied by 0.97 (3 %) or 0.95 (5 %) by flipping
  each spin of a correct output with probability p, (1 - 2p)^2 = 0.97 or 0.95: detected in
  every run (RATES_SHIFT);
* a degraded network, the residual over the Gaussian denoiser scaled by 0.8 (the network's
  last convolution): G2 shifted by -3.2 % (r = 1) to -2.4 % (r = 4), detected; scaled by 0.5:
  -9 %.

Cost: about 40 s per 512-lattice run on 2 cores (the tests use both).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .guard import (
    MAX_SE,
    SAMPLES,
    TOLERANCE,
    paired_deviation,
    scaled_residual_checkpoint,
    stored_lattices,
    super_resolve,
    verdict,
)


@pytest.fixture
def two_threads():
    """CI has 2 cores; the rest of the SKILD tests use 1 thread each."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_shipped_checkpoint_passes_the_guard(tmp_path, two_threads):
    fine = stored_lattices(SAMPLES)
    dev = paired_deviation(super_resolve(fine, tmp_path, seed=0), fine)
    assert np.all(dev["G2_se"] < MAX_SE), f"the guard lost its resolution: SE {dev['G2_se']}"
    ok, why = verdict(dev)
    assert ok, f"the shipped checkpoint fails the regression guard: {why}"


def test_guard_fails_on_a_degraded_network(tmp_path, two_threads):
    from isingscale.skild import default_checkpoint

    fine = stored_lattices(SAMPLES // 2)  # the shift is large enough for half the lattices
    degraded = scaled_residual_checkpoint(default_checkpoint(), 0.8, tmp_path / "d.safetensors")
    dev = paired_deviation(super_resolve(fine, tmp_path, checkpoint=degraded, seed=0), fine)
    ok, why = verdict(dev)
    assert not ok and why.startswith("G2(1) -"), why  # less order, at the lattice scale first
    assert dev["G2"][0] < -TOLERANCE


def test_verdict_reads_every_r():
    dev = {"G2": np.array([0.001, -0.004, 0.0, 0.003]), "G2_se": np.full(4, 0.003)}
    assert verdict(dev) == (True, "ok")
    dev["G2"][3] = 0.025
    ok, why = verdict(dev)
    assert not ok and why == "G2(4) +2.50 ± 0.30 %"
