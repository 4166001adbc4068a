"""Static training figures shared by the dashboard and the lessons: loss curves, samples, PNG bytes.

The `draw_*` functions paint onto axes you give them and touch no global state, so the dashboard can
use bare `Figure` objects inside a training loop; the `plot_*` functions make a pyplot figure for a
notebook cell.
"""
from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gancourse.widgets.render import near_square, scale_for, tiles, to_png

LOSS_KEYS = ("loss_D", "loss_G")
D_KEYS = ("D_real", "D_fake")
LABELS = {
    "loss_D": "loss_D (discriminator)",
    "loss_G": "loss_G (generator)",
    "D_real": "D(x) on real data",
    "D_fake": "D(G(z)) on generated data",
}
SHORT_LABELS = {"loss_D": "loss_D", "loss_G": "loss_G", "D_real": "D(x)", "D_fake": "D(G(z))"}
COLORS = {"loss_D": "tab:blue", "loss_G": "tab:orange", "D_real": "tab:green", "D_fake": "tab:red"}
REAL_POINTS = 2000


# ---------------------------------------------------------------------------------------------
# history -> arrays


def history_records(history: Any) -> list[Mapping[str, Any]]:
    """The list of record dicts of a History, or of a plain list of records."""
    if history is None:
        return []
    records = getattr(history, "records", history)
    if isinstance(records, Mapping) or not isinstance(records, Sequence):
        raise TypeError(
            f"expected a History (with .records) or a list of dicts, got {type(history).__name__}; "
            "pass trainer.history or the History returned by trainer.fit()."
        )
    return list(records)


def series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric, skipping records that do not carry it."""
    steps, values = [], []
    for i, record in enumerate(records):
        value = record.get(key)
        if value is None:
            continue
        steps.append(float(record.get("step", i)))
        values.append(float(value))
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def last_values(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """The most recent logged value of each key that appears in the records."""
    found: dict[str, float] = {}
    for record in reversed(records):
        for key in keys:
            if key not in found and record.get(key) is not None:
                found[key] = float(record[key])
        if len(found) == len(keys):
            break
    return found


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter windows at the start), so noisy GAN losses show a trend."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(0, end - window)
    return (sums[end] - sums[start]) / (end - start)


def _plot_series(ax: Axes, records: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    steps, values = series(records, key)
    if len(values) == 0:
        return values
    color, label = COLORS.get(key), LABELS.get(key, key)
    finite = np.isfinite(values)
    window = len(values) // 25
    if window >= 3 and finite.all():
        # Raw values faint, the trend on top: the raw noise is the honest signal, the trend the readable one.
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, _smooth(values, window), color=color, linewidth=1.6, label=label)
    else:
        marker = "." if len(values) < 20 else None  # a few points: show where the measurements are
        ax.plot(steps, values, color=color, linewidth=1.4, label=label, marker=marker)
    return values[finite]


def _empty_note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


# ---------------------------------------------------------------------------------------------
# curves


def draw_curves(loss_ax: Axes, d_ax: Axes | None, history: Any) -> None:
    """Draw loss_D/loss_G on `loss_ax` and mean D(x)/D(G(z)) on `d_ax` (skipped when None)."""
    records = history_records(history)
    plotted = [_plot_series(loss_ax, records, key) for key in LOSS_KEYS]
    loss_ax.set_ylabel("loss")
    loss_ax.set_title("losses", fontsize="medium")
    if any(len(v) for v in plotted):
        loss_ax.legend(loc="best", fontsize="small", framealpha=0.8)
    else:
        _empty_note(loss_ax, "no steps logged yet")
    loss_ax.grid(alpha=0.3)
    if d_ax is None:
        loss_ax.set_xlabel("training step")
        return

    values = [_plot_series(d_ax, records, key) for key in D_KEYS]
    joined = np.concatenate(values) if values else np.zeros(0)
    if len(joined) == 0:
        _empty_note(d_ax, "no D outputs logged yet")
        d_ax.set_ylabel("mean D output")
    elif joined.min() >= 0.0 and joined.max() <= 1.0:
        # D*(x) = 1/2 everywhere once p_g = p_data (Goodfellow et al. 2014, Prop. 1).
        d_ax.axhline(0.5, color="0.35", linestyle="--", linewidth=1, label="1/2: D cannot tell")
        d_ax.set_ylim(-0.03, 1.03)
        d_ax.set_ylabel("mean D output (prob.)")
    else:
        d_ax.set_ylabel("mean critic score")
    if len(joined):
        d_ax.legend(loc="best", fontsize="small", framealpha=0.8)
    d_ax.set_title("what the discriminator says", fontsize="medium")
    d_ax.set_xlabel("training step")
    d_ax.grid(alpha=0.3)


def plot_curves(history: Any, ax: Axes | Sequence[Axes] | None = None) -> Figure:
    """Plot the loss curves and the D(x) / D(G(z)) curves of a History; returns the Figure.

    With ax=None a new pyplot figure with both panels is made; pass one Axes for the losses only,
    or two Axes for both. In a notebook write `fig = plot_curves(...)` so Jupyter shows it once.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, (loss_ax, d_ax) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True, layout="constrained")
        draw_curves(loss_ax, d_ax, history)
        return fig
    if isinstance(ax, Axes):
        draw_curves(ax, None, history)
        return ax.figure
    axes = list(np.ravel(ax))
    if len(axes) != 2:
        raise ValueError(f"plot_curves needs one Axes or two (losses, D outputs), got {len(axes)}.")
    draw_curves(axes[0], axes[1], history)
    return axes[0].figure


