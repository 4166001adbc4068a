"""Small helpers every lesson uses: smoke mode, device choice, seeding, figures."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

SMOKE_ENV = "GANCOURSE_SMOKE"
RUN_DIR_ENV = "GANCOURSE_RUN_DIR"


def smoke_mode() -> bool:
    """True when GANCOURSE_SMOKE is set to a true value: same code, tiny budgets (used by CI)."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick_device(prefer: str | None = None, verbose: bool = False) -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU. `prefer` ("cpu", "cuda", ...) overrides."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={prefer!r} was requested but PyTorch sees no CUDA GPU here; "
                "pass device=None to let gancourse pick, or device='cpu'."
            )
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"gancourse: training on {describe_device(device)}")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return device.type


@contextmanager
def torch_threads(n: int):
    """Run the body with n CPU threads for torch, and give back the previous number afterwards (even on an
    error): a notebook that needs one thread for small networks leaves the rest of the kernel as it was."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"torch_threads needs a positive int; got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def run_dir(lesson: str | None = None) -> Path:
    """Folder where a lesson writes its figures: $GANCOURSE_RUN_DIR, else runs/<lesson>."""
    base = os.environ.get(RUN_DIR_ENV)
    path = Path(base) if base else Path("runs") / (lesson or "scratch")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _figure_path(name: str, lesson: str | None = None) -> Path:
    """run_dir(lesson)/figures/<name>.png, with the folder created (".png" is added when missing)."""
    folder = run_dir(lesson) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (name if name.endswith(".png") else f"{name}.png")


def save_figure(fig, name: str, lesson: str | None = None, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG under the lesson's run folder and return the path."""
    path = _figure_path(name, lesson)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def save_png(png_bytes: bytes, name: str, lesson: str | None = None) -> Path:
    """Write ready-made PNG bytes (a widget's picture) where save_figure would, and return the path."""
    path = _figure_path(name, lesson)
    path.write_bytes(png_bytes)
    return path


def to_display(images: torch.Tensor) -> torch.Tensor:
    """Map images from the course's [-1, 1] range to [0, 1] for plotting."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def is_main_process() -> bool:
    """False on every process but rank 0 of a torch.distributed run: only one writes files and logs."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook cell), False in a script or a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_bar(**options):
    """A tqdm bar. In a notebook it is a plain-text bar on stdout, redrawn at most once a second: unlike
    tqdm's widget bar it stays readable in a saved notebook (GitHub, a reopened file, nbconvert)."""
    import sys

    from tqdm import tqdm

    if in_notebook():
        options = {"file": sys.stdout, "mininterval": 1.0, "ncols": 100, **options}
        options.pop("dynamic_ncols", None)
    return tqdm(**options)
