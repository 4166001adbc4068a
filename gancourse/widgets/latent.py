"""Lesson 02's latent explorer: walk a straight or a spherical path between two codes z_A and z_B.

`interpolate` computes the path, `LatentState` holds the two codes and the position t, and
`LatentExplorer` shows [G(z_A) | G(z(t)) | G(z_B)] above a strip of frames along the whole path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancourse.utils import save_png
from gancourse.widgets import sampling
from gancourse.widgets.render import (FRAME_PX, PANEL_GAP, labelled, mark_below, scale_for, stack, tiles,
                                      to_png)
from gancourse.widgets.view import _add_class, _check_count, _interactive_default, _SyncedView

MODES = ("linear", "slerp")


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
# the state: the logic, free of widgets


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


# ---------------------------------------------------------------------------------------------
# the widget


class LatentExplorer(_SyncedView):
    """Walk between two latent codes: [G(z_a) | G(z(t)) | G(z_b)] above a strip of `steps` frames.

    interactive=True builds a t slider, "new z A" / "new z B" buttons and a linear/spherical toggle;
    each change redraws the one Image in place. interactive=False builds no widgets: `show()` writes
    run_dir(lesson)/figures/<name>.png. None picks False in smoke mode, else True.
    """

    CLASS = "gancourse-latent"

    def __init__(self, generator: Any, *, z_dim: int | None = None, interactive: bool | None = None,
                 seed: int = 0, steps: int = 9, lesson: str | None = None, name: str = "latent",
                 net: nn.Module | None = None) -> None:
        self.source = sampling.resolve(generator, net, z_dim=z_dim)
        self.z_dim = self.source.z_dim
        self.steps = _check_count("steps", steps, 2)
        self.state = LatentState(self.z_dim, seed=seed)
        self.interactive = _interactive_default(interactive)
        self.lesson, self.name = lesson, str(name)
        # Where "a", "t", "b" and "path" lie in the last render, as (left, top, right, bottom) pixels.
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self.box = self.slider = self.button_a = self.button_b = self.mode_toggle = self.image = None
        self._start()

    # -- pictures ------------------------------------------------------------------------------

    def frames(self) -> dict[str, torch.Tensor]:
        """G(z_a), G(z(t)), G(z_b) as (1, C, H, W) each and the path as (steps, C, H, W), on the CPU."""
        s = self.state
        z = torch.cat([torch.stack([s.z_a, s.z_t(), s.z_b]), s.path(self.steps)])
        images = sampling.sample(self.source, z)
        return {"a": images[0:1], "t": images[1:2], "b": images[2:3], "path": images[3:]}

    def render(self) -> bytes:
        """The current view as PNG bytes (the same picture in both modes)."""
        f, s = self.frames(), self.state
        side = max(f["a"].shape[-2:])
        frame_scale = scale_for(side, FRAME_PX)
        strip = tiles(f["path"], self.steps, frame_scale)
        # The three panels as large as fits the strip's width, never smaller than its frames.
        panel_scale = max(frame_scale, (strip.shape[1] - 2 * PANEL_GAP) // (3 * f["a"].shape[-1]))
        panels = tiles(torch.cat([f["a"], f["t"], f["b"]]), 3, panel_scale, PANEL_GAP)
        panel_w, panel_h = f["a"].shape[-1] * panel_scale, f["a"].shape[-2] * panel_scale

        labels = [f"z_A  |z| = {s.z_a.norm():.2f}", f"t = {s.t:.2f}  |z| = {s.z_t().norm():.2f}",
                  f"z_B  |z| = {s.z_b.norm():.2f}"]
        top, top_at = labelled(panels, col_labels=labels, col_pitch=panel_w + PANEL_GAP, tile=panel_w)
        path_name = "linear" if s.mode == "linear" else "spherical (slerp)"
        title = f"{path_name} path, {self.steps} frames from z_A (t = 0) to z_B (t = 1)"
        bottom, strip_at = labelled(strip, title=title)
        frame_w = f["path"].shape[-1] * frame_scale  # the marker runs from the first frame's centre to the last's
        bottom = mark_below(bottom, strip_at[0] + frame_w / 2 + s.t * (strip.shape[1] - frame_w))
        picture, (top_xy, bottom_xy) = stack([top, bottom])

        x0, y0 = top_xy[0] + top_at[0], top_xy[1] + top_at[1]
        for i, key in enumerate("atb"):
            left = x0 + i * (panel_w + PANEL_GAP)
            self.boxes[key] = (left, y0, left + panel_w, y0 + panel_h)
        sx, sy = bottom_xy[0] + strip_at[0], bottom_xy[1] + strip_at[1]
        self.boxes["path"] = (sx, sy, sx + strip.shape[1], sy + strip.shape[0])
        return to_png(picture)

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
        self.slider.observe(self._on_control(self.state.set_t), names="value")
        self.mode_toggle.observe(self._on_control(self.state.set_mode), names="value")
        self.button_a.on_click(lambda _: self._after(lambda: self.state.resample("a")))
        self.button_b.on_click(lambda _: self._after(lambda: self.state.resample("b")))

    def _sync_controls(self) -> None:
        self.slider.value = self.state.t
        self.mode_toggle.value = self.state.mode

    def show(self) -> Path | None:
        """Display the widget (interactive) or write the PNG and return its path (headless)."""
        if not self.interactive:
            return save_png(self.render(), self.name, self.lesson)
        self._display()
        return None
