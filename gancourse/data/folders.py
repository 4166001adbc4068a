"""Folders of image files: `load("folder", path=...)` for any folder, `load("unpaired", path=...)` for the
trainA/trainB/testA/testB layout of the public CycleGAN sets.

Every image is centre-cropped to a square (the shorter side) and resized to size x size, so mixed sizes
and shapes are fine. channels=None gives colour (3) when any image is stored in colour, else grey (1).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.images import SPLITS, check_image_size
from gancourse.data.registry import register
from gancourse.data.streaming import StreamingData, default_workers
from gancourse.data.unpaired import UnpairedData

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
CYCLEGAN_DATASETS = ("the CycleGAN project's datasets page, https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/ "
                     "(e.g. horse2zebra.zip; see datasets/download_cyclegan_dataset.sh in "
                     "github.com/junyanz/pytorch-CycleGAN-and-pix2pix)")

# The "test" split holds out a fixed 10% of the files: a seeded shuffle of the sorted file list.
TEST_FRACTION = 0.1
SPLIT_SEED = 0
SHOW_UNREADABLE = 5
PARALLEL_FROM = 2000  # files; fewer decode faster in this process than with worker processes


# --- finding files ---------------------------------------------------------------------------------

def check_channels(name: str, channels) -> int | None:
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"{name}: channels must be None (3 if any image has colour, else 1), 1 (grey) or "
                         f"3 (colour); got {channels!r}.")
    return channels


OFFLINE_UNPAIRED = ("Without files, the built-in load('glyphs') has two domains (a sans and a serif style) whose test "
                    "pairs are known: lesson 05's DATA = 'glyphs'.")


def folder_path(name: str, path) -> Path:
    """The folder behind `path=`, or an error that names the path and says what to pass."""
    if path is None:
        raise ValueError(f"load({name!r}) needs path=..., the folder that holds the images.")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{name}: there is no folder {root} (from path={str(path)!r}); check the spelling, "
                                f"or look at what is there with os.listdir({str(root.parent)!r}).")
    if not root.is_dir():
        raise NotADirectoryError(f"{name}: {root} is a file, not a folder; pass the folder that holds the "
                                 f"images, e.g. path={str(root.parent)!r}.")
    return root


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def find_images(name: str, root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image files under `root`, sorted: flat (no labels), or one sub-folder per class (labels, class names)."""
    top = sorted(p for p in root.iterdir() if _is_image(p))
    by_class = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.rglob("*")
                       if _is_image(p) and not any(part.startswith(".") for part in p.relative_to(sub).parts))
        if files:
            by_class[sub.name] = files
    if top and by_class:
        raise ValueError(f"{name}: {root} has {len(top)} images at the top and sub-folders with images "
                         f"({', '.join(by_class)}), so it is neither a flat folder nor one sub-folder per class. "
                         "Move the top-level images into a sub-folder of their own, or point path= at one folder.")
    if top:
        return top, None, None
    if not by_class:
        others = [p.name for p in root.iterdir() if not p.name.startswith(".")]
        seen = f"; it holds {len(others)} other entries, e.g. {others[0]!r}" if others else " (it is empty)"
        raise ValueError(f"{name}: found no image files in {root}{seen}. Image files end in "
                         f"{', '.join(IMAGE_EXTENSIONS)} and sit in the folder itself or in one sub-folder per "
                         "class; put images there or point path= at the folder that holds them.")
    classes = list(by_class)
    files = [f for c in classes for f in by_class[c]]
    labels = [i for i, c in enumerate(classes) for _ in by_class[c]]
    return files, labels, classes


