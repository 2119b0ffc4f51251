"""High-level Monte Carlo driver: thermalize chains, save on a schedule, append to HDF5.

Protocol (after the SKILD paper, appendix F): independent chains from random +-1 starts,
``thermalize`` updates each, then one configuration saved per chain every
``decorrelate * L^2`` flipped spins *on average*. How "on average" is realised is the
saving schedule:

- ``calibrated`` (default, unbiased): the mean flipped spins per update is measured over
  the second half of thermalization (all chains pooled), and every chain then does the
  same fixed number of updates ``ceil(decorrelate L^2 / mean)`` between saves;
- ``fixed`` (unbiased): ``interval`` updates between saves, given by the user;
- ``threshold`` (the paper's rule, biased): a chain saves when its own flipped-spin
  count since its last save reaches ``decorrelate L^2``. That is a stopping time that
  depends on the chain's history and favours configurations just after large clusters:
  at Tc the energy per site comes out about 2.8 % low at L = 16. Kept for comparison
  only; it warns.

Samples are written in blocks (each a few save rounds across all chains), in round-major
order: sample s comes from chain ``s % chains``. Before each block is appended, the state
needed to continue (per-chain xoshiro256++ states and spins) is stored in the group
``/_state`` in one of two slots tagged with the sample count it belongs to, so a run
killed at any moment resumes from its last complete block and reproduces, bit for bit,
the samples an uninterrupted run would have written.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import stats
from ..constants import BINDER_CRITICAL, DEFAULT_DECORRELATE, DEFAULT_THERMALIZE, T_C
from ..errors import IsingScaleError
from ..io import EnsembleWriter, append_ensemble, create_ensemble, read_attrs, read_ensemble
from . import kernels
from .rng import chain_states, random_starts

SCHEDULES = ("calibrated", "fixed", "threshold")
ALGORITHMS = tuple(kernels.ALGORITHMS)
J = 1.0
_BLOCK_SECONDS = 1.0  # target wall time of one written block
_BLOCK_BYTES = 32 << 20  # cap on the spins buffered per block


class ThresholdBiasWarning(UserWarning):
    """The ``threshold`` saving schedule is a stopping time and biases the ensemble."""


@dataclass(frozen=True)
class SimulationResult:
    """What a :func:`simulate` call produced, with its ensemble checked against references.

    Energies and magnetizations are per site; errors are one autocorrelation-aware
    standard error (:mod:`isingscale.stats`), over all samples in the file.
    """

    path: Path
    n_samples: int  # samples in the file now
    n_new: int  # samples written by this call
    elapsed: float  # seconds, this call
    flips_per_second: float  # spins flipped per second of this call (thermalization included)
    mean_flips_per_update: float  # for Wolff: the mean cluster size
    mean_cluster_size: float  # Wolff only (nan otherwise)
    updates_between_saves: int  # the fixed interval (calibrated or fixed schedule); 0 for threshold
    energy: float
    energy_error: float
    energy_tau: float  # integrated autocorrelation time of the energy, in saved samples
    energy_exact: float  # exact finite-size energy per site on the torus (nan if unavailable)
    abs_magnetization: float
    abs_magnetization_error: float
    binder: float
    binder_error: float
    binder_reference: float  # U4* at Tc; nan away from Tc

    def summary(self) -> str:
        """Human-readable multi-line summary (what ``isingscale simulate`` prints)."""
        z = (
            (self.energy - self.energy_exact) / self.energy_error
            if self.energy_error > 0
            else math.nan
        )
        lines = [
            f"wrote {self.n_new} samples ({self.n_samples} in {self.path}) in {self.elapsed:.1f} s",
            f"throughput        {self.flips_per_second / 1e6:.1f} M flipped spins/s",
        ]
        if not math.isnan(self.mean_cluster_size):
            lines.append(f"mean cluster size {self.mean_cluster_size:.1f}")
        else:
            lines.append(f"flips per update  {self.mean_flips_per_update:.1f}")
        lines += [
            f"energy per site   {self.energy:.5f} ± {self.energy_error:.5f} (tau_int {self.energy_tau:.2f})"
            f"   exact {self.energy_exact:.5f}   z = {z:+.1f}",
            f"|m|               {self.abs_magnetization:.5f} ± {self.abs_magnetization_error:.5f}",
            f"Binder U4         {self.binder:.4f} ± {self.binder_error:.4f}"
            + (
                f"   reference at Tc {self.binder_reference:.4f}"
                if not math.isnan(self.binder_reference)
                else ""
            ),
        ]
        return "\n".join(lines)


def default_chains() -> int:
    """One chain per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_path(L: int, T: float, algorithm: str, seed: int) -> Path:
    """Descriptive default output file, e.g. ``data/ising_L128_T2.2692_wolff_seed0.h5``."""
    return Path("data") / f"ising_L{L}_T{T:.4f}_{algorithm}_seed{seed}.h5"


