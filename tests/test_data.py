"""Tests for gancourse.data: built-in sets, sampling, splits, errors, and MNIST read from local IDX files."""
from __future__ import annotations

import math
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from gancourse import data
from gancourse.data import DatasetUnavailableError, InMemoryData, MixtureData, UnknownDatasetError


# --- registry --------------------------------------------------------------------------------------

def test_available_lists_the_built_in_sets():
    assert {"ring8", "grid25", "digits", "mnist", "fashion-mnist"} <= set(data.available())


def test_unknown_name_lists_known_names_and_suggests_the_closest():
    with pytest.raises(ValueError) as info:
        data.load("mnsit")
    assert isinstance(info.value, UnknownDatasetError)
    message = str(info.value)
    assert "Did you mean 'mnist'?" in message
    for name in data.available():
        assert name in message


def test_names_ignore_case_and_underscores(tmp_path):
    assert data.load("RING8", n=10).name == "ring8"
    with pytest.raises(DatasetUnavailableError):  # the name resolved; only the files are missing
        data.load("Fashion_MNIST", root=tmp_path, download=False)


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(TypeError, match="ring8 accepts: n, seed, sigma, radius"):
        data.load("ring8", size=16)


def test_register_adds_a_set_and_refuses_a_silent_clash():
    @data.register("tiny-test-set")
    def tiny(*, split="train", n=3):
        return InMemoryData(torch.zeros(n, 2), name="tiny-test-set", split=split)

    try:
        assert "tiny-test-set" in data.available()
        assert len(data.load("tiny-test-set", n=5)) == 5
        with pytest.raises(ValueError, match="already registered"):
            data.register("ring8")(tiny)
    finally:
        data.registry._LOADERS.pop("tiny-test-set")


# --- InMemoryData ----------------------------------------------------------------------------------

def test_sample_returns_rows_of_x_from_the_global_rng():
    ring = data.load("ring8", n=2000)
    torch.manual_seed(3)
    a = ring.sample(64)
    torch.manual_seed(3)
    b = ring.sample(64)
    assert a.shape == (64, 2)
    assert torch.equal(a, b)
    is_row = (a[:, None, :] == ring.x[None, :, :]).all(dim=2).any(dim=1)
    assert is_row.all()


def test_sample_with_labels_keeps_pairs_together():
    x = torch.arange(100, dtype=torch.float32).unsqueeze(1).repeat(1, 2)
    d = InMemoryData(x, torch.arange(100) % 7, name="pairs")
    xs, ys = d.sample_with_labels(500)
    assert xs.shape == (500, 2) and ys.shape == (500,)
    assert torch.equal(xs[:, 0].long() % 7, ys)
    assert xs[:, 0].unique().numel() > 50  # draws spread over the set, not one row repeated


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", True, None])
def test_sample_rejects_a_bad_n(bad):
    ring = data.load("ring8", n=10)
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        ring.sample(bad)


def test_sample_with_labels_without_labels_says_use_sample():
    d = InMemoryData(torch.zeros(4, 2), name="unlabelled")
    assert d.y is None and d.num_classes is None
    with pytest.raises(ValueError, match=r"use \.sample\(n\)"):
        d.sample_with_labels(2)


def test_to_returns_a_moved_copy_including_centers():
    ring = data.load("ring8", n=10)
    moved = ring.to("meta")  # a device with no storage: checks placement without a GPU
    assert moved is not ring
    assert moved.x.device.type == "meta" and moved.y.device.type == "meta"
    assert moved.centers.device.type == "meta"
    assert ring.x.device.type == "cpu" and ring.centers.device.type == "cpu"
    assert data.load("ring8", n=10, device="cpu").device == torch.device("cpu")


def test_repr_tells_a_student_what_the_set_is():
    text = repr(data.load("digits", size=8))
    for part in ["'digits'", "'images'", "N=1437", "shape=(1, 8, 8)", "range=[-1.00, 1.00]", "num_classes=10"]:
        assert part in text
    text = repr(data.load("ring8", n=100))
    for part in ["MixtureData", "'points'", "N=100", "shape=(2,)", "modes=8", "sigma=0.02"]:
        assert part in text


