"""What every widget shares: the interactive flag, CSS class names, and redrawing one image in place.

A widget is a thin ipywidgets view over a plain state object that holds the logic. Its headless path
(chosen by `interactive`) writes PNGs instead and never imports ipywidgets.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from gancourse.utils import smoke_mode

try:  # IPython ships with ipykernel; kept soft so headless scripts never need it
    from IPython.display import display
except ImportError:  # pragma: no cover
    display = None


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_bundle(widget: Any) -> dict:
    """A live widget's display data: what ipywidgets 8 gives as its `_repr_mimebundle_`, and the same
    data ipywidgets 7 (Colab's) publishes from `_ipython_display_`, which IPython cannot combine with a
    picture or tie to a display id, so the course builds it here."""
    if hasattr(widget, "_repr_mimebundle_"):
        return dict(widget._repr_mimebundle_())
    text = repr(widget)
    bundle = {"text/plain": text if len(text) <= 110 else text[:110] + "…"}
    if widget._view_name is not None:
        bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": widget._model_id}
        widget._handle_displayed()
    return bundle


class LiveWidget:
    """A widget as one display output that a display handle can later replace (ipywidgets 7 and 8)."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return widget_bundle(self.widget)


class Picture:
    """A PNG with a text fallback as one display output; with `widget`, the widget's own view comes first.

    A front end with the widget's model draws the live widget; one without it (a saved notebook on
    GitHub, nbviewer, a notebook reopened without its kernel) falls back to the picture.
    """

    def __init__(self, png: bytes, text: str = "", widget: Any = None) -> None:
        self.png, self.text, self.widget = png, text, widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = widget_bundle(self.widget) if self.widget is not None else {}
        bundle["image/png"] = base64.b64encode(bytes(self.png)).decode("ascii")
        if self.text or "text/plain" not in bundle:
            bundle["text/plain"] = self.text
        return bundle


def show_widget(box: Any, png: bytes, text: str = "") -> None:
    """Display a live widget that keeps `png` as its picture wherever widgets cannot be drawn."""
    if display is None:  # pragma: no cover
        raise RuntimeError("live widgets need IPython; pass interactive=False.")
    display(Picture(png, text, widget=box))


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return value


def _interactive_default(interactive: bool | None) -> bool:
    # A kernel cannot tell whether a browser is watching, so smoke runs (CI) are the headless case.
    return (not smoke_mode()) if interactive is None else bool(interactive)


def _add_class(widget: Any, name: str) -> Any:
    """Tag a widget with a CSS class: the browser test finds the controls by these names."""
    widget.add_class(name)
    return widget


class _SyncedView:
    """Shared redraw logic: move the controls to match the state, then re-render the one image.

    A subclass builds `box` (holding `image`) in `_build`, and gives `render()` (PNG bytes) and
    `_sync_controls()` (copy the state into the controls).
    """

    box = None
    image = None
    source = None  # a widgets.sampling.Source: where the pictures come from
    _syncing = False

    @property
    def generator(self):
        """The network the pictures come from (the GAN's generator, or `net`)."""
        return self.source.net

    def _start(self) -> None:
        """End of __init__: build the widgets and draw once, when interactive."""
        self._syncing = False
        if self.interactive:
            self._build()
            self.refresh()

    def _sync_controls(self) -> None:
        raise NotImplementedError

    def render(self) -> bytes:
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

    def _on_control(self, setter: Callable[[Any], None]) -> Callable[[dict], None]:
        """An observer for a control's value: pass it to the state, redraw unless refresh() moved it."""
        def observe(change: dict) -> None:
            setter(change["new"])
            if not self._syncing:
                self.refresh()
        return observe

    def _after(self, action: Callable[[], None]) -> None:
        """Change the state (a button's action), then redraw."""
        action()
        self.refresh()

    def _display(self) -> None:
        show_widget(self.box, self.render(), f"{type(self).__name__} (a live widget; the picture shows it as it was displayed)")
