"""Checks for lesson 04, WGAN and WGAN-GP. Each takes the student's code and explains a wrong answer.

The four graded tasks: the critic's and the generator's Wasserstein losses, weight clipping, the
gradient penalty and the n_critic training step. Every check runs in a private random stream, so
checking never changes the student's seeded run.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gancourse import losses
from gancourse.checks import CheckFailed, call_naming_stubs, expect_tensor, keeps_rng, passed


def _close(a, b, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return bool(torch.allclose(torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double(),
                               rtol=rtol, atol=atol))


def _f(t) -> str:
    return f"{float(torch.as_tensor(t).detach()):.5g}"


# -- task 1: the Wasserstein losses -----------------------------------------------------------------
def _scores(seed: int, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * 2 + 1.5, torch.randn(n, generator=g) * 2 - 1.0


def _linear_in_scores(fn, *scores) -> bool:
    """A Wasserstein loss is linear in the scores: scaling them by 10 scales the loss by 10."""
    try:
        small = fn(*scores)
        big = fn(*(10 * s for s in scores))
    except Exception:
        return False
    return torch.is_tensor(small) and torch.is_tensor(big) and _close(big, 10 * small, rtol=1e-3, atol=1e-4)


@keeps_rng
def check_wasserstein_losses(critic_loss, generator_loss) -> None:
    """critic_loss(real_scores, fake_scores) = E f(fake) - E f(real); generator_loss(fake_scores) = -E f(fake)."""
    real, fake = _scores(0)
    n = len(real)
    # -- the critic's loss
    out = expect_tensor(call_naming_stubs(critic_loss, real, fake, name="critic_loss"), "critic_loss", shape=())
    expected = fake.mean() - real.mean()
    if not _close(out, expected):
        if _close(out, losses.discriminator_loss(real, fake), rtol=1e-3):
            raise CheckFailed("critic_loss is the binary cross-entropy of lesson 01. A critic's scores are not "
                              "logits: no sigmoid and no log. Use the raw scores: fake_scores.mean() - real_scores.mean().")
        if not _linear_in_scores(critic_loss, real, fake):
            raise CheckFailed("critic_loss is not linear in the scores: scaling every score by 10 should scale the "
                              "loss by 10. Did you apply a sigmoid or a log (a BCE habit)? The critic has no sigmoid "
                              "and its loss takes no log: fake_scores.mean() - real_scores.mean().")
        if _close(out, -expected):
            raise CheckFailed(f"critic_loss has the wrong sign: got {_f(out)}, expected {_f(expected)}. The critic "
                              "maximises E f(real) - E f(fake), so the loss it minimises is "
                              "fake_scores.mean() - real_scores.mean().")
        if _close(out, n * expected) or _close(out, -n * expected):
            raise CheckFailed(f"critic_loss gave {_f(out)}, {n} times the expected {_f(expected)} for a batch of "
                              f"{n}: average over the batch with .mean() instead of .sum().")
        raise CheckFailed(f"critic_loss gave {_f(out)}, expected {_f(expected)} = E f(fake) - E f(real).")
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    out = call_naming_stubs(critic_loss, r, f, name="critic_loss")
    if not torch.is_tensor(out) or out.grad_fn is None:
        raise CheckFailed("critic_loss returned a tensor with no gradient, so the critic cannot learn from it: "
                          "don't use .item(), .detach(), float() or NumPy inside a loss.")
    out.backward()
    if r.grad is None or f.grad is None or not (_close(f.grad, torch.full_like(f, 1 / n))
                                                 and _close(r.grad, torch.full_like(r, -1 / n))):
        raise CheckFailed("critic_loss has the right value but not the right gradient: build it from the score "
                          "tensors themselves, fake_scores.mean() - real_scores.mean().")

    # -- the generator's loss
    out = expect_tensor(call_naming_stubs(generator_loss, fake, name="generator_loss"), "generator_loss", shape=())
    expected = -fake.mean()
    if not _close(out, expected):
        if _close(out, losses.generator_loss_nonsaturating(fake), rtol=1e-3) or \
                _close(out, losses.generator_loss_saturating(fake), rtol=1e-3) or \
                not _linear_in_scores(generator_loss, fake):
            raise CheckFailed("generator_loss is not linear in the scores: did you apply a sigmoid or a log "
                              "(a BCE habit)? The WGAN generator loss uses the raw scores: -fake_scores.mean().")
        if _close(out, -expected):
            raise CheckFailed(f"generator_loss has the wrong sign: got {_f(out)}, expected {_f(expected)}. G wants "
                              "the critic to score its samples high, so it minimises -E f(G(z)) = -fake_scores.mean().")
        if _close(out, n * expected) or _close(out, -n * expected):
            raise CheckFailed(f"generator_loss gave {_f(out)}, {n} times the expected {_f(expected)}: average "
                              "with .mean() instead of .sum().")
        raise CheckFailed(f"generator_loss gave {_f(out)}, expected {_f(expected)} = -E f(fake).")
    f = fake.clone().requires_grad_(True)
    out = call_naming_stubs(generator_loss, f, name="generator_loss")
    if not torch.is_tensor(out) or out.grad_fn is None:
        raise CheckFailed("generator_loss returned a tensor with no gradient, so G cannot learn from it: "
                          "don't use .item(), .detach(), float() or NumPy inside a loss.")
    passed("critic_loss = E f(fake) - E f(real) and generator_loss = -E f(fake): raw scores, no log, "
           "averaged, differentiable")


# -- task 2: weight clipping ------------------------------------------------------------------------
def _clip_test_module(seed: int) -> nn.Module:
    """A small critic with weights, biases and a LayerNorm, every parameter spread well beyond ±0.3."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return net


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1] == "bias"


