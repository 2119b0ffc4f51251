"""Training data: Ising ensembles (and images) as tensors, their spectrum, augmented batches.

:func:`load_training_data` is the one place that reads ensemble files for training (the SKILD
network, its coarse stage and the SR3 baseline all come through it). Augmentations are exact
symmetries of the periodic Ising ensemble: random periodic translations, the 8 symmetries of
the square and the global spin flip. Images ("image-dct") get horizontal mirror images only,
the DCT basis's symmetry.

Several lattice sizes (ensemble files of different L) train one network for all of them:
optimizer steps take the sizes in turn, each with the same number of sites
(:meth:`TrainingData.batch_size`); the first file's size is the primary one, the
checkpoint's default L.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import IsingScaleError
from .coarsen import measure_block_transfer
from .spectral import Spectrum, estimate_spectrum

SPECTRUM_LATTICES = 20000  # lattices the spectrum and block transfer are measured on (at most)
TRANSFER_FACTORS = (2, 4, 8)  # block-spin transfer functions measured (where L/b >= 4)


def load_training_data(sources) -> tuple[dict[int, np.ndarray], list[dict], float | None]:
    """The ±1 lattices of the given lattice sources grouped by size, their provenance, and T.

    sources: ensemble files or any other lattice source
    (:func:`isingscale.lattices.open_lattices`: ``FILE.h5:/dataset``, ``.npy``, ``.npz``, PNG
    folders, arrays, or ``Lattices`` opened with ``values`` / ``T`` / ``binarize``).
    Returns ({L: spins (n, L, L) int8}, provenance per source, T). Sizes keep the order of
    their first source: the first is the run's primary size (the checkpoint's default L).
    All sources must share one temperature. The provenance (what the checkpoint records and
    ``--resume`` checks) is the reader's, with ``path`` the source to read again.
    """
    from ..lattices import open_lattices

    if sources is None or len(sources) == 0:
        raise IsingScaleError("no training data given (--data FILE.h5 ...)")
    by_size, prov, Ts = {}, [], set()
    for source in sources:
        if source is None:  # a recorded source that was an array
            raise IsingScaleError("--resume: the run was trained on arrays; give the data again")
        lat = open_lattices(source)
        spins = lat.read()
        by_size.setdefault(lat.L, []).append(spins)
        Ts.add(round(float(lat.attrs["T"]), 9))
        p = lat.provenance()
        prov.append({"path": lat.spec, **{k: p[k] for k in PROVENANCE_KEYS if k in p}})
    if len(Ts) > 1:
        raise IsingScaleError(
            f"training files were simulated at different temperatures {sorted(Ts, key=str)}"
        )
    return {L: np.concatenate(a) for L, a in by_size.items()}, prov, Ts.pop()


def training_sources(data, recorded: list[dict] | None) -> list:
    """What a run trains on: ``data`` (one lattice source or a list of them), else the
    sources a resumed run recorded."""
    from ..lattices import source_list

    given = [] if data is None else source_list(data)
    return given or [d["path"] for d in recorded or []]


# What a checkpoint records about each training source (Lattices.provenance()'s keys).
PROVENANCE_KEYS = ("sha256", "n_samples", "L", "T", "dataset", "format", "values", "T_from")


def augmented_batch(data: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """A batch of lattices with random translation, square symmetry and spin flip (float32),
    built on ``data``'s device from draws of the (CPU) generator ``g``."""
    n, L, _ = data.shape
    idx = torch.randint(n, (batch,), generator=g)
    shift = torch.randint(L, (2, batch), generator=g)
    sym = torch.randint(8, (batch,), generator=g)
    flip = torch.randint(2, (batch,), generator=g) * 2 - 1
    idx, shift, sym, flip = (t.to(data.device) for t in (idx, shift, sym, flip))
    r = torch.arange(L, device=data.device)
    iy = (r[None, :, None] + shift[0][:, None, None]) % L
    ix = (r[None, None, :] + shift[1][:, None, None]) % L
    x = data[idx[:, None, None], iy, ix].float()
    m = lambda bit: ((sym >> bit) & 1).bool()[:, None, None]  # noqa: E731
    x = torch.where(m(2), x.transpose(-1, -2), x)
    x = torch.where(m(1), x.flip(-1), x)
    x = torch.where(m(0), x.flip(-2), x)
    return x * flip[:, None, None]


def augmented_images(data: torch.Tensor, batch: int, g: torch.Generator) -> torch.Tensor:
    """A batch of images (n, C, N, N) with random horizontal mirroring."""
    idx = torch.randint(data.shape[0], (batch,), generator=g).to(data.device)
    flip = torch.randint(2, (batch,), generator=g).bool()[:, None, None, None].to(data.device)
    x = data[idx]
    return torch.where(flip, x.flip(-1), x)


