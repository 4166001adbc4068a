"""Right answers to the graded tasks, for the tests of the checks. They are not in the installed package:
the grader's references are the judges beside the solutions."""
import torch
import torch.nn.functional as F
from torch import nn

from pathlib import Path

from gancourse import losses
from gancourse.judging import load_judges

_SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
load_judges(_SOLUTIONS / "01_gan_game.ipynb")
load_judges(_SOLUTIONS / "02_dcgan.ipynb")
import sys  # noqa: E402  (the judges load as modules of their own)

l01_train_step = sys.modules["gancourse_judges_01_gan_game"]._reference_step
l02_discriminator_step = sys.modules["gancourse_judges_02_dcgan"]._reference_step


def l03_one_hot_planes(y: torch.Tensor, num_classes: int, height: int, width: int) -> torch.Tensor:
    """(N, C, H, W) float planes: plane y[i] of image i all ones, every other plane zeros."""
    return F.one_hot(y, num_classes).float()[:, :, None, None].expand(-1, -1, height, width)


def l03_generator_input(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[z; one_hot(y)]: the noise with the one-hot label appended, (N, z_dim + C)."""
    return torch.cat([z, F.one_hot(y, num_classes).to(z.dtype)], dim=1)


def l03_class_grid(G: nn.Module, num_classes: int, per_class: int, z_dim: int) -> torch.Tensor:
    """Row r holds class r; column j uses the same z in every row."""
    with torch.no_grad():
        z = torch.randn(per_class, z_dim).repeat(num_classes, 1)
        y = torch.arange(num_classes).repeat_interleave(per_class)
        return G(z, y)


def l04_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[f(G(z))] - E[f(x)]: the critic minimises it, maximising the W1 estimate."""
    return losses.critic_loss_wasserstein(real_scores, fake_scores)


def l04_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[f(G(z))]."""
    return losses.generator_loss_wasserstein(fake_scores)


def l04_clip_weights(module: nn.Module, c: float) -> nn.Module:
    """Clamp every parameter of `module` into [-c, c], in place."""
    return losses.clip_weights_(module, c)


def l04_gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """weight * E[(||grad f(x_hat)||_2 - 1)^2], x_hat = eps * real + (1 - eps) * fake, one eps per sample."""
    return losses.gradient_penalty(critic, real, fake, weight=weight)


def l04_train_step(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
    """n_critic critic updates (fresh real batch, fresh z, Wasserstein loss + gradient penalty), then one
    generator update; returns (loss_D, loss_G), loss_D without the penalty."""
    for _ in range(n_critic):
        real = sample_real()
        z = torch.randn(len(real), z_dim)
        with torch.no_grad():
            fake = G(z)
        loss_d = losses.critic_loss_wasserstein(D(real), D(fake))
        gp = losses.gradient_penalty(D, real, fake, weight=gp_weight)
        opt_D.zero_grad()
        (loss_d + gp).backward()
        opt_D.step()
    z = torch.randn(len(real), z_dim)
    loss_g = losses.generator_loss_wasserstein(D(G(z)))
    opt_G.zero_grad()
    loss_g.backward()
    opt_G.step()
    return loss_d.detach(), loss_g.detach()

