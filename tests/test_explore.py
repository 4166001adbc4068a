"""Tests for the latent explorer and the class picker, driven through their widgets with tiny generators."""
from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gancourse.data import load
from gancourse.models import ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, DCGANGenerator
from gancourse.train import AdversarialGAN, Trainer
from gancourse.widgets import ClassPicker, ClassState, LatentExplorer, LatentState, class_grid, interpolate
from gancourse.widgets import view

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NUM_CLASSES = 5

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_g() -> DCGANGenerator:
    torch.manual_seed(0)
    # PyTorch's default init (not DCGAN's N(0, 0.02)) so an untrained G still draws visible contrast.
    return DCGANGenerator(z_dim=8, image_size=16, width=8, init=False)


def tiny_cg() -> ConditionalDCGANGenerator:
    torch.manual_seed(0)
    return ConditionalDCGANGenerator(z_dim=8, num_classes=NUM_CLASSES, image_size=16, width=8, init=False)


class LabelStub(nn.Module):
    """A 'conditional generator' whose every pixel is y / num_classes * 2 - 1, and the z it got."""

    def __init__(self, z_dim: int = 4, num_classes: int = NUM_CLASSES, size: int = 8) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.size = z_dim, num_classes, size
        self.seen: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.seen.append(z.clone())
        level = y.float() / self.num_classes * 2 - 1
        return level[:, None, None, None].expand(len(z), 1, self.size, self.size).clone()


def level(c: int) -> torch.Tensor:
    """The stub's pixel value for class c, computed in float32 exactly as the stub does."""
    return torch.tensor([c]).float() / NUM_CLASSES * 2 - 1


def png_array(data) -> np.ndarray:
    data = bytes(data)  # ipywidgets stores Image.value as a memoryview
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"))


def crop(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


# ---------------------------------------------------------------------------------------------
# interpolate


@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_interpolate_hits_both_ends_exactly(mode):
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    path = interpolate(a, b, [0.0, 0.25, 1.0], mode)
    assert path.shape == (3, 16) and path.dtype == a.dtype
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.equal(interpolate(a, b, 0.0, mode), a)  # one t: no leading dimension
    batch = interpolate(torch.stack([a, b]), torch.stack([b, a]), torch.linspace(0, 1, 5), mode)
    assert batch.shape == (5, 2, 16) and torch.equal(batch[-1, 0], b) and torch.equal(batch[-1, 1], a)


def test_slerp_keeps_the_norm_and_lerp_does_not():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 3.0])
    ts = torch.linspace(0, 1, 11)
    spherical = interpolate(a, b, ts, "slerp")
    assert torch.allclose(spherical.norm(dim=1), torch.full((11,), 3.0), atol=1e-5)
    # The midpoint lies on the great circle at 45 degrees: (3/sqrt 2, 0, 3/sqrt 2).
    assert torch.allclose(spherical[5], torch.tensor([3 / math.sqrt(2), 0.0, 3 / math.sqrt(2)]), atol=1e-5)
    linear = interpolate(a, b, ts, "linear")
    assert linear[5].norm() == pytest.approx(3 / math.sqrt(2), rel=1e-5)  # inside the sphere
    assert torch.allclose(linear[3], 0.7 * a + 0.3 * b)

    gen = torch.Generator().manual_seed(2)
    u, v = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    v = v * u.norm() / v.norm()
    assert torch.allclose(interpolate(u, v, ts, "slerp").norm(dim=1), u.norm().expand(11), rtol=1e-5)


def test_slerp_falls_back_to_lerp_for_parallel_and_zero_vectors():
    a = torch.tensor([1.0, 2.0, 2.0])
    ts = torch.linspace(0, 1, 5)
    for b in (2 * a, -a, torch.zeros(3)):
        spherical = interpolate(a, b, ts, "slerp")
        assert torch.isfinite(spherical).all()
        assert torch.allclose(spherical, interpolate(a, b, ts, "linear"))


