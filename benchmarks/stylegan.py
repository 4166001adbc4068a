"""Trains lesson 07's StyleGAN2 on the built-in faces and, with --export, writes the checkpoint the package ships.

    .venv/bin/python benchmarks/stylegan.py --minutes 60 --export        # 60 minutes, then export (overwrites!)
    .venv/bin/python benchmarks/stylegan.py --minutes 5 --out runs/try    # a short trial

The shipped G (width 64, 46,422 steps, 356 min on a 2-core CPU) came from one run with its learning rate lowered
by hand at each plateau; the same schedule, resumed call by call in the same --out:

    .venv/bin/python benchmarks/stylegan.py --threads 2 --eval-every 2000 --steps 24000 --minutes 600
    .venv/bin/python benchmarks/stylegan.py --threads 2 --eval-every 2000 --steps 36000 --minutes 600 --set lr=1e-3
    .venv/bin/python benchmarks/stylegan.py --threads 2 --eval-every 2000 --steps 42000 --minutes 600 \
        --set lr=5e-4 ema_half_life=40000
    .venv/bin/python benchmarks/stylegan.py --threads 2 --eval-every 2000 --steps 46422 --minutes 600 \
        --set lr=2e-4 ema_half_life=40000 --export

Training runs through the course's Trainer with checkpoints in --out (default runs/stylegan-faces), so an
interrupted run continues where it stopped when started again with the same arguments. Every --eval-every
steps the averaged generator is scored: FID, precision and recall on the factor model's features (2,000
samples; the floor is the 2,000 held-out real faces); the lines go to the log and to <out>/evaluations.json. --export writes the averaged G (weights, config, w_avg, the numbers) to
gancourse/pretrained/stylegan-faces32.pt and its SHA-256 into gancourse/pretrained/registry.json, and the
run's whole FID curve with the shipped G's numbers to benchmarks/results/stylegan-cpu.{json,md}.

    .venv/bin/python benchmarks/stylegan.py --warm-start --minutes 60 --export   # train the shipped G further

--warm-start is for a machine without the training checkpoint (it lives in runs/, which git does not keep): G
starts from the shipped averaged G, a fresh D first trains alone against it for --warm-up steps, then both
train together. The export then counts the shipped G's steps and time as well as this run's.
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
from gancourse.metrics import FIDEvaluator
from gancourse.metrics.factors import factor_model
from gancourse.models import StyleDiscriminator, StyleGenerator
from gancourse.train import StyleGAN, Trainer
from gancourse.train.checkpoint import load_checkpoint, save_atomic

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = dict(width=64, max_channels=128, z_dim=128, w_dim=128, mapping_layers=8, batch_size=32, lr=2e-3,
                r1=0.1, ema_half_life=10_000, d_width=32, d_max_channels=128, mbstd_group=4)


def build(settings: dict, seed: int):
    gancourse.seed_everything(seed)
    G = StyleGenerator(settings["z_dim"], settings["w_dim"], 32, 3, width=settings["width"],
                       max_channels=settings["max_channels"], mapping_layers=settings["mapping_layers"], fused=False)
    D = StyleDiscriminator(32, 3, width=settings["d_width"], max_channels=settings["d_max_channels"],
                           group_size=settings["mbstd_group"])
    return StyleGAN(G, D, lr=settings["lr"], r1=settings["r1"])


class WarmUp:
    """Trains D alone for the first `steps` steps of a run (G keeps the shipped weights meanwhile)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_fit_start(self, trainer) -> None:
        gan = trainer.gan
        gan.train_generator = trainer.step >= self.steps
        if trainer.step == 0 and gan.pl_weight > 0:  # the path-length mean of the shipped G, not 0
            decay, device = gan.pl_decay, next(gan.nets["G"].parameters()).device
            for k in range(1, 9):
                gan.pl_decay = 1 / k  # a plain mean over 8 batches
                gan.path_length_penalty(16, device)
            gan.pl_decay = decay

    def on_step_end(self, trainer, step, metrics) -> None:
        trainer.gan.train_generator = step >= self.steps


