"""``isingscale merge``, ``import`` and ``export``: lattices in and out of ensemble files."""

from __future__ import annotations

import click

from . import bench, main
from .options import lattice_options

_progress = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="SOURCE ...")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="PATH",
    help="Merged ensemble file.",
)
@lattice_options()
@_overwrite
@_progress
def merge(files, out, values, T, binarize, overwrite, progress):
    """Join lattice sources of one L, T and kind (e.g. simulate --shards output) into one file.

    Samples are concatenated in the order given; chain ids are offset per shard; the
    attribute merged_from records every input's file, dataset, sha256, value convention,
    seed, chains and samples. SOURCEs are anything `isingscale import` reads.

    \b
    Examples:
      isingscale merge data/l128.shard*-of-016.h5 --out data/l128.h5
      isingscale merge run1/configs.npy run2/configs.npy --T 2.269 --out both.h5
    """
    from ..io import read_attrs
    from ..lattices import merge_ensembles

    path = merge_ensembles(
        list(files),
        out,
        values=values,
        T=T,
        binarize=binarize,
        overwrite=overwrite,
        progress=progress,
    )
    click.echo(f"wrote {read_attrs(path)['n_samples']} samples from {len(files)} files to {path}")


@main.command("import")
@click.argument("source", metavar="SOURCE")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="FILE.h5",
    help="The isingscale ensemble file to write.",
)
@lattice_options()
@_overwrite
@_progress
def import_(source, out, values, T, binarize, overwrite, progress):
    """Lattices from elsewhere into an isingscale ensemble file.

    SOURCE is an HDF5 file of any layout (FILE.h5 picks the 'spins' dataset or the only 3-D
    one and says so; FILE.h5:/group/dataset names one; mcising output is read as it is),
    FILE.npy, FILE.npz[:key], a PNG image or a folder of them (SKILD's 0/254 lattices), of
    shape (n, L, L) or (L, L). Values other than +-1 need a convention: --values LO,HI, or
    the two-valued auto-detection (smaller -> -1), which prints what it did. The file records
    the source, its dataset and sha256, and the convention (attribute merged_from).

    \b
    Examples:
      isingscale import lattices.npy --T 2.269 --out data/mine.h5
      isingscale import skild_pngs/ --values 0,254 --out data/skild.h5
      isingscale import run.h5:/T=2.269185 --out data/mcising.h5
    """
    from ..io import read_attrs
    from ..lattices import import_lattices

    path = import_lattices(
        source,
        out,
        values=values,
        T=T,
        binarize=binarize,
        overwrite=overwrite,
        progress=progress,
    )
    a = read_attrs(path)
    click.echo(
        f"wrote {a['n_samples']} lattices of {a['L']}x{a['L']} at T = {a['T']:.6g} to {path}"
    )


@main.command()
@click.argument("source", metavar="SOURCE")
@click.option(
    "--to",
    "to",
    type=click.Choice(["npz", "png"]),
    required=True,
    help="npz: DIR/<name>.npz (spins, T, J, L, provenance); png: DIR/ising_00000.png, ... "
    "(spin -1 -> 0, +1 -> 254, as SKILD's reference code) and DIR/isingscale.json.",
)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@lattice_options()
@_overwrite
@_progress
def export(source, to, directory, values, T, binarize, overwrite, progress):
    """Write the spins of SOURCE (any lattice source) as .npz or a folder of PNG images.

    `isingscale import` reads either back bit for bit, with T and L.

    \b
    Examples:
      isingscale export data/mc.h5 --to npz out/
      isingscale export data/mc.h5 --to png out/mc_png/
    """
    from ..lattices import export_lattices

    path = export_lattices(
        source,
        directory,
        to=to,
        values=values,
        T=T,
        binarize=binarize,
        overwrite=overwrite,
        progress=progress,
    )
    click.echo(f"wrote {path}")


@bench.command("read")
@click.option(
    "--L", "L", type=click.IntRange(min=2), default=128, show_default=True, help="Lattice size."
)
@click.option(
    "--samples", type=click.IntRange(min=1), default=2000, show_default=True, help="Lattices."
)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Turns per format."
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    show_default="system temporary directory",
    help="Where the files are written (deleted afterwards).",
)
def bench_read(L, samples, repeats, workdir):
    """Reading each lattice format (plain HDF5, .npy, .npz, PNG folder) against the ensemble file.

    The same random lattices in every format, read side by side in turns: streamed into int8
    spins chunk by chunk (the reader) and imported into a new ensemble file (the whole
    `isingscale import`), as ratios to the ensemble file.

    \b
    Examples:
      isingscale bench read
      isingscale bench read --L 1024 --samples 64
    """
    from ..lattices.bench import bench_read as run
    from ..lattices.bench import format_table

    rows = run(L=L, samples=samples, repeats=repeats, workdir=workdir)
    click.echo(format_table(rows, L=L, samples=samples))
