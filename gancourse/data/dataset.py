"""InMemoryData: a whole data set held as one tensor on one device, sampled by index (no per-sample Python).

Images are stored as uint8 (N, C, H, W), 0..255 standing for [-1, 1], a quarter of the memory of float32,
and each sampled batch is converted to float32 in [-1, 1]. Points (N, D) are stored as float32.
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence

import torch

# Float images may stray this far outside [-1, 1] (resampling round-off) before we call them wrong.
RANGE_TOLERANCE = 1e-3


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


def check_no_domain(name: str, domain) -> None:
    """One-domain sets take no `domain=`; say where a domain does belong."""
    if domain is not None:
        raise ValueError(f"{name} has one domain, so sample(n) takes no domain=; got domain={domain!r}. "
                         "domain='A' or 'B' picks a side of a two-domain set such as load('unpaired', path=...).")


def check_memory_format(memory_format, kind: str, name: str):
    """Accept None or a torch.memory_format; a 4-D layout such as channels_last only suits images."""
    if memory_format is None:
        return None
    if not isinstance(memory_format, torch.memory_format):
        raise TypeError(f"memory_format must be None or a torch.memory_format such as torch.channels_last; "
                        f"got {memory_format!r}.")
    plain = (torch.contiguous_format, torch.preserve_format)
    if kind != "images" and memory_format not in plain:
        raise ValueError(f"{name} holds points, and {memory_format} only applies to image batches (N, C, H, W); "
                         "pass memory_format=None for points.")
    if memory_format not in (*plain, torch.channels_last):
        raise ValueError(f"image batches are 4-D (N, C, H, W); use torch.channels_last or torch.contiguous_format, "
                         f"not {memory_format}.")
    return memory_format


def images_to_uint8(x: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Quantise images to uint8 once: float in [-1, 1] -> round((x + 1) * 127.5); uint8 passes through."""
    if x.dtype == torch.uint8:
        return x.contiguous()
    if not x.is_floating_point():
        raise TypeError(f"{name}: images must be uint8 (0..255) or float in [-1, 1]; got dtype {x.dtype}. "
                        "Convert with x.to(torch.uint8) for 0..255 pixels.")
    check_image_range(x, name)
    return ((x.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def check_image_range(x: torch.Tensor, name: str) -> None:
    """Float images must lie in [-1, 1]; anything else is a scaling mistake the user should hear about."""
    low, high = (float(v) for v in x.aminmax())
    if not (low >= -1 - RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):  # also catches NaN
        raise ValueError(f"{name}: float images must lie in [-1, 1]; got values in [{low:.3g}, {high:.3g}]. "
                         "Rescale 0..255 pixels with x / 127.5 - 1 and [0, 1] pixels with x * 2 - 1.")


def uint8_to_images(u8: torch.Tensor, memory_format=None) -> torch.Tensor:
    """Decode a uint8 batch to float32 in [-1, 1] (0 -> -1, 255 -> 1) in the requested memory layout."""
    if memory_format is not None:
        u8 = u8.contiguous(memory_format=memory_format)  # cheap on uint8; float ops keep the layout
    return u8.float() / 127.5 - 1


class InMemoryData:
    """A data set that lives as one tensor (N, ...) with optional labels `y` (N,) on one device.

    `kind` is "points" for (N, D) float vectors and "images" for (N, C, H, W) images, stored as uint8
    and returned by `sample` as float32 in [-1, 1]. `x` and `images` may be float in [-1, 1] or uint8.
    """

    domains = None  # one domain; UnpairedData has ("A", "B")

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
        self._stored = images_to_uint8(x, name) if kind == "images" else x.float()
        self.y = y
        self.num_classes = num_classes
        self.classes = list(classes) if classes is not None else None
        self._memory_format = None

    # --- the data --------------------------------------------------------------------------------
    @property
    def x(self) -> torch.Tensor:
        """The whole set decoded: float32 in [-1, 1] for images (a new tensor each call); fine for small sets."""
        if self.kind == "images":
            return uint8_to_images(self._stored)
        return self._stored

    @property
    def stored(self) -> torch.Tensor:
        """The tensor as kept in memory: uint8 images (0..255) or float32 points."""
        return self._stored

    # --- shape and place -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._stored.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one row: (D,) for points, (C, H, W) for images."""
        return tuple(self._stored.shape[1:])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image; points have none, so code can use getattr(data, "image_shape", None)."""
        if self.kind != "images":
            raise AttributeError(f"{self.name} holds {self.kind} of shape {self.shape}, not images; use .shape.")
        return self.shape  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self._stored.device

    def to(self, device: torch.device | str, memory_format: torch.memory_format | None = None) -> InMemoryData:
        """Return a copy whose tensors (data, y and any a subclass adds) live on `device`.

        `memory_format` (e.g. torch.channels_last) is the layout of every image batch `sample` returns;
        the stored tensor keeps its layout. None keeps the copy's current choice (plain NCHW by default).
        """
        memory_format = check_memory_format(memory_format, self.kind, self.name)
        moved = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, key, value.to(device))
        if memory_format is not None:
            moved._memory_format = memory_format
        return moved

    # --- sampling --------------------------------------------------------------------------------
    def _random_rows(self, n: int) -> torch.Tensor:
        n = check_positive_int(n, "sample(n): n")
        # Drawn on the data's device from the global RNG, so seed_everything() makes runs repeatable.
        return torch.randint(len(self), (n,), device=self._stored.device)

    def _rows(self, rows: torch.Tensor) -> torch.Tensor:
        if self.kind == "images":
            return uint8_to_images(self._stored[rows], self._memory_format)
        return self._stored[rows]

    def sample(self, n: int, *, domain: str | None = None) -> torch.Tensor:
        """n rows drawn uniformly with replacement, float32 (images in [-1, 1]) on `device`."""
        check_no_domain(self.name, domain)
        return self._rows(self._random_rows(n))

    def sample_with_labels(self, n: int, *, domain: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n rows and their labels, drawn together."""
        check_no_domain(self.name, domain)
        if self.y is None:
            raise ValueError(f"{self.name} has no labels; use .sample(n) instead of .sample_with_labels(n).")
        rows = self._random_rows(n)
        return self._rows(rows), self.y[rows]

    # --- display ---------------------------------------------------------------------------------
    def _describe(self) -> list[str]:
        """The `key=value` parts of repr; subclasses append their own."""
        low, high = (float(v) for v in self._stored.aminmax())
        if self.kind == "images":
            low, high = low / 127.5 - 1, high / 127.5 - 1
        parts = [f"name={self.name!r}", f"kind={self.kind!r}", f"split={self.split!r}", f"N={len(self)}",
                 f"shape={self.shape}", f"range=[{low:.2f}, {high:.2f}]"]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        parts.append(f"device={self.device}")
        return parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._describe())})"
