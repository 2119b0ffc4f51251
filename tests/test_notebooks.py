"""Execute the analysis notebooks at small sizes with the venv's own Python as kernel."""

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).parents[1] / "analysis").glob("*.ipynb"))


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
def test_notebook_runs(path, kernel_env, monkeypatch):
    monkeypatch.setenv("ISINGSCALE_NB_L", "16")
    monkeypatch.setenv("ISINGSCALE_NB_SAMPLES", "400")
    monkeypatch.setenv("ISINGSCALE_NB_OUT", str(kernel_env / "out"))
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(kernel_env)}})
    client.execute()
    assert (kernel_env / "out" / "report.md").exists()
    assert (kernel_env / "out" / "correlations.nc").exists()
