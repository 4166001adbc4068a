"""Judging outside the kernel: delegation is found through aliases, references are not installed."""
from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest
import torch

import gancourse
import gancourse.checks
from gancourse.checks import Probe
from gancourse.grading import lesson_tasks
from gancourse.judging import Judge, delegations, judge_task, load_judges, load_outputs

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = ("gancourse.losses.discriminator_loss",)


@pytest.mark.parametrize("answer", [
    "def d(r, f):\n    return gancourse.losses.discriminator_loss(r, f)",
    "from gancourse.losses import discriminator_loss as mine\ndef d(r, f):\n    return mine(r, f)",
    "import gancourse.losses as L\nd = L.discriminator_loss",
    "from gancourse import losses\nd = lambda r, f: losses.discriminator_loss(r, f)",
    "d = getattr(gancourse.losses, 'discriminator_loss')",
    "d = getattr(gancourse.losses, 'discriminator' + '_loss')",
    "import importlib\nd = importlib.import_module('gancourse.losses')",
    "d = __import__('gancourse')",
    "d = eval('gancourse.losses.discriminator_loss')",
    "%time x = 1\nd = gancourse.losses.discriminator_loss",
])
def test_delegation_is_found_however_it_is_spelled(answer):
    assert delegations(answer, FORBIDDEN, setup="import gancourse")


@pytest.mark.parametrize("answer", [
    "def d(r, f):\n    return -(F.logsigmoid(r).mean() + F.logsigmoid(-f).mean())",
    "def discriminator_loss(r, f):\n    return r.mean()\nd = discriminator_loss(1, 2)",  # its own function
    "x = getattr(module, 'bias', None)",
    "gancourse.losses.generator_loss_nonsaturating",  # another function of the library is fine here
])
def test_own_code_is_not_delegation(answer):
    setup = "import gancourse\nimport torch.nn.functional as F\nfrom gancourse.losses import discriminator_loss"
    assert delegations(answer, FORBIDDEN, setup=setup) == []


def test_a_task_without_forbidden_names_accepts_anything():
    assert delegations("d = __import__('os')", ()) == []


def test_verdicts_pass_fail_and_explain_bad_outputs():
    def verdict(inputs, outputs, smoke):
        if outputs["y"] != inputs["x"] * 2:
            from gancourse.judging import Wrong
            raise Wrong("y should be 2x")

    judge = Judge(lambda rng: {"x": 3}, verdict)
    assert judge_task(judge, {"x": 3}, {"y": 6}, "", "", True).passed
    assert judge_task(judge, {"x": 3}, {"y": 5}, "", "", True).note == "y should be 2x"
    assert "KeyError" in judge_task(judge, {"x": 3}, {}, "", "", True).note
    assert judge_task(judge, {"x": 3}, None, "", "", True, why_missing="timed out").note == "timed out"


def test_probe_round_trip_and_a_refused_pickle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grading").mkdir()
    torch.save({"x": torch.ones(2)}, tmp_path / "grading" / "t.in.pt")
    probe = Probe("t")
    probe.save(y=probe["x"] * 2, net=torch.nn.Linear(2, 1), other=object())
    out = load_outputs(tmp_path / "grading", "t")
    assert torch.equal(out["y"], torch.full((2,), 2.0)) and set(out["net"]) == {"weight", "bias"}
    assert out["other"] == "<object>"
    import pickle

    (tmp_path / "grading" / "u.out.pt").write_bytes(pickle.dumps({"y": Path("x")}))  # an object, not plain data
    from gancourse.judging import Wrong
    with pytest.raises(Wrong, match="could not be read"):
        load_outputs(tmp_path / "grading", "u")


def test_probe_outside_grading_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gancourse.checks.CheckFailed, match="only under `gancourse grade`"):
        Probe("task1_tests")


@pytest.mark.parametrize("solution", sorted((REPO / "solutions").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_scored_task_of_every_lesson_has_a_judge(solution):
    judges = load_judges(solution)
    scored = {t.grade_id for t in lesson_tasks(solution) if t.points > 0}
    assert scored <= set(judges), f"tasks without a judge: {sorted(scored - set(judges))}"
    for grade_id, judge in judges.items():
        inputs = judge.inputs(torch.Generator().manual_seed(0))
        assert isinstance(inputs, dict) and inputs, grade_id


def test_reference_answers_are_not_in_the_installed_package():
    names = [m.name for m in pkgutil.walk_packages(gancourse.__path__, "gancourse.")]
    assert not [n for n in names if "judge" in n and n != "gancourse.judging"]
    for module in [m for m in names if m.startswith("gancourse.checks.")]:
        public = dir(__import__(module, fromlist=["x"]))
        assert not [n for n in public if n.startswith("reference")], module
    assert not list((REPO / "gancourse").rglob("judges"))
