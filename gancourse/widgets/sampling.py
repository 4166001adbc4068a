"""Where a widget's pictures come from, through the library's one sampling contract.

A widget takes a Trainer (its EMA generators, BatchNorm statistics re-measured), a GAN (optionally
with `net=`, e.g. `trainer.ema["G"]`) or a bare generator module. `resolve` checks it once, when the
widget is built; `sample` draws every picture through `Trainer.sample` / `GAN.generate`, or for a
bare module through `sampling_mode`, so widgets, the dashboard and the Trainer all sample the same way
(eval mode, no gradients, RNG and train/eval flags untouched).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gancourse.train.gan import first_device, sampling_mode
from gancourse.widgets import plots
from gancourse.widgets.view import _check_count


@dataclass(frozen=True)
class Source:
    """A checked picture source: a Trainer, a GAN or a module (`origin`), the net it runs, z's size."""

    origin: Any
    net: nn.Module
    z_dim: int
    num_classes: int | None = None


def resolve(source: Any, net: nn.Module | None = None, *, z_dim: int | None = None,
            num_classes: int | None = None) -> Source:
    """Check a Trainer, a GAN or a generator module up front, so a mistake is named before anything is drawn.

    `net` (e.g. trainer.ema["G"]) replaces a GAN's own generator; `num_classes`, when given, must
    match what a conditional generator was built for.
    """
    gan = getattr(source, "gan", None) if _is_trainer(source) else source
    if _is_trainer(source) and net is not None:
        raise TypeError("a Trainer samples its own (EMA) generator; pass net= with a GAN, not a Trainer")
    if net is not None and not isinstance(net, nn.Module):
        raise TypeError(f"net must be an nn.Module (e.g. trainer.ema['G']); got {type(net).__name__}")
    if isinstance(source, nn.Module):
        gan, runs = None, source if net is None else net
    elif isinstance(getattr(gan, "generator", None), nn.Module):
        runs = net if net is not None else gan.generator
    else:
        raise TypeError(f"expected a Trainer, a GAN or a generator network (nn.Module); got "
                        f"{type(source).__name__}. Pass e.g. trainer, gan or gan.generator.")
    found_classes = getattr(runs, "num_classes", None) or getattr(gan, "num_classes", None)
    if num_classes is not None and found_classes is not None and int(found_classes) != num_classes:
        raise ValueError(f"num_classes={num_classes} but the generator was built for {found_classes} classes; "
                         f"pass num_classes={found_classes}")
    return Source(source, runs, _z_dim_of(runs, gan, z_dim), found_classes)


def sample(source: Source, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images G(z), or G(z, y) given labels, as (N, C, H, W) CPU tensors in [-1, 1], in display mode."""
    inputs = {} if labels is None else {"labels": labels}
    origin = source.origin
    if _is_trainer(origin):
        out = origin.sample(len(z), z=z, **inputs)
    elif not isinstance(origin, nn.Module):
        out = origin.generate(len(z), z=z, net=source.net, **inputs)
    else:
        with sampling_mode(source.net) as net:
            device = first_device(net)
            out = net(z.to(device), *([labels.to(device)] if labels is not None else []))
    return _as_images(out.float().cpu())


def _is_trainer(source: Any) -> bool:
    return hasattr(source, "gan") and callable(getattr(source, "sample", None))


def _z_dim_of(net: nn.Module, gan: Any, z_dim: int | None) -> int:
    found = getattr(net, "z_dim", None)
    if found is None and gan is not None:
        found = getattr(gan, "z_dim", None)
    if z_dim is not None:
        _check_count("z_dim", z_dim)
        if found is not None and int(found) != z_dim:
            raise ValueError(f"z_dim={z_dim} but the generator expects z_dim={found}; leave z_dim=None")
        return z_dim
    if found is None:
        raise ValueError("cannot tell the generator's latent size: it has no .z_dim attribute; pass z_dim=... "
                         "(a generator without z, such as a CycleGAN's, has no latent space to explore)")
    return int(found)


def _as_images(output: Any) -> torch.Tensor:
    kind, x = plots.as_samples(output, None)
    if kind != "images":
        raise ValueError(f"these widgets show images, but the generator returned points of shape "
                         f"{tuple(x.shape)}; use plot_samples for 2-D data")
    return x