@keeps_rng
def check_clip_weights(fn) -> None:
    """fn(module, c) clamps every parameter of module into [-c, c], in place."""
    for c in (0.05, 0.3):
        net = _clip_test_module(seed=1 if c == 0.05 else 2)
        params = dict(net.named_parameters())
        before = {k: p.detach().clone() for k, p in params.items()}
        for p in params.values():  # gradients as after a backward pass: clipping must leave them alone
            p.grad = torch.full_like(p, 5.0)
        try:
            returned = fn(net, c)
        except NotImplementedError:
            raise CheckFailed("clip_weights is not written yet: replace `raise NotImplementedError()` with your "
                              "code and run its cell again.") from None
        except RuntimeError as err:
            if "leaf Variable" in str(err) or "requires grad" in str(err):
                raise CheckFailed("clip_weights changes a parameter in place while autograd is recording: do it "
                                  "inside `with torch.no_grad():` (then p.clamp_(-c, c) is allowed).") from err
            raise CheckFailed(f"clip_weights raised RuntimeError: {err}") from err
        except Exception as err:
            raise CheckFailed(f"clip_weights raised {type(err).__name__}: {err}") from err
        now = dict(net.named_parameters())
        if any(now[k] is not params[k] for k in params):
            raise CheckFailed("clip_weights replaced the module's parameters with new tensors; the optimiser still "
                              "holds the old ones and keeps training them unclipped. Change the values in place: "
                              "p.clamp_(-c, c) inside torch.no_grad().")
        beyond = [k for k in params if (before[k].abs() > c).any()]  # the parameters clipping must change
        unchanged = [k for k in beyond if torch.equal(params[k].detach(), before[k])]
        if len(unchanged) == len(beyond):
            if all(not torch.equal(p.grad, torch.full_like(p, 5.0)) for p in params.values() if p.grad is not None):
                raise CheckFailed("clip_weights clipped the gradients, not the weights. WGAN clamps the critic's "
                                  "parameters themselves after each update: p.clamp_(-c, c) on every p in "
                                  "module.parameters().")
            if isinstance(returned, nn.Module) and returned is not net:
                raise CheckFailed("clip_weights clipped a copy and left the module it was given unchanged; the "
                                  "training loop keeps using the original. Clamp the parameters in place: "
                                  "p.clamp_(-c, c) inside torch.no_grad().")
            raise CheckFailed("clip_weights left every parameter unchanged. p.clamp(-c, c) returns a new tensor "
                              "and leaves p as it was; clamp in place with p.clamp_(-c, c) inside torch.no_grad().")
        if unchanged:
            layers = dict(net.named_modules())
            named = [f"{k} ({type(layers[k.rsplit('.', 1)[0]]).__name__})" for k in unchanged]
            clipped = set(params) - set(unchanged)
            biases = " Biases count too: WGAN clips every parameter, biases included." if any(
                _is_bias(k) and k.rsplit(".", 1)[0] + ".weight" in clipped for k in unchanged) else ""
            raise CheckFailed(f"clip_weights skipped some parameters: {', '.join(named)}.{biases} Clip every "
                              "parameter of the module, whatever its layer: "
                              "`for p in module.parameters(): p.clamp_(-c, c)`.")
        if any(not p.requires_grad for p in params.values()):
            raise CheckFailed("after clip_weights some parameters no longer require gradients, so the critic stops "
                              "learning: change only their values (inside torch.no_grad()).")
        allv = torch.cat([p.detach().flatten() for p in params.values()])
        lo, hi = float(allv.min()), float(allv.max())
        where = f"for c = {c} your parameters lie in [{lo:.3g}, {hi:.3g}]"
        if hi > c + 1e-6 or lo < -c - 1e-6:
            raise CheckFailed(f"{where}, beyond [-c, c]. Clamp with the bound you are given: p.clamp_(-c, c).")
        if lo > -c + 1e-6 and hi > c - 1e-6:
            raise CheckFailed(f"{where}: the negative values are gone. Clamp to [-c, c], not [0, c]: "
                              "p.clamp_(-c, c).")
        if lo > -c + 1e-6 or hi < c - 1e-6:
            raise CheckFailed(f"{where}, but values beyond the bound belong exactly at -c and +c. Use the argument "
                              "c rather than a fixed number: p.clamp_(-c, c).")
        expected = {k: v.clamp(-c, c) for k, v in before.items()}
        wrong = [k for k, p in params.items() if not torch.allclose(p.detach(), expected[k], atol=1e-7)]
        if wrong:
            raise CheckFailed(f"clip_weights moved values that were already inside [-c, c] (in {', '.join(wrong)}). "
                              "Clipping leaves them alone and only moves the ones outside to ±c: p.clamp_(-c, c).")
        changed_grads = [k for k, p in params.items() if p.grad is None or not torch.equal(p.grad, torch.full_like(p, 5.0))]
        if changed_grads:
            raise CheckFailed(f"clip_weights also changed the gradients of {', '.join(changed_grads)}; clip only the "
                              "parameters' values.")
    at_bound = float((allv.abs() == c).float().mean())
    passed(f"clip_weights clamps every parameter (weights, biases, LayerNorm) into [-c, c] in place; "
           f"on the test critic {100 * at_bound:.0f}% of the values now sit at ±c")


