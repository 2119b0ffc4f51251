"""High-level Monte Carlo driver: thermalize chains, save on a schedule, append to HDF5.

Protocol (after the SKILD paper, appendix F, with thermalization that scales):
independent chains from random +-1 starts, thermalized until stationary
(:mod:`isingscale.mc.thermalization`: work in L^2 flipped spins, a stationarity test
recorded in the file), then one configuration saved per chain every ``decorrelate * L^2``
flipped spins *on average*. How "on average" is realised is the saving schedule:

- ``calibrated`` (default, unbiased): the mean flipped spins per update f is measured
  over the equilibrated last half of thermalization (all chains pooled), and every chain
  then does the same fixed number of updates between saves,
  ``ceil(decorrelate L^2 / (f - 3 se_f))``: at least the target on average (the lower
  confidence bound keeps it there when f is uncertain);
- ``fixed`` (unbiased): ``interval`` updates between saves, given by the user;
- ``threshold`` (the paper's rule, biased): a chain saves when its own flipped-spin
  count since its last save reaches ``decorrelate L^2``. That is a stopping time that
  depends on the chain's history and favours configurations just after large clusters:
  at Tc the energy per site comes out about 2.8 % low at L = 16. Kept for comparison
  only; it warns.

Samples are written in blocks (each a few save rounds across all chains), in round-major
order: sample s comes from chain ``s % chains``. Before each block is appended, the state
needed to continue is stored (:mod:`isingscale.mc.resume`), so a run killed at any moment
resumes from its last complete block and reproduces, bit for bit, the samples an
uninterrupted run would have written.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import stats
from ..constants import (
    BINDER_CRITICAL,
    CALIBRATION_SIGMAS,
    DEFAULT_DECORRELATE,
    DEFAULT_THERMALIZE,
    T_C,
    THERMALIZE_MAX,
)
from ..errors import IsingScaleError
from ..io import (
    ArrayWriter,
    EnsembleWriter,
    append_ensemble,
    ensemble_writer,
    read_attrs,
    read_ensemble,
)
from . import kernels
from .chains import Chains, J
from .resume import restore_state, save_state
from .thermalization import UNITS, Thermalization, thermalize

SCHEDULES = ("calibrated", "fixed", "threshold")
ALGORITHMS = tuple(kernels.ALGORITHMS)
_BLOCK_SECONDS = 1.0  # target wall time of one written block
_BLOCK_BYTES = 32 << 20  # cap on the spins buffered per block
_UPDATE_NAMES = {
    "wolff": "Wolff cluster updates",
    "sw": "Swendsen-Wang sweeps",
    "metropolis": "Metropolis sweeps",
}


class ThresholdBiasWarning(UserWarning):
    """The ``threshold`` saving schedule is a stopping time and biases the ensemble."""


class ThermalizationWarning(UserWarning):
    """Thermalization ended without the chains passing the stationarity test."""


@dataclass(frozen=True)
class SimulationResult:
    """What a :func:`simulate` call produced, with its ensemble checked against references.

    Energies and magnetizations are per site; errors are one autocorrelation-aware
    standard error (:mod:`isingscale.stats`), over all samples in the file. Work is
    counted in flipped spins; "L^2 flips" means L^2 flipped spins per chain.
    """

    path: Path | None  # None: an in-memory run (out=None); the lattices are in ``spins``
    n_samples: int  # samples in the file now
    n_new: int  # samples written by this call
    elapsed: float  # seconds, this call
    flips_per_second: float  # spins flipped per second of this call (thermalization included)
    thermalization_rule: str  # "auto", "flips" or "updates"
    thermalization_flips: float  # L^2 flips per chain spent thermalizing
    stationary: bool  # did thermalization pass the stationarity test (file attribute)
    updates_between_saves: int  # the fixed interval (calibrated or fixed schedule); 0 for threshold
    decorrelate: float  # asked: L^2 flips between saves
    flips_per_save: float  # measured over every save in the file, in L^2 flips
    mean_flips_per_update: float  # production updates of every save in the file
    mean_cluster_size: float  # Wolff only (nan otherwise): = mean_flips_per_update
    n_m2: float  # N <m^2> over the samples; for Wolff equal to the mean cluster size
    n_m2_error: float
    energy: float
    energy_error: float
    energy_tau: float  # integrated autocorrelation time of the energy, in saved samples
    energy_exact: float  # exact finite-size energy per site on the torus (Kaufman)
    abs_magnetization: float
    abs_magnetization_error: float
    binder: float
    binder_error: float
    binder_reference: float  # U4* at Tc; nan away from Tc
    spins: np.ndarray | None = field(default=None, repr=False)  # in-memory run: int8 (n, L, L)

    def summary(self) -> str:
        """Human-readable multi-line summary (what ``isingscale simulate`` prints)."""
        z = (self.energy - self.energy_exact) / self.energy_error if self.energy_error > 0 else 0
        where = "in memory" if self.path is None else f"in {self.path}"
        lines = [
            f"wrote {self.n_new} samples ({self.n_samples} {where}) in {self.elapsed:.1f} s",
            f"throughput        {self.flips_per_second / 1e6:.1f} M flipped spins/s",
            f"thermalization    {self.thermalization_flips:.3g} L^2 flipped spins per chain "
            f"({self.thermalization_rule}): "
            + ("stationary" if self.stationary else "NOT stationary (see the warning)"),
            f"saves             {self._saves()}",
        ]
        per = f"{self.n_m2:.1f} ± {self.n_m2_error:.1f}"
        if not math.isnan(self.mean_cluster_size):
            lines.append(f"mean cluster size {self.mean_cluster_size:.1f}   N<m^2> = {per}")
        else:
            lines.append(f"flips per update  {self.mean_flips_per_update:.1f}   N<m^2> = {per}")
        lines += [
            f"energy per site   {self.energy:.5f} ± {self.energy_error:.5f} (tau_int "
            f"{self.energy_tau:.2f})   exact {self.energy_exact:.5f}   z = {z:+.1f}",
            f"|m|               {self.abs_magnetization:.5f} ± {self.abs_magnetization_error:.5f}",
            f"Binder U4         {self.binder:.4f} ± {self.binder_error:.4f}"
            + (
                f"   reference at Tc {self.binder_reference:.4f}"
                if not math.isnan(self.binder_reference)
                else ""
            ),
        ]
        return "\n".join(lines)

    def _saves(self) -> str:
        measured = f"{self.flips_per_save:.3g} L^2 flipped spins per save"
        if self.updates_between_saves:
            return (
                f"every {self.updates_between_saves} updates = {measured} "
                f"(asked {self.decorrelate:g}, x{self.flips_per_save / self.decorrelate:.2f})"
            )
        return f"threshold {self.decorrelate:g} L^2: {measured}"


def default_chains() -> int:
    """One chain per core this process may use."""
    from ..device import usable_cores

    return usable_cores()


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
    thermalize: float | str = DEFAULT_THERMALIZE,
    thermalize_unit: str = "flips",
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
    L : lattice size (2 <= L <= 32768).
    samples : total number of saved configurations the file should hold (>= 1).
    T : temperature (> 0), default Tc = 2 / ln(1 + sqrt 2).
    chains : independent Markov chains run in parallel; default one per core. On resume,
        None means the file's chain count.
    seed : seed of every random stream (chain c uses SeedSequence(seed).spawn(chains)[c]).
    thermalize : ``"auto"`` (until the stationarity test passes, see
        :mod:`isingscale.mc.thermalization`) or a positive amount in ``thermalize_unit``;
        an explicit amount that fails the test warns (:class:`ThermalizationWarning`).
    thermalize_unit : ``"flips"`` (L^2 flipped spins per chain) or ``"updates"`` (Wolff
        clusters, SW or Metropolis sweeps per chain; the SKILD paper's protocol is
        ``thermalize=2000, thermalize_unit="updates"``).
    decorrelate : target flipped spins between saves, in units of L^2.
    schedule : ``calibrated`` | ``fixed`` | ``threshold`` (biased; see module docstring).
    interval : updates between saves for ``schedule="fixed"``.
    algorithm : ``wolff`` | ``sw`` | ``metropolis``.
    out : output file (the CLI's default: :func:`default_path`); None: nothing is written,
        the result holds the lattices (``result.spins``, int8 (samples, L, L)).
    resume : continue the file ``out``'s chains up to ``samples`` (a missing file starts
        fresh); L, T, seed, chains, algorithm and schedule must match the file. Chains
        already thermalized are continued as they are (``thermalize`` is then not used).
    overwrite : replace an existing file.
    progress : show tqdm progress bars on stderr.

    Returns
    -------
    SimulationResult
        The file path (or the spins) and statistics over every sample.
    """
    config = _config(
        L=L,
        samples=samples,
        T=T,
        chains=chains,
        seed=seed,
        thermalize=thermalize,
        thermalize_unit=thermalize_unit,
        decorrelate=decorrelate,
        schedule=schedule,
        interval=interval,
        algorithm=algorithm,
    )
    path = _output(out, resume, config)
    t0 = time.perf_counter()
    mc = Chains(L, T=T, algorithm=algorithm, seed=seed, chains=config["chains"])
    writer = _open(path, config, resume=resume, overwrite=overwrite)
    try:
        n_before = writer.n_samples
        interval = _start(writer, mc, config=config, progress=progress)
        produced_before = int(mc.production.flipped.sum())
        _produce(writer, mc, samples, interval=interval, progress=progress)
    finally:
        writer.close()
    elapsed = time.perf_counter() - t0
    work = int(mc.thermalization.flipped.sum()) + int(mc.production.flipped.sum()) - produced_before
    return _result(path, writer, mc, n_new=writer.n_samples - n_before, elapsed=elapsed, work=work)


