"""Quality of a growing generator at every resolution (lesson 06): FID with the feature classifier and the
sliced Wasserstein distance per Laplacian-pyramid level, each against the real images at that resolution.

A ProGAN generator at stage s draws 4 * 2**s pixels (up-sampled to the final size). Scoring it against the
full-resolution reals would only say "blurry"; the fair question is how close it is to the reals *as that
stage sees them*: average-pooled to the stage's resolution and up-sampled the same way. The floor at each
resolution is the same score for held-out real images treated alike.
"""
from __future__ import annotations

import copy
import time

import torch

from gancourse.metrics.classifier import feature_classifier
from gancourse.metrics.quality import fid_from_features
from gancourse.metrics.swd import swd_per_level
from gancourse.train.gan import sampling_mode
from gancourse.train.progan import blend_reals


class StageEvaluator:
    """FID and SWD at any resolution for one data set, with the real-vs-real floor at that resolution.

    data: a data set name (with its options, e.g. {"path": ...} for a folder) or loaded train and test sets.
    n: images per score (generated, real and held-out alike; FID is biased upwards for small n, so only
    scores at the same n are comparable). A set without labels (or a folder) has no feature classifier: its scores hold
    the SWD only (fid None), the paper's own measure, which needs no classifier.
    """

    def __init__(self, data_name: str, size: int = 32, *, n: int = 1000, classifier=None, device=None,
                 **options) -> None:
        from gancourse.data import load

        train = load(data_name, split="train", size=size, **options)
        test = load(data_name, split="test", size=size, **options)
        self.data_name, self.size = data_name, size
        if classifier is None and not options and getattr(train, "y", None) is not None:
            classifier = feature_classifier(data_name, size, device=device)
        self.classifier = classifier
        self.n = min(n, len(train), len(test))
        self.real, self.held_out = train.x[:self.n], test.x[:self.n]
        self._features: dict[tuple[str, int], torch.Tensor] = {}
        self._floors: dict[int, dict] = {}

    def reals_at(self, resolution: int, which: str = "real") -> torch.Tensor:
        """The real (or held-out) images as a stage at `resolution` sees them, at full size."""
        images = self.real if which == "real" else self.held_out
        return blend_reals(images, resolution, 1.0)

    def _real_features(self, resolution: int, which: str) -> torch.Tensor:
        key = (which, resolution)
        if key not in self._features:
            self._features[key] = self.classifier.features(self.reals_at(resolution, which))
        return self._features[key]

    def _check_resolution(self, resolution: int) -> int:
        if resolution < 4 or resolution > self.size or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two from 4 to {self.size}; got {resolution!r}")
        return resolution

    def floor(self, resolution: int) -> dict:
        """FID and SWD of held-out real images against the training images, both at `resolution`."""
        self._check_resolution(resolution)
        if resolution not in self._floors:
            real, held_out = self.reals_at(resolution), self.reals_at(resolution, "held_out")
            self._floors[resolution] = {
                "fid": None if self.classifier is None else fid_from_features(
                    self._real_features(resolution, "real"), self._real_features(resolution, "held_out")),
                "swd": swd_per_level(real, held_out)}
        return self._floors[resolution]

    def score(self, fake: torch.Tensor, resolution: int) -> dict:
        """fid, fid_floor, swd (x1e3 per pyramid level, finest first) and swd_floor of `fake` (n images in
        [-1, 1] at full size, e.g. a generator's output at that stage) against the reals at `resolution`."""
        self._check_resolution(resolution)
        fake = fake[:self.n].float().cpu().clamp(-1, 1)
        if len(fake) < self.n:
            raise ValueError(f"score needs {self.n} images (the evaluator's n); got {len(fake)}")
        floor = self.floor(resolution)
        fid = None if self.classifier is None else fid_from_features(self._real_features(resolution, "real"),
                                                                      self.classifier.features(fake))
        return {"resolution": resolution, "fid": fid,
                "fid_floor": floor["fid"], "swd": swd_per_level(self.reals_at(resolution), fake),
                "swd_floor": floor["swd"]}

    def generate(self, G, resolution: int | None = None, *, seed: int = 0) -> torch.Tensor:
        """n images of a (growing) generator from fixed codes, on the CPU in [-1, 1]; for a ProGenerator at its
        current stage unless a resolution is given (then a private copy is grown to that stage, faded in)."""
        if resolution is not None and hasattr(G, "grow"):
            G = copy.deepcopy(G)
            G.grow(int(resolution).bit_length() - 3, 1.0)
        z = torch.randn(self.n, G.z_dim, generator=torch.Generator().manual_seed(seed))
        device = next(G.parameters()).device
        with torch.no_grad(), sampling_mode(G):
            return torch.cat([G(part.to(device)).float().cpu() for part in z.split(250)]).clamp(-1, 1)

    def score_generator(self, G, resolution: int | None = None, *, seed: int = 0) -> dict:
        """`score` of `generate(G, resolution, seed=seed)` at that resolution (G's current one by default)."""
        resolution = resolution or getattr(G, "resolution", self.size)
        return self.score(self.generate(G, resolution, seed=seed), resolution)


class StageLog:
    """A Trainer callback: at the end of every growth stage, the sampled (EMA) generator scored at that
    stage's resolution by a StageEvaluator, with the training seconds and images the stage took.

    `rows`: one dict per finished stage (the last one when training ends), with `samples`, the first `keep`
    scored images: what the stage drew when it ended.
    """

    def __init__(self, evaluator: StageEvaluator, *, seed: int = 0, keep: int = 8) -> None:
        self.evaluator, self.seed, self.keep = evaluator, seed, keep
        self.rows: list[dict] = []
        self._stage = None

    def on_fit_start(self, trainer) -> None:
        self._stage = int(trainer.gan.nets["G"].stage)
        self._stage_start = trainer.elapsed
        self._images_start = trainer.gan.images_seen
        self._eval_seconds = 0.0

    def _finish(self, trainer, stage: int) -> None:
        started = time.perf_counter()
        resolution = 4 * 2 ** stage
        images = self.evaluator.generate(trainer.sampling_nets()["G"], resolution, seed=self.seed)
        row = self.evaluator.score(images, resolution)
        seconds = trainer.elapsed - self._stage_start - self._eval_seconds
        self.rows.append({"stage": stage, **row, "seconds": seconds, "samples": images[:self.keep],
                          "images": trainer.gan.images_seen - self._images_start})
        self._eval_seconds = time.perf_counter() - started
        self._stage_start, self._images_start = trainer.elapsed, trainer.gan.images_seen

    def on_step_end(self, trainer, step: int, metrics: dict) -> None:
        stage = int(trainer.gan.nets["G"].stage)
        if stage != self._stage:
            self._finish(trainer, self._stage)
            self._stage = stage

    def on_fit_end(self, trainer) -> None:
        self._finish(trainer, self._stage)
