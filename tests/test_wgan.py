"""Lesson 04: Wasserstein losses, the gradient penalty, clipping, spectral norm, the critic, the objective registry.

The training step that uses them is tested in test_adversarial.py."""
import dataclasses
import math

import pytest
import torch
from torch import nn

from gancourse import losses
from gancourse.data import load
from gancourse.models import DCGANCritic, spectral_normalize

OBJECTIVE_NAMES = ("nonsaturating", "minimax", "lsgan", "hinge", "wgan-clip", "wgan-gp", "spectral-norm")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ring():
    return load("ring8", n=4000)


# -- the losses against hand-computed values ------------------------------------------------------
REAL, FAKE = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])  # means 1.5 and -0.25


def test_wasserstein_losses_known_values():
    assert losses.critic_loss_wasserstein(REAL, FAKE).item() == pytest.approx(-0.25 - 1.5)
    assert losses.generator_loss_wasserstein(FAKE).item() == pytest.approx(0.25)
    assert losses.wasserstein_estimate(REAL, FAKE).item() == pytest.approx(1.75)
    assert losses.drift_penalty(REAL).item() == pytest.approx(1e-3 * (1 + 4) / 2)
    assert losses.drift_penalty(REAL, weight=2.0).item() == pytest.approx(5.0)


def test_lsgan_losses_known_values():
    # D: 0.5 * mean((0, 1)^2) + 0.5 * mean((-1, 0.5)^2) = 0.5 * 0.5 + 0.5 * 0.625
    assert losses.discriminator_loss_lsgan(REAL, FAKE).item() == pytest.approx(0.25 + 0.3125)
    # G: 0.5 * mean((-2, -0.5)^2) = 0.5 * 2.125
    assert losses.generator_loss_lsgan(FAKE).item() == pytest.approx(1.0625)
    assert losses.discriminator_loss_lsgan(torch.ones(3), torch.zeros(3)).item() == 0  # the targets: 1 and 0


def test_hinge_losses_known_values_and_margin():
    # relu(1 - (1, 2)) = (0, 0); relu(1 + (-1, 0.5)) = (0, 1.5)
    assert losses.discriminator_loss_hinge(REAL, FAKE).item() == pytest.approx(0.75)
    # relu(1 - (0.5, 2)) = (0.5, 0) -> 0.25 more
    assert losses.discriminator_loss_hinge(torch.tensor([0.5, 2.0]), FAKE).item() == pytest.approx(1.0)
    assert losses.generator_loss_hinge(FAKE).item() == pytest.approx(0.25)
    real = torch.tensor([0.5, 2.0], requires_grad=True)
    losses.discriminator_loss_hinge(real, FAKE).backward()
    assert real.grad.tolist() == [-0.5, 0.0]  # beyond the margin: no gradient


# -- the gradient penalty -------------------------------------------------------------------------
def linear_critic(w):
    """f(x) = w . flatten(x): its gradient is w everywhere, so ||grad|| = ||w|| for every x_hat."""
    return lambda x: x.flatten(1) @ w


@pytest.mark.parametrize("shape", [(2,), (3, 4, 4)])
def test_gradient_penalty_of_linear_critics(shape):
    torch.manual_seed(0)
    dim = math.prod(shape)
    u = torch.randn(dim)
    u = u / u.norm()
    real, fake = torch.randn(16, *shape), torch.randn(16, *shape)
    assert losses.gradient_penalty(linear_critic(u), real, fake).item() == pytest.approx(0, abs=1e-10)
    assert losses.gradient_penalty(linear_critic(2 * u), real, fake).item() == pytest.approx(10 * (2 - 1) ** 2)
    assert losses.gradient_penalty(linear_critic(3 * u), real, fake, weight=0.5).item() == pytest.approx(0.5 * 4)


def test_gradient_penalty_trains_the_critic_and_not_the_inputs():
    # d/dw of weight * (||w|| - 1)^2 is weight * 2 (||w|| - 1) w / ||w||: only there if create_graph=True
    w = torch.tensor([1.2, -1.6], requires_grad=True)  # ||w|| = 2
    real = torch.randn(8, 2, requires_grad=True)
    fake = torch.randn(8, 2, requires_grad=True)
    losses.gradient_penalty(linear_critic(w), real, fake, weight=10.0).backward()
    assert torch.allclose(w.grad, 10 * 2 * (2 - 1) * w.detach() / 2)
    assert real.grad is None and fake.grad is None  # the penalty never reaches G or the data