def _output(out, resume: bool, config: dict) -> Path | None:
    """The output file (None: memory); sets config["chains"] (on resume, the file's count
    when none is given)."""
    if resume and out is None:
        raise IsingScaleError("resume continues a file: give out")
    path = Path(out) if out is not None else None
    if resume and config["chains"] is None and path.exists():
        config["chains"] = int(read_attrs(path).get("chains", 0)) or None
    config["chains"] = int(config["chains"] or default_chains())
    return path


def _start(writer: EnsembleWriter, mc: Chains, *, config: dict, progress: bool) -> int:
    """Chains restored from the file's last state, or thermalized now; updates between saves.

    A new file, or one killed before its first state, is thermalized as ``config`` asks.
    """
    if restore_state(writer, mc):
        return _interval(writer, config)
    for key in ("thermalize", "thermalize_unit"):
        writer.attrs[key] = config[key]
    writer.attrs["config"] = json.dumps(config)
    return _thermalize(writer, mc, config=config, progress=progress)


def _config(
    *,
    L,
    samples,
    T,
    chains,
    seed,
    thermalize,
    thermalize_unit,
    decorrelate,
    schedule,
    interval,
    algorithm,
) -> dict:
    """Validated run configuration (what the file records); one-line errors otherwise."""
    if int(L) != L or not 2 <= L <= kernels.MAX_L:
        raise IsingScaleError(f"lattice size L must be an integer in [2, {kernels.MAX_L}], got {L}")
    if int(samples) != samples or samples < 1:
        raise IsingScaleError(f"samples must be an integer >= 1, got {samples}")
    if not (math.isfinite(T) and T > 0):
        raise IsingScaleError(f"temperature T must be positive and finite, got {T}")
    if chains is not None and (int(chains) != chains or chains < 1):
        raise IsingScaleError(f"chains must be an integer >= 1, got {chains}")
    for name, value, allowed in (
        ("algorithm", algorithm, ALGORITHMS),
        ("schedule", schedule, SCHEDULES),
        ("thermalize unit", thermalize_unit, UNITS),
    ):
        if value not in allowed:
            raise IsingScaleError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")
    if schedule == "fixed" and (interval is None or int(interval) != interval or interval < 1):
        raise IsingScaleError(
            f"schedule 'fixed' needs interval >= 1 (updates between saves), got {interval}"
        )
    if not (math.isfinite(decorrelate) and decorrelate > 0):
        raise IsingScaleError(f"decorrelate must be positive, got {decorrelate}")
    if schedule == "threshold":
        warnings.warn(
            "schedule 'threshold' saves when a chain's own flipped-spin count crosses the "
            "threshold: a stopping time that biases the ensemble towards order "
            "(energy ~3% low at L=16)",
            ThresholdBiasWarning,
            stacklevel=3,
        )
    return dict(
        L=int(L),
        T=float(T),
        J=J,
        algorithm=algorithm,
        seed=int(seed),
        chains=chains,
        thermalize=_thermalize_amount(thermalize, thermalize_unit),
        thermalize_unit=thermalize_unit,
        decorrelate=float(decorrelate),
        schedule=schedule,
        interval=int(interval) if interval is not None else None,
    )


