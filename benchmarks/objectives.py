"""Lesson 04's comparison table: six GAN objectives on ring8 and digits, same budget, three seeds.

    make bench                                   # runs this after throughput.py
    .venv/bin/python benchmarks/objectives.py --seeds 0 1 2 --ring-steps 2000 --digits-steps 600

It calls `gancourse.compare.compare_objectives`, the function the lesson notebook calls, with the
notebook's default settings, and writes results/objectives-<device>.{json,md}. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from gancourse.compare import COMPARED_OBJECTIVES, ImageSetup, compare_objectives
from gancourse.utils import describe_device, pick_device

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--objectives", nargs="+", default=list(COMPARED_OBJECTIVES))
    p.add_argument("--ring-steps", type=int, default=4000, help="generator updates per ring8 run (lesson default)")
    p.add_argument("--digits-steps", type=int, default=600, help="generator updates per digits run (lesson default)")
    p.add_argument("--digits", default="digits", help="image set for the FID half (default digits)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's default)")
    p.add_argument("--workers", type=int, default=1, help="runs at once, one process each (2 on a 2-core CPU)")
    p.add_argument("--ship", action="store_true", help="also write the JSON the package ships (lesson 04 loads it)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    started = time.perf_counter()
    load_before = os.getloadavg()
    comparison = compare_objectives("ring8", args.objectives, args.seeds, args.ring_steps, device=device,
                                    workers=args.workers)
    compare_objectives(args.digits, args.objectives, args.seeds, args.digits_steps, setup=ImageSetup(size=16),
                       device=device, into=comparison, workers=args.workers)
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": {"device": describe_device(device), "cpu": platform.processor() or platform.machine(),
                          "threads": torch.get_num_threads(), "workers": args.workers, "torch": torch.__version__,
                          "load_average_before": load_before, "load_average_after": os.getloadavg()},
              "config": {"seeds": args.seeds, "ring_steps": args.ring_steps, "digits_steps": args.digits_steps,
                         "digits": args.digits},
              "seconds": round(time.perf_counter() - started, 1), **comparison.to_dict()}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"objectives-{device.type}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = (f"# Six objectives, same budget ({report['date']})\n\n{report['machine']['device']}, "
            f"{report['machine']['threads']} threads, torch {report['machine']['torch']}, load average "
            f"{load_before[0]:.1f} before / {report['machine']['load_average_after'][0]:.1f} after; "
            f"{report['seconds']:.0f} s in all. Mean ± standard deviation over seeds {args.seeds}.\n\n"
            f"{comparison.table()}\n")
    (args.out / f"{stem}.md").write_text(text)
    if args.ship:
        from gancourse.compare import SHIPPED

        SHIPPED.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {SHIPPED}")
    print("\n" + text)
    return report


if __name__ == "__main__":
    main()
