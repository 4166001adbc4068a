"""Lesson 06's hidden tests and judges, run in-process: the solution's answers pass, and each mistake the
issue names fails in the judge (not only in the visible check), whatever seed the grader draws."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import lesson06 as checks
from gancourse.judging import judge_task
from judge_replay import SolutionReplay

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "06_progan.ipynb"
SETUP = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\nimport gancourse\n"
REPLAY = SolutionReplay(SOLUTION, {"torch": torch, "nn": nn, "F": F, "checks": checks}, setup=SETUP)
JUDGES, judge, outputs_of, _cell = REPLAY.judges, REPLAY.judge, REPLAY.outputs_of, REPLAY.cell


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("task", [1, 2, 3, 4, 5])
def test_solution_passes_every_judge(task, seed):
    outcome = judge(task, seed)
    assert outcome.passed, outcome.note


@pytest.mark.parametrize("task", [1, 2, 3, 4, 5])
def test_outputs_for_other_inputs_fail(task):
    """The inputs are drawn per student: answers computed for one draw (a hard-coded answer) fail another."""
    _, outputs = outputs_of(task, seed=0)
    inputs = JUDGES[f"task{task}_tests"].inputs(torch.Generator().manual_seed(1))
    outcome = judge_task(JUDGES[f"task{task}_tests"], inputs, outputs, _cell(f"task{task}_solution"), SETUP, True)
    assert not outcome.passed


def up(low):
    return F.interpolate(low, scale_factor=2, mode="nearest")


# -- task 1 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (lambda low, high, a: a * up(low) + (1 - a) * high, "wrong way round"),
    (lambda low, high, a: (1 - a) * F.interpolate(low, scale_factor=2, mode="bilinear") + a * high, "nearest"),
    (lambda low, high, a: 0.5 * (up(low) + high), "ignores alpha"),
    (lambda low, high, a: high, "ignores alpha"),
    (lambda low, high, a: (1 - a) * low + a * F.avg_pool2d(high, 2), "up-sample low"),
])
def test_fade_in_mistakes_fail(answer, note):
    outcome = judge(1, fade_in=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 2 ------------------------------------------------------------------------------------------
def _append(x, per_sample):
    n, _, h, w = x.shape
    return torch.cat([x, per_sample.view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


def _groups(x, g):
    n, c, h, w = x.shape
    return x.view(n // g, g, c, h, w)


@pytest.mark.parametrize("answer, note", [
    (lambda x, g=4: _append(x, x.view(g, len(x) // g, *x.shape[1:]).std(dim=0, unbiased=False)
                            .mean(dim=(1, 2, 3)).repeat(g)), "wrong axis"),
    (lambda x, g=4: _append(x, x.std(dim=0, unbiased=False).mean().expand(len(x))), "whole batch"),
    (lambda x, g=4: _append(x, _groups(x, g).std(dim=1).mean(dim=(1, 2, 3)).repeat_interleave(g)), "unbiased"),
    (lambda x, g=4: _append(x, _groups(x, g).std(dim=1, unbiased=False).mean(dim=(1, 2, 3)).repeat(g)),
     "its own group"),
    (lambda x, g=4: _append(x, (_groups(x, g).var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
                            .repeat_interleave(g)), "eps"),
])
def test_minibatch_stddev_mistakes_fail(answer, note):
    outcome = judge(2, minibatch_stddev=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 3 ------------------------------------------------------------------------------------------
class _Conv(nn.Module):
    """N(0, 1) weights times `init_scale`, and forward's weight times `run_scale(c_in, k)`."""

    init_scale = staticmethod(lambda c_in, k: 1.0)
    run_scale = staticmethod(lambda c_in, k: (2 / (c_in * k * k)) ** 0.5)

    def __init__(self, c_in, c_out, kernel, padding=0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) * self.init_scale(c_in, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.padding, self.c_in, self.k = padding, c_in, kernel

    def forward(self, x):
        return F.conv2d(x, self.weight * self.run_scale(self.c_in, self.k), self.bias, padding=self.padding)


class FoldedAtInit(_Conv):
    init_scale = staticmethod(lambda c_in, k: (2 / (c_in * k * k)) ** 0.5)
    run_scale = staticmethod(lambda c_in, k: 1.0)


class NoConstant(_Conv):
    run_scale = staticmethod(lambda c_in, k: 1.0)


class NoKernelArea(_Conv):
    run_scale = staticmethod(lambda c_in, k: (2 / c_in) ** 0.5)


class ScalesInPlace(_Conv):
    def forward(self, x):
        with torch.no_grad():
            self.weight.mul_(self.run_scale(self.c_in, self.k))
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


@pytest.mark.parametrize("answer, note", [
    (FoldedAtInit, "applied once at initialisation"),
    (NoConstant, "He constant is missing"),
    (NoKernelArea, "kernel area is missing"),
    (ScalesInPlace, "must not change the weights"),
])
def test_equalized_conv_mistakes_fail(answer, note):
    outcome = judge(3, EqualizedConv=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


def test_equalized_conv_answer_in_the_same_style_passes():
    outcome = judge(3, EqualizedConv=_Conv)
    assert outcome.passed, outcome.note


# -- task 4 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + eps), "over the pixels"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=0, keepdim=True) + eps), "over the batch"),
    (lambda x, eps=1e-8: x / (x.pow(2).mean(dim=1, keepdim=True) + eps), "square root is missing"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).sum(dim=1, keepdim=True) + eps), "sum over channels"),
    (lambda x, eps=1e-8: x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True)), "NaN"),
])
def test_pixel_norm_mistakes_fail(answer, note):
    outcome = judge(4, pixel_norm=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 5 ------------------------------------------------------------------------------------------
def _right(images, phase, stages):
    if images < phase:
        return 0, 1.0
    done = images - phase
    stage = 1 + done // (2 * phase)
    return (stages - 1, 1.0) if stage >= stages else (stage, min(1.0, (done % (2 * phase)) / phase))


def _stuck_at_zero(images, phase, stages):
    stage, alpha = _right(images, phase, stages)
    if images >= phase and stage == 1 + (images - phase) // (2 * phase):
        alpha = float(((images - phase) % (2 * phase)) // phase)
    return stage, alpha


@pytest.mark.parametrize("answer, note", [
    (_stuck_at_zero, "stuck at 0"),
    (lambda i, p, s: (_right(i, p, s)[0], 1.0), "stuck at 1"),
    (lambda i, p, s: (max(0, _right(i, p, s)[0] - 1) if i >= p else 0, _right(i, p, s)[1]), "off by one"),
    (lambda i, p, s: (_right(i, p, s)[0], 1 - _right(i, p, s)[1] if 0 < _right(i, p, s)[1] < 1 else _right(i, p, s)[1]),
     "fell"),
    (lambda i, p, s: (1 + (i - p) // (2 * p), _right(i, p, s)[1]) if i >= p else (0, 1.0), "past the last"),
])
def test_growth_stage_mistakes_fail(answer, note):
    outcome = judge(5, growth_stage=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- delegation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, answer", [
    (2, "from gancourse.models import MinibatchStdDev\n"
        "def minibatch_stddev(x, group_size=4):\n    return MinibatchStdDev(group_size)(x)\n"),
    (3, "class EqualizedConv(gancourse.models.EqualizedConv2d):\n    pass\n"),
    (4, "from gancourse.models.progan import PixelNorm as P\npixel_norm = lambda x, eps=1e-8: P()(x)\n"),
    (5, "import gancourse.train.progan as t\ngrowth_stage = t.growth_schedule\n"),
])
def test_calling_the_library_scores_zero(task, answer):
    inputs = JUDGES[f"task{task}_tests"].inputs(torch.Generator().manual_seed(0))
    outcome = judge_task(JUDGES[f"task{task}_tests"], inputs, {"values": []}, answer, SETUP, smoke=True)
    assert not outcome.passed and "library's own" in outcome.note
