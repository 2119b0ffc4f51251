"""The same lattices written in every format the reader takes (for the reader's tests)."""

from __future__ import annotations

import h5py
import numpy as np

import isingscale as isc


def structured_spins(n: int, L: int, seed: int = 0) -> np.ndarray:
    """+-1 lattices with short-range order (a blurred random field's signs), so that
    correlators are not all zero and a transposed or flipped read would show."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, L, L))
    x = x + np.roll(x, 1, axis=1) + np.roll(x, 1, axis=2) + 0.3 * np.roll(x, 2, axis=2)
    x += np.linspace(-0.5, 0.5, n)[:, None, None]  # magnetisation drifts across samples
    return np.where(x < 0, -1, 1).astype(np.int8)


def write_native(path, spins, T=isc.T_C):
    with isc.create_ensemble(path, L=spins.shape[-1], kind="montecarlo", attrs={"T": T}) as w:
        w.append(spins)
    return path


def write_plain_h5(path, spins, name="spins", dtype=np.int8):
    """An HDF5 file with one dataset and no attributes at all."""
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=spins.astype(dtype))
    return path


def write_skild_pngs(folder, spins):
    """PNG lattices exactly as SKILD's data_generation/ising_wolff.py writes them:
    ((s + 1) * 127) as uint8, mode "L", ising_00000.png, ..."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(spins):
        img = ((s.astype(np.int16) + 1) * 127).astype(np.uint8)
        Image.fromarray(img).save(folder / f"ising_{i:05d}.png")
    return folder
