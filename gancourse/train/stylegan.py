"""StyleGAN2's training (lesson 07): the non-saturating loss with style mixing, lazy R1, path-length
regularisation, a tracked average w for truncation, and optionally adaptive augmentation (ADA).

One step (Karras et al. 2020, StyleGAN2, arXiv 1912.04958, appendix B):
- D: softplus(D(G(w))) + softplus(-D(x)), G's codes style-mixed like G's own step;
- every `r1_every` steps (16) a separate D step on R1 = gamma/2 * E||grad D(x)||^2, weighted by r1_every, so
  it weighs as much per image as if it ran every step ("lazy regularisation", sec. 3.1);
- G: softplus(-D(G(w))) where, with probability `mixing` (0.9), the layers from a random crossover on take w
  of a second z (style-mixing regularisation, StyleGAN sec. 3.1: neighbouring layers cannot rely on sharing
  one code);
- every `pl_every` steps (4) a separate G step on the path-length penalty, weighted by pl_every:
  (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(H W) on the image, a the running mean of the lengths (sec. 2.3);
- both optimisers' lr and betas corrected for the lazy steps: lr * c, beta ** c with c = every / (every + 1).
w_avg, the centre truncation pulls towards, follows the mean of plain w (never mixed or truncated codes).
The running mean of the path lengths and ADA's p are family state, kept in checkpoints.
"""
from __future__ import annotations

import math

import torch

from gancourse import losses
from gancourse.models.stylegan import mix_styles, truncated_normal
from gancourse.train.augment import AdaptiveAugment, augment
from gancourse.train.gan import GAN, frozen