def holdout(name: str, n: int, split: str) -> list[int]:
    """Indices into the sorted file list for a split: a fixed seeded shuffle, the last 10% held out as test."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    n_test = max(1, round(n * TEST_FRACTION)) if n > 1 else 0
    chosen = {"train": order[:n - n_test], "test": order[n - n_test:], "all": order}[split]
    if not chosen:
        raise ValueError(f"{name}: {n} image is too few to hold one out for split={split!r}; use split='all'.")
    return chosen


# --- reading images --------------------------------------------------------------------------------

def detect_channels(files: list[Path]) -> int:
    """3 when any file is stored in colour, else 1; reads only the headers, and stops at the first colour one."""
    from PIL import Image

    for path in files:
        try:
            with Image.open(path) as image:
                if image.mode not in GREY_MODES:
                    return 3
        except Exception:  # unreadable: reported when the pixels are read
            continue
    return 1


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as uint8 (channels, size, size): transparency on white, centre square, antialiased resize."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
        image = image.convert("L" if channels == 1 else "RGB")
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        # Crop before resizing: resize(box=...) would let the filter reach past the crop's edges.
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image)
    return pixels[None].copy() if pixels.ndim == 2 else pixels.transpose(2, 0, 1).copy()


class ImageFiles(Dataset):
    """Image files decoded on demand to uint8 (channels, size, size), with labels if given: for streaming."""

    def __init__(self, files, size: int, channels: int, labels=None) -> None:
        self.files = [Path(f) for f in files]
        self.size = size
        self.channels = channels
        self.labels = labels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        path = self.files[index]
        try:
            x = torch.from_numpy(load_image(path, self.size, self.channels))
        except Exception as err:
            raise ValueError(f"could not read the image {path} ({type(err).__name__}: {err}); "
                             "delete or replace it.") from err
        return x if self.labels is None else (x, self.labels[index])


class _Decoder(Dataset):
    """(index, pixels or None, why) per file, so one bad file does not stop the others."""

    def __init__(self, files, size: int, channels: int) -> None:
        self.files, self.size, self.channels = files, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        try:
            return index, load_image(self.files[index], self.size, self.channels), None
        except Exception as err:  # PIL raises OSError, ValueError, SyntaxError, ... for broken files
            return index, None, f"{type(err).__name__}: {err}"


def _as_list(batch):
    return batch


def decode_images(files: list[Path], size: int, channels: int, *, workers: int | None = None):
    """Decode files into one uint8 (N, channels, size, size) tensor; returns it, the kept indices and the
    (path, why) of files that could not be read. Large sets decode in worker processes with a progress bar."""
    from gancourse.utils import progress_bar

    many = len(files) >= PARALLEL_FROM
    if workers is None:
        workers = default_workers() if many else 0
    loader = DataLoader(_Decoder(files, size, channels), batch_size=64, num_workers=workers, collate_fn=_as_list)
    out = torch.empty((len(files), channels, size, size), dtype=torch.uint8)
    kept, failed = [], []
    with progress_bar(total=len(files), desc="decoding images", unit="img", disable=not many) as bar:
        for batch in loader:
            for index, pixels, why in batch:
                if pixels is None:
                    failed.append((files[index], why))
                else:
                    out[index] = torch.from_numpy(pixels)
                    kept.append(index)
            bar.update(len(batch))
    return (out if len(kept) == len(files) else out[kept]), kept, failed


def report_unreadable(name: str, failed: list, total: int, where: Path) -> None:
    """Warn once about skipped files, naming the first few; refuse when none could be read."""
    if not failed:
        return
    shown = ", ".join(f"{Path(p).name} ({why})" for p, why in failed[:SHOW_UNREADABLE])
    more = f" and {len(failed) - SHOW_UNREADABLE} more" if len(failed) > SHOW_UNREADABLE else ""
    if len(failed) == total:
        raise ValueError(f"{name}: none of the {total} image files in {where} could be read: {shown}{more}. "
                         "Check that they are images (open one in an image viewer) and not empty or truncated.")
    warnings.warn(f"{name}: skipped {len(failed)} of {total} image files in {where} that could not be read: "
                  f"{shown}{more}. Delete or replace them to silence this warning.", UserWarning, stacklevel=5)


def read_folder_images(name: str, files: list[Path], size: int, channels: int, where: Path, *,
                       workers: int | None = None):
    """uint8 images and the kept indices, after warning about (or refusing) unreadable files."""
    images, kept, failed = decode_images(files, size, channels, workers=workers)
    report_unreadable(name, failed, len(files), where)
    return images, kept


# --- the registered sets ---------------------------------------------------------------------------

@register("folder")
def folder(*, split: str = "train", path: str | Path | None = None, size: int = 64, channels: int | None = None,
           limit: int | None = None, stream: bool = False, workers: int | None = None):
    """Any folder of images: flat (unlabelled) or one sub-folder per class (labels; classes = sorted names).

    Splits: a fixed seeded shuffle of the sorted file list holds out 10% as "test"; "train" is the other
    90%, "all" every file. `limit` keeps the first files of the split. stream=True decodes on demand
    (a StreamingData) for folders too large for memory. `workers`: decoding processes (None: automatic).
    """
    check_split("folder", split, SPLITS)
    size = check_image_size("folder", size)
    channels = check_channels("folder", channels)
    if workers is not None:
        workers = check_positive_int(workers, "folder: workers", minimum=0)
    root = folder_path("folder", path)
    files, labels, classes = find_images("folder", root)
    order = holdout("folder", len(files), split)
    if limit is not None:
        order = order[:check_positive_int(limit, "folder: limit")]
    files = [files[i] for i in order]
    labels = None if labels is None else [labels[i] for i in order]
    channels = channels or detect_channels(files)
    name = root.resolve().name or "folder"
    num_classes = None if classes is None else len(classes)
    if stream:
        return StreamingData(ImageFiles(files, size, channels, labels), name=name, split=split, classes=classes,
                             num_workers=default_workers() if workers is None else workers)
    images, kept = read_folder_images("folder", files, size, channels, root, workers=workers)
    y = None if labels is None else torch.tensor([labels[i] for i in kept])
    return InMemoryData(images, y, name=name, kind="images", num_classes=num_classes, classes=classes, split=split)


@register("unpaired")
def unpaired(*, split: str = "train", path: str | Path | None = None, size: int = 64, channels: int | None = None,
             limit: int | None = None) -> UnpairedData:
    """Two unpaired image domains from path/trainA, trainB, testA, testB (the CycleGAN sets' layout).

    channels=None picks one channel count for both domains (3 if any image has colour), so they share a shape.
    """
    check_split("unpaired", split, ("train", "test"))
    size = check_image_size("unpaired", size)
    channels = check_channels("unpaired", channels)
    if path is not None and not Path(path).expanduser().exists():
        raise FileNotFoundError(f"unpaired: there is no folder {Path(path).expanduser()} (from path={str(path)!r}). "
                                f"Put the two domains there as trainA/, trainB/, testA/, testB/ (one image folder per "
                                f"domain and split), e.g. by unzipping horse2zebra.zip from {CYCLEGAN_DATASETS}. "
                                f"{OFFLINE_UNPAIRED}")
    root = folder_path("unpaired", path)
    name = root.resolve().name or "unpaired"
    folders = {d: root / f"{split}{d}" for d in ("A", "B")}
    missing = [p.name for p in folders.values() if not p.is_dir()]
    if missing:
        raise FileNotFoundError(f"unpaired: {root} has no {' or '.join(missing)} folder. Expected the layout "
                                f"{root.name}/trainA, trainB, testA, testB (one image folder per domain and split), "
                                f"as in the public CycleGAN sets from {CYCLEGAN_DATASETS}. {OFFLINE_UNPAIRED}")
    files = {d: find_images("unpaired", p)[0] for d, p in folders.items()}
    if limit is not None:
        limit = check_positive_int(limit, "unpaired: limit")
        files = {d: f[:limit] for d, f in files.items()}
    channels = channels or max(detect_channels(f) for f in files.values())
    sides = {}
    for d, p in folders.items():
        images, _ = read_folder_images("unpaired", files[d], size, channels, p)
        sides[d] = InMemoryData(images, name=f"{name}/{p.name}", kind="images", split=split)
    return UnpairedData(sides["A"], sides["B"], name=name, split=split)
