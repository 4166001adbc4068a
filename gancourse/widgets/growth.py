"""Lesson 06's growth explorer: the same z at every stage and fade-in alpha of a ProGAN generator.

The explorer works on a private copy of the generator (its `stage` and `alpha` buffers are what the sliders
move), so looking never changes the network being trained. `GrowthState` holds the position on one
axis from 0 (4x4 alone) to the last stage: stage s with alpha a sits at s - 1 + a during s's fade-in.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from gancourse.train.gan import as_rng, sampling_mode
from gancourse.utils import save_png
from gancourse.widgets.render import FRAME_PX, TILE_GAP, labelled, scale_for, stack, tiles, to_png
from gancourse.widgets.view import _add_class, _check_count, _interactive_default, _SyncedView


class GrowthState:
    """A position on the growth axis: 0 is 4x4, k is stage k fully faded in, k - 0.5 halfway into stage k."""

    def __init__(self, num_stages: int, position: float | None = None) -> None:
        self.num_stages = _check_count("num_stages", num_stages, 1)
        self.position = float(num_stages - 1)
        if position is not None:
            self.set_position(position)

    def set_position(self, position: float) -> None:
        position = float(position)
        if not 0.0 <= position <= self.num_stages - 1:
            raise ValueError(f"position must be in [0, {self.num_stages - 1}]; got {position}")
        self.position = position

    @property
    def stage_alpha(self) -> tuple[int, float]:
        """(stage, alpha) of the position: the stage being faded in and how far."""
        if self.position <= 0:
            return 0, 1.0
        stage = int(-(-self.position // 1))  # ceil: 1.3 is stage 2 at alpha 0.3
        return stage, self.position - (stage - 1)


class GrowthExplorer(_SyncedView):
    """Scrub stage and alpha of a ProGAN generator and watch the same n codes at every point.

    gan: a ProGAN (its generator, or `net`) or a Trainer (its EMA generator). interactive=False: `show()`
    writes <name>.png, the codes at every stage and at the fade-ins' halfway points.
    """

    CLASS = "gancourse-growth"

    def __init__(self, gan: Any, *, interactive: bool | None = None, n: int = 8, seed: int = 0,
                 lesson: str | None = None, name: str = "growth", net=None) -> None:
        trainer = gan if hasattr(gan, "sampling_nets") else None
        source = net if net is not None else (trainer.sampling_nets()["G"] if trainer else gan.nets["G"])
        if not hasattr(source, "grow"):
            raise TypeError(f"GrowthExplorer shows a growing generator (ProGenerator); got {type(source).__name__}")
        self.G = copy.deepcopy(source)  # the sliders move this copy's stage and alpha, never the trained net's
        self.z = torch.randn(_check_count("n", n), self.G.z_dim, generator=as_rng(seed))
        self.state = GrowthState(self.G.num_stages)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        self.paths: dict[str, Path] = {}
        self.box = self.slider = self.image = None
        self._start()

    def images_at(self, position: float) -> torch.Tensor:
        """The n codes drawn at a position of the growth axis, (n, C, final, final) on the CPU."""
        state = GrowthState(self.G.num_stages, position)
        self.G.grow(*state.stage_alpha)
        with sampling_mode(self.G):
            return self.G(self.z.to(next(self.G.parameters()).device)).float().cpu().clamp(-1, 1)

    def _label(self, position: float) -> str:
        stage, alpha = GrowthState(self.G.num_stages, position).stage_alpha
        size = 4 * 2 ** stage
        return f"{size}x{size}" + (f", alpha {alpha:.2f}" if alpha < 1 else "")

    def render(self, positions: list[float] | None = None) -> bytes:
        """PNG: one row per position (default: the current one), the same codes in every row."""
        positions = [self.state.position] if positions is None else positions
        images = torch.cat([self.images_at(p) for p in positions])
        scale = scale_for(images.shape[-1], FRAME_PX)
        pitch = images.shape[-1] * scale + TILE_GAP
        grid = tiles(images, len(self.z), scale)
        picture, _ = labelled(grid, title="the same z at each stage of growth",
                              row_labels=[self._label(p) for p in positions], row_pitch=pitch,
                              tile=images.shape[-1] * scale)
        return to_png(stack([picture])[0])

    def _build(self) -> None:
        import ipywidgets as widgets

        c = self.CLASS
        self.slider = _add_class(widgets.FloatSlider(value=self.state.position, min=0, max=self.G.num_stages - 1,
                                                     step=0.05, description="growth", readout_format=".2f",
                                                     continuous_update=True), f"{c}-slider")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([self.slider, self.image]), c)
        self.slider.observe(self._on_control(self.state.set_position), names="value")

    def _sync_controls(self) -> None:
        self.slider.value = self.state.position

    def show(self) -> dict[str, Path] | None:
        """Display the slider (interactive), or write every stage and every fade-in's midpoint as one PNG."""
        if not self.interactive:
            positions = [p / 2 for p in range(2 * (self.G.num_stages - 1) + 1)]
            self.paths = {"growth": save_png(self.render(positions), self.name, self.lesson)}
            return self.paths
        self._display()
        return None
