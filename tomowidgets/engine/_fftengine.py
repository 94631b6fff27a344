"""FFT inference engine: apply a trained network to tomogram slices without TensorFlow.

The paper applies its networks "by propagating the image [...] with simple matrix operations
combined with FFTs for the convolution operations" (Chen et al. 2017, Online Methods).
:class:`FFTEngine` does that in numpy/scipy.fft with the weights of the Keras model (``conv1``
40@15x15 + ReLU, 2x2 max-pool, ``conv2`` 40@15x15 + ReLU, ``conv3`` 1@15x15, then ``min(1, x)``)
and returns what Keras ``predict`` returns, to float32 rounding, at half resolution. Slices are
processed in overlapping tiles so memory stays bounded (a 4096 x 4096 slice needs about 0.6 GB),
and the tiles run on all cores.

Examples
--------
>>> import numpy as np
>>> from tomowidgets.engine import FFTEngine, unbin
>>> rng = np.random.default_rng(0)
>>> weights = {"conv1": [rng.normal(0, 0.05, (15, 15, 1, 40)), np.zeros(40)],
...            "conv2": [rng.normal(0, 0.02, (15, 15, 40, 40)), np.zeros(40)],
...            "conv3": [rng.normal(0, 0.02, (15, 15, 40, 1)), np.zeros(1)]}
>>> engine = FFTEngine(weights, tile=128)
>>> engine.predict(rng.normal(size=(2, 64, 65)).astype(np.float32)).shape
(2, 32, 32)
>>> engine.predict_full(np.zeros((64, 65), np.float32)).shape
(64, 65)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from tomowidgets._validate import as_float32, check_positive_int, check_slices
from tomowidgets.engine import _fftnet
from tomowidgets.network.netfile import LAYERS, NetworkRecord, check_weights

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["DEFAULT_TILE", "FFTEngine", "LAYERS", "unbin"]

#: Default edge (input pixels) of the windows in which layers 2 and 3 are transformed: 160 x 160
#: FFTs at half resolution, 132 x 132 outputs kept (4 x 4 windows cover a 1024 x 1024 slice).
#: Chosen by measurement (benchmarks/apply_speed.py); 400 was as fast and needs more memory.
DEFAULT_TILE = 320
#: Edge (input pixels) of the layer-1 FFT windows: 114 x 114 of each 128 x 128 are kept.
#: 96 ... 192 measured within 5 % of each other; 256 was 40 % slower (cache).
_LAYER1_WINDOW = 128
#: Blocks of at most this many layer-2/3 windows per side share one pooled-map buffer (its halo
#: is computed twice, by neighbouring blocks: +11 % layer-1 work; 8 saved ~3 % for 180 MB more).
_BLOCK_WINDOWS = 4
#: Layer-2/3 windows transformed as one batch: the 40 x 40 per-frequency products run over the
#: whole batch (16 x 12 MB of spectra at tile 320).
_BATCH = 16


class FFTEngine:
    """The paper's network evaluated with FFT convolutions, in overlapping tiles, on all cores.

    Parameters
    ----------
    weights : mapping of str to [kernel, bias], or NetworkRecord
        Keras weights by layer name, as ``{layer.name: layer.get_weights()}`` or
        ``tomowidgets.network.read_weights(path)``: ``"conv1"`` kernel ``(k, k, 2 * context + 1, c)``,
        ``"conv2"`` ``(k, k, c, c)``, ``"conv3"`` ``(k, k, c, 1)``, biases ``(c,)``, ``(c,)``,
        ``(1,)``; ``k`` odd (15 and ``c = 40`` in the paper; ``context = 0``: one input slice).
        Other keys are ignored.
        A :class:`~tomowidgets.network.netfile.NetworkRecord` (already checked) is taken as it is.
    tile : int, default 320
        Edge, in input pixels, of the square windows in which layers 2 and 3 are transformed
        (FFTs of ``tile // 2`` at half resolution). Even, and ``tile // 2 > 4 * (k // 2)``.
        Results do not depend on it; speed and memory do.
    workers : int or None, default None
        Threads to use; None uses ``os.cpu_count()``. Use 1 when the caller already runs several
        engines in parallel (e.g. a threaded Dask scheduler).

    Raises
    ------
    ValueError
        If a layer is missing, a kernel or bias has the wrong shape or non-finite values, or
        `tile` / `workers` are out of range.

    See Also
    --------
    unbin : upsample the half-resolution output back to the slice size.

    Notes
    -----
    Layer 1 runs on 128 x 128 windows with a ``k // 2`` pixel halo. Its pooled ReLU maps for a
    block of up to 4 x 4 layer-2 windows go into a buffer with a ``2 * (k // 2)`` pooled-pixel
    halo, zero outside the image exactly like Keras' ``'same'`` padding. Layers 2 and 3 then run
    on that block's windows as one batch: per-window FFTs, the ``channel x channel`` products per
    frequency as one ``np.matmul`` over the batch, and layer-2 outputs outside the image set to
    zero before layer 3. Every step is split into jobs for a pool of `workers` threads (numpy,
    scipy.fft and BLAS release the GIL).

    Kernel spectra are computed once, in the constructor: about 170 MB for the paper's network at
    ``tile=320``, and 0.5-1 s. Peak memory beyond input and output is about 0.4 GB whatever the
    slice size. An engine pickles as its weights (1.5 MB), not its spectra, and is safe to share
    between threads.
    """

    def __init__(self, weights: Mapping[str, Sequence[Any]] | NetworkRecord, *, tile: int = DEFAULT_TILE,
                 workers: int | None = None) -> None:
        checked = weights.weights if isinstance(weights, NetworkRecord) else check_weights(weights)
        kernels = [checked[name][0] for name in LAYERS]
        biases = [checked[name][1] for name in LAYERS]
        self.kernel_size = kernels[0].shape[0]
        self.channels = kernels[0].shape[3]
        #: Slices above and below each slice that a 2.5D network reads (0 for the paper's 2D one).
        self.context = (kernels[0].shape[2] - 1) // 2
        self.halo = self.kernel_size // 2
        tile = check_positive_int(tile, "tile")
        if tile % 2 or tile // 2 <= 4 * self.halo:
            raise ValueError(
                f"`tile` must be even and > {8 * self.halo} input pixels for {self.kernel_size}x"
                f"{self.kernel_size} kernels, got {tile}; the default is {DEFAULT_TILE}")
        self.tile = tile
        if workers is None:
            workers = os.cpu_count() or 1
        self.workers = check_positive_int(workers, "workers")
        self._weights = checked
        self._biases = biases
        self._window1 = max(_LAYER1_WINDOW, 2 * self.kernel_size + 2)
        m = tile // 2
        self._spec1 = _fftnet.kernel_spectrum(kernels[0], self._window1)
        if not self.context:
            self._spec1 = self._spec1[:, :, 0, :]
        self._spec2 = _fftnet.kernel_spectrum(kernels[1], m).reshape(-1, self.channels,
                                                                     self.channels)
        self._spec3 = _fftnet.kernel_spectrum(kernels[2], m).reshape(-1, self.channels, 1)

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuild from the weights: the spectra are 100x larger than the weights
        return (functools.partial(FFTEngine, tile=self.tile, workers=self.workers),
                (self._weights,))

    def __repr__(self) -> str:
        context = f", context={self.context}" if self.context else ""
        return (f"FFTEngine(kernel_size={self.kernel_size}, channels={self.channels}{context}, "
                f"tile={self.tile}, workers={self.workers})")

    @property
    def margin(self) -> int:
        """Input pixels on each side of a 2 x 2 input block that its output depends on.

        ``k // 2`` for layer 1 plus ``2 * (k // 2)`` pooled pixels for layers 2 and 3, i.e. 35 for
        the paper's 15 x 15 kernels. To split a slice into pieces (e.g. ``dask.map_overlap``),
        give them an overlap of at least this, rounded up to even (36), and start every piece on
        an even pixel so the 2 x 2 pooling grid stays aligned.
        """
        return 5 * self.halo

    def predict(self, slices: ArrayLike) -> NDArray[np.float32]:
        """Network output at half resolution, like Keras ``model.predict`` (before calibration).

        Parameters
        ----------
        slices : array_like of shape (y, x) or (n, y, x)
            One slice or a stack of slices (e.g. ``tomogram.data[z0:z1]``); any real dtype,
            computed in float32. ``y, x >= 2``. For a 2.5D network (:attr:`context` = k > 0) a
            stack of consecutive slices of which the first and last k are only read as context
            (e.g. ``tomogram.slab(z0, z1, context=k)``): n - 2k slices are scored.

        Returns
        -------
        ndarray of shape (y // 2, x // 2) or (n - 2 * context, y // 2, x // 2), float32
            Scores, capped at 1. An odd last row/column of the input is dropped by the pooling,
            as in Keras.

        Raises
        ------
        ValueError
            If `slices` is not 2D or 3D, not real, smaller than 2 x 2 or not finite, or holds no
            more than ``2 * context`` slices.
        """
        stack, single = check_slices(slices, self.context)
        k = self.context
        out = np.empty((len(stack) - 2 * k, stack.shape[1] // 2, stack.shape[2] // 2), np.float32)
        pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        run = functools.partial(_run, pool)
        scratch = _fftnet.Scratch()
        try:
            for i, dest in enumerate(out):
                # a 2.5D network's inputs: the slice and its neighbours as channels, (y, x, 2k + 1)
                image = stack[i] if not k else stack[i:i + 2 * k + 1].transpose(1, 2, 0)
                self._predict_slice(image, dest, run, scratch)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return out[0] if single else out

    def predict_full(self, slices: ArrayLike) -> NDArray[np.float32]:
        """Network output unbinned to the input size: :meth:`predict`, then :func:`unbin`.

        Parameters
        ----------
        slices : array_like of shape (y, x) or (n, y, x)
            As for :meth:`predict`.

        Returns
        -------
        ndarray of the shape of `slices`, float32
            Each half-resolution score duplicated into a 2 x 2 block (nearest neighbour); for an
            odd size the last row/column repeats the one before it.

        Raises
        ------
        ValueError
            As for :meth:`predict`.
        """
        half = self.predict(slices)
        return unbin(half, np.shape(slices)[-2:])

    # -- internals -------------------------------------------------------------------------------

    def _predict_slice(self, image: np.ndarray, out: np.ndarray, run: _fftnet.Runner,
                       scratch: _fftnet.Scratch) -> None:
        """Fill `out` (pooled resolution) block by block: layer 1 into a buffer, then layers 2-3."""
        h = self.halo
        m = self.tile // 2
        keep = m - 4 * h
        rows, cols = out.shape
        starts_y = range(0, rows, keep)
        starts_x = range(0, cols, keep)
        for by in range(0, len(starts_y), _BLOCK_WINDOWS):
            for bx in range(0, len(starts_x), _BLOCK_WINDOWS):
                ys = starts_y[by:by + _BLOCK_WINDOWS]
                xs = starts_x[bx:bx + _BLOCK_WINDOWS]
                top, left = ys[0] - 2 * h, xs[0] - 2 * h
                pooled = self._pooled_block(image, top, left, len(ys) * keep + 4 * h,
                                            len(xs) * keep + 4 * h, out.shape, run, scratch)
                windows = [(y, x) for y in ys for x in xs]
                for start in range(0, len(windows), _BATCH):
                    self._layers23(windows[start:start + _BATCH], pooled, top, left, out, run,
                                   scratch)

    def _layers23(self, windows: list[tuple[int, int]], pooled: np.ndarray, top: int, left: int,
                  out: np.ndarray, run: _fftnet.Runner, scratch: _fftnet.Scratch) -> None:
        """Layers 2-3 for the windows whose outputs start at pooled ``(y, x)`` in `windows`."""
        h = self.halo
        m = self.tile // 2
        keep = m - 4 * h
        rows, cols = out.shape
        views, inside = [], []
        for y, x in windows:
            r, c = y - 2 * h - top, x - 2 * h - left  # the window starts 2h before its output
            views.append(pooled[r:r + m, c:c + m])
            # layer-2 output index i (window coordinates) is pooled row y - h + i
            inside.append((_inside(y - h, rows, m), _inside(x - h, cols, m)))
        result = _fftnet.layers23(views, self._spec2, self._biases[1], self._spec3,
                                  self._biases[2], inside, h, run, scratch, 4 * self.workers)
        for b, (y, x) in enumerate(windows):
            ny, nx = min(keep, rows - y), min(keep, cols - x)
            out[y:y + ny, x:x + nx] = result[:ny, :nx, b]

    def _pooled_block(self, image: np.ndarray, top: int, left: int, height: int, width: int,
                      pooled_shape: tuple[int, int], run: _fftnet.Runner,
                      scratch: _fftnet.Scratch) -> np.ndarray:
        """Pooled layer-1 maps for pooled rows/cols ``top:top+height``, ``left:left+width``."""
        buffer = scratch.get("pooled", (height, width, self.channels), np.float32)
        n = self._window1
        step = (n - self.kernel_size + 1) // 2
        y0, y1 = max(top, 0), min(top + height, pooled_shape[0])
        x0, x1 = max(left, 0), min(left + width, pooled_shape[1])
        # outside the image the maps are zero, as Keras' 'same' padding of layer 2 makes them;
        # layer 1 overwrites all the rest
        buffer[:max(y0 - top, 0)] = 0.0
        buffer[max(y1 - top, 0):] = 0.0
        buffer[:, :max(x0 - left, 0)] = 0.0
        buffer[:, max(x1 - left, 0):] = 0.0
        jobs = []
        for y in range(y0, y1, step):
            for x in range(x0, x1, step):
                ny, nx = min(step, y1 - y), min(step, x1 - x)
                dest = buffer[y - top:y - top + ny, x - left:x - left + nx]
                jobs.append((image, y, x, ny, nx, dest))
        run(self._layer1_window, jobs)
        return buffer

    def _layer1_window(self, image: np.ndarray, y: int, x: int, ny: int, nx: int,
                       dest: np.ndarray) -> None:
        """Pooled layer-1 maps for pooled rows ``y:y+ny`` and columns ``x:x+nx``, into `dest`."""
        n = self._window1
        tile = _fftnet.window(image, 2 * y - self.halo, 2 * x - self.halo, n)
        _fftnet.layer1_pooled(tile, self._spec1, self._biases[0], ny, nx, dest)


def unbin(half: ArrayLike, shape: Sequence[int]) -> NDArray[np.float32]:
    """Upsample a half-resolution map by 2 (nearest neighbour) to `shape`.

    Parameters
    ----------
    half : array_like of shape (..., y // 2, x // 2)
        Network output at half resolution, e.g. from :meth:`FFTEngine.predict`.
    shape : sequence of 2 ints
        ``(y, x)``, the full-resolution slice size.

    Returns
    -------
    ndarray of shape (..., y, x), float32
        Pixel ``(i, j)`` holds ``half[..., min(i // 2, y // 2 - 1), min(j // 2, x // 2 - 1)]``:
        each value fills a 2 x 2 block, and for an odd size the last row/column repeats the one
        before it (the row Keras' pooling dropped).

    Raises
    ------
    ValueError
        If `half` does not have the shape ``(..., y // 2, x // 2)``.
    """
    half = as_float32(half, "half")
    y, x = (int(v) for v in shape)
    if half.ndim < 2 or half.shape[-2:] != (y // 2, x // 2) or y < 2 or x < 2:
        raise ValueError(f"`half` must have shape (..., {y // 2}, {x // 2}) to unbin to {(y, x)}, "
                         f"got {half.shape}; pass the shape of the slices given to predict()")
    rows = np.minimum(np.arange(y) // 2, y // 2 - 1)
    cols = np.minimum(np.arange(x) // 2, x // 2 - 1)
    return np.ascontiguousarray(half[..., rows[:, None], cols[None, :]])


def _inside(first: int, size: int, m: int) -> tuple[int, int]:
    """Window indices ``[lo, hi)`` whose image index ``first + i`` lies in ``[0, size)``."""
    return min(max(-first, 0), m), max(min(size - first, m), 0)


def _run(pool: ThreadPoolExecutor | None, function: Any, jobs: Sequence[tuple[Any, ...]]) -> None:
    """Call ``function(*job)`` for every job, on `pool` if there is one; re-raise the first error."""
    if pool is None:
        for job in jobs:
            function(*job)
    else:
        for future in [pool.submit(function, *job) for job in jobs]:
            future.result()

