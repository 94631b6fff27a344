"""MaskPainter: paint the feature's mask in each positive tile of a training set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import ipywidgets as widgets
import numpy as np
import traitlets
from ipycanvas import MultiCanvas, hold_canvas
from scipy.ndimage import binary_fill_holes

from tomowidgets.widgets._contrast import ContrastControl
from tomowidgets.widgets._display import (
    OUTLINE,
    burn_box,
    draw_png,
    encode_png,
    magnify,
    mask_panels,
    pin_size,
    sample_range,
    to_uint8,
)
from tomowidgets.widgets._geometry import paint_segment, panel_point
from tomowidgets.widgets._history import MaskHistory
from tomowidgets.widgets._status import StatusLine

if TYPE_CHECKING:
    import os

    from tomowidgets.io import Tomogram
    from tomowidgets.trainset import TrainingSet
    from tomowidgets.widgets.tile_selector import TileSelector

__all__ = ["MaskPainter"]

GAP = 8  # canvas pixels between the two panels
_OVERLAY = (255, 140, 0)  # RGB of painted pixels over the image; their opacity is a control
#: Shown under the controls (click the canvas first, so that it has the keyboard).
SHORTCUTS = ("keys (click the canvas first): b brush · e eraser · [ ] smaller / larger brush · "
             "ctrl+z undo · ctrl+shift+z or ctrl+y redo · f fill holes · ← → previous / next tile · "
             "+ − zoom")
ZOOMS = range(2, 13)  # canvas pixels per tile pixel the zoom buttons step through
CONTEXT = 3  # the context view shows this many tile widths around the tile


class MaskPainter(widgets.VBox):
    """Paint the mask of each positive tile of a :class:`~tomowidgets.TrainingSet`.

    The canvas shows the tile enlarged `zoom` times twice: the image with the mask over it (left)
    and the mask alone (right); paint on either. Beside it, when the tomogram is known, a view of
    the slice around the tile (three tile widths, the tile outlined) shows what the tile is part
    of. The contrast is the tile's own 1st-99th percentile until the contrast slider is moved; then
    it stays for every tile ("auto" goes back). ``+``/``-`` (or the buttons) zoom.

    Mouse down/move/up are the :meth:`press`, :meth:`drag` and :meth:`release` gestures: while
    dragging only vector strokes are sent to the browser; on release the stroke is committed with
    ``trainset.replace_mask`` (one undo step), the exact mask is redrawn, and the set is saved to
    `path` so that a kernel crash loses nothing.

    A press that scrolls the notebook (ipycanvas focuses a partly hidden canvas before it reads the
    press) paints nothing and asks for another press: the stroke would start where nobody aimed.

    A new positive from the TileSelector holds a placeholder disk: the first brush stroke replaces
    it (the stroke becomes the mask), while the eraser edits the disk itself.

    A positive tile must keep at least one painted pixel: a stroke or :meth:`clear` that would
    empty it is refused (with a message); :meth:`convert_to_negative` turns the tile into a
    negative instead (this needs the tomogram, from `tomo` or :meth:`follow`).

    Parameters
    ----------
    trainset : TrainingSet
        Edited in place (through ``replace_mask``).
    path : str or PathLike, optional
        Autosave file (``*.tiles.npz``), written after every committed edit.
    zoom : int, default 5
        Canvas pixels per tile pixel (2-12; :meth:`set_zoom`); at 5, a 64-pixel tile's two panels
        and the view around it fit a 1280-pixel-wide window.
    radius : float, default 3.0
        Brush radius in tile pixels.
    tomo : Tomogram, optional
        The tomogram the tiles come from; needed only by :meth:`convert_to_negative`.

    Attributes
    ----------
    index : int or None
        Index in the set of the tile on show (None when the set has no positive tile).
    tool : {'brush', 'eraser'}
        What strokes do.
    radius : float
        Brush radius in tile pixels.
    opacity : float
        Opacity of the mask over the image (0-1; the slider), so that the structure being traced
        stays visible under it.
    contrast : tuple of 2 float or None
        Values shown black and white; None (the default, and after "auto") for each tile's own
        1st-99th percentile.
    context : ipywidgets.Image
        The slice around the tile (empty while the tomogram is unknown).
    history : MaskHistory
        Undo/redo stacks.
    """

    index = traitlets.Int(None, allow_none=True)
    tool = traitlets.Enum(("brush", "eraser"), default_value="brush")
    radius = traitlets.Float(3.0, min=0.0)
    opacity = traitlets.Float(0.45, min=0.0, max=1.0)

    def __init__(self, trainset: TrainingSet, *, path: str | os.PathLike | None = None, zoom: int = 5,
                 radius: float = 3.0, tomo: Tomogram | None = None) -> None:
        super().__init__()
        self.trainset, self.tomo, self.zoom = trainset, tomo, int(zoom)
        self.path = None if path is None else Path(path)
        self.history = MaskHistory()
        self.radius = radius
        self.contrast: tuple[float, float] | None = None
        self._auto_levels = False
        self._stroke: dict[str, Any] | None = None
        self._pointer: tuple[float, float] | None = None
        self._key: tuple | None = None
        self._change_callbacks: list[Callable[[str, int | None], Any]] = []
        size = trainset.tile * self.zoom

        self.status = StatusLine()
        guard = self.status.guard
        self.canvas = MultiCanvas(3, width=2 * size + GAP, height=size)   # image, mask, brush
        pin_size(self.canvas, 2 * size + GAP, size)
        self.chooser = widgets.Dropdown(description="tile", options=[("(none)", None)], value=None)
        self.tool_buttons = widgets.ToggleButtons(options=["brush", "eraser"], value="brush",
                                                  style={"button_width": "64px"})
        narrow = {"layout": widgets.Layout(width="280px")}
        self.radius_slider = widgets.FloatSlider(value=radius, min=0.5, max=16, step=0.5,
                                                 description="radius", **narrow)
        self.opacity_slider = widgets.FloatSlider(value=self.opacity, min=0.0, max=1.0, step=0.05,
                                                  description="opacity", **narrow)
        self.contrast_control = ContrastControl((0.0, 1.0), (0.0, 1.0), on_auto=guard(self.auto_contrast),
                                                tooltip="each tile's 1st-99th percentile")
        self.contrast_control.observe(guard(self._contrast_moved), "value")
        self.context = widgets.Image(format="png")
        widgets.link((self.tool_buttons, "value"), (self, "tool"))
        widgets.link((self.radius_slider, "value"), (self, "radius"))
        widgets.link((self.opacity_slider, "value"), (self, "opacity"))
        self.observe(guard(lambda _: self._draw_mask() if self.index is not None else None), "opacity")
        buttons = []
        for text, action, tip in (("◀", self.prev, "previous positive tile"),
                                  ("▶", self.next, "next positive tile"),
                                  ("undo", self.undo, "undo the last stroke"),
                                  ("redo", self.redo, "redo"),
                                  ("fill", self.fill, "fill enclosed holes"),
                                  ("clear", self.clear, "clear the mask (refused: see the message)"),
                                  ("→ negative", self.convert_to_negative,
                                   "keep this tile as a negative example (no feature)"),
                                  ("−", self.zoom_out, "zoom out"), ("+", self.zoom_in, "zoom in")):
            button = widgets.Button(description=text, tooltip=tip,
                                    layout=widgets.Layout(width="auto" if len(text) > 2 else "40px"))
            button.on_click(guard(lambda _, act=action: act()))
            buttons.append(button)
        self.info = widgets.HTML()
        self.canvas.on_mouse_down(guard(self._mouse_down))
        self.canvas.on_mouse_move(guard(self._mouse_move))
        self.canvas.on_mouse_up(guard(self.release))
        self.canvas.on_mouse_out(guard(self._mouse_out))
        self.canvas.on_key_down(guard(self.key))
        self.canvas.on_client_ready(guard(self.redraw))
        self._syncing = False
        self.chooser.observe(guard(self._chosen), "value")
        around = widgets.VBox([widgets.HTML("<small>around it</small>"), self.context],
                              layout=widgets.Layout(min_width=f"{CONTEXT * trainset.tile}px"))
        self.children = [
            widgets.HBox([buttons[0], self.chooser, buttons[1], self.info]),
            widgets.HBox([self.tool_buttons, self.radius_slider, self.opacity_slider]),
            widgets.HBox(buttons[2:]), self.contrast_control,
            widgets.HTML(f"<small>{SHORTCUTS}</small>"),
            widgets.HBox([self.canvas, around], layout=widgets.Layout(align_items="flex-start")),
            self.status]
        self.refresh()

    # -- tile choice ---------------------------------------------------------------------------
    @property
    def positives(self) -> list[int]:
        """Indices of the positive tiles in the set."""
        return [i for i, kind in enumerate(self.trainset.kinds) if kind == "positive"]

    def show_tile(self, index: int) -> None:
        """Show positive tile `index` of the set.

        Raises
        ------
        ValueError
            If tile `index` is not a positive tile of the set.
        """
        if index not in self.positives:
            raise ValueError(f"`index` must be a positive tile, one of {self.positives}, got {index!r}")
        self.release()
        self.index, self._key = int(index), self._key_of(int(index))
        self._set_chooser(self.index)
        self.redraw()

    def next(self) -> None:
        """Show the next positive tile (wrapping around)."""
        self._move(1)

    def prev(self) -> None:
        """Show the previous positive tile (wrapping around)."""
        self._move(-1)

    def refresh(self, select: int | None = None) -> None:
        """Re-read the set's tiles (after another widget changed it) and show `select` if given.

        Otherwise the tile on show stays on show, wherever its index moved; if it is gone, the
        first positive tile is shown.
        """
        positives = self.positives
        if select is None or select not in positives:
            select = self._find(self._key) if self._key is not None else None
        if select is None and positives:
            select = positives[0]
        self.release()
        self.index = select
        self._key = None if select is None else self._key_of(select)
        self._set_chooser(select, [(self._label(i), i) for i in positives] or [("(none)", None)])
        self.redraw()

    def follow(self, selector: TileSelector) -> None:
        """Stay in step with a :class:`TileSelector` editing the same set.

        A positive tile added there is shown here at once, removals are followed, and a tile
        converted here is redrawn there. The selector's tomogram becomes this painter's `tomo`.
        """
        if selector.trainset is not self.trainset:
            raise ValueError("the selector edits another TrainingSet; pass the same set to both")
        if self.tomo is None:
            self.tomo = selector.tomo
            self.redraw()  # the view around the tile needs the tomogram

        @selector.on_change
        def _followed(action: str, index: int | None) -> None:
            self.refresh(select=index if action == "added" else None)

        self.on_change(lambda action, index: selector.refresh())

    # -- painting gestures ---------------------------------------------------------------------
    def press(self, px: float, py: float) -> bool:
        """Mouse down at canvas point ``(px, py)``: start a stroke; returns whether one started."""
        self._check_current()
        if self.index is None:
            self.status.error("no positive tile to paint: add one with a TileSelector first")
            return False
        hit = panel_point(px, py, self.zoom, self.trainset.tile, GAP)
        if hit is None:
            return False
        panel, point = hit
        left = panel * (self.trainset.tile * self.zoom + GAP)
        value = self.tool == "brush"
        start = self.trainset.mask(self.index)
        if value and not self.trainset[self.index].painted:  # the first stroke replaces the placeholder
            start = np.zeros_like(start)
            self.canvas[1].clear()
        mask = paint_segment(start, point, point, self.radius, value)
        self._stroke = {"left": left, "last": point, "mask": mask, "value": value}
        self._draw_segment(point, point)
        return True

    def drag(self, px: float, py: float) -> None:
        """Mouse move to ``(px, py)``: extend the stroke (ignored when no stroke is under way)."""
        stroke = self._stroke
        if stroke is None:
            return
        point = (py / self.zoom, (px - stroke["left"]) / self.zoom)
        stroke["mask"] = paint_segment(stroke["mask"], stroke["last"], point, self.radius,
                                       stroke["value"])
        self._draw_segment(stroke["last"], point)
        stroke["last"] = point

    def release(self, px: float | None = None, py: float | None = None) -> bool:
        """Mouse up (or out): commit the stroke to the set, record it for undo, autosave.

        Returns True if the mask changed. A stroke that would leave the tile empty is refused: the
        mask stays as it was and the status line says what to do.
        """
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return False
        if px is not None and py is not None:
            point = (py / self.zoom, (px - stroke["left"]) / self.zoom)
            stroke["mask"] = paint_segment(stroke["mask"], stroke["last"], point, self.radius,
                                           stroke["value"])
        return self._commit(stroke["mask"], "stroke")

    def key(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> bool:
        """A key press (``KeyboardEvent.key``): ``b``/``e`` brush or eraser, ``[``/``]`` a smaller
        or larger brush, ctrl+z undo, ctrl+shift+z or ctrl+y redo, ``f`` fill, ←/→ the previous or
        next tile, ``+``/``-`` zoom; returns True if the key was used."""
        command = ctrl or meta
        if command and key.lower() == "z":
            self.redo() if shift else self.undo()
        elif command and key == "y":
            self.redo()
        elif command:
            return False
        elif key in ("b", "e"):
            self.tool = "brush" if key == "b" else "eraser"
        elif key in ("[", "]"):
            step = -0.5 if key == "[" else 0.5
            self.radius = float(np.clip(self.radius + step, self.radius_slider.min, self.radius_slider.max))
        elif key == "f":
            self.fill()
        elif key in ("ArrowLeft", "ArrowRight"):
            self._move(-1 if key == "ArrowLeft" else 1)
        elif key in ("+", "=", "-"):
            self.zoom_out() if key == "-" else self.zoom_in()
        else:
            return False
        return True

    # -- mask actions --------------------------------------------------------------------------
    def fill(self) -> bool:
        """Fill the holes enclosed by the painted pixels; returns True if the mask changed."""
        if self._require_tile():
            assert self.index is not None  # _require_tile() returned just that
            return self._commit(binary_fill_holes(self.trainset.mask(self.index)), "fill")
        return False

    def clear(self) -> bool:
        """Refused: a positive tile needs painted pixels. Returns False and says what to do instead."""
        if self._require_tile():
            self.status.error(f"tile {self.index} is a positive and needs at least one painted "
                              "pixel, so it cannot be cleared; erase parts of it, or press "
                              "'→ negative' to keep it as an example without the feature")
        return False

    def undo(self) -> bool:
        """Revert the last committed edit (switching to its tile); returns False if none is left."""
        return self._replay(self.history.undo(), undone=True)

    def redo(self) -> bool:
        """Apply the last undone edit again; returns False if none is left."""
        return self._replay(self.history.redo(), undone=False)

    def convert_to_negative(self) -> int | None:
        """Turn the tile on show into a negative (its mask is dropped); returns its new index.

        Raises
        ------
        ValueError
            If no tomogram is known (pass ``tomo=`` or call :meth:`follow`) or the tile was cut
            from another tomogram.
        """
        if not self._require_tile():
            return None
        assert self.index is not None  # _require_tile() returned just that
        if self.tomo is None:
            raise ValueError("converting needs the tile's tomogram: create the painter with "
                             "MaskPainter(trainset, tomo=tomo) or call painter.follow(selector)")
        record = self.trainset[self.index]
        source = None if self.tomo.path is None else str(self.tomo.path)
        if record.source != source:
            raise ValueError(f"tile {self.index} comes from {record.source!r}, not from the "
                             f"painter's tomogram {source!r}; pass that tomogram as `tomo`")
        old = self.index
        self.trainset.remove(old)
        try:
            new = self.trainset.add_negative(self.tomo, *record.centre)
        except ValueError:
            self.trainset.add_positive(self.tomo, *record.centre, record.mask)
            raise
        self._key = None
        self.refresh()
        self.status.info(f"tile {old} is now negative tile {new}{self._autosave()}")
        for callback in self._change_callbacks:
            callback("converted", new)
        return new

    def set_zoom(self, zoom: int) -> None:
        """Draw each tile pixel as `zoom` × `zoom` canvas pixels (2-12); a stroke under way ends.

        Raises
        ------
        ValueError
            If `zoom` is not an integer in 2..12.
        """
        if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or zoom not in ZOOMS:
            raise ValueError(f"`zoom` must be an integer from {ZOOMS[0]} to {ZOOMS[-1]}, got {zoom!r}")
        self.release()
        self.zoom = int(zoom)
        self._pointer = None
        size = self.trainset.tile * self.zoom
        self.canvas.width, self.canvas.height = 2 * size + GAP, size
        pin_size(self.canvas, 2 * size + GAP, size)
        self.redraw()

    def zoom_in(self) -> None:
        """One zoom step larger (up to 12)."""
        self.set_zoom(min(self.zoom + 1, ZOOMS[-1]))

    def zoom_out(self) -> None:
        """One zoom step smaller (down to 2)."""
        self.set_zoom(max(self.zoom - 1, ZOOMS[0]))

    def set_contrast(self, lo: float, hi: float) -> None:
        """Show `lo` as black and `hi` as white in every tile, until :meth:`auto_contrast`.

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
        self._show_levels(lo, hi)
        self.redraw()

    def auto_contrast(self) -> None:
        """Give each tile its own contrast again (its 1st-99th percentile)."""
        self.contrast = None
        self.redraw()

    def on_change(self, callback: Callable[[str, int | None], Any]) -> Callable[[str, int | None], Any]:
        """Call ``callback(action, index)`` after a tile's kind changes here (``'converted'``) or its
        placeholder is first painted, or restored by an undo (``'painted'``); returns `callback`."""
        self._change_callbacks.append(callback)
        return callback

    # -- drawing -------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the tile image and its exact mask (done when the tile changes and after each edit)."""
        size = self.trainset.tile * self.zoom
        with hold_canvas():
            self.canvas[0].clear()
            if self.index is None:
                self.canvas[1].clear()
                self.info.value = "no positive tile yet"
                return
            image = self.trainset.image(self.index)
            lo, hi = self._levels(image)
            img8 = magnify(to_uint8(image, lo, hi), self.zoom)
            draw_png(self.canvas[0], encode_png(img8), img8)
            self.canvas[0].fill_style = "black"
            self.canvas[0].fill_rect(size + GAP, 0, size, size)
            self._draw_mask()
        self._draw_context(lo, hi)

    def _levels(self, image: np.ndarray) -> tuple[float, float]:
        """The contrast for `image`: the fixed one, else the tile's own (shown on the slider)."""
        if self.contrast is not None:
            return self.contrast
        lo, hi, vmin, vmax = sample_range(image)
        self.contrast_control.widen(vmin, vmax)
        self._show_levels(lo, hi)
        return lo, hi

    def _show_levels(self, lo: float, hi: float) -> None:
        self._auto_levels = True  # the painter's own change, not a user's choice
        try:
            self.contrast_control.value = (lo, hi)
        finally:
            self._auto_levels = False

    def _contrast_moved(self, change: dict) -> None:
        if not self._auto_levels:
            self.set_contrast(*change["new"])

    def _draw_context(self, lo: float, hi: float) -> None:
        """The slice around the tile on show, the tile outlined; blank without its tomogram."""
        tomo, index = self.tomo, self.index
        source = None if tomo is None or tomo.path is None else str(tomo.path)
        if tomo is None or index is None or self.trainset[index].source != source:
            self.context.value = b""
            return
        tile = self.trainset.tile
        z, y, x = (int(c) for c in self.trainset.centres[index])
        half = CONTEXT * tile // 2
        _, ny, nx = tomo.shape
        y0, x0 = max(0, y - half), max(0, x - half)
        plane = np.asarray(tomo.data[z, y0:min(ny, y + half), x0:min(nx, x + half)], np.float32)
        top, left = y - tile // 2 - y0, x - tile // 2 - x0
        self.context.value = encode_png(burn_box(to_uint8(plane, lo, hi), top, left, tile))
        pin_size(self.context, plane.shape[1], plane.shape[0])  # never squeezed by the row

    def _draw_mask(self) -> None:
        # cast: callers draw only while a tile is on show (mypy cannot follow that)
        mask = self.trainset.mask(cast(int, self.index))
        rgba = mask_panels(mask, self.zoom, GAP, (*_OVERLAY, round(255 * self.opacity)))
        with hold_canvas():
            self.canvas[1].clear()
            draw_png(self.canvas[1], encode_png(rgba), rgba)
        z, y, x = self.trainset.centres[self.index]
        if self.trainset[cast(int, self.index)].painted:
            self.info.value = f"z {z}, y {y}, x {x} · {int(mask.sum())} px painted"
        else:
            self.info.value = (f"z {z}, y {y}, x {x} · <b>placeholder, not painted yet</b>: your "
                               "first brush stroke replaces it")

    def _draw_cursor(self, px: float, py: float) -> None:
        """The brush's outline under the pointer, on both panels (layer 2), while not painting."""
        layer, size = self.canvas[2], self.trainset.tile * self.zoom
        with hold_canvas():
            layer.clear()
            hit = None if self.index is None else panel_point(px, py, self.zoom, self.trainset.tile, GAP)
            if hit is None:
                return
            row, col = hit[1]
            for left in (0, size + GAP):
                for colour, width in OUTLINE:
                    layer.stroke_style, layer.line_width = colour, width
                    layer.stroke_circle(left + col * self.zoom, row * self.zoom,
                                        max(self.radius, 0.5) * self.zoom)

    @property
    def _stroke_colour(self) -> str:
        r, g, b = _OVERLAY
        return f"rgba({r}, {g}, {b}, {self.opacity:.3f})"

    def _draw_segment(self, start: tuple[float, float], stop: tuple[float, float]) -> None:
        layer, z, size = self.canvas[1], self.zoom, self.trainset.tile * self.zoom
        erase = not cast("dict[str, Any]", self._stroke)["value"]  # cast: called during a stroke only
        with hold_canvas():
            layer.global_composite_operation = "destination-out" if erase else "source-over"
            layer.line_cap = "round"
            layer.line_width = max(2 * self.radius, 1) * z
            for left, colour in ((0, self._stroke_colour), (size + GAP, "white")):
                layer.save()
                layer.begin_path()
                layer.rect(left, 0, size, size)
                layer.clip()
                layer.stroke_style = layer.fill_style = "black" if erase else colour
                layer.stroke_line(left + start[1] * z, start[0] * z, left + stop[1] * z, stop[0] * z)
                if start == stop:   # a zero-length line draws nothing: a single dab must show at once
                    layer.fill_circle(left + stop[1] * z, stop[0] * z, max(self.radius, 0.5) * z)
                layer.restore()
            layer.global_composite_operation = "source-over"

    # -- internals -----------------------------------------------------------------------------
    def _mouse_down(self, px: float, py: float) -> None:
        # ipycanvas focuses the canvas before it reads the press's position: when the canvas was
        # partly out of view, the notebook scrolls and the press arrives away from the last mouse
        # move (none can come between them). A stroke from there would paint where nobody aimed.
        pointer = self._pointer
        if pointer is not None and max(abs(px - pointer[0]), abs(py - pointer[1])) > 1.0:
            self._pointer = None
            self.status.error("the notebook scrolled to show the canvas as you pressed, so nothing "
                              "was painted; press again where you aim")
            return
        self.press(px, py)

    def _mouse_move(self, px: float, py: float) -> None:
        self._pointer = (float(px), float(py))
        self._draw_cursor(px, py)
        self.drag(px, py)

    def _mouse_out(self, px: float, py: float) -> None:
        self._pointer = None
        self.canvas[2].clear()
        self.release(px, py)

    def _commit(self, mask: np.ndarray, what: str) -> bool:
        # casts: a commit (fill, end of a stroke) happens only while a tile is on show, so `index`
        # and `_key` are set (mypy cannot follow that)
        before = self.trainset.mask(cast(int, self.index))
        was_painted = self.trainset[cast(int, self.index)].painted
        if np.array_equal(before, mask):
            self._draw_mask()
            self.status.info(f"{what}: the mask did not change")
            return False
        try:
            self.trainset.replace_mask(cast(int, self.index), mask)
        except ValueError as err:
            self._draw_mask()
            self.status.error(f"{what} refused, the mask is unchanged: {err}; or press "
                              "'→ negative' to keep the tile as an example without the feature")
            return False
        self.history.record(cast(tuple, self._key), before, mask, before_painted=was_painted)
        if not was_painted:
            self._painted_changed()
        self._draw_mask()
        self.status.info(f"{what} on tile {self.index}: {int(np.count_nonzero(mask))} px painted"
                         f"{self._autosave()}")
        return True

    def _replay(self, edit: Any, *, undone: bool) -> bool:
        if edit is None:
            self.status.info(f"nothing to {'undo' if undone else 'redo'}")
            return False
        index = self._find(edit.key)
        if index is None:
            self.history.cancel(edit, undone=undone)
            self.status.error(f"the tile of that edit is no longer a positive tile of the set; "
                              f"nothing to {'undo' if undone else 'redo'}")
            return False
        if index != self.index:
            self.show_tile(index)
        self.trainset.replace_mask(index, edit.before if undone else edit.after,
                                   painted=edit.before_painted if undone else True)
        if not edit.before_painted:
            self._painted_changed()
        self._draw_mask()
        self.status.info(f"{'undo' if undone else 'redo'} on tile {index}{self._autosave()}")
        return True

    def _painted_changed(self) -> None:
        """The tile on show went from placeholder to painted or back: relabel it here and tell
        the followers (the selector draws placeholders dashed)."""
        self._set_chooser(self.index, [(self._label(i), i) for i in self.positives])
        for callback in self._change_callbacks:
            callback("painted", self.index)

    def _autosave(self) -> str:
        if self.path is None:
            return ""
        try:
            self.trainset.save(self.path)
        except OSError as err:
            return f" — NOT SAVED to {self.path}: {err}"
        return f"; saved to {self.path.name}"

    def _require_tile(self) -> bool:
        self._check_current()
        if self.index is None:
            self.status.error("no positive tile: add one with a TileSelector first")
        return self.index is not None

    def _check_current(self) -> None:
        """Re-read the set if the tile on show moved (another widget removed tiles)."""
        if self.index is None or self._key is None or self.index >= len(self.trainset) \
                or self._key_of(self.index) != self._key:
            self.refresh()

    def _set_chooser(self, value: int | None, options: list | None = None) -> None:
        self._syncing = True  # the widget's own changes are not user choices
        try:
            if options is not None:
                self.chooser.options = options
            self.chooser.value = value
        finally:
            self._syncing = False

    def _chosen(self, change: dict) -> None:
        if not self._syncing and change["new"] not in (None, self.index):
            self.show_tile(change["new"])

    def _move(self, delta: int) -> None:
        positives = self.positives
        if not positives:
            self.status.error("no positive tile: add one with a TileSelector first")
            return
        here = positives.index(self.index) if self.index in positives else -delta
        self.show_tile(positives[(here + delta) % len(positives)])

    def _key_of(self, index: int) -> tuple:
        record = self.trainset[index]
        return (record.kind, record.centre, record.source)

    def _find(self, key: tuple | None) -> int | None:
        for i in range(len(self.trainset)):
            if self._key_of(i) == key:
                return i
        return None

    def _label(self, index: int) -> str:
        z, y, x = self.trainset.centres[index]
        todo = "" if self.trainset[index].painted else "  (to paint)"
        return f"#{index}  z {z} y {y} x {x}{todo}"
