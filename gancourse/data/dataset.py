"""InMemoryData: a whole data set held as one tensor, sampled by index (no per-sample Python)."""
from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence

import torch


def check_positive_int(value, what: str, *, minimum: int = 1) -> int:
    """Return `value` as an int, or raise a ValueError that says which argument was wrong and why."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be a whole number >= {minimum}; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}; got {value}.")
    return int(value)


def check_split(name: str, split: str, allowed: Sequence[str]) -> str:
    """Raise a ValueError naming the valid choices when `split` is not one of `allowed`."""
    if split not in allowed:
        choices = ", ".join(repr(s) for s in allowed)
        raise ValueError(f"{name} has no split {split!r}; choose one of {choices}.")
    return split


class InMemoryData:
    """A data set that lives as one tensor `x` (N, ...) with optional labels `y` (N,) on one device.

    `kind` is "points" for (N, D) vectors and "images" for (N, C, H, W) images in [-1, 1].
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        name: str,
        kind: str | None = None,
        num_classes: int | None = None,
        classes: Sequence[str] | None = None,
        split: str = "train",
    ) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}.")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one row, shape (N, ...); got shape {tuple(x.shape)}.")
        if kind is None:
            kind = {2: "points", 4: "images"}.get(x.dim())
            if kind is None:
                raise ValueError(f"cannot tell points (N, D) from images (N, C, H, W) for shape {tuple(x.shape)}; "
                                 "pass kind='points' or kind='images'.")
        if kind not in ("points", "images"):
            raise ValueError(f"kind must be 'points' or 'images'; got {kind!r}.")
        if kind == "images" and x.dim() != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(x.shape)}.")
        if y is not None:
            y = torch.as_tensor(y, device=x.device).long()
            if y.shape != (x.shape[0],):
                raise ValueError(f"y must have shape ({x.shape[0]},) to label every row of x; got {tuple(y.shape)}.")
            if num_classes is None:
                num_classes = int(y.max()) + 1
        self.name = name
        self.kind = kind
        self.split = split
        self.x = x
        self.y = y
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None

    # --- shape and place -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one row: (D,) for points, (C, H, W) for images."""
        return tuple(self.x.shape[1:])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image; points have none, so code can use getattr(data, "image_shape", None)."""
        if self.kind != "images":
            raise AttributeError(f"{self.name} holds {self.kind} of shape {self.shape}, not images; use .shape.")
        return self.shape  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> InMemoryData:
        """Return a copy whose tensors (x, y and any a subclass adds) live on `device`."""
        moved = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, key, value.to(device))
        return moved

    # --- sampling --------------------------------------------------------------------------------
    def _random_rows(self, n: int) -> torch.Tensor:
        n = check_positive_int(n, "sample(n): n")
        # Drawn on x's device from the global RNG, so seed_everything() makes runs repeatable.
        return torch.randint(len(self), (n,), device=self.x.device)

    def sample(self, n: int) -> torch.Tensor:
        """n rows of x drawn uniformly with replacement."""
        return self.x[self._random_rows(n)]

    def sample_with_labels(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n rows of x and their labels, drawn together."""
        if self.y is None:
            raise ValueError(f"{self.name} has no labels; use .sample(n) instead of .sample_with_labels(n).")
        rows = self._random_rows(n)
        return self.x[rows], self.y[rows]

    # --- display ---------------------------------------------------------------------------------
    def _describe(self) -> list[str]:
        """The `key=value` parts of repr; subclasses append their own."""
        low, high = self.x.aminmax()
        parts = [f"name={self.name!r}", f"kind={self.kind!r}", f"split={self.split!r}", f"N={len(self)}",
                 f"shape={self.shape}", f"range=[{float(low):.2f}, {float(high):.2f}]"]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        parts.append(f"device={self.device}")
        return parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._describe())})"
