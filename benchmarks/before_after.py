"""Training throughput of this tree against an earlier revision, paired in one run.

Interface changes must not slow training down. This checks out `--base` (a git revision) into a
temporary worktree and times the same training run in both trees, alternating rounds (base, this,
base, this, ...) in fresh subprocesses, so load that drifts on a shared machine hits both alike.
The run is lesson 02's DCGAN on the bundled digits at 32x32 through `Trainer(...).fit()`, with each
tree's defaults, and lesson 01's MLP GAN on ring8. Reported: median images/s per tree and the median
of per-round ratios with its interquartile range.

    .venv/bin/python benchmarks/before_after.py --base 0fdc885 --rounds 7
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each tree's interpreter path; uses whichever name that tree gives the classic step.
WORKLOAD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from gancourse.data import load
from gancourse.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
try:
    from gancourse.train import AdversarialGAN as Step
except ImportError:
    from gancourse.train import ClassicGAN as Step
from gancourse.train import Trainer
case, batch, width, steps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)
if case == "dcgan":
    data = load("digits", size=32)
    gan = Step(DCGANGenerator(z_dim=100, image_size=32, width=width), DCGANDiscriminator(image_size=32, width=width))
else:
    data = load("ring8")
    gan = Step(MLPGenerator(z_dim=2, out_shape=(2,), hidden=width), MLPDiscriminator((2,), hidden=width))
Trainer(gan, data, steps=3, batch_size=batch, progress=False, verbose=False).fit()  # warm-up
trainer = Trainer(gan, data, steps=steps, batch_size=batch, progress=False, verbose=False)
start = time.perf_counter()
trainer.fit()
print(json.dumps({"images_per_s": steps * batch / (time.perf_counter() - start)}))
"""


def run(tree: Path, args, case: str, width: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", WORKLOAD, str(args.threads), case, str(args.batch), str(width),
                          str(steps)], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="0fdc885", help="git revision to compare with (default: before issue 9)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "before-after-cpu.json"))
    args = p.parse_args(argv)
    cases = [("dcgan", 32, 200), ("dcgan", 64, 80), ("mlp", 256, 2000)]  # steps: a few seconds each
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            results = {}
            for case, width, steps in cases:
                pairs = []
                for r in range(args.rounds):
                    trees = [("base", base), ("this", ROOT)] if r % 2 == 0 else [("this", ROOT), ("base", base)]
                    rates = {name: run(tree, args, case, width, steps) for name, tree in trees}
                    pairs.append(rates)
                    print(f"{case} w{width} round {r + 1}: base {rates['base']:.0f} img/s, this {rates['this']:.0f} "
                          f"img/s", flush=True)
                ratios = sorted(p["this"] / p["base"] for p in pairs)
                q = statistics.quantiles(ratios, n=4)
                results[f"{case}-w{width}"] = {
                    "base_images_per_s": statistics.median(p["base"] for p in pairs),
                    "this_images_per_s": statistics.median(p["this"] for p in pairs),
                    "ratio_median": statistics.median(ratios), "ratio_q1": q[0], "ratio_q3": q[-1],
                    "rounds": pairs}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True)
    meta = {"base": args.base, "threads": args.threads, "batch": args.batch, "when": time.strftime("%Y-%m-%d %H:%M"),
            "load_average": open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").exists() else None}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(f"\n| case | base img/s | this img/s | this / base (median, IQR) |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['base_images_per_s']:.0f} | {r['this_images_per_s']:.0f} | "
              f"{r['ratio_median']:.3f} ({r['ratio_q1']:.3f}–{r['ratio_q3']:.3f}) |")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
