"""Colab as it is: every lesson runs in an environment with the package versions Colab ships.

The environment is built once for this module, offline, in a temporary folder:
- a virtual environment whose own site-packages hold tests/colab/preinstalled.txt (Colab's ipywidgets 7
  and the IPython 7 kernel it runs), installed from the wheelhouse `make` downloads to .venv/colab-wheels;
- behind them, through a .pth file, a folder of links to .venv's packages standing for what Colab
  preinstalls (torch and torchvision, numpy, matplotlib, ...), without what Colab lacks (gancourse,
  tests/colab/fetched.txt and absent.txt) and without the packages preinstalled.txt replaces.
The lessons then run there in smoke mode the way a student opens them on Colab: in an empty folder, no
clone beside them, their first cell installing gancourse with pip from GANCOURSE_REPO (here a git snapshot
of this working tree) and fetching torchmetrics from the wheelhouse (PIP_NO_INDEX: no network).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from gancourse import course
from two_at_a_time import run_lessons

REPO = Path(__file__).resolve().parent.parent
PINS = REPO / "tests" / "colab"
WHEELHOUSE = REPO / ".venv" / "colab-wheels"
LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 600
NOTEBOOK_TIMEOUT = 1800


def _requirements(name: str) -> list[str]:
    lines = (PINS / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _project(requirement: str) -> str:
    """The normalised project name of a requirement line ("ipywidgets==7.7.1" -> "ipywidgets")."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pinned(project: str) -> str:
    (line,) = [req for req in _requirements("preinstalled.txt") if _project(req) == project]
    return line.split("==")[1]


def _colab_base(site: Path, base: Path) -> list[str]:
    """Links in `base` to every entry of .venv's site-packages except the hidden projects; their names."""
    hidden_projects = {"gancourse"} | {_project(r) for name in ("preinstalled.txt", "fetched.txt", "absent.txt")
                                       for r in _requirements(name)}
    hidden: set[str] = set()
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") in hidden_projects:
            hidden |= {file.parts[0] for file in dist.files or [] if file.parts[0] != ".."}  # dist-info too
    base.mkdir(parents=True)
    for entry in site.iterdir():
        # .pth files are left out: an editable gancourse would come back through one
        if entry.name not in hidden and entry.suffix != ".pth" and entry.name != "__pycache__":
            (base / entry.name).symlink_to(entry)
    return sorted(hidden)


def _snapshot(into: Path) -> str:
    """This working tree (tracked and untracked, not ignored files) as a one-commit git repository on
    branch main; the pip source the install cell is given."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                            capture_output=True, text=True)
    assert listed.returncode == 0, f"the Colab test installs from a git snapshot of the checkout: {listed.stderr}"
    for rel in filter(None, listed.stdout.split("\0")):
        source = REPO / rel
        if source.is_file():
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / rel)
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", "-C", str(into), *command], check=True, env={**os.environ, **identity})
    return f"git+{into.as_uri()}@main"


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> SimpleNamespace:
    """The Colab environment, built once: its python, its site-packages, and the environment variables
    under which a notebook's install cell works offline."""
    wanted = _requirements("preinstalled.txt") + _requirements("fetched.txt") + _requirements("build.txt")
    wheels = {_project(p.name.split("-")[0]) for p in WHEELHOUSE.glob("*.whl")}
    missing = sorted({_project(r) for r in wanted} - wheels)
    if missing:
        pytest.fail(f"the Colab test needs {missing} in {WHEELHOUSE}; `make .venv/.installed` downloads them, or "
                    f"(a conda environment) `python -m pip download --no-deps --dest {WHEELHOUSE.relative_to(REPO)} "
                    "-r tests/colab/preinstalled.txt -r tests/colab/fetched.txt -r tests/colab/build.txt`")
    root = tmp_path_factory.mktemp("colab")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dot_venv_site = Path(next(p for p in map(Path, sys.path) if p.name == "site-packages" and
                              (p / "torch").is_dir()))
    hidden = _colab_base(dot_venv_site, root / "preinstalled")
    (site / "zz_colab_preinstalled.pth").write_text(str(root / "preinstalled") + "\n")  # after its own packages
    quiet = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--find-links",
                    str(WHEELHOUSE), *_requirements("preinstalled.txt")], check=True, env={**os.environ, **quiet})
    content = root / "content"  # Colab's working folder: nothing of the course in it
    content.mkdir()
    source = _snapshot(root / "clone")
    env = {course.REPO_ENV: source, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE), **quiet,
           "OMP_NUM_THREADS": "1"}
    return SimpleNamespace(python=python, site=site, content=content, source=source, env=env, hidden=hidden,
                           dot_venv_site=dot_venv_site, root=root)


