"""Build student exercise notebooks from the nbgrader source notebooks in solutions/.

The work is done by nbgrader's own preprocessors, in the order `nbgrader generate_assignment`
runs them, so exercises/NN_name.ipynb is exactly the notebook a student receives from nbgrader.
Run `python -m gancourse.exercises` to rebuild, `python -m gancourse.exercises --check` to verify.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

REBUILD_HINT = "make exercises"

# Execution records that are not outputs but would still leak run times into a committed notebook.
_RUN_METADATA = {"collapsed", "scrolled", "execution", "ExecuteTime", "papermill"}
_NOTEBOOK_RUN_METADATA = ("papermill", "widgets")


class ExerciseBuildError(ValueError):
    """A solution notebook that nbgrader cannot turn into an exercise."""


def read_source_notebook(path: str | Path) -> NotebookNode:
    """Read a solution notebook as nbformat v4, giving cells without an id a stable one.

    nbformat would invent random ids for such cells, which would make the exercise change on
    every build; ids derived from the cell's position and text keep the output reproducible.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExerciseBuildError(f"{path} is not a readable notebook ({err}); fix or restore the file.") from err
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        raise ExerciseBuildError(f"{path} is not an nbformat 4 notebook; open and save it in Jupyter first.")
    if raw.get("nbformat_minor", 0) >= 5:
        taken = {cell["id"] for cell in raw.get("cells", []) if "id" in cell}
        for index, cell in enumerate(raw.get("cells", [])):
            if "id" not in cell:
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else str(source)
                digest = hashlib.sha1(f"{index}:{cell.get('cell_type')}:{text}".encode()).hexdigest()[:8]
                new_id = digest if digest not in taken else f"{digest}-{index}"
                cell["id"] = new_id
                taken.add(new_id)
    # Round trip through nbformat's reader: it joins multi-line sources and validates.
    errors: dict = {}
    nb = nbformat.reads(json.dumps(raw), as_version=4, capture_validation_error=errors)
    if "ValidationError" in errors:
        raise ExerciseBuildError(f"{path} is not a valid notebook: {errors['ValidationError'].message}")
    return nb


def exercise_from_notebook(source: NotebookNode) -> NotebookNode:
    """Apply nbgrader's release preprocessors to a copy of a source notebook and return the copy."""
    nb = copy.deepcopy(source)
    # Same order as nbgrader's GenerateAssignment, minus the steps that need a database
    # (SaveCells) or options the course does not use (header/footer, AUTOTEST templates).
    # Checksums are computed before and after removing hidden tests, as nbgrader does.
    steps = [
        LockCells(),
        ClearSolutions(),
        ClearOutput(remove_metadata_fields=set(_RUN_METADATA)),
        CheckCellMetadata(),
        ComputeChecksums(),
        ClearHiddenTests(),
        ClearMarkScheme(),
        ComputeChecksums(),
        CheckCellMetadata(),
    ]
    resources: dict = {}
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    for key in _NOTEBOOK_RUN_METADATA:
        nb.metadata.pop(key, None)
    return nb


def build_exercise(solution_path: str | Path) -> NotebookNode:
    """Return the student version of one solution notebook: solutions stubbed, hidden tests gone."""
    source = read_source_notebook(solution_path)
    try:
        nb = exercise_from_notebook(source)
        for cell in nb.cells:  # the "Open in Colab" badge must open the exercise, not the answers
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace("/solutions/", "/exercises/")
        return nb
    except ExerciseBuildError:
        raise
    except Exception as err:  # nbgrader raises RuntimeError/ValidationError with a terse message
        raise ExerciseBuildError(
            f"nbgrader could not build an exercise from {solution_path}: {err}. Check that every "
            "### BEGIN SOLUTION / ### BEGIN HIDDEN TESTS has its END line and sits in a cell with "
            "nbgrader metadata (solution or grade cell)."
        ) from err


def notebook_text(nb: NotebookNode) -> str:
    """Serialise a notebook the one way the course writes notebooks: sorted keys, final newline."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def write_notebook(nb: NotebookNode, path: str | Path) -> bool:
    """Write `nb` to `path` unless the file already holds exactly that text; return True if written."""
    path = Path(path)
    data = notebook_text(nb).encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def _solution_paths(solutions_dir: Path) -> list[Path]:
    return sorted(p for p in solutions_dir.glob("*.ipynb") if p.is_file())


def build_exercises(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises") -> list[Path]:
    """Generate exercises/NN_name.ipynb for every solutions/NN_name.ipynb; return the exercise paths.

    Files whose content is already current are left untouched, so their timestamps stay put.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(
            f"no solutions folder at {solutions_dir}; pass solutions_dir= the folder of source notebooks."
        )
    written = []
    for solution in _solution_paths(solutions_dir):
        target = exercises_dir / solution.name
        write_notebook(build_exercise(solution), target)
        written.append(target)
    return written


def _first_difference(expected: str, actual: str) -> str:
    """Name the first cell (by index and grade_id) where two notebook texts differ."""
    try:
        want, have = json.loads(expected), json.loads(actual)
    except json.JSONDecodeError:
        return "it is not valid JSON"
    want_cells, have_cells = want.get("cells", []), have.get("cells", [])
    for index, (a, b) in enumerate(zip(want_cells, have_cells)):
        if a != b:
            grade_id = a.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            return f"first difference in cell {index}" + (f" ({grade_id})" if grade_id else "")
    if len(want_cells) != len(have_cells):
        return f"it has {len(have_cells)} cells instead of {len(want_cells)}"
    return "the notebook metadata or formatting differs"


def stale_exercises(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises") -> list[str]:
    """List, in words, every way exercises/ disagrees with what solutions/ generates (empty: in sync)."""
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    problems = []
    solutions = _solution_paths(solutions_dir) if solutions_dir.is_dir() else []
    for solution in solutions:
        target = exercises_dir / solution.name
        try:
            expected = notebook_text(build_exercise(solution))
        except ExerciseBuildError as err:
            problems.append(f"{solution} cannot be built into an exercise: {err}")
            continue
        if not target.is_file():
            problems.append(f"{target} is missing; generate it from {solution} with `{REBUILD_HINT}`.")
            continue
        actual = target.read_bytes().decode("utf-8", errors="replace")
        if actual != expected:
            problems.append(
                f"{target} differs from what {solution} generates ({_first_difference(expected, actual)}); "
                f"exercises are never edited by hand: change the solution, then run `{REBUILD_HINT}`."
            )
    names = {p.name for p in solutions}
    for orphan in sorted(exercises_dir.glob("*.ipynb")) if exercises_dir.is_dir() else []:
        if orphan.name not in names:
            problems.append(
                f"{orphan} has no solution {solutions_dir / orphan.name}; add the solution or delete the exercise."
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: rebuild exercises/, or with --check only report stale ones (exit status 1)."""
    parser = argparse.ArgumentParser(prog="python -m gancourse.exercises", description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", default="solutions", help="folder of nbgrader source notebooks")
    parser.add_argument("--exercises", default="exercises", help="folder the student notebooks go to")
    parser.add_argument("--check", action="store_true", help="report stale exercises instead of rebuilding")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_exercises(args.solutions, args.exercises)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for path in build_exercises(args.solutions, args.exercises):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
