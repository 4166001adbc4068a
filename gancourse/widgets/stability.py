"""The stability lab (lesson 04): provoke mode collapse on a 2-D mixture, then cure it.

Pick an objective (non-saturating, LSGAN, hinge, WGAN with clipping, WGAN-GP, spectral norm), a
learning rate, n_critic, a step budget and a seed, and train a fresh small MLP GAN on ring8. The
picture shows modes covered and the share of high-quality samples over training for this run and,
faintly, the runs before it, so a collapse and its cure sit on the same axes; beside them, the final
samples over the data. Training goes through the course's own `AdversarialGAN` and `Trainer`, so
what the lab shows is what the lesson's code does.

`StabilityLab.run(...)` is the programmatic path (notebooks, smoke runs); the Train button calls the
same code with the widgets' values. interactive=False builds no widgets and writes the figure to
run_dir(lesson)/figures/<name>.png after every run; None picks False in smoke mode, else True.
"""
from __future__ import annotations

import html
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from gancourse import losses
from gancourse.metrics.toy import CoverageTracker, ModeCoverage, mode_coverage
from gancourse.models.mlp import MLPDiscriminator, MLPGenerator
from gancourse.train import AdversarialGAN, NonFiniteLossError, Trainer
from gancourse.utils import save_png as _write, smoke_mode
from gancourse.widgets import plots
from gancourse.widgets.view import _add_class, _interactive_default, show_widget


LR_MIN, LR_MAX = 1e-5, 1e-2  # the learning-rate slider's range (and what run() accepts)
N_CRITIC_MAX = 10
STEPS_MAX = 100_000
DEFAULT_STEPS, SMOKE_STEPS = 1500, 40
POINTS_PER_RUN = 20  # coverage is measured about this many times per run (plus at step 0)
SHOWN_RUNS = 6  # this run and the five before it are drawn; older runs stay in `results`
LIVE_EVERY_S = 1.0  # interactive: redraw the picture during training at most this often...
LIVE_OVERHEAD = 0.1  # ...and only while drawing costs at most this share of the wall time
CLASS = "gancourse-stability"
FIGURE_SIZE = (11.0, 5.0)  # inches: curves on the left, samples on the right, the legend under the curves


def format_lr(lr: float) -> str:
    """1e-4 -> '1e-4', 2.5e-4 -> '2.5e-4', 3.1623e-4 -> '3.16e-4' (short, as papers write them)."""
    mantissa, exponent = f"{float(lr):.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 9.5 else f"{s:.1f} s"


@dataclass
class LabRun:
    """One training run of the lab: its settings, the final mode coverage and the coverage series.

    series_steps[i] is the training step at which series[i] was measured (step 0 is the untrained
    G); `coverage` is the last of them. `diverged` holds what went non-finite when training blew up
    (it then stopped early, at `steps`); `samples` are the final samples that were scored.
    """

    objective: str
    lr: float
    n_critic: int
    steps: int
    seconds: float
    coverage: ModeCoverage
    series_steps: list[int] = field(repr=False)
    series: list[ModeCoverage] = field(repr=False)
    seed: int = 0
    index: int = 0
    requested_steps: int = 0
    diverged: str | None = None
    samples: torch.Tensor | None = field(default=None, repr=False)

    @property
    def modes(self) -> list[int]:
        return [s.modes_covered for s in self.series]

    @property
    def high_quality(self) -> list[float]:
        return [s.high_quality for s in self.series]

    @property
    def title(self) -> str:
        """'wgan-gp, lr 1e-4, n_critic 5'."""
        return f"{self.objective}, lr {format_lr(self.lr)}, n_critic {self.n_critic}"

    def label(self) -> str:
        """The legend entry: '#2 wgan-gp, lr 1e-4, n_critic 5: 8/8, 83%'."""
        c = self.coverage
        end = "diverged" if self.diverged else f"{c.modes_covered}/{c.num_modes}, {100 * c.high_quality:.0f}%"
        return f"#{self.index} {self.title}: {end}"

    def summary(self) -> str:
        """'wgan-gp, lr 1e-4, n_critic 5: 8/8 modes, 83% high quality after 1500 steps in 41 s'."""
        c = self.coverage
        result = (f"{c.modes_covered}/{c.num_modes} modes, {100 * c.high_quality:.0f}% high quality "
                  f"after {self.steps} steps in {_seconds(self.seconds)}")
        if self.diverged:
            return f"{self.title}: diverged ({self.diverged}); {result}. Lower the learning rate."
        return f"{self.title}: {result}"


