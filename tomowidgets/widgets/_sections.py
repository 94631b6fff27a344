"""Optional XZ and YZ section views of a :class:`~tomowidgets.widgets.SliceBrowser`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from ipycanvas import Canvas, hold_canvas

from tomowidgets.widgets._display import draw_png, encode_png, pin_size, render_plane
from tomowidgets.widgets._geometry import Viewport

if TYPE_CHECKING:
    from tomowidgets.io import Tomogram

__all__ = ["SectionViews"]

_MARK = "rgba(255, 200, 0, 0.8)"


class SectionViews:
    """An XZ view (rows z, columns x) and a YZ view (rows y, columns z) through the cursor.

    Both use the binning and magnification of the main view's fitted viewport `base`, so their x
    (resp. y) axis lines up with the main canvas at zoom 0. A line marks the current slice.

    Parameters
    ----------
    tomo : Tomogram
        The tomogram on show.
    base : Viewport
        The main canvas's fitted viewport.
    """

    def __init__(self, tomo: Tomogram, base: Viewport) -> None:
        self.tomo = tomo
        nz = tomo.shape[0]
        depth = -(-nz // base.step) * base.scale
        self.xz_view = Viewport(0, 0, base.step, base.scale, depth, base.width)
        self.yz_view = Viewport(0, 0, base.step, base.scale, base.height, depth)
        self.xz = Canvas(width=base.width, height=depth)
        self.yz = Canvas(width=depth, height=base.height)
        pin_size(self.xz, base.width, depth)
        pin_size(self.yz, depth, base.height)
        self.n_encoded = 0
        self._keys: dict[str, tuple] = {}
        self._png: dict[str, tuple[bytes, np.ndarray]] = {}

    def update(self, z: int, y: int, x: int, lo: float, hi: float) -> None:
        """Show the sections through voxel row `y` and column `x`, marking slice `z`."""
        step = self.xz_view.step
        planes = {
            "xz": (lambda: self.tomo.data[:, y, :], self.xz_view, self.xz, y // step),
            "yz": (lambda: np.asarray(self.tomo.data[:, :, x]).T, self.yz_view, self.yz, x // step),
        }
        with hold_canvas():
            for name, (plane, view, canvas, row) in planes.items():
                key = (row, lo, hi)
                if self._keys.get(name) != key:
                    img8 = render_plane(plane(), view, lo, hi)
                    self._png[name] = (encode_png(img8), img8)
                    self._keys[name] = key
                    self.n_encoded += 1
                draw_png(canvas, *self._png[name])
                pos = (z + 0.5) * view.scale / view.step
                canvas.stroke_style = _MARK
                canvas.line_width = 1
                if name == "xz":
                    canvas.stroke_line(0, pos, view.width, pos)
                else:
                    canvas.stroke_line(pos, 0, pos, view.height)
