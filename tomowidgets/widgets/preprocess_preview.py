"""PreprocessPreview: tune the band-pass and clamp by eye on one slice before preprocessing a volume."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from tomowidgets._validate import check_index
from tomowidgets.preprocess import preprocess, preprocessing_params
from tomowidgets.widgets._display import encode_png, render_plane, sample_range
from tomowidgets.widgets._geometry import fit_viewport
from tomowidgets.widgets._status import StatusLine

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from tomowidgets.io import Tomogram

__all__ = ["PreprocessPreview", "log_power"]


def log_power(image: NDArray[np.floating], size: int = 512) -> NDArray[np.float32]:
    """``log(1 + |FFT|²)`` of the central square crop (edge <= `size`) of `image`, zero frequency centred.

    The crop keeps the full frequency range (to Nyquist) of a big slice at a coarser sampling.
    """
    a = np.asarray(image, np.float32)
    ny, nx = a.shape
    n = min(ny, nx, size)
    y0, x0 = (ny - n) // 2, (nx - n) // 2
    crop = a[y0:y0 + n, x0:x0 + n]
    spectrum = np.fft.fftshift(np.abs(np.fft.fft2(crop - crop.mean())) ** 2)
    return np.log1p(spectrum).astype(np.float32)


class PreprocessPreview(widgets.VBox):
    """Tune ``preprocess`` by eye: low-pass, high-pass and clamp sliders, before/after view of a slice.

    Each change filters a slab of ``2 * slab + 1`` slices around the chosen slice with the same
    functions as :func:`~tomowidgets.preprocess` (:func:`~tomowidgets.bandpass`, ``normalize``,
    ``clamp``) and shows the slice before and after, and the power spectra (``log |FFT|²``) of both,
    so that the filter can be judged before the whole volume runs. Only the slab is read, so it stays
    fast on big (memory-mapped) tomograms. It is a preview: the slab's statistics normalize it, and
    the high-pass background is estimated from the slab only. Invalid settings (a low-pass below
    Nyquist, a high-pass not longer than the low-pass) are shown in the status line and the
    previous images stay.

    Parameters
    ----------
    tomo : Tomogram
        The raw tomogram, ``(z, y, x)`` with ``apix`` in Å (may be memory-mapped).
    z : int, optional
        Slice shown; default the middle one.
    lowpass, highpass : float or None, defaults 20.0 and 4000.0
        Initial cut-offs in Å (None: filter off). The low-pass is raised to the Nyquist limit
        ``2 * apix`` when it is below it.
    clamp : float or None, default 3.0
        Initial clamp in standard deviations (None: off).
    slab : int, default 3
        Slices on each side of the shown one that are filtered with it.
    size : int, default 384
        Largest edge in pixels of each image shown (bigger slices are display-binned).

    Attributes
    ----------
    n_encoded : int
        Images encoded so far (each change of a setting encodes the "after" image and spectrum).
    filtered : ndarray or None
        The shown slice after preprocessing (float32, read-only), from the last valid settings.

    Examples
    --------
    >>> preview = PreprocessPreview(tomo)                     # doctest: +SKIP
    >>> pre = tw.preprocess(tomo, **preview.params)           # doctest: +SKIP
    """

    def __init__(self, tomo: Tomogram, *, z: int | None = None, lowpass: float | None = 20.0,
                 highpass: float | None = 4000.0, clamp: float | None = 3.0, slab: int = 3,
                 size: int = 384) -> None:
        super().__init__()
        self.tomo = tomo
        nz, ny, nx = tomo.shape
        apix = float(tomo.apix)
        self.slab = int(slab)
        self.view = fit_viewport((ny, nx), max_size=size, min_size=size // 2)
        spectrum = min(ny, nx, 512)
        self.spectrum_view = fit_viewport((spectrum, spectrum), max_size=size, min_size=size // 2)
        self.n_encoded = 0
        self.filtered: NDArray[np.float32] | None = None
        self._raw_key: int | None = None
        self._raw: NDArray[np.float32] | None = None

        self.status = StatusLine()
        guard = self.status.guard
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="420px")
        lp = max(20.0 if lowpass is None else float(lowpass), 2 * apix)
        self.z_slider = widgets.IntSlider(value=nz // 2, min=0, max=nz - 1, description="z",
                                          continuous_update=False, layout=wide)
        self.lowpass_slider = widgets.FloatSlider(
            value=lp, min=apix, max=max(40 * apix, 2 * lp), step=apix / 10,
            description="low-pass (Å)", continuous_update=False, style=style, layout=wide)
        hp = 4000.0 if highpass is None else float(highpass)
        self.highpass_slider = widgets.FloatLogSlider(
            value=hp, base=10, min=math.log10(2 * apix), max=max(5.0, math.log10(hp) + 0.5), step=0.01,
            description="high-pass (Å)", readout_format=".4g", continuous_update=False, style=style,
            layout=wide)
        self.clamp_slider = widgets.FloatSlider(value=3.0 if clamp is None else float(clamp), min=0.5,
                                                max=10.0, step=0.1, description="clamp (sd)",
                                                continuous_update=False, style=style, layout=wide)
        self.use = {name: widgets.Checkbox(value=value is not None, indent=False,
                                           layout=widgets.Layout(width="28px"), tooltip=f"use {name}")
                    for name, value in (("lowpass", lowpass), ("highpass", highpass), ("clamp", clamp))}
        self.images = {name: widgets.Image(format="png") for name in
                       ("before", "after", "spectrum_before", "spectrum_after")}
        captions = {"before": "slice", "after": "preprocessed", "spectrum_before": "log |FFT|² before",
                    "spectrum_after": "log |FFT|² after"}
        columns = [widgets.VBox([widgets.HTML(f"<small>{captions[a]}</small>"), self.images[a],
                                 widgets.HTML(f"<small>{captions[b]}</small>"), self.images[b]])
                   for a, b in (("before", "spectrum_before"), ("after", "spectrum_after"))]
        self.params_label = widgets.HTML()

        if z is not None:
            self.show_slice(z)
        for control in (self.z_slider, self.lowpass_slider, self.highpass_slider, self.clamp_slider,
                        *self.use.values()):
            control.observe(guard(lambda _: self.update()), "value")
        self.children = [
            self.z_slider,
            widgets.HBox([self.use["lowpass"], self.lowpass_slider]),
            widgets.HBox([self.use["highpass"], self.highpass_slider]),
            widgets.HBox([self.use["clamp"], self.clamp_slider]),
            widgets.HBox(columns), self.params_label, self.status]
        guard(self.update)()

    # -- state ---------------------------------------------------------------------------------
    @property
    def z(self) -> int:
        """The slice shown."""
        return int(self.z_slider.value)

    @property
    def params(self) -> dict[str, Any]:
        """Keyword arguments for ``preprocess(tomo, **params)``: ``lowpass``, ``highpass``, ``clamp``.

        Raises
        ------
        ValueError
            If the settings are invalid (see :func:`~tomowidgets.preprocess.preprocessing_params`).
        """
        lowpass = float(self.lowpass_slider.value) if self.use["lowpass"].value else None
        highpass = float(self.highpass_slider.value) if self.use["highpass"].value else None
        nsd = float(self.clamp_slider.value) if self.use["clamp"].value else None
        p = preprocessing_params(self.tomo.apix, lowpass, highpass, nsd)
        return {key: p[key] for key in ("lowpass", "highpass", "clamp")}

    # -- actions -------------------------------------------------------------------------------
    def show_slice(self, z: int) -> None:
        """Preview slice `z` (moves the z slider).

        Raises
        ------
        ValueError
            If `z` is not an integer in ``0 .. nz - 1``.
        """
        self.z_slider.value = check_index(z, self.tomo.shape[0], "z")

    def update(self) -> None:
        """Filter the slab with the current settings and redraw (the controls call this).

        Raises
        ------
        ValueError
            If the settings are invalid; the images then stay as they were.
        """
        params = self.params
        raw = self._raw_slab()
        z0 = max(0, self.z - self.slab)
        out = preprocess(raw, **params, apix=self.tomo.apix, progress=False).data
        plane = np.array(out[self.z - z0])
        plane.flags.writeable = False
        self.filtered = plane
        c = params["clamp"] if params["clamp"] is not None else 3.0
        self._show("after", render_plane(plane, self.view, -c, c))
        self._show("spectrum_after", self._spectrum(plane))
        self.params_label.value = "<code>preprocess(tomo, " + ", ".join(
            f"{k}={v:g}" if v is not None else f"{k}=None" for k, v in params.items()) + ")</code>"
        self.status.info(f"slice {self.z}: filtered slices {z0}..{z0 + len(raw) - 1}")

    # -- internals -----------------------------------------------------------------------------
    def _raw_slab(self) -> NDArray[np.float32]:
        """The raw slab around the slice (cached per slice); draws the "before" images when new."""
        if self._raw_key != self.z or self._raw is None:
            nz = self.tomo.shape[0]
            z0, z1 = max(0, self.z - self.slab), min(nz, self.z + self.slab + 1)
            self._raw = np.asarray(self.tomo.data[z0:z1], np.float32)
            self._raw_key = self.z
            plane = self._raw[self.z - z0]
            lo, hi, _, _ = sample_range(plane)
            self._show("before", render_plane(plane, self.view, lo, hi))
            self._show("spectrum_before", self._spectrum(plane))
        return self._raw

    def _spectrum(self, plane: NDArray[np.float32]) -> NDArray[np.uint8]:
        power = log_power(plane)
        lo, hi, _, _ = sample_range(power, (5.0, 99.9))
        return render_plane(power, self.spectrum_view, lo, hi)

    def _show(self, name: str, image: NDArray[np.uint8]) -> None:
        self.images[name].value = encode_png(image)
        self.n_encoded += 1
