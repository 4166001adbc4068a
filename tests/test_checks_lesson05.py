"""The graded checks of lesson 05 accept right answers and explain wrong ones in words, and the judges agree
with them on the mistakes the issue names (a missing detach, a pool that never hands out old images, a
fixed identity weight of 5, a schedule that never reaches zero)."""
import pytest
import torch

from gancourse import losses
from gancourse.checks import CheckFailed
from gancourse.checks import lesson05 as checks
from gancourse.models import receptive_field
from gancourse.train import ImagePool, lr_factor


def l1(x, y):
    return (x - y).abs().mean()


def right_cycle(G, F, a, b):
    return losses.cycle_consistency_loss(a, F(G(a))) + losses.cycle_consistency_loss(b, G(F(b)))


def right_identity(G, F, a, b, lam):
    return 0.5 * lam * (l1(G(b), b) + l1(F(a), a))


def right_d_loss(D, real, fake):
    return losses.discriminator_loss_lsgan(D(real), D(fake.detach()))


class RightPool(ImagePool):
    pass


def test_right_answers_pass(capsys):
    checks.check_cycle_loss(right_cycle)
    checks.check_identity_term(right_identity)
    checks.check_image_pool(RightPool)
    checks.check_receptive_field(receptive_field)
    checks.check_linear_decay(lr_factor)
    checks.check_discriminator_loss(right_d_loss)
    assert capsys.readouterr().out.count("✓") == 6


@pytest.mark.parametrize("answer, message", [
    (lambda G, F, a, b: l1(F(G(a)), a), "only the A -> B -> A cycle"),
    (lambda G, F, a, b: l1(G(F(a)), a) + l1(F(G(b)), b), "composed the wrong way round"),
    (lambda G, F, a, b: ((F(G(a)) - a) ** 2).mean() + ((G(F(b)) - b) ** 2).mean(), "squared error"),
    (lambda G, F, a, b: l1(F(G(a)).detach(), a) + l1(G(F(b)).detach(), b), "no gradient can flow"),
    (lambda G, F, a, b: l1(F(G(a).detach()), a) + l1(G(F(b).detach()), b), "gradient is not"),
    (lambda G, F, a, b: (F(G(a)) - a).abs().sum() + (G(F(b)) - b).abs().sum(), "a sum over pixels"),
])
def test_cycle_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_cycle_loss(answer)


@pytest.mark.parametrize("answer, message", [
    (lambda G, F, a, b, lam: 5 * (l1(G(b), b) + l1(F(a), a)), "not a fixed 5"),
    (lambda G, F, a, b, lam: lam * (l1(G(b), b) + l1(F(a), a)), "0.5 is missing"),
    (lambda G, F, a, b, lam: 0.5 * lam * (l1(G(a), a) + l1(F(b), b)), "already in B"),
])
def test_identity_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_identity_term(answer)


class NewestOnly:
    def __init__(self, size):
        self.size = size

    def query(self, images):
        return images.detach()


class NeverDetached(ImagePool):
    def query(self, images):
        out = super().query(images)
        return out + 0 * images


class OldTwice(ImagePool):
    """Hands out a stored image without replacing it."""

    def query(self, images):
        out = []
        for image in images.detach():
            if len(self) < self.size:
                self.images = image[None].clone() if self.images is None else torch.cat([self.images, image[None]])
                out.append(image)
            elif torch.rand(()) < 0.5:
                out.append(self.images[int(torch.randint(self.size, ()))])
            else:
                out.append(image)
        return torch.stack(out)


@pytest.mark.parametrize("answer, message", [
    (NewestOnly, "always returned the newest"),
    (NeverDetached, "tracks gradients"),
    (OldTwice, "not in the pool any more"),
])
def test_pool_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_image_pool(answer)


def forward_walk(layers):
    r = 1
    for k, s in layers:
        r = (r - 1) * s + k
    return r


@pytest.mark.parametrize("answer, message", [
    (forward_walk, "walk back from the output"),
    (lambda layers: sum(k - 1 for k, s in layers) + 1, "strides are missing"),
    (lambda layers: 70, "use the kernels and strides you are given"),
])
def test_receptive_field_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_receptive_field(answer)


@pytest.mark.parametrize("answer, message", [
    (lambda f, start=0.5: min(1.0, 1 - (f - start) / (1 - start + 0.1)), "must reach 0"),
    (lambda f, start=0.5: 1 - f, "stays 1 until decay_start"),
    (lambda f, start=0.5: min(1.0, (1 - f) / 0.5), "use the decay_start argument"),
])
def test_schedule_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_linear_decay(answer)


@pytest.mark.parametrize("answer, message", [
    (lambda D, real, fake: losses.discriminator_loss_lsgan(D(real), D(fake)), "pass fake.detach"),
    (lambda D, real, fake: 2 * losses.discriminator_loss_lsgan(D(real), D(fake.detach())), "halved"),
    (lambda D, real, fake: losses.discriminator_loss_lsgan(D(fake.detach()), D(real)), "targets are swapped"),
])
def test_discriminator_loss_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_discriminator_loss(answer)


def test_checks_name_a_bad_image_shape():
    with pytest.raises(CheckFailed, match=r"shape"):
        checks.check_cycle_loss(lambda G, F, a, b: (F(G(a)) - a).abs().mean(dim=(1, 2, 3)))
