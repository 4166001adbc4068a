"""benchmarks/stylegan.py, the script that trains the shipped StyleGAN: a warm start from a training checkpoint
counts that run's steps, and an export keeps the FID curves of the runs that made the G it started from."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from gancourse.models import StyleGenerator


@pytest.fixture(scope="module")
def bench(repo_root):
    spec = importlib.util.spec_from_file_location("stylegan_benchmark", repo_root / "benchmarks" / "stylegan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(step: int, fid: float) -> dict:
    return {"step": step, "seconds": float(step), "fid": fid, "fid_floor": 0.5, "precision": 0.8, "recall": 0.6,
            "p": 0.0, "pl_mean": 0.27}


def test_export_keeps_the_curves_of_the_runs_before(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    first = {"steps": 100, "images": 3200, "training_seconds": 60, "fid": 5.0, "fid_floor": 0.5, "precision": 0.8,
             "recall": 0.6, "torch": "x", "machine": "m"}
    bench.write_results(first, [_row(50, 6.0), _row(100, 5.0)], None)
    second = dict(first, steps=130, fid=4.0)
    path = bench.write_results(second, [_row(10, 4.5), _row(30, 4.0)], {"steps": 100, "fid": 5.0})
    saved = json.loads(path.read_text())
    assert [r["total_steps"] for r in saved["evaluations"]] == [110, 130]
    assert [run["shipped"]["steps"] for run in saved["earlier"]] == [100]
    assert [r["fid"] for r in saved["earlier"][0]["evaluations"]] == [6.0, 5.0]
    table = path.with_suffix(".md").read_text()
    assert "The run before: the G shipped at 100 steps (FID 5.0)" in table and "| 50 | 6.0 |" in table
    # a results file about some other G is not this run's history
    path = bench.write_results(dict(first, steps=999), [_row(5, 3.0)], {"steps": 7, "fid": 9.0})
    assert json.loads(path.read_text())["earlier"] == []


def test_warm_start_from_a_training_checkpoint_takes_its_averaged_G(bench, tmp_path):
    settings = dict(bench.SETTINGS, width=8, max_channels=16, z_dim=16, w_dim=16, mapping_layers=2)
    source_dir, out = tmp_path / "run", tmp_path / "next"
    source_dir.mkdir(), out.mkdir()
    averaged = StyleGenerator(16, 16, 32, 3, width=8, max_channels=16, mapping_layers=2, fused=False)
    with torch.no_grad():
        for p in averaged.parameters():
            p.add_(1.0)
    torch.save({"ema": {"nets": {"G": averaged.state_dict()}}, "step": 40, "elapsed": 12.0},
               source_dir / "ckpt-40.pt")
    (source_dir / "warm_start.json").write_text(json.dumps(
        {"steps": 100, "training_seconds": 60, "fid": 5.0, "settings": settings}))
    (source_dir / "evaluations.json").write_text(json.dumps([_row(20, 4.4), _row(40, 4.2)]))
    gan = bench.build(settings, seed=0)
    info = bench.warm_start(gan, out, source_dir / "ckpt-40.pt")
    assert (info["steps"], info["training_seconds"], info["fid"]) == (140, 72, 4.2)
    assert info["images"] == 140 * settings["batch_size"]
    for name, value in averaged.state_dict().items():
        assert torch.equal(gan.nets["G"].state_dict()[name], value), name
    assert json.loads((out / "warm_start.json").read_text())["steps"] == 140


def _tiny(bench):
    return dict(bench.SETTINGS, width=8, max_channels=16, z_dim=16, w_dim=16, mapping_layers=2, batch_size=4,
                d_width=8, d_max_channels=16)


def test_a_packed_run_resumes_where_it_stopped(bench, tmp_path):
    from gancourse.data import load
    from gancourse.train import Trainer

    settings, run, moved = _tiny(bench), tmp_path / "run", tmp_path / "moved"

    def trainer(out, steps):
        return Trainer(bench.build(settings, seed=0), load("faces", size=32, limit=64), steps=steps, batch_size=4,
                       seed=0, amp=False, ema_half_life=100, checkpoint_dir=out, checkpoint_every=1000, progress=False,
                       verbose=False)

    first = trainer(run, 20)
    first.fit()
    (run / "evaluations.json").write_text(json.dumps([_row(20, 9.0)]))
    path = bench.pack(run, tmp_path / "run.pack")
    assert path.stat().st_size < 0.75 * (run / "checkpoint.pt").stat().st_size
    bench.unpack(path, moved)
    assert json.loads((moved / "evaluations.json").read_text()) == [_row(20, 9.0)]
    with pytest.raises(FileExistsError, match="empty directory"):
        bench.unpack(path, moved)
    original = torch.load(run / "checkpoint.pt", weights_only=False)
    restored = torch.load(moved / "checkpoint.pt", weights_only=False)
    for name in ("G", "D"):
        for key, value in original["gan"]["nets"][name].items():
            assert torch.equal(restored["gan"]["nets"][name][key], value), key
        for index, slot in original["gan"]["opts"][name]["state"].items():
            back = restored["gan"]["opts"][name]["state"][index]
            assert torch.allclose(back["exp_avg_sq"], slot["exp_avg_sq"], rtol=1e-2, atol=0)
            assert back["step"] == slot["step"]
    for key, value in original["ema"]["nets"]["G"].items():
        assert torch.equal(restored["ema"]["nets"]["G"][key], value), key
    # both go on from step 20 and stay together: the dropped first moment is rebuilt by the next step
    straight, resumed = trainer(run, 30), trainer(moved, 30)
    straight.fit(resume=True), resumed.fit(resume=True)
    assert resumed.step == straight.step == 30
    for (key, a), b in zip(straight.gan.nets["G"].state_dict().items(), resumed.gan.nets["G"].state_dict().values()):
        assert torch.allclose(a, b, atol=1e-3), key


def test_pack_refuses_an_optimiser_with_momentum(bench, tmp_path):
    from gancourse.data import load
    from gancourse.train import Trainer

    gan = bench.build(_tiny(bench), seed=0)
    for opt in gan.opts.values():
        for group in opt.param_groups:
            group["betas"] = (0.5, 0.99)
    Trainer(gan, load("faces", size=32, limit=64), steps=2, batch_size=4, seed=0, amp=False, checkpoint_dir=tmp_path,
            progress=False, verbose=False).fit()
    with pytest.raises(ValueError, match="beta1"):
        bench.pack(tmp_path, tmp_path / "run.pack")


def test_warm_start_from_a_run_that_started_from_scratch_counts_its_own_steps(bench, tmp_path):
    settings = _tiny(bench)
    source_dir = tmp_path / "scratch"
    source_dir.mkdir()
    averaged = StyleGenerator(16, 16, 32, 3, width=8, max_channels=16, mapping_layers=2, fused=False)
    torch.save({"ema": {"nets": {"G": averaged.state_dict()}}, "step": 500, "elapsed": 90.4}, source_dir / "c.pt")
    (source_dir / "evaluations.json").write_text(json.dumps([_row(500, 3.3)]))
    (tmp_path / "next").mkdir()
    info = bench.warm_start(bench.build(settings, seed=0), tmp_path / "next", source_dir / "c.pt", settings)
    assert (info["steps"], info["training_seconds"], info["fid"]) == (500, 90, 3.3)
    assert info["settings"]["width"] == 8


def test_a_resumed_run_keeps_its_learning_rate_unless_the_command_names_one(bench, tmp_path):
    from gancourse.data import load
    from gancourse.train import Trainer

    def lrs(gan):
        return {name: [group["lr"] for group in opt.param_groups] for name, opt in gan.opts.items()}

    def run(lr, named, steps):
        gan = bench.build(dict(_tiny(bench), lr=lr), seed=0)
        Trainer(gan, load("faces", size=32, limit=64), steps=steps, batch_size=4, seed=0, amp=False,
                checkpoint_dir=tmp_path, callbacks=[bench.KeepSettings(gan, named)], progress=False,
                verbose=False).fit(resume=True)
        return lrs(gan)

    annealed = lrs(bench.build(dict(_tiny(bench), lr=1e-3), seed=0))
    assert run(1e-3, {"lr", "width"}, 2) == annealed
    # a later call that does not name lr builds with the default 2e-3 but trains on at the checkpoint's 1e-3
    assert bench.SETTINGS["lr"] != 1e-3
    assert run(bench.SETTINGS["lr"], {"width"}, 4) == annealed
    # naming it is how a schedule is made by hand
    assert run(5e-4, {"lr"}, 6) == lrs(bench.build(dict(_tiny(bench), lr=5e-4), seed=0)) != annealed


def test_the_script_builds_the_shipped_architecture_by_default(bench):
    # A run from scratch (or --warm-start from the shipped file) must train the networks the package ships:
    # the shipped G's settings are what the script's defaults build, and the G it builds takes the shipped weights.
    from gancourse.pretrained import load_pretrained, registry

    shipped = registry()["stylegan-faces32"]["info"]["settings"]
    architecture = shipped.keys() - {"lr", "ema_half_life"}  # the schedule's last values, not the defaults
    assert {key: bench.SETTINGS[key] for key in architecture} == {key: shipped[key] for key in architecture}
    G, _ = load_pretrained("stylegan-faces32")
    gan = bench.build(dict(bench.SETTINGS), seed=0)
    gan.nets["G"].load_state_dict(G.state_dict())  # raises on any shape or name that differs
