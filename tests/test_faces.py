"""The faces of lesson 07: drawn from known factors, each factor changing what it should and nothing else."""
from __future__ import annotations

import pytest
import torch

from gancourse.data import load
from gancourse.data.faces import _SKIN, COARSE, FACTORS, FINE, coarse_class, render


def one_face(**chosen):
    factors = {name: torch.tensor([chosen.get(name, 0)]) for name in FACTORS}
    return render(factors, 32)[0]


def test_faces_hold_their_factors_and_are_repeatable():
    train, again, test = load("faces", limit=200), load("faces", limit=200), load("faces", split="test", limit=200)
    assert train.x.shape == (200, 3, 32, 32) and train.x.min() >= -1 and train.x.max() <= 1
    assert torch.equal(train.x, again.x) and not torch.equal(train.x, test.x)
    assert set(train.factors) == set(FACTORS) == set(COARSE) | set(FINE)
    for name, (_, values) in FACTORS.items():
        assert set(train.factors[name].tolist()) == set(range(len(values))), name  # every value occurs
    assert torch.equal(train.y, coarse_class(train.factors)) and train.num_classes == 9
    assert len(load("faces")) == 10_000 and len(load("faces", split="test")) == 2_000


def test_each_fine_factor_changes_colour_only_where_it_should():
    base = one_face(size=1)
    skin, hair, background = one_face(size=1, skin=3), one_face(size=1, hair=2), one_face(size=1, background=1)
    changed = lambda other: (other - base).abs().sum(0) > 0.05
    centre, corner = (slice(16, 22), slice(12, 20)), (slice(0, 3), slice(0, 3))  # below the fringe; a corner
    assert changed(skin)[centre].float().mean() > 0.5 and not changed(skin)[corner].any()
    assert changed(background)[corner].all() and not changed(background)[centre].any()
    assert 0 < changed(hair).float().mean() < 0.3 and not changed(hair)[centre].any()
    striped = one_face(size=1, stripes=2)
    assert changed(striped)[corner].any() and not changed(striped)[centre].any()


def test_coarse_factors_move_the_features_not_the_palette():
    left, right = one_face(size=1, pose=0), one_face(size=1, pose=2)
    dark = lambda image: (image.mean(0) < -0.5).float()  # eyes (and nothing else is that dark on black-free hair)
    columns = torch.arange(32).float()
    centre_of = lambda mask: float((mask.sum(0) * columns).sum() / mask.sum())
    assert centre_of(dark(one_face(size=1, pose=0, hair=2))) < 15.5 < centre_of(dark(one_face(size=1, pose=2, hair=2)))
    tall, wide = one_face(size=1, shape=1, hair=2), one_face(size=1, shape=2, hair=2)
    skin_of = lambda image: (image - (_SKIN[0] * 2 - 1).view(3, 1, 1)).abs().sum(0) < 0.05
    rows, cols = skin_of(tall).any(1).sum(), skin_of(tall).any(0).sum()
    rows_w, cols_w = skin_of(wide).any(1).sum(), skin_of(wide).any(0).sum()
    assert rows > cols and cols_w > rows_w  # a tall face is taller than wide, a wide one wider than tall
    # the palette (mean colour over the image) hardly moves with the pose
    assert (left.mean((1, 2)) - right.mean((1, 2))).abs().max() < 0.02


def test_bad_factors_and_options_name_the_fix():
    with pytest.raises(ValueError, match="missing \\['stripes'\\]"):
        render({name: torch.tensor([0]) for name in FACTORS if name != "stripes"})
    with pytest.raises(ValueError, match="'hair' takes integers 0..3"):
        render({name: torch.tensor([4 if name == "hair" else 0]) for name in FACTORS})
    with pytest.raises(ValueError, match="split"):
        load("faces", split="valid")


def test_the_factor_model_reads_the_factors_back_and_is_cached(tmp_path):
    from gancourse.metrics.factors import factor_model

    model = factor_model(32, cache_dir=tmp_path, limit=2000, epochs=2)
    accuracy = model.test_accuracy
    assert all(accuracy[name] >= 0.9 for name in FINE), accuracy  # colours and stripes: easy to read
    assert accuracy["shape"] >= 0.8 and accuracy["size"] >= 0.8 and accuracy["pose"] > 0.45, accuracy  # chance 1/3
    test = load("faces", split="test", limit=300)
    read = model.read(test.x)
    assert set(read) == set(FACTORS) and read["hair"].shape == (300,)
    again = factor_model(32, cache_dir=tmp_path, limit=2000, epochs=2)  # from the cache: no training
    assert again.test_accuracy == accuracy and torch.equal(again.read(test.x)["pose"], read["pose"])
    # the mix of factors it reads: the real mix on real faces, a lopsided one on faces drawn lopsided
    shares = model.shares(test.x)
    for name in FINE:  # the factors it reads at >= 90% (pose, at >= 45%, can be off by more than 0.1 in its mix)
        values = FACTORS[name][1]
        true = torch.bincount(test.factors[name], minlength=len(values)).float() / 300
        assert shares[name].shape == (len(values),) and abs(float(shares[name].sum()) - 1) < 1e-6
        assert float((shares[name] - true).abs().max()) < 0.1, (name, shares[name], true)
    skew = {name: test.factors[name] for name in FACTORS}
    skew["background"] = torch.zeros(300, dtype=torch.long)  # one background colour only
    assert float(model.shares(render(skew, 32))["background"][0]) > 0.9
    # even_mix thins what is over-drawn: a pool with half its backgrounds sky gives a subset near a quarter of each
    pool = load("faces", split="train", limit=1200)
    lopsided = {name: pool.factors[name] for name in FACTORS}
    lopsided["background"] = torch.where(torch.arange(1200) % 3 == 0, 0, lopsided["background"])
    pool_x = render(lopsided, 32)
    before = float(model.shares(pool_x)["background"][0])
    picked = model.even_mix(pool_x, 300, seed=1)
    assert picked.shape == (300,) and len(set(picked.tolist())) == 300  # without replacement
    after = model.shares(pool_x[picked])["background"]
    assert before > 0.45 and float(after.max() - after.min()) < 0.08, (before, after)
    with pytest.raises(ValueError, match="larger pool"):
        model.even_mix(pool_x[:10], 10)


def test_a_broken_factor_model_cache_is_trained_again(tmp_path):
    from gancourse.metrics.factors import factor_model

    (tmp_path / "faces-factors-32px-200-e1.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        model = factor_model(32, cache_dir=tmp_path, limit=200, epochs=1)
    assert model.test_accuracy is not None