def _in_colab(colab, code: str) -> str:
    result = subprocess.run([str(colab.python), "-c", code], capture_output=True, text=True, cwd=colab.content)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _run_in_colab(colab, monkeypatch, notebook: Path, out: Path, **kwargs) -> course.LessonRun:
    for key, value in colab.env.items():
        monkeypatch.setenv(key, value)
    return course.run_lesson(notebook, out_dir=out, smoke=True, timeout=CELL_TIMEOUT, root=colab.content,
                             python=colab.python, **kwargs)


def _text_outputs(nb, stream: str | None = None) -> str:
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and (stream is None or o.get("name") == stream))


@pytest.fixture(scope="module")
def installed(colab, tmp_path_factory) -> nbformat.NotebookNode:
    """A notebook of the install cell and a report of what the kernel imports, run twice on Colab: the
    executed notebook of each run."""
    report = new_code_cell(
        "import gancourse, ipywidgets, IPython, torch, torchmetrics\n"
        "print('REPORT', {m.__name__: (getattr(m, '__version__', ''), m.__file__) "
        "for m in (gancourse, ipywidgets, IPython, torch, torchmetrics)})")
    nb = new_notebook(cells=[new_code_cell(course.INSTALL_CELL), report])
    path = tmp_path_factory.mktemp("install") / "install.ipynb"
    nbformat.write(nb, str(path))
    runs = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        for attempt in ("first", "second"):
            run = _run_in_colab(colab, monkeypatch, path, path.parent / attempt)
            assert run.ok, f"the install cell failed on Colab's versions ({attempt} run): {run.error}"
            runs.append(nbformat.read(str(run.output), as_version=4))
    return runs


def _report(nb) -> dict:
    line = next(line for line in _text_outputs(nb).splitlines() if line.startswith("REPORT "))
    import ast

    return ast.literal_eval(line[len("REPORT "):])


def test_the_colab_environment_has_colabs_versions_and_lacks_the_course(colab):
    seen = json.loads(_in_colab(colab, (
        "import json, importlib.util as u, ipywidgets, IPython, ipykernel, torch, torchvision\n"
        "print(json.dumps({'ipywidgets': ipywidgets.__version__, 'ipython': IPython.__version__,"
        " 'ipykernel': ipykernel.__version__, 'torch': torch.__file__,"
        " 'missing': [m for m in ('gancourse', 'torchmetrics') if u.find_spec(m) is None]}))")))
    assert seen["ipywidgets"] == _pinned("ipywidgets") and seen["ipywidgets"].startswith("7."), seen
    assert seen["ipython"] == _pinned("ipython") and seen["ipykernel"] == _pinned("ipykernel"), seen
    assert Path(seen["torch"]).resolve().is_relative_to(colab.dot_venv_site.resolve()), seen  # preinstalled torch
    assert seen["missing"] == ["gancourse", "torchmetrics"], seen


