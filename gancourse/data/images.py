"""Image sets stored as uint8 (N, C, H, W): bundled digits (offline) and torchvision's MNIST, Fashion-MNIST
and CIFAR-10 (downloaded once). CelebA lives in celeba.py, image folders in folders.py.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.registry import DatasetUnavailableError, register

DATA_ENV = "GANCOURSE_DATA"
SPLITS = ("train", "test", "all")
MIN_SIZE = 8
OFFLINE_DIGITS = ("gancourse.data.load('digits') needs no download and takes the same lesson parameters "
                  "(size=..., split=..., limit=...)")

# digits: a fixed shuffle, then the first 80% train and the rest is a held-out test set.
_DIGITS_SPLIT_SEED = 0
_DIGITS_TRAIN_FRACTION = 0.8


def default_root() -> Path:
    """Where downloaded data sets live: $GANCOURSE_DATA, else ~/.cache/gancourse/data."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "gancourse" / "data").expanduser()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float (N, C, H, W) images to size x size, antialiased when shrinking."""
    if images.shape[-2:] == (size, size):
        return images
    shrinking = size < max(images.shape[-2:])
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)


def resize_uint8(images: torch.Tensor, size: int, *, chunk: int = 1024) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images, a chunk at a time so a large set never exists as floats all at once."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = resize(images[start:start + chunk].float(), size)
        out[start:start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def check_image_size(name: str, size) -> int:
    """Images are square, size x size; say how to ask for one when `size` is not a usable whole number."""
    try:
        return check_positive_int(size, f"{name}: size", minimum=MIN_SIZE)
    except ValueError as err:
        raise ValueError(f"{err} Images are square, size x size pixels, e.g. load({name!r}, size=16).") from None


def keep_first(name: str, limit, *tensors):
    """The first `limit` rows of each tensor (all of them for limit=None)."""
    if limit is None:
        return tensors
    limit = check_positive_int(limit, f"{name}: limit")
    return tuple(t[:limit] for t in tensors)


def data_root(root) -> Path:
    return default_root() if root is None else Path(root).expanduser()


def unavailable(title: str, *, folder: Path, files: Sequence[str], by_hand: str, download: bool, err: Exception,
                note: str = "", offline: str = OFFLINE_DIGITS) -> DatasetUnavailableError:
    """An error that says what went wrong, where we looked, how to install by hand, and what works offline.

    `files` are the names (relative to `folder`) whose presence means "downloaded but unreadable".
    """
    present = bool(files) and all((folder / f).exists() for f in files)
    cause = f"{type(err).__name__}: {err}".strip()
    if present:
        what = f"the {title} files in {folder} could not be read ({cause}). Delete them and download again"
    elif download:
        what = f"downloading {title} failed ({cause})"
    else:
        what = f"the {title} files are not in {folder} and download=False (pass download=True to fetch them)"
    return DatasetUnavailableError(
        f"{what}.{(' ' + note) if note else ''}\n"
        f"Looked in: {folder}\n"
        f"To install by hand: {by_hand}; set {DATA_ENV} or pass root=... to use another folder.\n"
        f"Offline alternative: {offline}."
    )


# --- bundled digits --------------------------------------------------------------------------------

@register("digits")
def digits(*, split: str = "train", size: int = 16, limit: int | None = None) -> InMemoryData:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download), resized to size x size."""
    from sklearn.datasets import load_digits

    check_split("digits", split, SPLITS)
    size = check_image_size("digits", size)
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
    x, y = keep_first("digits", limit, x[order], y[order])
    x = resize(x, size).clamp(0, 1) * 2 - 1
    return InMemoryData(x, y, name="digits", kind="images", num_classes=10,
                        classes=[str(d) for d in range(10)], split=split)


# --- MNIST and Fashion-MNIST -----------------------------------------------------------------------

def _mnist_unavailable(cls, root: Path, download: bool, err: Exception) -> DatasetUnavailableError:
    raw = root / cls.__name__ / "raw"
    files = [Path(filename).stem for filename, _ in cls.resources]  # e.g. train-images-idx3-ubyte
    return unavailable(cls.__name__, folder=raw, files=files, download=download, err=err,
                       by_hand=f"fetch {', '.join(f + '.gz' for f in files)} from {cls.mirrors[0]} (or a mirror), "
                               "gunzip them and put the four files in that folder")


def _mnist_style(dataset_class: str, name: str, *, split: str, root, size: int, download: bool,
                 limit: int | None) -> InMemoryData:
    """Read a torchvision MNIST-style set; its uint8 (N, 28, 28) tensor is kept as uint8."""
    import torchvision

    cls = getattr(torchvision.datasets, dataset_class)
    check_split(name, split, SPLITS)
    size = check_image_size(name, size)
    root = data_root(root)
    parts = []
    for train in {"train": [True], "test": [False], "all": [True, False]}[split]:
        try:
            parts.append(cls(root=str(root), train=train, download=download))
        except Exception as err:  # torchvision raises URLError, RuntimeError, OSError, ... on a failed fetch
            raise _mnist_unavailable(cls, root, download, err) from err
    x = torch.cat([p.data for p in parts]).unsqueeze(1)
    y = torch.cat([p.targets for p in parts]).long()
    x, y = keep_first(name, limit, x, y)
    return InMemoryData(resize_uint8(x, size), y, name=name, kind="images", num_classes=len(parts[0].classes),
                        classes=list(parts[0].classes), split=split)


@register("mnist")
def mnist(*, split: str = "train", root: str | Path | None = None, size: int = 28, download: bool = True,
          limit: int | None = None) -> InMemoryData:
    """MNIST handwritten digits (60k train / 10k test, 28x28) via torchvision; downloaded once into root."""
    return _mnist_style("MNIST", "mnist", split=split, root=root, size=size, download=download, limit=limit)


@register("fashion-mnist")
def fashion_mnist(*, split: str = "train", root: str | Path | None = None, size: int = 28, download: bool = True,
                  limit: int | None = None) -> InMemoryData:
    """Fashion-MNIST clothing images (60k train / 10k test, 28x28) via torchvision; downloaded once into root."""
    return _mnist_style("FashionMNIST", "fashion-mnist", split=split, root=root, size=size, download=download,
                        limit=limit)


# --- CIFAR-10 --------------------------------------------------------------------------------------

@register("cifar10")
def cifar10(*, split: str = "train", root: str | Path | None = None, size: int = 32, download: bool = True,
            limit: int | None = None) -> InMemoryData:
    """CIFAR-10 colour photos in 10 classes (50k train / 10k test, 3x32x32) via torchvision; downloaded once."""
    from torchvision.datasets import CIFAR10

    check_split("cifar10", split, SPLITS)
    size = check_image_size("cifar10", size)
    root = data_root(root)
    parts = []
    for train in {"train": [True], "test": [False], "all": [True, False]}[split]:
        try:
            parts.append(CIFAR10(root=str(root), train=train, download=download))
        except Exception as err:
            folder = root / CIFAR10.base_folder
            files = [f for f, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
            raise unavailable("CIFAR-10", folder=folder, files=files, download=download, err=err,
                              by_hand=f"fetch {CIFAR10.filename} from {CIFAR10.url} and unpack it in {root} "
                                      f"(tar xzf {CIFAR10.filename}), which makes the folder above") from err
    # torchvision keeps the pixels as one uint8 array (N, 32, 32, 3), channels last.
    x = torch.cat([torch.from_numpy(p.data) for p in parts]).permute(0, 3, 1, 2)
    y = torch.cat([torch.as_tensor(p.targets, dtype=torch.long) for p in parts])
    x, y = keep_first("cifar10", limit, x, y)
    return InMemoryData(resize_uint8(x.contiguous(), size), y, name="cifar10", kind="images", num_classes=10,
                        classes=list(parts[0].classes), split=split)
