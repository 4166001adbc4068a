"""Run a student's kernel in a sandbox: bubblewrap (Debian's `bubblewrap` package) plus resource limits.

Grading executes code the instructor did not write. Inside the sandbox that code sees the machine
read-only, with no network, a private /tmp and PID namespace, and none of the paths the grader hides
(the temporary nbgrader course with the solution and its hidden tests and the gradebook, the
solutions folder, the other submissions). It may write only to its own scratch folder. `prlimit`
(util-linux) caps CPU time, data memory, processes and the size of any file it writes. When the
kernel exits, the sandbox and every process the student started end with it (`--unshare-pid`,
`--die-with-parent`).

What it does not guard against: reading anything else on the machine that the grading account may
read (mount a narrower view with `hide=` if the machine holds secrets), a kernel exploit, and the
grader's own trust in what the kernel sends back (see grading.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from gancourse.course import CurrentPythonKernelManager


class SandboxUnavailable(RuntimeError):
    """No working sandbox on this machine; the message says how to install one."""


INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install -y bubblewrap; Fedora: sudo dnf install "
                "bubblewrap), or grade with --no-sandbox, which runs every student's code as you, with access to "
                "the hidden tests, the gradebook and your files")


NO_SANDBOX_WARNING = ("warning: grading without a sandbox: every submission runs as you and can read the hidden "
                      "tests, change other students' grades and reach the network")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one kernel (prlimit): CPU seconds, data memory, processes, file size."""

    cpu_seconds: int = 3600
    memory_mb: int = 6144
    processes: int = 256
    file_mb: int = 512


def python_paths() -> list[Path]:
    """What the kernel needs to start: this interpreter, its environment and the course package. Under
    a private /tmp they would vanish when they live there (a fresh clone in /tmp, say), so they are
    mounted again, read-only."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parent.parent}
    paths.update(Path(p) for p in sysconfig.get_paths().values())
    return sorted(p.resolve() for p in paths if p.is_dir())


@dataclass
class Sandbox:
    """What one sandboxed kernel may see: `keep` read-only (the interpreter and the course code), `hide`
    as empty folders (mounted after `keep`, so a hidden folder inside a kept one stays hidden), and
    `writable` its own, read-write."""

    hide: list[Path] = field(default_factory=list)
    writable: list[Path] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    keep: list[Path] = field(default_factory=python_paths)

    def command(self, argv: list[str], cwd: str | Path | None = None) -> list[str]:
        """`argv` wrapped in bubblewrap and prlimit."""
        bwrap = find_bwrap()
        if bwrap is None:
            raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
        args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for path in self.keep:
            args += ["--ro-bind", str(path), str(path)]
        for path in self.hide:  # an empty folder over each hidden path (mounted before the writable ones)
            if Path(path).is_dir():
                args += ["--tmpfs", str(Path(path).resolve())]
        for path in self.writable:
            path = str(Path(path).resolve())
            args += ["--bind", path, path]
        if cwd is not None:
            args += ["--chdir", str(Path(cwd).resolve())]
        # JPY_PARENT_PID: in its own PID namespace the kernel's parent is PID 1, which ipykernel reads as
        # "my parent died"; --die-with-parent ends the sandbox with the grader instead.
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session", "--unsetenv", "JPY_PARENT_PID"]
        lim = self.limits
        args += ["prlimit", f"--cpu={lim.cpu_seconds}", f"--data={lim.memory_mb * 2**20}",
                 f"--nproc={lim.processes}", f"--fsize={lim.file_mb * 2**20}", "--"]
        return args + list(argv)


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def check_available(sandbox: Sandbox | None = None) -> None:
    """Raise SandboxUnavailable unless the sandbox works here and this interpreter starts inside it."""
    sandbox = sandbox or Sandbox()
    if find_bwrap() is None:
        raise SandboxUnavailable(f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}")
    try:
        done = subprocess.run(sandbox.command(["true"]), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SandboxUnavailable(f"bubblewrap could not start ({err}): {INSTALL_HINT}") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
        raise SandboxUnavailable(f"bubblewrap is installed but cannot create a sandbox here ({reason[0]}); it needs "
                                 f"unprivileged user namespaces or a setuid bwrap. Otherwise {INSTALL_HINT}")
    # A kernel that cannot start inside would score every student 0 without a word: try the real thing.
    probe = sandbox.command([sys.executable, "-c", "import gancourse, ipykernel"])
    done = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
        raise SandboxUnavailable(f"inside the sandbox, {sys.executable} cannot import gancourse and ipykernel "
                                 f"({reason[0]}); is the environment on a path the sandbox hides? Otherwise "
                                 f"{INSTALL_HINT}")


class SandboxedKernelManager(CurrentPythonKernelManager):
    """A kernel inside `Sandbox`: it talks to the grader over Unix sockets in a folder bound into the
    sandbox, since a private network namespace cannot reach the grader's TCP ports.

    Set the class attribute `sandbox` (a Sandbox) before nbgrader starts kernels; the kernel's working
    folder is added to what it may write.
    """

    sandbox: Sandbox | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._socket_dir = Path(os.environ.get("TMPDIR", "/tmp")).resolve() / f"gancourse-kernel-{os.getpid()}-{id(self)}"
        self._socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.transport = "ipc"
        self.ip = str(self._socket_dir / "kernel")
        self.connection_file = str(self._socket_dir / "connection.json")
        self._launch_cwd = None

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        # The sandbox runs the kernel in a session of its own, out of reach of a signal to the
        # grader's process group: an interrupt (a cell's timeout) goes as a message instead.
        spec.interrupt_mode = "message"
        return spec

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        sandbox = self.sandbox or Sandbox()
        cwd = self._launch_cwd
        writable = [*sandbox.writable, self._socket_dir, *([cwd] if cwd else [])]
        return Sandbox(sandbox.hide, writable, sandbox.limits, sandbox.keep).command(cmd, cwd=cwd)

    async def _async_pre_start_kernel(self, **kw):
        self._launch_cwd = kw.get("cwd")
        env = dict(kw.get("env") or os.environ)
        if self._launch_cwd:  # IPython and matplotlib want writable folders of their own
            scratch = Path(self._launch_cwd) / ".kernel"
            scratch.mkdir(exist_ok=True)
            env.update(IPYTHONDIR=str(scratch / "ipython"), MPLCONFIGDIR=str(scratch / "matplotlib"))
        kw["env"] = env
        # The kernel's own start-up banner would land in the grader's terminal; cell output goes over IOPub.
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
