"""The `GAN` base class: what a family owns (networks, optimisers, schedulers) and the sampling contract.

A family implements `train_step(ctx)` (one update of everything) and, where its generator needs more
than noise, `generator_inputs`. The Trainer owns everything else (device, precision, budget, EMA,
checkpoints). `AdversarialGAN` (train/adversarial.py) is the one step of the G-versus-D families of
lessons 01-04; CycleGAN, ProGAN and StyleGAN subclass `GAN` the same way.

Sampling contract: `gan.generate(n, rng=..., net=..., **inputs)` is the only way the library runs a
generator for a picture, a metric or a widget. It runs in *display mode* (`sampling_mode`): every
module in eval mode (BatchNorm uses its running statistics, dropout is off), no gradients, no
autocast, and the global RNG untouched when `rng` is given; train/eval flags are restored afterwards.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def sampling_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Display mode for `net`: eval mode, no gradients, fp32, RNG state kept; flags restored after."""
    flags = [(module, module.training) for module in net.modules()]
    device = first_device(net)
    kind = device.type if device.type in ("cpu", "cuda") else "cpu"
    net.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad(), \
                torch.autocast(kind, enabled=False):
            yield net
    finally:
        for module, flag in flags:  # parents first, so each child ends with its own flag
            module.train(flag)


def as_rng(rng: torch.Generator | int | None) -> torch.Generator:
    """A CPU generator: `rng` itself, one seeded with the int `rng`, or (None) one seeded from the
    global RNG, so that repeated unseeded calls give new samples and seeded runs still repeat."""
    if isinstance(rng, torch.Generator):
        return rng
    if rng is None:
        rng = int(torch.randint(2**62, (1,)))
    if isinstance(rng, bool) or not isinstance(rng, int):
        raise TypeError(f"rng must be an int seed, a torch.Generator or None; got {type(rng).__name__}")
    return torch.Generator().manual_seed(rng)


def first_device(net: nn.Module) -> torch.device:
    for tensor in (*net.parameters(), *net.buffers()):
        return tensor.device
    return torch.device("cpu")


