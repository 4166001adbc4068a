"""Lesson 04's comparison of GAN objectives on the same data, budget and seeds.

`compare_objectives` trains one GAN per (objective, seed) with `AdversarialGAN` (which runs every
objective in `losses.OBJECTIVES` with its published recipe) and scores it: mode coverage and the
high-quality share on a 2-D mixture such as ring8, FID (with its real-vs-real floor) on an image set
such as digits. The lesson notebook and `make bench` (benchmarks/objectives.py) call the same function,
so the table in the README is the one a student reproduces.

Every objective gets the same number of generator updates (`steps`); a critic that takes n_critic
updates per step costs more seconds, which the table reports. The architecture is shared too: an MLP
pair for 2-D points, a DCGAN generator and a BatchNorm-free `DCGANCritic` for images. The critic uses
layer norm, except under weight clipping (clipping would clamp the norm's scale to +-c as well) and
spectral norm (its own normalisation, no other), where it uses none.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from gancourse import losses
from gancourse.data import load
from gancourse.metrics.toy import mode_coverage
from gancourse.models.dcgan import DCGANGenerator
from gancourse.models.mlp import MLPDiscriminator, MLPGenerator
from gancourse.models.wgan import DCGANCritic
from gancourse.train import AdversarialGAN, Trainer

# Lesson 04's six: minimax is left out, since lesson 01 already showed its gradient vanish.
COMPARED_OBJECTIVES = ("nonsaturating", "lsgan", "hinge", "wgan-clip", "wgan-gp", "spectral-norm")


@dataclass
class ToySetup:
    """Networks and batch for a 2-D mixture."""

    hidden: int = 64
    z_dim: int = 2
    batch_size: int = 256

    def build(self, objective: losses.Objective, data) -> AdversarialGAN:
        dim = data.shape[0]
        G = MLPGenerator(z_dim=self.z_dim, out_shape=(dim,), hidden=self.hidden)
        D = MLPDiscriminator((dim,), hidden=self.hidden)
        return AdversarialGAN(G, D, objective=objective)


@dataclass
class ImageSetup:
    """Networks and batch for an image set (DCGAN generator, BatchNorm-free critic)."""

    size: int = 16
    width: int = 16
    z_dim: int = 64
    batch_size: int = 64

    def build(self, objective: losses.Objective, data) -> AdversarialGAN:
        channels = data.shape[0]
        G = DCGANGenerator(z_dim=self.z_dim, image_size=self.size, channels=channels, width=self.width)
        norm = "none" if objective.clip or objective.spectral_norm else "layer"
        D = DCGANCritic(image_size=self.size, channels=channels, width=self.width, norm=norm)
        return AdversarialGAN(G, D, objective=objective)


@dataclass
class Run:
    """One trained (objective, seed) pair and its scores."""

    data: str
    objective: str
    seed: int
    steps: int
    seconds: float
    modes: int | None = None
    num_modes: int | None = None
    high_quality: float | None = None
    fid: float | None = None
    fid_floor: float | None = None
    w1: float | None = None  # the critic's last logged W1 estimate (mean score gap for non-Wasserstein losses)


@dataclass
class Comparison:
    """All runs of `compare_objectives`, with the table the lesson and the README show."""

    runs: list[Run] = field(default_factory=list)

    def by(self, data: str, objective: str) -> list[Run]:
        return [r for r in self.runs if r.data == data and r.objective == objective]

    def rows(self) -> list[dict]:
        """One row per (data set, objective): mean and standard deviation over the seeds."""
        out = []
        for data in dict.fromkeys(r.data for r in self.runs):
            for objective in dict.fromkeys(r.objective for r in self.runs if r.data == data):
                runs = self.by(data, objective)
                row = {"data": data, "objective": objective, "seeds": len(runs), "steps": runs[0].steps}
                for key in ("modes", "high_quality", "fid", "seconds"):
                    values = [getattr(r, key) for r in runs if getattr(r, key) is not None]
                    if values:
                        row[key] = statistics.fmean(values)
                        row[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
                        row[key + "_all"] = values
                if runs[0].num_modes is not None:
                    row["num_modes"] = runs[0].num_modes
                    row["all_modes"] = sum(r.modes == r.num_modes for r in runs)
                floors = [r.fid_floor for r in runs if r.fid_floor is not None]
                if floors:
                    row["fid_floor"] = floors[0]
                out.append(row)
        return out

    def table(self) -> str:
        """The comparison as a markdown table: mean ± standard deviation over seeds."""
        lines = ["| data | objective | seeds | G steps | modes covered | runs with all modes | "
                 "high-quality share | FID (floor) | seconds per run |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in self.rows():
            modes = (f"{row['modes']:.1f} ± {row['modes_sd']:.1f} of {row['num_modes']}" if "modes" in row else "–")
            every = f"{row['all_modes']}/{row['seeds']}" if "all_modes" in row else "–"
            hq = (f"{100 * row['high_quality']:.1f} ± {100 * row['high_quality_sd']:.1f}%"
                  if "high_quality" in row else "–")
            fid = f"{row['fid']:.1f} ± {row['fid_sd']:.1f} ({row['fid_floor']:.2f})" if "fid" in row else "–"
            lines.append(f"| {row['data']} | {row['objective']} | {row['seeds']} | {row['steps']} | {modes} | "
                         f"{every} | {hq} | {fid} | {row['seconds']:.0f} ± {row['seconds_sd']:.0f} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"runs": [asdict(r) for r in self.runs], "rows": self.rows()}

    def __str__(self) -> str:
        return self.table()


def compare_objectives(data: str = "ring8", objectives=COMPARED_OBJECTIVES, seeds=(0, 1, 2), steps: int = 2000, *,
                       setup: ToySetup | ImageSetup | None = None, ema: float | str | None = "auto",
                       n_samples: int = 2500, evaluator=None, device=None, into: Comparison | None = None,
                       callback=None, verbose: bool = True) -> Comparison:
    """Train every objective with every seed on `data` for `steps` generator updates and score each run.

    data: a 2-D mixture ("ring8", "grid25") is scored by mode coverage; an image set ("digits",
        "mnist", ...) by FID against its held-out floor (`evaluator`: a FIDEvaluator to reuse, else one
        is built for the setup's image size).
    setup: networks and batch size (ToySetup / ImageSetup defaults by the kind of data).
    ema: the decay of G's moving average that is scored; "auto" picks 1 - 10 / steps (at most 0.999),
        so the average spans the last tenth of the run. A fixed 0.999 on a 600-step run would score
        a generator that is still half its initial weights. None scores G itself.
    into: add the runs to an existing Comparison (e.g. ring8 first, then digits).
    callback: called with each finished Run (a notebook can print progress).
    """
    if isinstance(objectives, str):
        objectives = (objectives,)
    chosen = [losses.objective(o) for o in objectives]  # unknown names fail here, before any training
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("compare_objectives needs at least one seed, e.g. seeds=(0, 1, 2)")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (generator updates per run); got {steps!r}")
    probe = load(data) if setup is None or isinstance(setup, ToySetup) else None
    images = probe is None or probe.kind == "images"
    if setup is None:
        setup = ImageSetup() if images else ToySetup()
    dataset = load(data, size=setup.size) if isinstance(setup, ImageSetup) else probe
    if images and evaluator is None:
        from gancourse.metrics import FIDEvaluator
        evaluator = FIDEvaluator(data, setup.size, device=device)
    if ema == "auto":
        ema = min(0.999, max(0.0, 1.0 - 10.0 / steps))
    result = into if into is not None else Comparison()
    for objective in chosen:
        for seed in seeds:
            torch.manual_seed(seed)
            gan = setup.build(objective, dataset)
            trainer = Trainer(gan, dataset, steps=steps, batch_size=setup.batch_size, seed=seed, ema=ema,
                              device=device, log_every=max(steps // 20, 1), progress=False, verbose=False)
            start = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - start
            _, w1 = trainer.history.series("W1")
            run = Run(data=dataset.name, objective=objective.name, seed=seed, steps=trainer.step,
                      seconds=round(seconds, 2), w1=w1[-1] if w1 else None)
            if images:
                n = min(n_samples, evaluator.n)
                score = evaluator.score(trainer.sample(n, seed=seed + 1))
                run.fid, run.fid_floor = score["fid"], score["fid_floor"]
            else:
                cov = mode_coverage(trainer.sample(n_samples, seed=seed + 1), dataset.centers, dataset.sigma)
                run.modes, run.num_modes, run.high_quality = cov.modes_covered, cov.num_modes, cov.high_quality
            if not all(math.isfinite(v) for v in (run.fid or 0.0, run.high_quality or 0.0)):
                raise FloatingPointError(f"{objective.name} seed {seed} produced non-finite scores")
            result.runs.append(run)
            if callback is not None:
                callback(run)
            elif verbose:
                print(_describe(run), flush=True)
    return result


def _describe(run: Run) -> str:
    score = (f"FID {run.fid:.2f} (floor {run.fid_floor:.2f})" if run.fid is not None
             else f"{run.modes}/{run.num_modes} modes, {100 * run.high_quality:.1f}% high quality")
    return f"{run.data:8s} {run.objective:14s} seed {run.seed}: {score}, {run.seconds:.0f} s"
