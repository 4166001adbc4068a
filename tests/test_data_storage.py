"""InMemoryData's storage and protocol: uint8 images decoded per batch, memory formats, domains, copies."""
from __future__ import annotations

import pytest
import torch

from gancourse import data
from gancourse.data import InMemoryData


def every_level(n_rows: int = 4) -> torch.Tensor:
    """uint8 images (n_rows, 1, 8, 8) whose pixels cover all 256 levels."""
    return torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8).repeat(n_rows // 4, 1, 1, 1)


def test_uint8_images_are_stored_as_given_and_sampled_as_k_over_127_5_minus_1():
    u8 = every_level()
    d = InMemoryData(u8, name="levels")
    assert d.stored.dtype == torch.uint8 and torch.equal(d.stored, u8)
    batch = d.sample(64)
    assert batch.dtype == torch.float32 and batch.shape == (64, 1, 8, 8)
    levels = torch.arange(256, dtype=torch.float32)
    assert torch.equal(d.x.flatten(), levels / 127.5 - 1)
    assert d.x.min() == -1 and d.x.max() == 1  # 0 -> -1 and 255 -> 1 exactly
    # Every sampled pixel is one of the 256 decoded levels k / 127.5 - 1.
    k = (batch + 1) * 127.5
    assert torch.allclose(k, k.round(), atol=1e-4)


def test_float_images_are_quantised_once_with_rounding():
    x = torch.tensor([-1.0, 1.0, 0.0, -0.999, 0.5, 1.0004]).reshape(1, 1, 2, 3)
    d = InMemoryData(x, name="levels")
    # (x + 1) * 127.5, rounded (half to even) and clamped: 0, 255, 127.5 -> 128, 0.1275 -> 0, 191.25 -> 191, 255
    assert d.stored.flatten().tolist() == [0, 255, 128, 0, 191, 255]
    assert (d.x - x.clamp(-1, 1)).abs().max() <= 0.5 / 127.5 + 1e-6
    again = InMemoryData(d.x, name="again")  # decoding and storing again changes nothing
    assert torch.equal(again.stored, d.stored)


@pytest.mark.parametrize("bad, hint", [(torch.full((2, 1, 4, 4), 255.0), "x / 127.5 - 1"),
                                       (torch.full((2, 1, 4, 4), -1.5), r"\[-1, 1\]"),
                                       (torch.full((2, 1, 4, 4), float("nan")), r"\[-1, 1\]")])
def test_float_images_outside_minus_one_one_are_refused(bad, hint):
    with pytest.raises(ValueError, match=hint):
        InMemoryData(bad, name="bad")


def test_integer_images_other_than_uint8_are_refused():
    with pytest.raises(TypeError, match="uint8"):
        InMemoryData(torch.zeros(2, 1, 4, 4, dtype=torch.int64), name="bad")


def test_points_stay_float32_and_x_is_the_stored_tensor():
    d = InMemoryData(torch.arange(6, dtype=torch.float64).reshape(3, 2), name="pts")
    assert d.stored.dtype == torch.float32 and d.x is d.stored
    assert d.sample(5).dtype == torch.float32


def test_x_is_read_only():
    d = data.load("digits", size=8, limit=10)
    with pytest.raises(AttributeError):
        d.x = torch.zeros(10, 1, 8, 8)


def test_digits_and_mnist_style_sets_are_stored_as_uint8():
    d = data.load("digits", size=8, limit=20)
    assert d.stored.dtype == torch.uint8
    assert d.x.dtype == torch.float32 and d.sample(3).dtype == torch.float32


def test_seeded_image_sampling_repeats_and_draws_rows():
    d = InMemoryData(torch.arange(50, dtype=torch.uint8).reshape(50, 1, 1, 1).repeat(1, 1, 2, 2), torch.arange(50),
                     name="rows")
    torch.manual_seed(7)
    a, ya = d.sample_with_labels(32)
    torch.manual_seed(7)
    b = d.sample(32)
    assert torch.equal(a, b)
    # The same rows as torch.randint(len, (n,)) from the global RNG picks.
    torch.manual_seed(7)
    rows = torch.randint(50, (32,))
    assert torch.equal(ya, rows)
    assert torch.equal(a[:, 0, 0, 0], rows.float() / 127.5 - 1)


def test_to_with_channels_last_applies_to_sampled_batches_only():
    # Three channels: with one, channels_last and NCHW are the same layout.
    d = InMemoryData(torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8), torch.arange(30), name="colour")
    moved = d.to("cpu", memory_format=torch.channels_last)
    batch = moved.sample(8)
    assert batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
    x, y = moved.sample_with_labels(8)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert moved.stored.is_contiguous()  # the stored tensor keeps its layout
    assert d.sample(8).is_contiguous()  # the caller's object is untouched
    assert moved.to("cpu").sample(8).is_contiguous(memory_format=torch.channels_last)  # None keeps the choice
    torch.manual_seed(0)
    a = d.sample(8)
    torch.manual_seed(0)
    assert torch.equal(a, moved.sample(8))  # same values, other layout


def test_memory_format_errors():
    with pytest.raises(TypeError, match="torch.memory_format"):
        data.load("digits", size=8, limit=5).to("cpu", memory_format="channels_last")
    with pytest.raises(ValueError, match="points"):
        data.load("ring8", n=10).to("cpu", memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="channels_last or torch.contiguous_format"):
        data.load("digits", size=8, limit=5).to("cpu", memory_format=torch.channels_last_3d)


def test_to_meta_moves_images_without_touching_the_original():
    d = data.load("digits", size=8, limit=5)
    moved = d.to("meta")
    assert moved.device.type == "meta" and moved.y.device.type == "meta"
    assert d.device.type == "cpu" and moved is not d


def test_one_domain_sets_refuse_a_domain():
    d = data.load("digits", size=8, limit=5)
    assert d.domains is None
    assert d.sample(2, domain=None).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="has one domain.*domain='A'"):
        d.sample(2, domain="A")
    with pytest.raises(ValueError, match="has one domain"):
        d.sample_with_labels(2, domain="B")
    assert data.load("ring8", n=10).domains is None


def test_repr_reports_the_decoded_range():
    d = InMemoryData(torch.tensor([0, 51, 204, 255], dtype=torch.uint8).reshape(1, 1, 2, 2).repeat(2, 1, 1, 1),
                     name="r")
    assert "range=[-1.00, 1.00]" in repr(d)
    half = InMemoryData(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), name="r")
    assert "range=[1.00, 1.00]" in repr(half)
