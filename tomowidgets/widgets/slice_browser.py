"""SliceBrowser: look through the slices of a tomogram in a notebook."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import traitlets
from ipycanvas import MultiCanvas, hold_canvas

from tomowidgets._validate import check_index
from tomowidgets.widgets._contrast import ContrastControl
from tomowidgets.widgets._display import (
    draw_png,
    draw_scale_bar,
    encode_png,
    pin_size,
    render_plane,
    sample_range,
)
from tomowidgets.widgets._geometry import (
    Viewport,
    canvas_to_voxel,
    fit_viewport,
    voxel_to_canvas,
    zoom_levels,
    zoom_viewport,
)
from tomowidgets.widgets._sections import SectionViews
from tomowidgets.widgets._status import StatusLine

if TYPE_CHECKING:
    from tomowidgets.io import Tomogram

__all__ = ["SliceBrowser"]

#: Keys that step through slices (shift+arrows pan instead), and how far.
_STEP_KEYS = {"ArrowUp": 1, "ArrowRight": 1, ".": 1, "ArrowDown": -1, "ArrowLeft": -1, ",": -1,
              "PageUp": 10, "PageDown": -10}
_PAN_KEYS = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}
_WHEEL_NOTCH = 100.0  # wheel delta per slice step: one notch of a mouse wheel in Chromium


class SliceBrowser(widgets.VBox):
    """Browse the ``(y, x)`` slices of a tomogram: z slider and Play, contrast, zoom, cursor readout.

    The slice carries a scale bar (nm) and the contrast row says the voxel size; the cursor readout
    gives voxel and Å coordinates.

    The slice is drawn on layer 0 of an ``ipycanvas.MultiCanvas`` as a lossless PNG of its 8-bit
    display image; layers 1 (``overlay``) and 2 (``cursor_layer``) are for widgets that build on
    this one. Slices larger than `max_size` pixels are display-binned (block means), so a 1024²
    slice is sent as 512² pixels; zooming in reduces the binning, then magnifies. The canvas is
    drawn one CSS pixel per canvas pixel (never stretched), so that the slice fits a laptop's
    window together with its slider and status line. An image is
    encoded only when the slice, view or contrast changes.

    Keyboard (click the canvas first): arrows, ``,``/``.``, PageUp/PageDown step through slices;
    shift+arrows pan; ``+``/``-`` zoom at the cursor; ``0`` fits the slice. The mouse wheel steps
    through slices.

    Parameters
    ----------
    tomo : Tomogram
        The tomogram, ``(z, y, x)`` voxels with ``apix`` in Å (may be memory-mapped).
    z : int, optional
        First slice shown; default the middle one.
    contrast : tuple of 2 float, optional
        Values shown black and white; default the 1st and 99th percentiles of a strided sample.
    max_size : int, default 640
        Largest canvas edge in pixels (larger slices are display-binned); 640 leaves room for the
        controls in a 1280×800 window.
    min_size : int, default 512
        Smaller slices are magnified by an integer factor up to about this size.
    sections : bool, default False
        Also show XZ and YZ sections through the cursor.

    Attributes
    ----------
    z : int
        The slice on show (a traitlet linked to the slider).
    contrast : tuple of 2 float
        ``(black, white)`` levels (linked to the range slider).
    zoom : int
        Zoom level, 0 = whole slice (see :func:`zoom_levels`).
    cursor : tuple
        Voxel ``(z, y, x)`` under the mouse, or ``()`` when it is off the slice.
    n_encoded : int
        Number of slice images encoded so far (the cache makes repeats free).
    scale_bar : str
        The scale bar's label, e.g. ``"200 nm"`` (it follows the zoom).

    Examples
    --------
    >>> import numpy as np, tomowidgets as tw
    >>> browser = SliceBrowser(tw.Tomogram(np.zeros((4, 64, 64), np.float32), apix=10.0))
    >>> browser.show_slice(3); browser.z
    3
    """

    z = traitlets.Int(0)
    contrast = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.0, 1.0))
    zoom = traitlets.Int(0)
    centre = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.0, 0.0))
    cursor = traitlets.Tuple(default_value=())

    def __init__(self, tomo: Tomogram, *, z: int | None = None,
                 contrast: tuple[float, float] | None = None, max_size: int = 640,
                 min_size: int = 512, sections: bool = False) -> None:
        super().__init__()
        self.tomo = tomo
        nz, ny, nx = tomo.shape
        self.base: Viewport = fit_viewport((ny, nx), max_size=max_size, min_size=min_size)
        self.n_encoded = 0
        self.scale_bar = ""
        self._image_key: tuple | None = None
        self._overlay_key: tuple | None = None
        self._image: tuple[bytes, np.ndarray] | None = None
        self._wheel = 0.0
        self._pointer: tuple[float, float] | None = None
        self._redraw_callbacks: list[Callable[[], Any]] = []
        self._hover_callbacks: list[Callable[[tuple | None], Any]] = []
        lo, hi, vmin, vmax = sample_range(tomo.data)
        if contrast is not None:
            lo, hi = (float(v) for v in contrast)

        self.status = StatusLine()
        self.canvas = MultiCanvas(3, width=self.base.width, height=self.base.height)
        pin_size(self.canvas, self.base.width, self.base.height)
        self.slider = widgets.IntSlider(value=nz // 2, min=0, max=nz - 1, description="z",
                                        continuous_update=True)
        self.play = widgets.Play(value=nz // 2, min=0, max=nz - 1, interval=150)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.contrast_control = ContrastControl(
            (lo, hi), (vmin, vmax), on_auto=self.status.guard(self.auto_contrast),
            note=f"{tomo.apix:.4g} Å/voxel", tooltip="1st-99th percentile of this slice")
        self.contrast_slider = self.contrast_control.slider
        self.contrast_readout = self.contrast_control.readout
        self.label = widgets.HTML()
        buttons = {"−": self.zoom_out, "+": self.zoom_in, "fit": self.fit}
        zoom_buttons = []
        for text, action in buttons.items():
            button = widgets.Button(description=text, layout=widgets.Layout(width="44px"),
                                    tooltip={"−": "zoom out", "+": "zoom in", "fit": "whole slice"}[text])
            button.on_click(self.status.guard(lambda _, act=action: act()))
            zoom_buttons.append(button)
        self.sections = SectionViews(tomo, self.base) if sections else None

        with self.hold_trait_notifications():
            self.centre = (ny / 2, nx / 2)
            self.contrast = (lo, hi)
            self.z = nz // 2
        widgets.link((self.slider, "value"), (self, "z"))
        widgets.link((self.contrast_control, "value"), (self, "contrast"))
        self.observe(self.status.guard(lambda _: self.redraw()), ["z", "contrast", "zoom", "centre"])
        if z is not None:
            self.show_slice(z)

        self.canvas.on_mouse_move(self.status.guard(self.hover))
        self.canvas.on_mouse_out(self.status.guard(lambda px, py: self.leave()))
        self.canvas.on_mouse_wheel(self.status.guard(self.wheel))
        self.canvas.on_key_down(self.status.guard(self.key))
        self.canvas.on_client_ready(self.status.guard(lambda: self.redraw(force=True)))

        view = (widgets.HBox([self.canvas, self.sections.yz]) if self.sections else self.canvas)
        rows: list[widgets.Widget] = [view]
        if self.sections:
            rows.append(self.sections.xz)
        rows += [widgets.HBox([self.play, self.slider, *zoom_buttons]), self.contrast_control,
                 self.label, self.status]
        self.children = rows
        self.redraw()

    # -- layers and geometry -------------------------------------------------------------------
    @property
    def overlay(self) -> Any:
        """Canvas layer 1, redrawn by the widgets built on this one (boxes, masks)."""
        return self.canvas[1]

    @property
    def cursor_layer(self) -> Any:
        """Canvas layer 2 (top; receives the mouse events), for light hover drawings."""
        return self.canvas[2]

    @property
    def viewport(self) -> Viewport:
        """What the canvas shows now (zoom and centre applied)."""
        return zoom_viewport(self.base, self.tomo.shape[1:], self.zoom, self.centre)

    def canvas_to_voxel(self, px: float, py: float) -> tuple[int, int, int] | None:
        """Voxel ``(z, y, x)`` under canvas point ``(px, py)`` on the current slice; None if off it."""
        y, x = canvas_to_voxel(px, py, self.viewport)
        _, ny, nx = self.tomo.shape
        return (self.z, y, x) if 0 <= y < ny and 0 <= x < nx else None

    def voxel_to_canvas(self, y: float, x: float) -> tuple[float, float]:
        """Canvas point ``(px, py)`` of continuous voxel ``(y, x)`` (``i + 0.5`` is voxel i's centre)."""
        return voxel_to_canvas(y, x, self.viewport)

    # -- public gestures and actions -----------------------------------------------------------
    def show_slice(self, z: int) -> None:
        """Show slice `z` (moves the slider).

        Raises
        ------
        ValueError
            If `z` is not an integer in ``0 .. nz - 1``.
        """
        self.z = check_index(z, self.tomo.shape[0], "z")

    def step(self, dz: int) -> None:
        """Move `dz` slices (clipped to the tomogram)."""
        self.z = int(np.clip(self.z + int(dz), 0, self.tomo.shape[0] - 1))

    def set_contrast(self, lo: float, hi: float) -> None:
        """Show values `lo` as black and `hi` as white (widens the slider's range if needed).

        Raises
        ------
        ValueError
            Unless ``lo < hi`` are finite numbers.
        """
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"contrast needs finite `lo` < `hi`, got lo={lo}, hi={hi}")
        self.contrast_control.widen(lo, hi)
        self.contrast = (lo, hi)

    def auto_contrast(self, percentiles: tuple[float, float] = (1.0, 99.0)) -> None:
        """Set the contrast to `percentiles` (0-100) of the current slice."""
        lo, hi, _, _ = sample_range(self.tomo.data[self.z], percentiles)
        self.set_contrast(lo, hi)

    def hover(self, px: float, py: float) -> tuple[int, int, int] | None:
        """The mouse is at canvas point ``(px, py)``: show the voxel and its position in Å.

        Returns the voxel ``(z, y, x)``, or None when the point is off the slice.
        """
        voxel = self.canvas_to_voxel(px, py)
        if voxel is None:
            self.leave()
            self._pointer = (float(px), float(py))
            return None
        self._pointer = (float(px), float(py))
        z, y, x = voxel
        oz, oy, ox = self.tomo.origin
        a = self.tomo.apix
        value = float(self.tomo.data[z, y, x])
        self.label.value = (f"x {x} · y {y} · z {z} voxel &nbsp;|&nbsp; x {ox + x * a:.1f} · "
                            f"y {oy + y * a:.1f} · z {oz + z * a:.1f} Å &nbsp;|&nbsp; value {value:.4g}")
        self.cursor = voxel
        if self.sections is not None:
            self.sections.update(z, y, x, *self.contrast)
        for callback in self._hover_callbacks:
            callback(voxel)
        return voxel

    def leave(self) -> None:
        """The mouse left the canvas or the slice: clear the cursor readout."""
        self._pointer = None
        self.cursor = ()
        self.label.value = ""
        for callback in self._hover_callbacks:
            callback(None)

    def aimed_point(self, px: float, py: float) -> tuple[float, float]:
        """Where a mouse press reported at canvas point ``(px, py)`` was aimed.

        ipycanvas focuses the canvas on mouse down *before* it reads the event's position. When the
        canvas is partly out of view, focusing scrolls the notebook, and the press arrives as the
        point that scrolled under the pointer, not the one the user aimed at (which the hover
        readout and previews showed). No mouse move can come between the last hover and a press,
        so the last hover point is the aim; without one (touch, or the pointer left the canvas),
        the press's own point.
        """
        return self._pointer if self._pointer is not None else (float(px), float(py))

    def wheel(self, dx: float, dy: float) -> None:
        """A wheel event with deltas (`dx`, `dy`): steps one slice per notch (down = deeper)."""
        if self._wheel * dy < 0:   # direction changed: drop the rest of the other direction
            self._wheel = 0.0
        self._wheel += float(dy)
        steps = int(self._wheel / _WHEEL_NOTCH)
        if steps:
            self._wheel -= steps * _WHEEL_NOTCH
            self.step(steps)

    def key(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> bool:
        """Handle a key press (the ``KeyboardEvent.key`` name); returns True if it was used."""
        if shift and key in _PAN_KEYS:
            dy, dx = _PAN_KEYS[key]
            wy, wx = self.viewport.window
            self.pan(dy * wy / 4, dx * wx / 4)
        elif key in _STEP_KEYS:
            self.step(_STEP_KEYS[key])
        elif key in ("Home", "End"):
            self.show_slice(0 if key == "Home" else self.tomo.shape[0] - 1)
        elif key in ("+", "="):
            self.zoom_in()
        elif key == "-":
            self.zoom_out()
        elif key == "0":
            self.fit()
        else:
            return False
        return True

    def zoom_in(self, px: float | None = None, py: float | None = None) -> None:
        """Zoom in one level, centred on canvas point (px, py), else on the cursor."""
        self._zoom_to(self.zoom + 1, px, py)

    def zoom_out(self, px: float | None = None, py: float | None = None) -> None:
        """Zoom out one level (not beyond the whole slice)."""
        self._zoom_to(self.zoom - 1, px, py)

    def fit(self) -> None:
        """Show the whole slice."""
        _, ny, nx = self.tomo.shape
        with self.hold_trait_notifications():
            self.zoom, self.centre = 0, (ny / 2, nx / 2)

    def pan(self, dy: float, dx: float) -> None:
        """Move the view by (`dy`, `dx`) voxels (clamped to the slice)."""
        view = self.viewport
        wy, wx = view.window
        self.centre = (view.y0 + wy / 2 + dy, view.x0 + wx / 2 + dx)

    def redraw(self, *, force: bool = False) -> None:
        """Draw the slice if the slice, view or contrast changed (or `force`), then the overlays."""
        view = self.viewport
        key = (self.z, view, *self.contrast)
        fresh = key != self._image_key
        with hold_canvas():
            if fresh:
                img8 = render_plane(self.tomo.data[self.z], view, *self.contrast)
                self._image = (encode_png(img8), img8)
                self._image_key = key
                self.n_encoded += 1
            if (fresh or force) and self._image is not None:
                draw_png(self.canvas[0], *self._image)
                self.scale_bar = draw_scale_bar(self.canvas[0], self.tomo.apix,
                                                view.pixels_per_voxel, view.width, view.height)
            if force or self._overlay_key != key[:2]:
                self._overlay_key = key[:2]
                for callback in self._redraw_callbacks:
                    callback()

    # -- callback registrars -------------------------------------------------------------------
    def on_redraw(self, callback: Callable[[], Any]) -> Callable[[], Any]:
        """Call `callback()` after the slice or view changes (to redraw overlays); returns it."""
        self._redraw_callbacks.append(callback)
        return callback

    def on_hover(self, callback: Callable[[tuple | None], Any]) -> Callable[[tuple | None], Any]:
        """Call `callback(voxel)` when the mouse moves (voxel ``(z, y, x)`` or None); returns it."""
        self._hover_callbacks.append(callback)
        return callback

    # -- internals -----------------------------------------------------------------------------
    def _zoom_to(self, level: int, px: float | None, py: float | None) -> None:
        level = int(np.clip(level, 0, len(zoom_levels(self.base)) - 1))
        if px is not None and py is not None:
            y, x = canvas_to_voxel(px, py, self.viewport)
            centre = (y + 0.5, x + 0.5)
        elif self.cursor:
            centre = (self.cursor[1] + 0.5, self.cursor[2] + 0.5)
        else:
            view = self.viewport
            centre = (view.y0 + view.window[0] / 2, view.x0 + view.window[1] / 2)
        with self.hold_trait_notifications():
            self.zoom, self.centre = level, centre
