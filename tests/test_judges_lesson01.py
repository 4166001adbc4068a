"""Lesson 01's task 6 (where D* is unsure), the task not copied from the lesson: the solution passes the
visible check and the judge for any inputs the grader draws; wrong derivations fail both, in words."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gancourse.checks import lesson01 as checks
from gancourse.judging import Wrong
from judge_replay import ThinkingTask

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "01_gan_game.ipynb"
TASK = ThinkingTask(SOLUTION, 6, "unsure_points")
unsure_points = TASK.answer
judged = TASK.judged


def no_width_term(mu, s):  # forgot the 1/s in front of p_g: c = mu^2
    a, b, c = 1 - s ** 2, -2 * mu, mu ** 2
    if abs(a) < 1e-12:
        return torch.tensor([-c / b])
    r = math.sqrt(max(b * b - 4 * a * c, 0))
    return torch.tensor(sorted([(-b - r) / (2 * a), (-b + r) / (2 * a)]))


def one_root(mu, s):  # only the root between the means
    return unsure_points(mu, s)[-1:] if s < 1 else unsure_points(mu, s)[:1]


def unsorted(mu, s):
    return unsure_points(mu, s).flip(0)


def grid_search(mu, s):  # a careful numerical answer: bisection on every sign change of the log-ratio
    f = lambda x: -x ** 2 / 2 + math.log(s) + (x - mu) ** 2 / (2 * s ** 2)
    xs = [-30 + 0.01 * i for i in range(6001)]
    found = []
    for lo, hi in zip(xs, xs[1:]):
        if f(lo) == 0 or f(lo) * f(hi) < 0:
            for _ in range(80):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if f(lo) * f(mid) > 0 else (lo, mid)
            found.append((lo + hi) / 2)
    return torch.tensor(found, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_solution_and_a_numerical_search_pass(seed, capsys):
    judged(unsure_points, seed)
    judged(grid_search, seed)
    checks.check_unsure_points(unsure_points)
    checks.check_unsure_points(grid_search)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("answer, message", [
    (no_width_term, r"not 1/2.*1/s in front"),
    (one_root, r"1 point\(s\), there are 2.*cross twice"),
    (unsorted, "ascending"),
    (lambda mu, s: None, "returned NoneType"),
    (lambda mu, s: torch.tensor([mu / 2]), r"there are 2"),
])
def test_wrong_derivations_fail_the_check_and_the_judge(answer, message):
    TASK.fails_check_and_judge(checks.check_unsure_points, answer, message, seed=5)


def test_answers_for_other_inputs_fail():
    """The generators are drawn per student: points computed for one draw fail another."""
    mine = TASK.judge.inputs(torch.Generator().manual_seed(0))
    theirs = TASK.judge.inputs(torch.Generator().manual_seed(1))
    with pytest.raises(Wrong, match="not 1/2|point"):
        TASK.judge.verdict(theirs, {"values": [unsure_points(mu, s) for mu, s in mine["cases"]]}, False)
