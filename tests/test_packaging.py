"""The repository's promises to a newcomer: one dependency list, two commands, notebooks that
open in Colab, install only what is missing, run in smoke mode, and are committed clean."""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from gancourse.course import BRANCH, INSTALL_CELL, REPO_ENV, REPO_URL, colab_url

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

REPO = Path(__file__).resolve().parent.parent

# pyproject (PyPI) name -> conda-forge name, where they differ. matplotlib-base is matplotlib
# without a GUI toolkit, which a course run in Jupyter does not need.
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
NEVER_PIP_INSTALLED = {"torch", "torchvision", "pytorch"}
# What the install cell may add on a machine that already has torch (Colab): import name -> package.
LIGHT_DEPENDENCIES = {
    "torchmetrics": "torchmetrics", "ipywidgets": "ipywidgets", "tqdm": "tqdm",
    "sklearn": "scikit-learn", "matplotlib": "matplotlib", "nbformat": "nbformat",
}
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9][0-9A-Za-z.]*))?\s*$")

NOTEBOOKS = sorted(
    path.relative_to(REPO).as_posix()
    for folder in ("notebooks", "solutions", "exercises")
    for path in (REPO / folder).glob("*.ipynb")
)


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _floors(requirements: list[str], where: str) -> dict[str, str | None]:
    """{normalised name: version floor or None}; anything but `name` or `name>=X` is an error."""
    floors = {}
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        assert match, f"{where}: {requirement!r} is not of the form 'name>=floor'; keep both files in that form."
        floors[match.group(1).lower().replace("_", "-")] = match.group(2)
    return floors


def _pyproject_floors(extras: tuple[str, ...] = ("course", "dev")) -> dict[str, str | None]:
    """The dependencies with their floors; an extra listing a package again raises its floor (the course
    extra asks for ipywidgets 8, which JupyterLab 4 needs, over the kernel's 7.7)."""
    project = _pyproject()["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += list(project.get("optional-dependencies", {}).get(extra, []))
    return _floors(listed, "pyproject.toml")


def _environment() -> dict:
    path = REPO / "environment.yml"
    assert path.is_file(), "environment.yml is missing; conda users create their environment from it."
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _conda_specs() -> tuple[dict[str, str | None], list]:
    """The conda dependencies as {name: floor} and the pip section's entries."""
    conda, pip = [], []
    for entry in _environment()["dependencies"]:
        if isinstance(entry, dict):
            pip.extend(entry.get("pip", []))
        else:
            conda.append(entry)
    return _floors(conda, "environment.yml"), pip


def _notebook(rel: str) -> nbformat.NotebookNode:
    return nbformat.read(str(REPO / rel), as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


# --- one dependency list ---------------------------------------------------------------------

def test_environment_yml_lists_pyprojects_dependencies_with_the_same_floors():
    wanted = {CONDA_NAMES.get(name, name): floor for name, floor in _pyproject_floors().items()}
    have, _ = _conda_specs()
    have = {name: floor for name, floor in have.items() if name not in {"python", "pip"}}
    missing = sorted(set(wanted) - set(have))
    extra = sorted(set(have) - set(wanted))
    assert not missing and not extra, (
        f"environment.yml and pyproject.toml disagree: missing from environment.yml {missing}, "
        f"not in pyproject.toml {extra}. pyproject.toml is the source: copy its list, renaming {CONDA_NAMES}."
    )
    different = {name: (wanted[name], have[name]) for name in wanted if wanted[name] != have[name]}
    assert not different, f"version floors differ (pyproject, environment.yml): {different}"


def test_environment_yml_python_floor_matches_requires_python():
    requires = _pyproject()["project"]["requires-python"].replace(" ", "")
    assert requires.startswith(">="), f"requires-python {requires!r} should be a plain floor like '>=3.10'."
    have, _ = _conda_specs()
    assert "python" in have, "environment.yml must pin python with the same floor as requires-python."
    assert have["python"] == requires.removeprefix(">="), (
        f"environment.yml has python>={have['python']} but pyproject.toml requires-python is {requires}."
    )
    assert "pip" in have, "environment.yml needs pip for its editable install of the course library."


def test_environment_yml_installs_only_the_course_itself_with_pip():
    env = _environment()
    assert env["name"] == "gancourse"
    assert env["channels"] == ["conda-forge"], "one channel keeps the solve reproducible; use conda-forge only."
    _, pip = _conda_specs()
    assert pip == ["-e ."], f"the pip section should hold only '-e .' (dependencies come from conda), got {pip}."


def test_console_script_points_at_the_cli():
    target = _pyproject()["project"]["scripts"]["gancourse"]
    module, _, attr = target.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


# --- two commands ----------------------------------------------------------------------------

def test_makefile_has_the_course_targets():
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z_][\w-]*)\s*:(?!=)", text, flags=re.MULTILINE))
    missing = {"course", "test", "lab", "exercises"} - targets
    assert not missing, f"Makefile lacks the targets {sorted(missing)}."


