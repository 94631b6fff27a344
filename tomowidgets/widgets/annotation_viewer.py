"""AnnotationViewer: score maps or a label map over the slices of a tomogram, thresholds tuned live."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import traitlets
from ipycanvas import hold_canvas

from tomowidgets._calibration import THRESHOLD
from tomowidgets._validate import check_positive
from tomowidgets.io import Tomogram
from tomowidgets.merge import merge
from tomowidgets.widgets._display import draw_png, encode_png
from tomowidgets.widgets._overlay import PALETTE, hex_rgb, label_fractions, label_lut, render_labels
from tomowidgets.widgets.slice_browser import SliceBrowser

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.merge import LabelMap

__all__ = ["DISAGREEMENT_COLOUR", "AnnotationViewer"]

#: Colour of the disagreement heat map (magenta: not in the feature palette).
DISAGREEMENT_COLOUR = "#e0309a"
#: Opacity steps of the disagreement heat map.
_LEVELS = 15


class AnnotationViewer(widgets.VBox):
    """Calibrated score maps or a :class:`~tomowidgets.LabelMap` in colour over a tomogram's slices.

    With `scores`, the displayed slice is merged live with :func:`tomowidgets.merge` and its defaults
    (the highest score wins if it reaches its feature's threshold, or half of it where it continues
    a structure that does), so the per-feature threshold sliders show at
    once what the merge of the whole volume would give; only that slice is merged. With
    `labelmap`, its labels are shown as they are. Each feature has a fixed colour (:data:`PALETTE`,
    in the order of the features); the legend gives the fraction of the slice's voxels each feature
    covers, and hovering shows the scores under the mouse. Builds on a :class:`SliceBrowser`
    (its overlay layer holds the labels).

    Parameters
    ----------
    tomo : Tomogram
        The tomogram shown (normally the preprocessed one the scores come from).
    scores : dict of str to Tomogram or ndarray of shape (z, y, x), optional
        Calibrated score map per feature, each of the tomogram's shape.
    labelmap : LabelMap, optional
        Labels to show instead of `scores` (give exactly one of the two).
    threshold : float, default 1.0
        Initial threshold of every feature (the paper's 1.0).
    thresholds : dict of str to float, optional
        Initial per-feature thresholds overriding `threshold`.
    opacity : float, default 0.5
        Opacity of the colours, 0-1 (linked to the opacity slider).
    max_threshold : float, default 3.0
        Upper end of the threshold sliders.
    disagreement : Tomogram or ndarray of shape (z, y, x), optional
        Per-voxel disagreement between several annotators' networks (``consensus(...).disagreement``
        from :func:`tomowidgets.merge.consensus`). Adds a "disagreement" view: a magenta heat map,
        opaque at `max_disagreement`, showing where the annotators' networks differ.
    max_disagreement : float, default 1.0
        Disagreement (calibrated score units) shown fully opaque.
    **browser_options
        Passed to :class:`SliceBrowser` (``z``, ``contrast``, ``max_size``...).

    Attributes
    ----------
    browser : SliceBrowser
        The slice view; its ``status`` line is shared.
    names : tuple of str
        The features, label ``i`` being ``names[i - 1]``.
    colours : dict of str to str
        Colour (``'#rrggbb'``) per feature.
    n_encoded : int
        Overlay images encoded so far.
    mode : str
        ``"labels"`` or ``"disagreement"`` (the latter only with `disagreement`); linked to the
        view toggle.

    Raises
    ------
    ValueError
        If neither or both of `scores` and `labelmap` are given, or a map's shape differs from the
        tomogram's.
    """

    opacity = traitlets.Float(0.5, min=0.0, max=1.0)
    mode = traitlets.Unicode("labels")

    def __init__(self, tomo: Tomogram, scores: Mapping[str, Tomogram | ArrayLike] | None = None, *,
                 labelmap: LabelMap | None = None, threshold: float = THRESHOLD,
                 thresholds: Mapping[str, float] | None = None, opacity: float = 0.5,
                 max_threshold: float = 3.0, disagreement: Tomogram | ArrayLike | None = None,
                 max_disagreement: float = 1.0, **browser_options: Any) -> None:
        super().__init__()
        if (scores is None) == (labelmap is None):
            raise ValueError("give either `scores` ({name: score map}) or `labelmap` (a LabelMap), "
                             "not " + ("both" if scores is not None else "neither"))
        self.tomo = tomo
        self.labelmap = labelmap
        if scores is not None:
            if not isinstance(scores, Mapping) or not scores:
                raise ValueError(f"`scores` must be a non-empty dict {{feature name: score map}}, got "
                                 f"{type(scores).__name__}")
            self.scores = {str(k): v.data if isinstance(v, Tomogram) else np.asarray(v)
                           for k, v in scores.items()}
            self.names = tuple(self.scores)
        else:
            self.scores = {}
            self.names = tuple(labelmap.names)  # type: ignore[union-attr]
        self.disagreement = (disagreement.data if isinstance(disagreement, Tomogram)
                             else None if disagreement is None else np.asarray(disagreement))
        self.max_disagreement = check_positive(max_disagreement, "max_disagreement")
        for name, volume in (*self.scores.items(), ("labelmap", getattr(labelmap, "data", None)),
                             ("disagreement", self.disagreement)):
            if volume is not None and tuple(volume.shape) != tuple(tomo.shape):
                what = f"`{name}`" if name in ("labelmap", "disagreement") else f"`scores[{name!r}]`"
                raise ValueError(f"{what} has shape {tuple(volume.shape)} but the tomogram has "
                                 f"{tuple(tomo.shape)}; show the scores over the tomogram they were "
                                 "computed from (unbinned scores: FeatureNet.predict(..., unbin=True))")
        self.colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(self.names)}
        self.n_encoded = 0
        self._labels_key: tuple | None = None
        self._labels: NDArray[np.uint8] | None = None
        self._overlay_key: tuple | None = None
        self._png: tuple[bytes, np.ndarray] | None = None

        self.browser = SliceBrowser(tomo, **browser_options)
        self.status = self.browser.status
        guard = self.status.guard
        thresholds = dict(thresholds or {})
        unknown = sorted(set(thresholds) - set(self.names))
        if unknown:
            raise ValueError(f"`thresholds` names {unknown}, which are not features here "
                             f"({list(self.names)}); check the spelling")
        self.threshold_sliders = {
            name: widgets.FloatSlider(value=float(thresholds.get(name, threshold)), min=0.0,
                                      max=max(float(max_threshold), float(thresholds.get(name, threshold))),
                                      step=0.01, description=name, continuous_update=False,
                                      style={"description_width": "initial", "handle_color":
                                             self.colours[name]})
            for name in (self.names if self.scores else ())}
        self.opacity_slider = widgets.FloatSlider(value=opacity, min=0.0, max=1.0, step=0.05,
                                                  description="opacity")
        self.opacity = opacity
        widgets.link((self.opacity_slider, "value"), (self, "opacity"))
        self.legend = widgets.HTML()
        self.readout = widgets.HTML()
        for slider in self.threshold_sliders.values():
            slider.observe(guard(lambda _: self.draw()), "value")
        self.observe(guard(lambda _: self.draw()), "opacity")
        self.browser.on_redraw(guard(self.draw))
        self.browser.on_hover(guard(self._hover))
        controls = [self.opacity_slider, *self.threshold_sliders.values()]
        if self.disagreement is not None:
            self.mode_toggle = widgets.ToggleButtons(options=["labels", "disagreement"], value="labels",
                                                     description="show")
            widgets.link((self.mode_toggle, "value"), (self, "mode"))
            self.observe(guard(lambda _: self.draw()), "mode")
            controls.insert(0, self.mode_toggle)
        self.children = [self.browser, widgets.HBox([widgets.VBox(controls), self.legend]), self.readout]
        self.draw()

    # -- state ---------------------------------------------------------------------------------
    @property
    def thresholds(self) -> dict[str, float]:
        """Threshold per feature (empty for a label map)."""
        return {name: float(s.value) for name, s in self.threshold_sliders.items()}

    @property
    def label_slice(self) -> NDArray[np.uint8]:
        """Labels of the displayed slice, read-only ``(y, x)``: 0 background, i ``names[i - 1]``."""
        z = self.browser.z
        key = (z, tuple(self.thresholds.items()))
        if key != self._labels_key or self._labels is None:
            if self.scores:
                one = {name: np.asarray(volume[z:z + 1]) for name, volume in self.scores.items()}
                labels = np.asarray(merge(one, thresholds=self.thresholds, apix=self.tomo.apix).data[0])
            else:
                labels = np.array(self.labelmap.data[z], np.uint8)  # type: ignore[union-attr]
            labels.flags.writeable = False
            self._labels, self._labels_key = labels, key
        return self._labels

    @property
    def fractions(self) -> dict[str, float]:
        """Fraction of the displayed slice's voxels per feature."""
        return label_fractions(self.label_slice, self.names)

    @property
    def disagreement_slice(self) -> NDArray[np.uint8]:
        """The displayed slice's disagreement in levels 0..15 (15 = `max_disagreement` or more)."""
        return self._levels(self._disagreement_plane())

    # -- actions -------------------------------------------------------------------------------
    def show(self, mode: str) -> None:
        """Show ``"labels"`` (the merged annotation) or ``"disagreement"`` (between networks).

        Raises
        ------
        ValueError
            If `mode` is unknown, or "disagreement" without a disagreement map.
        """
        if mode not in ("labels", "disagreement"):
            raise ValueError(f"`mode` must be 'labels' or 'disagreement', got {mode!r}")
        if mode == "disagreement" and self.disagreement is None:
            raise ValueError("no disagreement map: pass disagreement=consensus(...).disagreement")
        self.mode = mode

    def set_threshold(self, name: str, value: float) -> None:
        """Set feature `name`'s threshold (moves its slider, widening its range if needed).

        Raises
        ------
        KeyError
            If `name` has no threshold (not a feature, or a label map is shown).
        """
        if name not in self.threshold_sliders:
            raise KeyError(f"no threshold for {name!r}; the thresholds are {list(self.threshold_sliders)}"
                           + ("" if self.scores else " (a label map has none: pass scores)"))
        slider = self.threshold_sliders[name]
        slider.max = max(slider.max, float(value))
        slider.value = float(value)

    def draw(self) -> None:
        """Redraw the label overlay and the legend for the current slice, view and settings."""
        if self.mode == "disagreement":
            self._draw_disagreement()
            return
        labels = self.label_slice
        view = self.browser.viewport
        key = (self._labels_key, view, round(self.opacity, 4))
        if key != self._overlay_key or self._png is None:
            rgba = render_labels(labels, view, label_lut(list(self.colours.values()), self.opacity))
            self._png, self._overlay_key = (encode_png(rgba), rgba), key
            self.n_encoded += 1
        with hold_canvas():
            self.browser.overlay.clear()
            draw_png(self.browser.overlay, *self._png)
        rows = "".join(
            f'<div><span style="display:inline-block;width:12px;height:12px;background:{colour};'
            f'margin-right:6px"></span>{html.escape(name)}: {100 * fraction:.2f} %</div>'
            for (name, colour), fraction in zip(self.colours.items(), self.fractions.values(), strict=True))
        self.legend.value = f"<small>voxels of slice {self.browser.z}</small>{rows}"

    # -- internals -----------------------------------------------------------------------------
    def _disagreement_plane(self) -> NDArray[np.float32]:
        if self.disagreement is None:
            raise ValueError("no disagreement map: pass disagreement=consensus(...).disagreement")
        return np.asarray(self.disagreement[self.browser.z], np.float32)

    def _levels(self, plane: NDArray[np.float32]) -> NDArray[np.uint8]:
        return np.round(np.clip(plane / self.max_disagreement, 0.0, 1.0) * _LEVELS).astype(np.uint8)

    def _draw_disagreement(self) -> None:
        plane = self._disagreement_plane()
        view = self.browser.viewport
        key = ("disagreement", self.browser.z, view)
        if key != self._overlay_key or self._png is None:
            lut = np.zeros((_LEVELS + 1, 4), np.uint8)
            lut[:, :3] = hex_rgb(DISAGREEMENT_COLOUR)
            lut[:, 3] = np.round(np.linspace(0, 255, _LEVELS + 1))
            rgba = render_labels(self._levels(plane), view, lut)
            self._png, self._overlay_key = (encode_png(rgba), rgba), key
            self.n_encoded += 1
        with hold_canvas():
            self.browser.overlay.clear()
            draw_png(self.browser.overlay, *self._png)
        self.legend.value = (f"<small>disagreement on slice {self.browser.z}</small>"
                             f"<div>mean {float(plane.mean()):.3f}; "
                             f"{100 * float(np.mean(plane >= 0.5 * self.max_disagreement)):.2f} % of voxels "
                             f"≥ {0.5 * self.max_disagreement:g}</div>")

    def _hover(self, voxel: tuple | None) -> None:
        if voxel is None:
            self.readout.value = ""
            return
        z, y, x = voxel
        label = int(self.label_slice[y, x])
        parts = [f"{html.escape(n)} {float(v[z, y, x]):.3g}" for n, v in self.scores.items()]
        if self.disagreement is not None:
            parts.append(f"disagreement {float(self.disagreement[z, y, x]):.3g}")
        shown = self.names[label - 1] if label else "background"
        self.readout.value = f"<small>{' · '.join(parts)}{' → ' if parts else ''}{html.escape(shown)}</small>"
