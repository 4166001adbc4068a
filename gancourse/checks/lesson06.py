"""Checks for lesson 06, ProGAN. Each takes the student's code and explains a wrong answer.

The five graded tasks: the fade-in blend, minibatch standard deviation, an equalized-learning-rate
convolution, pixel norm and the growth schedule (stage, alpha) over the images shown. Every check that
draws random numbers runs in a private random stream, so checking never changes the student's seeded run.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import CheckFailed, call, diagnose, expect_tensor, keeps_rng, passed, same
from gancourse.train.progan import growth_schedule as _schedule  # the library's schedule is the reference


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g)


# -- task 1: the fade-in blend -----------------------------------------------------------------------
def _up(low: torch.Tensor) -> torch.Tensor:
    return F.interpolate(low, scale_factor=2, mode="nearest")


def _blend(fn, low: torch.Tensor, high: torch.Tensor, alpha: float) -> torch.Tensor:
    name = f"fade_in(low, high, alpha={alpha:g})"
    try:
        out = call(fn, low, high, alpha, name="fade_in")
    except CheckFailed as err:
        if "size of tensor" in str(err) or "must match" in str(err):
            raise CheckFailed(f"{err}. `low` has half the height and width of `high`: up-sample it x2 by nearest "
                              "neighbour (F.interpolate(low, scale_factor=2, mode=\"nearest\")) before "
                              "blending") from None
        raise
    out = expect_tensor(out, name)
    if tuple(out.shape) == tuple(low.shape):
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}, low's resolution: the blend is at the new "
                          f"resolution {tuple(high.shape)}, so up-sample low rather than shrinking high")
    if tuple(out.shape) != tuple(high.shape):
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}; expected high's shape {tuple(high.shape)}")
    return out


@keeps_rng
def check_fade_in(fn) -> None:
    """fn(low, high, alpha) -> (1 - alpha) * up_nearest(low) + alpha * high."""
    g = torch.Generator().manual_seed(6)
    low, high = _randn(g, 3, 2, 4, 4), _randn(g, 3, 2, 8, 8)
    alphas = (0.3, 0.8, 0.0, 1.0)
    outs = {alpha: _blend(fn, low, high, alpha) for alpha in alphas}
    if same(outs[0.3], outs[0.8]):
        raise CheckFailed("fade_in gave the same picture for alpha = 0.3 and alpha = 0.8: alpha is ignored. The "
                          "output is (1 - alpha) * up(low) + alpha * high, so it moves from the old picture to the "
                          "new one as alpha grows")
    bilinear = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
    bilinear_corners = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)
    for alpha in alphas:
        expected = (1 - alpha) * _up(low) + alpha * high
        wrong = {
            "the blend is the wrong way round: alpha weights the new block's output `high` and 1 - alpha the "
            "up-sampled `low`, so that at alpha = 0 the new block is invisible": alpha * _up(low) + (1 - alpha) * high,
            "that is bilinear up-sampling: up-sample low by nearest neighbour (mode=\"nearest\", every pixel a 2x2 "
            "block), as ProGAN's generator does, so that at alpha = 0 the picture is exactly the previous stage's":
                (1 - alpha) * bilinear + alpha * high,
            "that is bilinear up-sampling (align_corners=True): up-sample low by nearest neighbour (mode=\"nearest\")":
                (1 - alpha) * bilinear_corners + alpha * high,
        }
        diagnose(outs[alpha], expected, f"fade_in(low, high, alpha={alpha:g})", wrong,
                  "The blend is (1 - alpha) * up(low) + alpha * high, with up() nearest-neighbour x2.")
    if not torch.equal(outs[0.0], _up(low)):
        raise CheckFailed("at alpha = 0 the output must be exactly the up-sampled low picture (nothing of high)")
    low_t, high_t = low[:, :1].clone().requires_grad_(True), high[:, :1].clone().requires_grad_(True)
    out = call(fn, low_t, high_t, 0.25, name="fade_in")
    if not torch.is_tensor(out) or not out.requires_grad:
        raise CheckFailed("fade_in returned a value no gradient can flow through: both toRGB layers train during the "
                          "fade-in, so keep low and high in the graph (no .detach(), no torch.no_grad())")
    out.sum().backward()
    # each low pixel feeds a 2x2 block of the output, weighted 1 - alpha = 0.75; each high pixel one output, 0.25
    if low_t.grad is None or high_t.grad is None or not (
            torch.allclose(low_t.grad, torch.full_like(low_t, 3.0))
            and torch.allclose(high_t.grad, torch.full_like(high_t, 0.25))):
        raise CheckFailed("the blend's value is right but its gradient is not: it must reach low (weighted 1 - alpha) "
                          "and high (weighted alpha); do not detach either of them")
    wide_low, wide_high = _randn(g, 2, 1, 3, 5), _randn(g, 2, 1, 6, 10)
    diagnose(_blend(fn, wide_low, wide_high, 0.6), 0.4 * _up(wide_low) + 0.6 * wide_high,
              "fade_in on a 3x5 -> 6x10 pair", {}, "Up-sample by a factor of 2, not to a fixed size.")
    passed("fade_in: nearest up-sampling, (1 - alpha) old + alpha new, exact at alpha = 0, gradients to both")


# -- task 2: minibatch standard deviation ------------------------------------------------------------
def _append(x: torch.Tensor, per_sample: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    return torch.cat([x, per_sample.reshape(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def _mbstd_wrong(x: torch.Tensor, g: int) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The right answer for x and group size g, and the usual wrong ones, each with what it gets wrong."""
    n, c, h, w = x.shape
    consecutive = x.reshape(n // g, g, c, h, w)
    strided = x.reshape(g, n // g, c, h, w)  # "group" j: samples j, j + N/g, j + 2N/g, ...
    spread = consecutive.std(dim=1, unbiased=False).mean(dim=(1, 2, 3))
    axis = ("the groups are mixed across the wrong axis: x.view(group_size, N // group_size, ...) puts samples i, "
            "i + N/group_size, ... together. A group is group_size consecutive samples (sample i is in group "
            "i // group_size): x.view(N // group_size, group_size, C, H, W), std over dim 1")
    wrong = [
        (axis, _append(x, strided.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat(g))),
        (axis, _append(x, strided.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat_interleave(g))),
        (axis, _append(x, consecutive.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat(n // g))),
        (axis, _append(x, consecutive.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat_interleave(n // g))),
        ("that is the spread of the whole batch: take the std within each group of group_size samples, one number "
         "per group", _append(x, x.std(dim=0, unbiased=False).mean().expand(n))),
        ("that is the spread of the whole batch, and the unbiased one: take the biased std (unbiased=False) within "
         "each group of group_size samples", _append(x, x.std(dim=0).mean().expand(n))),
        ("that is the unbiased std (dividing by group_size - 1): use the biased one, std(..., unbiased=False), which "
         "divides by the group size", _append(x, consecutive.std(dim=1).mean(dim=(1, 2, 3)).repeat_interleave(g))),
        ("an eps is added under the square root (as in the paper's code): this task asks for the plain biased std, "
         "std(..., unbiased=False), with no eps", _append(x, (consecutive.var(dim=1, unbiased=False) + 1e-8).sqrt()
                                                           .mean(dim=(1, 2, 3)).repeat_interleave(g))),
        ("the statistic is not given to the members of its own group: sample i belongs to group i // group_size, so "
         "spread each group's number over its group_size consecutive samples with repeat_interleave(group_size), "
         "not repeat()", _append(x, spread.repeat(g))),
    ]
    return _append(x, spread.repeat_interleave(g)), wrong


def _mbstd(fn, x: torch.Tensor, g: int | None) -> torch.Tensor:
    name = "minibatch_stddev(x)" if g is None else f"minibatch_stddev(x, group_size={g})"
    out = call(fn, x, name="minibatch_stddev") if g is None else call(fn, x, g, name="minibatch_stddev")
    n, c, h, w = x.shape
    out = expect_tensor(out, name)
    if tuple(out.shape) == (n, c, h, w):
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}, x's own shape: append the statistic as one "
                          f"more channel, shape {(n, c + 1, h, w)}")
    if tuple(out.shape) != (n, c + 1, h, w):
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}; expected {(n, c + 1, h, w)} (x with one more "
                          "channel)")
    if not torch.equal(out[:, :c], x):
        if torch.equal(out[:, 1:], x):
            raise CheckFailed(f"{name}: the extra channel goes last, after x's own C channels: "
                              "torch.cat([x, extra], dim=1)")
        raise CheckFailed(f"{name} changed x's own channels: return x unchanged, with the extra channel appended")
    extra = out[:, -1]
    if not torch.allclose(extra, extra[:, :1, :1].expand_as(extra)):
        raise CheckFailed(f"{name}: the extra channel varies over the image. Average the std over the channels and "
                          "the pixels (dims C, H, W) into one number per group, and fill the channel with it")
    return out


@keeps_rng
def check_minibatch_stddev(fn) -> None:
    """fn(x, group_size=4) -> x with one more channel: each group's mean (biased) std, for each member."""
    g = torch.Generator().manual_seed(7)
    # samples 0-3 are one image repeated, so the right group 0 has spread 0 and any mixing of groups shows
    x = torch.cat([_randn(g, 1, 3, 2, 2).expand(4, 3, 2, 2), 2 * _randn(g, 4, 3, 2, 2)]) + 0.5
    expected, wrong = _mbstd_wrong(x, 4)
    out = _mbstd(fn, x, 4)
    diagnose(out, expected, "minibatch_stddev(x, group_size=4)", wrong)
    out = _mbstd(fn, x, None)
    diagnose(out, expected, "minibatch_stddev(x) with the default group size", {},
              "The default group size is 4: def minibatch_stddev(x, group_size=4).")
    y = _randn(g, 12, 2, 3, 3) * torch.linspace(0.2, 3.0, 12).view(12, 1, 1, 1)
    for size in (2, 3):
        expected, wrong = _mbstd_wrong(y, size)
        fixed = _mbstd_wrong(y, 4)[0]
        out = _mbstd(fn, y, size)
        if same(out, fixed):
            raise CheckFailed(f"minibatch_stddev(x, group_size={size}) gave the answer for groups of 4: use the "
                              "group_size argument, not a fixed 4")
        diagnose(out, expected, f"minibatch_stddev(x, group_size={size}) on a batch of 12", wrong)
    passed("minibatch_stddev: groups of consecutive samples, biased std averaged to one number, given to each member")


# -- task 3: the equalized-learning-rate convolution ------------------------------------------------
def _he(c_in: int, kernel: int) -> float:
    return math.sqrt(2 / (c_in * kernel * kernel))


def _build(cls, c_in: int, c_out: int, kernel: int, padding: int) -> nn.Module:
    layer = call(cls, c_in, c_out, kernel, padding=padding, name="EqualizedConv")
    if not isinstance(layer, nn.Module):
        raise CheckFailed(f"EqualizedConv(...) made a {type(layer).__name__}; subclass nn.Module (class "
                          "EqualizedConv(nn.Module)) and call super().__init__() first")
    for name, shape in (("weight", (c_out, c_in, kernel, kernel)), ("bias", (c_out,))):
        p = getattr(layer, name, None)
        if not isinstance(p, nn.Parameter):
            raise CheckFailed(f"self.{name} should be an nn.Parameter (so the optimiser trains it); got "
                              f"{type(p).__name__}")
        if tuple(p.shape) != shape:
            raise CheckFailed(f"self.{name} has shape {tuple(p.shape)}; expected {shape} for EqualizedConv({c_in}, "
                              f"{c_out}, {kernel})")
    return layer


def _forward(layer: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    return expect_tensor(call(layer, x, name=f"EqualizedConv.forward{what}"), f"EqualizedConv.forward{what}")


@keeps_rng
def check_equalized_conv(cls) -> None:
    """cls(c_in, c_out, kernel, padding=0): N(0, 1) weights, zero biases, and the weight multiplied by
    sqrt(2 / fan_in) at every forward pass."""
    torch.manual_seed(8)
    c_in, c_out, k, pad = 16, 8, 3, 1
    layer = _build(cls, c_in, c_out, k, pad)
    scale = _he(c_in, k)
    std = float(layer.weight.detach().std())
    if abs(std - scale) < 0.3 * scale:
        raise CheckFailed(f"the weights start with std {std:.3g} = sqrt(2 / fan_in): the He constant is applied once "
                          "at initialisation. Draw the weights from N(0, 1) (torch.randn) and multiply by "
                          "sqrt(2 / fan_in) in forward, at every pass: that is what equalizes the learning rate")
    if not 0.85 < std < 1.15 or abs(float(layer.weight.detach().mean())) > 0.15:
        raise CheckFailed(f"the weights start with mean {float(layer.weight.detach().mean()):.3g} and std {std:.3g}; "
                          "draw them from N(0, 1) with torch.randn(c_out, c_in, kernel, kernel)")
    if layer.bias.detach().abs().max() > 0:
        raise CheckFailed("the biases should start at zero (torch.zeros(c_out))")
    initial = layer.weight.detach().clone()
    g = torch.Generator().manual_seed(9)
    w, b, x = _randn(g, c_out, c_in, k, k), _randn(g, c_out), _randn(g, 2, c_in, 5, 5)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    out = _forward(layer, x, "")
    expected = F.conv2d(x, w * scale, b, padding=pad)
    if tuple(out.shape) != tuple(expected.shape):
        raise CheckFailed(f"EqualizedConv({c_in}, {c_out}, {k}, padding={pad}) turned a (2, {c_in}, 5, 5) input into "
                          f"{tuple(out.shape)}; expected {tuple(expected.shape)}: pass padding to the convolution")
    wrong = {
        "the He constant is missing: multiply the weight by sqrt(2 / fan_in) in forward":
            F.conv2d(x, w, b, padding=pad),
        "fan_in is c_in * kernel * kernel, every input one output sums over: the kernel area is missing, "
        "sqrt(2 / c_in) is too large": F.conv2d(x, w * math.sqrt(2 / c_in), b, padding=pad),
        "the constant is sqrt(2 / fan_in): the 2 (He's gain) is missing": F.conv2d(x, w / math.sqrt(c_in * k * k), b,
                                                                                   padding=pad),
        "the constant is the square root of 2 / fan_in: the sqrt is missing":
            F.conv2d(x, w * scale ** 2, b, padding=pad),
        "only the weight is scaled: add the bias as it is": F.conv2d(x, w * scale, b * scale, padding=pad),
        "the output does not follow the weights the layer holds: a scaled copy of the weights made in __init__ goes "
        "stale when the optimiser changes self.weight. Multiply self.weight by the constant inside forward":
            F.conv2d(x, initial * scale, b, padding=pad),
    }
    diagnose(out, expected, "EqualizedConv.forward after setting its weights", wrong,
              "Expected F.conv2d(x, self.weight * sqrt(2 / (c_in * kernel * kernel)), self.bias, padding=padding).")
    if not torch.equal(layer.weight.detach(), w):
        raise CheckFailed("forward changed self.weight: the He constant is applied again at every pass, so scale a "
                          "product (self.weight * scale), never the parameter itself in place")
    again = _forward(layer, x, " (a second time)")
    if not same(again, out):
        raise CheckFailed("a second forward pass on the same input gave a different output: forward must not change "
                          "the layer's state")
    layer.zero_grad()
    out.sum().backward()
    w_ref = (w * 1).requires_grad_(True)
    F.conv2d(x, w_ref * scale, b, padding=pad).sum().backward()
    if layer.weight.grad is None or not torch.allclose(layer.weight.grad, w_ref.grad, rtol=1e-4, atol=1e-5):
        raise CheckFailed("the gradient does not reach self.weight through the scaled product: compute "
                          "F.conv2d(x, self.weight * scale, ...) from the parameter itself (no .data, no .detach())")
    for c_in, c_out, k in ((32, 16, 3), (24, 16, 4), (256, 32, 1)):
        fresh = _build(cls, c_in, c_out, k, 0)
        unit = torch.randn(8, c_in, 6, 6)
        out = _forward(fresh, unit, "")
        got = float(out.detach().std())
        if not 0.9 * math.sqrt(2) < got < 1.1 * math.sqrt(2):
            raise CheckFailed(f"a fresh EqualizedConv({c_in}, {c_out}, {k}) gave outputs of std {got:.3g} for "
                              "unit-normal inputs; expected about sqrt(2) = 1.41 (each output sums fan_in = "
                              f"{c_in * k * k} unit-variance products, times sqrt(2 / fan_in))")
    passed("EqualizedConv: N(0, 1) weights, scaled by sqrt(2 / fan_in) at every pass; output std ~ sqrt(2)")


# -- task 4: pixel norm ------------------------------------------------------------------------------
@keeps_rng
def check_pixel_norm(fn) -> None:
    """fn(x, eps=1e-8) -> x / sqrt(mean over channels of x^2 + eps)."""
    g = torch.Generator().manual_seed(10)
    x = _randn(g, 3, 5, 4, 4) * 2 + 0.3
    name = "pixel_norm(x)"
    try:
        out = expect_tensor(call(fn, x, name="pixel_norm"), name)
    except CheckFailed as err:
        if "size of tensor" in str(err) or "must match" in str(err):
            raise CheckFailed(f"{err}. Keep the channel dimension in the mean, .mean(dim=1, keepdim=True), so that "
                              "it divides every channel of its pixel") from None
        raise
    if tuple(out.shape) != tuple(x.shape):
        hint = " Keep the channel dimension in the mean: .mean(dim=1, keepdim=True)." if out.dim() != x.dim() else ""
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}; expected x's shape {tuple(x.shape)}.{hint}")
    eps = 1e-8
    square = x.pow(2)
    wrong = {
        "normalised over the pixels of each image: the mean of x^2 is over the channels (dim=1), at every pixel":
            x / torch.sqrt(square.mean(dim=(2, 3), keepdim=True) + eps),
        "normalised over the batch: the mean of x^2 is over the channels (dim=1), at every pixel of every image":
            x / torch.sqrt(square.mean(dim=0, keepdim=True) + eps),
        "normalised over the whole image: the mean of x^2 is over the channels only (dim=1), one per pixel":
            x / torch.sqrt(square.mean(dim=(1, 2, 3), keepdim=True) + eps),
        "the square root is missing: divide by sqrt(mean of x^2 + eps)": x / (square.mean(dim=1, keepdim=True) + eps),
        "that divides by the root of the sum over channels: it is the mean (the sum divided by C), so the output's "
        "mean square is 1 at every pixel": x / torch.sqrt(square.sum(dim=1, keepdim=True) + eps),
        "that divides by the standard deviation over channels: it is the root mean square, without subtracting "
        "the mean": x / torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + eps),
    }
    diagnose(out, x / torch.sqrt(square.mean(dim=1, keepdim=True) + eps), name, wrong,
              "Expected x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + eps).")
    for e in (0.5, 3.0):
        out = expect_tensor(call(fn, x, e, name="pixel_norm"), f"pixel_norm(x, eps={e})")
        expected = x / torch.sqrt(square.mean(dim=1, keepdim=True) + e)
        diagnose(out, expected, f"pixel_norm(x, eps={e})", {
            "eps goes inside the square root: sqrt(mean + eps)": x / (torch.sqrt(square.mean(dim=1, keepdim=True)) + e),
            "the eps argument is ignored: use the one you are given":
                x / torch.sqrt(square.mean(dim=1, keepdim=True) + eps),
        })
    z = x.clone()
    z[0, :, 1, 2] = 0
    out = call(fn, z, name="pixel_norm")
    if not torch.is_tensor(out) or not torch.isfinite(out).all():
        raise CheckFailed("pixel_norm gave NaN where a pixel's features are all 0: add eps inside the square root")
    if out[0, :, 1, 2].abs().max() > 0:
        raise CheckFailed("a pixel whose features are all 0 must stay 0")
    passed("pixel_norm: each pixel's feature vector divided by its root mean square over the channels")


# -- task 5: the growth schedule ---------------------------------------------------------------------
def _stage_alpha(fn, images: int, phase: int, stages: int) -> tuple[int, float]:
    got = call(fn, images, phase, stages, name="growth_stage")
    where = f"growth_stage({images}, {phase}, {stages})"
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where} returned {got!r}; return a pair (stage, alpha)")
    stage, alpha = (v.item() if torch.is_tensor(v) and v.numel() == 1 else v for v in got)
    if isinstance(stage, bool) or not isinstance(stage, numbers.Real) or stage != int(stage):
        raise CheckFailed(f"{where} returned stage {stage!r}; the stage is a whole number (an int)")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise CheckFailed(f"{where} returned alpha {alpha!r}; alpha is a number in [0, 1] (a float)")
    return int(stage), float(alpha)


def check_growth_stage(fn) -> None:
    """fn(images, phase_images, num_stages) -> (stage, alpha): stage 0 for one phase, then a fade-in and a stable
    phase per stage."""
    cases = [(i, 10, 4) for i in (0, 9, 10, 13, 15, 19, 20, 29, 30, 35, 49, 50, 57, 69, 70, 1000)]
    cases += [(i, 7, 3) for i in (6, 7, 10, 13, 14, 21, 24, 34, 35, 100)]
    cases += [(5, 10, 1), (50, 10, 1), (0, 1, 2), (1, 1, 2)]
    got = {case: _stage_alpha(fn, *case) for case in cases}
    fading = [case for case in cases if 0 < _schedule(*case)[1] < 1]
    for case in fading:
        stage, alpha = got[case]
        want = _schedule(*case)
        if stage == want[0] and alpha == 0:
            raise CheckFailed(f"growth_stage{case} gave alpha 0, expected {want[1]:.4g}: alpha is stuck at 0 during "
                              "the fade-in (then jumps to 1), so the new block is never blended in. Integer division "
                              "(//) or int() rounds the share done down to 0: alpha = (images since the fade-in "
                              "began) / phase_images, a true division")
    if all(got[case][1] == 1 for case in fading):
        raise CheckFailed(f"growth_stage gave alpha 1 in the middle of every fade-in (e.g. growth_stage{fading[0]} "
                          f"should be alpha {_schedule(*fading[0])[1]:.4g}): alpha is stuck at 1, so each new block "
                          "appears at once. During a fade-in alpha is the share of the fade-in done, from 0 to 1")
    for case in fading:
        if got[case][1] == 1 and got[case][0] == _schedule(*case)[0]:
            raise CheckFailed(f"growth_stage{case} gave alpha 1, expected {_schedule(*case)[1]:.4g}: alpha is stuck "
                              "at 1 in this fade-in. Measure the share of this stage's fade-in done, "
                              "((images - phase_images) % (2 * phase_images)) / phase_images, not of all training")
    sweep = [_stage_alpha(fn, i, 10, 4)[1] for i in range(30, 40)]
    if any(b < a for a, b in zip(sweep, sweep[1:])):
        raise CheckFailed("alpha fell during the fade-in of stage 2 (images 30..39 gave "
                          f"{[round(a, 3) for a in sweep]}): it rises from 0 at the start of the fade-in towards 1 "
                          "at its end")
    for case in cases:
        want, have = _schedule(*case), got[case]
        if have[0] != want[0]:
            if case[0] >= case[1] * (2 * case[2] - 1) and have[0] >= case[2]:
                raise CheckFailed(f"growth_stage{case} gave stage {have[0]}, but there are only {case[2]} stages "
                                  f"(0 to {case[2] - 1}): past the last stable phase, stay at ({case[2] - 1}, 1.0)")
            off = " (off by one)" if abs(have[0] - want[0]) == 1 else ""
            raise CheckFailed(f"growth_stage{case} gave stage {have[0]}, expected {want[0]}{off}: stage 0 (4x4) "
                              "lasts a single phase; after it, each stage lasts two phases (fade-in, then stable), "
                              "so stage = 1 + (images - phase_images) // (2 * phase_images)")
        if abs(have[1] - want[1]) > 1e-6:
            raise CheckFailed(f"growth_stage{case} gave alpha {have[1]:.4g}, expected {want[1]:.4g}: alpha is 1 in "
                              "stage 0 and in stable phases, and the share of the fade-in done during a fade-in")
    passed("growth_stage: one phase at 4x4, then a fade-in (alpha 0 -> 1) and a stable phase per stage, capped at "
           "the last")
