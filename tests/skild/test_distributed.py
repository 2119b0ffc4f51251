"""Data-parallel training under torchrun (gloo on CPU): 2 processes = 1 with twice the batch.

The two ranks draw the same global batch from the shared generator and train on halves;
DDP averages their gradients, which is the gradient of the doubled batch. Float sums run
in another order, so the curves agree to rounding, not bitwise.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from isingscale.skild.checkpoint import read_checkpoint

from .conftest import random_spins, write_spins

# Real torchrun subprocesses with a TCP rendezvous on 127.0.0.1 (~40 s on 2 cores): an
# earlier in-process version (mp.spawn) deadlocked under load; this one runs in the fast suite.
pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend"
)

ARGS = [
    "--base-channels",
    "4",
    "--depth",
    "1",
    "--channel-mult",
    "1,2",
    "--seed",
    "7",
    "--device",
    "cpu",
    "--checkpoint-every",
    "20",
    "--no-progress",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(data, out, *, steps: int, batch: int, procs: int, resume: bool = False) -> None:
    """``isingscale train skild`` in a subprocess, under torchrun --nproc-per-node procs if > 1."""
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(procs),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
        ]
        if procs > 1
        else [sys.executable]
    )
    cmd = [
        *launcher,
        "-m",
        "isingscale",
        "train",
        "skild",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--batch",
        str(batch),
        *ARGS,
        *(["--resume"] if resume else []),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def _losses(run) -> list[float]:
    rows = list(csv.DictReader(open(run / "loss.csv")))
    return [float(r["loss"]) for r in rows]


def test_torchrun_two_gloo_processes_match_one_with_double_batch(tmp_path):
    data = write_spins(tmp_path / "d.h5", random_spins(32, 8, seed=11))
    _train(data, tmp_path / "one", steps=40, batch=8, procs=1)
    _train(data, tmp_path / "two", steps=40, batch=4, procs=2)
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 2  # logged every 20 steps
    assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-3, (a, b)
    ta = read_checkpoint(tmp_path / "one" / "model.safetensors")[1]
    tb = read_checkpoint(tmp_path / "two" / "model.safetensors")[1]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=1e-3, atol=1e-4)
    meta = read_checkpoint(tmp_path / "two" / "model.safetensors")[0]
    assert meta["training"]["world_size"] == 2 and meta["training"]["lattices_seen"] == 40 * 8
    # Resume under torchrun (20 steps, then --resume to 40) continues the same curve.
    _train(data, tmp_path / "resumed", steps=20, batch=4, procs=2)
    _train(data, tmp_path / "resumed", steps=40, batch=4, procs=2, resume=True)
    c = _losses(tmp_path / "resumed")
    assert len(c) == 2 and max(abs(x - y) / abs(x) for x, y in zip(a, c)) < 1e-3, (a, c)
    assert not [p for p in os.listdir(tmp_path / "two") if ".tmp" in p]
