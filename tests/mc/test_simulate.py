"""The simulate() API: file invariants, reproducibility, resume, and one-line errors."""

import json
import os

import h5py
import numpy as np
import pytest

from isingscale.errors import IsingScaleError
from isingscale.io import read_attrs, read_ensemble
from isingscale.mc import simulate as sim_module
from isingscale.mc.simulate import simulate


def _spins(path):
    return read_ensemble(path)["spins"]


@pytest.mark.parametrize("algorithm", ["wolff", "sw", "metropolis"])
def test_file_invariants(run, algorithm):
    L = 8
    r = run(L, samples=50, algorithm=algorithm, chains=3)
    d = read_ensemble(r.path)
    s = d["spins"]
    assert s.dtype == np.int8 and s.shape == (50, L, L) and set(np.unique(s)) <= {-1, 1}
    si = s.astype(np.int64)
    energy = -np.sum(si * np.roll(si, 1, 1) + si * np.roll(si, 1, 2), axis=(1, 2)) / L**2
    np.testing.assert_allclose(d["energy"], energy, atol=1e-12)
    np.testing.assert_allclose(d["magnetization"], si.sum(axis=(1, 2)) / L**2, atol=1e-12)
    np.testing.assert_array_equal(d["chain"], np.arange(50) % 3)
    a = d["attrs"]
    assert (
        a["kind"] == "montecarlo"
        and a["L"] == L
        and a["algorithm"] == algorithm
        and a["chains"] == 3
    )
    assert (
        a["schedule"] == "calibrated"
        and a["calibrated_updates_between_saves"] == a["interval"] >= 1
    )
    assert "calibrated" in a["decorrelation_rule"] and a["thermalization_mean_flips_per_update"] > 0
    assert json.loads(a["config"])["seed"] == 0 and a["package_version"]
    assert r.n_samples == r.n_new == 50 and r.flips_per_second > 0


def test_same_seed_identical_different_seed_differs(run):
    a = run(8, samples=40, seed=3, name="a.h5")
    b = run(8, samples=40, seed=3, name="b.h5")
    c = run(8, samples=40, seed=4, name="c.h5")
    for name in ("spins", "energy", "magnetization", "chain"):
        np.testing.assert_array_equal(read_ensemble(a.path)[name], read_ensemble(b.path)[name])
    assert not np.array_equal(_spins(a.path), _spins(c.path))


def test_thread_count_does_not_change_output(run):
    import numba

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run(8, samples=30, chains=3, name="one.h5")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run(8, samples=30, chains=3, name="two.h5")
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(_spins(one.path), _spins(two.path))


@pytest.mark.parametrize("first", [7, 9, 12])  # mid-round (7, 9) and at a round boundary (12)
@pytest.mark.parametrize("schedule", ["calibrated", "threshold"])
def test_resume_is_bit_identical(run, first, schedule):
    full = run(8, samples=23, chains=3, schedule=schedule, name="full.h5")
    run(8, samples=first, chains=3, schedule=schedule, name="part.h5")
    part = run(8, samples=23, chains=3, schedule=schedule, name="part.h5", resume=True)
    assert part.n_new == 23 - first and part.n_samples == 23
    for name in ("spins", "energy", "chain"):
        np.testing.assert_array_equal(
            read_ensemble(full.path)[name], read_ensemble(part.path)[name]
        )


def test_resume_with_small_blocks_matches(run, monkeypatch):
    """Block boundaries (here one save round per block) do not change the samples."""
    full = run(8, samples=20, chains=2, name="full.h5")
    monkeypatch.setattr(sim_module, "_BLOCK_SECONDS", 0.0)
    small = run(8, samples=20, chains=2, name="small.h5")
    np.testing.assert_array_equal(_spins(full.path), _spins(small.path))


def test_resume_after_thermalization_only_and_from_chains_none(run):
    full = run(8, samples=10, chains=2, name="full.h5")
    path = full.path.with_name("cut.h5")
    run(8, samples=4, chains=2, name="cut.h5")
    r = simulate(8, samples=10, out=path, resume=True, progress=False)  # chains from the file
    assert r.n_samples == 10
    np.testing.assert_array_equal(_spins(full.path), _spins(path))


