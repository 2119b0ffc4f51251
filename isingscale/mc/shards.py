"""Sharded Monte Carlo: K independent-seed ensemble files produced as dask tasks.

Shard i is an ordinary :func:`isingscale.simulate` run with seed
``SeedSequence([seed, i]).generate_state(1)[0]`` (independent streams for every shard and
every base seed) writing ``<stem>.shard<i>-of-<K>.h5``; each holds its share of the
samples. The shards run as tasks on a dask.distributed scheduler (a LocalCluster by
default), so a cluster produces them in parallel, and a shard file is bitwise the file a
plain ``simulate`` call with its seed writes. ``isingscale merge`` joins them, keeping
every shard's provenance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import IsingScaleError


def shard_seed(seed: int, shard: int) -> int:
    """Seed of shard ``shard``: an independent stream derived from (seed, shard)."""
    return int(
        np.random.SeedSequence([int(seed) % 2**63, int(shard)]).generate_state(1, dtype=np.uint32)[
            0
        ]
    )


def shard_paths(out: str | os.PathLike, shards: int) -> list[Path]:
    """``data/run.h5`` -> ``data/run.shard000-of-004.h5``, ..."""
    out = Path(out)
    return [
        out.with_name(f"{out.stem}.shard{i:03d}-of-{shards:03d}{out.suffix or '.h5'}")
        for i in range(shards)
    ]


def split_samples(samples: int, shards: int) -> list[int]:
    """Samples per shard, as equal as possible (the first shards take the remainder)."""
    q, r = divmod(samples, shards)
    return [q + (i < r) for i in range(shards)]


def _run_shard(L: int, samples: int, seed: int, out: str, options: dict) -> dict:
    from .simulate import result_dict, simulate

    return result_dict(simulate(L, samples=samples, seed=seed, out=out, progress=False, **options))


def simulate_shards(
    L: int,
    *,
    samples: int,
    shards: int,
    out,
    seed: int = 0,
    chains: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    **options,
) -> list[dict]:
    """Write ``shards`` independent-seed ensemble files through dask tasks; return their results.

    chains: chains per shard (default 1: the shards are the parallelism). scheduler: a
    dask.distributed address, or None / "local" for a LocalCluster of min(shards, cores)
    workers. Other options are those of :func:`isingscale.simulate` (T, algorithm,
    thermalize, thermalize_unit, decorrelate, schedule, interval, resume, overwrite).
    Each shard thermalizes its own chains and records its own test in its file.
    """
    from tqdm.auto import tqdm

    from ..cluster import scheduler_client
    from .simulate import default_chains

    if shards < 1:
        raise IsingScaleError(f"shards must be at least 1, got {shards}")
    if samples < shards:
        raise IsingScaleError(
            f"{samples} samples cannot fill {shards} shards (at least one sample each)"
        )
    options = {**options, "chains": int(chains or 1)}
    tasks = [
        (L, n, shard_seed(seed, i), str(p))
        for i, (n, p) in enumerate(zip(split_samples(samples, shards), shard_paths(out, shards)))
    ]
    workers = min(shards, default_chains()) if scheduler in (None, "local") else None
    with scheduler_client(scheduler, n_workers=workers) as client:
        futures = [client.submit(_run_shard, *t, options, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        from distributed import as_completed

        results: list[dict | None] = [None] * shards
        with tqdm(total=shards, disable=not progress, desc="shards", unit="shard") as bar:
            for fut in as_completed(futures):
                try:
                    results[index[fut.key]] = fut.result()
                except IsingScaleError:
                    raise
                except Exception as e:  # noqa: BLE001  (a worker died, or the task raised remotely)
                    raise IsingScaleError(
                        f"a shard task failed ({type(e).__name__}: {e})"[:200]
                    ) from None
                bar.update(1)
    return results
