"""The graded checks of lesson 07 accept right answers and explain wrong ones in words: AdaIN over the wrong
axes or with its style swapped, a learning-rate multiplier missing or in one place only, demodulation over the
wrong axes, a crossover off by one, the average w moved by mixed or truncated codes, R1 not scaled by its
interval, and the other slips each task invites."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancourse import losses
from gancourse.checks import CheckFailed
from gancourse.checks import lesson07 as checks
from gancourse.models import EqualizedLinear, instance_norm, mix_styles, modulated_conv2d, truncate


def right_adain(x, style_scale, style_bias, eps=1e-8):
    return style_scale[:, :, None, None] * instance_norm(x, eps) + style_bias[:, :, None, None]


class RightSlow(EqualizedLinear):
    def __init__(self, d_in, d_out, lr_multiplier=0.01):
        super().__init__(d_in, d_out, gain=1.0, lr_multiplier=lr_multiplier)


def right_modconv(x, weight, styles, demodulate=True, eps=1e-8, fused=True):
    return modulated_conv2d(x, weight, styles, demodulate=demodulate, eps=eps, fused=fused)


def make_styles(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None, crossover=None, beta=None, *, track=None, mix=None,
                trunc=truncate):
    """The right answer; `track(w, ws, truncated)` picks the codes the average follows (a mistake replaces it),
    `mix` replaces the mixing."""
    w = mapping(z)
    ws = w[:, None].repeat(1, num_ws, 1)
    if z_mix is not None:
        ws = (mix or mix_styles)(ws, mapping(z_mix), crossover)
    if beta is not None:
        followed = w.detach() if track is None else track(w, ws, trunc(ws, w_avg, psi))
        w_avg = torch.lerp(w_avg, followed.reshape(-1, w.shape[1]).mean(dim=0), 1 - beta)
    return trunc(ws, w_avg, psi), w_avg


def right_r1(D, real, gamma, step, every):
    return losses.r1_penalty(D, real, weight=gamma) * every if step % every == 0 else None


def test_right_answers_pass(capsys):
    checks.check_adain(right_adain)
    checks.check_slow_linear(RightSlow)
    checks.check_modulated_conv2d(right_modconv)
    checks.check_mix_styles(mix_styles)
    checks.check_truncation(truncate, make_styles)
    checks.check_lazy_r1(right_r1)
    assert capsys.readouterr().out.count("✓") == 6


def test_other_right_answers_pass(capsys):
    """Other forms of the same answers: std instead of the square root of the variance plus eps, torch.cat for the
    mix, lerp for the truncation, the gradient of D's mean times the batch size."""
    def std_adain(x, s, b, eps=1e-8):
        mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
        return s[..., None, None] * (x - mean) * torch.rsqrt(var + eps) + b[..., None, None]

    def cat_mix(ws, w_b, crossover):
        return torch.cat([ws[:, :crossover], w_b[:, None].expand(-1, ws.shape[1] - crossover, -1)], dim=1)

    def mean_r1(D, real, gamma, step, every):
        if step % every:
            return None
        x = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).mean(), x, create_graph=True)
        return every * gamma / 2 * (grad * len(x)).pow(2).sum(dim=(1, 2, 3)).mean()

    checks.check_adain(std_adain)
    checks.check_mix_styles(cat_mix)
    checks.check_truncation(lambda w, w_avg, psi: torch.lerp(w_avg, w, psi), make_styles)
    checks.check_lazy_r1(mean_r1)
    assert capsys.readouterr().out.count("✓") == 4


def test_checks_leave_the_students_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    checks.check_slow_linear(RightSlow)
    checks.check_truncation(truncate, make_styles)
    checks.check_lazy_r1(right_r1)
    assert torch.equal(torch.rand(3), expected)


