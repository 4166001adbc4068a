"""Lesson 04's task 5 (W1 between two samples on a line), the task not copied from the lesson: the solution
passes the visible check and the judge on any samples the grader draws; the tempting wrong answers (pairing as
given, comparing means, W2, opposite orders) fail both, each with its own hint."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gancourse.checks import lesson04 as checks
from judge_replay import ThinkingTask

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "04_wgan.ipynb"
TASK = ThinkingTask(SOLUTION, 5, "w1_on_a_line")
w1_on_a_line = TASK.answer
judged = TASK.judged


def test_sorted_matching_is_the_cheapest_of_all_pairings():
    """Brute force over every permutation of 6 points agrees with the sorted matching and with the CDF area."""
    import itertools

    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = torch.randn(6, generator=g), torch.randn(6, generator=g) * 2
        best = min(float((x - y[list(p)]).abs().mean()) for p in itertools.permutations(range(6)))
        assert float(w1_on_a_line(x, y)) == pytest.approx(best, abs=1e-6)
        assert checks.w1_by_cdfs(x, y) == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_solution_passes_the_check_and_the_judge(seed, capsys):
    judged(w1_on_a_line, seed)
    checks.check_w1_on_a_line(w1_on_a_line)
    assert capsys.readouterr().out.count("✓") == 1


@pytest.mark.parametrize("answer, message", [
    (lambda x, y: (x - y).abs().mean(), "one transport plan, not the cheapest"),
    (lambda x, y: (x.mean() - y.mean()).abs(), "lower bound"),
    (lambda x, y: (x.sort().values - y.sort().values).pow(2).mean().sqrt(), "Wasserstein-2"),
    (lambda x, y: (x.sort().values - y.sort(descending=True).values).abs().mean(), "same order"),
    (lambda x, y: "far", "return one number"),
])
def test_wrong_answers_fail_the_check_and_the_judge_with_a_fitting_hint(answer, message):
    TASK.fails_check_and_judge(checks.check_w1_on_a_line, answer, message, seed=3)
