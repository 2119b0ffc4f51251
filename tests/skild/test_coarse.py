"""The coarse stage (skild/coarse.py): exact with the Gaussian oracle, routed by scale, resumed.

With zero networks on both legs (the Bayes-optimal denoiser of a Gaussian field) generation
through the coarse stage must reproduce S(k) at every |k|, as plain generation does; a wrong
coarse network must be caught in the final lattice. Training writes the --init checkpoint
unchanged plus the stage,
and resumes bit for bit.
"""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from isingscale.errors import IsingScaleError
from isingscale.io import read_attrs, read_ensemble
from isingscale.skild import coarse, generate
from isingscale.skild.checkpoint import (
    CoarseStage,
    load_checkpoint,
    read_checkpoint,
    write_safetensors,
)
from isingscale.skild.coarse import train_coarse

from .conftest import make_checkpoint, random_spins, write_spins
from .test_cli import assert_one_line_error
from .test_cli import run as cli
from .test_ssd import N, ZeroNet, check_spectrum, zero_model


class RecordingZeroNet(ZeroNet):
    """The oracle network, recording the (lattice size, s) of every call."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, y, s):
        self.seen.append((y.shape[-1], float(s[0])))
        return super().forward(y, s)


def oracle_with_stage(size: int = 8, margin: float = 1.2):
    model = zero_model()
    model.net = RecordingZeroNet()
    model.coarse = CoarseStage(RecordingZeroNet(), size, margin, {})
    return model


@pytest.mark.parametrize("sampler", ["sde", "ddim", "ddpm"])
def test_generation_through_the_coarse_stage_reproduces_spectrum(sampler):
    model = oracle_with_stage()
    g = torch.Generator().manual_seed(40)
    x = coarse.generate_batch(model, 2000, N, sampler=sampler, rate=3, generator=g, device="cpu")
    assert x.shape == (2000, N, N)
    check_spectrum(x, f"coarse-stage generation ({sampler})")


def test_each_network_runs_on_its_own_lattice_and_scales():
    model = oracle_with_stage()
    legs = coarse.plan(
        model, N, "ddim", rate=3
    )  # no churn: the sde's re-noising looks one step above s_lift
    (nc, s_top, s_end, c_steps), (n, s_lift, s0, f_steps) = legs
    assert (nc, n, s0) == (8, N, 0.0) and s_end == 1.2
    assert s_top == pytest.approx(model.schedule.s_max(8)) and s_lift == pytest.approx(
        np.log2(N / 8) + 1.2
    )
    # The band of N at s is Nc at s - 2, up to the schedules' s = 0 normalisation
    # (ssd.lift_coefficients).
    assert s_top == pytest.approx(model.schedule.s_max(N) - 2, abs=1e-3)
    coarse.generate_batch(
        model,
        4,
        N,
        sampler="ddim",
        rate=3,
        generator=torch.Generator().manual_seed(0),
        device="cpu",
    )
    c_seen, m_seen = model.coarse.net.seen, model.net.seen
    assert {size for size, _ in c_seen} == {8} and {size for size, _ in m_seen} == {N}
    assert min(s for _, s in c_seen) >= s_end - 1e-6 and max(s for _, s in m_seen) <= s_lift + 1e-6
    assert (
        len(c_seen) == 2 * c_steps and len(m_seen) == 2 * f_steps - 1
    )  # Heun; the very last correction skipped


class ScaledNet(RecordingZeroNet):
    """v̂ = c y: a denoiser wrong by a known amount (c > 0 shrinks, c < 0 inflates the field)."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, y, s):
        super().forward(y, s)
        return self.c * y


@pytest.mark.parametrize("c", [0.1, -0.1])
def test_spectrum_check_sees_the_coarse_legs_modes(c):
    # A wrong coarse network must show in the final lattice's low band: the check sees it.
    model = oracle_with_stage()
    model.coarse.net = ScaledNet(c)
    x = coarse.generate_batch(
        model,
        2000,
        N,
        sampler="ddim",
        rate=3,
        generator=torch.Generator().manual_seed(41),
        device="cpu",
    )
    with pytest.raises(AssertionError):
        check_spectrum(x, "wrong coarse network")


def test_stage_applies_from_twice_its_size():
    stage = CoarseStage(ZeroNet(), 8, 1.2, {})
    assert [stage.applies(n) for n in (8, 15, 16, 32, 64)] == [False, False, True, True, True]


# ----------------------------------------------------------------------------
# Training and the checkpoint.


@pytest.fixture
def run(tmp_path):
    init = make_checkpoint(tmp_path / "main.safetensors", L=16)
    data = write_spins(tmp_path / "d.h5", random_spins(32, 16, seed=6))
    kw = dict(
        init=init,
        size=4,
        base_channels=8,
        depth=2,
        channel_mult=(1, 2, 2),
        batch=8,
        seed=3,
        device="cpu",
        progress=False,
        log_every=2,
        warmup=2,
    )
    return init, data, kw