def test_install_cell_installs_gancourse_from_the_repository_variable_and_keeps_colabs_packages(colab, installed):
    first, second = installed
    printed = _text_outputs(first, "stdout")
    assert f"installed gancourse from {colab.source}" in printed, printed
    found = _report(first)
    assert Path(found["gancourse"][1]).is_relative_to(colab.site), (
        f"gancourse should be pip-installed into the Colab environment, not imported from elsewhere: {found}")
    assert Path(found["torchmetrics"][1]).is_relative_to(colab.site), found  # fetched: Colab lacks it
    assert found["ipywidgets"][0] == _pinned("ipywidgets"), (
        f"the install cell must keep Colab's ipywidgets {_pinned('ipywidgets')}: {found}")
    assert Path(found["torch"][1]).resolve().is_relative_to(colab.dot_venv_site.resolve()), (
        f"the install cell must never reinstall torch (Colab's CUDA build): {found}")
    conflicts = [line for line in _in_colab(colab, "import subprocess, sys; subprocess.run([sys.executable, '-m', "
                                            "'pip', 'check'])").splitlines() if "gancourse" in line]
    assert not conflicts, f"pip finds gancourse's requirements unmet on Colab (students see this in red): {conflicts}"
    # a second run in the same runtime finds gancourse and does nothing
    assert "installed gancourse" not in _text_outputs(second, "stdout")
    assert _report(second)["gancourse"] == found["gancourse"]


@pytest.fixture(scope="module")
def lesson_runs(colab, installed, tmp_path_factory) -> dict[str, dict]:
    """Every lesson run once on Colab's versions in smoke mode with INTERACTIVE=True (the live widgets a
    student sees there; smoke mode alone draws PNG files and never imports ipywidgets), two at a time."""
    return run_lessons(LESSONS, tmp_path_factory.mktemp("lessons"), root=colab.content, python=colab.python,
                       parameters={"INTERACTIVE": True}, env=colab.env, cell_timeout=CELL_TIMEOUT,
                       timeout=NOTEBOOK_TIMEOUT)


@pytest.mark.notebook
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_on_colabs_versions_in_smoke_mode_with_live_widgets(path, lesson_runs):
    run = lesson_runs[path.stem]
    assert run["ok"], f"{path.name} failed on Colab's versions: {run['error']}"
    assert run["verdict"], f"{path.name} ran on Colab's versions but printed no VERDICT line"
    executed = nbformat.read(run["output"], as_version=4)
    assert "installed gancourse" not in _text_outputs(executed, "stdout")  # the runtime already has it
    # the widgets were built in the kernel by Colab's ipywidgets 7: its controls speak model version 1.x
    # (ipywidgets 8's speak 2.x); nbclient keeps every model's last state in the notebook's metadata
    state = executed.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    controls = {m["model_module_version"] for m in state.values() if m["model_module"] == "@jupyter-widgets/controls"}
    assert controls and all(v.startswith("1.") for v in controls), (
        f"{path.name} with INTERACTIVE=True built no ipywidgets-7 controls on Colab's versions: {controls}")
    views = [(index, o) for index, cell in enumerate(executed.cells) if cell.cell_type == "code"
             for o in cell.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
    bare = [index for index, o in views if "image/png" not in o["data"]]
    assert not bare, (f"{path.name}: live widgets in cells {bare} lost the picture a saved notebook shows (a "
                      "dashboard's output is replaced by its final picture; an explorer carries one)")
    unknown = [index for index, o in views if o["data"][WIDGET_VIEW]["model_id"] not in state]
    assert not unknown, f"{path.name}: widget views in cells {unknown} name models the kernel never created"
    warnings = [line for line in _text_outputs(executed, "stderr").splitlines()
                if re.search(r"warn|error|traceback", line, re.I) and re.search(r"widget|traitlets", line, re.I)]
    assert not warnings, f"{path.name} warns about its widgets on Colab's versions:\n" + "\n".join(warnings)


def test_widget_behaviour_tests_pass_with_colabs_ipywidgets(colab, installed):
    """The widget tests (sliders moved, buttons clicked, pictures redrawn) run again on Colab's versions."""
    files = ["tests/test_widgets.py", "tests/test_explore.py", "tests/test_stability_lab.py"]
    result = subprocess.run([str(colab.python), "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", "-x",
                             "-m", "not notebook and not browser", "-W", "error::DeprecationWarning:ipywidgets"],
                            cwd=REPO, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    tail = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"the widget tests fail with ipywidgets {_pinned('ipywidgets')}:\n{tail}"
    assert "ipywidgets " + _pinned("ipywidgets") in _in_colab(colab, "import ipywidgets; print('ipywidgets', ipywidgets.__version__)")
