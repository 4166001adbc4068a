"""Judges of lesson 06 (gancourse.judging): reference answers, run in the grader's process."""
import math

import torch
import torch.nn.functional as F

from gancourse.judging import Judge, Wrong
from gancourse.train.progan import growth_schedule as _schedule  # the library's schedule is the reference

# the library implements each of these pieces (gancourse.models.progan: EqualizedConv2d, PixelNorm, MinibatchStdDev;
# gancourse.train.progan: growth_schedule, blend_reals); an answer must not call them, nor the visible checks' helpers
NO_LIBRARY = ("gancourse.losses", "gancourse.train", "gancourse.models", "gancourse.checks", "gancourse.metrics")


def _int(rng, low: int, high: int) -> int:
    """A random int in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=rng))


def _same(got, expected, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return torch.is_tensor(got) and got.shape == expected.shape and bool(
        torch.allclose(got.double(), expected.double(), rtol=rtol, atol=atol))


def _close(got, expected, what: str, wrong=(), rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """got must match expected; when it matches a known wrong answer, the note names the mistake."""
    if not torch.is_tensor(got) or got.shape != expected.shape:
        raise Wrong(f"{what} returned {type(got).__name__} of shape {tuple(getattr(got, 'shape', ()))}, expected a "
                    f"tensor of shape {tuple(expected.shape)}")
    if _same(got, expected, rtol, atol):
        return
    for message, candidate in wrong:
        if _same(got, candidate, rtol, atol):
            raise Wrong(f"{what}: {message}")
    raise Wrong(f"{what} gave {got.flatten()[:3].tolist()}, expected {expected.flatten()[:3].tolist()}")


# -- task 1: the fade-in blend ----------------------------------------------------------------------
def _fade_inputs(rng):
    alphas = [0.05 + 0.4 * float(torch.rand((), generator=rng)), 0.55 + 0.4 * float(torch.rand((), generator=rng)),
              float(torch.rand((), generator=rng)), 0.0, 1.0]
    cases = []
    for alpha in alphas:
        n, c, h, w = _int(rng, 1, 4), _int(rng, 1, 3), _int(rng, 2, 6), _int(rng, 2, 6)
        cases.append({"low": torch.randn(n, c, h, w, generator=rng),
                      "high": torch.randn(n, c, 2 * h, 2 * w, generator=rng), "alpha": alpha})
    return {"cases": cases}


def _up(low, mode="nearest"):
    return F.interpolate(low, scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


def _fade(inputs, outputs, smoke):
    for case, got in zip(inputs["cases"], outputs["values"], strict=True):
        low, high, a = case["low"], case["high"], case["alpha"]
        what = f"fade_in with alpha = {a:.3g}"
        if torch.is_tensor(got) and got.shape == low.shape:
            raise Wrong(f"{what} returned low's resolution {tuple(low.shape)}: up-sample low x2 (nearest) to high's "
                        "size")
        wrong = [("the blend is the wrong way round: alpha weights high, 1 - alpha the up-sampled low",
                  a * _up(low) + (1 - a) * high),
                 ("low is up-sampled bilinearly; ProGAN up-samples by nearest neighbour",
                  (1 - a) * _up(low, "bilinear") + a * high),
                 ("the blend ignores alpha (it gives high whatever alpha)", high),
                 ("the blend ignores alpha (it gives the up-sampled low whatever alpha)", _up(low)),
                 ("the blend ignores alpha (an even mix whatever alpha)", 0.5 * (_up(low) + high))]
        if a == 0.0:
            wrong = wrong[:2]  # at alpha 0 the up-sampled low is the right answer
        elif a == 1.0:
            wrong = [wrong[0], wrong[3], wrong[4]]
        _close(got, (1 - a) * _up(low) + a * high, what, wrong)


# -- task 2: minibatch standard deviation -------------------------------------------------------------
def _mbstd_batch(rng, g: int, groups: int, repeated_first: bool):
    c, h, w = _int(rng, 1, 4), _int(rng, 1, 4), _int(rng, 1, 4)
    n = g * groups
    x = torch.randn(n, c, h, w, generator=rng) * (torch.rand(n, 1, 1, 1, generator=rng) * 2 + 0.2)
    if repeated_first:  # the first group is one sample repeated: its spread is 0, and any mixing shows
        x[:g] = x[0]
    return x + torch.randn((), generator=rng)


def _mbstd_inputs(rng):
    cases = [{"x": _mbstd_batch(rng, g, groups, first), "group_size": g}
             for g, groups, first in ((4, 2, True), (_int(rng, 2, 5), _int(rng, 2, 4), False),
                                      (_int(rng, 2, 5), _int(rng, 2, 4), True), (2, _int(rng, 3, 5), False))]
    return {"cases": cases, "default": _mbstd_batch(rng, 4, _int(rng, 2, 3), True)}


def _append(x, per_sample):
    n, _, h, w = x.shape
    return torch.cat([x, per_sample.reshape(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def _mbstd_answers(x, g):
    n, c, h, w = x.shape
    consecutive, strided = x.reshape(n // g, g, c, h, w), x.reshape(g, n // g, c, h, w)
    spread = consecutive.std(dim=1, unbiased=False).mean(dim=(1, 2, 3))
    axis = ("the groups are mixed across the wrong axis (strided samples i, i + N/group_size, ... instead of "
            "group_size consecutive samples)")
    wrong = [
        (axis, _append(x, strided.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat(g))),
        (axis, _append(x, strided.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat_interleave(g))),
        (axis, _append(x, consecutive.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat(n // g))),
        (axis, _append(x, consecutive.std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat_interleave(n // g))),
        ("the std is over the whole batch, not within each group",
         _append(x, x.std(dim=0, unbiased=False).mean().expand(n))),
        ("the std is over the whole batch, not within each group", _append(x, x.std(dim=0).mean().expand(n))),
        ("the std is the unbiased one; use unbiased=False (divide by the group size)",
         _append(x, consecutive.std(dim=1).mean(dim=(1, 2, 3)).repeat_interleave(g))),
        ("an eps is added under the square root; the task asks for the plain biased std",
         _append(x, (consecutive.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3)).repeat_interleave(g))),
        ("each group's number is not given to the members of its own group (repeat instead of repeat_interleave)",
         _append(x, spread.repeat(g))),
    ]
    return _append(x, spread.repeat_interleave(g)), wrong


def _mbstd(inputs, outputs, smoke):
    pairs = [(case["x"], case["group_size"], got) for case, got in zip(inputs["cases"], outputs["values"], strict=True)]
    for x, g, got in pairs + [(inputs["default"], 4, outputs["default"])]:
        expected, wrong = _mbstd_answers(x, g)
        _close(got, expected, f"minibatch_stddev on a batch of {len(x)} with group_size = {g}", wrong)


# -- task 3: the equalized-learning-rate convolution -----------------------------------------------------
def _conv_inputs(rng):
    cases = []
    for c_in, c_out, k, pad in ((_int(rng, 3, 8), _int(rng, 2, 6), 3, 1), (_int(rng, 2, 6), _int(rng, 2, 5), 1, 0),
                                (_int(rng, 2, 5), _int(rng, 2, 4), 4, _int(rng, 0, 2))):
        size = _int(rng, 4, 7)
        cases.append({"c_in": c_in, "c_out": c_out, "kernel": k, "padding": pad,
                      "weight": torch.randn(c_out, c_in, k, k, generator=rng),
                      "bias": torch.randn(c_out, generator=rng),
                      "x": torch.randn(_int(rng, 1, 3), c_in, size, size, generator=rng)})
        out = F.conv2d(cases[-1]["x"], cases[-1]["weight"], padding=pad)
        cases[-1]["r"] = torch.randn(out.shape, generator=rng)
    c_in = _int(rng, 24, 40)
    unit = {"c_in": c_in, "c_out": _int(rng, 12, 20), "kernel": 3, "x": torch.randn(8, c_in, 6, 6, generator=rng)}
    return {"seed": _int(rng, 0, 2**31 - 1), "unit": unit, "cases": cases}


def _he(c_in, k):
    return math.sqrt(2 / (c_in * k * k))


def _conv(inputs, outputs, smoke):
    unit = inputs["unit"]
    scale = _he(unit["c_in"], unit["kernel"])
    init = outputs["init"]
    std, mean = float(init.std()), float(init.mean())
    if abs(std - scale) < 0.3 * scale:
        raise Wrong(f"the weights start with std {std:.3g}, about sqrt(2 / fan_in): the He constant is applied once "
                    "at initialisation instead of at every forward pass; draw N(0, 1) weights")
    if not 0.85 < std < 1.15 or abs(mean) > 0.15:
        raise Wrong(f"the weights start with mean {mean:.3g} and std {std:.3g}; they should be drawn from N(0, 1)")
    if not torch.is_tensor(outputs["init_bias"]) or outputs["init_bias"].abs().max() > 0:
        raise Wrong("the biases should start at zero")
    for i, case in enumerate(inputs["cases"]):
        c_in, k, pad, w, b, x = (case[key] for key in ("c_in", "kernel", "padding", "weight", "bias", "x"))
        s = _he(c_in, k)
        what = f"EqualizedConv({c_in}, {case['c_out']}, {k}, padding={pad}) on case {i + 1}"
        wrong = [("the He constant is missing in forward", F.conv2d(x, w, b, padding=pad)),
                 ("fan_in is c_in * kernel * kernel: the kernel area is missing",
                  F.conv2d(x, w * math.sqrt(2 / c_in), b, padding=pad)),
                 ("the constant is sqrt(2 / fan_in): the 2 is missing", F.conv2d(x, w / math.sqrt(c_in * k * k), b,
                                                                                padding=pad)),
                 ("the constant is sqrt(2 / fan_in): the sqrt is missing", F.conv2d(x, w * s * s, b, padding=pad)),
                 ("the bias is scaled too; only the weight is", F.conv2d(x, w * s, b * s, padding=pad))]
        if k == 1:
            wrong.pop(1)  # with a 1x1 kernel fan_in is c_in
        w_ref = w.clone().requires_grad_(True)
        b_ref = b.clone().requires_grad_(True)
        expected = F.conv2d(x, w_ref * s, b_ref, padding=pad)
        (expected * case["r"]).sum().backward()
        _close(outputs["outputs"][i], expected.detach(), what, wrong)
        if not _same(outputs["again"][i], expected.detach()):
            raise Wrong(f"{what}: a second forward pass gave another output; forward must not change the weights "
                        "(scale a product, never the parameter in place)")
        grad_w, grad_b = outputs["grads"][i]
        if grad_w is None or grad_b is None:
            raise Wrong(f"{what}: no gradient reached self.weight or self.bias")
        _close(grad_w, w_ref.grad, f"the gradient of {what} for its weight", atol=1e-5)
        _close(grad_b, b_ref.grad, f"the gradient of {what} for its bias", atol=1e-5)
    got = outputs["unit"]
    if not torch.is_tensor(got) or got.dim() != 4:
        raise Wrong("a fresh layer's output on unit-normal inputs is not a batch of feature maps")
    spread = float(got.std())
    if not 0.9 * math.sqrt(2) < spread < 1.1 * math.sqrt(2):
        raise Wrong(f"a fresh EqualizedConv({unit['c_in']}, {unit['c_out']}, 3) gave outputs of std {spread:.3g} on "
                    "unit-normal inputs; expected about sqrt(2) = 1.41")


# -- task 4: pixel norm --------------------------------------------------------------------------------
def _pixel_inputs(rng):
    def batch():
        x = torch.randn(_int(rng, 1, 4), _int(rng, 2, 8), _int(rng, 1, 5), _int(rng, 1, 5), generator=rng)
        return x * (torch.rand((), generator=rng) * 3 + 0.1)

    default = [batch() for _ in range(3)]
    default[0][0, :, 0, 0] = 0  # a pixel with no features: eps keeps it at 0
    given = [(batch(), float(torch.rand((), generator=rng) * 2 + 0.1)) for _ in range(3)]
    return {"default": default, "given": given}


def _pn(x, eps):
    return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def _pixel(inputs, outputs, smoke):
    cases = [(x, 1e-8, got, "pixel_norm(x)") for x, got in zip(inputs["default"], outputs["default"], strict=True)]
    cases += [(x, e, got, f"pixel_norm(x, eps={e:.3g})")
              for (x, e), got in zip(inputs["given"], outputs["given"], strict=True)]
    for x, eps, got, what in cases:
        if torch.is_tensor(got) and not torch.isfinite(got).all():
            raise Wrong(f"{what} gave NaN or inf where a pixel's features are all 0; add eps inside the square root")
        sq = x.pow(2)
        wrong = [("normalised over the pixels of each image, not over the channels",
                  x / torch.sqrt(sq.mean(dim=(2, 3), keepdim=True) + eps)),
                 ("normalised over the batch, not over the channels",
                  x / torch.sqrt(sq.mean(dim=0, keepdim=True) + eps)),
                 ("normalised over the whole image, not over the channels of each pixel",
                  x / torch.sqrt(sq.mean(dim=(1, 2, 3), keepdim=True) + eps)),
                 ("the square root is missing", x / (sq.mean(dim=1, keepdim=True) + eps)),
                 ("the sum over channels replaces the mean", x / torch.sqrt(sq.sum(dim=1, keepdim=True) + eps)),
                 ("eps is outside the square root", x / (torch.sqrt(sq.mean(dim=1, keepdim=True)) + eps)),
                 ("the eps argument is ignored", _pn(x, 1e-8))]
        _close(got, _pn(x, eps), what, wrong)


# -- task 5: the growth schedule ------------------------------------------------------------------------
def _growth_inputs(rng):
    cases = [(0, 1, 2), (1, 1, 2), (2, 1, 2), (5, 10, 1)]
    for _ in range(6):
        p, stages = _int(rng, 3, 40), _int(rng, 2, 6)
        end = p * (2 * stages - 1)
        fade = p + 2 * p * _int(rng, 0, stages - 2)  # where some fade-in begins
        picks = [0, p - 1, p, fade, fade + p // 2, fade + p - 1, fade + p, fade + 2 * p - 1, end - 1, end, end + 7 * p]
        picks += [_int(rng, 0, end + p) for _ in range(6)]
        cases += [(i, p, stages) for i in picks]
    p, stages = _int(rng, 5, 30), _int(rng, 3, 5)
    fade = p + 2 * p * _int(rng, 0, stages - 2)
    cases += [(i, p, stages) for i in range(fade, fade + p)]  # one whole fade-in: alpha must rise through it
    return {"cases": [list(c) for c in cases]}


def _growth(inputs, outputs, smoke):
    got_all = []
    for (images, p, stages), got in zip(inputs["cases"], outputs["values"], strict=True):
        if not isinstance(got, (list, tuple)) or len(got) != 2:
            raise Wrong(f"growth_stage({images}, {p}, {stages}) returned {got!r}, not a pair (stage, alpha)")
        got_all.append(((images, p, stages), (float(got[0]), float(got[1]))))
    fading = [(case, got) for case, got in got_all if 0 < _schedule(*case)[1] < 1]
    for case, (stage, alpha) in fading:
        if stage == _schedule(*case)[0] and alpha == 0:
            raise Wrong(f"growth_stage{case} gave alpha 0, expected {_schedule(*case)[1]:.4g}: alpha is stuck at 0 "
                        "during the fade-in (integer division rounds the share done down)")
    for case, (stage, alpha) in fading:
        if stage == _schedule(*case)[0] and alpha == 1:
            raise Wrong(f"growth_stage{case} gave alpha 1, expected {_schedule(*case)[1]:.4g}: alpha is stuck at 1 "
                        "during the fade-in")
    by_fade = {}
    for case, (stage, alpha) in got_all:
        want = _schedule(*case)
        if want[1] < 1 and stage == want[0]:
            by_fade.setdefault((case[1], case[2], want[0]), []).append((case[0], alpha))
    for (p, stages, stage), seen in by_fade.items():
        alphas = [a for _, a in sorted(seen)]
        if any(b < a for a, b in zip(alphas, alphas[1:])):
            raise Wrong(f"alpha fell during the fade-in of stage {stage} (phase_images = {p}); it must rise from 0 "
                        "towards 1")
    for case, (stage, alpha) in got_all:
        want = _schedule(*case)
        if stage != want[0]:
            if stage >= case[2]:
                raise Wrong(f"growth_stage{case} gave stage {stage:g} of only {case[2]} stages: past the last stable "
                            f"phase it must stay at ({case[2] - 1}, 1.0)")
            off = ", off by one" if abs(stage - want[0]) == 1 else ""
            raise Wrong(f"growth_stage{case} gave stage {stage:g}, expected {want[0]}{off}")
        if abs(alpha - want[1]) > 1e-6:
            raise Wrong(f"growth_stage{case} gave alpha {alpha:.4g}, expected {want[1]:.4g}")


JUDGES = {
    "task1_tests": Judge(_fade_inputs, _fade, forbidden=NO_LIBRARY),
    "task2_tests": Judge(_mbstd_inputs, _mbstd, forbidden=NO_LIBRARY),
    "task3_tests": Judge(_conv_inputs, _conv, forbidden=NO_LIBRARY),
    "task4_tests": Judge(_pixel_inputs, _pixel, forbidden=NO_LIBRARY),
    "task5_tests": Judge(_growth_inputs, _growth, forbidden=NO_LIBRARY),
}
