"""DCGAN and conditional DCGAN networks (lessons 02-03): shapes, the paper's layer rules, init.

Training them is tested in test_adversarial.py."""
import math

import pytest
import torch
from torch import nn

from gancourse.data import load
from gancourse.models import (ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, DCGANDiscriminator,
                              DCGANGenerator, conv_output_size, dcgan_init_, transposed_conv_output_size)

SIZES = (16, 32, 64)
CHANNELS = (1, 3)
MODES = ("concat", "projection")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits32():
    return load("digits", size=32)


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_dcgan_shapes_and_range(size, channels):
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, image_size=size, channels=channels, width=8)
    D = DCGANDiscriminator(image_size=size, channels=channels, width=8)
    x = G(torch.randn(3, 8))
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert G(torch.randn(3, 8, 1, 1)).shape == x.shape  # the (N, z_dim, 1, 1) layout works too
    assert D(x).shape == (3,)
    assert D(torch.rand(5, channels, size, size) * 2 - 1).shape == (5,)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("mode", MODES)
def test_conditional_shapes(size, channels, mode):
    torch.manual_seed(0)
    G = ConditionalDCGANGenerator(z_dim=8, num_classes=4, image_size=size, channels=channels, width=8)
    D = ConditionalDCGANDiscriminator(num_classes=4, image_size=size, channels=channels, width=8, mode=mode)
    y = torch.tensor([0, 3, 1])
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, y).shape == (3,)


def test_generator_layer_sizes_follow_the_paper():
    G = DCGANGenerator(z_dim=100, image_size=64, channels=3, width=64)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 3)]
    assert (convs[0].kernel_size, convs[0].stride, convs[0].padding) == ((4, 4), (1, 1), (0, 0))
    assert all((c.kernel_size, c.stride, c.padding) == ((4, 4), (2, 2), (1, 1)) for c in convs[1:])
    D = DCGANDiscriminator(image_size=64, channels=3, width=64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    h = D.features(torch.zeros(2, 3, 64, 64))
    assert h.shape == (2, 512, 4, 4)


def test_no_fully_connected_or_pooling_layers():
    for net in (DCGANGenerator(), DCGANDiscriminator()):
        banned = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d,
                                                             nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
        assert banned == []
    assert not any(isinstance(m, nn.Sigmoid) for m in DCGANDiscriminator().modules())


# -- the paper's BatchNorm / activation rules ----------------------------------------------------
def _layer_sequence(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if not isinstance(m, nn.Sequential) and m is not net and not list(m.children())]


@pytest.mark.parametrize("size", SIZES)
def test_batchnorm_placement(size):
    G_layers = _layer_sequence(DCGANGenerator(image_size=size, width=8))
    D_layers = _layer_sequence(DCGANDiscriminator(image_size=size, width=8))
    # G: every transposed conv but the last is followed by BatchNorm and ReLU; the last by tanh only.
    for i, m in enumerate(G_layers):
        if isinstance(m, nn.ConvTranspose2d):
            after = G_layers[i + 1]
            if m is G_layers[-2]:
                assert isinstance(after, nn.Tanh) and m.bias is not None
            else:
                assert isinstance(after, nn.BatchNorm2d) and isinstance(G_layers[i + 2], nn.ReLU)
                assert m.bias is None  # BatchNorm's shift replaces the bias
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G_layers) == int(math.log2(size)) - 2
    # D: no BatchNorm on the input conv, BatchNorm after every other stride-2 conv, LeakyReLU(0.2) throughout.
    convs = [i for i, m in enumerate(D_layers) if isinstance(m, nn.Conv2d)]
    first, hidden, last = convs[0], convs[1:-1], convs[-1]
    assert isinstance(D_layers[first + 1], nn.LeakyReLU) and D_layers[first].bias is not None
    for i in hidden:
        assert isinstance(D_layers[i + 1], nn.BatchNorm2d) and D_layers[i].bias is None
        assert isinstance(D_layers[i + 2], nn.LeakyReLU) and D_layers[i + 2].negative_slope == 0.2
    assert last == len(D_layers) - 1  # the logit conv ends the net: no BatchNorm, no sigmoid
    assert not any(isinstance(m, nn.ReLU) for m in D_layers)
    assert not any(isinstance(m, nn.LeakyReLU) for m in G_layers)


