"""Lesson 07's style explorer: a style-mixing grid with a crossover slider, a truncation slider and a button
that draws new noise, over a StyleGAN generator (the shipped one, or a Trainer's average).

Rows are codes A, columns codes B; the first row shows the B pictures alone, the first column the A pictures
alone, and every other tile takes A's styles before the crossover layer and B's from it on. psi truncates every
code towards the generator's average w. The explorer holds its own codes and noise and never changes G.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gancourse.models.stylegan import check_crossover, check_psi
from gancourse.train.gan import as_rng, sampling_mode
from gancourse.utils import save_png
from gancourse.widgets.render import FRAME_PX, TILE_GAP, labelled, scale_for, stack, tiles, to_png
from gancourse.widgets.view import _add_class, _check_count, _interactive_default, _SyncedView


class StyleState:
    """Crossover layer, psi and the noise draw the explorer shows."""

    def __init__(self, num_ws: int, crossover: int | None = None, psi: float = 1.0, noise_seed: int = 0) -> None:
        self.num_ws = _check_count("num_ws", num_ws, 2)
        self.crossover = num_ws // 2
        self.psi, self.noise_seed = 1.0, int(noise_seed)
        if crossover is not None:
            self.set_crossover(crossover)
        self.set_psi(psi)

    def set_crossover(self, crossover: int) -> None:
        self.crossover = check_crossover(crossover, self.num_ws)

    def set_psi(self, psi: float) -> None:
        check_psi(psi)  # outside [0, 1]: allowed, with a warning that names it
        self.psi = float(psi)

    def new_noise(self) -> None:
        self.noise_seed += 1


def _split(crossover: int, num_ws: int) -> str:
    """Which layers each code gives, in words."""
    if crossover == 0:
        return "every layer from B (columns)"
    if crossover == num_ws:
        return "every layer from A (rows)"
    a = "layer 0" if crossover == 1 else f"layers 0-{crossover - 1}"
    b = f"layer {crossover}" if crossover == num_ws - 1 else f"layers {crossover}-{num_ws - 1}"
    return f"{a} from A (rows), {b} from B (columns)"


class StyleExplorer(_SyncedView):
    """Mix the styles of rows A and columns B at a crossover, truncate them by psi, redraw the noise.

    G: a StyleGenerator, a StyleGAN (its generator) or a Trainer (its averaged generator).
    interactive=False: `show()` writes <name>.png with the grid at a few crossovers.
    """

    CLASS = "gancourse-styles"

    def __init__(self, G: Any, *, interactive: bool | None = None, rows: int = 4, cols: int = 5, seed: int = 0,
                 crossover: int | None = None, psi: float = 1.0, lesson: str | None = None, name: str = "styles") -> None:
        if hasattr(G, "sampling_nets"):
            G = G.sampling_nets()["G"]
        elif hasattr(G, "nets"):
            G = G.nets["G"]
        if not hasattr(G, "num_ws"):
            raise TypeError(f"StyleExplorer shows a style-based generator (StyleGenerator); got {type(G).__name__}")
        self.G = G
        rng = as_rng(seed)
        self.z_a = torch.randn(_check_count("rows", rows), G.z_dim, generator=rng)
        self.z_b = torch.randn(_check_count("cols", cols), G.z_dim, generator=rng)
        self.state = StyleState(G.num_ws, crossover, psi)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        self.paths: dict[str, Path] = {}
        self.box = self.crossover_slider = self.psi_slider = self.button = self.image = None
        self._start()

    def grid(self, crossover: int | None = None, psi: float | None = None) -> torch.Tensor:
        """(rows + 1) * (cols + 1) images: a blank corner, the B row, then each A followed by its mixes."""
        k = self.state.crossover if crossover is None else check_crossover(crossover, self.state.num_ws)
        psi = self.state.psi if psi is None else psi
        G, rows, cols = self.G, len(self.z_a), len(self.z_b)
        device = G.const.device
        a = self.z_a.repeat_interleave(cols, 0).to(device)
        b = self.z_b.repeat(rows, 1).to(device)
        noise_rng = as_rng(self.state.noise_seed)
        with sampling_mode(G):
            noise = [m[:1].expand(len(a), -1, -1, -1) for m in G.make_noise(1, noise_rng, device)]
            single = lambda z: G(z, psi, noise=[m[:len(z)] for m in noise]).clamp(-1, 1).float().cpu()
            mixed = G(a, psi, b, k, [m for m in noise]).clamp(-1, 1).float().cpu()
            top, left = single(self.z_b.to(device)), single(self.z_a.to(device))
        blank = torch.ones(1, *top.shape[1:])
        out = [blank, top]
        for i in range(rows):
            out += [left[i:i + 1], mixed[i * cols:(i + 1) * cols]]
        return torch.cat(out)

    def render(self, crossovers: list[int] | None = None) -> bytes:
        """PNG: the grid at the current crossover, or one grid per crossover in `crossovers`, stacked."""
        crossovers = [self.state.crossover] if crossovers is None else crossovers
        parts = []
        for k in crossovers:
            images = self.grid(k)
            scale = scale_for(images.shape[-1], FRAME_PX)
            tile = images.shape[-1] * scale
            picture, _ = labelled(tiles(images, len(self.z_b) + 1, scale),
                                  title=f"{_split(k, self.state.num_ws)}; psi {self.state.psi:g}",
                                  col_labels=["", *[f"B{j + 1}" for j in range(len(self.z_b))]],
                                  col_pitch=tile + TILE_GAP,
                                  row_labels=["", *[f"A{i + 1}" for i in range(len(self.z_a))]],
                                  row_pitch=tile + TILE_GAP, tile=tile)
            parts.append(picture)
        return to_png(stack(parts)[0])

    def _build(self) -> None:
        import ipywidgets as widgets

        c = self.CLASS
        self.crossover_slider = _add_class(widgets.IntSlider(value=self.state.crossover, min=0, max=self.state.num_ws,
                                                             description="crossover", continuous_update=False),
                                           f"{c}-crossover")
        self.psi_slider = _add_class(widgets.FloatSlider(value=min(max(self.state.psi, 0.0), 1.0), min=0.0, max=1.0,
                                                         step=0.05, description="psi", continuous_update=False),
                                     f"{c}-psi")
        self.button = _add_class(widgets.Button(description="new noise"), f"{c}-noise")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([widgets.HBox([self.crossover_slider, self.psi_slider, self.button]),
                                            self.image]), c)
        self.crossover_slider.observe(self._on_control(self.state.set_crossover), names="value")
        self.psi_slider.observe(self._on_control(self.state.set_psi), names="value")
        self.button.on_click(lambda _: self._after(self.state.new_noise))

    def _sync_controls(self) -> None:
        self.crossover_slider.value = self.state.crossover
        self.psi_slider.value = min(max(self.state.psi, 0.0), 1.0)

    def show(self, crossovers: list[int] | None = None) -> dict[str, Path] | None:
        """Display the controls (interactive), or write the grid at `crossovers` (default: a coarse, a middle and
        a fine crossover) as one PNG."""
        if not self.interactive:
            n = self.state.num_ws
            crossovers = crossovers or sorted({max(1, n // 4), n // 2, n - 2})
            self.paths = {"styles": save_png(self.render(crossovers), self.name, self.lesson)}
            return self.paths
        self._display()
        return None
