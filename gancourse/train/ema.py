"""An exponential moving average of named networks, with BatchNorm statistics that match it.

Averaging a generator's weights over the last few thousand steps smooths out the oscillation of the
adversarial game and gives better samples than the last weights (Yazici et al. 2019, arXiv
1806.04498; StyleGAN's G_ema). Only trainable weights are averaged. BatchNorm's running statistics
are not: an average of statistics of many past generators describes none of them, so they are
re-measured on the average's own activations when it is sampled ("standing statistics", BigGAN).
Every other buffer (a ProGAN stage and fade-in alpha, a StyleGAN path-length mean) is copied from the
live network at each update, so the average always runs the same architecture as what it averages.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def decay_for_half_life(half_life_images: float, batch_size: int) -> float:
    """The per-step decay whose weights halve every `half_life_images` images (StyleGAN's ema_kimg).

    StyleGAN (Karras et al. 2019) gives the average's horizon in images seen, not steps, so it does
    not change with the batch size: beta = 0.5 ** (batch / half_life). 10k images at batch 32 is 0.9978.
    """
    if not half_life_images > 0:
        raise ValueError(f"the EMA half-life must be a positive number of images; got {half_life_images!r}")
    return 0.5 ** (batch_size / float(half_life_images))


def ramped_decay(half_life_images: float, batch_size: int, images_seen: int, rampup: float | None) -> float:
    """The decay for the next update when the half-life ramps up with training (StyleGAN2-ADA's ema_rampup).

    The half-life is at most `rampup` times the images seen so far, so a short run averages only its own
    recent past and a long one reaches `half_life_images`: one rule that fits every run length.
    """
    if rampup is not None:
        if not rampup > 0:
            raise ValueError(f"the EMA ramp-up must be a positive share of the images seen (0.05); got {rampup!r}")
        half_life_images = min(half_life_images, max(rampup * images_seen, batch_size))
    return decay_for_half_life(half_life_images, batch_size)


def _statistic_buffers(net: nn.Module) -> set[str]:
    """Names of the BatchNorm running-statistic buffers inside `net` (re-measured, never copied)."""
    names = set()
    for prefix, module in net.named_modules():
        if isinstance(module, _BatchNorm):
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                names.add(f"{prefix}.{buffer}" if prefix else buffer)
    return names


class EMA:
    """Moving averages of the networks `names` of a GAN: `ema["G"]` is the averaged copy of G.

    decay: the weight of the old average per update (0.999 spans about the last 1000 steps). The
    first update copies the weights, so the average never mixes in the untrained initialisation.
    """

    def __init__(self, nets: Mapping[str, nn.Module], names: Iterable[str], decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must lie in [0, 1); got {decay!r}")
        self.decay = float(decay)
        self.names = tuple(names)
        missing = [n for n in self.names if n not in nets]
        if missing:
            raise ValueError(f"no network named {missing} to average; this GAN has {sorted(nets)}")
        self.nets: dict[str, nn.Module] = {}
        self._sources: dict[str, nn.Module] = {}
        self._statistics: dict[str, set[str]] = {}
        self.updates = 0
        self.stale = True  # BatchNorm statistics not yet measured for the current average
        self.follow(nets)

    def __getitem__(self, name: str) -> nn.Module:
        return self.nets[name]

    def __contains__(self, name: str) -> bool:
        return name in self.nets

    def follow(self, nets: Mapping[str, nn.Module]) -> None:
        """Track the current network objects. A family that replaces a network (a growth step that
        builds a larger one) keeps the average of every weight whose name and shape survived."""
        for name in self.names:
            source = nets[name]
            if self._sources.get(name) is source:
                continue
            average = copy.deepcopy(source).requires_grad_(False)
            old = self.nets.get(name)
            if old is not None:
                kept = dict(old.named_parameters())
                with torch.no_grad():
                    for key, p in average.named_parameters():
                        if key in kept and kept[key].shape == p.shape:
                            p.copy_(kept[key])
            self.nets[name], self._sources[name] = average, source
            self._statistics[name] = _statistic_buffers(source)

    @torch.no_grad()
    def update(self, nets: Mapping[str, nn.Module], decay: float | None = None) -> None:
        """Move every average toward its live network after an optimiser step (by `decay`, default the
        EMA's own: a ramp-up passes a smaller one early in training)."""
        decay = self.decay if decay is None else float(decay)
        for name in self.names:
            live, average = nets[name], self.nets[name]
            pairs = [(a, p) for a, p in zip(average.parameters(), live.parameters()) if p.requires_grad]
            if pairs:
                avg, cur = zip(*pairs)
                if self.updates == 0:
                    torch._foreach_copy_(avg, cur)
                else:
                    torch._foreach_lerp_(avg, cur, 1.0 - decay)
            skip = self._statistics[name]
            averaged = dict(average.named_buffers())
            for key, buffer in live.named_buffers():
                if key not in skip and key in averaged:
                    averaged[key].copy_(buffer)
        self.updates += 1
        self.stale = True

    def refresh_statistics(self, measure: Callable[[str, nn.Module], int]) -> None:
        """Re-measure BatchNorm statistics of every average with `measure(name, net)` if the weights moved."""
        if not self.stale:
            return
        for name, net in self.nets.items():
            measure(name, net)
        self.stale = False

    def to(self, device) -> "EMA":
        for net in self.nets.values():
            net.to(device)
        return self

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "nets": {name: net.state_dict() for name, net in self.nets.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["nets"]) != set(self.nets):
            raise ValueError(f"the checkpoint averages {sorted(state['nets'])} but this Trainer averages "
                             f"{sorted(self.nets)}; resume with the same ema_nets")
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.updates = state["updates"]
        self.stale = True


@torch.no_grad()
def standing_statistics(net: nn.Module, inputs: Callable[[int, torch.Generator], tuple], *,
                        batches: int = 20, size: int = 256, seed: int = 0) -> int:
    """Re-measure the BatchNorm running statistics of `net` on its own outputs; returns the layer count.

    BigGAN (Brock et al. 2018, arXiv 1809.11096) re-estimates them before sampling: reset every
    BatchNorm layer, run the network in train mode on `batches` batches of fresh inputs
    (`inputs(size, rng)`, e.g. z and labels) and keep the plain average. The global RNG is untouched,
    so calling this never changes a training run.
    """
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    flags = [(m, m.training) for m in net.modules()]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over the batches below
    net.train()
    rng = torch.Generator().manual_seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            for _ in range(batches):
                net(*inputs(size, rng))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m, flag in flags:
            m.train(flag)
    return len(norms)
