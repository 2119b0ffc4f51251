"""Command-line interface: ``isingscale COMMAND``. Thin wrappers over the public API.

Each command lives in the module named for its concept; heavy imports (numba, torch)
happen inside the command so that ``isingscale --help`` is instant.
"""

from __future__ import annotations

import sys

import click

from ..errors import IsingScaleError


class Group(click.Group):
    """Turns :class:`IsingScaleError` (and a few OS errors) into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except IsingScaleError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            sys.exit(130)


@click.group(
    cls=Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True}
)
@click.version_option(package_name="isingscale")
def main() -> None:
    """Critical 2-D Ising lattices: simulate, super-resolve with SKILD, and check the physics."""


@main.group(cls=Group)
def bench() -> None:
    """Benchmarks: throughput figures, reported as ratios against a baseline run side by side."""


def _register() -> None:
    # Each module adds its commands to `main` (and `bench`) when imported.
    import importlib

    for name in ("simulate", "correlate", "lattices", "show", "skild", "grow", "train", "evaluate"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:  # a command module not written yet
            if e.name != f"{__name__}.{name}":
                raise


_register()
