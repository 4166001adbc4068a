"""The lesson registry and the course runner: find lessons, run them with papermill, report.

A lesson is `notebooks/NN_name.ipynb` with its graded twin `solutions/NN_name.ipynb` and the
student copy `exercises/NN_name.ipynb`. `run_course()` executes every lesson top to bottom (the
same way `make course` does) and prints each lesson's verdict line.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

import nbformat
import zmq
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from gancourse.utils import RUN_DIR_ENV, SMOKE_ENV

REPO_URL = "https://github.com/gancourse/gancourse"
BRANCH = "main"
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
VERDICT_PREFIX = "VERDICT:"

# The first code cell of every notebook. It must stay a no-op where gancourse is importable (a
# clone with `make`, conda) and must never pip-install torch: Colab's CUDA build would be replaced.
# GANCOURSE_REPO names another source for pip (a fork, a local clone: git+file:///path@branch); the
# Colab test (tests/test_colab.py) installs from a clone of this repository that way, offline.
# Colab's ipywidgets 7 is kept: every course widget works with 7.7 and 8 (Colab's front end shows
# ipywidgets 8 only through its third-party widget manager, so upgrading it there would hide them).
REPO_ENV = "GANCOURSE_REPO"
INSTALL_CELL = f'''\
# Installs the course library only where it is missing (Colab, a bare kernel); never touches torch.
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("gancourse") is None:
    _source = os.environ.get("{REPO_ENV}", "git+{REPO_URL}@{BRANCH}")
    _pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run(_pip + ["--no-deps", _source], check=True)
    _light = {{"torchmetrics": "torchmetrics>=1.3", "ipywidgets": "ipywidgets>=7.7", "tqdm": "tqdm>=4.66",
              "sklearn": "scikit-learn>=1.3", "matplotlib": "matplotlib>=3.7", "nbformat": "nbformat>=5.9"}}
    _missing = [req for module, req in _light.items() if importlib.util.find_spec(module) is None]
    if _missing:
        subprocess.run(_pip + _missing, check=True)
    importlib.invalidate_caches()
    print(f"installed gancourse from {{_source}}")'''

_LESSON_STEM = re.compile(r"^(\d+)_(\w+)$")


class UnknownLessonError(ValueError):
    """A lesson name or number that matches no notebook; the message lists the known lessons."""


class CourseRootNotFound(FileNotFoundError):
    """No folder with notebooks/ was found where the course was expected."""


@dataclass(frozen=True)
class Lesson:
    """One lesson: its number, its name, and where its three notebooks live (they may be missing)."""

    number: int
    name: str
    stem: str
    notebook: Path
    solution: Path
    exercise: Path

    @property
    def title(self) -> str:
        """The lesson notebook's first Markdown heading, or its stem when it has none."""
        try:
            nb = nbformat.read(str(self.notebook), as_version=4)
        except Exception:  # an unreadable notebook still has a name to list
            return self.stem
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
        return self.stem


@dataclass
class LessonRun:
    """The outcome of executing one notebook: where the executed copy is, time, verdict, error."""

    stem: str
    source: Path
    output: Path
    seconds: float
    ok: bool
    verdict: str | None = None
    error: str | None = None


def find_root(start: str | Path | None = None) -> Path:
    """The course's repository root: the nearest folder at or above `start` (default: the current
    folder) holding notebooks/, else the checkout this package was installed from (editable)."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir():
            return folder
    package_checkout = Path(__file__).resolve().parent.parent
    if (package_checkout / "notebooks").is_dir():
        return package_checkout
    raise CourseRootNotFound(
        f"no notebooks/ folder at or above {here}; run this from a clone of {REPO_URL} "
        "(or pass --root PATH to the course's folder)."
    )


def lessons(root: str | Path = ".") -> list[Lesson]:
    """Every lesson in `root`/notebooks, named NN_name.ipynb, in lesson order."""
    root = Path(root).resolve()
    found = []
    for path in (root / "notebooks").glob("*.ipynb"):
        match = _LESSON_STEM.match(path.stem)
        if match is None or not path.is_file():
            continue
        found.append(
            Lesson(
                number=int(match.group(1)),
                name=match.group(2),
                stem=path.stem,
                notebook=path,
                solution=root / "solutions" / path.name,
                exercise=root / "exercises" / path.name,
            )
        )
    return sorted(found, key=lambda lesson: (lesson.number, lesson.stem))


def resolve(spec: str | Path, root: str | Path = ".") -> Lesson | Path:
    """Turn "1", "01", "gan_game", "01_gan_game" or a lesson's notebook path into a Lesson; a path
    to any other existing .ipynb (e.g. solutions/01_gan_game.ipynb) is returned as a Path."""
    text = str(spec)
    known = lessons(root)
    name = Path(text).name.removesuffix(".ipynb")
    if text.endswith(".ipynb") or "/" in text or os.sep in text:
        for candidate in (Path(text), Path(root) / text):
            if candidate.is_file():
                for lesson in known:
                    if candidate.resolve() == lesson.notebook:
                        return lesson
                return candidate
    matches = [
        lesson for lesson in known
        if name in (lesson.stem, lesson.name) or (name.isdigit() and int(name) == lesson.number)
    ]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(lesson.stem for lesson in known) or f"none (no notebooks in {Path(root) / 'notebooks'})"
    if len(matches) > 1:
        raise UnknownLessonError(f"lesson {text!r} is ambiguous: {', '.join(m.stem for m in matches)}; use the full name.")
    raise UnknownLessonError(
        f"no lesson {text!r}; known lessons: {listing}. Use a number (\"1\"), a name or a path to a notebook."
    )


def colab_url(path: str | Path, root: str | Path | None = None) -> str:
    """The URL that opens the repository's copy of `path` (relative to the repo root) in Colab."""
    path = Path(path)
    if path.is_absolute():
        path = path.resolve().relative_to(Path(root).resolve() if root is not None else find_root(path.parent))
    return f"https://colab.research.google.com/github/{REPO_URL.removeprefix('https://github.com/')}/blob/{BRANCH}/{path.as_posix()}"


