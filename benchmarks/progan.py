"""Lesson 06's experiment over several seeds: ProGAN grown from 4x4 to 32x32 against the same networks trained
at 32x32 from the first step for the same wall-clock seconds (the lesson's settings: glyphs-serif, width 32,
at most 128 channels, batch 32 at 4-8 px and 16 at 16-32 px, Adam 2e-3, the growth schedule in 60% of the steps).

    .venv/bin/python benchmarks/progan.py --seeds 0 1 2 --steps 1500

Writes benchmarks/results/progan-cpu.json and .md: per seed, FID and SWD of each stage of the grown model
(averaged G, 1,000 images, against the reals at that stage's resolution), its seconds per stage, and the final
FID of both models at 32x32. Run it with the machine otherwise idle: the seconds decide the comparison.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import gancourse
from gancourse.data import load
from gancourse.metrics import StageEvaluator, StageLog
from gancourse.models import ProDiscriminator, ProGenerator
from gancourse.train import ProGAN, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
DATA, SIZE, WIDTH, MAX_CHANNELS = "glyphs-serif", 32, 32, 128
BATCH_SIZES = {4: 32, 8: 32, 16: 16, 32: 16}
EMA_HALF_LIFE, GROWTH_BUDGET, LR = 2_000, 0.6, 2e-3


def train(seed: int, growing: bool, *, steps: int | None = None, seconds: float | None = None, callbacks=()):
    gancourse.seed_everything(seed)
    G = ProGenerator(final_size=SIZE, width=WIDTH, max_channels=MAX_CHANNELS)
    D = ProDiscriminator(final_size=SIZE, width=WIDTH, max_channels=MAX_CHANNELS)
    gan = ProGAN(G, D, batch_sizes=BATCH_SIZES, growth_budget=GROWTH_BUDGET, growing=growing, lr=LR)
    trainer = Trainer(gan, load(DATA, size=SIZE), steps=steps, seconds=seconds, batch_size=BATCH_SIZES[SIZE],
                      seed=seed, ema_half_life=EMA_HALF_LIFE, callbacks=callbacks, progress=False, verbose=False)
    trainer.fit()
    return gan, trainer


def run(seed: int, steps: int, evaluator: StageEvaluator) -> dict:
    log = StageLog(evaluator, seed=seed)
    gan, trainer = train(seed, True, steps=steps, callbacks=[log])
    seconds = sum(row["seconds"] for row in log.rows)
    grown = evaluator.score_generator(trainer.sampling_nets()["G"], SIZE, seed=seed)
    flat, flat_trainer = train(seed, False, seconds=seconds)
    full_res = evaluator.score_generator(flat_trainer.sampling_nets()["G"], SIZE, seed=seed)
    return {"seed": seed, "seconds": round(seconds, 1), "grown": {"steps": trainer.step, "images": gan.images_seen,
                                                                  "fid": grown["fid"], "swd": grown["swd"]},
            "full_resolution": {"steps": flat_trainer.step, "images": flat.images_seen, "fid": full_res["fid"],
                                "swd": full_res["swd"]},
            "stages": [{k: row[k] for k in ("resolution", "images", "seconds", "fid", "fid_floor", "swd", "swd_floor")}
                       for row in log.rows]}


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(sum(values) / len(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def table(runs: list[dict]) -> str:
    lines = ["| stage | images | seconds | FID | FID floor | SWD x1e3 per level, finest first |", "|---" * 6 + "|"]
    for i, first in enumerate(runs[0]["stages"]):
        rows = [r["stages"][i] for r in runs if i < len(r["stages"])]
        swd = ", ".join(spread([row["swd"][k] for row in rows], "{:.1f}") for k in range(len(first["swd"])))
        lines.append(f"| {first['resolution']}x{first['resolution']} | {spread([r['images'] for r in rows], '{:.0f}')} "
                     f"| {spread([r['seconds'] for r in rows], '{:.0f}')} | {spread([r['fid'] for r in rows])} "
                     f"| {first['fid_floor']:.2f} | {swd} |")
    lines += ["", "| model | steps | FID at 32x32 | SWD x1e3 per level |", "|---" * 4 + "|"]
    for key, name in (("grown", "grown (ProGAN)"), ("full_resolution", "32x32 from the start, same seconds")):
        rows = [r[key] for r in runs]
        swd = ", ".join(spread([row["swd"][k] for row in rows], "{:.1f}") for k in range(len(rows[0]["swd"])))
        lines.append(f"| {name} | {spread([r['steps'] for r in rows], '{:.0f}')} | {spread([r['fid'] for r in rows])} "
                     f"| {swd} |")
    wins = sum(r["grown"]["fid"] < r["full_resolution"]["fid"] for r in runs)
    lines += ["", f"Grown beats full resolution by FID in {wins} of {len(runs)} seeds."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    evaluator = StageEvaluator(DATA, SIZE, n=1000)
    start, runs = time.perf_counter(), []
    for seed in args.seeds:
        runs.append(run(seed, args.steps, evaluator))
        print(json.dumps(runs[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "steps": args.steps, "seeds": args.seeds, "wall_seconds": round(time.perf_counter() - start)}
    (RESULTS / "progan-cpu.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    md = (f"Lesson 06: ProGAN on {DATA} at {SIZE}x{SIZE}, {args.steps} steps grown, seeds {args.seeds} "
          f"(mean, min–max); {meta['threads']} threads; averaged G, 1,000 images per score.\n\n" + table(runs) + "\n")
    (RESULTS / "progan-cpu.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
