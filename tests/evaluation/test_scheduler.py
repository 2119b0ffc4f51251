"""--scheduler: measuring on a 2-worker LocalCluster gives the in-process numbers, bit for bit.

Fast suite: thread workers (the tasks still go through the scheduler and come back in order);
``-m slow``: worker processes, as on a real cluster (their start-up costs 10-30 s on 2 cores).
"""

from __future__ import annotations

import distributed  # noqa: F401  (a declared test extra: a broken install fails, it does not skip)
import numpy as np
import pytest

from isingscale.evaluation import evaluate

from .conftest import HALF


@pytest.mark.parametrize("processes", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_scheduler_gives_the_in_process_numbers(tmp_path, truth_file, processes):
    kw = dict(
        data=truth_file,
        factors=(2,),
        methods=("nearest",),
        coarsen=("block",),
        samples=HALF,
        progress=False,
        plots=False,
    )
    local = evaluate(tmp_path / "local", **kw).dataset
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=":0"
    ) as c:
        remote = evaluate(tmp_path / "remote", scheduler=c.scheduler_address, **kw).dataset
    for name in (
        "G2",
        "G2_err",
        "G4c_square_err",
        "S",
        "energy",
        "binder_err",
        "max_abs_z_G2",
        "passes",
        "mc_G2",
        "mc_G4c_square",
        "mc_binder",
    ):
        np.testing.assert_array_equal(local[name].values, remote[name].values, err_msg=name)
