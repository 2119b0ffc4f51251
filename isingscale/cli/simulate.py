"""``isingscale simulate`` and ``isingscale bench mc``: thin wrappers over isingscale.mc."""

from __future__ import annotations

import contextlib
import shlex
import sys
import warnings

import click

from ..constants import DEFAULT_DECORRELATE, DEFAULT_THERMALIZE, T_C
from . import bench, main
from .options import default_threads


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 2:
        raise click.BadParameter(f"lattice sizes must be integers >= 2, got {value!r}")
    return sizes


@main.command()
# Main options.
@click.option(
    "--L", "L", type=int, required=True, metavar="INT", help="Lattice size (L x L torus, L >= 2)."
)
@click.option(
    "--T",
    "T",
    type=float,
    default=T_C,
    metavar="FLOAT",
    show_default="Tc = 2.269185",
    help="Temperature (J = k_B = 1).",
)
@click.option(
    "--samples",
    type=int,
    required=True,
    metavar="INT",
    help="Total configurations the file should hold.",
)
@click.option(
    "--algorithm",
    type=click.Choice(["wolff", "sw", "metropolis"]),
    default="wolff",
    show_default=True,
    help="Update: Wolff clusters, Swendsen-Wang or checkerboard Metropolis sweeps.",
)
# Protocol.
@click.option(
    "--chains",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="one per core",
    help="Independent chains run in parallel.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    metavar="INT",
    show_default=True,
    help="Seed of all random streams.",
)
@click.option(
    "--thermalize",
    default=DEFAULT_THERMALIZE,
    metavar="auto|X",
    show_default=True,
    help="Thermalization per chain: 'auto' runs until the stationarity test passes (energy, |m|, "
    "flips per update steady and the energy at its exact value); a number X runs exactly X "
    "(in --thermalize-unit) and warns if that is too short.",
)
@click.option(
    "--thermalize-unit",
    type=click.Choice(["flips", "updates"]),
    default="flips",
    show_default=True,
    help="Unit of a numeric --thermalize: L^2 flipped spins per chain, or updates (Wolff clusters, "
    "SW or Metropolis sweeps). The SKILD paper's 2,000 Wolff transitions: --thermalize 2000 "
    "--thermalize-unit updates.",
)
@click.option(
    "--decorrelate",
    type=float,
    default=DEFAULT_DECORRELATE,
    metavar="FLOAT",
    show_default=True,
    help="Target flipped spins between saves, in units of L^2.",
)
@click.option(
    "--schedule",
    type=click.Choice(["calibrated", "fixed", "threshold"]),
    default="calibrated",
    show_default=True,
    help="calibrated: fixed update count measured during thermalization; fixed: --interval; "
    "threshold: the paper's biased rule (warns).",
)
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default=True,
    help="Updates between saves for --schedule fixed.",
)
# Scale-out.
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    show_default="no sharding",
    help="Write K independent-seed shard files PATH-stem.shardIII-of-KKK.h5 as dask tasks "
    "(join them with 'isingscale merge'); --chains is then per shard (default 1).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    show_default="local cluster",
    help="With --shards: dask.distributed scheduler running the shard tasks ('local' or tcp://host:8786).",
)
# I/O-related.
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    show_default="data/ising_L{L}_T{T}_{algorithm}_seed{seed}.h5",
    help="Output HDF5 file.",
)
@click.option("--resume", is_flag=True, help="Continue the file's chains up to --samples.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr."
)
def simulate(
    L,
    T,
    samples,
    algorithm,
    chains,
    seed,
    thermalize,
    thermalize_unit,
    decorrelate,
    schedule,
    interval,
    shards,
    scheduler,
    out,
    resume,
    overwrite,
    progress,
):
    """Wolff / Swendsen-Wang / Metropolis Monte Carlo of the 2-D Ising model into an HDF5 ensemble.

    Saves `samples` configurations from independent chains, appended and flushed block
    by block, so an interrupted run leaves a valid file that --resume completes.

    \b
    Examples:
      isingscale simulate --L 128 --samples 10000
      isingscale simulate --L 64 --samples 5000 --T 2.5 --algorithm sw --chains 4
      isingscale simulate --L 64 --samples 20000 --out data/l64.h5 --resume
      isingscale simulate --L 128 --samples 100000 --shards 16 \
          --scheduler tcp://sched:8786 --out data/l128.h5
      isingscale simulate --L 128 --samples 1000 --thermalize 2000 --thermalize-unit updates
    """
    from ..mc.simulate import default_path
    from ..mc.simulate import simulate as run

    out = out or str(default_path(L, T, algorithm, seed))
    if scheduler is not None and shards is None:
        raise click.UsageError("--scheduler needs --shards")
    options = dict(
        samples=samples,
        T=T,
        seed=seed,
        chains=chains,
        thermalize=thermalize,
        thermalize_unit=thermalize_unit,
        decorrelate=decorrelate,
        schedule=schedule,
        interval=interval,
        algorithm=algorithm,
        out=out,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    if shards is not None:
        _simulate_shards(L, shards=shards, scheduler=scheduler, **options)
        return
    with _warnings_as_lines():
        try:
            result = run(L, **options)
        except KeyboardInterrupt:
            args = [a for a in sys.argv[1:] if a not in ("--overwrite", "--resume")]
            click.echo(
                f"\nInterrupted; {out} holds every completed block. Continue with:\n"
                f"  isingscale {shlex.join(args)} --resume",
                err=True,
            )
            sys.exit(130)
    click.echo(result.summary())


@contextlib.contextmanager
def _warnings_as_lines():
    """Print the Monte Carlo warnings as they happen, one line each on stderr."""
    from ..mc.simulate import ThermalizationWarning, ThresholdBiasWarning

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for category in (ThresholdBiasWarning, ThermalizationWarning):
            warnings.simplefilter("always", category)
        warnings.showwarning = show
        yield


def _simulate_shards(L, *, shards, scheduler, out, **options):
    from ..mc.shards import simulate_shards

    results = simulate_shards(L, shards=shards, scheduler=scheduler, out=out, **options)
    for r in results:
        click.echo(
            f"wrote {r['n_samples']} samples to {r['path']}  (energy per site {r['energy']:.5f} "
            f"± {r['energy_error']:.5f}, exact {r['energy_exact']:.5f})"
        )
    click.echo(
        "join them with:\n  isingscale merge "
        + " ".join(shlex.quote(r["path"]) for r in results)
        + f" --out {shlex.quote(out)}"
    )


@bench.command("mc")
@click.option(
    "--L",
    "sizes",
    default="64,128,256",
    callback=_int_list,
    metavar="L1,L2,...",
    show_default=True,
    help="Lattice sizes of the kernel table.",
)
@click.option(
    "--algorithms",
    default="wolff,sw,metropolis",
    metavar="A1,A2,...",
    show_default=True,
    help="Algorithms to time (wolff, sw, metropolis).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.01),
    default=2.0,
    metavar="FLOAT",
    show_default=True,
    help="Timed seconds per kernel measurement (split into alternating rounds).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    metavar="INT",
    show_default="all cores",
    help="Threads (and chains) for the all-core columns.",
)
@click.option(
    "--mcising/--no-mcising",
    "with_mcising",
    default=True,
    show_default=True,
    help="Run mcising side by side when it is installed.",
)
@click.option(
    "--command-L",
    "command_sizes",
    default="128",
    metavar="L1,L2,...",
    show_default=True,
    help="Lattice sizes of the whole-command table ('' for none).",
)
@click.option(
    "--command-samples",
    type=click.IntRange(min=1),
    default=2000,
    metavar="INT",
    show_default=True,
    help="Samples each whole command saves.",
)
def bench_mc(sizes, algorithms, seconds, threads, with_mcising, command_sizes, command_samples):
    """Flipped spins per second at Tc (kernels) and wall time of whole commands, vs mcising.

    Kernel table: one core (one chain on one thread), all cores (one chain per thread),
    and mcising's same algorithm on the same equilibrated lattice, alternating rounds.
    Command table: `isingscale simulate` against `mcising run` making the same ensemble
    (same thermalization and saving interval, HDF5 output), one core each.

    \b
    Examples:
      isingscale bench mc
      isingscale bench mc --L 64,128,256,512,1024,2048 --algorithms wolff --seconds 3
      isingscale bench mc --L 128 --command-L 128,256 --command-samples 4000
    """
    from ..errors import IsingScaleError
    from ..mc.bench import command_row, format_command_table, format_kernel_table, kernel_table

    algs = [a.strip() for a in algorithms.split(",") if a.strip()]
    bad = [a for a in algs if a not in ("wolff", "sw", "metropolis")]
    if bad or not algs:
        raise IsingScaleError(
            f"unknown algorithm(s) {', '.join(bad) or algorithms!r}; expected wolff, sw, metropolis"
        )
    threads = threads or default_threads()
    rows = kernel_table(sizes, algs, seconds=seconds, threads=threads, with_mcising=with_mcising)
    click.echo(format_kernel_table(rows))
    command_sizes = _int_list(None, None, command_sizes) if command_sizes.strip() else []
    if command_sizes:
        rows = [command_row(L, samples=command_samples, threads=threads) for L in command_sizes]
        click.echo("\n" + format_command_table(rows))