def warm_start(gan, out: Path, source: Path | None = None, settings: dict | None = None) -> dict:
    """Load the shipped averaged G into gan's G (unless out holds a checkpoint to resume); its info.

    source: a training checkpoint of an earlier run instead: its averaged G is the start, and the steps and time
    count that run's start (when it was warm-started itself) as well as its own. A source run that started
    from scratch has no warm_start.json: its steps and time are its own, and `settings` (this run's: the same
    networks; the source's learning rates belong in the export's --note) stand for its settings."""
    from gancourse.pretrained import load_pretrained

    if source is not None:
        saved = torch.load(source, map_location="cpu", weights_only=False)
        state = saved["ema"]["nets"]["G"]
        record = source.parent / "warm_start.json"  # absent for a run that started from scratch
        earlier = json.loads(record.read_text()) if record.exists() else {
            "steps": 0, "training_seconds": 0, "fid": None, "settings": dict(settings or SETTINGS)}
        scored = [row for row in json.loads((source.parent / "evaluations.json").read_text())
                  if row["step"] == saved["step"]]
        info = dict(earlier, steps=earlier["steps"] + saved["step"], images=(earlier["steps"] + saved["step"]) *
                    earlier["settings"]["batch_size"], training_seconds=round(earlier["training_seconds"] +
                    saved["elapsed"]), fid=scored[-1]["fid"] if scored else None, source=str(source))
    else:
        shipped, info = load_pretrained("stylegan-faces32")
        state = shipped.state_dict()
    if not (out / "warm_start.json").exists():
        (out / "warm_start.json").write_text(json.dumps(info, indent=1))
    info = json.loads((out / "warm_start.json").read_text())  # what this run started from, even after a re-export
    if not any(out.glob("*.pt")):
        gan.nets["G"].load_state_dict(state)
    return info


PACKED = ("evaluations.json", "warm_start.json", "train.log")


def pack(out: Path, path: Path) -> Path:
    """The run in `out` as one file of about 60% of the checkpoint's size, to carry a long run across machines that
    keep nothing but the repository. Adam's first moment is left out (with beta1 = 0 the next step overwrites it
    exactly), its second moment is kept in bfloat16 (fp32's range; 0.4% relative error, 0.2% in a step); the
    networks, the averaged G, the RNG and the run's evaluations and log are kept as they are."""
    state = load_checkpoint(out / "checkpoint.pt")  # a missing or corrupt checkpoint: its clear error
    for name, opt in state["gan"]["opts"].items():
        if any(group["betas"][0] != 0 for group in opt["param_groups"]):
            raise ValueError(f"optimiser {name} has beta1 != 0: its first moment cannot be dropped; copy the "
                             "whole checkpoint instead")
        for slot in opt["state"].values():
            del slot["exp_avg"]
            slot["exp_avg_sq"] = slot["exp_avg_sq"].to(torch.bfloat16)
    state["packed_files"] = {name: (out / name).read_text() for name in PACKED if (out / name).exists()}
    return save_atomic(state, path)


def unpack(path: Path, out: Path) -> None:
    """Turn a pack back into `out`/checkpoint.pt and its files; training then resumes from it."""
    if (out / "checkpoint.pt").exists():
        raise FileExistsError(f"{out} already holds a checkpoint; unpack into an empty directory")
    state = load_checkpoint(path)
    for opt in state["gan"]["opts"].values():
        for slot in opt["state"].values():
            slot["exp_avg_sq"] = slot["exp_avg_sq"].float()
            slot["exp_avg"] = torch.zeros_like(slot["exp_avg_sq"])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in state.pop("packed_files").items():
        (out / name).write_text(text)
    save_atomic(state, out / "checkpoint.pt")


