"""The graded checks of lesson 03 accept right answers and explain wrong ones in words."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import answers
from gancourse.checks import CheckFailed
from gancourse.checks import lesson03 as checks
from gancourse.data import InMemoryData
from gancourse.train import AdversarialGAN, Trainer


# -- task 1: one_hot_planes -------------------------------------------------------------------------
def test_right_answers_pass(capsys):
    checks.check_one_hot_planes(answers.l03_one_hot_planes)
    checks.check_generator_input(answers.l03_generator_input)
    checks.check_class_grid(answers.l03_class_grid)
    assert capsys.readouterr().out.count("✓") == 3


def test_other_right_answers_pass():
    def planes_by_repeat(y, num_classes, height, width):
        out = torch.zeros(len(y), num_classes, height, width)
        out[torch.arange(len(y)), y] = 1
        return out

    def grid_by_loop(G, num_classes, per_class, z_dim):
        z = torch.randn(per_class, z_dim)
        with torch.no_grad():
            return torch.cat([G(z, torch.full((per_class,), c)) for c in range(num_classes)])

    checks.check_one_hot_planes(planes_by_repeat)
    checks.check_class_grid(grid_by_loop)


@pytest.mark.parametrize("answer, message", [
    (lambda y, c, h, w: F.one_hot(y, c).float(), r"one-hot vectors \(N, C\).*expand"),
    (lambda y, c, h, w: F.one_hot(y, c).float()[:, None, None, :].expand(-1, h, w, -1), "last dimension"),
    (lambda y, c, h, w: F.one_hot(y, c).float()[:, :, None, None].expand(-1, -1, w, h), "swapped"),
    (lambda y, c, h, w: y.float()[:, None, None, None].expand(-1, 1, h, w), "not one-hot"),
    (lambda y, c, h, w: F.one_hot(y, c)[:, :, None, None].expand(-1, -1, h, w), "dtype torch.int64.*float"),
    (lambda y, c, h, w: F.one_hot((y + 1) % c, c).float()[:, :, None, None].expand(-1, -1, h, w),
     r"image 0 has label 2.*all ones: \[3\]"),
    (lambda y, c, h, w: F.one_hot(y, 5).float()[:, :, None, None].expand(-1, -1, h, w),
     "With 10 classes.*fixed numbers"),
    (lambda y, c, h, w: F.one_hot(y, c).float()[:, :, None, None].expand(-1, -1, 3, 4), "fixed numbers"),
    (lambda y, c, h, w: None, "forget `return`"),
])
def test_wrong_one_hot_planes_are_explained(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_one_hot_planes(answer)


def test_unwritten_answer_says_so():
    def stub(y, num_classes, height, width):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        checks.check_one_hot_planes(stub)


# -- task 2: generator_input ------------------------------------------------------------------------
@pytest.mark.parametrize("answer, message", [
    (lambda z, y, c: torch.cat([z, y.float()[:, None]], 1), "as one number.*one-hot"),
    (lambda z, y, c: F.one_hot(y, c).float(), "only the one-hot label"),
    (lambda z, y, c: z, "z alone"),
    (lambda z, y, c: torch.cat([F.one_hot(y, c).float(), z], 1), "comes first; put z first"),
    (lambda z, y, c: torch.cat([z.detach(), F.one_hot(y, c).float()], 1), "cut the gradient"),
    (lambda z, y, c: torch.cat([z, F.one_hot(y, 4).float()], 1), "With 10 classes.*num_classes argument"),
    (lambda z, y, c: torch.cat([z * 2, F.one_hot(y, c).float()], 1), "must be z itself"),
    (lambda z, y, c: torch.cat([z, F.one_hot((y + 1) % c, c).float()], 1), r"row 0 has label 1.*\[0.0, 1.0, 0.0, 0.0\]"),
])
def test_wrong_generator_inputs_are_explained(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_generator_input(answer)


# -- task 3: class_grid -----------------------------------------------------------------------------
def _grid_columns(G, num_classes, per_class, z_dim):
    with torch.no_grad():  # one class per column: 0, 1, 2, 3, 0, 1, ...
        return G(torch.randn(per_class, z_dim).repeat(num_classes, 1), torch.arange(num_classes * per_class) % num_classes)


def _grid_fresh_noise(G, num_classes, per_class, z_dim):
    with torch.no_grad():
        return G(torch.randn(num_classes * per_class, z_dim), torch.arange(num_classes).repeat_interleave(per_class))


def _grid_one_z(G, num_classes, per_class, z_dim):
    with torch.no_grad():
        return G(torch.randn(1, z_dim).repeat(num_classes * per_class, 1),
                 torch.arange(num_classes).repeat_interleave(per_class))


def _grid_label_zero(G, num_classes, per_class, z_dim):
    with torch.no_grad():
        return G(torch.randn(per_class, z_dim).repeat(num_classes, 1), torch.zeros(num_classes * per_class).long())


def _grid_with_gradients(G, num_classes, per_class, z_dim):
    return G(torch.randn(per_class, z_dim).repeat(num_classes, 1), torch.arange(num_classes).repeat_interleave(per_class))


def _grid_uniform_noise(G, num_classes, per_class, z_dim):
    with torch.no_grad():
        return G(torch.rand(per_class, z_dim).repeat(num_classes, 1), torch.arange(num_classes).repeat_interleave(per_class))


def _grid_stacked(G, num_classes, per_class, z_dim):
    return answers.l03_class_grid(G, num_classes, per_class, z_dim).view(num_classes, per_class, 1, 2, z_dim)


def _grid_float_labels(G, num_classes, per_class, z_dim):
    with torch.no_grad():
        return G(torch.randn(per_class, z_dim).repeat(num_classes, 1),
                 torch.arange(num_classes).repeat_interleave(per_class).float())


@pytest.mark.parametrize("answer, message", [
    (_grid_columns, "one class per column.*row by row"),
    (_grid_fresh_noise, "each row uses different noise"),
    (_grid_one_z, "some columns use the same z"),
    (_grid_label_zero, "every image was generated with label 0"),
    (_grid_with_gradients, "no_grad"),
    (_grid_uniform_noise, "torch.randn"),
    (_grid_stacked, "flatten the first two dimensions"),
    (_grid_float_labels, "raised ValueError: labels must be integer"),
])
def test_wrong_class_grids_are_explained(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_class_grid(answer)


def test_checks_leave_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_class_grid(answers.l03_class_grid)
    assert torch.equal(torch.rand(3), expected)


# -- task 4: the tiny conditional GAN ---------------------------------------------------------------
class TinyG(nn.Module):
    """The exercise's generator with a right forward (or one that ignores y)."""

    def __init__(self, z_dim=8, num_classes=3, size=8, use_label=True, squash=True):
        super().__init__()
        self.z_dim, self.num_classes, self.size, self.use_label = z_dim, num_classes, size, use_label
        layers = [nn.Linear(z_dim + num_classes, size * size), nn.Unflatten(1, (1, size, size))]
        self.net = nn.Sequential(*layers, *([nn.Tanh()] if squash else []))

    def forward(self, z, y):
        label = F.one_hot(y, self.num_classes).float() * (1 if self.use_label else 0)
        return self.net(torch.cat([z, label], 1))