def test_image_shape_only_for_images():
    assert data.load("digits", size=12).image_shape == (1, 12, 12)
    ring = data.load("ring8", n=10)
    assert getattr(ring, "image_shape", None) is None
    with pytest.raises(AttributeError, match="not images"):
        ring.image_shape


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="label every row"):
        InMemoryData(torch.zeros(4, 2), torch.zeros(3), name="bad")


# --- toy mixtures ----------------------------------------------------------------------------------

def test_ring8_geometry_and_spread():
    ring = data.load("ring8")
    assert isinstance(ring, MixtureData)
    assert ring.x.shape == (100_000, 2) and ring.x.dtype == torch.float32
    assert ring.kind == "points" and ring.num_classes == 8 and ring.sigma == 0.02
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    angles = torch.atan2(ring.centers[:, 1], ring.centers[:, 0]).remainder(2 * math.pi).sort().values
    assert torch.allclose(angles.diff(), torch.full((7,), 2 * math.pi / 8), atol=1e-5)
    offsets = ring.x - ring.centers[ring.y]
    assert offsets.norm(dim=1).max() < 6 * ring.sigma
    assert offsets.std(dim=0) == pytest.approx([0.02, 0.02], rel=0.02)
    counts = torch.bincount(ring.y, minlength=8).float()
    assert (counts / counts.sum() - 1 / 8).abs().max() < 0.01


def test_ring8_options():
    ring = data.load("ring8", n=500, radius=3.0, sigma=0.1)
    assert len(ring) == 500 and ring.sigma == 0.1
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 3.0))
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        data.load("ring8", sigma=0)


def test_grid25_centers_are_the_5x5_grid():
    grid = data.load("grid25", n=20_000)
    assert grid.centers.shape == (25, 2) and grid.sigma == 0.05 and grid.num_classes == 25
    expected = {(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0) for b in (-4.0, -2.0, 0.0, 2.0, 4.0)}
    assert {tuple(c) for c in grid.centers.tolist()} == expected
    assert (grid.x - grid.centers[grid.y]).norm(dim=1).max() < 6 * grid.sigma
    assert torch.bincount(grid.y, minlength=25).min() > 0


def test_mixtures_are_the_same_every_time_and_the_seed_changes_them():
    torch.manual_seed(123)  # the global RNG must not matter
    a = data.load("ring8", n=1000)
    torch.manual_seed(456)
    b = data.load("ring8", n=1000)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, data.load("ring8", n=1000, seed=1).x)
    test = data.load("ring8", n=1000, split="test")
    assert test.split == "test" and not torch.equal(a.x, test.x)


# --- digits ----------------------------------------------------------------------------------------

def test_digits_default_shape_range_and_labels():
    d = data.load("digits")
    assert d.kind == "images" and d.x.shape == (1437, 1, 16, 16) and d.x.dtype == torch.float32
    assert d.x.min() == -1 and d.x.max() <= 1 and d.x.max() > 0.9
    assert d.x[:, :, 0, 0].eq(-1).all()  # the background (ink count 0) is exactly -1
    assert d.x.eq(-1).float().mean() > 0.2
    assert d.num_classes == 10 and d.y.dtype == torch.long
    assert set(d.y.tolist()) == set(range(10))


def test_digits_at_native_size_matches_scikit_learn():
    from sklearn.datasets import load_digits

    d = data.load("digits", size=8, split="all")
    bunch = load_digits()
    labels = torch.as_tensor(bunch.target)[:, None].float()
    # The split shuffles rows, so compare as sorted lists of (pixels, label). Images are stored as uint8
    # now, so ink count k of 16 is kept as round(k * 255 / 16) and decodes to within 1/255 of k / 8 - 1.
    ours = torch.cat([d.stored.flatten(1).float(), d.y[:, None].float()], dim=1)
    theirs = torch.cat([(torch.as_tensor(bunch.data, dtype=torch.float64) * 255 / 16).round().float(), labels], dim=1)
    assert torch.equal(torch.tensor(sorted(ours.tolist())), torch.tensor(sorted(theirs.tolist())))
    ours = torch.cat([d.x.flatten(1), d.y[:, None].float()], dim=1)
    theirs = torch.cat([torch.as_tensor(bunch.data, dtype=torch.float32) / 8 - 1, labels], dim=1)
    assert torch.allclose(torch.tensor(sorted(ours.tolist())), torch.tensor(sorted(theirs.tolist())), atol=1.01 / 255)


