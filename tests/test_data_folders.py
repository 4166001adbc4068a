"""load("folder") and load("unpaired") over tiny image folders written into tmp_path."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancourse import data
from gancourse.data import InMemoryData, StreamingData, UnpairedData


def save(path: Path, pixels: np.ndarray) -> Path:
    """Write uint8 pixels (H, W) grey or (H, W, 3) colour; the suffix picks PNG or JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def flat(value: int, size=(8, 8), colour=False) -> np.ndarray:
    return np.full((*size, 3) if colour else size, value, dtype=np.uint8)


def test_flat_grey_png_folder(tmp_path):
    for i in range(10):
        save(tmp_path / f"{i:02d}.png", flat(20 * i))
    d = data.load("folder", path=tmp_path, size=8, split="all")
    assert isinstance(d, InMemoryData) and d.kind == "images"
    assert d.shape == (1, 8, 8) and len(d) == 10 and d.y is None and d.classes is None
    assert d.name == tmp_path.name and d.split == "all"
    assert sorted(d.stored[:, 0, 0, 0].tolist()) == [20 * i for i in range(10)]  # PNG is lossless
    x = d.sample(16)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


def test_one_colour_image_makes_the_set_colour_and_channels_forces_it(tmp_path):
    save(tmp_path / "grey.png", flat(100))
    save(tmp_path / "red.png", np.stack([flat(255), flat(0), flat(0)], axis=-1))
    both = data.load("folder", path=tmp_path, size=8, split="all")
    assert both.shape == (3, 8, 8)
    by_value = {tuple(img[:, 0, 0].tolist()) for img in both.stored}
    assert by_value == {(100, 100, 100), (255, 0, 0)}  # grey is repeated over the three channels
    grey = data.load("folder", path=tmp_path, size=8, split="all", channels=1)
    assert grey.shape == (1, 8, 8)
    assert sorted(grey.stored[:, 0, 0, 0].tolist()) == [76, 100]  # PIL's luma: 0.299 * 255 = 76
    colour = data.load("folder", path=tmp_path / ".." / tmp_path.name, size=8, split="all", channels=3)
    assert colour.shape == (3, 8, 8) and colour.name == tmp_path.name


def test_grey_only_folder_stays_grey_unless_asked(tmp_path):
    save(tmp_path / "a.png", flat(10))
    save(tmp_path / "b.jpg", flat(200))
    assert data.load("folder", path=tmp_path, size=8, split="all").shape == (1, 8, 8)
    assert data.load("folder", path=tmp_path, size=8, split="all", channels=3).shape == (3, 8, 8)


def test_mixed_sizes_are_centre_cropped_and_resized(tmp_path):
    # A wide image whose centre square is white between black side bars, and a tall one the other way.
    wide = np.zeros((20, 40), dtype=np.uint8)
    wide[:, 10:30] = 255
    tall = np.full((60, 30), 255, dtype=np.uint8)
    tall[15:45] = 0
    save(tmp_path / "wide.png", wide)
    save(tmp_path / "tall.png", tall)
    save(tmp_path / "small.jpg", flat(128, size=(5, 5)))
    d = data.load("folder", path=tmp_path, size=16, split="all")
    assert d.shape == (1, 16, 16) and len(d) == 3
    lows, highs = d.stored.flatten(1).aminmax(dim=1)
    # The wide image lost its black bars, the tall one its white ends; JPEG and the upscale keep flat flat.
    tall, small, wide = sorted(zip(lows.tolist(), highs.tolist()))
    assert tall == (0, 0) and wide == (255, 255)
    assert 126 <= small[0] <= small[1] <= 130


def test_transparent_pixels_land_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)  # black and fully transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "clear.png")
    d = data.load("folder", path=tmp_path, size=8, split="all")
    assert d.shape == (3, 8, 8) and d.stored.min() == 255


def make_classes(root: Path, counts: dict[str, int]) -> None:
    for name, n in counts.items():
        for i in range(n):
            save(root / name / f"{i}.png", flat(10 * i + (100 if name == "dogs" else 0)))


def test_class_sub_folders_give_labels_and_sorted_class_names(tmp_path):
    make_classes(tmp_path, {"dogs": 6, "cats": 4})
    (tmp_path / "notes.txt").write_text("not an image")  # other files are ignored
    (tmp_path / ".ipynb_checkpoints").mkdir()  # and so are hidden folders
    d = data.load("folder", path=tmp_path, size=8, split="all")
    assert d.classes == ["cats", "dogs"] and d.num_classes == 2
    assert sorted(d.y.tolist()) == [0] * 4 + [1] * 6
    for img, label in zip(d.stored, d.y):
        assert (int(img[0, 0, 0]) >= 100) == (label == 1)  # every image kept its own label
    x, y = d.sample_with_labels(20)
    assert x.shape == (20, 1, 8, 8) and y.dtype == torch.long


def test_nested_files_inside_a_class_folder_count(tmp_path):
    save(tmp_path / "a" / "deep" / "x.png", flat(1))
    save(tmp_path / "b" / "y.png", flat(2))
    d = data.load("folder", path=tmp_path, size=8, split="all")
    assert d.classes == ["a", "b"] and len(d) == 2