def test_training_keeps_the_main_network_and_resumes_bitwise(tmp_path, run):
    init, data, kw = run
    full = train_coarse([data], tmp_path / "full", steps=6, **kw)
    train_coarse([data], tmp_path / "half", steps=3, **kw)
    half = train_coarse([], tmp_path / "half", steps=6, resume=True, device="cpu", progress=False)
    a, b = load_file(str(full)), load_file(str(half))
    assert a.keys() == b.keys() and any(k.startswith("coarse.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    main = load_file(str(init))
    assert {k for k in a if k.startswith("model.")} == set(main)
    for k in main:
        assert torch.equal(a[k], main[k]), k
    meta, init_meta = read_checkpoint(full)[0], read_checkpoint(init)[0]
    assert {k: v for k, v in meta.items() if k != "coarse"} == init_meta
    c = meta["coarse"]
    assert (c["size"], c["margin"], c["training"]["step"]) == (4, 1.2, 6)
    assert c["training"]["data"][0]["sha256"] and c["training"]["init"]["sha256"]
    model = load_checkpoint(full)
    assert model.coarse.size == 4 and model.coarse.applies(16) and not model.coarse.net.training
    rows = (tmp_path / "half" / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [2, 4, 6]


def test_generate_uses_the_stage_and_can_skip_it(tmp_path, run):
    init, data, kw = run
    ckpt = train_coarse([data], tmp_path / "c", steps=2, **kw)
    common = dict(L=16, samples=3, steps=6, seed=9, device="cpu", progress=False)
    with_stage = generate(ckpt, out=tmp_path / "a.h5", **common)
    without = generate(ckpt, out=tmp_path / "b.h5", coarse_stage=False, **common)
    plain = generate(init, out=tmp_path / "p.h5", **common)
    stage = read_attrs(with_stage)["coarse_stage"]
    assert (
        stage.startswith("4x4: s ")
        and "; 16x16: s " in stage
        and read_attrs(without)["coarse_stage"] == "none"
    )
    assert np.array_equal(read_ensemble(without)["spins"], read_ensemble(plain)["spins"])


def test_training_errors(tmp_path, run):
    init, data, kw = run
    with pytest.raises(IsingScaleError, match="init must be the SKILD checkpoint"):
        train_coarse([data], tmp_path / "x", steps=2, **{**kw, "init": None})
    with pytest.raises(IsingScaleError, match="at least 32 wide"):
        train_coarse(
            [data],
            tmp_path / "y",
            steps=2,
            **{**kw, "size": 16, "depth": 1, "channel_mult": (1, 2)},
        )
    with pytest.raises(IsingScaleError, match="margin must be above s_min"):
        train_coarse([data], tmp_path / "z", steps=2, **kw, s_min=1.5)
    with pytest.raises(IsingScaleError, match="holds no checkpoint"):
        train_coarse([], tmp_path / "none", steps=2, resume=True, device="cpu")
    assert_one_line_error(
        cli("train", "coarse-stage", "--data", data, "--out", tmp_path / "w", "--steps", 2),
        "init must be the SKILD checkpoint",
    )


def test_cli_trains_the_stage_and_generate_reports_it(tmp_path, run):
    init, data, _ = run
    res = cli(
        "train",
        "coarse-stage",
        "--size",
        4,
        "--init",
        init,
        "--data",
        data,
        "--out",
        tmp_path / "c",
        "--steps",
        2,
        "--base-channels",
        8,
        "--depth",
        2,
        "--channel-mult",
        "1,2,2",
        "--batch",
        4,
        "--device",
        "cpu",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    assert "coarse stage, 2 steps" in res.output
    ckpt = tmp_path / "c" / "model.safetensors"
    for flag, want in (("--coarse-stage", "4x4: s "), ("--no-coarse-stage", "none")):
        out = tmp_path / f"g{flag}.h5"
        res = cli(
            "generate",
            "--checkpoint",
            ckpt,
            "--L",
            16,
            "--samples",
            2,
            "--steps",
            4,
            "--out",
            out,
            flag,
            "--device",
            "cpu",
            "--no-progress",
        )
        assert res.exit_code == 0, res.output
        assert read_attrs(out)["coarse_stage"].startswith(want)


def test_a_stage_without_its_weights_is_a_clean_error(tmp_path, run):
    init, data, kw = run
    ckpt = train_coarse([data], tmp_path / "c", steps=2, **kw)
    meta, tensors = read_checkpoint(ckpt)
    write_safetensors(
        tmp_path / "broken.safetensors",
        {k: v for k, v in tensors.items() if not k.startswith("coarse.")},
        meta,
    )
    with pytest.raises(IsingScaleError, match="incomplete"):
        load_checkpoint(tmp_path / "broken.safetensors")


def test_default_steps_use_the_stage_rate_on_both_legs():
    model = oracle_with_stage()
    st, sched = model.coarse, model.schedule
    octaves = [sched.s_max(st.size) - st.margin, st.s_lift(N)]
    for sampler, rate in coarse.STAGE_STEPS_PER_OCTAVE.items():
        steps = [leg[3] for leg in coarse.plan(model, N, sampler)]
        assert steps == [max(2, math.ceil(rate * o - 1e-9)) for o in octaves]