def test_ci_runs_make_test():
    path = REPO / ".ci" / "run"
    assert path.is_file(), ".ci/run is missing; CI runs the README's test command through it."
    commands = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert "make test" in commands, f".ci/run must call `make test` (the README's command); it runs {commands}."


def _readme_commands(text: str) -> list[str]:
    """Shell commands in the README's fenced code blocks, in order, prompts and comments removed."""
    commands, fence, shell = [], None, False
    for line in text.splitlines():
        stripped = line.strip()
        opener = re.match(r"^(```+|~~~+)\s*([\w+-]*)", stripped)
        if fence is None and opener:
            fence, shell = opener.group(1), opener.group(2).lower() in {"", "bash", "sh", "shell", "console", "zsh"}
            continue
        if fence is not None and stripped.startswith(fence):
            fence = None
            continue
        if fence is not None and shell and stripped and not stripped.startswith("#"):
            commands.append(re.sub(r"\s+#.*$", "", re.sub(r"^[$>]\s*", "", stripped)))
    return commands


def test_readme_starts_with_make_course_then_make_test():
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing; its first two commands must be `make course` and `make test`."
    commands = _readme_commands(readme.read_text(encoding="utf-8"))
    assert commands[:2] == ["make course", "make test"], (
        f"the README's first two shell commands must be `make course` then `make test`; they are {commands[:2]}."
    )


def test_readme_command_parser():
    text = "# T\n```python\nimport x\n```\n```bash\n# set up\n$ make course   # all lessons\n```\n~~~\nmake test\n~~~\n"
    assert _readme_commands(text) == ["make course", "make test"]


# --- the install cell ------------------------------------------------------------------------

_RECORDER = r'''
import importlib.util, json, os, subprocess, sys
calls = []
def _record(*args, **kwargs):
    command = args[0] if args else kwargs.get("args")
    calls.append([str(part) for part in command] if isinstance(command, (list, tuple)) else [str(command)])
    return subprocess.CompletedProcess(command, 0)
for _name in ("run", "call", "check_call", "check_output", "Popen"):
    setattr(subprocess, _name, _record)
os.system = lambda command: calls.append(["os.system", command]) or 0
_hidden = set(json.loads(sys.argv[1]))
_real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name in _hidden else _real_find_spec(name, *a, **k)
exec(compile(sys.stdin.read(), "<install cell>", "exec"), {"__name__": "__main__"})
print("CALLS=" + json.dumps(calls))
'''


def _run_install_cell(source: str, hidden: set[str], cwd: Path, repo: str | None = None) -> tuple[list[list[str]], list[str]]:
    """Execute `source` in a fresh interpreter with every process launch recorded, not run, and
    `hidden` modules reported missing (with GANCOURSE_REPO=`repo` where given); return the recorded
    commands and the other printed lines."""
    env = {key: value for key, value in os.environ.items() if key != REPO_ENV}
    result = subprocess.run(
        [sys.executable, "-c", _RECORDER, json.dumps(sorted(hidden))],
        input=source, capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**env, REPO_ENV: repo} if repo else env,
    )
    assert result.returncode == 0, f"the install cell raised:\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    calls = json.loads(lines[-1].removeprefix("CALLS="))
    return calls, lines[:-1]


def _pip_targets(call: list[str]) -> list[str]:
    """The requirement names a `python -m pip install ...` command asks for (options dropped)."""
    assert call[:4] == [sys.executable, "-m", "pip", "install"], f"not a pip install on this interpreter: {call}"
    return [re.split(r"[<>=!~\[ @]", arg, maxsplit=1)[0].lower() for arg in call[4:] if not arg.startswith("-")]


def test_install_cell_does_nothing_where_gancourse_is_importable(tmp_path):
    calls, printed = _run_install_cell(INSTALL_CELL, hidden=set(), cwd=tmp_path)
    assert calls == [], f"the install cell launched {calls} although gancourse is importable."
    assert len(printed) <= 1, f"the install cell should be quiet when nothing is missing; it printed {printed}."


