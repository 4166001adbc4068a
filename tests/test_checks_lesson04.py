"""The graded checks of lesson 04 accept right answers and explain the typical wrong ones in words."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import answers
from gancourse import losses
from gancourse.checks import CheckFailed
from gancourse.checks import lesson04 as checks
from gancourse.train import AdversarialGAN, StepContext


# -- right answers ------------------------------------------------------------------------------------
class _Replay:
    """Data for the library's loop that serves sample_real()'s batches (the first one peeked at for its size)."""

    def __init__(self, sample_real):
        self.first, self.sample_real = sample_real(), sample_real

    def sample(self, n):
        if self.first is not None:
            batch, self.first = self.first, None
            return batch
        return self.sample_real()


def library_train_step(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
    """The course's own adversarial step (AdversarialGAN with WGAN-GP), run on the optimisers and data the check hands over."""
    gan = AdversarialGAN(G, D, objective="wgan-gp", n_critic=n_critic, gp_weight=gp_weight)
    gan.opts = {"G": opt_G, "D": opt_D}
    data = _Replay(sample_real)
    metrics = gan.train_step(StepContext(data, len(data.first), 0, torch.device("cpu")))
    return metrics["loss_D"], metrics["loss_G"]


def test_right_answers_pass(capsys):
    checks.check_wasserstein_losses(losses.critic_loss_wasserstein, losses.generator_loss_wasserstein)
    checks.check_clip_weights(losses.clip_weights_)
    checks.check_gradient_penalty(lambda critic, real, fake, weight=10.0:
                                  losses.gradient_penalty(critic, real, fake, weight=weight))
    checks.check_train_step(answers.l04_train_step)
    checks.check_train_step(library_train_step)
    checks.check_train_step(answers.l04_train_step, n_critic=1, gp_weight=5.0, seed=3)
    assert capsys.readouterr().out.count("✓") == 6


