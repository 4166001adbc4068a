"""Lesson 05's pieces: the glyph domains and their hidden pairing, the CycleGAN networks, the losses, the
image pool, the learning-rate schedule, the CycleGAN and pix2pix steps, and the translation measures."""
from __future__ import annotations

import pytest
import torch

from gancourse import losses
from gancourse.data import PairedData, UnpairedData, load
from gancourse.data.glyphs import CHARACTERS, render
from gancourse.metrics import image_error, translation_report
from gancourse.models import PatchDiscriminator, ResnetGenerator, patch_layers, receptive_field
from gancourse.train import CycleGAN, ImagePool, Pix2Pix, Trainer, lr_factor


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


# -- data ------------------------------------------------------------------------------------------
def test_glyph_domains_are_unpaired_for_training_and_paired_for_testing():
    train = load("glyphs")
    assert isinstance(train, UnpairedData) and not isinstance(train, PairedData)
    assert train.shape == (3, 32, 32) and len(train) == 4000
    a, b = train.domain("A"), train.domain("B")
    assert a.num_classes == b.num_classes == len(CHARACTERS)
    assert not torch.equal(a.y, b.y)  # independent draws: row i of B is not row i of A's partner
    paired = load("glyphs", paired=True)
    assert torch.equal(paired.domain("A").stored, a.stored) and torch.equal(paired.domain("A").y, paired.domain("B").y)
    test = load("glyphs", split="test")
    assert isinstance(test, PairedData) and len(test) == 1000
    assert torch.equal(test.domain("A").y, test.domain("B").y)
    # the test images are not training images
    assert not any(torch.equal(test.domain("A").stored[0], row) for row in a.stored)


def test_a_pair_is_one_glyph_at_one_place_in_two_styles():
    labels, scale, shift = torch.tensor([3, 3, 7]), torch.tensor([1.0, 1.0, 0.8]), torch.tensor([[0.0, 0], [0.1, 0], [0, 0]])
    sans, serif = render("sans", labels, scale, shift), render("serif", labels, scale, shift)
    ink = lambda im: (im.float().mean(0) < 150).float()  # dark pixels: the glyph, in both styles
    centre = lambda m: (m * torch.arange(32.0)).sum() / m.sum()
    for i in range(3):  # same place: the centres of ink agree to a pixel or so
        assert abs(centre(ink(sans[i]).sum(0)) - centre(ink(serif[i]).sum(0))) < 1.5
    # the shift moves the glyph right by 0.1 * 32 = 3.2 pixels
    assert 2.5 < centre(ink(sans[1]).sum(0)) - centre(ink(sans[0]).sum(0)) < 4
    # styles differ: bold serif has more ink, and the paper colours differ
    assert ink(serif[0]).sum() > 1.3 * ink(sans[0]).sum()
    assert not torch.equal(sans[0, :, 0, 0], serif[0, :, 0, 0])
    # copying the input is far from the truth, and so is the colour negative of the truth
    test = load("glyphs", split="test")
    a, b = test.pairs(slice(0, 200))
    assert image_error(a, b) > 0.1 and image_error(-b, b) > 0.5 and image_error(b.flip(-1), b) > 0.02


def test_one_style_sets_and_bad_options():
    serif = load("glyphs-serif", split="test")
    assert torch.equal(serif.stored, load("glyphs", split="test").domain("B").stored)
    assert serif.classes == list(CHARACTERS)
    with pytest.raises(ValueError, match="split"):
        load("glyphs", split="validation")
    with pytest.raises(ValueError, match="size"):
        load("glyphs", size=4)
    with pytest.raises(ValueError, match="unknown glyph style"):
        render("gothic", torch.tensor([0]), torch.ones(1), torch.zeros(1, 2))


# -- networks ----------------------------------------------------------------------------------------
def test_receptive_field_of_the_paper_patchgan_is_70():
    assert receptive_field(patch_layers(3)) == 70
    assert PatchDiscriminator().receptive_field == 70
    assert PatchDiscriminator(n_layers=2).receptive_field == 34 == receptive_field(patch_layers(2))
    assert receptive_field([(3, 1), (3, 1)]) == 5 and receptive_field([(2, 2), (2, 2)]) == 4
    # the paper's layout on a 256-pixel image gives 30x30 patch scores
    assert PatchDiscriminator(width=8)(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_receptive_field_is_what_a_score_actually_sees():
    """The input pixels a score's gradient reaches span exactly the receptive field. Instance norm is taken
    out first: its mean and variance are over the whole map, so with it every pixel nudges every score."""
    D = PatchDiscriminator(width=8, n_layers=2).eval()
    for i, layer in enumerate(D.net):
        if isinstance(layer, torch.nn.InstanceNorm2d):
            D.net[i] = torch.nn.Identity()
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    D(x)[0, 0, 6, 6].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1)).sum(1)).flatten()
    assert len(rows) == D.receptive_field


