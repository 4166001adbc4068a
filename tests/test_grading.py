"""The grading pipeline: nbgrader autogrades a temporary class made from the toy solution."""
from __future__ import annotations

import copy
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

from gancourse.exercises import build_exercise, notebook_text
from gancourse.grading import GradingError, find_submissions, grade, lesson_tasks, main, resolve_lesson

TOY = Path(__file__).parent / "fixtures" / "solutions" / "99_toy.ipynb"
TASKS = ["add_tests", "square_tests", "mean_loss_tests"]

ADD = "def add(a, b):\n    return a + b"
SQUARE = "def square(x):\n    return x ** 2"
LOSS = "def mean_loss(pred, target):\n    return ((pred - target) ** 2).mean()"
# Passes the visible check (zeros against ones) but not the hidden mse_loss comparison.
WRONG_LOSS = "def mean_loss(pred, target):\n    return (pred - target).abs().mean()"


def answered(**answers: str) -> nbformat.NotebookNode:
    """The generated exercise with the named solution cells filled in, as a student would."""
    nb = copy.deepcopy(build_exercise(TOY))
    todo = dict(answers)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in todo:
            cell.source = todo.pop(grade_id)
    assert not todo, f"no cells named {sorted(todo)}"
    return nb


def full(**overrides: str) -> nbformat.NotebookNode:
    answers = {"add_solution": ADD, "square_solution": SQUARE, "mean_loss_solution": LOSS}
    return answered(**{**answers, **overrides})


def install_toy(solutions: Path) -> None:
    """The toy solution and its judges, as an instructor's solutions folder holds them."""
    solutions.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOY, solutions / TOY.name)
    shutil.copytree(TOY.parent / "judges", solutions / "judges", dirs_exist_ok=True)


def put(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """Grade one class of submissions, covering both layouts and every way a submission breaks."""
    base = tmp_path_factory.mktemp("class")
    solutions, subs = base / "solutions", base / "submissions"
    install_toy(solutions)
    (subs / "ada").mkdir(parents=True)
    shutil.copy(TOY, subs / "ada" / TOY.name)
    put(build_exercise(TOY), subs / "ben.ipynb")
    put(full(mean_loss_solution=WRONG_LOSS), subs / "cleo" / "99_toy-Copy1.ipynb")
    put(full(add_solution="def add(a, b)\n    return a + b"), subs / "dan.ipynb")
    put(full(square_solution="while True:\n    pass\n" + SQUARE), subs / "eve" / TOY.name)
    (subs / "fay.ipynb").write_text('{"cells": [', encoding="utf-8")
    probe = (
        "import os, sys\n"
        "assert os.environ['GANCOURSE_SMOKE'] == '1'\n"
        f"assert sys.executable == {sys.executable!r}\n"
    )
    put(full(add_solution=probe + ADD), subs / "gus" / TOY.name)
    put(full(square_solution="import os\nos._exit(1)"), subs / "hal" / TOY.name)
    (subs / "jo").mkdir()
    deleted = full()
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "square_tests"]
    put(deleted, subs / "kim.ipynb")
    (subs / ".ipynb_checkpoints").mkdir()
    # right, but noisy: a warning and a line on stderr while the test calls it
    noisy = "import sys, warnings\ndef square(x):\n    warnings.warn('noisy but right')\n    print('debug', file=sys.stderr)\n    return x ** 2"
    put(full(square_solution=noisy), subs / "liv" / TOY.name)

    # A "python3" kernelspec that cannot start: grading must not depend on installed kernelspecs.
    bogus = base / "jupyter" / "kernels" / "python3"
    bogus.mkdir(parents=True)
    (bogus / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "broken", "language": "python"}))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCOURSE_SMOKE", "1")
        mp.setenv("JUPYTER_PATH", str(base / "jupyter"))
        start = time.perf_counter()
        rows = grade(
            "99", subs, base / "out" / "grades.csv", solutions_dir=solutions, timeout=10, workdir=base / "course",
            feedback=base / "feedback",
        )
        seconds = time.perf_counter() - start
    print(f"graded {len(rows)} students in {seconds:.1f}s")
    return {"rows": {r["student"]: r for r in rows}, "csv": base / "out" / "grades.csv", "course": base / "course",
            "feedback": base / "feedback"}


