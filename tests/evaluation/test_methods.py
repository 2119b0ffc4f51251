"""The method registry and the checkpoint-based methods (an untrained tiny SKILD checkpoint)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isingscale.errors import IsingScaleError
from isingscale.evaluation import evaluate, method_names, register, unregister
from isingscale.evaluation.methods import Options, get_method, train_seconds

from .conftest import replicate


def test_registry_names_and_register_rules():
    assert {"skild", "ssd", "sr3", "cnn", "cnn-ki", "nearest", "fourier", "bicubic"} == set(
        method_names()
    )
    assert get_method("cnn").conventions == ("block",) and get_method("skild").supports("block")
    m = register("tmp-copy", replicate, conventions=("block",))
    try:
        assert m.build(Options(), 2.0).fn is replicate and "tmp-copy" in method_names()
        with pytest.raises(IsingScaleError, match="already registered"):
            register("tmp-copy", replicate)
    finally:
        unregister("tmp-copy")
    with pytest.raises(IsingScaleError, match="bad method name"):
        register("a,b", replicate)
    with pytest.raises(IsingScaleError, match="conventions"):
        register("x", replicate, conventions=("median",))
    with pytest.raises(IsingScaleError, match="unknown method"):
        get_method("tmp-copy")


def test_train_seconds_from_metadata_or_loss_csv(tmp_path):
    assert train_seconds(tmp_path / "m.safetensors", {"training": {"seconds": 61.5}}) == 61.5
    assert math.isnan(train_seconds(tmp_path / "m.safetensors", {"training": {}}))
    (tmp_path / "loss.csv").write_text(
        "step,lattices,loss,lr,seconds\n20,1280,0.5,1e-4,10.0\n40,2560,0.3,2e-4,20.5\n"
    )
    assert train_seconds(tmp_path / "m.safetensors", {}) == 20.5


def test_skild_runs_from_a_checkpoint_and_ssd_without_room_is_na(tmp_path, truth_file):
    from tests.skild.conftest import make_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    ckpt = make_checkpoint(run / "model.safetensors", L=16)
    (run / "loss.csv").write_text("step,lattices,loss,lr,seconds\n20,1280,0.5,1e-4,12.5\n")
    res = evaluate(
        tmp_path / "ev",
        data=truth_file,
        factors=(2,),
        methods=("skild", "ssd", "sr3"),
        samples=8,
        checkpoint=ckpt,
        device="cpu",
        progress=False,
        plots=False,
    )
    ds = res.dataset
    sk = ds.sel({"method": "skild", "factor": 2.0})
    assert (sk["status"] == "done").all()
    assert (sk["seconds_per_lattice"] > 0).all() and (sk["train_seconds"] == 12.5).all()
    assert all(str(ckpt) in c and "sha256" in c for c in sk["checkpoint"].values)
    assert np.isfinite(sk["max_abs_z_G2"]).all()
    ssd = ds.sel({"method": "ssd", "factor": 2.0})
    assert (ssd["status"] == "n/a").all() and all(r for r in ssd["reason"].values)
    assert "| skild | ×2 | 8 → 16 |" in res.report and "12 s" in res.report
    assert not (tmp_path / "ev" / "ensembles" / "ssd_x2_block.h5").exists()


def test_ssd_cost_line_has_a_plan_per_convention(tmp_path):
    from isingscale.evaluation.methods import Options, ssd_cost
    from isingscale.skild.coarsen import BLOCK_S_OFFSET
    from tests.skild.conftest import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "model.safetensors", L=32)
    line = ssd_cost(
        Options(checkpoint=ckpt, device="cpu"), 4, 32
    )  # x8: s* = 3 (+ the block offset)
    fourier, block = line.split("; block input: ")
    assert (
        fourier.startswith("fourier input: SSD super-resolution 4 -> 32")
        and "site-evaluations" in block
    )
    # The coarse level starts at s* - decimate (the 16² lattice's own scale): 3 - 1, and 1 more
    # for block spins.
    s_coarse = [float(part.split("16^2: s ")[1].split(" ->")[0]) for part in (fourier, block)]
    assert s_coarse == [2.0, 2.0 + BLOCK_S_OFFSET]
