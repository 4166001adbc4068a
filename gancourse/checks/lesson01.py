"""Checks for lesson 01, the GAN game. Each takes the student's function and explains a wrong answer."""
from __future__ import annotations

import math

import torch

from gancourse import losses
from gancourse.checks import CheckFailed, call, expect_close, expect_tensor, passed


def _logits(seed: int, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * 2 + 1, torch.randn(n, generator=g) * 2 - 1


def check_discriminator_loss(fn) -> None:
    """fn(real_logits, fake_logits) must be -mean log D(x) - mean log(1 - D(G(z)))."""
    real, fake = _logits(0)
    out = expect_tensor(call(fn, real, fake, name="discriminator_loss"), "discriminator_loss", shape=())
    expect_close(out, losses.discriminator_loss(real, fake), "discriminator_loss",
                 hint="The inputs are logits: D(x) = sigmoid(logit). Average each term over its batch.")
    swapped = losses.discriminator_loss(fake, real)
    if torch.allclose(out, swapped, atol=1e-5) and not torch.allclose(out, losses.discriminator_loss(real, fake)):
        raise CheckFailed("discriminator_loss treats real and fake the wrong way round: D should push "
                          "D(x) towards 1 for real x and D(G(z)) towards 0.")
    # extreme logits must not produce inf: log(sigmoid(-100)) underflows if computed naively
    big = expect_tensor(call(fn, torch.tensor([100.0, -100.0]), torch.tensor([-100.0, 100.0]),
                             name="discriminator_loss"), "discriminator_loss on logits of ±100", shape=())
    expect_close(big, losses.discriminator_loss(torch.tensor([100.0, -100.0]), torch.tensor([-100.0, 100.0])),
                 "discriminator_loss on logits of ±100",
                 hint="Use F.logsigmoid(l) for log D and F.logsigmoid(-l) for log(1 - D): they stay finite.",
                 rtol=1e-3)
    real_req = real.clone().requires_grad_(True)
    loss = call(fn, real_req, fake, name="discriminator_loss")
    if loss.grad_fn is None:
        raise CheckFailed("discriminator_loss returned a tensor with no gradient: don't use .item(), "
                          ".detach() or NumPy inside a loss.")
    passed("discriminator_loss matches -E[log D(x)] - E[log(1 - D(G(z)))], is stable and differentiable")


def check_generator_losses(saturating, nonsaturating) -> None:
    """Both generator losses, their values, and the gradients that make one of them saturate."""
    _, fake = _logits(1)
    sat = expect_tensor(call(saturating, fake, name="generator_loss_saturating"),
                        "generator_loss_saturating", shape=())
    expect_close(sat, losses.generator_loss_saturating(fake), "generator_loss_saturating",
                 hint="The minimax generator minimises E[log(1 - D(G(z)))] = mean of logsigmoid(-logit).")
    ns = expect_tensor(call(nonsaturating, fake, name="generator_loss_nonsaturating"),
                       "generator_loss_nonsaturating", shape=())
    expect_close(ns, losses.generator_loss_nonsaturating(fake), "generator_loss_nonsaturating",
                 hint="The non-saturating generator minimises -E[log D(G(z))] = -mean of logsigmoid(logit).")
    # where D is confident the sample is fake (logit -8), the saturating gradient all but vanishes
    grads = []
    for fn in (saturating, nonsaturating):
        logit = torch.tensor([-8.0], requires_grad=True)
        fn(logit).backward()
        grads.append(abs(logit.grad.item()))
    if not grads[0] < 1e-3 < 0.9 < grads[1]:
        raise CheckFailed(f"at logit -8 the gradients are {grads[0]:.3g} (saturating) and {grads[1]:.3g} "
                          "(non-saturating); expected almost 0 and almost 1.")
    passed(f"both generator losses are right; at D(G(z)) = sigmoid(-8) their gradients are "
           f"{grads[0]:.1e} (saturating) and {grads[1]:.2f} (non-saturating)")


def check_optimal_discriminator(fn) -> None:
    """fn(x, p_data, p_g) with densities evaluated at x must give p_data / (p_data + p_g)."""
    x = torch.linspace(-4, 5, 200)
    p_data = torch.distributions.Normal(0.0, 1.0).log_prob(x).exp()
    p_g = torch.distributions.Normal(1.5, 0.7).log_prob(x).exp()
    out = expect_tensor(call(fn, p_data, p_g, name="optimal_discriminator"), "optimal_discriminator",
                        shape=tuple(x.shape))
    expect_close(out, p_data / (p_data + p_g), "optimal_discriminator",
                 hint="D*(x) = p_data(x) / (p_data(x) + p_g(x)).")
    same = call(fn, p_data, p_data, name="optimal_discriminator")
    if not torch.allclose(same, torch.full_like(same, 0.5)):
        raise CheckFailed("when p_g = p_data the optimal discriminator must be 1/2 everywhere.")
    passed("optimal_discriminator matches D*(x) = p_data / (p_data + p_g), and is 1/2 when p_g = p_data")


def _tiny_nets(seed: int):
    torch.manual_seed(seed)
    G = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    D = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1),
                            torch.nn.Flatten(0))
    return G, D


