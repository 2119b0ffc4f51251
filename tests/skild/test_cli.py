"""The CLI: end-to-end runs on tiny inputs and one-line errors for bad input (CliRunner)."""

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.exact import torus_energy
from isingscale.io import create_ensemble, read_ensemble
from isingscale.skild.coarsen import BLOCK_S_OFFSET

from .conftest import make_checkpoint, random_spins, write_spins


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(res, match):
    """Exit code 1 and one error line (the lattice reader's ``note:`` lines aside, as in
    tests/test_lattices_cli.py: inputs are read by open_lattices, which says what it assumed)."""
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.strip().splitlines() if not line.startswith("note:")]
    assert "Traceback" not in res.output and len(lines) == 1, res.output
    assert match in lines[0], res.output


@pytest.fixture()
def field_file(tmp_path):
    with create_ensemble(
        tmp_path / "coarse.h5", L=8, kind="coarse", attrs={"method": "fourier"}
    ) as w:
        w.append(field=np.random.default_rng(0).normal(size=(3, 8, 8)) * 0.3)
    return tmp_path / "coarse.h5"


def test_help_texts():
    for cmd in (("train", "skild"), ("generate",), ("coarsen",), ("upsample",)):
        res = run(*cmd, "--help")
        assert res.exit_code == 0 and "Examples" in res.output
    assert run("bench", "skild", "--help").exit_code == 0


def test_upsample_from_fourier_field(tmp_path, field_file, tiny_checkpoint):
    out = tmp_path / "sr.h5"
    res = run(
        "upsample",
        "--factor",
        2,
        "--input",
        field_file,
        "--checkpoint",
        tiny_checkpoint,
        "--out",
        out,
        "--no-progress",
        "--device",
        "cpu",
        "--save-field",
        "--steps",
        4,
    )
    assert res.exit_code == 0, res.output
    d = read_ensemble(out)
    assert d["spins"].shape == (3, 16, 16) and d["field"].shape == (3, 16, 16)
    assert d["attrs"]["kind"] == "superresolved" and d["attrs"]["input_kind"] == "fourier"
    assert len(d["attrs"]["checkpoint_sha256"]) == 64
    assert json.loads(d["attrs"]["stage_s_offsets"]) == [0.0]
    assert d["attrs"]["sampler"] == "sde"  # the default


