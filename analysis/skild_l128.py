"""SKILD at L = 128 in one prepared run (one GPU, or the CPU at a tiny size as a rehearsal).

    python analysis/skild_l128.py --work /tmp/l128 --out results/        # GPU: the full run
    python analysis/skild_l128.py --tiny --work /tmp/l128 --out /tmp/o   # CPU rehearsal

What it does, in order, every step with the toolkit's own commands:

1. Wolff training data at L = 32, 64 and 128 (seed 1).
2. The validation (reference seed 12, inputs 11) and test (2, 3) Monte Carlo ensembles, all
   before training, so that the trainers have the CPU cores to themselves.
3. In parallel: fine-tunes the shipped checkpoint on the three sizes (``train skild --init``),
   trains the SR3-style ×4 baseline at L = 128 with the same wall-clock budget, measures the
   shipped checkpoint on the validation split at L = 128 and samples ×4 8 -> 32 from block
   spins with it on the GPU (the same case runs on the CPU after training: CPU vs GPU).
4. The fine-tuned network gets the shipped checkpoint's coarse stage (its generation route)
   and is measured on the validation split at L = 128 and at L = 32.
5. The checkpoint that passes more L = 128 validation cases (then: lower summed max |z|) is run
   once on the test split; the paper's ×4 comparison (``isingscale evaluate --L 128 --methods
   skild,sr3``) follows.

--out receives at most four files (what a device run sends back): log.txt, written as the run
goes, and at the end results.tar.gz (JSON and markdown per measurement, the logs, training
curves, the evaluation directory), the fine-tuned checkpoint and the SR3 checkpoint. A stage
that would not finish inside --budget seconds is cut short and says so. The run and what it
measured: data/README.md, "SKILD at L = 128". Every verdict is
``isingscale.evaluation.comparison.passes_bar`` at the output size (from L = 128: r <= L/4,
energy within 0.5 %, |m| and Binder U4 within 2 SE).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
L128_CASES = "sr2_block,sr4_fourier,sr4_block,sr8_fourier,sr8_block,generate"
L32_CASES = "sr2_fourier,sr2_block,sr4_fourier,sr4_block,generate"


class Run:
    """Shared state: work and output folders, the clock, the log."""

    def __init__(self, a):
        self.a, self.t0 = a, time.time()
        self.work, self.out = Path(a.work), Path(a.out)
        self.res = self.work / "results"  # tarred into --out at the end (8 files come back)
        self.res.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.logf = open(self.out / "log.txt", "a")

    def log(self, msg):
        line = f"[{time.time() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        self.logf.write(line + "\n")
        self.logf.flush()

    def left(self) -> float:
        return self.a.budget - (time.time() - self.t0)

    def start(self, name, args, env=None):
        """A background command (python -m ... or a script), output in work/<name>.log."""
        logf = open(self.work / f"{name}.log", "w")
        self.log(f"start {name}: {' '.join(map(str, args))}")
        return subprocess.Popen(
            [sys.executable, *map(str, args)], stdout=logf, stderr=subprocess.STDOUT, env=env
        )

    def wait(self, name, proc, limit=None):
        """Wait for a command (killed after ``limit`` s; default: what the budget leaves)."""
        limit = max(5.0, self.left() - 20) if limit is None else limit
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed"
        tail = (self.work / f"{name}.log").read_text(errors="replace").splitlines()[-3:]
        self.log(f"done {name}: rc {rc}\n    " + "\n    ".join(tail))
        return rc


def simulate_training_data(run):
    a = run.a
    files = []
    for L, n in ((a.L // 4, a.n_train * 8), (a.L // 2, a.n_train * 2), (a.L, a.n_train)):
        path = run.work / f"train_L{L}.h5"
        if not path.exists():
            p = run.start(
                f"simulate_L{L}",
                ["-m", "isingscale", "simulate", "--L", L, "--samples", n, "--seed", 1]
                + ["--out", path, "--no-progress"],
            )
            run.wait(f"simulate_L{L}", p)
        files.append(path)
    return files


def simulate_mc(run, L, n, seed):
    """Held-out Wolff lattices in work/mc, named as isingscale.evaluation.references does."""
    path = run.work / "mc" / f"mc_L{L}_seed{seed}.h5"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        name = f"mc_L{L}_seed{seed}"
        args = ["-m", "isingscale", "simulate", "--L", L, "--samples", n, "--seed", seed]
        run.wait(name, run.start(name, args + ["--out", path, "--no-progress"]))


def quality(run, name, checkpoint, L, cases, split, samples, mc, env=None, extra=()):
    """analysis/skild_quality.py in the background; JSON + markdown to --out. The Monte Carlo
    ensembles already in work/mc are linked into its folder, so they are simulated once."""
    folder = run.work / f"q_{name}"
    folder.mkdir(exist_ok=True)
    for f in (run.work / "mc").glob("mc_L*_seed*.h5"):
        if not (folder / f.name).exists():
            os.link(f, folder / f.name)
    args = [HERE / "skild_quality.py", "--L", L, "--cases", cases, "--split", split]
    args += ["--samples", samples, "--mc-samples", mc, "--workdir", run.work / f"q_{name}"]
    args += ["--batch", run.a.batch, "--cost-samples", 0, "--run-dir", "", "--quiet"]
    args += ["--json", run.res / f"{name}.json", "--out", run.res / f"{name}.md", *extra]
    if checkpoint:
        args += ["--checkpoint", checkpoint]
    return run.start(name, args, env=env)


def graft_coarse_stage(fine_tuned: Path, shipped: Path, out: Path) -> Path:
    """The fine-tuned main network with the shipped checkpoint's coarse stage."""
    from isingscale.skild.checkpoint import read_checkpoint, write_safetensors

    meta, tensors = read_checkpoint(fine_tuned)
    old_meta, old = read_checkpoint(shipped)
    tensors.update({k: v for k, v in old.items() if k.startswith("coarse.")})
    meta["coarse"] = old_meta["coarse"]
    write_safetensors(out, tensors, meta)
    return out


