"""What sampling costs: the chunked network call and the side-by-side bench."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.evaluation import cost
from isingscale.skild import sampler
from isingscale.skild.unet import odd_act


def test_cpu_calls_are_chunked_in_order(monkeypatch):
    # 10 lattices of 32² with room for 4 per call: calls of 4, 4 and 2, each with its own
    # slice of s and of the conditioning, concatenated in order.
    monkeypatch.setattr(sampler, "CPU_CALL_SITES", 4 * 32 * 32)
    seen = []

    def net(y, s, cond):
        seen.append((len(y), s.tolist(), cond[:, 0, 0].tolist()))
        return y * s.reshape(-1, 1, 1) + cond

    y = torch.randn(10, 32, 32)
    s = torch.arange(10, dtype=torch.float32)
    cond = torch.arange(10, dtype=torch.float32)[:, None, None].expand(10, 32, 32)
    out = sampler.model_net(SimpleNamespace(net=net), "cpu")(y, s, cond)
    assert [n for n, _, _ in seen] == [4, 4, 2]
    assert seen[1][1] == [4.0, 5.0, 6.0, 7.0] and seen[2][2] == [8.0, 9.0]
    torch.testing.assert_close(out, y * s[:, None, None] + cond, rtol=0, atol=0)
    seen.clear()
    sampler.model_net(SimpleNamespace(net=net), "cpu")(y[:3], torch.tensor(2.0), cond[:3])
    assert [n for n, _, _ in seen] == [3]  # within one chunk: one call; a scalar s passes as is


def test_chunked_network_matches_one_call():
    # The shipped network on 40 lattices of 64² (chunks of 16): the same field as one call.
    from isingscale.skild import load_checkpoint

    model = load_checkpoint()
    g = torch.Generator().manual_seed(1)
    y, s = torch.randn((40, 64, 64), generator=g), torch.full((40,), 0.7)
    with torch.no_grad():
        whole = model.net(y, s)
        chunked = sampler.model_net(model, "cpu")(y, s)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)


def test_odd_act_sampling_path_is_the_training_path():
    x = torch.randn(4, 8, 16, 16)
    with torch.no_grad():
        fast = odd_act(x.clone())
    assert torch.equal(fast, x * torch.tanh(x.abs()))
    x.requires_grad_(True)
    odd_act(x).sum().backward()  # the training path keeps its gradient
    assert x.grad is not None and torch.isfinite(x.grad).all()


IN_GIT = (Path(cost.__file__).resolve().parents[2] / ".git").exists()


@pytest.mark.skipif(not IN_GIT, reason="a baseline revision needs a git checkout")
def test_bench_runs_both_trees_and_cleans_up():
    res = cost.bench_sampling(L=32, samples=2, repeats=1, baseline="HEAD")
    table = cost.format_sampling_table(res)
    for name, r in res["commands"].items():
        assert set(r) == {"baseline", "this tree", "ratio"}, name
        assert r["this tree"]["wall_s"] > 0 and r["this tree"]["peak_rss"] > 50 * 2**20
    assert table.count("| ratio |") == 2 and "baseline (HEAD)" in table
    assert res["kernel"]["chunk"] == 64 and res["kernel"]["chunked_ms"] > 0
    trees = subprocess.run(
        ["git", "-C", str(cost.source_tree()), "worktree", "list"], capture_output=True, text=True
    ).stdout
    assert "isingscale-bench-skild" not in trees


@pytest.mark.skipif(not IN_GIT, reason="a baseline revision needs a git checkout")
def test_a_bad_baseline_is_one_line(tmp_path):
    with pytest.raises(IsingScaleError, match="cannot check out baseline 'no-such-rev'"):
        cost.baseline_tree("no-such-rev", tmp_path / "b")


def test_a_baseline_tree_runs_its_own_package(tmp_path):
    # The editable install's import hook must not win over the tree asked for: a stand-in
    # package whose __main__ leaves a mark proves which one ran.
    from isingscale.analysis.bench import time_command

    pkg = tmp_path / "tree" / "isingscale"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    mark = tmp_path / "ran"
    (pkg / "__main__.py").write_text(
        f"import sys\nopen({str(mark)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
    )
    t = time_command(["simulate", "--L", 8], tree=tmp_path / "tree")
    assert mark.read_text() == "simulate --L 8" and t["wall_s"] > 0 and t["peak_rss"] > 0