def test_interpolate_rejects_bad_input():
    a = torch.zeros(4)
    with pytest.raises(ValueError, match="slerp"):
        interpolate(a, a, 0.5, "spherical")
    with pytest.raises(ValueError, match="same shape"):
        interpolate(a, torch.zeros(5), 0.5)
    with pytest.raises(ValueError, match="finite"):
        interpolate(a, a, float("nan"))


# ---------------------------------------------------------------------------------------------
# state objects


def test_latent_state_is_seeded_validated_and_leaves_the_global_rng_alone():
    before = torch.get_rng_state()
    s, same = LatentState(8, seed=3), LatentState(8, seed=3)
    assert torch.equal(s.z_a, same.z_a) and torch.equal(s.z_b, same.z_b)
    assert not torch.equal(s.z_a, s.z_b)
    z_a, z_b = s.z_a.clone(), s.z_b.clone()
    s.resample("b")
    assert torch.equal(s.z_a, z_a) and not torch.equal(s.z_b, z_b)
    s.set_t(0.0)
    assert torch.equal(s.z_t(), s.z_a)
    s.set_t(1.0)
    assert torch.equal(s.z_t(), s.z_b)
    assert s.path(4).shape == (4, 8)
    s.set_z("a", torch.ones(1, 8))
    assert torch.equal(s.z_a, torch.ones(8))
    assert torch.equal(torch.get_rng_state(), before)
    for call, match in [(lambda: s.set_t(1.5), r"\[0, 1\]"), (lambda: s.set_mode("cubic"), "slerp"),
                        (lambda: s.resample("c"), "'a' or 'b'"), (lambda: s.set_z("a", torch.ones(3)), "8 entries"),
                        (lambda: s.path(1), "steps")]:
        with pytest.raises(ValueError, match=match):
            call()


def test_class_state_sweeps_along_one_unit_direction():
    s = ClassState(NUM_CLASSES, 6, n=4, seed=0)
    assert s.z.shape == (4, 6) and s.axis.norm() == pytest.approx(1.0)
    s.set_offset(2.0)
    assert torch.allclose(s.current_z() - s.z, 2.0 * s.axis.expand(4, 6))
    sweep = s.sweep_z(5, rows=2).reshape(2, 5, 6)
    moved = sweep - s.z[:2, None, :]
    assert torch.allclose(moved, torch.linspace(-3, 3, 5)[None, :, None] * s.axis)
    z, axis = s.z.clone(), s.axis.clone()
    s.select(3)
    s.resample()
    assert s.selected == 3 and torch.equal(s.axis, axis) and not torch.equal(s.z, z)
    assert torch.equal(s.labels(), torch.full((4,), 3))
    with pytest.raises(ValueError, match="0..4"):
        s.select(5)
    with pytest.raises(ValueError, match="sweep offset"):
        s.set_offset(-4)


# ---------------------------------------------------------------------------------------------
# LatentExplorer


def test_latent_explorer_widgets_redraw_in_place(displayed):
    G = tiny_g()
    ex = LatentExplorer(G, interactive=True, seed=0, steps=5)
    image, box, children = ex.image, ex.box, ex.box.children
    assert "gancourse-latent" in box._dom_classes
    assert "gancourse-latent-image" in image._dom_classes and "gancourse-latent-slider" in ex.slider._dom_classes

    first = bytes(image.value)
    ex.slider.value = 0.3
    moved = bytes(image.value)
    assert moved != first
    ex.slider.value = 0.5
    assert bytes(image.value) == first  # the same state draws the same picture

    ex.slider.value = 0.0
    at_zero = png_array(image.value)
    a_panel = crop(at_zero, ex.boxes["a"])
    assert np.array_equal(crop(at_zero, ex.boxes["t"]), a_panel)  # z(0) is z_A
    ex.button_b.click()
    after_b = png_array(image.value)
    assert not np.array_equal(after_b, at_zero)
    assert np.array_equal(crop(after_b, ex.boxes["a"]), a_panel)  # a new z_B leaves A alone...
    assert np.array_equal(crop(after_b, ex.boxes["t"]), a_panel)  # ...and t = 0 still shows A
    assert not np.array_equal(crop(after_b, ex.boxes["b"]), crop(at_zero, ex.boxes["b"]))

    ex.button_a.click()
    after_a = png_array(image.value)
    assert not np.array_equal(crop(after_a, ex.boxes["a"]), a_panel)
    assert np.array_equal(crop(after_a, ex.boxes["b"]), crop(after_b, ex.boxes["b"]))

    ex.slider.value = 0.5
    linear = bytes(image.value)
    ex.mode_toggle.value = "slerp"
    assert ex.state.mode == "slerp" and bytes(image.value) != linear
    ex.mode_toggle.value = "linear"
    assert bytes(image.value) == linear

    assert ex.image is image and ex.box is box and ex.box.children == children
    assert displayed == []
    assert ex.show() is None and displayed == [box]