def scores(row: dict) -> list[float]:
    return [row[t] for t in TASKS]


@pytest.mark.grading
def test_csv_has_every_student_and_matches_rows(graded_class):
    with graded_class["csv"].open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        table = list(reader)
    assert reader.fieldnames == ["student", *TASKS, "total", "max", "note"]
    assert [r["student"] for r in table] == ["ada", "ben", "cleo", "dan", "eve", "fay", "gus", "hal", "jo", "kim", "liv"]
    for line in table:
        row = graded_class["rows"][line["student"]]
        assert float(line["total"]) == row["total"] and float(line["max"]) == 6.0
        assert line["note"] == row["note"]


@pytest.mark.grading
def test_solution_scores_full_marks(graded_class):
    ada = graded_class["rows"]["ada"]
    assert scores(ada) == [1.0, 2.0, 3.0] and ada["total"] == ada["max"] == 6.0
    assert ada["note"] == ""


@pytest.mark.grading
def test_untouched_exercise_scores_zero(graded_class):
    ben = graded_class["rows"]["ben"]
    assert scores(ben) == [0.0, 0.0, 0.0] and ben["total"] == 0.0


@pytest.mark.grading
def test_one_wrong_answer_loses_exactly_that_task(graded_class):
    cleo = graded_class["rows"]["cleo"]
    assert scores(cleo) == [1.0, 2.0, 0.0] and cleo["total"] == 3.0
    assert "graded 99_toy-Copy1.ipynb" in cleo["note"]
    # the note names the task that lost points and the judge's reason
    assert "mean_loss_tests: mean_loss gave" in cleo["note"] and "expected" in cleo["note"]
    assert "add_tests" not in cleo["note"] and "square_tests" not in cleo["note"]


@pytest.mark.grading
def test_syntax_error_loses_only_its_task(graded_class):
    assert scores(graded_class["rows"]["dan"]) == [0.0, 2.0, 3.0]
    assert "add_tests: NameError: name 'add' is not defined" in graded_class["rows"]["dan"]["note"]


@pytest.mark.grading
def test_infinite_loop_is_interrupted_and_loses_only_its_task(graded_class):
    eve = graded_class["rows"]["eve"]
    assert scores(eve) == [1.0, 0.0, 3.0]
    assert "timed out after 10s in square_solution" in eve["note"]


@pytest.mark.grading
def test_unreadable_and_missing_submissions_score_zero_and_a_dead_kernel_keeps_what_passed(graded_class):
    rows = graded_class["rows"]
    assert rows["fay"]["total"] == 0.0 and "not valid notebook JSON" in rows["fay"]["note"]
    assert rows["jo"]["total"] == 0.0 and "no notebook submitted" in rows["jo"]["note"]
    # hal's kernel dies in square_solution: add_tests, graded before, keeps its point; the rest score 0
    assert scores(rows["hal"]) == [1.0, 0.0, 0.0]
    assert "square_tests: KernelDied: the kernel died while square_solution ran" in rows["hal"]["note"]


@pytest.mark.grading
def test_deleted_test_cell_is_restored_and_named(graded_class):
    kim = graded_class["rows"]["kim"]
    assert scores(kim) == [1.0, 2.0, 3.0]  # the grader runs its own test cells, deleted or not
    assert "deleted test cells restored: square_tests" in kim["note"]


