"""Lesson 02's checks accept right answers and explain the usual mistakes."""
import pytest
import torch
from torch import nn

import answers
from gancourse import losses
from gancourse.checks import CheckFailed
from gancourse.checks import lesson02 as checks
from gancourse.models.dcgan import dcgan_init_, transposed_conv_output_size


def good_block(c_in, c_out):
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def test_right_answers_pass(capsys):
    checks.check_output_size(transposed_conv_output_size)
    checks.check_generator_block(good_block)
    checks.check_init(dcgan_init_)
    checks.check_discriminator_step(answers.l02_discriminator_step)
    assert capsys.readouterr().out.count("✓") == 4


def test_output_size_off_by_one_stride_is_explained():
    with pytest.raises(CheckFailed, match=r"multiplies \(i - 1\)"):
        checks.check_output_size(lambda i, k, s, p: i * s - 2 * p + k)


@pytest.mark.parametrize("block, message", [
    (lambda a, b: nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU()), "bias=False"),
    (lambda a, b: nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.ReLU()), "BatchNorm2d"),
    (lambda a, b: nn.Sequential(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)), "ReLU"),
    (lambda a, b: nn.Sequential(nn.ConvTranspose2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()), "shape"),
    (lambda a, b: None, "nn.Module"),
])
def test_wrong_blocks_are_explained(block, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_generator_block(block)


def test_default_pytorch_init_is_caught():
    with pytest.raises(CheckFailed, match="N\\(0, 0.02\\)"):
        checks.check_init(lambda m: None)


def test_discriminator_step_without_detach_is_caught():
    def no_detach(G, D, opt_D, real, z_dim):
        loss = losses.discriminator_loss(D(real), D(G(torch.randn(len(real), z_dim))))
        opt_D.zero_grad()
        loss.backward()
        opt_D.step()
        return loss

    with pytest.raises(CheckFailed, match="detach"):
        checks.check_discriminator_step(no_detach)
