"""A notebook-style session that never touches a file: simulate -> numpy -> upsample ->
correlate -> plot.

``isc.simulate`` without ``out`` keeps its lattices in memory, ``isc.skild.upsample`` takes
arrays and, without ``out``, returns them; from there on everything is arrays, Datasets and
Figures. Each entry of ``METHODS`` turns the Monte Carlo numpy lattices into another ensemble
of arrays: SKILD x2 from 2 x 2 majority blocks (the shipped checkpoint) is one of them.
"""

from __future__ import annotations

import numpy as np

import isingscale as isc
from isingscale.analysis.plots import curve_figure
from isingscale.blocks import block_spins

L, SAMPLES = 16, 600

SR_SAMPLES = 96  # lattices super-resolved (the slow step)


def skild_x2(x: np.ndarray) -> np.ndarray:
    """SKILD x2 from the 2 x 2 majority blocks of the second half's first lattices (one torch
    thread: on 2 shared cores more threads wait for each other far longer than they compute)."""
    import torch

    coarse = block_spins(x[len(x) // 2 :][:SR_SAMPLES], 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = isc.skild.upsample(coarse, factor=2, seed=0, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert res.path is None and res.sizes == [L // 2, L]
    return res.spins


METHODS = {
    # An independent half of the same Monte Carlo run: the reference must agree with it.
    "MC, second half": lambda x: x[len(x) // 2 :],
    # Nearest-neighbour upsampling of 2x2 majority blocks: a known-wrong ensemble at the same L.
    "blocks x2, nearest": lambda x: np.repeat(np.repeat(block_spins(x, 2), 2, axis=1), 2, axis=2),
    "SKILD x2": skild_x2,
}


def test_simulate_numpy_upsample_correlate_plot_without_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = isc.simulate(L, samples=SAMPLES, seed=11, progress=False)  # no out: in memory
    x, T = r.spins, isc.T_C  # numpy int8 (n, L, L)
    assert r.path is None and x.shape == (SAMPLES, L, L)

    arrays = {"MC, first half": x[: SAMPLES // 2]}
    arrays.update({name: make(x) for name, make in METHODS.items()})
    res = isc.correlate(
        list(arrays.values()), labels=list(arrays), T=T, n_blocks=10, progress=False
    )
    fig = curve_figure(res, "G2", references=(("G2_torus", "-"),))
    pictures = isc.show(list(arrays.values()), labels=list(arrays), samples=2, T=T)
    assert list(tmp_path.iterdir()) == []  # nothing written at all

    assert fig.axes and len(pictures.axes) == 2 * len(arrays)
    # The same run written to a file: the same lattices bit for bit, so the same numbers.
    written = isc.simulate(L, samples=SAMPLES, seed=11, out=tmp_path / "mc.h5", progress=False)
    on_file = isc.correlate(written.path, n_blocks=10, progress=False)
    in_memory = isc.correlate(x, T=T, n_blocks=10, progress=False)
    for name in ("G2", "G4c", "energy", "binder", "chi"):
        np.testing.assert_array_equal(in_memory[name].values, on_file[name].values, err_msg=name)
    g2 = res["G2"].sel(r=slice(1, L // 2))
    err = res["G2_err"].sel(r=slice(1, L // 2))
    z = (g2 - g2.sel(ensemble="MC, first half")) / np.hypot(err, err.sel(ensemble="MC, first half"))
    assert float(np.abs(z.sel(ensemble="MC, second half")).max()) < 4.5
    # Nearest-neighbour copies of blocks are far too correlated at r = 1 (pairs in a block).
    assert float(z.sel(ensemble="blocks x2, nearest", r=1)) > 5
    # SKILD's x2 lattices are Ising-like at every r where the nearest-neighbour copies are not.
    assert float(np.abs(z.sel(ensemble="SKILD x2")).max()) < 4.5
    u = res["energy"].sel(ensemble="MC, first half")
    u_err = res["energy_err"].sel(ensemble="MC, first half")
    assert abs(float(u - res["energy_exact"]) / float(u_err)) < 4.5
