"""Large lattices with default settings (slow): exact energy, U4 near U4*, resume at L = 512."""

import numpy as np
import pytest

from isingscale.constants import BINDER_CRITICAL
from isingscale.io import read_attrs, read_ensemble

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("L, samples", [(512, 400), (1024, 200)])
def test_defaults_match_exact_energy(run, L, samples):
    """Energy per site within 3 standard errors of Kaufman's value on the L x L torus; U4
    within 4 jackknife errors (+ 0.01 for finite size) of U4*; thermalization stationary and
    1-1.5 x the asked flipped spins per save."""
    r = run(L, samples=samples, seed=100 + L)
    z = (r.energy - r.energy_exact) / r.energy_error
    assert abs(z) < 3, r.summary()
    assert abs(r.binder - BINDER_CRITICAL) < 4 * r.binder_error + 0.01, r.summary()
    assert r.stationary and 1.0 <= r.flips_per_save / r.decorrelate <= 1.5, r.summary()
    assert abs(r.mean_cluster_size - r.n_m2) < 4 * r.n_m2_error, r.summary()


def test_resume_is_bit_identical_at_L512(run):
    full = run(512, samples=30, seed=7, name="full.h5")
    run(512, samples=11, seed=7, name="part.h5")
    part = run(512, samples=30, seed=7, name="part.h5", resume=True)
    a, b = read_ensemble(full.path), read_ensemble(part.path)
    for name in ("spins", "energy", "chain"):
        np.testing.assert_array_equal(a[name], b[name])
    assert read_attrs(part.path)["interval"] == read_attrs(full.path)["interval"]
    assert part.mean_cluster_size == full.mean_cluster_size
