"""DCGAN generator and discriminator (lesson 02), after Radford et al. 2015 (arXiv 1511.06434).

The paper's architecture guidelines, all visible below: strided (transposed) convolutions instead of
pooling, BatchNorm in both nets except G's output and D's input, ReLU in G with a tanh output,
LeakyReLU(0.2) in D, no fully connected hidden layers, weights drawn from N(0, 0.02).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

SUPPORTED_SIZES = (16, 32, 64)


# -- output-size arithmetic (lesson 02, "transposed convolution") ---------------------------------
def transposed_conv_output_size(i: int, k: int, s: int, p: int, output_padding: int = 0) -> int:
    """Side length after a ConvTranspose2d: (i - 1)·s - 2p + k + output_padding."""
    _check_arithmetic(i=i, k=k, s=s)
    if p < 0 or not 0 <= output_padding < s:
        raise ValueError(f"need p >= 0 and 0 <= output_padding < s (PyTorch's rule); "
                         f"got p={p}, output_padding={output_padding}, s={s}")
    out = (i - 1) * s - 2 * p + k + output_padding
    if out < 1:  # PyTorch sometimes returns an empty output here; it is never what you want
        raise ValueError(f"a transposed conv with i={i}, k={k}, s={s}, p={p} would output size {out}; "
                         "use less padding or a larger kernel")
    return out


def conv_output_size(i: int, k: int, s: int, p: int) -> int:
    """Side length after a Conv2d: floor((i + 2p - k) / s) + 1, the inverse D uses to mirror G."""
    _check_arithmetic(i=i, k=k, s=s)
    if p < 0 or i + 2 * p < k:
        raise ValueError(f"a conv with kernel {k} does not fit an input of size {i} padded by {p}")
    return (i + 2 * p - k) // s + 1


def _check_arithmetic(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")


# -- initialisation -------------------------------------------------------------------------------
def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN's initialisation, in place: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def _num_doublings(image_size: int) -> int:
    """How many stride-2 layers separate a 4x4 map from `image_size` (32 -> 3: 4, 8, 16, 32)."""
    if isinstance(image_size, bool) or image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size must be one of {SUPPORTED_SIZES}; got {image_size!r}. "
                         "Resize the data to a supported size, e.g. load('digits', size=32).")
    return int(math.log2(image_size)) - 2


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int; got {value!r}")


# -- the networks ---------------------------------------------------------------------------------
def _doubling(kernel: int) -> tuple[int, int]:
    # (padding, output_padding) for which a stride-2 transposed convolution gives exactly 2i from i
    return (kernel - 2 + kernel % 2) // 2, kernel % 2


class DCGANGenerator(nn.Module):
    """G(z): noise (N, z_dim) -> images (N, channels, image_size, image_size) in [-1, 1].

    z is projected to a 4x4 map with `width * image_size / 8` channels; each following
    transposed conv doubles the resolution and halves the channels (32x32: 256 -> 128 -> 64 -> C).
    kernel: the doubling layers' kernel size (4, the even overlap; 5 as in the original DCGAN code, 3);
    padding and output padding are chosen so that every one of them exactly doubles the size.
    """

    def __init__(self, z_dim: int = 100, image_size: int = 32, channels: int = 1, width: int = 64,
                 init: bool = True, kernel: int = 4):
        super().__init__()
        _check_positive(z_dim=z_dim, channels=channels, width=width)
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 2:
            raise ValueError(f"kernel must be an int >= 2 (4 is DCGAN's usual choice); got {kernel!r}")
        self.kernel = kernel
        doublings = _num_doublings(image_size)
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels

        ch = width * 2 ** (doublings - 1)
        blocks = [("project", self._block(z_dim, ch, 4, stride=1, padding=0))]  # 1x1 -> 4x4
        for n in range(1, doublings):
            blocks.append((f"up{n}", self._block(ch, ch // 2, kernel)))
            ch //= 2
        # The output layer: no BatchNorm (it would pin the image statistics), tanh for [-1, 1].
        blocks.append(("to_image", nn.Sequential(nn.ConvTranspose2d(ch, channels, kernel, 2, *_doubling(kernel)),
                                                 nn.Tanh())))
        self.net = nn.Sequential(OrderedDict(blocks))
        if init:
            dcgan_init_(self)

    @staticmethod
    def _block(c_in: int, c_out: int, kernel: int, stride: int = 2, padding: int | None = None) -> nn.Sequential:
        # bias=False: BatchNorm's shift makes a conv bias redundant.
        padding, extra = _doubling(kernel) if padding is None else (padding, 0)
        return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, extra, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4 and z.shape[2:] == (1, 1):  # the (N, z_dim, 1, 1) layout of many DCGAN codes
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G expects z of shape (batch, {self.z_dim}); got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """D(x): images (N, channels, image_size, image_size) -> one logit per image, shape (N,).

    Mirrors G: stride-2 convs halve the resolution and double the channels down to a 4x4 map,
    and a final 4x4 conv reads it out as a single logit (no sigmoid: the losses take logits).
    """

    def __init__(self, image_size: int = 32, channels: int = 1, width: int = 64, init: bool = True):
        super().__init__()
        _check_positive(channels=channels, width=width)
        halvings = _num_doublings(image_size)
        self.image_size, self.channels = image_size, channels

        # The input layer: no BatchNorm, so D sees the real statistics of real and fake batches.
        blocks = [("from_image", nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1),
                                               nn.LeakyReLU(0.2, inplace=True)))]
        ch = width
        for n in range(1, halvings):
            blocks.append((f"down{n}", nn.Sequential(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                                                     nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, inplace=True))))
            ch *= 2
        self.features = nn.Sequential(OrderedDict(blocks))  # -> (N, ch, 4, 4)
        self.feature_channels = ch
        self.logit = nn.Conv2d(ch, 1, 4, 1, 0)  # 4x4 -> 1x1
        if init:
            dcgan_init_(self)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape when `x` is not a batch of D's images."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"D expects images of shape (batch, {', '.join(map(str, expected))}); "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.logit(self.features(x)).flatten()
