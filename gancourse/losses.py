"""GAN objectives as pure functions of discriminator outputs (logits unless said otherwise).

Each function takes tensors and returns a scalar tensor; none holds state. Taking logits rather
than probabilities lets us use the numerically stable `logsigmoid` / `softplus` forms. Lesson 04 adds
the Wasserstein critic, its gradient penalty and weight clipping, LSGAN and hinge losses, and an
`objective(name)` registry that bundles each loss with the recipe it was published with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy for D: -E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, eq. 1)."""
    # log D = logsigmoid(l); log(1 - D) = logsigmoid(-l)
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss E[log(1 - D(G(z)))]; its gradient vanishes when D wins."""
    return F.logsigmoid(-fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -E[log D(G(z))], the heuristic the GAN paper recommends."""
    return -F.logsigmoid(fake_logits).mean()


GENERATOR_LOSSES = {
    "saturating": generator_loss_saturating,
    "minimax": generator_loss_saturating,
    "nonsaturating": generator_loss_nonsaturating,
    "non-saturating": generator_loss_nonsaturating,
}


def generator_loss(name: str):
    """Look a generator loss up by name ("nonsaturating" or "saturating")."""
    try:
        return GENERATOR_LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown generator loss {name!r}; choose one of {sorted(set(GENERATOR_LOSSES))}"
        ) from None


# -- lesson 04: the Wasserstein critic and the other objectives -----------------------------------
# A critic returns an unbounded score f(x) per sample (no sigmoid), so these losses take no log.


def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's loss E[f(G(z))] - E[f(x)]: minimising it maximises the dual W1 estimate
    (Arjovsky et al. 2017, arXiv 1701.07875, eq. 3). Lipschitz-ness is enforced elsewhere."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss -E[f(G(z))] (Arjovsky et al. 2017, Algorithm 1)."""
    return -fake_scores.mean()


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic's estimate of W1: E[f(x)] - E[f(G(z))] (Kantorovich-Rubinstein duality).

    It is a (scaled) W1 only while f is close to 1-Lipschitz; for other objectives it is just the
    gap between the mean scores of real and generated samples.
    """
    return real_scores.mean() - fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, weight: float = 10.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty weight * E[(||grad f(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, arXiv 1704.00028, eq. 3).

    x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] drawn once per sample (shape (B, 1, ...,
    1)), so each x_hat lies on the segment between its real and its fake sample; a per-pixel eps,
    a known bug, leaves those segments. The gradient norm is taken per sample over all non-batch
    dims, and the gradient is built with create_graph=True so the penalty trains the critic.

    critic: any callable from a batch to one score per sample, e.g. `lambda x: D(x, labels)`. Its
        score for one sample must not depend on the rest of the batch (no BatchNorm), or the
        gradient of the summed scores is no longer the per-sample gradient.
    real, fake: batches of the same shape (B, ...), e.g. (B, 2) points or (B, C, H, W) images;
        neither receives gradients from the penalty.
    generator: a torch.Generator (on real's device) for eps, to make the draw repeatable.
    Call it outside autocast: the gradient norm and (norm - 1)^2 need fp32 precision.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty needs real and fake batches of the same shape; "
                         f"got real {tuple(real.shape)} and fake {tuple(fake.shape)}")
    if real.dim() < 1 or real.shape[0] == 0:
        raise ValueError(f"gradient_penalty needs a non-empty batch (B, ...); got shape {tuple(real.shape)}")
    batch = real.shape[0]
    dtype = torch.promote_types(real.dtype, fake.dtype)
    eps = torch.rand((batch,) + (1,) * (real.dim() - 1), dtype=dtype, device=real.device, generator=generator)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    # Each score depends on its own sample only, so d(sum of scores)/dx_hat holds every per-sample gradient.
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.reshape(batch, -1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def r1_penalty(critic, real: torch.Tensor, *, weight: float = 10.0) -> torch.Tensor:
    """R1: weight/2 * E[||grad D(x)||^2] on real samples only (Mescheder et al. 2018, arXiv 1801.04406, eq. 9).

    It pushes D's gradient to zero on the data, so D stops pushing a generator that already matches
    it; StyleGAN uses it with gamma = 10 and computes it every 16 steps ("lazy", Karras et al. 2020).
    Call it outside autocast, like `gradient_penalty`.
    """
    if real.dim() < 1 or real.shape[0] == 0:
        raise ValueError(f"r1_penalty needs a non-empty batch (B, ...); got shape {tuple(real.shape)}")
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return 0.5 * weight * grad.reshape(len(x), -1).pow(2).sum(dim=1).mean()


def drift_penalty(real_scores: torch.Tensor, weight: float = 1e-3) -> torch.Tensor:
    """weight * E[f(x)^2]: keeps the critic's scores from drifting far from 0
    (Karras et al. 2018, ProGAN, arXiv 1710.10196, sec. A.1, eps_drift = 0.001)."""
    return weight * (real_scores ** 2).mean()


def discriminator_loss_lsgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN's D loss 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (Mao et al. 2017, arXiv 1611.04076,
    eq. 9: the a-b-c = 0-1-1 coding, fakes to 0, reals to 1)."""
    return 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores ** 2).mean()


def generator_loss_lsgan(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN's G loss 1/2 E[(D(G(z)) - 1)^2] (Mao et al. 2017, eq. 9, c = 1)."""
    return 0.5 * ((fake_scores - 1) ** 2).mean()


def discriminator_loss_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge D loss E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017, arXiv 1705.02894;
    Miyato et al. 2018, arXiv 1802.05957, eq. 16): samples beyond the margin give no gradient."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def generator_loss_hinge(fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge G loss -E[D(G(z))] (the same form as WGAN's; Miyato et al. 2018, eq. 17)."""
    return -fake_scores.mean()


