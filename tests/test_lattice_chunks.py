"""isingscale.lattices.chunks: whole lattices inflated outside HDF5 equal what h5py reads, and
every layout it cannot read falls back to h5py (None), so the spins never differ."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from isingscale.io import create_ensemble
from isingscale.lattices import chunks, open_lattices

N, L = 37, 12  # 37 lattices: the last chunk of 8 is partly filled


@pytest.fixture(scope="module")
def spins():
    rng = np.random.default_rng(5)
    return np.where(rng.random((N, L, L)) < 0.55, 1, -1).astype(np.int8)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, spins):
    """name -> (file, dataset) holding ``spins`` in one HDF5 layout each."""
    tmp = tmp_path_factory.mktemp("chunks")
    with create_ensemble(tmp / "native.h5", L=L, kind="montecarlo", attrs={"T": 2.3}) as w:
        w.append(spins)
    with h5py.File(tmp / "other.h5", "w") as f:
        f.create_dataset("plain_chunks", data=spins, chunks=(8, L, L))
        f.create_dataset("gzip9", data=spins, chunks=(5, L, L), compression="gzip",
                         compression_opts=9)  # fmt: skip
        f.create_dataset("contiguous", data=spins)
        f.create_dataset("cut_lattices", data=spins, chunks=(4, L // 2, L), compression="gzip")
        f.create_dataset("lzf", data=spins, chunks=(8, L, L), compression="lzf")
        f.create_dataset("fletcher", data=spins, chunks=(8, L, L), fletcher32=True)
        f.create_dataset("int16_shuffle", data=spins.astype(">i2"), chunks=(8, L, L),
                         compression="gzip", shuffle=True)  # fmt: skip
    return {
        "native": (tmp / "native.h5", "spins"),
        **{
            k: (tmp / "other.h5", k)
            for k in ("plain_chunks", "gzip9", "contiguous", "cut_lattices", "lzf", "fletcher")
        },
        "int16_shuffle": (tmp / "other.h5", "int16_shuffle"),
    }


SLICES = [(0, N), (0, 1), (3, 20), (8, 16), (30, N), (N - 1, N)]


@pytest.mark.parametrize("name", ["native", "plain_chunks", "gzip9"])
def test_inflated_chunks_equal_h5py(layouts, name):
    path, key = layouts[name]
    with h5py.File(path, "r") as f:
        d = f[key]
        assert chunks.filters(d) is not None
        for a, b in SLICES:
            got = chunks.read_lattices(d, a, b)
            assert got is not None and got.dtype == d.dtype
            np.testing.assert_array_equal(got, d[a:b], err_msg=f"{name}[{a}:{b}]")


@pytest.mark.parametrize("name", ["contiguous", "cut_lattices", "lzf", "fletcher", "int16_shuffle"])
def test_other_layouts_are_left_to_h5py(layouts, spins, name):
    path, key = layouts[name]
    with h5py.File(path, "r") as f:
        assert chunks.read_lattices(f[key], 0, N) is None
    lat = open_lattices(f"{path}:{key}")
    np.testing.assert_array_equal(lat.read(2, 30), spins[2:30])


def test_zlib_reads_the_same_without_libdeflate(layouts, monkeypatch):
    path, key = layouts["native"]
    with h5py.File(path, "r") as f:
        expected = f[key][:]
        monkeypatch.setattr(chunks, "_libdeflate", lambda: None)
        np.testing.assert_array_equal(chunks.read_lattices(f[key], 0, N), expected)


def test_inflate_checks_the_stream():
    data = np.arange(4096, dtype=np.int64).view(np.int8)
    out = np.empty_like(data)
    chunks.inflate(zlib.compress(data.tobytes(), 1), out)
    np.testing.assert_array_equal(out, data)
    with pytest.raises(ValueError):
        chunks.inflate(b"not a deflate stream", out)
    with pytest.raises(ValueError):  # the right stream, but more bytes than it inflates to
        chunks.inflate(zlib.compress(data[:100].tobytes()), out)