def _thermalize_amount(value, unit: str) -> str | float | int:
    """``"auto"``, a positive float (unit flips) or a positive integer (unit updates)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        if unit != "flips":
            raise IsingScaleError(
                "thermalize 'auto' counts L^2 flipped spins; unit 'updates' needs a number"
            )
        return "auto"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        raise IsingScaleError(
            f"thermalize must be 'auto' or a positive number, got {value!r}"
        ) from None
    if not (math.isfinite(amount) and amount > 0):
        raise IsingScaleError(
            f"thermalize must be 'auto' or a positive number of {_unit_words(unit)}, got {value}"
        )
    if unit == "updates":
        if amount != int(amount):
            raise IsingScaleError(f"thermalize in updates must be an integer, got {value}")
        return int(amount)
    return amount


def _unit_words(unit: str) -> str:
    return "L^2 flipped spins per chain" if unit == "flips" else "updates per chain"


# --------------------------------------------------------------------------------------
# File handling: create or reopen; the resume state lives in isingscale.mc.resume.


def _open(
    path: Path | None, config: dict, *, resume: bool, overwrite: bool
) -> EnsembleWriter | ArrayWriter:
    """Create the file, or reopen it to resume (its ensemble must match this run's); None:
    memory."""
    if resume and path.exists():
        keys = ("L", "T", "seed", "chains", "algorithm", "schedule")
        expect = {k: config[k] for k in keys}
        expect["kind"] = "montecarlo"
        if config["schedule"] == "fixed":
            expect["interval"] = config["interval"]
        else:
            expect["decorrelate"] = config["decorrelate"]
        return append_ensemble(path, expect=expect)
    attrs = {k: ("none" if v is None else v) for k, v in config.items()}
    attrs["config"] = json.dumps(config)
    attrs["decorrelation_rule"] = _rule_text(config)
    return ensemble_writer(path, L=config["L"], kind="montecarlo", attrs=attrs, overwrite=overwrite)


def _rule_text(config: dict) -> str:
    unit = _UPDATE_NAMES[config["algorithm"]]
    if config["schedule"] == "fixed":
        return f"fixed: {config['interval']} {unit} between saves"
    if config["schedule"] == "threshold":
        return (
            f"threshold (biased): save when a chain's own flipped spins since its last save reach "
            f"{config['decorrelate']} L^2"
        )
    return (
        f"calibrated: a fixed number of {unit} between saves, ceil({config['decorrelate']} L^2 / "
        f"(f - {CALIBRATION_SIGMAS:g} se_f)) with f the mean flipped spins per update over the "
        "equilibrated last half "
        "of thermalization (all chains pooled) and se_f its standard error"
    )


def _interval(writer: EnsembleWriter, config: dict) -> int:
    """Updates between saves recorded in a file being resumed (0: threshold schedule)."""
    if config["schedule"] == "threshold":
        return 0
    return int(writer.attrs.get("interval", 0))


# --------------------------------------------------------------------------------------
# The run: thermalize, calibrate, then produce blocks.


def calibrated_interval(th: Thermalization, *, decorrelate: float, N: int) -> int:
    """Updates between saves so that the mean flipped spins reach ``decorrelate * N``.

    Uses the lower confidence bound f - 3 se_f of the flipped spins per update (at least
    f / 2), so that the target is met on average even when f is uncertain; without a
    measurement from the last half (too short a thermalization) the mean over all of
    thermalization stands in.
    """
    f, se = th.flips_per_update, th.flips_per_update_error
    if not math.isfinite(f) or f <= 0:
        f, se = th.flips * N / max(th.updates, 1), 0.0
    low = max(f - CALIBRATION_SIGMAS * se, f / 2) if math.isfinite(se) else f
    return max(1, math.ceil(decorrelate * N / low))


def _thermalize(writer: EnsembleWriter, mc: Chains, *, config: dict, progress: bool) -> int:
    th = thermalize(
        mc, amount=config["thermalize"], unit=config["thermalize_unit"], progress=progress
    )
    for key, value in th.attrs().items():
        writer.attrs[key] = value
    if not th.stationary:
        warnings.warn(
            _thermalization_message(th, mc=mc, config=config), ThermalizationWarning, stacklevel=3
        )
    interval = 0
    if config["schedule"] == "calibrated":
        interval = calibrated_interval(th, decorrelate=config["decorrelate"], N=mc.N)
        writer.attrs["calibrated_updates_between_saves"] = interval
    elif config["schedule"] == "fixed":
        interval = config["interval"]
    if config["schedule"] != "threshold":
        writer.attrs["interval"] = interval
    save_state(writer, mc, n=0)
    if writer.path is not None:
        writer.h5file.flush()
    return interval


def _thermalization_message(th: Thermalization, *, mc: Chains, config: dict) -> str:
    where = f"L = {mc.L}, T = {mc.T:.6g}, {mc.algorithm}"
    if th.rule == "auto":
        return (
            f"thermalization ({where}) ended after {th.flips:.3g} L^2 flipped spins per chain "
            f"(auto stops at {THERMALIZE_MAX:g}) without passing the stationarity test: "
            f"{th.verdict()}; samples may be out of equilibrium (a larger explicit --thermalize "
            "runs longer)"
        )
    asked = f"--thermalize {config['thermalize']:g}"
    if th.rule == "updates":
        asked += f" --thermalize-unit updates ({th.flips:.3g} L^2 flipped spins per chain)"
    return (
        f"{asked} is too short for {where}: {th.verdict()}; the default 'auto' thermalizes "
        "until stationary"
    )


def _per_chain_count(n: int, C: int) -> np.ndarray:
    """Samples each chain has produced once the file holds n (round-major order)."""
    return n // C + (np.arange(C) < n % C)


def _produce(
    writer: EnsembleWriter, mc: Chains, samples: int, *, interval: int, progress: bool
) -> None:
    from tqdm.auto import tqdm

    C, n = mc.chains, writer.n_samples
    threshold = int(math.ceil(float(writer.attrs["decorrelate"]) * mc.N))
    rounds = 1
    with tqdm(
        total=samples,
        initial=min(n, samples),
        unit="sample",
        file=sys.stderr,
        disable=not progress,
        desc=f"L={mc.L} {mc.algorithm}",
    ) as bar:
        while n < samples:
            end = min(samples, n + rounds * C)
            t0 = time.perf_counter()
            _write_block(writer, mc, n, end, interval=interval, threshold=threshold)
            dt = time.perf_counter() - t0
            bar.update(end - n)
            rounds = _next_rounds(rounds, dt, mc)
            n = end


def _next_rounds(rounds: int, dt: float, mc: Chains) -> int:
    cap = max(1, _BLOCK_BYTES // (mc.chains * mc.N))
    return int(np.clip(round(rounds * _BLOCK_SECONDS / max(dt, 1e-3)), 1, min(cap, 2 * rounds)))


def _write_block(
    writer: EnsembleWriter, mc: Chains, n: int, end: int, *, interval: int, threshold: int
) -> None:
    """Produce samples n..end-1, store the state for ``end``, then append and flush."""
    C = mc.chains
    before = _per_chain_count(n, C)
    out_spins, out_bonds, out_sum = mc.produce(
        _per_chain_count(end, C) - before, interval=interval, threshold=threshold
    )
    s = np.arange(n, end)
    chain = s % C
    k = s // C - before[chain]
    save_state(writer, mc, n=end)
    writer.append(
        out_spins[chain, k].reshape(-1, mc.L, mc.L),
        energy=-J * out_bonds[chain, k] / mc.N,
        magnetization=out_sum[chain, k] / mc.N,
        chain=chain,
    )


# --------------------------------------------------------------------------------------
# Summary statistics over the whole file.


def binder_jackknife(m: np.ndarray, chain: np.ndarray | None = None) -> tuple[float, float]:
    """U4 = 1 - <m^4>/(3<m^2>^2) and its block-jackknife error.

    Blocks are runs of consecutive samples of each chain (samples sorted by chain).
    """
    m = np.asarray(m, dtype=np.float64)
    if chain is not None:
        m = m[np.argsort(np.asarray(chain), kind="stable")]
    acc = stats.BlockAccumulator(len(m))
    acc.add(0, {"m2": m**2, "m4": m**4})
    u4, err = stats.jackknife(acc, lambda means: {"u4": stats.binder(means["m2"], means["m4"])})[
        "u4"
    ]
    return float(u4), float(err)


def _result(
    path: Path | None, writer, mc: Chains, *, n_new: int, elapsed: float, work: int
) -> SimulationResult:
    """The statistics of the file ``path``, or (None) of the in-memory ``writer``."""
    if path is None:
        attrs, data = writer.attrs, writer.arrays()
    else:
        attrs = read_attrs(path)
        data = read_ensemble(path, datasets=("energy", "magnetization", "chain"))
    e, m, chain = data["energy"], data["magnetization"], data["chain"]
    e_mean, e_err, e_tau = stats.mean_error(e, chain=chain)
    am_mean, am_err, _ = stats.mean_error(np.abs(m), chain=chain)
    m2_mean, m2_err, _ = stats.mean_error(m**2, chain=chain)
    u4, u4_err = binder_jackknife(m, chain)
    per_update = mc.production.flips_per_update
    T = mc.T
    return SimulationResult(
        path=path,
        n_samples=len(e),
        n_new=n_new,
        elapsed=elapsed,
        flips_per_second=work / elapsed,
        thermalization_rule=str(attrs.get("thermalization_rule", "?")),
        thermalization_flips=float(attrs.get("thermalization_flips_per_site", math.nan)),
        stationary=bool(attrs.get("thermalization_stationary", False)),
        updates_between_saves=int(attrs.get("interval", 0) or 0)
        if attrs.get("schedule") != "threshold"
        else 0,
        decorrelate=float(attrs["decorrelate"]),
        flips_per_save=float(mc.production.flipped.sum() / max(len(e), 1) / mc.N),
        mean_flips_per_update=per_update,
        mean_cluster_size=per_update if mc.algorithm == "wolff" else math.nan,
        n_m2=mc.N * m2_mean,
        n_m2_error=mc.N * m2_err,
        energy=e_mean,
        energy_error=e_err,
        energy_tau=e_tau,
        energy_exact=_exact_energy(mc.L, T),
        abs_magnetization=am_mean,
        abs_magnetization_error=am_err,
        binder=u4,
        binder_error=u4_err,
        binder_reference=BINDER_CRITICAL if abs(T - T_C) < 1e-9 else math.nan,
        spins=data["spins"] if path is None else None,
    )


def _exact_energy(L: int, T: float) -> float:
    from ..exact import torus_energy

    return float(torus_energy(L, T, J=J))


def result_dict(result: SimulationResult) -> dict:
    """The result as a JSON-friendly dict."""
    d = asdict(result)
    d.pop("spins")
    d["path"] = str(result.path)
    return d