class TinyD(nn.Module):
    """The exercise's discriminator with a right forward, or one of the usual slips."""

    def __init__(self, num_classes=3, size=8, use_label=True, keep_dim=False, detach=False):
        super().__init__()
        self.num_classes, self.use_label, self.keep_dim, self.detach = num_classes, use_label, keep_dim, detach
        self.net = nn.Sequential(nn.Conv2d(1 + num_classes, 4, 3, 1, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(4 * size * size, 1))

    def forward(self, x, y):
        planes = answers.l03_one_hot_planes(y, self.num_classes, x.shape[2], x.shape[3])
        x = x.detach() if self.detach else x
        out = self.net(torch.cat([x, planes * (1 if self.use_label else 0)], 1))
        return out if self.keep_dim else out.flatten()


def _nets(**options):
    g_options = {k: v for k, v in options.items() if k in ("use_label_g", "squash")}
    d_options = {k: v for k, v in options.items() if k in ("use_label_d", "keep_dim", "detach")}
    G = type("G", (TinyG,), {"__init__": lambda self: TinyG.__init__(
        self, use_label=g_options.get("use_label_g", True), squash=g_options.get("squash", True))})
    D = type("D", (TinyD,), {"__init__": lambda self: TinyD.__init__(
        self, use_label=d_options.get("use_label_d", True), keep_dim=d_options.get("keep_dim", False),
        detach=d_options.get("detach", False))})
    return G, D


def test_right_networks_pass(capsys):
    checks.check_conditional_networks(*_nets())
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("options, message", [
    (dict(use_label_g=False), "G gives the same image for every label"),
    (dict(squash=False), r"must lie in \[-1, 1\]"),
    (dict(use_label_d=False), "D gives the same score whatever the label"),
    (dict(keep_dim=True), r"add \.flatten\(\)"),
    (dict(detach=True), "no gradient flows"),
])
def test_wrong_networks_are_explained(options, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_conditional_networks(*_nets(**options))


def test_unwritten_forward_says_so():
    class Stub(TinyG):
        def forward(self, z, y):
            raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        checks.check_conditional_networks(Stub, TinyD)


def _labelled_images(n=60, size=8):
    """Three 'classes' of 8x8 images the course's classifier is never asked about (only shapes matter here)."""
    g = torch.Generator().manual_seed(0)
    return InMemoryData(torch.rand(n, 1, size, size, generator=g) * 2 - 1, torch.arange(n) % 3, name="toy",
                        kind="images", num_classes=3)


def test_trained_gan_check_rejects_an_unconditional_gan_and_an_untrained_trainer():
    data = _labelled_images()
    plain = AdversarialGAN(nn.Sequential(nn.Linear(8, 64), nn.Unflatten(1, (1, 8, 8)), nn.Tanh()),
                       nn.Sequential(nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0)))
    plain.nets["G"].z_dim = 8
    with pytest.raises(CheckFailed, match="unconditional AdversarialGAN.*num_classes"):
        checks.check_trained_conditional_gan(Trainer(plain, data, steps=1, progress=False, verbose=False))
    G, D = _nets()
    untrained = Trainer(AdversarialGAN(G(), D()), data, steps=2, progress=False, verbose=False)
    with pytest.raises(CheckFailed, match="trainer.fit"):
        checks.check_trained_conditional_gan(untrained)


def test_trained_gan_check_measures_class_accuracy_on_digits(capsys):
    from gancourse.data import load

    digits = load("digits", size=16, limit=300)  # 16x16, as in the exercise: one cached classifier for both
    G = type("G", (TinyG,), {"__init__": lambda self: TinyG.__init__(self, num_classes=10, size=16)})
    D = type("D", (TinyD,), {"__init__": lambda self: TinyD.__init__(self, num_classes=10, size=16)})
    torch.manual_seed(0)
    trainer = Trainer(AdversarialGAN(G(), D()), digits, steps=3, progress=False, verbose=False)
    trainer.fit()
    checks.check_trained_conditional_gan(trainer)  # no threshold: reports the accuracy
    assert "chance 10%" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"class accuracy \d+% after 3 steps; expected at least 99%.*Per class"):
        checks.check_trained_conditional_gan(trainer, min_accuracy=0.99)
