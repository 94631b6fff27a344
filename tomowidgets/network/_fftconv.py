"""The paper's network trained through FFT-domain convolutions (TensorFlow, private).

Same network, same variables and same loss as the Keras model built by
:func:`tomowidgets.network.build_model`; only the arithmetic differs. Each 15×15 'same'
cross-correlation is computed as a product of spectra of zero-padded arrays (linear, not circular:
the padded size is at least ``n + k - 1 - k // 2``, see below), the 40×40 per-frequency channel
mixing of layer 2 as batched complex matrix products, and the backward pass is written out by hand
in the same domain (TensorFlow's generic gradients of ``rfft2d`` multiply by dense DFT matrices,
which costs more than the convolutions). Layer 2's kernels enter and leave the Fourier domain
through DFTs evaluated only at their ``k × k`` taps (small matrix products), not FFTs of mostly
zero padded arrays. On 64² tiles training is ~8× faster than with TensorFlow's direct convolutions
on a 2-core CPU (``benchmarks/train_speed.py``).

Conventions, for one channel: a signal ``s`` of length ``n`` is embedded at offset ``p = k // 2`` in
a zero array of length ``N`` (``Ps``), a kernel ``w`` at offset 0 (``Qw``), a gradient ``g`` at
offset 0 (``Eg``); ``F`` is the real FFT. Then

- forward  ``a[i]  = Σ_u s[i+u-p] w[u]``  = ``irfft(F(Ps) · conj(F(Qw)))[i]``,        i < n
- input    ``ds[j] = Σ_i g[i] w[j+p-i]``  = ``irfft(F(Eg) · F(Qw))[j + p]``,           j < n
- kernel   ``dw[u] = Σ_i g[i] s[i+u-p]``  = ``irfft(F(Ps) · conj(F(Eg)))[u]``,        u < k

none of which wraps around when ``N >= n + k - 1 - p`` (``n + p`` for odd ``k``), not only when
``N >= n + k - 1``: the indices these sums read run up to ``n + k - 2``, and those that wrap past
``N`` land in ``[0, n + k - 1 - N)``, inside the ``p`` leading zeros of ``Ps`` (forward, kernel)
or where the kernel is zero (input). On 64² tiles this makes the frames 72² and 40² instead of
80² and 48²: 19 % and 31 % fewer frequencies.

Import this module only after ``tomowidgets.network._cnn._tf()`` has configured TensorFlow (it imports
TensorFlow at module level).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import tensorflow as tf

__all__ = ["fft_sizes", "forward", "loss_and_gradients"]


def _even_fast_len(n: int) -> int:
    """Smallest even size >= n whose only prime factors are 2, 3 and 5 (fast FFTs)."""
    m = n + n % 2
    while True:
        r = m
        for f in (2, 3, 5):
            while r % f == 0:
                r //= f
        if r == 1:
            return m
        m += 2


@lru_cache(maxsize=64)
def fft_sizes(ny: int, nx: int, k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padded FFT sizes ``((N1y, N1x), (N2y, N2x))`` for layers 1 and 2/3 of an ``(ny, nx)`` tile.

    At least ``n + k - 1 - k // 2``, the least size at which the 'same' outputs and the gradients
    do not wrap around (see the module docstring), and even with only the factors 2, 3 and 5.
    """
    reach = k - 1 - k // 2
    return ((_even_fast_len(ny + reach), _even_fast_len(nx + reach)),
            (_even_fast_len(ny // 2 + reach), _even_fast_len(nx // 2 + reach)))


def _pad(a: tf.Tensor, n: tuple[int, int], offset: int) -> tf.Tensor:
    """Zero-pad the last two axes of `a` to `n`, placing `a` at `offset`."""
    ny, nx = a.shape[-2], a.shape[-1]
    lead = [[0, 0]] * (len(a.shape) - 2)
    return tf.pad(a, lead + [[offset, n[0] - ny - offset], [offset, n[1] - nx - offset]])


def _kernel_spectra(w: tf.Tensor, n: tuple[int, int]) -> tf.Tensor:
    """Spectra of Keras kernels ``(k, k, in, out)`` → ``(out, in, Ny, Nx//2+1)``, kernel at offset 0."""
    return tf.signal.rfft2d(tf.transpose(w, [3, 2, 0, 1]), fft_length=n)


@lru_cache(maxsize=16)
def _dft_factors(n: tuple[int, int], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DFT factors between ``k`` kernel taps and the ``n = (Ny, Nx)`` spectrum of ``rfft2d``.

    ``ey[f, u] = exp(2πi f u / Ny)`` (``(Ny, k)``); ``cx, sx[f, v] = cos, sin(2π f v / Nx)``
    (``(Nx//2+1, k)``); ``weight[f]``: 1 at the DC and Nyquist columns, 2 elsewhere, over
    ``Ny * Nx`` (how ``irfft2d`` counts the columns that the real transform leaves out). float64.
    """
    ny, nx = n
    mx = nx // 2 + 1
    taps = np.arange(k)
    ey = np.exp(2j * np.pi * np.outer(np.arange(ny), taps) / ny)
    angle = 2 * np.pi * np.outer(np.arange(mx), taps) / nx
    weight = np.full(mx, 2.0)
    weight[0] = 1.0
    if nx % 2 == 0:
        weight[-1] = 1.0
    return ey, np.cos(angle), np.sin(angle), weight / (ny * nx)


def _factors(n: tuple[int, int], k: int, dtype: tf.DType) -> tuple[tf.Tensor, ...]:
    """:func:`_dft_factors` as tensors of `dtype` (``ey`` of the matching complex type)."""
    ey, cx, sx, weight = _dft_factors(n, k)
    complex_dtype = tf.complex64 if dtype == tf.float32 else tf.complex128
    return (tf.constant(ey, complex_dtype), tf.constant(cx, dtype), tf.constant(sx, dtype),
            tf.constant(weight, dtype))


def _conj_kernel_spectra(w: tf.Tensor, n: tuple[int, int]) -> tf.Tensor:
    """``conj`` of the spectra of Keras kernels ``(k, k, in, out)`` (at offset 0, padded to `n`),
    frequency-major: ``(Ny * (Nx//2+1), in, out)``.

    Two small matrix products over the ``k`` taps (a DFT evaluated only where the kernel is not
    zero) instead of FFTs of the mostly zero padded kernels and a transpose: 3-4× faster for the
    40 × 40 kernels of layer 2.
    """
    k, _, c_in, c_out = w.shape
    ey, cx, sx, _ = _factors(n, k, w.dtype)
    taps = tf.reshape(w, [k, k, c_in * c_out])                             # (u, v, p)
    # along x: R[u, fx, p] = Σ_v exp(+2πi fx v / Nx) w[u, v, p]
    rows = tf.complex(tf.matmul(cx[None], taps), tf.matmul(sx[None], taps))  # (u, fx, p)
    # along y: Σ_u exp(+2πi fy u / Ny) R[u, fx, p]
    spectra = tf.matmul(ey, tf.reshape(rows, [k, -1]))                      # (fy, fx * p)
    return tf.reshape(spectra, [-1, c_in, c_out])


def _kernel_from_spectra(spectra: tf.Tensor, n: tuple[int, int], k: int) -> tf.Tensor:
    """``irfft2d`` of frequency-major spectra ``(Ny * (Nx//2+1), in, out)`` cropped to the ``k × k``
    taps at offset 0, in Keras' layout ``(k, k, in, out)``.

    Evaluates the inverse DFT only at the kept taps, as two small matrix products, instead of
    full inverse FFTs, a crop and two transposes.
    """
    _, c_in, c_out = spectra.shape
    ey, cx, sx, weight = _factors(n, k, spectra.dtype.real_dtype)
    mx = cx.shape[0]
    # along y: T[u, fx, p] = Σ_fy exp(+2πi fy u / Ny) S[fy, fx, p]
    cols = tf.reshape(tf.matmul(ey, tf.reshape(spectra, [n[0], -1]), transpose_a=True),
                      [k, mx, c_in * c_out])
    # along x, real part only: Σ_fx weight[fx] Re(T[u, fx, p] exp(+2πi fx v / Nx))
    cw = tf.transpose(cx * weight[:, None])[None]                           # (1, v, fx)
    sw = tf.transpose(sx * weight[:, None])[None]
    taps = tf.matmul(cw, tf.math.real(cols)) - tf.matmul(sw, tf.math.imag(cols))
    return tf.reshape(taps, [k, k, c_in, c_out])


def _to_freq_major(a: tf.Tensor) -> tf.Tensor:
    """``(b, c, Ny, Mx)`` → ``(Ny*Mx, b, c)``: frequency as the batch axis of a matrix product."""
    b, c, ny, mx = a.shape
    return tf.reshape(tf.transpose(a, [2, 3, 0, 1]), [ny * mx, -1, c])


def _from_freq_major(a: tf.Tensor, shape: tuple[int, int]) -> tf.Tensor:
    """Inverse of :func:`_to_freq_major` for spectra of size ``shape = (Ny, Mx)``."""
    _, b, c = a.shape
    return tf.transpose(tf.reshape(a, [shape[0], shape[1], -1, c]), [2, 3, 0, 1])


def _pool(a1: tf.Tensor, size: tuple[int, int]) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
    """2×2 max-pool of the top-left ``2 hy × 2 hx`` pixels of layer-1 maps ``(b, c, Ny, Nx)`` →
    ``(b, c, hy, hx)`` for ``size = (hy, hx)``, and the routes :func:`_unpool` needs.

    Pooling before the offset and the ReLU gives the same result (both are monotonic) on 4× fewer
    pixels; Keras' 'valid' pooling drops an odd last row/column the same way. Pools in two stages,
    over the column pairs and then the row pairs of a ``(b, c, hy, 2, hx, 2)`` view: elementwise
    maxima of strided slices, about 1.5× faster on a 2-core CPU than TensorFlow's ``MaxPool`` and
    ``MaxPoolGrad``, which want channels last and so two transposes of the full-resolution maps.
    """
    hy, hx = size
    pairs = tf.reshape(a1[:, :, :2 * hy, :2 * hx], [-1, a1.shape[1], hy, 2, hx, 2])
    left, right = pairs[..., 0], pairs[..., 1]
    rows = tf.maximum(left, right)                                           # (b, c, hy, 2, hx)
    top, bottom = rows[:, :, :, 0], rows[:, :, :, 1]
    return tf.maximum(top, bottom), (left >= right, top >= bottom)


def _unpool(grad: tf.Tensor, routes: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """Route `grad` ``(b, c, hy, hx)`` to the maximum of each 2×2 window; ``(b, c, 2 hy, 2 hx)``.

    Of tied maxima (which constant corners of augmented tiles do produce) the first in row-major
    order gets it, as in TensorFlow's ``MaxPoolGrad`` that Keras uses: the first row holding the
    maximum (`top`: the top row's maximum is >= the bottom's) and, in it, the first column
    (`left`).
    """
    left, top = routes
    zero = tf.zeros_like(grad)
    rows = tf.stack([tf.where(top, grad, zero), tf.where(top, zero, grad)], axis=3)
    zero = tf.zeros_like(rows)
    pixels = tf.stack([tf.where(left, rows, zero), tf.where(left, zero, rows)], axis=-1)
    _, c, hy, hx = grad.shape   # the batch may be unknown while tracing
    return tf.reshape(pixels, [-1, c, 2 * hy, 2 * hx])


def _geometry(x: tf.Tensor, k1: tf.Tensor
              ) -> tuple[int, int, tuple[int, int], tuple[int, int], int, int]:
    """Kernel size ``k`` and offset ``p``, FFT sizes of layers 1 and 2/3, pooled size ``(hy, hx)``."""
    k = k1.shape[0]
    ny, nx = x.shape[1], x.shape[2]
    n1, n2 = fft_sizes(ny, nx, k)
    return k, k // 2, n1, n2, ny // 2, nx // 2


def _layers(x: tf.Tensor, weights: list[tf.Tensor]) -> dict[str, tf.Tensor]:
    """Forward pass; returns the raw output ``a3`` (before min(1, ·)) and what the backward pass needs."""
    k1, b1, k2, b2, k3, b3 = weights
    k, p, n1, n2, hy, hx = _geometry(x, k1)

    if x.shape.rank == 3:                                                    # one input slice
        xs = tf.signal.rfft2d(_pad(x, n1, p))                               # (b, N1, M1)
        a1s = xs[:, None] * tf.math.conj(_kernel_spectra(k1, n1)[:, 0])[None]
        xsf = None
    else:  # 2.5D: sum over the input slices, as layer 2 sums over channels
        xs = tf.signal.rfft2d(_pad(tf.transpose(x, [0, 3, 1, 2]), n1, p))   # (b, in, N1, M1)
        xsf = _to_freq_major(xs)                                             # (F1, b, in)
        a1f = tf.matmul(xsf, _conj_kernel_spectra(k1, n1))                  # (F1, b, 40)
        a1s = _from_freq_major(a1f, xs.shape[2:])                            # (b, 40, N1, M1)
    a1 = tf.signal.irfft2d(a1s, fft_length=n1)                               # (b, 40, N1) uncropped
    pooled_max, routes = _pool(a1, (hy, hx))                                 # (b, 40, hy, hx)
    pooled = tf.nn.relu(pooled_max + b1[:, None, None])

    ps = tf.signal.rfft2d(_pad(pooled, n2, p))                               # (b, 40, N2, M2)
    spec2 = ps.shape[2:]
    k2c = _conj_kernel_spectra(k2, n2)                                       # (F2, in, out)
    psf = _to_freq_major(ps)                                                 # (F2, b, in)
    a2f = tf.matmul(psf, k2c)                                                # Σ_i P_i conj(K_io)
    a2 = tf.signal.irfft2d(_from_freq_major(a2f, spec2), fft_length=n2)[:, :, :hy, :hx]
    r2 = tf.nn.relu(a2 + b2[:, None, None])

    rs = tf.signal.rfft2d(_pad(r2, n2, p))                                   # (b, 40, N2, M2)
    k3s = _kernel_spectra(k3, n2)[0]                                         # (40, N2, M2)
    a3 = tf.signal.irfft2d(tf.reduce_sum(rs * tf.math.conj(k3s)[None], axis=1),
                           fft_length=n2)[:, :hy, :hx] + b3[0]
    return {"a3": a3, "xs": xs, "xsf": xsf, "routes": routes, "pooled": pooled, "psf": psf,
            "k2c": k2c, "r2": r2, "rs": rs, "k3s": k3s}


def forward(x: tf.Tensor, weights: list[tf.Tensor]) -> tf.Tensor:
    """Network output ``min(1, a3)`` of shape ``(b, ny//2, nx//2)`` for tiles ``x`` of ``(b, ny, nx)``.

    `weights` are the Keras variables ``[conv1 kernel, conv1 bias, conv2 kernel, conv2 bias,
    conv3 kernel, conv3 bias]`` in Keras' layout (kernel ``(k, k, in, out)``).
    """
    return tf.minimum(_layers(x, weights)["a3"], 1.0)


def _crop_back(spectrum: tf.Tensor, n: tuple[int, int], start: int, size: tuple[int, int]) -> tf.Tensor:
    """``irfft2d`` of `spectrum`, cropped to ``[start, start + size)`` on the last two axes."""
    full = tf.signal.irfft2d(spectrum, fft_length=n)
    return full[..., start : start + size[0], start : start + size[1]]


def loss_and_gradients(
    x: tf.Tensor, y: tf.Tensor, weights: list[tf.Tensor], loss_fn: Callable, l1: float,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Data loss (without the L1 term) and gradients of the total loss for the six variables.

    Parameters
    ----------
    x : tf.Tensor of shape (b, ny, nx) or (b, ny, nx, slices), float32
        Tiles (with a 2.5D network's neighbouring slices as channels).
    y : tf.Tensor of shape (b, ny//2, nx//2), float32
        Targets in [0, 1].
    weights : list of 6 tf.Variable
        As in :func:`forward`.
    loss_fn : callable
        ``loss_fn(y_true, y_pred)``, a Keras-style loss returning a scalar or per-tile values
        (averaged here, as Keras does).
    l1 : float
        L1 weight decay on the three kernels (Keras' ``regularizers.L1``): adds ``l1 * sign(kernel)``.

    Returns
    -------
    loss : tf.Tensor
        Scalar data loss of the batch.
    gradients : list of 6 tf.Tensor
        d(loss + l1 Σ|kernels|)/d(weight), shaped like `weights`.
    """
    k1, b1, k2, b2, k3, b3 = weights
    k, p, n1, n2, hy, hx = _geometry(x, k1)
    f = _layers(x, weights)

    a3 = f["a3"]
    with tf.GradientTape() as tape:          # only the cheap elementwise loss goes through autodiff
        tape.watch(a3)
        loss = tf.reduce_mean(loss_fn(y, tf.minimum(a3, 1.0)))
    da3 = tape.gradient(loss, a3)                                            # (b, hy, hx)

    # layer 3
    da3s = tf.signal.rfft2d(da3, fft_length=n2)                              # (b, N2, M2)
    dk3 = _crop_back(tf.reduce_sum(f["rs"] * tf.math.conj(da3s)[:, None], axis=0), n2, 0, (k, k))
    dr2 = _crop_back(da3s[:, None] * f["k3s"][None], n2, p, (hy, hx))        # (b, 40, hy, hx)
    da2 = tf.where(f["r2"] > 0, dr2, 0.0)

    # layer 2
    da2f = _to_freq_major(tf.signal.rfft2d(da2, fft_length=n2))              # (F2, b, out)
    spec2 = (n2[0], n2[1] // 2 + 1)
    dk2s = tf.math.conj(tf.matmul(f["psf"], da2f, adjoint_a=True))           # (F2, in, out)
    dk2 = _kernel_from_spectra(dk2s, n2, k)                                  # (k, k, in, out)
    # Σ_o D_o K_io; an explicit adjoint then a plain product is faster than adjoint_b=True
    dpf = tf.matmul(da2f, tf.transpose(f["k2c"], [0, 2, 1], conjugate=True))  # (F2, b, in)
    dpool = _crop_back(_from_freq_major(dpf, spec2), n2, p, (hy, hx))   # (b, 40, hy, hx)

    # offset, ReLU and pooling of layer 1
    dpre = tf.where(f["pooled"] > 0, dpool, 0.0)                             # (b, 40, hy, hx)
    da1s = tf.signal.rfft2d(_unpool(dpre, f["routes"]), fft_length=n1)      # (b, 40, N1, M1)
    if f["xsf"] is None:
        dk1 = _crop_back(tf.reduce_sum(f["xs"][:, None] * tf.math.conj(da1s), axis=0), n1, 0, (k, k))
        dk1 = tf.transpose(dk1, [1, 2, 0])[:, :, None, :]                   # (k, k, 1, 40)
    else:
        dk1s = tf.math.conj(tf.matmul(f["xsf"], _to_freq_major(da1s), adjoint_a=True))  # (F1, in, 40)
        dk1 = _kernel_from_spectra(dk1s, n1, k)                              # (k, k, in, 40)

    grads = [
        dk1 + l1 * tf.sign(k1),
        tf.reduce_sum(dpre, axis=[0, 2, 3]),
        dk2 + l1 * tf.sign(k2),
        tf.reduce_sum(da2, axis=[0, 2, 3]),
        tf.transpose(dk3, [1, 2, 0])[:, :, :, None] + l1 * tf.sign(k3),
        tf.reshape(tf.reduce_sum(da3), [1]),
    ]
    return loss, grads
