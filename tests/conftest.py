"""Shared fixtures: the repository root, and smoke mode for every test that runs a notebook."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test (the folder holding pyproject.toml and notebooks/)."""
    return REPO_ROOT


@pytest.fixture
def smoke_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """GANCOURSE_SMOKE=1 and GANCOURSE_RUN_DIR=<tmp>/run, inherited by any kernel started in the test."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    monkeypatch.setenv("GANCOURSE_RUN_DIR", str(run_dir))
    return run_dir


@pytest.fixture(autouse=True)
def _smoke_for_notebook_tests(request: pytest.FixtureRequest) -> None:
    """Tests marked `notebook` always run in smoke mode: tiny budgets, figures kept out of runs/."""
    if request.node.get_closest_marker("notebook") is not None:
        request.getfixturevalue("smoke_env")


@pytest.fixture
def one_thread():
    """One torch thread for the test (widget tests train tiny nets; a second thread only adds contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    """Figures go to a temporary GANCOURSE_RUN_DIR, outside smoke mode (widgets default to live)."""
    monkeypatch.setenv("GANCOURSE_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("GANCOURSE_SMOKE", raising=False)
    return tmp_path


@pytest.fixture
def displayed(monkeypatch):
    """The live widgets the course hands to IPython's display, each checked to carry a PNG fallback
    (what a saved notebook shows where the widget cannot be drawn)."""
    from gancourse.widgets import view

    calls: list = []

    def record(obj, **_):
        bundle = obj._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle, "the live widget's view is missing"
        assert bundle["image/png"], "a displayed widget must carry its picture as a fallback"
        calls.append(obj.widget)

    monkeypatch.setattr(view, "display", record)
    return calls
