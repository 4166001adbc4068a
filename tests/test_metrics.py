"""Feature-based metrics: the digits feature classifier, FID, KID, precision/recall, class accuracy, caching."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import gancourse.metrics.classifier as classifier_module
import gancourse.metrics.quality as quality_module
from gancourse.data import load
from gancourse.metrics import (FIDEvaluator, TrainConfig, class_accuracy, feature_classifier, fid, kid,
                               per_class_accuracy, precision_recall)

SIZE = 32


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("classifiers"))


@pytest.fixture(scope="module")
def clf(cache_dir):
    torch.set_num_threads(1)
    return feature_classifier("digits", SIZE, device="cpu", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def real():
    return load("digits", size=SIZE, split="train"), load("digits", size=SIZE, split="test")


def untrained_generator_samples(n: int, seed: int = 0) -> torch.Tensor:
    """Images from a DCGAN-like generator that has not been trained: tanh of random transposed convs."""
    torch.manual_seed(seed)
    g = nn.Sequential(
        nn.ConvTranspose2d(32, 64, 4, 1, 0), nn.BatchNorm2d(64), nn.ReLU(),  # 4x4
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),  # 8x8
        nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),  # 16x16
        nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Tanh(),  # 32x32
    )
    with torch.no_grad():
        return g(torch.randn(n, 32, 1, 1))


def uniform_noise(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- the classifier -------------------------------------------------------------------------------
def test_classifier_is_accurate_on_held_out_digits(clf, real):
    _, test = real
    assert clf.test_accuracy > 0.95
    assert clf.accuracy(test.x, test.y) == pytest.approx(clf.test_accuracy)
    assert clf.predict(test.x[:7]).shape == (7,)


def test_features_are_penultimate_layer_without_gradients(clf, real):
    _, test = real
    x = test.x[:10].clone().requires_grad_(True)
    f = clf.features(x)
    assert f.shape == (10, clf.num_features) and not f.requires_grad
    assert torch.allclose(clf(x), f, atol=1e-5)  # forward is what torchmetrics calls
    assert torch.allclose(clf.head(f * clf.feature_scale), clf.logits(x), atol=1e-5)
    clf.train()
    assert not any(m.training for m in clf.modules()), "a metric's feature extractor must stay in eval mode"


def test_torchmetrics_takes_the_classifier_as_feature_extractor(clf, real):
    from torchmetrics.image.fid import FrechetInceptionDistance

    train, test = real
    metric = FrechetInceptionDistance(feature=clf)
    metric.update(train.x, real=True)
    metric.update(test.x, real=False)
    assert float(metric.compute()) == pytest.approx(fid(train.x, test.x, clf), rel=1e-3, abs=1e-3)


# -- FID and KID ----------------------------------------------------------------------------------
def test_fid_orders_real_noise_and_untrained_generator(clf, real):
    train, test = real
    n = len(test)
    floor = fid(train.x, test.x, clf)
    noise = fid(train.x, uniform_noise(n), clf)
    untrained = fid(train.x, untrained_generator_samples(n), clf)
    assert 0 <= floor < 0.1 * noise
    assert floor < 0.1 * untrained
    assert fid(test.x, test.x, clf) == pytest.approx(0, abs=1e-3)


def test_kid_orders_real_noise_and_untrained_generator(clf, real):
    train, test = real
    n = len(test)
    floor, floor_std = kid(train.x, test.x, clf)
    noise, _ = kid(train.x, uniform_noise(n), clf)
    untrained, _ = kid(train.x, untrained_generator_samples(n), clf)
    assert abs(floor) < 3 * floor_std + 0.05  # unbiased: near 0, either sign
    assert noise > 10 * max(floor, floor_std) and untrained > 10 * max(floor, floor_std)
    assert kid(train.x, test.x, clf) == (floor, floor_std)  # seeded subsets: repeatable


def test_kid_leaves_the_global_rng_alone(clf, real):
    train, test = real
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    kid(train.x, test.x, clf)
    assert torch.equal(torch.rand(3), expected)


def test_kid_subset_size_must_fit():
    f = torch.randn(20, 4)
    with pytest.raises(ValueError, match="subset_size"):
        quality_module.kid_from_features(f, f, subset_size=50)


# -- precision and recall -------------------------------------------------------------------------
def _clusters(modes, per_mode: int, seed: int) -> torch.Tensor:
    """2-D points around 10 well-separated centres on a circle of radius 10 (neighbours 6 apart, sigma 0.5)."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.tensor(list(modes), dtype=torch.float32) * (2 * torch.pi / 10)
    centres = 10 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return centres.repeat_interleave(per_mode, dim=0) + 0.5 * torch.randn(len(modes) * per_mode, 2, generator=g)


