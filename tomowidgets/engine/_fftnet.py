"""Private numerics of the FFT engine: kernel spectra and the per-tile steps of the paper's network.

Every convolution here is a Keras ``Conv2D`` (a cross-correlation) done as a circular correlation
with FFTs on a window larger than the part that is kept: ``c[i] = sum_k x[i + k] w[k]`` is
``irfft(rfft(x) * conj(rfft(w_padded)))`` and has no wrap-around for ``0 <= i < n - (k - 1)``.
Arrays are channel-last, ``(y, x, channel)``, so a window's spectrum reshapes for free to the
``(frequency, channel)`` rows that ``np.matmul`` multiplies by the per-frequency ``channel x
channel`` kernel matrices. float32/complex64 throughout. A bias is added through the DC bin of the
spectrum (``irfft2`` divides by ``n * n``), which costs no extra pass. 2D inverse transforms are
done as two 1D passes so that the second pass skips the rows that would be cropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.fft as sfft

#: ``run(function, jobs)``: call ``function(*job)`` for each job (in parallel or not), then return.
Runner = Callable[[Callable[..., None], Sequence[tuple[Any, ...]]], None]

#: Output channels whose kernel spectra are computed at once (bounds the transient memory).
_SPECTRUM_CHUNK = 8


class Scratch:
    """Work arrays reused across the blocks and batches of one :meth:`FFTEngine.predict` call.

    A block's pooled maps and a batch's spectra are tens of MB each, above glibc's mmap
    threshold: allocated afresh, each is mapped anew and its pages fault in again on first
    write (~40 ms of system time per 1024 x 1024 slice, measured). Arrays come uninitialised.
    Not for sharing between threads.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """An uninitialised array of `shape` and `dtype`, sharing memory with the last `name`."""
        size = int(np.prod(shape))
        flat = self._arrays.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = self._arrays[name] = np.empty(size, dtype)
        return flat[:size].reshape(shape)