def test_latent_explorer_frames_follow_the_state():
    ex = LatentExplorer(tiny_g(), interactive=False, steps=4)
    ex.state.set_t(0.0)
    f = ex.frames()
    assert f["a"].shape == (1, 1, 16, 16) and f["path"].shape == (4, 1, 16, 16)
    assert torch.allclose(f["t"], f["a"], atol=1e-6) and torch.allclose(f["path"][0], f["a"][0], atol=1e-6)
    assert torch.allclose(f["path"][-1], f["b"][0], atol=1e-6)
    assert not torch.allclose(f["a"], f["b"])
    assert f["a"].min() >= -1 and f["a"].max() <= 1


def test_refresh_after_changing_the_state_in_code_syncs_the_controls(displayed):
    ex = LatentExplorer(tiny_g(), interactive=True, steps=3)
    ex.state.set_t(0.8)
    ex.state.set_mode("slerp")
    ex.refresh()
    assert ex.slider.value == pytest.approx(0.8) and ex.mode_toggle.value == "slerp"
    assert bytes(ex.image.value) == ex.render()


def test_rendering_keeps_rng_and_train_mode():
    G = tiny_g()
    G.train()
    G.net.up1.eval()  # a mixed state must come back exactly, not as "all train"
    flags = [m.training for m in G.modules()]
    running_mean = G.net.project[1].running_mean.clone()
    before = torch.get_rng_state()
    ex = LatentExplorer(G, interactive=True, steps=3)
    ex.button_a.click()
    ex.slider.value = 0.2
    ex.render()
    assert torch.equal(torch.get_rng_state(), before)
    assert [m.training for m in G.modules()] == flags
    assert torch.equal(G.net.project[1].running_mean, running_mean)  # eval mode: BatchNorm stats untouched
    assert all(p.grad is None for p in G.parameters())


def test_a_generator_that_draws_noise_does_not_move_the_global_rng():
    class Noisy(nn.Module):  # like StyleGAN's per-pixel noise inputs, which draw even in eval mode
        z_dim = 4

        def forward(self, z):
            return torch.tanh(z[:, :1, None, None] + torch.randn(len(z), 1, 8, 8))

    before = torch.get_rng_state()
    LatentExplorer(Noisy(), interactive=False, steps=3).render()
    assert torch.equal(torch.get_rng_state(), before)


