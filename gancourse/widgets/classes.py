"""Lesson 03's class picker: what y controls and what z controls in a conditional generator G(z, y).

`class_grid` draws every class with shared codes, `ClassState` holds the selected class, a batch of
codes and a sweep direction, and `ClassPicker` shows them with class buttons and a sweep slider.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancourse.utils import save_png
from gancourse.widgets import sampling
from gancourse.widgets.render import (FRAME_PX, TILE_GAP, labelled, near_square, scale_for, stack, tiles,
                                      to_png)
from gancourse.widgets.view import _add_class, _check_count, _interactive_default, _SyncedView

SWEEP_RANGE = 3.0  # z ~ N(0, I), so its component along any unit direction is N(0, 1): ±3 spans it
SAMPLES_PX = 288  # smallest width of the ClassPicker's sample grid
GRID_TILE_PX = 48  # smallest side of one tile in the all-classes grid


# ---------------------------------------------------------------------------------------------
# every class at once


def class_grid(generator: Any, num_classes: int, per_class: int = 8, seed: int = 0, *,
               classes: Sequence[int] | None = None, z_dim: int | None = None,
               net: nn.Module | None = None) -> torch.Tensor:
    """Samples of every class, row by row: (len(classes) * per_class, C, H, W) on the CPU.

    Row i holds `classes[i]` (default 0..num_classes-1); column j uses the same z in every row, so
    what changes down a column is the class alone and what changes along a row is the style.
    """
    _check_count("num_classes", num_classes, 2)
    source = sampling.resolve(generator, net, z_dim=z_dim, num_classes=num_classes)
    return _class_rows(source, num_classes, per_class, seed, classes)


def _class_rows(source: sampling.Source, num_classes: int, per_class: int, seed: int,
                classes: Sequence[int] | None = None) -> torch.Tensor:
    _check_count("per_class", per_class)
    rows = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    if not rows or any(not 0 <= c < num_classes for c in rows):
        raise ValueError(f"classes must be a non-empty list of ints in 0..{num_classes - 1}; got {classes!r}")
    z = torch.randn(per_class, source.z_dim, generator=torch.Generator().manual_seed(int(seed)))
    labels = torch.tensor(rows, dtype=torch.long).repeat_interleave(per_class)
    return sampling.sample(source, z.repeat(len(rows), 1), labels)


# ---------------------------------------------------------------------------------------------
# the state: the logic, free of widgets


class ClassState:
    """The selected class, a batch of n codes, and one random unit direction to sweep them along."""

    def __init__(self, num_classes: int, z_dim: int, n: int = 16, seed: int = 0, selected: int = 0) -> None:
        self.num_classes = _check_count("num_classes", num_classes, 2)
        self.z_dim = _check_count("z_dim", z_dim)
        self.n = _check_count("n", n)
        self._rng = torch.Generator().manual_seed(int(seed))
        self.z = torch.randn(self.n, self.z_dim, generator=self._rng)
        self.axis = self._direction()
        self.offset = 0.0
        self.selected = 0
        self.select(selected)

    def _direction(self) -> torch.Tensor:
        u = torch.randn(self.z_dim, generator=self._rng)
        return u / u.norm().clamp_min(1e-12)

    def select(self, label: int) -> None:
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < self.num_classes:
            raise ValueError(f"the class must be an int in 0..{self.num_classes - 1}; got {label!r}")
        self.selected = int(label)

    def resample(self) -> None:
        """A new batch of codes; the class and the sweep direction stay."""
        self.z = torch.randn(self.n, self.z_dim, generator=self._rng)

    def new_axis(self) -> None:
        """A new random sweep direction."""
        self.axis = self._direction()

    def set_offset(self, offset: float) -> None:
        offset = float(offset)
        if not -SWEEP_RANGE <= offset <= SWEEP_RANGE:
            raise ValueError(f"the sweep offset must lie in [-{SWEEP_RANGE}, {SWEEP_RANGE}]; got {offset}")
        self.offset = offset

    def labels(self, n: int | None = None) -> torch.Tensor:
        return torch.full((self.n if n is None else n,), self.selected, dtype=torch.long)

    def current_z(self) -> torch.Tensor:
        """The batch moved `offset` along the sweep direction: (n, z_dim)."""
        return self.z + self.offset * self.axis

    def sweep_values(self, steps: int) -> torch.Tensor:
        return torch.linspace(-SWEEP_RANGE, SWEEP_RANGE, _check_count("steps", steps, 2))

    def sweep_z(self, steps: int, rows: int = 1) -> torch.Tensor:
        """The first `rows` codes each moved to `steps` offsets along the axis: (rows * steps, z_dim), row-major."""
        rows = min(_check_count("rows", rows), self.n)
        offsets = self.sweep_values(steps)
        return (self.z[:rows, None, :] + offsets[None, :, None] * self.axis).reshape(-1, self.z_dim)


# ---------------------------------------------------------------------------------------------
# the widget


class ClassPicker(_SyncedView):
    """Pick a class of a conditional generator G(z, y), resample its z batch, and sweep z with y fixed.

    Takes a Trainer (its EMA generator), a conditional GAN (its generator, or `net`, e.g.
    trainer.ema["G"]) or a conditional generator module with .z_dim. interactive=False builds no widgets: `show()` writes
    <name>_grid.png (all classes) and <name>_sweep.png. None picks False in smoke mode, else True.
    """

    CLASS = "gancourse-classes"

    def __init__(self, gan_or_generator: Any, num_classes: int, *, class_names: Sequence[str] | None = None,
                 interactive: bool | None = None, seed: int = 0, n: int = 16, sweep_steps: int = 8,
                 lesson: str | None = None, name: str = "classes", net: nn.Module | None = None,
                 z_dim: int | None = None) -> None:
        self.num_classes = _check_count("num_classes", num_classes, 2)
        self.source = sampling.resolve(gan_or_generator, net, z_dim=z_dim, num_classes=num_classes)
        if class_names is None:
            class_names = [str(i) for i in range(num_classes)]
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) != num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {num_classes} classes; "
                             "give one name per class, in label order")
        self.z_dim = self.source.z_dim
        self.sweep_steps = _check_count("sweep_steps", sweep_steps, 2)
        self.seed = int(seed)
        self.state = ClassState(num_classes, self.z_dim, n=n, seed=seed)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        self.paths: dict[str, Path] = {}
        self.box = self.buttons = self.resample_button = self.axis_button = self.slider = self.image = None
        self._start()

    # -- pictures ------------------------------------------------------------------------------

    def samples(self) -> torch.Tensor:
        """The n images now on view: class `state.selected`, codes moved by the sweep offset."""
        return sampling.sample(self.source, self.state.current_z(), self.state.labels())

    def sweep(self, rows: int = 4) -> torch.Tensor:
        """The first `rows` codes of the batch swept along the axis, class fixed: (rows * sweep_steps, C, H, W)."""
        z = self.state.sweep_z(self.sweep_steps, rows)
        return sampling.sample(self.source, z, self.state.labels(len(z)))

    def render(self) -> bytes:
        """The current view as PNG bytes: n samples of the selected class."""
        images, s = self.samples(), self.state
        nrow = near_square(len(images))
        grid = tiles(images, nrow, scale_for(nrow * images.shape[-1], SAMPLES_PX))
        title = f"class {self.class_names[s.selected]}  ·  sweep offset {s.offset:+.2f}"
        picture, _ = labelled(grid, title=title)
        return to_png(stack([picture])[0])

    def render_grid(self, per_class: int = 8) -> bytes:
        """PNG of `class_grid`: one labelled row per class, the same z down each column."""
        images = _class_rows(self.source, self.num_classes, per_class, self.seed)
        scale = scale_for(images.shape[-2], GRID_TILE_PX)
        grid = tiles(images, per_class, scale)
        pitch = images.shape[-2] * scale + TILE_GAP
        picture, _ = labelled(grid, title="one row per class; each column shares one z",
                              row_labels=self.class_names, row_pitch=pitch, tile=images.shape[-2] * scale)
        return to_png(stack([picture])[0])

    def render_sweep(self, rows: int = 4) -> bytes:
        """PNG of `sweep`: each row one code moved along the axis, each column one offset."""
        images = self.sweep(rows)
        scale = scale_for(images.shape[-1], FRAME_PX)
        width = images.shape[-1] * scale
        grid = tiles(images, self.sweep_steps, scale)
        labels = [f"{v:+.1f}" for v in self.state.sweep_values(self.sweep_steps).tolist()]
        title = f"class {self.class_names[self.state.selected]}: z + s·u along one random direction u"
        picture, _ = labelled(grid, title=title, col_labels=labels, col_pitch=width + TILE_GAP, tile=width)
        return to_png(stack([picture])[0])

    # -- widgets ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """Create the widget tree once; later changes only assign the Image's `.value`."""
        import ipywidgets as widgets

        c = self.CLASS
        self.buttons = _add_class(widgets.ToggleButtons(options=list(zip(self.class_names, range(self.num_classes))),
                                                        value=self.state.selected, description="class",
                                                        style={"button_width": "auto"}), f"{c}-buttons")
        self.resample_button = _add_class(widgets.Button(description="resample",
                                                         tooltip="new z batch, same class"), f"{c}-resample")
        self.axis_button = _add_class(widgets.Button(description="new direction",
                                                     tooltip="a new random sweep direction"), f"{c}-new-axis")
        self.slider = _add_class(widgets.FloatSlider(value=self.state.offset, min=-SWEEP_RANGE, max=SWEEP_RANGE,
                                                     step=0.05, description="z sweep", readout_format="+.2f",
                                                     continuous_update=True), f"{c}-slider")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([self.buttons,
                                            widgets.HBox([self.resample_button, self.axis_button, self.slider]),
                                            self.image]), c)
        self.buttons.observe(self._on_control(self.state.select), names="value")
        self.slider.observe(self._on_control(self.state.set_offset), names="value")
        self.resample_button.on_click(lambda _: self._after(self.state.resample))
        self.axis_button.on_click(lambda _: self._after(self.state.new_axis))

    def _sync_controls(self) -> None:
        self.buttons.value = self.state.selected
        self.slider.value = self.state.offset

    def show(self) -> dict[str, Path] | None:
        """Display the widget (interactive), or write the class grid and a sweep strip and return their paths."""
        if not self.interactive:
            self.paths = {"grid": save_png(self.render_grid(), f"{self.name}_grid", self.lesson),
                          "sweep": save_png(self.render_sweep(), f"{self.name}_sweep", self.lesson)}
            return self.paths
        self._display()
        return None