# -- task 3: the gradient penalty -------------------------------------------------------------------
class LinearCritic(nn.Module):
    """f(x) = w·flatten(x) + b, whose input gradient is w everywhere: the penalty is weight·(||w|| - 1)^2.

    It remembers every batch it is called on in `inputs` (detached copies), to see where x_hat lies.
    """

    def __init__(self, dim: int, norm: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(dim, generator=g)
        self.w = nn.Parameter(w / w.norm() * norm)
        self.b = nn.Parameter(torch.tensor(0.3))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return x.flatten(1) @ self.w + self.b


class QuadraticCritic(nn.Module):
    """f(x) = scale/2 · ||x||², whose input gradient is scale·x: a critic whose gradient changes with x."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return 0.5 * self.scale * (x.flatten(1) ** 2).sum(1)


def _pair(seed: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 0.6 + 1.0, torch.randn(shape, generator=g) * 0.6 - 1.0


def _penalty(fn, critic, real, fake, weight, what=""):
    context = f" on {what}" if what else ""
    hint = ""
    if real.dim() > 2:
        hint = (f" For a batch of shape {tuple(real.shape)}, eps needs shape ({real.shape[0]}, 1, 1, 1) to "
                "broadcast: torch.rand(B, *[1] * (real.dim() - 1)).")
    try:
        out = call_naming_stubs(fn, critic, real, fake, weight=weight, name="gradient_penalty", context=context)
    except CheckFailed as err:
        cause = str(err.__cause__ or "")
        if "does not require grad" in cause:
            raise CheckFailed("gradient_penalty asks autograd for the gradient at x_hat, but x_hat does not track "
                              "gradients: build it from detached real and fake, then x_hat.requires_grad_(True) "
                              "before calling the critic.") from None
        raise CheckFailed(str(err).rstrip(".") + "." + hint) from None
    return expect_tensor(out, "gradient_penalty" + context, shape=())


def _segment(x_hat: torch.Tensor, real: torch.Tensor, fake: torch.Tensor):
    """Where each x_hat lies relative to its segment fake -> real: (t, off) with x_hat ≈ fake + t·(real - fake),
    off the distance from that line relative to the segment's length."""
    d = (real - fake).flatten(1).double()
    v = (x_hat - fake).flatten(1).double()
    t = (v * d).sum(1) / (d * d).sum(1)
    off = (v - t[:, None] * d).norm(dim=1) / d.norm(dim=1)
    return t, off


def _check_interpolates(fn, shape: tuple[int, ...], what: str) -> None:
    real, fake = _pair(3, shape)
    critic = LinearCritic(math.prod(shape[1:]), 1.0)
    _penalty(fn, critic, real, fake, 10.0, what)
    calls = [x for x in critic.inputs if tuple(x.shape) == tuple(real.shape)]
    if not critic.inputs:
        raise CheckFailed("gradient_penalty never calls the critic: score x_hat with critic(x_hat) and take the "
                          "gradient of those scores with respect to x_hat.")
    if not calls:
        raise CheckFailed(f"the critic was called on shape {tuple(critic.inputs[-1].shape)}, expected x_hat of "
                          f"the batch's shape {tuple(real.shape)}: one interpolate per real/fake pair.")
    x_hat = calls[-1]
    if torch.equal(x_hat, real) or torch.equal(x_hat, fake):
        raise CheckFailed("the critic was scored at the real (or the fake) batch itself; the penalty is taken at "
                          "x_hat = eps * real + (1 - eps) * fake, between the two.")
    t, off = _segment(x_hat, real, fake)
    if float(off.median()) > 1e-4:
        raise CheckFailed(f"on {what}, x_hat does not lie on the segment between its real and its fake sample: eps "
                          "was drawn per element (per pixel), not per sample. Draw one eps per sample, shape "
                          "(B, 1) for points or (B, 1, 1, 1) for images: torch.rand(B, *[1] * (real.dim() - 1)).")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise CheckFailed(f"some x_hat lie beyond their real or fake sample (eps ranges over [{lo:.2f}, {hi:.2f}]): "
                          "draw eps uniformly from [0, 1] with torch.rand, not torch.randn.")
    if hi - lo < 1e-4:
        raise CheckFailed(f"every sample got the same eps ({lo:.3f}): draw one eps per sample, "
                          "torch.rand(B, 1, ...) with B = real.shape[0], not a single number.")
    mean, std = float(t.mean()), float(t.std())
    if not (0.4 < mean < 0.6 and 0.2 < std < 0.38):
        raise CheckFailed(f"eps should be uniform on [0, 1] (mean 0.5, std 0.29); over {len(t)} samples yours has "
                          f"mean {mean:.2f} and std {std:.2f}. Use torch.rand.")


@keeps_rng
def check_gradient_penalty(fn) -> None:
    """fn(critic, real, fake, weight=10.0) -> weight * E[(||grad critic(x_hat)||_2 - 1)^2]."""
    # 1. where the penalty is taken: each x_hat on the segment between its real and its fake sample
    _check_interpolates(fn, (512, 2), "2-D points")

    # 2. known answers: a linear critic's gradient is w everywhere, so the penalty is weight * (||w|| - 1)^2
    B = 8
    real, fake = _pair(5, (B, 2))
    v1 = _penalty(fn, LinearCritic(2, 1.0), real, fake, 10.0)
    v1_far = _penalty(fn, LinearCritic(2, 1.0), real * 10 + 5, fake * 10 - 5, 10.0)
    v2 = _penalty(fn, LinearCritic(2, 2.0), real, fake, 10.0)
    v2_w3 = _penalty(fn, LinearCritic(2, 2.0), real, fake, 3.0)
    if not (_close(v1, 0.0, atol=1e-4) and _close(v2, 10.0, rtol=1e-3) and _close(v2_w3, 3.0, rtol=1e-3)):
        known = (f"For a linear critic f(x) = w·x with ||w|| = 1 the penalty must be 0 (got {_f(v1)}); with "
                 f"||w|| = 2 it must be weight·(2 - 1)² = 10 (got {_f(v2)}).")
        if not _close(v1, v1_far, rtol=1e-3, atol=1e-4):
            raise CheckFailed(f"{known} Your penalty changes when the samples move, but a linear critic has the "
                              "same input gradient everywhere: take the gradient of critic(x_hat).sum() with respect "
                              "to x_hat, the inputs, not the critic's parameters.")
        if _close(v1, 10.0, rtol=1e-3) and _close(v2, 40.0, rtol=1e-3):
            raise CheckFailed(f"{known} You penalise ||grad||²; WGAN-GP penalises the distance of the norm from 1: "
                              "weight * ((norms - 1) ** 2).mean().")
        if _close(v1, 0.0, atol=1e-4) and _close(v2, 90.0, rtol=1e-3):
            raise CheckFailed(f"{known} You used the squared norm, (||grad||² - 1)²; use the norm itself: "
                              "norms = grad.flatten(1).norm(2, dim=1), then (norms - 1) ** 2.")
        if _close(v1, 10.0 * (math.sqrt(B) - 1) ** 2, rtol=1e-3):
            raise CheckFailed(f"{known} You took one norm over the whole batch; the penalty needs one norm per "
                              "sample: grad.flatten(1).norm(2, dim=1), then the mean of (norms - 1)² over the batch.")
        if _close(v2, 10.0 * B, rtol=1e-3):
            raise CheckFailed(f"{known} You summed (norms - 1)² over the {B} samples; average it with .mean().")
        if _close(v2, 1.0, rtol=1e-3):
            raise CheckFailed(f"{known} Multiply the mean of (norms - 1)² by weight.")
        if _close(v2, 10.0, rtol=1e-3) and _close(v2_w3, 10.0, rtol=1e-3):
            raise CheckFailed("gradient_penalty ignores its weight argument (weight=3 still gives 10): multiply by "
                              "weight, not by a fixed 10.")
        if _close(v1, 0.0, atol=1e-4) and _close(v2, 10.0, rtol=1e-3):
            raise CheckFailed(f"with weight=3 and ||w|| = 2 the penalty must be 3, got {_f(v2_w3)}: multiply by weight.")
        raise CheckFailed(f"{known} The penalty is weight * ((||grad f(x_hat)||_2 - 1) ** 2).mean(), one norm per sample.")

    # 3. the penalty must train the critic: its graph runs through the gradient (create_graph=True)
    critic = LinearCritic(2, 2.0)
    gp = _penalty(fn, critic, real, fake, 10.0)
    if not gp.requires_grad or gp.grad_fn is None:
        raise CheckFailed("the penalty has no gradient with respect to the critic's weights, so it cannot train "
                          "the critic: pass create_graph=True to torch.autograd.grad (and don't detach the "
                          "gradient or the result).")
    gp.backward()
    expected_grad = 10.0 * 2 * (2.0 - 1.0) * critic.w.detach() / 2.0
    if critic.w.grad is None or not _close(critic.w.grad, expected_grad, rtol=1e-3, atol=1e-4):
        raise CheckFailed("the penalty's gradient with respect to the critic's weights is wrong: build the input "
                          "gradient with torch.autograd.grad(scores.sum(), x_hat, create_graph=True), and keep it "
                          "in the graph.")

    # 4. a critic whose gradient varies: the value at the student's own x_hat, f(x) = ½||x||², gradient x
    real, fake = _pair(7, (16, 2))
    critic = QuadraticCritic()
    v = _penalty(fn, critic, real, fake, 10.0)
    x_hat = [x for x in critic.inputs if tuple(x.shape) == tuple(real.shape)][-1]
    expected = 10.0 * ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    if not _close(v, expected, rtol=1e-3, atol=1e-4):
        raise CheckFailed(f"for the critic f(x) = ½||x||², whose gradient at x_hat is x_hat, the penalty at your "
                          f"x_hat is {_f(expected)}, but gradient_penalty returned {_f(v)}: take the gradient of "
                          "critic(x_hat).sum() with respect to x_hat, the same x_hat the critic scored.")

    # 5. images: one eps per image, one norm per image over (C, H, W)
    _check_interpolates(fn, (256, 3, 4, 4), "images of shape (256, 3, 4, 4)")
    real, fake = _pair(9, (B, 3, 4, 4))
    v1 = _penalty(fn, LinearCritic(48, 1.0), real, fake, 10.0, "images")
    v2 = _penalty(fn, LinearCritic(48, 2.0), real, fake, 10.0, "images")
    if not (_close(v1, 0.0, atol=1e-4) and _close(v2, 10.0, rtol=1e-3)):
        raise CheckFailed(f"on images of shape {tuple(real.shape)} a linear critic with ||w|| = 1 must give 0 "
                          f"(got {_f(v1)}) and with ||w|| = 2 it must give 10 (got {_f(v2)}). Take each image's norm "
                          "over all its dimensions: grad.flatten(1).norm(2, dim=1), not the norm over dim=1 alone.")
    passed("gradient_penalty: one eps per sample in [0, 1], x_hat on the real-fake segment, one norm per sample, "
           "(||grad|| - 1)², and it trains the critic (create_graph=True)")


# -- task 4: the n_critic loop ----------------------------------------------------------------------
CHECK_BATCH = 32


class _ToyG(nn.Module):
    def __init__(self, z_dim: int = 3):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, z):
        if not torch.is_tensor(z) or z.dim() != 2 or z.shape[1] != self.z_dim:
            shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise ValueError(f"G expects z of shape (batch, {self.z_dim}) = (batch, z_dim); got {shape}")
        return self.net(z)


