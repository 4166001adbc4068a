"""The graded checks of lesson 06 accept right answers and explain wrong ones in words: a blend the wrong way
round, groups mixed across the wrong axis, the He constant applied once at initialisation, an alpha stuck at 0
or at 1, and the other slips each task invites."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import CheckFailed
from gancourse.checks import lesson06 as checks
from gancourse.models import EqualizedConv2d, MinibatchStdDev, PixelNorm
from gancourse.train import growth_schedule


def up(low):
    return F.interpolate(low, scale_factor=2, mode="nearest")


def right_fade(low, high, alpha):
    return torch.lerp(up(low), high, alpha)


def right_mbstd(x, group_size=4):
    return MinibatchStdDev(group_size)(x)


def right_pixel_norm(x, eps=1e-8):
    return x / (x.pow(2).mean(dim=1, keepdim=True) + eps).sqrt()


def test_right_answers_pass(capsys):
    checks.check_fade_in(right_fade)
    checks.check_minibatch_stddev(right_mbstd)
    checks.check_equalized_conv(EqualizedConv2d)
    checks.check_pixel_norm(right_pixel_norm)
    checks.check_growth_stage(growth_schedule)
    assert capsys.readouterr().out.count("✓") == 5


def test_other_right_answers_pass(capsys):
    checks.check_fade_in(lambda low, high, alpha: (1 - alpha) * up(low) + alpha * high)
    checks.check_fade_in(lambda low, high, alpha: (1 - alpha) * low.repeat_interleave(2, -1).repeat_interleave(2, -2)
                         + alpha * high)
    checks.check_pixel_norm(lambda x, eps=1e-8: PixelNorm()(x) if eps == 1e-8 else right_pixel_norm(x, eps))
    assert capsys.readouterr().out.count("✓") == 3


def test_checks_leave_the_students_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_equalized_conv(EqualizedConv2d)
    checks.check_minibatch_stddev(right_mbstd)
    assert torch.equal(torch.rand(3), expected)


# -- task 1: the fade-in ------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, message", [
    (lambda low, high, a: a * up(low) + (1 - a) * high, "wrong way round"),
    (lambda low, high, a: (1 - a) * F.interpolate(low, scale_factor=2, mode="bilinear") + a * high, "bilinear"),
    (lambda low, high, a: (1 - a) * F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True) + a * high,
     "bilinear"),
    (lambda low, high, a: (1 - a) * low + a * high, "up-sample it x2"),
    (lambda low, high, a: (1 - a) * low + a * F.avg_pool2d(high, 2), "low's resolution"),
    (lambda low, high, a: 0.5 * (up(low) + high), "alpha is ignored"),
    (lambda low, high, a: high, "alpha is ignored"),
    (lambda low, high, a: (1 - a) * up(low).detach() + a * high, "gradient"),
])
def test_fade_in_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_fade_in(answer)


# -- task 2: minibatch standard deviation --------------------------------------------------------------
def _append(x, per_sample):
    n, _, h, w = x.shape
    return torch.cat([x, per_sample.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def strided_groups(x, group_size=4):
    n, c, h, w = x.shape
    spread = x.view(group_size, n // group_size, c, h, w).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))
    return _append(x, spread.repeat(group_size))


def whole_batch(x, group_size=4):
    return _append(x, x.std(dim=0, unbiased=False).mean().expand(len(x)))


def unbiased(x, group_size=4):
    n, c, h, w = x.shape
    return _append(x, x.view(n // group_size, group_size, c, h, w).std(dim=1).mean(dim=(1, 2, 3))
                   .repeat_interleave(group_size))


def repeated_not_interleaved(x, group_size=4):
    n, c, h, w = x.shape
    spread = x.view(n // group_size, group_size, c, h, w).std(dim=1, unbiased=False).mean(dim=(1, 2, 3))
    return _append(x, spread.repeat(group_size))


def with_eps(x, group_size=4):
    """The paper's code: sqrt(variance + 1e-8)."""
    n, c, h, w = x.shape
    variance = x.view(n // group_size, group_size, c, h, w).var(dim=1, unbiased=False)
    return _append(x, (variance + 1e-8).sqrt().mean(dim=(1, 2, 3)).repeat_interleave(group_size))


def extra_channel_first(x, group_size=4):
    out = right_mbstd(x, group_size)
    return torch.cat([out[:, -1:], x], dim=1)


def fixed_four(x, group_size=4):
    return right_mbstd(x, 4)


def per_pixel(x, group_size=4):
    n, c, h, w = x.shape
    spread = x.view(n // group_size, group_size, c, h, w).std(dim=1, unbiased=False).mean(dim=1)
    return torch.cat([x, spread.repeat_interleave(group_size, dim=0)[:, None]], dim=1)


@pytest.mark.parametrize("answer, message", [
    (strided_groups, "mixed across the wrong axis"),
    (whole_batch, "whole batch"),
    (unbiased, "unbiased std"),
    (repeated_not_interleaved, "members of its own group"),
    (with_eps, "no eps"),
    (extra_channel_first, "goes last"),
    (fixed_four, "use the group_size argument"),
    (per_pixel, "varies over the image"),
    (lambda x, group_size=4: x, r"one\s+more channel"),
])
def test_minibatch_stddev_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_minibatch_stddev(answer)


# -- task 3: the equalized convolution ------------------------------------------------------------------
class FoldedAtInit(nn.Module):
    """The He constant applied once, to the initial weights."""

    def __init__(self, c_in, c_out, kernel, padding=0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) * (2 / (c_in * kernel * kernel)) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.padding = padding

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class NoConstant(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class NoKernelArea(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight * (2 / self.weight.shape[1]) ** 0.5, self.bias, padding=self.padding)


class ScaledBias(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias * self.scale, padding=self.padding)


class NoPadding(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias)


class StaleCopy(EqualizedConv2d):
    """A scaled copy of the weights taken in __init__: right at first, blind to every later update."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scaled = (self.weight * self.scale).detach()

    def forward(self, x):
        return F.conv2d(x, self.scaled, self.bias, padding=self.padding)


class ScalesInPlace(EqualizedConv2d):
    def forward(self, x):
        with torch.no_grad():
            self.weight.mul_(self.scale)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class DefaultInit(nn.Conv2d):
    """PyTorch's own initialisation (uniform, He-like), the constant at run time on top."""

    def __init__(self, c_in, c_out, kernel, padding=0):
        super().__init__(c_in, c_out, kernel, padding=padding)
        self.scale = (2 / (c_in * kernel * kernel)) ** 0.5

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class Detached(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight.detach() * self.scale, self.bias, padding=self.padding)


@pytest.mark.parametrize("answer, message", [
    (FoldedAtInit, "applied once at initialisation"),
    (NoConstant, "He constant is missing"),
    (NoKernelArea, "kernel area is missing"),
    (ScaledBias, "only the weight is scaled"),
    (NoPadding, "pass padding"),
    (StaleCopy, "goes stale"),
    (ScalesInPlace, "forward changed self.weight"),
    (DefaultInit, r"N\(0, 1\)"),
    (Detached, "gradient does not reach self.weight"),
])
def test_equalized_conv_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_equalized_conv(answer)


def test_equalized_conv_output_spread_is_checked():
    class Doubled(EqualizedConv2d):  # right on the check's first input, twice too large on its unit-normal batches
        def forward(self, x):
            out = super().forward(x)
            return 2 * out if x.shape[0] == 8 else out

    with pytest.raises(CheckFailed, match=r"sqrt\(2\) = 1.41"):
        checks.check_equalized_conv(Doubled)


# -- task 4: pixel norm ---------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, message", [
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps), "over the pixels"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=0, keepdim=True) + eps), "over the batch"),
    (lambda x, eps=1e-8: x / (x.pow(2).mean(dim=1, keepdim=True) + eps), "square root is missing"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + eps), "sum over channels"),
    (lambda x, eps=1e-8: x / (torch.sqrt(x.pow(2).mean(dim=1, keepdim=True)) + eps), "inside the square root"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=1) + eps), "keepdim=True"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True)), "eps argument is ignored"),
])
def test_pixel_norm_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_pixel_norm(answer)