@pytest.mark.grading
def test_a_warning_or_stderr_output_does_not_fail_a_right_answer(graded_class):
    """nbgrader alone scores a test cell that printed to stderr 0; the grader keeps the text, marked."""
    assert scores(graded_class["rows"]["liv"]) == [1.0, 2.0, 3.0]
    nb = nbformat.read(next(graded_class["course"].glob("autograded/liv/*/*.ipynb")), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square_tests")
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "[stderr] debug" in text and "noisy but right" in text


@pytest.mark.grading
def test_kernel_is_this_interpreter_and_inherits_the_environment(graded_class):
    # gus's answer asserts GANCOURSE_SMOKE=1 and sys.executable inside the kernel, and the run
    # had a broken "python3" kernelspec first on JUPYTER_PATH.
    assert scores(graded_class["rows"]["gus"]) == [1.0, 2.0, 3.0]


@pytest.mark.grading
def test_nbgrader_release_is_byte_identical_to_the_exercise(graded_class):
    release = graded_class["course"] / "release" / "99_toy" / "99_toy.ipynb"
    assert release.read_text(encoding="utf-8") == notebook_text(build_exercise(TOY))
    assert (graded_class["course"] / "gradebook.db").is_file()
    assert (graded_class["course"] / "nbgrader_config.py").is_file()


def test_find_submissions_reads_both_layouts(tmp_path):
    (tmp_path / "amy").mkdir()
    (tmp_path / "amy" / "03_dcgan.ipynb").write_text("{}")
    (tmp_path / "bo" / "03_dcgan").mkdir(parents=True)
    (tmp_path / "bo" / "03_dcgan" / "03_dcgan.ipynb").write_text("{}")
    (tmp_path / "cy").mkdir()
    (tmp_path / "cy" / "a.ipynb").write_text("{}")
    (tmp_path / "cy" / "b.ipynb").write_text("{}")
    (tmp_path / "di.ipynb").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / "__MACOSX").mkdir()
    found = {s.student: s for s in find_submissions(tmp_path, "03_dcgan")}
    assert sorted(found) == ["amy", "bo", "cy", "di"]
    assert found["amy"].path.name == "03_dcgan.ipynb" and found["amy"].note == ""
    assert found["bo"].path == tmp_path / "bo" / "03_dcgan" / "03_dcgan.ipynb"
    assert found["cy"].path is None and "several other notebooks" in found["cy"].note
    assert found["di"].path == tmp_path / "di.ipynb"


def test_lesson_lookup_and_tasks(tmp_path):
    shutil.copy(TOY, tmp_path / TOY.name)
    assert resolve_lesson("99", tmp_path) == tmp_path / TOY.name
    assert resolve_lesson("99_toy.ipynb", tmp_path) == tmp_path / TOY.name
    with pytest.raises(GradingError, match="lessons: 99_toy"):
        resolve_lesson("04_wgan", tmp_path)
    assert [(t.grade_id, t.points) for t in lesson_tasks(TOY)] == [(t, float(p)) for t, p in zip(TASKS, [1, 2, 3])]


def test_grade_refuses_bad_arguments_before_starting(tmp_path):
    shutil.copy(TOY, tmp_path / TOY.name)
    with pytest.raises(GradingError, match="does not exist"):
        grade("99_toy", tmp_path / "nowhere", tmp_path / "g.csv", solutions_dir=tmp_path)
    (tmp_path / "subs").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "gradebook.db").write_text("")
    with pytest.raises(GradingError, match="not empty"):
        grade("99_toy", tmp_path / "subs", tmp_path / "g.csv", solutions_dir=tmp_path, workdir=tmp_path / "busy")
    with pytest.raises(ValueError, match="timeout"):
        grade("99_toy", tmp_path / "subs", tmp_path / "g.csv", solutions_dir=tmp_path, timeout=0)


def test_command_line_reports_a_bad_lesson(tmp_path, capsys):
    shutil.copy(TOY, tmp_path / TOY.name)
    assert main(["05", str(tmp_path), "--solutions", str(tmp_path)]) == 2
    assert "lessons: 99_toy" in capsys.readouterr().err


