"""The graded checks of lesson 01 accept right answers and explain wrong ones in words."""
import pytest
import torch
import torch.nn.functional as F

import answers
from gancourse import losses
from gancourse.checks import CheckFailed
from gancourse.checks import lesson01 as checks


def test_right_answers_pass(capsys):
    checks.check_discriminator_loss(losses.discriminator_loss)
    checks.check_generator_losses(losses.generator_loss_saturating, losses.generator_loss_nonsaturating)
    checks.check_optimal_discriminator(lambda p, q: p / (p + q))
    checks.check_train_step(answers.l01_train_step)
    assert capsys.readouterr().out.count("✓") == 4


@pytest.mark.parametrize("answer, message", [
    (lambda r, f: -(F.logsigmoid(r) + F.logsigmoid(-f)), r"shape \(64,\); expected \(\)\..*forget \.mean"),
    (lambda r, f: F.logsigmoid(r).mean() + F.logsigmoid(-f).mean(), "wrong sign"),
    (lambda r, f: -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()), "non-finite|logsigmoid"),
    (lambda r, f: None, "returned NoneType.*forget `return`"),
    (lambda r, f: torch.tensor(1.0), "gave 1"),
])
def test_wrong_discriminator_losses_are_explained(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_discriminator_loss(answer)


def test_unwritten_answer_says_so():
    def stub(real_logits, fake_logits):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        checks.check_discriminator_loss(stub)


def test_swapped_generator_losses_are_caught():
    with pytest.raises(CheckFailed):
        checks.check_generator_losses(losses.generator_loss_nonsaturating, losses.generator_loss_saturating)


def test_optimal_discriminator_must_be_one_half_when_equal():
    with pytest.raises(CheckFailed, match="D\\*"):
        checks.check_optimal_discriminator(lambda p, q: q / (p + q))


def test_train_step_that_leaks_gradient_into_g_is_caught():
    def leaky(G, D, opt_G, opt_D, real, z_dim):
        z = torch.randn(len(real), z_dim)
        loss_d = losses.discriminator_loss(D(real), D(G(z)))  # no detach: G moves during D's step
        opt_D.zero_grad()
        opt_G.zero_grad()
        loss_d.backward()
        opt_D.step()
        opt_G.step()
        z = torch.randn(len(real), z_dim)
        loss_g = losses.generator_loss_nonsaturating(D(G(z)))
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        return loss_d, loss_g

    with pytest.raises(CheckFailed, match="detach|G's new weights|loss_G"):
        checks.check_train_step(leaky)


def test_train_step_that_forgets_to_step_d_is_caught():
    def lazy(G, D, opt_G, opt_D, real, z_dim):
        z = torch.randn(len(real), z_dim)
        loss_d = losses.discriminator_loss(D(real), D(G(z).detach()))
        z = torch.randn(len(real), z_dim)
        loss_g = losses.generator_loss_nonsaturating(D(G(z)))
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        return loss_d, loss_g

    with pytest.raises(CheckFailed, match="D's weights did not change"):
        checks.check_train_step(lazy)


def test_a_failed_check_renders_as_a_short_message():
    err = CheckFailed("discriminator_loss has the wrong sign\nsecond line")
    lines = err._render_traceback_()
    assert len(lines) == 2 and "Check failed" in lines[0] and "wrong sign" in lines[0]