# -- initialisation -------------------------------------------------------------------------------
def test_dcgan_init_statistics():
    torch.manual_seed(0)
    for net in (DCGANGenerator(image_size=32, width=64), DCGANDiscriminator(image_size=32, width=64)):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
                assert abs(m.weight.std().item() - 0.02) < 0.001
                assert abs(m.weight.mean().item()) < 0.001
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                assert torch.all(m.bias == 0)
            if isinstance(m, nn.BatchNorm2d) and m.num_features >= 128:
                assert abs(m.weight.mean().item() - 1) < 0.01 and 0.01 < m.weight.std().item() < 0.03
                assert torch.all(m.bias == 0)


def test_init_flag_skips_and_init_function_reapplies():
    torch.manual_seed(0)
    G = DCGANGenerator(width=64, init=False)
    bn = G.net.up1[1]
    assert torch.all(bn.weight == 1)  # PyTorch's default, untouched
    big = G.net.up1[0].weight
    assert abs(big.std().item() - 0.02) > 0.002  # the default init is not DCGAN's
    assert dcgan_init_(G) is G
    assert abs(big.std().item() - 0.02) < 0.001 and not torch.all(bn.weight == 1)


def test_projection_embedding_starts_small():
    torch.manual_seed(0)
    D = ConditionalDCGANDiscriminator(num_classes=10, mode="projection")
    assert abs(D.embed.weight.std().item() - 0.02) < 0.001


# -- output-size arithmetic -----------------------------------------------------------------------
def test_transposed_conv_output_size_matches_pytorch():
    checked = 0
    for i in range(1, 8):
        for k in range(1, 6):
            for s in range(1, 4):
                for p in range(0, 3):
                    for op in range(s):
                        layer = nn.ConvTranspose2d(1, 1, k, s, p, output_padding=op)
                        try:
                            actual = layer(torch.zeros(1, 1, i, i)).shape[-1]
                            assert actual > 0  # an empty output counts as an error too
                        except (RuntimeError, AssertionError):
                            with pytest.raises(ValueError):
                                transposed_conv_output_size(i, k, s, p, op)
                            continue
                        assert transposed_conv_output_size(i, k, s, p, op) == actual, (i, k, s, p, op)
                        checked += 1
    assert checked > 300
    assert transposed_conv_output_size(4, 4, 2, 1) == 8  # DCGAN's doubling block
    assert transposed_conv_output_size(1, 4, 1, 0) == 4  # the projection of z
    with pytest.raises(ValueError, match="output_padding"):
        transposed_conv_output_size(4, 4, 2, 1, output_padding=2)


def test_conv_output_size_matches_pytorch():
    for i in range(1, 10):
        for k in range(1, 6):
            for s in range(1, 4):
                for p in range(0, 3):
                    try:
                        actual = nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, i, i)).shape[-1]
                        assert actual > 0
                    except (RuntimeError, AssertionError):
                        with pytest.raises(ValueError):
                            conv_output_size(i, k, s, p)
                        continue
                    assert conv_output_size(i, k, s, p) == actual, (i, k, s, p)


# -- errors a student can cause -------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 28, 48, 128, "32"])
def test_unsupported_image_size(size):
    for make in (lambda: DCGANGenerator(image_size=size), lambda: DCGANDiscriminator(image_size=size),
                 lambda: ConditionalDCGANGenerator(image_size=size),
                 lambda: ConditionalDCGANDiscriminator(image_size=size)):
        with pytest.raises(ValueError, match=r"\(16, 32, 64\)"):
            make()


