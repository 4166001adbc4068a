"""Lesson 02's task 5 (kernel copies per pixel), the task not copied from the lesson: the solution passes the
visible check and the judge for any (kernel, stride) pairs the grader draws; the tempting wrong answers fail
both, with a hint that fits the mistake."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gancourse.checks import lesson02 as checks
from judge_replay import ThinkingTask

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "02_dcgan.ipynb"
TASK = ThinkingTask(SOLUTION, 5, "overlap_range", key='ranges')
overlap_range = TASK.answer
judged = TASK.judged


def test_the_formula_agrees_with_counting_copies_everywhere():
    for k in range(1, 13):
        for s in range(1, 6):
            assert overlap_range(k, s) == checks.overlap_counts(k, s), (k, s)
    assert checks.overlap_counts(4, 2) == (4, 4) and checks.overlap_counts(3, 2) == (1, 4)  # the lesson's figure
    assert checks.overlap_counts(5, 2) == (4, 9) and checks.overlap_counts(2, 3) == (0, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_solution_passes_the_check_and_the_judge(seed, capsys):
    judged(overlap_range, seed)
    checks.check_overlap_range(overlap_range)
    judged(checks.overlap_counts, seed)  # counting copies numerically is a fair answer too
    assert capsys.readouterr().out.count("✓") == 1


@pytest.mark.parametrize("answer, message", [
    (lambda k, s: (k // s, -(-k // s)), "along one axis.*product"),                      # forgot the second axis
    (lambda k, s: ((k // s) ** 2, (k // s + 1) ** 2), r"stride divides the kernel"),      # uneven even when s | k
    (lambda k, s: (max(1, k // s) ** 2, (-(-k // s)) ** 2), "smaller than the stride"),    # no gaps when k < s
    (lambda k, s: (round(k / s) ** 2, round(k / s) ** 2), "how many integers"),
    (lambda k, s: None, "return a pair"),
    (lambda k, s: (1.5, 4), "whole numbers"),
])
def test_wrong_answers_fail_the_check_and_the_judge_with_a_fitting_hint(answer, message):
    TASK.fails_check_and_judge(checks.check_overlap_range, answer, message, seed=4)


def test_tensors_count_as_pairs():
    checks.check_overlap_range(lambda k, s: torch.tensor(overlap_range(k, s)))
