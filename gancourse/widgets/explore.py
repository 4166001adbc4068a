"""Widgets for exploring a trained generator: latent walks (lesson 02) and class picking (lesson 03).

Each widget is a thin ipywidgets view over a plain state object (`LatentState`, `ClassState`) that
holds the logic, and has a headless path chosen by `interactive` that writes PNGs instead. Pictures
are composed with PIL, pixel for pixel, so they stay crisp and cost milliseconds per redraw.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gancourse.utils import run_dir, smoke_mode, to_display
from gancourse.widgets import plots

try:  # IPython ships with ipykernel; kept soft so headless scripts never need it
    from IPython.display import display
except ImportError:  # pragma: no cover
    display = None

MODES = ("linear", "slerp")
SWEEP_RANGE = 3.0  # z ~ N(0, I), so its component along any unit direction is N(0, 1): ±3 spans it
FRAME_PX = 56  # smallest side of one strip frame on screen
SAMPLES_PX = 288  # smallest width of the ClassPicker's sample grid
GRID_TILE_PX = 48  # smallest side of one tile in the all-classes grid
TILE_GAP, PANEL_GAP, PART_GAP, MARGIN = 3, 12, 10, 8
BACKGROUND, INK, MARK = (255, 255, 255), (40, 40, 40), (214, 39, 40)
FONT_SIZE = 13


# ---------------------------------------------------------------------------------------------
# interpolation


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, ts: Any, mode: str = "linear") -> torch.Tensor:
    """Points between z_a (t=0) and z_b (t=1) along the last dimension: (T, *z_a.shape), or z_a.shape for one t.

    "linear" is (1-t)·z_a + t·z_b. "slerp" follows the great circle (Shoemake 1985, as White 2016
    uses it for GAN latents): sin((1-t)Ω)/sin Ω · z_a + sin(tΩ)/sin Ω · z_b, with Ω the angle between
    them. It keeps the norm when |z_a| = |z_b|, where lerp's midpoint falls inside the Gaussian's
    shell. Parallel, antiparallel or zero vectors have no unique circle, so they fall back to lerp.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} ('slerp' is spherical); got {mode!r}")
    a, b = torch.as_tensor(z_a), torch.as_tensor(z_b)
    if a.shape != b.shape or a.dim() == 0:
        raise ValueError(f"z_a and z_b must be vectors (or batches of vectors) of the same shape; "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    single = isinstance(ts, (int, float)) or (torch.is_tensor(ts) and ts.dim() == 0)
    t = torch.as_tensor(ts, dtype=torch.float64, device=a.device).reshape(-1)
    if not torch.isfinite(t).all():
        raise ValueError(f"interpolation times must be finite numbers; got {ts!r}")
    # float64 so that t=0 and t=1 return z_a and z_b exactly (the weights are then exactly 1 and 0).
    a64, b64 = a.double(), b.to(a.device).double()
    t = t.reshape((-1,) + (1,) * a.dim())
    out = (1 - t) * a64 + t * b64
    if mode == "slerp":
        norms = a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)
        cos = (a64 * b64).sum(dim=-1, keepdim=True) / norms.clamp_min(torch.finfo(torch.float64).tiny)
        omega = torch.arccos(cos.clamp(-1.0, 1.0))
        sin_omega = torch.sin(omega)
        degenerate = (sin_omega < 1e-6) | (norms == 0)
        sin_omega = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
        spherical = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / sin_omega
        out = torch.where(degenerate, out, spherical)
    out = out.to(a.dtype if a.is_floating_point() else torch.get_default_dtype())
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# state objects: the logic, free of widgets


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return value