def test_precision_recall_of_identical_sets_is_one():
    f = _clusters(range(10), 50, seed=0)
    assert precision_recall(f, f.clone()) == (1.0, 1.0)


def test_precision_recall_of_disjoint_sets_is_zero():
    real_f = _clusters(range(10), 50, seed=0)
    assert precision_recall(real_f, real_f + 100.0) == (0.0, 0.0)


def test_half_the_modes_gives_high_precision_and_low_recall():
    real_f = _clusters(range(10), 100, seed=0)
    same_precision, same_recall = precision_recall(real_f, _clusters(range(10), 100, seed=1))
    precision, recall = precision_recall(real_f, _clusters(range(5), 100, seed=1))
    assert precision > 0.9 and precision > 0.95 * same_precision
    assert 0.35 < recall < 0.6 and recall < 0.6 * same_recall


def test_precision_recall_chunking_gives_the_same_answer(monkeypatch):
    real_f, fake_f = _clusters(range(10), 40, seed=0), _clusters(range(6), 40, seed=1)
    whole = precision_recall(real_f, fake_f, k=3)
    original = quality_module._rows_per_chunk
    monkeypatch.setattr(quality_module, "_rows_per_chunk", lambda n, budget=1 << 24: original(n, budget=7 * n))
    assert precision_recall(real_f, fake_f, k=3) == whole


def test_precision_recall_rejects_bad_k_and_shapes():
    f = torch.randn(5, 3)
    with pytest.raises(ValueError, match="k must"):
        precision_recall(f, f, k=5)
    with pytest.raises(ValueError, match="same classifier"):
        precision_recall(f, torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"classifier.features\(images\)"):
        precision_recall(torch.randn(5, 1, 8, 8), f)


# -- conditional samples --------------------------------------------------------------------------
def test_class_accuracy_of_real_images_with_their_labels(clf, real):
    _, test = real
    assert class_accuracy(test.x, test.y, clf) > 0.95
    assert class_accuracy(test.x, (test.y + 1) % 10, clf) < 0.1  # every image asked for the wrong class
    per_class = per_class_accuracy(test.x, test.y, clf)
    assert len(per_class) == 10 and min(per_class) > 0.85
    only_zeros = per_class_accuracy(test.x[test.y == 0], test.y[test.y == 0], clf)
    assert only_zeros[0] > 0.9 and all(a != a for a in only_zeros[1:])  # NaN where no samples were asked for


def test_class_accuracy_checks_labels(clf, real):
    _, test = real
    with pytest.raises(ValueError, match="one requested label per image"):
        class_accuracy(test.x[:5], test.y[:4], clf)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        class_accuracy(test.x[:2], torch.tensor([3, 10]), clf)


# -- the evaluator ----------------------------------------------------------------------------------
def test_evaluator_reports_scores_next_to_the_floor(clf, real):
    _, test = real
    evaluator = FIDEvaluator("digits", SIZE, classifier=clf)
    assert evaluator.n == len(test)
    good = evaluator.score(test.x, labels=test.y)
    assert good["fid"] == pytest.approx(good["fid_floor"]) and good["n_floor"] == len(test)
    assert good["class_accuracy"] > 0.95 and good["precision"] > 0.8 and good["recall"] > 0.8
    bad = evaluator.score(uniform_noise(200))
    assert bad["n"] == bad["n_floor"] == 200  # the floor is taken at the same sample count
    assert bad["fid"] > 10 * bad["fid_floor"] and bad["precision"] < 0.05
    half = evaluator.score(test.x[test.y < 5])
    assert half["precision"] > 0.8 and half["recall"] < 0.6 < half["recall_floor"]


def test_evaluator_rejects_a_classifier_for_other_data(clf):
    with pytest.raises(ValueError, match="classifier=None"):
        FIDEvaluator("digits", 16, classifier=clf)


