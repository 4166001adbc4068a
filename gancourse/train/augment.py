"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, arXiv 2006.06676), lesson 07.

With few training images D memorises them and G's gradients turn to noise. ADA shows D every image, real and
generated alike, through random augmentations, each applied with probability p, and tunes p while training:
the overfitting heuristic r_t = E[sign(D(x_real))] (near 1 when D is sure of every training image, near 0
when it cannot tell) is kept near a target (0.6) by raising p when r_t is above it and lowering it when below.

Because G's samples pass through the same augmentations before D sees them, G is never asked to draw augmented
images, as long as p stays below the point where an augmentation could be told apart from its inverse
(rotations by 90 degrees are the risky ones; the paper finds p < 0.8 safe). The lesson checks for leaks.

The augmentations (the paper's "bgc" group, simplified): x-flip, rotation by a multiple of 90 degrees and an
integer translation (up to 1/8 of the size, the border reflected), applied together as one nearest-neighbour
resampling so pixels move exactly; then brightness, contrast and saturation. All are differentiable in the
images, so G's gradient passes through them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# a luminance direction for saturation: greys stay where they are
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def augment(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x (N, C, H, W) in [-1, 1] with each augmentation applied to each image with probability p."""
    if p <= 0:
        return x
    n, c = x.shape[:2]
    device = x.device

    def chosen() -> torch.Tensor:
        return (torch.rand(n, generator=generator) < p).float().to(device)

    def draw(*shape) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    # geometry: one 2x3 affine matrix per image in the normalised coordinates grid_sample uses
    flip = 1 - 2 * chosen()  # -1 flips x
    quarter = torch.randint(4, (n,), generator=generator).to(device) * chosen()
    angle = quarter * (math.pi / 2)
    cos, sin = torch.cos(angle).round(), torch.sin(angle).round()
    shift = (torch.rand(n, 2, generator=generator).to(device) * 2 - 1) * 0.125
    shift = (shift * x.shape[-1]).round() * 2 / x.shape[-1] * chosen().unsqueeze(1)  # whole pixels
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="reflection", align_corners=False)

    # colour, on the image's own scale: brightness adds, contrast scales about the mean, saturation about grey
    x = x + (draw(n) * 0.2 * chosen()).view(n, 1, 1, 1).to(x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.exp2(draw(n) * 0.5 * chosen()).view(n, 1, 1, 1).to(x.dtype)
    x = (x - mean) * contrast + mean
    if c == 3:
        grey = (x * _LUMA.to(device, x.dtype).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        saturation = torch.exp2(draw(n) * chosen()).view(n, 1, 1, 1).to(x.dtype)
        x = (x - grey) * saturation + grey
    return x


class AdaptiveAugment:
    """p and its controller: every `every` steps, p moves by sign(r_t - target) * (images in that time) / speed.

    target: the wanted E[sign(D(real))] (0.6 in the paper); speed: images over which p could move from 0 to 1
    (the paper: 500k; small runs need less); p is clamped to [0, 1]. `fixed=True` keeps p where it is.
    """

    def __init__(self, target: float = 0.6, speed: int = 20_000, every: int = 4, p: float = 0.0,
                 fixed: bool = False) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"the ADA target for E[sign(D(real))] lies in (0, 1); got {target!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"the augmentation probability p lies in [0, 1]; got {p!r}")
        self.target, self.speed, self.every, self.fixed = float(target), int(speed), int(every), bool(fixed)
        self.p = float(p)
        self._signs, self._count = 0.0, 0

    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)) of one batch."""
        self._signs += float(torch.sign(real_logits.detach().float()).sum())
        self._count += len(real_logits)

    def update(self, step: int, batch_size: int) -> float | None:
        """Every `every` steps: move p, reset the tally, return r_t (None on other steps)."""
        if (step + 1) % self.every or not self._count:
            return None
        r_t = self._signs / self._count
        if not self.fixed:
            adjust = math.copysign(1.0, r_t - self.target) * batch_size * self.every / self.speed
            self.p = min(1.0, max(0.0, self.p + adjust))
        self._signs, self._count = 0.0, 0
        return r_t

    def state_dict(self) -> dict:
        return {"p": self.p, "signs": self._signs, "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        self.p, self._signs, self._count = float(state["p"]), float(state["signs"]), int(state["count"])