def test_wrong_input_shapes_name_expected_and_got():
    G, D = DCGANGenerator(z_dim=10, width=8), DCGANDiscriminator(image_size=32, channels=1, width=8)
    with pytest.raises(ValueError, match=r"\(batch, 10\).*\(4, 12\)"):
        G(torch.randn(4, 12))
    with pytest.raises(ValueError, match=r"\(batch, 1, 32, 32\).*\(4, 1, 28, 28\)"):
        D(torch.randn(4, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(batch, 1, 32, 32\).*\(4, 3, 32, 32\)"):
        D(torch.randn(4, 3, 32, 32))
    cG = ConditionalDCGANGenerator(z_dim=10, num_classes=3, width=8)
    with pytest.raises(ValueError, match=r"\(batch, 10\)"):
        cG(torch.randn(4, 13), torch.zeros(4, dtype=torch.long))  # z must not already hold the label


@pytest.mark.parametrize("mode", MODES)
def test_bad_labels_raise(mode):
    G = ConditionalDCGANGenerator(z_dim=8, num_classes=3, width=8)
    D = ConditionalDCGANDiscriminator(num_classes=3, width=8, mode=mode)
    z, x = torch.randn(4, 8), torch.zeros(4, 1, 32, 32)
    bad = {"0..2": torch.tensor([0, 1, 2, 3]), "from -1": torch.tensor([0, -1, 2, 1]),
           "integer": torch.tensor([0.0, 1.0, 2.0, 1.0]), "one-hot": torch.eye(3)[[0, 1, 2, 1]],
           r"shape \(4,\)": torch.tensor([0, 1])}
    for message, y in bad.items():
        with pytest.raises(ValueError, match=message):
            G(z, y)
        with pytest.raises(ValueError, match=message):
            D(x, y)
    with pytest.raises(ValueError, match="tensor"):
        G(z, [0, 1, 2, 1])
    assert G(z, torch.tensor([0, 1, 2, 1], dtype=torch.int32)).shape == (4, 1, 32, 32)  # any int dtype


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="mode"):
        ConditionalDCGANDiscriminator(mode="add")
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalDCGANGenerator(num_classes=1)
    with pytest.raises(ValueError, match="width"):
        DCGANGenerator(width=0)


# -- the label matters ----------------------------------------------------------------------------
@pytest.mark.parametrize("embed_dim", [None, 6])
def test_generator_output_depends_on_label(embed_dim):
    torch.manual_seed(0)
    G = ConditionalDCGANGenerator(z_dim=8, num_classes=3, width=8, embed_dim=embed_dim).eval()
    z = torch.randn(1, 8).repeat(3, 1)
    x = G(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(x[0], x[1]) and not torch.allclose(x[1], x[2])
    assert torch.allclose(x[0], G(z[:1], torch.tensor([0]))[0], atol=1e-6)  # same z and label: same image


@pytest.mark.parametrize("mode", MODES)
def test_discriminator_output_depends_on_label(mode):
    torch.manual_seed(0)
    D = ConditionalDCGANDiscriminator(num_classes=3, width=8, mode=mode).eval()
    x = torch.rand(1, 1, 32, 32).repeat(3, 1, 1, 1) * 2 - 1
    logits = D(x, torch.tensor([0, 1, 2]))
    assert logits.shape == (3,) and len(set(logits.tolist())) == 3


@pytest.mark.parametrize("kernel", [3, 4, 5, 6])
def test_dcgan_generator_kernels_each_double_the_size(kernel):
    G = DCGANGenerator(z_dim=8, image_size=32, width=4, kernel=kernel)
    assert G(torch.randn(2, 8)).shape == (2, 1, 32, 32)
    ups = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][1:]  # after the 1x1 -> 4x4 projection
    assert ups and all(m.kernel_size == (kernel, kernel) and m.stride == (2, 2) for m in ups)
    with pytest.raises(ValueError, match="kernel must be an int >= 2"):
        DCGANGenerator(z_dim=8, kernel=1)