class _LiveView:
    """Trainer callback (interactive only): status text on every logged step, the picture now and then."""

    def __init__(self, lab: StabilityLab, run: LabRun, tracker: CoverageTracker, start: float) -> None:
        self.lab, self.run, self.tracker, self.start = lab, run, tracker, start
        self.last_draw, self.draw_cost, self.seen = start, 0.0, 0

    def on_step_end(self, trainer: Any, step: int, metrics: dict) -> None:
        now = time.perf_counter()
        run, lab = self.run, self.lab
        if len(self.tracker.scores) > self.seen:  # a new measurement: copy it into the partial run
            self.seen = len(self.tracker.scores)
            run.series_steps = [0, *self.tracker.steps]
            run.series = [run.series[0], *self.tracker.scores]
            run.coverage = run.series[-1]
        run.steps, run.seconds = step, now - self.start
        c = run.coverage
        lab._set_summary(f"training {run.title}: step {step} / {run.requested_steps} · "
                         f"{c.modes_covered}/{c.num_modes} modes · {_seconds(run.seconds)}", busy=True)
        if step >= run.requested_steps:  # run() draws the final picture next
            return
        if now - self.last_draw >= max(LIVE_EVERY_S, self.draw_cost * (1 / LIVE_OVERHEAD - 1)):
            run.samples = trainer.sample(lab.eval_samples)
            lab.image.value = lab.render(run)
            self.last_draw = time.perf_counter()
            self.draw_cost = self.last_draw - now


