"""Notebook runs two at a time, each in its own process on one torch thread.

The lessons' networks are small: one lesson on two threads uses the second core poorly, two lessons on one
thread each use both. tests/test_notebooks.py (papermill and nbval) and tests/test_colab.py run every lesson
this way, once per module, and each parametrised test then checks its own lesson's result.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORKERS = 2  # the CI machine's cores

_RUN_LESSON = """
import json, sys
from gancourse.course import run_lesson
job = json.loads(sys.argv[1])
run = run_lesson(job["notebook"], out_dir=job["out"], smoke=True, timeout=job["cell_timeout"], root=job["root"],
                 python=job["python"], parameters=job["parameters"])
print("RESULT " + json.dumps({"ok": run.ok, "error": run.error, "verdict": run.verdict, "output": str(run.output),
                              "seconds": round(run.seconds, 1)}))
"""


def run_all(jobs: dict[str, tuple[list[str], dict[str, str]]], *, cwd: Path, timeout: float
            ) -> dict[str, subprocess.CompletedProcess]:
    """Run every job {name: (argv, environment changes)}, WORKERS at a time; the finished processes by name."""

    def one(job: tuple[list[str], dict[str, str]]) -> subprocess.CompletedProcess:
        argv, changes = job
        env = {**os.environ, "OMP_NUM_THREADS": "1", **changes}
        try:
            return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, -9, "", f"stopped after {timeout:.0f} s")

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # the threads only wait for the processes
        return dict(zip(jobs, pool.map(one, jobs.values())))


def run_lessons(paths: list[Path], out: Path, *, root: Path, cell_timeout: float, timeout: float,
                python: Path | None = None, parameters: dict | None = None,
                env: dict[str, str] | None = None) -> dict[str, dict]:
    """`gancourse.course.run_lesson` in smoke mode for every notebook (on `python`'s kernel if given), two at a
    time: {stem: {"ok", "error", "verdict", "output", "seconds"}}."""
    jobs = {}
    for path in paths:
        job = {"notebook": str(path), "out": str(out), "root": str(root), "cell_timeout": cell_timeout,
               "python": None if python is None else str(python), "parameters": parameters or {}}
        jobs[path.stem] = ([sys.executable, "-c", _RUN_LESSON, json.dumps(job)], env or {})
    results = {}
    for stem, done in run_all(jobs, cwd=root, timeout=timeout).items():
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        results[stem] = json.loads(lines[-1][len("RESULT "):]) if lines else {
            "ok": False, "verdict": None, "output": None, "seconds": None,
            "error": f"the runner process stopped (exit {done.returncode}): {done.stderr[-3000:]}"}
    return results
