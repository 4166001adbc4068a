"""Lesson 07's hidden tests and judges, run in-process: the solution's answers pass, and each mistake the
issue names fails in the judge (not only in the visible check), whatever seed the grader draws. The mistakes
are the ones tests/test_checks_lesson07.py feeds the visible checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancourse.checks import lesson07 as checks
from gancourse.judging import judge_task
from gancourse.models import instance_norm, mix_styles, truncate
from judge_replay import SolutionReplay
from test_checks_lesson07 import (FastBias, FoldedIntoInitOnly, MultiplierMissing, RunTimeOnly, StaleCopy, WithGain,
                                  _fused, _mix_range, _norm, _r1, _styled, in_place, make_styles, right_adain,
                                  right_r1, styles_tracking_always, styles_tracking_in_place,
                                  styles_tracking_truncated, styles_truncated_towards_the_old_average,
                                  truncate_in_place, unfused_unsquared)

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "07_stylegan.ipynb"
SETUP = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\nimport gancourse\n"
REPLAY = SolutionReplay(SOLUTION, {"torch": torch, "nn": nn, "F": F, "checks": checks}, setup=SETUP)
JUDGES, judge, outputs_of, _cell = REPLAY.judges, REPLAY.judge, REPLAY.outputs_of, REPLAY.cell
TASKS = [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("task", TASKS)
def test_solution_passes_every_judge(task, seed):
    outcome = judge(task, seed)
    assert outcome.passed, outcome.note


@pytest.mark.parametrize("task", TASKS)
def test_outputs_for_other_inputs_fail(task):
    """The inputs are drawn per student: answers computed for one draw (a hard-coded answer) fail another."""
    _, outputs = outputs_of(task, seed=0)
    inputs = JUDGES[f"task{task}_tests"].inputs(torch.Generator().manual_seed(1))
    outcome = judge_task(JUDGES[f"task{task}_tests"], inputs, outputs, _cell(f"task{task}_solution"), SETUP, True)
    assert not outcome.passed


def test_the_library_passes_every_judge():
    """The library's pieces (the references) pass through the hidden blocks, in the solution's place."""
    answers = {1: {"adain": right_adain}, 3: {"modulated_conv2d": _fused()}, 4: {"mix_styles": mix_styles},
               5: {"truncate": truncate, "make_styles": make_styles}, 6: {"lazy_r1": right_r1}}
    for task, replacements in answers.items():
        outcome = judge(task, seed=3, **replacements)
        assert outcome.passed, (task, outcome.note)


# -- task 1 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (_styled(lambda x, eps: _norm(x, (0, 2, 3), eps)), "over the batch"),
    (_styled(lambda x, eps: _norm(x, 1, eps)), "over the channels"),
    (_styled(lambda x, eps: _norm(x, (2, 3), eps, unbiased=True)), "unbiased"),
    (lambda x, s, b, eps=1e-8: b[:, :, None, None] * instance_norm(x, eps) + s[:, :, None, None], "swapped"),
    (lambda x, s, b, eps=1e-8: s[:, :, None, None] * x + b[:, :, None, None], "not normalised"),
    (_styled(lambda x, eps: instance_norm(x)), "eps argument is ignored"),
    (lambda x, s, b, eps=0.0: right_adain(x, s, b, eps), "NaN"),
    (lambda x, s, b, eps=1e-8: right_adain(x, s.detach(), b, eps), "gradients"),
])
def test_adain_mistakes_fail(answer, note):
    outcome = judge(1, adain=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (MultiplierMissing, "multiplier is missing"),
    (FoldedIntoInitOnly, "folded into the initial weights"),
    (RunTimeOnly, "weights start at N(0, 1)"),
    (FastBias, "multiply the bias by lr_multiplier"),
    (WithGain, "no sqrt(2) gain"),
    (StaleCopy, "did not change what the layer computes"),
])
def test_slow_linear_mistakes_fail(answer, note):
    outcome = judge(2, SlowLinear=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (_fused(demod_dims=1), "over the output channels"),
    (_fused(demod_dims=(3, 4)), "taps only"),
    (_fused(demod_dims=(1, 2, 3, 4)), "one norm per sample"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:  # where the shapes let it run
     _fused(on_outputs=weight.shape[0] == weight.shape[1])(x, weight, styles, demodulate, eps, fused), "input channel"),
    (_fused(eps_inside=False), "inside the square root"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:
     _fused()(x, weight, styles, demodulate, 0.0, fused), "NaN"),
    (unfused_unsquared, "squared styles"),
    (lambda x, weight, styles, demodulate=True, eps=1e-8, fused=True:
     _fused()(x, weight.detach(), styles, demodulate, eps, fused), "gradients"),
])
def test_modulated_conv2d_mistakes_fail(answer, note):
    outcome = judge(3, modulated_conv2d=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 4 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (_mix_range(lambda c: 0, lambda c, n: c), "wrong way round"),
    (_mix_range(lambda c: c + 1, lambda c, n: n), "off by one"),
    (in_place, "changed ws in place"),
])
def test_mix_styles_mistakes_fail(answer, note):
    outcome = judge(4, mix_styles=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 5 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answers, note", [
    ({"truncate": lambda w, w_avg, psi: w + psi * (w_avg - w)}, "wrong way round"),
    ({"truncate": truncate_in_place}, "changed w_avg in place"),
    ({"make_styles": styles_tracking_in_place}, "sampling call must never move the average"),
    ({"make_styles": styles_tracking_always}, "sampling call (beta=None) moved w_avg"),
    ({"make_styles": lambda *a: make_styles(*a, track=lambda w, ws, truncated: ws.detach())}, "mixed codes"),
    ({"make_styles": styles_tracking_truncated}, "truncated codes"),
    ({"make_styles": lambda *a: make_styles(*a[:7], None if a[7] is None else 1 - a[7])}, "swapped"),
    ({"make_styles": styles_truncated_towards_the_old_average}, "old average"),
    ({"make_styles": lambda *a: (make_styles(*a)[0], torch.lerp(a[3], a[0](a[1]).mean(dim=0), 1 - a[7])
                                 if a[7] else a[3])}, "carries the mapping network's graph"),
])
def test_truncation_mistakes_fail(answers, note):
    outcome = judge(5, **answers)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- task 6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, note", [
    (_r1(factor=lambda n, every, gamma: gamma / 2), "not scaled by its interval"),
    (_r1(due=lambda step, every: True), "return None on the other steps"),
    (_r1(due=lambda step, every: (step + 1) % every == 0), "returned None"),
    (_r1(factor=lambda n, every, gamma: every * gamma), "1/2"),
    (_r1(factor=lambda n, every, gamma: every), "gamma / 2 is missing"),
    (_r1(of_mean=True), "D's mean score"),
    (_r1(reduce=lambda squares: squares.sum()), "summed over the batch"),
    (_r1(create_graph=False), "no gradient could be taken"),
])
def test_lazy_r1_mistakes_fail(answer, note):
    outcome = judge(6, lazy_r1=answer)
    assert not outcome.passed and note in outcome.note, outcome.note


# -- delegation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, answer", [
    (1, "from gancourse.models import instance_norm\n"
        "def adain(x, s, b, eps=1e-8):\n    return s[..., None, None] * instance_norm(x, eps) + b[..., None, None]\n"),
    (2, "class SlowLinear(gancourse.models.progan.EqualizedLinear):\n    pass\n"),
    (3, "import gancourse.models.stylegan as sg\nmodulated_conv2d = sg.modulated_conv2d\n"),
    (4, "from gancourse.models.stylegan import mix_styles as m\nmix_styles = lambda ws, w_b, c: m(ws, w_b, c)\n"),
    (5, "from gancourse.models import truncate\n"),
    (6, "from gancourse import losses\n"
        "def lazy_r1(D, real, gamma, step, every):\n    return losses.r1_penalty(D, real, weight=gamma) * every\n"),
])
def test_calling_the_library_scores_zero(task, answer):
    inputs = JUDGES[f"task{task}_tests"].inputs(torch.Generator().manual_seed(0))
    outcome = judge_task(JUDGES[f"task{task}_tests"], inputs, {"values": []}, answer, SETUP, smoke=True)
    assert not outcome.passed and "library's own" in outcome.note
