"""Whole lattices out of an HDF5 dataset's compressed chunks, bypassing HDF5's filter pipeline.

isingscale files store spins in chunks of whole lattices (``(c, L, L)``, gzip, and shuffle,
which does nothing to one-byte values). HDF5 inflates them one at a time while holding
h5py's global lock and the GIL; here each chunk's bytes are read as stored and inflated by
libdeflate when the system has it (about three times faster than zlib on spin data) or by
zlib otherwise, both without the GIL, so a reader thread overlaps the correlators' work.
Datasets laid out otherwise (other filters, chunks that cut lattices, multi-byte values under
shuffle, chunks never written) are read by h5py as usual: :func:`read_lattices` returns None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import zlib

import h5py
import numpy as np


@functools.cache
def _libdeflate():
    """libdeflate's (alloc, zlib_decompress, free) functions, or None when it is absent."""
    name = ctypes.util.find_library("deflate")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        alloc = lib.libdeflate_alloc_decompressor
        inflate = lib.libdeflate_zlib_decompress
    except (OSError, AttributeError):
        return None
    alloc.restype = ctypes.c_void_p
    lib.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
    inflate.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
    ]
    inflate.restype = ctypes.c_int
    return alloc, inflate, lib.libdeflate_free_decompressor


def inflate(buf: bytes, out: np.ndarray) -> None:
    """Inflate the zlib stream ``buf`` (an HDF5 gzip chunk) into ``out`` (C-contiguous, exactly
    the uncompressed size). libdeflate when present, else zlib; ValueError if corrupt."""
    lib = _libdeflate()
    if lib is not None:
        alloc, fn, free = lib
        handle = alloc()  # a decompressor per call: thread-safe, and cheap next to a chunk
        if not handle:
            raise MemoryError("libdeflate could not allocate a decompressor")
        try:
            status = fn(handle, buf, len(buf), out.ctypes.data, out.nbytes, None)
        finally:
            free(handle)
        if status != 0:
            raise ValueError(f"corrupt deflate stream (libdeflate status {status})")
        return
    data = zlib.decompress(buf, bufsize=out.nbytes)
    if len(data) != out.nbytes:
        raise ValueError(f"chunk inflates to {len(data)} bytes, expected {out.nbytes}")
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)


def filters(d: h5py.Dataset) -> set[int] | None:
    """HDF5 filter ids of ``d`` when :func:`read_lattices` can read it, else None: (n, L, L)
    in chunks of whole lattices, no filter but deflate and (for one-byte values) shuffle."""
    if d.ndim != 3 or d.chunks is None or tuple(d.chunks[1:]) != tuple(d.shape[1:]):
        return None
    plist = d.id.get_create_plist()
    ids = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
    if not ids <= {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE}:
        return None
    if h5py.h5z.FILTER_SHUFFLE in ids and d.dtype.itemsize != 1:
        return None
    return ids


def read_lattices(d: h5py.Dataset, start: int, stop: int) -> np.ndarray | None:
    """Samples start:stop of ``d`` (0 <= start < stop <= len(d)) as stored, or None when
    HDF5 must read them (see the module docstring)."""
    ids = filters(d)
    if ids is None:
        return None
    c = d.chunks[0]
    plane = d.shape[1:]
    gzip = h5py.h5z.FILTER_DEFLATE in ids
    out = np.empty((stop - start, *plane), d.dtype)
    chunk = np.empty((c, *plane), d.dtype)
    for first in range(start - start % c, stop, c):
        try:
            mask, buf = d.id.read_direct_chunk((first, 0, 0))
        except (KeyError, OSError, ValueError, RuntimeError):  # not written: fill values
            return None
        if mask:  # HDF5 skipped a filter on this chunk: let it undo what it did
            return None
        lo, hi = max(first, start), min(first + c, stop)
        whole = lo == first and hi == first + c  # the chunk lands in ``out`` as it is
        dest = out[lo - start : hi - start] if whole else chunk
        if gzip:
            inflate(buf, dest)
        elif len(buf) == dest.nbytes:
            dest.reshape(-1).view(np.uint8)[:] = np.frombuffer(buf, np.uint8)
        else:
            return None
        if not whole:
            out[lo - start : hi - start] = chunk[lo - first : hi - first]
    return out
