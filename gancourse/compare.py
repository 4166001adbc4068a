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

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

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

    def build(self, objective: losses.Objective, data, **options) -> AdversarialGAN:
        dim = data.shape[0]
        G = MLPGenerator(z_dim=self.z_dim, out_shape=(dim,), hidden=self.hidden)
        D = MLPDiscriminator((dim,), hidden=self.hidden)
        return AdversarialGAN(G, D, objective=objective, **options)


@dataclass
class ImageSetup:
    """Networks and batch for an image set (DCGAN generator, BatchNorm-free critic)."""

    size: int = 16
    width: int = 16
    z_dim: int = 64
    batch_size: int = 64

    def build(self, objective: losses.Objective, data, **options) -> AdversarialGAN:
        channels = data.shape[0]
        G = DCGANGenerator(z_dim=self.z_dim, image_size=self.size, channels=channels, width=self.width)
        norm = "none" if objective.clip or objective.spectral_norm else "layer"
        D = DCGANCritic(image_size=self.size, channels=channels, width=self.width, norm=norm)
        return AdversarialGAN(G, D, objective=objective, **options)


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

    @classmethod
    def from_dict(cls, saved: dict) -> "Comparison":
        """The Comparison `to_dict` (or benchmarks/objectives.py's JSON) wrote."""
        try:
            return cls([Run(**run) for run in saved["runs"]])
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a saved comparison (expected {{'runs': [...]}} as to_dict writes): {err}") from None

    def __str__(self) -> str:
        return self.table()