def score(path: Path) -> tuple[int, float]:
    """(cases passing the bar at their size, summed max |z| of G2 and G4c) of a quality JSON."""
    from isingscale.evaluation.comparison import passes_bar

    res = [r["comparison"] for r in json.loads(path.read_text())["results"]]
    passes = sum(passes_bar(c)[0] for c in res)
    return passes, sum(c[k]["max_abs_z"] for c in res for k in ("G2", "G4c_square"))


def train_both(run, data, shipped):
    """Fine-tune SKILD and train SR3 (×4 at L) side by side; returns the two run folders."""
    a = run.a
    ft, sr3 = run.work / "ft", run.work / "sr3"
    opts = ["--device", a.device, "--no-progress", "--minutes", a.minutes]
    p_ft = run.start(
        "train_skild",
        ["-m", "isingscale", "train", "skild", "--init", shipped, "--data", *data]
        + ["--out", ft, "--batch", a.train_batch, "--lr", a.lr, "--lr-decay", "cosine"]
        + ["--steps", a.max_steps, "--s-power", 1.5, "--seed", 128, *opts],
    )
    p_sr3 = run.start(
        "train_sr3",
        ["-m", "isingscale", "train", "sr3", "--factor", 4, "--data", data[-1], "--out", sr3]
        + ["--batch", a.sr3_batch, "--lr", "1e-3", "--lr-decay", "cosine"]
        + ["--steps", a.max_steps, "--seed", 128, *opts],
    )
    return (ft, p_ft), (sr3, p_sr3)