class _ToyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.LeakyReLU(0.2),
                                 nn.Linear(16, 1))

    def forward(self, x):
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != 2:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"D expects a batch of 2-D points, shape (batch, 2); got {shape}")
        return self.net(x).squeeze(1)


class _Run:
    """One instrumented call of a student's train_step on tiny networks and 2-D points."""

    def __init__(self, fn, *, n_critic: int, gp_weight: float, seed: int, z_dim: int = 3):
        torch.manual_seed(seed)
        self.G, self.D = _ToyG(z_dim), _ToyD()
        self.G0 = [p.detach().clone() for p in self.G.parameters()]
        self.D0 = [p.detach().clone() for p in self.D.parameters()]
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=1e-2, betas=(0.0, 0.9))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=1e-2, betas=(0.0, 0.9))
        self.events: list[str] = []
        self.real_batches: list[torch.Tensor] = []
        self.z_inputs: list[torch.Tensor] = []
        self.g_outputs: list[torch.Tensor] = []
        self.D_before_step: list[dict] = []
        self.flags: set[str] = set()
        self.G_at_G_step = self.D_at_G_step = None

        data = torch.Generator().manual_seed(seed + 100)

        def sample_real():
            batch = torch.randn(CHECK_BATCH, 2, generator=data) * 0.3 + torch.tensor([1.0, -0.5])
            self.real_batches.append(batch.clone())
            return batch

        self.G.register_forward_pre_hook(lambda m, args: self.z_inputs.append(args[0].detach().clone())
                                         if args and torch.is_tensor(args[0]) else None)
        self.G.register_forward_hook(lambda m, args, out: self.g_outputs.append(out.detach().clone()))
        first = next(self.G.parameters())
        first.register_hook(lambda grad: self.events.append("G_grad"))
        self.opt_D.register_step_pre_hook(self._pre_D)
        self.opt_D.register_step_post_hook(self._post_D)
        self.opt_G.register_step_pre_hook(self._pre_G)
        # gradients as left over from earlier steps: a missing zero_grad() shows up as NaN at the next step
        self._poison(self.G)
        self._poison(self.D)
        self.out = fn(self.G, self.D, self.opt_G, self.opt_D, sample_real, z_dim, n_critic=n_critic,
                      gp_weight=gp_weight)

    @staticmethod
    def _poison(net):
        for p in net.parameters():
            p.grad = torch.full_like(p, float("nan"))

    @staticmethod
    def _grad_state(net) -> str:
        grads = [p.grad for p in net.parameters()]
        if any(g is not None and torch.isnan(g).any() for g in grads):
            return "stale"
        if all(g is None or not g.abs().sum() > 0 for g in grads):
            return "empty"
        return "ok"

    def _pre_D(self, opt, args, kwargs):
        self.events.append("D_step")
        state = self._grad_state(self.D)
        if state != "ok":
            self.flags.add(f"D_{state}")
        self.D_before_step.append({k: v.detach().clone() for k, v in self.D.named_parameters()})

    def _post_D(self, opt, args, kwargs):
        self._poison(self.D)

    def _pre_G(self, opt, args, kwargs):
        self.events.append("G_step")
        state = self._grad_state(self.G)
        if state != "ok":
            self.flags.add(f"G_{state}")
        if self.G_at_G_step is None:
            self.G_at_G_step = [p.detach().clone() for p in self.G.parameters()]
            self.D_at_G_step = [p.detach().clone() for p in self.D.parameters()]

    def count(self, event: str) -> int:
        return self.events.count(event)


