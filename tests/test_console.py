"""Every command through the installed console script ``isingscale``, in a subprocess.

The other CLI tests call the click group in-process; these run the entry point pip installed
(``[project.scripts]``), as a user does, on tiny inputs: the README's Quick start command (at
a tiny size), simulate, merge, correlate, coarsen, train skild / coarse-stage / sr3 / cnn,
upsample, generate, evaluate and the benchmarks. A missing console script is a failure, not a
skip: it means the install is broken.

Also here: ``kill -9`` of ``train skild`` after it wrote a checkpoint, then ``--resume``, ends
bit for bit where an uninterrupted run ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from isingscale.io import read_attrs, read_ensemble

BIN = Path(sys.executable).parent
TINY_NET = ["--base-channels", "4", "--depth", "1", "--channel-mult", "1,2"]
QUIET = ["--device", "cpu", "--no-progress"]


def script() -> str:
    path = shutil.which("isingscale", path=str(BIN)) or shutil.which("isingscale")
    assert path, f"the console script isingscale is not installed (looked in {BIN} and on PATH)"
    return path


def env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2", "MPLBACKEND": "Agg"}


def isingscale(*args, cwd=None, ok=True, timeout=600) -> subprocess.CompletedProcess:
    """Run the console script; with ok, assert exit 0 (else return whatever happened)."""
    cmd = [script(), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env(), timeout=timeout)
    if ok:
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    """Two small Wolff ensembles at L = 16 (seeds 1 and 2), made by the console script."""
    d = tmp_path_factory.mktemp("console")
    for seed in (1, 2):
        isingscale(
            "simulate",
            "--L",
            16,
            "--samples",
            64,
            "--seed",
            seed,
            "--thermalize",
            200,
            "--chains",
            2,
            "--out",
            d / f"mc{seed}.h5",
            "--no-progress",
        )
    return d


def test_quick_start_upsample_at_a_tiny_size(tmp_path):
    # README, Quick start: `isingscale upsample --factor 4` (fresh Monte Carlo, the shipped
    # checkpoint, the comparison with the ground truth), here with 8 lattices.
    done = isingscale("upsample", "--factor", 4, "--samples", 8, "--no-progress", cwd=tmp_path)
    out = tmp_path / "data" / "upsample_x4-0001.h5"
    assert read_attrs(out)["n_samples"] == 8 and read_attrs(out)["L"] == 32
    assert f"wrote {Path('data') / 'upsample_x4-0001.h5'} (8 -> 32)" in done.stdout
    assert "comparison with the ground truth" in done.stdout and "bar (" in done.stdout


def test_simulate_merge_correlate(mc, tmp_path):
    assert read_attrs(mc / "mc1.h5")["n_samples"] == 64
    shards = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for i, path in enumerate(shards):
        isingscale(
            "simulate",
            "--L",
            8,
            "--samples",
            4,
            "--seed",
            10 + i,
            "--thermalize",
            50,
            "--chains",
            1,
            "--out",
            path,
            "--no-progress",
        )
    isingscale("merge", *shards, "--out", tmp_path / "ab.h5", "--no-progress")
    assert read_attrs(tmp_path / "ab.h5")["n_samples"] == 8
    isingscale("correlate", mc / "mc1.h5", mc / "mc2.h5", "--out", tmp_path / "c", "--no-progress")
    assert (tmp_path / "c" / "correlations.nc").exists() and (tmp_path / "c" / "report.md").exists()


def test_train_every_model_coarsen_upsample_generate(mc, tmp_path):
    data = mc / "mc1.h5"
    run = tmp_path / "skild"
    isingscale(
        "train",
        "skild",
        "--data",
        data,
        "--out",
        run,
        "--steps",
        2,
        "--batch",
        4,
        *TINY_NET,
        *QUIET,
    )
    ckpt = run / "model.safetensors"
    isingscale(
        "train",
        "coarse-stage",
        "--init",
        ckpt,
        "--size",
        4,
        "--data",
        data,
        "--out",
        tmp_path / "stage",
        "--steps",
        2,
        "--batch",
        4,
        *TINY_NET,
        *QUIET,
    )
    isingscale(
        "train",
        "sr3",
        "--factor",
        2,
        "--data",
        data,
        "--out",
        tmp_path / "sr3",
        "--steps",
        2,
        "--batch",
        4,
        *TINY_NET,
        *QUIET,
    )
    isingscale(
        "train",
        "cnn",
        "--data",
        data,
        "--out",
        tmp_path / "cnn",
        "--steps",
        2,
        "--batch",
        4,
        *QUIET,
    )
    for name in ("stage", "sr3", "cnn"):
        assert (tmp_path / name / "model.safetensors").exists()
    isingscale(
        "coarsen",
        mc / "mc2.h5",
        "--factor",
        2,
        "--method",
        "block",
        "--out",
        tmp_path / "coarse.h5",
    )
    for ck, out in ((ckpt, "sr.h5"), (tmp_path / "sr3" / "model.safetensors", "sr3.h5")):
        done = isingscale(
            "upsample",
            "--factor",
            2,
            "--input",
            tmp_path / "coarse.h5",
            "--checkpoint",
            ck,
            "--out",
            tmp_path / out,
            "--steps",
            2,
            *QUIET,
        )
        assert read_ensemble(tmp_path / out)["spins"].shape == (64, 16, 16)
        assert "comparison with the ground truth" in done.stdout  # the coarse file names its source
    done = isingscale(
        "generate",
        "--checkpoint",
        tmp_path / "stage" / "model.safetensors",
        "--L",
        8,
        "--samples",
        2,
        "--steps",
        2,
        "--out",
        tmp_path / "g.h5",
        *QUIET,
    )
    assert (
        "energy per site" in done.stdout and read_attrs(tmp_path / "g.h5")["coarse_stage"] != "none"
    )


def test_evaluate_and_benchmarks(mc, tmp_path):
    done = isingscale(
        "evaluate",
        "--data",
        mc / "mc1.h5",
        "--factors",
        2,
        "--methods",
        "nearest,bicubic",
        "--samples",
        32,
        "--out",
        tmp_path / "ev",
        "--no-plots",
        "--no-progress",
    )
    assert (tmp_path / "ev" / "report.md").exists() and "nearest" in done.stdout
    done = isingscale("bench", "skild", "--L", 16, "--samples", 2, "--repeats", 1, *QUIET[:2])
    out = done.stdout
    assert "| upsample ×4 4 → 16 | this tree |" in out and "| generate L = 16 |" in out
    assert "Network call at 16²" in out


def test_old_train_spelling_is_one_line(tmp_path):
    done = isingscale("train", "--data", "x.h5", "--out", tmp_path / "r", ok=False)
    assert done.returncode == 1 and "isingscale train skild" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def _kill_after_a_checkpoint(args: list, run: Path) -> int:
    """Start `isingscale train skild ARGS`, SIGKILL it once run/checkpoint.safetensors exists;
    returns the step that checkpoint holds."""
    proc = subprocess.Popen(
        [script(), *map(str, args)], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ckpt, t0 = run / "checkpoint.safetensors", time.monotonic()
    while not ckpt.exists():
        assert proc.poll() is None, f"train ended before a checkpoint: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() - t0 < 300, "no checkpoint within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    from isingscale.skild.checkpoint import read_checkpoint

    return int(read_checkpoint(ckpt)[0]["training"]["step"])


def test_kill_9_during_train_then_resume_is_bitwise_an_uninterrupted_run(mc, tmp_path):
    steps = 300
    args = [
        "train",
        "skild",
        "--data",
        mc / "mc1.h5",
        "--steps",
        steps,
        "--batch",
        4,
        "--checkpoint-every",
        5,
        "--seed",
        3,
        *TINY_NET,
        *QUIET,
    ]
    killed = tmp_path / "killed"
    at = _kill_after_a_checkpoint([*args, "--out", killed], killed)
    assert 5 <= at < steps and not (killed / "model.safetensors").exists()
    isingscale("train", "skild", "--out", killed, "--steps", steps, "--resume", *QUIET)
    isingscale(*args, "--out", tmp_path / "full")
    for name in ("model.safetensors", "checkpoint.safetensors"):
        a, b = load_file(str(killed / name)), load_file(str(tmp_path / "full" / name))
        assert a.keys() == b.keys(), name
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, f"{name}: {different[:5]}"
    steps_logged = np.loadtxt(killed / "loss.csv", delimiter=",", skiprows=1, usecols=0)
    assert list(steps_logged) == list(range(20, steps + 1, 20))  # no row twice, none lost
    assert not list(killed.glob(".*tmp*"))
