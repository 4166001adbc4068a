"""Conditional DCGAN (lesson 03): G(z, y) and D(x, y) after Mirza & Osindero 2014 (arXiv 1411.1784).

G reads the class label as a one-hot (or learned embedding) vector concatenated to z. D reads it
either as one-hot feature maps stacked onto the image ("concat", Mirza & Osindero's form) or through
a class embedding projected onto its last features ("projection", Miyato & Koyama 2018).
The training loop is `gancourse.train.AdversarialGAN`, which passes labels to both networks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.models.dcgan import DCGANDiscriminator, DCGANGenerator

DISCRIMINATOR_MODES = ("concat", "projection")


def check_labels(y, num_classes: int, batch: int, device: torch.device | None = None) -> torch.Tensor:
    """Return `y` as a long tensor (batch,) on `device`, or raise a ValueError saying what is wrong."""
    if not torch.is_tensor(y):
        raise ValueError(f"labels must be a tensor of class indices, e.g. torch.tensor([3, 1, 4]); "
                         f"got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        hint = " (looks one-hot: pass y.argmax(1))" if y.dim() == 2 else ""
        raise ValueError(f"labels must be integer class indices (torch.long); got dtype {y.dtype}{hint}")
    if y.shape != (batch,):
        hint = "; pass class indices, not one-hot vectors (y.argmax(1))" if y.dim() == 2 else ""
        raise ValueError(f"labels must have shape ({batch},), one per sample; got {tuple(y.shape)}{hint}")
    if y.numel() == 0:
        return y.to(device=device, dtype=torch.long)
    low, high = y.aminmax()
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1} for {num_classes} classes; "
                         f"got values from {int(low)} to {int(high)}")
    return y.to(device=device, dtype=torch.long)


class ConditionalDCGANGenerator(nn.Module):
    """G(z, y): noise (N, z_dim) and class indices (N,) -> images of class y in [-1, 1].

    The label becomes a one-hot vector (or an `embed_dim`-sized learned embedding), is appended
    to z, and a DCGAN generator with a wider input turns the pair into an image.
    """

    def __init__(self, z_dim: int = 100, num_classes: int = 10, image_size: int = 32, channels: int = 1,
                 width: int = 64, embed_dim: int | None = None, init: bool = True):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
        if embed_dim is not None and (not isinstance(embed_dim, int) or embed_dim < 1):
            raise ValueError(f"embed_dim must be a positive int or None (one-hot); got {embed_dim!r}")
        self.z_dim, self.num_classes = z_dim, num_classes
        # nn.Embedding's default N(0, 1) keeps the label on the same scale as z and a one-hot.
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim is not None else None
        label_dim = embed_dim if embed_dim is not None else num_classes
        self.net = DCGANGenerator(z_dim + label_dim, image_size, channels, width, init=init)
        self.image_size, self.channels = image_size, channels

    def encode_labels(self, y: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Class indices (N,) -> the vectors appended to z: one-hot (N, C) or embeddings (N, embed_dim)."""
        if self.embed is not None:
            return self.embed(y).to(dtype)
        return F.one_hot(y, self.num_classes).to(dtype)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G expects z of shape (batch, {self.z_dim}); got {tuple(z.shape)}")
        y = check_labels(y, self.num_classes, z.shape[0], z.device)
        return self.net(torch.cat([z, self.encode_labels(y, z.dtype)], dim=1))


class ConditionalDCGANDiscriminator(nn.Module):
    """D(x, y): images (N, C, H, W) and class indices (N,) -> one logit per pair, shape (N,).

    mode="concat": y as C one-hot planes stacked onto the image, so every layer can use it.
    mode="projection": logit = psi(phi(x)) + <V[y], phi(x)>, where phi(x) is D's last 4x4 feature
    map and psi its final conv; V[y] acts as an extra, class-specific final filter.
    """

    def __init__(self, num_classes: int = 10, image_size: int = 32, channels: int = 1, width: int = 64,
                 mode: str = "concat", init: bool = True):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
        if mode not in DISCRIMINATOR_MODES:
            raise ValueError(f"mode must be one of {DISCRIMINATOR_MODES}; got {mode!r}")
        self.num_classes, self.mode = num_classes, mode
        self.image_size, self.channels = image_size, channels
        extra = num_classes if mode == "concat" else 0
        self.body = DCGANDiscriminator(image_size, channels + extra, width, init=init)
        if mode == "projection":
            self.embed = nn.Embedding(num_classes, self.body.feature_channels * 4 * 4)
            # Same scale as the final conv's weights it sits beside; N(0, 1) would swamp the logit.
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"D expects images of shape (batch, {', '.join(map(str, expected))}); "
                             f"got {tuple(x.shape)}")
        y = check_labels(y, self.num_classes, x.shape[0], x.device)
        if self.mode == "concat":
            planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[2:])], dim=1)
            return self.body.logit(self.body.features(x)).flatten()
        h = self.body.features(x)
        return self.body.logit(h).flatten() + (self.embed(y) * h.flatten(1)).sum(dim=1)
