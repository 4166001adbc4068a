"""Lesson 07's ADA experiment, longer than the lesson can afford: StyleGAN2 on a few hundred faces, with and
without adaptive discriminator augmentation, scored as training goes on.

    .venv/bin/python benchmarks/ada.py --images 500 --minutes 8 --threads 1

Both runs use the lesson's small architecture (width 16) and settings, the same seed and the same wall-clock
budget. Every --eval-every steps the averaged G is scored (FID, precision and recall on the factor model's
features, 2,000 samples) and D's r_t = E[sign D(real)] and ADA's p are logged. Writes
benchmarks/results/ada-cpu.{json,md}. Run it with the machine otherwise idle, or say the load.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

import gancourse
from gancourse.data import load
from gancourse.metrics import FIDEvaluator
from gancourse.metrics.factors import factor_model
from gancourse.models import StyleDiscriminator, StyleGenerator
from gancourse.train import AdaptiveAugment, StyleGAN, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
WIDTH = 16


class Curve:
    def __init__(self, evaluator: FIDEvaluator, every: int) -> None:
        self.evaluator, self.every, self.rows = evaluator, every, []

    def on_step_end(self, trainer, step, metrics) -> None:
        if step % self.every == 0:
            samples = trainer.gan.generate(2000, rng=0, net=trainer.sampling_nets(), noise="const")
            score = self.evaluator.score(samples)
            self.rows.append({"step": step, "seconds": round(trainer.elapsed, 1), "fid": round(score["fid"], 2),
                              "precision": round(score["precision"], 3), "recall": round(score["recall"], 3),
                              "r_t": round(metrics["r_t"], 3), "p": round(metrics["p"], 3)})
            print(json.dumps(self.rows[-1]), flush=True)


def run(images: int, use_ada: bool, minutes: float, every: int, evaluator: FIDEvaluator, seed: int) -> dict:
    gancourse.seed_everything(seed)
    G = StyleGenerator(width=WIDTH, max_channels=4 * WIDTH, fused=False)
    D = StyleDiscriminator(width=WIDTH, max_channels=4 * WIDTH)
    gan = StyleGAN(G, D, ada=AdaptiveAugment(speed=10_000) if use_ada else None)
    curve = Curve(evaluator, every)
    trainer = Trainer(gan, load("faces", size=32, limit=images), seconds=minutes * 60, batch_size=32, seed=seed,
                      ema_half_life=5_000, callbacks=[curve], log_every=10, progress=False, verbose=False)
    trainer.fit()
    return {"images": images, "ada": use_ada, "steps": trainer.step, "seconds": round(trainer.elapsed), "curve": curve.rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    evaluator = FIDEvaluator("faces", 32, classifier=factor_model(32))
    runs = [run(args.images, use_ada, args.minutes, args.eval_every, evaluator, args.seed) for use_ada in (False, True)]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ada-cpu.json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=1) + "\n")
    lines = [f"# ADA on {args.images} faces (lesson 07's width-16 StyleGAN2, {args.minutes:g} min each, seed {args.seed})",
             "", f"Machine: {machine}.", "", "| run | step | seconds | FID | precision | recall | r_t | p |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for row in r["curve"]:
            lines.append(f"| {'ADA' if r['ada'] else 'no augmentation'} | {row['step']} | {row['seconds']} | "
                         f"{row['fid']} | {row['precision']} | {row['recall']} | {row['r_t']} | {row['p']} |")
    (RESULTS / "ada-cpu.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
