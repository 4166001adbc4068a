"""ProGAN's networks (lesson 06), after Karras et al. 2017 (arXiv 1710.10196).

Both networks are built at full depth from the start, one block per resolution from 4x4 up to
`final_size`, and grow by two buffers, `stage` (which resolution is the top one now: 0 is 4x4) and
`alpha` (how far the top block is faded in). Nothing is swapped during training, so an EMA copy and a
checkpoint follow the growth by copying buffers. Outside, every image is `final_size` pixels: G returns
its current resolution nearest-up-sampled, and D average-pools its input down to the current resolution
(which undoes that up-sampling exactly).

The paper's three tricks, each a small module below:
- equalized learning rate: weights drawn from N(0, 1) and multiplied by the He constant sqrt(2 / fan_in) at
  every forward pass (sec. 4.1), so Adam, which normalises each weight's step, moves every layer at the
  same relative speed;
- pixelwise feature normalisation in G: each pixel's feature vector scaled to unit average square (sec. 4.2);
- minibatch standard deviation in D: the spread of features within a group of samples, appended as one
  more feature map, so D can see a batch with too little variety (sec. 3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_FINAL_SIZE = 8


# -- equalized learning rate ---------------------------------------------------------------------------
class EqualizedConv2d(nn.Module):
    """A convolution whose weights are N(0, 1) and scaled by gain / sqrt(fan_in) at every forward pass.

    The scale is not folded into the initial weights: a gradient step then changes each weight by about
    the learning rate whatever the layer's fan-in, and the run-time scale turns that into the same
    relative change in every layer.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, padding: int = 0, gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in}, {c_out}, kernel={k}, padding={self.padding}, scale={self.scale:.4f}"


class EqualizedLinear(nn.Module):
    """A linear layer with the same run-time scaling; `lr_multiplier` also slows it down (StyleGAN's mapping
    network uses 0.01): weights are drawn N(0, 1/m^2) and scaled by m at run time, biases too."""

    def __init__(self, d_in: int, d_out: int, gain: float = math.sqrt(2), lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.scale = gain / math.sqrt(d_in) * lr_multiplier
        self.lr_multiplier = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_multiplier)


# -- G's normalisation and D's variety signal -----------------------------------------------------------
class PixelNorm(nn.Module):
    """b = a / sqrt(mean over channels of a^2 + eps) at every pixel (eq. 1 of the paper, eps = 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the average standard deviation of the features within a group of samples.

    The batch is cut into groups of `group_size` consecutive samples; for each group, the standard
    deviation of every feature at every pixel is taken over the group's samples, averaged into one number,
    and given to each member of the group as a constant extra channel. A collapsed generator makes groups
    with a small spread, which D can then see. When the batch is not a multiple of the group size, the
    remainder forms a smaller group (a remainder of one sample joins the group before it). A batch smaller
    than the group size is an error: the statistic would change meaning with the batch.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
            raise ValueError(f"group_size must be an int >= 2 (a spread needs two samples); got {group_size!r}")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n < self.group_size:
            raise ValueError(f"a batch of {n} is smaller than the minibatch-stddev group size {self.group_size}; "
                             f"use a batch of at least {self.group_size} or MinibatchStdDev(group_size={max(n, 2)})")
        g = self.group_size
        if n % g == 0:  # the common case, vectorised: (groups, g, C, H, W) -> std over g
            spread = x.view(n // g, g, *x.shape[1:]).std(dim=1, unbiased=False).mean(dim=(1, 2, 3))
            per_sample = spread.repeat_interleave(g)
        else:
            sizes = [g] * (n // g)
            rest = n - sum(sizes)
            if rest == 1:
                sizes[-1] += 1
            elif rest:
                sizes.append(rest)
            spread = torch.stack([part.std(dim=0, unbiased=False).mean() for part in x.split(sizes)])
            per_sample = spread.repeat_interleave(torch.tensor(sizes, device=x.device))
        extra = per_sample.view(n, 1, 1, 1).expand(n, 1, *x.shape[2:]).to(x.dtype)
        return torch.cat([x, extra], dim=1)


# -- the growing networks --------------------------------------------------------------------------------
def check_final_size(final_size) -> int:
    """A power of two, at least 8: the networks double the resolution from 4x4."""
    if isinstance(final_size, bool) or not isinstance(final_size, int) or final_size < MIN_FINAL_SIZE \
            or final_size & (final_size - 1):
        raise ValueError(f"final_size must be a power of two and at least {MIN_FINAL_SIZE} (the networks double "
                         f"from 4x4: 8, 16, 32, 64, ...); got {final_size!r}")
    return final_size


def check_image_input(x: torch.Tensor, channels: int, size: int) -> None:
    """A discriminator's input must be (N, channels, size, size); say so, with what came instead."""
    if x.dim() != 4 or x.shape[1] != channels or x.shape[-2:] != (size, size):
        raise ValueError(f"D takes images of shape (N, {channels}, {size}, {size}); got {tuple(x.shape)}")


