"""CycleGAN's networks (lesson 05), after Zhu et al. 2017 (arXiv 1703.10593, appendix 7.2).

The generator is Johnson et al.'s ResNet translator: a 7x7 convolution, two stride-2 down-samplings,
residual blocks at the lowest resolution, two up-samplings and a 7x7 convolution to tanh, with
reflection padding (no dark frame at the borders) and instance normalisation (each image normalised
on its own, so one image's style does not leak into another's). The discriminator is a PatchGAN: a
fully convolutional net whose output is a grid of scores, each judging one patch of the input; the
paper's layout sees 70x70-pixel patches. Widths and depths are arguments, so the paper's 256-pixel
setting (width 64, 9 blocks, 3 layers) and the course's 32-pixel one are the same code.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gancourse.models.dcgan import dcgan_init_


def check_image_batch(x, channels: int, *, multiple: int = 1, minimum: int = 1, what: str = "images") -> None:
    """Raise an error naming the expected shape unless x is a float batch (N, channels, H, W) with H and W
    multiples of `multiple` and at least `minimum`."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (N, {channels}, H, W); got {type(x).__name__}.")
    side = f"H and W multiples of {multiple}" if multiple > 1 else "any H and W"
    if x.dim() != 4 or x.shape[1] != channels:
        hint = " (one image? add a batch dimension with x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"{what} must have shape (N, {channels}, H, W) with {side}; got {tuple(x.shape)}{hint}.")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or min(h, w) < minimum:
        raise ValueError(f"{what} must have shape (N, {channels}, H, W) with {side} and at least {minimum} "
                         f"pixels; got {h}x{w}. Resize the images (e.g. load(..., size=32)).")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be float images in [-1, 1]; got dtype {x.dtype}.")


# -- the generator ---------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """x + (pad, conv 3x3, norm, ReLU, pad, conv 3x3, norm)(x): the block can only add a correction,
    so a translation that changes little is easy to learn."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image to image: (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    width: channels of the first layer (64 in the paper); each down-sampling doubles them.
    n_down: stride-2 down-samplings (2 in the paper), so H and W must be multiples of 2**n_down.
    n_blocks: residual blocks at the lowest resolution (9 for 256x256 images, 6 for 128x128).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, width: int = 64, n_down: int = 2,
                 n_blocks: int = 9) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.n_down = in_channels, out_channels, n_down
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7),
                                   nn.InstanceNorm2d(width), nn.ReLU(True)]
        ch = width
        for _ in range(n_down):  # "d128, d256": conv 3x3 stride 2
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(n_blocks)]
        for _ in range(n_down):  # "u128, u64": transposed conv 3x3 stride 2 back up
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)  # N(0, 0.02), as in the authors' code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reflection padding of 3 needs at least 4 pixels at the input
        check_image_batch(x, self.in_channels, multiple=2 ** self.n_down, minimum=4, what="the generator's input")
        return self.net(x)


# -- the discriminator -----------------------------------------------------------------------------
def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Side of the input patch one output unit sees, for convolutions given as (kernel, stride) pairs.

    Walk back from one output pixel: a layer with kernel k and stride s turns a window of r units of
    its output into (r - 1)·s + k units of its input.
    """
    r = 1
    for k, s in reversed(list(layers)):
        r = (r - 1) * s + k
    return r


def patch_layers(n_layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of a PatchGAN's convolutions: n_layers 4x4 stride-2, then two 4x4 stride-1."""
    return [(4, 2)] * n_layers + [(4, 1), (4, 1)]


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2016): (N, in_channels, H, W) -> (N, 1, h, w) scores, one per patch.

    n_layers stride-2 convolutions (3 in the paper: "C64-C128-C256-C512" and a 1-channel output,
    a 70x70 receptive field), LeakyReLU(0.2), instance norm everywhere but the first layer. Scores are
    raw (least-squares GAN), one per patch; the loss averages them.
    in_channels: 3 for CycleGAN; 6 for pix2pix, which judges the (input, output) pair.
    """

    def __init__(self, in_channels: int = 3, *, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        self.in_channels, self.n_layers = in_channels, n_layers
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = width
        for i in range(1, n_layers + 1):
            out = width * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1  # the last hidden layer keeps the resolution
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers += [nn.Conv2d(ch, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)

    @property
    def receptive_field(self) -> int:
        """The patch side each score sees, read off this network's own convolutions."""
        convs = [m for m in self.net if isinstance(m, nn.Conv2d)]
        return receptive_field([(m.kernel_size[0], m.stride[0]) for m in convs])

    @property
    def min_size(self) -> int:
        """The smallest input side that still gives at least one score."""
        convs = [m for m in self.net if isinstance(m, nn.Conv2d)]
        for size in range(1, 4096):
            side = size
            for m in convs:
                side = (side + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
                if side < 1:
                    break
            else:
                return size
        raise AssertionError("unreachable for any sensible layout")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_channels, minimum=self.min_size, what="the discriminator's input")
        return self.net(x)
