"""The diagnostics in analysis/ (round trip, calibration): their computations, checked.

The scripts use the public API only; they are imported here as modules, as the notebooks are
executed by tests/test_notebooks.py, so that they cannot rot.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from .skild.conftest import make_checkpoint, random_spins

SCRIPTS = Path(__file__).resolve().parents[1] / "analysis"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


roundtrip = _script("skild_roundtrip")
calibration = _script("skild_calibration")
readme_figures = _script("readme_figures")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def test_roundtrip_returns_the_input_from_small_s(tiny_checkpoint):
    from isingscale.skild.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint)
    spins = random_spins(8, 16, seed=3)
    # s0 -> 0: the forward process is the identity, and so is the way back.
    np.testing.assert_array_equal(
        roundtrip.roundtrip(model, spins, 1e-3, sampler="ddim", steps=1, batch=3), spins
    )
    far = roundtrip.roundtrip(model, spins, 4.0, sampler="sde", steps=8)
    assert (
        far.shape == spins.shape and set(np.unique(far)) <= {-1, 1} and np.mean(far != spins) > 0.2
    )


def test_paired_deviation():
    x = random_spins(64, 16, seed=4)
    same = roundtrip.paired_deviation(x, -x)  # the spin flip changes no correlator
    assert np.allclose(same["G2_axes"], 0.0) and np.allclose(
        same["S_axis"] + same["S_diagonal"], 1.0
    )
    assert same["modes"] == [6, 7, 8]
    rng = np.random.default_rng(0)
    noise = np.where(
        rng.random(x.shape) < 0.5, 1, -1
    )  # uncorrelated spins: G2 gone, zone edge raised
    d = roundtrip.paired_deviation(x, noise)
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
    res = calibration.calibration(model, wh.color(y0).numpy(), s, seed=1)
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
        assert np.all(np.isnan(calibration.calibration(model, wh.color(y0[:8]).numpy(), s)["gain"]))


def test_held_out_spins_are_the_cached_input_chain(tmp_path):
    from isingscale.evaluation.references import SEED_INPUTS, held_out_spins

    few = held_out_spins(8, 4, tmp_path)
    assert few.shape == (4, 8, 8) and set(np.unique(few)) <= {-1, 1}
    more = held_out_spins(8, 6, tmp_path)  # the cached chain is extended, not redrawn
    np.testing.assert_array_equal(more[:4], few)
    assert (tmp_path / f"mc_L8_seed{SEED_INPUTS}.h5").exists()


def test_readme_figures_at_tiny_sizes(tmp_path, tiny_checkpoint, capsys):
    from PIL import Image

    out = tmp_path / "figures"
    args = [
        "--quick",
        "--out",
        out,
        "--workdir",
        tmp_path / "work",
        "--checkpoint",
        tiny_checkpoint,
    ]
    assert readme_figures.main([str(a) for a in args]) == 0
    printed = capsys.readouterr().out
    for name in ("lattices", "correlators", "evaluation"):
        png = out / f"{name}.png"
        assert f"{name}.png" in printed and 1_000 < png.stat().st_size < 100_000, name
    with Image.open(out / "lattices.png") as img:  # three rows: input, output, truth
        assert img.mode == "L" and img.height > 2.5 * 128


l128 = _script("skild_l128")


def test_l128_grafts_the_shipped_coarse_stage(tmp_path, tiny_checkpoint):
    # Fine-tuning keeps the main network only; generation at L >= 2 x 16 needs the coarse stage,
    # so the run puts the shipped one back: main weights untouched, the stage as shipped.
    from isingscale.skild import default_checkpoint, load_checkpoint

    out = l128.graft_coarse_stage(tiny_checkpoint, default_checkpoint(), tmp_path / "g.safetensors")
    grafted, tiny, shipped = (load_checkpoint(p) for p in (out, tiny_checkpoint, None))
    assert tiny.coarse is None and grafted.coarse is not None
    assert grafted.coarse.size == shipped.coarse.size == 16
    for name, w in tiny.net.state_dict().items():
        assert torch.equal(grafted.net.state_dict()[name], w), name
    for name, w in shipped.coarse.net.state_dict().items():
        assert torch.equal(grafted.coarse.net.state_dict()[name], w), name


def test_l128_score_uses_the_bar_at_each_size(tmp_path):
    # Two L = 128 cases: one inside the paper bar, one out only at r = 20 <= L/4; their summed
    # max |z| breaks ties between checkpoints.
    def case(z_at):
        z = [0.5] * 64
        if z_at:
            z[z_at - 1] = 2.5
        curve = {"z": z, "chi2_dof": 0.3, "max_abs_z": max(z)}
        e = {"rel_dev": 0.001, "skild": -1.4214, "mc": -1.42, "z": 0.5}
        c = {"L": 128, "G2": curve, "G4c_square": curve, "energy": e}
        return {"comparison": {**c, "abs_m": {"z": 0.1}, "binder": {"z": -0.2}}}

    path = tmp_path / "q.json"
    path.write_text(json.dumps({"results": [case(None), case(20)]}))
    assert l128.score(path) == (1, 0.5 + 0.5 + 2.5 + 2.5)
