"""Streaming correlate holds one chunk at a time: its peak memory does not grow with the file.

A fresh Python process (so that its peak RSS belongs to this run alone) imports isingscale,
warms up, and streams an ensemble file many chunks long through ``open_ensemble`` +
``measure`` (what ``isingscale correlate`` does without ``--scheduler``). Its peak RSS growth
over the RSS after warm-up must stay far below the file's spins. As a control, the same
process then reads the whole spins array: that growth must reach the spins' size, so the
measurement does see a path that loads the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("resource")  # getrusage: Unix only

from isingscale.analysis.bench import write_random_ensemble  # noqa: E402

L = 32
SAMPLES = 64 * 1024  # 64 MiB of int8 spins, 256 chunks
CHUNK = 256  # lattices per chunk: 256 KiB of spins, ~8 MB of working memory

CHILD = r"""
import json, sys
from isingscale.analysis.bench import rss_now, rss_peak, warm_up
from isingscale.analysis.correlators import measure
from isingscale.analysis.ensemble import open_ensemble
from isingscale.io import read_ensemble

path, chunk = sys.argv[1], int(sys.argv[2])
warm_up()
base = rss_now()
ds = open_ensemble(path, chunks=chunk)
res = measure(ds, shapes=("square",))
ds.close()
stream_peak = rss_peak()
spins = read_ensemble(path, datasets=("spins",))["spins"]
print(json.dumps({"base": base, "stream_peak": stream_peak, "load_peak": rss_peak(),
                  "n_samples": int(res["n_samples"]), "spin_bytes": int(spins.nbytes)}))
"""


def test_streaming_peak_memory_is_bounded_by_a_chunk_not_the_file(tmp_path):
    path = write_random_ensemble(tmp_path / "big.h5", L=L, samples=SAMPLES, seed=1)
    spin_bytes = SAMPLES * L * L
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(CHUNK)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["n_samples"] == SAMPLES and r["spin_bytes"] == spin_bytes
    stream_growth = r["stream_peak"] - r["base"]
    load_growth = r["load_peak"] - r["base"]
    # Streaming: a chunk's working memory (~30x its 256 KiB) plus dask and h5py bookkeeping,
    # ~15 MB whatever the file's size; loading the file would take at least its 64 MiB (and the
    # correlators over it ~30x that), default 16 MiB chunks ~0.5 GB.
    assert stream_growth < 0.4 * spin_bytes, (stream_growth, spin_bytes)
    # Control: the same measurement sees the whole array once it is read.
    assert load_growth > 0.9 * spin_bytes, (load_growth, spin_bytes)


WHOLE = r"""
import json, sys
from isingscale.analysis.bench import rss_now, rss_peak, warm_up
from isingscale.analysis.report import correlate

small, big, out = sys.argv[1:4]
warm_up()
correlate([small], out=out + "-warm", progress=False)  # imports, fonts, references: not counted
base = rss_now()
correlate([small], out=out + "-small", progress=False)
after_small = rss_peak()
ds = correlate([big], out=out + "-big", progress=False)
print(json.dumps({"small": after_small - base, "big": rss_peak() - base,
                  "n": int(ds["n_samples"][0])}))
"""


def test_whole_correlate_at_L256_needs_no_more_memory_for_a_file_twice_as_large(tmp_path):
    """The whole command (correlators, references, netCDF, plots) at L = 256 on 64 MiB and then
    on 128 MiB of spins (4 and 8 chunks of 16 MiB) in one process: the second run raises the
    peak RSS by much less than the 64 MiB between the files (measured: 17 MB, one chunk), where
    any path holding the file, or a per-lattice map of it, would add at least that much."""
    small = write_random_ensemble(tmp_path / "small.h5", L=256, samples=1024, seed=1)
    big = write_random_ensemble(tmp_path / "big.h5", L=256, samples=2048, seed=2)
    # glibc raises its mmap threshold to the size of the last freed block, so freed 16 MiB
    # chunks would stay in the heap (and in RSS) in an order-dependent way; a fixed threshold
    # returns them, so the peak RSS follows what the program holds.
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)
    proc = subprocess.run(
        [sys.executable, "-c", WHOLE, str(small), str(big), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["n"] == 2048
    extra_spins = (2048 - 1024) * 256 * 256
    assert r["small"] > 0  # the measurement sees the run's working memory
    assert r["big"] - r["small"] < 0.5 * extra_spins, r
