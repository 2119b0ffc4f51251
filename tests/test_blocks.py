"""Majority-rule block spins against a brute-force loop."""

import numpy as np
import pytest

from isingscale.blocks import block_spins


def _brute_image(s: np.ndarray, b: int) -> np.ndarray:
    B, L, _ = s.shape
    out = np.zeros((B, L // b, L // b), np.int8)
    for k in range(B):
        for i in range(L // b):
            for j in range(L // b):
                blk = s[k, i * b : (i + 1) * b, j * b : (j + 1) * b]
                out[k, i, j] = np.sign(blk.sum()) if blk.sum() else blk[0, 0]
    return out


@pytest.mark.parametrize("b", [2, 3, 4])
def test_block_spins_match_a_loop(b):
    s = np.random.default_rng(b).choice(np.array([-1, 1], np.int8), size=(5, 12, 12))
    np.testing.assert_array_equal(block_spins(s, b), _brute_image(s, b))