class KeepSettings:
    """The learning rate named with --set wins over the one a resumed checkpoint restores (an lr schedule by hand:
    resume with --set lr=5e-4 to anneal a run that was trained at 1e-3); left unnamed, the checkpoint's stays."""

    def __init__(self, gan, named=()) -> None:
        self.groups = {name: [dict(lr=g["lr"]) for g in opt.param_groups] for name, opt in gan.opts.items()}
        self.apply = "lr" in named

    def on_fit_start(self, trainer) -> None:
        if not self.apply:
            return
        for name, opt in trainer.gan.opts.items():
            for group, wanted in zip(opt.param_groups, self.groups[name]):
                group.update(wanted)


class Evaluate:
    """Scores the averaged G every `every` steps (not counted as training time)."""

    def __init__(self, every: int, evaluator: FIDEvaluator, out: Path) -> None:
        self.every, self.evaluator, self.path = every, evaluator, out / "evaluations.json"
        self.rows = json.loads(self.path.read_text()) if self.path.exists() else []

    def on_step_end(self, trainer, step, metrics) -> None:
        if step % self.every == 0:
            self.score(trainer)

    def on_fit_end(self, trainer) -> None:
        if not self.rows or self.rows[-1]["step"] != trainer.step:
            self.score(trainer)

    def score(self, trainer) -> None:
        samples = trainer.gan.generate(self.evaluator.n, rng=0, net=trainer.sampling_nets())
        report = self.evaluator.score(samples)
        row = {"step": trainer.step, "seconds": round(trainer.elapsed, 1), "fid": round(report["fid"], 3),
               "fid_floor": round(report["fid_floor"], 3), "precision": round(report["precision"], 3),
               "recall": round(report["recall"], 3), "p": trainer.gan.p, "pl_mean": round(trainer.gan.pl_mean, 4)}
        self.rows.append(row)
        self.path.write_text(json.dumps(self.rows, indent=1))
        print(json.dumps(row), flush=True)