def test_install_cell_on_a_bare_colab_installs_gancourse_without_deps_and_never_torch(tmp_path):
    calls, _ = _run_install_cell(INSTALL_CELL, hidden={"gancourse", *LIGHT_DEPENDENCIES}, cwd=tmp_path)
    assert calls, "with gancourse missing the install cell installed nothing."
    first = calls[0]
    assert "--no-deps" in first and f"git+{REPO_URL}@{BRANCH}" in first, (
        f"gancourse must be installed from {REPO_URL}@{BRANCH} with --no-deps (so torch is kept); got {first}."
    )
    targets = [target for call in calls for target in _pip_targets(call)]
    assert not NEVER_PIP_INSTALLED & set(targets), f"the install cell pip-installs {targets}: never torch."
    assert sorted(t for t in targets if not t.startswith("git+")) == sorted(LIGHT_DEPENDENCIES.values())


def test_install_cell_takes_its_source_from_gancourse_repo_when_set(tmp_path):
    fork = "git+file:///srv/clones/gancourse@teaching"
    calls, printed = _run_install_cell(INSTALL_CELL, hidden={"gancourse"}, cwd=tmp_path, repo=fork)
    assert calls and calls[0][-1] == fork and "--no-deps" in calls[0], calls
    assert printed[-1] == f"installed gancourse from {fork}", printed


def test_install_cell_adds_only_the_missing_light_dependencies(tmp_path):
    calls, _ = _run_install_cell(INSTALL_CELL, hidden={"gancourse", "tqdm"}, cwd=tmp_path)
    targets = [t for call in calls for t in _pip_targets(call) if not t.startswith("git+")]
    assert targets == ["tqdm"], f"only the missing tqdm should be installed, got {targets}."


def test_install_cell_floors_match_pyproject():
    floors = _pyproject_floors(extras=())  # the kernel's own dependencies: what a Colab runtime needs
    for package in LIGHT_DEPENDENCIES.values():
        assert f'"{package}>={floors[package]}"' in INSTALL_CELL, (
            f"INSTALL_CELL should ask for {package}>={floors[package]}, the floor in pyproject.toml."
        )


# --- every notebook --------------------------------------------------------------------------

@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_has_a_colab_badge_for_its_own_path(rel):
    nb = _notebook(rel)
    markdown = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    urls = re.findall(r"https://colab\.research\.google\.com/github/[^\s)\"'>]+", markdown)
    assert urls, f"{rel} has no Colab badge; add a Markdown cell with gancourse.course.badge_markdown({rel!r})."
    assert "colab-badge.svg" in markdown, f"{rel} links to Colab but shows no badge image."
    wrong = [url for url in urls if url != colab_url(rel)]
    assert not wrong, f"{rel}'s Colab link must be {colab_url(rel)}, found {wrong}."


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_first_code_cell_is_the_install_cell(rel):
    cells = _code_cells(_notebook(rel))
    assert cells, f"{rel} has no code cells."
    first = cells[0].source
    assert INSTALL_CELL in first, (
        f"{rel}'s first code cell must contain gancourse.course.INSTALL_CELL verbatim "
        "(copy it from there; it installs the library only where missing)."
    )
    rest = first.replace(INSTALL_CELL, "")
    assert "pip" not in rest, f"{rel}'s first code cell installs more than INSTALL_CELL does: {rest!r}."


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_parameters_cell_reads_smoke_mode(rel):
    tagged = [cell for cell in _code_cells(_notebook(rel)) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{rel} needs exactly one code cell tagged 'parameters' (papermill), found {len(tagged)}."
    source = tagged[0].source
    assert "GANCOURSE_SMOKE" in source or "smoke_mode(" in source, (
        f"{rel}'s parameters cell must read GANCOURSE_SMOKE (directly or with gancourse.smoke_mode())."
    )


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(rel):
    dirty = [
        index for index, cell in enumerate(_notebook(rel).cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{rel} was saved with outputs in cells {dirty}; clear them "
        "(jupyter nbconvert --clear-output --inplace, or Edit > Clear Outputs of All Cells) before committing."
    )


def test_the_wheel_carries_the_shipped_checkpoint_with_its_registered_hash(tmp_path):
    """`pip install` (and Colab) must get lesson 07's generator: the file is package data, byte for byte."""
    import hashlib
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("gancourse-*.whl")
    registry = json.loads((REPO / "gancourse" / "pretrained" / "registry.json").read_text())
    assert registry, "gancourse/pretrained/registry.json lists no checkpoint"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "gancourse/pretrained/registry.json" in names
        for name, entry in registry.items():
            member = f"gancourse/pretrained/{entry['file']}"
            assert member in names, f"{name}: {entry['file']} is not in the wheel; list it in [tool.setuptools.package-data]"
            assert hashlib.sha256(archive.read(member)).hexdigest() == entry["sha256"]
