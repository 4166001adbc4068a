"""Lesson 05's models over several seeds: CycleGAN, its two ablations and pix2pix, measured against the
hidden truth of the glyph test pairs (the lesson's settings: 32x32, width 16, 4 blocks, batch 8).

    .venv/bin/python benchmarks/cyclegan.py --seeds 0 1 2 --steps 800

Writes benchmarks/results/cyclegan-cpu.json and .md (mean and range over the seeds per model and direction).
Run it with the machine otherwise idle: the seconds are part of the result.
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
from gancourse.metrics import image_error, translate_all, translation_report
from gancourse.models import PatchDiscriminator, ResnetGenerator
from gancourse.train import CycleGAN, Pix2Pix, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "CycleGAN": dict(),
    "no identity": dict(identity=0.0),
    "cycle only": dict(identity=0.0, adversarial=False),
    "pix2pix": None,
}


def build(name: str):
    G = lambda: ResnetGenerator(width=16, n_blocks=4)
    D = lambda channels=3: PatchDiscriminator(channels, width=32, n_layers=2)
    if MODELS[name] is None:
        return Pix2Pix(G(), D(6)), load("glyphs", paired=True)
    return CycleGAN(G(), G(), D(), D(), **MODELS[name]), load("glyphs")


def run(name: str, seed: int, steps: int, test) -> dict:
    gancourse.seed_everything(seed)
    gan, data = build(name)
    trainer = Trainer(gan, data, steps=steps, batch_size=8, seed=seed, progress=False, verbose=False)
    trainer.fit()
    report = translation_report(gan, test)
    if name != "pix2pix":
        a, b = test.domain("A").x, test.domain("B").x
        report["A2B"]["identity_error"] = image_error(translate_all(gan, b, "A2B"), b)
        report["B2A"]["identity_error"] = image_error(translate_all(gan, a, "B2A"), a)
    return {"model": name, "seed": seed, "steps": trainer.step, "seconds": round(trainer.elapsed, 1), "report": report}


def table(runs: list[dict]) -> str:
    keys = ("error", "class_kept", "cycle_error", "identity_error", "fid")
    lines = ["| model | direction | " + " | ".join(keys) + " | seconds |", "|---" * (len(keys) + 3) + "|"]
    for name in MODELS:
        mine = [r for r in runs if r["model"] == name]
        for direction in ("A2B", "B2A"):
            rows = [r["report"][direction] for r in mine if direction in r["report"]]
            if not rows:
                continue
            cells = []
            for key in keys:
                values = [row[key] for row in rows if key in row]
                if not values:
                    cells.append("–")
                    continue
                scale = 100 if key == "class_kept" else 1
                fmt = "{:.1f}" if key in ("class_kept", "fid") else "{:.4f}"
                cells.append(f"{fmt.format(scale * sum(values) / len(values))} ({fmt.format(scale * min(values))}–"
                             f"{fmt.format(scale * max(values))})")
            seconds = sum(r["seconds"] for r in mine) / len(mine)
            lines.append(f"| {name} | {direction} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    test = load("glyphs", split="test")
    a, b = test.pairs()
    runs = []
    start = time.perf_counter()
    for name in args.models:
        for seed in args.seeds:
            runs.append(run(name, seed, args.steps, test))
            print(json.dumps(runs[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "steps": args.steps, "seeds": args.seeds, "copy_error": image_error(a, b),
            "wall_seconds": round(time.perf_counter() - start)}
    (RESULTS / "cyclegan-cpu.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    md = (f"Lesson 05 models, {args.steps} steps at batch 8, seeds {args.seeds} (mean, min–max); "
          f"copy baseline {meta['copy_error']:.4f}; {meta['threads']} threads.\n\n" + table(runs) + "\n")
    (RESULTS / "cyclegan-cpu.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