def write_results(info: dict, rows: list[dict], before: dict | None) -> Path:
    """The shipped G's numbers and every evaluation of the run that made it, as JSON and as a table."""
    offset = before["steps"] if before else 0
    rows = [dict(row, total_steps=row["step"] + offset) for i, row in enumerate(rows)
            if i == 0 or row["step"] != rows[i - 1]["step"]]  # a resumed call re-scores its last step: keep one
    path = ROOT / "benchmarks" / "results" / "stylegan-cpu.json"
    earlier = []  # the curves of the runs that made the G this one started from, kept rather than overwritten
    if before and path.exists():
        previous = json.loads(path.read_text())
        if previous["shipped"]["steps"] == before["steps"]:
            earlier = previous.get("earlier", []) + [{key: value for key, value in previous.items() if key != "earlier"}]
    path.write_text(json.dumps({"shipped": info, "evaluations": rows, "earlier": earlier}, indent=1) + "\n")
    lines = ["# Lesson 07's shipped StyleGAN2: FID along its training (benchmarks/stylegan.py)", "",
             f"Shipped: {info['steps']:,} steps ({info['images']:,} images), {info['training_seconds'] / 60:.0f} min "
             f"of training-loop wall time; FID {info['fid']} against a floor of {info['fid_floor']} "
             f"({info['fid'] / info['fid_floor']:.1f}x), precision {info['precision']}, recall {info['recall']}; "
             f"torch {info['torch']}, {info['machine']}.", ""]
    if before:
        lines += [f"This run started from an earlier shipped G ({before['steps']:,} steps, FID {before['fid']}); "
                  "the table's total steps count those too.", ""]
    lines += ["| total steps | this run's step | training s (this run) | FID | floor | precision | recall | ADA p | "
              "path-length mean |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['total_steps']:,} | {r['step']:,} | {r['seconds']:,.0f} | {r['fid']} | {r['fid_floor']} | "
              f"{r['precision']} | {r['recall']} | {r['p']} | {r['pl_mean']} |" for r in rows]
    for run in reversed(earlier):
        lines += ["", f"## The run before: the G shipped at {run['shipped']['steps']:,} steps (FID {run['shipped']['fid']})", "",
                  "| total steps | FID | precision | recall |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['total_steps']:,} | {r['fid']} | {r['precision']} | {r['recall']} |"
                  for r in run["evaluations"] + run.get("after_export", [])]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="training minutes (wall clock, this call)")
    parser.add_argument("--steps", type=int, default=None, help="or a step budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "stylegan-faces")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--set", nargs="*", default=[], help="override settings, e.g. r1=0.5 width=48")
    parser.add_argument("--export", action="store_true", help="write the shipped checkpoint")
    parser.add_argument("--warm-start", action="store_true", help="start G from the shipped checkpoint")
    parser.add_argument("--warm-start-from", type=Path, default=None, help="start G from the averaged G of this "
                        "training checkpoint (of a warm-started run) instead, with a fresh D")
    parser.add_argument("--warm-up", type=int, default=500, help="with --warm-start: D-only steps first")
    parser.add_argument("--fp32", action="store_true", help="train without autocast (bf16 is the default where "
                        "the CPU has it natively)")
    parser.add_argument("--machine", default="", help="with --export: the machine(s) it trained on, in words")
    parser.add_argument("--note", default="", help="with --export: how the run went, kept with the shipped G's info")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--pack", type=Path, default=None, help="write --out's run to this one file and stop")
    parser.add_argument("--unpack", type=Path, default=None, help="start --out (empty) from a file --pack wrote")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings, named = dict(SETTINGS), set()
    for item in args.set:
        key, value = item.split("=")
        named.add(key)
        settings[key] = type(SETTINGS[key])(float(value)) if key in SETTINGS else value
    if args.pack:
        print(f"wrote {pack(args.out, args.pack)} ({args.pack.stat().st_size / 1e6:.1f} MB)")
        return
    if args.unpack:
        unpack(args.unpack, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    gan = build(settings, args.seed)
    before = warm_start(gan, args.out, args.warm_start_from, settings) if args.warm_start or args.warm_start_from else None
    evaluate = Evaluate(args.eval_every, FIDEvaluator("faces", 32, classifier=factor_model(32)), args.out)
    trainer = Trainer(gan, load("faces", size=32), steps=args.steps, seconds=args.minutes * 60,
                      batch_size=settings["batch_size"], seed=args.seed, amp=False if args.fp32 else None, ema_half_life=settings["ema_half_life"],
                      checkpoint_dir=args.out, checkpoint_every=250, callbacks=[KeepSettings(gan, named), evaluate] + ([WarmUp(args.warm_up)] if before else []), log_every=50,
                      progress=False)
    start = time.perf_counter()
    trainer.fit(resume=True)
    print(f"trained to step {trainer.step} in {trainer.elapsed:.0f} s of training ({time.perf_counter() - start:.0f} s "
          f"in this call, evaluations included)", flush=True)
    if args.export:
        from gancourse.pretrained import export_generator

        evaluate.score(trainer)  # scored now, whatever the log holds
        final = evaluate.rows[-1]
        steps, seconds = trainer.step + (before["steps"] if before else 0), trainer.elapsed + (
            before["training_seconds"] if before else 0)
        machine = args.machine or f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        info = {"settings": settings, "seed": args.seed, "steps": steps, "images": steps *
                settings["batch_size"], "training_seconds": round(seconds), "machine": machine,
                "torch": str(torch.__version__), "fid": final["fid"], "fid_floor": final["fid_floor"],
                "precision": final["precision"], "recall": final["recall"]}
        if before:
            info["warm_start"] = {key: before[key] for key in ("steps", "training_seconds", "fid", "settings")}
            info["warm_start"]["d_only_steps"] = args.warm_up
        if args.note:
            info["note"] = args.note
        path = export_generator(trainer.sampling_nets()["G"], "stylegan-faces32", info)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {write_results(info, evaluate.rows, before)}")


if __name__ == "__main__":
    main()
