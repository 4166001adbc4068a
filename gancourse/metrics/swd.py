"""Sliced Wasserstein distance per Laplacian-pyramid level: ProGAN's own measure (Karras et al. 2017, app. D).

Each image is split into a Laplacian pyramid (the finest level holds the detail a 2x blur removes, the
coarsest the blurred image itself). From every level, random 7x7 neighbourhoods are cut out of real and of
generated images ("descriptors"), each channel normalised, and the two clouds of descriptors compared by the
sliced Wasserstein distance: project both onto random unit directions, sort, and average the gaps. A small
distance at a fine level means the local texture is right; at the coarsest level, the large-scale layout.
Reported x 1e3, as in the paper.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A separable 5-tap binomial (Gaussian-like) blur per channel, reflect-padded."""
    c = x.shape[1]
    k = _BINOMIAL.to(x.device, x.dtype)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[finest detail, ..., coarsest blurred image]: `levels` tensors, each half the size of the one before."""
    if images.dim() != 4 or min(images.shape[-2:]) < 2 ** (levels - 1) * 4:
        raise ValueError(f"images of shape {tuple(images.shape)} are too small for a {levels}-level pyramid "
                         f"(the coarsest level needs at least 4x4 pixels)")
    pyramid, current = [], images.float()
    for _ in range(levels - 1):
        down = _blur(current)[..., ::2, ::2]
        up = _blur(F.interpolate(down, scale_factor=2, mode="bilinear", align_corners=False))
        pyramid.append(current - up)
        current = down
    pyramid.append(current)
    return pyramid


def _descriptors(level: torch.Tensor, per_image: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = level.shape
    p = min(patch, h, w)
    ys = torch.randint(h - p + 1, (n, per_image), generator=generator)
    xs = torch.randint(w - p + 1, (n, per_image), generator=generator)
    offsets = torch.arange(p)
    rows = (ys[..., None] + offsets).view(n, per_image, p, 1).expand(n, per_image, p, p)
    cols = (xs[..., None] + offsets).view(n, per_image, 1, p).expand(n, per_image, p, p)
    batch = torch.arange(n).view(n, 1, 1, 1).expand_as(rows)
    cut = level.permute(0, 2, 3, 1)[batch, rows, cols]  # (n, per_image, p, p, c)
    return cut.permute(0, 1, 4, 2, 3).reshape(n * per_image, c, p * p)


def _normalise(d: torch.Tensor) -> torch.Tensor:
    """Each channel of a descriptor cloud to zero mean and unit std (over all its descriptors and pixels)."""
    mean = d.mean(dim=(0, 2), keepdim=True)
    std = d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((d - mean) / std).flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int = 256, repeats: int = 2,
                       generator: torch.Generator | None = None) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance between the projections of a and b
    (two (N, D) point clouds of the same size)."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein compares two clouds of the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn(directions, a.shape[1], generator=generator)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        # (directions, N): each row sorted along the contiguous axis, which is several times faster on a CPU
        pa, _ = torch.sort(dirs @ a.T, dim=1)
        pb, _ = torch.sort(dirs @ b.T, dim=1)
        total += float((pa - pb).abs().mean())
    return total / repeats


def swd_per_level(real: torch.Tensor, fake: torch.Tensor, *, levels: int | None = None, per_image: int = 64,
                  patch: int = 7, seed: int = 0, max_descriptors: int = 4096) -> list[float]:
    """SWD x 1e3 between real and generated images at each pyramid level, finest level first.

    real, fake: (N, C, H, W) images in [-1, 1], the same N. levels: default down to a 16x16 coarsest level
    (or 4x4 for images smaller than 32). per_image neighbourhoods are drawn from each image, at most
    max_descriptors in all (the paper draws 128 per image from 16,384 images; a smaller cloud keeps the score
    to about a second on a CPU, with more noise: compare scores taken with the same settings).
    """
    if real.shape != fake.shape:
        raise ValueError(f"swd_per_level needs real and fake batches of the same shape; got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    size = real.shape[-1]
    if levels is None:
        levels = max(1, (size // 16).bit_length()) if size >= 32 else max(1, (size // 4).bit_length())
    per_image = max(1, min(per_image, max_descriptors // len(real)))
    generator = torch.Generator().manual_seed(seed)
    out = []
    for level_real, level_fake in zip(laplacian_pyramid(real.cpu(), levels), laplacian_pyramid(fake.cpu(), levels)):
        state = generator.get_state()  # the same neighbourhoods for both sets
        d_real = _normalise(_descriptors(level_real, per_image, patch, generator))
        generator.set_state(state)
        d_fake = _normalise(_descriptors(level_fake, per_image, patch, generator))
        out.append(1e3 * sliced_wasserstein(d_real, d_fake, generator=generator))
    return out
