"""Streaming DCT engine behind :mod:`tomowidgets.preprocess`: band-pass, moments, binning.

Every function here reads its input in slabs (a memory map is never loaded whole), works in float32
with float64 statistics, and releases the pages of memory-mapped input and output after each slab,
so the working memory is a few slabs whatever the tomogram size. Arguments are validated by the
public functions in :mod:`tomowidgets.preprocess`; these functions only check voxels for NaN/inf.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
from tqdm.auto import tqdm

from tomowidgets._validate import as_float32, check_finite
from tomowidgets.io import Moments, release_pages

#: Gaussian values below this are treated as 0 when the smooth background is kept as a few
#: low-order coefficients (far below float32 resolution, so the result is unchanged).
_TAIL = 1e-9
#: Threads for scipy.fft: all cores.
_WORKERS = os.cpu_count() or 1


def _gauss(n: int, apix: float, length: float) -> np.ndarray:
    """``2**-(f*length)**2`` at the DCT frequencies ``f = k / (2 n apix)`` (1/Å), k = 0..n-1."""
    f = np.arange(n) / (2.0 * n * apix)
    return np.exp2(-((f * length) ** 2)).astype(np.float32)


def _n_keep(n: int, apix: float, length: float) -> int:
    """How many DCT coefficients of an axis of `n` voxels the Gaussian of `length` Å leaves > _TAIL."""
    fmax = math.sqrt(math.log2(1 / _TAIL)) / length
    return int(min(n, math.floor(fmax * 2 * n * apix) + 1))


def _slabs(n: int, item_bytes: int, slab_mb: float) -> list[tuple[int, int]]:
    step = max(1, int(slab_mb * 2**20 // max(item_bytes, 1)))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _read(src: np.ndarray, sl: Any, arg_name: str) -> np.ndarray:
    """A float32 copy of ``src[sl]`` in memory, checked for NaN/inf."""
    a = as_float32(np.array(src[sl]), arg_name)
    check_finite(a, arg_name)
    return a


def bandpass_into(src: np.ndarray, dst: np.ndarray, apix: float, lowpass: float | None,
                   highpass: float | None, *, slab_mb: float, tick: Callable[[], Any],
                   arg_name: str = "volume") -> Moments:
    """Band-pass `src` into `dst` (same shape, float32) in slabs; returns the moments of `dst`.

    Pass A (z-slabs): 2D DCT of each plane; the (y, x) low-pass factor gives ``dst``; the lowest
    coefficients, times the background Gaussian, are kept (``low``). Pass B (y-slabs, all z): the z
    low-pass factor, minus the background evaluated from ``low``; moments are accumulated.
    """
    nz, ny, nx = src.shape
    zslabs, yslabs = _slabs(nz, 4 * ny * nx, slab_mb), _slabs(ny, 4 * nz * nx, slab_mb)
    filtering = lowpass is not None or highpass is not None
    shift = 0.0  # a constant taken out before filtering keeps float32 precise for offset data
    if lowpass is not None:
        glp = [_gauss(n, apix, lowpass) for n in (nz, ny, nx)]
        wyx = glp[1][:, None] * glp[2][None, :]
    if highpass is not None:  # background = Gaussian of length hypot(lowpass, highpass)
        lc = math.hypot(lowpass or 0.0, highpass)
        kz, ky, kx = (_n_keep(n, apix, lc) for n in (nz, ny, nx))
        gz, gy, gx = (_gauss(n, apix, lc)[:k] for n, k in zip((nz, ny, nx), (kz, ky, kx), strict=True))
        low = np.empty((nz, ky, kx), np.float32)
    for i, (z0, z1) in enumerate(zslabs):
        x = _read(src, slice(z0, z1), arg_name)
        if filtering:
            if i == 0:
                shift = float(np.mean(x, dtype=np.float64))
            x -= np.float32(shift)
            c = scipy.fft.dctn(x, axes=(1, 2), norm="ortho", workers=_WORKERS)
            if highpass is not None:
                low[z0:z1] = c[:, :ky, :kx] * (gy[:, None] * gx[None, :])
            if lowpass is not None:
                c *= wyx
                x = scipy.fft.idctn(c, axes=(1, 2), norm="ortho", workers=_WORKERS,
                                    overwrite_x=True)
            del c
        dst[z0:z1] = x
        del x
        release_pages(src)
        release_pages(dst)
        tick()
    if highpass is not None:  # background coefficients, evaluated along z on the full grid
        v = scipy.fft.dct(low, axis=0, norm="ortho", workers=_WORKERS)[:kz] * gz[:, None, None]
        bz = scipy.fft.idct(v, n=nz, axis=0, norm="ortho", workers=_WORKERS)  # (nz, ky, kx)
        del low, v
    moments = Moments()
    zchunks = _slabs(nz, 4 * ny * nx, 16.0)  # map little of `dst` at once (large page-cache folios)
    for y0, y1 in yslabs:
        u = np.empty((nz, y1 - y0, nx), np.float32)
        for z0, z1 in zchunks:
            u[z0:z1] = dst[z0:z1, y0:y1]
            release_pages(dst)
        if lowpass is not None:
            c = scipy.fft.dct(u, axis=0, norm="ortho", workers=_WORKERS)
            c *= glp[0][:, None, None]
            u = scipy.fft.idct(c, axis=0, norm="ortho", workers=_WORKERS, overwrite_x=True)
            del c
        if highpass is not None:
            rows = np.arange(y0, y1)[:, None] + 0.5
            k = np.arange(ky)[None, :]
            basis = np.where(k == 0, math.sqrt(1 / ny), math.sqrt(2 / ny)) * np.cos(
                np.pi * k * rows / ny)
            t = np.matmul(basis.astype(np.float32), bz)  # (nz, y1 - y0, kx)
            u -= scipy.fft.idct(t, n=nx, axis=2, norm="ortho", workers=_WORKERS)
        elif filtering:
            u += np.float32(shift)
        moments.add(u)
        for z0, z1 in zchunks if filtering else ():
            dst[z0:z1, y0:y1] = u[z0:z1]
            release_pages(dst)
        del u
        tick()
    return moments


def moments_of(volume: np.ndarray, slab_mb: float = 128.0) -> Moments:
    """Moments of `volume`, read slab by slab; raises ValueError if it is constant."""
    m = Moments()
    for z0, z1 in _slabs(volume.shape[0], 4 * int(np.prod(volume.shape[1:])), slab_mb):
        m.add(_read(volume, slice(z0, z1), "volume"))
        release_pages(volume)
    if not m.sd > 0:
        raise ValueError("`volume` is constant (sd = 0), so it cannot be normalized; check that "
                         "the tomogram is not blank")
    return m


def affine_clip(volume: np.ndarray, shift: float, scale: float,
                 bounds: tuple[float, float] | None) -> np.ndarray:
    """``clip((volume - shift) * scale, *bounds)`` as float32, slab by slab."""
    out = np.empty(volume.shape, np.float32)
    for z0, z1 in _slabs(volume.shape[0], 4 * int(np.prod(volume.shape[1:])), 128.0):
        a = _read(volume, slice(z0, z1), "volume")
        a -= np.float32(shift)
        a *= np.float32(scale)
        out[z0:z1] = a if bounds is None else np.clip(a, *bounds, out=a)
        release_pages(volume)
    return out


def preprocess_into(src: np.ndarray, dst: np.ndarray, p: dict[str, Any], slab_mb: float,
                     progress: bool) -> Moments:
    """Band-pass, normalize and clamp `src` into `dst`; returns the moments of the result."""
    nz, ny, nx = src.shape
    zslabs = _slabs(nz, 4 * ny * nx, slab_mb)
    total = 2 * len(zslabs) + len(_slabs(ny, 4 * nz * nx, slab_mb))
    lim = p["clamp"]
    with tqdm(total=total, desc="preprocess", unit="slab", disable=not progress) as bar:
        m = bandpass_into(src, dst, p["apix"], p["lowpass"], p["highpass"], slab_mb=slab_mb,
                           tick=bar.update, arg_name="tomo")
        if not m.sd > 0:
            raise ValueError("`tomo` is constant after filtering (sd = 0), so it cannot be "
                             "normalized; check that the tomogram is not blank")
        final = Moments()
        for z0, z1 in zslabs:
            a = np.array(dst[z0:z1])
            a -= np.float32(m.mean)
            a *= np.float32(1.0 / m.sd)
            if lim is not None:
                np.clip(a, -lim, lim, out=a)
            final.add(a)
            dst[z0:z1] = a
            del a
            release_pages(dst)
            bar.update()
    return final


def mrc_labels(p: dict[str, Any]) -> list[str]:
    """MRC header labels (at most 80 characters each) recording the settings `p` of a preprocess
    run: the cut-offs and clamp, then, when ``lowpass="auto"`` had to use the Nyquist limit, why."""
    def fmt(v: Any) -> str:
        return "off" if v is None else f"{v:g}"
    labels = [(f"tomowidgets preprocess: gaussian lowpass {fmt(p['lowpass'])} A, highpass "
               f"{fmt(p['highpass'])} A, clamp {fmt(p['clamp'])} sd")[:80]]
    if p.get("lowpass_note"):
        labels.append(f"lowpass {fmt(p['lowpass'])} A = Nyquist: the default 20 A needs finer voxels"[:80])
    return labels


def bin_volume(src: np.ndarray, f: int, method: str, progress: bool) -> np.ndarray:
    """`src` (z, y, x) binned by `f` with `method` ('fourier' or 'mean'), float32, in memory.

    A dimension not divisible by `f` is cropped first. The input is read in z-slabs of about
    128 MiB (a multiple of `f` planes); 'fourier' keeps the (y, x)-cropped planes before cropping z.
    """
    m = tuple(n // f for n in src.shape)
    cz, cy, cx = (k * f for k in m)
    step = max(1, int(128 * 2**20 // (4 * cy * cx)) // f) * f
    res = np.empty(m if method == "mean" else (cz, m[1], m[2]), np.float32)
    for z0 in tqdm(range(0, cz, step), desc="bin", unit="slab", disable=not progress):
        z1 = min(z0 + step, cz)
        a = _read(src, (slice(z0, z1), slice(0, cy), slice(0, cx)), "tomo")
        if method == "mean":
            res[z0 // f:z1 // f] = a.reshape((z1 - z0) // f, f, m[1], f, m[2], f).mean(
                axis=(1, 3, 5))
        else:
            res[z0:z1] = scipy.fft.dctn(a, axes=(1, 2), norm="ortho",
                                        workers=_WORKERS)[:, :m[1], :m[2]]
        del a
        release_pages(src)
    if method == "fourier":
        c = scipy.fft.dct(res, axis=0, norm="ortho", workers=_WORKERS)[:m[0]]
        res = scipy.fft.idctn(c, norm="ortho", workers=_WORKERS, overwrite_x=True)
        res *= np.float32(f ** -1.5)
    return res


def resample_volume(src: np.ndarray, used: tuple[int, int, int], shape: tuple[int, int, int],
                    progress: bool) -> np.ndarray:
    """``src[:used[0], :used[1], :used[2]]`` resampled to `shape` by DCT cropping (fewer voxels) or
    zero-padding (more voxels) along each axis; float32, in memory.

    Pass 1 transforms the (y, x) planes of z-slabs; pass 2 transforms z over y-slabs, so memory is
    the result plus one intermediate volume of ``(used[0], shape[1], shape[2])`` float32.
    """
    (n0, n1, n2), (m0, m1, m2) = used, shape
    half = np.empty((n0, m1, m2), np.float32)
    step = max(1, int(128 * 2**20 // (4 * n1 * n2)))
    scale_yx = np.float32(np.sqrt(m1 * m2 / (n1 * n2)))     # the ortho DCT keeps sums of squares
    bar = tqdm(total=2, desc="rescale", unit="pass", disable=not progress)
    for z0 in range(0, n0, step):
        z1 = min(z0 + step, n0)
        a = _read(src, (slice(z0, z1), slice(0, n1), slice(0, n2)), "tomo")
        c = scipy.fft.dctn(a, axes=(1, 2), norm="ortho", workers=_WORKERS)
        half[z0:z1] = scipy.fft.idctn(c, s=(m1, m2), axes=(1, 2), norm="ortho", workers=_WORKERS)
        half[z0:z1] *= scale_yx
        release_pages(src)
    bar.update()
    out = np.empty((m0, m1, m2), np.float32)
    scale_z = np.float32(np.sqrt(m0 / n0))
    ystep = max(1, int(128 * 2**20 // (4 * max(n0, m0) * m2)))
    for y0 in range(0, m1, ystep):
        y1 = min(y0 + ystep, m1)
        c = scipy.fft.dct(half[:, y0:y1], axis=0, norm="ortho", workers=_WORKERS)
        out[:, y0:y1] = scipy.fft.idct(c, n=m0, axis=0, norm="ortho", workers=_WORKERS) * scale_z
    bar.update()
    bar.close()
    return out
