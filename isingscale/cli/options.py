"""Option types shared by several commands."""

from __future__ import annotations

import click

from ..device import usable_cores


def default_threads() -> int:
    """Torch threads of a command: one per core this process may use."""
    return usable_cores()


device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    metavar="DEVICE",
    help="auto: CUDA when a GPU is present, else CPU.",
)


def _values(ctx, param, value):
    if value is None:
        return None
    from ..errors import IsingScaleError
    from ..lattices import parse_values

    try:
        return parse_values(value)
    except IsingScaleError as e:
        raise click.BadParameter(str(e)) from None


def lattice_options(*, binarize: bool = True, temperature: bool = True):
    """``--values LO,HI``, ``--T`` (and ``--binarize``): how lattices from elsewhere are read.

    ``temperature=False`` leaves out ``--T`` (for commands whose output does not depend on
    the input's temperature)."""

    def decorate(f):
        if binarize:
            f = click.option(
                "--binarize",
                is_flag=True,
                default=False,
                help="Take the signs of a continuous field (after --values) instead of "
                "refusing it.",
            )(f)
        if temperature:
            f = click.option(
                "--T",
                "T",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                metavar="T",
                help="Temperature of inputs that record none (default: Tc, with a notice).",
            )(f)
        return click.option(
            "--values",
            callback=_values,
            default=None,
            metavar="LO,HI",
            help="Stored LO is spin -1, HI is +1 (e.g. 0,254 for SKILD PNGs). Default: +-1 "
            "as stored; other two-valued data smaller -> -1, with a notice.",
        )(f)

    return decorate


def open_source(source, *, values=None, T=None, binarize=False):
    """A lattice source given on the command line, opened with its ``--values``, ``--T`` and
    ``--binarize`` (:func:`isingscale.lattices.open_lattices`). Without those options the
    source is returned as it is (the API function opens it, after its own checks)."""
    if source is None or (values is None and T is None and not binarize):
        return source
    from ..lattices import open_lattices

    return open_lattices(source, values=values, T=T, binarize=binarize)