def test_resume_when_complete_writes_nothing(run):
    run(8, samples=10, name="x.h5")
    r = run(8, samples=6, name="x.h5", resume=True)
    assert r.n_new == 0 and r.n_samples == 10


def test_resume_truncated_block_drops_it(run):
    """A block cut short between dataset resizes: the shortest dataset wins, state matches."""
    full = run(8, samples=12, chains=2, name="full.h5")
    r = run(8, samples=8, chains=2, name="cut.h5")
    with h5py.File(r.path, "r+") as f:  # simulate a kill inside the next append
        f["spins"].resize(10, axis=0)
    run(8, samples=12, chains=2, name="cut.h5", resume=True)
    np.testing.assert_array_equal(_spins(full.path), _spins(r.path))


# --------------------------------------------------------------------------------------
# Errors: one line, IsingScaleError, existing data untouched.


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(L=1), "lattice size"),
        (dict(T=0.0), "temperature"),
        (dict(T=-1.0), "temperature"),
        (dict(samples=0), "samples"),
        (dict(chains=0), "chains"),
        (dict(algorithm="heatbath"), "algorithm"),
        (dict(schedule="sometimes"), "schedule"),
        (dict(schedule="fixed"), "interval"),
        (dict(decorrelate=0.0), "decorrelate"),
        (dict(thermalize=0), "thermalize"),
        (dict(thermalize=-2.5), "thermalize"),
        (dict(thermalize="soon"), "thermalize"),
        (dict(thermalize=float("nan")), "thermalize"),
        (dict(thermalize=2.5, thermalize_unit="updates"), "integer"),
        (dict(thermalize="auto", thermalize_unit="updates"), "needs a number"),
        (dict(thermalize=10, thermalize_unit="sweeps"), "thermalize unit"),
    ],
)
def test_bad_arguments(tmp_path, kw, match):
    args = dict(L=8, samples=4, out=tmp_path / "x.h5", progress=False) | kw
    with pytest.raises(IsingScaleError, match=match) as e:
        simulate(args.pop("L"), **args)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x.h5").exists()


def test_existing_file_refused_and_untouched(run):
    r = run(8, samples=5, name="x.h5")
    before = r.path.read_bytes()
    with pytest.raises(IsingScaleError, match="already exists"):
        run(8, samples=9, name="x.h5")
    assert r.path.read_bytes() == before
    assert run(8, samples=3, name="x.h5", overwrite=True).n_samples == 3


@pytest.mark.parametrize(
    "kw, attr",
    [
        (dict(L=10), "L"),
        (dict(T=2.5), "T"),
        (dict(seed=1), "seed"),
        (dict(chains=3), "chains"),
        (dict(algorithm="sw"), "algorithm"),
        (dict(schedule="threshold"), "schedule"),
    ],
)
def test_resume_mismatch(run, kw, attr):
    r = run(8, samples=4, name="x.h5")
    before = r.path.read_bytes()
    with pytest.raises(IsingScaleError, match=f"{attr}="):
        run(kw.pop("L", 8), samples=8, name="x.h5", resume=True, **kw)
    assert r.path.read_bytes() == before


def test_resume_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(IsingScaleError, match="not a readable HDF5"):
        simulate(8, samples=4, out=junk, resume=True, progress=False)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(IsingScaleError, match="not an isingscale ensemble"):
        simulate(8, samples=4, out=foreign, resume=True, progress=False)


def test_resume_without_state_refused(run):
    r = run(8, samples=4, name="x.h5")
    with h5py.File(r.path, "r+") as f:
        del f["_state"]
    with pytest.raises(IsingScaleError, match="no chain state"):
        run(8, samples=8, name="x.h5", resume=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(IsingScaleError, match="cannot write"):
            simulate(8, samples=4, out=d / "x.h5", progress=False)
    finally:
        d.chmod(0o700)


def test_default_path_is_descriptive():
    from isingscale.constants import T_C
    from isingscale.mc.simulate import default_path

    assert str(default_path(128, T_C, "wolff", 0)) == "data/ising_L128_T2.2692_wolff_seed0.h5"


def test_read_attrs_lists_state(run):
    r = run(8, samples=4)
    assert "_state" in read_attrs(r.path)["datasets"]


def test_output_directory_not_creatable(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(IsingScaleError, match="cannot create directory"):
        simulate(8, samples=4, out=tmp_path / "afile" / "x.h5", progress=False)
