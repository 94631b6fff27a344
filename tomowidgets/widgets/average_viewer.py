"""AverageViewer: the central slices of a subtomogram average and its FSC curve."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from tomowidgets.widgets._display import (
    burn_scale_bar,
    encode_png,
    magnify,
    sample_range,
    scale_bar,
    to_uint8,
)
from tomowidgets.widgets._plots import fsc_png
from tomowidgets.widgets._status import StatusLine

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.average import AverageResult

__all__ = ["AverageViewer", "central_sections"]


def central_sections(volume: ArrayLike, offset: int = 0) -> dict[str, NDArray[np.float32]]:
    """The orthogonal sections through the centre voxel ``n // 2`` (+ `offset`) of a cubic map.

    Returns ``{"xy": map[c], "xz": map[:, c, :], "yz": map[:, :, c].T}``: XY has rows y and columns
    x, XZ rows z and columns x, YZ rows y and columns z (as the slice browser's section views).

    Examples
    --------
    >>> v = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    >>> central_sections(v)["yz"].tolist()[0]
    [1.0, 10.0, 19.0]
    """
    v = np.asarray(volume, np.float32)
    cz, cy, cx = (min(max(n // 2 + int(offset), 0), n - 1) for n in v.shape)
    return {"xy": v[cz], "xz": v[:, cy, :], "yz": np.ascontiguousarray(v[:, :, cx].T)}


class AverageViewer(widgets.VBox):
    """Look at an :class:`~tomowidgets.AverageResult`: orthogonal central slices and the FSC plot.

    The XY, XZ and YZ sections through the map's centre share one contrast (percentiles of the
    map); an offset slider moves all three planes together. The FSC between the half maps is
    plotted with the 0.143 threshold and the resolution where the curve crosses it.

    Parameters
    ----------
    result : AverageResult
        From :func:`~tomowidgets.average` (or any object with ``map``, ``fsc``, ``resolution`` and
        ``apix``).
    size : int, default 192
        About the pixel size of each section (the map is magnified by an integer factor).
    invert : bool, default False
        Show dense material white (tomogram contrast is dark).

    Attributes
    ----------
    sections : dict of str to ipywidgets.Image
        The ``'xy'``, ``'xz'`` and ``'yz'`` images.
    fsc_plot : ipywidgets.Image
        The FSC plot.
    n_encoded : int
        Section images encoded so far.
    scale_bar : str
        Length of the scale bar on each section, e.g. ``"10 nm"`` ("" when the map has no voxel size).

    Raises
    ------
    ValueError
        If the map is not a 3D cube or the FSC arrays differ in length.
    """

    def __init__(self, result: AverageResult | Any, *, size: int = 192, invert: bool = False) -> None:
        super().__init__()
        volume = np.asarray(result.map, np.float32)
        if volume.ndim != 3 or len(set(volume.shape)) != 1:
            raise ValueError(f"`result.map` must be a cubic (box, box, box) map, got shape {volume.shape}")
        freqs, values = (np.asarray(a, np.float64) for a in result.fsc)
        if freqs.shape != values.shape:
            raise ValueError(f"`result.fsc` must be (freqs, values) of one length, got {freqs.shape} "
                             f"and {values.shape}")
        self.result, self.volume = result, volume
        self.invert = bool(invert)
        self.zoom = max(1, int(size) // volume.shape[0])
        self.n_encoded = 0
        lo, hi, _, _ = sample_range(volume, (0.5, 99.5))
        self.contrast = (hi, lo) if self.invert else (lo, hi)

        self.status = StatusLine()
        box = volume.shape[0]
        self.offset = widgets.IntSlider(value=0, min=-(box // 2), max=box - 1 - box // 2,
                                        description="offset", continuous_update=True)
        self.offset.observe(self.status.guard(lambda _: self.draw()), "value")
        self.sections = {name: widgets.Image(format="png") for name in ("xy", "xz", "yz")}
        panels = [widgets.VBox([widgets.HTML(f"<small>{name.upper()}</small>"), image])
                  for name, image in self.sections.items()]
        apix = getattr(result, "apix", None)
        self.fsc_plot = widgets.Image(format="png", value=fsc_png(freqs, values, float(result.resolution),
                                                                  apix))
        # A scale bar on each section (the map's voxel size is known): its length is in the summary.
        self._bar_pixels, self.scale_bar = (scale_bar(float(apix), self.zoom, box * self.zoom)
                                            if apix else (0.0, ""))
        self.summary = widgets.HTML(self._summary(apix))
        self.children = [widgets.HBox(panels), self.offset, widgets.HBox([self.fsc_plot]), self.summary,
                         self.status]
        self.draw()

    def draw(self) -> None:
        """Draw the three sections at the offset slider's position."""
        lo, hi = self.contrast
        for name, plane in central_sections(self.volume, self.offset.value).items():
            image = magnify(to_uint8(plane, lo, hi) if lo < hi else 255 - to_uint8(plane, hi, lo),
                            self.zoom)
            if self.scale_bar:
                image = burn_scale_bar(image, self._bar_pixels)
            self.sections[name].value = encode_png(image)
            self.n_encoded += 1

    def _summary(self, apix: float | None) -> str:
        r = self.result
        box = self.volume.shape[0]
        unit = "Å" if apix is not None else "voxels"
        resolution = float(r.resolution)
        res = f"{resolution:.1f} {unit}" if math.isfinite(resolution) else "not reached"
        parts = [f"box {box}" + (f" at {apix:g} Å/voxel" if apix is not None else ""),
                 f"resolution {res} (FSC 0.143)"]
        if self.scale_bar:
            parts.append(f"scale bar {self.scale_bar}")
        orientations = getattr(r, "orientations", None)
        if orientations is not None:
            parts.insert(0, f"{len(orientations)} particles")
        if getattr(r, "symmetry", None):
            parts.append(f"symmetry {r.symmetry}")
        return "<small>" + html.escape(" · ".join(parts)) + "</small>"
