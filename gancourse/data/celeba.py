"""CelebA faces via torchvision's file layout: the aligned 178x218 photos, centre-cropped to a square and
resized. Decoding ~200k JPEGs takes minutes, so the uint8 result is cached beside the files and the next
load of the same split, size and limit takes seconds. stream=True decodes on demand instead.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from gancourse.data.dataset import InMemoryData, check_positive_int, check_split
from gancourse.data.folders import ImageFiles, read_folder_images
from gancourse.data.images import check_image_size, data_root, unavailable
from gancourse.data.registry import DatasetUnavailableError, register
from gancourse.data.streaming import StreamingData, default_workers

CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
SPLITS = ("train", "valid", "test", "all")
CACHE_VERSION = 1


def _celeba_unavailable(cls, root: Path, download: bool, err: Exception) -> DatasetUnavailableError:
    folder = root / cls.base_folder
    lists = [filename for _, _, filename in cls.file_list if not filename.endswith(".zip")]
    note = ("Google Drive often refuses automated CelebA downloads (a daily quota), so installing by hand "
            "is the usual way." if download else "")
    return unavailable(
        "CelebA", folder=folder, files=["img_align_celeba", *lists], download=download, err=err, note=note,
        by_hand=(f"from the CelebA page ({CELEBA_PAGE}: 'Align&Cropped Images', plus the annotation and "
                 f"evaluation lists) fetch img_align_celeba.zip and {', '.join(lists)}; put them in {folder} "
                 f"and unzip the zip there, so that {folder / 'img_align_celeba' / '000001.jpg'} exists"),
        offline=("gancourse.data.load('digits') needs no download; load('folder', path=...) reads any folder "
                 "of images, e.g. an unzipped img_align_celeba folder (it needs none of the list files)"))


def cache_path(root: Path, split: str, size: int, limit: int | None) -> Path:
    return root / "celeba" / f"gancourse-{split}-{size}px-{'all' if limit is None else limit}.pt"


def read_cache(path: Path, listed: int) -> torch.Tensor | None:
    """The cached uint8 images, or None when there is no cache or it was made from another file list."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=True)
    except Exception as err:
        warnings.warn(f"celeba: ignoring the unreadable cache {path} ({type(err).__name__}); decoding again.",
                      stacklevel=3)
        return None
    if blob.get("version") != CACHE_VERSION or blob.get("listed") != listed:
        return None
    return blob["images"]


def write_cache(path: Path, images: torch.Tensor, listed: int) -> None:
    """Write atomically (a temporary file, then a rename) so an interrupted save never leaves half a cache."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"version": CACHE_VERSION, "listed": listed, "images": images}, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"celeba: could not write the cache {path} ({err}); the next load decodes again.",
                      stacklevel=3)


@register("celeba")
def celeba(*, split: str = "train", root: str | Path | None = None, size: int = 64, download: bool = True,
           limit: int | None = None, stream: bool = False, workers: int | None = None):
    """CelebA celebrity faces (162,770 train / 19,867 valid / 19,962 test), 3 x size x size, unlabelled.

    The first load decodes the JPEGs (with `workers` processes) and caches them beside the files as
    celeba/gancourse-<split>-<size>px-<limit>.pt (delete those to decode again); stream=True returns a
    StreamingData that decodes on demand, for sizes that do not fit in memory.
    """
    from torchvision.datasets import CelebA

    check_split("celeba", split, SPLITS)
    size = check_image_size("celeba", size)
    if limit is not None:
        limit = check_positive_int(limit, "celeba: limit")
    if workers is not None:
        workers = check_positive_int(workers, "celeba: workers", minimum=0)
    root = data_root(root)
    try:
        # target_type=[]: we use only its file list for the split (and its download and file checks).
        listing = CelebA(root=str(root), split=split, target_type=[], download=download)
    except Exception as err:  # torchvision raises RuntimeError, OSError, gdown's errors, ... on a failed fetch
        raise _celeba_unavailable(CelebA, root, download, err) from err
    folder = root / CelebA.base_folder / "img_align_celeba"
    files = [folder / name for name in listing.filename][:limit]
    if stream:
        return StreamingData(ImageFiles(files, size, 3), name="celeba", split=split,
                             num_workers=default_workers() if workers is None else workers)
    cache = cache_path(root, split, size, limit)
    images = read_cache(cache, len(files))
    if images is None:
        images, _ = read_folder_images("celeba", files, size, 3, folder, workers=workers)
        write_cache(cache, images, len(files))
    return InMemoryData(images, name="celeba", kind="images", split=split)
