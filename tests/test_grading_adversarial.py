"""A class of determined cheaters, graded beside honest students (the toy lesson, smoke mode).

Every cheat is paired with the same submission without the cheat. The floors: each cheat scores exactly
what the test expects and never more than its cheat-free twin; the honest students' rows are the same
whether or not the cheaters were graded first in the class. The submissions are generated here, not
committed as notebooks.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from gancourse.grading import grade
from test_grading import ADD, LOSS, SQUARE, TASKS, WRONG_LOSS, full, install_toy, put

WRONG_ADD = "def add(a, b):\n    return a - b"
WRONG_SQUARE = "def square(x):\n    return x + x"

# An input transformer that empties every cell run after it: the test cells included.
BLANK_LATER_CELLS = (
    "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"
)
# Everything the tests compare with answers True.
PATCH_TORCH = (
    "import torch\n"
    "torch.allclose = lambda *a, **k: True\n"
    "torch.equal = lambda *a, **k: True\n"
    "torch.Tensor.__eq__ = lambda *a, **k: True\n"
)
# The grader's probe replaced by one that saves nothing, and another that saves made-up outputs.
SILENCE_PROBE = (
    "import gancourse.checks as _c\n"
    "class _Quiet:\n"
    "    def __init__(self, task): self.inputs = {'pairs': [], 'xs': []}\n"
    "    def __getitem__(self, k): return []\n"
    "    def save(self, **kw): pass\n"
    "_c.probe = _Quiet\n"
    "checks = _c\n"
)
FORGE_OUTPUTS = (
    "import pathlib, torch\n"
    "pathlib.Path('grading').mkdir(exist_ok=True)\n"
    "torch.save({'losses': [torch.tensor(0.0)] * 3}, 'grading/mean_loss_tests.out.pt')\n"
    "import os; os.chmod('grading', 0o555)\n"  # and try to stop the real test cell from writing
)
# A pickle that runs code when unpickled: the grader must never execute it.
PICKLE_BOMB = (
    "import os, pathlib, pickle\n"
    "class _Bomb:\n"
    "    def __reduce__(self):\n"
    "        return (os.system, ('touch {marker}',))\n"
    "pathlib.Path('grading').mkdir(exist_ok=True)\n"
    "import gancourse.checks as _gc\n"
    "def _save(self, **kw):\n"
    "    pathlib.Path(f'grading/{{self.task}}.out.pt').write_bytes(pickle.dumps({{'losses': _Bomb()}}))\n"
    "_gc.Probe.save = _save\n"
)
STUBBORN = "import time\nwhile True:\n    try:\n        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass\n"


def cheats(marker: Path) -> dict[str, tuple[dict, dict, list[float], list[str]]]:
    """name -> (answers with the cheat, the same answers without it, expected scores, phrases of the note)."""
    return {
        # category 2: what an answer cell does to the kernel cannot raise a score
        "transformer": (dict(add_solution=BLANK_LATER_CELLS + ADD, square_solution=WRONG_SQUARE,
                             mean_loss_solution=WRONG_LOSS),
                        dict(add_solution=ADD, square_solution=WRONG_SQUARE, mean_loss_solution=WRONG_LOSS),
                        [0.0, 0.0, 0.0], ["add_tests: the test cell saved nothing to judge"]),
        "patcher": (dict(add_solution=PATCH_TORCH + WRONG_ADD, square_solution=WRONG_SQUARE,
                         mean_loss_solution=WRONG_LOSS),
                    dict(add_solution=WRONG_ADD, square_solution=WRONG_SQUARE, mean_loss_solution=WRONG_LOSS),
                    [0.0, 0.0, 0.0], ["add_tests: AssertionError", "square_tests: square is wrong", "mean_loss gave"]),
        "silencer": (dict(add_solution=SILENCE_PROBE + ADD, square_solution=WRONG_SQUARE),
                     dict(add_solution=ADD, square_solution=WRONG_SQUARE),
                     [0.0, 0.0, 0.0], ["add_tests: the test cell saved nothing to judge"]),
        "forger": (dict(mean_loss_solution=FORGE_OUTPUTS + WRONG_LOSS),
                   dict(mean_loss_solution=WRONG_LOSS),
                   [1.0, 2.0, 0.0], ["mean_loss_tests: "]),
        "bomber": (dict(mean_loss_solution=PICKLE_BOMB.format(marker=marker) + LOSS),
                   dict(mean_loss_solution=LOSS),
                   [1.0, 2.0, 0.0], ["mean_loss_tests: the saved outputs could not be read"]),
        # the library's (here torch's) own implementation of the task, called directly or dodged
        "delegator": (dict(mean_loss_solution="def mean_loss(pred, target):\n"
                                              "    return torch.nn.functional.mse_loss(pred, target)"),
                      dict(mean_loss_solution=LOSS),
                      [1.0, 2.0, 0.0], ["calls the library's own torch.nn.functional.mse_loss"]),
        "aliaser": (dict(mean_loss_solution="from torch.nn import functional as Fn\n"
                                            "def mean_loss(pred, target):\n    return Fn.mse_loss(pred, target)"),
                    dict(mean_loss_solution=LOSS),
                    [1.0, 2.0, 0.0], ["calls the library's own torch.nn.functional.mse_loss"]),
        "dodger": (dict(mean_loss_solution="import torch.nn.functional as Fn\n"
                                           "def mean_loss(pred, target):\n"
                                           "    return getattr(Fn, 'mse' + '_loss')(pred, target)"),
                   dict(mean_loss_solution=LOSS),
                   [1.0, 2.0, 0.0], ["looks names up dynamically (getattr with a computed name)"]),
        # category 3: a kernel that ignores the interrupt costs only the tasks not yet graded
        "stubborn": (dict(square_solution=STUBBORN + SQUARE), dict(square_solution=SQUARE),
                     [1.0, 0.0, 0.0], ["square_solution ran past 10s and ignored the interrupt"]),
    }


def edited_setup() -> tuple:
    """Setup and parameters cells edited, a right answer placed outside the answer cells, the test cell deleted."""
    nb = full(add_solution=WRONG_ADD)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\nSMOKE = True"
        if cell.source.startswith("import torch"):
            cell.source += "\nchecks = None"
    right_add = nbformat.v4.new_code_cell(ADD)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "add_tests")
    nb.cells.insert(index, right_add)
    return nb, full(add_solution=WRONG_ADD)


HONEST = {"zara": full(), "zeke": full(mean_loss_solution=WRONG_LOSS), "zoe": full(square_solution=WRONG_SQUARE)}


@pytest.fixture(scope="module")
def adversarial_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    marker = base / "bomb-went-off"
    solutions = base / "solutions"
    install_toy(solutions)
    with_cheats, cheat_free, honest_only = base / "class", base / "twins", base / "honest"
    expected = cheats(marker)
    for name, (cheat, clean, _, _) in expected.items():
        put(full(**cheat), with_cheats / f"a_{name}.ipynb")
        put(full(**clean), cheat_free / f"a_{name}.ipynb")
    edited, clean = edited_setup()
    put(edited, with_cheats / "a_editor.ipynb")
    put(clean, cheat_free / "a_editor.ipynb")
    for name, nb in HONEST.items():
        put(nb, with_cheats / f"{name}.ipynb")
        put(nb, honest_only / f"{name}.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCOURSE_SMOKE", "1")
        run = {folder.name: {r["student"]: r for r in grade("99", folder, base / folder.name / "grades.csv",
                                                              solutions_dir=solutions, timeout=10, jobs=2)}
               for folder in (with_cheats, cheat_free, honest_only)}
    return {"run": run, "expected": expected, "marker": marker}


def _scores(row):
    return [row[t] for t in TASKS]


@pytest.mark.grading
@pytest.mark.parametrize("name", list(cheats(Path("/nonexistent"))))
def test_each_cheat_scores_exactly_what_is_expected_and_no_more_than_without_it(adversarial_class, name):
    row = adversarial_class["run"]["class"][f"a_{name}"]
    twin = adversarial_class["run"]["twins"][f"a_{name}"]
    _, _, scores, phrases = adversarial_class["expected"][name]
    assert _scores(row) == scores, row["note"]
    assert row["total"] <= twin["total"]
    for phrase in phrases:
        assert phrase in row["note"], row["note"]


@pytest.mark.grading
def test_editing_setup_cells_or_adding_cells_changes_nothing(adversarial_class):
    row = adversarial_class["run"]["class"]["a_editor"]
    assert _scores(row) == [0.0, 2.0, 3.0] == _scores(adversarial_class["run"]["twins"]["a_editor"])
    assert "added or edited cell(s) outside the answers not run" in row["note"]
    assert "add_tests: AssertionError" in row["note"]


@pytest.mark.grading
def test_honest_students_are_unaffected_by_the_cheaters_graded_before_them(adversarial_class):
    run = adversarial_class["run"]
    for name in HONEST:
        assert _scores(run["class"][name]) == _scores(run["honest"][name])
    assert [run["honest"][n]["total"] for n in HONEST] == [6.0, 3.0, 4.0]


@pytest.mark.grading
def test_a_pickle_from_the_kernel_is_never_executed_by_the_grader(adversarial_class):
    assert not adversarial_class["marker"].exists()
