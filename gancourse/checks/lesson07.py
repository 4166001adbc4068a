"""Checks for lesson 07, StyleGAN. Each takes the student's code and explains a wrong answer.

The six graded tasks: adaptive instance normalisation, the mapping network's slow layer (a learning-rate
multiplier on top of the equalized learning rate), StyleGAN2's modulated convolution (fused and unfused),
style mixing, truncation with the running average of w it pulls towards, and lazy R1. Every check that
draws random numbers runs in a private random stream, so checking never changes the student's seeded run.

The tables of known mistakes (`_*_answers`, `_*_problem`) serve the grader's judges too, so a mistake is
named the same way in the check and in the grade's note; the library's own pieces are the references.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import (CheckFailed, call, call_naming_stubs, diagnose, expect_tensor, first_values, keeps_rng,
                              passed, same)
from gancourse.checks.lesson06 import _randn
from gancourse.models.stylegan import instance_norm, mix_styles, modulated_conv2d, truncate

_SHAPE_ERRORS = ("size of tensor", "must match", "shape", "groups", "expected weight", "expected input")


def _call_hinting(fn, *args, name: str, hint: str):
    """call(), with `hint` added when the answer fails on tensors of mismatched shapes (a broadcast gone wrong)."""
    try:
        return call(fn, *args, name=name)
    except CheckFailed as err:
        if not any(words in str(err) for words in _SHAPE_ERRORS):
            raise
        raise CheckFailed(f"{err}. {hint}") from None


def _grads(inputs: list[torch.Tensor], output: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor | None]:
    """The gradients of (output * weights).sum() for each input (None where none flows)."""
    got = torch.autograd.grad((output * weights).sum(), inputs, allow_unused=True) if output.requires_grad else None
    return list(got) if got is not None else [None] * len(inputs)


def _same_grads(got: list, want: list) -> bool:
    """Gradients alike: the same where the reference has one, none where it has none."""
    return all((g is None) == (w is None) and (w is None or same(g, w, rtol=1e-3, atol=1e-5))
               for g, w in zip(got, want, strict=True))


# -- task 1: adaptive instance normalisation -------------------------------------------------------------
def _normalised(x: torch.Tensor, dims, eps: float, unbiased: bool = False) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(x.var(dim=dims, unbiased=unbiased, keepdim=True) + eps)


def _adain_answers(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
                   eps: float) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The right AdaIN of x for these styles, and the usual wrong ones, each with what it gets wrong."""
    s, b = scale[:, :, None, None], bias[:, :, None, None]
    mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
    pixels = "take the mean and the variance of each feature map over its own pixels, dim=(2, 3)"
    wrong = [
        (f"normalised over the batch (each channel's statistics across the samples, as batch norm does): {pixels}",
         s * _normalised(x, (0, 2, 3), eps) + b),
        (f"normalised over the batch axis (dim=0): {pixels}", s * _normalised(x, 0, eps) + b),
        (f"normalised over the channels (dim=1): {pixels}", s * _normalised(x, 1, eps) + b),
        (f"normalised over the whole sample, all channels together (layer norm): {pixels}",
         s * _normalised(x, (1, 2, 3), eps) + b),
        ("the variance is the unbiased one (dividing by H * W - 1, torch's default for std and var): use the biased "
         "one, x.var(dim=(2, 3), unbiased=False, keepdim=True), which divides by the number of pixels",
         s * _normalised(x, (2, 3), eps, unbiased=True) + b),
        ("the style's scale and bias are swapped: style_scale multiplies the normalised map and style_bias is added",
         b * instance_norm(x, eps) + s),
        ("the feature maps are not normalised: subtract each map's mean over its pixels and divide by its standard "
         "deviation first, so that the style alone sets the map's statistics", s * x + b),
        ("each map is divided by its standard deviation but not centred: subtract its mean over the pixels first",
         s * x / torch.sqrt(var + eps) + b),
        ("each map is centred but not divided by its standard deviation: divide by sqrt(var + eps)",
         s * (x - mean) + b),
        ("eps goes inside the square root: (x - mean) / sqrt(var + eps)", s * (x - mean) / (var.sqrt() + eps) + b),
        ("the eps argument is ignored: use the one you are given", s * instance_norm(x, 1e-8) + b),
    ]
    return s * instance_norm(x, eps) + b, wrong


_STYLE_SHAPE = ("style_scale and style_bias have shape (N, C), one number per feature map: view them as (N, C, 1, 1) "
                "(style_scale[:, :, None, None]) so that each scales and shifts every pixel of its own map")


def _adain(fn, x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    name = "adain(x, style_scale, style_bias" + ("" if eps is None else f", eps={eps:g}") + ")"
    args = (x, scale, bias) if eps is None else (x, scale, bias, eps)
    out = _call_hinting(fn, *args, name="adain", hint=_STYLE_SHAPE)
    if torch.is_tensor(out) and not torch.isfinite(out).all():
        raise CheckFailed(f"{name} gave NaN or inf: a feature map whose pixels are all equal has variance 0, so eps "
                          "goes inside the square root, (x - mean) / sqrt(var + eps)")
    out = expect_tensor(out, name)
    if tuple(out.shape) != tuple(x.shape):
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}; expected x's shape {tuple(x.shape)}: keep the "
                          "pixel dimensions in the statistics (keepdim=True)")
    return out


