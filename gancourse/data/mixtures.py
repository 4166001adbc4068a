"""Toy 2-D mixtures of Gaussians whose modes are known, so mode collapse can be counted."""
from __future__ import annotations

import math
import numbers

import torch

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.registry import register

# The "test" split is an independent draw from the same mixture, from a different random stream.
_TEST_SEED_OFFSET = 1_000_003


class MixtureData(InMemoryData):
    """Points drawn from an equal-weight mixture of isotropic Gaussians; `y` is each point's component."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, centers: torch.Tensor, sigma: float, name: str,
                 split: str = "train") -> None:
        super().__init__(x, y, name=name, kind="points", num_classes=len(centers), split=split)
        self.centers = centers
        self.sigma = float(sigma)

    def _describe(self) -> list[str]:
        # Each mode is a class, so "modes" replaces num_classes.
        parts = [p for p in super()._describe() if not p.startswith("num_classes=")]
        parts[-1:-1] = [f"modes={len(self.centers)}", f"sigma={self.sigma:g}"]
        return parts


def _check_scale(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number; got {value!r}.")
    return float(value)


def draw_mixture(centers: torch.Tensor, sigma: float, n: int, *, seed: int, name: str,
                 split: str = "train") -> MixtureData:
    """Draw n points once from a seeded generator, so the same arguments always give the same set."""
    n = check_positive_int(n, f"{name}: n")
    sigma = _check_scale(sigma, f"{name}: sigma")
    check_split(name, split, ("train", "test"))
    seed = check_positive_int(seed, f"{name}: seed", minimum=0)
    generator = torch.Generator().manual_seed(seed + (_TEST_SEED_OFFSET if split == "test" else 0))
    component = torch.randint(len(centers), (n,), generator=generator)
    x = centers[component] + sigma * torch.randn(n, 2, generator=generator)
    return MixtureData(x, component, centers=centers, sigma=sigma, name=name, split=split)


@register("ring8")
def ring8(*, split: str = "train", n: int = 100_000, seed: int = 0, sigma: float = 0.02,
          radius: float = 2.0) -> MixtureData:
    """8 Gaussians equally spaced on a circle (radius 2, sigma 0.02): the classic mode-collapse test."""
    radius = _check_scale(radius, "ring8: radius")
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centers = (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()
    return draw_mixture(centers, sigma, n, seed=seed, name="ring8", split=split)


@register("grid25")
def grid25(*, split: str = "train", n: int = 100_000, seed: int = 0, sigma: float = 0.05) -> MixtureData:
    """25 Gaussians on a 5x5 grid at coordinates {-4, -2, 0, 2, 4} (sigma 0.05)."""
    coords = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    centers = torch.cartesian_prod(coords, coords)
    return draw_mixture(centers, sigma, n, seed=seed, name="grid25", split=split)
