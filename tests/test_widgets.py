"""Tests for the training dashboard and its plotting helpers, against a small fake trainer."""
from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from gancourse.widgets import Dashboard, figure_to_png, plot_curves, plot_samples  # noqa: E402
from gancourse.widgets import dashboard as dashboard_module  # noqa: E402
from gancourse.widgets.view import LiveWidget  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeHistory:
    """The documented History surface: .records, .series(key), .keys()."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def series(self, key: str) -> tuple[list, list]:
        rows = [r for r in self.records if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    def keys(self) -> list[str]:
        return sorted({k for r in self.records for k in r} - {"step", "time"})


class FakeRing:
    """Eight Gaussian modes on a circle, like data.load('ring8')."""

    kind, name, sigma, num_classes, y = "points", "ring8", 0.05, None, None

    def __init__(self) -> None:
        angles = torch.arange(8) * (2 * math.pi / 8)
        self.centers = torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles)], dim=1)
        gen = torch.Generator().manual_seed(0)
        modes = torch.randint(8, (4000,), generator=gen)
        self.x = self.centers[modes] + 0.05 * torch.randn(4000, 2, generator=gen)

    def sample(self, n: int) -> torch.Tensor:
        return self.x[torch.randint(len(self.x), (n,))]

    def __len__(self) -> int:
        return len(self.x)


class FakeImages:
    kind, name, image_shape, num_classes, y = "images", "digits8", (1, 8, 8), 10, None

    def __init__(self) -> None:
        self.x = torch.rand(100, 1, 8, 8) * 2 - 1

    def sample(self, n: int) -> torch.Tensor:
        return self.x[torch.randint(len(self.x), (n,))]


class FakeTrainer:
    """Logs plausible GAN metrics; its 'generator' drifts with the step so samples change."""

    def __init__(self, data, max_steps: int | None = 200, log_every: int = 10) -> None:
        self.data, self.max_steps, self.log_every = data, max_steps, log_every
        self.step, self.device, self.history = 0, torch.device("cpu"), FakeHistory()

    def sample(self, n: int, seed: int | None = 0) -> torch.Tensor:  # Trainer.sample's contract: seeded, RNG untouched
        rng = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(2**31, (1,))))
        z = torch.randn(n, *((2,) if self.data.kind == "points" else self.data.image_shape), generator=rng)
        return torch.tanh(z + self.step / 50) if self.data.kind == "images" else z * 0.5 + self.step / 100

    def run(self, steps: int, callbacks) -> None:
        for _ in range(steps):
            self.step += 1
            if self.step % self.log_every == 0:
                t = self.step / 100
                metrics = {"loss_D": 1.3 - 0.1 * t, "loss_G": 0.7 + 0.1 * t}
                metrics |= {"D_real": 0.6, "D_fake": 0.4 + 0.01 * t}
                self.history.records.append({"step": self.step, "time": 0.01 * self.step, **metrics})
                for cb in callbacks:
                    cb.on_step_end(self, self.step, metrics)

    def fit(self, steps: int, callbacks) -> None:
        for cb in callbacks:
            cb.on_fit_start(self)
        self.run(steps, callbacks)
        for cb in callbacks:
            cb.on_fit_end(self)


class Displayed(list):
    """The objects handed to display(), with the handle each display returned."""

    handles: list


@pytest.fixture
def displayed(monkeypatch):
    """Record what the dashboard hands to IPython's display instead of printing a repr."""
    calls = Displayed()
    calls.handles = []

    def display(obj, display_id=None):
        if isinstance(obj, LiveWidget):  # a widget wrapped so that a display id can replace it (ipywidgets 7 too)
            assert "application/vnd.jupyter.widget-view+json" in obj._repr_mimebundle_()
            obj = obj.widget
        calls.append(obj)
        calls.handles.append(FakeHandle())
        return calls.handles[-1] if display_id else None

    monkeypatch.setattr(dashboard_module, "display", display)
    return calls


class FakeHandle:
    """IPython's DisplayHandle: records what replaced the displayed object."""

    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def png_size(data) -> tuple[int, int]:
    data = bytes(data)  # ipywidgets stores Image.value as a memoryview
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


# ---------------------------------------------------------------------------------------------
# headless