def test_latent_explorer_headless_writes_a_png_and_builds_no_widgets(run_folder, displayed, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # any widget import would now fail
    ex = LatentExplorer(tiny_g(), interactive=False, lesson="02_dcgan", name="walk", steps=6)
    assert ex.box is None and ex.image is None and ex.slider is None
    path = ex.show()
    assert path == run_folder / "figures" / "walk.png" and displayed == []
    with Image.open(path) as picture:
        picture.verify()
    pixels = png_array(path.read_bytes())
    assert pixels.shape[1] > 400 and pixels.shape[0] > 200
    strip = crop(pixels, ex.boxes["path"])
    assert strip.shape[1] > 5 * strip.shape[0]  # six frames side by side
    assert path.read_bytes() == ex.render()


def test_smoke_mode_defaults_to_headless(monkeypatch):
    monkeypatch.setenv("GANCOURSE_SMOKE", "1")
    assert not LatentExplorer(tiny_g()).interactive
    assert not ClassPicker(tiny_cg(), NUM_CLASSES).interactive
    monkeypatch.setenv("GANCOURSE_SMOKE", "0")
    assert LatentExplorer(tiny_g(), steps=2).interactive


def test_latent_explorer_errors_name_the_fix():
    class NoDim(nn.Module):
        def forward(self, z):
            return z

    with pytest.raises(ValueError, match="pass z_dim"):
        LatentExplorer(NoDim(), interactive=False)
    with pytest.raises(ValueError, match="expects z_dim=8"):
        LatentExplorer(tiny_g(), z_dim=5, interactive=False)
    with pytest.raises(ValueError, match="steps"):
        LatentExplorer(tiny_g(), steps=1, interactive=False)
    with pytest.raises(TypeError, match="nn.Module"):
        LatentExplorer("G", interactive=False)
    points = LatentExplorer(NoDim(), z_dim=2, interactive=False)
    with pytest.raises(ValueError, match="points"):
        points.render()


# ---------------------------------------------------------------------------------------------
# class_grid and ClassPicker


def test_class_grid_rows_are_the_requested_classes():
    stub = LabelStub()
    grid = class_grid(stub, NUM_CLASSES, per_class=3, seed=0)
    assert grid.shape == (NUM_CLASSES * 3, 1, 8, 8)
    levels = grid.reshape(NUM_CLASSES, 3, -1)
    for c in range(NUM_CLASSES):
        assert torch.all(levels[c] == level(c))
    z = stub.seen[-1].reshape(NUM_CLASSES, 3, -1)
    assert torch.equal(z[0], z[4]) and not torch.equal(z[0, 0], z[0, 1])  # one z per column

    picked = class_grid(stub, NUM_CLASSES, per_class=2, classes=[3, 1, 3]).reshape(3, 2, -1)
    assert [float(row[0, 0]) for row in picked] == [float(level(c)) for c in (3, 1, 3)]
    with pytest.raises(ValueError, match="0..4"):
        class_grid(stub, NUM_CLASSES, classes=[5])
    with pytest.raises(ValueError, match="built for 5"):
        class_grid(stub, 10)


def test_class_grid_is_seeded_and_leaves_rng_and_mode_alone():
    G = tiny_cg()
    G.train()
    before = torch.get_rng_state()
    one, two = class_grid(G, NUM_CLASSES, 2, seed=4), class_grid(G, NUM_CLASSES, 2, seed=4)
    assert torch.equal(one, two) and not torch.equal(one, class_grid(G, NUM_CLASSES, 2, seed=5))
    assert torch.equal(torch.get_rng_state(), before) and G.training


def test_class_picker_widgets_redraw_in_place(displayed):
    picker = ClassPicker(tiny_cg(), NUM_CLASSES, interactive=True, n=4, class_names=list("abcde"))
    image, box, children = picker.image, picker.box, picker.box.children
    assert "gancourse-classes" in box._dom_classes and "gancourse-classes-image" in image._dom_classes
    assert "gancourse-classes-buttons" in picker.buttons._dom_classes
    assert [label for label, _ in picker.buttons.options] == list("abcde")

    first = bytes(image.value)
    picker.buttons.value = 3
    assert picker.state.selected == 3 and bytes(image.value) != first
    third = bytes(image.value)
    z = picker.state.z.clone()
    picker.resample_button.click()
    assert picker.state.selected == 3 and not torch.equal(picker.state.z, z)
    assert bytes(image.value) != third
    resampled = bytes(image.value)
    picker.slider.value = 1.5
    assert bytes(image.value) != resampled
    picker.slider.value = 0.0
    assert bytes(image.value) == resampled  # back to the same codes: the same picture
    picker.slider.value = 1.5
    swept = bytes(image.value)
    picker.axis_button.click()
    assert bytes(image.value) != swept
    assert picker.image is image and picker.box is box and picker.box.children == children
    assert picker.show() is None and displayed == [box]


def test_class_picker_shows_the_selected_class_and_the_sweep_keeps_it():
    stub = LabelStub()
    picker = ClassPicker(stub, NUM_CLASSES, interactive=True, n=6, sweep_steps=4)
    picker.buttons.value = 2
    assert torch.all(picker.samples() == level(2))
    picker.slider.value = -2.0
    assert torch.allclose(stub.seen[-1], picker.state.z - 2.0 * picker.state.axis)
    sweep = picker.sweep(rows=3)
    assert sweep.shape == (12, 1, 8, 8) and torch.all(sweep == level(2))


def test_class_picker_uses_the_gan_generator_or_net():
    G = tiny_cg()
    gan = AdversarialGAN(G, ConditionalDCGANDiscriminator(num_classes=NUM_CLASSES, image_size=16, width=8))
    from_gan = ClassPicker(gan, NUM_CLASSES, interactive=False, n=2)
    assert from_gan.generator is G and from_gan.z_dim == 8
    assert from_gan.samples().shape == (2, 1, 16, 16)
    stub = LabelStub(z_dim=8)
    ema = ClassPicker(gan, NUM_CLASSES, interactive=False, n=2, net=stub)
    assert ema.generator is stub and torch.all(ema.samples() == -1)
    with pytest.raises(ValueError, match="built for 5"):
        ClassPicker(gan, 10, interactive=False)
    with pytest.raises(ValueError, match="one name per class"):
        ClassPicker(G, NUM_CLASSES, class_names=["a", "b"], interactive=False)
    with pytest.raises(TypeError, match="a Trainer, a GAN or a generator network"):
        ClassPicker(object(), NUM_CLASSES, interactive=False)


def test_class_picker_headless_writes_grid_and_sweep(run_folder, displayed, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    G = tiny_cg()
    before = torch.get_rng_state()
    picker = ClassPicker(G, NUM_CLASSES, interactive=False, lesson="03_cgan", sweep_steps=5)
    assert picker.box is None and picker.buttons is None and picker.image is None
    paths = picker.show()
    assert paths == {"grid": run_folder / "figures" / "classes_grid.png",
                     "sweep": run_folder / "figures" / "classes_sweep.png"}
    assert picker.paths == paths and displayed == []
    for path in paths.values():
        with Image.open(path) as picture:
            picture.verify()
    grid, sweep = png_array(paths["grid"].read_bytes()), png_array(paths["sweep"].read_bytes())
    assert grid.shape[1] > grid.shape[0] > 200  # five rows of eight
    assert min(sweep.shape[:2]) > 200  # four rows of five
    assert png_array(picker.render()).shape[0] > 200
    assert torch.equal(torch.get_rng_state(), before)


def test_widgets_sample_a_trainer_through_its_ema_in_display_mode():
    """Given a Trainer, the widgets draw what trainer.sample draws: the EMA generator, statistics re-measured."""
    data = load("digits", size=16, limit=200)
    torch.manual_seed(0)
    gan = AdversarialGAN(ConditionalDCGANGenerator(z_dim=8, num_classes=10, image_size=16, width=8),
                         ConditionalDCGANDiscriminator(num_classes=10, image_size=16, width=8))
    trainer = Trainer(gan, data, steps=5, batch_size=16, seed=0, ema=0.5, progress=False, verbose=False)
    trainer.fit()
    picker = ClassPicker(trainer, 10, interactive=False, n=4)
    z, labels = picker.state.current_z(), picker.state.labels()
    assert torch.equal(picker.samples(), trainer.sample(4, z=z, labels=labels))
    assert not trainer.ema.stale  # the average's statistics were measured before it was drawn
    live = ClassPicker(gan, 10, interactive=False, n=4).samples()
    assert not torch.equal(live, picker.samples())  # the GAN's live generator is another network
    explorer = LatentExplorer(trainer, interactive=False)
    assert explorer.frames()["a"].shape == (1, 1, 16, 16)
    with pytest.raises(TypeError, match="not a Trainer"):
        LatentExplorer(trainer, net=gan.generator, interactive=False)
