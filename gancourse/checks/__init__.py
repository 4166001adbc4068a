"""Graded checks the exercise notebooks call, one module per lesson.

A failed check raises `CheckFailed`. In Jupyter it shows as a short message that says what is
wrong and how to fix it (IPython calls `_render_traceback_`), not a page of traceback; nbgrader
still sees an error and gives the cell no points.
"""
from __future__ import annotations

import functools
import os
import traceback
from pathlib import Path
from typing import Callable

import torch


class CheckFailed(AssertionError):
    """A student's answer is wrong; the message says how."""

    def _render_traceback_(self) -> list[str]:
        return ["\x1b[31m✗ Check failed:\x1b[0m " + line if i == 0 else "  " + line
                for i, line in enumerate(str(self).splitlines())]


def passed(what: str) -> None:
    print(f"✓ {what}")


def call(fn: Callable, *args, name: str | None = None, **kwargs):
    """Call a student's function, turning the usual slips into messages that say what to do."""
    return _call_student(fn, args, kwargs, name or getattr(fn, "__name__", "your function"), "", name_stubs=False)


def expect_tensor(value, name: str, shape: tuple | None = None) -> torch.Tensor:
    """The value must be a tensor (of `shape`, when given); say what came back otherwise."""
    if not torch.is_tensor(value):
        raise CheckFailed(f"{name} should return a torch.Tensor, but returned {type(value).__name__}"
                          + (" (did you forget `return`?)" if value is None else ""))
    if shape is not None and tuple(value.shape) != tuple(shape):
        hint = " Did you forget .mean() over the batch?" if shape == () and value.dim() > 0 else ""
        raise CheckFailed(f"{name} returned shape {tuple(value.shape)}; expected {tuple(shape)}.{hint}")
    if not torch.isfinite(value).all():
        raise CheckFailed(f"{name} returned a non-finite value ({value}); use numerically stable forms "
                          "such as F.logsigmoid instead of log(sigmoid(...))")
    return value


def expect_close(value: torch.Tensor, expected: torch.Tensor, name: str, hint: str = "",
                 rtol: float = 1e-4, atol: float = 1e-5) -> None:
    if torch.allclose(value.detach().float(), expected.detach().float(), rtol=rtol, atol=atol):
        return
    if torch.allclose(value.detach().float(), -expected.detach().float(), rtol=rtol, atol=atol):
        raise CheckFailed(f"{name} has the wrong sign: got {_fmt(value)}, expected {_fmt(expected)}. "
                          "Losses are minimised: negate a log-likelihood you want to maximise.")
    raise CheckFailed(f"{name} gave {_fmt(value)}, expected {_fmt(expected)}. {hint}".strip())


def _fmt(t: torch.Tensor) -> str:
    t = t.detach().float()
    return f"{t.item():.5g}" if t.numel() == 1 else f"tensor of shape {tuple(t.shape)}"


def keeps_rng(check):
    """Decorator: run a check in a private random stream, so checking never changes the student's seeded run."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)
    return wrapper


class Probe:
    """The grader's inputs for one task, and where the hidden test saves what the student's code returned.

    Only `gancourse grade` writes the inputs (grading/<task>.in.pt beside the notebook); the verdict is
    reached from the saved outputs in the grader's own process (gancourse.judging), not in this kernel.
    """

    def __init__(self, task: str, folder: str | os.PathLike = "grading"):
        self.task, self.folder = task, Path(folder)
        source = self.folder / f"{task}.in.pt"
        if not source.is_file():
            raise CheckFailed(f"no grading inputs for {task}: this hidden test runs only under `gancourse grade`")
        self.inputs = torch.load(source, map_location="cpu", weights_only=True)

    def __getitem__(self, key: str):
        return self.inputs[key]

    def save(self, **outputs) -> None:
        target = self.folder / f"{self.task}.out.pt"
        tmp = target.with_suffix(".tmp")
        torch.save({k: _plain(v) for k, v in outputs.items()}, tmp)
        os.replace(tmp, target)


def probe(task: str) -> Probe:
    """The grader's inputs for `task` (used by hidden tests)."""
    return Probe(task)


def _plain(value):
    """Tensors, numbers, strings and containers of them, as torch.load(weights_only=True) reads them back."""
    if torch.is_tensor(value):
        return value.detach().cpu().clone()
    if isinstance(value, torch.nn.Module):
        return {k: v.detach().cpu().clone() for k, v in value.state_dict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"<{type(value).__name__}>"


# -- shared by the later lessons' checks ------------------------------------------------------------------
def same(value: torch.Tensor, candidate: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """Same shape and close values (in float64)."""
    return tuple(value.shape) == tuple(candidate.shape) and bool(
        torch.allclose(value.detach().double(), candidate.detach().double(), rtol=rtol, atol=atol))


def first_values(t: torch.Tensor, k: int = 3) -> str:
    """The first k values of a tensor, for a message."""
    return "[" + ", ".join(f"{v:.4g}" for v in t.detach().flatten()[:k].tolist()) + (", ...]" if t.numel() > k else "]")


def diagnose(value: torch.Tensor, expected: torch.Tensor, name: str,
              wrong: dict[str, torch.Tensor] | list[tuple[str, torch.Tensor]], hint: str = "") -> None:
    """Name the mistake when the value matches a known wrong answer, else say what was expected."""
    if same(value, expected):
        return
    for message, candidate in wrong.items() if isinstance(wrong, dict) else wrong:
        if same(value, candidate):
            raise CheckFailed(f"{name}: {message}")
    raise CheckFailed(f"{name} gave {first_values(value)}, expected {first_values(expected)}. {hint}".strip())


def call_naming_stubs(fn, *args, name: str, context: str = "", **kwargs):
    """`call`, and when the NotImplementedError comes from a helper the function calls (an earlier task that is
    still a stub), the message names that helper."""
    return _call_student(fn, args, kwargs, name, context, name_stubs=True)


def _call_student(fn, args, kwargs, name: str, context: str, *, name_stubs: bool):
    if not callable(fn):
        raise CheckFailed(f"expected a function for {name}, got {type(fn).__name__}; pass the function "
                          "itself (no parentheses)")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        frames = traceback.extract_tb(err.__traceback__)
        stub = frames[-1].name if frames and name_stubs else name
        if stub in (name, "<lambda>", "wrapper") or stub.startswith("_"):
            raise CheckFailed(f"{name} is not written yet: replace `raise NotImplementedError()` with your code "
                              "and run its cell again.") from None
        raise CheckFailed(f"{name} calls {stub}, which is not written yet: finish that task first, run its "
                          "cell, then run this check again.") from None
    except CheckFailed:
        raise
    except Exception as err:
        raise CheckFailed(f"{name} raised {type(err).__name__}{context}: {err}") from err