"""Lesson 05's translation explorer: one test image, its translation, its round trip and the hidden truth.

`TranslationState` holds which test image and which direction are on view; `TranslationExplorer` shows,
for both directions at once, x, G(x), F(G(x)), the true partner and the error |G(x) - truth| amplified,
with a slider over the test images and a button for a random one. Headless (interactive=False), `show()`
writes the same picture for a few images as a PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gancourse.utils import save_png
from gancourse.widgets.render import FRAME_PX, TILE_GAP, labelled, scale_for, stack, tiles, to_png
from gancourse.widgets.view import _add_class, _interactive_default, _SyncedView

COLUMNS = ("x", "G(x)", "F(G(x))", "truth", "|G(x) - truth| x 4")
ERROR_GAIN = 4  # the error image is amplified so that faint differences show


class TranslationState:
    """Which test image is on view (an index into the test split's pairs)."""

    def __init__(self, n: int, index: int = 0, seed: int = 0) -> None:
        if n < 1:
            raise ValueError("the test split holds no images")
        self.n = n
        self.index = 0
        self.select(index)
        self._rng = torch.Generator().manual_seed(seed)

    def select(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.n:
            raise ValueError(f"index must be an int in [0, {self.n - 1}]; got {index!r}")
        self.index = index

    def random(self) -> None:
        self.select(int(torch.randint(self.n, (1,), generator=self._rng)))


class TranslationExplorer(_SyncedView):
    """Pick a test image: both directions, x -> G(x) -> F(G(x)), beside the hidden truth.

    gan: a CycleGAN (or a Trainer that trains one: its sampling nets are used). test: a paired test split,
    e.g. load("glyphs", split="test"); an unpaired one works too (no truth column then).
    """

    CLASS = "gancourse-translation"

    def __init__(self, gan: Any, test: Any, *, interactive: bool | None = None, index: int = 0, seed: int = 0,
                 lesson: str | None = None, name: str = "translation") -> None:
        self.trainer = gan if hasattr(gan, "sampling_nets") else None
        self.gan = gan.gan if self.trainer is not None else gan
        if not hasattr(self.gan, "translate"):
            raise TypeError(f"TranslationExplorer shows a translation model (a CycleGAN); got {type(self.gan).__name__}")
        if getattr(test, "domains", None) != ("A", "B"):
            raise TypeError("TranslationExplorer needs a two-domain test split such as load('glyphs', split='test')")
        self.test, self.paired = test, bool(getattr(test, "paired", False))
        self.state = TranslationState(min(len(test.domain("A")), len(test.domain("B"))), index, seed)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        self.paths: dict[str, Path] = {}
        self.box = self.slider = self.random_button = self.image = None
        self._start()

    def _nets(self):
        return self.trainer.sampling_nets() if self.trainer is not None else None

    def row(self, direction: str, index: int | None = None) -> torch.Tensor:
        """The images of one row: x, G(x), F(G(x)), the truth and the amplified error (fewer when unpaired)."""
        index = self.state.index if index is None else index
        src, dst = ("A", "B") if direction == "A2B" else ("B", "A")
        x = self.test.domain(src).x[index:index + 1]
        out = self.gan.translate(x, direction, net=self._nets()).float().cpu()
        back = self.gan.translate(out, "B2A" if direction == "A2B" else "A2B", net=self._nets()).float().cpu()
        images = [x, out, back]
        if self.paired:
            truth = self.test.domain(dst).x[index:index + 1]
            error = ((out - truth).abs() * ERROR_GAIN - 1).clamp(-1, 1)  # 0 error shows black
            images += [truth, error]
        return torch.cat(images)

    def render(self, indices: list[int] | None = None) -> bytes:
        """PNG: a row per direction (and per index, when several are given), labelled columns."""
        indices = [self.state.index] if indices is None else indices
        rows = [self.row(d, i) for i in indices for d in ("A2B", "B2A")]
        images = torch.cat(rows)
        per_row = len(rows[0])
        scale = scale_for(images.shape[-1], FRAME_PX)
        width = images.shape[-1] * scale
        grid = tiles(images, per_row, scale)
        labels = [f"#{i} {d}" for i in indices for d in ("A->B", "B->A")]
        columns = list(COLUMNS[:per_row]) if len(indices) == 1 else [c.split(" x")[0] for c in COLUMNS[:per_row]]
        picture, _ = labelled(grid, title=f"test image {', '.join(map(str, indices))}: "
                                          "G maps A->B, F maps B->A (in B->A rows the roles swap)",
                              col_labels=columns, col_pitch=width + TILE_GAP, tile=width,
                              row_labels=labels, row_pitch=width + TILE_GAP)
        return to_png(stack([picture])[0])

    # -- widgets -----------------------------------------------------------------------------------
    def _build(self) -> None:
        import ipywidgets as widgets

        c = self.CLASS
        self.slider = _add_class(widgets.IntSlider(value=self.state.index, min=0, max=self.state.n - 1,
                                                   description="test image", continuous_update=False), f"{c}-slider")
        self.random_button = _add_class(widgets.Button(description="random image"), f"{c}-random")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([widgets.HBox([self.slider, self.random_button]), self.image]), c)
        self.slider.observe(self._on_control(self.state.select), names="value")
        self.random_button.on_click(lambda _: self._after(self.state.random))

    def _sync_controls(self) -> None:
        self.slider.value = self.state.index

    def show(self, indices: list[int] | None = None) -> dict[str, Path] | None:
        """Display the widget (interactive), or write <name>.png with a few test images and return its path."""
        if not self.interactive:
            picked = indices if indices is not None else sorted({0, self.state.n // 3, 2 * self.state.n // 3})
            self.paths = {"translation": save_png(self.render(picked), self.name, self.lesson)}
            return self.paths
        self._display()
        return None
