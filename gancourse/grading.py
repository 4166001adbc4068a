"""Grade a folder of student submissions with nbgrader's autograder and write one CSV.

Submissions may be laid out either way (both can be mixed in one folder):

    submissions/<student>/<lesson>.ipynb    one folder per student (a single notebook with another
                                            name, or <student>/<lesson>/<lesson>.ipynb, also works)
    submissions/<student>.ipynb             one notebook per student, named after the student

Each student is autograded on their own in a temporary nbgrader course, so a submission that
breaks (invalid JSON, syntax error, infinite loop, dead kernel) costs only that student points.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import sysconfig
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from nbgrader.utils import capture_log
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from gancourse import judging
from gancourse.course import CurrentPythonKernelManager
from gancourse.sandbox import (NO_SANDBOX_WARNING, Sandbox, SandboxedKernelManager, SandboxUnavailable,
                               check_available)

COURSE_ID = "gancourse"
_SAFE_ID = re.compile(r"[^\w.@-]+")
_TIMEOUT_ERROR = "CellTimeoutError"
_DEAD_KERNEL = "KernelDied"
_STOPPED_KERNEL = "KernelStopped"
_SECRET = "__inputs_secret__"  # not a student: find_submissions skips names that start with "__"


class GradingError(RuntimeError):
    """The grading run itself cannot go ahead (unknown lesson, broken solution notebook)."""


class CurrentPythonExecute(Execute):
    """nbgrader's Execute step, running every notebook on CurrentPythonKernelManager (or `kernel_class`).

    A kernel that dies (out of memory, os._exit, killed), or one that ignores the interrupt sent when a
    cell runs out of time, stops nbgrader's run and would zero the whole notebook. Here the cells that ran
    keep their outputs, so the tests that passed before keep their points; the cell that was running and
    every later test cell get an error saying why.
    """

    kernel_class = CurrentPythonKernelManager

    def __init__(self, **kwargs):
        # nbgrader's Execute sets kernel_manager_class in its __init__, which beats config.
        kwargs.setdefault("kernel_manager_class", self.kernel_class)
        super().__init__(**kwargs)

    def preprocess(self, nb, resources=None, km=None):
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:
            _mark_after_death(nb)
            return nb, resources
        except CellTimeoutError:  # interrupted, the kernel kept running: nbclient gave up on it
            _mark_after_death(nb, hung=self.timeout)
            return nb, resources


def _mark_after_death(nb: nbformat.NotebookNode, hung: int | None = None) -> None:
    """Error outputs on the cell that was running when the kernel died (or hung) and on every later test cell."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]  # empty cells never run

    def finished(cell) -> bool:  # nbclient records when the kernel replied and went idle after the cell
        execution = cell.metadata.get("execution", {})
        return "shell.execute_reply" in execution and "iopub.status.idle" in execution

    died_at = next((i for i, c in enumerate(code) if not finished(c)), len(code))
    if died_at == len(code):
        return
    name = code[died_at].metadata.get("nbgrader", {}).get("grade_id") or f"code cell {died_at + 1}"
    if hung is None:
        why = f"the kernel died while {name} ran (out of memory, os._exit or killed); this cell did not finish"
    else:
        why = f"{name} ran past {hung}s and ignored the interrupt, so the kernel was stopped; this cell did not finish"
    for i, cell in enumerate(code[died_at:], start=died_at):
        meta = cell.metadata.get("nbgrader", {})
        if i == died_at and hung is not None:
            cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                "error", ename=_TIMEOUT_ERROR, evalue=why, traceback=[]))
        elif i == died_at or (meta.get("grade") and not meta.get("solution")):
            cell.setdefault("outputs", []).append(nbformat.v4.new_output(
                "error", ename=_DEAD_KERNEL if hung is None else _STOPPED_KERNEL, evalue=why, traceback=[]))


class StderrIsNotAFailure(NbGraderPreprocessor):
    """nbgrader scores a test cell 0 when it printed anything to stderr; a torch or numpy warning raised
    while a correct answer runs would cost the task its points. In autograded test cells, stderr is
    kept as output (marked) but no longer counts: only an error does."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = "".join(f"[stderr] {line}" for line in output["text"].splitlines(keepends=True))
        return cell, resources


class FeedbackWithoutHiddenTests(ClearHiddenTests):
    """Feedback for students: nbgrader's would show the hidden tests, which grading put back into every test
    cell, and the tracebacks that quote them. Remove the hidden block and keep one line per error."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


