"""``isingscale correlate``, ``isingscale scaling`` and ``isingscale bench correlate``."""

from __future__ import annotations

import click

from . import bench, main
from .options import lattice_options


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="SOURCE [SOURCE ...]")
# Main options.
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(),
    metavar="DIR",
    help="Output directory: correlations.nc, PNG plots, report.md.",
)
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    default=("square",),
    show_default=True,
    type=click.Choice(["square", "collinear", "rectangle"]),
    metavar="SHAPE",
    help="Four-point shape(s), repeatable: square, collinear, rectangle.",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="NAME",
    help="Name of each ensemble in order (default: file stems).",
)
# Statistics.
@click.option(
    "--blocks",
    "n_blocks",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    metavar="N",
    help="Jackknife blocks of consecutive samples per ensemble.",
)
@lattice_options()
# Scale-out.
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    show_default="in-process, chunk by chunk",
    help="Compute the chunks on a dask.distributed scheduler: 'local' (a LocalCluster here) or "
    "tcp://host:8786. Files must be visible to every worker.",
)
# I/O-related.
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
def correlate(files, out, shapes, labels, n_blocks, values, T, binarize, scheduler, progress):
    """Connected 2- and 4-point correlators of lattice SOURCEs vs each other and exact references.

    The first SOURCE is the reference ensemble. Writes DIR/correlations.nc (G2, G4c, ... with
    jackknife errors and reference curves), PNG plots and DIR/report.md. A SOURCE is an
    ensemble file or anything `isingscale import` reads (FILE.h5:/dataset, .npy, .npz, a
    folder of PNG lattices).

    Examples:

    \b
      isingscale correlate mc.h5 --out report/
      isingscale correlate mc.h5 sr.h5 --shape square --shape collinear --out cmp/
      isingscale correlate mc.h5 field.h5 --binarize --label MC --label SKILD --out cmp/
      isingscale correlate mc.h5 lattices.npy skild_pngs/ --T 2.269185 --out cmp/
      isingscale correlate big.h5 --scheduler tcp://scheduler:8786 --out report/
    """
    from ..analysis.report import correlate as run
    from ..analysis.report import summary

    ds = run(
        list(files),
        out=out,
        shapes=shapes,
        binarize=binarize,
        values=values,
        T=T,
        n_blocks=n_blocks,
        labels=list(labels) or None,
        progress=progress,
        scheduler=scheduler,
    )
    click.echo(summary(ds))
    click.echo(f"Wrote {out}/correlations.nc, {out}/report.md and plots.")


@bench.command("correlate")
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=4),
    default=128,
    show_default=True,
    metavar="L",
    help="Lattice size of the random lattices.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    metavar="N",
    help="Number of random lattices (use ~1000 for a quick run).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="SEED",
    help="Seed of the random +-1 lattices.",
)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Benchmark on this ensemble file instead of random lattices (--L, --samples ignored).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="K",
    help="Runs of the whole command (the median counts).",
)
def bench_correlate(L, samples, seed, file, repeats):
    """The whole `isingscale correlate` command vs a plain numpy square-G4c loop, side by side.

    On the same lattices: `isingscale correlate FILE` in a fresh process (start-up, imports,
    reading, correlators, netCDF, plots, report), a plain numpy np.roll loop (float32) for the
    square G4c at every r <= L/2 on the lattices in memory, and isingscale's bit-packed kernel
    alone. Prints the seconds, both ratios and the largest G4c difference from numpy.

    Examples:

    \b
      isingscale bench correlate --samples 1000
      isingscale bench correlate --L 128 --samples 10000
      isingscale bench correlate --file mc_L128.h5
    """
    from ..analysis.bench import bench_correlate_command, format_command_table

    res = bench_correlate_command(
        L=L,
        samples=samples,
        seed=seed,
        file=file,
        repeats=repeats,
        log=lambda msg: click.echo(msg, err=True),
    )
    click.echo(format_command_table(res))


def _bytes(ctx, param, value):
    from dask.utils import parse_bytes

    try:
        n = parse_bytes(value)
    except (ValueError, TypeError):
        raise click.BadParameter(f"expected a size such as 400MB or 1GiB, got {value!r}") from None
    if n < 1:
        raise click.BadParameter(f"must be positive, got {value!r}")
    return n


