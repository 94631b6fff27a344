"""TileSelector: click positive and negative tiles of a training set on tomogram slices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import traitlets
from ipycanvas import hold_canvas

from tomowidgets.widgets._display import OUTLINE
from tomowidgets.widgets._geometry import box_rect, find_tile, initial_mask
from tomowidgets.widgets.slice_browser import SliceBrowser

if TYPE_CHECKING:
    import os

    import pandas as pd

    from tomowidgets.io import Tomogram
    from tomowidgets.trainset import TileRecord, TrainingSet

__all__ = ["TileSelector"]

#: Okabe-Ito sky blue and orange, told apart with any colour vision; boxes are also labelled + / −
COLOURS = {"positive": "#56b4e9", "negative": "#e69f00"}
SIGNS = {"positive": "+", "negative": "−"}
SUGGESTION_COLOUR = "#ffdc00"
#: Shown under the buttons (click the slice first, so that it has the keyboard).
SHORTCUTS = ("keys (click the slice first): p / n positive / negative · u or ctrl+z undo · r redo · "
             "s next suggestion · ↑ ↓ or wheel: slice · + / − zoom at the cursor · 0 whole slice · "
             "shift+arrows pan")


class TileSelector(widgets.VBox):
    """Click tiles of a :class:`~tomowidgets.TrainingSet` on the slices of a tomogram.

    A click on the slice adds a ``tile × tile`` box centred at the clicked voxel, positive or
    negative after the mode toggle (keys ``p`` / ``n``), drawn blue and labelled ``+3`` or drawn
    orange and labelled ``−4``. The tile is the one under the pointer (and the dashed preview)
    when the button went down, even when that press scrolls the notebook to show the canvas. A
    click inside a box of the current slice removes that tile; ``undo()`` (key ``u``) reverts the
    last add or removal, masks included, and ``redo()`` (key ``r``) applies it again. Undo never
    throws away a painted mask: it stops at a tile painted since it was added (click the tile to
    remove it). Every change goes straight into `trainset` and, when `path` is given, the set is
    saved there at once. Errors (e.g. a tile running off the edge) are shown in the status line.

    A new positive tile needs a mask (the set refuses empty ones): it starts with a disk of
    `initial_radius` pixels at its centre, a placeholder that the first brush stroke in the
    :class:`~tomowidgets.widgets.MaskPainter` replaces. Until then the tile is drawn dashed, counted
    as "to paint" and left out of training (``trainset.unpainted``).

    After a first training, :meth:`suggest` takes the tiles the network is least sure about
    (:func:`tomowidgets.trainset.suggest.suggest_tiles`); "next suggestion" (key ``s``) shows them one after
    the other as a dashed yellow box, to click as positive or negative like any tile.

    Parameters
    ----------
    tomo : Tomogram
        The preprocessed tomogram the tiles are cut from (voxel size must match the set's).
    trainset : TrainingSet
        Edited in place.
    path : str or PathLike, optional
        Autosave file (``*.tiles.npz``), written after every change.
    mode : {'positive', 'negative'}, default 'positive'
        Kind of the tiles the next clicks add.
    initial_radius : float, optional
        Radius in pixels of a new positive's placeholder mask; default ``tile // 8``.
    **browser_options
        Passed to :class:`SliceBrowser` (``z``, ``contrast``, ``max_size``, ``sections``...).

    Attributes
    ----------
    browser : SliceBrowser
        The slice view; its ``status`` line is shared.
    mode : str
        ``'positive'`` or ``'negative'`` (linked to the toggle buttons).
    suggestions : pandas.DataFrame or None
        Suggested tiles (``z, y, x, uncertainty``), most uncertain first.
    suggestion : int or None
        Row of `suggestions` shown now.
    """

    mode = traitlets.Enum(("positive", "negative"), default_value="positive")

    def __init__(self, tomo: Tomogram, trainset: TrainingSet, *, path: str | os.PathLike | None = None,
                 mode: str = "positive", initial_radius: float | None = None,
                 **browser_options: Any) -> None:
        super().__init__()
        self.tomo = tomo
        self.trainset = trainset
        self.path = None if path is None else Path(path)
        self.initial_radius = initial_radius
        self.browser = SliceBrowser(tomo, **browser_options)
        self.status = self.browser.status
        self._history: list[tuple[str, TileRecord]] = []
        self._redo: list[tuple[str, TileRecord]] = []
        self._change_callbacks: list[Callable[[str, int | None], Any]] = []
        self.suggestions: pd.DataFrame | None = None
        self.suggestion: int | None = None

        self.mode_buttons = widgets.ToggleButtons(options=["positive", "negative"], value=mode,
                                                  tooltips=["click adds positive tiles (p)",
                                                            "click adds negative tiles (n)"])
        self.mode = mode
        widgets.link((self.mode_buttons, "value"), (self, "mode"))
        self.counts = widgets.HTML()
        undo = widgets.Button(description="undo", tooltip="undo the last add or removal (u)",
                              layout=widgets.Layout(width="64px"))
        undo.on_click(self.status.guard(lambda _: self.undo()))
        redo = widgets.Button(description="redo", tooltip="redo what undo reverted (r)",
                              layout=widgets.Layout(width="64px"))
        redo.on_click(self.status.guard(lambda _: self.redo()))
        self.next_button = widgets.Button(description="next suggestion", disabled=True,
                                          tooltip="show the next tile the network is unsure about (s)")
        self.next_button.on_click(self.status.guard(lambda _: self.next_suggestion()))

        canvas = self.browser.canvas
        canvas.on_mouse_down(self.status.guard(self._mouse_down))
        canvas.on_key_down(self.status.guard(self.key))
        self.browser.on_redraw(self.status.guard(self.draw_boxes))
        self.browser.on_hover(self.status.guard(self._preview))
        keys = widgets.HTML(f"<small>{SHORTCUTS}</small>")
        self.children = [widgets.HBox([self.mode_buttons, undo, redo, self.next_button, self.counts]),
                         keys, self.browser]
        self.draw_boxes()
        self._show_counts()

    # -- public gestures -----------------------------------------------------------------------
    def click(self, px: float, py: float) -> str | None:
        """A click at canvas point ``(px, py)``: remove the tile there, or add one centred there
        (at the suggested tile's centre when the click is inside the shown suggestion).

        Never raises: a refused tile (off the edge, wrong voxel size...) is reported in the
        status line.

        Returns
        -------
        {'added', 'removed'} or None
            What happened; None when nothing changed.
        """
        voxel = self.browser.canvas_to_voxel(px, py)
        if voxel is None:
            self.status.error("that point is off the slice; click on the image")
            return None
        z, y, x = voxel
        self._redo.clear()      # a new change: what was undone before can no longer be redone
        index = find_tile(self.trainset.centres, z, y, x, self.trainset.tile, self._mine())
        try:
            if index is not None:
                record = self.trainset.remove(index)
                self._history.append(("removed", record))
                _, ry, rx = record.centre
                action, done = "removed", f"removed {record.kind} tile {index} at z={z}, y={ry}, x={rx}"
            else:
                y, x = self._snap_to_suggestion(z, y, x)
                index = self._add(self.mode, z, y, x, None)
                self._history.append(("added", self.trainset[index]))
                action, done = "added", f"added {self.mode} tile {index} at z={z}, y={y}, x={x}"
        except ValueError as err:
            self.status.error(err)
            return None
        self._changed(action, index, done)
        return action

    def key(self, key: str, shift: bool = False, ctrl: bool = False, meta: bool = False) -> bool:
        """Keys ``p``/``n`` choose the mode, ``u`` (or ctrl+z) undoes, ``r`` (or ctrl+shift+z,
        ctrl+y) redoes, ``s`` shows the next suggestion; returns True if used."""
        if key in ("p", "n"):
            self.mode = "positive" if key == "p" else "negative"
        elif key == "s" and self.suggestions is not None:
            self.next_suggestion()
        elif key == "r" or (key.lower() == "z" and shift and (ctrl or meta)) \
                or (key == "y" and (ctrl or meta)):
            self.redo()
        elif key == "u" or (key == "z" and (ctrl or meta)):
            self.undo()
        else:
            return False
        return True

    def undo(self) -> str | None:
        """Revert the last add or removal; returns what was undone, or None if nothing was.

        An undone removal adds the tile back (at the end of the set) with its mask. Undoing the
        addition of a tile whose mask has since been painted (in a MaskPainter) would throw that
        work away unasked, so undo stops there and says so: a click on the tile removes it (and
        that removal can be undone). :meth:`redo` brings back what undo reverted.
        """
        if not self._history:
            self.status.info("nothing to undo")
            return None
        action, record = self._history[-1]
        if action == "added":
            index = self._index_of(record)
            if index is None:
                self._history.pop()
                self.status.error("the tile added last is no longer in the set; nothing undone")
                return None
            current = self.trainset[index]
            if current.kind == "positive" and current.painted:
                self.status.error(f"undo stops at tile {index}: its mask was painted after it was "
                                  f"added ({int(current.mask.sum())} px); to remove it anyway, click "
                                  "inside its box (that removal can be undone)")
                return None
            self._history.pop()
            self.trainset.remove(index)
            self._redo.append(("added", current))
            self._changed("removed", index, f"undo: removed tile {index}")
        else:
            self._history.pop()
            index = self._restore(record)
            self._redo.append(("removed", self.trainset[index]))
            z, y, x = record.centre
            self._changed("added", index, f"undo: restored {record.kind} tile at z={z}, y={y}, x={x}")
        return action

    def redo(self) -> str | None:
        """Apply again what the last :meth:`undo` reverted (a tile comes back with its mask);
        returns the action redone (``'added'`` or ``'removed'``), or None if nothing was."""
        if not self._redo:
            self.status.info("nothing to redo")
            return None
        action, record = self._redo.pop()
        if action == "added":
            index = self._restore(record)
            self._history.append(("added", self.trainset[index]))
            z, y, x = record.centre
            self._changed("added", index, f"redo: added {record.kind} tile {index} at z={z}, y={y}, "
                                          f"x={x}")
        else:
            found = self._index_of(record)
            if found is None:
                self.status.error("the tile to remove again is no longer in the set; nothing redone")
                return None
            self._history.append(("removed", self.trainset.remove(found)))
            self._changed("removed", found, f"redo: removed tile {found}")
        return action

    def suggest(self, suggestions: pd.DataFrame) -> None:
        """Step through `suggestions` (from :func:`~tomowidgets.suggest_tiles`); shows the first.

        Raises
        ------
        ValueError
            If the table lacks ``z``, ``y``, ``x`` columns.
        """
        missing = {"z", "y", "x"} - set(getattr(suggestions, "columns", ()))
        if missing:
            raise ValueError(f"`suggestions` must be a table with z, y, x columns (from suggest_tiles), "
                             f"missing {sorted(missing)}")
        self.suggestions = suggestions.reset_index(drop=True)
        self.suggestion = None
        self.next_button.disabled = self.suggestions.empty
        if self.suggestions.empty:
            self.status.info("no suggestion: the network is sure everywhere at this threshold")
            return
        self.next_suggestion()

    def next_suggestion(self) -> tuple[int, int, int] | None:
        """Show the next suggested tile (after the last, the first again); returns its centre."""
        if self.suggestions is None or self.suggestions.empty:
            self.status.info("no suggestions: call suggest(suggest_tiles(scores)) after a first training")
            return None
        i = 0 if self.suggestion is None else (self.suggestion + 1) % len(self.suggestions)
        self.suggestion = i
        z, y, x = self._shown_suggestion()  # type: ignore[misc]
        self.browser.show_slice(z)
        self.draw_boxes()
        row = self.suggestions.iloc[i]
        unsure = f", uncertainty {float(row['uncertainty']):.2f}" if "uncertainty" in row else ""
        self.status.info(f"suggestion {i + 1}/{len(self.suggestions)} at z={z}, y={y}, x={x}{unsure}: "
                         "click inside it to add it (p/n sets positive or negative)")
        return z, y, x

    def draw_boxes(self) -> None:
        """Redraw the boxes of the current slice's tiles on the browser's overlay layer."""
        layer, view, tile = self.browser.overlay, self.browser.viewport, self.trainset.tile
        centres, mine = self.trainset.centres, self._mine()
        kinds, unpainted = self.trainset.kinds, set(self.trainset.unpainted)
        with hold_canvas():
            layer.clear()
            layer.line_width = 2
            for kind, waiting in (("negative", False), ("positive", False), ("positive", True)):
                rows = [i for i in np.flatnonzero(mine & (centres[:, 0] == self.browser.z))
                        if kinds[i] == kind and (i in unpainted) == waiting]
                if not rows:
                    continue
                rects = np.array([box_rect(centres[i, 1], centres[i, 2], tile, view) for i in rows])
                layer.stroke_style = COLOURS[kind]
                layer.set_line_dash([6, 4] if waiting else [])   # dashed: placeholder, to paint
                layer.stroke_rects(rects[:, 0], rects[:, 1], rects[:, 2], rects[:, 3])
                layer.set_line_dash([])
                layer.fill_style = COLOURS[kind]
                layer.font = "bold 13px sans-serif"
                for i, (px, py, _, _) in zip(rows, rects, strict=True):
                    label = f"{SIGNS[kind]}{i}" + (" to paint" if waiting else "")
                    layer.fill_text(label, px + 4, py + 15)
            shown = self._shown_suggestion()
            if shown is not None and shown[0] == self.browser.z:
                layer.stroke_style = SUGGESTION_COLOUR
                layer.set_line_dash([8, 6])
                layer.stroke_rect(*box_rect(shown[1], shown[2], tile, view))
                layer.set_line_dash([])

    # -- callback registrars -------------------------------------------------------------------
    def on_change(self, callback: Callable[[str, int | None], Any]) -> Callable[[str, int | None], Any]:
        """Call ``callback(action, index)`` after each change of the set; returns `callback`.

        `action` is ``'added'`` or ``'removed'`` and `index` the tile's index (before removal).
        """
        self._change_callbacks.append(callback)
        return callback

    def refresh(self) -> None:
        """Redraw the boxes and counts after the set was changed elsewhere (e.g. by a MaskPainter)."""
        self.draw_boxes()
        self._show_counts()

    # -- internals -----------------------------------------------------------------------------
    def _mouse_down(self, px: float, py: float) -> None:
        # a click where the user aimed, not where a focus scroll moved it (SliceBrowser.aimed_point)
        self.click(*self.browser.aimed_point(px, py))

    def _add(self, kind: str, z: int, y: int, x: int, mask: np.ndarray | None,
             painted: bool = True) -> int:
        if kind == "negative":
            return self.trainset.add_negative(self.tomo, z, y, x)
        if mask is None:  # a new positive: a placeholder, until painted in the MaskPainter
            mask, painted = initial_mask(self.trainset.tile, self.initial_radius), False
        return self.trainset.add_positive(self.tomo, z, y, x, mask, painted=painted)

    def _restore(self, record: TileRecord) -> int:
        """Add `record` back with its mask (and placeholder state); returns its index."""
        z, y, x = record.centre
        return self._add(record.kind, z, y, x, record.mask, record.painted)

    def _shown_suggestion(self) -> tuple[int, int, int] | None:
        """Centre ``(z, y, x)`` of the suggestion shown now, or None."""
        if self.suggestion is None or self.suggestions is None:
            return None
        row = self.suggestions.iloc[self.suggestion]
        return int(row["z"]), int(row["y"]), int(row["x"])

    def _snap_to_suggestion(self, z: int, y: int, x: int) -> tuple[int, int]:
        """The shown suggestion's centre if ``(z, y, x)`` lies inside its box, else ``(y, x)``."""
        shown, half = self._shown_suggestion(), self.trainset.tile / 2
        if shown is not None and shown[0] == z and abs(y - shown[1]) < half and abs(x - shown[2]) < half:
            return shown[1], shown[2]
        return y, x

    def _mine(self) -> np.ndarray:
        """Which tiles of the set come from this tomogram (same source path)."""
        source = None if self.tomo.path is None else str(self.tomo.path)
        return np.array([s == source for s in self.trainset.sources], bool)

    def _index_of(self, record: TileRecord) -> int | None:
        for i in range(len(self.trainset) - 1, -1, -1):
            r = self.trainset[i]
            if (r.kind, r.centre, r.source) == (record.kind, record.centre, record.source):
                return i
        return None

    def _changed(self, action: str, index: int | None, message: str) -> None:
        self.draw_boxes()
        self._show_counts()
        self.status.info(message)
        if self.path is not None:
            try:
                self.trainset.save(self.path)
            except OSError as err:
                self.status.error(f"{message}, but NOT saved to {self.path}: {err}")
            else:
                self.status.info(f"{message}; saved to {self.path.name}")
        for callback in self._change_callbacks:
            callback(action, index)

    def _show_counts(self) -> None:
        ts = self.trainset
        todo = f" ({len(ts.unpainted)} to paint)" if ts.unpainted else ""
        pos, neg = COLOURS["positive"], COLOURS["negative"]
        self.counts.value = (f'<b style="color:{pos}">+ {ts.n_positive} positive</b>{todo} · '
                             f'<b style="color:{neg}">− {ts.n_negative} negative</b>')

    def _preview(self, voxel: tuple | None) -> None:
        layer = self.browser.cursor_layer
        with hold_canvas():
            layer.clear()
            if voxel is not None:
                rect = box_rect(voxel[1], voxel[2], self.trainset.tile, self.browser.viewport)
                for (colour, width), dash in zip(OUTLINE, ([], [6, 4]), strict=True):
                    layer.stroke_style, layer.line_width = colour, width
                    layer.set_line_dash(dash)
                    layer.stroke_rect(*rect)
                layer.set_line_dash([])
