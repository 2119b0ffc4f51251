"""How stored numbers become spins: the value convention of a lattice source.

Stored values are used as spins as they are when they are +-1. Two-valued data of any other
kind ({0, 1}, {0, 254}, {0, 255}, {False, True}, ...) becomes spins only through an explicit
convention ``LO -> -1, HI -> +1``: given by the user (``--values LO,HI``), recorded by the file
that holds the data (an isingscale PNG export), or detected (the smaller value goes to -1) with
a one-line notice. Float data with more than two values is a continuous *field*: it becomes
spins only with ``binarize``, as the signs of (2 x - LO - HI) / (HI - LO) (of x itself without a
convention), sign(0) = +1. Integer data with more than two values is not a lattice; with
``binarize`` and a convention it is thresholded the same way (e.g. 8-bit PNG intensities,
``--values 0,254`` thresholds at 127).

Detection looks at the first lattices of the data (at most 256 at a time: bounded memory and
time whatever the file's size; it reads on only while they hold a single value); every chunk
read later is checked against the convention, so a value that breaks it raises a one-line
error naming the sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import IsingScaleError


@dataclass(frozen=True)
class Values:
    """The convention that turns stored numbers into spins.

    lo, hi : stored values read as -1 and +1 (None: the data are +-1 already).
    origin : "stored" (+-1 as they are), "given" (--values), "recorded" (by the source
        file), "auto" (detected from the data, with a notice).
    field : the data are continuous (more than two values): spins only with binarize.
    seen : the first distinct values the detection found (for messages).
    """

    lo: float | None = None
    hi: float | None = None
    origin: str = "stored"
    field: bool = False
    seen: tuple = ()

    @property
    def mapped(self) -> bool:
        return self.lo is not None

    def describe(self) -> str:
        """One phrase for notices, reports and provenance."""
        if not self.mapped:
            what = "+-1 as stored"
        else:
            what = f"{fmt(self.lo)} -> -1, {fmt(self.hi)} -> +1"
        if self.field:
            what = f"continuous field, threshold {fmt(self.threshold)}" + (
                f" ({fmt(self.lo)} -> -1, {fmt(self.hi)} -> +1)" if self.mapped else ""
            )
        return f"{what} ({self.origin})" if self.origin != "stored" else what

    @property
    def threshold(self) -> float:
        return 0.0 if not self.mapped else (self.lo + self.hi) / 2

    def as_attr(self) -> str:
        """``"LO,HI"`` for file attributes ("" when the data are +-1 as stored)."""
        return f"{fmt(self.lo)},{fmt(self.hi)}" if self.mapped else ""


def fmt(v) -> str:
    """A stored value as the user would type it (254, not 254.0; True stays True)."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def parse_values(text: str | Iterable | None) -> tuple[float, float] | None:
    """``"LO,HI"`` (or a pair) -> (LO, HI) as floats; None stays None. ``false,true`` = 0,1."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p.strip().lower() for p in text.split(",")]
        words = {"false": 0.0, "true": 1.0}
        try:
            pair = [words[p] if p in words else float(p) for p in parts]
        except ValueError:
            raise IsingScaleError(
                f"--values must be two numbers LO,HI (LO -> -1, HI -> +1), got {text!r}"
            ) from None
    else:
        pair = [float(v) for v in text]
    if len(pair) != 2 or not all(np.isfinite(pair)):
        raise IsingScaleError(f"--values must be two numbers LO,HI, got {text!r}")
    if pair[0] == pair[1]:
        raise IsingScaleError(f"--values needs two different numbers, got {text!r}")
    return pair[0], pair[1]


def distinct(block: np.ndarray, limit: int = 3) -> list:
    """Up to ``limit`` distinct values of ``block`` (sorted), in O(size) without sorting it."""
    flat = block.reshape(-1)
    if flat.size == 0:
        return []
    if flat.dtype.itemsize == 1 and flat.dtype.kind in "iub":
        counts = np.zeros(256, dtype=np.int64)
        for i in range(0, flat.size, 1 << 18):  # bincount widens to int64: 2 MiB at a time
            counts += np.bincount(flat[i : i + (1 << 18)].view(np.uint8), minlength=256)
        found = np.flatnonzero(counts).astype(np.uint8).view(flat.dtype)
        return sorted(found.tolist())[:limit]
    found = []
    rest = flat
    while rest.size and len(found) < limit:
        v = rest[0]
        found.append(v.item())
        rest = rest[rest != v]
    return sorted(found)


def check_finite(block: np.ndarray, where: str, start: int = 0) -> None:
    """One-line error naming the first sample with NaN or +-inf (float data only)."""
    if block.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(block)
    if bad.any():
        i = int(np.argmax(bad.reshape(len(block), -1).any(axis=1)))
        what = "NaN" if np.isnan(block[i]).any() else "an infinite value"
        raise IsingScaleError(f"{where}: sample {start + i} holds {what}")


def detect(
    blocks: Iterable[np.ndarray],
    *,
    where: str,
    given: tuple[float, float] | None = None,
    recorded: tuple[float, float] | None = None,
) -> tuple[Values, str | None]:
    """The convention for data whose first blocks are ``blocks``; returns (Values, notice).

    Reads blocks only until two values are seen. A ``given`` convention (--values) applies
    when the data hold exactly its two values; data that are +-1 already are used as they
    are (the notice says --values did not apply). Raises a one-line error for NaN, a single
    value that is not +-1 (which spin it is would be a guess), and given values that the
    data do not hold.
    """
    seen: set = set()
    start = 0
    for block in blocks:
        check_finite(block, where, start)
        seen.update(distinct(block))
        start += len(block)
        if len(seen) >= 2 or seen <= {-1, 1}:
            break
    values = sorted(seen)[:3]
    if len(seen) > 2:
        return _many(values, given), None
    if given is not None:
        if seen <= set(given):
            return Values(*given, origin="given"), None
        if seen <= {-1, 1}:
            return Values(), f"{where}: holds +-1 spins; --values {_pair(given)} does not apply"
        raise IsingScaleError(
            f"{where}: holds the values {_list(values)}, not the --values {_pair(given)}"
        )
    if seen <= {-1, 1}:
        return Values(), None
    if recorded is not None and seen <= set(recorded):
        return Values(*recorded, origin="recorded"), None
    if len(seen) == 1:
        raise IsingScaleError(
            f"{where}: every site holds {fmt(values[0])}; which spin that is would be a guess: "
            "give --values LO,HI (LO -> -1, HI -> +1)"
        )
    lo, hi = values
    auto = Values(float(lo), float(hi), origin="auto")
    return auto, (
        f"{where}: two-valued data read as spins {fmt(lo)} -> -1, {fmt(hi)} -> +1 "
        "(auto-detected; --values LO,HI sets it)"
    )


def _many(values, given) -> Values:
    """Data with more than two values: a field (integer data: refused as spins unless
    binarized with a convention, see :func:`spins_problem`)."""
    seen = tuple(values)
    if given is not None:
        return Values(*given, origin="given", field=True, seen=seen)
    return Values(field=True, seen=seen)


def spins_problem(values: Values, *, where: str, binarize: bool, dtype) -> str | None:
    """Why spins cannot be made from data with this convention (None: they can)."""
    if not values.field:
        return None
    kind = np.dtype(dtype).kind
    if kind in "iub" and not (binarize and values.mapped):
        return (
            f"{where}: holds more than two distinct values ({_list(values.seen)}, ...), so it "
            "is not a two-valued spin lattice; to threshold it, give --binarize and --values "
            "LO,HI (cut at their midpoint)"
        )
    if not binarize:
        return (
            f"{where}: holds a continuous field (more than two values), not +-1 spins; use "
            "--binarize (binarize=True) to take its signs"
            + ("" if values.mapped else " (with --values LO,HI to set the scale)")
        )
    return None


def to_spins(
    block: np.ndarray, values: Values, *, binarize: bool, where: str, start: int = 0
) -> np.ndarray:
    """Spins (int8 +-1, same shape) from a block of stored data; one-line errors for data
    that break the convention, naming the first offending sample (``start`` = its offset)."""
    check_finite(block, where, start)
    up, down = np.int8(1), np.int8(-1)
    if binarize or values.field:
        below = block < values.threshold
        if values.mapped and values.hi < values.lo:
            below = block > values.threshold
        return np.where(below, down, up)
    if not values.mapped:
        if not _all_pm1(block):
            _raise_other(block, np.abs(block) == 1, where, start, "+-1")
        return block.astype(np.int8, copy=False)
    hi = block == values.hi
    ok = block == values.lo
    ok |= hi
    if not ok.all():
        _raise_other(block, ok, where, start, f"{fmt(values.lo)} or {fmt(values.hi)}")
    return np.where(hi, up, down)


def _all_pm1(block: np.ndarray) -> bool:
    """Every value is +1 or -1. Integers: three passes without temporaries (at most 1, at
    least -1, no zero); floats need the exact comparison."""
    if block.dtype.kind in "iu":
        in_range = block.max(initial=1) <= 1 and block.min(initial=-1) >= -1
        return bool(in_range and np.count_nonzero(block) == block.size)
    return bool((np.abs(block) == 1).all())


def to_field(block: np.ndarray, values: Values) -> np.ndarray:
    """Float32 data on the +-1 scale: (2 x - LO - HI) / (HI - LO), or x without a convention."""
    x = block.astype(np.float32)
    if values.mapped:
        x = (2 * x - np.float32(values.lo + values.hi)) / np.float32(values.hi - values.lo)
    return x


def _raise_other(block, ok, where, start, expected) -> None:
    rows = ~ok.reshape(len(block), -1).all(axis=1)
    i = int(np.argmax(rows))
    value = block[i][~ok[i]].reshape(-1)[0]
    how = "signs" if expected == "+-1" else "signs after --values"
    raise IsingScaleError(
        f"{where}: sample {start + i} holds {fmt(value)}, not {expected}; use --binarize "
        f"(binarize=True) to take {how}"
    )


def _pair(given) -> str:
    return f"{fmt(given[0])},{fmt(given[1])}"


def _list(values) -> str:
    return ", ".join(fmt(v) for v in values)