def simulate(
    L: int,
    *,
    samples: int,
    T: float = T_C,
    chains: int | None = None,
    seed: int = 0,
    thermalize: int = DEFAULT_THERMALIZE,
    decorrelate: float = DEFAULT_DECORRELATE,
    schedule: str = "calibrated",
    interval: int | None = None,
    algorithm: str = "wolff",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> SimulationResult:
    """Simulate the 2-D Ising model H = -J sum s_i s_j (J = 1) on an L x L torus into HDF5.

    Parameters
    ----------
    L : lattice size (>= 2).
    samples : total number of saved configurations the file should hold (>= 1).
    T : temperature (> 0), default Tc = 2 / ln(1 + sqrt 2).
    chains : independent Markov chains run in parallel; default one per core. On resume,
        None means the file's chain count.
    seed : seed of every random stream (chain c uses SeedSequence(seed).spawn(chains)[c]).
    thermalize : updates per chain before the first save (Wolff clusters, SW sweeps or
        Metropolis sweeps; see :mod:`isingscale.mc.kernels`).
    decorrelate : target flipped spins between saves, in units of L^2.
    schedule : ``calibrated`` | ``fixed`` | ``threshold`` (biased; see module docstring).
    interval : updates between saves for ``schedule="fixed"``.
    algorithm : ``wolff`` | ``sw`` | ``metropolis``.
    out : output file; default :func:`default_path`.
    resume : continue an existing file's chains up to ``samples`` (a missing file starts
        fresh); L, T, seed, chains, algorithm and schedule must match the file.
    overwrite : replace an existing file.
    progress : show a tqdm progress bar on stderr.

    Returns
    -------
    SimulationResult
        The file path and statistics over every sample in the file.
    """
    chains = _check_args(
        L, samples, T, chains, thermalize, decorrelate, schedule, interval, algorithm
    )
    path = Path(out) if out is not None else default_path(L, T, algorithm, seed)
    if resume and chains is None and path.exists():
        chains = int(read_attrs(path).get("chains", 0)) or None
    chains = chains or default_chains()
    if schedule == "threshold":
        warnings.warn(
            "schedule 'threshold' saves when a chain's own flipped-spin count crosses the threshold: "
            "a stopping time that biases the ensemble towards order (energy ~3% low at L=16)",
            ThresholdBiasWarning,
            stacklevel=2,
        )
    config = dict(
        L=int(L),
        T=float(T),
        J=J,
        algorithm=algorithm,
        seed=int(seed),
        chains=int(chains),
        thermalize=int(thermalize),
        decorrelate=float(decorrelate),
        schedule=schedule,
        interval=int(interval) if interval is not None else None,
    )
    t0 = time.perf_counter()
    engine = _Engine(config)
    writer = _open(path, config, resume=resume, overwrite=overwrite)
    try:
        n_before = writer.n_samples
        if not _restore(writer, engine):
            _thermalize(writer, engine)
        _produce(writer, engine, samples, progress=progress)
        n_after = writer.n_samples
    finally:
        writer.close()
    elapsed = time.perf_counter() - t0
    return _result(path, engine, n_after - max(n_before, 0), elapsed)


def _check_args(L, samples, T, chains, thermalize, decorrelate, schedule, interval, algorithm):
    if int(L) != L or L < 2:
        raise IsingScaleError(f"lattice size L must be an integer >= 2, got {L}")
    if int(samples) != samples or samples < 1:
        raise IsingScaleError(f"samples must be an integer >= 1, got {samples}")
    if not (math.isfinite(T) and T > 0):
        raise IsingScaleError(f"temperature T must be positive and finite, got {T}")
    if chains is not None and (int(chains) != chains or chains < 1):
        raise IsingScaleError(f"chains must be an integer >= 1, got {chains}")
    if algorithm not in ALGORITHMS:
        raise IsingScaleError(
            f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    if schedule not in SCHEDULES:
        raise IsingScaleError(
            f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}"
        )
    if thermalize < 0:
        raise IsingScaleError(f"thermalize must be >= 0, got {thermalize}")
    if schedule == "calibrated" and thermalize < 10:
        raise IsingScaleError(
            "schedule 'calibrated' measures flips per update during thermalization: "
            f"needs thermalize >= 10, got {thermalize}"
        )
    if schedule == "fixed" and (interval is None or interval < 1):
        raise IsingScaleError(
            f"schedule 'fixed' needs interval >= 1 (updates between saves), got {interval}"
        )
    if not (math.isfinite(decorrelate) and decorrelate > 0):
        raise IsingScaleError(f"decorrelate must be positive, got {decorrelate}")
    return chains


# --------------------------------------------------------------------------------------
# Engine state: spins, RNG and the fixed kernel parameters of one run.


class _Engine:
    def __init__(self, config: dict):
        self.config = config
        L, T, C = config["L"], config["T"], config["chains"]
        self.L, self.C, self.N = L, C, L * L
        self.code = kernels.ALGORITHMS[config["algorithm"]]
        self.nbr = kernels.neighbour_table(L)
        # Bond probability p = 1 - exp(-2J/T); Metropolis accepts exp(-2 J h / T), h = 2, 4.
        self.p53 = np.uint64(int(-math.expm1(-2.0 * J / T) * 2.0**53))
        self.accept53 = np.array(
            [2**53] + [int(math.exp(-2.0 * J * h / T) * 2.0**53) for h in (2, 4)], np.uint64
        )
        self.spins = random_starts(config["seed"], C, L)
        self.rng = chain_states(config["seed"], C)
        self.flipped = np.zeros(C, np.int64)
        self.updates = np.zeros(C, np.int64)
        self.interval = config["interval"] or 0
        self.threshold = int(math.ceil(config["decorrelate"] * self.N))

    @property
    def schedule_code(self) -> int:
        return (
            kernels.THRESHOLD if self.config["schedule"] == "threshold" else kernels.FIXED_UPDATES
        )

    def thermalize(self) -> float:
        """Thermalize every chain; return the mean flipped spins per update (second half)."""
        flipped = np.zeros(self.C, np.int64)
        counted = np.zeros(self.C, np.int64)
        kernels.thermalize_chains(
            self.code,
            self.spins,
            self.nbr,
            self.rng,
            self.L,
            self.p53,
            self.accept53,
            self.config["thermalize"],
            flipped,
            counted,
        )
        self.flipped += flipped
        return float(flipped.sum() / counted.sum()) if counted.sum() else math.nan

    def produce(self, todo: np.ndarray):
        """Run the kernel for ``todo[c]`` samples per chain; return (spins, bonds, sums)."""
        k = int(todo.max())
        out_spins = np.empty((self.C, k, self.N), np.int8)
        out_bonds = np.empty((self.C, k), np.int64)
        out_sum = np.empty((self.C, k), np.int64)
        kernels.produce_samples(
            self.code,
            self.schedule_code,
            self.spins,
            self.nbr,
            self.rng,
            self.L,
            self.p53,
            self.accept53,
            self.interval,
            self.threshold,
            todo.astype(np.int64),
            out_spins,
            out_bonds,
            out_sum,
            self.flipped,
            self.updates,
        )
        return out_spins, out_bonds, out_sum


# --------------------------------------------------------------------------------------
# File handling: create or reopen, resume state in /_state (two slots).


def _open(path: Path, config: dict, *, resume: bool, overwrite: bool) -> EnsembleWriter:
    if resume and path.exists():
        expect = {
            k: config[k]
            for k in ("L", "T", "seed", "chains", "algorithm", "schedule", "thermalize")
        }
        expect["kind"] = "montecarlo"
        if config["schedule"] == "fixed":
            expect["interval"] = config["interval"]
        else:
            expect["decorrelate"] = config["decorrelate"]
        return append_ensemble(path, expect=expect)
    attrs = {k: ("none" if v is None else v) for k, v in config.items()}
    attrs["config"] = json.dumps(config)
    attrs["decorrelation_rule"] = _rule_text(config)
    return create_ensemble(path, L=config["L"], kind="montecarlo", attrs=attrs, overwrite=overwrite)


def _rule_text(config: dict) -> str:
    unit = {
        "wolff": "Wolff cluster updates",
        "sw": "Swendsen-Wang sweeps",
        "metropolis": "Metropolis sweeps",
    }
    unit = unit[config["algorithm"]]
    if config["schedule"] == "fixed":
        return f"fixed: {config['interval']} {unit} between saves"
    if config["schedule"] == "threshold":
        return (
            f"threshold (biased): save when a chain's own flipped spins since its last save reach "
            f"{config['decorrelate']} L^2"
        )
    return (
        f"calibrated: a fixed number of {unit} between saves, chosen after thermalization so that "
        f"the mean flipped spins reach {config['decorrelate']} L^2"
    )


def _state_group(writer: EnsembleWriter, engine: _Engine):
    f = writer.h5file
    if "_state" not in f:
        g = f.create_group("_state")
        g.create_dataset("rng", shape=(2, engine.C, 4), dtype=np.uint64)
        g.create_dataset(
            "spins",
            shape=(2, engine.C, engine.L, engine.L),
            dtype=np.int8,
            chunks=(1, 1, engine.L, engine.L),
            compression="gzip",
            compression_opts=1,
        )
        g.create_dataset("n_samples", data=np.array([-1, -1], np.int64))
    return f["_state"]


def _save_state(writer: EnsembleWriter, engine: _Engine, n: int) -> None:
    """Store the chains' state for sample count ``n`` in the slot not holding the current one."""
    g = _state_group(writer, engine)
    tags = g["n_samples"][:]
    slot = 1 if tags[0] == writer.n_samples else 0
    g["n_samples"][slot] = -1  # invalid while being written
    g["rng"][slot] = engine.rng
    g["spins"][slot] = engine.spins.reshape(engine.C, engine.L, engine.L)
    g["n_samples"][slot] = n


def _restore(writer: EnsembleWriter, engine: _Engine) -> bool:
    """Load the chains' state matching the file's sample count; False if there is none."""
    f, n = writer.h5file, writer.n_samples
    if "_state" not in f:
        if n:
            raise IsingScaleError(
                f"cannot resume {writer.path}: it holds {n} samples but no chain state"
            )
        return False
    g = f["_state"]
    try:
        tags = g["n_samples"][:]
        slots = np.flatnonzero(tags == n)
        if not len(slots):
            if n:
                raise IsingScaleError(
                    f"cannot resume {writer.path}: no chain state for its {n} samples"
                )
            return False
        engine.rng[:] = g["rng"][slots[0]]
        engine.spins[:] = g["spins"][slots[0]].reshape(engine.C, engine.N)
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise IsingScaleError(f"cannot resume {writer.path}: damaged chain state ({e})") from None
    engine.interval = (
        int(writer.attrs.get("interval", 0)) if engine.config["schedule"] != "threshold" else 0
    )
    return True


# --------------------------------------------------------------------------------------
# The run: thermalize, calibrate, then produce blocks.


def _thermalize(writer: EnsembleWriter, engine: _Engine) -> None:
    mean_flips = engine.thermalize()
    writer.attrs["thermalization_mean_flips_per_update"] = mean_flips
    if engine.config["schedule"] == "calibrated":
        engine.interval = max(1, math.ceil(engine.config["decorrelate"] * engine.N / mean_flips))
        writer.attrs["calibrated_updates_between_saves"] = engine.interval
    if engine.config["schedule"] != "threshold":
        writer.attrs["interval"] = engine.interval
    _save_state(writer, engine, 0)
    writer.h5file.flush()


def _per_chain_count(n: int, C: int) -> np.ndarray:
    """Samples each chain has produced once the file holds n (round-major order)."""
    return n // C + (np.arange(C) < n % C)


def _produce(writer: EnsembleWriter, engine: _Engine, samples: int, *, progress: bool) -> None:
    from tqdm.auto import tqdm

    C, n = engine.C, writer.n_samples
    rounds = 1
    with tqdm(
        total=samples,
        initial=n,
        unit="sample",
        file=sys.stderr,
        disable=not progress,
        desc=f"L={engine.L} {engine.config['algorithm']}",
    ) as bar:
        while n < samples:
            end = min(samples, n + rounds * C)
            t0 = time.perf_counter()
            _write_block(writer, engine, n, end)
            dt = time.perf_counter() - t0
            bar.update(end - n)
            rounds = _next_rounds(rounds, dt, engine)
            n = end


def _next_rounds(rounds: int, dt: float, engine: _Engine) -> int:
    cap = max(1, _BLOCK_BYTES // (engine.C * engine.N))
    return int(np.clip(round(rounds * _BLOCK_SECONDS / max(dt, 1e-3)), 1, min(cap, 2 * rounds)))


def _write_block(writer: EnsembleWriter, engine: _Engine, n: int, end: int) -> None:
    """Produce samples n..end-1, store the state for ``end``, then append and flush."""
    C = engine.C
    before = _per_chain_count(n, C)
    out_spins, out_bonds, out_sum = engine.produce(_per_chain_count(end, C) - before)
    s = np.arange(n, end)
    chain = s % C
    k = s // C - before[chain]
    _save_state(writer, engine, end)
    writer.append(
        out_spins[chain, k].reshape(-1, engine.L, engine.L),
        energy=-J * out_bonds[chain, k] / engine.N,
        magnetization=out_sum[chain, k] / engine.N,
        chain=chain,
    )


# --------------------------------------------------------------------------------------
# Summary statistics over the whole file.


def binder_jackknife(m: np.ndarray, chain: np.ndarray | None = None) -> tuple[float, float]:
    """U4 = 1 - <m^4>/(3<m^2>^2) and its block-jackknife error (blocks of consecutive samples of each chain)."""
    from ..analysis.errors import BlockAccumulator, jackknife
    from ..analysis.observables import binder

    m = np.asarray(m, dtype=np.float64)
    if chain is not None:
        m = m[np.argsort(np.asarray(chain), kind="stable")]
    acc = BlockAccumulator(len(m))
    acc.add(0, {"m2": m**2, "m4": m**4})
    u4, err = jackknife(acc, lambda means: {"u4": binder(means["m2"], means["m4"])})["u4"]
    return float(u4), float(err)


def _result(path: Path, engine: _Engine, n_new: int, elapsed: float) -> SimulationResult:
    data = read_ensemble(path, datasets=("energy", "magnetization", "chain"))
    e, m, chain = data["energy"], data["magnetization"], data["chain"]
    e_mean, e_err, e_tau = stats.mean_error(e, chain=chain)
    am_mean, am_err, _ = stats.mean_error(np.abs(m), chain=chain)
    u4, u4_err = binder_jackknife(m, chain)
    updates = int(engine.updates.sum())
    per_update = float(engine.flipped.sum() / updates) if updates else math.nan
    T = engine.config["T"]
    return SimulationResult(
        path=path,
        n_samples=len(e),
        n_new=n_new,
        elapsed=elapsed,
        flips_per_second=float(engine.flipped.sum() / elapsed),
        mean_flips_per_update=per_update,
        mean_cluster_size=per_update if engine.config["algorithm"] == "wolff" else math.nan,
        updates_between_saves=int(engine.interval),
        energy=e_mean,
        energy_error=e_err,
        energy_tau=e_tau,
        energy_exact=_exact_energy(engine.L, T),
        abs_magnetization=am_mean,
        abs_magnetization_error=am_err,
        binder=u4,
        binder_error=u4_err,
        binder_reference=BINDER_CRITICAL if abs(T - T_C) < 1e-9 else math.nan,
    )


def _exact_energy(L: int, T: float) -> float:
    try:
        from ..exact import torus_energy
    except ImportError:
        return math.nan
    return float(torus_energy(L, T, J=J))


def result_dict(result: SimulationResult) -> dict:
    """The result as a JSON-friendly dict."""
    d = asdict(result)
    d["path"] = str(result.path)
    return d
