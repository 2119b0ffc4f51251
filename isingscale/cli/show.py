"""``isingscale show``: lattices as pictures."""

from __future__ import annotations

import click

from . import main
from .options import lattice_options


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="SOURCE [SOURCE ...]")
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    metavar="N",
    help="Lattices per source (the first N), one column each.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="NAME",
    help="Row label of each source in order (default: file names).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FIG.png",
    help="The PNG to write.",
)
@lattice_options(binarize=False)
def show(files, samples, labels, out, values, T):
    """Draw lattices: one row per SOURCE, one column per sample (-1 black, +1 white).

    A super-resolved file (from `isingscale upsample`) shows its coarse input, itself and the
    Monte Carlo truth (where its `source` attribute leads to them) as three rows, one column
    per sample. Continuous fields are drawn on the +-1 scale (--binarize is not needed).

    \b
    Examples:
      isingscale show data/mc.h5 --out mc.png
      isingscale show data/upsample_x4-0001.h5 --samples 3 --out sr.png
      isingscale show mc.h5 skild_pngs/ --label MC --label SKILD --out both.png
    """
    from ..analysis.show import show as draw

    draw(list(files), samples=samples, out=out, labels=list(labels) or None, values=values, T=T)
    click.echo(f"wrote {out}")
