"""Pure geometry and pixels of image galleries: small images on a grid, and which one a point hits.

A gallery shows ``n`` images of one shape ``(h, w)`` row by row, `columns` per row, each magnified
`zoom` times and separated by `gap` pixels (also around the edge). Used for the training monitor's
tiles and the particle viewer's class averages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tomowidgets.widgets._display import magnify, sample_range, to_uint8

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["grid_cell", "grid_rect", "grid_size", "tile_grid", "to_display"]


def grid_size(n: int, shape: tuple[int, int], columns: int, zoom: int, gap: int) -> tuple[int, int]:
    """Pixel size ``(height, width)`` of a gallery of `n` images.

    Examples
    --------
    >>> grid_size(5, (8, 8), columns=3, zoom=2, gap=4)     # 2 rows of 3, 4-px gaps around each
    (44, 64)
    """
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    h, w = shape
    return rows * (h * zoom + gap) + gap, cols * (w * zoom + gap) + gap


def grid_rect(index: int, shape: tuple[int, int], columns: int, zoom: int,
              gap: int) -> tuple[int, int, int, int]:
    """Canvas rectangle ``(px, py, width, height)`` of image `index` in the gallery."""
    h, w = shape
    row, col = divmod(int(index), max(1, columns))
    return gap + col * (w * zoom + gap), gap + row * (h * zoom + gap), w * zoom, h * zoom


def grid_cell(px: float, py: float, n: int, shape: tuple[int, int], columns: int, zoom: int,
              gap: int) -> int | None:
    """Index of the image under canvas point ``(px, py)``, or None (gap, or past the last image).

    Examples
    --------
    >>> grid_cell(5.0, 5.0, 5, (8, 8), columns=3, zoom=2, gap=4), grid_cell(2.0, 5.0, 5, (8, 8), 3, 2, 4)
    (0, None)
    """
    h, w = shape
    cw, ch = w * zoom + gap, h * zoom + gap
    col, dx = divmod(px - gap, cw)
    row, dy = divmod(py - gap, ch)
    if px < gap or py < gap or dx >= w * zoom or dy >= h * zoom or col >= max(1, columns):
        return None
    index = int(row) * max(1, columns) + int(col)
    return index if 0 <= index < n else None


def to_display(image: ArrayLike, percentiles: tuple[float, float] = (1.0, 99.0)) -> NDArray[np.uint8]:
    """An 8-bit image of `image` with its own percentile contrast."""
    lo, hi, _, _ = sample_range(image, percentiles)
    return to_uint8(image, lo, hi)


def tile_grid(images: Sequence[ArrayLike], columns: int, zoom: int, gap: int, *,
              background: int = 40) -> NDArray[np.uint8]:
    """The grey gallery image of 8-bit `images` (all of one shape), row by row.

    Parameters
    ----------
    images : sequence of uint8 arrays of shape (h, w)
        At least one image.
    columns : int
        Images per row.
    zoom : int
        Magnification (nearest neighbour).
    gap : int
        Pixels between images and around the edge.
    background : int, default 40
        Grey level of the gaps.

    Returns
    -------
    ndarray of uint8, shape ``grid_size(len(images), (h, w), columns, zoom, gap)``
    """
    shape = np.asarray(images[0]).shape
    out = np.full(grid_size(len(images), shape, columns, zoom, gap), background, np.uint8)
    for i, image in enumerate(images):
        px, py, w, h = grid_rect(i, shape, columns, zoom, gap)
        out[py:py + h, px:px + w] = magnify(np.asarray(image, np.uint8), zoom)
    return out
