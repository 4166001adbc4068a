"""Grading runs every student's kernel in a bubblewrap sandbox: hostile submissions cannot see the hidden
tests, touch the gradebook or the course, reach the network, or leave processes behind.

Each hostile submission records what it could do into a file in its own scratch folder (the one folder
it may write), then answers the tasks correctly, so its score shows the probe did not break grading.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest

from gancourse import sandbox
from gancourse.grading import GradingError, grade
from test_grading import ADD, TOY, full, install_toy, put

REPO = Path(__file__).resolve().parent.parent
MARK = "4242.5"  # `sleep 4242.5`: a process a submission tries to leave running


def probe(report: dict) -> str:
    """Answer-cell code that tries each thing in `report` (name -> Python expression) and saves the outcome."""
    lines = ["import json, os, pathlib", "seen = {}"]
    for name, expression in report.items():
        lines += ["try:", f"    seen[{name!r}] = repr({expression})", "except BaseException as err:",
                  f"    seen[{name!r}] = 'refused: ' + type(err).__name__"]
    lines.append("pathlib.Path('probe.json').write_text(json.dumps(seen))")
    return "\n".join(lines) + "\n" + ADD


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    solutions, subs, course = base / "solutions", base / "submissions", base / "course"
    install_toy(solutions)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    connections = []
    threading.Thread(target=lambda: connections.append(listener.accept()), daemon=True).start()
    gradebook = course / "gradebook.db"
    report = {
        "solution": f"pathlib.Path({str(course / 'source' / TOY.stem / TOY.name)!r}).read_text()[:20]",
        "solutions_dir": f"os.listdir({str(solutions)!r})",
        "other_submissions": f"os.listdir({str(subs)!r})",
        "repo_solutions": f"os.listdir({str(REPO / 'solutions')!r})",
        "gradebook_read": f"pathlib.Path({str(gradebook)!r}).read_bytes()[:16]",
        "gradebook_write": f"pathlib.Path({str(gradebook)!r}).write_text('wiped')",
        "course_write": f"pathlib.Path({str(REPO / 'gancourse' / 'checks' / '__init__.py')!r}).write_text('x')",
        "home_write": "pathlib.Path.home().joinpath('gancourse-was-here').write_text('x')",
        "network": f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=3)",
        "memory": "len(bytearray(12 * 2**30))",
        "scratch": "pathlib.Path('mine.txt').write_text('ok')",
    }
    # graded first (names sort first), so a successful attack would hit everyone after it
    put(full(add_solution=probe(report)), subs / "aa_prober" / TOY.name)
    leave = ("import subprocess\n"
             f"subprocess.Popen(['sleep', '{MARK}'], start_new_session=True)\n"
             f"subprocess.Popen(['bash', '-c', '(sleep {MARK} &) ; exit 0'])\n" + ADD)
    put(full(add_solution=leave), subs / "ab_forker" / TOY.name)
    put(full(), subs / "zz_honest" / TOY.name)
    rows = grade(TOY.stem, subs, base / "grades.csv", solutions_dir=solutions, timeout=60, workdir=course)
    listener.close()
    seen = json.loads(next(course.glob("autograded/aa_prober/*/probe.json")).read_text())
    return {"rows": {r["student"]: r for r in rows}, "seen": seen, "course": course, "connections": connections}


@pytest.mark.grading
def test_hidden_tests_solutions_and_other_submissions_are_out_of_sight(hostile_class):
    seen = hostile_class["seen"]
    assert seen["solution"].startswith("refused")  # the temporary course is an empty folder in the sandbox
    assert seen["solutions_dir"] == "[]" and seen["other_submissions"] == "[]" and seen["repo_solutions"] == "[]"
    assert seen["gradebook_read"].startswith("refused")


@pytest.mark.grading
def test_nothing_outside_its_scratch_folder_can_be_changed(hostile_class):
    seen = hostile_class["seen"]
    assert seen["course_write"] == "refused: OSError" and seen["home_write"] == "refused: OSError"
    assert seen["scratch"] == "2"
    # the write "succeeded" into an empty in-sandbox folder; the grader's gradebook is untouched
    gradebook = hostile_class["course"] / "gradebook.db"
    assert gradebook.read_bytes()[:16] == b"SQLite format 3\x00"
    assert (REPO / "gancourse" / "checks" / "__init__.py").read_text() != "x"


@pytest.mark.grading
def test_no_network_and_a_memory_limit(hostile_class):
    seen = hostile_class["seen"]
    assert seen["network"].startswith("refused") and hostile_class["connections"] == []
    assert seen["memory"] == "refused: MemoryError"


@pytest.mark.grading
def test_scores_are_unaffected_and_no_process_is_left_behind(hostile_class):
    rows = hostile_class["rows"]
    assert [rows[s]["total"] for s in ("aa_prober", "ab_forker", "zz_honest")] == [6.0, 6.0, 6.0]
    assert all(rows[s]["note"] == "" for s in rows)
    left = subprocess.run(["pgrep", "-f", f"sleep {MARK}"], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left behind: {left}"


def test_bubblewrap_command_hides_and_binds_in_order(tmp_path):
    hidden, mine = tmp_path / "course", tmp_path / "course" / "autograded" / "me"
    mine.mkdir(parents=True)
    cmd = sandbox.Sandbox(hide=[hidden], writable=[mine]).command(["python", "-V"], cwd=mine)
    assert cmd[0].endswith("bwrap") and cmd[-2:] == ["python", "-V"]
    assert cmd.index("--tmpfs", cmd.index("/tmp") + 1) < cmd.index("--bind")  # hide first, then re-expose
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind"):
        assert flag in cmd
    assert any(a.startswith("--data=") for a in cmd) and any(a.startswith("--nproc=") for a in cmd)


def test_grading_refuses_to_run_unsandboxed_without_being_told(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    subs = tmp_path / "subs"
    put(full(), subs / "ada" / TOY.name)
    with pytest.raises(GradingError, match="no sandbox.*apt-get install -y bubblewrap.*--no-sandbox"):
        grade(TOY.stem, subs, tmp_path / "out.csv", solutions_dir=TOY.parent, timeout=30)
    assert not (tmp_path / "out.csv").exists()


def test_a_sandbox_the_kernel_cannot_start_in_is_refused_up_front():
    """Were the interpreter's environment hidden (a private /tmp over a clone in /tmp), every kernel would
    die at start and every student would score 0; the check says so before grading starts."""
    import sys

    blind = sandbox.Sandbox(hide=[Path(sys.prefix)], keep=[])
    with pytest.raises(sandbox.SandboxUnavailable, match="cannot import gancourse and ipykernel"):
        sandbox.check_available(blind)
    sandbox.check_available()  # the default keeps what the kernel needs