def badge_markdown(path: str | Path, root: str | Path | None = None) -> str:
    """The "Open in Colab" badge for the notebook at `path` (relative to the repo root)."""
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(path, root)})"


BADGE_MARKDOWN = badge_markdown


class CurrentPythonKernelManager(AsyncKernelManager):
    """Starts ipykernel on this interpreter, whatever "python3" kernelspec the machine has.

    A user-level python3 kernelspec may point at another environment, one without gancourse; the
    course runner, the notebook tests and grading (gancourse.grading) all need this one.
    Where jupyter_client and pyzmq can, the kernel's sockets are encrypted (CurveZMQ).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if "transport_encryption" in self.trait_names() and zmq.has("curve"):
            self.transport_encryption = "auto"

    def kernel_dict(self) -> dict:
        """The kernelspec's fields (argv, language, metadata): this interpreter's ipykernel's own."""
        return get_kernel_dict()

    @property
    def kernel_spec(self) -> KernelSpec:
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(resource_dir=RESOURCES, name="python3", **self.kernel_dict())
        return self._kernel_spec


def kernel_manager_for(python: str | Path | None) -> type[AsyncKernelManager]:
    """A kernel manager class that starts ipykernel on `python` (None: this interpreter).

    The kernelspec is the one `python`'s own ipykernel declares, so an older ipykernel in another
    environment (Colab's 6.x, say) is started the way it expects, without features it lacks.
    """
    if python is None or Path(python) == Path(sys.executable):
        return CurrentPythonKernelManager
    python = str(python)
    probe = subprocess.run([python, "-c", "import json; from ipykernel.kernelspec import get_kernel_dict; "
                            "print(json.dumps(get_kernel_dict()))"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(f"{python} cannot start a notebook kernel (is ipykernel installed there?):\n"
                           f"{probe.stderr.strip()[-2000:]}")
    spec = json.loads(probe.stdout.strip().splitlines()[-1])

    class OtherPythonKernelManager(CurrentPythonKernelManager):
        def kernel_dict(self) -> dict:
            return spec

    OtherPythonKernelManager.__qualname__ = f"KernelManager[{python}]"
    return OtherPythonKernelManager


@contextlib.contextmanager
def environment(**changes: str | None) -> Iterator[None]:
    """Set (or with None, remove) environment variables for the duration; the kernel inherits them."""
    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def find_verdict(nb: nbformat.NotebookNode) -> str | None:
    """The last line starting with "VERDICT:" printed or displayed by any code cell, or None."""
    verdict = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
            elif output.get("output_type") in ("execute_result", "display_data"):
                text = output.get("data", {}).get("text/plain", "")
            else:
                continue
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if line.strip().startswith(VERDICT_PREFIX):
                    verdict = line.strip()
    return verdict


def _describe_failure(err: BaseException) -> str:
    """One line that says which cell failed and why (papermill errors carry the cell's counter)."""
    ename = getattr(err, "ename", None)
    if ename is not None:
        where = getattr(err, "exec_count", None)
        return f"cell [{where}] raised {ename}: {getattr(err, 'evalue', '')}".strip()
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__


def _smoke_value(smoke: bool | None) -> str | None:
    if smoke is None:
        return os.environ.get(SMOKE_ENV)
    return "1" if smoke else None


def run_lesson(
    lesson_or_path: Lesson | str | Path,
    out_dir: str | Path = "runs",
    smoke: bool | None = False,
    parameters: dict | None = None,
    timeout: float | None = None,
    *,
    root: str | Path | None = None,
    progress: bool = False,
    python: str | Path | None = None,
) -> LessonRun:
    """Execute one notebook with papermill into `out_dir`/<stem>/<stem>.ipynb and return the outcome.

    The kernel runs this interpreter in the course root (so relative paths work) with
    GANCOURSE_RUN_DIR=`out_dir`/<stem>, where the lesson saves its figures. `smoke` True sets
    GANCOURSE_SMOKE=1 (tiny budgets), False clears it, None keeps the caller's value. `timeout` caps
    each cell in seconds. A failing notebook is reported in the result (ok=False), not raised.
    `python` runs the kernel on another environment's interpreter (tests/test_colab.py: Colab's versions).
    """
    import papermill

    source = lesson_or_path.notebook if isinstance(lesson_or_path, Lesson) else Path(lesson_or_path)
    if not source.is_file():
        raise FileNotFoundError(f"notebook {source} does not exist; `python -m gancourse lessons` lists the lessons.")
    source = source.resolve()
    if root is None:
        try:
            root = find_root(source.parent)
        except CourseRootNotFound:
            root = source.parent
    run_folder = Path(out_dir).resolve() / source.stem
    run_folder.mkdir(parents=True, exist_ok=True)
    output = run_folder / source.name
    ok, error, started = True, None, time.perf_counter()
    with environment(**{RUN_DIR_ENV: str(run_folder), SMOKE_ENV: _smoke_value(smoke)}):
        try:
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters or {},
                kernel_name="python3",
                kernel_manager_class=kernel_manager_for(python),
                cwd=str(root),
                execution_timeout=timeout,
                progress_bar=progress,
                log_output=False,
            )
        except Exception as err:  # any failure is this lesson's result, the course goes on
            ok, error = False, _describe_failure(err)
    seconds = time.perf_counter() - started
    verdict = None
    if output.is_file():
        try:
            verdict = find_verdict(nbformat.read(str(output), as_version=4))
        except Exception:  # a half-written output notebook still leaves the run's error to report
            verdict = None
    return LessonRun(source.stem, source, output, seconds, ok, verdict, error)


def format_summary(runs: list[LessonRun]) -> str:
    """A plain-text table: lesson, seconds, ok/failed, and the verdict (or the error) line."""
    width = max([len("lesson")] + [len(run.stem) for run in runs])
    lines = [f"{'lesson':<{width}}  {'seconds':>8}  {'status':<6}  verdict"]
    for run in runs:
        status = "ok" if run.ok else "failed"
        detail = run.verdict or "(no VERDICT line)"
        if not run.ok:
            detail = f"{run.error}" + (f" | {run.verdict}" if run.verdict else "")
        lines.append(f"{run.stem:<{width}}  {run.seconds:8.1f}  {status:<6}  {detail}")
    failed = [run for run in runs if not run.ok]
    tail = f"{len(runs) - len(failed)}/{len(runs)} lessons ok"
    if failed:
        tail += "; executed notebooks with the error shown: " + ", ".join(str(run.output) for run in failed)
    lines.append(tail)
    return "\n".join(lines)


def run_course(
    selected: list[Lesson | Path] | None = None,
    *,
    root: str | Path | None = None,
    out_dir: str | Path = "runs",
    smoke: bool | None = None,
    timeout: float | None = None,
    stream: TextIO | None = None,
) -> list[LessonRun]:
    """Run `selected` lessons (default: all, in order), going on after failures; print a summary.

    Returns every LessonRun; the command line exits non-zero when any has ok=False.
    """
    stream = stream if stream is not None else sys.stdout
    if selected is None:
        root = find_root() if root is None else Path(root)
        selected = list(lessons(root))
        if not selected:
            raise UnknownLessonError(f"no lessons in {Path(root) / 'notebooks'}: expected files named NN_name.ipynb.")
    runs = []
    for index, item in enumerate(selected, start=1):
        name = item.stem
        print(f"[{index}/{len(selected)}] {name} ...", file=stream, flush=True)
        run = run_lesson(item, out_dir=out_dir, smoke=smoke, timeout=timeout, root=root,
                         progress=getattr(sys.stderr, "isatty", lambda: False)())
        outcome = f"ok in {run.seconds:.1f} s" if run.ok else f"FAILED after {run.seconds:.1f} s: {run.error}"
        print(f"[{index}/{len(selected)}] {name}: {outcome}", file=stream, flush=True)
        runs.append(run)
    print("", file=stream)
    print(format_summary(runs), file=stream, flush=True)
    return runs
