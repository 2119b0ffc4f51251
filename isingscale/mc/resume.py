"""Resume state of a Monte Carlo file: the chains as they were after a given sample count.

The group ``/_state`` holds two slots, each tagged with the number of samples in the file
it belongs to: per-chain xoshiro256++ states (``rng``, (2, chains, 4) uint64), spins
(``bits``, (2, chains, ceil(L^2 / 8)) uint8: ``numpy.packbits`` of spin > 0, row-major;
uncompressed, so that storing it costs a copy, not a compression) and production work
counters (``flipped``,
``updates``, (2, chains) int64: flipped spins and updates since thermalization, up to
that sample). A new state is written to the slot *not* holding the current one, and its
tag is set last, so a process killed while writing leaves the other slot intact; on
reopening, the slot whose tag equals the file's sample count is the one to continue from.
"""

from __future__ import annotations

import numpy as np

from ..errors import IsingScaleError
from ..io import EnsembleWriter
from .chains import Chains


def _group(writer: EnsembleWriter, chains: Chains):
    f = writer.h5file
    if "_state" in f and "flipped" not in f["_state"]:  # written before the counters were kept
        for name in ("flipped", "updates"):
            f["_state"].create_dataset(name, shape=(2, chains.chains), dtype=np.int64)
    if "_state" not in f:
        g = f.create_group("_state")
        C, L = chains.chains, chains.L
        g.create_dataset("rng", shape=(2, C, 4), dtype=np.uint64)
        g.create_dataset("bits", shape=(2, C, (L * L + 7) // 8), dtype=np.uint8)
        g.create_dataset("flipped", shape=(2, C), dtype=np.int64)
        g.create_dataset("updates", shape=(2, C), dtype=np.int64)
        g.create_dataset("n_samples", data=np.array([-1, -1], np.int64))
    return f["_state"]


def save_state(writer: EnsembleWriter, chains: Chains, *, n: int) -> None:
    """Store the chains' state for sample count ``n`` in the slot not holding the current one
    (nothing for an in-memory run, which cannot be resumed)."""
    if writer.path is None:
        return
    g = _group(writer, chains)
    tags = g["n_samples"][:]
    slot = 1 if tags[0] == writer.n_samples else 0
    g["n_samples"][slot] = -1  # invalid while being written
    g["rng"][slot] = chains.rng
    g["bits"][slot] = np.packbits(chains.spins > 0, axis=1)
    g["flipped"][slot] = chains.production.flipped
    g["updates"][slot] = chains.production.updates
    g["n_samples"][slot] = n


def restore_state(writer: EnsembleWriter, chains: Chains) -> bool:
    """Load the chains' state matching the file's sample count; False if there is none."""
    if writer.path is None:  # in memory: always a new run
        return False
    f, n = writer.h5file, writer.n_samples
    if "_state" not in f:
        if n:
            raise IsingScaleError(
                f"cannot resume {writer.path}: it holds {n} samples but no chain state"
            )
        return False
    g = f["_state"]
    try:
        slots = np.flatnonzero(g["n_samples"][:] == n)
        if not len(slots):
            if n:
                raise IsingScaleError(
                    f"cannot resume {writer.path}: no chain state for its {n} samples"
                )
            return False
        chains.rng[:] = g["rng"][slots[0]]
        if "bits" in g:
            up = np.unpackbits(g["bits"][slots[0]], axis=1, count=chains.N).astype(bool)
            chains.spins[:] = np.where(up, 1, -1).astype(np.int8)
        else:  # files written before the state was bit-packed
            chains.spins[:] = g["spins"][slots[0]].reshape(chains.chains, chains.N)
        if "flipped" in g:  # files written before the counters were kept start them at 0
            chains.production.flipped[:] = g["flipped"][slots[0]]
            chains.production.updates[:] = g["updates"][slots[0]]
    except (KeyError, ValueError, TypeError, OSError) as e:  # e.g. a chain count mismatch
        raise IsingScaleError(f"cannot resume {writer.path}: damaged chain state ({e})") from None
    return True
