"""Image sets as (N, 1, H, W) tensors in [-1, 1]: bundled digits (offline) and torchvision's MNISTs."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.registry import DatasetUnavailableError, register

DATA_ENV = "GANCOURSE_DATA"
SPLITS = ("train", "test", "all")
MIN_SIZE = 8

# digits: a fixed shuffle, then the first 80% train and the rest is a held-out test set.
_DIGITS_SPLIT_SEED = 0
_DIGITS_TRAIN_FRACTION = 0.8


def default_root() -> Path:
    """Where downloaded data sets live: $GANCOURSE_DATA, else ~/.cache/gancourse/data."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "gancourse" / "data").expanduser()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) images to size x size, antialiased when shrinking."""
    if images.shape[-2:] == (size, size):
        return images
    shrinking = size < max(images.shape[-2:])
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


def _check_size(name: str, size) -> int:
    try:
        return check_positive_int(size, f"{name}: size", minimum=MIN_SIZE)
    except ValueError as err:
        raise ValueError(f"{err} Images are square, size x size pixels, e.g. load({name!r}, size=16).") from None


def _keep_first(name: str, x: torch.Tensor, y: torch.Tensor, limit) -> tuple[torch.Tensor, torch.Tensor]:
    if limit is None:
        return x, y
    limit = check_positive_int(limit, f"{name}: limit")
    return x[:limit], y[:limit]


@register("digits")
def digits(*, split: str = "train", size: int = 16, limit: int | None = None) -> InMemoryData:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), resized to size x size."""
    from sklearn.datasets import load_digits

    check_split("digits", split, SPLITS)
    size = _check_size("digits", size)
    bunch = load_digits()
    # Pixel values are ink counts 0..16; 0 is the background, which lands at -1.
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(_DIGITS_SPLIT_SEED))
    n_train = int(_DIGITS_TRAIN_FRACTION * len(x))
    if split == "train":
        order = order[:n_train]
    elif split == "test":
        order = order[n_train:]
    x, y = _keep_first("digits", x[order], y[order], limit)
    x = resize(x, size).clamp(0, 1) * 2 - 1
    return InMemoryData(x, y, name="digits", kind="images", num_classes=10,
                        classes=[str(d) for d in range(10)], split=split)


def _unavailable(cls, root: Path, download: bool, err: Exception) -> DatasetUnavailableError:
    """An error that says what went wrong, where we looked, how to fix it by hand, and what works offline."""
    raw = Path(root) / cls.__name__ / "raw"
    files = [Path(filename).stem for filename, _ in cls.resources]  # e.g. train-images-idx3-ubyte
    present = all((raw / f).is_file() for f in files)
    cause = f"{type(err).__name__}: {err}".strip()
    if present:
        what = f"the {cls.__name__} files in {raw} could not be read ({cause}). Delete them and download again"
    elif download:
        what = f"downloading {cls.__name__} failed ({cause})"
    else:
        what = f"the {cls.__name__} files are not in {raw} and download=False (pass download=True to fetch them)"
    return DatasetUnavailableError(
        f"{what}.\n"
        f"Looked in: {raw}\n"
        f"To install by hand: fetch {', '.join(f + '.gz' for f in files)} from {cls.mirrors[0]} "
        f"(or a mirror), gunzip them and put the four files in that folder; "
        f"set {DATA_ENV} or pass root=... to use another folder.\n"
        f"Offline alternative: gancourse.data.load('digits') needs no download and takes the same "
        f"lesson parameters (size=..., split=..., limit=...)."
    )


def _torchvision_images(dataset_class: str, name: str, *, split: str, root, size: int, download: bool,
                        limit: int | None) -> InMemoryData:
    """Read a torchvision MNIST-style set and convert its uint8 tensor to floats in [-1, 1] in one go."""
    import torchvision

    cls = getattr(torchvision.datasets, dataset_class)
    check_split(name, split, SPLITS)
    size = _check_size(name, size)
    root = default_root() if root is None else Path(root).expanduser()
    parts = []
    for train in {"train": [True], "test": [False], "all": [True, False]}[split]:
        try:
            parts.append(cls(root=str(root), train=train, download=download))
        except Exception as err:  # torchvision raises URLError, RuntimeError, OSError, ... on a failed fetch
            raise _unavailable(cls, root, download, err) from err
    x = torch.cat([p.data for p in parts])
    y = torch.cat([p.targets for p in parts]).long()
    x, y = _keep_first(name, x, y, limit)
    x = x.unsqueeze(1).float() / 127.5 - 1
    x = resize(x, size).clamp(-1, 1)
    return InMemoryData(x, y, name=name, kind="images", num_classes=len(parts[0].classes),
                        classes=list(parts[0].classes), split=split)


@register("mnist")
def mnist(*, split: str = "train", root: str | Path | None = None, size: int = 28, download: bool = True,
          limit: int | None = None) -> InMemoryData:
    """MNIST handwritten digits (60k train / 10k test, 28x28) via torchvision; downloaded once into root."""
    return _torchvision_images("MNIST", "mnist", split=split, root=root, size=size, download=download, limit=limit)


@register("fashion-mnist")
def fashion_mnist(*, split: str = "train", root: str | Path | None = None, size: int = 28, download: bool = True,
                  limit: int | None = None) -> InMemoryData:
    """Fashion-MNIST clothing images (60k train / 10k test, 28x28) via torchvision; downloaded once into root."""
    return _torchvision_images("FashionMNIST", "fashion-mnist", split=split, root=root, size=size,
                               download=download, limit=limit)