def test_generator_keeps_the_size_and_names_the_expected_shape():
    G = ResnetGenerator(width=8, n_blocks=2)
    y = G(torch.zeros(2, 3, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*multiples of 4"):
        G(torch.zeros(2, 3, 30, 30))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        G(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="unsqueeze"):
        G(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="at least 24"):
        PatchDiscriminator()(torch.zeros(1, 3, 16, 16))


# -- losses, pool, schedule ------------------------------------------------------------------------
def test_cycle_and_identity_losses_are_l1():
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert losses.cycle_consistency_loss(x, y).item() == pytest.approx(0.5)
    assert losses.identity_loss(y, y).item() == 0
    with pytest.raises(ValueError, match="same shape"):
        losses.cycle_consistency_loss(x, y[:1])


def test_image_pool_fills_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4
    shown_old = 0
    for step in range(200):
        new = torch.full((1, 1, 1, 1), 100.0 + step)
        out = pool.query(new)
        shown_old += int(out.item() != new.item())
    assert 70 < shown_old < 130  # about half of the time an older image
    assert len(pool) == 4
    assert torch.equal(ImagePool(0).query(first), first)
    with pytest.raises(ValueError, match="pool size"):
        ImagePool(-1)


def test_lr_factor_constant_then_linear_to_zero():
    assert lr_factor(0.0) == lr_factor(0.3) == lr_factor(0.5) == 1.0
    assert lr_factor(0.75) == pytest.approx(0.5) and lr_factor(1.0) == 0.0
    assert lr_factor(0.8, decay_start=0.6) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="decay_start"):
        lr_factor(0.5, decay_start=1.0)


# -- the families -------------------------------------------------------------------------------------
def _cyclegan(**kw):
    net = lambda: ResnetGenerator(width=4, n_blocks=1)
    disc = lambda: PatchDiscriminator(width=4, n_layers=1)
    return CycleGAN(net(), net(), disc(), disc(), pool_size=6, **kw)


def test_cyclegan_step_trains_all_four_networks_and_decays_the_lr():
    torch.manual_seed(0)
    gan = _cyclegan()
    data = load("glyphs", size=16, limit=64)
    before = {k: [p.clone() for p in v.parameters()] for k, v in gan.nets.items()}
    trainer = Trainer(gan, data, steps=8, batch_size=4, seed=0, progress=False, verbose=False, log_every=1)
    trainer.fit()
    for name, net in gan.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    assert {"loss_G", "adv", "cycle", "identity", "loss_D"} <= set(trainer.history.keys())
    assert len(gan.pools["A"]) == 6
    assert gan.opts["G"].param_groups[0]["lr"] == pytest.approx(2e-4 * lr_factor(7 / 8))
    out = gan.translate(data.domain("B").x[:3], "B2A")
    assert out.shape == (3, 3, 16, 16)


def test_cycle_only_ablation_leaves_the_discriminators_alone():
    torch.manual_seed(0)
    gan = _cyclegan(adversarial=False, identity=0.0)
    before = [p.clone() for p in gan.nets["D_A"].parameters()]
    Trainer(gan, load("glyphs", size=16, limit=32), steps=3, batch_size=4, progress=False, verbose=False).fit()
    assert all(torch.equal(a, b) for a, b in zip(before, gan.nets["D_A"].parameters()))


def test_pix2pix_needs_pairs_and_learns_from_them():
    torch.manual_seed(0)
    gan = Pix2Pix(ResnetGenerator(width=4, n_blocks=1), PatchDiscriminator(6, width=4, n_layers=1))
    with pytest.raises(TypeError, match="paired=True"):
        Trainer(gan, load("glyphs", size=16, limit=32), steps=1, batch_size=4, progress=False, verbose=False).fit()
    trainer = Trainer(gan, load("glyphs", size=16, limit=64, paired=True), steps=3, batch_size=4,
                      progress=False, verbose=False, log_every=1)
    trainer.fit()
    assert "L1" in trainer.history.keys()
    with pytest.raises(ValueError, match="A2B only"):
        gan.translate(torch.zeros(1, 3, 16, 16), "B2A")


def test_translation_report_measures_against_the_truth(tmp_path, monkeypatch):
    """An identity 'translator' scores exactly the copy baseline; the report's classifier-based rows exist."""
    monkeypatch.setenv("GANCOURSE_CACHE", str(tmp_path))

    copy = lambda: torch.nn.Conv2d(3, 3, 1)
    gan = CycleGAN(copy(), copy(), PatchDiscriminator(width=4), PatchDiscriminator(width=4))
    with torch.no_grad():
        for name in ("G", "F"):
            gan.nets[name].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            gan.nets[name].bias.zero_()
    test = load("glyphs", split="test", size=16, limit=100)
    report = translation_report(gan, test, fid=False)
    for row in report.values():
        assert row["error"] == pytest.approx(row["copy_error"]) and row["cycle_error"] == pytest.approx(0, abs=1e-6)
        assert 0 <= row["class_kept"] <= 1