@pytest.mark.parametrize("data_cls", [FakeRing, FakeImages])
def test_headless_writes_pngs_and_prints_summary(run_folder, displayed, capsys, data_cls):
    trainer = FakeTrainer(data_cls())
    dash = Dashboard(interactive=False, every=20, lesson="01_gan_game")
    trainer.fit(100, [dash])

    assert dash.box is None and displayed == []  # no widgets, nothing displayed
    figures = run_folder / "figures"
    assert set(dash.paths) == {"curves", "samples"}
    for key in ("curves", "samples"):
        path = dash.paths[key]
        assert path == figures / f"{key}.png"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 200
    out = capsys.readouterr().out
    assert "100 steps in" in out and "now at step 100" in out
    assert "loss_D 1.200" in out and "loss_G 0.800" in out
    assert "D(x) 0.600" in out and "D(G(z)) 0.410" in out
    assert str(figures / "curves.png") in out and str(figures / "samples.png") in out
    assert len(out.strip().splitlines()) == 3  # short: no per-step chatter


def test_headless_name_prefixes_files(run_folder, capsys):
    dash = Dashboard(interactive=False, name="nonsat")
    FakeTrainer(FakeRing()).fit(30, [dash])
    assert dash.paths["curves"].name == "nonsat_curves.png"
    assert dash.paths["samples"].name == "nonsat_samples.png"
    assert dash.paths["samples"].stat().st_size > 0


def test_smoke_mode_defaults_to_headless(monkeypatch):
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    assert Dashboard().interactive is False
    assert Dashboard(interactive=True).interactive is True
    monkeypatch.setenv("GANCOURSE_SMOKE", "0")
    assert Dashboard().interactive is True
    monkeypatch.delenv("GANCOURSE_SMOKE")
    assert Dashboard().interactive is True


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"n_samples": 0}, {"max_overhead": 0}, {"max_overhead": 2}])
def test_bad_arguments_name_the_fix(kwargs):
    with pytest.raises(ValueError, match="every|sample|share of time"):
        Dashboard(interactive=False, **kwargs)


# ---------------------------------------------------------------------------------------------
# interactive


@pytest.mark.parametrize("data_cls", [FakeRing, FakeImages])
def test_interactive_updates_the_same_widgets_in_place(run_folder, displayed, capsys, data_cls):
    import ipywidgets as widgets

    trainer = FakeTrainer(data_cls(), max_steps=200)
    dash = Dashboard(interactive=True, every=50, max_overhead=1.0)  # 1.0: no time-based skipping
    dash.on_fit_start(trainer)

    assert displayed == [dash.box] and isinstance(dash.box, widgets.VBox)
    box, samples, curves, status = dash.box, dash.samples, dash.curves, dash.status
    assert isinstance(samples, widgets.Image) and samples.format == "png"
    assert isinstance(curves, widgets.Image) and curves.format == "png"
    assert "gancourse-dashboard" in box._dom_classes
    assert "gancourse-dashboard-samples" in samples._dom_classes
    assert "gancourse-dashboard-curves" in curves._dom_classes
    assert "gancourse-dashboard-status" in status._dom_classes
    assert samples in box.children[1].children and curves in box.children[1].children
    first_samples, first_curves = samples.value, curves.value
    png_size(first_samples), png_size(first_curves)

    trainer.run(30, [dash])  # fewer than `every` steps since the last render: images untouched
    assert samples.value == first_samples and curves.value == first_curves

    trainer.run(30, [dash])  # step 60: one refresh
    assert samples.value != first_samples and curves.value != first_curves
    width, height = png_size(samples.value)
    assert 200 < width < 600 and 200 < height < 600  # small enough to render inside training

    trainer.run(100, [dash])
    dash.on_fit_end(trainer)
    assert displayed == [box]  # displayed once, never again
    assert (dash.box, dash.samples, dash.curves, dash.status) == (box, samples, curves, status)
    assert "step 160 / 200" in status.value and "finished" in status.value and "loss_D" in status.value
    assert capsys.readouterr().out == ""  # interactive mode prints nothing
    # the live widgets' output is replaced by one static picture of the final state
    (final,) = displayed.handles[0].updates
    bundle = final._repr_mimebundle_()
    width, height = png_size(base64.b64decode(bundle["image/png"]))
    assert width > 1.5 * height > 300  # curves beside samples
    assert "now at step 160" in bundle["text/plain"] and "loss_D 1.140" in bundle["text/plain"]
    assert sorted(p.name for p in (run_folder / "figures").iterdir()) == ["curves.png", "samples.png"]