def sandboxed_execute(sandbox: Sandbox) -> type[CurrentPythonExecute]:
    """An Execute step whose kernels run inside `sandbox` (gancourse.sandbox)."""
    kernel = type("GradingKernelManager", (SandboxedKernelManager,), {"sandbox": sandbox})
    return type("SandboxedExecute", (CurrentPythonExecute,), {"kernel_class": kernel})


@dataclass
class Submission:
    """One student's notebook (or None when none was found) and notes on how it was found."""

    student: str
    path: Path | None
    note: str = ""


@dataclass(frozen=True)
class Task:
    """An autograded test cell of the lesson: its grade_id and its points."""

    grade_id: str
    points: float


def resolve_lesson(lesson: str, solutions_dir: str | Path = "solutions") -> Path:
    """Find the solution notebook for `lesson`: "03_dcgan", "03_dcgan.ipynb", "03" or a path."""
    as_path = Path(lesson)
    if as_path.suffix == ".ipynb" and as_path.is_file():
        return as_path
    solutions_dir = Path(solutions_dir)
    available = sorted(p for p in solutions_dir.glob("*.ipynb")) if solutions_dir.is_dir() else []
    name = as_path.name.removesuffix(".ipynb")
    exact = [p for p in available if p.stem == name]
    prefixed = [p for p in available if p.stem.startswith(name + "_")]
    if exact:
        return exact[0]
    if len(prefixed) == 1:
        return prefixed[0]
    choices = ", ".join(p.stem for p in available) or f"none: {solutions_dir} has no notebooks"
    if len(prefixed) > 1:
        raise GradingError(f"lesson {lesson!r} is ambiguous; pick one of: {', '.join(p.stem for p in prefixed)}.")
    raise GradingError(f"no solution notebook for lesson {lesson!r} in {solutions_dir}; lessons: {choices}.")


def lesson_tasks(solution: nbformat.NotebookNode | str | Path) -> list[Task]:
    """The autograded test cells (grade cells that are code, not answers) in notebook order."""
    nb = solution if isinstance(solution, nbformat.NotebookNode) else nbformat.read(str(solution), as_version=4)
    tasks = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            tasks.append(Task(meta["grade_id"], float(meta.get("points", 0))))
    return tasks


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.name.startswith("."))


def find_submissions(submissions_dir: str | Path, notebook: str) -> list[Submission]:
    """List the students in `submissions_dir` and the notebook each submitted for `notebook`.

    A folder is one student; a loose .ipynb file is one student named after the file. Hidden
    entries and archive debris (.ipynb_checkpoints, __MACOSX) are skipped.
    """
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise GradingError(
            f"submissions folder {submissions_dir} does not exist; pass the folder that holds one entry per student."
        )
    found: dict[str, Submission] = {}
    for entry in sorted(submissions_dir.iterdir()):
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir():
            student = entry.name
            expected = notebook + ".ipynb"
            candidates = [entry / expected, entry / notebook / expected]
            chosen = next((c for c in candidates if c.is_file()), None)
            if chosen is not None:
                sub = Submission(student, chosen)
            else:
                others = _notebooks_in(entry)
                if len(others) == 1:
                    sub = Submission(student, others[0], f"graded {others[0].name} (expected {expected})")
                elif others:
                    names = ", ".join(p.name for p in others)
                    sub = Submission(student, None, f"no {expected}; several other notebooks ({names}), none graded")
                else:
                    sub = Submission(student, None, f"no notebook submitted (expected {expected})")
        elif entry.suffix == ".ipynb" and entry.is_file():
            student = entry.stem
            sub = Submission(student, entry)
        else:
            continue
        if student in found:
            found[student].note = _join(found[student].note, f"duplicate submission {entry.name} ignored")
        else:
            found[student] = sub
    return list(found.values())


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _safe_ids(students: list[str]) -> dict[str, str]:
    """Map student names to ids nbgrader can use in paths and globs (no spaces, *, ?, [ or +)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for student in students:
        base = _SAFE_ID.sub("_", student).strip("_") or "student"
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        ids[student] = candidate
    return ids


def nbgrader_config(root: Path, timeout: int, sandbox: Sandbox | None = None) -> Config:
    """The nbgrader configuration of a grading run: course folder, gradebook and execution limits;
    with `sandbox`, every student's kernel runs inside it."""
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    # A cell that runs past `timeout` seconds is interrupted and recorded as an error, so an
    # infinite loop costs the tests that depend on it and grading moves on to the next cell.
    c.Execute.timeout = timeout
    c.Execute.interrupt_on_timeout = True
    # nbgrader raises on a late IOPub message, which fails the whole notebook; nbclient's 4 s
    # default is too short on a loaded machine, so late output gets the cell's own budget.
    c.Execute.iopub_timeout = timeout
    c.Execute.startup_timeout = max(60, timeout)
    steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    execute = sandboxed_execute(sandbox) if sandbox is not None else CurrentPythonExecute
    steps = [execute if s is Execute else s for s in steps]
    steps.insert(steps.index(execute) + 1, StderrIsNotAFailure)
    c.Autograde.autograde_preprocessors = steps
    feedback = list(GenerateFeedback.class_traits()["preprocessors"].default())
    c.GenerateFeedback.preprocessors = [feedback[0], FeedbackWithoutHiddenTests, *feedback[1:]]
    c.FeedbackWithoutHiddenTests.enforce_metadata = False  # autograded cells carry grading metadata only
    return c