# -- task 1: AdaIN ---------------------------------------------------------------------------------------
def _norm(x, dims, eps=1e-8, unbiased=False):
    return (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(x.var(dim=dims, unbiased=unbiased, keepdim=True) + eps)


def _styled(normalise):
    return lambda x, s, b, eps=1e-8: s[:, :, None, None] * normalise(x, eps) + b[:, :, None, None]


@pytest.mark.parametrize("answer, message", [
    (_styled(lambda x, eps: _norm(x, (0, 2, 3), eps)), "over the batch"),
    (_styled(lambda x, eps: _norm(x, 0, eps)), "over the batch axis"),
    (_styled(lambda x, eps: _norm(x, 1, eps)), "over the channels"),
    (_styled(lambda x, eps: _norm(x, (1, 2, 3), eps)), "layer norm"),
    (_styled(lambda x, eps: (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + eps)),
     "unbiased"),
    (lambda x, s, b, eps=1e-8: b[:, :, None, None] * instance_norm(x, eps) + s[:, :, None, None], "swapped"),
    (lambda x, s, b, eps=1e-8: s[:, :, None, None] * x + b[:, :, None, None], "not normalised"),
    (_styled(lambda x, eps: (x - x.mean(dim=(2, 3), keepdim=True)) / (x.var(dim=(2, 3), unbiased=False,
                                                                               keepdim=True).sqrt() + eps)),
     "inside the square root"),
    (_styled(lambda x, eps: instance_norm(x)), "eps argument is ignored"),
    (lambda x, s, b, eps=0.0: right_adain(x, s, b, eps), "NaN or inf"),  # no eps by default
    (lambda x, s, b, eps=1e-8: s * instance_norm(x, eps) + b, r"view them as \(N, C, 1, 1\)"),
    (lambda x, s, b, eps=1e-8: right_adain(x, s.detach(), b.detach(), eps), "gradient"),
])
def test_adain_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_adain(answer)


# -- task 2: the slow layer ------------------------------------------------------------------------------
class _Slow(nn.Module):
    """Weights N(0, 1) times init(m), forward's weight times run(m) / sqrt(d_in) and bias times bias_gain(m)."""

    init = staticmethod(lambda m: 1 / m)
    run = staticmethod(lambda m: m)
    bias_gain = staticmethod(lambda m: m)

    def __init__(self, d_in, d_out, lr_multiplier=0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * self.init(lr_multiplier))
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.m, self.d_in = lr_multiplier, d_in

    def forward(self, x):
        return F.linear(x, self.weight * self.run(self.m) / math.sqrt(self.d_in), self.bias * self.bias_gain(self.m))


class MultiplierMissing(_Slow):
    """Lesson 06's equalized layer: the same function, but full-speed steps."""
    init = run = bias_gain = staticmethod(lambda m: 1.0)


class FoldedIntoInitOnly(_Slow):
    run = bias_gain = staticmethod(lambda m: 1.0)


class RunTimeOnly(_Slow):
    init = staticmethod(lambda m: 1.0)


class FastBias(_Slow):
    bias_gain = staticmethod(lambda m: 1.0)


class WithGain(_Slow):
    run = staticmethod(lambda m: m * math.sqrt(2))


class BiasScaledWhole(_Slow):
    def forward(self, x):
        scale = self.m / math.sqrt(self.d_in)
        return F.linear(x, self.weight * scale, self.bias * scale)


class PlainStart(nn.Module):
    """No run-time scale: effective weights N(0, 1/d_in) held directly, so Adam moves them by lr."""

    def __init__(self, d_in, d_out, lr_multiplier=0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / math.sqrt(d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class StaleCopy(_Slow):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frozen = (self.weight * self.m / math.sqrt(self.d_in)).detach()

    def forward(self, x):
        return F.linear(x, self.frozen, self.bias * self.m)


class DefaultFull(_Slow):
    def __init__(self, d_in, d_out, lr_multiplier=1.0):
        super().__init__(d_in, d_out, lr_multiplier)


@pytest.mark.parametrize("answer, message", [
    (MultiplierMissing, "learning-rate multiplier is missing"),
    (FoldedIntoInitOnly, "folded into the initial weights"),
    (RunTimeOnly, r"weights start at N\(0, 1\)"),
    (FastBias, "multiply the bias by lr_multiplier"),
    (WithGain, r"no sqrt\(2\) gain"),
    (BiasScaledWhole, "bias"),
    (PlainStart, "no run-time constant"),
    (StaleCopy, "did not change what the layer computes"),
    (DefaultFull, "default lr_multiplier is 0.01"),
    (lambda d_in, d_out, lr_multiplier=0.01: nn.Linear(d_in, d_out), "bias should start at zero"),
])
def test_slow_linear_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_slow_linear(answer)


# -- task 3: the modulated convolution ----------------------------------------------------------------------
def _fused(demod_dims=(2, 3, 4), on_outputs=False, eps_inside=True, first_styles_only=False):
    """The fused form, with one of its usual mistakes."""
    def modconv(x, weight, styles, demodulate=True, eps=1e-8, fused=True):
        n, c_in = styles.shape
        s = styles[:1].expand(n, -1) if first_styles_only else styles
        kernels = weight[None] * (s.view(n, -1, 1, 1, 1) if on_outputs else s.view(n, 1, c_in, 1, 1))
        if demodulate:
            squares = kernels.pow(2).sum(dim=demod_dims, keepdim=True)
            kernels = kernels / (torch.sqrt(squares + eps) if eps_inside else squares.sqrt() + eps)
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), kernels.reshape(-1, *weight.shape[1:]), groups=n)
        return out.view(n, -1, *out.shape[2:])
    return modconv


def unfused_unsquared(x, weight, styles, demodulate=True, eps=1e-8, fused=True):
    if fused:
        return right_modconv(x, weight, styles, demodulate, eps)
    out = F.conv2d(x * styles[:, :, None, None], weight)
    return out * torch.rsqrt(styles @ weight.pow(2).sum(dim=(2, 3)).t() + eps)[:, :, None, None] if demodulate else out


def demodulates_always(x, weight, styles, demodulate=True, eps=1e-8, fused=True):
    return right_modconv(x, weight, styles, True, eps, fused)


def padded(x, weight, styles, demodulate=True, eps=1e-8, fused=True):
    return right_modconv(F.pad(x, (1, 1, 1, 1)), weight, styles, demodulate, eps, fused)


@pytest.mark.parametrize("answer, message", [
    (_fused(demod_dims=1), "over the output channels"),
    (_fused(demod_dims=(3, 4)), "taps only"),
    (_fused(demod_dims=2), "input channels only"),
    (_fused(demod_dims=(1, 2, 3, 4)), "one norm per sample"),
    (_fused(on_outputs=True), "input channel"),
    (_fused(eps_inside=False), "inside the square root"),
    (_fused(first_styles_only=True), "its own kernel"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:
     right_modconv(x, weight, styles, demodulate, 1e-8, fused), "eps argument is ignored"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:
     right_modconv(x, weight, styles, False, eps, fused), "not demodulated"),
    (demodulates_always, "demodulate=False"),
    (unfused_unsquared, "squared styles"),
    (padded, "no padding"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:
     right_modconv(x, weight.detach(), styles.detach(), demodulate, eps, fused), "gradient"),
])
def test_modulated_conv2d_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_modulated_conv2d(answer)


def test_the_same_kernel_on_the_output_channels_is_named_when_the_shapes_match():
    """With C_in != C_out the mistake fails on shapes (the message says what each axis is); with C_in == C_out it
    runs, and demodulation cancels the style altogether."""
    x, weight, styles = torch.randn(2, 4, 5, 5), torch.randn(4, 4, 3, 3), torch.rand(2, 4) + 0.5
    expected, wrong = checks._modconv_answers(x, weight, styles, True, 1e-8)
    got = _fused(on_outputs=True)(x, weight, styles)
    assert [m for m, candidate in wrong if torch.allclose(got, candidate, atol=1e-5)][0].startswith(
        "the styles scale the output channels")


# -- task 4: style mixing -------------------------------------------------------------------------------------
def _mix_range(start, stop):
    def mix(ws, w_b, crossover):
        mixed = ws.clone()
        mixed[:, start(crossover):stop(crossover, ws.shape[1])] = w_b[:, None]
        return mixed
    return mix


def in_place(ws, w_b, crossover):
    ws[:, crossover:] = w_b[:, None]
    return ws


@pytest.mark.parametrize("answer, message", [
    (_mix_range(lambda c: 0, lambda c, n: c), "wrong way round"),
    (_mix_range(lambda c: c + 1, lambda c, n: n), "off by one"),
    (_mix_range(lambda c: max(c - 1, 0), lambda c, n: n), "off by one"),
    (in_place, "changed ws in place"),
    (lambda ws, w_b, crossover: mix_styles(ws.detach(), w_b, crossover), "gradient"),
    (lambda ws, w_b, crossover: torch.cat([ws[:, :crossover], w_b.expand(ws.shape[0], 1, -1)], dim=1),
     r"w_b\[:, None\]"),
])
def test_mix_styles_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_mix_styles(answer)


# -- task 5: truncation and the average w -------------------------------------------------------------------------
def truncate_in_place(w, w_avg, psi):
    out = w_avg + psi * (w - w_avg)
    w_avg.lerp_(w.reshape(-1, w.shape[-1]).mean(dim=0), 0.01)  # "tracking" while sampling
    return out


def styles_tracking_in_place(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None, crossover=None, beta=None):
    w = mapping(z)
    w_avg.lerp_(w.detach().mean(dim=0), 1 - (0.995 if beta is None else beta))  # always, and in place
    ws = w[:, None].repeat(1, num_ws, 1)
    ws = ws if z_mix is None else mix_styles(ws, mapping(z_mix), crossover)
    return truncate(ws, w_avg, psi), w_avg


def styles_tracking_always(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None, crossover=None, beta=None):
    return make_styles(mapping, z, num_ws, w_avg, psi, z_mix, crossover, 0.995 if beta is None else beta)


def styles_tracking_truncated(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None, crossover=None, beta=None):
    """The average follows the truncated plain codes (at psi = 1 they are the plain ones)."""
    ws, _ = make_styles(mapping, z, num_ws, w_avg, 1.0, z_mix, crossover)
    new = w_avg if beta is None else torch.lerp(w_avg, truncate(mapping(z), w_avg, psi).detach().mean(dim=0), 1 - beta)
    return truncate(ws, new, psi), new


def styles_truncated_towards_the_old_average(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None, crossover=None,
                                             beta=None):
    ws, new = make_styles(mapping, z, num_ws, w_avg, 1.0, z_mix, crossover, beta)
    return truncate(ws, w_avg, psi), new


@pytest.mark.parametrize("answers, message", [
    ((lambda w, w_avg, psi: w + psi * (w_avg - w), make_styles), "wrong way round"),
    ((lambda w, w_avg, psi: psi * w, make_styles), "not towards 0"),
    ((truncate_in_place, make_styles), "changed its inputs in place"),
    ((truncate, styles_tracking_in_place), "sampling call"),
    ((truncate, styles_tracking_always), "sampling call"),
    ((truncate, lambda *a: make_styles(*a, track=lambda w, ws, truncated: ws.detach())), "mixed codes"),
    ((truncate, lambda *a: make_styles(*a, track=lambda w, ws, truncated: truncated.detach())), "mixed codes"),
    ((truncate, styles_tracking_truncated), "truncated codes"),
    ((truncate, lambda *a: make_styles(*a[:7], None if a[7] is None else 1 - a[7])), "swapped"),
    ((truncate, lambda *a: make_styles(*a[:7], None)), "did not move"),
    ((truncate, styles_truncated_towards_the_old_average), "old average"),
    ((truncate, lambda *a: make_styles(*a, mix=lambda ws, w_b, c: ws)), "not mixed"),
    ((truncate, lambda *a: (make_styles(*a)[0], torch.lerp(a[3], a[0](a[1]).mean(dim=0), 1 - a[7]) if a[7] else a[3])),
     "carries the mapping network's graph"),
    ((truncate, lambda *a: (make_styles(*a)[0].detach(), make_styles(*a)[1])), "carry no gradient"),
    ((truncate, lambda *a: make_styles(*a)[0]), r"a pair \(ws, w_avg\)"),
])
def test_truncation_mistakes_are_named(answers, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_truncation(*answers)


def test_a_stub_that_make_styles_calls_is_named():
    def unwritten(ws, w_b, crossover):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="calls unwritten, which is not written yet"):
        checks.check_truncation(truncate, lambda *a: make_styles(*a, mix=unwritten))


# -- task 6: lazy R1 ------------------------------------------------------------------------------------------
def _r1(due=lambda step, every: step % every == 0, factor=lambda n, every, gamma: every * gamma / 2,
        reduce=lambda squares: squares.mean(), of_mean=False, create_graph=True, square=True):
    """lazy R1 with one of its usual mistakes."""
    def lazy_r1(D, real, gamma, step, every):
        if not due(step, every):
            return None
        x = real.detach().requires_grad_(True)
        scores = D(x)
        (grad,) = torch.autograd.grad(scores.mean() if of_mean else scores.sum(), x, create_graph=create_graph)
        squares = grad.flatten(1).pow(2).sum(dim=1)
        return factor(len(x), every, gamma) * reduce(squares if square else squares.sqrt())
    return lazy_r1


def in_place_requires_grad(D, real, gamma, step, every):
    if step % every:
        return None
    (grad,) = torch.autograd.grad(D(real.requires_grad_(True)).sum(), real, create_graph=True)
    return every * gamma / 2 * grad.flatten(1).pow(2).sum(dim=1).mean()


def backward_inside(D, real, gamma, step, every):
    loss = right_r1(D, real, gamma, step, every)
    if loss is not None:
        loss.backward(retain_graph=True)
    return loss


@pytest.mark.parametrize("answer, message", [
    (_r1(factor=lambda n, every, gamma: gamma / 2), "not scaled by its interval"),
    (_r1(due=lambda step, every: True), "on the other steps"),
    (_r1(due=lambda step, every: (step + 1) % every == 0), "returned None"),
    (_r1(factor=lambda n, every, gamma: every), "gamma / 2 is missing"),
    (_r1(factor=lambda n, every, gamma: every / 2), "gamma is missing"),
    (_r1(factor=lambda n, every, gamma: every * gamma), "1/2"),
    (_r1(of_mean=True), "D's mean score"),
    (_r1(reduce=lambda squares: squares.sum()), "summed over the batch"),
    (_r1(square=False), "not squared"),
    (_r1(create_graph=False), "create_graph=True"),
    (lambda D, real, gamma, step, every: right_r1(D, real, gamma, step, every) if step % every == 0
     else torch.zeros(()), "return None"),
    (in_place_requires_grad, "requires_grad"),
    (backward_inside, "no .backward"),
])
def test_lazy_r1_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_lazy_r1(answer)


@pytest.mark.parametrize("check, arity", [
    (checks.check_adain, 1), (checks.check_slow_linear, 1), (checks.check_modulated_conv2d, 1),
    (checks.check_mix_styles, 1), (checks.check_truncation, 2), (checks.check_lazy_r1, 1)])
def test_an_unwritten_answer_is_named(check, arity):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        check(*[stub] * arity)
