"""Time `gancourse grade` on a generated class of lesson 01 submissions (smoke mode, sandboxed).

    .venv/bin/python benchmarks/grading_class.py --students 100 --jobs 2

A third of the class submits the solution, a third the untouched exercise, a third the solution with one
wrong answer (a task chosen per student). Prints the wall time and the score histogram.
"""
from __future__ import annotations

import argparse
import collections
import copy
import tempfile
import time
from pathlib import Path

import nbformat

from gancourse.grading import grade

REPO = Path(__file__).resolve().parent.parent
WRONG = {
    "task1_solution": "def discriminator_loss(real_logits, fake_logits):\n    return real_logits.mean() - fake_logits.mean()",
    "task3_solution": "def optimal_discriminator(p_data, p_g):\n    return p_g / (p_data + p_g)",
}


def make_class(folder: Path, students: int) -> None:
    solution = nbformat.read(str(REPO / "solutions" / "01_gan_game.ipynb"), as_version=4)
    exercise = nbformat.read(str(REPO / "exercises" / "01_gan_game.ipynb"), as_version=4)
    for i in range(students):
        nb = copy.deepcopy(solution if i % 3 != 1 else exercise)
        if i % 3 == 2:
            grade_id = list(WRONG)[i % len(WRONG)]
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                    cell.source = WRONG[grade_id]
        target = folder / f"student{i:03d}" / "01_gan_game.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_class(Path(tmp) / "class", args.students)
        start = time.perf_counter()
        rows = grade("01", Path(tmp) / "class", Path(tmp) / "grades.csv", solutions_dir=REPO / "solutions",
                     timeout=120, jobs=args.jobs, smoke=True, progress=True)
        seconds = time.perf_counter() - start
    totals = collections.Counter(r["total"] for r in rows)
    print(f"graded {len(rows)} submissions of lesson 01 in {seconds:.0f} s ({seconds / 60:.1f} min), jobs={args.jobs}")
    print("totals:", dict(sorted(totals.items())))


if __name__ == "__main__":
    main()
