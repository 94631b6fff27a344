"""ContrastControl: the black and white levels of a displayed image, with a readout that fits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets

__all__ = ["ContrastControl"]


class ContrastControl(widgets.HBox):
    """A range slider for the values shown black and white, an "auto" button and a readout.

    The slider's own readout is hidden: ipywidgets clips a range such as "-1.23e+03 – 4.56e+03" to
    its fixed width. The readout beside it shows both levels in full, then `note` (e.g. the voxel
    size).

    Parameters
    ----------
    value : tuple of 2 float
        ``(black, white)`` levels to start with.
    limits : tuple of 2 float
        The slider's range (widened by :meth:`widen` when needed).
    on_auto : callable
        Called with no argument by the "auto" button (the owner sets the levels it computes).
    note : str, default ""
        Shown after the levels.

    Attributes
    ----------
    value : tuple of 2 float
        The levels (a traitlet linked to the slider).
    slider : ipywidgets.FloatRangeSlider
    readout : ipywidgets.HTML
    """

    value = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.0, 1.0))

    def __init__(self, value: tuple[float, float], limits: tuple[float, float], *,
                 on_auto: Callable[[], Any], note: str = "", tooltip: str = "") -> None:
        super().__init__(layout=widgets.Layout(align_items="center"))
        lo, hi = (float(v) for v in value)
        vmin, vmax = min(float(limits[0]), lo), max(float(limits[1]), hi)
        self.note = note
        self.slider = widgets.FloatRangeSlider(
            value=(lo, hi), min=vmin, max=vmax, step=(vmax - vmin) / 500 or 1e-6,
            description="contrast", continuous_update=False, readout=False)
        self.auto = widgets.Button(description="auto", layout=widgets.Layout(width="52px"),
                                   tooltip=tooltip)
        self.auto.on_click(lambda _: on_auto())
        self.readout = widgets.HTML()
        widgets.link((self.slider, "value"), (self, "value"))
        self.observe(lambda _: self._read_out(), "value")
        self.value = (lo, hi)
        self._read_out()
        self.children = [self.slider, self.auto, self.readout]

    def widen(self, lo: float, hi: float) -> None:
        """Extend the slider's range to include `lo` and `hi`."""
        self.slider.min, self.slider.max = min(self.slider.min, lo), max(self.slider.max, hi)

    def _read_out(self) -> None:
        lo, hi = self.value
        note = f" &nbsp;|&nbsp; {self.note}" if self.note else ""
        self.readout.value = f"black {lo:.4g} · white {hi:.4g}{note}"
