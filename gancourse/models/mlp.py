"""Fully connected generator and discriminator (lesson 01): for 2-D points and small flat images."""
from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(sizes: list[int], activation: type[nn.Module], **act_kw) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(fan_in, fan_out), activation(**act_kw)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return layers


class MLPGenerator(nn.Module):
    """G(z): noise of size `z_dim` -> a sample of shape `out_shape` (e.g. (2,) or (1, 16, 16)).

    Images get a tanh output so samples live in [-1, 1] like the data; 2-D points get a linear
    output because the toy mixtures are not bounded.
    """

    def __init__(self, z_dim: int = 16, out_shape=(2,), hidden: int = 256, depth: int = 3,
                 tanh: bool | None = None):
        super().__init__()
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape) if not isinstance(out_shape, int) else (out_shape,)
        out_dim = math.prod(self.out_shape)
        self.tanh = len(self.out_shape) > 1 if tanh is None else tanh
        self.net = nn.Sequential(*_mlp([z_dim] + [hidden] * depth + [out_dim], nn.ReLU))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"G expects z of shape (batch, {self.z_dim}); got {tuple(z.shape)}")
        out = self.net(z)
        if self.tanh:
            out = torch.tanh(out)
        return out.view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x): a sample -> one logit per sample (apply a sigmoid for the probability "real")."""

    def __init__(self, in_shape=(2,), hidden: int = 256, depth: int = 3, slope: float = 0.2):
        super().__init__()
        self.in_shape = tuple(in_shape) if not isinstance(in_shape, int) else (in_shape,)
        in_dim = math.prod(self.in_shape)
        self.net = nn.Sequential(
            nn.Flatten(), *_mlp([in_dim] + [hidden] * depth + [1], nn.LeakyReLU, negative_slope=slope)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"D expects inputs of shape (batch, {', '.join(map(str, self.in_shape))}); "
                             f"got {tuple(x.shape)}")
        return self.net(x).squeeze(1)