# -- input validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("images, fix", [
    (torch.zeros(4, 3, SIZE, SIZE), r"x\.mean\(dim=1, keepdim=True\)"),
    (torch.full((4, 1, SIZE, SIZE), 200.0), r"x / 127\.5 - 1"),
    (torch.full((4, 1, SIZE, SIZE), 1.5), r"tanh|clamp"),
    (torch.zeros(4, 1, SIZE, SIZE, dtype=torch.uint8), r"x\.float\(\) / 127\.5 - 1"),
    (torch.zeros(1, SIZE, SIZE), r"x\.unsqueeze\(0\)"),
    (torch.zeros(4, SIZE * SIZE), rf"x\.view\(-1, 1, {SIZE}, {SIZE}\)"),
    (torch.zeros(4, 1, 28, 28), rf"resize\(x, {SIZE}\)"),
    (torch.full((4, 1, SIZE, SIZE), float("nan")), "NaN"),
])
def test_bad_images_raise_errors_that_name_the_fix(clf, images, fix):
    with pytest.raises(ValueError, match=fix):
        clf.features(images)


# -- caching --------------------------------------------------------------------------------------
def test_second_call_loads_from_disk(clf, cache_dir, real, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded, not trained")

    monkeypatch.setattr(classifier_module, "fit_classifier", no_training)
    again = feature_classifier("digits", SIZE, device="cpu", cache_dir=cache_dir)
    assert again.loaded_from_cache and not clf.loaded_from_cache
    assert again.test_accuracy == clf.test_accuracy
    x = real[1].x[:20]
    assert torch.allclose(again.features(x), clf.features(x))


def test_loading_from_cache_leaves_the_global_rng_alone(clf, cache_dir):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    feature_classifier("digits", SIZE, device="cpu", cache_dir=cache_dir)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("damage", ["garbage", "stale"])
def test_unusable_cache_file_is_retrained_with_a_warning(tmp_path, damage):
    quick = TrainConfig(epochs=1)
    path = tmp_path / classifier_module.cache_file_name("digits", 16, 1)
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        torch.save({"version": classifier_module.VERSION, "data_name": "digits", "size": 28, "channels": 1,
                    "num_classes": 10, "state_dict": {}}, path)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        model = feature_classifier("digits", 16, device="cpu", cache_dir=tmp_path, config=quick)
    assert not model.loaded_from_cache and model.test_accuracy is not None
    reloaded = feature_classifier("digits", 16, device="cpu", cache_dir=tmp_path)  # the file was rewritten
    assert reloaded.loaded_from_cache and reloaded.test_accuracy == model.test_accuracy


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(classifier_module.CACHE_ENV, str(tmp_path))
    assert classifier_module.default_cache_dir() == tmp_path
    monkeypatch.delenv(classifier_module.CACHE_ENV)
    assert classifier_module.default_cache_dir().parts[-3:] == (".cache", "gancourse", "classifiers")


def test_point_data_sets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="labelled images"):
        feature_classifier("ring8", 16, device="cpu", cache_dir=tmp_path)


def test_checkerboard_energy_finds_a_period_two_pattern_and_nothing_in_smooth_images():
    from gancourse.metrics import checkerboard_energy

    board = torch.ones(2, 1, 16, 16)
    board[..., ::2, ::2] = board[..., 1::2, 1::2] = -1
    stripes = torch.ones(1, 3, 8, 8)
    stripes[..., ::2, :] = -1  # period 2 along one axis: (pi, 0)
    assert checkerboard_energy(board) == pytest.approx(1.0)
    assert checkerboard_energy(stripes) == pytest.approx(1.0)
    ramp = torch.linspace(-1, 1, 32).expand(4, 1, 32, 32)
    assert checkerboard_energy(ramp) < 0.01
    noise = checkerboard_energy(torch.randn(200, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert noise == pytest.approx(3 / 1023, rel=0.2)  # white noise spreads its power evenly
    assert checkerboard_energy(torch.zeros(1, 1, 4, 4)) == 0.0  # a flat image has no power to share
    with pytest.raises(ValueError, match="even H and W"):
        checkerboard_energy(torch.zeros(1, 1, 5, 5))
