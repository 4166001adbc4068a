"""Every lesson, solution and exercise notebook executes in smoke mode, and the runner works.

Notebook runs are marked `notebook` (deselect with `-m "not notebook"`); conftest.py puts those
tests in smoke mode (GANCOURSE_SMOKE=1) with figures written to a temporary folder.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gancourse import cli, course
from two_at_a_time import run_all, run_lessons

REPO = Path(__file__).resolve().parent.parent
CELL_TIMEOUT = 600  # seconds any one cell may take in smoke mode
NOTEBOOK_TIMEOUT = 1800  # seconds for one whole test (pytest-timeout)

LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((REPO / "solutions").glob("*.ipynb"))
EXERCISES = sorted((REPO / "exercises").glob("*.ipynb"))
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _error_outputs(nb: nbformat.NotebookNode) -> list[tuple[int, dict]]:
    return [
        (index, output)
        for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "error"
    ]


def _traceback_of(path: Path) -> str:
    """The first error's traceback in an executed notebook, colour codes removed."""
    try:
        errors = _error_outputs(nbformat.read(str(path), as_version=4))
    except Exception as err:
        return f"(no readable executed notebook: {err})"
    if not errors:
        return "(no error output recorded)"
    index, output = errors[0]
    return f"cell {index}:\n" + _ANSI.sub("", "\n".join(output.get("traceback", [])))[-4000:]


def _describe(cell: nbformat.NotebookNode, index: int) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    first_line = (cell.source.strip().splitlines() or [""])[0][:70]
    return f"cell {index}" + (f" ({grade_id})" if grade_id else "") + f" `{first_line}`"


# --- the course's notebooks ------------------------------------------------------------------

@pytest.fixture(scope="module")
def lesson_runs(tmp_path_factory) -> dict[str, dict]:
    """Every lesson executed once with papermill in smoke mode, two at a time (tests/two_at_a_time.py)."""
    return run_lessons(LESSONS, tmp_path_factory.mktemp("runs"), root=REPO, cell_timeout=CELL_TIMEOUT,
                       timeout=NOTEBOOK_TIMEOUT)


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", LESSONS, ids=_rel)
def test_notebook_runs_in_smoke_mode(path, lesson_runs):
    run = lesson_runs[path.stem]
    output = Path(run["output"]) if run["output"] else None
    assert run["ok"], f"{_rel(path)} failed in smoke mode: {run['error']}\n{_traceback_of(output) if output else ''}"
    assert run["verdict"], f"{_rel(path)} ran but printed no line starting with 'VERDICT:' (its \"did it work?\" cell)."


@pytest.mark.notebook
@pytest.mark.grading
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", SOLUTIONS, ids=_rel)
def test_solution_scores_full_marks_under_the_grader_in_smoke_mode(path, tmp_path):
    """A solution's hidden blocks need the grader's inputs, so it runs the way students' work does."""
    from gancourse.grading import grade

    submission = tmp_path / "class" / "solution" / path.name
    submission.parent.mkdir(parents=True)
    submission.write_bytes(path.read_bytes())
    (row,) = grade(path.stem, tmp_path / "class", tmp_path / "grades.csv", solutions_dir=REPO / "solutions",
                   timeout=CELL_TIMEOUT, smoke=True)
    assert row["total"] == row["max"] > 0 and row["note"] == "", row


@pytest.fixture(scope="module")
def nbval_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """`pytest --nbval-lax` on every lesson, two at a time. nbval starts its kernel in the notebook's folder, as
    JupyterLab does; the environment carries smoke mode and a figures folder per lesson."""
    figures = tmp_path_factory.mktemp("nbval")
    jobs = {path.stem: ([sys.executable, "-m", "pytest", str(path), "--nbval-lax", "--nbval-current-env",
                         f"--nbval-cell-timeout={CELL_TIMEOUT}", "-p", "no:cacheprovider", "-q", "--no-header"],
                        {"GANCOURSE_SMOKE": "1", "GANCOURSE_RUN_DIR": str(figures / path.stem)}) for path in LESSONS}
    return run_all(jobs, cwd=REPO, timeout=NOTEBOOK_TIMEOUT)


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", LESSONS, ids=_rel)
def test_notebook_passes_nbval_lax(path, nbval_runs):
    result = nbval_runs[path.stem]
    assert result.returncode == 0, (f"nbval --nbval-lax failed on {_rel(path)}:\n"
                                    f"{_ANSI.sub('', result.stdout)[-6000:]}{result.stderr[-2000:]}")


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", EXERCISES, ids=_rel)
def test_untouched_exercise_fails_only_in_graded_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
        kernel_manager_class=course.CurrentPythonKernelManager, resources={"metadata": {"path": str(REPO)}},
    )
    client.execute()
    failed = {index: output for index, output in _error_outputs(nb)}
    meta = {index: cell.metadata.get("nbgrader", {}) for index, cell in enumerate(nb.cells)}
    answers = {index for index, m in meta.items() if m.get("solution")}
    graded = {index for index, m in meta.items()
              if m.get("grade") and not m.get("solution") and nb.cells[index].cell_type == "code"}
    assert graded, f"{_rel(path)} has no autograded cells; an exercise must have checks."

    unexpected = sorted(set(failed) - answers - graded)
    assert not unexpected, f"{_rel(path)}: cells outside the exercises fail before the student writes anything " + "; ".join(
        f"{_describe(nb.cells[i], i)}: {failed[i]['ename']}: {failed[i]['evalue']}" for i in unexpected
    ) + ". Later cells must not depend on the exercise answers."
    passing = sorted(graded - set(failed))
    assert not passing, f"{_rel(path)}: graded checks pass with no answer written: " + "; ".join(
        _describe(nb.cells[i], i) for i in passing
    ) + ". A check must fail on the untouched exercise."


