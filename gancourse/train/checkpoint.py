"""Checkpoints that survive crashes: written to a temporary file, then atomically renamed."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "gancourse-checkpoint"
VERSION = 2  # 2: EMA of named networks, a loss scaler per optimiser, LR schedulers


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message says why and what to do."""


def save_atomic(state: dict, path: str | Path) -> Path:
    """Write `state` with torch.save so that `path` is always either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by `save_atomic`, with an error that says how to recover."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first, or pass resume=False to start fresh")
    fix = (f"Delete {path} (or move it away) and call fit() again to start from step 0, "
           "or pass resume=<path of another checkpoint>.")
    try:
        # weights_only=False: the file holds RNG states and history, written by this library.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated zip, random bytes, pickle errors, ...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {err}). {fix}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gancourse checkpoint. {fix}")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer gancourse (format {state['version']}); "
                              "upgrade gancourse to read it.")
    if state.get("version", 0) < VERSION:
        raise CheckpointError(f"{path} was written by an older gancourse (format {state.get('version')}), whose "
                              f"EMA and loss scaling this version stores differently. {fix}")
    return state


def rng_state() -> dict:
    """Every random number generator a training step may draw from."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
