"""Benchmarks of the correlators.

- :func:`bench_correlate_command`: the whole ``isingscale correlate`` command, and the kernel
  alone, against a plain numpy square G4c loop on the same lattices, side by side.
- :func:`bench_square_g4c`: square G4c for every r <= L/2, fast kernel vs plain numpy.
- :func:`bench_correlate_memory`: correlators of a file twice the memory given, streamed on a
  memory-capped dask worker and in-process, against the whole ensemble in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..device import usable_cores
from . import kernels

_BATCH = 500  # lattices per batch for both implementations (bounded memory)


def square_g4c_plain(spins: np.ndarray) -> np.ndarray:
    """Plain numpy: np.roll products in float32, pair terms explicit; G4c(r), r = 0..L/2."""
    n, L, _ = spins.shape
    R = L // 2 + 1
    sums = np.zeros((5, R))
    for b in range(0, n, _BATCH):
        s = spins[b : b + _BATCH].astype(np.float32)
        for r in range(R):
            sx = np.roll(s, -r, axis=2)
            sy = np.roll(s, -r, axis=1)
            sxy = np.roll(sx, -r, axis=1)
            sums[0, r] += (s * sx * sy * sxy).mean(axis=(1, 2), dtype=np.float64).sum()
            sums[1, r] += (s * sx).mean(axis=(1, 2), dtype=np.float64).sum()
            sums[2, r] += (s * sy).mean(axis=(1, 2), dtype=np.float64).sum()
            sums[3, r] += (s * sxy).mean(axis=(1, 2), dtype=np.float64).sum()
            sums[4, r] += (sx * sy).mean(axis=(1, 2), dtype=np.float64).sum()
    p4, cx, cy, cd, ca = sums / n
    return p4 - cx**2 - cy**2 - cd * ca


def square_g4c_fast(spins: np.ndarray) -> np.ndarray:
    """Bit-packed Numba kernel (one popcount per 64 sites per term), batches on every core
    (one thread each, as ``correlate``); G4c(r), r = 0..L/2."""
    from concurrent.futures import ThreadPoolExecutor

    n, L, _ = spins.shape

    def batch(b: int) -> np.ndarray:
        prod, _ = kernels.lattice_products(spins[b : b + _BATCH], L // 2, True, True, False, False)
        return prod.sum(0)

    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        sums = sum(pool.map(batch, range(0, n, _BATCH)))
    s = sums / n
    return (
        s[kernels.P4_SQUARE]
        - s[kernels.C_X] ** 2
        - s[kernels.C_Y] ** 2
        - (s[kernels.C_DIAG] * s[kernels.C_ANTI])
    )


def bench_square_g4c(*, L: int = 128, samples: int = 10_000, seed: int = 0) -> dict:
    """Time both implementations on the same random lattices; returns seconds and ratio."""

    rng = np.random.default_rng(seed)
    spins = (2 * rng.integers(0, 2, size=(samples, L, L), dtype=np.int8) - 1).astype(np.int8)
    t0 = time.perf_counter()
    square_g4c_fast(spins[:2])  # compile or load the cached kernel
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = square_g4c_fast(spins)
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = square_g4c_plain(spins)
    plain_s = time.perf_counter() - t0
    return {
        "plain_s": plain_s,
        "fast_s": fast_s,
        "compile_s": compile_s,
        "ratio": plain_s / fast_s,
        "max_diff": float(np.max(np.abs(fast - plain))),
        "threads": usable_cores(),
    }


# Runs isingscale from another source tree: first on sys.path, and without the import hook of
# an editable install, which would otherwise find this tree's package whatever sys.path says.
_FROM_TREE = (
    "import runpy, sys; tree = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if '__editable__' not in getattr(f, '__module__', '')]; "
    "sys.path.insert(0, tree); "
    "runpy.run_module('isingscale', run_name='__main__', alter_sys=True)"
)


def time_command(args, *, tree=None, what: str = "command") -> dict:
    """Run ``python -m isingscale ARGS`` in a fresh process (the package from source tree
    ``tree`` when given, else this one); its wall seconds, CPU seconds (all its threads) and
    peak resident memory (bytes), from that process's own rusage. A failure is a one-line
    error naming ``what``."""
    from ..errors import IsingScaleError

    run = ["-m", "isingscale"] if tree is None else ["-c", _FROM_TREE, str(tree)]
    cmd = [sys.executable, *run, *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (stderr.strip().splitlines() or ["no message"])[-1]
        raise IsingScaleError(f"{what} failed: {last[-300:]}")
    return {
        "wall_s": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,  # Linux reports kB
    }


def time_correlate_command(path, out) -> tuple[float, float]:
    """Wall and CPU seconds of ``isingscale correlate PATH --out OUT --no-progress`` in a
    fresh process: start-up, imports, reading, correlators, netCDF, plots and report."""
    args = ["correlate", path, "--out", out, "--no-progress"]
    t = time_command(args, what="isingscale correlate")
    return t["wall_s"], t["cpu_s"]


def bench_correlate_command(
    *, L: int = 128, samples: int = 10_000, seed: int = 0, file=None, repeats: int = 3, log=None
) -> dict:
    """The whole ``isingscale correlate`` command against plain numpy, side by side.

    On one ensemble file (``file``, or ``samples`` random +-1 lattices of L x L written to a
    temporary one): the command in a fresh process ``repeats`` times (median; a first run on
    a tiny file loads numba's cache, not counted), the plain numpy square G4c loop
    (:func:`square_g4c_plain`) on the same lattices held in memory (the read not counted),
    and the bit-packed kernel alone (:func:`square_g4c_fast`). Returns the wall and CPU
    seconds, the ratios and the largest difference of the command's and the kernel's G4c from
    numpy's. The numpy loop runs on one core, so the ratio of CPU seconds is what the wall
    ratio would be with the command confined to one core: a bound that holds however busy
    the machine is.
    """
    import shutil
    import tempfile

    import xarray as xr

    from .ensemble import open_ensemble

    log = log or (lambda msg: None)
    load_before = _load_average()
    tmp = Path(tempfile.mkdtemp(prefix="isingscale-bench-correlate-"))
    try:
        if file is None:
            file = write_random_ensemble(tmp / f"random_L{L}.h5", L=L, samples=samples, seed=seed)
        ds = open_ensemble(file)
        L, samples = int(ds.attrs["L"]), ds.sizes["sample"]
        t0 = time.perf_counter()
        spins = ds["spins"].values
        read_s = time.perf_counter() - t0
        ds.close()
        warm = write_random_ensemble(tmp / "warm.h5", L=L, samples=2, seed=seed)
        time_correlate_command(warm, tmp / "warm")
        log(f"{samples} lattices of {L}x{L} from {file}; plain numpy loop ...")
        t0, c0 = time.perf_counter(), time.process_time()
        plain = square_g4c_plain(spins)
        plain_s, plain_cpu = time.perf_counter() - t0, time.process_time() - c0
        log("the whole command, fresh processes ...")
        runs = [time_correlate_command(file, tmp / f"run{i}") for i in range(repeats)]
        with xr.open_dataset(tmp / "run0" / "correlations.nc", engine="h5netcdf") as res:
            command_g4c = res["G4c_square"].isel(ensemble=0).values
        square_g4c_fast(spins[:2])
        t0 = time.perf_counter()
        fast = square_g4c_fast(spins)
        fast_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    command_s = float(np.median([w for w, _ in runs]))
    command_cpu = float(np.median([c for _, c in runs]))
    return {
        "L": L,
        "samples": samples,
        "file": str(file),
        "read_s": read_s,
        "plain_s": plain_s,
        "plain_cpu": plain_cpu,
        "command_runs": [w for w, _ in runs],
        "command_s": command_s,
        "command_cpu": command_cpu,
        "kernel_s": fast_s,
        "ratio": plain_s / command_s,
        "cpu_ratio": plain_cpu / command_cpu,
        "kernel_ratio": plain_s / fast_s,
        "command_max_diff": float(np.max(np.abs(command_g4c - plain))),
        "kernel_max_diff": float(np.max(np.abs(fast - plain))),
        "cores": usable_cores(),
        "load": (load_before, _load_average()),
    }


def _load_average() -> float:
    """The 1-minute load average (runnable processes; nan where the OS has none): how busy
    the machine was, which wall-clock ratios depend on."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


def format_command_table(res: dict) -> str:
    """Plain-text result of :func:`bench_correlate_command`."""
    runs = ", ".join(f"{s:.2f}" for s in res["command_runs"])
    return "\n".join(
        [
            f"square G4c, r = 0..{res['L'] // 2}, {res['samples']} lattices of "
            f"{res['L']}x{res['L']} ({res['cores']} cores); file {res['file']}",
            f"  plain numpy np.roll loop (float32), in memory:  {res['plain_s']:8.2f} s"
            f"   (+ {res['read_s']:.2f} s reading the file, not counted)",
            f"  isingscale correlate, the whole command:        {res['command_s']:8.2f} s"
            f"   {res['ratio']:6.1f}x   (median of {runs} s; fresh process: start-up, imports, "
            "reading, FFT, kernel, jackknife, netCDF, plots, report)",
            f"  isingscale kernel alone (bit-packed numba):     {res['kernel_s']:8.2f} s"
            f"   {res['kernel_ratio']:6.1f}x",
            f"  CPU seconds: numpy {res['plain_cpu']:.2f}, the whole command "
            f"{res['command_cpu']:.2f} (all threads): {res['cpu_ratio']:.1f}x",
            f"  1-minute load average {res['load'][0]:.1f} at the start, {res['load'][1]:.1f} at "
            f"the end, on {res['cores']} cores (wall ratios need the cores free)",
            f"  max |G4c difference| from numpy: command {res['command_max_diff']:.1e}, "
            f"kernel {res['kernel_max_diff']:.1e}",
        ]
    )


# ---------------------------------------------- correlate over a file larger than the memory given

# Default streaming chunk: this fraction of the memory limit in int8 spins. One chunk's working
# memory in add_chunk (kernel products, float64 copies for the FFT, block sums) stays below 30x
# its spins, so limit/256 keeps a chunk's work under 1/8 of the limit.
_CHUNK_FRACTION = 256
MEMORY_TOLERANCE = 1e-12  # largest |difference| allowed between the three paths


def rss_now() -> int:
    """Resident set size of this process now, in bytes."""
    try:
        import psutil
    except ImportError:  # psutil comes with dask.distributed; plain Linux without it
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def rss_peak() -> int:
    """Peak resident set size of this process's current image, in bytes.

    Linux: VmHWM of /proc/self/status, which starts afresh at exec. getrusage's ru_maxrss
    would also count the parent's pages a child was forked with (a test runner's 500 MB).
    """
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # KiB on Linux


def memory_chunk(L: int, memory_limit: int) -> int:
    """Default samples per streaming chunk for a memory limit: limit/256 bytes of spins."""
    return max(1, memory_limit // (_CHUNK_FRACTION * L * L))


def write_random_ensemble(
    path, *, L: int, samples: int, seed: int = 0, progress: bool = False
) -> Path:
    """Ensemble file of uniform random +-1 lattices, appended 16 MiB at a time (bounded memory)."""
    from tqdm.auto import tqdm

    from ..io import create_ensemble
    from .ensemble import default_chunk

    rng = np.random.default_rng(seed)
    step = default_chunk(L)
    attrs = {
        "T": float("inf"),
        "J": 1.0,
        "seed": seed,
        "method": "uniform random +-1 spins (isingscale bench correlate-memory)",
    }
    with (
        tqdm(total=samples, unit="lattice", desc="write", disable=not progress, leave=False) as bar,
        create_ensemble(path, L=L, kind="generated", attrs=attrs, overwrite=True) as w,
    ):
        for start in range(0, samples, step):
            n = min(step, samples - start)
            w.append(rng.integers(0, 2, size=(n, L, L), dtype=np.int8) * np.int8(2) - np.int8(1))
            bar.update(n)
    return Path(path)


def _in_memory_dataset(spins: np.ndarray, attrs: dict, chunk: int):
    """An ensemble Dataset over a numpy array already in memory, cut into ``chunk`` samples."""
    import dask.array as da
    import xarray as xr

    data = da.from_array(
        spins, chunks=(chunk,) + spins.shape[1:], name=False
    )  # no hashing of the array
    keep = {k: attrs[k] for k in ("L", "T", "J") if k in attrs}
    return xr.Dataset({"spins": (("sample", "y", "x"), data)}, attrs=keep)


def warm_up() -> None:
    """Import every module measure() uses and load the numba kernels, on 4 tiny lattices."""
    from .correlators import measure

    spins = np.where(np.arange(4 * 8 * 8).reshape(4, 8, 8) % 3 == 0, -1, 1).astype(np.int8)
    measure(_in_memory_dataset(spins, {"L": 8, "T": 1.0, "J": 1.0}, 2), n_blocks=2)


def measure_path(mode: str, path, *, chunk: int, out=None, progress: bool = False) -> dict:
    """Correlators of one ensemble file by ``mode``, with time and memory of this process.

    mode "stream": open_ensemble + measure, chunk by chunk (``isingscale correlate`` without
    --scheduler); "memory": read the whole spins array into memory, then measure over it in
    the same chunks. Square G4c, 32 jackknife blocks. Memory: RSS after imports and warm-up
    (``rss_base``) and the process's peak RSS afterwards (``rss_peak``). ``out``: .npz of the
    resulting Dataset's variables. Meant to run in a fresh process (see :func:`run_measure_path`).
    """
    from tqdm.auto import tqdm

    from ..io import read_attrs, read_ensemble
    from .correlators import measure
    from .ensemble import open_ensemble

    warm_up()
    base = rss_now()
    t0, c0 = time.perf_counter(), time.process_time()
    load_s = 0.0
    with tqdm(
        total=int(read_attrs(path)["n_samples"]),
        unit="lattice",
        desc=mode,
        disable=not progress,
        leave=False,
    ) as bar:
        if mode == "stream":
            ds = open_ensemble(path, chunks=chunk)
            try:
                res = measure(ds, shapes=("square",), progress=bar)
            finally:
                ds.close()
        elif mode == "memory":
            data = read_ensemble(path, datasets=("spins",))
            load_s = time.perf_counter() - t0
            res = measure(
                _in_memory_dataset(data["spins"], data["attrs"], chunk),
                shapes=("square",),
                progress=bar,
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    peak = rss_peak()
    if out is not None:
        np.savez(out, **{k: v.values for k, v in res.data_vars.items()})
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "load_s": load_s,
        "rss_base": base,
        "rss_peak": peak,
        "growth": peak - base,
        "n_samples": int(res["n_samples"]),
    }


def run_measure_path(mode: str, path, *, chunk: int, out=None, progress: bool = False) -> dict:
    """:func:`measure_path` in a fresh Python process, so its peak RSS is this run's alone."""
    from ..errors import IsingScaleError

    args = json.dumps(
        {
            "mode": mode,
            "path": str(path),
            "chunk": int(chunk),
            "progress": bool(progress),
            "out": None if out is None else str(out),
        }
    )
    code = "from isingscale.analysis.bench import _measure_path_main; _measure_path_main()"
    proc = subprocess.run([sys.executable, "-c", code, args], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise IsingScaleError(
            f"the {mode} run failed (exit status {proc.returncode}; see its messages above)"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure_path_main() -> None:
    a = json.loads(sys.argv[1])
    print(
        json.dumps(
            measure_path(
                a["mode"], a["path"], chunk=a["chunk"], out=a["out"], progress=a["progress"]
            )
        )
    )


def _worker_stats() -> dict:
    """Run on a dask worker: its pid, RSS now, peak RSS and CPU seconds so far."""
    return {"pid": os.getpid(), "rss": rss_now(), "peak": rss_peak(), "cpu_s": time.process_time()}


def _measure_on_worker(
    path, *, chunk: int, memory_limit: int, progress: bool
) -> tuple[dict, object]:
    """measure() with a LocalCluster of one single-threaded worker capped at ``memory_limit``."""
    import dask
    from tqdm.auto import tqdm

    from ..cluster import scheduler_client
    from ..errors import IsingScaleError
    from ..io import read_attrs
    from .correlators import chunk_sums, measure
    from .ensemble import open_ensemble

    # The nanny kills the worker once its RSS passes 95 % of the limit: completing is the proof.
    # Fail at the first kill instead of retrying. Spilling (60-70 %) and pausing (80 %) are off:
    # results are tiny, and a worker's idle RSS is already ~70 % of 400 MB, so they would only
    # make the worker flap between paused and running (with a log line each time).
    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
    }
    with (
        dask.config.set(config),
        scheduler_client(
            "local", n_workers=1, threads_per_worker=1, memory_limit=memory_limit
        ) as client,
    ):
        n = int(read_attrs(path)["n_samples"])
        # Warm-up: the same task on two samples (imports, numba kernels), not timed.
        client.submit(
            chunk_sums,
            str(path),
            0,
            min(2, n),
            binarize=False,
            shapes=("square",),
            n_samples=n,
            n_blocks=32,
            pure=False,
        ).result()
        (before,) = client.run(_worker_stats).values()
        t0 = time.perf_counter()
        ds = open_ensemble(path, chunks=chunk)
        try:
            with tqdm(
                total=n, unit="lattice", desc="worker", disable=not progress, leave=False
            ) as bar:
                res = measure(ds, shapes=("square",), progress=bar, client=client)
        except Exception as e:  # noqa: BLE001  (KilledWorker and the like: one line)
            raise IsingScaleError(
                f"the dask worker failed ({type(e).__name__}): it passed its memory limit of "
                f"{memory_limit / 1e6:.0f} MB and was killed, or crashed; try a smaller --chunk"
            ) from None
        finally:
            ds.close()
        seconds = time.perf_counter() - t0
        (after,) = client.run(_worker_stats).values()
    if after["pid"] != before["pid"]:
        raise IsingScaleError("the dask worker was restarted during the run (memory limit?)")
    return {
        "mode": "worker",
        "seconds": seconds,
        "cpu_s": after["cpu_s"] - before["cpu_s"],
        "load_s": 0.0,
        "rss_base": before["rss"],
        "rss_peak": after["peak"],
        "growth": after["peak"] - before["rss"],
        "n_samples": int(res["n_samples"]),
    }, res


def _max_difference(a: dict, b: dict) -> float:
    """Largest |a - b| over every variable (equal values, nan and inf included, count as 0)."""
    worst = 0.0
    for name in a:
        x, y = np.asarray(a[name], dtype=np.float64), np.asarray(b[name], dtype=np.float64)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        with np.errstate(invalid="ignore"):
            d = np.where(same, 0.0, np.abs(x - y))
        worst = max(worst, float(np.max(d, initial=0.0)) if np.all(np.isfinite(d)) else np.inf)
    return worst


def bench_correlate_memory(
    *,
    L: int = 128,
    memory_limit: int = 400_000_000,
    file_factor: float = 2.0,
    chunk: int | None = None,
    seed: int = 0,
    workdir=None,
    progress: bool = True,
    log=None,
) -> dict:
    """Correlators of a random ensemble whose spins take ``file_factor`` x ``memory_limit`` bytes.

    Three runs over the same file, square G4c and 32 jackknife blocks each:

    - ``worker``: ``measure(client=...)`` (``correlate --scheduler``) on a LocalCluster of one
      single-threaded worker with ``memory_limit``; the nanny kills a worker past 95 % of it, so
      completing is the proof; its peak RSS comes from the worker's own getrusage.
    - ``stream``: ``measure`` in a fresh process without a scheduler (plain ``correlate``).
    - ``memory``: a fresh process reads the whole spins array, then runs ``measure`` over it.

    The file (deleted at the end) is written in 16 MiB appends under ``workdir`` (default: the
    system temporary directory). Returns the sizes, one dict per run and the largest
    difference of any result from the streaming one.
    """
    import shutil
    import tempfile

    log = log or (lambda msg: None)
    samples = int(np.ceil(file_factor * memory_limit / (L * L)))
    chunk = int(chunk or memory_chunk(L, memory_limit))
    if workdir is not None:
        from ..io import writable_dir

        writable_dir(workdir)
    tmp = Path(tempfile.mkdtemp(prefix="isingscale-bench-memory-", dir=workdir))
    try:
        path = tmp / f"random_L{L}.h5"
        log(
            f"writing {samples} random lattices of {L}x{L} "
            f"({samples * L * L / 1e6:.0f} MB of spins, {file_factor:g}x the "
            f"{memory_limit / 1e6:.0f} MB limit) to {path}"
        )
        t0 = time.perf_counter()
        write_random_ensemble(path, L=L, samples=samples, seed=seed, progress=progress)
        write_s = time.perf_counter() - t0
        log(
            f"  {path.stat().st_size / 1e6:.0f} MB on disk in {write_s:.1f} s; "
            f"chunks of {chunk} lattices ({chunk * L * L / 1e6:.2f} MB of spins)"
        )
        runs, results = _memory_runs(
            path, tmp, chunk=chunk, memory_limit=memory_limit, progress=progress, log=log
        )
        diff = {
            mode: _max_difference(results[mode], results["stream"]) for mode in ("worker", "memory")
        }
        return {
            "L": L,
            "samples": samples,
            "spin_bytes": samples * L * L,
            "file_bytes": path.stat().st_size,
            "memory_limit": memory_limit,
            "file_factor": file_factor,
            "chunk": chunk,
            "write_s": write_s,
            "runs": runs,
            "max_diff": diff,
            "n_vars": len(results["stream"]),
            "identical": all(d <= MEMORY_TOLERANCE for d in diff.values()),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _memory_runs(path, tmp, *, chunk, memory_limit, progress, log) -> tuple[dict, dict]:
    """The three runs of :func:`bench_correlate_memory`: their timings and their results."""
    runs, results = {}, {}
    log(f"(a) dask worker, memory limit {memory_limit / 1e6:.0f} MB, 1 thread ...")
    runs["worker"], ds = _measure_on_worker(
        path, chunk=chunk, memory_limit=memory_limit, progress=progress
    )
    results["worker"] = {k: v.values for k, v in ds.data_vars.items()}
    for mode, label in (
        ("stream", "(b) in-process streaming, no scheduler ..."),
        ("memory", "(c) in memory: whole spins array loaded, then measure ..."),
    ):
        log(label)
        runs[mode] = run_measure_path(
            mode, path, chunk=chunk, out=tmp / f"{mode}.npz", progress=progress
        )
        with np.load(tmp / f"{mode}.npz") as z:
            results[mode] = {k: z[k] for k in z.files}
    for mode, r in runs.items():
        log(f"  {mode}: {r['seconds']:.1f} s, peak RSS {r['rss_peak'] / 1e6:.0f} MB")
    return runs, results


def format_memory_table(res: dict) -> str:
    """Plain-text table: path, wall and CPU seconds (and their ratio to in-memory), peak RSS."""
    mem = res["runs"]["memory"]
    names = {
        "worker": f"dask worker, limit {res['memory_limit'] / 1e6:.0f} MB",
        "stream": "in-process streaming",
        "memory": "in memory (numpy array)",
    }
    head = (
        f"{'path':<30} {'wall s':>8} {'x mem':>6} {'CPU s':>8} {'x mem':>6} {'peak RSS MB':>12} "
        f"{'growth MB':>10}"
    )
    lines = [
        f"square G4c + G2, S, scalars (32 jackknife blocks); {res['samples']} lattices of "
        f"{res['L']}x{res['L']}: {res['spin_bytes'] / 1e6:.0f} MB of spins "
        f"({res['spin_bytes'] / res['memory_limit']:.2f}x the limit), "
        f"file {res['file_bytes'] / 1e6:.0f} MB (gzip); chunks of {res['chunk']} lattices",
        head,
        "-" * len(head),
    ]
    for mode in ("worker", "stream", "memory"):
        r = res["runs"][mode]
        lines.append(
            f"{names[mode]:<30} {r['seconds']:>8.1f} {r['seconds'] / mem['seconds']:>5.2f}x "
            f"{r['cpu_s']:>8.1f} {r['cpu_s'] / mem['cpu_s']:>5.2f}x {r['rss_peak'] / 1e6:>12.0f} "
            f"{r['growth'] / 1e6:>10.0f}"
        )
    lines.append(
        f"in memory: {mem['load_s']:.1f} s of its time reads the file; "
        "growth = peak RSS - RSS after imports and warm-up; "
        "the worker's CPU s exclude the client's merging."
    )
    worker = res["runs"]["worker"]
    bounded = worker["rss_peak"] <= res["memory_limit"]
    lines.append(
        f"worker peak RSS {worker['rss_peak'] / 1e6:.0f} MB "
        f"{'<=' if bounded else '>'} limit {res['memory_limit'] / 1e6:.0f} MB: "
        f"{'bounded' if bounded else 'NOT bounded'}"
    )
    d = res["max_diff"]
    lines.append(
        f"results over {res['n_vars']} variables: max |difference| vs streaming: "
        f"worker {d['worker']:.1e}, in memory {d['memory']:.1e} -> "
        f"{'identical' if res['identical'] else 'DIFFERENT'} "
        f"(tolerance {MEMORY_TOLERANCE:g})"
    )
    return "\n".join(lines)
