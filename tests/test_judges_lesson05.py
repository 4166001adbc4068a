"""Lesson 05's hidden tests and judges, run in-process: the solution's answers pass, and each mistake the
issue names fails in the judge (not only in the visible check), whatever seed the grader draws."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gancourse.checks import lesson05 as checks
from gancourse.judging import judge_task
from judge_replay import SolutionReplay

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "05_cyclegan.ipynb"
REPLAY = SolutionReplay(SOLUTION, {"torch": torch, "nn": nn, "checks": checks}, setup="")
JUDGES, judge, outputs_of, _cell = REPLAY.judges, REPLAY.judge, REPLAY.outputs_of, REPLAY.cell


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("task", [1, 2, 3, 4, 5, 6])
def test_solution_passes_every_judge(task, seed):
    outcome = judge(task, seed)
    assert outcome.passed, outcome.note


def test_missing_detach_into_d_fails():
    leaky = lambda D, real, fake: 0.5 * ((D(real) - 1) ** 2).mean() + 0.5 * (D(fake) ** 2).mean()
    outcome = judge(6, discriminator_loss=leaky)
    assert not outcome.passed and "fake.detach()" in outcome.note


def test_pool_that_returns_the_newest_every_time_fails():
    class Newest:
        def __init__(self, size):
            pass

        def query(self, images):
            return images.detach()

    outcome = judge(3, HistoryPool=Newest)
    assert not outcome.passed and "about half" in outcome.note


def test_identity_weighted_five_fails():
    fixed = lambda G, F, a, b, lam: 5 * ((G(b) - b).abs().mean() + (F(a) - a).abs().mean())
    outcome = judge(2, identity_term=fixed)
    assert not outcome.passed and "lambda_cycle" in outcome.note


def test_schedule_that_never_reaches_zero_fails():
    outcome = judge(5, linear_decay=lambda f, s=0.5: max(0.01, min(1.0, (1 - f) / (1 - s))))
    assert not outcome.passed and "expected 0" in outcome.note


def test_cycle_without_gradient_fails():
    detached = lambda G, F, a, b: ((F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()).detach().requires_grad_()
    outcome = judge(1, cycle_loss=detached)
    assert not outcome.passed and "gradient" in outcome.note


def test_receptive_field_walked_forwards_fails():
    def forwards(layers):
        r = 1
        for k, s in layers:
            r = (r - 1) * s + k
        return r

    outcome = judge(4, receptive_field=forwards)
    assert not outcome.passed and "expected 70" in outcome.note


def test_calling_the_library_scores_zero():
    inputs = JUDGES["task1_tests"].inputs(torch.Generator().manual_seed(0))
    answer = ("from gancourse.losses import cycle_consistency_loss as c\n"
              "def cycle_loss(G, F, a, b):\n    return c(a, F(G(a))) + c(b, G(F(b)))\n")
    outcome = judge_task(JUDGES["task1_tests"], inputs, {"values": []}, answer, "", smoke=True)
    assert not outcome.passed and "library's own" in outcome.note