# ---------------------------------------------------------------------------------------------
# samples


def as_samples(samples: Any, data: Any = None) -> tuple[str, torch.Tensor]:
    """Classify generator output as ("points", (n, 2)) or ("images", (n, C, H, W)) on the CPU."""
    x = torch.as_tensor(samples).detach().float().cpu()
    kind = getattr(data, "kind", None)
    if x.ndim == 4:
        return "images", x
    if x.ndim == 3:  # (n, H, W): one grey channel
        return "images", x.unsqueeze(1)
    if x.ndim == 2 and x.shape[1] == 2 and kind != "images":
        return "points", x
    if x.ndim == 2:
        # Flat images, e.g. an MLP generator on 28x28 digits.
        shape = getattr(data, "image_shape", None)
        if shape is not None and math.prod(shape) == x.shape[1]:
            return "images", x.reshape(len(x), *shape)
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1] and side > 2:
            return "images", x.reshape(len(x), 1, side, side)
    raise ValueError(
        f"cannot plot samples of shape {tuple(x.shape)}: expected 2-D points (n, 2) or images "
        "(n, C, H, W) in [-1, 1]. Reshape the generator output to images, or pass data= with an "
        ".image_shape so flat vectors can be reshaped."
    )


@contextmanager
def preserved_rng(device: torch.device | str | None = None) -> Iterator[None]:
    """Restore the CPU (and `device`) random state afterwards, so plotting never shifts training."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    cpu_state = torch.get_rng_state()
    dev_state = None
    if device.type == "cuda" and torch.cuda.is_available():
        dev_state = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        dev_state = torch.mps.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if dev_state is not None and device.type == "cuda":
            torch.cuda.set_rng_state(dev_state, device)
        elif dev_state is not None:
            torch.mps.set_rng_state(dev_state)


def real_points(data: Any, n: int = REAL_POINTS) -> torch.Tensor | None:
    """Up to n real 2-D points from a data set (or a tensor) for the scatter background."""
    if data is None:
        return None
    if isinstance(data, torch.Tensor):
        return data.detach().float().cpu()[:n]
    if getattr(data, "kind", "points") != "points" or not hasattr(data, "sample"):
        return None
    x = getattr(data, "x", None)
    device = x.device if isinstance(x, torch.Tensor) else None
    with preserved_rng(device):
        return data.sample(n).detach().float().cpu()


def mode_centers(data: Any) -> torch.Tensor | None:
    """The known mode centres of a mixture data set, or None."""
    centers = getattr(data, "centers", None)
    return None if centers is None else torch.as_tensor(centers).detach().float().cpu()


def _limits(real: torch.Tensor | None, fake: torch.Tensor) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits framed on the real data, widened toward stray samples but at most one span."""
    finite = fake[torch.isfinite(fake).all(dim=1)]
    ref = real if real is not None and len(real) else finite
    if len(ref) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = ref.min(dim=0).values, ref.max(dim=0).values
    span = (hi - lo).max().clamp(min=1e-3)
    if len(finite):
        lo = torch.minimum(lo, torch.maximum(finite.min(dim=0).values, lo - span))
        hi = torch.maximum(hi, torch.minimum(finite.max(dim=0).values, hi + span))
    centre, half = (lo + hi) / 2, ((hi - lo).max() / 2 + 0.08 * span).item()
    (cx, cy) = centre.tolist()
    return (cx - half, cx + half), (cy - half, cy + half)