@bench.command("correlate-memory")
@click.option(
    "--L",
    "L",
    type=click.IntRange(min=4),
    default=128,
    show_default=True,
    metavar="L",
    help="Lattice size.",
)
@click.option(
    "--memory-limit",
    default="400MB",
    show_default=True,
    callback=_bytes,
    metavar="SIZE",
    help="Memory limit of the dask worker (its nanny kills it past 95 %), e.g. 400MB, 1GiB.",
)
@click.option(
    "--file-factor",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    metavar="X",
    help="Spins in the file, in units of the memory limit.",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    show_default="memory limit / 256 in spins",
    help="Lattices per streaming chunk (working memory is about 30x a chunk's spins).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="SEED",
    help="Seed of the random +-1 lattices.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    show_default="system temporary directory",
    help="Where the file is written (deleted afterwards).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress on stderr."
)
def bench_correlate_memory(L, memory_limit, file_factor, chunk, seed, workdir, progress):
    """Correlators of a file larger than memory: capped dask worker and streaming vs in memory.

    Writes random +-1 lattices whose spins take FILE-FACTOR x MEMORY-LIMIT bytes, then runs the
    correlators (square G4c, as `isingscale correlate`) three ways: (a) on a LocalCluster of one
    single-threaded worker with that memory limit, (b) streamed chunk by chunk in a fresh process
    without a scheduler, (c) in a fresh process holding the whole spins array in memory. Reports
    wall and CPU seconds against (c), peak RSS (the worker's own, and each process's), and checks
    the three results are identical. Needs dask.distributed.

    Examples:

    \b
      isingscale bench correlate-memory --memory-limit 400MB
      isingscale bench correlate-memory --L 64 --memory-limit 1GB --workdir /scratch
    """
    from ..analysis.bench import bench_correlate_memory as run
    from ..analysis.bench import format_memory_table
    from ..errors import IsingScaleError

    res = run(
        L=L,
        memory_limit=memory_limit,
        file_factor=file_factor,
        chunk=chunk,
        seed=seed,
        workdir=workdir,
        progress=progress,
        log=lambda msg: click.echo(msg, err=True),
    )
    click.echo(format_memory_table(res))
    worker = res["runs"]["worker"]
    if not res["identical"]:
        raise IsingScaleError("the three runs gave different results")
    if worker["rss_peak"] > memory_limit:
        raise IsingScaleError(
            f"the worker's peak RSS {worker['rss_peak'] / 1e6:.0f} MB passed the limit"
        )


@main.command()
@click.argument("files", nargs=-1, required=True, metavar="SOURCE [SOURCE ...]")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(),
    metavar="DIR",
    help="Output directory: scaling.nc, scaling.md (tables), scaling.png.",
)
@click.option(
    "--blocks",
    "n_blocks",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    metavar="N",
    help="Jackknife blocks of consecutive samples per ensemble.",
)
@click.option(
    "--omega",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    metavar="W",
    help="Exponent of the correction term L^-W of the corrected fits.",
)
@lattice_options()
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
def scaling(files, out, n_blocks, omega, values, T, binarize, progress):
    """Exponents eta and gamma/nu by finite-size scaling over ensembles at three or more L.

    One SOURCE per lattice size (ensemble files, or anything `isingscale import` reads), all
    at one temperature (Tc). Fits G(L/2) ~ L^-eta and
    chi = L^2<m^2>/T ~ L^(gamma/nu) over L >= L_min for each L_min, with chi^2/dof, and with a
    correction term L^-omega; writes DIR/scaling.md (tables), DIR/scaling.png and
    DIR/scaling.nc.

    Examples:

    \b
      isingscale scaling fss_L32.h5 fss_L64.h5 fss_L128.h5 fss_L256.h5 --out fss/
      isingscale scaling data/fss/fss_L*.h5 --out fss/ --omega 1.75
    """
    from ..analysis.scaling import scaling as run
    from ..analysis.scaling import summary

    ds = run(
        list(files),
        out=out,
        n_blocks=n_blocks,
        binarize=binarize,
        values=values,
        T=T,
        omega=omega,
        progress=progress,
    )
    click.echo(summary(ds))
    click.echo(f"Wrote {out}/scaling.md, {out}/scaling.png and {out}/scaling.nc.")