def test_split_is_a_fixed_90_10_hold_out(tmp_path):
    for i in range(50):
        save(tmp_path / f"{i:02d}.png", flat(i))
    train, test, everything = (data.load("folder", path=tmp_path, size=8, split=s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(everything)) == (45, 5, 50)
    train_values = set(train.stored[:, 0, 0, 0].tolist())
    test_values = set(test.stored[:, 0, 0, 0].tolist())
    assert not train_values & test_values and len(train_values | test_values) == 50
    assert torch.equal(data.load("folder", path=tmp_path, size=8, split="test").stored, test.stored)
    assert len(data.load("folder", path=tmp_path, size=8, limit=7)) == 7
    with pytest.raises(ValueError, match="choose one of 'train', 'test', 'all'"):
        data.load("folder", path=tmp_path, split="valid")


def test_a_single_image_has_no_test_split(tmp_path):
    save(tmp_path / "only.png", flat(1))
    assert len(data.load("folder", path=tmp_path, size=8)) == 1
    with pytest.raises(ValueError, match="too few.*split='all'"):
        data.load("folder", path=tmp_path, size=8, split="test")


def test_corrupt_files_are_skipped_with_one_warning(tmp_path):
    for i in range(4):
        save(tmp_path / f"good{i}.png", flat(50))
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    save(tmp_path / "truncated.jpg", flat(90, size=(64, 64), colour=True))
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "truncated.jpg").read_bytes()[:200])
    with pytest.warns(UserWarning) as caught:
        d = data.load("folder", path=tmp_path, size=8, split="all", channels=1)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 2 of 6" in message and "broken.png" in message and "truncated.jpg" in message
    assert "Delete or replace" in message
    assert caught[0].filename == __file__  # the warning points at the student's load() call
    assert len(d) == 4


def test_many_corrupt_files_are_counted_not_all_named(tmp_path):
    save(tmp_path / "good.png", flat(50))
    for i in range(8):
        (tmp_path / f"bad{i}.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 8 of 9.*and 3 more"):
        data.load("folder", path=tmp_path, size=8, split="all")


def test_all_files_unreadable_is_an_error(tmp_path):
    for i in range(3):
        (tmp_path / f"bad{i}.jpg").write_bytes(b"\xff\xd8 nope")
    with pytest.raises(ValueError, match="none of the 3 image files.*could be read"):
        data.load("folder", path=tmp_path, size=8, split="all")


