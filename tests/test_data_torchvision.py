"""CIFAR-10 and CelebA read from tiny sets written in torchvision's own file formats (no network)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from gancourse import data
from gancourse.data import DatasetUnavailableError, InMemoryData, StreamingData


def exists_only(fpath, md5=None) -> bool:
    return os.path.isfile(fpath)


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision compares md5 sums against the real files, which a tiny fake cannot match; check only
    that each file exists, so missing files still fail exactly as they would for a student."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists_only)
    monkeypatch.setattr(torchvision.datasets.celeba, "check_integrity", exists_only)


def test_new_sets_are_registered():
    assert {"cifar10", "celeba", "folder", "unpaired"} <= set(data.available())
    with pytest.raises(TypeError, match="Did you mean 'size'"):
        data.load("cifar10", sise=16)
    with pytest.raises(data.UnknownDatasetError, match="Did you mean 'celeba'"):
        data.load("celeb")


# --- CIFAR-10 --------------------------------------------------------------------------------------

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batch(path: Path, first: int, n: int) -> None:
    """A batch in CIFAR-10's python format: each row is R, G, B planes of 32x32 bytes; image i is flat
    with colour (i, 100 + i, 200 + i) so that channel order and row order can be checked."""
    rows = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    for k in range(n):
        i = first + k
        rows[k] = np.array([i, 100 + i, 200 + i], dtype=np.uint8)[:, None, None]
    with open(path, "wb") as f:
        pickle.dump({"data": rows.reshape(n, 3072), "labels": [i % 10 for i in range(first, first + n)]}, f)


def make_fake_cifar(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(5):
        cifar_batch(folder / f"data_batch_{b + 1}", first=2 * b, n=2)  # images 0..9 for training
    cifar_batch(folder / "test_batch", first=40, n=3)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": 2, "num_vis": 3072}, f)


def test_cifar10_read_from_local_files(tmp_path, no_md5):
    make_fake_cifar(tmp_path)
    train = data.load("cifar10", root=tmp_path, download=False)
    assert isinstance(train, InMemoryData) and train.kind == "images"
    assert train.shape == (3, 32, 32) and len(train) == 10 and train.stored.dtype == torch.uint8
    assert train.classes == CIFAR_CLASSES and train.num_classes == 10
    assert train.y.tolist() == list(range(10))
    for i in range(10):
        assert train.stored[i, :, 5, 7].tolist() == [i, 100 + i, 200 + i]  # HWC was turned into CHW
    x, y = train.sample_with_labels(20)
    assert torch.equal(x[:, 0, 0, 0], y.float() / 127.5 - 1)  # image i has label i and red value i

    test = data.load("cifar10", root=tmp_path, download=False, split="test")
    assert len(test) == 3 and test.stored[0, :, 0, 0].tolist() == [40, 140, 240]
    assert len(data.load("cifar10", root=tmp_path, download=False, split="all")) == 13


def test_cifar10_size_limit_and_default_root(tmp_path, monkeypatch, no_md5):
    make_fake_cifar(tmp_path)
    monkeypatch.setenv("GANCOURSE_DATA", str(tmp_path))
    small = data.load("cifar10", download=False, size=16, limit=4)
    assert small.shape == (3, 16, 16) and len(small) == 4 and small.y.tolist() == [0, 1, 2, 3]
    assert small.stored[3, :, 8, 8].tolist() == [3, 103, 203]  # flat images stay flat through the resize


def test_cifar10_failed_download_names_the_offline_alternative(tmp_path, monkeypatch):
    def no_network(self):
        raise URLError("no network in this test")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    with pytest.raises(DatasetUnavailableError) as info:
        data.load("cifar10", root=tmp_path)
    message = str(info.value)
    assert "downloading CIFAR-10 failed" in message and "no network in this test" in message
    assert f"Looked in: {tmp_path / 'cifar-10-batches-py'}" in message
    assert "cifar-10-python.tar.gz" in message and "https://www.cs.toronto.edu/" in message
    assert "load('digits')" in message


def test_cifar10_missing_files_without_download(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="CIFAR-10 files are not in .*download=False"):
        data.load("cifar10", root=tmp_path, download=False)


def test_cifar10_unreadable_files_say_delete_and_download_again(tmp_path):
    make_fake_cifar(tmp_path)  # present, but the real md5 check refuses them
    with pytest.raises(DatasetUnavailableError, match="could not be read.*Delete them and download again"):
        data.load("cifar10", root=tmp_path, download=False)


# --- CelebA ----------------------------------------------------------------------------------------

# 3 train, 2 valid, 2 test (torchvision cannot list a split of exactly one file: it squeezes to a 0-d tensor).
CELEBA_PARTITION = [0, 0, 0, 1, 1, 2, 2]


def celeba_face(i: int) -> np.ndarray:
    """A 178 wide x 218 tall photo: a flat square of value 30 * (i + 1) between black bands 20 rows high."""
    face = np.zeros((218, 178, 3), dtype=np.uint8)
    face[20:198] = 30 * (i + 1)
    return face


def make_fake_celeba(root: Path) -> list[str]:
    """img_align_celeba/*.jpg and the five list files torchvision's CelebA reads (whatever target_type)."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(CELEBA_PARTITION))]
    for i, name in enumerate(names):
        Image.fromarray(celeba_face(i)).save(folder / "img_align_celeba" / name, quality=95)
    n = len(names)
    (folder / "list_eval_partition.txt").write_text("".join(f"{m} {p}\n" for m, p in zip(names, CELEBA_PARTITION)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{m} {i + 1}\n" for i, m in enumerate(names)))
    # The other three have a count line and a header line first.
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{m}  95  71 226 313\n" for m in names))
    points = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{points}\n" + "".join(f"{m} 69 109 106 113 77 142 73 152 108 154\n" for m in names))
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\nSmiling Young\n" + "".join(f"{m}  1 -1\n" for m in names))
    return names


def test_celeba_splits_crop_and_resize(tmp_path, no_md5):
    make_fake_celeba(tmp_path)
    train = data.load("celeba", root=tmp_path, size=16)
    assert isinstance(train, InMemoryData) and train.name == "celeba" and train.split == "train"
    assert train.shape == (3, 16, 16) and len(train) == 3 and train.y is None and train.num_classes is None
    for i, image in enumerate(train.stored):
        # The centre square is flat, so the black bands above and below must not show after the crop.
        assert (image.float() - 30 * (i + 1)).abs().max() <= 4
    assert [len(data.load("celeba", root=tmp_path, size=16, split=s)) for s in ("valid", "test", "all")] == [2, 2, 7]
    assert data.load("celeba", root=tmp_path, size=8, limit=2).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="choose one of 'train', 'valid', 'test', 'all'"):
        data.load("celeba", root=tmp_path, split="validation")


def test_celeba_second_load_comes_from_the_cache(tmp_path, no_md5):
    names = make_fake_celeba(tmp_path)
    first = data.load("celeba", root=tmp_path, size=16, split="all")
    cache = tmp_path / "celeba" / "gancourse-all-16px-all.pt"
    assert cache.is_file()
    assert not list((tmp_path / "celeba").glob("*.tmp"))  # written atomically: no temporary file left
    for name in names:  # without the JPEGs only the cache can answer
        (tmp_path / "celeba" / "img_align_celeba" / name).write_bytes(b"")
    second = data.load("celeba", root=tmp_path, size=16, split="all")
    assert torch.equal(first.stored, second.stored)
    # Another size or limit is another cache entry, so it decodes the (now broken) files.
    with pytest.raises(ValueError, match="none of the 2 image files"):
        data.load("celeba", root=tmp_path, size=16, split="all", limit=2)


def test_celeba_unreadable_cache_is_decoded_again(tmp_path, no_md5):
    make_fake_celeba(tmp_path)
    cache = tmp_path / "celeba" / "gancourse-train-16px-all.pt"
    cache.write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        d = data.load("celeba", root=tmp_path, size=16)
    assert len(d) == 3
    assert torch.equal(torch.load(cache, weights_only=True)["images"], d.stored)  # and the cache is mended


def test_celeba_stream(tmp_path, no_md5):
    make_fake_celeba(tmp_path)
    stream = data.load("celeba", root=tmp_path, size=16, stream=True, workers=0)
    assert isinstance(stream, StreamingData) and stream.shape == (3, 16, 16) and len(stream) == 3
    x = stream.sample(5)
    assert x.shape == (5, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert not list((tmp_path / "celeba").glob("*.pt"))  # streaming decodes on demand, no cache


def test_celeba_refused_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    def refused(self):
        raise RuntimeError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setattr(torchvision.datasets.CelebA, "download", refused)
    with pytest.raises(DatasetUnavailableError) as info:
        data.load("celeba", root=tmp_path)
    message = str(info.value)
    assert "downloading CelebA failed" in message and "Too many users" in message
    assert "Google Drive often refuses" in message
    assert str(tmp_path / "celeba" / "img_align_celeba" / "000001.jpg") in message
    assert "img_align_celeba.zip" in message and "list_eval_partition.txt" in message
    assert "load('digits')" in message and "load('folder', path=...)" in message


def test_celeba_without_files_and_download_false(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="CelebA files are not in .*download=False"):
        data.load("celeba", root=tmp_path, download=False)