class StyleGAN(GAN):
    """G (models.StyleGenerator) against D (models.StyleDiscriminator), trained as StyleGAN2.

    r1: R1's gamma (0: off); r1_every: its interval. pl_weight: the path-length penalty's weight (0: off);
    pl_every: its interval; pl_decay: how fast its running mean follows (0.01). mixing: the probability of
    style mixing in a batch. w_avg_beta: the decay of the tracked average w.
    ada: None (no augmentation), an `AdaptiveAugment` (p tuned towards its target), or a float (a fixed p).
    train_generator: set it False to train D alone against a fixed G (a fresh D warming up against a
    pretrained G before the two train together again).
    """

    def __init__(self, G, D, *, lr: float = 2e-3, betas: tuple[float, float] = (0.0, 0.99), r1: float = 0.1,
                 r1_every: int = 16, pl_weight: float = 2.0, pl_every: int = 4, pl_decay: float = 0.01,
                 pl_batch_shrink: int = 2, mixing: float = 0.9, w_avg_beta: float = 0.995,
                 ada: AdaptiveAugment | float | None = None) -> None:
        super().__init__()
        if G.final_size != D.final_size:
            raise ValueError(f"G draws {G.final_size}x{G.final_size} images but D reads {D.final_size}x"
                             f"{D.final_size}; build both with the same final_size")
        for name, value in (("r1_every", r1_every), ("pl_every", pl_every), ("pl_batch_shrink", pl_batch_shrink)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if not 0.0 <= mixing <= 1.0:
            raise ValueError(f"mixing is a probability in [0, 1]; got {mixing!r}")
        self.nets = {"G": G, "D": D}
        self.r1, self.r1_every = float(r1), r1_every
        self.pl_weight, self.pl_every, self.pl_decay, self.pl_batch_shrink = float(pl_weight), pl_every, pl_decay, \
            pl_batch_shrink
        self.mixing, self.w_avg_beta = float(mixing), float(w_avg_beta)
        self.ada = ada if isinstance(ada, AdaptiveAugment) or ada is None else AdaptiveAugment(p=float(ada), fixed=True)
        intervals = {"G": pl_every if self.pl_weight > 0 else 0, "D": r1_every if self.r1 > 0 else 0}
        self.opts = {name: torch.optim.Adam(net.parameters(), **lazy_adam(lr, betas, intervals[name]))
                     for name, net in self.nets.items()}
        self.pl_mean = 0.0
        self.train_generator = True
        self._last = {"R1": 0.0, "PL": 0.0, "r_t": 0.0}

    @property
    def final_size(self) -> int:
        return self.nets["G"].final_size

    @property
    def p(self) -> float:
        """ADA's current augmentation probability (0 without ADA)."""
        return self.ada.p if self.ada is not None else 0.0

    # -- one step ---------------------------------------------------------------------------------------
    def train_step(self, ctx) -> dict[str, torch.Tensor | float]:
        G, D = self.nets["G"], self.nets["D"]
        n = ctx.batch_size
        real = ctx.data.sample(n)

        with torch.no_grad(), ctx.autocast():
            fake = G.synthesis(self.mixed_styles(n, real.device, track=False))
        with ctx.autocast():
            real_logits, fake_logits = D(self.augment(real)).float(), D(self.augment(fake)).float()
        loss_d = losses.discriminator_loss(real_logits, fake_logits)
        ctx.optimize(loss_d, self.opts["D"])
        if self.ada is not None:
            self.ada.observe(real_logits)
        if self.r1 > 0 and ctx.step % self.r1_every == 0:
            # fp32, outside autocast, like every gradient penalty
            penalty = losses.r1_penalty(lambda x: D(self.augment(x)), real.float(), weight=self.r1)
            ctx.optimize(penalty * self.r1_every, self.opts["D"])
            self._last["R1"] = float(penalty.detach())

        if self.train_generator:
            with frozen(D), ctx.autocast():
                fake_logits_g = D(self.augment(G.synthesis(self.mixed_styles(n, real.device, track=True)))).float()
            loss_g = losses.generator_loss_nonsaturating(fake_logits_g)
            ctx.optimize(loss_g, self.opts["G"])
            if self.pl_weight > 0 and ctx.step % self.pl_every == 0:
                penalty = self.path_length_penalty(max(1, n // self.pl_batch_shrink), real.device)
                ctx.optimize(penalty * self.pl_every, self.opts["G"])
                self._last["PL"] = float(penalty.detach())
        else:
            loss_g = losses.generator_loss_nonsaturating(fake_logits)  # what G would be told; nothing moves

        if self.ada is not None:
            r_t = self.ada.update(ctx.step, n)
            if r_t is not None:
                self._last["r_t"] = r_t
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach(),
                "D_real": torch.sigmoid(real_logits.detach()).mean(), "D_fake": torch.sigmoid(fake_logits.detach()).mean(),
                "R1": self._last["R1"], "PL": self._last["PL"], "pl_mean": self.pl_mean, "p": self.p,
                "r_t": self._last["r_t"] if self.ada is not None else float(torch.sign(real_logits.detach()).mean())}

    def mixed_styles(self, n: int, device, *, track: bool) -> torch.Tensor:
        """ws for a training batch: w of fresh z at every layer; with probability `mixing` the layers from a
        random crossover in [1, num_ws) take w of a second z. track=True moves w_avg towards the plain w first."""
        G = self.nets["G"]
        w = G.mapping(torch.randn(n, G.z_dim, device=device))
        if track:
            G.track_w_avg(w, self.w_avg_beta)
        ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)
        if self.mixing > 0 and float(torch.rand(())) < self.mixing:
            crossover = int(torch.randint(1, G.num_ws, ()))
            ws = mix_styles(ws, G.mapping(torch.randn(n, G.z_dim, device=device)), crossover)
        return ws

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return augment(images, self.ada.p) if self.ada is not None and self.ada.p > 0 else images

    def path_length_penalty(self, n: int, device) -> torch.Tensor:
        """pl_weight * E[(||J_w^T y|| - a)^2] on n samples, fp32; moves the running mean a (`pl_mean`)."""
        G = self.nets["G"]
        ws = self.mixed_styles(n, device, track=False)
        images = G.synthesis(ws)
        y = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
        lengths = grad.pow(2).sum(dim=2).mean(dim=1).sqrt()
        self.pl_mean += self.pl_decay * (float(lengths.detach().mean()) - self.pl_mean)
        return self.pl_weight * (lengths - self.pl_mean).pow(2).mean()

    # -- sampling ---------------------------------------------------------------------------------------
    def generator_inputs(self, n: int, *, rng: torch.Generator, device: torch.device, data=None,
                         z: torch.Tensor | None = None, psi: float = 1.0, mix_z: torch.Tensor | None = None,
                         crossover: int | None = None, noise="random", z_threshold: float | None = None) -> tuple:
        """(z, psi, mix_z, crossover, noise) for `StyleGenerator.forward`.

        z: codes (drawn from rng unless given; z_threshold draws them from BigGAN's truncated normal instead).
        psi: truncation in W. crossover: style mixing from that layer on, with mix_z (drawn from rng unless given).
        noise: "random" (drawn from rng, so a seed repeats the picture), "const", "zero", or a list of maps.
        """
        G = self.nets["G"]
        if z is None and z_threshold is not None:
            z = truncated_normal(n, G.z_dim, z_threshold, rng).to(device)
        (z,) = super().generator_inputs(n, rng=rng, device=device, z=z)
        if crossover is not None and mix_z is None:
            mix_z = self.sample_z(n, device=device, generator=rng)
        elif mix_z is not None:
            (mix_z,) = super().generator_inputs(n, rng=rng, device=device, z=mix_z)
        if isinstance(noise, str) and noise == "random":
            noise = G.make_noise(n, generator=rng, device=device)
        return z, psi, mix_z, crossover, noise

    def generate(self, n: int | None = None, **options) -> torch.Tensor:
        """Samples as images, clipped to [-1, 1] (G's output is linear; training never clips)."""
        return super().generate(n, **options).clamp(-1, 1)

    # -- state ------------------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"pl_mean": self.pl_mean, "ada": self.ada.state_dict() if self.ada is not None else None,
                "last": dict(self._last), "final_size": self.final_size}

    def load_extra_state(self, state: dict) -> None:
        if state.get("final_size", self.final_size) != self.final_size:
            raise ValueError(f"the checkpoint is for {state['final_size']}x{state['final_size']} images, this StyleGAN "
                             f"for {self.final_size}x{self.final_size}; build G and D with final_size="
                             f"{state['final_size']}")
        self.pl_mean = float(state.get("pl_mean", 0.0))
        self._last.update(state.get("last", {}))
        if state.get("ada") is not None:
            if self.ada is None:
                raise ValueError("the checkpoint was trained with ADA; resume with ada=AdaptiveAugment(...)")
            self.ada.load_state_dict(state["ada"])


def lazy_adam(lr: float, betas: tuple[float, float], every: int) -> dict:
    """Adam's settings for a network whose regulariser runs every `every` steps (0: never): StyleGAN2 scales lr by
    c = every / (every + 1) and raises the betas to c, so the extra steps do not speed up its optimiser."""
    c = every / (every + 1) if every else 1.0
    return {"lr": lr * c, "betas": (betas[0] ** c, betas[1] ** c)}
