"""Lesson 03's task 5 (D* when the fake labels are uniform and the real ones are not), the task not copied from
the lesson: the solution passes the visible check and the judge for any label shares the grader draws; the
tempting wrong derivations fail both, each with a hint that fits the mistake."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gancourse.checks import lesson03 as checks
from gancourse.judging import Wrong
from judge_replay import ThinkingTask

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "03_conditional_gan.ipynb"
TASK = ThinkingTask(SOLUTION, 5, "best_d_at_perfect_g")
best_d_at_perfect_g = TASK.answer
judged = TASK.judged


def test_the_formula_agrees_with_a_monte_carlo_discriminator():
    """D* from the definition, estimated on sampled pairs: a real pair (x, y) against a generated one where x
    comes from the same class-conditional density and y from the uniform labels."""
    shares = torch.tensor([0.6, 0.3, 0.1, 0.0], dtype=torch.float64)
    n = 400_000
    g = torch.Generator().manual_seed(0)
    real_y = torch.multinomial(shares, n, replacement=True, generator=g)
    fake_y = torch.randint(len(shares), (n,), generator=g)
    # x carries no information about real vs fake (p_g(x|y) = q(x|y)), so D* per class is the share of real
    # pairs among all pairs with that label
    real_count, fake_count = torch.bincount(real_y, minlength=4).double(), torch.bincount(fake_y, minlength=4).double()
    estimate = real_count / (real_count + fake_count)
    assert torch.allclose(best_d_at_perfect_g(shares), estimate, atol=0.01)
    assert best_d_at_perfect_g(shares)[-1] == 0  # a class with no real images: every pair is fake


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_solution_passes_the_check_and_the_judge(seed, capsys):
    judged(best_d_at_perfect_g, seed)
    checks.check_best_d_at_perfect_g(best_d_at_perfect_g)
    assert capsys.readouterr().out.count("✓") == 1


@pytest.mark.parametrize("answer, message", [
    (lambda shares: torch.full_like(shares, 0.5), "fake labels followed the real shares"),
    (lambda shares: (1 / len(shares)) / (shares + 1 / len(shares)), "1 - D"),
    (lambda shares: shares.clone(), "two joint densities"),
    (lambda shares: shares / (shares + 1), r"p\(x, y\) = \(1/C\)"),
    (lambda shares: (shares / (shares + 1 / len(shares)))[None], "shape"),
    (lambda shares: None, "NoneType"),
])
def test_wrong_derivations_fail_the_check_and_the_judge(answer, message):
    TASK.fails_check_and_judge(checks.check_best_d_at_perfect_g, answer, message, seed=3)


def test_answers_for_other_shares_fail():
    mine, theirs = (TASK.judge.inputs(torch.Generator().manual_seed(s)) for s in (0, 1))
    with pytest.raises(Wrong):
        TASK.judge.verdict(theirs, {"values": [best_d_at_perfect_g(shares) for shares in mine["cases"]]}, False)