def test_other_right_answers_pass():
    def clip_with_data(module, c):  # p.data is the old idiom; it still changes the parameter in place
        for p in module.parameters():
            p.data.clamp_(-c, c)

    def penalty_other_way_round(critic, real, fake, weight=10.0):  # eps on the fake side is just as uniform
        eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1))
        x_hat = ((1 - eps) * real + eps * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return weight * ((grad.view(len(grad), -1).norm(dim=1) - 1) ** 2).mean()

    def step_with_detach_and_numbers(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        for _ in range(n_critic):
            real = sample_real()
            fake = G(torch.randn(len(real), z_dim)).detach()
            loss_d = (D(fake) - D(real)).mean()
            D.zero_grad()
            (loss_d + penalty_other_way_round(D, real, fake, gp_weight)).backward()
            opt_D.step()
        opt_G.zero_grad()
        loss_g = -D(G(torch.randn(len(real), z_dim))).mean()
        loss_g.backward()
        opt_G.step()
        return loss_d.item(), loss_g.item()

    def step_scoring_g_twice_and_freezing_d(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        for _ in range(n_critic):
            real = sample_real()
            z = torch.randn(len(real), z_dim)
            loss_d = losses.critic_loss_wasserstein(D(real), D(G(z).detach()))
            gp = losses.gradient_penalty(D, real, G(z).detach(), weight=gp_weight)  # the same z, called again
            opt_D.zero_grad(set_to_none=False)
            (loss_d + gp).backward()
            opt_D.step()
        D.requires_grad_(False)
        loss_g = losses.generator_loss_wasserstein(D(G(torch.randn(len(real), z_dim))))
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        D.requires_grad_(True)
        return loss_d.detach(), loss_g.detach()

    checks.check_wasserstein_losses(lambda r, f: (f - r).mean(), lambda f: -torch.mean(f))
    checks.check_clip_weights(clip_with_data)
    checks.check_gradient_penalty(penalty_other_way_round)
    checks.check_train_step(step_with_detach_and_numbers)
    checks.check_train_step(step_scoring_g_twice_and_freezing_d)


def test_checks_leave_the_students_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_wasserstein_losses(losses.critic_loss_wasserstein, losses.generator_loss_wasserstein)
    checks.check_gradient_penalty(answers.l04_gradient_penalty)
    checks.check_train_step(answers.l04_train_step)
    assert torch.equal(torch.rand(3), expected)


def test_unwritten_answers_say_so():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for check in (lambda: checks.check_wasserstein_losses(stub, stub), lambda: checks.check_clip_weights(stub),
                  lambda: checks.check_gradient_penalty(stub), lambda: checks.check_train_step(stub)):
        with pytest.raises(CheckFailed, match="not written yet"):
            check()


def test_a_step_that_calls_an_unwritten_penalty_names_it():
    def gradient_penalty(critic, real, fake, weight=10.0):
        raise NotImplementedError()

    def step(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        real = sample_real()
        fake = G(torch.randn(len(real), z_dim)).detach()
        return gradient_penalty(D, real, fake, gp_weight)

    with pytest.raises(CheckFailed, match="calls gradient_penalty, which is not written yet"):
        checks.check_train_step(step)


# -- task 1: the Wasserstein losses -------------------------------------------------------------------
RIGHT_G = losses.generator_loss_wasserstein
RIGHT_C = losses.critic_loss_wasserstein


@pytest.mark.parametrize("critic_loss, generator_loss, message", [
    (lambda r, f: r.mean() - f.mean(), RIGHT_G, "critic_loss has the wrong sign"),
    (lambda r, f: losses.discriminator_loss(r, f), RIGHT_G, "binary cross-entropy.*no sigmoid"),
    (lambda r, f: torch.sigmoid(f).mean() - torch.sigmoid(r).mean(), RIGHT_G, "not linear.*sigmoid or a log"),
    (lambda r, f: -(F.logsigmoid(r).mean() - F.logsigmoid(f).mean()), RIGHT_G, "not linear"),
    (lambda r, f: f.sum() - r.sum(), RIGHT_G, r"64 times.*\.mean\(\) instead of \.sum\(\)"),
    (lambda r, f: f - r, RIGHT_G, r"shape \(64,\).*forget \.mean"),
    (lambda r, f: torch.tensor(float((f.mean() - r.mean()).detach())), RIGHT_G, "no gradient"),
    (lambda r, f: (f.mean() - r.mean()).detach(), RIGHT_G, "no gradient"),
    (lambda r, f: float(f.mean() - r.mean()), RIGHT_G, "should return a torch.Tensor"),
    (RIGHT_C, lambda f: f.mean(), "generator_loss has the wrong sign"),
    (RIGHT_C, lambda f: -F.logsigmoid(f).mean(), "generator_loss is not linear.*BCE habit"),
    (RIGHT_C, lambda f: -f.sum(), r"64 times.*\.mean\(\)"),
    (RIGHT_C, lambda f: torch.tensor(-float(f.mean().detach())), "generator_loss returned a tensor with no gradient"),
    (RIGHT_C, lambda f: None, "forget `return`"),
])
def test_wrong_wasserstein_losses_are_explained(critic_loss, generator_loss, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_wasserstein_losses(critic_loss, generator_loss)


# -- task 2: weight clipping --------------------------------------------------------------------------
def clip_a_copy(module, c):
    module = copy.deepcopy(module)
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
    return module


def clip_out_of_place(module, c):
    for p in module.parameters():
        p = p.clamp(-c, c)  # rebinds the name; the module keeps its parameter


def clip_only_weights(module, c):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.clamp_(-c, c)


def clip_only_linear_layers(module, c):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.clamp_(-c, c)
                m.bias.clamp_(-c, c)


def clip_fixed_bound(module, c):
    losses.clip_weights_(module, 0.01)


def clip_to_positive(module, c):
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(0, c)


def clip_to_sign(module, c):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.sign() * c)


def clip_gradients(module, c):
    for p in module.parameters():
        p.grad.clamp_(-c, c)


def clip_without_no_grad(module, c):
    for p in module.parameters():
        p.clamp_(-c, c)


def clip_into_new_parameters(module, c):
    for m in module.modules():
        for name, p in list(m.named_parameters(recurse=False)):
            setattr(m, name, nn.Parameter(p.detach().clamp(-c, c)))


def clip_and_freeze(module, c):
    for p in module.parameters():
        p.requires_grad_(False)
        p.clamp_(-c, c)


@pytest.mark.parametrize("answer, message", [
    (clip_a_copy, "clipped a copy"),
    (clip_out_of_place, "left every parameter unchanged.*clamp_"),
    (clip_only_weights, r"skipped some parameters: 0.bias \(Linear\), 2.bias \(Linear\).*Biases count too"),
    (clip_only_linear_layers, r"skipped some parameters: 3.weight \(LayerNorm\), 3.bias \(LayerNorm\)\. Clip every"),
    (clip_fixed_bound, r"lie in \[-0.01, 0.01\].*rather than a fixed number"),
    (clip_to_positive, r"lie in \[0, 0.05\]: the negative values are gone.*not \[0, c\]"),
    (clip_to_sign, "already inside"),
    (clip_gradients, "clipped the gradients, not the weights"),
    (clip_without_no_grad, "torch.no_grad"),
    (clip_into_new_parameters, "replaced the module's parameters"),
    (clip_and_freeze, "no longer require gradients"),
])
def test_wrong_clipping_is_explained(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_clip_weights(answer)


# -- task 3: the gradient penalty ---------------------------------------------------------------------
def make_penalty(*, eps="sample", create_graph=True, norm="sample", form="gp", wrt="x_hat", reduce="mean",
                 use_weight=True, detach_result=False):
    """A gradient penalty with one typical mistake switched on."""
    def gradient_penalty(critic, real, fake, weight=10.0):
        B = real.shape[0]
        if eps == "sample":
            e = torch.rand(B, *[1] * (real.dim() - 1))
        elif eps == "element":
            e = torch.rand_like(real)
        elif eps == "normal":
            e = torch.randn(B, *[1] * (real.dim() - 1))
        elif eps == "batch":
            e = torch.rand(1)
        elif eps == "2d":
            e = torch.rand(B, 1)
        x_hat = (e * real + (1 - e) * fake).detach().requires_grad_(True)
        scores = critic(x_hat)
        if wrt == "x_hat":
            (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=create_graph)
            if norm == "sample":
                norms = grad.flatten(1).norm(2, dim=1)
            elif norm == "batch":
                norms = grad.norm()
            elif norm == "dim1":
                norms = grad.norm(2, dim=1)
        else:
            grads = torch.autograd.grad(scores.sum(), list(critic.parameters()), create_graph=create_graph)
            norms = torch.cat([g.flatten() for g in grads]).norm()
        if form == "gp":
            per = (norms - 1) ** 2
        elif form == "squared":
            per = norms ** 2
        elif form == "squared_norm":
            per = (norms ** 2 - 1) ** 2
        out = (per.mean() if reduce == "mean" else per.sum()) * (weight if use_weight else 10.0)
        return out.detach() if detach_result else out
    return gradient_penalty


def test_reference_penalty_factory_is_right():
    checks.check_gradient_penalty(make_penalty())


@pytest.mark.parametrize("options, message", [
    ({"eps": "element"}, "does not lie on the segment.*per element.*per sample"),
    ({"eps": "normal"}, r"beyond their real or fake sample.*torch.rand, not torch.randn"),
    ({"eps": "batch"}, "every sample got the same eps"),
    ({"eps": "2d"}, r"\(256, 3, 4, 4\).*shape \(256, 1, 1, 1\)"),
    ({"create_graph": False}, "cannot train the critic.*create_graph=True"),
    ({"detach_result": True}, "create_graph=True"),
    ({"norm": "batch"}, "one norm over the whole batch.*per sample"),
    ({"norm": "dim1"}, r"images.*grad.flatten\(1\).norm\(2, dim=1\)"),
    ({"form": "squared"}, r"penalise \|\|grad\|\|²"),
    ({"form": "squared_norm"}, "squared norm.*use the norm itself"),
    ({"wrt": "weights"}, "changes when the samples move.*with respect to x_hat.*not the critic's parameters"),
    ({"reduce": "sum"}, r"summed .* over the 8 samples.*\.mean\(\)"),
    ({"use_weight": False}, "ignores its weight argument"),
])
def test_wrong_penalties_are_explained(options, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_gradient_penalty(make_penalty(**options))


def test_penalty_without_requires_grad_is_explained():
    def no_requires_grad(critic, real, fake, weight=10.0):
        e = torch.rand(real.shape[0], 1)
        x_hat = e * real + (1 - e) * fake
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return weight * ((grad.norm(dim=1) - 1) ** 2).mean()

    with pytest.raises(CheckFailed, match=r"x_hat.requires_grad_\(True\)"):
        checks.check_gradient_penalty(no_requires_grad)


def test_penalty_at_the_real_samples_is_explained():
    def at_real(critic, real, fake, weight=10.0):
        x = real.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    with pytest.raises(CheckFailed, match="real .*batch itself"):
        checks.check_gradient_penalty(at_real)


# -- task 4: the n_critic loop ------------------------------------------------------------------------
def make_step(*, reuse_real=False, loop=True, g_in_loop=False, detach=True, step_d_after_g=False,
              zero_d=True, zero_g=True, reuse_z=False, use_gp=True, hard_n_critic=None, sign=1.0, z_from="randn",
              leave_d_frozen=False):
    """train_step with one typical mistake switched on (the defaults give a right answer)."""
    def train_step(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        n = hard_n_critic or n_critic
        real = sample_real() if reuse_real else None
        z_fixed = None
        for _ in range(n if loop else 1):
            if not reuse_real:
                real = sample_real()
            if reuse_z and z_fixed is not None:
                z = z_fixed
            else:
                z = torch.randn(len(real), z_dim) if z_from == "randn" else torch.rand(len(real), z_dim)
                z_fixed = z
            fake = G(z).detach() if detach else G(z)
            loss_d = sign * (D(fake).mean() - D(real).mean())
            total = loss_d
            if use_gp:
                total = total + losses.gradient_penalty(D, real, fake, weight=gp_weight)
            if zero_d:
                opt_D.zero_grad()
            total.backward()
            opt_D.step()
            if g_in_loop:
                opt_G.step()
        z = z_fixed if reuse_z else torch.randn(len(real), z_dim)
        if leave_d_frozen:
            D.requires_grad_(False)
        loss_g = -D(G(z)).mean()
        if zero_g:
            opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        if step_d_after_g:
            opt_D.step()
        return loss_d, loss_g
    return train_step


def test_reference_step_factory_is_right():
    checks.check_train_step(make_step())


@pytest.mark.parametrize("options, message", [
    ({"reuse_real": True}, "one real batch was reused for all 3 critic updates.*inside the loop"),
    ({"loop": False}, "the critic was updated only once for n_critic=3"),
    ({"hard_n_critic": 5}, "updated 5 times for n_critic=3"),
    ({"g_in_loop": True}, "G was updated 4 times.*out of the loop"),
    ({"detach": False}, r"sends gradients into G.*torch.no_grad\(\) or use G\(z\).detach\(\)"),
    ({"step_d_after_g": True}, "D's weights changed during G's update"),
    ({"zero_d": False}, r"left over.*opt_D.zero_grad\(\)"),
    ({"zero_g": False}, r"G's update used gradients left over.*opt_G.zero_grad\(\)"),
    ({"reuse_z": True}, "same z was used more than once"),
    ({"z_from": "rand"}, r"N\(0, I\).*torch.randn"),
    ({"use_gp": False}, "same with gp_weight=10.0 and gp_weight=0.*gradient_penalty"),
    ({"sign": -1.0}, "loss_D has the wrong sign"),
    ({"leave_d_frozen": True}, r"some of D's parameters no longer require gradients.*requires_grad_\(True\)"),
])
def test_wrong_train_steps_are_explained(options, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_train_step(make_step(**options))


def test_g_weights_moving_during_the_critic_updates_is_caught():
    def shared_optimizer_step(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        """Not detached, and G's gradients from the critic's loss are applied in the loop."""
        for _ in range(n_critic):
            real = sample_real()
            fake = G(torch.randn(len(real), z_dim))
            loss_d = D(fake).mean() - D(real).mean()
            opt_D.zero_grad()
            opt_G.zero_grad()
            loss_d.backward()
            opt_D.step()
            with torch.no_grad():  # a hand-written update of G that no optimiser hook sees
                for p in G.parameters():
                    p -= 1e-2 * p.grad
        opt_G.zero_grad()
        loss_g = -D(G(torch.randn(len(real), z_dim))).mean()
        loss_g.backward()
        opt_G.step()
        return loss_d, loss_g

    with pytest.raises(CheckFailed, match="sends gradients into G|G's weights changed"):
        checks.check_train_step(shared_optimizer_step)


def test_step_returning_nothing_or_a_dict_is_explained():
    def no_return(*args, **kwargs):
        make_step()(*args, **kwargs)

    with pytest.raises(CheckFailed, match="forget `return loss_D, loss_G`"):
        checks.check_train_step(no_return)

    def wrong_z_dim(G, D, opt_G, opt_D, sample_real, z_dim, n_critic=5, gp_weight=10.0):
        return make_step()(G, D, opt_G, opt_D, sample_real, 2, n_critic, gp_weight)

    with pytest.raises(CheckFailed, match=r"G expects z of shape \(batch, 3\)"):
        checks.check_train_step(wrong_z_dim)


# -- the run at the end of the notebook --------------------------------------------------------------
def test_wgan_run_check(capsys):
    from gancourse.data import load
    from gancourse.models import MLPGenerator

    ring = load("ring8", n=1000)
    G = MLPGenerator(z_dim=2, out_shape=(2,), hidden=8)
    checks.check_wgan_run([0.1, 0.5, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2], G, ring)
    assert "✓" in capsys.readouterr().out
    checks.check_wgan_run([0.0, 0.1], G, ring, require_decrease=False)
    with pytest.raises(CheckFailed, match="did not come down"):
        checks.check_wgan_run([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], G, ring)
    with pytest.raises(CheckFailed, match="became nan at step 1"):
        checks.check_wgan_run([0.1, float("nan")], G, ring, require_decrease=False)
