"""``isingscale simulate`` through click's CliRunner, and a real kill -9 of a subprocess."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.io import read_attrs, read_ensemble


def _invoke(*args):
    return CliRunner().invoke(main, ["simulate", "--no-progress", *map(str, args)])


def test_simulate_summary(tmp_path):
    out = tmp_path / "x.h5"
    r = _invoke("--L", 8, "--samples", 20, "--chains", 2, "--out", out)
    assert r.exit_code == 0, r.output
    for word in (
        "wrote 20 samples",
        "M flipped spins/s",
        "mean cluster size",
        "energy per site",
        "exact",
        "|m|",
        "Binder U4",
        "reference at Tc",
    ):
        assert word in r.output
    assert read_attrs(out)["n_samples"] == 20


def test_help_has_examples_and_defaults():
    r = CliRunner().invoke(main, ["simulate", "--help"])
    assert r.exit_code == 0 and "Examples:" in r.output and "[default: auto]" in r.output
    assert "--thermalize 2000 --thermalize-unit updates" in " ".join(r.output.split())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--L", 1, "--samples", 5], "lattice size"),
        (["--L", 8, "--T", 0, "--samples", 5], "temperature"),
        (["--L", 8, "--T", -2, "--samples", 5], "temperature"),
        (["--L", 8, "--samples", 0], "samples"),
        (["--L", 8, "--samples", 5, "--schedule", "fixed"], "interval"),
        (["--L", 8, "--samples", 5, "--thermalize", 0], "thermalize must be"),
        (["--L", 8, "--samples", 5, "--thermalize", -3], "thermalize must be"),
        (["--L", 8, "--samples", 5, "--thermalize", "soon"], "thermalize must be"),
        (
            ["--L", 8, "--samples", 5, "--thermalize", "auto", "--thermalize-unit", "updates"],
            "a number",
        ),
    ],
)
def test_bad_input_one_line(tmp_path, args, message):
    r = _invoke(*args, "--out", tmp_path / "x.h5")
    assert r.exit_code == 1 and r.output.startswith("Error: ") and message in r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()


def test_too_short_thermalization_warns_in_one_line(tmp_path):
    """The paper's 2,000 Wolff updates at L = 256: one warning line on stderr, then the run."""
    args = ["--L", 256, "--samples", 2, "--chains", 2, "--thermalize", 2000]
    r = _invoke(*args, "--thermalize-unit", "updates", "--out", tmp_path / "x.h5")
    assert r.exit_code == 0, r.output
    warning = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "too short for L = 256" in warning[0]
    assert "NOT stationary" in r.output and "Traceback" not in r.output


def test_bogus_choice_is_usage_error(tmp_path):
    r = _invoke("--L", 8, "--samples", 5, "--algorithm", "heatbath", "--out", tmp_path / "x.h5")
    assert r.exit_code == 2


def test_existing_unwritable_corrupt_foreign_mismatch(tmp_path):
    out = tmp_path / "x.h5"
    assert _invoke("--L", 8, "--samples", 4, "--chains", 2, "--out", out).exit_code == 0
    before = out.read_bytes()
    cases = [
        (["--L", 8, "--samples", 8, "--out", out], "already exists"),
        (["--L", 16, "--samples", 8, "--chains", 2, "--out", out, "--resume"], "L="),
        (["--L", 8, "--T", 2.5, "--samples", 8, "--chains", 2, "--out", out, "--resume"], "T="),
        (["--L", 8, "--seed", 5, "--samples", 8, "--chains", 2, "--out", out, "--resume"], "seed="),
    ]
    for args, message in cases:
        r = _invoke(*args)
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert out.read_bytes() == before
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00garbage" * 100)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.zeros(3)
    for path, message in ((junk, "not a readable HDF5"), (foreign, "not an isingscale ensemble")):
        r = _invoke("--L", 8, "--samples", 8, "--out", path, "--resume")
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1
    (tmp_path / "afile").write_text("x")
    r = _invoke("--L", 8, "--samples", 8, "--out", tmp_path / "afile" / "x.h5")
    assert r.exit_code == 1 and "cannot create directory" in r.output


def test_threshold_warns_on_stderr(tmp_path):
    r = _invoke(
        "--L",
        8,
        "--samples",
        4,
        "--chains",
        1,
        "--thermalize",
        20,
        "--schedule",
        "threshold",
        "--out",
        tmp_path / "t.h5",
    )
    assert r.exit_code == 0 and "biases" in r.output


def test_kill_9_then_resume_completes(tmp_path):
    """A CLI run killed with SIGKILL mid-run leaves a readable file; --resume completes it."""
    out = tmp_path / "k.h5"
    samples = 100000  # about 3 ms per sample: minutes to finish, killed after the first blocks
    args = [
        "simulate",
        "--L",
        "32",
        "--samples",
        str(samples),
        "--decorrelate",
        "100",
        "--chains",
        "2",
        "--thermalize",
        "50",
        "--out",
        str(out),
        "--no-progress",
    ]
    code = "import sys; from isingscale.cli import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NUMBA_NUM_THREADS": "2"},
    )
    deadline = time.time() + 60
    n = 0
    while time.time() < deadline and n < 20:
        time.sleep(0.2)
        try:  # the writer holds HDF5's file lock; peek without taking it
            with h5py.File(out, "r", locking=False) as f:
                n = f["energy"].shape[0] if "energy" in f else 0
        except (OSError, KeyError):
            n = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < n < samples, "the run should have been killed mid-way"
    n_killed = read_attrs(out)["n_samples"]
    assert read_ensemble(out, start=n_killed - 1)["spins"].shape == (1, 32, 32)
    target = n_killed + 100
    r = _invoke(*args[1:3], "--samples", target, *args[5:], "--resume")
    assert r.exit_code == 0, r.output
    d = read_ensemble(out)
    assert len(d["spins"]) == len(d["energy"]) == target
    np.testing.assert_array_equal(d["chain"], np.arange(target) % 2)