def test_gradient_penalty_is_per_sample_norm():
    # f(x) = 0.5 ||x||^2 per sample has gradient x, so the penalty is weight * mean((||x_hat_i|| - 1)^2);
    # with real = fake the interpolate is known exactly whatever eps is.
    x = torch.tensor([[3.0, 4.0], [0.0, 0.5]])  # norms 5 and 0.5
    critic = lambda v: 0.5 * (v ** 2).sum(1)
    expected = 10 * ((5 - 1) ** 2 + (0.5 - 1) ** 2) / 2
    assert losses.gradient_penalty(critic, x, x.clone()).item() == pytest.approx(expected)


def test_gradient_penalty_takes_any_callable_critic():
    # a conditional critic f(x, y) = W[y] . x with unit rows: the penalty is 0 whatever the labels
    torch.manual_seed(0)
    W = torch.randn(3, 5)
    W = W / W.norm(dim=1, keepdim=True)
    y = torch.tensor([0, 2, 1, 2])
    critic = lambda x, labels: (x * W[labels]).sum(1)
    penalty = losses.gradient_penalty(lambda x: critic(x, y), torch.randn(4, 5), torch.randn(4, 5))
    assert penalty.item() == pytest.approx(0, abs=1e-10)


def test_gradient_penalty_rejects_mismatched_shapes():
    critic = linear_critic(torch.ones(2))
    with pytest.raises(ValueError, match=r"same shape.*\(4, 2\).*\(5, 2\)"):
        losses.gradient_penalty(critic, torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(lambda x: x.flatten(1).sum(1), torch.zeros(4, 1, 8, 8), torch.zeros(4, 8, 8))


def test_gradient_penalty_repeats_with_a_seeded_generator():
    critic = lambda v: 0.5 * (v.flatten(1) ** 2).sum(1)
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    a = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    b = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    c = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(4))
    assert a.item() == b.item() != c.item()


def _gradient_penalty_per_element(critic, real, fake, *, weight=10.0):
    """The known bug: eps drawn per element, so x_hat leaves the segment between real and fake."""
    eps = torch.rand_like(real)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _interpolates_on_segments(penalty_fn, shape) -> bool:
    """Call penalty_fn with a critic that records x_hat; True if each x_hat_i = real_i + t_i (fake_i - real_i)
    for one t_i in [0, 1] per sample, i.e. (x_hat - fake) / (real - fake) is constant within each sample."""
    torch.manual_seed(0)
    fake = torch.randn(32, *shape)
    real = fake + 1 + torch.rand(32, *shape)  # real - fake >= 1 everywhere: the ratio is well defined
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return 0.5 * (x.flatten(1) ** 2).sum(1)

    penalty_fn(critic, real, fake)
    (x_hat,) = seen
    t = ((x_hat - fake) / (real - fake)).flatten(1)
    constant = (t.max(1).values - t.min(1).values).max() < 1e-5
    in_range = (t >= -1e-6).all() and (t <= 1 + 1e-6).all()
    varies = t[:, 0].std() > 0.1  # a different eps for different samples
    return bool(constant and in_range and varies)


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (3, 4, 4)])
def test_gradient_penalty_draws_eps_once_per_sample(shape):
    assert _interpolates_on_segments(losses.gradient_penalty, shape)
    assert not _interpolates_on_segments(_gradient_penalty_per_element, shape)  # the check catches the bug


# -- weight clipping and spectral norm ------------------------------------------------------------
def test_clip_weights_clamps_in_place_and_checks_c():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        net[0].weight[0, 0] = 0.005  # inside the bound: untouched
        net[0].weight[0, 1] = 3.0
        net[2].bias[0] = -2.0
    assert losses.clip_weights_(net, 0.01) is net
    assert all(p.abs().max() <= 0.01 for p in net.parameters())
    assert net[0].weight[0, 0].item() == pytest.approx(0.005)
    assert net[0].weight[0, 1].item() == pytest.approx(0.01) and net[2].bias[0].item() == pytest.approx(-0.01)
    assert all(p.is_leaf and p.requires_grad for p in net.parameters())
    for bad in (0, -0.01):
        with pytest.raises(ValueError, match="c must be > 0"):
            losses.clip_weights_(net, bad)