class GAN:
    """Base class: networks in `self.nets`, optimisers in `self.opts`, one step in `train_step`.

    generator_names: the networks that make samples; the Trainer's EMA averages these. The first
    one is `self.generator`. A family without z (CycleGAN) overrides `generator_inputs`.
    schedulers: learning-rate schedulers by name; the Trainer steps each after every training step
    and they are saved in checkpoints.
    """

    generator_names: tuple[str, ...] = ("G",)

    def __init__(self):
        self.nets: dict[str, nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}

    # -- the part a family writes -------------------------------------------------------------
    def train_step(self, ctx) -> dict[str, torch.Tensor | float]:
        """Update the networks once; return scalar metrics ("loss_D", "loss_G", "D_real", "D_fake")."""
        raise NotImplementedError

    def schedule(self, ctx) -> None:
        """Called before every step: change learning rates, grow networks, fade layers in (ctx.fraction)."""

    def generator_inputs(self, n: int, *, rng: torch.Generator, device: torch.device, data=None,
                         z: torch.Tensor | None = None) -> tuple:
        """The arguments of one generator call for n samples: here (z,), with z ~ N(0, I) from `rng`
        unless given. `data` is the training data (families that translate images draw sources from it)."""
        if z is None:
            return (self.sample_z(n, device=device, generator=rng),)
        return (_check_codes(z, n, self.z_dim).to(device),)

    def sampling_inputs(self, name: str) -> dict:
        """Inputs that make `generator_inputs` feed the generator `name` (e.g. a CycleGAN direction)."""
        return {}

    def extra_state(self) -> dict:
        """Anything beyond weights, optimisers and schedulers that a resume needs (an image pool, a stage)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # -- sampling ---------------------------------------------------------------------------------
    def generate(self, n: int | None = None, *, rng: torch.Generator | int | None = None,
                 net: nn.Module | Mapping[str, nn.Module] | None = None, **inputs) -> torch.Tensor:
        """n samples in display mode, on the generator's device.

        rng: an int seed or a torch.Generator for repeatable samples (the global RNG is not touched);
            None draws new samples every call.
        net: the generator to run instead of the live one, e.g. an EMA copy (a module, or a mapping
            from generator names to modules such as `trainer.ema.nets`).
        inputs: what this family's generator needs besides noise: `z` (codes, (n, z_dim)), `labels`
            (a conditional GAN), `data` (the set to draw sources from), ...; see `generator_inputs`.
        """
        g = self._sampling_net(net, self.generator_name(inputs))
        rng = as_rng(rng)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive int (how many samples); got {n!r}")
        if n is None:
            given = next((inputs[k] for k in ("z", "source") if inputs.get(k) is not None), None)
            if given is None:
                raise ValueError("generate() needs n, or inputs that fix it (such as z=... or source=...)")
            n = len(given)
        with sampling_mode(g):
            return g(*self.generator_inputs(n, rng=rng, device=first_device(g), **inputs))

    def generator_name(self, inputs: Mapping) -> str:
        """Which of `generator_names` a `generate` call with these inputs runs (CycleGAN: by direction)."""
        return self.generator_names[0]

    def _sampling_net(self, net, name: str | None = None) -> nn.Module:
        name = name or self.generator_names[0]
        if net is None:
            return self.nets[name]
        if isinstance(net, nn.Module):
            return net
        if isinstance(net, Mapping):
            return net.get(name, self.nets[name])
        raise TypeError(f"net must be a generator module or a mapping of generator names to modules "
                        f"(e.g. trainer.ema.nets); got {type(net).__name__}")

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latent codes z ~ N(0, I); from `generator` (a CPU generator: the same z on every device)
        or else the global RNG on `device`."""
        device = device or self.device
        if generator is not None:
            return torch.randn(n, self.z_dim, generator=generator).to(device)
        return torch.randn(n, self.z_dim, device=device)

    # -- shared plumbing ----------------------------------------------------------------------
    @property
    def generator(self) -> nn.Module:
        return self.nets[self.generator_names[0]]

    @property
    def z_dim(self) -> int | None:
        """The latent size of the generator, or None for a family without z."""
        return getattr(self.generator, "z_dim", None)

    @property
    def device(self) -> torch.device:
        return first_device(self.generator)

    def to(self, device=None, memory_format=None) -> "GAN":
        for net in self.nets.values():
            net.to(device)
            if memory_format is not None:
                net.to(memory_format=memory_format)
        for opt in self.opts.values():  # optimiser state created before the move follows it
            for state in opt.state.values():
                for key, value in state.items():
                    if torch.is_tensor(value) and key != "step":
                        state[key] = value.to(device)
        return self

    def state_dict(self) -> dict:
        return {"nets": {k: v.state_dict() for k, v in self.nets.items()},
                "opts": {k: v.state_dict() for k, v in self.opts.items()},
                "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for key, mine in (("nets", self.nets), ("opts", self.opts), ("schedulers", self.schedulers)):
            theirs = state.get(key, {})
            if set(mine) != set(theirs):
                raise ValueError(f"the checkpoint's {key} {sorted(theirs)} do not match this GAN's {sorted(mine)}; "
                                 "resume with the same kind of GAN it was trained with")
        self.load_extra_state(state.get("extra", {}))  # may rebuild networks first (a growth stage)
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(state["opts"][k])
        for k, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][k])


def _check_codes(z, n: int, z_dim: int | None) -> torch.Tensor:
    """Latent codes given by the caller: a float tensor (n, z_dim)."""
    if z_dim is None:
        raise ValueError("this generator takes no z; leave z out")
    z = torch.as_tensor(z)
    if z.dim() == 1:
        z = z.unsqueeze(0)
    if z.shape != (n, z_dim) or not z.is_floating_point():
        raise ValueError(f"z must be a float tensor of shape ({n}, {z_dim}); got {tuple(z.shape)} {z.dtype}")
    return z.float()


@contextmanager
def frozen(net: nn.Module):
    """Switch off gradients for `net`'s trainable weights for a while (a user's frozen layers stay frozen)."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield net
    finally:
        for p in params:
            p.requires_grad_(True)