def test_upsample_block_non_integer_and_repeat(tmp_path, tiny_checkpoint):
    src = write_spins(tmp_path / "b.h5", random_spins(2, 16, seed=1))
    res = run(
        "upsample",
        "--factor",
        1.5,
        "--input",
        src,
        "--checkpoint",
        tiny_checkpoint,
        "--out",
        tmp_path / "o.h5",
        "--sampler",
        "ddim",
        "--no-progress",
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.output
    d = read_ensemble(tmp_path / "o.h5")
    assert d["spins"].shape == (2, 24, 24) and d["attrs"]["input_kind"] == "block"
    assert (
        json.loads(d["attrs"]["stage_s_offsets"]) == [BLOCK_S_OFFSET]
        and d["attrs"]["s_offset"] == "auto"
    )
    src4 = write_spins(tmp_path / "b4.h5", random_spins(2, 4, seed=2))
    res = run(
        "upsample",
        "--factor",
        2,
        "--repeat",
        2,
        "--input",
        src4,
        "--checkpoint",
        tiny_checkpoint,
        "--out",
        tmp_path / "o2.h5",
        "--no-progress",
        "--device",
        "cpu",
        "--steps",
        3,
    )
    assert res.exit_code == 0, res.output
    d = read_ensemble(tmp_path / "o2.h5")
    assert (
        d["spins"].shape == (2, 16, 16)
        and json.loads(d["attrs"]["stage_s_offsets"]) == [BLOCK_S_OFFSET] * 2
    )


def test_generate_and_coarsen(tmp_path, tiny_checkpoint):
    res = run(
        "generate",
        "--checkpoint",
        tiny_checkpoint,
        "--L",
        24,
        "--samples",
        3,
        "--out",
        tmp_path / "g.h5",
        "--steps",
        5,
        "--no-progress",
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.output
    g = read_ensemble(tmp_path / "g.h5")
    assert g["spins"].shape == (3, 24, 24) and g["attrs"]["sampler"] == "sde"  # the default
    # the closing summary: energy per site by brute force from the spins, against the exact
    # torus value
    s = g["spins"].astype(float)
    u = -(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2)).sum(axis=(1, 2)).mean() / 24**2
    u_exact = float(torus_energy(24, g["attrs"]["T"]))
    assert f"energy per site {u:.4f} ± " in res.output and f"(exact {u_exact:.4f}, " in res.output
    assert f"{100 * (u - u_exact) / abs(u_exact):+.2f} %" in res.output and "5 steps" in res.output
    res = run(
        "coarsen", tmp_path / "g.h5", "--factor", 3, "--method", "block", "--out", tmp_path / "c.h5"
    )
    assert res.exit_code == 0 and read_ensemble(tmp_path / "c.h5")["spins"].shape == (3, 8, 8)


def test_train_cli_smoke(tmp_path, spins_file):
    res = run(
        "train",
        "skild",
        "--data",
        spins_file,
        "--out",
        tmp_path / "run",
        "--steps",
        3,
        "--base-channels",
        8,
        "--depth",
        2,
        "--channel-mult",
        "1,2,2",
        "--batch",
        2,
        "--no-progress",
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "model.safetensors").exists() and (
        tmp_path / "run" / "loss.csv"
    ).exists()
    res = run(
        "train",
        "skild",
        "--data",
        spins_file,
        "--out",
        tmp_path / "run",
        "--steps",
        3,
        "--device",
        "cpu",
    )
    assert_one_line_error(res, "--resume")


def test_errors_are_one_line(tmp_path, field_file, tiny_checkpoint, spins_file):
    ck = ("--checkpoint", tiny_checkpoint, "--no-progress", "--device", "cpu")
    # factor <= 1
    assert_one_line_error(
        run("upsample", "--factor", 1, "--input", field_file, "--out", tmp_path / "a.h5", *ck),
        "factor",
    )
    assert_one_line_error(
        run("coarsen", spins_file, "--factor", 0.5, "--out", tmp_path / "a.h5"), "factor"
    )
    # coarse input neither ±1 spins nor float field
    with create_ensemble(tmp_path / "bad.h5", L=8, kind="coarse") as w:
        w.append(np.full((2, 8, 8), 3, dtype=np.int8))
    assert_one_line_error(
        run(
            "upsample",
            "--factor",
            2,
            "--input",
            tmp_path / "bad.h5",
            "--out",
            tmp_path / "a.h5",
            *ck,
        ),
        "neither",
    )
    # not square
    with h5py.File(tmp_path / "rect.h5", "w") as f:
        f.attrs.update(
            format="isingscale-ensemble", schema_version=1, kind="coarse", L=8, n_samples=2
        )
        f["field"] = np.zeros((2, 8, 6), dtype=np.float32)
    assert_one_line_error(
        run(
            "upsample",
            "--factor",
            2,
            "--input",
            tmp_path / "rect.h5",
            "--out",
            tmp_path / "a.h5",
            *ck,
        ),
        "shape",
    )
    # output size the network cannot take (8 x 1.5 = 12, not divisible by 8)
    assert_one_line_error(
        run("upsample", "--factor", 1.5, "--input", field_file, "--out", tmp_path / "a.h5", *ck),
        "divisible by 8",
    )
    assert_one_line_error(
        run("generate", "--L", 20, "--out", tmp_path / "a.h5", *ck), "divisible by 8"
    )
    # image checkpoint on lattices; unknown / corrupt checkpoint
    img = make_checkpoint(tmp_path / "img.safetensors", lattice="image-dct")
    assert_one_line_error(
        run(
            "upsample",
            "--factor",
            2,
            "--input",
            field_file,
            "--out",
            tmp_path / "a.h5",
            "--checkpoint",
            img,
        ),
        "image-dct",
    )
    (tmp_path / "junk.safetensors").write_bytes(b"garbage" * 20)
    assert_one_line_error(
        run(
            "generate",
            "--L",
            16,
            "--out",
            tmp_path / "a.h5",
            "--checkpoint",
            tmp_path / "junk.safetensors",
        ),
        "safetensors",
    )
    # missing input, non-writable output
    assert_one_line_error(
        run(
            "upsample",
            "--factor",
            2,
            "--input",
            tmp_path / "nope.h5",
            "--out",
            tmp_path / "a.h5",
            *ck,
        ),
        "no such file",
    )
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(
        run(
            "upsample",
            "--factor",
            2,
            "--input",
            field_file,
            "--out",
            tmp_path / "afile" / "o.h5",
            *ck,
        ),
        "afile",
    )
    assert_one_line_error(
        run(
            "train", "skild", "--data", tmp_path / "nope.h5", "--out", tmp_path / "r", "--steps", 1
        ),
        "no such",
    )
    # CUDA requested without a GPU
    if not torch.cuda.is_available():
        assert_one_line_error(
            run(
                "generate",
                "--L",
                16,
                "--out",
                tmp_path / "a.h5",
                "--checkpoint",
                tiny_checkpoint,
                "--device",
                "cuda",
            ),
            "CUDA",
        )


def test_heatbath_sweeps_keep_the_sampled_block_image(tmp_path, tiny_checkpoint):
    """--sweeps K changes spins but not the b x b majority image of a block-spin stage's output."""
    from isingscale.skild import block_spins, generate

    src = write_spins(tmp_path / "b8.h5", random_spins(6, 8, seed=3))
    outs = {}
    for k in (0, 2):
        outs[k] = tmp_path / f"sw{k}.h5"
        res = run(
            "upsample",
            "--factor",
            2,
            "--input",
            src,
            "--checkpoint",
            tiny_checkpoint,
            "--out",
            outs[k],
            "--sweeps",
            k,
            "--steps",
            3,
            "--no-progress",
            "--device",
            "cpu",
        )
        assert res.exit_code == 0, res.output
        assert ("2 heat-bath sweeps per stage" in res.output) == (k == 2)
    a, b = read_ensemble(outs[0]), read_ensemble(outs[2])
    assert b["attrs"]["sweeps"] == 2 and a["attrs"]["sweeps"] == 0
    assert (a["spins"] != b["spins"]).mean() > 0.05
    np.testing.assert_array_equal(block_spins(b["spins"], 2), block_spins(a["spins"], 2))
    np.testing.assert_array_equal(
        b["energy"],
        -(
            b["spins"].astype(float) * (np.roll(b["spins"], 1, -1) + np.roll(b["spins"], 1, -2))
        ).mean(axis=(1, 2)),
    )
    g0 = generate(
        tiny_checkpoint,
        L=16,
        samples=4,
        out=tmp_path / "g0.h5",
        steps=3,
        device="cpu",
        progress=False,
    )
    g1 = generate(
        tiny_checkpoint,
        L=16,
        samples=4,
        out=tmp_path / "g1.h5",
        steps=3,
        device="cpu",
        progress=False,
        sweeps=1,
    )
    s0, s1 = read_ensemble(g0)["spins"], read_ensemble(g1)["spins"]
    assert (s0 != s1).any() and read_ensemble(g1)["attrs"]["sweeps"] == 1
    img = make_checkpoint(tmp_path / "img.safetensors", lattice="image-dct")
    assert_one_line_error(
        run(
            "generate",
            "--L",
            16,
            "--out",
            tmp_path / "i.npz",
            "--checkpoint",
            img,
            "--sweeps",
            1,
            "--no-progress",
            "--device",
            "cpu",
        ),
        "not images",
    )


@pytest.mark.parametrize(
    "args, new",
    [
        (["--data", "x.h5", "--out", "r"], "isingscale train skild"),
        (["--conditional", "--factor", "4", "--data", "x.h5"], "isingscale train sr3"),
        (["--cnn", "--data", "x.h5"], "isingscale train cnn"),
        (["--coarse", "16", "--init", "c.safetensors"], "isingscale train coarse-stage --size NC"),
        (["--images", "photos/", "--out", "r"], "isingscale train skild --images"),
    ],
)
def test_old_train_spelling_names_the_new_one(args, new):
    assert_one_line_error(run("train", *args), f"is now '{new} ...'")


def test_train_help_lists_one_subcommand_per_model():
    res = run("train", "--help")
    assert res.exit_code == 0
    for sub in ("skild", "coarse-stage", "sr3", "cnn"):
        assert f"  {sub} " in res.output, res.output


def test_train_help_shows_the_configurations_defaults():
    # The options default to None and the frozen configuration supplies the value; --help shows
    # it as text, which must be the configuration's (one source of defaults, checked).
    from isingscale.baselines import CNNTrainConfig, SR3Config
    from isingscale.skild import CoarseConfig, TrainConfig

    configs = {"skild": TrainConfig, "coarse-stage": CoarseConfig, "sr3": SR3Config}
    configs["cnn"] = CNNTrainConfig
    checked = 0
    for name, config in configs.items():
        for param in main.commands["train"].commands[name].params:
            field = config.__dataclass_fields__.get(param.name)
            if (
                field is None
                or not isinstance(param.show_default, str)
                or param.default is not None
            ):
                continue
            want = field.default
            shown = param.show_default
            if want is None:
                assert shown == "all", (name, param.name, shown)  # no limit
            elif isinstance(want, tuple):
                assert shown == ",".join(map(str, want)), (name, param.name)
            elif isinstance(want, (int, float)) and not isinstance(want, bool):
                assert float(shown) == want, (name, param.name, shown, want)
            else:
                assert shown == str(want), (name, param.name, shown, want)
            checked += 1
    assert checked >= 20
