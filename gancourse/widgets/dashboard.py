"""A training dashboard callback: live ipywidgets in a notebook, or PNG files and a summary headless."""
from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from gancourse.utils import in_notebook, save_figure, smoke_mode
from gancourse.widgets import plots
from gancourse.widgets.view import LiveWidget, Picture

try:  # IPython ships with ipykernel; the import is kept soft so headless scripts never need it
    from IPython.display import display
except ImportError:  # pragma: no cover
    display = None

SAMPLE_SEED = 1234  # the same noise at every refresh, so a student watches one set of samples improve
CLASS = "gancourse-dashboard"
STATUS_EVERY_S = 0.5


class Dashboard:
    """Trainer callback showing losses, D(x) / D(G(z)) and current samples as training runs.

    interactive=True builds ipywidgets once (shown at each fit start) and refreshes them in place
    every `every` steps, skipping refreshes while drawing would take more than `max_overhead` of
    the wall time, since it runs inside the training loop. When training ends, the live widgets are
    replaced by a static picture of the final state (curves beside samples), so a saved notebook,
    reopened without a kernel or viewed on GitHub, still shows the run. interactive=False writes
    curves.png and samples.png under run_dir(lesson)/figures at the end and prints a short summary
    (in a notebook it shows the same final picture). None picks False in smoke mode, else True: a
    kernel cannot tell whether a browser is watching.
    """

    def __init__(
        self,
        interactive: bool | None = None,
        every: int = 50,
        lesson: str | None = None,
        n_samples: int = 64,
        title: str = "GAN training",
        name: str | None = None,
        max_overhead: float = 0.1,
    ) -> None:
        if int(every) < 1:
            raise ValueError(f"every={every!r}: the dashboard refreshes every `every` steps; use 1 or more.")
        if int(n_samples) < 1:
            raise ValueError(f"n_samples={n_samples!r}: show at least one sample (64 makes an 8x8 grid).")
        if not 0 < max_overhead <= 1:
            raise ValueError(
                f"max_overhead={max_overhead!r} is the share of time spent drawing; use 0 < it <= 1."
            )
        self.interactive = (not smoke_mode()) if interactive is None else bool(interactive)
        self.shows_progress = self.interactive  # the Trainer then skips its own tqdm bar
        self.every = int(every)
        self.lesson = lesson
        self.n_samples = int(n_samples)
        self.title = title
        self.name = name
        self.max_overhead = float(max_overhead)
        self.paths: dict[str, Path] = {}  # headless: where the last figures were written
        self.box = self.status = self.curves = self.samples = None  # interactive widgets, built once
        self._handle = None  # the display the widgets live in; replaced by the final picture at fit end
        self._t0 = time.perf_counter()
        self._t_end: float | None = None  # set at fit end, so drawing the last figures is not counted
        self._start_step = 0
        self._last_render: int | None = None
        self._last_status = 0.0
        self._render_cost = 0.0  # seconds the last refresh took
        self._render_end = 0.0
        self._metrics: dict[str, float] = {}
        self._real: torch.Tensor | None = None

    # -- callback protocol ---------------------------------------------------------------------

    def on_fit_start(self, trainer: Any) -> None:
        self._t0 = time.perf_counter()
        self._t_end = None
        self._start_step = int(getattr(trainer, "step", 0) or 0)
        self._last_render = None
        self._real = plots.real_points(getattr(trainer, "data", None))  # once: the background never changes
        if not self.interactive:
            return
        if self.box is None:
            self._build()
        if display is None:  # pragma: no cover
            raise RuntimeError(
                "Dashboard(interactive=True) needs IPython; pass interactive=False outside Jupyter."
            )
        self._handle = display(LiveWidget(self.box), display_id=True)
        self._refresh(trainer, self._start_step)

    def on_step_end(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._metrics = {}
        for key, value in metrics.items():
            try:
                self._metrics[key] = float(value)
            except (TypeError, ValueError, RuntimeError):  # a non-scalar extra metric: not ours to show
                continue
        if not self.interactive or self.box is None:
            return
        if self._due(step):
            self._refresh(trainer, step)
        elif time.perf_counter() - self._last_status >= STATUS_EVERY_S:
            self._set_status(trainer, step)

    def on_fit_end(self, trainer: Any) -> None:
        self._t_end = time.perf_counter()
        step = int(getattr(trainer, "step", self._last_render or 0) or 0)
        self.paths = self.save(trainer)  # both modes: the final figures are kept beside the run
        if self.interactive:
            if self.box is not None:
                self._refresh(trainer, step, done=True)
                final = Picture(self.final_png(trainer), self.summary(trainer))
                if self._handle is not None:
                    self._handle.update(final)  # the output keeps a picture, not a dead widget
            return
        print(self.summary(trainer))
        if display is not None and in_notebook():
            display(Picture(self.final_png(trainer), self.summary(trainer)))

    # -- rendering ------------------------------------------------------------------------------

    def _build(self) -> None:
        """Create the widget tree once; later refreshes only assign `.value`."""
        import ipywidgets as widgets

        self.status = widgets.HTML(value=html.escape(self.title))
        self.curves = widgets.Image(format="png")
        self.samples = widgets.Image(format="png")
        self.status.add_class(f"{CLASS}-status")
        self.curves.add_class(f"{CLASS}-curves")
        self.samples.add_class(f"{CLASS}-samples")
        self.box = widgets.VBox([self.status, widgets.HBox([self.curves, self.samples])])
        self.box.add_class(CLASS)
        if self.name:  # the browser test finds one run's dashboard by its name
            self.box.add_class(f"{CLASS}--{self.name}")

    def _due(self, step: int) -> bool:
        """Every `every` steps, and only once training has run long enough to keep drawing's share small."""
        if self._last_render is None:
            return True
        if step - self._last_render < self.every:
            return False
        wait = self._render_cost * (1 / self.max_overhead - 1)
        return time.perf_counter() - self._render_end >= wait

    def _refresh(self, trainer: Any, step: int, done: bool = False) -> None:
        start = time.perf_counter()
        self.curves.value = plots.figure_to_png(self.curves_figure(trainer), close=False)
        self.samples.value = self._samples_png(trainer)
        self._last_render = step
        self._render_end = time.perf_counter()
        self._render_cost = self._render_end - start
        self._set_status(trainer, step, done)

    def _samples_png(self, trainer: Any) -> bytes:
        """Image grids go straight to PNG (sharp, cheap); point clouds need a scatter plot."""
        data = getattr(trainer, "data", None)
        kind, x = plots.as_samples(self._current_samples(trainer), data)
        if kind == "images":
            return plots.grid_png(x)
        return plots.figure_to_png(self.samples_figure(trainer, samples=x), close=False)

    def _set_status(self, trainer: Any, step: int, done: bool = False) -> None:
        self._last_status = time.perf_counter()
        state = "finished" if done else "training"
        self.status.value = f"<b>{html.escape(self.title)}</b> &middot; {state} &middot; " + html.escape(
            self.status_line(trainer, step)
        )

    def status_line(self, trainer: Any, step: int | None = None) -> str:
        """'step 1200 / 5000 · 34.2 s · 35.1 steps/s · loss_D 1.23 · ...' for the header and summary."""
        step = int(getattr(trainer, "step", 0) or 0) if step is None else int(step)
        elapsed = self._elapsed()
        rate = (step - self._start_step) / elapsed if elapsed > 0 else 0.0
        max_steps = getattr(trainer, "max_steps", None)
        parts = [f"step {step}" + (f" / {max_steps}" if max_steps else "")]
        parts += [f"{elapsed:.1f} s", f"{rate:.1f} steps/s"]
        parts += [f"{plots.SHORT_LABELS[k]} {v:.3f}" for k, v in self._latest(trainer).items()]
        return " · ".join(parts)

    def _elapsed(self) -> float:
        return (self._t_end if self._t_end is not None else time.perf_counter()) - self._t0

    def _latest(self, trainer: Any) -> dict[str, float]:
        """The last logged standard metrics: from the history, else from the last on_step_end."""
        keys = (*plots.LOSS_KEYS, *plots.D_KEYS)
        found = plots.last_values(plots.history_records(getattr(trainer, "history", None)), keys)
        merged = {**self._metrics, **found}
        return {k: merged[k] for k in keys if k in merged}

    def _current_samples(self, trainer: Any) -> torch.Tensor:
        """n_samples from fixed noise through the Trainer's sampling contract (the training RNG is untouched)."""
        return trainer.sample(self.n_samples, seed=SAMPLE_SEED)

    def curves_figure(self, trainer: Any, size: tuple[float, float] = (5.0, 4.4), dpi: float = 80) -> Figure:
        """The two-panel curves figure (a bare Figure: no pyplot state, nothing to close)."""
        fig = Figure(figsize=size, dpi=dpi, layout="constrained")
        self._draw_curves(fig, trainer)
        return fig

    @staticmethod
    def _draw_curves(fig: Any, trainer: Any) -> None:
        loss_ax, d_ax = fig.subplots(2, 1, sharex=True)
        plots.draw_curves(loss_ax, d_ax, getattr(trainer, "history", None))

    def samples_figure(self, trainer: Any, size: float = 4.4, dpi: float = 80, samples: Any = None) -> Figure:
        """Current samples as a grid or a scatter over the real data (a bare Figure)."""
        fig = Figure(figsize=(size, size), dpi=dpi, layout="constrained")
        self._draw_samples(fig, trainer, samples)
        return fig

    def _draw_samples(self, fig: Any, trainer: Any, samples: Any = None) -> None:
        data = getattr(trainer, "data", None)
        kind, x = plots.as_samples(self._current_samples(trainer) if samples is None else samples, data)
        ax = fig.subplots()
        if kind == "points":
            plots.draw_points(ax, x, self._real, plots.mode_centers(data))
        else:
            plots.draw_images(ax, x)
        ax.set_title(f"samples at step {int(getattr(trainer, 'step', 0) or 0)}", fontsize="medium")

    def final_png(self, trainer: Any) -> bytes:
        """Curves beside samples in one PNG, headed by the status line: what the widget showed last."""
        fig = Figure(figsize=(10.4, 4.6), dpi=90, layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[1.15, 1])
        self._draw_curves(left, trainer)
        self._draw_samples(right, trainer)
        fig.suptitle(f"{self.title} · finished · {self.status_line(trainer)}", fontsize="medium")
        return plots.figure_to_png(fig, close=False)

    # -- headless output ------------------------------------------------------------------------

    def save(self, trainer: Any) -> dict[str, Path]:
        """Write curves.png and samples.png (prefixed with `name`) to run_dir(lesson)/figures."""
        prefix = f"{self.name}_" if self.name else ""
        curves = self.curves_figure(trainer, size=(6.4, 5.2), dpi=100)
        samples = self.samples_figure(trainer, size=5.0, dpi=100)
        return {
            "curves": save_figure(curves, f"{prefix}curves", self.lesson),
            "samples": save_figure(samples, f"{prefix}samples", self.lesson),
        }

    def summary(self, trainer: Any) -> str:
        """A three-line text report of the run and where its figures are."""
        step = int(getattr(trainer, "step", 0) or 0)
        elapsed = self._elapsed()
        done = step - self._start_step
        rate = done / max(elapsed, 1e-9)
        lines = [f"{self.title}: {done} steps in {elapsed:.1f} s ({rate:.1f} steps/s), now at step {step}"]
        metrics = self._latest(trainer)
        if metrics:
            values = "  ".join(f"{plots.SHORT_LABELS[k]} {v:.3f}" for k, v in metrics.items())
            lines.append(f"  last logged: {values}")
        if self.paths:
            lines.append("  figures: " + ", ".join(str(p) for p in self.paths.values()))
        return "\n".join(lines)