def channels_at(resolution: int, width: int, max_channels: int) -> int:
    """Feature maps at a resolution: `width` at 32x32, doubling per halving, capped at `max_channels`."""
    return min(max_channels, max(8, width * 32 // resolution))


class _Growing(nn.Module):
    """The `stage` and `alpha` buffers and the rules both networks share."""

    def _init_growth(self, final_size: int) -> None:
        self.final_size = check_final_size(final_size)
        self.num_stages = int(math.log2(final_size)) - 1  # 4, 8, ..., final_size
        self.register_buffer("stage", torch.tensor(0))
        self.register_buffer("alpha", torch.tensor(1.0))

    @property
    def resolution(self) -> int:
        return 4 * 2 ** int(self.stage)

    def grow(self, stage: int, alpha: float = 1.0) -> None:
        """Show resolution 4 * 2**stage, its top block faded in by alpha (0: the previous stage's output)."""
        if not 0 <= int(stage) < self.num_stages:
            raise ValueError(f"stage must be in [0, {self.num_stages - 1}] for final size {self.final_size}; got {stage}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
        self.stage.fill_(int(stage))
        self.alpha.fill_(1.0 if int(stage) == 0 else float(alpha))


class ProGenerator(_Growing):
    """z (N, z_dim) -> images (N, channels, final_size, final_size) in [-1, 1] (no tanh: the paper's G is linear
    at the output; values are clamped only for display), drawn at the current stage's resolution.

    width: feature maps at 32x32 (doubling at each lower resolution up to max_channels).
    """

    def __init__(self, z_dim: int = 128, final_size: int = 32, channels: int = 3, *, width: int = 64,
                 max_channels: int = 256) -> None:
        super().__init__()
        self._init_growth(final_size)
        self.z_dim, self.channels = z_dim, channels
        resolutions = [4 * 2 ** i for i in range(self.num_stages)]
        ch = [channels_at(r, width, max_channels) for r in resolutions]
        act = lambda: nn.LeakyReLU(0.2)
        first = nn.Sequential(PixelNorm(), _ToFour(z_dim, ch[0]), act(), PixelNorm(),
                              EqualizedConv2d(ch[0], ch[0], 3, padding=1), act(), PixelNorm())
        self.blocks = nn.ModuleList([first] + [
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                          EqualizedConv2d(ch[i - 1], ch[i], 3, padding=1), act(), PixelNorm(),
                          EqualizedConv2d(ch[i], ch[i], 3, padding=1), act(), PixelNorm())
            for i in range(1, self.num_stages)])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}); got {tuple(z.shape)}")
        stage, alpha = int(self.stage), self.alpha
        h = z
        for i in range(stage + 1):
            previous, h = h, self.blocks[i](h)
        image = self.to_rgb[stage](h)
        if stage > 0 and float(alpha) < 1.0:  # fade in: blend with the previous stage's picture, up-sampled
            low = F.interpolate(self.to_rgb[stage - 1](previous), scale_factor=2, mode="nearest")
            image = torch.lerp(low, image, alpha.to(image.dtype))
        return F.interpolate(image, size=self.final_size, mode="nearest") if image.shape[-1] != self.final_size else image


class _ToFour(nn.Module):
    """z (N, z_dim) -> a 4x4 map: a linear layer to 16 pixels (a 4x4 transposed convolution of a 1x1 map)."""

    def __init__(self, z_dim: int, c_out: int) -> None:
        super().__init__()
        self.linear = EqualizedLinear(z_dim, c_out * 16, gain=math.sqrt(2) / 4)  # the paper's code: gain/4 here
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, self.c_out, 4, 4)


class ProDiscriminator(_Growing):
    """Images (N, channels, final_size, final_size) -> one score per image (a WGAN critic: no sigmoid).

    The input is average-pooled to the current resolution, read by that resolution's fromRGB, and passed
    down through the blocks; during a fade-in the previous resolution's path (pool, its fromRGB) is blended
    in. The last block holds the minibatch standard deviation layer (groups of `group_size`).
    """

    def __init__(self, final_size: int = 32, channels: int = 3, *, width: int = 64, max_channels: int = 256,
                 group_size: int = 4) -> None:
        super().__init__()
        self._init_growth(final_size)
        self.channels = channels
        resolutions = [4 * 2 ** i for i in range(self.num_stages)]
        ch = [channels_at(r, width, max_channels) for r in resolutions]
        act = lambda: nn.LeakyReLU(0.2)
        self.mbstd = MinibatchStdDev(group_size)
        last = nn.Sequential(self.mbstd, EqualizedConv2d(ch[0] + 1, ch[0], 3, padding=1), act(),
                             EqualizedConv2d(ch[0], ch[0], 4), act(), nn.Flatten(),
                             EqualizedLinear(ch[0], 1, gain=1.0))
        self.blocks = nn.ModuleList([last] + [
            nn.Sequential(EqualizedConv2d(ch[i], ch[i], 3, padding=1), act(),
                          EqualizedConv2d(ch[i], ch[i - 1], 3, padding=1), act(), nn.AvgPool2d(2))
            for i in range(1, self.num_stages)])
        self.from_rgb = nn.ModuleList([nn.Sequential(EqualizedConv2d(channels, c, 1), act()) for c in ch])

    @property
    def group_size(self) -> int:
        return self.mbstd.group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(x, self.channels, self.final_size)
        stage, alpha = int(self.stage), self.alpha
        x = F.avg_pool2d(x, self.final_size // self.resolution) if self.resolution < self.final_size else x
        h = self.from_rgb[stage](x)
        for i in range(stage, -1, -1):
            h = self.blocks[i](h)
            if i == stage > 0 and float(alpha) < 1.0:  # fade in: blend with the previous resolution's path
                low = self.from_rgb[stage - 1](F.avg_pool2d(x, 2))
                h = torch.lerp(low, h, alpha.to(h.dtype))
        return h.flatten()
