"""Verdicts reached outside the student's kernel: the part of grading an answer cell cannot reach.

Answer cells and test cells share one kernel, so anything a test asserts there can be undone by the
code it tests (a patched `torch.allclose`, a redefined check, an input transformer). Grading therefore
splits each task in two:

- in the kernel, the hidden block of the test cell calls the student's code on inputs the grader drew
  for this submission (`gancourse.checks.probe`) and saves what came back: tensors, numbers, state dicts;
- in the grader's process, the task's `Judge` (from `<solutions>/judges/<lesson>.py`, which students
  neither install nor see) compares those outputs with its reference answers, rebuilding networks from
  saved weights where quality is measured, so a forged output can only match by being right.

A judge also names the library functions that already do what the task asks (`forbidden`): an answer
that calls one of them, directly or through an alias, scores 0 with a note saying so.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

INPUTS_DIR = "grading"  # beside the graded notebook, inside the kernel's scratch folder


class Wrong(AssertionError):
    """A judge's verdict that the task is not done; the message goes into the grade's note."""


@dataclass(frozen=True)
class Judge:
    """How one autograded test cell is judged.

    inputs(rng) -> dict    the inputs saved for the kernel (tensors, numbers, lists, dicts), drawn per student
    verdict(inputs, outputs, smoke) -> None    raises Wrong(message) when the outputs are not right
    forbidden              dotted names (prefixes) of the library's own implementation of the task
    """

    inputs: Callable[[torch.Generator], dict]
    verdict: Callable[[dict, dict, bool], None]
    forbidden: tuple[str, ...] = ()


@dataclass
class Outcome:
    """A judged task: passed or not, and the note when not."""

    passed: bool
    note: str = ""


def load_judges(solution: Path) -> dict[str, Judge]:
    """The judges of a lesson: `JUDGES` in judges/<lesson>.py beside the solution notebook ({} when absent)."""
    path = solution.parent / "judges" / f"{solution.stem}.py"
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location(f"gancourse_judges_{solution.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    judges = getattr(module, "JUDGES", None)
    if not isinstance(judges, dict) or not all(isinstance(j, Judge) for j in judges.values()):
        raise TypeError(f"{path} must define JUDGES, a dict from test cell grade_id to gancourse.judging.Judge")
    return judges


def save_inputs(judges: dict[str, Judge], folder: Path, seed: int) -> dict[str, dict]:
    """Draw every task's inputs with one seed and save them as folder/<grade_id>.in.pt."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for grade_id, judge in judges.items():
        rng = torch.Generator().manual_seed(seed + sum(map(ord, grade_id)))
        drawn[grade_id] = judge.inputs(rng)
        torch.save(drawn[grade_id], folder / f"{grade_id}.in.pt")
    return drawn


def load_outputs(folder: Path, grade_id: str) -> dict | None:
    """What the kernel saved for a task, read without unpickling code (None when it saved nothing)."""
    path = folder / f"{grade_id}.out.pt"
    if not path.is_file():
        return None
    try:
        outputs = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a file written by hostile code: anything but plain data is refused
        raise Wrong(f"the saved outputs could not be read ({type(err).__name__})") from None
    if not isinstance(outputs, dict):
        raise Wrong("the saved outputs are not what the grader's test cell writes")
    return outputs


def judge_task(judge: Judge, inputs: dict, outputs: dict | None, answers: str, setup: str, smoke: bool,
               why_missing: str = "") -> Outcome:
    """The verdict on one task: delegation first, then the outputs against the references."""
    delegated = delegations(answers, judge.forbidden, setup)
    if delegated:
        name = delegated[0]
        if name.endswith(_DYNAMIC_NOTE):
            return Outcome(False, f"the answer looks names up dynamically ({name.removesuffix(_DYNAMIC_NOTE)}), "
                                  "which this task does not accept; scored 0")
        return Outcome(False, f"the answer calls the library's own {name} instead of implementing it; scored 0")
    if outputs is None:
        return Outcome(False, why_missing or "the test cell saved nothing to judge")
    try:
        judge.verdict(inputs, outputs, smoke)
    except Wrong as err:
        return Outcome(False, " ".join(str(err).split()) or "wrong answer")
    except Exception as err:  # outputs of the wrong kind: a list where a tensor was expected, a missing key
        return Outcome(False, f"the outputs are not of the expected kind ({type(err).__name__}: {err})")
    return Outcome(True)


# -- delegation: does an answer call the library's implementation of its own task? --------------------
_DYNAMIC_NOTE = " (a dynamic look-up)"
_DYNAMIC = {"__import__", "eval", "exec", "compile", "get_ipython", "globals", "vars", "__builtins__"}
_DYNAMIC_DOTTED = ("importlib", "sys.modules", "builtins")


def delegations(answers: str, forbidden: tuple[str, ...], setup: str = "") -> list[str]:
    """Forbidden names an answer uses, resolved through imports in `setup` and in the answer itself.

    Dynamic look-ups (`__import__`, `importlib`, `eval`, `getattr` with a computed name, ...) count as
    delegation when the task forbids anything: they are how a static check would be dodged.
    """
    if not forbidden:
        return []
    aliases: dict[str, str] = {}
    tree = _parse(setup)
    if tree is not None:
        _collect_imports(tree, aliases)
    tree = _parse(answers)
    if tree is None:
        return []  # a syntax error is reported by the kernel
    for node in ast.walk(tree):  # the answer's own definitions shadow what the setup imported
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            aliases.pop(node.name, None)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            aliases.pop(node.id, None)
    _collect_imports(tree, aliases)
    found = []
    for node in ast.walk(tree):
        dotted = None
        if isinstance(node, (ast.Name, ast.Attribute)):
            dotted = _resolve(node, aliases)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _imported(node):
                if _matches(name, forbidden):
                    found.append(name)
        if dotted is not None:
            if _matches(dotted, forbidden):
                found.append(dotted)
            elif dotted.split(".")[0] in _DYNAMIC or dotted.startswith(_DYNAMIC_DOTTED):
                found.append(dotted + _DYNAMIC_NOTE)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "setattr"}:
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                found.append(f"{node.func.id} with a computed name" + _DYNAMIC_NOTE)
            elif any(f.rsplit(".", 1)[-1] == attr.value for f in forbidden):
                found.append(f"{attr.value} through {node.func.id}")
    return list(dict.fromkeys(found))


def _parse(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _collect_imports(tree: ast.Module, aliases: dict[str, str]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [f"{node.module}.{a.name}" for a in node.names] if node.module and not node.level else []


def _resolve(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id, node.id)
    return ".".join([root, *reversed(parts)])


def _matches(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


__all__ = ["INPUTS_DIR", "Judge", "Outcome", "Wrong", "delegations", "judge_task", "load_judges", "load_outputs",
           "save_inputs"]
