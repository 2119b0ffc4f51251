"""Connected two- and four-point spin correlators with jackknife error bars.

Conventions (lattice indexed [y, x], periodic, r in lattice spacings, r = 0 ... L/2):

- C(dx, dy) = < (1/L^2) sum_x s(x, y) s(x + dx, y + dy) >, translation- and sample-averaged.
  By Wiener-Khinchin it is the irfft2 of the mean |F(k)|^2, F = rfft2(s): only the per-block
  sums of |F(k)|^2 are kept (one rfft2 per lattice), and C is made from them once per
  jackknife replica.
- G2(r) = (C(r, 0) + C(0, r)) / 2 - <s>^2 along the axes; G2_radial bins all displacements
  (minimal image) by rint(|d|).
- G4c = <s1 s2 s3 s4> - <s1 s2><s3 s4> - <s1 s3><s2 s4> - <s1 s4><s2 s3>, each <.>
  translation-averaged and averaged over the same samples. Shapes: ``square`` (corners
  (0,0), (r,0), (0,r), (r,r)), ``collinear`` (0, r, 2r, 3r on a line) and ``rectangle``
  (r x 2r). Collinear and rectangle are the mean of their x- and y-oriented versions (each
  orientation's G4c computed whole, then averaged); the square maps onto itself.

The four-point products come from the bit-packed Numba kernel in
:mod:`isingscale.analysis.kernels`; the pair terms from the FFT map C.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..device import usable_cores
from ..errors import IsingScaleError
from ..lattices import Lattices
from . import kernels
from .errors import DEFAULT_BLOCKS, BlockAccumulator, block_index, jackknife
from .radial import radial_bins, radial_mean

if TYPE_CHECKING:
    import xarray as xr

SHAPES = ("square", "collinear", "rectangle")

# Per-sample four-point products needed by each shape: name -> kernel row.
_P4_ROWS = {
    "square": {"P4_square": kernels.P4_SQUARE},
    "collinear": {
        "P4_collinear_x": kernels.P4_COLLINEAR_X,
        "P4_collinear_y": kernels.P4_COLLINEAR_Y,
    },
    "rectangle": {"P4_rectangle_x": kernels.P4_RECT_X, "P4_rectangle_y": kernels.P4_RECT_Y},
}


def check_shapes(shapes: Sequence[str]) -> tuple[str, ...]:
    shapes = tuple(dict.fromkeys(shapes))
    bad = [s for s in shapes if s not in SHAPES]
    if bad or not shapes:
        raise IsingScaleError(
            f"unknown shape {bad[0] if bad else '(none)'!r}; expected some of {', '.join(SHAPES)}"
        )
    return shapes


# Bytes of float64 lattices per FFT call: the copy and its transform stay in cache (16 at L = 128).
_FFT_BYTES = 1 << 21
# Threads measuring chunks in-process, one per core up to this: each holds one chunk of about
# 16 MiB of spins and its working memory (a few MiB) at a time.
MAX_THREADS = 8


def correlation_map(power: np.ndarray, L: int) -> np.ndarray:
    """C[..., dy, dx] = (1/L^2) sum_{x,y} s(x, y) s(x + dx, y + dy) from mean |F(k)|^2
    on the half plane (Wiener-Khinchin; irfft2 carries one 1/L^2)."""
    return np.fft.irfft2(power, s=(L, L)) / (L * L)


def chunk_terms(
    start: int, spins: np.ndarray, *, shapes: Sequence[str], n_samples: int, n_blocks: int
) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    """What lattices start, start + 1, ... (spins (n, L, L) int8 of +-1) add to the sums.

    Returns (per-sample values: m, |m|, m^2, m^4 and the four-point products
    ``P4_<shape>[_x|_y]`` (n, L/2 + 1), from the bit-packed kernel; {block: sum of |F(k)|^2
    over this chunk's samples in that block} (L, L // 2 + 1), from which the two-point map
    and the spectrum follow linearly). Each block's power is summed in sample order, so the
    sums depend only on the chunk boundaries. Touches no shared state and runs on one core
    with the GIL released (the kernel, the FFT), so chunks go to threads.
    """
    from scipy import fft

    spins = np.ascontiguousarray(spins, dtype=np.int8)
    n, L = len(spins), spins.shape[-1]
    prod, total = kernels.lattice_products(
        spins, L // 2, "square" in shapes, False, "collinear" in shapes, "rectangle" in shapes
    )
    m = total / (L * L)
    values = {"m": m, "abs_m": np.abs(m), "m2": m**2, "m4": m**4}
    for shape in shapes:
        for name, row in _P4_ROWS[shape].items():
            values[name] = prod[:, row, :]
    blocks = block_index(start, start + n, n_samples, n_blocks)
    step = max(1, _FFT_BYTES // (8 * L * L))
    power = {}
    for b in np.unique(blocks):
        seg = np.flatnonzero(blocks == b)
        power[int(b)] = block_sum = np.zeros((L, L // 2 + 1))
        for a in range(seg[0], seg[-1] + 1, step):
            part = spins[a : min(a + step, seg[-1] + 1)].astype(np.float64)
            kernels.add_power(fft.rfft2(part, workers=1), block_sum)
    return values, power


def add_terms(
    acc: BlockAccumulator, start: int, terms: tuple[dict[str, np.ndarray], dict[int, np.ndarray]]
) -> None:
    """Add :func:`chunk_terms` of the lattices from ``start`` on to ``acc`` (in sample order)."""
    values, power = terms
    acc.add(start, values)
    L = next(iter(power.values())).shape[0]
    sums = acc.sums.setdefault("power", np.zeros((acc.n_blocks, L, L // 2 + 1)))
    for b, block_sum in power.items():
        sums[b] += block_sum


def add_chunk(
    acc: BlockAccumulator, start: int, spins: np.ndarray, *, shapes: Sequence[str]
) -> None:
    """Add lattices start, start + 1, ... (spins (n, L, L) int8 of +-1) to ``acc``: per
    sample, m, |m|, m^2, m^4 and ``P4_<shape>[_x|_y]``; per block, ``power`` (see
    :func:`chunk_terms`)."""
    terms = chunk_terms(start, spins, shapes=shapes, n_samples=acc.n_samples, n_blocks=acc.n_blocks)
    add_terms(acc, start, terms)


def _pair(C: np.ndarray, dx, dy) -> np.ndarray:
    """<s(0,0) s(dx,dy)> from the (..., L, L) map C, any signs and sizes of the shifts."""
    L = C.shape[-1]
    return C[..., np.asarray(dy) % L, np.asarray(dx) % L]


def g2_axis(C: np.ndarray, m: np.ndarray) -> np.ndarray:
    """G2(r) = (C(r, 0) + C(0, r)) / 2 - <m>^2, r = 0 ... L/2."""
    r = np.arange(C.shape[-1] // 2 + 1)
    return 0.5 * (_pair(C, r, 0) + _pair(C, 0, r)) - (np.asarray(m) ** 2)[..., None]


def g2_radial(C: np.ndarray, m: np.ndarray) -> np.ndarray:
    """G2 averaged over all displacements in each rint(|d|) bin, minus <m>^2."""
    return radial_mean(C) - (np.asarray(m) ** 2)[..., None]


def g4c(shape: str, means: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(G4c, full <s1 s2 s3 s4>) of ``shape`` for r = 0 ... L/2 from ensemble means.

    Pair terms written out for each orientation; see the module docstring for corners.
    """
    C = means["C"]
    r = np.arange(C.shape[-1] // 2 + 1)
    if shape == "square":
        p4 = means["P4_square"]
        # s1 s2 and s3 s4: x at r; s1 s3 and s2 s4: y at r; s1 s4 diagonal; s2 s3 anti-diagonal.
        pairs = _pair(C, r, 0) ** 2 + _pair(C, 0, r) ** 2 + _pair(C, r, r) * _pair(C, -r, r)
        return p4 - pairs, p4
    if shape == "collinear":
        # 0, r, 2r, 3r: s1s2 = s3s4 = s2s3 at r, s1s3 = s2s4 at 2r, s1s4 at 3r.
        g = []
        for orient, (ux, uy) in (("x", (1, 0)), ("y", (0, 1))):
            c = [_pair(C, k * r * ux, k * r * uy) for k in (1, 2, 3)]
            g.append(means[f"P4_collinear_{orient}"] - c[0] ** 2 - c[1] ** 2 - c[2] * c[0])
        return 0.5 * (g[0] + g[1]), 0.5 * (means["P4_collinear_x"] + means["P4_collinear_y"])
    if shape == "rectangle":
        # x: corners (0,0) (r,0) (0,2r) (r,2r); y: (0,0) (2r,0) (0,r) (2r,r).
        gx = means["P4_rectangle_x"] - _pair(C, r, 0) ** 2 - _pair(C, 0, 2 * r) ** 2
        gx = gx - _pair(C, r, 2 * r) * _pair(C, -r, 2 * r)
        gy = means["P4_rectangle_y"] - _pair(C, 2 * r, 0) ** 2 - _pair(C, 0, r) ** 2
        gy = gy - _pair(C, 2 * r, r) * _pair(C, -2 * r, r)
        return 0.5 * (gx + gy), 0.5 * (means["P4_rectangle_x"] + means["P4_rectangle_y"])
    raise IsingScaleError(f"unknown shape {shape!r}")


def chunk_sums(
    path: str,
    start: int,
    stop: int,
    *,
    binarize: bool,
    shapes: Sequence[str],
    n_samples: int,
    n_blocks: int,
) -> BlockAccumulator:
    """Per-block sums of samples start:stop of one ensemble file, or of the ``Lattices`` that
    reads it (a task for a dask worker)."""
    import dask

    from .ensemble import open_ensemble

    with dask.config.set(scheduler="synchronous"):
        ds = open_ensemble(path, binarize=binarize)
        try:
            spins = np.ascontiguousarray(ds["spins"].data[start:stop].compute(), dtype=np.int8)
        finally:
            ds.close()
    acc = BlockAccumulator(n_samples, n_blocks)
    add_chunk(acc, start, spins, shapes=shapes)
    return acc


def _accumulate_distributed(
    ds: xr.Dataset, client, *, shapes, n_blocks, progress
) -> BlockAccumulator:
    """Chunks as tasks on the cluster, merged in sample order (bitwise equal to the serial sums)."""
    from ..cluster import bounded_map

    n = ds.sizes["sample"]
    acc = BlockAccumulator(n, n_blocks)
    bounds = np.cumsum((0,) + tuple(ds["spins"].data.chunks[0]))
    source = ds.encoding.get("lattices", ds.attrs["source"])  # the reader, its convention settled
    calls = [(source, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    parts = bounded_map(
        client,
        chunk_sums,
        calls,
        binarize=bool(ds.attrs["binarized"]),
        shapes=tuple(shapes),
        n_samples=n,
        n_blocks=n_blocks,
    )
    for part, (_, a, b) in zip(parts, calls):
        acc.merge(part)
        if progress is not None:
            progress.update(int(b - a))
    return acc


def sample_count(ds) -> int:
    """Samples of an ensemble Dataset or of a :class:`~isingscale.lattices.Lattices`."""
    return int(ds.n_samples) if isinstance(ds, Lattices) else int(ds.sizes["sample"])


def accumulate(
    ds, *, shapes: Sequence[str], n_blocks: int, progress=None, client=None
) -> BlockAccumulator:
    """Stream an ensemble's spins chunk by chunk into per-block sums (bounded memory).

    ds: an ensemble Dataset (:func:`~isingscale.analysis.ensemble.open_ensemble`) or a
    :class:`~isingscale.lattices.Lattices` read as spins (streamed without dask). Chunks are
    read and measured by one thread per core (at most :data:`MAX_THREADS`), at most one
    more chunk than threads in memory, and added in sample order, so the sums do not
    depend on the threads. client: a dask.distributed Client (Dataset only); then each chunk
    is a task that reads its samples from the ensemble file on a worker, and only per-block
    sums travel back.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from .ensemble import chunk_reader

    if client is not None:
        return _accumulate_distributed(
            ds, client, shapes=shapes, n_blocks=n_blocks, progress=progress
        )
    acc = BlockAccumulator(sample_count(ds), n_blocks)
    bounds, read = chunk_reader(ds)

    def work(i: int):
        terms = chunk_terms(
            bounds[i], read(i), shapes=shapes, n_samples=acc.n_samples, n_blocks=acc.n_blocks
        )
        return bounds[i], bounds[i + 1], terms

    def done(future) -> None:
        start, stop, terms = future.result()
        add_terms(acc, start, terms)
        if progress is not None:
            progress.update(stop - start)

    threads = min(MAX_THREADS, usable_cores(), len(bounds) - 1)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="isingscale") as pool:
        pending = deque()
        for i in range(len(bounds) - 1):
            pending.append(pool.submit(work, i))
            if len(pending) > threads:
                done(pending.popleft())
        while pending:
            done(pending.popleft())
    return acc


def measure(
    ds,
    *,
    shapes: Sequence[str] = ("square",),
    n_blocks: int = DEFAULT_BLOCKS,
    progress=None,
    client=None,
) -> xr.Dataset:
    """Every correlator and observable of one ensemble, with jackknife errors, in one pass.

    ds: an ensemble Dataset (:func:`~isingscale.analysis.ensemble.open_ensemble`) or a
    :class:`~isingscale.lattices.Lattices` read as spins
    (:func:`~isingscale.analysis.ensemble.spin_lattices`); attributes ``L``, ``T``, ``J``.
    client: optional dask.distributed Client that computes the chunks (see :func:`accumulate`).

    Returns a Dataset over ``r`` = 0 ... L/2 and ``k`` holding ``G2`` (axis), ``G2_radial``
    (coordinate ``r_radial``: mean |d| of each bin), ``G4c_<shape>`` and ``G4_<shape>`` (the
    full four-point average), ``S`` (power spectrum) and the scalars of
    :mod:`isingscale.analysis.observables` plus ``spectrum_exponent``; each with an ``_err``.
    """
    import xarray as xr

    from . import observables, spectrum

    shapes = check_shapes(shapes)
    L = int(ds.attrs["L"])
    T = float(ds.attrs.get("T", np.nan))
    J = float(ds.attrs.get("J", 1.0))
    acc = accumulate(ds, shapes=shapes, n_blocks=n_blocks, progress=progress, client=client)

    def estimators(means):
        means = dict(means, C=correlation_map(means["power"], L))
        out = {
            "G2": g2_axis(means["C"], means["m"]),
            "G2_radial": g2_radial(means["C"], means["m"]),
        }
        for shape in shapes:
            out[f"G4c_{shape}"], out[f"G4_{shape}"] = g4c(shape, means)
        out.update(observables.scalars(means, L=L, T=T, J=J))
        out.update(spectrum.spectrum(means["power"], L))
        return out

    res = jackknife(acc, estimators)
    _, _, r_radial = radial_bins(L)
    k = spectrum.k_bins(L)
    out = xr.Dataset(coords={"r": np.arange(L // 2 + 1), "k": k, "r_radial": ("r", r_radial)})
    for name, (value, err) in res.items():
        dims = () if value.ndim == 0 else (("k",) if name == "S" else ("r",))
        out[name] = (dims, value)
        out[f"{name}_err"] = (dims, err)
    out["n_samples"] = acc.n_samples
    out["n_blocks"] = acc.n_blocks
    out.attrs.update(L=L, T=T, J=J, shapes=list(shapes))
    return out