def test_missing_path_and_file_path_are_named(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        data.load("folder", path=missing)
    image = save(tmp_path / "one.png", flat(1))
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        data.load("folder", path=image)
    with pytest.raises(ValueError, match="needs path="):
        data.load("folder")


def test_empty_folder_and_folder_without_images_say_which_extensions_count(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no image files.*\(it is empty\).*\.png"):
        data.load("folder", path=tmp_path / "empty")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("hi")
    with pytest.raises(ValueError, match=r"no image files.*'readme\.md'.*\.jpg"):
        data.load("folder", path=tmp_path / "docs")


def test_images_at_the_top_and_in_sub_folders_are_ambiguous(tmp_path):
    save(tmp_path / "top.png", flat(1))
    save(tmp_path / "cls" / "inner.png", flat(2))
    with pytest.raises(ValueError, match="neither a flat folder nor one sub-folder per class"):
        data.load("folder", path=tmp_path, split="all")


@pytest.mark.parametrize("bad", [0, -8, 16.5, "64", None])
def test_bad_size(tmp_path, bad):
    save(tmp_path / "a.png", flat(1))
    with pytest.raises(ValueError, match="size must be a whole number"):
        data.load("folder", path=tmp_path, size=bad)


@pytest.mark.parametrize("bad", [0, 2, 4, "rgb", True])
def test_bad_channels(tmp_path, bad):
    save(tmp_path / "a.png", flat(1))
    with pytest.raises(ValueError, match=r"channels must be None .*, 1 \(grey\) or 3 \(colour\)"):
        data.load("folder", path=tmp_path, channels=bad)


def test_stream_decodes_on_demand(tmp_path):
    make_classes(tmp_path, {"a": 3, "b": 3})
    stream = data.load("folder", path=tmp_path, size=8, split="all", stream=True, workers=0)
    assert isinstance(stream, StreamingData) and stream.shape == (1, 8, 8)
    assert stream.classes == ["a", "b"] and stream.num_classes == 2
    x, y = stream.sample_with_labels(8)
    assert x.shape == (8, 1, 8, 8) and y.shape == (8,) and x.min() >= -1
    assert stream.epochs == 1


def test_worker_processes_decode_the_same_images(tmp_path):
    make_classes(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "a" / "bad.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of 7"):
        here = data.load("folder", path=tmp_path, size=8, split="all", workers=0)
    with pytest.warns(UserWarning, match="skipped 1 of 7"):
        there = data.load("folder", path=tmp_path, size=8, split="all", workers=1)
    assert torch.equal(here.stored, there.stored) and torch.equal(here.y, there.y)
    stream = data.load("folder", path=tmp_path / "b", size=8, split="all", stream=True, workers=1)
    values = ((stream.sample(3) + 1) * 127.5).round()[:, 0, 0, 0]
    assert sorted(values.tolist()) == [0, 10, 20]  # one epoch of folder b, decoded in a worker


def test_unknown_folder_option_suggests_the_right_one(tmp_path):
    with pytest.raises(TypeError, match="Did you mean 'path'"):
        data.load("folder", pth=tmp_path)


# --- unpaired ---------------------------------------------------------------------------------------

def make_unpaired(root: Path, *, colour_b: bool = True) -> None:
    for split, n in (("train", 5), ("test", 2)):
        for i in range(n):
            save(root / f"{split}A" / f"a{i}.png", flat(10 + i))
            save(root / f"{split}B" / f"b{i}.jpg", flat(200, colour=colour_b))


def test_unpaired_reads_the_cyclegan_layout(tmp_path):
    root = tmp_path / "horse2zebra"
    make_unpaired(root)
    d = data.load("unpaired", path=root, size=8)
    assert isinstance(d, UnpairedData) and d.domains == ("A", "B")
    assert d.name == "horse2zebra" and d.split == "train" and d.kind == "images"
    assert len(d.domain("A")) == 5 and len(d.domain("B")) == 5 and len(d) == 5
    assert d.shape == (3, 8, 8) == d.image_shape  # one grey domain follows the colour one
    a = d.sample(16, domain="A")
    assert a.shape == (16, 3, 8, 8) and ((a + 1) * 127.5).round().max() <= 14
    assert (d.sample(4, domain="B") > 0.4).all()
    test = data.load("unpaired", path=root, size=8, split="test")
    assert len(test.domain("A")) == 2
    assert len(data.load("unpaired", path=root, size=8, limit=3).domain("B")) == 3
    assert data.load("unpaired", path=root, size=8, channels=1).shape == (1, 8, 8)


def test_unpaired_domain_is_required_and_checked(tmp_path):
    make_unpaired(tmp_path)
    d = data.load("unpaired", path=tmp_path, size=8)
    with pytest.raises(ValueError, match="two domains, 'A' and 'B'"):
        d.sample(2)
    with pytest.raises(ValueError, match="domains 'A' and 'B'; got domain='C'"):
        d.sample(2, domain="C")
    with pytest.raises(ValueError, match="domains 'A' and 'B'"):
        d.domain("a")
    with pytest.raises(ValueError, match="no labels"):
        d.sample_with_labels(2, domain="A")


def test_unpaired_to_moves_both_domains_and_keeps_the_original(tmp_path):
    make_unpaired(tmp_path)
    d = data.load("unpaired", path=tmp_path, size=8)
    moved = d.to("cpu", memory_format=torch.channels_last)
    assert moved is not d and moved.domains == ("A", "B")
    for side in "AB":
        assert moved.sample(3, domain=side).is_contiguous(memory_format=torch.channels_last)
        assert not moved.sample(3, domain=side).is_contiguous()
        assert d.sample(3, domain=side).is_contiguous()
    meta = d.to("meta")
    assert meta.device.type == "meta" and meta.domain("B").device.type == "meta"
    assert d.device.type == "cpu"
    assert "horse" not in repr(d) and "A: N=5" in repr(d)


def test_unpaired_over_streaming_domains():
    from torch.utils.data import TensorDataset

    a = StreamingData(TensorDataset(torch.zeros(4, 3, 2, 2, dtype=torch.uint8)), name="a")
    b = InMemoryData(torch.full((6, 3, 2, 2), 255, dtype=torch.uint8), name="b")
    d = UnpairedData(a, b, name="mixed")
    assert d.sample(5, domain="A").eq(-1).all() and d.sample(5, domain="B").eq(1).all()
    assert len(d) == 6
    grey = InMemoryData(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), name="grey")
    with pytest.raises(AttributeError, match=r"domain\('A'\)\.shape"):
        UnpairedData(grey, b, name="odd").shape
    with pytest.raises(TypeError, match="one-domain"):
        UnpairedData(d, b, name="nested")


def test_unpaired_missing_sub_folder_names_the_layout_and_the_source(tmp_path):
    save(tmp_path / "trainA" / "a.png", flat(1))
    with pytest.raises(FileNotFoundError) as info:
        data.load("unpaired", path=tmp_path, size=8)
    message = str(info.value)
    assert "trainB" in message and "trainA, trainB, testA, testB" in message
    assert "CycleGAN project's datasets page" in message
    with pytest.raises(ValueError, match="choose one of 'train', 'test'"):
        data.load("unpaired", path=tmp_path, split="all")


def test_unpaired_empty_domain_is_an_error(tmp_path):
    save(tmp_path / "trainA" / "a.png", flat(1))
    (tmp_path / "trainB").mkdir()
    with pytest.raises(ValueError, match="no image files in .*trainB"):
        data.load("unpaired", path=tmp_path, size=8)


def test_folder_reader_warns_nothing_for_clean_folders(tmp_path):
    save(tmp_path / "a.png", flat(1))
    save(tmp_path / "b.jpeg", flat(2, colour=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load("folder", path=tmp_path, size=8, split="all")
