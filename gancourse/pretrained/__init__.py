"""Generators trained by the course's own code and shipped inside the package (lesson 07's StyleGAN).

`load_pretrained("stylegan-faces32")` returns the averaged generator, in eval mode, and what was measured when
it was written (training time, machine, FID, ...). The file's SHA-256 is checked against `registry.json` first,
so a truncated download or an edited file is a clear error rather than strange pictures. `benchmarks/stylegan.py
--export` writes both the file and its registry entry.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.json"


class PretrainedError(RuntimeError):
    """A shipped checkpoint is missing, corrupt, or does not fit what it is loaded into."""


def registry() -> dict:
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_pretrained(name: str = "stylegan-faces32", *, device=None, path: str | Path | None = None,
                    final_size: int | None = None):
    """(generator, info) for a shipped checkpoint. path: another copy of the file (checked against the same hash).
    final_size: the resolution the caller expects; a checkpoint for another one is an error that names both."""
    from gancourse.models import StyleGenerator

    entries = registry()
    if name not in entries:
        raise PretrainedError(f"no shipped checkpoint named {name!r}; the package has {sorted(entries) or 'none'}")
    entry = entries[name]
    file = Path(path) if path is not None else HERE / entry["file"]
    if not file.exists():
        raise PretrainedError(f"the checkpoint file {file} is missing; reinstall gancourse (pip install --force-reinstall "
                              "gancourse) or write it again with benchmarks/stylegan.py --export")
    digest = sha256(file)
    if digest != entry["sha256"]:
        raise PretrainedError(f"{file} is corrupt or not the shipped {name!r}: its SHA-256 is {digest[:12]}..., the "
                              f"registry expects {entry['sha256'][:12]}...; reinstall gancourse, or re-export it with "
                              "benchmarks/stylegan.py --export")
    saved = torch.load(file, map_location="cpu", weights_only=True)
    config = saved["config"]
    if final_size is not None and config["final_size"] != final_size:
        raise PretrainedError(f"{name!r} draws {config['final_size']}x{config['final_size']} images, not "
                              f"{final_size}x{final_size}; use final_size={config['final_size']} or train your own")
    G = StyleGenerator(**config)
    G.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    G.eval().requires_grad_(False)
    if device is not None:
        G.to(device)
    # the registry's description wins over the one written at export time: it can be corrected (the machine,
    # a note) without changing the weights or their hash
    return G, {**saved["info"], **entry.get("info", {})}


def export_generator(G, name: str, info: dict, directory: Path = HERE) -> Path:
    """Write G's weights, config and `info` to <directory>/<name>.pt (atomically) and record its SHA-256."""
    info = json.loads(json.dumps(info, default=str))  # plain values only: the file loads with weights_only=True
    path = directory / f"{name}.pt"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    state = {k: v.detach().cpu().clone() for k, v in G.state_dict().items()}
    torch.save({"config": dict(G.config), "state_dict": state, "info": info}, tmp)
    os.replace(tmp, path)
    entries = registry() if directory == HERE else {}
    entries[name] = {"file": path.name, "sha256": sha256(path), "info": info}
    if directory == HERE:
        REGISTRY.write_text(json.dumps(entries, indent=1) + "\n")
    return path
