"""StyleGAN2's modulated convolution, fused (one grouped convolution with a kernel per sample) against unfused
(scale the input channels, the shared kernel, scale the output channels), on this machine.

    .venv/bin/python benchmarks/modconv.py            # writes benchmarks/results/modconv-cpu.{json,md}

Times one full training step of lesson 07's shipped architecture (G's config read from the shipped file;
the StyleGAN family: D step, G step, and the lazy R1 and path-length steps at their usual rate, averaged over 32
steps) at batch 32, in fp32 and with the Trainer's bf16 autocast, NHWC as the Trainer lays out images on a CPU.
Run it with the machine otherwise idle; the library picks `fused=False` by default because of this table.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

import gancourse
from gancourse.data import load
from gancourse.models import StyleDiscriminator, StyleGenerator
from gancourse.pretrained import load_pretrained
from gancourse.train import StyleGAN, Trainer

RESULTS = Path(__file__).resolve().parent / "results"
CONFIG = load_pretrained("stylegan-faces32")[0].config  # the shipped G's architecture (width, channels, ...)
WIDTH = CONFIG["width"]


def seconds_per_step(fused: bool, amp, steps: int = 32, warmup: int = 4) -> float:
    gancourse.seed_everything(0)
    G = StyleGenerator(**dict(CONFIG, fused=fused))
    gan = StyleGAN(G, StyleDiscriminator())
    trainer = Trainer(gan, load("faces", size=32), steps=warmup, batch_size=32, amp=amp, progress=False,
                      verbose=False)
    trainer.fit()
    trainer.max_steps = warmup + steps
    start = time.perf_counter()
    trainer.fit()
    return (time.perf_counter() - start) / steps


def main() -> None:
    rows = []
    for amp in (False, None):
        for fused in (True, False):
            s = seconds_per_step(fused, amp)
            rows.append({"fused": fused, "precision": "fp32" if amp is False else "bf16 autocast (Trainer default)",
                         "seconds_per_step": round(s, 4)})
            print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "modconv-cpu.json").write_text(json.dumps({"machine": machine, "width": WIDTH, "rows": rows}, indent=1)
                                              + "\n")
    lines = [f"# Modulated convolution: fused vs unfused (lesson 07's G at width {WIDTH} and D, one training step, "
             "batch 32)", "",
             f"Machine: {machine}.", "", "| form | precision | seconds per step |", "|---|---|---|"]
    lines += [f"| {'fused (grouped conv)' if r['fused'] else 'unfused'} | {r['precision']} | {r['seconds_per_step']:.3f} |"
              for r in rows]
    (RESULTS / "modconv-cpu.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