def draw_points(
    ax: Axes, fake: torch.Tensor, real: torch.Tensor | None = None, centers: torch.Tensor | None = None
) -> None:
    """Scatter generated points over the real data, with the mixture's mode centres marked."""
    if real is not None and len(real):
        ax.scatter(real[:, 0], real[:, 1], s=5, color="0.6", alpha=0.45, linewidths=0, label="real data",
                   zorder=2)
    ax.scatter(fake[:, 0], fake[:, 1], s=7, color="tab:orange", alpha=0.7, linewidths=0, label="generated",
               zorder=3)
    if centers is not None:  # under the data: tight modes must not vanish behind their markers
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", s=60, color="black", linewidths=1.2,
                   label="mode centres", zorder=1)
    xlim, ylim = _limits(real if real is not None else centers, fake)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    x, y = fake[:, 0], fake[:, 1]
    inside = (x >= xlim[0]) & (x <= xlim[1]) & (y >= ylim[0]) & (y <= ylim[1])
    if not inside.all():  # say so, or a diverged generator looks like an empty plot
        ax.text(0.02, 0.98, f"{int((~inside).sum())} of {len(fake)} generated points lie outside this view",
                transform=ax.transAxes, ha="left", va="top", fontsize="small", color="tab:red")
    ax.set_aspect("equal")
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=3, fontsize="small",
                       frameon=False)
    for handle in legend.legend_handles:
        handle.set_sizes([24])  # same-sized, visible keys whatever the plotted marker sizes
    ax.tick_params(labelsize="small")


def image_grid(images: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """A (H, W, 3) uint8 array tiling images in [-1, 1] in a near-square grid, 2-pixel white gaps."""
    return tiles(images.detach(), nrow, gap=2)


def grid_png(images: torch.Tensor, min_side: int = 320) -> bytes:
    """PNG bytes of a near-square image grid, each image enlarged by a whole factor (crisp pixels)
    so that the grid's longer side is at least about min_side."""
    nrow = near_square(len(images))
    rows = math.ceil(len(images) / nrow)
    scale = scale_for(max(nrow * images.shape[-1], rows * images.shape[-2]), min_side)
    return to_png(tiles(images.detach(), nrow, scale))


def draw_images(ax: Axes, images: torch.Tensor, nrow: int | None = None) -> None:
    """Show a grid of images in [-1, 1] on `ax`, pixel for pixel (no smoothing)."""
    ax.imshow(image_grid(images, nrow), interpolation="nearest")
    ax.set_axis_off()


def plot_samples(samples: Any, data: Any = None, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Plot generator samples: an image grid, or a scatter over `data` (points) with mode centres.

    `data` is an InMemoryData or a tensor of real points; images ignore it except for reshaping
    flat vectors. Returns the Figure (a new pyplot one when ax=None).
    """
    kind, x = as_samples(samples, data)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.8, 5.0), layout="constrained")
    if kind == "points":
        draw_points(ax, x, real_points(data), mode_centers(data))
    else:
        draw_images(ax, x)
    ax.set_title(title or f"{len(x)} generated samples", fontsize="medium")
    return ax.figure


def figure_to_png(fig: Figure, dpi: float | None = None, close: bool = True) -> bytes:
    """Render a figure to PNG bytes (for an ipywidgets Image) and, by default, close it in pyplot."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)  # a no-op for figures pyplot does not manage
    return buffer.getvalue()
