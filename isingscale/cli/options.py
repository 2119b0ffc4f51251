"""Option types shared by several commands."""

from __future__ import annotations

import os

import click


def default_threads() -> int:
    """Cores this process may use (respects CPU affinity, e.g. under taskset or CI)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    metavar="DEVICE",
    help="auto: CUDA when a GPU is present, else CPU.",
)
