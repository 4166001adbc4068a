"""WGAN, WGAN-GP and friends (lesson 04): a critic without BatchNorm, and spectral normalisation.

The training loop is `gancourse.train.AdversarialGAN` with objective="wgan-gp" (or "wgan-clip",
"spectral-norm", ...); this file holds the networks only.

Arjovsky et al. 2017 (arXiv 1701.07875) train a critic f to estimate W1 = sup over 1-Lipschitz f of
E[f(x)] - E[f(G(z))], keeping f Lipschitz by clipping its weights. Gulrajani et al. 2017 (arXiv
1704.00028) penalise the critic's gradient norm instead; the penalty is per sample, so the critic
must not mix samples: no BatchNorm, LayerNorm or nothing. Miyato et al. 2018 (arXiv 1802.05957)
divide each layer's weight by its largest singular value instead.

For the 2-D toy sets `MLPDiscriminator` (gancourse.models.mlp) already is a valid critic: no
normalisation and no sigmoid, one raw score per sample.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gancourse.models.dcgan import _check_positive, _num_doublings, dcgan_init_

CRITIC_NORMS = ("layer", "none")


class DCGANCritic(nn.Module):
    """f(x): images (N, channels, image_size, image_size) -> one unbounded score per image, shape (N,).

    DCGANDiscriminator's conv stack with its BatchNorm replaced: norm="layer" puts a layer norm
    over (C, H, W) with a per-channel scale and shift (nn.GroupNorm with one group, the layer norm
    of Gulrajani et al.'s critic) after every hidden stride-2 conv; norm="none" uses no
    normalisation (for weight clipping or spectral norm). Either way each score depends on its own
    image only, which the gradient penalty needs.
    """

    def __init__(self, image_size: int = 32, channels: int = 1, width: int = 64, norm: str = "layer",
                 init: bool = True):
        super().__init__()
        _check_positive(channels=channels, width=width)
        if norm not in CRITIC_NORMS:
            raise ValueError(f"norm must be one of {CRITIC_NORMS} (a critic takes no BatchNorm); got {norm!r}")
        halvings = _num_doublings(image_size)
        self.image_size, self.channels, self.norm = image_size, channels, norm

        blocks = [("from_image", nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1),
                                               nn.LeakyReLU(0.2, inplace=True)))]
        ch = width
        for n in range(1, halvings):
            if norm == "layer":  # the norm's shift makes a conv bias redundant
                layers = [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.GroupNorm(1, ch * 2)]
            else:
                layers = [nn.Conv2d(ch, ch * 2, 4, 2, 1)]
            blocks.append((f"down{n}", nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))))
            ch *= 2
        self.features = nn.Sequential(OrderedDict(blocks))  # -> (N, ch, 4, 4)
        self.feature_channels = ch
        self.score = nn.Conv2d(ch, 1, 4, 1, 0)  # 4x4 -> 1x1, no sigmoid
        if init:
            dcgan_init_(self)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the expected shape when `x` is not a batch of the critic's images."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"the critic expects images of shape (batch, {', '.join(map(str, expected))}); "
                             f"got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.score(self.features(x)).flatten()


def spectral_normalize(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectrally normalise every Linear, Conv2d and ConvTranspose2d weight of `module`, in place.

    Each weight W is used as W / sigma(W), sigma estimated by power iteration, one step per forward
    pass in train mode (Miyato et al. 2018), so every layer is 1-Lipschitz as a matrix. Layers
    already normalised are left alone; returns the module.
    """
    for m in list(module.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, n_power_iterations=n_power_iterations)
    return module