class LatentState:
    """Two latent codes z_a, z_b, a position t in [0, 1] between them and the path mode.

    New codes come from a private, seeded `torch.Generator`, so exploring never moves the global
    RNG and the same seed shows the same walk again.
    """

    def __init__(self, z_dim: int, seed: int = 0, t: float = 0.5, mode: str = "linear") -> None:
        self.z_dim = _check_count("z_dim", z_dim)
        self._rng = torch.Generator().manual_seed(int(seed))
        self.z_a, self.z_b = self._draw(), self._draw()
        self.t, self.mode = 0.0, "linear"
        self.set_t(t)
        self.set_mode(mode)

    def _draw(self) -> torch.Tensor:
        return torch.randn(self.z_dim, generator=self._rng)

    def _check_which(self, which: str) -> str:
        which = str(which).lower()
        if which not in ("a", "b"):
            raise ValueError(f"which must be 'a' or 'b' (the two ends of the walk); got {which!r}")
        return which

    def resample(self, which: str) -> None:
        """Draw a new z_a ('a') or z_b ('b') from N(0, I)."""
        setattr(self, f"z_{self._check_which(which)}", self._draw())

    def set_z(self, which: str, z: torch.Tensor) -> None:
        """Put your own code at one end, e.g. an average of z's for vector arithmetic."""
        z = torch.as_tensor(z).detach().float().cpu().reshape(-1)
        if z.numel() != self.z_dim:
            raise ValueError(f"z must have {self.z_dim} entries (one latent code); got shape {tuple(z.shape)}")
        setattr(self, f"z_{self._check_which(which)}", z.clone())

    def set_t(self, t: float) -> None:
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t must lie in [0, 1] (0 is z_a, 1 is z_b); got {t}")
        self.t = t

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'linear' or 'slerp' (spherical); got {mode!r}")
        self.mode = mode

    def z_t(self) -> torch.Tensor:
        """The code at the current t."""
        return interpolate(self.z_a, self.z_b, self.t, self.mode)

    def path(self, steps: int) -> torch.Tensor:
        """`steps` codes evenly spaced in t from z_a to z_b (both ends included): (steps, z_dim)."""
        _check_count("steps", steps, 2)
        return interpolate(self.z_a, self.z_b, torch.linspace(0, 1, steps), self.mode)


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
# running a generator for display


def _unwrap(net: nn.Module) -> nn.Module:
    """The network inside an EMA wrapper (torch.optim.swa_utils.AveragedModel keeps it in .module)."""
    inner = getattr(net, "module", None)
    return inner if isinstance(inner, nn.Module) else net


def _resolve_generator(source: Any, generator_net: nn.Module | None) -> tuple[nn.Module, Any]:
    """(network to run, the GAN it came from or None) from a GAN, a module, or generator_net."""
    gan = None
    if not isinstance(source, nn.Module) and isinstance(getattr(source, "generator", None), nn.Module):
        gan = source
    elif not isinstance(source, nn.Module):
        raise TypeError(f"expected a generator network (nn.Module) or a GAN with a .generator; got "
                        f"{type(source).__name__}. Pass e.g. gan, gan.generator or trainer.ema.module.")
    if generator_net is not None:
        if not isinstance(generator_net, nn.Module):
            raise TypeError(f"generator_net must be an nn.Module (e.g. trainer.ema.module); "
                            f"got {type(generator_net).__name__}")
        return generator_net, gan
    return (gan.generator if gan is not None else source), gan


def _z_dim_of(net: nn.Module, gan: Any, z_dim: int | None) -> int:
    found = getattr(_unwrap(net), "z_dim", None)
    if found is None and gan is not None:
        found = getattr(gan, "z_dim", None)
    if z_dim is not None:
        _check_count("z_dim", z_dim)
        if found is not None and int(found) != z_dim:
            raise ValueError(f"z_dim={z_dim} but the generator expects z_dim={found}; leave z_dim=None")
        return z_dim
    if found is None:
        raise ValueError("cannot tell the generator's latent size: it has no .z_dim attribute; pass z_dim=...")
    return int(found)


