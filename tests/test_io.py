"""isingscale.io: ensemble files round-trip, refuse bad input, survive interrupted appends."""

import h5py
import numpy as np
import pytest

from isingscale.errors import IsingScaleError
from isingscale.io import append_ensemble, check_spins, create_ensemble, read_attrs, read_ensemble


def _block(n, L, seed=0):
    rng = np.random.default_rng(seed)
    return (2 * rng.integers(0, 2, (n, L, L)) - 1).astype(np.int8)


def test_round_trip_and_append(tmp_path):
    path = tmp_path / "e.h5"
    with create_ensemble(
        path, L=4, kind="montecarlo", attrs={"T": 2.5, "seed": 3, "cfg": {"a": 1}}
    ) as w:
        w.append(_block(3, 4), energy=np.arange(3.0), magnetization=np.zeros(3), chain=np.arange(3))
    with append_ensemble(path, expect={"T": 2.5, "seed": 3}) as w:
        assert (
            w.append(_block(2, 4, 1), energy=np.ones(2), magnetization=np.ones(2), chain=[0, 1])
            == 5
        )
    d = read_ensemble(path)
    np.testing.assert_array_equal(d["spins"], np.concatenate([_block(3, 4), _block(2, 4, 1)]))
    assert d["energy"].dtype == np.float64 and d["chain"].dtype == np.int32
    a = d["attrs"]
    assert (
        a["n_samples"] == 5
        and a["kind"] == "montecarlo"
        and a["cfg"] == '{"a": 1}'
        and a["package_version"]
    )
    assert read_ensemble(path, start=1, stop=3, datasets=("energy",)).keys() == {"attrs", "energy"}


def test_refusals(tmp_path):
    path = tmp_path / "e.h5"
    create_ensemble(path, L=4, kind="montecarlo", attrs={"T": 2.5}).close()
    with pytest.raises(IsingScaleError, match="already exists"):
        create_ensemble(path, L=4, kind="montecarlo")
    with pytest.raises(IsingScaleError, match="T="):
        append_ensemble(path, expect={"T": 2.6})
    with pytest.raises(IsingScaleError, match="at least 2"):
        create_ensemble(tmp_path / "f.h5", L=1, kind="montecarlo")
    with pytest.raises(IsingScaleError, match="kind"):
        create_ensemble(tmp_path / "f.h5", L=4, kind="bogus")
    with create_ensemble(tmp_path / "g.h5", L=4, kind="montecarlo") as w:
        w.append(_block(2, 4), energy=np.zeros(2))
        with pytest.raises(IsingScaleError, match="lacks energy"):
            w.append(_block(2, 4))
        with pytest.raises(IsingScaleError, match="shape"):
            w.append(_block(2, 5), energy=np.zeros(2))
    with pytest.raises(IsingScaleError, match="only \\+1 and -1"):
        check_spins(np.zeros((1, 2, 2)))


def test_foreign_corrupt_missing(tmp_path):
    with pytest.raises(IsingScaleError, match="no such file"):
        read_attrs(tmp_path / "nope.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk" * 50)
    with pytest.raises(IsingScaleError, match="not a readable HDF5"):
        read_attrs(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(IsingScaleError, match="not an isingscale ensemble"):
        read_attrs(tmp_path / "foreign.h5")


def test_interrupted_append_keeps_shortest(tmp_path):
    path = tmp_path / "e.h5"
    with create_ensemble(path, L=4, kind="montecarlo") as w:
        w.append(_block(4, 4), energy=np.arange(4.0))
    with h5py.File(path, "r+") as f:  # a block cut short: spins resized, energy not
        f["spins"].resize(6, axis=0)
    assert read_attrs(path)["n_samples"] == 4
    with append_ensemble(path) as w:
        assert w.n_samples == 4
        w.append(_block(1, 4, 2), energy=[9.0])
    d = read_ensemble(path)
    assert len(d["spins"]) == len(d["energy"]) == 5 and d["energy"][-1] == 9.0


def test_numbered_path_never_reuses_an_existing_name(tmp_path):
    from isingscale.io import numbered_path

    first = numbered_path("upsample_x4", directory=tmp_path)
    assert first.name == "upsample_x4-0001.h5"
    first.touch()
    assert numbered_path("upsample_x4", directory=tmp_path).name == "upsample_x4-0002.h5"
