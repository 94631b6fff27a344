"""Pure overlay rendering: label slices as RGBA images, pick circles on slices, feature colours.

Nothing here imports ipywidgets or ipycanvas; the viewers draw what these functions return.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, cast

import numpy as np

from tomowidgets.widgets._display import bin_mean

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.widgets._geometry import Viewport

__all__ = ["PALETTE", "circle_depth", "hex_rgb", "label_fractions", "label_lut", "pick_circles",
           "render_labels"]

#: Feature colours, in the order of the features (then repeated): distinct on grey slices.
PALETTE = ("#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#e377c2", "#bcbd22",
           "#8c564b", "#7f7f7f")


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``'#rrggbb'`` -> ``(r, g, b)`` in 0..255.

    Examples
    --------
    >>> hex_rgb("#ff7f0e")
    (255, 127, 14)
    """
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def label_lut(colours: Sequence[str], opacity: float) -> NDArray[np.uint8]:
    """RGBA lookup table ``(len(colours) + 1, 4)``: label 0 transparent, label i ``colours[i - 1]``.

    `opacity` (0-1) becomes the alpha of every feature colour.
    """
    lut = np.zeros((len(colours) + 1, 4), np.uint8)
    alpha = int(round(255 * min(max(float(opacity), 0.0), 1.0)))
    for i, colour in enumerate(colours, start=1):
        lut[i] = (*hex_rgb(colour), alpha)
    return lut


def render_labels(labels: ArrayLike, view: Viewport, lut: ArrayLike) -> NDArray[np.uint8]:
    """The RGBA image of shape ``(view.height, view.width, 4)`` of a label slice as `view` shows it.

    With display binning (``view.step > 1``) each display pixel gets the feature that covers most
    of its ``step × step`` voxels (background only when no feature is there, so thin membranes stay
    visible); then pixels are magnified by ``view.scale`` and coloured with `lut`.

    Parameters
    ----------
    labels : uint8 array of shape (ny, nx)
        Labels 0..n of one slice (0 = background).
    view : Viewport
        What the canvas shows (as for :func:`~tomowidgets.widgets.render_plane`).
    lut : uint8 array of shape (n + 1, 4)
        RGBA per label (:func:`label_lut`).

    Returns
    -------
    ndarray of uint8, shape (view.height, view.width, 4)
    """
    lut = np.asarray(lut, np.uint8)
    rows, cols = view.display_shape
    wy, wx = view.window
    # `labels` is a 2D array or memory map (sliced before it is read); cast() is for mypy only
    window = np.asarray(cast("np.ndarray", labels)[view.y0:view.y0 + wy, view.x0:view.x0 + wx])
    if view.step > 1:
        n = len(lut) - 1
        cover = np.stack([bin_mean(window == k, view.step) for k in range(1, n + 1)]) if n else None
        small = np.zeros((-(-window.shape[0] // view.step), -(-window.shape[1] // view.step)), np.uint8)
        if cover is not None:
            best = np.argmax(cover, axis=0)
            small = np.where(np.take_along_axis(cover, best[None], 0)[0] > 0, best + 1, 0).astype(np.uint8)
    else:
        small = window.astype(np.uint8, copy=False)
    grid = np.zeros((rows, cols), np.uint8)
    grid[:small.shape[0], :small.shape[1]] = small[:rows, :cols]
    if view.scale > 1:
        grid = np.repeat(np.repeat(grid, view.scale, axis=0), view.scale, axis=1)
    return np.ascontiguousarray(lut[grid[:view.height, :view.width]])


def label_fractions(labels: ArrayLike, names: Sequence[str]) -> dict[str, float]:
    """Fraction of the voxels of `labels` per feature (label i is ``names[i - 1]``).

    Examples
    --------
    >>> label_fractions(np.array([[0, 1], [1, 2]], np.uint8), ("a", "b"))
    {'a': 0.5, 'b': 0.25}
    """
    a = np.asarray(labels).ravel()
    counts = np.bincount(a, minlength=len(names) + 1)
    size = max(1, a.size)
    return {name: float(counts[i + 1]) / size for i, name in enumerate(names)}


def pick_circles(zyx: ArrayLike, z: int, radius: float, depth: float
                 ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Which picks to mark on slice `z`, and the radius of each circle (voxels).

    A pick at depth ``pz`` is marked on the slices with ``|pz - z| <= depth``; its circle is the
    section of a sphere, ``radius * sqrt(1 - (dz / (depth + 1))**2)``, so it shrinks away from the
    pick's own slice (but stays visible at ``|dz| = depth``).

    Parameters
    ----------
    zyx : float array of shape (n, 3)
        Pick positions in voxels (``z, y, x`` columns of a particle table).
    z : int
        The slice on show.
    radius : float
        Circle radius in voxels on the pick's own slice.
    depth : float
        Largest ``|dz|`` in voxels at which a pick is still marked.

    Returns
    -------
    indices : ndarray of int
        Rows of `zyx` marked on slice `z`.
    radii : ndarray of float
        Their circle radii in voxels.

    Examples
    --------
    >>> idx, r = pick_circles([[5, 10, 10], [9, 20, 20], [2, 0, 0]], 5, 4.0, 3.0)
    >>> idx.tolist(), r.round(2).tolist()
    ([0, 2], [4.0, 2.65])
    """
    p = np.asarray(zyx, np.float64).reshape(-1, 3)
    dz = np.abs(p[:, 0] - z)
    idx = np.flatnonzero(dz <= depth + 1e-9)
    radii = radius * np.sqrt(np.clip(1.0 - (dz[idx] / (depth + 1.0)) ** 2, 0.0, 1.0))
    return idx, radii


def circle_depth(radius: float) -> float:
    """Default ``depth`` of :func:`pick_circles`: about the particle's radius, at least 1 voxel."""
    return max(1.0, math.floor(radius))