@pytest.mark.grading
def test_feedback_html_per_student_shows_scores_but_not_the_hidden_tests(graded_class):
    import html
    import re

    folder = graded_class["feedback"]
    text = {p.stem: html.unescape(re.sub(r"<[^>]+>", "", p.read_text(encoding="utf-8"))) for p in folder.glob("*.html")}
    graded = {s for s, r in graded_class["rows"].items() if "not valid notebook JSON" not in r["note"]
              and "no notebook submitted" not in r["note"]}
    assert set(text) == graded  # one page per graded student; none for an unreadable or missing notebook
    assert "Score: 6.0 / 6.0" in text["ada"] and "Score: 0.0 / 3.0" in text["cleo"]
    hidden = ["BEGIN HIDDEN", "checks.probe", "_p.save"]  # the toy solution's hidden tests
    assert "the grader's verdict: passed" in text["ada"] and "the grader's verdict: mean_loss gave" in text["cleo"]
    assert not [h for s in text.values() for h in hidden if h in s]


@pytest.mark.grading
def test_parallel_grading_gives_the_same_rows_and_unchanged_work_is_not_graded_again(tmp_path, monkeypatch):
    import gancourse.grading as grading

    solutions, subs = tmp_path / "solutions", tmp_path / "subs"
    install_toy(solutions)
    put(full(), subs / "ann" / TOY.name)
    put(full(mean_loss_solution=WRONG_LOSS), subs / "bob" / TOY.name)
    put(full(add_solution="def add(a, b)\n    return a + b"), subs / "cat" / TOY.name)
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    serial = grade("99", subs, tmp_path / "a" / "grades.csv", solutions_dir=solutions, timeout=30)
    parallel = grade("99", subs, tmp_path / "b" / "grades.csv", solutions_dir=solutions, timeout=30, jobs=3,
                     workdir=tmp_path / "work")
    # the same scores; notes may quote other numbers, since each class draws its own judged inputs
    assert [{**r, "note": r["note"][:30]} for r in parallel] == [{**r, "note": r["note"][:30]} for r in serial]
    assert [r["total"] for r in serial] == [6.0, 3.0, 5.0]
    assert len(list((tmp_path / "work").glob("worker-*"))) == 3  # a course folder per worker

    graded = []
    real = grading._grade_one
    monkeypatch.setattr(grading, "_grade_one", lambda plan, course, sub, sid: graded.append(sub.student)
                        or real(plan, course, sub, sid))
    again = grade("99", subs, tmp_path / "b" / "grades.csv", solutions_dir=solutions, timeout=30)
    assert again == parallel and graded == []  # nothing changed: the remembered rows, no kernel started
    put(full(), subs / "bob" / TOY.name)  # bob fixes his answer
    fixed = grade("99", subs, tmp_path / "b" / "grades.csv", solutions_dir=solutions, timeout=30)
    assert graded == ["bob"] and [r["total"] for r in fixed] == [6.0, 6.0, 5.0]
    grade("99", subs, tmp_path / "b" / "grades.csv", solutions_dir=solutions, timeout=60)  # other settings
    assert graded == ["bob", "ann", "bob", "cat"]
    graded.clear()
    grade("99", subs, tmp_path / "b" / "grades.csv", solutions_dir=solutions, timeout=60, regrade=True)
    assert graded == ["ann", "bob", "cat"]


@pytest.mark.grading
def test_the_grader_decides_smoke_mode_not_the_environment_or_the_notebook(tmp_path, monkeypatch):
    solutions, subs = tmp_path / "solutions", tmp_path / "subs"
    install_toy(solutions)
    sees_full = "import os\nassert os.environ['GANCOURSE_SMOKE'] == '0' and SMOKE is False\n" + ADD
    put(full(add_solution=sees_full), subs / "una" / TOY.name)
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    rows = grade("99", subs, tmp_path / "g.csv", solutions_dir=solutions, timeout=30, smoke=False)
    assert rows[0]["total"] == 6.0, rows[0]["note"]
