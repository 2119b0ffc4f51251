"""Lattices as pictures: one row per source, one column per sample (``isingscale show``).

Spins are grey images, -1 black and +1 white (SKILD's PNG convention: up is bright); a
continuous field is shown on the same scale, clipped to [-1, 1]. Each site is a whole number
of pixels (no interpolation); lattices larger than 256 are drawn as majority-rule blocks
(the title says the block size), so that the PNG stays small (8-bit grey, tens of kB).

A super-resolved file (``kind = "superresolved"``) brings its coarse input and, when it can
be found, the Monte Carlo truth it was coarse-grained from: three rows, so that each column
shows one sample's input, output and truth. The input is the file named by the output's
``source`` attribute when that is a coarse ensemble; when ``upsample`` coarse-grained fresh
Monte Carlo itself (``source`` is then the truth), the input is recomputed from the truth
the way upsample made it (``input_kind``: majority-rule blocks, or the Fourier low band, at
``sizes[0]``). Relative paths are looked up from the working directory, then next to the
file that names them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..blocks import block_spins
from ..errors import IsingScaleError
from ..lattices import Lattices, open_lattices, source_list, unique_names

DPI = 100
MIN_PIXELS, MAX_PIXELS = 128, 256  # panel size in pixels


@dataclass
class Row:
    """One row of the figure: a label and (k, n, n) images on the +-1 scale."""

    label: str
    images: np.ndarray
    scale: tuple[float, float] = (-1.0, 1.0)


def show(
    sources: Any,
    *,
    samples: int = 4,
    out: str | os.PathLike | None = None,
    labels: list[str] | None = None,
    values: str | None = None,
    T: float | None = None,
):
    """Draw the first ``samples`` lattices of each source; returns the matplotlib Figure.

    sources : one lattice source or a list (files, ``FILE:dataset``, PNG folders, arrays;
        see :func:`isingscale.lattices.open_lattices`).
    out : write the figure there when given (an 8-bit grey PNG, tens of kB).
    labels : one row label per source (default: file names).
    values, T : as :func:`isingscale.lattices.open_lattices`.
    """
    if samples < 1:
        raise IsingScaleError(f"samples must be at least 1, got {samples}")
    lats = [open_lattices(s, values=values, T=T) for s in source_list(sources)]
    if not lats:
        raise IsingScaleError("show: no lattice sources given")
    names = list(labels) if labels else unique_names(lats)
    if len(names) != len(lats):
        raise IsingScaleError(f"{len(names)} labels for {len(lats)} sources")
    rows = [row for lat, name in zip(lats, names) for row in rows_of(lat, name, samples)]
    fig = draw(rows, samples)
    if out is not None:
        from ..io import writable_dir

        out = Path(out)
        writable_dir(out.parent)
        save_grey(fig, out)
    return fig


def images(lat: Lattices, k: int) -> Row:
    """The first k samples of ``lat`` as a Row (continuous data without a scale: min..max)."""
    x = lat.read_field(0, k)
    scale = (-1.0, 1.0)
    if lat.field and not lat.values.mapped and lat.raw.data.dtype.kind in "iu":
        scale = (float(x.min()), float(x.max()) or 1.0)
    return Row("", x, scale)


def rows_of(lat: Lattices, name: str, k: int) -> list[Row]:
    """One row, or input / output / truth rows for a super-resolved file."""
    row = images(lat, k)
    row.label = f"{name}, L={lat.L}"
    if lat.attrs.get("kind") != "superresolved":
        return [row]
    coarse, truth = upsample_inputs(lat, k)
    row.label = f"{name} (super-resolved), L={lat.L}"
    return [r for r in (coarse, row, truth) if r is not None]


def upsample_inputs(lat: Lattices, k: int) -> tuple[Row | None, Row | None]:
    """(coarse input, Monte Carlo truth) rows of a super-resolved file, where found."""
    src = _existing(lat.attrs.get("source"), lat.file)
    if src is None:
        return None, None
    parent = open_lattices(src)
    if parent.attrs.get("kind") == "coarse":
        coarse = images(parent, k)
        coarse.label = f"input {src.name}, L={parent.L}"
        fine = _existing(parent.attrs.get("source"), src)
        truth = open_lattices(fine) if fine is not None else None
        if truth is None or truth.L != lat.L:
            return coarse, None
        row = images(truth, k)
        row.label = f"truth {fine.name}, L={truth.L}"
        return coarse, row
    if parent.L != lat.L:
        return None, None
    truth = images(parent, k)
    truth.label = f"truth {src.name}, L={parent.L}"
    sizes = json.loads(str(lat.attrs.get("sizes", "[]")) or "[]")
    kind = lat.attrs.get("input_kind")
    if not sizes or kind not in ("block", "fourier"):
        return None, truth
    n = int(sizes[0])
    x = truth.images
    data = block_spins(x.astype(np.int8), lat.L // n) if kind == "block" else fourier_lowpass(x, n)
    return Row(f"input ({kind}, from truth), L={n}", data.astype(np.float32)), truth


def _existing(path, near: Path | None = None) -> Path | None:
    """``path`` if it exists, else relative to the folder of ``near`` (the file naming it)."""
    if not path or str(path) == "none":
        return None
    p = Path(str(path))
    if p.exists():
        return p
    if near is not None and not p.is_absolute() and (near.parent / p).exists():
        return near.parent / p
    return None


def fourier_lowpass(x: np.ndarray, n: int) -> np.ndarray:
    """(k, N, N) -> (k, n, n): the ideal low-pass (|q| < n/2) sampled on the coarse grid, on
    the fine +-1 scale; upsample's Fourier coarse-graining (isingscale.skild.coarsen), in
    numpy so that this layer needs no torch."""
    N = x.shape[-1]
    h = (n + 1) // 2
    q = np.arange(-(h - 1), h)
    X = np.fft.fft2(x.astype(np.float64), norm="ortho")
    xc = np.zeros(x.shape[:-2] + (n, n), dtype=complex)
    xc[..., (q % n)[:, None], (q % n)[None, :]] = X[..., (q % N)[:, None], (q % N)[None, :]] / (
        N / n
    )
    return np.fft.ifft2(xc, norm="ortho").real


def reduce_for_display(row: Row, pixels: int = MAX_PIXELS) -> Row:
    """Lattices larger than ``pixels`` shrunk by the smallest integer block factor b that
    fits: majority-rule blocks for spins (a two-valued picture, as the lattice itself),
    block means for a field; the title says so. Lattices that fit are left alone."""
    n = row.images.shape[-1]
    b = -(-n // pixels)
    if b < 2:
        return row
    m = (n // b) * b  # whole blocks only: the last n - m rows/columns are not drawn
    x = row.images[:, :m, :m]
    two_valued = np.isin(x, (-1.0, 1.0)).all()
    if two_valued:
        small = block_spins(x.astype(np.int8), b).astype(np.float32)
    else:
        small = x.reshape(len(x), m // b, b, m // b, b).mean(axis=(2, 4))
    what = "majority" if two_valued else "mean"
    return Row(f"{row.label} ({b}x{b} {what} blocks)", small, row.scale)


def draw(rows: list[Row], columns: int):
    """A bare matplotlib Figure (no pyplot, renders anywhere): one row per Row, its label
    above it (source, L), one panel per image titled with its sample index; each panel as
    many pixels as the largest lattice has sites (128 to 256), drawn without interpolation
    so that sites stay sharp."""
    from matplotlib.figure import Figure

    rows = [reduce_for_display(r) for r in rows]
    size = max(r.images.shape[-1] for r in rows)
    panel = min(max(size, MIN_PIXELS), MAX_PIXELS) / DPI  # inches
    title, gap = 0.15, 0.04  # inches above each row for its titles, between columns
    width, height = columns * (panel + gap), len(rows) * (panel + title)
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(
        left=gap / 2 / width,
        right=1 - gap / 2 / width,
        bottom=0,
        top=1 - title / height,
        wspace=gap / panel,
        hspace=title / panel,
    )
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for row, line in zip(rows, axes):
        for i, ax in enumerate(line):
            ax.set_axis_off()
            if i >= len(row.images):
                continue
            draw_panel(ax, row, i)
            if i == 0:  # the row's label may run on over the next panel's left half
                ax.set_title(f"{row.label}, #0", fontsize=6, pad=1.5, loc="left")
            else:
                ax.set_title(f"#{i}", fontsize=6, pad=1.5, loc="right")
    return fig


def draw_panel(ax, row: Row, i: int) -> None:
    """Image ``i`` of ``row`` on ``ax``: grey on the row's scale, one block of pixels per
    site (no interpolation), no axes."""
    ax.set_axis_off()
    ax.imshow(
        row.images[i], cmap="gray", vmin=row.scale[0], vmax=row.scale[1], interpolation="nearest"
    )


def save_grey(fig, path: Path) -> None:
    """Write the figure as an 8-bit grey PNG (every pixel of it is grey: a third of RGB)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as img:
        img.convert("L").save(path, optimize=True)