def test_refreshes_stay_within_the_overhead_budget(displayed, monkeypatch):
    monkeypatch.setattr(dashboard_module, "STATUS_EVERY_S", 0.0)  # header text on every logged step
    trainer = FakeTrainer(FakeRing())
    dash = Dashboard(interactive=True, every=10, max_overhead=0.1)
    dash.on_fit_start(trainer)
    before = dash.samples.value
    dash._render_cost = 60.0  # pretend drawing took a minute: the next 9 minutes are for training
    trainer.run(50, [dash])
    assert dash.samples.value == before and "step 50" in dash.status.value  # status still moves
    dash._render_cost = 0.0
    trainer.run(10, [dash])
    assert dash.samples.value != before
    dash._render_cost = 60.0
    dash.on_fit_end(trainer)  # the final picture is always drawn
    assert dash._last_render == trainer.step == 60


def test_dashboard_leaves_training_randomness_alone(displayed):
    trainer = FakeTrainer(FakeRing())
    dash = Dashboard(interactive=True, every=10)
    torch.manual_seed(7)
    expected = torch.rand(5)
    torch.manual_seed(7)
    dash.on_fit_start(trainer)
    trainer.run(20, [dash])
    assert torch.equal(torch.rand(5), expected)


def test_samples_come_from_fixed_noise(displayed):
    trainer = FakeTrainer(FakeImages())
    dash = Dashboard(interactive=True, every=1)
    dash.on_fit_start(trainer)
    first = dash.samples.value
    torch.rand(3)  # training consumes random numbers between refreshes
    dash._refresh(trainer, trainer.step)
    assert dash.samples.value == first  # same generator + same noise = same picture


# ---------------------------------------------------------------------------------------------
# plain plotting helpers


def test_plot_curves_labels_and_panels():
    trainer = FakeTrainer(FakeRing())
    trainer.run(200, [])
    fig = plot_curves(trainer.history)
    loss_ax, d_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and d_ax.get_xlabel() == "training step"
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert labels == ["loss_D (discriminator)", "loss_G (generator)"]
    assert "1/2: D cannot tell" in [t.get_text() for t in d_ax.get_legend().get_texts()]
    assert d_ax.get_ylabel().startswith("mean D output")
    plt.close(fig)


def test_plot_curves_critic_scores_and_empty_history():
    records = [{"step": s, "loss_D": -s / 10, "loss_G": s / 10, "D_real": 3.0, "D_fake": -2.0}
               for s in range(1, 9)]
    fig, axes = plt.subplots(1, 2)
    assert plot_curves(records, ax=axes) is fig
    assert axes[1].get_ylabel() == "mean critic score"  # a WGAN critic is no probability
    plt.close(fig)

    fig = plot_curves([])
    assert "no steps logged yet" in [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    with pytest.raises(TypeError, match="trainer.history"):
        plot_curves(42)


def test_plot_samples_scatter_with_modes_and_grid():
    data = FakeRing()
    fig = plot_samples(torch.randn(64, 2), data=data)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["real data", "generated", "mode centres"]
    plt.close(fig)

    fig = plot_samples(torch.randn(64, 2) + 50, data=data)  # a diverged generator is called out
    assert any("64 of 64 generated points lie outside" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)

    fig = plot_samples(torch.rand(16, 3, 8, 8) * 2 - 1)
    (image,) = fig.axes[0].get_images()
    assert image.get_array().shape == (4 * 8 + 3 * 2, 4 * 8 + 3 * 2, 3)  # 4x4 grid, 2 px gaps between tiles
    plt.close(fig)

    fig = plot_samples(torch.rand(9, 64) * 2 - 1, data=FakeImages())  # flat MLP output, reshaped
    assert fig.axes[0].get_images()[0].get_array().shape[:2] == (3 * 8 + 2 * 2, 3 * 8 + 2 * 2)
    plt.close(fig)

    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_samples(torch.zeros(4, 5))


def test_figure_to_png_closes_pyplot_figures():
    fig = plot_samples(torch.randn(10, 2))
    data = figure_to_png(fig, dpi=50)
    assert min(png_size(data)) > 50
    assert fig.number not in plt.get_fignums()
    bare = Figure(figsize=(2, 2))
    bare.subplots().plot([0, 1])
    assert png_size(figure_to_png(bare)) == (200, 200)
