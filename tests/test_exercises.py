"""The exercise builder: nbgrader strips answers and hidden tests, deterministically."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from gancourse.exercises import (
    ExerciseBuildError,
    build_exercise,
    build_exercises,
    main,
    notebook_text,
    stale_exercises,
)

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "solutions" / "99_toy.ipynb"
REPO = Path(__file__).resolve().parents[1]


def cells_by_name(nb) -> dict:
    """Cells keyed by nbgrader grade_id where they have one, else by cell id."""
    return {c.metadata.get("nbgrader", {}).get("grade_id", c.get("id")): c for c in nb.cells}


def all_source(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


def test_fixture_matches_its_generator_script():
    spec = importlib.util.spec_from_file_location("make_toy_solution", FIXTURES / "make_toy_solution.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert notebook_text(module.build()) == TOY.read_text(encoding="utf-8")


def test_solutions_become_nbgrader_stubs():
    cells = cells_by_name(build_exercise(TOY))
    add = cells["add_solution"].source
    assert add.startswith("def add(a, b):")  # the signature outside the solution region stays
    assert "# YOUR CODE HERE\n    raise NotImplementedError()" in add
    assert "return a + b" not in add
    assert "BEGIN SOLUTION" not in all_source(build_exercise(TOY))
    assert "return ((pred - target) ** 2).mean()" not in cells["mean_loss_solution"].source


def test_hidden_tests_go_visible_checks_stay():
    nb = build_exercise(TOY)
    cells = cells_by_name(nb)
    assert cells["add_tests"].source == 'assert add(2, 3) == 5, "add(2, 3) should be 5"'
    assert "square(torch.tensor([1.0, 2.0]))" in cells["square_tests"].source
    assert "HIDDEN TESTS" not in all_source(nb)
    assert "add(-1, 1)" not in all_source(nb)
    assert "mse_loss" not in all_source(nb)


def test_tags_and_nbgrader_metadata_survive():
    nb = build_exercise(TOY)
    cells = cells_by_name(nb)
    assert cells["parameters"].metadata["tags"] == ["parameters"]
    test_meta = cells["mean_loss_tests"].metadata
    assert test_meta["nbgrader"]["points"] == 3 and test_meta["nbgrader"]["grade"] is True
    assert len(test_meta["nbgrader"]["checksum"]) == 32
    assert test_meta["editable"] is False and test_meta["deletable"] is False
    assert cells["add_solution"].metadata["nbgrader"]["solution"] is True
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert [c.get("id") for c in nb.cells] == [c.get("id") for c in nbformat.read(TOY, as_version=4).cells]


def test_outputs_and_run_records_are_removed(tmp_path):
    nb = nbformat.read(TOY, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
            cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
            cell.metadata["papermill"] = {"duration": 1.5}
    nb.metadata["papermill"] = {"duration": 3.0}
    ran = tmp_path / "99_toy.ipynb"
    nbformat.write(nb, ran)
    exercise = build_exercise(ran)
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata and "papermill" not in cell.metadata
    assert "papermill" not in exercise.metadata
    assert notebook_text(exercise) == notebook_text(build_exercise(TOY))


def test_build_is_byte_for_byte_deterministic(tmp_path):
    first = build_exercises(TOY.parent, tmp_path / "a")
    second = build_exercises(TOY.parent, tmp_path / "b")
    assert [p.name for p in first] == ["99_toy.ipynb"]
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[0].read_bytes() == notebook_text(build_exercise(TOY)).encode()
    before = first[0].stat().st_mtime_ns
    build_exercises(TOY.parent, tmp_path / "a")
    assert first[0].stat().st_mtime_ns == before  # unchanged content is not rewritten


def test_cells_without_ids_get_stable_ids(tmp_path):
    raw = json.loads(TOY.read_text(encoding="utf-8"))
    for cell in raw["cells"]:
        del cell["id"]
    source = tmp_path / "noids.ipynb"
    source.write_text(json.dumps(raw), encoding="utf-8")
    first, second = notebook_text(build_exercise(source)), notebook_text(build_exercise(source))
    assert first == second
    ids = [c["id"] for c in json.loads(first)["cells"]]
    assert len(set(ids)) == len(ids)


def test_stale_exercises_finds_missing_edited_and_orphaned(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    shutil.copy(TOY, solutions / TOY.name)
    problems = stale_exercises(solutions, exercises)
    assert len(problems) == 1 and "missing" in problems[0]

    build_exercises(solutions, exercises)
    assert stale_exercises(solutions, exercises) == []

    target = exercises / TOY.name
    target.write_text(target.read_text().replace("raise NotImplementedError()", "return a + b", 1))
    problems = stale_exercises(solutions, exercises)
    assert len(problems) == 1
    assert "99_toy.ipynb differs" in problems[0] and "add_solution" in problems[0]

    build_exercises(solutions, exercises)
    shutil.copy(target, exercises / "42_gone.ipynb")
    problems = stale_exercises(solutions, exercises)
    assert len(problems) == 1 and "42_gone.ipynb has no solution" in problems[0]


def test_broken_solution_is_named_not_crashing(tmp_path):
    nb = nbformat.read(TOY, as_version=4)
    cells = cells_by_name(nb)
    cells["square_solution"].source = cells["square_solution"].source.replace("    ### END SOLUTION", "")
    (tmp_path / "solutions").mkdir()
    broken = tmp_path / "solutions" / "07_broken.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(ExerciseBuildError, match="07_broken.ipynb"):
        build_exercise(broken)
    problems = stale_exercises(tmp_path / "solutions", tmp_path / "exercises")
    assert len(problems) == 1 and "07_broken.ipynb cannot be built" in problems[0]


def test_command_line_check_and_build(tmp_path, capsys):
    args = ["--solutions", str(TOY.parent), "--exercises", str(tmp_path)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert "99_toy.ipynb" in capsys.readouterr().out


def test_repository_exercises_are_up_to_date():
    problems = stale_exercises(REPO / "solutions", REPO / "exercises")
    assert problems == [], "\n".join(problems)
