"""Dask scale-out on a LocalCluster of 2 worker processes: results equal the single-process ones.

Shards: bitwise equal to plain simulate() calls with the shard seeds; merge keeps every
shard's provenance. Correlators: chunks computed on workers and merged in order give
bitwise the in-process jackknife results.
"""

from __future__ import annotations

import json

import distributed  # a declared test extra: a broken install fails here, it does not skip
import numpy as np
import pytest
from click.testing import CliRunner

from isingscale.cli import main
from isingscale.cluster import scheduler_client
from isingscale.errors import IsingScaleError
from isingscale.io import create_ensemble, read_attrs, read_ensemble


@pytest.fixture(scope="module")
def address():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as c:
        yield c.scheduler_address


def test_shards_equal_single_process_runs_and_merge_keeps_provenance(address, tmp_path):
    from isingscale.mc.shards import shard_paths, shard_seed, simulate_shards
    from isingscale.mc.simulate import simulate

    opts = dict(thermalize=20, decorrelate=0.5)
    res = simulate_shards(
        8,
        samples=7,
        shards=2,
        out=tmp_path / "run.h5",
        seed=3,
        scheduler=address,
        progress=False,
        **opts,
    )
    paths = shard_paths(tmp_path / "run.h5", 2)
    assert [r["path"] for r in res] == [str(p) for p in paths] and [
        r["n_samples"] for r in res
    ] == [4, 3]
    assert shard_seed(3, 0) != shard_seed(3, 1) != shard_seed(4, 1)
    for i, (p, n) in enumerate(zip(paths, (4, 3))):
        ref = simulate(
            8,
            samples=n,
            seed=shard_seed(3, i),
            chains=1,
            out=tmp_path / f"ref{i}.h5",
            progress=False,
            **opts,
        )
        a, b = read_ensemble(p), read_ensemble(ref.path)
        for k in ("spins", "energy", "magnetization", "chain"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    code = CliRunner().invoke(
        main, ["merge", *map(str, paths), "--out", str(tmp_path / "all.h5"), "--no-progress"]
    )
    assert code.exit_code == 0, code.output
    merged = read_ensemble(tmp_path / "all.h5")
    np.testing.assert_array_equal(
        merged["spins"], np.concatenate([read_ensemble(p)["spins"] for p in paths])
    )
    assert merged["chain"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    attrs = read_attrs(tmp_path / "all.h5")
    prov = json.loads(attrs["merged_from"])
    assert [d["seed"] for d in prov] == [shard_seed(3, 0), shard_seed(3, 1)] and all(
        len(d["sha256"]) == 64 for d in prov
    )
    assert attrs["chains"] == 2 and attrs["L"] == 8
    simulate(
        16, samples=2, seed=1, chains=1, out=tmp_path / "other.h5", progress=False, thermalize=20
    )
    bad = CliRunner().invoke(
        main, ["merge", str(paths[0]), str(tmp_path / "other.h5"), "--out", str(tmp_path / "x.h5")]
    )
    assert bad.exit_code == 1 and "differ in L" in bad.output


def test_correlators_on_the_cluster_equal_in_process(address, tmp_path):
    from isingscale.analysis.correlators import measure
    from isingscale.analysis.ensemble import open_ensemble

    rng = np.random.default_rng(0)
    spins = np.where(rng.random((40, 8, 8)) < 0.6, 1, -1).astype(np.int8)
    with create_ensemble(
        tmp_path / "e.h5", L=8, kind="montecarlo", attrs={"T": 2.269185314213022}
    ) as w:
        w.append(spins)
    ds = open_ensemble(tmp_path / "e.h5", chunks=6)  # 7 chunks, blocks straddle chunk edges
    local = measure(ds, shapes=("square", "collinear"), n_blocks=5)
    with scheduler_client(address) as client:
        remote = measure(ds, shapes=("square", "collinear"), n_blocks=5, client=client)
    for name in local.data_vars:
        np.testing.assert_array_equal(local[name].values, remote[name].values, err_msg=name)


def test_bad_scheduler_address_is_one_line(tmp_path):
    with pytest.raises(IsingScaleError, match="bad scheduler address"):
        with scheduler_client("not an address"):
            pass
    # A valid ensemble, so that the scheduler address is the only thing wrong with the command.
    spins = np.where(np.random.default_rng(1).random((40, 8, 8)) < 0.6, 1, -1).astype(np.int8)
    with create_ensemble(tmp_path / "e.h5", L=8, kind="montecarlo", attrs={"T": 2.269}) as w:
        w.append(spins)
    args = ["correlate", str(tmp_path / "e.h5"), "--out", str(tmp_path / "o"), "--no-progress"]
    assert CliRunner().invoke(main, args).exit_code == 0  # the same command without it works
    res = CliRunner().invoke(main, [*args[:-1], "--out", str(tmp_path / "o2"), "--scheduler", "x"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "bad scheduler address 'x'" in res.output and len(res.output.strip().splitlines()) == 1