def compare_objectives(data: str = "ring8", objectives=COMPARED_OBJECTIVES, seeds=(0, 1, 2), steps: int = 2000, *,
                       setup: ToySetup | ImageSetup | None = None, ema: float | str | None = "ramp",
                       lr: float | None = None, n_samples: int = 2500, evaluator=None, device=None,
                       into: Comparison | None = None, callback=None, verbose: bool = True,
                       workers: int = 1) -> Comparison:
    """Train every objective with every seed on `data` for `steps` generator updates and score each run.

    data: a 2-D mixture ("ring8", "grid25") is scored by mode coverage; an image set ("digits",
        "mnist", ...) by FID against its held-out floor (`evaluator`: a FIDEvaluator to reuse, else one
        is built for the setup's image size).
    setup: networks and batch size (ToySetup / ImageSetup defaults by the kind of data).
    ema: the moving average of G that is scored. "ramp" is the course's rule (lesson 01): its half-life
        is 5% of the images seen so far, so a short run never scores its untrained start. A float is a
        fixed decay; None scores G itself.
    lr: every objective's learning rate instead of its published one (None: the recipe's).
    into: add the runs to an existing Comparison (e.g. ring8 first, then digits).
    callback: called with each finished Run (a notebook can print progress).
    workers: runs trained at once, each in its own process with an equal share of the CPU threads (2 on
        a 2-core machine halves the wall time: the networks are too small to use two threads well).
        The runs and their scores are the same as with workers=1, in the same order.
    """
    if isinstance(objectives, str):
        objectives = (objectives,)
    chosen = [losses.objective(o) for o in objectives]  # unknown names fail here, before any training
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("compare_objectives needs at least one seed, e.g. seeds=(0, 1, 2)")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int (generator updates per run); got {steps!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int (runs at once); got {workers!r}")
    if ema == "auto":
        ema = "ramp"
    if not (ema is None or ema == "ramp" or isinstance(ema, float)):
        raise ValueError(f"ema must be 'ramp' (the course's rule), a decay such as 0.999, or None; got {ema!r}")
    probe = load(data) if setup is None or isinstance(setup, ToySetup) else None
    images = probe is None or probe.kind == "images"
    if setup is None:
        setup = ImageSetup() if images else ToySetup()
    result = into if into is not None else Comparison()
    jobs = [dict(data=data, objective=objective.name, seed=seed, steps=steps, setup=setup, ema=ema, lr=lr,
                 n_samples=n_samples) for objective in chosen for seed in seeds]
    report = callback if callback is not None else (lambda run: print(_describe(run), flush=True)) if verbose \
        else (lambda run: None)
    if workers == 1 or len(jobs) == 1:
        if images and evaluator is None:
            from gancourse.metrics import FIDEvaluator
            evaluator = FIDEvaluator(data, setup.size, device=device)
        for job in jobs:
            run = train_and_score(**job, device=device, evaluator=evaluator)
            result.runs.append(run)
            report(run)
        return result
    runs = BackgroundRuns(jobs, workers, threads=max(1, torch.get_num_threads() // workers), device=device)
    for run in runs.as_completed():
        report(run)
    result.runs.extend(runs.results())
    return result


class BackgroundRuns:
    """`train_and_score(**job)` for every job, in `workers` spawned processes, each with `threads` torch threads:
    the kernel stays free meanwhile (lesson 04 trains its verdict's other seeds this way while the dashboard
    run uses the first core). `results()` waits for all of them and returns the Runs in the jobs' order."""

    def __init__(self, jobs: list[dict], workers: int = 1, *, threads: int | None = None, device=None) -> None:
        import concurrent.futures as cf
        import multiprocessing

        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int (runs at once); got {workers!r}")
        device = None if device is None else str(device)
        self._pool, self._futures = None, []
        if jobs:  # no jobs (lesson 04 in smoke mode has one seed only): no processes
            # spawn, not fork: a forked copy of a process that has run torch's thread pool can hang
            self._pool = cf.ProcessPoolExecutor(min(workers, len(jobs)),
                                                mp_context=multiprocessing.get_context("spawn"))
            self._futures = [self._pool.submit(train_and_score, **job, device=device, threads=threads) for job in jobs]

    def as_completed(self):
        """The Runs as they finish (any order)."""
        import concurrent.futures as cf

        for future in cf.as_completed(self._futures):
            yield future.result()

    def results(self) -> list[Run]:
        """Every Run, in the order of the jobs; the worker processes end."""
        try:
            return [future.result() for future in self._futures]
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)


def train_and_score(data: str, objective: str, seed: int, steps: int, setup, ema="ramp", lr: float | None = None,
                    n_samples: int = 2500, device=None, evaluator=None, threads: int | None = None) -> Run:
    """One run of the comparison: train `objective` with `seed` on `data` and score it (see compare_objectives)."""
    if threads is not None:  # a worker process: its share of the CPU
        torch.set_num_threads(threads)
    dataset = load(data, size=setup.size) if isinstance(setup, ImageSetup) else load(data)
    images = dataset.kind == "images"
    torch.manual_seed(seed)
    gan = setup.build(losses.objective(objective), dataset, **({} if lr is None else {"lr": lr}))
    averaging = ({"ema_half_life": 1e12, "ema_rampup": 0.05} if ema == "ramp" else {"ema": ema})
    trainer = Trainer(gan, dataset, steps=steps, batch_size=setup.batch_size, seed=seed, device=device,
                      log_every=max(steps // 20, 1), progress=False, verbose=False, **averaging)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    _, w1 = trainer.history.series("W1")
    run = Run(data=dataset.name, objective=objective, seed=seed, steps=trainer.step, seconds=round(seconds, 2),
              w1=w1[-1] if w1 else None)
    if images:
        if evaluator is None:
            from gancourse.metrics import FIDEvaluator
            evaluator = FIDEvaluator(data, setup.size, device=device)
        n = min(n_samples, evaluator.n)
        score = evaluator.score(trainer.sample(n, seed=seed + 1))
        run.fid, run.fid_floor = score["fid"], score["fid_floor"]
    else:
        cov = mode_coverage(trainer.sample(n_samples, seed=seed + 1), dataset.centers, dataset.sigma)
        run.modes, run.num_modes, run.high_quality = cov.modes_covered, cov.num_modes, cov.high_quality
    if not all(math.isfinite(v) for v in (run.fid or 0.0, run.high_quality or 0.0)):
        raise FloatingPointError(f"{objective} seed {seed} produced non-finite scores")
    return run


SHIPPED = Path(__file__).resolve().parent / "pretrained" / "objectives-cpu.json"


def shipped_comparison() -> tuple[Comparison, dict]:
    """(Comparison, its machine and settings): lesson 04's full comparison as `make bench` measured it on a
    2-core CPU and the package ships it, for a notebook that skips the 15 minutes of training."""
    if not SHIPPED.exists():
        raise FileNotFoundError(f"{SHIPPED} is missing: reinstall gancourse, or run the comparison "
                                "(RUN_COMPARISON = True in lesson 04, or benchmarks/objectives.py --ship)")
    saved = json.loads(SHIPPED.read_text())
    return Comparison.from_dict(saved), {key: value for key, value in saved.items() if key not in ("runs", "rows")}


def _describe(run: Run) -> str:
    score = (f"FID {run.fid:.2f} (floor {run.fid_floor:.2f})" if run.fid is not None
             else f"{run.modes}/{run.num_modes} modes, {100 * run.high_quality:.1f}% high quality")
    return f"{run.data:8s} {run.objective:14s} seed {run.seed}: {score}, {run.seconds:.0f} s"