@keeps_rng
def check_adain(fn) -> None:
    """fn(x, style_scale, style_bias, eps=1e-8) -> style_scale * (x - mean) / sqrt(var + eps) + style_bias, with the
    mean and the biased variance of each feature map over its pixels."""
    g = torch.Generator().manual_seed(70)
    x = _randn(g, 3, 4, 3, 3) * (torch.rand(3, 4, 1, 1, generator=g) * 3 + 0.5) + 2 * _randn(g, 3, 4, 1, 1)
    scale, bias = _randn(g, 3, 4) + 1.5, _randn(g, 3, 4)
    for eps in (None, 0.5):
        expected, wrong = _adain_answers(x, scale, bias, 1e-8 if eps is None else eps)
        diagnose(_adain(fn, x, scale, bias, eps), expected, "adain" + ("" if eps is None else f" with eps={eps:g}"),
                  wrong, "Expected style_scale * (x - mean) / sqrt(var + eps) + style_bias, the statistics over "
                         "dim=(2, 3).")
    flat = x.clone()
    flat[1, 2] = 2.0  # a feature map whose pixels are all equal: normalised to 0, so the output is the style's bias
    out = _adain(fn, flat, scale, bias)
    if not torch.allclose(out[1, 2], bias[1, 2].expand(3, 3), atol=1e-5):
        raise CheckFailed("a feature map whose pixels are all equal should come out as the style's bias (its centred "
                          f"values are 0), but gave {first_values(out[1, 2])}: eps goes inside the square root")
    leaves = [t.clone().requires_grad_(True) for t in (x, scale, bias)]
    weights = _randn(g, *x.shape)
    got = _grads(leaves, _adain(fn, *leaves), weights)
    want = _grads(leaves, _adain_answers(*leaves, 1e-8)[0], weights)
    if not _same_grads(got, want):
        raise CheckFailed("adain's value is right but its gradient is not: gradients must reach x and both halves of "
                          "the style (the mapping network learns through them), so no .detach() and no torch.no_grad()")
    other = _randn(g, 2, 5, 4, 6) * 2 + 1
    o_scale, o_bias = _randn(g, 2, 5), _randn(g, 2, 5)
    diagnose(_adain(fn, other, o_scale, o_bias), _adain_answers(other, o_scale, o_bias, 1e-8)[0],
              "adain on a (2, 5, 4, 6) batch", [], "Use the shapes of the inputs, not fixed sizes.")
    passed("adain: each feature map normalised over its own pixels (biased variance, eps inside the root), then "
           "scaled and shifted by its style")


# -- task 2: the mapping network's slow layer ------------------------------------------------------------
def basis_inputs(d_in: int) -> torch.Tensor:
    """0 and the d_in unit vectors: a linear layer's outputs on them are its bias, then bias + each weight column."""
    return torch.cat([torch.zeros(1, d_in), torch.eye(d_in)])