class StabilityLab:
    """Train small GANs on a 2-D mixture (ring8) with any objective and compare the runs.

    data: a mixture with known modes (.centers, .sigma); default load("ring8").
    objective, lr, n_critic: the first settings; lr and n_critic left None take the objective's
        published recipe (`losses.objective(name)`).
    steps: the default budget in generator steps (each runs n_critic D updates); None: 1500, or 40
        in smoke mode. seed: the default seed; a run with the same settings and seed repeats.
    batch_size, hidden, depth, z_dim: the fresh MLPGenerator / MLPDiscriminator built for each run.
    eval_samples: how many samples are scored for mode coverage at each measurement.
    interactive: True builds the widgets; False writes PNGs; None picks False in smoke mode.
    lesson, name: headless figures go to run_dir(lesson)/figures/<name>.png.
    device: passed to the Trainer (None: CUDA if present, else MPS, else the CPU).

    After `lab.run(...)` or a click on Train, `lab.results` holds every run as a `LabRun`.
    """

    def __init__(self, data: Any = None, *, objective: str = "nonsaturating", lr: float | None = None,
                 n_critic: int | None = None, steps: int | None = None, seed: int = 0, batch_size: int = 256,
                 hidden: int = 128, depth: int = 3, z_dim: int = 2, eval_samples: int = 2000,
                 interactive: bool | None = None, lesson: str | None = "04_wgan", name: str = "stability_lab",
                 device: Any = None) -> None:
        if data is None:
            from gancourse.data import load

            data = load("ring8")
        centers = getattr(data, "centers", None)
        if centers is None or getattr(data, "sigma", None) is None or not hasattr(data, "sample"):
            raise ValueError("StabilityLab needs a mixture data set with known modes (.centers and .sigma), "
                             "e.g. gancourse.data.load('ring8') or load('grid25')")
        if torch.as_tensor(centers).dim() != 2 or torch.as_tensor(centers).shape[1] != 2:
            raise ValueError(f"StabilityLab trains on 2-D points; the data's centres have shape "
                             f"{tuple(torch.as_tensor(centers).shape)}. Use load('ring8') or load('grid25').")
        for key, value, low in (("batch_size", batch_size, 1), ("hidden", hidden, 1), ("depth", depth, 1),
                                ("z_dim", z_dim, 1), ("eval_samples", eval_samples, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{key} must be an int >= {low}; got {value!r}")
        self.data = data
        self.batch_size, self.hidden, self.depth, self.z_dim = int(batch_size), int(hidden), int(depth), int(z_dim)
        self.eval_samples = int(eval_samples)
        self.device = device
        self.lesson, self.name = lesson, str(name)
        self.interactive = _interactive_default(interactive)
        self.results: list[LabRun] = []
        self.path: Path | None = None  # headless: where the figure was last written
        self.summary = ""  # the last summary line, in both modes
        self._real = plots.real_points(data)  # the scatter's background, drawn once
        self._centers = plots.mode_centers(data)
        self._running = False
        self._syncing = False

        obj = self._check_objective(objective)
        recipe = losses.objective(obj)
        self.settings: dict[str, Any] = {"objective": obj}
        self.settings.update(self._check(lr=recipe.lr if lr is None else lr,
                                         n_critic=recipe.n_critic if n_critic is None else n_critic,
                                         steps=(SMOKE_STEPS if smoke_mode() else DEFAULT_STEPS) if steps is None
                                         else steps, seed=seed))
        self.box = self.objective_dropdown = self.lr_slider = self.n_critic_slider = None
        self.steps_box = self.seed_box = self.button = self.recipe_button = self.recipe_note = None
        self.summary_html = self.image = None
        if self.interactive:
            self._build()

    # -- checking ----------------------------------------------------------------------------------

    @staticmethod
    def _check_objective(name: Any) -> str:
        if not isinstance(name, str) or name.lower().replace("_", "-") not in losses.OBJECTIVES:
            raise ValueError(f"unknown objective {name!r}; choose one of {list(losses.OBJECTIVES)}")
        return name.lower().replace("_", "-")

    @staticmethod
    def _check(**values: Any) -> dict[str, Any]:
        """Validate lr / n_critic / steps / seed; returns them as float / ints."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key == "lr":
                if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                        or not LR_MIN <= value <= LR_MAX):
                    raise ValueError(f"lr must be a number from {LR_MIN:g} to {LR_MAX:g} (the slider's range), "
                                     f"e.g. 2e-4 or 1e-4; got {value!r}")
                out[key] = float(value)
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{key} must be a whole number; got {value!r}")
            value = int(value)
            if key == "n_critic" and not 1 <= value <= N_CRITIC_MAX:
                raise ValueError(f"n_critic is the number of D updates per G update: use 1 to {N_CRITIC_MAX} "
                                 f"(5 for WGAN, 1 for the others); got {value}")
            if key == "steps" and not 1 <= value <= STEPS_MAX:
                raise ValueError(f"steps must be from 1 to {STEPS_MAX} generator steps (the lab's "
                                 f"default is {DEFAULT_STEPS}); got {value}")
            out[key] = value
        return out

    def _resolve(self, objective: Any, lr: Any, n_critic: Any, steps: Any, seed: Any) -> dict[str, Any]:
        """The settings of the next run: naming an objective brings its recipe for lr / n_critic left None."""
        if objective is None:
            obj = self.settings["objective"]
            lr = self.settings["lr"] if lr is None else lr
            n_critic = self.settings["n_critic"] if n_critic is None else n_critic
        else:
            obj = self._check_objective(objective)
            recipe = losses.objective(obj)
            lr = recipe.lr if lr is None else lr
            n_critic = recipe.n_critic if n_critic is None else n_critic
        steps = self.settings["steps"] if steps is None else steps
        seed = self.settings["seed"] if seed is None else seed
        return {"objective": obj, **self._check(lr=lr, n_critic=n_critic, steps=steps, seed=seed)}

    # -- training ----------------------------------------------------------------------------------

    def run(self, objective: str | None = None, lr: float | None = None, n_critic: int | None = None,
            steps: int | None = None, seed: int | None = None) -> LabRun:
        """Train one fresh GAN and add it to `results`; returns its LabRun.

        Arguments left None keep the current settings (the widgets' values), except that naming an
        objective takes its published lr / n_critic unless you pass them. The settings used become
        the current ones, so the widgets show them. Headless, the figure is written to
        run_dir(lesson)/figures/<name>.png (see `.path`) and the summary printed.
        """
        if self._running:
            raise RuntimeError("a run is already in progress; wait for it to finish")
        settings = self._resolve(objective, lr, n_critic, steps, seed)
        self.settings.update(settings)
        self._running = True
        if self.button is not None:
            self.button.disabled = True
        try:
            self._sync_controls()
            self._set_summary(f"training {settings['objective']}, lr {format_lr(settings['lr'])}, "
                              f"n_critic {settings['n_critic']} for {settings['steps']} steps…", busy=True)
            result = self._train(**settings)
            self.results.append(result)
            self._set_summary(result.summary())
            if self.image is not None:
                self.image.value = self.render()
            if not self.interactive:
                self.path = _write(self.render(), self.name, self.lesson)
                print(f"{result.summary()}\n  figure: {self.path}")
        except Exception as error:
            self._set_summary(f"{type(error).__name__}: {error}", error=True)
            raise
        finally:
            self._running = False
            if self.button is not None:
                self.button.disabled = False
        return result

    def _build_gan(self, objective: str, lr: float, n_critic: int) -> AdversarialGAN:
        G = MLPGenerator(z_dim=self.z_dim, out_shape=(2,), hidden=self.hidden, depth=self.depth)
        D = MLPDiscriminator((2,), hidden=self.hidden, depth=self.depth)
        return AdversarialGAN(G, D, objective=objective, lr=lr, n_critic=n_critic)

    def _score(self, samples: torch.Tensor) -> ModeCoverage:
        return mode_coverage(samples, self.data.centers, self.data.sigma)

    def _train(self, objective: str, lr: float, n_critic: int, steps: int, seed: int) -> LabRun:
        with torch.random.fork_rng(devices=[]):  # the same seed builds the same networks; the caller's RNG stays
            torch.manual_seed(seed)
            gan = self._build_gan(objective, lr, n_critic)
        every = max(1, math.ceil(steps / POINTS_PER_RUN))
        tracker = CoverageTracker(self.data, every=every, n=self.eval_samples)
        trainer = Trainer(gan, self.data, steps=steps, batch_size=self.batch_size, device=self.device, seed=seed,
                          callbacks=[tracker], log_every=every, progress=False, verbose=False)
        start = time.perf_counter()
        run = LabRun(objective, lr, n_critic, 0, 0.0, self._score(trainer.sample(self.eval_samples)), [0], [],
                     seed=seed, index=len(self.results) + 1, requested_steps=steps)
        run.series = [run.coverage]
        if self.interactive and self.image is not None:
            trainer.callbacks.append(_LiveView(self, run, tracker, start))
        diverged = None
        try:
            trainer.fit()
        except NonFiniteLossError as error:  # a blow-up is a result here, not a crash
            diverged = str(error).split(";")[0]
        seconds = time.perf_counter() - start
        series_steps, series = [0, *tracker.steps], [run.series[0], *tracker.scores]
        samples = trainer.sample(self.eval_samples)
        if series_steps[-1] != trainer.step:  # the budget ended between two measurements
            series_steps.append(trainer.step)
            series.append(self._score(samples))
        run.steps, run.seconds, run.diverged, run.samples = trainer.step, seconds, diverged, samples
        run.series_steps, run.series, run.coverage = series_steps, series, series[-1]
        return run

    # -- the picture -------------------------------------------------------------------------------

    def figure(self, current: LabRun | None = None, dpi: float = 100) -> Figure:
        """The lab's picture as a bare Figure: coverage curves (left), final samples (right).

        `current` is drawn strong and the runs in `results` before it faintly; default: the last run.
        The axes sit at fixed places (FIGURE_SIZE, in inches): the content never changes shape, and a
        layout engine would double the drawing time, which the live view pays during training.
        """
        if current is None and self.results:
            current = self.results[-1]
        earlier = [r for r in self.results if r is not current and (current is None or r.index < current.index)]
        earlier = earlier[-(SHOWN_RUNS - 1):]
        num_modes = len(self._centers) if self._centers is not None else 0

        width, height = FIGURE_SIZE
        fig = Figure(figsize=FIGURE_SIZE, dpi=dpi)

        def place(left: float, bottom: float, w: float, h: float) -> list[float]:
            return [left / width, bottom / height, w / width, h / height]

        modes_ax = fig.add_axes(place(0.75, 3.25, 5.9, 1.4))
        hq_ax = fig.add_axes(place(0.75, 1.45, 5.9, 1.4), sharex=modes_ax)
        points_ax = fig.add_axes(place(7.35, 0.9, 3.5, 3.75))

        if num_modes:
            modes_ax.axhline(num_modes, color="0.4", linestyle="--", linewidth=1)
        runs = [*earlier, *([current] if current is not None else [])]
        for r in runs:
            strong = r is current
            style = dict(color=f"C{(r.index - 1) % 10}", linewidth=2.2 if strong else 1.2,
                         alpha=1.0 if strong else 0.45, zorder=3 if strong else 2,
                         marker="o" if strong and len(r.series) <= 3 else None, markersize=4)
            modes_ax.plot(r.series_steps, r.modes, label=r.label(), **style)
            hq_ax.plot(r.series_steps, [100 * h for h in r.high_quality], **style)
        modes_ax.set_title(f"modes covered (of {num_modes})", fontsize="medium")
        if num_modes:
            modes_ax.set_ylim(-0.4, num_modes + 0.6)
            modes_ax.set_yticks(range(0, num_modes + 1, max(1, math.ceil(num_modes / 8))))
        hq_ax.set_title("high-quality samples (within 3σ of a mode)", fontsize="medium")
        hq_ax.set_ylim(-3, 103)
        hq_ax.set_ylabel("% of samples")
        modes_ax.set_ylabel("modes")
        hq_ax.set_xlabel("training step (generator updates)")
        modes_ax.tick_params(labelbottom=False, labelsize="small")
        hq_ax.tick_params(labelsize="small")
        for ax in (modes_ax, hq_ax):
            ax.grid(alpha=0.3)
        if runs:
            modes_ax.set_xlim(0, max(max(r.series_steps) for r in runs) or 1)
            before = [r for r in self.results if current is None or r.index < current.index]
            older = len(before) - len(earlier)
            title = f"{older} older run{'s' if older != 1 else ''} not shown" if older > 0 else None
            legend = hq_ax.legend(*modes_ax.get_legend_handles_labels(), loc="upper center",
                                  bbox_to_anchor=(0.5, -0.3), ncols=2 if len(runs) > 3 else 1, fontsize="small",
                                  frameon=False, title=title, title_fontsize="small")
            if current is not None:
                legend.get_texts()[-1].set_fontweight("bold")  # this run; the runs before it are faint
        else:
            modes_ax.set_xlim(0, self.settings["steps"])
            for ax in (modes_ax, hq_ax):
                ax.text(0.5, 0.5, "press Train (or call lab.run()) to start", transform=ax.transAxes,
                        ha="center", va="center", color="0.4")

        self._draw_samples(points_ax, current)
        return fig

    def _draw_samples(self, ax: Any, run: LabRun | None) -> None:
        fake = torch.zeros(0, 2) if run is None or run.samples is None else run.samples.float()
        finite = torch.isfinite(fake).all(dim=1)
        plots.draw_points(ax, fake[finite], self._real, self._centers)
        if not finite.all():
            ax.text(0.02, 0.02, f"{int((~finite).sum())} samples are not finite (training diverged)",
                    transform=ax.transAxes, ha="left", va="bottom", fontsize="small", color="tab:red")
        for note in ax.texts:  # readable over the points
            note.set_bbox(dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1.5))
        if run is None:
            ax.set_title(f"the data: {len(self._centers) if self._centers is not None else '?'} modes",
                         fontsize="medium")
        else:
            c = run.coverage
            ax.set_title(f"#{run.index} samples at step {run.steps}: {c.modes_covered}/{c.num_modes} modes",
                         fontsize="medium")

    def render(self, current: LabRun | None = None) -> bytes:
        """The picture as PNG bytes (what the widget's Image shows)."""
        return plots.figure_to_png(self.figure(current), close=False)

    # -- widgets -----------------------------------------------------------------------------------

    def _build(self) -> None:
        """Create the widget tree once; later changes only assign values."""
        import ipywidgets as widgets

        s, c = self.settings, CLASS
        self.objective_dropdown = _add_class(widgets.Dropdown(options=list(losses.OBJECTIVES), value=s["objective"],
                                                              description="objective"), f"{c}-objective")
        self.recipe_button = _add_class(widgets.Button(description="Recipe", icon="undo",
                                                       tooltip="set lr and n_critic to the objective's "
                                                               "published values"), f"{c}-recipe")
        self.recipe_note = _add_class(widgets.HTML(), f"{c}-recipe-note")
        self.lr_slider = _add_class(widgets.FloatLogSlider(value=s["lr"], base=10, min=math.log10(LR_MIN),
                                                           max=math.log10(LR_MAX), step=0.05, description="lr",
                                                           readout_format=".1e", continuous_update=False),
                                    f"{c}-lr")
        self.n_critic_slider = _add_class(widgets.IntSlider(value=s["n_critic"], min=1, max=N_CRITIC_MAX,
                                                            description="n_critic", continuous_update=False),
                                          f"{c}-n-critic")
        self.steps_box = _add_class(widgets.BoundedIntText(value=s["steps"], min=1, max=STEPS_MAX, step=100,
                                                           description="steps"), f"{c}-steps")
        self.seed_box = _add_class(widgets.IntText(value=s["seed"], description="seed"), f"{c}-seed")
        self.button = _add_class(widgets.Button(description="Train", icon="play", button_style="primary",
                                                tooltip="train a fresh GAN with these settings"), f"{c}-train")
        self.summary_html = _add_class(widgets.HTML(), f"{c}-summary")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([
            widgets.HBox([self.objective_dropdown, self.recipe_button, self.recipe_note]),
            widgets.HBox([self.lr_slider, self.n_critic_slider]),
            widgets.HBox([self.steps_box, self.seed_box, self.button]),
            self.summary_html, self.image]), c)

        self.objective_dropdown.observe(self._on_objective, names="value")
        for key, widget in (("lr", self.lr_slider), ("n_critic", self.n_critic_slider),
                            ("steps", self.steps_box), ("seed", self.seed_box)):
            widget.observe(lambda change, key=key: self._on_value(key, change), names="value")
        self.recipe_button.on_click(lambda _: self.apply_recipe())
        self.button.on_click(self._on_train)
        self._show_recipe()
        self._set_summary("pick an objective and its settings, then press Train")
        self.image.value = self.render()

    def _on_objective(self, change: dict) -> None:
        self.settings["objective"] = change["new"]
        self._show_recipe()

    def _on_value(self, key: str, change: dict) -> None:
        if not self._syncing:
            self.settings[key] = change["new"]

    def _on_train(self, _button: Any = None) -> None:
        """The Train button: run with the widgets' values; errors go to the summary line."""
        try:
            self.run()
        except Exception:  # already shown in the summary line by run(); a click has no caller to raise to
            pass

    def apply_recipe(self, objective: str | None = None) -> None:
        """Set lr and n_critic to the published recipe of `objective` (default: the current one)."""
        obj = self.settings["objective"] if objective is None else self._check_objective(objective)
        recipe = losses.objective(obj)
        self.settings.update(objective=obj, lr=recipe.lr, n_critic=recipe.n_critic)
        self._sync_controls()

    def _show_recipe(self) -> None:
        if self.recipe_note is None:
            return
        r = losses.objective(self.settings["objective"])
        optimiser = "RMSprop" if r.optimizer == "rmsprop" else f"Adam β {r.betas}"
        extra = ([f"λ = {r.gp_weight:g}"] if r.gradient_penalty else []) + ([f"clip {r.clip:g}"] if r.clip else [])
        text = ", ".join([f"lr {format_lr(r.lr)}", f"n_critic {r.n_critic}", optimiser, *extra])
        self.recipe_note.value = f"<span title='{html.escape(r.reference)}'>recipe: {html.escape(text)}</span>"

    def _sync_controls(self) -> None:
        """Move the widgets to the current settings without feeding the change back."""
        if self.objective_dropdown is None:
            return
        s = self.settings
        self._syncing = True
        try:
            self.objective_dropdown.value = s["objective"]
            self.lr_slider.value = s["lr"]
            self.n_critic_slider.value = s["n_critic"]
            self.steps_box.value = s["steps"]
            self.seed_box.value = s["seed"]
        finally:
            self._syncing = False

    def _set_summary(self, text: str, busy: bool = False, error: bool = False) -> None:
        if not busy:
            self.summary = text
        if self.summary_html is not None:
            style = "color: #b00020" if error else ("color: #555" if busy else "")
            self.summary_html.value = f"<span style='{style}'>{html.escape(text)}</span>"

    def show(self) -> Path | None:
        """Display the widget (interactive), or write the figure and return its path (headless)."""
        if not self.interactive:
            self.path = _write(self.render(), self.name, self.lesson)
            return self.path
        show_widget(self.box, self.render(), "StabilityLab (a live widget; the picture shows it as it was displayed)")
        return None
