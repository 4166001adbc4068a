"""Data sets for the course: `load(name, ...)` returns one in-memory tensor that is sampled by index.

Built in: "ring8", "grid25" (2-D mixtures with known modes), "digits" (scikit-learn's bundled digits,
offline), "mnist" and "fashion-mnist" (torchvision, downloaded once). Add more with `@register(name)`.
"""
from gancourse.data.dataset import InMemoryData
from gancourse.data.registry import DatasetUnavailableError, UnknownDatasetError, available, load, register
from gancourse.data.mixtures import MixtureData  # noqa: E402  (importing registers ring8, grid25)
from gancourse.data import images  # noqa: E402,F401  (importing registers digits, mnist, fashion-mnist)

__all__ = ["DatasetUnavailableError", "InMemoryData", "MixtureData", "UnknownDatasetError", "available", "load",
           "register"]