@dataclass
class TrainingData:
    """What a run trains on: fields per size, their spectrum (per channel for images), provenance.

    fields: {L: (n, L, L) int8 spins, or (n, C, L, L) float32 images (model scale)}; the
    first key is the primary size.
    """

    fields: dict
    spectrum: Spectrum | list[Spectrum]
    provenance: list
    T: float | None = None
    transfer: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # image metadata: channels, pixel_mean, color

    @property
    def L(self) -> int:
        """The primary training size: the checkpoint's default lattice size."""
        return int(next(iter(self.fields)))

    @property
    def sizes(self) -> list[int]:
        return sorted(int(L) for L in self.fields)

    @property
    def channels(self) -> int:
        return int(self.extra.get("channels", 1))

    def size_at(self, step: int) -> int:
        """The lattice size trained at optimizer step `step` (0-based): the sizes in turn."""
        return self.sizes[step % len(self.sizes)]

    def batch_size(self, batch: int, N: int) -> int:
        """Lattices per step at size N for `batch` at the primary size: equal sites per step."""
        return max(1, round(batch * (self.L / N) ** 2))

    def on(self, device) -> TrainingData:
        """The same data with the lattices on ``device``: batches are then built there (on a
        GPU, the CPU would otherwise assemble every batch and hold the steps back)."""
        return replace(self, fields={N: x.to(device) for N, x in self.fields.items()})

    def batch(self, batch: int, g: torch.Generator, N: int | None = None) -> torch.Tensor:
        data = self.fields[self.L if N is None else N]
        if data.ndim == 4:
            return augmented_images(data, batch, g)
        return augmented_batch(data, batch, g)

    def spectrum_dict(self) -> dict | list[dict]:
        sp = self.spectrum
        return [x.to_dict() for x in sp] if isinstance(sp, list) else sp.to_dict()


def load_ising(paths, meta: dict | None = None) -> TrainingData:
    """Ising ensembles; spectrum and block transfer from ``meta`` (a checkpoint's) or measured.

    A measured spectrum comes from the largest size (its shells reach the lowest |k|);
    block-spin transfer functions from the primary size.
    """
    spins, prov, T = load_training_data(paths)
    L = next(iter(spins))
    if meta is not None:
        from .checkpoint import spectrum_from_meta

        spectrum, transfer = spectrum_from_meta(meta["spectrum"]), meta["block_transfer"]
    else:
        big = spins[max(spins)]
        spectrum = estimate_spectrum(big[: min(len(big), SPECTRUM_LATTICES)].astype(np.float64))
        sub = spins[L][: min(len(spins[L]), SPECTRUM_LATTICES)]
        transfer = [
            measure_block_transfer(sub, b) for b in TRANSFER_FACTORS if L % b == 0 and L // b >= 4
        ]
    return TrainingData(
        {n: torch.as_tensor(a) for n, a in spins.items()}, spectrum, prov, T, transfer
    )


def load_image_data(
    images, *, size: int, color: str, limit: int | None, meta: dict | None, progress: bool
) -> TrainingData:
    """Images of ``images`` at size x size, centred per channel; per-channel DCT spectra
    (measured, or from ``meta`` with its pixel_mean when resuming)."""
    from .checkpoint import spectrum_from_meta
    from .images import load_images, to_model

    pixels, files = load_images(images, size=size, color=color, limit=limit, progress=progress)
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
    prov = [
        {
            "images": str(Path(images).resolve()),
            "n_images": int(len(pixels)),
            "files": len(files),
            "size": size,
            "color": color,
            "pixels_sha256": digest,
        }
    ]
    if meta is not None:
        pixel_mean = np.asarray(meta["pixel_mean"], dtype=np.float32)
        spectrum = spectrum_from_meta(meta["spectrum"])
    else:
        pixel_mean = pixels.mean(axis=(0, 2, 3)).astype(np.float32)
        x = to_model(pixels, pixel_mean)
        spectrum = [
            estimate_spectrum(x[:, c].astype(np.float64), lattice="image-dct")
            for c in range(x.shape[1])
        ]
    fields = torch.as_tensor(to_model(pixels, pixel_mean))
    extra = {
        "channels": int(pixels.shape[1]),
        "pixel_mean": pixel_mean.tolist(),
        "color": "rgb" if pixels.shape[1] == 3 else "grey",
    }
    return TrainingData({int(fields.shape[-1]): fields}, spectrum, prov, None, [], extra)


def check_same_data(td: TrainingData, recorded: list[dict]) -> None:
    """--resume and the coarse stage: the data must be the files (or images) recorded."""
    key = "pixels_sha256" if recorded and "pixels_sha256" in recorded[0] else "sha256"
    if [p[key] for p in td.provenance] != [p[key] for p in recorded]:
        what = "images" if key == "pixels_sha256" else "data files"
        raise IsingScaleError(f"--resume: the {what} differ from those the run was started with")


def check_temperature(td: TrainingData, meta: dict) -> None:
    """--init: the data must be at the checkpoint's temperature."""
    T = meta.get("T")
    if T is not None and td.T is not None and abs(float(T) - float(td.T)) > 1e-9:
        raise IsingScaleError(
            f"--init: the checkpoint was trained at T={T}, the data are at T={td.T}"
        )