def clip_weights_(module: torch.nn.Module, c: float) -> torch.nn.Module:
    """Clamp every parameter of `module` into [-c, c], in place; returns the module.

    WGAN's crude way to keep the critic Lipschitz (Arjovsky et al. 2017, Algorithm 1, c = 0.01),
    applied after every critic update. Like the paper, it clamps all parameters, biases and any
    normalisation scales included.
    """
    if not c > 0:
        raise ValueError(f"the clipping bound c must be > 0; got {c!r}")
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
    return module


# -- lesson 05: image-to-image translation -----------------------------------------------------------
def cycle_consistency_loss(real: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """E|F(G(x)) - x|_1: the L1 distance between an image and its round trip through both mappings
    (Zhu et al. 2017, arXiv 1703.10593, eq. 2, one direction; CycleGAN adds both, times lambda = 10)."""
    _same_shape("cycle_consistency_loss", real, reconstructed)
    return (reconstructed - real).abs().mean()


def identity_loss(real: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
    """E|G(y) - y|_1 for y already in G's target domain: G should leave such an image alone. It keeps
    colours from drifting (Zhu et al. 2017, sec. 5.2, after Taigman et al. 2017); CycleGAN weighs it
    0.5 * lambda, applied to both mappings."""
    _same_shape("identity_loss", real, mapped)
    return (mapped - real).abs().mean()


def reconstruction_loss(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """E|G(x) - y|_1 against the true partner y: pix2pix's L1 term (Isola et al. 2016, eq. 3, lambda = 100),
    possible only when the pairs are known."""
    _same_shape("reconstruction_loss", target, output)
    return (output - target).abs().mean()


def _same_shape(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name} compares two batches of the same shape (N, C, H, W); got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


# -- objectives by name: the losses plus the Lipschitz device and optimiser defaults each was published with
@dataclass(frozen=True)
class Objective:
    """A GAN objective and the training recipe it came with.

    d_loss(real_scores, fake_scores) and g_loss(fake_scores) take D's raw outputs. gradient_penalty
    adds `gradient_penalty(...)` with weight `gp_weight` to the critic loss; clip clamps the critic's
    weights after each update; spectral_norm spectrally normalises D's layers. n_critic D updates run
    per G update, with `optimizer` ("adam" or "rmsprop") at learning rate `lr` (betas for Adam only).
    probabilities: D's outputs are logits of "real", so the sigmoid of a score is a probability
    (shown as D(x) in [0, 1]); for the other objectives a score is just a score.
    Build a variant with dataclasses.replace(objective("wgan-gp"), d_loss=my_critic_loss).
    """

    name: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False
    clip: float | None = None
    spectral_norm: bool = False
    n_critic: int = 1
    optimizer: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] | None = (0.5, 0.999)
    gp_weight: float = 10.0
    probabilities: bool = False
    reference: str = ""


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("nonsaturating", discriminator_loss, generator_loss_nonsaturating, probabilities=True,
              reference="Goodfellow et al. 2014; Adam 2e-4, betas (0.5, 0.999) from DCGAN (Radford et al. 2015)"),
    Objective("minimax", discriminator_loss, generator_loss_saturating, probabilities=True,
              reference="Goodfellow et al. 2014, eq. 1 as written (G's gradient saturates); DCGAN's Adam 2e-4"),
    Objective("lsgan", discriminator_loss_lsgan, generator_loss_lsgan,
              reference="Mao et al. 2017 (0-1-1 coding); Adam 2e-4, beta1 0.5 as in their experiments"),
    Objective("hinge", discriminator_loss_hinge, generator_loss_hinge,
              reference="Lim & Ye 2017; Miyato et al. 2018; DCGAN's Adam 2e-4, betas (0.5, 0.999)"),
    Objective("wgan-clip", critic_loss_wasserstein, generator_loss_wasserstein, clip=0.01, n_critic=5,
              optimizer="rmsprop", lr=5e-5, betas=None,
              reference="Arjovsky et al. 2017, Algorithm 1: c = 0.01, n_critic = 5, RMSprop 5e-5"),
    Objective("wgan-gp", critic_loss_wasserstein, generator_loss_wasserstein, gradient_penalty=True,
              n_critic=5, lr=1e-4, betas=(0.0, 0.9), gp_weight=10.0,
              reference="Gulrajani et al. 2017, Algorithm 1: lambda = 10, n_critic = 5, Adam 1e-4, betas (0, 0.9)"),
    Objective("spectral-norm", discriminator_loss_hinge, generator_loss_hinge, spectral_norm=True,
              n_critic=1, lr=2e-4, betas=(0.5, 0.999),
              reference="Miyato et al. 2018, hinge loss with setting C of Table 1: "
                        "n_dis = 1, Adam 2e-4, betas (0.5, 0.999)"),
)}


ALIASES = {"non-saturating": "nonsaturating", "saturating": "minimax", "wgan": "wgan-clip", "sngan": "spectral-norm"}


def objective(name: str | Objective) -> Objective:
    """Look an objective up by name (see OBJECTIVES); an Objective is returned as it is."""
    if isinstance(name, Objective):
        return name
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    key = ALIASES.get(key, key)
    try:
        return OBJECTIVES[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown objective {name!r}; choose one of {list(OBJECTIVES)}") from None
