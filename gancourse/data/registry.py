"""The data set registry: `load(name, ...)` finds a loader by name; `register(name)` adds one."""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

import torch

Loader = Callable[..., object]  # returns a sampler: InMemoryData, StreamingData or UnpairedData

_LOADERS: dict[str, Loader] = {}


class UnknownDatasetError(ValueError):
    """Raised by `load` for a name no loader was registered under."""


class DatasetUnavailableError(RuntimeError):
    """Raised when a data set's files are missing and cannot be downloaded."""


def _key(name: str) -> str:
    """Names are matched without regard to case, and '_' or ' ' count as '-'."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def register(name: str, *, replace: bool = False) -> Callable[[Loader], Loader]:
    """Decorator that makes `load(name, split=..., **options)` call the decorated function.

    The loader takes `split` and keyword options and returns a sampler (InMemoryData, StreamingData or
    UnpairedData) on the CPU.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a data set needs a non-empty name; got {name!r}.")
    key = _key(name)

    def decorator(loader: Loader) -> Loader:
        old = _LOADERS.get(key)
        # Re-running a notebook cell defines the same function again; that is not a clash.
        same = old is not None and (old.__module__, old.__qualname__) == (loader.__module__, loader.__qualname__)
        if old is not None and not same and not replace:
            raise ValueError(f"a data set named {key!r} is already registered ({old.__module__}.{old.__qualname__}); "
                             f"pick another name or pass register({name!r}, replace=True).")
        _LOADERS[key] = loader
        return loader

    return decorator


def available() -> list[str]:
    """Names `load` accepts, sorted."""
    return sorted(_LOADERS)


def _unknown_name_error(name: str) -> UnknownDatasetError:
    known = available()
    close = difflib.get_close_matches(_key(name), known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownDatasetError(f"no data set named {name!r}.{hint} Known data sets: {', '.join(known)}. "
                               "Lessons can add their own with gancourse.data.register(name).")


def _check_options(key: str, loader: Loader, options: dict) -> None:
    """Turn a mistyped option into an error that lists what this loader accepts."""
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p != "split"]
    for option in options:
        if option not in accepted:
            close = difflib.get_close_matches(option, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(accepted) if accepted else "no options"
            raise TypeError(f"load({key!r}) got an unknown option {option!r}.{hint} {key} accepts: {listed} "
                            "(plus device= and split=).")


def load(name: str, *, device: torch.device | str | None = None, split: str = "train", **options):
    """Load a registered data set as a sampler (see gancourse.data); device=None keeps it on the CPU.

    `split` is "train" by default; "test" is held out where a set has one. Options go to the loader,
    e.g. load("digits", size=16) or load("ring8", n=10_000).
    """
    if not isinstance(name, str):
        raise TypeError(f"load() takes a data set name such as 'ring8'; got {type(name).__name__}.")
    key = _key(name)
    if key not in _LOADERS:
        raise _unknown_name_error(name)
    loader = _LOADERS[key]
    _check_options(key, loader, options)
    data = loader(split=split, **options)
    return data if device is None else data.to(device)
