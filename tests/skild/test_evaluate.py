"""The quality-evaluation helpers (isingscale.skild.evaluate), fast: no training, tiny ensembles."""

import math

import numpy as np
import pytest

from isingscale.skild import evaluate as ev
from isingscale.skild.upsample import BLOCK_S_OFFSET

from .conftest import random_spins, write_spins


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    a = write_spins(tmp / "a.h5", random_spins(256, 16, seed=10))
    b = write_spins(tmp / "b.h5", random_spins(256, 16, seed=11))
    flipped = random_spins(256, 16, seed=12)
    flipped[:, ::2, :] *= -1  # antiferro-striped: a different ensemble
    c = write_spins(tmp / "c.h5", flipped)
    return {k: ev.measure_file(p) for k, p in (("a", a), ("b", b), ("c", c))}


def test_same_ensemble_agrees(measured):
    c = ev.compare(measured["a"], measured["b"])
    assert c["r_range"] == [1, 8] and c["G2"]["dof"] == 8
    assert c["G2"]["max_abs_z"] < 5 and abs(c["energy"]["rel_dev"]) < 0.05
    res = {
        "case": {"label": "x", "key": "x"},
        "plan": {"s_start": [1.0], "steps": [20]},
        "comparison": c,
        "sampler": "sde",
        "lattices_per_s": 1.0,
    }
    res["passes"], res["why"] = ev.passes_bar(res)
    table = ev.quality_table([res])
    assert table.count("\n") == 2 and "sde: 1.00→0, 20" in table
    head, sep = table.splitlines()[:2]
    assert head.count("|") - head.count("\\|") == sep.count("|")


def test_different_ensemble_fails_the_bar(measured):
    c = ev.compare(measured["c"], measured["a"])
    ok, why = ev.passes_bar({"comparison": c})
    assert not ok and "G2" in why and "energy" in why
    assert not c["G2"]["within"] and c["G2"]["n_outside"] >= 1


def test_case_sizes_and_sampler_plan(tiny_checkpoint):
    from isingscale.skild import load_checkpoint

    cases = {c.key: c for c in ev.default_cases(32)}
    assert cases["sr4_fourier"].sizes() == [8, 32]
    assert cases["sr2.5_fourier"].sizes() == [16, 40]
    assert cases["sr2x2_fourier"].sizes() == [8, 16, 32]
    assert cases["sr4_fourier_2L"].sizes() == [16, 64]
    model = load_checkpoint(tiny_checkpoint)
    plan = ev.sampler_plan(cases["sr4_fourier"], model, "ddpm")
    assert plan == {
        "s_start": [2.0],
        "steps": [40],
    }  # SR by F starts at log2 F, 20 ddpm steps per octave
    # Default: the stochastic Heun sampler (10 steps per octave), for super-resolution ...
    assert ev.case_sampler(cases["sr4_fourier"]) == "sde"
    assert ev.sampler_plan(cases["sr4_fourier"], model) == {"s_start": [2.0], "steps": [20]}
    # The second ×2 stage reads the first stage's spins as block spins: s* = 1 + BLOCK_S_OFFSET.
    s_block = 1.0 + BLOCK_S_OFFSET
    assert ev.sampler_plan(cases["sr2x2_fourier"], model) == {
        "s_start": [1.0, s_block],
        "steps": [10, math.ceil(10 * s_block)],
    }
    assert ev.sampler_plan(cases["sr2_block"], model, "ddpm") == {
        "s_start": [s_block],
        "steps": [math.ceil(20 * s_block)],
    }
    # ... and for generation, from s_max(L).
    assert (
        ev.case_sampler(cases["generate"]) == "sde"
        and ev.case_sampler(cases["generate"], "ddpm") == "ddpm"
    )
    gen = ev.sampler_plan(cases["generate"], model)
    assert np.isclose(gen["s_start"][0], model.schedule.s_max(32))
    assert gen["steps"][0] == math.ceil(10 * model.schedule.s_max(32))
    assert ev.sampler_plan(cases["generate"], model, "ddim")["steps"][0] == math.ceil(
        6 * model.schedule.s_max(32)
    )


def test_training_summary(tmp_path):
    (tmp_path / "loss.csv").write_text(
        "step,lattices,loss,lr,seconds\n20,1280,0.5,1e-4,10.0\n40,2560,0.3,2e-4,20.0\n"
    )
    s = ev.training_summary(tmp_path)
    assert (
        s["steps"] == 40 and s["lattices_per_s"] == 128.0 and s["final_loss"] == pytest.approx(0.4)
    )
    assert ev.training_summary(tmp_path / "missing") is None


def test_mc_reference_is_extended_not_replaced(tmp_path):
    import isingscale as isc

    path = ev.mc_ensemble(8, 6, seed=5, workdir=tmp_path, progress=False)
    first = isc.read_ensemble(path, datasets=("spins",))["spins"]
    assert ev.mc_ensemble(8, 4, seed=5, workdir=tmp_path, progress=False) == path  # enough cached
    assert isc.read_attrs(path)["n_samples"] == 6
    ev.mc_ensemble(
        8, 10, seed=5, workdir=tmp_path, T=2.269185314, progress=False
    )  # T as a checkpoint rounds it
    grown = isc.read_ensemble(path, datasets=("spins",))["spins"]
    assert grown.shape == (10, 8, 8)
    np.testing.assert_array_equal(grown[:6], first)


