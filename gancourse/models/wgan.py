"""WGAN, WGAN-GP and friends (lesson 04): a critic without BatchNorm, spectral normalisation, and one
GAN whose objective is picked by name.

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

from gancourse import losses
from gancourse.models.dcgan import _check_positive, _num_doublings, dcgan_init_
from gancourse.train.gan import GAN, frozen

CRITIC_NORMS = ("layer", "none")
OPTIMIZERS = ("adam", "rmsprop")


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


class WassersteinGAN(GAN):
    """The WGAN training loop (Arjovsky et al. 2017, Algorithm 1), with the objective picked by name.

    Per step: n_critic critic updates, each on a fresh real batch and fresh fakes, adding the gradient
    penalty and the drift penalty when asked and clipping the critic's weights after the update when
    asked; then one generator update with the critic frozen. objective is one of
    `losses.OBJECTIVES` ("wgan-gp" by default, "wgan-clip", "spectral-norm", "hinge", "lsgan",
    "nonsaturating") or a `losses.Objective`, so all six train on the same loop and data.

    Arguments left as None take the objective's published recipe: n_critic; lr (both nets; lr_g /
    lr_d override one); betas (Adam); gp_weight (the objective's weight when it uses a penalty,
    else none; any value > 0 adds the penalty to any objective, 0 removes it); clip (a positive
    bound, or 0 / False for none). drift adds ProGAN's drift penalty with that weight. A
    spectral-norm objective normalises D's layers in place.

    Metrics: loss_D (the objective's critic loss, penalties logged apart), loss_G, W1 (E f(x) -
    E f(G(z)) on the last critic batch), GP (the weighted penalty, when used), D_real / D_fake (mean
    scores; probabilities for the "nonsaturating" objective, whose D outputs logits).
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, objective: str | losses.Objective = "wgan-gp",
                 n_critic: int | None = None, lr: float | None = None, lr_g: float | None = None,
                 lr_d: float | None = None, betas: tuple[float, float] | None = None,
                 gp_weight: float | None = None, drift: float = 0.0, clip: float | None = None):
        super().__init__()
        obj = losses.objective(objective)
        self.objective = obj
        self.n_critic = obj.n_critic if n_critic is None else n_critic
        if isinstance(self.n_critic, bool) or not isinstance(self.n_critic, int) or self.n_critic < 1:
            raise ValueError(f"n_critic must be a positive int; got {self.n_critic!r}")
        self.gp_weight = (obj.gp_weight if obj.gradient_penalty else 0.0) if gp_weight is None else float(gp_weight)
        self.clip = obj.clip if clip is None else (float(clip) if clip else None)
        if self.gp_weight < 0 or drift < 0 or (self.clip is not None and self.clip < 0):
            raise ValueError(f"gp_weight, drift and clip must not be negative; got gp_weight={self.gp_weight}, "
                             f"drift={drift}, clip={self.clip}")
        self.drift = float(drift)
        if obj.optimizer not in OPTIMIZERS:
            raise ValueError(f"objective {obj.name!r} asks for optimizer {obj.optimizer!r}; use one of {OPTIMIZERS}")
        if obj.spectral_norm:
            spectral_normalize(D)

        self.nets = {"G": G, "D": D}
        lr = obj.lr if lr is None else lr
        betas = obj.betas if betas is None else betas
        self.opts = {"G": self._optimizer(G, lr if lr_g is None else lr_g, betas),
                     "D": self._optimizer(D, lr if lr_d is None else lr_d, betas)}

    def _optimizer(self, net: nn.Module, lr: float, betas) -> torch.optim.Optimizer:
        if self.objective.optimizer == "rmsprop":
            return torch.optim.RMSprop(net.parameters(), lr=lr)
        return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(betas) if betas else (0.9, 0.999))

    def train_step(self, ctx) -> dict[str, torch.Tensor]:
        G, D = self.nets["G"], self.nets["D"]
        obj = self.objective
        for _ in range(self.n_critic):
            real = ctx.data.sample(ctx.batch_size)
            z = self.sample_z(ctx.batch_size)
            with torch.no_grad(), ctx.autocast():  # no graph through G for the critic's update
                fake = G(z)
            with ctx.autocast():
                real_scores, fake_scores = D(real).float(), D(fake).float()
                loss_d = obj.d_loss(real_scores, fake_scores)
            total = loss_d
            if self.gp_weight > 0:
                # Outside autocast, in fp32: (||grad|| - 1)^2 with ||grad|| near 1 is lost in bf16's
                # 8-bit mantissa, and fp16 input gradients can underflow before the GradScaler sees them.
                gp = losses.gradient_penalty(D, real.float(), fake.float(), weight=self.gp_weight)
                total = total + gp
            if self.drift > 0:
                total = total + losses.drift_penalty(real_scores, self.drift)
            ctx.optimize(total, self.opts["D"])
            if self.clip is not None:
                losses.clip_weights_(D, self.clip)

        z = self.sample_z(ctx.batch_size)
        with frozen(D), ctx.autocast():  # the graph runs through D to G, but D's weights need no grads
            loss_g = obj.g_loss(D(G(z)).float())
        ctx.optimize(loss_g, self.opts["G"])

        real_scores, fake_scores = real_scores.detach(), fake_scores.detach()
        shown = torch.sigmoid if obj.d_loss is losses.discriminator_loss else (lambda s: s)
        metrics = {"loss_D": loss_d.detach(), "loss_G": loss_g.detach(),
                   "W1": losses.wasserstein_estimate(real_scores, fake_scores),
                   "D_real": shown(real_scores).mean(), "D_fake": shown(fake_scores).mean()}
        if self.gp_weight > 0:
            metrics["GP"] = gp.detach()
        return metrics