def cpu_vs_gpu(run, shipped, device: str):
    """×4 8 -> 32 from block spins with the shipped checkpoint on one device (validation)."""
    a = run.a
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="") if device == "cpu" else None
    name = f"x4_{device}"
    return name, quality(run, name, shipped, a.L // 4, "sr4_block", "val", a.samples, a.mc32, env)


def validate_and_choose(run, ft: Path, shipped: Path) -> Path:
    """Measure the fine-tuned network on the validation split; the better of it and the
    shipped checkpoint at L (by :func:`score`) is returned."""
    a = run.a
    if not (ft / "model.safetensors").exists():
        run.log("no fine-tuned network: the test split runs the shipped checkpoint")
        return shipped
    tuned = graft_coarse_stage(ft / "model.safetensors", shipped, run.out / "skild_ft.safetensors")
    val = quality(run, "ft_val", tuned, a.L, a.cases, "val", a.samples, a.mc)
    val32 = quality(run, "ft_val32", tuned, a.L // 4, a.cases32, "val", a.samples, a.mc32)
    for name, proc in (("ft_val", val), ("ft_val32", val32)):
        run.wait(name, proc)
    scores = {}
    for k, ckpt in (("base_val", shipped), ("ft_val", tuned)):
        if (run.res / f"{k}.json").exists():
            scores[ckpt] = score(run.res / f"{k}.json")
    shown = {Path(k).name: (n, round(float(z), 2)) for k, (n, z) in scores.items()}
    run.log(f"validation (cases passing, summed max|z|): {shown}")
    return max(scores, key=lambda k: (scores[k][0], -scores[k][1])) if scores else shipped


def finish(run):
    """Results, logs, training curves and the evaluation directory as one tarball in --out."""
    with tarfile.open(run.out / "results.tar.gz", "w:gz") as tar:
        tar.add(run.res, arcname="results")
        for p in sorted(run.work.glob("*.log")):
            tar.add(p, arcname=p.name)
        for sub in ("ft", "sr3"):
            for name in ("config.json", "loss.csv"):
                p = run.work / sub / name
                if p.exists():
                    tar.add(p, arcname=f"{sub}_{name}")
        ev = run.work / "eval"
        for p in sorted(ev.rglob("*")) if ev.exists() else []:
            if p.is_file() and p.suffix in (".nc", ".md", ".png", ".json"):
                tar.add(p, arcname=f"eval/{p.relative_to(ev)}")
    run.log(f"finished: {sorted(p.name for p in run.out.iterdir())}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tiny", action="store_true", help="CPU rehearsal at L = 64, a few lattices")
    p.add_argument("--budget", type=float, default=520.0, help="seconds for the whole run")
    p.add_argument("--minutes", type=float, default=3.5, help="training wall clock (each model)")
    a = p.parse_args(argv)
    big = dict(L=128, n_train=30000, samples=1000, mc=50000, mc32=100000, batch=500)
    big.update(cases=L128_CASES, cases32=L32_CASES)
    big.update(train_batch=1024, sr3_batch=64, lr=3e-4, max_steps=200000, device="cuda")
    tiny = dict(L=64, n_train=200, samples=16, mc=400, mc32=400, batch=16)
    tiny.update(cases="sr4_fourier,sr8_block", cases32="sr4_block")
    tiny.update(train_batch=64, sr3_batch=4, lr=3e-4, max_steps=3, device="cpu")
    for k, v in (tiny if a.tiny else big).items():
        setattr(a, k, v)
    run = Run(a)
    try:
        steps(run)
    finally:
        finish(run)
    return 0


def steps(run):
    """The run, in order (module docstring)."""
    from isingscale.skild import default_checkpoint

    a = run.a
    shipped = default_checkpoint()
    data = simulate_training_data(run)
    # All Monte Carlo first: the trainers build their batches on the CPU, and a training run
    # sharing busy cores managed 2.2 steps/s on an H200 (data/README, "SKILD at L = 128").
    for seed_truth, seed_inputs in ((12, 11), (2, 3)):  # validation, then test split
        for L, mc in ((a.L, a.mc), (a.L // 4, a.mc32)):
            simulate_mc(run, L, mc, seed_truth)
            simulate_mc(run, L, a.samples, seed_inputs)
    (ft, p_ft), (sr3, p_sr3) = train_both(run, data, shipped)
    base = quality(run, "base_val", shipped, a.L, a.cases, "val", a.samples, a.mc)
    during = [("base_val", base), cpu_vs_gpu(run, shipped, "gpu" if a.device == "cuda" else "cpu")]
    for name, proc in during + [("train_skild", p_ft), ("train_sr3", p_sr3)]:
        run.wait(name, proc, limit=max(60.0, run.left() - 150))
    x4_cpu = cpu_vs_gpu(run, shipped, "cpu") if a.device == "cuda" else None
    sr3_ckpt = run.out / "sr3_x4_L128.safetensors"
    if (sr3 / "model.safetensors").exists():
        shutil.copy(sr3 / "model.safetensors", sr3_ckpt)
    ckpt = validate_and_choose(run, ft, shipped)
    tests = [("test", quality(run, "test", ckpt, a.L, a.cases, "test", a.samples, a.mc))]
    if ckpt != shipped:
        tests.append(
            ("test32", quality(run, "test32", ckpt, a.L // 4, a.cases32, "test", a.samples, a.mc32))
        )
    for name, proc in tests + ([x4_cpu] if x4_cpu else []):
        run.wait(name, proc)
    if run.left() > 60 and sr3_ckpt.exists():
        ev = run.start(
            "evaluate",
            ["-m", "isingscale", "evaluate", "--L", a.L, "--methods", "skild,sr3", "--factors", 4]
            + ["--sr3-checkpoint", f"4={sr3_ckpt}", "--checkpoint", ckpt]
            + ["--samples", a.samples, "--batch", a.batch, "--out", run.work / "eval"]
            + ["--no-progress"],
        )
        run.wait("evaluate", ev, limit=max(10.0, run.left() - 15))
    else:
        run.log("evaluate skipped: out of budget or no SR3 checkpoint")


if __name__ == "__main__":
    sys.exit(main())