def test_digits_splits_are_disjoint_and_cover_the_set():
    train, test, everything = (data.load("digits", size=8, split=s) for s in ("train", "test", "all"))
    assert len(train) + len(test) == len(everything) == 1797
    assert len(test) == 360
    # scikit-learn's 1797 images are all distinct, so a shared row would mean a leak between splits.
    train_rows, test_rows = ({tuple(r) for r in d.x.flatten(1).tolist()} for d in (train, test))
    assert len(train_rows) == len(train) and not train_rows & test_rows
    assert torch.equal(data.load("digits", size=8, split="test").x, test.x)  # the split is fixed
    with pytest.raises(ValueError, match="choose one of 'train', 'test', 'all'"):
        data.load("digits", split="validation")


@pytest.mark.parametrize("size", [28, 32])
def test_digits_resize(size):
    d = data.load("digits", size=size, limit=50)
    assert d.x.shape == (50, 1, size, size)
    assert d.x.min() >= -1 and d.x.max() <= 1


@pytest.mark.parametrize("bad", [4, 0, 16.5, "16", None])
def test_digits_bad_size_says_how_to_fix(bad):
    with pytest.raises(ValueError, match=r"size must be a whole number >= 8.*size=16"):
        data.load("digits", size=bad)


# --- MNIST and Fashion-MNIST from IDX files on disk ------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format MNIST ships in: magic (type 0x08, ndim), big-endian dims, bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_fake_mnist(root: Path, folder: str, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-format set under root/<folder>/raw and return the arrays written."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0] = 0
        images[1] = 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = images
        arrays[prefix + "_labels"] = labels
    return arrays


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_set_read_from_local_files(tmp_path, name, folder):
    arrays = make_fake_mnist(tmp_path, folder)
    train = data.load(name, root=tmp_path, download=False)
    assert train.kind == "images" and train.x.shape == (12, 1, 28, 28) and train.num_classes == 10
    expected = torch.from_numpy(arrays["train"]).float().unsqueeze(1) / 127.5 - 1
    assert torch.allclose(train.x, expected)
    assert train.x[0].eq(-1).all() and train.x[1].eq(1).all()
    assert train.y.tolist() == arrays["train_labels"].tolist()

    test = data.load(name, root=tmp_path, download=False, split="test")
    assert test.x.shape == (5, 1, 28, 28)
    assert torch.allclose(test.x, torch.from_numpy(arrays["t10k"]).float().unsqueeze(1) / 127.5 - 1)
    assert len(data.load(name, root=tmp_path, download=False, split="all")) == 17


def test_mnist_size_limit_and_default_root(tmp_path, monkeypatch):
    make_fake_mnist(tmp_path, "MNIST")
    monkeypatch.setenv("GANCOURSE_DATA", str(tmp_path))
    small = data.load("mnist", download=False, size=14, limit=7)
    assert small.x.shape == (7, 1, 14, 14) and small.y.shape == (7,)
    assert small.x.min() >= -1 and small.x.max() <= 1
    assert small.x[0].eq(-1).all() and small.x[1].eq(1).all()  # flat images stay flat through the resize
    with pytest.raises(ValueError, match="limit must be a whole number"):
        data.load("mnist", download=False, limit=0)


@pytest.mark.parametrize("name, cls", [("mnist", torchvision.datasets.MNIST),
                                       ("fashion-mnist", torchvision.datasets.FashionMNIST)])
def test_failed_download_names_the_offline_alternative(tmp_path, monkeypatch, name, cls):
    def no_network(self):
        raise URLError("no network in this test")

    monkeypatch.setattr(cls, "download", no_network)
    with pytest.raises(DatasetUnavailableError) as info:
        data.load(name, root=tmp_path, download=True)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "failed" in message and "no network in this test" in message
    assert str(tmp_path / cls.__name__ / "raw") in message
    assert "train-images-idx3-ubyte" in message
    assert "load('digits')" in message


def test_missing_files_without_download_say_so(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="download=False.*\n.*Looked in"):
        data.load("mnist", root=tmp_path, download=False)
