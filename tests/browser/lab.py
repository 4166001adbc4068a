"""A JupyterLab server from the course's environment, notebook copies with changed parameters, and
Chromium (through Playwright) driving the page: what tests/test_browser.py needs to test what students see."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM_ENV = "GANCOURSE_CHROMIUM"  # overrides where Chromium is looked for
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Headless Chromium on a machine whose only reachable hosts are package registries: without the
# background-networking flags Chromium's own connections (updates, sync, field trials) are refused
# and end up as noise. Playwright adds --headless itself; a fresh profile comes from Playwright too.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SERVER_START_S = 90.0


class BrowserSetupError(RuntimeError):
    """What is missing for the browser test, with the command that installs it."""


def chromium_path() -> str:
    """The system Chromium (Debian's `chromium`); the course never downloads a browser of its own."""
    wanted = os.environ.get(CHROMIUM_ENV)
    candidates = [wanted] if wanted else list(CHROMIUM_CANDIDATES)
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    looked = ", ".join(candidates)
    raise BrowserSetupError(
        f"Chromium was not found (looked at {looked}). The browser test drives the system Chromium: on "
        "Debian/Ubuntu run `sudo apt-get install -y chromium` (CI's .ci/run does this), or point "
        f"{CHROMIUM_ENV} at a Chromium or Chrome executable."
    )


def sync_playwright() -> Any:
    """playwright.sync_api.sync_playwright, or a clear error when the dev extra is not installed."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError as exc:
        raise BrowserSetupError(
            "the Python package `playwright` is missing: install the test dependencies with "
            "`pip install -e '.[dev]'` (or `make test`). Do not run `playwright install`: the test uses "
            "the system Chromium."
        ) from exc
    return start()


def launch_chromium(playwright: Any) -> Any:
    """Headless system Chromium in a fresh temporary profile."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


# --- notebooks ---------------------------------------------------------------------------------


def copy_notebook(src: Path, dst: Path, overrides: dict[str, str] | None = None) -> Path:
    """Write `src` to `dst` without outputs, with `NAME = value` lines of the parameters cell replaced.

    A copy keeps the committed notebook untouched by JupyterLab's autosave. Each name in `overrides`
    must be assigned on its own line in the cell tagged "parameters", else the copy would silently
    test the defaults.
    """
    nb = nbformat.read(str(src), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if overrides:
        cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
        if len(cells) != 1:
            raise ValueError(f"{src}: expected one code cell tagged 'parameters', found {len(cells)}.")
        source = cells[0].source
        for name, value in overrides.items():
            pattern = re.compile(rf"^{re.escape(name)}\s*=.*$", flags=re.MULTILINE)
            if not pattern.search(source):
                raise ValueError(f"{src}: the parameters cell does not assign {name}; the test cannot set it.")
            source = pattern.sub(f"{name} = {value}  # set by tests/test_browser.py", source, count=1)
        cells[0].source = source
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dst))
    return dst


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """`python -m jupyterlab` of this interpreter's environment on 127.0.0.1, with a token.

    Settings, workspaces, runtime files and IPython's profile live in `state_dir`, so a developer's
    own Jupyter configuration cannot change what the test sees; kernels inherit `env`.
    """

    root: Path
    state_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    token: str = ""
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}{'&' if '?' in path else '?'}token={self.token}"

    def start(self) -> LabServer:
        self.port, self.token = free_port(), secrets.token_hex(16)
        env = dict(os.environ)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                     "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
            path = self.state_dir / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        env["JUPYTER_PREFER_ENV_PATH"] = "1"  # kernels and extensions of this environment come first
        # Answer JupyterLab's "get notified about official Jupyter news?" toast up front: it would cover
        # part of every screenshot, and answering yes would fetch from the internet.
        notification = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
        env.update(self.env)
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.allow_root=True",  # CI runs as root; the server listens on 127.0.0.1 only
            # window.jupyterapp: the test runs JupyterLab's own commands and reads the notebook model.
            "--LabApp.expose_app_in_browser=True",
            # No calls to the internet from the server: update checks, news and the extension manager's
            # PyPI search are JupyterLab's, not the course's, and fail or hang on a closed network.
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode} while starting; "
                                   f"its log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                    json.load(reply)
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.base_url} within {SERVER_START_S:.0f} s; "
                           f"its log:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url(f"api/{path}"), method=method, data=b"" if method != "GET" else None)
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every running kernel, so the next test starts from a quiet server."""
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def stop(self) -> None:
        """Shut the server down through its API (which stops its kernels), then by signal if needed."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            self.api("shutdown", method="POST")
            process.wait(timeout=20)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired, OSError):
            pass
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)  # the server's own process group (start_new_session above)
                process.wait(timeout=wait)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def fresh_dir(path: Path) -> Path:
    """An empty folder at `path` (the artefacts of the previous run are removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- the page ----------------------------------------------------------------------------------

# Console messages that are not the course's, each with why it is safe to ignore. Everything else that
# the page logs as an error, and every uncaught exception in the page, fails the test.
CONSOLE_ALLOW = [
    # The browser asks every site for /favicon.ico; JupyterLab serves its icon elsewhere.
    (re.compile(r"favicon\.ico"), "the browser's own favicon request"),
    # The "Open in Colab" badge at the top of every lesson is an image on colab.research.google.com;
    # the test machine has no internet, a student online sees it. Only this one address is allowed:
    # any other external load that fails (a widget's JavaScript from a CDN, say) still fails the test.
    (re.compile(r"^console\.error: Failed to load resource: net::ERR_[A-Z_]+ "
                r"\(https://colab\.research\.google\.com/assets/colab-badge\.svg[:\d]*\)$"),
     "the Colab badge image, unreachable offline"),
]


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors, split into the allowed and the rest."""

    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    everything: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self._add(f"uncaught page error: {exc}", is_error=True))

    def _on_console(self, message: Any) -> None:
        location = message.location or {}
        where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location.get("url") else ""
        self._add(f"console.{message.type}: {message.text}{where}", is_error=message.type == "error")

    def _add(self, line: str, is_error: bool) -> None:
        self.everything.append(line)
        if not is_error:
            return
        if any(pattern.search(line) for pattern, _ in CONSOLE_ALLOW):
            self.allowed.append(line)
        else:
            self.errors.append(line)