def _algorithm1_step(G, D, opt_G, opt_D, real, z_dim):
    """One step of Algorithm 1 with k = 1 and the non-saturating G loss (the lesson's version)."""
    z = torch.randn(len(real), z_dim)
    loss_d = losses.discriminator_loss(D(real), D(G(z).detach()))
    opt_D.zero_grad()
    loss_d.backward()
    opt_D.step()
    z = torch.randn(len(real), z_dim)
    loss_g = losses.generator_loss_nonsaturating(D(G(z)))
    opt_G.zero_grad()
    loss_g.backward()
    opt_G.step()
    return loss_d, loss_g


def check_train_step(fn) -> None:
    """fn(G, D, opt_G, opt_D, real, z_dim) -> (loss_D, loss_G): one D update, then one G update."""
    runs = []
    for step_fn in (fn, _algorithm1_step):
        G, D = _tiny_nets(0)
        opt_G = torch.optim.SGD(G.parameters(), lr=0.1)
        opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
        real = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
        torch.manual_seed(7)
        out = call(step_fn, G, D, opt_G, opt_D, real, 4, name="train_step")
        runs.append((out, G, D))
    (out, G, D), (ref, G_ref, D_ref) = runs
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CheckFailed(f"train_step should return (loss_D, loss_G); it returned {type(out).__name__}")
    loss_d = expect_tensor(out[0], "loss_D from train_step", shape=())
    loss_g = expect_tensor(out[1], "loss_G from train_step", shape=())
    G0, D0 = _tiny_nets(0)
    if all(torch.equal(a, b) for a, b in zip(D.parameters(), D0.parameters())):
        raise CheckFailed("D's weights did not change: call opt_D.zero_grad(), loss_D.backward(), opt_D.step().")
    if all(torch.equal(a, b) for a, b in zip(G.parameters(), G0.parameters())):
        raise CheckFailed("G's weights did not change: call opt_G.zero_grad(), loss_G.backward(), opt_G.step().")
    expect_close(loss_d, ref[0], "loss_D", hint="Use discriminator_loss(D(real), D(fake.detach())) with "
                 "z = torch.randn(len(real), z_dim) drawn first, before G's z.")
    d_ok = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(D.parameters(), D_ref.parameters()))
    if not d_ok:
        raise CheckFailed("loss_D is right but D's new weights are not: update D before G, and zero D's "
                          "gradients first (G's step leaves gradients in D).")
    expect_close(loss_g, ref[1], "loss_G", hint="Draw a fresh z for G's step and use the non-saturating loss "
                 "on D(G(z)) without detaching.")
    g_ok = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(G.parameters(), G_ref.parameters()))
    if not g_ok:
        raise CheckFailed("loss_G is right but G's new weights are not: did D's step also move G? "
                          "Detach the fake batch in D's loss (G(z).detach()).")
    passed("train_step updates D, then G, exactly like Algorithm 1 (k = 1, non-saturating G loss)")


