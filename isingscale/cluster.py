"""Dask.distributed schedulers for the commands that scale past one machine.

:func:`scheduler_client` is the one way every command (``correlate --scheduler``,
``simulate --shards``, and later ``evaluate``) gets a :class:`distributed.Client`:

* ``address=None`` or ``"local"``: a :class:`distributed.LocalCluster` on this machine
  (worker processes, one thread each), closed again on exit;
* ``"tcp://host:8786"`` (or ``host:8786``, any scheme dask supports): an existing
  scheduler, e.g. from ``dask scheduler`` + ``dask worker`` or dask-jobqueue; left running.

Workers read and write the files named in their tasks, so on a cluster those paths must
be on a file system that every worker sees (the usual shared home or scratch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .errors import IsingScaleError

LOCAL = "local"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise IsingScaleError(
            "--scheduler needs dask.distributed: pip install 'isingscale[distributed]'"
        ) from None
    return distributed


@contextmanager
def scheduler_client(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    memory_limit: str | int | None = None,
    timeout: float = 10.0,
) -> Iterator[object]:
    """A dask.distributed Client for ``address`` (None / "local": a LocalCluster), closed on exit.

    n_workers: workers of a local cluster (default: one per core). memory_limit: per-worker
    limit of a local cluster ("400MB" or bytes; default: distributed's "auto", this machine's
    memory shared out); the nanny kills a worker whose RSS passes 95 % of it (dask config
    ``distributed.worker.memory.terminate``). A scheduler that cannot be reached within
    ``timeout`` seconds is an :class:`IsingScaleError` naming the address.
    """
    distributed = _distributed()
    if address in (None, "", LOCAL):
        try:
            limit = {} if memory_limit is None else {"memory_limit": memory_limit}
            cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                dashboard_address=None,
                **limit,
            )
        except Exception as e:  # noqa: BLE001  (ports, resources: one line for the user)
            raise IsingScaleError(
                f"cannot start a local dask cluster ({type(e).__name__}: {e})"[:200]
            ) from None
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if not isinstance(address, str) or any(c.isspace() for c in address) or ":" not in address:
        raise IsingScaleError(
            f"bad scheduler address {address!r}; expected 'local' or e.g. tcp://host:8786"
        )
    try:
        client = distributed.Client(address, timeout=timeout)
    except Exception as e:  # noqa: BLE001  (OSError, TimeoutError, ValueError for bad schemes)
        msg = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise IsingScaleError(f"cannot reach dask scheduler at {address} ({msg})") from None
    try:
        yield client
    finally:
        client.close()


def bounded_map(client, fn, calls, *, window: int | None = None, **kwargs) -> Iterator[object]:
    """``fn(*args, **kwargs)`` for each ``args`` in ``calls`` on the cluster, results in order.

    At most ``window`` tasks (default: twice the cluster's worker threads) are in flight,
    so finished results never pile up in worker memory ahead of the client.
    """
    from collections import deque

    if window is None:
        window = max(2, 2 * sum(client.nthreads().values()))
    pending: deque = deque()
    for args in calls:
        pending.append(client.submit(fn, *args, pure=False, **kwargs))
        if len(pending) >= window:
            yield from ordered_results(client, [pending.popleft()])
    while pending:
        yield from ordered_results(client, [pending.popleft()])


def ordered_results(client, futures, *, progress=None) -> Iterator[object]:
    """Results of ``futures`` in submission order, each released once yielded (bounded memory)."""
    for fut in futures:
        result = fut.result()
        fut.release()
        if progress is not None:
            progress.update(1)
        yield result