def same(a: list[torch.Tensor], b) -> bool:
    """Equal values, NaN included (a run with stale gradients can leave NaN weights behind)."""
    return all(torch.allclose(x, y.detach(), rtol=0, atol=0, equal_nan=True) for x, y in zip(a, b))


def _number(value, name: str) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise CheckFailed(f"{name} from train_step has shape {tuple(value.shape)}; return the scalar loss.")
        value = value.detach().float().item()
    if not isinstance(value, (int, float)):
        raise CheckFailed(f"train_step should return (loss_D, loss_G) as tensors or numbers; {name} is a "
                          f"{type(value).__name__}" + (" (did you forget to return it?)" if value is None else ""))
    if not math.isfinite(value):
        raise CheckFailed(f"{name} from train_step is {value}: the losses must stay finite.")
    return float(value)


@keeps_rng
def check_train_step(fn, n_critic: int = 3, gp_weight: float = 10.0, seed: int = 0) -> None:
    """fn(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=, gp_weight=) -> (loss_D, loss_G): n_critic critic
    updates on fresh data with the gradient penalty, then one generator update."""
    run = call_naming_stubs(_Run, fn, n_critic=n_critic, gp_weight=gp_weight, seed=seed, name="train_step")
    n = n_critic
    if not (isinstance(run.out, tuple) and len(run.out) == 2):
        raise CheckFailed(f"train_step should return the pair (loss_D, loss_G); it returned {type(run.out).__name__}"
                          + (" (did you forget `return loss_D, loss_G`?)" if run.out is None else ""))
    d_steps, g_steps = run.count("D_step"), run.count("G_step")
    D_moved = not same(run.D0, run.D.parameters())
    G_moved = not same(run.G0, run.G.parameters())
    # how often each network was updated, and in which order
    if g_steps == 0:
        raise CheckFailed("G was never updated: after the critic loop, compute loss_G and call opt_G.zero_grad(), "
                          "loss_G.backward(), opt_G.step()." if not G_moved else
                          "G's weights changed but opt_G.step() was never called: use the optimisers you are given.")
    if g_steps > 1:
        raise CheckFailed(f"G was updated {g_steps} times for n_critic={n}; G gets one update per train_step, after "
                          "the critic loop: move G's update out of the loop (and don't call opt_G.step() during "
                          "the critic's updates).")
    if "D_step" in run.events[run.events.index("G_step") + 1:] or not same(run.D_at_G_step, run.D.parameters()):
        raise CheckFailed("D's weights changed during G's update: the generator step calls only opt_G.step(). "
                          "Do all n_critic critic updates first, then G's update, and don't step opt_D after "
                          "loss_G.backward().")
    if d_steps == 0:
        raise CheckFailed("the critic was never updated: in each of the n_critic iterations call opt_D.zero_grad(), "
                          "backward on the critic's loss, opt_D.step()." if not D_moved else
                          "D's weights changed but opt_D.step() was never called: use the optimisers you are given.")
    if d_steps != n:
        once = " only once" if d_steps == 1 else f" {d_steps} times"
        raise CheckFailed(f"the critic was updated{once} for n_critic={n}: loop `for _ in range(n_critic):` around "
                          "the whole critic update (fresh data, loss, zero_grad, backward, step).")
    if "D_stale" in run.flags:
        raise CheckFailed("a critic update used gradients left over from an earlier backward pass: call "
                          "opt_D.zero_grad() before every critic backward (backward adds to .grad; it does not "
                          "replace it).")
    if "D_empty" in run.flags:
        raise CheckFailed("opt_D.step() found no gradients: call opt_D.zero_grad() before backward, not between "
                          "backward and step.")
    if "G_stale" in run.flags:
        raise CheckFailed("G's update used gradients left over from earlier: call opt_G.zero_grad() before "
                          "loss_G.backward() (backward adds to .grad; it does not replace it).")
    if "G_empty" in run.flags:
        raise CheckFailed("opt_G.step() found no gradients: call opt_G.zero_grad() before loss_G.backward(), not "
                          "between backward and step, and don't detach G's samples in G's update.")
    # fresh data for every critic update
    calls = len(run.real_batches)
    if calls == 0:
        raise CheckFailed("train_step never calls sample_real(): draw the real batch with real = sample_real().")
    if calls == 1 and n > 1:
        raise CheckFailed(f"one real batch was reused for all {n} critic updates: call real = sample_real() inside "
                          "the loop, so that every critic update sees a fresh real batch.")
    if calls < n:
        raise CheckFailed(f"sample_real() was called {calls} times for {n} critic updates: draw a fresh real batch "
                          "in every iteration of the loop.")
    # the critic's updates must not touch G
    last_d = len(run.events) - 1 - run.events[::-1].index("D_step")
    if "G_grad" in run.events[:last_d]:
        raise CheckFailed("the critic's loss sends gradients into G: the fake batch for the critic must not "
                          "carry G's graph. Generate it under torch.no_grad() or use G(z).detach().")
    if not same(run.G0, run.G_at_G_step):
        raise CheckFailed("G's weights changed during the critic's updates: only D may change in the loop. "
                          "Detach the fake batch and step only opt_D there.")
    # fresh noise every time (calling G twice on the same z in one update is fine, reusing it later is not)
    zs = run.z_inputs
    if len(zs) < n + 1:
        raise CheckFailed(f"G was called {len(zs)} times; expected a fresh fake batch for each of the {n} critic "
                          "updates and one more for G's update.")
    if any(len(z) != CHECK_BATCH for z in zs):
        raise CheckFailed(f"G got z batches of sizes {sorted({len(z) for z in zs})}; the real batches have "
                          f"{CHECK_BATCH} rows: draw z = torch.randn(len(real), z_dim).")
    runs = [z for i, z in enumerate(zs) if i == 0 or not torch.equal(z, zs[i - 1])]
    if len(runs) < n + 1 or any(torch.equal(runs[i], runs[j]) for i in range(len(runs))
                                for j in range(i + 1, len(runs))):
        raise CheckFailed("the same z was used more than once: draw a fresh z = torch.randn(len(real), z_dim) for "
                          "every critic update and again for G's update.")
    allz = torch.cat([z.flatten() for z in runs])
    if not (abs(float(allz.mean())) < 0.3 and 0.75 < float(allz.std()) < 1.25):
        raise CheckFailed(f"the noise z has mean {float(allz.mean()):.2f} and std {float(allz.std()):.2f}; draw it "
                          "from N(0, I) with torch.randn(len(real), z_dim).")
    frozen = [name for name, net in (("D", run.D), ("G", run.G)) if not all(p.requires_grad for p in net.parameters())]
    if frozen:
        raise CheckFailed(f"after train_step some of {frozen[0]}'s parameters no longer require gradients, so the "
                          "next step cannot train them: if you freeze a network for the other's update, switch it "
                          "back on (p.requires_grad_(True)) before returning.")
    # the values returned
    loss_d = _number(run.out[0], "loss_D")
    loss_g = _number(run.out[1], "loss_G")
    with torch.no_grad():
        expected_g = float(-run.D(run.g_outputs[-1]).mean())
        if len(run.g_outputs) >= 2:  # the last critic update: its real batch and its fake batch, D before that step
            scores = [torch.func.functional_call(run.D, run.D_before_step[-1], (x,))
                      for x in (run.real_batches[-1], run.g_outputs[-2])]
            expected_d = float(scores[1].mean() - scores[0].mean())
            if math.isclose(loss_d, -expected_d, rel_tol=1e-3, abs_tol=1e-5) and abs(expected_d) > 1e-4:
                raise CheckFailed(f"loss_D has the wrong sign ({loss_d:.4g}, expected {expected_d:.4g}): the critic "
                                  "minimises E f(fake) - E f(real), critic_loss(D(real), D(fake)).")
    if not math.isclose(loss_g, expected_g, rel_tol=1e-3, abs_tol=1e-5):
        if math.isclose(loss_g, -expected_g, rel_tol=1e-3, abs_tol=1e-5):
            raise CheckFailed(f"loss_G has the wrong sign ({loss_g:.4g}, expected {expected_g:.4g}): G minimises "
                              "-E f(G(z)), generator_loss(D(G(z))).")
        raise CheckFailed(f"loss_G is {loss_g:.4g}, expected generator_loss(D(G(z))) = {expected_g:.4g} on G's fresh "
                          "z after the critic loop, through the updated critic, without detaching G(z).")
    # the gradient penalty is part of the critic's loss
    if gp_weight > 0:
        other = call_naming_stubs(_Run, fn, n_critic=n_critic, gp_weight=0.0, seed=seed, name="train_step")
        if same([p.detach() for p in run.D.parameters()], other.D.parameters()):
            raise CheckFailed(f"the critic ends up the same with gp_weight={gp_weight} and gp_weight=0: the gradient "
                              "penalty does not reach the critic's update. Add gradient_penalty(D, real, fake, "
                              "weight=gp_weight) to the critic's loss before backward (and check task 3: the "
                              "penalty needs create_graph=True).")
    passed(f"train_step: {n} critic updates, each on a fresh real batch and fresh z with the gradient penalty and "
           "zeroed gradients, then one G update that leaves the critic alone")


