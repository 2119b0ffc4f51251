"""A notebook-style session that never touches a file after simulate: simulate -> numpy ->
(other methods' lattices, as arrays) -> correlate -> plot.

``isc.simulate`` writes its ensemble (the Monte Carlo layer has no in-memory mode); from there
on everything is arrays, Datasets and Figures. Each entry of ``METHODS`` turns the Monte Carlo
numpy lattices into another ensemble of arrays; when ``isc.skild.upsample`` takes arrays, the
super-resolution step is one more entry, e.g.
``"skild x2": lambda x: isc.skild.upsample(block_spins(x, 2), factor=2)``.
"""

from __future__ import annotations

import numpy as np

import isingscale as isc
from isingscale.analysis.plots import curve_figure
from isingscale.blocks import block_spins

L, SAMPLES = 16, 600

METHODS = {
    # An independent half of the same Monte Carlo run: the reference must agree with it.
    "MC, second half": lambda x: x[len(x) // 2 :],
    # Nearest-neighbour upsampling of 2x2 majority blocks: a known-wrong ensemble at the same L.
    "blocks x2, nearest": lambda x: np.repeat(np.repeat(block_spins(x, 2), 2, axis=1), 2, axis=2),
}


def test_simulate_numpy_correlate_plot_without_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = isc.simulate(L, samples=SAMPLES, seed=11, out=tmp_path / "mc.h5", progress=False)
    x = isc.open_ensemble(r.path)["spins"].values  # numpy int8 (n, L, L), T from the file
    T = float(isc.read_attrs(r.path)["T"])
    written = sorted(tmp_path.iterdir())

    arrays = {"MC, first half": x[: SAMPLES // 2]}
    arrays.update({name: make(x) for name, make in METHODS.items()})
    res = isc.correlate(
        list(arrays.values()), labels=list(arrays), T=T, n_blocks=10, progress=False
    )
    fig = curve_figure(res, "G2", references=(("G2_torus", "-"),))
    pictures = isc.show(list(arrays.values()), labels=list(arrays), samples=2, T=T)
    assert sorted(tmp_path.iterdir()) == written  # nothing written after simulate

    assert fig.axes and len(pictures.axes) == 2 * len(arrays)
    on_file = isc.correlate(r.path, n_blocks=10, progress=False)
    in_memory = isc.correlate(x, T=T, n_blocks=10, progress=False)
    for name in ("G2", "G4c", "energy", "binder", "chi"):
        np.testing.assert_array_equal(in_memory[name].values, on_file[name].values, err_msg=name)
    g2 = res["G2"].sel(r=slice(1, L // 2))
    err = res["G2_err"].sel(r=slice(1, L // 2))
    z = (g2 - g2.sel(ensemble="MC, first half")) / np.hypot(err, err.sel(ensemble="MC, first half"))
    assert float(np.abs(z.sel(ensemble="MC, second half")).max()) < 4.5
    # Nearest-neighbour copies of blocks are far too correlated at r = 1 (pairs in a block).
    assert float(z.sel(ensemble="blocks x2, nearest", r=1)) > 5
    u = res["energy"].sel(ensemble="MC, first half")
    u_err = res["energy_err"].sel(ensemble="MC, first half")
    assert abs(float(u - res["energy_exact"]) / float(u_err)) < 4.5
