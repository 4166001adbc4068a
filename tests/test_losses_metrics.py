"""Losses against hand-computed values, and the toy-set quality measure against known answers."""
import math

import pytest
import torch

from gancourse import losses
from gancourse.metrics import mode_coverage


def test_discriminator_loss_known_values():
    zero = torch.zeros(5)
    assert losses.discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(1)))
    assert losses.discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(losses.discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0])))


def test_generator_losses_and_their_gradients():
    l = torch.tensor([0.0])
    assert losses.generator_loss_saturating(l).item() == pytest.approx(-math.log(2))
    assert losses.generator_loss_nonsaturating(l).item() == pytest.approx(math.log(2))
    x = torch.tensor([-10.0], requires_grad=True)
    losses.generator_loss_saturating(x).backward()
    assert abs(x.grad.item()) < 1e-4  # saturates where D rejects the fake
    x.grad = None
    losses.generator_loss_nonsaturating(x).backward()
    assert x.grad.item() == pytest.approx(-1.0, abs=1e-4)
    with pytest.raises(ValueError, match="nonsaturating"):
        losses.generator_loss("wasserstein-ish")


def test_mode_coverage_known_answers():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.cat([torch.zeros(90, 2), torch.full((10, 2), 5.0)])  # one mode, 10% junk
    score = mode_coverage(samples, centers, sigma=0.1)
    assert (score.modes_covered, score.high_quality, score.counts) == (1, 0.9, [90, 0, 0])
    edge = torch.tensor([[0.3, 0.0], [0.31, 0.0]])  # exactly 3 sigma counts, just past it does not
    assert mode_coverage(edge, centers, sigma=0.1).counts[0] == 1
    few = torch.cat([torch.zeros(995, 2), torch.tensor([[10.0, 0.0]] * 5)])
    assert mode_coverage(few, centers, 0.1).modes_covered == 1  # 0.5% is under the 1% bar
    with pytest.raises(ValueError, match="shape"):
        mode_coverage(torch.zeros(4, 3), centers, 0.1)


def test_modes_reached_counts_nearest_modes_whatever_the_quality():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    smeared = torch.cat([torch.full((40, 2), 1.0), torch.tensor([[8.0, 1.0]] * 30), torch.tensor([[1.0, 8.0]] * 30)])
    score = mode_coverage(smeared, centers, sigma=0.1)
    assert (score.modes_covered, score.modes_reached) == (0, 3)  # near every mode, on none
    collapsed = torch.cat([torch.zeros(96, 2), torch.tensor([[10.0, 0.0]] * 4)])
    assert mode_coverage(collapsed, centers, 0.1).modes_reached == 1  # 4% is under the 5% bar
