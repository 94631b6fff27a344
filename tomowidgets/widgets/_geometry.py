"""Pure geometry of the widgets: canvas pixels <-> voxels, tile boxes, brush strokes on masks.

Nothing here imports ipywidgets or ipycanvas, so it is tested on plain numbers.

Conventions
-----------
* Canvas points are ``(px, py)``: x to the right, y down, in canvas pixels (what ipycanvas mouse
  events report). Voxels are ``(y, x)`` (the slice's rows and columns) or ``(z, y, x)``.
* Voxel ``i`` covers the continuous interval ``[i, i + 1)``; its centre is ``i + 0.5``.
* A :class:`Viewport` shows voxels ``x0, x0 + step, ...`` of a slice: each *display pixel* is the
  mean of ``step × step`` voxels (display binning) and is drawn as ``scale × scale`` canvas pixels
  (nearest-neighbour magnification). So one voxel is ``scale / step`` canvas pixels wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Viewport", "box_rect", "canvas_to_voxel", "disk_mask", "find_tile", "fit_viewport",
    "initial_mask", "paint_segment", "panel_point", "voxel_to_canvas", "zoom_levels",
    "zoom_viewport",
]


@dataclass(frozen=True)
class Viewport:
    """Which voxels of a slice a canvas shows, and at what size.

    Parameters
    ----------
    y0, x0 : int
        Voxel at the canvas's top-left corner (may be 0 when the slice is smaller than the view).
    step : int
        Display binning: voxels per display pixel along y and x (>= 1).
    scale : int
        Canvas pixels per display pixel (>= 1); ``step > 1`` implies ``scale == 1``.
    height, width : int
        Canvas size in pixels.
    """

    y0: int
    x0: int
    step: int
    scale: int
    height: int
    width: int

    @property
    def pixels_per_voxel(self) -> float:
        """Canvas pixels per voxel, ``scale / step``."""
        return self.scale / self.step

    @property
    def display_shape(self) -> tuple[int, int]:
        """Display pixels ``(rows, columns)`` needed to cover the canvas."""
        return -(-self.height // self.scale), -(-self.width // self.scale)

    @property
    def window(self) -> tuple[int, int]:
        """Voxels ``(rows, columns)`` covered by the canvas (it may extend past the slice)."""
        rows, cols = self.display_shape
        return rows * self.step, cols * self.step


def fit_viewport(shape: tuple[int, int], *, max_size: int = 1024, min_size: int = 512) -> Viewport:
    """The viewport that shows a whole ``(ny, nx)`` slice on a canvas of at most `max_size` px.

    Slices larger than `max_size` are display-binned by ``ceil(n / max_size)``; slices smaller
    than `min_size` are magnified by an integer factor (128² voxels -> 512² px).

    Parameters
    ----------
    shape : tuple of 2 int
        Slice size ``(ny, nx)`` in voxels.
    max_size : int, default 1024
        Largest canvas edge in pixels.
    min_size : int, default 512
        Small slices are magnified until their longer edge reaches about this many pixels.

    Returns
    -------
    Viewport

    Raises
    ------
    ValueError
        If a size is not a positive integer.

    Examples
    --------
    >>> fit_viewport((4096, 4096))
    Viewport(y0=0, x0=0, step=4, scale=1, height=1024, width=1024)
    >>> fit_viewport((128, 100))
    Viewport(y0=0, x0=0, step=1, scale=4, height=512, width=400)
    """
    ny, nx = (int(n) for n in shape)
    if min(ny, nx, max_size, min_size) < 1:
        raise ValueError(f"`shape` and sizes must be positive, got shape={shape}, "
                         f"max_size={max_size}, min_size={min_size}")
    n = max(ny, nx)
    step = max(1, math.ceil(n / max_size))
    scale = max(1, min_size // n) if step == 1 else 1
    return Viewport(0, 0, step, scale, -(-ny // step) * scale, -(-nx // step) * scale)


def zoom_levels(base: Viewport, *, max_scale: int = 16) -> list[tuple[int, int]]:
    """The ``(step, scale)`` pairs the zoom goes through from the fitted `base` view.

    Binning halves at each level down to 1 (``step`` 6 -> 3 -> 2 -> 1), then magnification
    doubles up to `max_scale` (at least one level above `base`).

    Examples
    --------
    >>> zoom_levels(fit_viewport((4096, 4096)), max_scale=4)
    [(4, 1), (2, 1), (1, 1), (1, 2), (1, 4)]
    """
    levels = [(base.step, base.scale)]
    step = base.step
    while step > 1:
        step = -(-step // 2)
        levels.append((step, 1))
    scale = base.scale
    while scale < max_scale or len(levels) == 1:
        scale *= 2
        levels.append((1, scale))
    return levels


def zoom_viewport(base: Viewport, shape: tuple[int, int], level: int,
                  centre: tuple[float, float] | None = None) -> Viewport:
    """The view at zoom `level` (0 = `base`) centred as near as possible on voxel `centre`.

    The canvas keeps the base size; the window is clamped to the slice where it fits.

    Parameters
    ----------
    base : Viewport
        The fitted view (:func:`fit_viewport`).
    shape : tuple of 2 int
        Slice size ``(ny, nx)`` in voxels.
    level : int
        Index into :func:`zoom_levels`; clipped to the valid range.
    centre : tuple of 2 float, optional
        Continuous voxel ``(y, x)`` to centre on; default the slice centre.

    Returns
    -------
    Viewport
    """
    levels = zoom_levels(base)
    step, scale = levels[min(max(int(level), 0), len(levels) - 1)]
    view = Viewport(0, 0, step, scale, base.height, base.width)
    cy, cx = (shape[0] / 2, shape[1] / 2) if centre is None else centre
    wy, wx = view.window
    y0 = min(max(0, round(cy - wy / 2)), max(0, shape[0] - wy))
    x0 = min(max(0, round(cx - wx / 2)), max(0, shape[1] - wx))
    return Viewport(y0, x0, step, scale, base.height, base.width)


def canvas_to_voxel(px: float, py: float, view: Viewport) -> tuple[int, int]:
    """The voxel ``(y, x)`` under canvas point ``(px, py)`` (not clipped to the slice).

    Examples
    --------
    >>> view = fit_viewport((128, 128))          # 4 canvas px per voxel
    >>> canvas_to_voxel(10.0, 3.9, view)
    (0, 2)
    """
    f = view.step / view.scale
    return int(math.floor(view.y0 + py * f)), int(math.floor(view.x0 + px * f))


def voxel_to_canvas(y: float, x: float, view: Viewport) -> tuple[float, float]:
    """Canvas point ``(px, py)`` of continuous voxel coordinates ``(y, x)``.

    Pass ``i + 0.5`` for the centre of voxel ``i``, or ``i`` for its top-left corner; then
    ``canvas_to_voxel(*voxel_to_canvas(y + 0.5, x + 0.5, view), view) == (y, x)``.
    """
    f = view.scale / view.step
    return (x - view.x0) * f, (y - view.y0) * f


def box_rect(y: int, x: int, tile: int, view: Viewport) -> tuple[float, float, float, float]:
    """Canvas rectangle ``(px, py, width, height)`` of the `tile`-voxel box centred at voxel (y, x).

    The box spans voxels ``y - tile//2 .. y + tile//2 - 1`` (the TrainingSet's tile geometry).
    """
    h = tile // 2
    px, py = voxel_to_canvas(y - h, x - h, view)
    size = tile * view.pixels_per_voxel
    return px, py, size, size


def find_tile(centres: ArrayLike, z: int, y: int, x: int, tile: int,
              candidates: ArrayLike | None = None) -> int | None:
    """Index of the most recent tile on slice `z` whose box contains voxel ``(y, x)``, or None.

    Parameters
    ----------
    centres : int array of shape (n, 3)
        Tile centres ``(z, y, x)`` (``TrainingSet.centres``).
    z, y, x : int
        The voxel.
    tile : int
        Tile edge in voxels.
    candidates : bool array of shape (n,), optional
        Only these tiles are considered (e.g. those cut from the tomogram on show).
    """
    c = np.asarray(centres, np.int64).reshape(-1, 3)
    h = tile // 2
    hit = (c[:, 0] == z) & (np.abs(c[:, 1] - y - 0.5) <= h) & (np.abs(c[:, 2] - x - 0.5) <= h)
    if candidates is not None:
        hit &= np.asarray(candidates, bool)
    found = np.flatnonzero(hit)
    return int(found[-1]) if found.size else None


def disk_mask(tile: int, centre: tuple[float, float], radius: float) -> NDArray[np.bool_]:
    """Boolean (tile, tile) mask of the pixels whose centres lie within `radius` of `centre`.

    `centre` is a continuous ``(y, x)`` tile coordinate (pixel ``i`` spans ``[i, i + 1)``).
    """
    return paint_segment(np.zeros((tile, tile), bool), centre, centre, radius, True)


def initial_mask(tile: int, radius: float | None = None) -> NDArray[np.bool_]:
    """The mask a new positive tile starts with: a disk of `radius` (default ``tile // 8``) pixels.

    A positive tile must have a painted pixel (the TrainingSet refuses empty masks), so the tile
    selector gives each new positive this placeholder, centred where the user clicked; the user
    then paints the real feature in the mask painter.

    Examples
    --------
    >>> int(initial_mask(16, 1.0).sum())
    4
    """
    r = tile // 8 if radius is None else radius
    return disk_mask(tile, (tile / 2, tile / 2), r)


def paint_segment(mask: ArrayLike, start: tuple[float, float], stop: tuple[float, float],
                  radius: float, value: bool) -> NDArray[np.bool_]:
    """A copy of `mask` with a brush stroke from `start` to `stop` set to `value`.

    Pixels whose centres lie within `radius` of the segment are painted (at least the pixels
    under the end points, so a radius below 0.71 paints single pixels). The input is unchanged.

    Parameters
    ----------
    mask : bool array of shape (h, w)
        The mask before the stroke.
    start, stop : tuple of 2 float
        Continuous ``(y, x)`` mask coordinates of the segment's ends; may lie outside the mask.
    radius : float
        Brush radius in mask pixels (>= 0).
    value : bool
        True paints (brush), False erases.

    Returns
    -------
    ndarray of bool, shape (h, w)

    Examples
    --------
    >>> m = paint_segment(np.zeros((4, 8), bool), (1.5, 0.5), (1.5, 6.5), 0.5, True)
    >>> m.astype(int)[1]
    array([1, 1, 1, 1, 1, 1, 1, 0])
    """
    out = np.array(mask, bool)
    r = max(float(radius), 0.7072)
    (ay, ax), (by, bx) = start, stop
    h, w = out.shape
    y0, y1 = max(0, math.floor(min(ay, by) - r)), min(h, math.ceil(max(ay, by) + r) + 1)
    x0, x1 = max(0, math.floor(min(ax, bx) - r)), min(w, math.ceil(max(ax, bx) + r) + 1)
    if y0 >= y1 or x0 >= x1:
        return out
    py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
    dy, dx = by - ay, bx - ax
    length2 = dy * dy + dx * dx
    t = 0.0 if length2 == 0 else np.clip(((py - ay) * dy + (px - ax) * dx) / length2, 0.0, 1.0)
    dist2 = (py - ay - t * dy) ** 2 + (px - ax - t * dx) ** 2
    out[y0:y1, x0:x1][dist2 <= r * r] = bool(value)
    return out


def panel_point(px: float, py: float, zoom: int, tile: int,
                gap: int) -> tuple[int, tuple[float, float]] | None:
    """Which panel of the mask painter a canvas point is on, and its continuous tile ``(y, x)``.

    The painter's canvas shows two panels side by side, each ``tile * zoom`` pixels square and
    `gap` pixels apart: the image with the mask over it (panel 0) and the mask alone (panel 1).

    Returns
    -------
    tuple of (int, tuple of 2 float), or None
        ``(panel, (y, x))``, or None when the point is in the gap or off the canvas.
    """
    size = tile * zoom
    if not 0 <= py < size:
        return None
    for panel, left in enumerate((0, size + gap)):
        if left <= px < left + size:
            return panel, (py / zoom, (px - left) / zoom)
    return None
