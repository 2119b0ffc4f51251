"""Heat-bath sweeps against exact enumeration of the 4 x 4 torus (2^16 states)."""

import numpy as np
import pytest

from isingscale.constants import T_C
from isingscale.errors import IsingScaleError
from isingscale.exact import torus_energy
from isingscale.mc.heatbath import heatbath
from isingscale.skild import block_spins
from tests._stats import assert_within_sigma

L = 4
CHAINS = 20000


def _all_states() -> np.ndarray:
    bits = (np.arange(2 ** (L * L))[:, None] >> np.arange(L * L)) & 1
    return (2 * bits - 1).astype(np.int8).reshape(-1, L, L)


def _energy(s: np.ndarray) -> np.ndarray:
    s = s.astype(np.int64)
    return -(s * (np.roll(s, 1, -1) + np.roll(s, 1, -2))).sum(axis=(-2, -1)) / s.shape[-1] ** 2


@pytest.mark.parametrize("T", [T_C, 3.5])
def test_relaxes_to_the_exact_boltzmann_energy(T):
    """From all-up lattices, 60 sweeps reach the exact <E>/N of the torus (independent chains)."""
    out = heatbath(np.ones((CHAINS, L, L), np.int8), T, 60, seed=1)
    assert_within_sigma(
        _energy(out), torus_energy(L, T), n_sigma=4.0, what=f"E/N after heat-bath, T={T}"
    )


def test_conditional_on_a_block_image_is_exact():
    """With preserve_blocks=2 the chains sample Boltzmann restricted to one 2 x 2 majority image."""
    start = np.random.default_rng(5).choice(np.array([-1, 1], np.int8), size=(L, L))
    states = _all_states()
    image = block_spins(start[None], 2)[0]
    allowed = states[np.all(block_spins(states, 2) == image, axis=(1, 2))]
    e = _energy(allowed)
    w = np.exp(-(e - e.min()) * L * L / T_C)
    exact = float((w * e).sum() / w.sum())
    out = heatbath(np.repeat(start[None], CHAINS, axis=0), T_C, 40, seed=2, preserve_blocks=2)
    assert np.all(block_spins(out, 2) == image)
    assert len({o.tobytes() for o in out}) > 10  # the constraint leaves room to move
    assert_within_sigma(_energy(out), exact, n_sigma=4.0, what="E/N conditional on the block image")


@pytest.mark.parametrize("b", [2, 4])
def test_preserves_block_images_and_moves_spins(b):
    s = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(64, 16, 16))
    out = heatbath(s, T_C, 3, seed=0, preserve_blocks=b)
    np.testing.assert_array_equal(block_spins(out, b), block_spins(s, b))
    assert (out != s).mean() > 0.1


def test_is_reproducible_and_leaves_its_input_alone():
    s = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(8, 8, 8))
    before = s.copy()
    a, b = heatbath(s, T_C, 2, seed=3), heatbath(s, T_C, 2, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s, before)
    np.testing.assert_array_equal(heatbath(s, T_C, 0), s)
    assert heatbath(s[0], T_C, 1).shape == (8, 8)


@pytest.mark.parametrize(
    "spins, kw, match",
    [
        (np.ones((2, 6, 6)), {"preserve_blocks": 4}, "divisible by the block size 4"),
        (np.ones((2, 5, 5)), {}, "divisible by 2"),
        (np.zeros((2, 4, 4)), {}, "±1 spins"),
        (np.ones((2, 4, 8)), {}, "square"),
    ],
)
def test_bad_input_is_a_clear_error(spins, kw, match):
    with pytest.raises(IsingScaleError, match=match):
        heatbath(spins, T_C, 1, **kw)