# --- the runner and the command line, on a throwaway course --------------------------------

def _sample_course(root: Path, lessons: dict[str, list[str]]) -> Path:
    """A minimal course folder: notebooks/<stem>.ipynb with the install and parameters cells."""
    (root / "notebooks").mkdir(parents=True)
    for stem, body in lessons.items():
        parameters = new_code_cell('import os\nSMOKE = os.environ.get("GANCOURSE_SMOKE") == "1"\nSTEPS = 2 if SMOKE else 50')
        parameters.metadata["tags"] = ["parameters"]
        nb = new_notebook(cells=[
            new_markdown_cell(f"# Lesson {stem}\n\n" + course.badge_markdown(f"notebooks/{stem}.ipynb")),
            new_code_cell(course.INSTALL_CELL), parameters, *(new_code_cell(src) for src in body),
        ])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, str(root / "notebooks" / f"{stem}.ipynb"))
    return root


def test_lessons_are_discovered_in_order_and_resolved_by_number_or_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _sample_course(tmp_path, {"02_dcgan": [], "01_gan_game": [], "10_later": []})
    (root / "notebooks" / "scratch.ipynb").write_text((root / "notebooks" / "01_gan_game.ipynb").read_text())
    found = course.lessons(root)
    assert [lesson.stem for lesson in found] == ["01_gan_game", "02_dcgan", "10_later"]
    first = found[0]
    assert (first.number, first.name, first.title) == (1, "gan_game", "Lesson 01_gan_game")
    assert first.solution == root.resolve() / "solutions" / "01_gan_game.ipynb"
    assert first.exercise == root.resolve() / "exercises" / "01_gan_game.ipynb"
    for spec in ("1", "01", "gan_game", "01_gan_game", "01_gan_game.ipynb", "notebooks/01_gan_game.ipynb"):
        assert course.resolve(spec, root) == first, spec
    with pytest.raises(course.UnknownLessonError, match="01_gan_game, 02_dcgan, 10_later"):
        course.resolve("7", root)
    other = tmp_path / "elsewhere" / "01_gan_game.ipynb"
    other.parent.mkdir()
    other.write_text((root / "notebooks" / "01_gan_game.ipynb").read_text())
    assert course.resolve(str(other), root) == other


def test_colab_url_and_badge():
    url = "https://colab.research.google.com/github/gancourse/gancourse/blob/main/notebooks/01_gan_game.ipynb"
    assert course.colab_url("notebooks/01_gan_game.ipynb") == url
    assert course.colab_url(REPO / "notebooks" / "01_gan_game.ipynb", root=REPO) == url
    assert course.BADGE_MARKDOWN("notebooks/01_gan_game.ipynb") == (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
    )


