"""What one training step does, per GAN family.

A `GAN` owns its networks and optimisers and implements `train_step(ctx)`. The Trainer owns
everything else (device, precision, budget, EMA, checkpoints). Later families fit the same mould:
CycleGAN keeps four networks in `nets`, ProGAN grows its networks in `schedule(ctx)`, StyleGAN runs a
regulariser when `ctx.step % every == 0`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

from gancourse import losses


class GAN:
    """Base class: networks in `self.nets`, optimisers in `self.opts`, one step in `train_step`."""

    generator_name = "G"

    def __init__(self):
        self.nets: dict[str, nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}

    # -- the part a family writes -------------------------------------------------------------
    def train_step(self, ctx) -> dict[str, torch.Tensor | float]:
        """Update the networks once; return scalar metrics ("loss_D", "loss_G", "D_real", "D_fake")."""
        raise NotImplementedError

    def schedule(self, ctx) -> None:
        """Called before every step: change learning rates, grow networks, fade layers in."""

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        device = device or self.device
        if generator is not None:  # a seeded CPU generator gives the same z on every device
            return torch.randn(n, self.z_dim, generator=generator).to(device)
        return torch.randn(n, self.z_dim, device=device)

    def generate(self, n: int, generator_net: nn.Module | None = None,
                 rng: torch.Generator | None = None) -> torch.Tensor:
        """n samples from G (or from `generator_net`, e.g. its EMA copy), without gradients."""
        net = generator_net if generator_net is not None else self.generator
        with torch.no_grad():
            return net(self.sample_z(n, generator=rng))

    # -- shared plumbing ----------------------------------------------------------------------
    @property
    def generator(self) -> nn.Module:
        return self.nets[self.generator_name]

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

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
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.nets) ^ set(state["nets"])
        if missing:
            raise ValueError(f"checkpoint networks {sorted(state['nets'])} do not match this GAN's "
                             f"{sorted(self.nets)}; resume with the same kind of GAN it was trained with")
        self.load_extra_state(state.get("extra", {}))  # may rebuild networks (ProGAN stage)
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(state["opts"][k])

    def extra_state(self) -> dict:
        """Anything beyond weights and optimisers that a resume needs (a growth stage, a pool)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


LossFn = Callable[..., torch.Tensor]


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


class ClassicGAN(GAN):
    """The original GAN algorithm (Goodfellow et al. 2014, Algorithm 1) with a choice of G loss.

    Per step: `d_steps` discriminator updates on fresh real and fake batches, then one generator
    update. Losses are plain functions of D's logits, so a student's own versions plug in.
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, lr: float = 2e-4, lr_d: float | None = None,
                 betas=(0.5, 0.999), d_steps: int = 1, g_loss: str | LossFn = "nonsaturating",
                 d_loss: LossFn = losses.discriminator_loss):
        super().__init__()
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        self.nets = {"G": G, "D": D}
        self.opts = {"G": torch.optim.Adam(G.parameters(), lr=lr, betas=betas),
                     "D": torch.optim.Adam(D.parameters(), lr=lr if lr_d is None else lr_d, betas=betas)}
        self.d_steps = d_steps
        self.d_loss = d_loss
        self.g_loss = losses.generator_loss(g_loss) if isinstance(g_loss, str) else g_loss

    def train_step(self, ctx) -> dict[str, torch.Tensor]:
        G, D = self.nets["G"], self.nets["D"]
        for _ in range(self.d_steps):
            real = ctx.data.sample(ctx.batch_size)
            z = self.sample_z(ctx.batch_size)
            with ctx.autocast():
                fake = G(z).detach()  # no gradient into G during D's update
                real_logits, fake_logits = D(real), D(fake)
                loss_d = self.d_loss(real_logits, fake_logits)
            ctx.optimize(loss_d, self.opts["D"])

        z = self.sample_z(ctx.batch_size)
        with frozen(D), ctx.autocast():  # the graph runs through D to G, but D's weights need no grads
            loss_g = self.g_loss(D(G(z)))
        ctx.optimize(loss_g, self.opts["G"])
        return {"loss_D": loss_d, "loss_G": loss_g,
                "D_real": torch.sigmoid(real_logits.detach().float()).mean(),
                "D_fake": torch.sigmoid(fake_logits.detach().float()).mean()}
