"""Running a generator for display: which network to run, its latent size, and images from codes.

Widgets call `resolve` once, when they are built, and `sample` for every picture; none of them
runs a network itself, so how a generator is run for display is decided here alone.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gancourse.widgets import plots
from gancourse.widgets.view import _check_count


@dataclass(frozen=True)
class Source:
    """Where a widget's pictures come from: the network to run, the GAN it came from (or None), z's size."""

    net: nn.Module
    gan: Any
    z_dim: int


def resolve(source: Any, generator_net: nn.Module | None = None, *, z_dim: int | None = None,
            num_classes: int | None = None) -> Source:
    """Check a GAN or a generator module up front, so a mistake is named before anything is drawn.

    `generator_net` (e.g. trainer.ema.module) replaces the GAN's own generator; `num_classes`, when
    given, must match what a conditional generator was built for.
    """
    net, gan = _resolve_generator(source, generator_net)
    if num_classes is not None:
        _check_num_classes(net, gan, num_classes)
    return Source(net, gan, _z_dim_of(net, gan, z_dim))


def sample(source: Source, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images G(z), or G(z, y) given labels, as (N, C, H, W) CPU tensors in [-1, 1].

    Runs in eval mode without gradients, leaving the RNG and every train/eval flag as they were.
    """
    return _generate(source.net, z, labels)


# ---------------------------------------------------------------------------------------------
# the generator behind a widget


def _unwrap(net: nn.Module) -> nn.Module:
    """The network inside an EMA wrapper (torch.optim.swa_utils.AveragedModel keeps it in .module)."""
    inner = getattr(net, "module", None)
    return inner if isinstance(inner, nn.Module) else net


def _resolve_generator(source: Any, generator_net: nn.Module | None) -> tuple[nn.Module, Any]:
    """(network to run, the GAN it came from or None) from a GAN, a module, or generator_net."""
    gan = None
    if not isinstance(source, nn.Module) and isinstance(getattr(source, "generator", None), nn.Module):
        gan = source
    elif not isinstance(source, nn.Module):
        raise TypeError(f"expected a generator network (nn.Module) or a GAN with a .generator; got "
                        f"{type(source).__name__}. Pass e.g. gan, gan.generator or trainer.ema.module.")
    if generator_net is not None:
        if not isinstance(generator_net, nn.Module):
            raise TypeError(f"generator_net must be an nn.Module (e.g. trainer.ema.module); "
                            f"got {type(generator_net).__name__}")
        return generator_net, gan
    return (gan.generator if gan is not None else source), gan


def _z_dim_of(net: nn.Module, gan: Any, z_dim: int | None) -> int:
    found = getattr(_unwrap(net), "z_dim", None)
    if found is None and gan is not None:
        found = getattr(gan, "z_dim", None)
    if z_dim is not None:
        _check_count("z_dim", z_dim)
        if found is not None and int(found) != z_dim:
            raise ValueError(f"z_dim={z_dim} but the generator expects z_dim={found}; leave z_dim=None")
        return z_dim
    if found is None:
        raise ValueError("cannot tell the generator's latent size: it has no .z_dim attribute; pass z_dim=...")
    return int(found)


def _check_num_classes(net: nn.Module, gan: Any, num_classes: int) -> None:
    found = getattr(_unwrap(net), "num_classes", None)
    if found is None and gan is not None:
        found = getattr(gan, "num_classes", None)
    if found is not None and int(found) != num_classes:
        raise ValueError(f"num_classes={num_classes} but the generator was built for {found} classes; "
                         f"pass num_classes={found}")


# ---------------------------------------------------------------------------------------------
# running it


def _device_of(net: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*net.parameters(), *net.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


@contextmanager
def inference(net: nn.Module) -> Iterator[tuple[torch.device, torch.dtype]]:
    """Eval mode, no gradients, RNG untouched; every submodule's train/eval flag restored afterwards."""
    flags = [(module, module.training) for module in net.modules()]
    device, dtype = _device_of(net)
    net.eval()
    try:
        with plots.preserved_rng(device), torch.no_grad():
            yield device, dtype
    finally:
        for module, flag in flags:  # parents first, so each child ends with its own flag
            module.train(flag)


def _as_images(output: Any) -> torch.Tensor:
    kind, x = plots.as_samples(output, None)
    if kind != "images":
        raise ValueError(f"these widgets show images, but the generator returned points of shape "
                         f"{tuple(x.shape)}; use plot_samples for 2-D data")
    return x


def _generate(net: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(z) or G(z, y) on the network's device, returned as CPU images."""
    with inference(net) as (device, dtype):
        z = z.to(device=device, dtype=dtype)
        out = net(z) if labels is None else net(z, labels.to(device))
    return _as_images(out)
