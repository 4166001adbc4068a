"""StreamingData: the sampler protocol over a torch Dataset or DataLoader, for sets that do not fit in memory.

`sample(n)` returns the next n samples of an endless pass over the data (a new epoch starts when one
ends), so each sample is seen once per epoch instead of being drawn with replacement. Loader batches of
any size are buffered and split into batches of n. Each batch moves to the device as it arrives (pinned
memory and non-blocking copies on CUDA) and is converted to float32 in [-1, 1] there, after the copy,
so uint8 images cross the bus at a quarter of the size.

Repeatability: with num_workers=0 the shuffle draws from torch's global RNG, so seed_everything() makes a
run repeat. Worker processes keep their own random state and read ahead on their own schedule, so random
transforms and anything a Dataset caches can differ between runs: streaming runs with workers are not
bit-for-bit repeatable. The position in the stream is not saved in checkpoints either, so a resumed run
sees different batches from one that never stopped.
"""
from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from gancourse.data.dataset import (check_image_range, check_memory_format, check_no_domain, check_positive_int,
                                    uint8_to_images)

DEFAULT_BATCH = 64


def default_workers() -> int:
    """Worker processes for decoding files: up to 4, leaving one core for the training loop."""
    return min(4, max(0, (os.cpu_count() or 1) - 1))


# --- items and batches -----------------------------------------------------------------------------

def split_item(item):
    """(x, label) from a data set item: a tensor/array/image alone, or a pair (x, label or None)."""
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return item[0], None
        if len(item) == 2:
            return item[0], item[1]
        raise TypeError(f"a data set item should be x or (x, label); got a {type(item).__name__} of "
                        f"{len(item)} parts. Return (image, label) or the image alone from __getitem__.")
    if isinstance(item, dict):
        raise TypeError("a data set item should be x or (x, label); got a dict. Return (item['image'], "
                        "item['label']) from __getitem__, or wrap the data set.")
    return item, None


