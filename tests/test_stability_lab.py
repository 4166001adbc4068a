"""Tests for the lesson-04 stability lab, driven headless and through its widgets with tiny networks."""
from __future__ import annotations

import io
import math

import pytest
import torch
from PIL import Image

from gancourse import losses
from gancourse.metrics.toy import ModeCoverage
from gancourse.widgets import LabRun, StabilityLab
from gancourse.widgets import stability

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(hidden=16, depth=2, batch_size=64, eval_samples=300, steps=30, device="cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def lab_of(interactive: bool, **kwargs) -> StabilityLab:
    return StabilityLab(interactive=interactive, **{**TINY, **kwargs})


def png_size(data) -> tuple[int, int]:
    data = bytes(data)  # ipywidgets stores Image.value as a memoryview
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as picture:
        return picture.size


# ---------------------------------------------------------------------------------------------
# headless


def test_headless_run_records_the_settings_and_writes_the_figure(run_folder, capsys):
    lab = lab_of(False)
    assert lab.box is None and lab.button is None and lab.results == []

    first = lab.run("wgan-gp", steps=30, seed=1)
    assert isinstance(first, LabRun) and lab.results == [first]
    assert (first.objective, first.lr, first.n_critic, first.steps, first.seed) == ("wgan-gp", 1e-4, 5, 30, 1)
    assert first.index == 1 and first.requested_steps == 30 and first.diverged is None and first.seconds > 0
    assert isinstance(first.coverage, ModeCoverage) and first.coverage.num_modes == 8
    assert first.coverage is first.series[-1] and first.coverage.num_samples == 300
    assert first.series_steps[0] == 0 and first.series_steps[-1] == 30
    assert first.series_steps == sorted(first.series_steps) and len(first.series) == len(first.series_steps)
    assert 10 <= len(first.series) <= stability.POINTS_PER_RUN + 2
    assert first.modes == [s.modes_covered for s in first.series]
    assert first.samples.shape == (300, 2)

    assert lab.path == run_folder / "figures" / "stability_lab.png"
    png = lab.path.read_bytes()
    assert png.startswith(PNG_MAGIC)
    out = capsys.readouterr().out
    assert first.summary() in out and str(lab.path) in out
    assert lab.summary == first.summary()
    assert lab.summary.startswith("wgan-gp, lr 1e-4, n_critic 5: ")
    assert f"{first.coverage.modes_covered}/8 modes" in lab.summary and "after 30 steps in" in lab.summary

    second = lab.run(lr=1e-3, n_critic=2)  # the objective, steps and seed stay
    assert (second.objective, second.lr, second.n_critic, second.steps, second.seed) == ("wgan-gp", 1e-3, 2, 30, 1)
    assert second.index == 2 and lab.results == [first, second]
    assert lab.path.read_bytes() != png
    assert "#1 wgan-gp" in repr(lab.results[0].label()) and "series" not in repr(second)


def test_naming_an_objective_brings_its_recipe_and_a_seed_repeats_a_run(run_folder):
    lab = lab_of(False, steps=10)
    clip = lab.run("wgan_clip")  # the registry's spelling rules
    assert (clip.objective, clip.lr, clip.n_critic) == ("wgan-clip", 5e-5, 5)
    hinge = lab.run("hinge", n_critic=3)
    assert (hinge.objective, hinge.lr, hinge.n_critic, hinge.seed) == ("hinge", 2e-4, 3, 0)
    again = lab.run(seed=4)  # nothing named: the current settings stay
    assert (again.objective, again.lr, again.n_critic, again.seed) == ("hinge", 2e-4, 3, 4)
    repeat = lab.run(seed=4)
    assert torch.equal(repeat.samples, again.samples) and repeat.series == again.series
    assert not torch.equal(hinge.samples, again.samples)  # seed 0 vs seed 4


def test_headless_show_writes_the_figure_even_before_any_run(run_folder):
    lab = lab_of(False, name="lab_empty", lesson="04_wgan")
    path = lab.show()
    assert path == run_folder / "figures" / "lab_empty.png" and path.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("kwargs, match", [
    ({"objective": "wgan"}, "unknown objective 'wgan'; choose one of"),
    ({"objective": 3}, "unknown objective"),
    ({"lr": 0}, "lr must be a number from 1e-05 to 0.01"),
    ({"lr": -1e-4}, "lr must be"),
    ({"lr": 0.5}, "lr must be"),
    ({"lr": math.nan}, "lr must be"),
    ({"lr": "1e-4"}, "lr must be"),
    ({"n_critic": 0}, "n_critic is the number of D updates per G update: use 1 to 10"),
    ({"n_critic": 11}, "n_critic"),
    ({"n_critic": 2.5}, "n_critic must be a whole number"),
    ({"steps": 0}, "steps must be from 1 to"),
    ({"steps": True}, "steps must be a whole number"),
    ({"seed": "a"}, "seed must be a whole number"),
])
def test_bad_values_raise_and_name_the_fix(run_folder, kwargs, match):
    lab = lab_of(False)
    with pytest.raises(ValueError, match=match):
        lab.run(**kwargs)
    assert lab.results == [] and lab.settings["objective"] == "nonsaturating"


def test_bad_constructor_arguments(run_folder):
    with pytest.raises(ValueError, match="mixture data set with known modes"):
        StabilityLab(data=torch.randn(100, 2), interactive=False)
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        lab_of(False, hidden=0)
    with pytest.raises(ValueError, match="lr must be"):
        lab_of(False, lr=0.0)
    with pytest.raises(ValueError, match="unknown objective"):
        lab_of(False, objective="gan")


def test_smoke_mode_defaults_to_headless_and_a_small_budget(monkeypatch, displayed):
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    lab = StabilityLab(interactive=None, hidden=16)
    assert lab.interactive is False and lab.settings["steps"] == stability.SMOKE_STEPS
    monkeypatch.delenv("GANCOURSE_SMOKE")
    lab = StabilityLab(interactive=None, hidden=16)
    assert lab.interactive is True and lab.settings["steps"] == stability.DEFAULT_STEPS
    assert lab.button is not None


def test_a_blow_up_is_recorded_not_raised(run_folder, monkeypatch):
    lab = lab_of(False)
    build = lab._build_gan

    def poisoned(*args):
        gan = build(*args)
        with torch.no_grad():
            gan.nets["D"].net[-1].weight.fill_(math.nan)  # D's scores, its loss and G's update turn NaN
        return gan

    monkeypatch.setattr(lab, "_build_gan", poisoned)
    result = lab.run("nonsaturating")
    assert result.diverged == "loss_D became nan at step 1" and result.steps == 1
    assert result.coverage.modes_covered == 0 and result.coverage.high_quality == 0.0
    assert "diverged (loss_D became nan at step 1)" in lab.summary and "Lower the learning rate" in lab.summary
    assert lab.path.read_bytes().startswith(PNG_MAGIC)
    assert "diverged" in result.label()


# ---------------------------------------------------------------------------------------------
# interactive


def test_clicking_train_uses_the_widget_values(displayed, run_folder, capsys):
    lab = lab_of(True)
    assert lab.box is not None and displayed == []
    empty = bytes(lab.image.value)
    assert png_size(empty)[0] > 600
    assert "press Train" in lab.summary_html.value

    lab.objective_dropdown.value = "hinge"
    lab.lr_slider.value = 5e-4
    lab.n_critic_slider.value = 2
    lab.steps_box.value = 30
    lab.seed_box.value = 3
    lab.button.click()
    assert len(lab.results) == 1
    run = lab.results[0]
    assert (run.objective, run.lr, run.n_critic, run.steps, run.seed) == ("hinge", 5e-4, 2, 30, 3)
    assert lab.summary.startswith("hinge, lr 5e-4, n_critic 2: ")
    assert "hinge, lr 5e-4, n_critic 2" in lab.summary_html.value
    first = bytes(lab.image.value)
    assert first != empty and first == lab.render()

    lab.objective_dropdown.value = "wgan-clip"
    lab.button.click()
    assert [r.objective for r in lab.results] == ["hinge", "wgan-clip"]
    assert lab.results[1].lr == 5e-4 and lab.results[1].n_critic == 2  # the sliders' values, not the recipe
    assert bytes(lab.image.value) != first and "wgan-clip" in lab.summary_html.value
    assert lab.button.disabled is False
    assert capsys.readouterr().out == ""  # interactive: nothing printed, nothing written
    assert not (run_folder / "figures").exists()

    assert lab.show() is None and displayed == [lab.box]


def test_run_in_code_moves_the_widgets(displayed):
    lab = lab_of(True)
    lab.run("lsgan", lr=3e-4, n_critic=3, steps=12, seed=5)
    assert lab.objective_dropdown.value == "lsgan" and lab.lr_slider.value == pytest.approx(3e-4)
    assert (lab.n_critic_slider.value, lab.steps_box.value, lab.seed_box.value) == (3, 12, 5)
    assert lab.results[-1].steps == 12 and "lsgan" in lab.summary_html.value


def test_recipe_button_restores_the_published_defaults(displayed):
    lab = lab_of(True)
    lab.objective_dropdown.value = "wgan-clip"
    assert "RMSprop" in lab.recipe_note.value and "clip 0.01" in lab.recipe_note.value
    lab.lr_slider.value = 1e-3
    lab.n_critic_slider.value = 1
    lab.recipe_button.click()
    recipe = losses.objective("wgan-clip")
    assert (lab.lr_slider.value, lab.n_critic_slider.value) == (recipe.lr, recipe.n_critic) == (5e-5, 5)
    assert (lab.settings["lr"], lab.settings["n_critic"]) == (5e-5, 5)

    lab.objective_dropdown.value = "wgan-gp"
    assert "λ = 10" in lab.recipe_note.value
    lab.recipe_button.click()
    assert (lab.lr_slider.value, lab.n_critic_slider.value) == (1e-4, 5)
    lab.apply_recipe("spectral-norm")
    assert lab.objective_dropdown.value == "spectral-norm"
    assert (lab.lr_slider.value, lab.n_critic_slider.value) == (2e-4, 1)


def test_train_button_is_disabled_while_training_and_enabled_after_a_failure(displayed, monkeypatch):
    lab = lab_of(True, steps=5)
    seen = []
    train = lab._train

    def watched(**settings):
        seen.append((lab.button.disabled, lab.summary_html.value))
        return train(**settings)

    monkeypatch.setattr(lab, "_train", watched)
    lab.button.click()
    assert seen[0][0] is True and "training nonsaturating" in seen[0][1]
    assert lab.button.disabled is False and len(lab.results) == 1

    def broken(**settings):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(lab, "_train", broken)
    lab.button.click()  # a click has no caller: the error goes to the summary line
    assert lab.button.disabled is False and len(lab.results) == 1
    assert "RuntimeError: out of memory" in lab.summary_html.value
    with pytest.raises(RuntimeError, match="out of memory"):
        lab.run()
    assert lab.button.disabled is False


def test_live_view_redraws_during_training(displayed, monkeypatch):
    monkeypatch.setattr(stability, "LIVE_EVERY_S", 0.0)
    monkeypatch.setattr(stability, "LIVE_OVERHEAD", 1.0)
    monkeypatch.setattr(stability, "POINTS_PER_RUN", 2)
    lab = lab_of(True)
    pictures, notes = [], []
    lab.image.observe(lambda change: pictures.append(change["new"]), names="value")
    lab.summary_html.observe(lambda change: notes.append(change["new"]), names="value")
    lab.run("nonsaturating", steps=30)
    assert len(pictures) == 2  # at step 15 during training, then the final picture
    assert bytes(pictures[-1]) == lab.render()
    assert any("training nonsaturating, lr 2e-4, n_critic 1: step 15 / 30" in note for note in notes)
    assert lab.results[0].series_steps == [0, 15, 30]
    assert lab.summary.startswith("nonsaturating, lr 2e-4, n_critic 1: ")


def fake_run(index: int, modes: int) -> LabRun:
    scores = [ModeCoverage(m, 8, m / 10, [1] * m + [0] * (8 - m), 100) for m in (0, modes // 2, modes)]
    return LabRun("hinge", 2e-4, 1, 100, 1.0, scores[-1], [0, 50, 100], scores, index=index,
                  samples=torch.randn(100, 2))


def test_the_figure_keeps_the_last_six_runs(run_folder):
    lab = lab_of(False, steps=3)
    lab.results.extend(fake_run(i, i) for i in range(1, 8))
    fig = lab.figure()
    modes_ax, hq_ax, points_ax = fig.axes
    legend = hq_ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == stability.SHOWN_RUNS and labels[0].startswith("#2 ") and labels[-1].startswith("#7 ")
    assert legend.get_texts()[-1].get_fontweight() == "bold" and legend.get_texts()[0].get_fontweight() == "normal"
    assert legend.get_title().get_text() == "1 older run not shown"
    assert len(modes_ax.get_lines()) == stability.SHOWN_RUNS + 1  # plus the "all modes" line
    assert points_ax.get_title() == "#7 samples at step 100: 7/8 modes"
    assert list(modes_ax.get_lines()[-1].get_ydata()) == [0, 3, 7]  # this run, drawn last and strongest
    assert modes_ax.get_lines()[-1].get_linewidth() > modes_ax.get_lines()[1].get_linewidth()
    assert list(modes_ax.get_lines()[0].get_ydata()) == [8, 8]  # the "all modes" line, under the runs
    assert "#7 hinge, lr 2e-4, n_critic 1: 7/8, 70%" in labels[-1]
    earlier = lab.figure(lab.results[2])  # an earlier run, with the two before it
    assert [t.get_text()[:2] for t in earlier.axes[1].get_legend().get_texts()] == ["#1", "#2", "#3"]
