"""StreamingData over a Dataset or DataLoader: shapes, range, labels, buffering, epochs, layout, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from gancourse.data import StreamingData


def numbered_images(n: int = 10, channels: int = 3) -> torch.Tensor:
    """uint8 images (n, C, 4, 4) whose every pixel is the image's index, so a batch shows which rows it holds."""
    return torch.arange(n, dtype=torch.uint8).reshape(n, 1, 1, 1).repeat(1, channels, 4, 4)


def indices(batch: torch.Tensor) -> list[int]:
    """Decode the image index back from [-1, 1] pixels."""
    return ((batch[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def test_tensor_dataset_of_uint8_images_in_order_wraps_into_a_new_epoch():
    stream = StreamingData(TensorDataset(numbered_images(10)), name="numbers", shuffle=False, batch_size=3)
    assert stream.kind == "images" and stream.shape == (3, 4, 4) and stream.image_shape == (3, 4, 4)
    assert len(stream) == 10 and stream.domains is None and stream.num_classes is None
    first = stream.sample(4)
    assert first.dtype == torch.float32 and first.shape == (4, 3, 4, 4)
    assert first.min() >= -1 and first.max() <= 1
    assert indices(first) == [0, 1, 2, 3]
    assert indices(stream.sample(4)) == [4, 5, 6, 7]
    assert stream.epochs == 0
    assert indices(stream.sample(4)) == [8, 9, 0, 1]  # the pass ended: a new epoch starts
    assert stream.epochs == 1
    assert indices(stream.sample(9)) == [2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_uint8_values_decode_to_k_over_127_5_minus_1():
    levels = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.uint8).reshape(6, 1, 1, 1).repeat(1, 1, 2, 2)
    stream = StreamingData(TensorDataset(levels), name="levels", shuffle=False)
    batch = stream.sample(6)
    expected = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.float32) / 127.5 - 1
    assert torch.equal(batch[:, 0, 0, 0], expected)
    assert batch[0].eq(-1).all() and batch[5].eq(1).all()


def test_labels_come_with_their_samples():
    x = numbered_images(12)
    stream = StreamingData(TensorDataset(x, torch.arange(12) % 5), name="labelled", num_classes=5)
    xs, ys = stream.sample_with_labels(30)
    assert xs.shape == (30, 3, 4, 4) and ys.shape == (30,) and ys.dtype == torch.long
    assert [i % 5 for i in indices(xs)] == ys.tolist()
    assert stream.num_classes == 5
    assert stream.sample(3).shape == (3, 3, 4, 4)  # sample() ignores the labels


def test_shuffled_stream_sees_every_sample_once_per_epoch_and_repeats_with_a_seed():
    def first_epoch():
        torch.manual_seed(5)
        stream = StreamingData(TensorDataset(numbered_images(20)), name="shuffled", batch_size=6)
        return indices(stream.sample(20))

    order = first_epoch()
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert first_epoch() == order


def test_dataloader_batches_of_another_size_are_buffered_and_split():
    loader = DataLoader(TensorDataset(numbered_images(10), torch.arange(10)), batch_size=4, shuffle=False)
    stream = StreamingData(loader, name="loader")
    got = []
    for n in (3, 3, 3, 3, 5):
        x, y = stream.sample_with_labels(n)
        assert x.shape[0] == n and indices(x) == y.tolist()
        got += y.tolist()
    assert got == list(range(10)) + list(range(7))
    assert stream.epochs == 1
    assert "batch_size=4" in repr(stream)


def test_dataloader_options_belong_to_the_loader():
    loader = DataLoader(TensorDataset(numbered_images(4)), batch_size=2)
    with pytest.raises(ValueError, match="belong to your DataLoader"):
        StreamingData(loader, batch_size=8)


def test_float_items_in_range_pass_through():
    x = torch.rand(8, 3, 4, 4) * 2 - 1
    stream = StreamingData(TensorDataset(x), name="floats", shuffle=False)
    assert torch.equal(stream.sample(8), x)


def test_float_items_outside_the_range_are_an_error_and_zero_one_items_warn():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        StreamingData(TensorDataset(torch.full((4, 1, 2, 2), 3.0)), name="bad").sample(2)
    stream = StreamingData(TensorDataset(torch.rand(4, 1, 2, 2)), name="unit")
    with pytest.warns(UserWarning, match=r"\[0, 1\].*x \* 2 - 1"):
        stream.sample(2)


def test_points_stream_as_float32():
    stream = StreamingData(TensorDataset(torch.randn(9, 2, dtype=torch.float64)), name="pts", batch_size=4)
    assert stream.kind == "points" and stream.shape == (2,)
    assert stream.sample(5).dtype == torch.float32
    with pytest.raises(AttributeError, match="not images"):
        stream.image_shape


class PILFaces(Dataset):
    """A torchvision-style data set without a transform: PIL images and an int label."""

    classes = ["dark", "light"]

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return Image.fromarray(np.full((5, 5, 3), 40 * i, dtype=np.uint8)), i % 2


def test_pil_items_and_class_names_from_the_dataset():
    stream = StreamingData(PILFaces(), name="pil", shuffle=False)
    assert stream.shape == (3, 5, 5) and stream.classes == ["dark", "light"] and stream.num_classes == 2
    x, y = stream.sample_with_labels(6)
    assert torch.equal(x[:, 1, 2, 3], torch.arange(6).float() * 40 / 127.5 - 1)
    assert y.tolist() == [0, 1, 0, 1, 0, 1]


def test_memory_format_applies_to_every_batch_and_to_returns_a_fresh_copy():
    stream = StreamingData(TensorDataset(numbered_images(10)), name="numbers", shuffle=False, batch_size=4)
    assert indices(stream.sample(2)) == [0, 1]
    moved = stream.to("cpu", memory_format=torch.channels_last)
    assert moved is not stream and moved.device == torch.device("cpu")
    for _ in range(3):
        batch = moved.sample(5)
        assert batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
    assert indices(moved.to("cpu").sample(2)) == [0, 1]  # a copy starts its own pass
    assert indices(stream.sample(2)) == [2, 3]  # and the caller's object keeps its place and layout
    assert stream.sample(2).is_contiguous()


def test_domain_errors_and_missing_labels():
    stream = StreamingData(TensorDataset(numbered_images(4)), name="plain")
    with pytest.raises(ValueError, match="has one domain"):
        stream.sample(2, domain="A")
    with pytest.raises(ValueError, match=r"no labels; use \.sample\(n\)"):
        stream.sample_with_labels(2)
    with pytest.raises(ValueError, match="n must be a whole number"):
        stream.sample(0)
    with pytest.raises(AttributeError, match=r"sample\(n\) instead of \.x"):
        stream.x


def test_labels_that_are_not_class_indices_are_refused():
    stream = StreamingData(TensorDataset(numbered_images(4), torch.zeros(4, 40)), name="attributes")
    with pytest.raises(ValueError, match="one class index per sample"):
        stream.sample_with_labels(2)


def test_samples_of_changing_shape_are_an_error():
    loader = DataLoader(TensorDataset(numbered_images(4)), batch_size=2, collate_fn=lambda b: torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match=r"shape \(1, 3, 3\).*first item had \(3, 4, 4\)"):
        StreamingData(loader, name="odd").sample(2)


def test_empty_and_wrong_sources_are_explained():
    with pytest.raises(ValueError, match="empty"):
        StreamingData(TensorDataset(torch.zeros(0, 3, 4, 4)))
    with pytest.raises(TypeError, match="Dataset or DataLoader"):
        StreamingData(42)
    with pytest.raises(TypeError, match=r"load\('folder', path='pics', stream=True\)"):
        StreamingData("pics")
    with pytest.raises(ValueError, match=r"image \(C, H, W\) or a point \(D,\)"):
        StreamingData(TensorDataset(torch.zeros(3, 4, 4)))


class Counting(IterableDataset):
    """An iterable data set of unknown length."""

    def __iter__(self):
        return iter(torch.arange(5, dtype=torch.float32).reshape(5, 1))


def test_iterable_dataset_streams_and_has_no_length():
    stream = StreamingData(Counting(), name="counting", batch_size=2)
    assert stream.sample(7)[:, 0].tolist() == [0, 1, 2, 3, 4, 0, 1]
    with pytest.raises(TypeError, match="unknown length"):
        len(stream)
    assert "N=?" in repr(stream)