def open_notebook(page: Any, server: LabServer, rel_path: str, timeout_s: float = 90) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is idle.

    `?reset` starts from an empty workspace: without it JupyterLab reopens the notebooks an earlier
    test left open, with their kernels.
    """
    page.goto(server.url(f"lab/tree/{rel_path}?reset"), wait_until="domcontentloaded")
    page.wait_for_function(
        """(path) => {
            const app = window.jupyterapp;
            const panel = app && app.shell.currentWidget;
            if (!panel || !panel.context || panel.context.path !== path || !panel.sessionContext) return false;
            const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
            return !!kernel && kernel.status === 'idle' && panel.content.widgets.length > 0;
        }""",
        arg=rel_path, timeout=timeout_s * 1000, polling=250,
    )


def run_all_cells(page: Any) -> None:
    """Run > Run All Cells, through the menu bar as a student would."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


# The notebook's state, read from JupyterLab's model: which cells ran, which are queued or running, and
# every error output. A cell whose executionCount is null has not run (yet).
NOTEBOOK_STATE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = [];
    panel.content.widgets.forEach((cell, index) => {
        const model = cell.model;
        if (model.type !== 'code') return;
        const errors = [];
        for (let i = 0; i < model.outputs.length; i++) {
            const out = model.outputs.get(i).toJSON();
            if (out.output_type === 'error') errors.push(out.ename + ': ' + out.evalue);
        }
        const prompt = cell.node.querySelector('.jp-InputPrompt');
        cells.push({index, count: model.executionCount, prompt: prompt ? prompt.textContent.trim() : '',
                    errors, source: model.sharedModel.getSource().slice(0, 80)});
    });
    return {kernel: kernel ? kernel.status : 'none', cells};
}"""


def notebook_state(page: Any) -> dict:
    return page.evaluate(NOTEBOOK_STATE_JS)


def finished(state: dict) -> bool:
    """Run-all is over: the kernel is idle and no cell waits ('[*]'), and all ran or one failed."""
    cells = state["cells"]
    if state["kernel"] != "idle" or any("*" in c["prompt"] for c in cells):
        return False
    return all(c["count"] is not None for c in cells) or any(c["errors"] for c in cells)


# Reads an <img> shown by an ipywidgets Image: its blob URL, the SHA-256 of the bytes behind it (so
# "changed" means different pixels' file, not just a new URL) and whether the browser decoded it.
IMAGE_JS = """async (img) => {
    if (!img || !img.src) return null;
    let digest = null;
    try {
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const hash = await crypto.subtle.digest('SHA-256', bytes);
        digest = Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, '0')).join('');
    } catch (e) { digest = null; }  // the widget replaced (and revoked) this URL while we read it
    return {src: img.src, sha: digest, width: img.naturalWidth, height: img.naturalHeight, complete: img.complete};
}"""


def image_info(locator: Any, timeout: float | None = None) -> dict | None:
    """IMAGE_JS for the first element matched, or None when there is none."""
    if locator.count() == 0:
        return None
    return locator.first.evaluate(IMAGE_JS, timeout=timeout)


def widget_problems(page: Any) -> list[str]:
    """Text a student would see instead of a widget: ipywidgets' error boxes or the plain-text repr."""
    return page.evaluate(
        """() => {
            const found = [];
            document.querySelectorAll('.jp-OutputArea-output').forEach((node) => {
                const text = node.textContent || '';  // innerText is empty for cells scrolled out of view
                if (/Error displaying widget|model not found|Failed to (load|create) (model|view)/i.test(text))
                    found.push('widget error shown: ' + text.slice(0, 200));
                if (/^(VBox|HBox|Image|HTML|FloatSlider)\\(/m.test(text) && node.dataset.mimeType === 'text/plain')
                    found.push('widget shown as text (front-end extension missing?): ' + text.slice(0, 200));
            });
            // JupyterLab draws an error output (a traceback) as red stderr text; warnings are stderr too,
            // so only text that names an exception counts.
            document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').forEach((node) => {
                const text = node.textContent || '';
                if (/Traceback|\\b[A-Z]\\w*(Error|Exception)\\b/.test(text))
                    found.push('error shown: ' + text.slice(0, 300));
            });
            return found;
        }"""
    )


# The outputs of the code cells whose source contains `marker`: each output's mime types (from the
# model) and the natural size of every <img> the page draws for the cell (0 × 0: not decoded).
CELL_OUTPUTS_JS = """(marker) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const found = [];
    panel.content.widgets.forEach((cell, index) => {
        const model = cell.model;
        if (model.type !== 'code' || !model.sharedModel.getSource().includes(marker)) return;
        const mimes = [];
        for (let i = 0; i < model.outputs.length; i++) {
            const out = model.outputs.get(i).toJSON();
            mimes.push(Object.keys(out.data || {}).concat(out.output_type === 'stream' ? ['stream'] : []));
        }
        const images = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output img'))
            .map((img) => [img.naturalWidth, img.naturalHeight]);
        found.push({index, mimes, images});
    });
    return found;
}"""


def cell_outputs(page: Any, marker: str) -> list[dict]:
    """CELL_OUTPUTS_JS: what the cells containing `marker` show."""
    return page.evaluate(CELL_OUTPUTS_JS, marker)
