"""Quality of samples from a 2-D Gaussian mixture whose modes are known (lessons 01 and 04)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ModeCoverage:
    """How many modes G reaches and how many of its samples are good.

    A sample is high quality when it lies within `k_sigma` standard deviations of its nearest
    mode; a mode is covered when at least `min_share` of all samples are high-quality samples of it
    (the protocol of Srivastava et al. 2017, VEEGAN, and Metz et al. 2017, unrolled GANs).
    `modes_reached` ignores quality: the modes that are the nearest mode of at least `reach_share`
    (5%) of the samples, however far away. A G that smears its samples over the whole ring reaches
    every mode while covering none; a collapsed G reaches one or two.
    """

    modes_covered: int
    num_modes: int
    high_quality: float  # share of samples within k_sigma of a mode
    counts: list[int]  # high-quality samples per mode
    num_samples: int
    modes_reached: int = 0

    def __str__(self) -> str:
        return (f"{self.modes_covered}/{self.num_modes} modes covered, "
                f"{100 * self.high_quality:.1f}% high-quality samples (of {self.num_samples})")


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, sigma: float, *,
                  k_sigma: float = 3.0, min_share: float = 0.01, reach_share: float = 0.05) -> ModeCoverage:
    """Score 2-D samples against mixture `centers` (K, 2) with per-mode standard deviation `sigma`."""
    samples = torch.as_tensor(samples).detach().float().cpu()
    centers = torch.as_tensor(centers).detach().float().cpu()
    if samples.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples must have shape (n, {centers.shape[1]}); got {tuple(samples.shape)}")
    if len(samples) == 0:
        raise ValueError("mode_coverage needs at least one sample")
    dist = torch.cdist(samples, centers)  # (n, K)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= k_sigma * sigma
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= min_share * len(samples)).sum())
    reached = int((torch.bincount(nearest, minlength=len(centers)) >= reach_share * len(samples)).sum())
    return ModeCoverage(covered, len(centers), int(good.sum()) / len(samples), counts.tolist(), len(samples),
                        reached)


class CoverageTracker:
    """Trainer callback: scores G's samples on a mixture every `every` steps, to watch collapse happen."""

    def __init__(self, data, every: int = 250, n: int = 2500):
        self.data, self.every, self.n = data, every, n
        self.steps: list[int] = []
        self.scores: list[ModeCoverage] = []

    def on_step_end(self, trainer, step: int, metrics: dict) -> None:
        # the Trainer calls back every log_every steps: score at the first call past each multiple
        if not self.steps or step // self.every > self.steps[-1] // self.every:
            self.steps.append(step)
            self.scores.append(mode_coverage(trainer.sample(self.n), self.data.centers, self.data.sigma))

    @property
    def modes(self) -> list[int]:
        return [s.modes_covered for s in self.scores]

    @property
    def high_quality(self) -> list[float]:
        return [s.high_quality for s in self.scores]

    @property
    def reached(self) -> list[int]:
        return [s.modes_reached for s in self.scores]
