"""Execute the analysis notebooks at small sizes with the venv's own Python as kernel."""

import sys
from pathlib import Path

# Declared test extras: a broken install fails here, it does not turn the tests into skips.
import ipykernel  # noqa: F401
import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "analysis").glob("*.ipynb"))


@pytest.fixture(scope="session")
def skild_checkpoint(tmp_path_factory):
    """The shipped SKILD checkpoint, else a tiny one trained here for a few steps.

    The test never waits for (or depends on) a long training run: without
    data/checkpoints/skild_ising_L32.safetensors it simulates 128 L = 16 lattices and trains
    a depth-2, 4-channel network for 5 steps (seconds), which is enough for the notebook's
    code paths (its figures are then meaningless).
    """
    import isingscale as isc
    from isingscale.errors import IsingScaleError

    try:
        return isc.skild.default_checkpoint()
    except IsingScaleError:
        pass
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("skild_tiny")
    data = isc.simulate(16, samples=128, seed=1, out=tmp / "train.h5", progress=False).path
    return isc.skild.train(
        [data],
        tmp / "run",
        steps=5,
        base_channels=4,
        depth=2,
        channel_mult=(1, 2, 2),
        batch=8,
        device="cpu",
        progress=False,
    )


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A 'python3' kernelspec pointing at sys.executable, found first on JUPYTER_PATH."""
    from ipykernel.kernelspec import install

    prefix = tmp_path / "jupyter"
    install(kernel_name="python3", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve(), spec.argv
    return tmp_path


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, kernel_env, monkeypatch, request):
    monkeypatch.setenv("ISINGSCALE_NB_L", "16")
    monkeypatch.setenv("ISINGSCALE_NB_SAMPLES", "400")
    if "skild" in path.name:
        monkeypatch.setenv(
            "ISINGSCALE_NB_CHECKPOINT", str(request.getfixturevalue("skild_checkpoint"))
        )
        monkeypatch.setenv("ISINGSCALE_NB_SKILD_SAMPLES", "32")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("ISINGSCALE_NB_OUT", str(kernel_env / "out"))
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=900, resources={"metadata": {"path": str(kernel_env)}}
    )
    client.execute()
    assert (kernel_env / "out" / "report.md").exists()
    assert (
        kernel_env / "out" / ("evaluation.nc" if "evaluation" in path.name else "correlations.nc")
    ).exists()