_CONFIG_FILE = '''\
# Written by gancourse.grading so `nbgrader autograde LESSON` can be rerun by hand in this folder.
from gancourse.grading import nbgrader_config
from pathlib import Path

c = get_config()  # noqa: F821
c.merge(nbgrader_config(Path(__file__).resolve().parent, timeout={timeout}))
'''


def _run(converter) -> dict:
    """Run an nbgrader converter, returning nbgrader's {success, log, error} dictionary."""
    return capture_log(converter)


_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt)\b(?::.*)?)$")


def _failure_reason(result: dict) -> str:
    """The last exception line of a failed nbgrader run, skipping nbgrader's own summary."""
    text = "\n".join(result.get(k) or "" for k in ("log", "error"))
    found = [
        m.group(1).strip()
        for line in text.splitlines()
        if (m := _EXCEPTION_LINE.match(line)) and "NbGraderException" not in line
    ]
    if found:
        return found[-1][:300]
    return "nbgrader stopped without an exception message; rerun with workdir= and read its log"


def _timeouts(autograded: Path) -> list[str]:
    """Name the cells of an autograded notebook that were interrupted for running too long."""
    if not autograded.is_file():
        return []
    nb = nbformat.read(str(autograded), as_version=4)
    names = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(o.get("output_type") == "error" and o.get("ename") == _TIMEOUT_ERROR for o in cell.get("outputs", [])):
            names.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}")
    return names


def _failed_tests(autograded: Path, tasks: list[Task]) -> dict[str, str]:
    """{task: why} for every test cell that ended in an error: the check's own message, one line."""
    if not autograded.is_file():
        return {}
    graded = {t.grade_id for t in tasks}
    found = {}
    for cell in nbformat.read(str(autograded), as_version=4).cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id not in graded:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != _TIMEOUT_ERROR:
                message = " ".join(str(output.get("evalue", "")).split())
                why = f"{output.get('ename')}: {message}" if message else str(output.get("ename"))
                found[grade_id] = why[:200]
                break
    return found


def _read_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The submitted notebook, or None and the reason nbgrader could not use it."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, "submission is not a text file, not a notebook"
    except json.JSONDecodeError as err:
        return None, f"submission is not valid notebook JSON (line {err.lineno}: {err.msg})"
    if not isinstance(raw, dict) or "cells" not in raw:
        return None, "submission is JSON but not a Jupyter notebook"
    try:
        return nbformat.reads(json.dumps(raw), as_version=4), ""
    except Exception as err:  # a notebook nbformat cannot even convert
        return None, f"submission is not a usable notebook ({type(err).__name__}: {err})"


def _scores(db_url: str, lesson_id: str, notebook: str, student_id: str) -> dict[str, float | None]:
    """Autograder score of every grade cell for one student (None where nothing was recorded)."""
    with Gradebook(db_url, COURSE_ID) as gb:
        try:
            sub = gb.find_submission_notebook(notebook, lesson_id, student_id)
        except MissingEntry:
            return {}
        return {g.name: g.auto_score for g in sub.grades}


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_csv(rows: list[dict], tasks: list[Task], out_csv: str | Path) -> Path:
    """Write grade rows with columns student, one per task, total, max, note."""
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    columns = ["student", *(t.grade_id for t in tasks), "total", "max", "note"]
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format(row[k]) for k in columns})
    return out_csv


