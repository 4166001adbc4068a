"""Lesson 06's pieces: equalized learning rate, pixel norm, minibatch stddev, the growing networks, the
growth schedule over images seen, the blended reals, and the ProGAN family's errors and state."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gancourse.data import load
from gancourse.models import (EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, ProDiscriminator,
                              ProGenerator, check_final_size)
from gancourse.train import ProGAN, Trainer, blend_reals, growth_schedule, total_images


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def small(final_size=16, channels=1):
    G = ProGenerator(z_dim=8, final_size=final_size, channels=channels, width=8, max_channels=16)
    D = ProDiscriminator(final_size=final_size, channels=channels, width=8, max_channels=16)
    return G, D


# -- the three tricks ------------------------------------------------------------------------------------
def test_equalized_conv_keeps_unit_weights_and_scales_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3, padding=1, gain=1.0)
    assert abs(float(conv.weight.detach().std()) - 1) < 0.02  # stored weights are N(0, 1): no He scaling folded in
    x = torch.randn(16, 64, 12, 12)
    assert abs(float(conv(x).detach().std()) - 1) < 0.1  # the run-time scale gives unit output for unit input
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight / math.sqrt(64 * 9), conv.bias, padding=1), atol=1e-5)
    with torch.no_grad():
        conv.weight.mul_(2)  # the scale is a constant of the layer, applied to whatever the weights are now
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight / math.sqrt(64 * 9), conv.bias, padding=1), atol=1e-5)
    slow = EqualizedLinear(32, 8, lr_multiplier=0.01)
    assert abs(float(slow.weight.detach().std()) - 100) < 10 and abs(float(slow(torch.randn(256, 32)).detach().std()) - math.sqrt(2)) < 0.3


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    out = PixelNorm()(torch.randn(4, 16, 5, 5) * 7)
    assert torch.allclose(out.pow(2).mean(dim=1), torch.ones(4, 5, 5), atol=1e-4)


def test_minibatch_stddev_groups_consecutive_samples():
    layer = MinibatchStdDev(4)
    same = torch.ones(4, 3, 2, 2).repeat(2, 1, 1, 1)
    same[4:] = torch.randn(4, 3, 2, 2)
    out = layer(same)
    assert out.shape == (8, 4, 2, 2)
    assert torch.all(out[:4, 3] == 0) and torch.all(out[4:, 3] > 0)  # a collapsed group shows zero spread
    expected = same[4:].std(dim=0, unbiased=False).mean()
    assert torch.allclose(out[4:, 3], expected.expand(4, 2, 2))


@pytest.mark.parametrize("n, groups", [(6, [4, 2]), (5, [5]), (9, [4, 5])])
def test_minibatch_stddev_batch_not_a_multiple_of_the_group(n, groups):
    x = torch.randn(n, 2, 3, 3)
    out = MinibatchStdDev(4)(x)
    start = 0
    for size in groups:
        part = x[start:start + size]
        assert torch.allclose(out[start:start + size, 2], part.std(dim=0, unbiased=False).mean().expand(size, 3, 3))
        start += size


def test_minibatch_stddev_refuses_a_batch_below_the_group_size():
    with pytest.raises(ValueError, match="smaller than the minibatch-stddev group size 4"):
        MinibatchStdDev(4)(torch.randn(3, 2, 2, 2))
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(1)


# -- the growing networks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [4, 24, 48, 7, "32"])
def test_final_size_must_be_a_power_of_two_of_at_least_8(size):
    with pytest.raises(ValueError, match="power of two and at least 8"):
        check_final_size(size)
    with pytest.raises(ValueError, match="power of two"):
        ProGenerator(final_size=size)


def test_fade_in_at_alpha_zero_is_the_previous_stage_and_outputs_keep_the_final_size():
    torch.manual_seed(0)
    G, D = small(16)
    z = torch.randn(8, 8)
    for stage in range(3):
        for alpha in (0.0, 0.3, 1.0):
            G.grow(stage, alpha)
            assert G(z).shape == (8, 1, 16, 16)
    G.grow(2, 0.0), D.grow(2, 0.0)
    faded, score = G(z), D(G(z))
    G.grow(1, 1.0), D.grow(1, 1.0)
    assert torch.allclose(faded, G(z), atol=1e-6) and torch.allclose(score, D(faded), atol=1e-5)
    G.grow(2, 1.0)
    assert not torch.allclose(G(z), faded)
    with pytest.raises(ValueError, match="stage must be in"):
        G.grow(3)
    with pytest.raises(ValueError, match="takes images of shape"):
        D(torch.zeros(4, 1, 8, 8))


def test_growth_schedule_counts_images_and_alpha_rises_monotonically():
    phase, stages = 100, 3
    seen = [growth_schedule(i, phase, stages) for i in range(0, total_images(phase, stages) + 50, 5)]
    assert seen[0] == (0, 1.0) and seen[-1] == (2, 1.0)
    assert growth_schedule(100, phase, stages) == (1, 0.0) and growth_schedule(150, phase, stages) == (1, 0.5)
    assert growth_schedule(250, phase, stages) == (1, 1.0) and growth_schedule(340, phase, stages) == (2, 0.4)
    stages_seen = [s for s, _ in seen]
    assert stages_seen == sorted(stages_seen)
    for stage in (1, 2):
        alphas = [a for s, a in seen if s == stage]
        assert alphas == sorted(alphas) and alphas[0] == 0.0 and alphas[-1] == 1.0


def test_blended_reals_follow_alpha():
    x = torch.randn(2, 1, 16, 16)
    eight = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    four = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")
    assert torch.allclose(blend_reals(x, 8, 1.0), eight) and torch.allclose(blend_reals(x, 8, 0.0), four, atol=1e-6)
    assert torch.allclose(blend_reals(x, 8, 0.25), 0.75 * four + 0.25 * eight, atol=1e-6)
    assert torch.equal(blend_reals(x, 16, 1.0), x)


# -- the family --------------------------------------------------------------------------------------------
def test_progan_fits_the_schedule_into_the_budget_and_the_ema_follows_the_stage():
    torch.manual_seed(0)
    gan = ProGAN(*small(16), batch_sizes={16: 8})
    trainer = Trainer(gan, load("digits", size=16, limit=256), steps=30, batch_size=16, seed=0, ema=0.9,
                      progress=False, verbose=False, log_every=1)
    trainer.fit()
    stages = trainer.history.series("stage")[1]
    alphas = [a for s, a in zip(stages, trainer.history.series("alpha")[1]) if s == 2]
    assert stages[0] == 0 and stages[-1] == 2 and alphas[-1] == 1.0 and alphas[0] < 0.25
    assert alphas == sorted(alphas)
    assert gan.images_seen == sum(16 if s < 2 else 8 for s in stages)
    assert int(trainer.ema["G"].stage) == 2 and float(trainer.ema["G"].alpha) == 1.0


def test_progan_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="smaller than D's minibatch-stddev group size 4"):
        ProGAN(*small(16), batch_sizes={8: 2})
    G, _ = small(16)
    _, D = small(32)
    with pytest.raises(ValueError, match="same final_size"):
        ProGAN(G, D)
    trainer = Trainer(ProGAN(*small(16), phase_images=16), load("digits", size=16, limit=64), steps=2, batch_size=8,
                      checkpoint_dir=tmp_path, progress=False, verbose=False)
    trainer.fit()
    other = Trainer(ProGAN(*small(32), phase_images=16), load("digits", size=32, limit=64), steps=2, batch_size=8,
                    progress=False, verbose=False)
    with pytest.raises(ValueError, match="grows to 16x16, this ProGAN to 32x32"):
        other.load(tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="phase_images"):
        Trainer(ProGAN(*small(16)), load("digits", size=16, limit=64), seconds=1, batch_size=8, progress=False,
                verbose=False).fit()


def test_growth_budget_leaves_the_rest_of_the_steps_to_the_final_stage():
    torch.manual_seed(0)
    gan = ProGAN(*small(16), batch_sizes={16: 8}, growth_budget=0.5)
    trainer = Trainer(gan, load("digits", size=16, limit=256), steps=40, batch_size=16, seed=0,
                      progress=False, verbose=False, log_every=1)
    trainer.fit()
    stages, alphas = (trainer.history.series(k)[1] for k in ("stage", "alpha"))
    # the schedule (1 phase at 4x4, 2 per later stage) ends by step ~20; the rest is the last stage, stable
    first_stable_top = next(i for i, (s, a) in enumerate(zip(stages, alphas)) if s == 2 and a == 1.0)
    assert 10 <= first_stable_top <= 24 and all(s == 2 and a == 1.0 for s, a in zip(stages[24:], alphas[24:]))
    with pytest.raises(ValueError, match="growth_budget"):
        ProGAN(*small(16), growth_budget=0.0)


def test_not_growing_trains_at_the_final_resolution_from_the_first_step_and_samples_are_clipped():
    torch.manual_seed(0)
    gan = ProGAN(*small(16), growing=False)
    trainer = Trainer(gan, load("digits", size=16, limit=64), seconds=600, steps=3, batch_size=8, seed=0,
                      progress=False, verbose=False, log_every=1)
    trainer.fit()
    assert trainer.history.series("resolution")[1] == [16.0] * 3
    with torch.no_grad():
        gan.nets["G"].to_rgb[2].bias.fill_(5.0)  # G's output is linear: push it far outside [-1, 1]
    samples = gan.generate(4, rng=0)
    assert samples.max() == 1.0 and samples.min() >= -1.0


def test_stage_evaluator_scores_each_resolution_against_the_reals_seen_there(monkeypatch):
    from gancourse.metrics import StageEvaluator, StageLog
    from gancourse.metrics.classifier import FeatureClassifier

    classifier = FeatureClassifier(1, 16, 10, data_name="digits").eval()  # untrained features are enough here
    evaluator = StageEvaluator("digits", 16, n=64, classifier=classifier)
    floor = evaluator.floor(8)
    assert floor["fid"] >= 0 and len(floor["swd"]) >= 1
    blurred = evaluator.reals_at(8, "held_out")
    at_8, at_16 = evaluator.score(blurred, 8), evaluator.score(blurred, 16)
    assert at_8["fid"] < at_16["fid"]  # pooled reals are right for the 8x8 stage, blurry for the 16x16 one
    assert at_8["fid"] == pytest.approx(floor["fid"], rel=1e-4) and at_8["fid_floor"] == floor["fid"]
    with pytest.raises(ValueError, match="power of two from 4 to 16"):
        evaluator.score(blurred, 12)
    with pytest.raises(ValueError, match="needs 64 images"):
        evaluator.score(blurred[:10], 8)
    torch.manual_seed(0)
    gan = ProGAN(*small(16), batch_sizes={16: 8})
    log = StageLog(evaluator)
    trainer = Trainer(gan, load("digits", size=16, limit=256), steps=30, batch_size=16, seed=0, ema=0.9,
                      callbacks=[log], progress=False, verbose=False, log_every=1)
    trainer.fit()
    assert [row["resolution"] for row in log.rows] == [4, 8, 16]
    assert sum(row["images"] for row in log.rows) == gan.images_seen
    assert all(row["seconds"] > 0 and row["fid"] >= 0 for row in log.rows)
    assert sum(row["seconds"] for row in log.rows) <= trainer.elapsed


# -- sliced Wasserstein distance per pyramid level -----------------------------------------------------------
def test_laplacian_pyramid_rebuilds_the_image_and_halves_each_level():
    from gancourse.metrics import laplacian_pyramid

    x = torch.rand(3, 3, 32, 32) * 2 - 1
    pyramid = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyramid] == [32, 16, 8]
    with pytest.raises(ValueError, match="too small"):
        laplacian_pyramid(torch.zeros(1, 3, 8, 8), 3)


def test_swd_is_near_zero_for_the_same_distribution_and_grows_where_the_images_differ():
    from gancourse.metrics import swd_per_level

    data = load("glyphs-serif", limit=600).x
    real, other_real = data[:300], data[300:600]
    same = swd_per_level(real, other_real)
    blurred = swd_per_level(real, F.interpolate(F.avg_pool2d(other_real, 4), scale_factor=4, mode="bilinear"))
    noise = swd_per_level(real, torch.rand_like(other_real) * 2 - 1)
    assert len(same) == 2 and all(s < b for s, b in zip(same, noise))
    assert blurred[0] > 2 * same[0]  # blurring removes the finest level's detail
    with pytest.raises(ValueError, match="same shape"):
        swd_per_level(real, other_real[:10])


# -- the growth explorer -------------------------------------------------------------------------------------
def test_growth_state_maps_positions_to_stage_and_alpha():
    from gancourse.widgets import GrowthState

    state = GrowthState(4)
    assert state.stage_alpha == (3, 1.0)
    for position, expected in ((0, (0, 1.0)), (0.25, (1, 0.25)), (1, (1, 1.0)), (2.5, (3, 0.5))):
        state.set_position(position)
        assert state.stage_alpha == pytest.approx(expected)
    with pytest.raises(ValueError, match="position must be in"):
        state.set_position(3.5)


def test_growth_explorer_leaves_the_trained_generator_alone(tmp_path, monkeypatch):
    from gancourse.widgets import GrowthExplorer

    monkeypatch.setenv("GANCOURSE_RUN_DIR", str(tmp_path))
    G, D = small(16)
    G.grow(1, 0.5)
    gan = ProGAN(G, D, phase_images=8)
    explorer = GrowthExplorer(gan, interactive=False, n=4)
    at_stage_0, at_half = explorer.images_at(0), explorer.images_at(1.5)
    assert at_stage_0.shape == (4, 1, 16, 16) and not torch.equal(at_stage_0, at_half)
    assert int(G.stage) == 1 and float(G.alpha) == 0.5  # the trained net's buffers are untouched
    paths = explorer.show()
    assert paths["growth"].is_file() and paths["growth"].stat().st_size > 0
    with pytest.raises(TypeError, match="growing generator"):
        GrowthExplorer(torch.nn.Linear(2, 2), net=torch.nn.Linear(2, 2))