def _device_of(net: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in (*net.parameters(), *net.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


@contextmanager
def inference(net: nn.Module) -> Iterator[tuple[torch.device, torch.dtype]]:
    """Eval mode, no gradients, RNG untouched; every submodule's train/eval flag restored afterwards."""
    flags = [(module, module.training) for module in net.modules()]
    device, dtype = _device_of(net)
    net.eval()
    try:
        with plots.preserved_rng(device), torch.no_grad():
            yield device, dtype
    finally:
        for module, flag in flags:  # parents first, so each child ends with its own flag
            module.train(flag)


def _as_images(output: Any) -> torch.Tensor:
    kind, x = plots.as_samples(output, None)
    if kind != "images":
        raise ValueError(f"these widgets show images, but the generator returned points of shape "
                         f"{tuple(x.shape)}; use plot_samples for 2-D data")
    return x


def _generate(net: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(z) or G(z, y) on the network's device, returned as CPU images."""
    with inference(net) as (device, dtype):
        z = z.to(device=device, dtype=dtype)
        out = net(z) if labels is None else net(z, labels.to(device))
    return _as_images(out)


def class_grid(generator: Any, num_classes: int, per_class: int = 8, seed: int = 0, *,
               classes: Sequence[int] | None = None, z_dim: int | None = None,
               generator_net: nn.Module | None = None) -> torch.Tensor:
    """Samples of every class, row by row: (len(classes) * per_class, C, H, W) on the CPU.

    Row i holds `classes[i]` (default 0..num_classes-1); column j uses the same z in every row, so
    what changes down a column is the class alone and what changes along a row is the style.
    """
    _check_count("num_classes", num_classes, 2)
    _check_count("per_class", per_class)
    net, gan = _resolve_generator(generator, generator_net)
    _check_num_classes(net, gan, num_classes)
    dim = _z_dim_of(net, gan, z_dim)
    rows = list(range(num_classes)) if classes is None else [int(c) for c in classes]
    if not rows or any(not 0 <= c < num_classes for c in rows):
        raise ValueError(f"classes must be a non-empty list of ints in 0..{num_classes - 1}; got {classes!r}")
    z = torch.randn(per_class, dim, generator=torch.Generator().manual_seed(int(seed)))
    labels = torch.tensor(rows, dtype=torch.long).repeat_interleave(per_class)
    return _generate(net, z.repeat(len(rows), 1), labels)


def _check_num_classes(net: nn.Module, gan: Any, num_classes: int) -> None:
    found = getattr(_unwrap(net), "num_classes", None)
    if found is None and gan is not None:
        found = getattr(gan, "num_classes", None)
    if found is not None and int(found) != num_classes:
        raise ValueError(f"num_classes={num_classes} but the generator was built for {found} classes; "
                         f"pass num_classes={found}")


# ---------------------------------------------------------------------------------------------
# composing pictures with PIL


@lru_cache(maxsize=4)
def _font(size: int = FONT_SIZE):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(text: str) -> tuple[int, int]:
    left, top, right, bottom = _font().getbbox(text)
    return right - left, bottom - top


def _line_height() -> int:
    return _text_size("Ag|z")[1] + 6


def _rgb(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = to_display(torch.nan_to_num(images))
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        raise ValueError(f"can show images with 1 or 3 channels; got {x.shape[1]}")
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def _tiles(images: torch.Tensor, nrow: int, scale: int, gap: int = TILE_GAP) -> np.ndarray:
    """Images tiled nrow per row, each enlarged `scale` times by pixel repetition."""
    pixels = _rgb(images).repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, _ = pixels.shape
    rows = math.ceil(n / nrow)
    canvas = np.full((rows * h + (rows - 1) * gap, nrow * w + (nrow - 1) * gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(pixels):
        r, c = divmod(i, nrow)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return canvas


def _labelled(tiles: np.ndarray, *, title: str | None = None, col_labels: Sequence[str] = (),
              col_pitch: int = 0, row_labels: Sequence[str] = (), row_pitch: int = 0, tile: int = 0):
    """Tiles with an optional title, a label centred over each column and one left of each row.

    Returns (PIL image, (x, y) of the tiles' top-left corner in it).
    """
    from PIL import Image, ImageDraw

    line = _line_height()
    left = max((_text_size(s)[0] for s in row_labels), default=-8) + 8
    top = (line if title else 0) + (line if col_labels else 0)
    height, width = tiles.shape[:2]
    width_needed = max(left + width, _text_size(title)[0] if title else 0)
    picture = Image.new("RGB", (width_needed, top + height), BACKGROUND)
    picture.paste(Image.fromarray(tiles), (left, top))
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((0, 0), title, fill=INK, font=_font())
    for i, text in enumerate(col_labels):
        x = left + i * col_pitch + tile / 2 - _text_size(text)[0] / 2
        draw.text((max(0, x), top - line), text, fill=INK, font=_font())
    for i, text in enumerate(row_labels):
        y = top + i * row_pitch + tile / 2 - line / 2
        draw.text((0, y), text, fill=INK, font=_font())
    return picture, (left, top)


def _stack(parts: Sequence[Any]):
    """Parts one under another, centred, with a margin; returns (image, [(x, y) of each part])."""
    from PIL import Image

    width = max(p.width for p in parts) + 2 * MARGIN
    height = sum(p.height for p in parts) + PART_GAP * (len(parts) - 1) + 2 * MARGIN
    picture = Image.new("RGB", (width, height), BACKGROUND)
    offsets, y = [], MARGIN
    for part in parts:
        x = (width - part.width) // 2
        picture.paste(part, (x, y))
        offsets.append((x, y))
        y += part.height + PART_GAP
    return picture, offsets


def _png(picture: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _scale_for(side: int, target: int) -> int:
    return max(1, math.ceil(target / max(side, 1)))


def _write(png: bytes, name: str, lesson: str | None) -> Path:
    folder = run_dir(lesson) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    path.write_bytes(png)
    return path


def _interactive_default(interactive: bool | None) -> bool:
    # A kernel cannot tell whether a browser is watching, so smoke runs (CI) are the headless case.
    return (not smoke_mode()) if interactive is None else bool(interactive)


def _add_class(widget: Any, name: str) -> Any:
    widget.add_class(name)
    return widget


# ---------------------------------------------------------------------------------------------
# the latent explorer (lesson 02)


class _SyncedView:
    """Shared redraw logic: move the controls to match the state, then re-render the one image."""

    image = None
    _syncing = False

    def _sync_controls(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Redraw from the state (after changing it in code, or training G further)."""
        if self.image is None:
            return
        self._syncing = True  # moving the controls to match the state must not redraw twice
        try:
            self._sync_controls()
        finally:
            self._syncing = False
        self.image.value = self.render()


class LatentExplorer(_SyncedView):
    """Walk between two latent codes: [G(z_a) | G(z(t)) | G(z_b)] above a strip of `steps` frames.

    interactive=True builds a t slider, "new z A" / "new z B" buttons and a linear/spherical toggle;
    each change redraws the one Image in place. interactive=False builds no widgets: `show()` writes
    run_dir(lesson)/figures/<name>.png. None picks False in smoke mode, else True.
    """

    CLASS = "gancourse-latent"

    def __init__(self, generator: Any, *, z_dim: int | None = None, interactive: bool | None = None,
                 seed: int = 0, steps: int = 9, lesson: str | None = None, name: str = "latent",
                 generator_net: nn.Module | None = None) -> None:
        self.generator, _gan = _resolve_generator(generator, generator_net)
        self.z_dim = _z_dim_of(self.generator, _gan, z_dim)
        self.steps = _check_count("steps", steps, 2)
        self.state = LatentState(self.z_dim, seed=seed)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        # Where "a", "t", "b" and "path" lie in the last render, as (left, top, right, bottom) pixels.
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self.box = self.slider = self.button_a = self.button_b = self.mode_toggle = self.image = None
        self._syncing = False
        if self.interactive:
            self._build()
            self.refresh()

    # -- pictures ------------------------------------------------------------------------------

    def frames(self) -> dict[str, torch.Tensor]:
        """G(z_a), G(z(t)), G(z_b) as (1, C, H, W) each and the path as (steps, C, H, W), on the CPU."""
        s = self.state
        z = torch.cat([torch.stack([s.z_a, s.z_t(), s.z_b]), s.path(self.steps)])
        images = _generate(self.generator, z)
        return {"a": images[0:1], "t": images[1:2], "b": images[2:3], "path": images[3:]}

    def render(self) -> bytes:
        """The current view as PNG bytes (the same picture in both modes)."""
        f, s = self.frames(), self.state
        side = max(f["a"].shape[-2:])
        frame_scale = _scale_for(side, FRAME_PX)
        strip = _tiles(f["path"], self.steps, frame_scale)
        panel_scale = max(frame_scale, (strip.shape[1] - 2 * PANEL_GAP) // (3 * f["a"].shape[-1]))
        panels = _tiles(torch.cat([f["a"], f["t"], f["b"]]), 3, panel_scale, PANEL_GAP)
        panel_w, panel_h = f["a"].shape[-1] * panel_scale, f["a"].shape[-2] * panel_scale

        labels = [f"z_A  |z| = {s.z_a.norm():.2f}", f"t = {s.t:.2f}  |z| = {s.z_t().norm():.2f}",
                  f"z_B  |z| = {s.z_b.norm():.2f}"]
        top, top_at = _labelled(panels, col_labels=labels, col_pitch=panel_w + PANEL_GAP, tile=panel_w)
        path_name = "linear" if s.mode == "linear" else "spherical (slerp)"
        title = f"{path_name} path, {self.steps} frames from z_A (t = 0) to z_B (t = 1)"
        bottom, strip_at = _labelled(strip, title=title)
        bottom = self._mark_t(bottom, strip_at, strip.shape[1], f["path"].shape[-1] * frame_scale)
        picture, (top_xy, bottom_xy) = _stack([top, bottom])

        x0, y0 = top_xy[0] + top_at[0], top_xy[1] + top_at[1]
        for i, key in enumerate("atb"):
            left = x0 + i * (panel_w + PANEL_GAP)
            self.boxes[key] = (left, y0, left + panel_w, y0 + panel_h)
        sx, sy = bottom_xy[0] + strip_at[0], bottom_xy[1] + strip_at[1]
        self.boxes["path"] = (sx, sy, sx + strip.shape[1], sy + strip.shape[0])
        return _png(picture)

    def _mark_t(self, part: Any, at: tuple[int, int], strip_w: int, frame_w: int) -> Any:
        """A red triangle under the strip where the current t lies."""
        from PIL import Image, ImageDraw

        marked = Image.new("RGB", (part.width, part.height + 10), BACKGROUND)
        marked.paste(part, (0, 0))
        x = at[0] + frame_w / 2 + self.state.t * (strip_w - frame_w)
        y = part.height + 2
        ImageDraw.Draw(marked).polygon([(x, y), (x - 5, y + 7), (x + 5, y + 7)], fill=MARK)
        return marked

    # -- widgets ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """Create the widget tree once; later changes only assign the Image's `.value`."""
        import ipywidgets as widgets

        c = self.CLASS
        self.slider = _add_class(widgets.FloatSlider(value=self.state.t, min=0.0, max=1.0, step=0.01,
                                                     description="t", readout_format=".2f",
                                                     continuous_update=True), f"{c}-slider")
        self.button_a = _add_class(widgets.Button(description="new z A", tooltip="draw a new z_A"), f"{c}-new-a")
        self.button_b = _add_class(widgets.Button(description="new z B", tooltip="draw a new z_B"), f"{c}-new-b")
        self.mode_toggle = _add_class(widgets.ToggleButtons(options=[("linear", "linear"), ("spherical", "slerp")],
                                                            value=self.state.mode), f"{c}-mode")
        self.image = _add_class(widgets.Image(format="png"), f"{c}-image")
        self.box = _add_class(widgets.VBox([widgets.HBox([self.slider, self.mode_toggle]),
                                            widgets.HBox([self.button_a, self.button_b]), self.image]), c)
        self.slider.observe(self._on_t, names="value")
        self.mode_toggle.observe(self._on_mode, names="value")
        self.button_a.on_click(lambda _: self._on_resample("a"))
        self.button_b.on_click(lambda _: self._on_resample("b"))

    def _on_t(self, change: dict) -> None:
        self.state.set_t(change["new"])
        if not self._syncing:
            self.refresh()

    def _on_mode(self, change: dict) -> None:
        self.state.set_mode(change["new"])
        if not self._syncing:
            self.refresh()

    def _on_resample(self, which: str) -> None:
        self.state.resample(which)
        self.refresh()

    def _sync_controls(self) -> None:
        self.slider.value = self.state.t
        self.mode_toggle.value = self.state.mode

    def show(self) -> Path | None:
        """Display the widget (interactive) or write the PNG and return its path (headless)."""
        if not self.interactive:
            return _write(self.render(), self.name, self.lesson)
        if display is None:  # pragma: no cover
            raise RuntimeError("LatentExplorer(interactive=True) needs IPython; pass interactive=False.")
        display(self.box)
        return None


# ---------------------------------------------------------------------------------------------
# the class picker (lesson 03)


class ClassPicker(_SyncedView):
    """Pick a class of a conditional generator G(z, y), resample its z batch, and sweep z with y fixed.

    Takes a ConditionalGAN (its generator, or `generator_net`, e.g. trainer.ema.module) or a
    conditional generator module with .z_dim. interactive=False builds no widgets: `show()` writes
    <name>_grid.png (all classes) and <name>_sweep.png. None picks False in smoke mode, else True.
    """

    CLASS = "gancourse-classes"

    def __init__(self, gan_or_generator: Any, num_classes: int, *, class_names: Sequence[str] | None = None,
                 interactive: bool | None = None, seed: int = 0, n: int = 16, sweep_steps: int = 8,
                 lesson: str | None = None, name: str = "classes", generator_net: nn.Module | None = None,
                 z_dim: int | None = None) -> None:
        self.generator, gan = _resolve_generator(gan_or_generator, generator_net)
        self.num_classes = _check_count("num_classes", num_classes, 2)
        _check_num_classes(self.generator, gan, self.num_classes)
        if class_names is None:
            class_names = [str(i) for i in range(num_classes)]
        self.class_names = [str(c) for c in class_names]
        if len(self.class_names) != num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {num_classes} classes; "
                             "give one name per class, in label order")
        self.z_dim = _z_dim_of(self.generator, gan, z_dim)
        self.sweep_steps = _check_count("sweep_steps", sweep_steps, 2)
        self.seed = int(seed)
        self.state = ClassState(num_classes, self.z_dim, n=n, seed=seed)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        self.paths: dict[str, Path] = {}
        self.box = self.buttons = self.resample_button = self.axis_button = self.slider = self.image = None
        self._syncing = False
        if self.interactive:
            self._build()
            self.refresh()

    # -- pictures ------------------------------------------------------------------------------

    def samples(self) -> torch.Tensor:
        """The n images now on view: class `state.selected`, codes moved by the sweep offset."""
        return _generate(self.generator, self.state.current_z(), self.state.labels())

    def sweep(self, rows: int = 4) -> torch.Tensor:
        """The first `rows` codes of the batch swept along the axis, class fixed: (rows * sweep_steps, C, H, W)."""
        z = self.state.sweep_z(self.sweep_steps, rows)
        return _generate(self.generator, z, self.state.labels(len(z)))

    def render(self) -> bytes:
        """The current view as PNG bytes: n samples of the selected class."""
        images, s = self.samples(), self.state
        nrow = math.ceil(math.sqrt(len(images)))
        tiles = _tiles(images, nrow, _scale_for(nrow * images.shape[-1], SAMPLES_PX))
        title = f"class {self.class_names[s.selected]}  ·  sweep offset {s.offset:+.2f}"
        picture, _ = _labelled(tiles, title=title)
        return _png(_stack([picture])[0])

    def render_grid(self, per_class: int = 8) -> bytes:
        """PNG of `class_grid`: one labelled row per class, the same z down each column."""
        images = class_grid(self.generator, self.num_classes, per_class, self.seed, z_dim=self.z_dim)
        scale = _scale_for(images.shape[-2], GRID_TILE_PX)
        tiles = _tiles(images, per_class, scale)
        pitch = images.shape[-2] * scale + TILE_GAP
        picture, _ = _labelled(tiles, title="one row per class; each column shares one z",
                               row_labels=self.class_names, row_pitch=pitch, tile=images.shape[-2] * scale)
        return _png(_stack([picture])[0])

    def render_sweep(self, rows: int = 4) -> bytes:
        """PNG of `sweep`: each row one code moved along the axis, each column one offset."""
        images = self.sweep(rows)
        scale = _scale_for(images.shape[-1], FRAME_PX)
        width = images.shape[-1] * scale
        tiles = _tiles(images, self.sweep_steps, scale)
        labels = [f"{v:+.1f}" for v in self.state.sweep_values(self.sweep_steps).tolist()]
        title = f"class {self.class_names[self.state.selected]}: z + s·u along one random direction u"
        picture, _ = _labelled(tiles, title=title, col_labels=labels, col_pitch=width + TILE_GAP, tile=width)
        return _png(_stack([picture])[0])

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
        self.buttons.observe(self._on_class, names="value")
        self.slider.observe(self._on_offset, names="value")
        self.resample_button.on_click(lambda _: self._after(self.state.resample))
        self.axis_button.on_click(lambda _: self._after(self.state.new_axis))

    def _on_class(self, change: dict) -> None:
        self.state.select(change["new"])
        if not self._syncing:
            self.refresh()

    def _on_offset(self, change: dict) -> None:
        self.state.set_offset(change["new"])
        if not self._syncing:
            self.refresh()

    def _after(self, action) -> None:
        action()
        self.refresh()

    def _sync_controls(self) -> None:
        self.buttons.value = self.state.selected
        self.slider.value = self.state.offset

    def show(self) -> dict[str, Path] | None:
        """Display the widget (interactive), or write the class grid and a sweep strip and return their paths."""
        if not self.interactive:
            self.paths = {"grid": _write(self.render_grid(), f"{self.name}_grid", self.lesson),
                          "sweep": _write(self.render_sweep(), f"{self.name}_sweep", self.lesson)}
            return self.paths
        if display is None:  # pragma: no cover
            raise RuntimeError("ClassPicker(interactive=True) needs IPython; pass interactive=False.")
        display(self.box)
        return None
