"""Replay a solution notebook's hidden test blocks outside the sandbox, for the judge tests of each lesson.

The solution's answers (some replaced by a named mistake) run in one namespace; the hidden block saves its
outputs through a stand-in probe; the lesson's judge then scores them exactly as the grader would.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import torch

from gancourse.judging import Outcome, judge_task, load_judges

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


class _Probe:
    def __init__(self, inputs):
        self.inputs, self.outputs = inputs, None

    def __getitem__(self, key):
        return self.inputs[key]

    def save(self, **outputs):
        from gancourse.checks import _plain

        self.outputs = {k: _plain(v) for k, v in outputs.items()}


class SolutionReplay:
    """solution: the solution notebook; names: what its cells expect to find (torch, nn, checks, ...);
    setup: the setup code the judge's delegation check reads beside each answer."""

    def __init__(self, solution: Path, names: dict, setup: str = "") -> None:
        self.judges = load_judges(solution)
        self.nb = nbformat.read(str(solution), as_version=4)
        self.names, self.setup = names, setup

    def cell(self, grade_id: str) -> str:
        return next(c.source for c in self.nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)

    def namespace(self) -> dict:
        namespace = dict(self.names)
        for cell in self.nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                exec(cell.source, namespace)
        return namespace

    def outputs_of(self, task: int, seed: int = 0, **replacements) -> tuple[dict, dict]:
        """Run task's hidden block with the solution's answers (some replaced): the inputs and what it saved."""
        inputs = self.judges[f"task{task}_tests"].inputs(torch.Generator().manual_seed(seed))
        probe = _Probe(inputs)
        namespace = {**self.namespace(), **replacements, "probe": lambda name: probe}
        exec(HIDDEN.search(self.cell(f"task{task}_tests")).group(1), namespace)
        return inputs, probe.outputs

    def judge(self, task: int, seed: int = 0, **replacements) -> Outcome:
        """Run task's hidden block with the solution's answers (some replaced) and judge what it saved."""
        inputs, outputs = self.outputs_of(task, seed, **replacements)
        answer = self.cell(f"task{task}_solution")
        return judge_task(self.judges[f"task{task}_tests"], inputs, outputs, answer, self.setup, smoke=True)


class ThinkingTask:
    """A task that is not in the lesson (a derivation checked numerically): the solution's function, and the
    grader's judge applied to any answer for the inputs it draws from a seed.

    key: the name the hidden block saves the answers under; every drawn case is a tuple of arguments or one.
    """

    def __init__(self, solution: Path, task: int, name: str, key: str = "values") -> None:
        self.judge = load_judges(solution)[f"task{task}_tests"]
        self.key = key
        nb = nbformat.read(str(solution), as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"task{task}_solution")
        namespace = {"torch": torch}
        exec(cell.source, namespace)
        self.answer = namespace[name]

    def judged(self, fn, seed: int = 0) -> None:
        """Raises gancourse.judging.Wrong unless fn's answers for the cases drawn with `seed` are right."""
        inputs = self.judge.inputs(torch.Generator().manual_seed(seed))
        answers = [fn(*(case if isinstance(case, tuple) else (case,))) for case in inputs["cases"]]
        self.judge.verdict(inputs, {self.key: answers}, False)

    def fails_check_and_judge(self, check, fn, message: str, seed: int) -> None:
        """A wrong answer: the visible check fails with `message` (a regex), and the judge fails too."""
        import pytest

        from gancourse.checks import CheckFailed
        from gancourse.judging import Wrong

        with pytest.raises(CheckFailed, match=message):
            check(fn)
        with pytest.raises(Wrong):
            self.judged(fn, seed)