def grade(
    lesson: str,
    submissions_dir: str | Path,
    out_csv: str | Path,
    *,
    solutions_dir: str | Path = "solutions",
    timeout: int = 300,
    workdir: str | Path | None = None,
    sandbox: bool = True,
    feedback: str | Path | None = None,
    jobs: int = 1,
    regrade: bool = False,
    progress: bool | None = None,
    smoke: bool | None = None,
) -> list[dict]:
    """Autograde every student's notebook for `lesson`, write `out_csv` and return its rows.

    Each row has "student", one float per autograded test cell (keyed by grade_id), "total",
    "max" and "note" (why points were lost to something other than failed tests). `timeout`
    caps every cell in seconds. `workdir` keeps the nbgrader course folder (gradebook.db,
    autograded notebooks, nbgrader_config.py) for inspection; it must be empty or absent.
    `smoke`: grade with the lessons' tiny budgets and without their quality requirements (default: this
    process's GANCOURSE_SMOKE). The grader decides: the kernel gets GANCOURSE_SMOKE set accordingly, the
    notebook's setup and parameters cells are restored from the solution, and judges apply the grader's
    mode whatever the notebook's SMOKE says by the time the tests run.

    Only the answer cells of a submission are run, in the released notebook (setup, parameters and test
    cells as the instructor wrote them). Tasks with a judge (judges/<lesson>.py beside the solution) are
    scored in this process from what the kernel saved (gancourse.judging), never from the kernel's word.

    sandbox=True (the default) runs every student's kernel in gancourse.sandbox: no network, the
    machine read-only, the solution, hidden tests, gradebook and other submissions out of sight, CPU,
    memory, process and file-size limits; a GradingError says how to install it where it is missing.
    sandbox=False runs students' code as you, with all of that in reach: only for code you trust.
    `feedback`: a folder that receives each student's graded notebook as HTML, <student>.html
    (nbgrader's feedback: every test cell with its output and score).
    `jobs`: students graded at once, each worker in a course folder of its own (workdir/worker-N).
    Grades are remembered in <out_csv>.cache.json: a student whose notebook, the solution and the
    grading settings are unchanged keeps the last row without running again, unless `regrade`.
    `progress`: a progress bar on stderr (default: when stderr is a terminal).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}.")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int (students graded at once), got {jobs!r}.")
    if sandbox:
        try:
            check_available()
        except SandboxUnavailable as err:
            raise GradingError(f"no sandbox for the students' code: {err}") from None
    if smoke is None:
        smoke = _env_smoke()
    solution = resolve_lesson(lesson, solutions_dir)
    lesson_id = notebook = solution.stem
    if "+" in lesson_id:
        raise GradingError(f"nbgrader cannot grade a lesson named {lesson_id!r}: rename it without '+'.")
    tasks = lesson_tasks(solution)
    if not tasks:
        raise GradingError(f"{solution} has no autograded test cells (nbgrader grade cells); nothing to grade.")
    submissions = find_submissions(submissions_dir, notebook)

    if workdir is None:
        holder = tempfile.TemporaryDirectory(prefix="gancourse-grading-")
        root = Path(holder.name)
    else:
        holder = None
        root = Path(workdir).resolve()
        if root.exists() and any(root.iterdir()):
            raise GradingError(f"workdir {root} is not empty; pass a new folder so an old gradebook is not mixed in.")
        root.mkdir(parents=True, exist_ok=True)
    try:
        with _scripts_on_path(), _smoke_env(smoke), warnings.catch_warnings():
            # nbgrader 0.9 trips SQLAlchemy 2's autoflush warnings; they do not affect the grades.
            warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")
            jail = Sandbox(hide=_hidden_from_students(root, solution, submissions_dir)) if sandbox else None
            cache_path = Path(f"{out_csv}.cache.json")
            plan = _Plan(root, solution, lesson_id, notebook, tuple(tasks), timeout, jail,
                         Path(feedback) if feedback is not None else None, smoke, _Cache.secret(cache_path))
            cache = _Cache(cache_path, plan, sandbox)
            todo = [sub for sub in submissions if regrade or cache.row(sub) is None]
            graded = _grade_all(plan, todo, _safe_ids([s.student for s in submissions]), jobs,
                                sys.stderr.isatty() if progress is None else progress)
    finally:
        if holder is not None:
            holder.cleanup()
    rows = [graded[sub.student] if sub.student in graded else cache.row(sub) for sub in submissions]
    cache.save(submissions, rows)
    write_csv(rows, tasks, out_csv)
    return rows


def _hidden_from_students(root: Path, solution: Path, submissions_dir: str | Path) -> list[Path]:
    """What a sandboxed kernel must not see: the temporary course (solution with hidden tests, gradebook,
    other students' work), the solutions folder, the submissions, and the solutions of the checkout this
    package runs from, when it runs from one."""
    checkout = Path(__file__).resolve().parent.parent / "solutions"
    return [root, solution.resolve().parent, Path(submissions_dir).resolve(), checkout]


def _env_smoke() -> bool:
    return os.environ.get("GANCOURSE_SMOKE", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def _smoke_env(smoke: bool):
    """GANCOURSE_SMOKE as the grader decided, for the kernels started while grading."""
    old = os.environ.get("GANCOURSE_SMOKE")
    os.environ["GANCOURSE_SMOKE"] = "1" if smoke else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GANCOURSE_SMOKE", None)
        else:
            os.environ["GANCOURSE_SMOKE"] = old


@contextlib.contextmanager
def _scripts_on_path():
    """Put this interpreter's scripts folder first on PATH while grading.

    nbgrader creates a gradebook by running the `alembic` command found on PATH, which fails
    (FileNotFoundError: 'alembic') when the virtual environment is not activated.
    """
    old = os.environ.get("PATH")
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    os.environ["PATH"] = os.pathsep.join(dict.fromkeys([*folders, *(old or "").split(os.pathsep)]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def _grader_log() -> logging.Logger:
    log = logging.getLogger("gancourse.grading.nbgrader")
    log.setLevel(logging.INFO)
    log.propagate = False  # nbgrader is chatty; its log is captured per run instead
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


@dataclass(frozen=True)
class _Plan:
    """Everything a grading worker needs to grade any student of this run."""

    root: Path
    solution: Path
    lesson_id: str
    notebook: str
    tasks: tuple[Task, ...]
    timeout: int
    sandbox: Sandbox | None
    feedback: Path | None
    smoke: bool
    secret: str  # with each submission's content, seeds the inputs its judges draw


class _Cache:
    """Rows of earlier runs, keyed by the submission, the solution and the grading settings."""

    def __init__(self, path: Path, plan: _Plan, sandbox: bool):
        self.path, self.plan = path, plan
        settings = json.dumps([plan.timeout, plan.smoke, sandbox, plan.feedback is not None])
        judges = plan.solution.parent / "judges" / f"{plan.solution.stem}.py"
        judged = judges.read_bytes() if judges.is_file() else b""
        self.salt = hashlib.sha256(plan.solution.read_bytes() + judged + settings.encode()).hexdigest()
        try:
            self.saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            self.saved = {}  # a damaged cache only costs a regrade

    @staticmethod
    def secret(path: Path) -> str:
        """This class's secret, kept in the cache file: the same submission gets the same judged inputs
        on every run, and a student cannot work them out in advance."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8")).get(_SECRET)
        except (OSError, ValueError, AttributeError):
            saved = None
        return saved if isinstance(saved, str) and saved else secrets.token_hex(16)

    def key(self, sub: Submission) -> str:
        content = sub.path.read_bytes() if sub.path is not None and sub.path.is_file() else b""
        return hashlib.sha256(self.salt.encode() + content + sub.note.encode()).hexdigest()

    def row(self, sub: Submission) -> dict | None:
        entry = self.saved.get(sub.student)
        return dict(entry["row"]) if entry and entry.get("key") == self.key(sub) else None

    def save(self, submissions: list[Submission], rows: list[dict]) -> None:
        data = {_SECRET: self.plan.secret}
        data.update({sub.student: {"key": self.key(sub), "row": row} for sub, row in zip(submissions, rows)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def _grade_all(plan: _Plan, submissions: list[Submission], ids: dict[str, str], jobs: int,
               progress: bool) -> dict[str, dict]:
    """Grade `submissions` in one course folder, or with jobs > 1 in worker processes with one each."""
    from tqdm.auto import tqdm

    rows: dict[str, dict] = {}
    bar = tqdm(total=len(submissions), desc=f"grading {plan.lesson_id}", unit="student", disable=not progress)
    try:
        if jobs == 1 or len(submissions) <= 1:
            course = _prepare_course(plan, plan.root)
            for sub in submissions:
                rows[sub.student] = _grade_one(plan, course, sub, ids[sub.student])
                bar.update()
        else:
            import concurrent.futures as cf
            import multiprocessing

            context = multiprocessing.get_context("fork")  # workers inherit PATH and the warning filters
            with cf.ProcessPoolExecutor(min(jobs, len(submissions)), mp_context=context, initializer=_worker_start,
                                        initargs=(plan,)) as pool:
                futures = {pool.submit(_worker_grade, sub, ids[sub.student]): sub for sub in submissions}
                for done in cf.as_completed(futures):
                    rows[futures[done].student] = done.result()
                    bar.update()
    finally:
        bar.close()
    return rows


_WORKER: dict = {}


def _worker_start(plan: _Plan) -> None:
    _WORKER["plan"] = plan
    _WORKER["course"] = _prepare_course(plan, plan.root / f"worker-{os.getpid()}")


def _worker_grade(sub: Submission, student_id: str) -> dict:
    return _grade_one(_WORKER["plan"], _WORKER["course"], sub, student_id)


@dataclass
class _Course:
    root: Path
    config: Config
    log: logging.Logger
    release: nbformat.NotebookNode  # the exercise as released: what a submission's answers are put back into
    judges: dict[str, judging.Judge]


def _prepare_course(plan: _Plan, root: Path) -> _Course:
    """An nbgrader course under `root` with the lesson released from the solution."""
    source = root / "source" / plan.lesson_id
    source.mkdir(parents=True)
    shutil.copyfile(plan.solution, source / f"{plan.notebook}.ipynb")
    (root / "nbgrader_config.py").write_text(_CONFIG_FILE.format(timeout=plan.timeout), encoding="utf-8")
    config = nbgrader_config(root, plan.timeout, plan.sandbox)
    log = _grader_log()
    coursedir = CourseDirectory(config=config, log=log)
    coursedir.assignment_id = plan.lesson_id
    result = _run(GenerateAssignment(coursedir=coursedir, config=config, log=log, force=True))
    if not result["success"]:
        raise GradingError(
            f"nbgrader could not generate the assignment from {plan.solution}: {_failure_reason(result)}. "
            "If this names nbgrader metadata or a BEGIN/END marker, `python -m gancourse.exercises "
            "--check` shows the same problem with the notebook's name."
        )
    release = nbformat.read(str(root / "release" / plan.lesson_id / f"{plan.notebook}.ipynb"), as_version=4)
    return _Course(root, config, log, release, judging.load_judges(plan.solution))


def _grade_one(plan: _Plan, course: _Course, sub: Submission, student_id: str) -> dict:
    with Gradebook(course.config.CourseDirectory.db_url, COURSE_ID) as gb:
        gb.update_or_create_student(student_id, first_name=sub.student)
    row = _grade_student(plan, course, sub, student_id)
    if plan.feedback is not None:
        _write_feedback(course.root, course.config, course.log, plan.lesson_id, plan.notebook, sub, student_id,
                        plan.feedback)
    return row


def _write_feedback(root: Path, config: Config, log: logging.Logger, lesson_id: str, notebook: str,
                    sub: Submission, student_id: str, folder: Path) -> None:
    """nbgrader's HTML feedback for one graded student, copied to folder/<student>.html."""
    if not (root / "autograded" / student_id / lesson_id).is_dir():
        return  # nothing was graded (no notebook, unreadable): the CSV's note says why
    coursedir = CourseDirectory(config=config, log=log)
    coursedir.assignment_id, coursedir.student_id = lesson_id, student_id
    _run(GenerateFeedback(coursedir=coursedir, config=config, log=log, force=True))
    html = root / "feedback" / student_id / lesson_id / f"{notebook}.html"
    if html.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, folder / f"{_SAFE_ID.sub('_', sub.student)}.html")


def _grade_student(plan: _Plan, course: _Course, sub: Submission, student_id: str) -> dict:
    """Autograde one submission in the prepared course and turn the gradebook entries into a row."""
    root, config, log, tasks = course.root, course.config, course.log, list(plan.tasks)
    lesson_id, notebook = plan.lesson_id, plan.notebook
    note, scores = sub.note, {}
    submitted, problem = _read_submission(sub.path) if sub.path is not None else (None, "")
    if submitted is None:
        note = _join(note, problem)
    else:
        rebuilt, rebuild_note = rebuild_submission(course.release, submitted)
        note = _join(note, rebuild_note)
        target = root / "submitted" / student_id / lesson_id / f"{notebook}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(rebuilt, str(target))
        digest = hashlib.sha256(plan.secret.encode() + target.read_bytes()).digest()
        inputs = judging.save_inputs(course.judges, target.parent / judging.INPUTS_DIR,
                                     int.from_bytes(digest[:6], "big"))
        coursedir = CourseDirectory(config=config, log=log)
        coursedir.assignment_id = lesson_id
        coursedir.student_id = student_id
        result = _run(Autograde(coursedir=coursedir, config=config, log=log, force=True))
        if not result["success"]:
            note = _join(note, f"autograding stopped ({_failure_reason(result)}); tasks it did not record score 0")
        autograded = root / "autograded" / student_id / lesson_id / f"{notebook}.ipynb"
        late = _timeouts(autograded)
        if late:
            note = _join(note, f"timed out after {plan.timeout}s in {', '.join(late)}")
        failures = _failed_tests(autograded, tasks)
        scores = _scores(config.CourseDirectory.db_url, lesson_id, notebook, student_id)
        if course.judges and autograded.is_file():
            verdicts = _judge_all(plan, course, rebuilt, autograded, inputs, failures, late)
            scores.update(_record_verdicts(plan, course, student_id, autograded, verdicts))
            failures = {**failures, **{g: o.note for g, o in verdicts.items() if not o.passed}}
            failures = {g: failures[g] for g in (t.grade_id for t in tasks) if g in failures}
        for grade_id, why in failures.items():
            note = _join(note, f"{grade_id}: {why}")
    row: dict = {"student": sub.student}
    for task in tasks:
        row[task.grade_id] = float(scores.get(task.grade_id) or 0.0)
    row["total"] = sum(row[t.grade_id] for t in tasks)
    row["max"] = sum(t.points for t in tasks)
    row["note"] = note
    return row


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_answer(cell) -> bool:
    return bool(_meta(cell).get("solution")) and cell.cell_type == "code"


def _is_test(cell) -> bool:
    meta = _meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


def rebuild_submission(release: nbformat.NotebookNode,
                       submitted: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, str]:
    """The released notebook with the student's answer cells put in, and a note on what was left out.

    Only answer cells come from the student: setup, parameters and test cells are the instructor's, so
    editing them (a redefined check, SMOKE = True), deleting them or adding cells changes nothing.
    """
    answers = {}
    for cell in submitted.cells:
        grade_id = _meta(cell).get("grade_id")
        if _is_answer(cell) and grade_id and grade_id not in answers:
            answers[grade_id] = cell.source
    nb = copy.deepcopy(release)
    missing = []
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if _is_answer(cell):
            if grade_id in answers:
                cell.source = answers[grade_id]
            else:
                missing.append(grade_id)
    ours = {c.source.strip() for c in release.cells if c.cell_type == "code"}
    ids = {_meta(c).get("grade_id") for c in release.cells} - {None}
    extra = [c for c in submitted.cells if c.cell_type == "code" and not _is_answer(c) and c.source.strip()
             and c.source.strip() not in ours and _meta(c).get("grade_id") not in ids]
    tests = {_meta(c).get("grade_id") for c in submitted.cells if _is_test(c)}
    restored = [_meta(c)["grade_id"] for c in release.cells if _is_test(c) and _meta(c)["grade_id"] not in tests]
    notes = []
    if len(missing) == sum(_is_answer(c) for c in release.cells):
        notes.append("no answer cells found; was it made from the exercise notebook?")
    elif missing:
        notes.append(f"answer cells missing, left unanswered: {', '.join(missing)}")
    if extra:
        notes.append(f"{len(extra)} added or edited cell(s) outside the answers not run (only answer cells are graded)")
    if restored and len(restored) < len(tests | set(restored)):
        notes.append(f"deleted test cells restored: {', '.join(restored)}")
    return nb, _join(*notes)


def _task_sources(nb: nbformat.NotebookNode) -> dict[str, tuple[str, str]]:
    """For each test cell: (the answer cells since the previous test cell, every other code cell before it)."""
    sources, answers, setup = {}, [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if _is_answer(cell):
            answers.append(cell.source)
        elif _is_test(cell):
            sources[_meta(cell)["grade_id"]] = ("\n\n".join(answers), "\n\n".join(setup))
            answers = []
        else:
            setup.append(cell.source)
    return sources


def _judge_all(plan: _Plan, course: _Course, rebuilt: nbformat.NotebookNode, autograded: Path, inputs: dict,
               failures: dict[str, str], late: list[str]) -> dict[str, judging.Outcome]:
    """Judge every task that has a judge, from what the kernel saved beside the autograded notebook."""
    folder = autograded.parent / judging.INPUTS_DIR
    sources = _task_sources(rebuilt)
    verdicts = {}
    for task in plan.tasks:
        judge = course.judges.get(task.grade_id)
        if judge is None:
            continue
        why = failures.get(task.grade_id) or (f"timed out after {plan.timeout}s" if task.grade_id in late else "")
        try:
            outputs = judging.load_outputs(folder, task.grade_id)
        except judging.Wrong as err:
            verdicts[task.grade_id] = judging.Outcome(False, str(err))
            continue
        answers, setup = sources.get(task.grade_id, ("", ""))
        verdicts[task.grade_id] = judging.judge_task(judge, inputs[task.grade_id], outputs, answers, setup,
                                                     plan.smoke, why_missing=why)
    return verdicts


def _record_verdicts(plan: _Plan, course: _Course, student_id: str, autograded: Path,
                     verdicts: dict[str, judging.Outcome]) -> dict[str, float]:
    """Write the judges' scores into the gradebook and their verdicts under the test cells (for feedback)."""
    points = {t.grade_id: t.points for t in plan.tasks}
    scores = {g: (points[g] if o.passed else 0.0) for g, o in verdicts.items()}
    with Gradebook(course.config.CourseDirectory.db_url, COURSE_ID) as gb:
        for grade_id, score in scores.items():
            try:
                entry = gb.find_grade(grade_id, plan.notebook, plan.lesson_id, student_id)
            except MissingEntry:
                continue
            entry.auto_score = score
        gb.db.commit()
    nb = nbformat.read(str(autograded), as_version=4)
    for cell in nb.cells:
        outcome = verdicts.get(_meta(cell).get("grade_id")) if _is_test(cell) else None
        if outcome is not None:
            text = "✓ the grader's verdict: passed" if outcome.passed else f"✗ the grader's verdict: {outcome.note}"
            cell.setdefault("outputs", []).append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
    os.chmod(autograded, 0o644)  # nbgrader leaves it read-only
    nbformat.write(nb, str(autograded))
    os.chmod(autograded, 0o444)
    return scores


def grade_from_options(args: argparse.Namespace, solutions_dir: str | Path) -> list[dict]:
    """grade() with the options of `gancourse.cli.add_grade_options`; warns on stderr when the sandbox is off."""
    if args.no_sandbox:
        print(NO_SANDBOX_WARNING, file=sys.stderr)
    return grade(args.lesson, args.submissions, args.out, solutions_dir=solutions_dir, timeout=args.timeout,
                 workdir=args.workdir, sandbox=not args.no_sandbox, feedback=args.feedback, jobs=args.jobs,
                 regrade=args.regrade, progress=True, smoke=getattr(args, "smoke", None))


def main(argv: list[str] | None = None) -> int:
    """Command line for instructors: python -m gancourse.grading LESSON SUBMISSIONS --out grades.csv."""
    parser = argparse.ArgumentParser(prog="python -m gancourse.grading", description=__doc__.splitlines()[0])
    from gancourse.cli import add_grade_options

    add_grade_options(parser, timeout=60)
    parser.add_argument("--solutions", default="solutions", help="folder of solution notebooks")
    args = parser.parse_args(argv)
    try:
        rows = grade_from_options(args, args.solutions)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row['student']}: {row['total']:g}/{row['max']:g}" + (f"  ({row['note']})" if row["note"] else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