# -- task 5: the growth schedule --------------------------------------------------------------------------
def stuck_at_zero(images, phase, stages):
    """Integer division: the share of the fade-in done rounds down to 0."""
    if images < phase:
        return 0, 1.0
    done = images - phase
    stage = 1 + done // (2 * phase)
    if stage >= stages:
        return stages - 1, 1.0
    return stage, float((done % (2 * phase)) // phase)


def no_modulo(images, phase, stages):
    """The share of all training since 4x4, not of this fade-in: 1 from the second fade-in on."""
    stage, alpha = growth_schedule(images, phase, stages)
    return stage, min(1.0, (images - phase) / phase) if images >= phase else 1.0


def stage_off_by_one(images, phase, stages):
    stage, alpha = growth_schedule(images, phase, stages)
    return max(0, stage - 1) if images >= phase else 0, alpha


def uncapped(images, phase, stages):
    if images < phase:
        return 0, 1.0
    done = images - phase
    return 1 + done // (2 * phase), min(1.0, (done % (2 * phase)) / phase)


def falling(images, phase, stages):
    stage, alpha = growth_schedule(images, phase, stages)
    return stage, 1 - alpha if 0 < alpha < 1 else alpha


@pytest.mark.parametrize("answer, message", [
    (stuck_at_zero, "stuck at 0"),
    (lambda images, phase, stages: (growth_schedule(images, phase, stages)[0], 1.0), "stuck at 1"),
    (no_modulo, "stuck at 1 in this fade-in"),
    (stage_off_by_one, "off by one"),
    (uncapped, "only 4 stages"),
    (falling, "alpha fell"),
    (lambda images, phase, stages: growth_schedule(images, phase, stages)[1], "a pair"),
])
def test_growth_stage_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_growth_stage(answer)


@pytest.mark.parametrize("check", [checks.check_fade_in, checks.check_minibatch_stddev, checks.check_equalized_conv,
                                   checks.check_pixel_norm, checks.check_growth_stage])
def test_an_unwritten_answer_is_named(check):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        check(stub)
