"""Turning voxels into what a canvas shows: display binning, 8-bit contrast, lossless PNG.

The widgets send each displayed image as a PNG of its 8-bit display pixels (lossless, unlike the
JPEG that ``Canvas.put_image_data`` uses for RGB arrays). :func:`encode_png` writes the PNG with
numpy and zlib at compression level 1: on a noisy 1024² slice it takes ~20 ms, where Pillow's
default (level 6, used by ``put_image_data``) takes ~60 ms for the same bytes within 5 %.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.widgets._geometry import Viewport

__all__ = ["OUTLINE", "bin_mean", "burn_box", "burn_scale_bar", "draw_png", "draw_scale_bar", "encode_png",
           "magnify", "mask_panels", "pin_size", "render_plane", "sample_range", "scale_bar", "to_uint8"]

#: A dark line under a thinner light one, ``(colour, width)`` each: an outline seen on any image
#: (the TileSelector's hover preview, the MaskPainter's brush).
OUTLINE = (("rgba(0, 0, 0, 0.8)", 3.0), ("rgba(255, 255, 255, 0.95)", 1.5))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def sample_range(data: ArrayLike, percentiles: tuple[float, float] = (1.0, 99.0), *,
                 max_voxels: int = 1 << 20) -> tuple[float, float, float, float]:
    """Contrast limits from a strided sample of a volume or slice (cheap on memory maps).

    Parameters
    ----------
    data : array of shape (z, y, x) or (y, x)
        Voxels; only about `max_voxels` evenly strided ones are read.
    percentiles : tuple of 2 float, default (1, 99)
        Percentiles (0-100) that become the initial black and white levels.
    max_voxels : int, default 2**20
        Size of the sample.

    Returns
    -------
    lo, hi, vmin, vmax : float
        The percentile levels (``hi > lo``) and the sample's range (``vmax > vmin``), which bounds
        a contrast slider.
    """
    # Anything with a shape (an ndarray, a memory map) is sliced in place, not read whole; cast() only
    # tells mypy that it indexes like an ndarray.
    a = np.asarray(data) if not hasattr(data, "shape") else cast("np.ndarray", data)
    stride = max(1, int(np.ceil((a.size / max_voxels) ** (1 / a.ndim))))
    sample = np.asarray(a[(slice(None, None, stride),) * a.ndim], np.float32)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0, 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    vmin, vmax = float(finite.min()), float(finite.max())
    if hi <= lo:
        lo, hi = vmin, vmax
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi, min(vmin, lo), max(vmax, hi)


def bin_mean(image: ArrayLike, step: int) -> NDArray[np.float32]:
    """Mean of each ``step × step`` block of a 2D image (edges padded by repetition).

    Returns a float32 array of shape ``(ceil(h / step), ceil(w / step))``; `image` is unchanged.
    """
    a = np.asarray(image, np.float32)
    if step == 1:
        return a
    h, w = a.shape
    ph, pw = -h % step, -w % step
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    out = np.zeros((a.shape[0] // step, a.shape[1] // step), np.float32)
    for i in range(step):  # strided views: ~6x faster than reshape(...).mean(axis=(1, 3))
        for j in range(step):
            out += a[i::step, j::step]
    out *= 1.0 / (step * step)
    return out


def to_uint8(image: ArrayLike, lo: float, hi: float) -> NDArray[np.uint8]:
    """Map values `lo`..`hi` linearly to 0..255 (clipped); NaN becomes 0."""
    a = np.asarray(image, np.float32)
    span = float(hi) - float(lo)
    scaled = (a - np.float32(lo)) * np.float32(255.0 / span if span > 0 else 0.0)
    np.clip(scaled, 0, 255, out=scaled)
    return np.nan_to_num(scaled, nan=0.0).astype(np.uint8)


def render_plane(plane: ArrayLike, view: Viewport, lo: float, hi: float) -> NDArray[np.uint8]:
    """The 8-bit image of shape ``(view.height, view.width)`` that `view` shows of `plane`.

    The visible window is cut, display-binned by ``view.step`` (block means), mapped to 0..255
    with the contrast limits `lo`/`hi`, magnified by ``view.scale`` (nearest neighbour) and
    cropped to the canvas. Canvas pixels beyond the slice are 0 (black).

    Parameters
    ----------
    plane : array of shape (ny, nx)
        One slice (any real dtype; a memory-mapped slice is read only within the window).
    view : Viewport
        What to show.
    lo, hi : float
        Values shown black and white.

    Returns
    -------
    ndarray of uint8, shape (view.height, view.width)
    """
    rows, cols = view.display_shape
    wy, wx = view.window
    # `plane` is a 2D array or memory map (sliced before it is read); cast() is for mypy only
    window = np.asarray(cast("np.ndarray", plane)[view.y0:view.y0 + wy, view.x0:view.x0 + wx])
    small = to_uint8(bin_mean(window, view.step), lo, hi)
    out = np.zeros((rows, cols), np.uint8)
    out[:small.shape[0], :small.shape[1]] = small
    if view.scale > 1:
        out = np.repeat(np.repeat(out, view.scale, axis=0), view.scale, axis=1)
    return np.ascontiguousarray(out[:view.height, :view.width])


def magnify(image: ArrayLike, factor: int) -> np.ndarray:
    """Nearest-neighbour magnification of a 2D (or 2D + channels) image by an integer `factor`."""
    a = np.asarray(image)
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1) if factor > 1 else a


def mask_panels(mask: ArrayLike, zoom: int, gap: int,
                colour: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    """RGBA image of the mask painter's overlay: the mask in `colour` (left) and in white (right).

    Parameters
    ----------
    mask : bool array of shape (tile, tile)
        The mask.
    zoom : int
        Canvas pixels per mask pixel.
    gap : int
        Transparent columns between the two panels.
    colour : tuple of 4 int
        RGBA (0-255) of painted pixels over the image; the right panel is opaque white on clear.

    Returns
    -------
    ndarray of uint8, shape (tile * zoom, 2 * tile * zoom + gap, 4)
    """
    big = magnify(np.asarray(mask, bool), zoom)
    size = big.shape[0]
    rgba = np.zeros((size, 2 * size + gap, 4), np.uint8)
    rgba[:, :size][big] = colour
    rgba[:, size + gap:][big] = 255
    return rgba


def encode_png(image: ArrayLike, *, level: int = 1) -> bytes:
    """Lossless PNG bytes of an 8-bit image.

    Parameters
    ----------
    image : uint8 array of shape (h, w), (h, w, 3) or (h, w, 4)
        Grey, RGB or RGBA pixels.
    level : int, default 1
        zlib compression level 0-9 (1 is fast and within a few % of 9 on noisy slices).

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        If `image` is not uint8 or has another shape.
    """
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"`image` must be uint8 of shape (h, w), (h, w, 3) or (h, w, 4), got "
                         f"{a.dtype} of shape {a.shape}; convert it with to_uint8 first")
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    raw = np.zeros((h, 1 + w * channels), np.uint8)  # filter byte 0 (None) before each row
    raw[:, 1:] = a.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)), _chunk(b"IEND", b"")))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def draw_png(canvas: Any, png: bytes, image: ArrayLike, x: int = 0, y: int = 0) -> None:
    """Draw already-encoded PNG bytes on an ipycanvas ``Canvas`` at canvas point (x, y).

    Sends the same ``putImageData`` command as ``Canvas.put_image_data`` (the frontend decodes
    any browser image format), but with `png` encoded by :func:`encode_png`, which is ~3x faster
    than ipycanvas's own encoder and is cached by the widgets. If a future ipycanvas lacks the
    internal command, falls back to ``canvas.put_image_data(image, x, y)`` (also lossless for
    grey and RGBA images).

    Parameters
    ----------
    canvas : ipycanvas.Canvas
        A single canvas (one layer of a MultiCanvas).
    png : bytes
        The PNG of `image`.
    image : uint8 array
        The pixels, used only by the fallback.
    x, y : int, default 0
        Canvas position of the image's top-left corner.
    """
    manager = getattr(canvas, "_canvas_manager", None)
    try:
        from ipycanvas.canvas import COMMANDS
        command = COMMANDS["putImageData"]
    except (ImportError, KeyError):
        manager = None
    if manager is None or not hasattr(manager, "send_draw_command"):
        canvas.put_image_data(np.asarray(image), x, y)
        return
    manager.send_draw_command(canvas, command, [x, y], [png])


def pin_size(widget: Any, width: int, height: int) -> None:
    """Show `widget` (a canvas) at exactly ``width × height`` CSS pixels, one per canvas pixel.

    ipycanvas otherwise stretches a canvas to the width of the notebook: a 512 px slice was drawn
    848 px tall (taller than a laptop's window, so the slice, its slider and its status line were
    never in view together) and blurred by the non-integer resampling.
    """
    widget.layout.width = widget.layout.min_width = f"{int(width)}px"
    widget.layout.height = widget.layout.min_height = f"{int(height)}px"


def scale_bar(apix: float, pixels_per_voxel: float, width: int, *, fraction: float = 0.2
              ) -> tuple[float, str]:
    """A scale bar for an image of `apix` Å/voxel drawn at `pixels_per_voxel`: ``(pixels, label)``.

    The bar is the round length (1, 2 or 5 × 10ⁿ Å, written in nm from 10 nm up) closest to
    `fraction` of the image's `width` in pixels, as microscopy viewers draw it.

    >>> scale_bar(10.0, 0.5, 512)  # a 1024² slice at 10 Å shown at 512²
    (100.0, '200 nm')
    >>> scale_bar(20.0, 4.0, 256)
    (40.0, '20 nm')
    """
    target = fraction * width / pixels_per_voxel * apix  # Å
    decade = 10.0 ** np.floor(np.log10(target))
    length = min((m * decade for m in (1, 2, 5, 10)), key=lambda a: abs(np.log(a / target)))
    label = f"{length / 10:g} nm" if length >= 100 else f"{length:g} Å"
    return float(length / apix * pixels_per_voxel), label


def draw_scale_bar(canvas: Any, apix: float, pixels_per_voxel: float, width: int, height: int
                   ) -> str:
    """Draw a :func:`scale_bar` in the bottom-left corner of `canvas` (white on a dark outline,
    seen on any image); returns its label."""
    pixels, label = scale_bar(apix, pixels_per_voxel, width)
    x, y = 12.0, height - 14.0
    for colour, line in OUTLINE:
        canvas.stroke_style, canvas.line_width = colour, line + 2
        canvas.stroke_line(x, y, x + pixels, y)
    canvas.font = "bold 12px sans-serif"
    canvas.line_width, canvas.stroke_style, canvas.fill_style = 3.0, OUTLINE[0][0], OUTLINE[1][0]
    canvas.stroke_text(label, x, y - 6)
    canvas.fill_text(label, x, y - 6)
    return label


def burn_scale_bar(image: ArrayLike, pixels: float) -> NDArray[np.uint8]:
    """A copy of 8-bit `image` with a white bar `pixels` long, outlined in black, in its bottom-left
    corner: a scale bar for images shown without a canvas (its label goes beside the image)."""
    out = np.array(image, np.uint8)
    height, width = out.shape[:2]
    length = int(round(min(pixels, width - 8)))
    y, x = height - 7, 4
    out[y - 1:y + 4, x - 1:x + length + 1] = 0
    out[y:y + 3, x:x + length] = 255
    return out


def burn_box(image: ArrayLike, top: int, left: int, size: int) -> NDArray[np.uint8]:
    """A copy of 8-bit `image` with the square of `size` pixels at (`top`, `left`) outlined: a
    white line just outside it and a black one outside that, seen on any image; clipped to the
    image."""
    out = np.array(image, np.uint8)
    for margin, value in ((2, 0), (1, 255)):
        y0, x0, y1, x1 = top - margin, left - margin, top + size - 1 + margin, left + size - 1 + margin
        rows, cols = slice(max(y0, 0), max(y1 + 1, 0)), slice(max(x0, 0), max(x1 + 1, 0))
        for y in (y0, y1):
            if 0 <= y < out.shape[0]:
                out[y, cols] = value
        for x in (x0, x1):
            if 0 <= x < out.shape[1]:
                out[rows, x] = value
    return out