def test_validation_split_has_its_own_seeds(monkeypatch, tiny_checkpoint):
    import importlib.util
    from pathlib import Path

    seeds = [s for pair in ev.SPLITS.values() for s in pair]
    assert (
        len(set(seeds)) == len(seeds) and 1 not in seeds
    )  # disjoint, and not the training data's seed 1
    script = Path(__file__).resolve().parents[2] / "analysis" / "skild_quality.py"
    spec = importlib.util.spec_from_file_location("skild_quality", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls = []
    monkeypatch.setattr(ev, "evaluate", lambda *a, **kw: calls.append(kw) or [])
    for split in ("val", "test"):
        assert (
            mod.main(
                [
                    "--checkpoint",
                    str(tiny_checkpoint),
                    "--split",
                    split,
                    "--cost-samples",
                    "0",
                    "--run-dir",
                    "",
                    "--quiet",
                ]
            )
            == 0
        )
    assert [(c["seed_truth"], c["seed_inputs"]) for c in calls] == [
        ev.SPLITS["val"],
        ev.SPLITS["test"],
    ]
    md = ev.report_markdown([], checkpoint_info=ev.checkpoint_info(tiny_checkpoint), split="val")
    assert "val split" in md and f"seed {ev.SPLITS['val'][0]}" in md


def test_roundtrip_returns_the_input_from_small_s(tiny_checkpoint):
    from isingscale.skild.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint)
    spins = random_spins(8, 16, seed=3)
    # s0 -> 0: the forward process is the identity, and so is the way back.
    np.testing.assert_array_equal(
        ev.roundtrip(model, spins, 1e-3, sampler="ddim", steps=1, batch=3), spins
    )
    far = ev.roundtrip(model, spins, 4.0, sampler="sde", steps=8)
    assert (
        far.shape == spins.shape and set(np.unique(far)) <= {-1, 1} and np.mean(far != spins) > 0.2
    )


def test_paired_deviation():
    x = random_spins(64, 16, seed=4)
    same = ev.paired_deviation(x, -x)  # the spin flip changes no correlator
    assert np.allclose(same["G2_axes"], 0.0) and np.allclose(
        same["S_axis"] + same["S_diagonal"], 1.0
    )
    assert same["modes"] == [6, 7, 8]
    rng = np.random.default_rng(0)
    noise = np.where(
        rng.random(x.shape) < 0.5, 1, -1
    )  # uncorrelated spins: G2 gone, zone edge raised
    d = ev.paired_deviation(x, noise)
    assert all(v < -0.8 for v in d["G2_axes"][:2]) and min(d["S_axis"]) > 1.2


@pytest.mark.parametrize("factor,expected", [(1.0, 1.0), (0.5, 2.0)])
def test_calibration_against_the_gaussian_posterior(factor, expected):
    # A Gaussian field whose whitened modes have variance λ(k) ≠ 1: the posterior mean is
    # linear, ŷ0 = a λ y_s / (a²λ + b²), so the exact correction c* = ŷ0 − a y_s is known.
    # A "network" returning factor · c* must be read as gain 1/factor at every mode.
    from types import SimpleNamespace

    import torch

    from isingscale.skild.process import Schedule, Whitener, coefficients
    from isingscale.skild.spectral import power_law_spectrum, radial_k

    N, s = 16, 0.6
    wh = Whitener(power_law_spectrum(N))
    lam = torch.as_tensor(
        0.3 + 3.0 * radial_k(N) / 0.5, dtype=torch.float32
    )  # symmetric under the lattice group
    sched = Schedule()
    a, b = coefficients(sched, s, N)
    corr = factor * a * (lam / (a**2 * lam + b**2) - 1.0)

    def net(y, s_):  # d = −b v̂
        return wh.basis.multiply(y, torch.where(b > 0, -corr / b.clamp_min(1e-30), 0.0))

    model = SimpleNamespace(net=net, whitener=wh, basis=wh.basis, schedule=sched)
    g = torch.Generator().manual_seed(0)
    y0 = wh.basis.multiply(torch.randn(1024, N, N, generator=g), lam.sqrt())
    res = ev.calibration(model, wh.color(y0).numpy(), s, seed=1)
    gain, explained = res["gain"], res["explained"]
    assert gain.shape == (N // 2 + 1, N // 2 + 1) and np.allclose(gain, gain.T, equal_nan=True)
    ok = np.isfinite(gain)
    assert ok.sum() >= 40
    assert abs(np.median(gain[ok]) - expected) < 0.05 * expected
    assert np.mean(np.abs(gain[ok] - expected) < 0.2 * expected) > 0.9
    # The explained fraction is (2f − f²) R², R² = var(c*) / var(c) per mode.
    H = N // 2 + 1
    A, B, Lm = (t[:H, :H].double().numpy() for t in (a, b, lam))
    var_c = (1 - A**2) ** 2 * Lm + A**2 * B**2
    var_cstar = (A * (Lm / (A**2 * Lm + B**2) - 1.0)) ** 2 * (A**2 * Lm + B**2)
    want = (2 * factor - factor**2) * var_cstar / var_c
    big = ok & (want > 0.05)
    assert big.sum() >= 30 and np.median(np.abs(explained[big] / want[big] - 1)) < 0.1
    if factor != 1.0:
        model.net = lambda y, s_: torch.zeros_like(y)  # no correction at all: the gain is undefined
        assert np.all(np.isnan(ev.calibration(model, wh.color(y0[:8]).numpy(), s)["gain"]))


def test_held_out_spins_are_the_cached_input_chain(tmp_path, tiny_checkpoint):
    from isingscale.skild.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint)
    few = ev.held_out_spins(model, 4, tmp_path)
    L = int(model.meta["L"])
    assert few.shape == (4, L, L) and set(np.unique(few)) <= {-1, 1}
    more = ev.held_out_spins(model, 6, tmp_path)  # the cached chain is extended, not redrawn
    np.testing.assert_array_equal(more[:4], few)
    assert (tmp_path / f"mc_L{L}_seed{ev.SEED_INPUTS}.h5").exists()