# -- the run at the end of the notebook -------------------------------------------------------------
def check_wgan_run(w1_estimates, G, data, *, z_dim: int = 2, require_decrease: bool = True):
    """The student's train_step trained a WGAN-GP: finite losses, and (full runs) a falling W1 estimate.

    w1_estimates: the critic's W1 estimate per step, -loss_D. Returns the mode coverage of G's samples.
    """
    from gancourse.metrics import mode_coverage

    w1 = [float(v) for v in w1_estimates]
    if not w1:
        raise CheckFailed("no training step was recorded: run the training loop first.")
    if not all(math.isfinite(v) for v in w1):
        step = next(i for i, v in enumerate(w1) if not math.isfinite(v))
        raise CheckFailed(f"the critic's loss became {w1[step]} at step {step}: check the gradient penalty "
                          "(one norm per sample) and that the critic has no sigmoid.")
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        samples = G(torch.randn(2500, z_dim))
    if not torch.isfinite(samples).all():
        raise CheckFailed("G produces NaN or infinite samples: training diverged; check your losses' signs.")
    score = mode_coverage(samples, data.centers, data.sigma)
    k = max(1, len(w1) // 10)
    windows = [sum(w1[i:i + k]) / k for i in range(0, len(w1) - k + 1, k)]
    peak, last = max(windows[: max(1, len(windows) // 2)]), windows[-1]
    if require_decrease and not (peak > 0 and last < 0.8 * peak):
        raise CheckFailed(f"the critic's W1 estimate did not come down (highest {peak:.3f} early on, {last:.3f} at "
                          "the end). As G improves, E f(real) - E f(fake) should shrink: check the signs of your "
                          "losses and that G's update uses a fresh z.")
    passed(f"{len(w1)} steps with finite losses; W1 estimate {peak:.3f} (highest, early) -> {last:.3f} (end); "
           f"{score}")
    return score


# -- task 5: W1 between two samples on a line ----------------------------------------------------------------
def w1_by_cdfs(x: torch.Tensor, y: torch.Tensor) -> float:
    """W1 of two 1-D empirical distributions as the area between their step CDFs (the lesson's formula), float64."""
    x, y = x.double().flatten().sort().values, y.double().flatten().sort().values
    points = torch.cat([x, y]).sort().values
    widths = points[1:] - points[:-1]
    cdf = lambda s: torch.searchsorted(s, points[:-1], right=True).double() / len(s)
    return float(((cdf(x) - cdf(y)).abs() * widths).sum())


def w1_problem(got, x: torch.Tensor, y: torch.Tensor, name: str = "w1_on_a_line") -> str | None:
    """What is wrong with `got` as W1 between the samples x and y (None: nothing). Shared with the judge."""
    if torch.is_tensor(got) and got.numel() == 1:
        got = float(got)
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"{name} returned {type(got).__name__}; return one number (a float or a 0-d tensor)"
    if not math.isfinite(got):
        return f"{name} returned {got}"
    want = w1_by_cdfs(x, y)
    if abs(got - want) <= 1e-6 * max(1.0, want):
        return None
    x64, y64 = x.double(), y.double()
    xs, ys = x64.sort().values, y64.sort().values
    candidates = {
        "unsorted": float((x64 - y64).abs().mean()),
        "means": float((x64.mean() - y64.mean()).abs()),
        "w2": float((xs - ys).pow(2).mean().sqrt()),
        "reversed": float((xs - ys.flip(0)).abs().mean()),
    }
    close = lambda v: abs(got - v) <= 1e-6 * max(1.0, abs(v))
    if close(candidates["unsorted"]):
        hint = ("pairing x[i] with y[i] as given is one transport plan, not the cheapest one: which pairing of two "
                "sets of points on a line moves the mass the least?")
    elif close(candidates["means"]):
        hint = ("|mean(x) - mean(y)| is only a lower bound: it is the W1 distance when one sample is a shifted copy "
                "of the other, and too small when their spreads differ.")
    elif close(candidates["w2"]):
        hint = "that is the Wasserstein-2 distance (squares, then a root); W1 averages the distances themselves."
    elif close(candidates["reversed"]):
        hint = "the smallest x should move to the smallest y: sort both in the same order."
    else:
        hint = "each sample puts mass 1/n on each of its points; find the cheapest way to move one set onto the other."
    return f"{name} gave {got:.6g} for samples of {len(x)} points, but W1 is {want:.6g}: {hint}"


def w1_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    return [(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([5.0, 3.0, 4.0])),            # a shift of 3
            (torch.randn(200, generator=g), 0.5 + 2 * torch.randn(200, generator=g)),  # different spreads
            (torch.rand(50, generator=g), torch.rand(50, generator=g)),
            (torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 2.0, 2.0]))]  # means equal, W1 = 1


def check_w1_on_a_line(fn) -> None:
    """fn(x, y) -> W1 between two 1-D samples of the same size (each point has mass 1/n)."""
    for x, y in w1_cases():
        problem = w1_problem(call_naming_stubs(fn, x.clone(), y.clone(), name="w1_on_a_line"), x, y)
        if problem:
            raise CheckFailed(problem)
    passed(f"w1_on_a_line matches the area between the two CDFs on all {len(w1_cases())} pairs of samples")


__all__ = ["check_wasserstein_losses", "check_clip_weights", "check_gradient_penalty", "check_train_step",
           "check_wgan_run", "LinearCritic", "QuadraticCritic", "CHECK_BATCH", "check_w1_on_a_line", "w1_problem"]
