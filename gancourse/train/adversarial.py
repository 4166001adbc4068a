"""One adversarial step for every generator-versus-discriminator family (lessons 01-04).

Objective x conditioning x n_critic x regularisers compose in one `train_step`:
- the objective (`losses.objective(name)`): non-saturating, minimax, LSGAN, hinge, WGAN with clipping,
  WGAN-GP, spectral norm; each brings its published recipe (optimiser, learning rate, n_critic,
  Lipschitz device), and any part can be overridden;
- conditioning: none, or labels that G and D both read. How D reads them (stacked one-hot planes,
  a projection) is the network's business, so every objective works with every conditional D;
- n_critic discriminator updates on fresh batches per generator update (Goodfellow et al. 2014,
  Algorithm 1, calls it k; WGAN uses 5);
- regularisers on D: the gradient penalty (WGAN-GP), ProGAN's drift term, R1 (optionally lazy,
  every r1_every steps), and weight clipping after every D update.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from gancourse import losses
from gancourse.models.cgan import check_labels
from gancourse.models.wgan import spectral_normalize
from gancourse.train.gan import GAN, frozen

OPTIMIZERS = ("adam", "rmsprop")
LossFn = Callable[..., torch.Tensor]


class AdversarialGAN(GAN):
    """G against D with a chosen objective; conditional when G and D take class labels.

    objective: a name from `losses.OBJECTIVES` or an `Objective`. Its recipe sets n_critic, the
        optimiser (Adam or RMSprop), lr and betas, the gradient penalty, clipping and spectral norm;
        every keyword below overrides one part of it.
    d_loss(real_scores, fake_scores), g_loss(fake_scores): your own loss functions (g_loss may also
        be a name: "nonsaturating" or "saturating").
    n_critic: D updates per G update, each on a fresh real and fake batch.
    lr, lr_g, lr_d, betas: the optimisers' settings (lr_g / lr_d override lr for one network).
    gp_weight: the gradient penalty's weight (0 turns it off; > 0 adds it to any objective).
    clip: clamp D's weights into [-clip, clip] after each update (0 or False: none).
    drift: ProGAN's drift term weight * E[D(x)^2].
    r1, r1_every: R1 penalty weight gamma on real data, computed every r1_every steps with its weight
        multiplied by r1_every (StyleGAN2's lazy regularisation; 1 = every step, in D's loss).
    conditional: None works it out from the networks (both have `num_classes`); True or False insists.

    Metrics: loss_D (the objective's D loss, penalties logged apart), loss_G, W1 (E D(x) - E D(G(z)) on
    the last D batch: a Wasserstein estimate for a Lipschitz critic, a score gap otherwise), D_real and
    D_fake (mean outputs; probabilities for logit objectives), GP and R1 when used.
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, objective: str | losses.Objective = "nonsaturating",
                 d_loss: LossFn | None = None, g_loss: LossFn | str | None = None, n_critic: int | None = None,
                 lr: float | None = None, lr_g: float | None = None, lr_d: float | None = None,
                 betas: tuple[float, float] | None = None, gp_weight: float | None = None,
                 clip: float | None = None, drift: float = 0.0, r1: float = 0.0, r1_every: int = 1,
                 conditional: bool | None = None):
        super().__init__()
        obj = losses.objective(objective)
        if d_loss is not None:
            obj = dataclasses.replace(obj, d_loss=d_loss)
        if g_loss is not None:
            obj = dataclasses.replace(obj, g_loss=losses.generator_loss(g_loss) if isinstance(g_loss, str) else g_loss)
        self.objective = obj
        self.n_critic = _positive_int("n_critic", obj.n_critic if n_critic is None else n_critic)
        self.r1_every = _positive_int("r1_every", r1_every)
        self.gp_weight = (obj.gp_weight if obj.gradient_penalty else 0.0) if gp_weight is None else float(gp_weight)
        self.clip = obj.clip if clip is None else (float(clip) if clip else None)
        self.drift, self.r1 = float(drift), float(r1)
        for name, value in (("gp_weight", self.gp_weight), ("drift", self.drift), ("r1", self.r1),
                            ("clip", self.clip or 0.0)):
            if value < 0:
                raise ValueError(f"{name} must not be negative; got {value}")
        if obj.optimizer not in OPTIMIZERS:
            raise ValueError(f"objective {obj.name!r} asks for optimizer {obj.optimizer!r}; use one of {OPTIMIZERS}")

        self.num_classes = _label_classes(G, D, conditional)
        if obj.spectral_norm:
            spectral_normalize(D)
        self.nets = {"G": G, "D": D}
        lr = obj.lr if lr is None else lr
        betas = obj.betas if betas is None else betas
        self.opts = {"G": self._optimizer(G, lr if lr_g is None else lr_g, betas),
                     "D": self._optimizer(D, lr if lr_d is None else lr_d, betas)}

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def _optimizer(self, net: nn.Module, lr: float, betas) -> torch.optim.Optimizer:
        if self.objective.optimizer == "rmsprop":
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(betas) if betas else (0.9, 0.999))

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, ctx) -> dict[str, torch.Tensor]:
        G, D = self.nets["G"], self.nets["D"]
        obj, n = self.objective, ctx.batch_size
        self._check_data(ctx.data)
        metrics = {}
        for _ in range(self.n_critic):
            real, real_y = self._real_batch(ctx.data, n)
            z = self.sample_z(n)
            # With a penalty on the segment between real and fake, both ends carry the same label.
            fake_y = real_y if self.conditional and self.gp_weight > 0 else self._fake_labels(n)
            with torch.no_grad(), ctx.autocast():  # no graph through G for D's update
                fake = G(z, *fake_y)
            with ctx.autocast():
                real_scores, fake_scores = D(real, *real_y).float(), D(fake, *fake_y).float()
                loss_d = obj.d_loss(real_scores, fake_scores)
            total = loss_d
            # Penalties run outside autocast, in fp32: (||grad|| - 1)^2 near ||grad|| = 1 is lost in
            # bf16's 8-bit mantissa, and fp16 input gradients can underflow before loss scaling.
            if self.gp_weight > 0:
                metrics["GP"] = gp = losses.gradient_penalty(lambda x: D(x, *real_y), real.float(), fake.float(),
                                                             weight=self.gp_weight)
                total = total + gp
            if self.drift > 0:
                total = total + losses.drift_penalty(real_scores, self.drift)
            if self.r1 > 0 and self.r1_every == 1:
                metrics["R1"] = r1 = losses.r1_penalty(lambda x: D(x, *real_y), real.float(), weight=self.r1)
                total = total + r1
            ctx.optimize(total, self.opts["D"])
            if self.clip is not None:
                losses.clip_weights_(D, self.clip)
        if self.r1 > 0 and self.r1_every > 1 and ctx.step % self.r1_every == 0:
            metrics["R1"] = self._lazy_r1(ctx, D, n)

        z, y = self.sample_z(n), self._fake_labels(n)
        with frozen(D), ctx.autocast():  # the graph runs through D to G, but D's weights need no grads
            loss_g = obj.g_loss(D(G(z, *y), *y).float())
        ctx.optimize(loss_g, self.opts["G"])

        real_scores, fake_scores = real_scores.detach(), fake_scores.detach()
        shown = torch.sigmoid if obj.probabilities else (lambda s: s)
        return {"loss_D": loss_d.detach(), "loss_G": loss_g.detach(),
                "W1": losses.wasserstein_estimate(real_scores, fake_scores),
                "D_real": shown(real_scores).mean(), "D_fake": shown(fake_scores).mean(),
                **{k: v.detach() for k, v in metrics.items()}}

    def _lazy_r1(self, ctx, D: nn.Module, n: int) -> torch.Tensor:
        """StyleGAN2's lazy R1: a separate D step every r1_every steps, weighted r1_every times."""
        real, real_y = self._real_batch(ctx.data, n)
        penalty = losses.r1_penalty(lambda x: D(x, *real_y), real.float(), weight=self.r1)
        ctx.optimize(penalty * self.r1_every, self.opts["D"])
        return penalty

    def _real_batch(self, data, n: int) -> tuple[torch.Tensor, tuple]:
        if self.conditional:
            x, y = data.sample_with_labels(n)
            return x, (y,)
        return data.sample(n), ()

    def _fake_labels(self, n: int) -> tuple:
        """Labels for generated samples, drawn uniformly over the classes (global RNG)."""
        if not self.conditional:
            return ()
        return (torch.randint(self.num_classes, (n,), device=self.device),)

    def _check_data(self, data) -> None:
        classes = getattr(data, "num_classes", None)
        if self.conditional and classes is not None and classes != self.num_classes:
            raise ValueError(f"the data has {classes} classes but G and D were built for "
                             f"{self.num_classes}; build them with num_classes=data.num_classes")

    # -- sampling ---------------------------------------------------------------------------------
    def generator_inputs(self, n: int, *, rng: torch.Generator, device: torch.device, data=None,
                         z: torch.Tensor | None = None, labels: torch.Tensor | int | None = None) -> tuple:
        """(z,) or, conditional, (z, labels). labels: class indices (n,), one int for all, or None for
        0, 1, ..., C-1, 0, 1, ..., so a grid with C columns shows one class per column."""
        (z,) = super().generator_inputs(n, rng=rng, device=device, z=z)
        if not self.conditional:
            if labels is not None:
                raise ValueError("this GAN is not conditional: its generator takes no labels")
            return (z,)
        if labels is None:
            labels = torch.arange(n) % self.num_classes
        elif isinstance(labels, int) and not isinstance(labels, bool):
            labels = torch.full((n,), labels)
        return z, check_labels(labels, self.num_classes, n, device)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")
    return value


def _label_classes(G: nn.Module, D: nn.Module, conditional: bool | None) -> int | None:
    """The number of classes both networks are built for, or None for an unconditional pair."""
    g_classes, d_classes = getattr(G, "num_classes", None), getattr(D, "num_classes", None)
    if conditional is None:
        conditional = g_classes is not None or d_classes is not None
    if not conditional:
        return None
    if g_classes is None or g_classes != d_classes:
        raise ValueError(f"a conditional GAN needs G and D built for the same num_classes (conditional "
                         f"networks such as ConditionalDCGANGenerator/Discriminator); got G: {g_classes}, "
                         f"D: {d_classes}")
    return int(g_classes)
