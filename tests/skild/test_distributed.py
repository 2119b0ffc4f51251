"""Data-parallel training (torch.distributed, gloo on CPU): 2 processes = 1 process with twice the batch.

The two ranks draw the same global batch from the shared generator and train on halves;
DDP averages their gradients, which is the gradient of the doubled batch. Float sums run
in another order, so the curves agree to rounding, not bitwise.
"""

from __future__ import annotations

import csv
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from isingscale.skild.checkpoint import read_checkpoint
from isingscale.skild.train import train

from .conftest import random_spins, write_spins

# slow: on the 2-core development machine the two gloo ranks deadlocked once in a full-suite
# run (both waiting on a futex after rendezvous), so this stays out of CI until that is fixed.
pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend"),
    pytest.mark.slow,
]

KW = dict(base_channels=4, depth=1, channel_mult=(1, 2), seed=7, device="cpu", progress=False, log_every=1,
          warmup=2, checkpoint_every=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str, steps: list[int]) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    import importlib

    tr = importlib.import_module("isingscale.skild.train")  # the module, not the re-exported function

    if rank != 0:  # only rank 0 may write checkpoints
        def refuse(*a, **k):
            raise AssertionError("a checkpoint was written by a rank other than 0")

        tr.save_checkpoint = refuse
    for i, n in enumerate(steps):
        more = dict(device="cpu", progress=False) if i else KW
        tr.train([data], out, steps=n, batch=2, resume=i > 0, **more)


def _spawn(data, out, steps):
    mp.start_processes(_worker, args=(2, _free_port(), str(data), str(out), steps), nprocs=2, join=True,
                       start_method="spawn")


def _losses(run) -> list[float]:
    rows = list(csv.DictReader(open(run / "loss.csv")))
    return [float(r["loss"]) for r in rows]


def test_two_gloo_processes_match_one_with_double_batch(tmp_path):
    data = write_spins(tmp_path / "d.h5", random_spins(32, 8, seed=11))
    one = train([data], tmp_path / "one", steps=6, batch=4, **KW)
    _spawn(data, tmp_path / "two", [6])
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 6
    assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-4, (a, b)
    ta = read_checkpoint(one)[1]
    tb = read_checkpoint(tmp_path / "two" / "model.safetensors")[1]
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=1e-4, atol=1e-5)
    meta = read_checkpoint(tmp_path / "two" / "model.safetensors")[0]
    assert meta["training"]["config"]["world_size"] == 2 and meta["training"]["lattices_seen"] == 6 * 4
    # Resume under 2 processes (3 steps, then --resume to 6) continues the same curve.
    _spawn(data, tmp_path / "resumed", [3, 6])
    c = _losses(tmp_path / "resumed")
    assert len(c) == 6 and max(abs(x - y) / abs(x) for x, y in zip(a, c)) < 1e-4, (a, c)
    assert not [p for p in os.listdir(tmp_path / "two") if ".tmp" in p]