def kernel_spectrum(kernel: np.ndarray, n: int) -> np.ndarray:
    """Spectrum of a Keras kernel for correlations on an ``n x n`` window.

    Parameters
    ----------
    kernel : ndarray of shape (k, k, in, out)
        Keras ``Conv2D`` kernel.
    n : int
        FFT size (pixels), ``n >= k``.

    Returns
    -------
    ndarray of shape (n, n // 2 + 1, in, out), complex64
        ``conj(rfft2(kernel padded to n x n))`` over the first two axes.
    """
    k, _, c_in, c_out = kernel.shape
    out = np.empty((n, n // 2 + 1, c_in, c_out), np.complex64)
    for start in range(0, c_out, _SPECTRUM_CHUNK):
        stop = min(start + _SPECTRUM_CHUNK, c_out)
        padded = np.zeros((n, n, c_in, stop - start), np.float32)
        padded[:k, :k] = kernel[..., start:stop]
        np.conjugate(sfft.rfft2(padded, axes=(0, 1)), out=out[..., start:stop])
    return out


def window(image: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The ``size x size`` window of `image` at (`top`, `left`), zero outside the image.

    `image` is ``(y, x)`` or ``(y, x, channels)``. A view when the window lies inside the image,
    else a zero-padded copy.
    """
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, image.shape[0]), min(left + size, image.shape[1])
    if (y1 - y0, x1 - x0) == (size, size):
        return image[y0:y1, x0:x1]
    out = np.zeros((size, size, *image.shape[2:]), np.float32)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def layer1_pooled(tile: np.ndarray, spectrum: np.ndarray, bias: np.ndarray, rows: int, cols: int,
                  out: np.ndarray) -> None:
    """Layer 1 (conv + ReLU) and 2x2 max-pooling of one input window, written into `out`.

    Parameters
    ----------
    tile : ndarray of shape (n, n) or (n, n, inputs), float32
        Input window whose row/column 0 sits ``k // 2`` pixels before the first output pixel;
        with several inputs (a 2.5D network's neighbouring slices) on the last axis.
    spectrum : ndarray of shape (n, n // 2 + 1, channels) or (n, n // 2 + 1, inputs, channels)
        Layer-1 kernel spectrum for this window size.
    bias : ndarray of shape (channels,), float32
        Layer-1 bias.
    rows, cols : int
        Pooled output size wanted, ``2 * rows <= n - k + 1`` (likewise `cols`).
    out : ndarray of shape (rows, cols, channels), float32
        Destination (a view into the pooled-map buffer).
    """
    n = tile.shape[0]
    if tile.ndim == 2:
        spec = sfft.rfft2(tile)[..., None] * spectrum
    else:  # sum over the input slices of (input spectrum x kernel spectrum)
        inputs = sfft.rfft2(tile, axes=(0, 1))
        spec = inputs[..., 0, None] * spectrum[..., 0, :]
        for c in range(1, tile.shape[2]):
            spec += inputs[..., c, None] * spectrum[..., c, :]
    spec[0, 0] += bias * np.float32(n * n)
    # irfft2 in two passes, the second one only over the rows that are kept
    conv = sfft.ifft(spec, axis=0, overwrite_x=True)[:2 * rows]
    conv = sfft.irfft(conv, n=n, axis=1)[:, :2 * cols]
    # max-pool as the maximum of four strided views; ReLU commutes with max and is applied last.
    pooled = np.maximum(conv[0::2, 0::2], conv[0::2, 1::2])
    np.maximum(pooled, conv[1::2, 0::2], out=pooled)
    np.maximum(pooled, conv[1::2, 1::2], out=pooled)
    np.maximum(pooled, 0.0, out=out)


def layers23(windows: list[np.ndarray], spec2: np.ndarray, bias2: np.ndarray, spec3: np.ndarray,
             bias3: np.ndarray, inside: list[tuple[tuple[int, int], tuple[int, int]]],
             halo: int, run: Runner, scratch: Scratch, chunks: int = 1) -> np.ndarray:
    """Layers 2 (conv + ReLU) and 3 (conv), then ``min(1, x)``, for a batch of pooled windows.

    Parameters
    ----------
    windows : list of ndarray of shape (m, m, channels), float32
        Pooled ReLU maps (views are fine); each window starts ``2 * (k // 2)`` pooled pixels before
        its output.
    spec2 : ndarray of shape (m * (m // 2 + 1), channels, channels), complex64
        Layer-2 kernel spectrum, ``(frequency, in, out)``.
    bias2 : ndarray of shape (channels,), float32
        Layer-2 bias.
    spec3 : ndarray of shape (m * (m // 2 + 1), channels, 1), complex64
        Layer-3 kernel spectrum.
    bias3 : ndarray of shape (1,), float32
        Layer-3 bias.
    inside : list of ((row0, row1), (col0, col1)) per window
        Rows and columns of the layer-2 output (window coordinates) that lie inside the image;
        the others are set to zero, as layer 3's ``'same'`` zero padding requires.
    halo : int
        ``k // 2`` for ``k x k`` kernels.
    run : callable
        ``run(function, jobs)`` calls ``function(*job)`` for every job, possibly in parallel, and
        returns when all are done.
    scratch : Scratch
        Where the batch's spectra are kept.
    chunks : int, default 1
        Frequency chunks the ``channel x channel`` products are split into (jobs for `run`).

    Returns
    -------
    ndarray of shape (m, m, batch), float32
        Network output; valid in ``[:m - 4 * (k // 2), :m - 4 * (k // 2)]``.

    Notes
    -----
    The FFTs run one window at a time (40 channels of ``m x m`` stay in cache; one transform over
    the whole batch measured 2x slower per pixel), while the per-frequency ``40 x 40`` products
    run on the whole batch through strided ``(frequency, window, channel)`` views, which BLAS
    takes as they are: one ``np.matmul`` call per frequency costs ~1.3 us plus ~0.13 us per window.
    """
    m, _, channels = windows[0].shape
    batch = len(windows)
    half = m // 2 + 1
    nfreq = m * half
    valid = m - 2 * halo  # layer-2 output rows free of wrap-around
    scale = np.float32(m * m)
    spec = scratch.get("spec", (batch, nfreq, channels), np.complex64)
    hidden_spec = scratch.get("hidden_spec", (batch, nfreq, channels), np.complex64)
    out_spec = scratch.get("out_spec", (nfreq, batch, 1), np.complex64)
    bounds = np.linspace(0, nfreq, chunks + 1).astype(int)
    ranges = [(slice(a, b),) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    def forward(b: int) -> None:
        spec[b] = sfft.rfft2(windows[b], axes=(0, 1)).reshape(nfreq, channels)

    def layer2(freqs: slice) -> None:
        np.matmul(spec[:, freqs].transpose(1, 0, 2), spec2[freqs],
                  out=hidden_spec[:, freqs].transpose(1, 0, 2))

    def relu_forward(b: int) -> None:
        # only rows [0, valid) of the layer-2 output reach a kept output: transform those
        # (irfft2 / rfft2 in two passes; the row-wise passes skip the others, fft pads them).
        hidden = sfft.ifft(hidden_spec[b].reshape(m, half, channels), axis=0, overwrite_x=True)
        hidden = sfft.irfft(hidden[:valid], n=m, axis=1)
        np.maximum(hidden, 0.0, out=hidden)
        (row0, row1), (col0, col1) = inside[b]
        for rows, cols in ((slice(0, row0), slice(None)), (slice(row1, valid), slice(None)),
                           (slice(None), slice(0, col0)), (slice(None), slice(col1, m))):
            hidden[rows, cols] = 0.0
        hidden_row_spec = sfft.rfft(hidden, axis=1)
        spec[b] = sfft.fft(hidden_row_spec, n=m, axis=0, overwrite_x=True).reshape(nfreq, channels)

    def layer3(freqs: slice) -> None:
        np.matmul(spec[:, freqs].transpose(1, 0, 2), spec3[freqs], out=out_spec[freqs])

    run(forward, [(b,) for b in range(batch)])
    run(layer2, ranges)
    hidden_spec[:, 0] += bias2 * scale
    run(relu_forward, [(b,) for b in range(batch)])
    run(layer3, ranges)
    out_spec[0] += bias3 * scale
    result = sfft.irfft2(out_spec.reshape(m, half, batch), s=(m, m), axes=(0, 1))
    return np.minimum(result, 1.0, out=result)