def _effective(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight (d_out, d_in) and bias (d_out) a linear layer computes with, from its outputs on basis_inputs."""
    outputs = outputs.detach()
    return (outputs[1:] - outputs[:1]).t(), outputs[0]


def _near(value: float, target: float, tol: float = 0.1) -> bool:
    return target != 0 and abs(value / target - 1) < tol


def _init_problem(out_std: float, weight_std: float, m: float, d_in: int) -> str | None:
    """What a fresh layer's output spread on unit-normal inputs says about its multiplier (None: about 1, right)."""
    if _near(out_std, 1.0):
        return None
    say = (f"a fresh SlowLinear({d_in}, ..., lr_multiplier={m:g}) gave outputs of std {out_std:.3g} for unit-normal "
           "inputs; expected about 1")
    if _near(out_std, m, 0.15) and _near(weight_std, 1.0, 0.15):
        return (f"{say}, a factor m = {m:g} short: the multiplier is applied at run time but the weights start at "
                "N(0, 1). Draw them from N(0, 1/m^2), torch.randn(d_out, d_in) / lr_multiplier, so that at "
                "initialisation the two cancel and the layer computes what a plain equalized layer would")
    if _near(out_std, 1 / m, 0.15):
        return (f"{say}, 1/m = {1 / m:g} times too large: the multiplier is folded into the initial weights "
                "(N(0, 1/m^2)) but forward lacks the m that cancels it. Multiply the weight by lr_multiplier / "
                "sqrt(d_in) in forward")
    if _near(out_std, math.sqrt(2), 0.1):
        return f"{say}, not sqrt(2): the run-time constant is lr_multiplier / sqrt(d_in), with no sqrt(2) gain here"
    return (f"{say}: the weights should start at N(0, 1/m^2) and be multiplied by lr_multiplier / sqrt(d_in) in "
            "forward, so that the effective weights start at N(0, 1/d_in)")


def _step_problem(before: torch.Tensor, after: torch.Tensor, d_in: int, m: float, lr: float) -> str | None:
    """What one Adam step says about the multiplier, from the outputs on basis_inputs before and after it (None:
    the effective weights moved by lr * m / sqrt(d_in) and the bias by lr * m, right)."""
    (w0, b0), (w1, b1) = _effective(before), _effective(after)
    step_w, step_b = float((w1 - w0).abs().mean()), float((b1 - b0).abs().mean())
    want_w, want_b = lr * m / math.sqrt(d_in), lr * m
    said = f"one Adam step (lr={lr:g}) moved the effective weights by {step_w:.3g} on average"
    rules = [  # (predicate, message): the first that holds names the mistake
        (step_w < want_w / 100, "one optimiser step did not change what the layer computes: forward must use "
                                "self.weight and self.bias themselves (no copy made in __init__, no .detach())"),
        (m < 0.9 and _near(step_w, want_w / m),
         f"{said}, 1/m = {1 / m:g} times the expected lr * m / sqrt(d_in) = {want_w:.3g}: the layer learns at full "
         "speed, so the learning-rate multiplier is missing. Multiply the weight by lr_multiplier / sqrt(d_in) in "
         "forward, and draw it from N(0, 1/m^2) so that the function at initialisation stays the same"),
        (_near(step_w, lr), f"{said}, the learning rate itself: the layer has no run-time constant, so Adam's "
                            "step is not scaled at all. Keep the weights large (N(0, 1/m^2)) and multiply them by "
                            "lr_multiplier / sqrt(d_in) in forward"),
        (not _near(step_w, want_w), f"{said}; expected lr * m / sqrt(d_in) = {want_w:.3g}: Adam moves every "
                                    "parameter by about lr, and the run-time constant lr_multiplier / sqrt(d_in) "
                                    "must scale that step"),
        (step_b < want_b / 100, "one optimiser step did not move the bias's effect: use self.bias (times "
                                "lr_multiplier) in forward"),
        (m < 0.9 and _near(step_b, lr),
         f"one Adam step moved the bias by {step_b:.3g}, the full learning rate, 1/m = {1 / m:g} times too fast: "
         "multiply the bias by lr_multiplier in forward too (it starts at 0, so this changes nothing at "
         "initialisation)"),
        (not _near(step_b, want_b), f"one Adam step moved the bias by {step_b:.3g}; expected lr * m = {want_b:.3g}: "
                                    "the bias is multiplied by lr_multiplier in forward"),
    ]
    return next((message for holds, message in rules if holds), None)


def _linear_answers(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
                    m: float) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The right output of a slow layer holding weight w and bias b, and the usual wrong ones."""
    root = math.sqrt(w.shape[1])
    constant = "the run-time constant is lr_multiplier / sqrt(d_in)"
    wrong = [
        ("the multiplier is missing in forward: multiply the weight by lr_multiplier / sqrt(d_in) and the bias by "
         "lr_multiplier", F.linear(x, w / root, b)),
        ("only the weight is slowed down: multiply the bias by lr_multiplier in forward too",
         F.linear(x, w * m / root, b)),
        ("the bias is multiplied by the whole constant: it is multiplied by lr_multiplier only",
         F.linear(x, w * m / root, b * m / root)),
        (f"{constant}: there is no sqrt(2) gain in this layer", F.linear(x, w * m * math.sqrt(2) / root, b * m)),
        (f"{constant}: the square root is missing", F.linear(x, w * m / root ** 2, b * m)),
        (f"{constant}: multiply by the multiplier, do not divide", F.linear(x, w / (m * root), b / m)),
    ]
    return F.linear(x, w * m / root, b * m), wrong


def _slow(cls, d_in: int, d_out: int, m: float | None) -> nn.Module:
    args = {} if m is None else {"lr_multiplier": m}
    layer = call(cls, d_in, d_out, name="SlowLinear", **args)
    if not isinstance(layer, nn.Module):
        raise CheckFailed(f"SlowLinear(...) made a {type(layer).__name__}; subclass nn.Module (class "
                          "SlowLinear(nn.Module)) and call super().__init__() first")
    for attr, shape in (("weight", (d_out, d_in)), ("bias", (d_out,))):
        p = getattr(layer, attr, None)
        if not isinstance(p, nn.Parameter) or tuple(p.shape) != shape:
            raise CheckFailed(f"self.{attr} should be an nn.Parameter of shape {shape} for SlowLinear({d_in}, "
                              f"{d_out}); got {type(p).__name__} {tuple(getattr(p, 'shape', ()))}")
    if layer.bias.detach().abs().max() > 0:
        raise CheckFailed("the bias should start at zero (torch.zeros(d_out))")
    return layer


def _run(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return expect_tensor(call(layer, x, name="SlowLinear.forward"), "SlowLinear.forward")


def adam_probe(layer: nn.Module, x: torch.Tensor, r: torch.Tensor, lr: float) -> list[torch.Tensor]:
    """The layer's outputs on basis_inputs before and after one Adam step on (layer(x) * r).sum()."""
    inputs = basis_inputs(x.shape[1])
    before = layer(inputs).detach()
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    (layer(x) * r).sum().backward()
    opt.step()
    return [before, layer(inputs).detach()]


@keeps_rng
def check_slow_linear(cls) -> None:
    """cls(d_in, d_out, lr_multiplier=0.01): weights N(0, 1/m^2), zero biases; forward multiplies the weight by
    m / sqrt(d_in) and the bias by m, so the layer starts as a plain equalized layer and learns m times slower."""
    torch.manual_seed(7)
    for d_in, m in ((64, 0.01), (32, 0.1), (48, 1.0)):
        layer = _slow(cls, d_in, 16, m)
        out = _run(layer, torch.randn(512, d_in))
        problem = _init_problem(float(out.detach().std()), float(layer.weight.detach().std()), m, d_in)
        if problem:
            raise CheckFailed(problem)
    g = torch.Generator().manual_seed(71)
    for m in (0.01, 0.1):
        layer = _slow(cls, 16, 8, m)
        x, r = _randn(g, 32, 16), _randn(g, 32, 8)
        problem = _step_problem(*call(adam_probe, layer, x, r, 1e-2, name="SlowLinear (one Adam step)"), 16, m, 1e-2)
        if problem:
            raise CheckFailed(problem)
    layer = _slow(cls, 12, 6, 0.05)
    initial = layer.weight.detach().clone()
    w, b, x = _randn(g, 6, 12) * 20, _randn(g, 6) * 20, _randn(g, 5, 12)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    expected, wrong = _linear_answers(x, w, b, 0.05)
    wrong.append(("the output does not follow the weights the layer holds: a scaled copy of the weights made in "
                  "__init__ goes stale when the optimiser changes self.weight; scale self.weight inside forward",
                  F.linear(x, initial * 0.05 / math.sqrt(12), b * 0.05)))
    diagnose(_run(layer, x), expected, "SlowLinear.forward after setting its weights", wrong,
              "Expected F.linear(x, self.weight * lr_multiplier / sqrt(d_in), self.bias * lr_multiplier).")
    if not torch.equal(layer.weight.detach(), w):
        raise CheckFailed("forward changed self.weight: scale a product (self.weight * constant), never the parameter "
                          "itself in place")
    std = float(_slow(cls, 256, 32, None).weight.detach().std())
    if not _near(std, 100, 0.1):
        raise CheckFailed(f"SlowLinear(256, 32) started with weights of std {std:.3g}; the default lr_multiplier is "
                          "0.01 (StyleGAN's mapping network), so they start at N(0, 1/0.01^2), std 100")
    passed("SlowLinear: weights N(0, 1/m^2) times m / sqrt(d_in), bias times m: the same start as an equalized layer, "
           "m times smaller steps")


# -- task 3: the modulated convolution ------------------------------------------------------------------
def _per_sample(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each sample convolved with its own kernel (N, C_out, C_in, k, k), no padding."""
    return torch.cat([F.conv2d(x[i:i + 1], kernels[i]) for i in range(len(x))])


def _demodulated(kernels: torch.Tensor, dims, eps: float) -> torch.Tensor:
    return kernels * torch.rsqrt(kernels.pow(2).sum(dim=dims, keepdim=True) + eps)


def _modconv_answers(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                     eps: float) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """The right modulated convolution, and the usual wrong ones, each with what it gets wrong."""
    n, c_in = styles.shape
    modulated = weight[None] * styles.view(n, 1, c_in, 1, 1)
    right = modulated_conv2d(x, weight, styles, demodulate=demodulate, eps=eps)
    per_output = "divide each output channel's kernel by its own norm: the sum of its squares over the input " \
                 "channels and the taps, dims (2, 3, 4) of the (N, C_out, C_in, k, k) kernels"
    wrong = [("the first sample's styles modulate every sample: each sample has its own kernel, weight * styles[n]",
              modulated_conv2d(x, weight, styles[:1].expand(n, c_in), demodulate=demodulate, eps=eps))]
    if weight.shape[0] == c_in:
        on_outputs = weight[None] * styles.view(n, c_in, 1, 1, 1)
        wrong.append(("the styles scale the output channels: they scale the input channels, weight[None] * "
                      "styles.view(N, 1, C_in, 1, 1)" + (" (demodulation then cancels them, so the style has no "
                                                          "effect at all)" if demodulate else ""),
                      _per_sample(x, _demodulated(on_outputs, (2, 3, 4), eps) if demodulate else on_outputs)))
    if not demodulate:
        wrong.append(("with demodulate=False the modulated kernels are used as they are (ToRGB's layers are not "
                      "demodulated)", modulated_conv2d(x, weight, styles, eps=eps)))
        return right, wrong
    wrong += [
        (f"demodulation sums over the output channels (dim 1): {per_output}",
         _per_sample(x, _demodulated(modulated, 1, eps))),
        (f"demodulation sums over the kernel's taps only: {per_output}",
         _per_sample(x, _demodulated(modulated, (3, 4), eps))),
        (f"demodulation sums over the input channels only: {per_output}",
         _per_sample(x, _demodulated(modulated, 2, eps))),
        (f"demodulation divides by one norm per sample: {per_output}",
         _per_sample(x, _demodulated(modulated, (1, 2, 3, 4), eps))),
        ("demodulation uses the norm of the weight before modulation: the style changes the kernel's norm, so take the "
         "norm of the modulated kernel s_i * w_ijk", _per_sample(x, modulated * torch.rsqrt(
             weight.pow(2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1, 1) + eps))),
        ("the unfused norm needs the squared styles: output channel j is divided by sqrt(sum_i s_i^2 * sum_k w_ijk^2 "
         "+ eps), i.e. styles.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t()",
         F.conv2d(x * styles[:, :, None, None], weight)
         * torch.rsqrt(styles @ weight.pow(2).sum(dim=(2, 3)).t() + eps)[:, :, None, None]),
        ("the kernels are modulated but not demodulated: with demodulate=True divide each output channel's kernel by "
         "sqrt(sum of its squares over the input channels and taps + eps)", modulated_conv2d(x, weight, styles,
                                                                                            demodulate=False)),
        ("eps goes inside the square root: w / sqrt(sum of squares + eps)",
         _per_sample(x, modulated / (modulated.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt() + eps))),
        ("the eps argument is ignored: use the one you are given", modulated_conv2d(x, weight, styles)),
    ]
    return right, wrong


_MODCONV_SHAPES = ("styles (N, C_in) holds one scale per input channel of each sample: the kernels are "
                   "weight[None] * styles.view(N, 1, C_in, 1, 1), shape (N, C_out, C_in, k, k). Fused: reshape x to "
                   "(1, N * C_in, H, W) and the kernels to (N * C_out, C_in, k, k) and convolve with groups=N, then "
                   "view the result as (N, C_out, H', W'). Unfused: x * styles.view(N, C_in, 1, 1), one plain "
                   "convolution, then each output channel times its 1 / norm")


def _modconv(fn, x, weight, styles, demodulate: bool, fused: bool, eps: float | None = None) -> torch.Tensor:
    name = (f"modulated_conv2d(x, weight, styles, demodulate={demodulate}, "
            + ("" if eps is None else f"eps={eps:g}, ") + f"fused={fused})")
    kwargs = {"demodulate": demodulate, "fused": fused, **({} if eps is None else {"eps": eps})}
    out = _call_hinting(lambda *a: fn(*a, **kwargs), x, weight, styles, name="modulated_conv2d", hint=_MODCONV_SHAPES)
    if torch.is_tensor(out) and not torch.isfinite(out).all():
        raise CheckFailed(f"{name} gave NaN or inf: a sample whose styles are all 0 has all-zero kernels, so eps goes "
                          "inside the square root of the demodulation, and such a kernel stays 0")
    out = expect_tensor(out, name)
    k = weight.shape[-1]
    want = (len(x), weight.shape[0], x.shape[2] - k + 1, x.shape[3] - k + 1)
    if tuple(out.shape) != want:
        raise CheckFailed(f"{name} returned shape {tuple(out.shape)}; expected {want}: one map per output channel and "
                          "sample, stride 1, no padding")
    return out


@keeps_rng
def check_modulated_conv2d(fn) -> None:
    """fn(x, weight, styles, demodulate=True, eps=1e-8, fused=True): StyleGAN2's modulated convolution, fused (one
    grouped convolution over per-sample kernels) and unfused (scale the inputs, convolve, scale the outputs)."""
    g = torch.Generator().manual_seed(72)
    for c_in, c_out in ((5, 4), (4, 4)):
        x, weight = _randn(g, 3, c_in, 6, 6), _randn(g, c_out, c_in, 3, 3)
        styles = torch.exp(0.7 * _randn(g, 3, c_in))
        for demodulate in (True, False):
            expected, wrong = _modconv_answers(x, weight, styles, demodulate, 1e-8)
            for fused in (True, False):
                diagnose(_modconv(fn, x, weight, styles, demodulate, fused), expected,
                          f"modulated_conv2d with demodulate={demodulate}, fused={fused}", wrong)
    small = weight * 0.3
    expected, wrong = _modconv_answers(x, small, styles, True, 1.0)
    for fused in (True, False):
        diagnose(_modconv(fn, x, small, styles, True, fused, eps=1.0), expected,
                  f"modulated_conv2d with eps=1, fused={fused}", wrong)
    dead = styles.clone()
    dead[1] = 0
    for fused in (True, False):
        if _modconv(fn, x, weight, dead, True, fused)[1].abs().max() > 0:
            raise CheckFailed("a sample whose styles are all 0 has all-zero kernels, so its output must be 0")
    unit, spread = _randn(g, 4, 16, 10, 10), _randn(g, 8, 16, 3, 3)
    unit_styles = torch.exp(_randn(g, 4, 16))
    outs = [_modconv(fn, unit, spread, unit_styles, True, fused) for fused in (True, False)]
    for fused, out in zip((True, False), outs):
        std = float(out.detach().std())
        if not 0.9 < std < 1.1:
            raise CheckFailed(f"with demodulation, unit-normal inputs gave outputs of std {std:.3g} (fused={fused}); "
                              "expected about 1, for any weight and styles: that is what demodulation is for")
    if not same(outs[0], outs[1]):
        raise CheckFailed("the fused and the unfused forms disagree: they are the same numbers computed two ways")
    leaves = [t.clone().requires_grad_(True) for t in (x, weight, styles)]
    r = _randn(g, *expected.shape)
    want = _grads(leaves, _modconv_answers(*leaves, True, 1e-8)[0], r)
    for fused in (True, False):
        if not _same_grads(_grads(leaves, _modconv(fn, *leaves, True, fused), r), want):
            raise CheckFailed(f"the value is right but the gradient is not (fused={fused}): gradients must reach x, "
                              "the weight and the styles, so build the kernels from them directly (no .detach(), "
                              "no .data, no torch.no_grad())")
    passed("modulated_conv2d: styles scale the input channels, each output channel divided by its norm over input "
           "channels and taps; fused and unfused agree; unit-variance in, unit-variance out")


# -- task 4: style mixing ---------------------------------------------------------------------------------
def _mix_answers(ws: torch.Tensor, w_b: torch.Tensor, crossover: int) -> tuple[torch.Tensor, list]:
    """The right mix of ws with w_b from `crossover` on, and the usual wrong ones."""
    def taking(start: int, stop: int, codes: torch.Tensor = w_b) -> torch.Tensor:
        mixed = ws.clone()
        mixed[:, start:stop] = codes[:, None]
        return mixed

    num_ws = ws.shape[1]
    wrong = [
        ("the mix is the wrong way round: layers [0, crossover) keep ws (the coarse styles of the first code) and "
         "layers [crossover, num_ws) take w_b (its fine styles)", taking(0, crossover)),
        ("off by one: layer `crossover` is itself the first to take w_b (ws[:, crossover:]), not the one after it",
         taking(crossover + 1, num_ws)),
        ("off by one: the layers before `crossover` keep ws; the first to take w_b is layer `crossover`",
         taking(max(crossover - 1, 0), num_ws)),
        ("crossover is ignored: every layer took w_b", taking(0, num_ws)),
        ("nothing was mixed in: layers [crossover, num_ws) take w_b", ws),
        ("every sample took the first sample's w_b: sample n's layers take w_b[n]",
         taking(crossover, num_ws, w_b[:1].expand_as(w_b))),
    ]
    return mix_styles(ws, w_b, crossover), wrong


_MIX_SHAPES = "ws is (N, num_ws, w_dim) and w_b (N, w_dim): w_b[:, None] (or w_b.unsqueeze(1)) fits any layer range"


def _mixed(fn, ws: torch.Tensor, w_b: torch.Tensor, crossover: int) -> torch.Tensor:
    name = f"mix_styles(ws, w_b, crossover={crossover})"
    kept = ws.detach().clone()
    out = expect_tensor(_call_hinting(fn, ws, w_b, crossover, name="mix_styles", hint=_MIX_SHAPES), name,
                        shape=tuple(ws.shape))
    if not torch.equal(ws.detach(), kept):
        raise CheckFailed(f"{name} changed ws in place: the caller still holds ws (the unmixed styles), so mix into a "
                          "copy (ws.clone()) or build a new tensor (torch.cat)")
    return out


@keeps_rng
def check_mix_styles(fn) -> None:
    """fn(ws, w_b, crossover) -> ws with layers [crossover, num_ws) replaced by w_b, in a new tensor."""
    g = torch.Generator().manual_seed(73)
    ws, w_b = _randn(g, 3, 6, 4), _randn(g, 3, 4)
    for crossover in (2, 5, 1, 0, 6):
        expected, wrong = _mix_answers(ws, w_b, crossover)
        diagnose(_mixed(fn, ws, w_b, crossover), expected, f"mix_styles(ws, w_b, crossover={crossover})", wrong,
                  "Layers [0, crossover) keep ws; layers [crossover, num_ws) take w_b.")
    leaves = [ws.clone().requires_grad_(True), w_b.clone().requires_grad_(True)]
    r = _randn(g, *ws.shape)
    if not _same_grads(_grads(leaves, _mixed(fn, *leaves, 3), r), _grads(leaves, mix_styles(*leaves, 3), r)):
        raise CheckFailed("mix_styles's value is right but its gradient is not: G's loss trains the mapping network "
                          "through both codes, so keep ws and w_b in the graph (no .detach(), no torch.no_grad())")
    passed("mix_styles: layers [0, crossover) from ws, [crossover, num_ws) from w_b, in a new tensor")


# -- task 5: truncation and the average w ------------------------------------------------------------------
def style_mapping(state: int | dict | None) -> nn.Module:
    """A small mapping network (z of 3 numbers -> w of 4): seeded weights for an int, the given state dict (what the
    grader's hidden tests build), or PyTorch's own initialisation for None."""
    if isinstance(state, int):
        torch.manual_seed(state)
    net = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 4))
    if isinstance(state, dict):
        net.load_state_dict(state)
    return net


def _truncate_answers(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> tuple[torch.Tensor, list]:
    wrong = [
        ("the truncation is the wrong way round: psi = 1 leaves w as it is and psi = 0 gives the average, "
         "w_avg + psi * (w - w_avg)", w + psi * (w_avg - w)),
        ("truncation pulls w towards the average w_avg, not towards 0: w_avg + psi * (w - w_avg)", psi * w),
        ("the average is added back whole: w_avg + psi * (w - w_avg) keeps w_avg once", psi * w + w_avg),
    ]
    return truncate(w, w_avg, psi), wrong


def _styles_answers(mapping: nn.Module, z: torch.Tensor, num_ws: int, w_avg: torch.Tensor, psi: float,
                    z_mix: torch.Tensor | None, crossover: int | None, beta: float | None):
    """(ws, their wrong versions, the new average, its wrong versions) for one make_styles call."""
    with torch.no_grad():
        w = mapping(z)
        plain = w[:, None].repeat(1, num_ws, 1)
        mixed = plain if z_mix is None else mix_styles(plain, mapping(z_mix), crossover)
        avg = w_avg if beta is None else torch.lerp(w_avg, w.mean(dim=0), 1 - beta)
        wrong_ws = [("the styles are not truncated: truncate the whole ws towards w_avg by psi", mixed)]
        if z_mix is not None:
            wrong_ws += [("the styles are not mixed: layers [crossover, num_ws) take w(z_mix)",
                          truncate(plain, avg, psi)),
                         ("only w(z) is truncated: truncate after mixing, so that the codes mixed in are truncated too",
                          mix_styles(truncate(plain, avg, psi), mapping(z_mix), crossover))]
        if beta is None:
            return truncate(mixed, avg, psi), wrong_ws, avg, []
        wrong_ws.append(("the styles are truncated towards the old average: move w_avg first (a training step), then "
                         "truncate towards the new one", truncate(mixed, w_avg, psi)))
        follow = "w_avg must follow the plain codes w(z) only"
        targets = [(f"w_avg followed the truncated codes: {follow}, taken before truncation pulls them towards the "
                    "average (otherwise the average drags itself)", truncate(w, w_avg, psi).mean(dim=0)),
                   (f"w_avg followed the truncated codes: {follow}, before mixing and truncation",
                    truncate(mixed, w_avg, psi).mean(dim=(0, 1)))] if psi != 1 else []
        if z_mix is not None:
            other = mapping(z_mix)
            targets += [(f"w_avg followed the mixed codes: {follow}, before mixing (the mean of ws over its layers "
                         "includes w(z_mix))", mixed.mean(dim=(0, 1))),
                        (f"w_avg followed the second codes w(z_mix): {follow}", other.mean(dim=0)),
                        (f"w_avg followed both codes: {follow}", torch.cat([w, other]).mean(dim=0))]
        wrong_avg = [(message, torch.lerp(w_avg, target, 1 - beta)) for message, target in targets] + [
            ("beta and 1 - beta are swapped: the average moves slowly, 1 - beta of the way to the batch's mean w, "
             "torch.lerp(w_avg, w.mean(0), 1 - beta)", torch.lerp(w_avg, w.mean(dim=0), beta)),
            ("w_avg did not move in a training step: with beta given, move it towards the batch's mean plain w by "
             "1 - beta", w_avg),
            ("w_avg jumped to the batch's mean w: move it only 1 - beta of the way there", w.mean(dim=0))]
        return truncate(mixed, avg, psi), wrong_ws, avg, wrong_avg


def _styles_call(fn, mapping, z, num_ws, w_avg, psi, z_mix, crossover, beta) -> tuple[torch.Tensor, torch.Tensor, str]:
    what = f"make_styles(..., psi={psi:g}" + ("" if z_mix is None else f", crossover={crossover}") + \
        ("" if beta is None else f", beta={beta:g}") + ")"
    given = w_avg.clone()
    got = call_naming_stubs(fn, mapping, z, num_ws, given, psi, z_mix, crossover, beta, name="make_styles")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{what} returned {type(got).__name__}; return a pair (ws, w_avg): the styles and the "
                          "average w after this call")
    if not torch.equal(given, w_avg):
        raise CheckFailed(f"{what} changed the w_avg tensor it was given, in place" + (
            ": a sampling call (beta=None) must never move the average, truncated or not" if beta is None else
            ": return the new average as a new tensor (torch.lerp, not lerp_); the caller decides what to keep"))
    ws = expect_tensor(got[0], f"{what}'s ws", shape=(len(z), num_ws, w_avg.shape[0]))
    return ws, expect_tensor(got[1], f"{what}'s w_avg", shape=tuple(w_avg.shape)), what


@keeps_rng
def check_truncation(truncate_fn, make_styles_fn) -> None:
    """truncate(w, w_avg, psi) -> w_avg + psi * (w - w_avg); make_styles(mapping, z, num_ws, w_avg, psi=1.0, z_mix=None,
    crossover=None, beta=None) -> (ws, w_avg), the average moved towards the mean plain w(z) only in training calls."""
    g = torch.Generator().manual_seed(74)
    w_avg = _randn(g, 4)
    for shape, psi in (((5, 4), 0.7), ((5, 4), 0.3), ((2, 6, 4), 0.5), ((5, 4), 0.0), ((5, 4), 1.0)):
        w = _randn(g, *shape) * 2 + 1
        kept, kept_avg = w.clone(), w_avg.clone()
        name = f"truncate(w, w_avg, psi={psi:g}) with w of shape {shape}"
        out = expect_tensor(call(truncate_fn, w, w_avg, psi, name="truncate"), name, shape=shape)
        if not (torch.equal(w, kept) and torch.equal(w_avg, kept_avg)):
            raise CheckFailed(f"{name} changed its inputs in place: sampling must leave w_avg (and w) as they are; "
                              "compute a new tensor")
        expected, wrong = _truncate_answers(w, w_avg, psi)
        diagnose(out, expected, name, wrong, "Expected w_avg + psi * (w - w_avg).")
    mapping = style_mapping(75)
    z, z_mix = _randn(g, 6, 3), _randn(g, 6, 3)
    cases = [(0.6, None, None, None), (0.6, z_mix, 2, None), (1.0, z_mix, 3, 0.9), (0.5, None, None, 0.8),
             (0.5, z_mix, 4, 0.8)]
    for psi, mix, crossover, beta in cases:
        ws, avg, what = _styles_call(make_styles_fn, mapping, z, 5, w_avg, psi, mix, crossover, beta)
        expected_ws, wrong_ws, expected_avg, wrong_avg = _styles_answers(mapping, z, 5, w_avg, psi, mix, crossover,
                                                                         beta)
        if beta is None and not same(avg, w_avg):
            raise CheckFailed(f"{what} moved w_avg: with beta=None it is a sampling call, and sampling, truncated or "
                              "not, returns the average as it came; only training steps (beta given) move it")
        diagnose(avg, expected_avg, f"the average returned by {what}", wrong_avg,
                  "Expected torch.lerp(w_avg, w.mean(dim=0), 1 - beta), with w = mapping(z), before mixing.")
        diagnose(ws, expected_ws, f"the styles returned by {what}", wrong_ws,
                  "Expected w(z) at every layer, w(z_mix) from crossover on, all truncated towards the new w_avg.")
        if avg.requires_grad:
            raise CheckFailed(f"the average returned by {what} carries the mapping network's graph: it is a running "
                              "statistic, not something to train; average w.detach() (or work under torch.no_grad())")
        if not ws.requires_grad:
            raise CheckFailed(f"the styles returned by {what} carry no gradient: G's loss trains the mapping network "
                              "through them, so compute them from mapping(z) without .detach() or torch.no_grad()")
    passed("truncation: w_avg + psi * (w - w_avg); the average follows the plain codes of training steps only, never "
           "mixed or truncated ones, and sampling leaves it alone")


# -- task 6: lazy R1 ---------------------------------------------------------------------------------------
def r1_critic(state: int | dict | None) -> nn.Module:
    """A small critic (3x4x4 images -> one score each), smooth so that its input gradient has a gradient: seeded
    weights for an int, the given state dict, or PyTorch's own initialisation for None."""
    if isinstance(state, int):
        torch.manual_seed(state)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.Softplus(), nn.Linear(8, 1))
    if isinstance(state, dict):
        net.load_state_dict(state)
    return net


def _r1_answers(D: nn.Module, real: torch.Tensor, gamma: float, every: int) -> tuple[torch.Tensor, list]:
    """The lazy R1 loss of a step where it is due, and the usual wrong ones (numbers, without a graph)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    squares = grad.flatten(1).pow(2).sum(dim=1)
    right = every * gamma / 2 * squares.mean()
    n = len(real)
    wrong = [
        ("R1 is not scaled by its interval: multiply it by every, so that a penalty applied once every `every` steps "
         "weighs as much per image as one applied at every step", right / every),
        ("R1 is divided by its interval: multiply it by every", right / every ** 2),
        ("the 1/2 of gamma / 2 is missing", 2 * right),
        ("gamma / 2 is missing: R1 = gamma / 2 * E||grad D(x)||^2", 2 * right / gamma),
        ("gamma is missing (the 1/2 is there): R1 = gamma / 2 * E||grad D(x)||^2", right / gamma),
        ("the gradient is of D's mean score: each sample's gradient is then divided by the batch size, so the "
         "penalty shrinks with the batch (by N^2). Differentiate D(real).sum(): each score depends on its own "
         "sample only, so each sample gets its own gradient", right / n ** 2),
        ("the squared norms are summed over the batch: take their mean over the samples", right * n),
        ("the norm is not squared: R1 penalises ||grad D(x)||^2", every * gamma / 2 * squares.sqrt().mean()),
        ("each sample's squared norm is a mean over its pixels: sum the squares over the whole sample",
         right / grad[0].numel()),
    ]
    return right, wrong


def _r1_call(fn, D, real, gamma, step, every):
    what = f"lazy_r1(D, real, gamma={gamma:g}, step={step}, every={every})"
    out = call(fn, D, real, gamma, step, every, name="lazy_r1")
    if real.requires_grad:
        raise CheckFailed(f"{what} switched on requires_grad of the caller's real batch: differentiate a copy, "
                          "x = real.detach().requires_grad_(True)")
    if any(p.grad is not None for p in D.parameters()):
        raise CheckFailed(f"{what} filled D's .grad: return the loss and let the caller back-propagate it (no "
                          ".backward() inside)")
    return out, what


@keeps_rng
def check_lazy_r1(fn) -> None:
    """fn(D, real, gamma, step, every) -> every * gamma / 2 * E||grad D(real)||^2 when step % every == 0, else None."""
    g = torch.Generator().manual_seed(76)
    D = r1_critic(77)
    for n, gamma, every, steps in ((6, 10.0, 4, range(9)), (3, 3.0, 16, (0, 16, 17, 31, 32))):
        real = _randn(g, n, 3, 4, 4)
        for step in steps:
            out, what = _r1_call(fn, D, real, gamma, step, every)
            if step % every:
                if out is not None:
                    due = "; 0 is not nothing: return None" if torch.is_tensor(out) and not out.any() else ""
                    got = first_values(out) if torch.is_tensor(out) else repr(out)
                    raise CheckFailed(f"{what} returned {got}: R1 is due only at steps 0, every, 2 * every, ... "
                                      "(step % every == 0); on the other steps return None, so that the caller skips "
                                      f"the extra D step{due}")
                continue
            if out is None:
                raise CheckFailed(f"{what} returned None, but step {step} is a multiple of every = {every}: R1 is due "
                                  "there (step % every == 0)")
            out = expect_tensor(out, what, shape=())
            expected, wrong = _r1_answers(D, real, gamma, every)
            diagnose(out, expected, what, wrong, "Expected every * gamma / 2 * the mean over samples of "
                                                  "||grad D(x)||^2.")
            if not out.requires_grad:
                raise CheckFailed(f"{what} has the right value but no gradient reaches D's weights: R1 trains D "
                                  "through its own gradient, so take it with torch.autograd.grad(..., "
                                  "create_graph=True)")
    real = _randn(g, 5, 3, 4, 4)
    weights = list(D.parameters())
    got = _grads(weights, _r1_call(fn, D, real, 10.0, 8, 4)[0], torch.ones(()))
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    if not _same_grads(got, _grads(weights, 4 * 5.0 * grad.flatten(1).pow(2).sum(dim=1).mean(), torch.ones(()))):
        raise CheckFailed("lazy_r1 has the right value but not the right gradient for D's weights: compute it from "
                          "D's input gradient taken with create_graph=True, and nothing detached on the way")
    passed("lazy_r1: every * gamma / 2 * E||grad D(x)||^2 (the gradient of D's summed scores) at steps that are "
           "multiples of every, None in between")