def check_trained_gan(trainer, data, min_modes: int | None = None, min_high_quality: float | None = None):
    """The last task: the student's GAN trained through the Trainer on a 2-D mixture."""
    from gancourse.metrics import mode_coverage

    if trainer.step == 0:
        raise CheckFailed("the trainer has not trained yet: call trainer.fit() first")
    finite = all(torch.isfinite(torch.tensor(v)) for r in trainer.history.records
                 for k, v in r.items() if k.startswith("loss"))
    if not finite:
        raise CheckFailed("a loss became NaN or infinite during training: check your losses on large logits")
    score = mode_coverage(trainer.sample(2500), data.centers, data.sigma)
    if min_modes is not None and score.modes_covered < min_modes:
        raise CheckFailed(f"{score}; expected at least {min_modes} modes. Train longer, or check the losses.")
    if min_high_quality is not None and score.high_quality < min_high_quality:
        raise CheckFailed(f"{score}; expected at least {100 * min_high_quality:.0f}% high-quality samples.")
    passed(f"trained {trainer.step} steps with your losses: {score}")
    return score


# -- task 6: where the optimal discriminator is unsure ------------------------------------------------
UNSURE_CASES = [(2.0, 0.5), (1.0, 1.0), (0.0, 2.0), (-1.5, 1.3), (3.0, 0.3)]
COUNT_HINT = ("D* = 1/2 exactly where p_data(x) = p_g(x). Take logs: the log-ratio of N(0, 1) and N(mu, s^2) "
              "is a polynomial in x. With s = 1 it is linear (one crossing); with s != 1 it is a quadratic, and two "
              "Gaussians of different widths always cross twice.")


def d_star_of_gaussians(x: torch.Tensor, mu: float, s: float) -> torch.Tensor:
    """D*(x) for real data N(0, 1) and a generator N(mu, s^2), in float64 (a sigmoid of the log-ratio)."""
    x = x.double()
    log_ratio = (-x ** 2 / 2) - (-math.log(s) - (x - mu) ** 2 / (2 * s ** 2))
    return torch.sigmoid(log_ratio)


def unsure_points_problem(points, mu: float, s: float, name: str = "unsure_points") -> str | None:
    """What is wrong with `points` as the sorted x where D* = 1/2 (None: nothing). Shared with the judge."""
    if isinstance(points, (list, tuple)):
        points = torch.tensor(points, dtype=torch.float64)
    if not torch.is_tensor(points):
        return f"{name}({mu}, {s}) returned {type(points).__name__}; return a 1-D tensor of x values"
    if points.dim() != 1:
        return f"{name}({mu}, {s}) returned shape {tuple(points.shape)}; return a 1-D tensor (one value per point)"
    if not torch.isfinite(points).all():
        return f"{name}({mu}, {s}) returned non-finite values {points.tolist()}"
    expected = 1 if s == 1 else 2
    if len(points) != expected:
        return f"for mu = {mu}, s = {s} you returned {len(points)} point(s), there are {expected}. {COUNT_HINT}"
    if len(points) > 1 and not bool((points[1:] > points[:-1]).all()):
        return f"{name}({mu}, {s}) returned {points.tolist()}: sort the points in ascending order"
    d = d_star_of_gaussians(points, mu, s)
    if not torch.allclose(d, torch.full_like(d, 0.5), atol=1e-4):
        shown = ", ".join(f"D*({x:.4g}) = {v:.4f}" for x, v in zip(points.tolist(), d.tolist()))
        return (f"for mu = {mu}, s = {s}: {shown}, not 1/2. Check your equation: p_data(x) = p_g(x) with "
                "p_g(x) = exp(-(x - mu)^2 / (2 s^2)) / (s sqrt(2 pi)); the 1/s in front matters when s != 1.")
    return None


def check_unsure_points(fn) -> None:
    """fn(mu, s): the sorted x where D*(x) = 1/2 for p_data = N(0, 1) and p_g = N(mu, s^2)."""
    for mu, s in UNSURE_CASES:
        problem = unsure_points_problem(call(fn, mu, s, name="unsure_points"), mu, s)
        if problem:
            raise CheckFailed(problem)
    passed(f"D* is exactly 1/2 at your points for all {len(UNSURE_CASES)} generators, one crossing when s = 1 "
           "and two otherwise")


__all__ = ["check_discriminator_loss", "check_generator_losses", "check_optimal_discriminator",
           "check_train_step", "check_trained_gan", "check_unsure_points", "unsure_points_problem"]
