"""What SKILD sampling costs, measured side by side (``isingscale bench skild``).

Two measurements on the same inputs:

* the whole command a user runs, ``isingscale upsample --factor F --input COARSE`` (coarse
  inputs from fresh Wolff lattices at L) and ``isingscale generate --L L``, in fresh
  processes: wall and CPU seconds (all threads) and peak resident memory, the median of
  ``repeats`` runs after one warm-up (numba's and torch's caches). With a baseline revision
  the same commands run from that revision of the source tree (a temporary ``git
  worktree``), alternating with this tree's, and the table gives the ratios;
* the network call alone (this tree): milliseconds per lattice for one batch of ``batch``
  lattices at L in one call, and as the samplers run it (``skild.sampler.model_net``,
  which splits a large CPU batch into cache-sized chunks).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..analysis.bench import time_command
from ..device import usable_cores
from ..errors import IsingScaleError


def source_tree() -> Path:
    """The git checkout this package runs from (a one-line error if it is not one)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        raise IsingScaleError(
            f"a baseline revision needs isingscale run from a git checkout; {root} is not one"
        )
    return root


def baseline_tree(rev: str, where: Path) -> Path:
    """A detached ``git worktree`` of revision ``rev`` at ``where`` (removed by the caller)."""
    proc = subprocess.run(
        ["git", "-C", str(source_tree()), "worktree", "add", "--detach", str(where), rev],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise IsingScaleError(f"cannot check out baseline {rev!r}: {proc.stderr.strip()[-200:]}")
    return where


def _remove_tree(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(source_tree()), "worktree", "remove", "--force", str(where)],
        capture_output=True,
    )


def network_call_cost(L: int, batch: int, *, checkpoint=None, repeats: int = 3) -> dict:
    """Milliseconds per lattice of one network call on ``batch`` lattices of L x L on the CPU:
    the whole batch in one call, and chunked as the samplers call it."""
    import torch

    from ..skild.checkpoint import load_checkpoint
    from ..skild.sampler import CPU_CALL_SITES, model_net

    model = load_checkpoint(checkpoint)
    g = torch.Generator().manual_seed(0)
    y, s = torch.randn((batch, L, L), generator=g), torch.ones(batch)
    chunked = model_net(model, "cpu")

    def per_lattice(call) -> float:
        with torch.no_grad():
            call(y, s)
            t0 = time.perf_counter()
            for _ in range(repeats):
                call(y, s)
        return 1e3 * (time.perf_counter() - t0) / (repeats * batch)

    return {
        "L": L,
        "batch": batch,
        "chunk": max(1, CPU_CALL_SITES // (L * L)),
        "one_call_ms": per_lattice(model.net),
        "chunked_ms": per_lattice(chunked),
        "threads": torch.get_num_threads(),
    }


def _commands(L, factor, coarse, samples, out: Path, device) -> dict[str, list]:
    common = ["--overwrite", "--no-progress", "--device", device]
    return {
        f"upsample ×{factor:g} {round(L / factor)} → {L}": [
            *("upsample", "--factor", factor, "--input", coarse, "--out", out / "sr.h5"),
            *common,
        ],
        f"generate L = {L}": [
            *("generate", "--L", L, "--samples", samples, "--out", out / "gen.h5"),
            *common,
        ],
    }


def _inputs(L, factor, coarsen, samples, tmp: Path) -> Path:
    from ..mc.simulate import simulate
    from ..skild.coarsen import coarsen as coarse_grain

    fine = simulate(L, samples=samples, seed=11, out=tmp / "fine.h5", progress=False).path
    return coarse_grain(fine, factor=factor, method=coarsen, out=tmp / "coarse.h5")


def bench_sampling(
    *,
    L: int = 128,
    factor: float = 4.0,
    coarsen: str = "block",
    samples: int = 16,
    repeats: int = 3,
    baseline: str | None = None,
    device: str = "cpu",
    log=None,
) -> dict:
    """The whole ``upsample`` and ``generate`` commands (this tree, and ``baseline`` when
    given, alternating) and the network call at L. Returns per command the runs, medians and
    ratios (baseline / this tree), and the network-call costs."""
    log = log or (lambda msg: None)
    tmp = Path(tempfile.mkdtemp(prefix="isingscale-bench-skild-"))
    trees = {"this tree": None}
    try:
        coarse = _inputs(L, factor, coarsen, samples, tmp)
        if baseline:
            trees["baseline"] = baseline_tree(baseline, tmp / "baseline")
        results = {}
        for name, args in _commands(L, factor, coarse, samples, tmp, device).items():
            log(f"{name}: {samples} lattices, {repeats} runs per tree ...")
            results[name] = _side_by_side(args, trees, repeats, what=f"isingscale {args[0]}")
        kernel = network_call_cost(L, batch=32)
    finally:
        if baseline and (tmp / "baseline").exists():
            _remove_tree(tmp / "baseline")
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "L": L,
        "factor": factor,
        "coarsen": coarsen,
        "samples": samples,
        "baseline": baseline,
        "commands": results,
        "kernel": kernel,
        "cores": usable_cores(),
        "load": os.getloadavg()[0],
    }


def _side_by_side(args, trees: dict, repeats: int, *, what: str) -> dict:
    """Median wall / CPU seconds and peak memory per tree, runs alternating between trees."""
    for name, tree in trees.items():
        time_command(args, tree=tree, what=f"{what} ({name})")  # warm-up: caches
    runs = {name: [] for name in trees}
    for _ in range(repeats):
        for name, tree in trees.items():
            runs[name].append(time_command(args, tree=tree, what=f"{what} ({name})"))
    out = {
        name: {k: float(np.median([r[k] for r in rs])) for k in ("wall_s", "cpu_s", "peak_rss")}
        for name, rs in runs.items()
    }
    if "baseline" in out:
        out["ratio"] = {
            k: out["baseline"][k] / out["this tree"][k] for k in ("wall_s", "cpu_s", "peak_rss")
        }
    return out


def format_sampling_table(res: dict) -> str:
    """The bench's table: per command and tree, s per lattice, CPU s, peak memory, ratios."""
    n = res["samples"]
    lines = [
        f"{n} lattices per command, median of the runs, {res['cores']} cores, load "
        f"{res['load']:.1f}; ratio = baseline / this tree (> 1: this tree is faster or smaller)",
        "| command | tree | wall s per lattice | CPU s per lattice | peak memory |",
        "|---|---|---|---|---|",
    ]
    for cmd, r in res["commands"].items():
        for tree in ("baseline", "this tree"):
            if tree in r:
                t = r[tree]
                label = f"{tree} ({res['baseline']})" if tree == "baseline" else tree
                lines.append(
                    f"| {cmd} | {label} | {t['wall_s'] / n:.3f} | {t['cpu_s'] / n:.3f} | "
                    f"{t['peak_rss'] / 2**20:.0f} MiB |"
                )
        if "ratio" in r:
            q = r["ratio"]
            lines.append(
                f"| {cmd} | ratio | {q['wall_s']:.2f}× | {q['cpu_s']:.2f}× | {q['peak_rss']:.2f}× |"
            )
    k = res["kernel"]
    lines.append(
        f"\nNetwork call at {k['L']}², {k['batch']} lattices, {k['threads']} threads: "
        f"{k['one_call_ms']:.1f} ms per lattice in one call, {k['chunked_ms']:.1f} ms as the "
        f"samplers call it (chunks of {k['chunk']}): {k['one_call_ms'] / k['chunked_ms']:.2f}×"
    )
    return "\n".join(lines)