def as_tensor(x) -> torch.Tensor:
    """A sample as a tensor: PIL images and numpy arrays in HWC order become CHW."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    from PIL import Image

    if isinstance(x, Image.Image):
        pixels = torch.from_numpy(np.array(x))
        return pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1).contiguous()
    raise TypeError(f"a sample should be a tensor, a numpy array or a PIL image; got {type(x).__name__}. "
                    "Give the Dataset a transform that returns tensors, e.g. torchvision.transforms.PILToTensor().")


def collate_items(items):
    """DataLoader collate for data sets we wrap: stack samples; labels only when every item has one."""
    xs, ys = zip(*(split_item(item) for item in items))
    x = torch.stack([as_tensor(v) for v in xs])
    y = None if any(v is None for v in ys) else torch.stack([torch.as_tensor(v) for v in ys])
    return x, y


def split_batch(batch):
    """(x, y or None) from what a DataLoader yields: a tensor, or a [x, y] pair as default_collate makes."""
    x, y = split_item(batch)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"a DataLoader batch should hold a tensor of samples; got {type(x).__name__}. "
                        "Give the Dataset a transform that returns tensors, e.g. transforms.PILToTensor().")
    return x, (None if y is None else torch.as_tensor(y))


def first_item(dataset):
    """One item, to learn the sample shape and whether there are labels, without starting a loader."""
    try:
        if isinstance(dataset, IterableDataset):
            return next(iter(dataset))
        return dataset[0]
    except (IndexError, StopIteration):
        raise ValueError("the data set is empty; StreamingData needs at least one sample.") from None


# --- the sampler -----------------------------------------------------------------------------------

class StreamingData:
    """The sampler protocol over a Dataset (we build the DataLoader) or your own DataLoader (used as is).

    Items may be uint8 images (C, H, W) in 0..255, float images in [-1, 1], or float points (D,), each
    alone or with a class label. With a Dataset, `batch_size`, `shuffle` and `num_workers` set up the
    loader; with a DataLoader, set them on the loader itself.
    """

    domains = None

    def __init__(self, source, *, name: str = "stream", split: str = "train", num_classes: int | None = None,
                 classes=None, batch_size: int | None = None, shuffle: bool | None = None,
                 num_workers: int | None = None) -> None:
        if isinstance(source, DataLoader):
            given = {k: v for k, v in [("batch_size", batch_size), ("shuffle", shuffle),
                                       ("num_workers", num_workers)] if v is not None}
            if given:
                raise ValueError(f"{name}: {', '.join(given)} belong to your DataLoader when you pass one; "
                                 "set them there, or pass the Dataset and let StreamingData build the loader.")
            dataset = source.dataset
        elif isinstance(source, (str, os.PathLike)):
            raise TypeError(f"{name}: StreamingData reads a torch Dataset or DataLoader, not a path; for a folder "
                            f"of images use gancourse.data.load('folder', path={str(source)!r}, stream=True).")
        elif isinstance(source, Dataset) or hasattr(source, "__getitem__"):
            dataset = source
        else:
            raise TypeError(f"{name}: StreamingData reads a torch Dataset or DataLoader; got {type(source).__name__}.")
        self._source = source
        self._dataset = dataset
        self.name = name
        self.split = split
        self.batch_size = check_positive_int(DEFAULT_BATCH if batch_size is None else batch_size,
                                             f"{name}: batch_size")
        self.shuffle = True if shuffle is None else bool(shuffle)
        self.num_workers = check_positive_int(0 if num_workers is None else num_workers, f"{name}: num_workers",
                                              minimum=0)

        x, y = split_item(first_item(dataset))
        x = as_tensor(x)
        kind = {3: "images", 1: "points"}.get(x.dim())
        if kind is None:
            raise ValueError(f"{name}: each sample should be an image (C, H, W) or a point (D,); the first has "
                             f"shape {tuple(x.shape)}.")
        self.kind = kind
        self._shape = tuple(x.shape)
        self._has_labels = y is not None
        if classes is None:
            classes = getattr(dataset, "classes", None)  # torchvision sets and ImageFolder name their classes
        self.classes = list(classes) if classes is not None else None
        if num_classes is None and self.classes is not None:
            num_classes = len(self.classes)
        self.num_classes = num_classes

        self._device = torch.device("cpu")
        self._memory_format = None
        self._restart()

    def _restart(self) -> None:
        """Forget the loader, iterator and buffer: the next sample starts a fresh pass."""
        self._loader = self._source if isinstance(self._source, DataLoader) else None
        self._iterator = None
        self._chunks: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self._buffered = 0
        self._warned_range = False
        self.epochs = 0  # complete passes over the data so far

    # --- shape and place -------------------------------------------------------------------------
    def __len__(self) -> int:
        try:
            return len(self._dataset)
        except TypeError:
            raise TypeError(f"{self.name} streams from a data set of unknown length "
                            "(an IterableDataset without __len__).") from None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample: (D,) for points, (C, H, W) for images."""
        return self._shape

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if self.kind != "images":
            raise AttributeError(f"{self.name} holds {self.kind} of shape {self.shape}, not images; use .shape.")
        return self._shape  # type: ignore[return-value]

    @property
    def x(self):
        raise AttributeError(f"{self.name} streams its data and never holds the whole set; "
                             "take real samples with .sample(n) instead of .x.")

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: torch.device | str, memory_format: torch.memory_format | None = None) -> StreamingData:
        """A copy that delivers batches on `device` (in `memory_format`, for images) and starts its own pass.

        None keeps the current memory format. The caller's object keeps its position; a DataLoader you
        passed in is shared by both, so sample from one of them only.
        """
        memory_format = check_memory_format(memory_format, self.kind, self.name)
        moved = copy.copy(self)
        moved._device = torch.empty(0, device=device).device  # "cuda" -> "cuda:0", as tensors report it
        if memory_format is not None:
            moved._memory_format = memory_format
        moved._restart()
        return moved

    # --- reading the stream ----------------------------------------------------------------------
    def _make_loader(self) -> DataLoader:
        iterable = isinstance(self._dataset, IterableDataset)
        return DataLoader(self._dataset, batch_size=self.batch_size, shuffle=self.shuffle and not iterable,
                          num_workers=self.num_workers, collate_fn=collate_items,
                          pin_memory=self._device.type == "cuda", persistent_workers=self.num_workers > 0)

    def _next_batch(self):
        if self._loader is None:
            self._loader = self._make_loader()
        if self._iterator is None:
            self._iterator = iter(self._loader)
        try:
            return next(self._iterator)
        except StopIteration:
            self.epochs += 1
            self._iterator = iter(self._loader)
            try:
                return next(self._iterator)
            except StopIteration:
                raise ValueError(f"{self.name}: a whole pass over the data gave no samples; "
                                 "check that the Dataset or DataLoader is not empty.") from None

    def _check(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        if tuple(x.shape[1:]) != self._shape:
            raise ValueError(f"{self.name}: a batch holds samples of shape {tuple(x.shape[1:])}, but the first item "
                             f"had {self._shape}; make every sample the same shape (e.g. resize in the transform).")
        if x.dtype != torch.uint8 and not x.is_floating_point():
            raise TypeError(f"{self.name}: samples must be uint8 images (0..255) or floats; got {x.dtype}.")
        if self.kind == "images" and x.is_floating_point():
            check_image_range(x, self.name)
            if not self._warned_range and float(x.min()) >= 0:
                warnings.warn(f"{self.name}: a float image batch has no values below 0, as if the images were in "
                              "[0, 1] (ToTensor's range); gancourse expects [-1, 1]: use x * 2 - 1, or "
                              "transforms.Normalize(0.5, 0.5).", stacklevel=4)
            self._warned_range = True
        if self._has_labels and y is None:
            raise ValueError(f"{self.name}: the first item had a label but a batch has none; "
                             "return (x, label) for every item.")

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        if self._device.type == "cuda":
            if not t.is_pinned():
                t = t.pin_memory()  # a DataLoader with pin_memory=True does this in a background thread
            return t.to(self._device, non_blocking=True)
        return t.to(self._device)

    def _fill(self, n: int) -> None:
        while self._buffered < n:
            x, y = split_batch(self._next_batch())
            self._check(x, y)
            y = self._move(y) if self._has_labels else None
            self._chunks.append((self._move(x), y))
            self._buffered += len(x)

    def _take(self, n: int):
        """The next n buffered samples (and labels), splitting a loader batch where needed."""
        n = check_positive_int(n, "sample(n): n")
        self._fill(n)
        xs, ys, need = [], [], n
        while need:
            x, y = self._chunks[0]
            if len(x) <= need:
                self._chunks.pop(0)
            else:
                self._chunks[0] = (x[need:], None if y is None else y[need:])
                x, y = x[:need], None if y is None else y[:need]
            xs.append(x)
            ys.append(y)
            need -= len(x)
        self._buffered -= n
        x = xs[0] if len(xs) == 1 else torch.cat(xs)
        y = None if not self._has_labels else (ys[0] if len(ys) == 1 else torch.cat(ys))
        return x, y

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return uint8_to_images(x, self._memory_format)
        x = x.float()
        return x if self._memory_format is None else x.contiguous(memory_format=self._memory_format)

    def sample(self, n: int, *, domain: str | None = None) -> torch.Tensor:
        """The next n samples, float32 (images in [-1, 1]) on `device`."""
        check_no_domain(self.name, domain)
        x, _ = self._take(n)
        return self._decode(x)

    def sample_with_labels(self, n: int, *, domain: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The next n samples and their labels (long, shape (n,))."""
        check_no_domain(self.name, domain)
        if not self._has_labels:
            raise ValueError(f"{self.name} has no labels; use .sample(n) instead of .sample_with_labels(n).")
        x, y = self._take(n)
        if y.shape != (len(x),):
            raise ValueError(f"{self.name}: labels must be one class index per sample, shape ({len(x)},); "
                             f"got {tuple(y.shape)}.")
        return self._decode(x), y.long()

    # --- display ---------------------------------------------------------------------------------
    def _describe(self) -> list[str]:
        try:
            size = str(len(self))
        except TypeError:
            size = "?"
        parts = [f"name={self.name!r}", f"kind={self.kind!r}", f"split={self.split!r}", f"N={size}",
                 f"shape={self.shape}"]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        loader = self._source if isinstance(self._source, DataLoader) else None
        parts.append(f"batch_size={loader.batch_size if loader else self.batch_size}")
        parts.append(f"workers={loader.num_workers if loader else self.num_workers}")
        parts.append(f"device={self.device}")
        return parts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._describe())})"
