"""Lesson 04's comparison table: every (objective, seed) is trained and scored, and the table reports
mean and spread over the seeds."""
import statistics

import pytest

from gancourse.compare import BackgroundRuns, Comparison, ImageSetup, Run, ToySetup, compare_objectives, train_and_score

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_objective_and_seed_is_trained_and_scored_on_a_mixture():
    seen = []
    result = compare_objectives("ring8", ["wgan-gp", "hinge"], seeds=(0, 1), steps=4,
                                setup=ToySetup(hidden=16, batch_size=32), n_samples=200, callback=seen.append)
    assert [(r.objective, r.seed) for r in result.runs] == [("wgan-gp", 0), ("wgan-gp", 1), ("hinge", 0), ("hinge", 1)]
    assert seen == result.runs
    for run in result.runs:
        assert run.steps == 4 and run.seconds > 0 and run.num_modes == 8
        assert 0 <= run.modes <= 8 and 0.0 <= run.high_quality <= 1.0 and run.fid is None
    gp_runs = result.by("ring8", "wgan-gp")
    assert all(r.w1 is not None for r in gp_runs)
    # different seeds are different runs: the critic's estimates differ
    assert gp_runs[0].w1 != gp_runs[1].w1


def test_rows_hold_mean_and_spread_over_seeds_and_the_table_shows_them():
    runs = [Run("ring8", "hinge", seed, 10, seconds, modes=m, num_modes=8, high_quality=hq)
            for seed, seconds, m, hq in [(0, 1.0, 8, 0.9), (1, 3.0, 6, 0.5), (2, 2.0, 8, 0.7)]]
    runs += [Run("digits", "hinge", 0, 10, 4.0, fid=12.0, fid_floor=0.9)]
    comparison = Comparison(runs)
    ring_row, digits_row = comparison.rows()
    assert ring_row["modes"] == pytest.approx(22 / 3) and ring_row["modes_sd"] == pytest.approx(statistics.stdev([8, 6, 8]))
    assert ring_row["high_quality"] == pytest.approx(0.7) and ring_row["all_modes"] == 2
    assert digits_row["fid"] == 12.0 and digits_row["fid_sd"] == 0.0 and digits_row["fid_floor"] == 0.9
    table = comparison.table()
    assert "| ring8 | hinge | 3 | 10 | 7.3 ± 1.2 of 8 | 2/3 | 70.0 ± 20.0% | – | 2 ± 1 |" in table
    assert "12.0 ± 0.0 (0.90)" in table
    assert comparison.to_dict()["rows"] == comparison.rows()


def test_images_are_scored_by_fid_next_to_the_floor(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCOURSE_CACHE", str(tmp_path))  # the tiny classifier stays out of the real cache
    result = compare_objectives("digits", ["spectral-norm"], seeds=(0,), steps=2,
                                setup=ImageSetup(size=16, width=8, z_dim=8, batch_size=16), n_samples=64)
    (run,) = result.runs
    assert run.fid is not None and run.fid > run.fid_floor > 0 and run.modes is None


def test_bad_requests_fail_before_any_training():
    with pytest.raises(ValueError, match="unknown objective"):
        compare_objectives("ring8", ["wgan-gp", "wgan-pg"], steps=5)
    with pytest.raises(ValueError, match="seed"):
        compare_objectives("ring8", ["hinge"], seeds=(), steps=5)
    with pytest.raises(ValueError, match="steps"):
        compare_objectives("ring8", ["hinge"], steps=0)


def test_the_scored_average_follows_the_course_rule(monkeypatch):
    """ema="ramp" (the default) is lesson 01's rule: a half-life of 5% of the images seen, uncapped."""
    options = []
    import gancourse.compare as compare

    real_trainer = compare.Trainer

    def spy(*args, **kwargs):
        options.append({k: kwargs.get(k) for k in ("ema", "ema_half_life", "ema_rampup")})
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(compare, "Trainer", spy)
    compare_objectives("ring8", ["hinge"], seeds=(0,), steps=20, setup=ToySetup(hidden=8, batch_size=16), n_samples=50)
    compare_objectives("ring8", ["hinge"], seeds=(0,), steps=20, ema=None, setup=ToySetup(hidden=8, batch_size=16),
                       n_samples=50)
    assert options[0]["ema_rampup"] == 0.05 and options[0]["ema_half_life"] >= 1e9 and options[0]["ema"] is None
    assert options[1] == {"ema": None, "ema_half_life": None, "ema_rampup": None}
    with pytest.raises(ValueError, match="ema must be"):
        compare_objectives("ring8", ["hinge"], steps=5, ema="sometimes")


def test_two_workers_give_the_same_runs_in_the_same_order_and_lr_overrides_the_recipe():
    kwargs = dict(seeds=(0, 1), steps=6, setup=ToySetup(hidden=8, batch_size=16), n_samples=100, verbose=False)
    alone = compare_objectives("ring8", ["wgan-gp", "hinge"], **kwargs)
    shared = compare_objectives("ring8", ["wgan-gp", "hinge"], workers=2, **kwargs)
    key = lambda r: (r.objective, r.seed, r.modes, r.high_quality, r.w1)
    assert [key(r) for r in shared.runs] == [key(r) for r in alone.runs]
    faster = compare_objectives("ring8", ["wgan-gp"], lr=1e-2, **kwargs)
    assert [r.w1 for r in faster.runs] != [r.w1 for r in alone.runs[:2]]
    with pytest.raises(ValueError, match="workers"):
        compare_objectives("ring8", ["hinge"], steps=5, workers=0)


def test_background_runs_return_the_jobs_runs_in_order_while_the_caller_works():
    setup = ToySetup(hidden=8, batch_size=16)
    jobs = [dict(data="ring8", objective="hinge", seed=seed, steps=6, setup=setup, n_samples=100) for seed in (1, 0)]
    runs = BackgroundRuns(jobs, workers=2, threads=1)
    here = train_and_score(**jobs[1])  # the caller trains meanwhile (lesson 04's dashboard run)
    results = runs.results()
    assert [r.seed for r in results] == [1, 0]
    assert (results[1].modes, results[1].high_quality, results[1].w1) == (here.modes, here.high_quality, here.w1)
    assert BackgroundRuns([]).results() == []  # lesson 04 in smoke mode: one seed, nothing in the background
    with pytest.raises(ValueError, match="workers"):
        BackgroundRuns(jobs, workers=0)


def test_a_saved_comparison_loads_back(tmp_path):
    import json

    runs = [Run("ring8", "hinge", 0, 10, 1.0, modes=8, num_modes=8, high_quality=0.9)]
    path = tmp_path / "saved.json"
    path.write_text(json.dumps({"date": "today", **Comparison(runs).to_dict()}))
    loaded = Comparison.from_dict(json.loads(path.read_text()))
    assert loaded.runs == runs and loaded.table() == Comparison(runs).table()
    with pytest.raises(ValueError, match="not a saved comparison"):
        Comparison.from_dict({"rows": []})
