"""The regression guard's error rates, measured (slow): false alarms and detection.

    pytest -m slow tests/skild/test_guard_rates.py -s     # about 8 minutes on 2 free cores

Correct model: the shipped checkpoint on four input sets (the stored lattices and three more
Wolff ensembles of 512 lattices, seeds 24-26, explicit settings) with two sampling seeds each:
8 runs, none may fail the guard. Known shifts: each correct run's outputs with every spin
flipped independently with probability p, which multiplies G2(r >= 1) (and the energy) by
(1 - 2p)^2 exactly in expectation: 0.97 and 0.95 (a 3 % and a 5 % shift down); the same flips
applied to the reference lattices instead shift the ratio up by 1/0.97 and 1/0.95. Three flip
seeds per run and shift: every one must be detected. A degraded network (the residual scaled
by 0.8) must be detected too. The table printed with -s is what test_guard.py's docstring
quotes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from .guard import (
    SAMPLES,
    paired_deviation,
    scaled_residual_checkpoint,
    stored_lattices,
    super_resolve,
    verdict,
)

pytestmark = pytest.mark.slow

MC_SEEDS = (23, 24, 25, 26)  # 23: the stored lattices
SAMPLING_SEEDS = (0, 1)
SHIFTS = (0.97, 0.95)
FLIP_SEEDS = (0, 1, 2)


def fine_lattices(seed: int, workdir) -> np.ndarray:
    import isingscale as isc

    if seed == 23:
        return stored_lattices(SAMPLES)
    res = isc.simulate(
        32,
        samples=SAMPLES,
        seed=seed,
        chains=2,
        thermalize=2000,
        decorrelate=2.0,
        schedule="calibrated",
        out=workdir / f"mc{seed}.h5",
        overwrite=True,
        progress=False,
    )
    return isc.read_ensemble(res.path, datasets=("spins",))["spins"]


def flipped(spins: np.ndarray, factor: float, seed: int) -> np.ndarray:
    """Each spin flipped with probability p, (1 - 2p)^2 = factor: G2(r >= 1) times factor."""
    p = (1.0 - math.sqrt(factor)) / 2.0
    flip = np.random.default_rng(seed).random(spins.shape) < p
    return np.where(flip, -spins, spins).astype(np.int8)


@pytest.fixture(scope="module")
def correct_runs(tmp_path_factory):
    torch.set_num_threads(2)
    work = tmp_path_factory.mktemp("rates")
    runs = []
    for mc_seed in MC_SEEDS:
        fine = fine_lattices(mc_seed, work)
        for seed in SAMPLING_SEEDS:
            out = super_resolve(fine, work, seed=seed, name=f"ok{mc_seed}_{seed}")
            runs.append((mc_seed, seed, fine, out))
    return runs


def _line(what: str, dev: dict) -> str:
    ok, why = verdict(dev)
    devs = ", ".join(f"{100 * v:+.2f}" for v in dev["G2"])
    ses = ", ".join(f"{100 * v:.2f}" for v in dev["G2_se"])
    return f"{what:<28} G2(1..4) {devs} % (SE {ses} %): {'pass' if ok else 'FAIL ' + why}"


def test_no_false_alarm_on_the_correct_model(correct_runs):
    results = []
    for mc_seed, seed, fine, out in correct_runs:
        dev = paired_deviation(out, fine)
        results.append(verdict(dev)[0])
        print(_line(f"correct, MC {mc_seed}, seed {seed}", dev))
    print(f"false alarms: {results.count(False)} of {len(results)}")
    assert all(results)


@pytest.mark.parametrize("factor", SHIFTS)
def test_known_shifts_are_detected_both_ways(correct_runs, factor):
    detected, total = 0, 0
    for mc_seed, seed, fine, out in correct_runs:
        for flip_seed in FLIP_SEEDS:
            down = paired_deviation(flipped(out, factor, flip_seed), fine)
            up = paired_deviation(out, flipped(fine, factor, flip_seed))
            for what, dev in (("down", down), ("up", up)):
                total += 1
                detected += not verdict(dev)[0]
                if flip_seed == 0:
                    print(_line(f"{1 - factor:.0%} {what}, MC {mc_seed}, seed {seed}", dev))
    print(f"shift {1 - factor:.0%}: detected {detected} of {total}")
    assert detected == total


def test_degraded_network_is_detected(tmp_path):
    from isingscale.skild import default_checkpoint

    torch.set_num_threads(2)
    fine = stored_lattices(SAMPLES)
    ckpt = scaled_residual_checkpoint(default_checkpoint(), 0.8, tmp_path / "d.safetensors")
    dev = paired_deviation(super_resolve(fine, tmp_path, checkpoint=ckpt, seed=0), fine)
    print(_line("residual x 0.8", dev))
    assert not verdict(dev)[0]