def test_verdict_is_the_last_verdict_line_printed_or_displayed():
    nb = new_notebook(cells=[new_code_cell("a"), new_code_cell("b"), new_markdown_cell("VERDICT: not output")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\nVERDICT: early\n")]
    nb.cells[1].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "  VERDICT: PASS (8/8 modes)"})]
    assert course.find_verdict(nb) == "VERDICT: PASS (8/8 modes)"
    assert course.find_verdict(new_notebook(cells=[new_code_cell("pass")])) is None


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_course_runner_reports_each_lesson_and_keeps_going_after_a_failure(tmp_path, capsys, monkeypatch):
    root = _sample_course(tmp_path / "course", {
        "01_works": [
            "import os, sys\nprint('CONTEXT=' + repr((sys.executable, os.getcwd(), os.environ['GANCOURSE_RUN_DIR'], SMOKE, STEPS)))",
            "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nfrom gancourse import save_figure\n"
            "save_figure(plt.figure(), 'check')",
            "print(f'VERDICT: PASS after {STEPS} steps')",
        ],
        "02_breaks": ["print('VERDICT: FAIL before the crash')", "1 / 0", "print('never')"],
    })
    out = tmp_path / "runs"
    monkeypatch.delenv("GANCOURSE_SMOKE")
    status = cli.main(["--root", str(root), "run", "--smoke", "--out", str(out), "--timeout", "120"])
    printed = capsys.readouterr().out
    assert status == 1, printed
    assert os.environ.get("GANCOURSE_SMOKE") is None, "the runner must restore the caller's environment"

    rows = {line.split()[0]: line for line in printed.splitlines() if line.startswith(("01_works", "02_breaks"))}
    assert "ok" in rows["01_works"].split() and "VERDICT: PASS after 2 steps" in rows["01_works"]
    assert "failed" in rows["02_breaks"].split() and "ZeroDivisionError" in rows["02_breaks"]

    executed = nbformat.read(str(out / "01_works" / "01_works.ipynb"), as_version=4)
    context = next(o["text"] for c in executed.cells for o in c.get("outputs", []) if "CONTEXT=" in o.get("text", ""))
    executable, cwd, run_dir, smoke, steps = ast.literal_eval(context.split("CONTEXT=", 1)[1].strip())
    assert executable == sys.executable and Path(cwd) == root.resolve()
    assert Path(run_dir) == (out / "01_works").resolve() and smoke is True and steps == 2
    assert (out / "01_works" / "figures" / "check.png").is_file()
    broken = nbformat.read(str(out / "02_breaks" / "02_breaks.ipynb"), as_version=4)
    assert _error_outputs(broken) and "never" not in json.dumps(broken.cells[-1].get("outputs", []))


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_run_lesson_passes_parameters_and_runs_a_path(tmp_path):
    root = _sample_course(tmp_path / "course", {"01_params": ["print(f'VERDICT: {STEPS} steps')"]})
    run = course.run_lesson(root / "notebooks" / "01_params.ipynb", out_dir=tmp_path / "runs",
                            smoke=True, parameters={"STEPS": 7})
    assert run.ok, run.error
    assert run.verdict == "VERDICT: 7 steps"
    assert run.output == (tmp_path / "runs" / "01_params" / "01_params.ipynb").resolve()


def test_cli_unknown_lesson_lists_the_known_ones(tmp_path, capsys):
    root = _sample_course(tmp_path, {"01_gan_game": [], "02_dcgan": []})
    assert cli.main(["--root", str(root), "run", "9"]) == 2
    err = capsys.readouterr().err
    assert "no lesson '9'" in err and "01_gan_game, 02_dcgan" in err


def test_cli_lessons_lists_titles(tmp_path, capsys):
    root = _sample_course(tmp_path, {"01_gan_game": []})
    assert cli.main(["--root", str(root), "lessons"]) == 0
    assert "01_gan_game" in capsys.readouterr().out
    empty = tmp_path / "empty"
    (empty / "notebooks").mkdir(parents=True)
    assert cli.main(["--root", str(empty), "lessons"]) == 1


def test_cli_without_a_command_shows_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "run" in capsys.readouterr().err


def test_cli_grade_rejects_a_missing_submissions_folder(tmp_path, capsys):
    status = cli.main(["--root", str(REPO), "grade", "01", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.csv")])
    assert status == 2
    assert "submissions folder" in capsys.readouterr().err
    assert not (tmp_path / "g.csv").exists()


def test_cli_exercises_builds_then_checks(tmp_path, capsys):
    root = tmp_path / "course"
    (root / "notebooks").mkdir(parents=True)
    (root / "solutions").mkdir()
    toy = REPO / "tests" / "fixtures" / "solutions" / "99_toy.ipynb"
    (root / "solutions" / toy.name).write_bytes(toy.read_bytes())
    assert cli.main(["--root", str(root), "exercises", "--check"]) == 1
    assert cli.main(["--root", str(root), "exercises"]) == 0
    assert (root / "exercises" / toy.name).is_file()
    assert cli.main(["--root", str(root), "exercises", "--check"]) == 0
    exercise = root / "exercises" / toy.name
    exercise.write_text(exercise.read_text().replace("Toy lesson", "Edited by hand"))
    capsys.readouterr()
    assert cli.main(["--root", str(root), "exercises", "--check"]) == 1
    assert "99_toy.ipynb" in capsys.readouterr().out
