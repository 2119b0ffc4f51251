"""Where torch work runs: ``--device auto | cpu | cuda``, resolved in one place.

``auto`` takes the CUDA GPU when one is present and the CPU otherwise; asking for ``cuda``
without a GPU is a one-line error. Network calls on a GPU run under bfloat16 autocast
(:func:`autocast`); on the CPU everything stays float32, so CPU results are reproducible
bit for bit at a fixed thread count.
"""

from __future__ import annotations

import contextlib

from .errors import IsingScaleError

DEVICES = ("auto", "cpu", "cuda")


def usable_cores() -> int:
    """CPU cores this process may use (its CPU affinity, e.g. under taskset or CI)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_device(device="auto"):
    """auto -> cuda if available else cpu; an explicit 'cuda' without a GPU is an error.

    Accepts a :class:`torch.device` (returned as it is) or one of :data:`DEVICES`.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device not in DEVICES:
        raise IsingScaleError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise IsingScaleError(
            "--device cuda requested but no CUDA GPU is available (use --device cpu or auto)"
        )
    return torch.device(device)


def autocast(device):
    """bfloat16 autocast on a CUDA device, nothing on the CPU (a context manager)."""
    import torch

    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)