def _weight_matrix(m):
    w = m.weight.detach()
    if isinstance(m, nn.ConvTranspose2d):  # its output channels are dim 1
        w = w.transpose(0, 1)
    return w.flatten(1)


def test_spectral_normalize_gives_unit_top_singular_values():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.ConvTranspose2d(8, 4, 4, 2, 1),
                        nn.Flatten(), nn.Linear(4 * 8 * 8, 16), nn.GroupNorm(1, 16), nn.Linear(16, 1))
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight") and m.weight.dim() > 1:
                m.weight.mul_(5)  # start far from 1
    layers = [m for m in net if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    assert all(torch.linalg.matrix_norm(_weight_matrix(m), ord=2) > 1.5 for m in layers)
    assert spectral_normalize(net) is net
    assert spectral_normalize(net) is net  # a second call adds no second normalisation
    assert all(len(m.parametrizations.weight) == 1 for m in layers)
    assert not hasattr(net[5], "parametrizations")  # norms keep their plain weights
    net.train()
    x = torch.randn(2, 3, 8, 8)
    for _ in range(30):  # one power iteration per forward pass
        net(x)
    for m in layers:
        assert torch.linalg.matrix_norm(_weight_matrix(m), ord=2).item() == pytest.approx(1, abs=1e-2)


# -- the critic network ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", (16, 32, 64))
@pytest.mark.parametrize("channels", (1, 3))
@pytest.mark.parametrize("norm", ("layer", "none"))
def test_dcgan_critic_shapes_and_no_batchnorm(size, channels, norm):
    torch.manual_seed(0)
    D = DCGANCritic(image_size=size, channels=channels, width=8, norm=norm)
    assert D(torch.rand(5, channels, size, size) * 2 - 1).shape == (5,)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    norms = [m for m in D.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == (int(math.log2(size)) - 3 if norm == "layer" else 0)
    assert all(m.num_groups == 1 for m in norms)  # one group: a layer norm over (C, H, W)


@pytest.mark.parametrize("norm", ("layer", "none"))
def test_dcgan_critic_scores_each_image_on_its_own(norm):
    torch.manual_seed(0)
    D = DCGANCritic(image_size=16, channels=1, width=8, norm=norm).train()
    x = torch.randn(6, 1, 16, 16)
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-5)  # what the gradient penalty relies on


def test_dcgan_critic_arguments_and_inputs_are_checked():
    with pytest.raises(ValueError, match="BatchNorm"):
        DCGANCritic(norm="batch")
    with pytest.raises(ValueError, match=r"\(16, 32, 64\)"):
        DCGANCritic(image_size=28)
    with pytest.raises(ValueError, match=r"\(batch, 1, 32, 32\).*\(4, 3, 32, 32\)"):
        DCGANCritic(width=8)(torch.zeros(4, 3, 32, 32))


# -- objectives -----------------------------------------------------------------------------------
def test_objective_registry():
    assert tuple(losses.OBJECTIVES) == OBJECTIVE_NAMES
    gp = losses.objective("wgan-gp")
    assert (gp.gradient_penalty, gp.gp_weight, gp.n_critic, gp.lr, gp.betas) == (True, 10.0, 5, 1e-4, (0.0, 0.9))
    clip = losses.objective("WGAN_clip")  # case and underscores forgiven
    assert (clip.clip, clip.n_critic, clip.optimizer, clip.lr) == (0.01, 5, "rmsprop", 5e-5)
    sn = losses.objective("spectral-norm")
    assert sn.spectral_norm and sn.d_loss is losses.discriminator_loss_hinge and sn.n_critic == 1
    assert losses.objective(gp) is gp
    with pytest.raises(dataclasses.FrozenInstanceError):
        gp.n_critic = 1
    assert losses.objective("wgan") is losses.objective("wgan-clip")  # the paper's name
    assert losses.objective("saturating") is losses.objective("minimax")
    assert losses.objective("minimax").probabilities and not losses.objective("hinge").probabilities
    with pytest.raises(ValueError, match="unknown objective 'wgan-lp'.*'hinge'.*'wgan-gp'"):
        losses.objective("wgan-lp")
