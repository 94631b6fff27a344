"""Rotations, Fourier grids and the exhaustive match search behind :mod:`tomowidgets.average`.

Rotations follow the one convention of :mod:`tomowidgets._rotation` (shared with
:mod:`tomowidgets.synthetic`). Arrays are ``(z, y, x)``; spectra use the ``scipy.fft.rfftn``
layout ``(n, n, n // 2 + 1)``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
import scipy.ndimage as ndi
from scipy.spatial.transform import Rotation

from tomowidgets._rotation import FLIP, euler_to_matrix

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Threads for scipy.fft.
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Float values in one batch of correlation maps (bounds the memory of the search, ~32 MB).
_BATCH_VALUES = 8_000_000


# ---------------------------------------------------------------------------------------------
# Rotations
# ---------------------------------------------------------------------------------------------

def rotation_grid(step: float) -> NDArray[np.float64]:
    """Near-uniform rotations about `step` degrees apart: Fibonacci-sphere directions × psi steps."""
    step_rad = np.deg2rad(step)
    n_dir = max(2, int(round(4 * np.pi / step_rad**2)))
    i = np.arange(n_dir)
    cos_tilt = 1 - (2 * i + 1) / n_dir
    rot = np.rad2deg(i * np.pi * (3 - np.sqrt(5))) % 360
    tilt = np.rad2deg(np.arccos(cos_tilt))
    psi = np.arange(0.0, 360.0 - 1e-9, 360.0 / max(1, int(round(360.0 / step))))
    grid = np.stack(np.broadcast_arrays(rot[:, None], tilt[:, None], psi[None, :]), axis=-1)
    return euler_to_matrix(grid.reshape(-1, 3))


def local_grid(step: float) -> NDArray[np.float64]:
    """The 27 small rotations with rotation vectors on a ``{-1, 0, 1}³ × step`` (degrees) cube."""
    cube = np.stack(np.meshgrid(*([np.arange(-1.0, 2.0)] * 3), indexing="ij"), axis=-1)
    return Rotation.from_rotvec(np.deg2rad(step) * cube.reshape(-1, 3)).as_matrix()


def prior_grid(step: float, cone: float) -> NDArray[np.float64]:
    """Rotations ``Rz(spin) @ T`` that keep the map's z axis within `cone` degrees of where a prior
    puts it: every spin about z (`step` apart) times tilts ``T`` of z by 0, step, 2 step, ... <= cone
    degrees towards azimuths about `step` apart. Applied on the left of a prior's rotation."""
    spins = cn_matrices(max(1, int(round(360.0 / step))))
    tilts = [np.eye(3)]
    for alpha in np.arange(step, cone + 1e-9, step):
        n_azimuth = max(3, int(round(2 * np.pi * np.sin(np.deg2rad(alpha)) / np.deg2rad(step))))
        for beta in np.arange(n_azimuth) * 360.0 / n_azimuth:
            tilts.append(euler_to_matrix([beta, alpha, -beta]))
    return (spins[:, None] @ np.stack(tilts)[None]).reshape(-1, 3, 3)


def cn_matrices(n: int) -> NDArray[np.float64]:
    """The `n` rotations of the cyclic group Cn about z."""
    return euler_to_matrix(np.stack([np.arange(n) * 360.0 / n, np.zeros(n), np.zeros(n)], axis=1))


def rotate(volume: NDArray[np.float32], matrix: NDArray[np.floating],
           shift: NDArray[np.floating] | None = None) -> NDArray[np.float32]:
    """``out(r) = volume(matrix @ r + shift)`` about the centre voxel, trilinear, zeros outside.

    `matrix` acts on ``(x, y, z)`` offsets; `shift` is in voxels ``(z, y, x)``.
    """
    m = FLIP @ np.asarray(matrix, dtype=np.float64) @ FLIP
    c = np.array(volume.shape, dtype=np.float64) // 2
    offset = c - m @ c + (0.0 if shift is None else np.asarray(shift, dtype=np.float64))
    return ndi.affine_transform(volume, m, offset=offset, order=1, mode="constant", cval=0.0,
                                prefilter=False).astype(np.float32, copy=False)


def rotate_many(volume: NDArray[np.float32], mats: NDArray[np.floating]) -> NDArray[np.float32]:
    """:func:`rotate` of one volume by each of `mats` (m, 3, 3) -> (m, *volume.shape)."""
    out = np.empty((len(mats),) + volume.shape, dtype=np.float32)
    for j, m in enumerate(mats):
        out[j] = rotate(volume, m)
    return out


# ---------------------------------------------------------------------------------------------
# Fourier grids
# ---------------------------------------------------------------------------------------------

def freq_grid(n: int) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Frequencies (cycles per box, i.e. shell units) ``kz, ky, kx`` broadcastable to the rfft layout."""
    kz = (scipy.fft.fftfreq(n) * n).astype(np.float32)[:, None, None]
    ky = (scipy.fft.fftfreq(n) * n).astype(np.float32)[None, :, None]
    kx = (scipy.fft.rfftfreq(n) * n).astype(np.float32)[None, None, :]
    return kz, ky, kx


def radius_grid(n: int) -> NDArray[np.float32]:
    """Frequency magnitude in shells (cycles per box), rfft layout (n, n, n // 2 + 1)."""
    kz, ky, kx = freq_grid(n)
    return np.sqrt(kz * kz + ky * ky + kx * kx)


def hermitian_weights(n: int) -> NDArray[np.float32]:
    """How many full-spectrum components each rfft-layout column stands for (1 or 2), shape (n // 2 + 1,)."""
    w = np.full(n // 2 + 1, 2.0, dtype=np.float32)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


def wedge_weights(n: int, mats: NDArray[np.floating] | None, tilt_range: float | None
                  ) -> NDArray[np.float32]:
    """Sum over rotations ``R`` of the measured-region indicator ``W(R.T @ k)``, rfft layout.

    ``W`` is the ±`tilt_range` single-axis (y) tilt series: kept where
    ``|kz| cos(tilt_range) <= |kx| sin(tilt_range)``; `tilt_range` None means no missing wedge.
    `mats` None means the identity only (the wedge in the tomogram frame).
    """
    kz, ky, kx = np.broadcast_arrays(*freq_grid(n))
    if tilt_range is None or tilt_range >= 90.0:
        return np.full(kz.shape, 1.0 if mats is None else float(len(mats)), dtype=np.float32)
    k = np.stack([kx.ravel(), ky.ravel(), kz.ravel()])  # (3, K) in (x, y, z)
    mats = np.eye(3)[None] if mats is None else np.asarray(mats)
    t = np.deg2rad(tilt_range)
    total = np.zeros(k.shape[1], dtype=np.float32)
    for start in range(0, len(mats), 64):
        rt = np.transpose(mats[start:start + 64], (0, 2, 1)).astype(np.float32)  # R.T
        q = rt @ k  # (m, 3, K)
        kept = np.abs(q[:, 2]) * np.float32(np.cos(t)) <= np.abs(q[:, 0]) * np.float32(np.sin(t)) + 1e-4
        total += kept.sum(axis=0, dtype=np.float32)
    return total.reshape(kz.shape)


def lowpass(n: int, cutoff: float, *, width: float = 2.0, highpass: float = 0.0) -> NDArray[np.float32]:
    """Soft band-pass in shells: 1 below `cutoff`, cosine edge `width` shells wide, 0 beyond.

    Shells below `highpass` are zeroed (the DC component is always removed when `highpass` > 0).
    """
    r = radius_grid(n)
    edge = np.clip((r - cutoff) / width + 0.5, 0.0, 1.0)
    filt = (0.5 + 0.5 * np.cos(np.pi * edge)).astype(np.float32)
    if highpass > 0:
        filt[r < highpass] = 0.0
    return filt


def crop_spectrum(spec: NDArray[np.complex64], n_small: int) -> NDArray[np.complex64]:
    """Fourier-crop rfft-layout spectra (..., n, n, n // 2 + 1) to a box of `n_small` (even)."""
    n = spec.shape[-3]
    if n_small >= n:
        return spec
    h = n_small // 2
    idx = np.r_[0:h, n - h:n]
    return spec[..., idx, :, :][..., :, idx, :][..., : h + 1]


def soft_sphere(n: int, radius: float, edge: float) -> NDArray[np.float32]:
    """Soft spherical mask: 1 within `radius` of the centre voxel, cosine fall-off over `edge` voxels."""
    ax = np.arange(n, dtype=np.float32) - n // 2
    r = np.sqrt(ax[:, None, None] ** 2 + ax[None, :, None] ** 2 + ax[None, None, :] ** 2)
    t = np.clip((r - radius) / max(edge, 1e-6), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------

def normalise_spectra(spec: NDArray[np.complex64]) -> NDArray[np.complex64]:
    """Scale complex64 spectra (..., n, n, n//2+1) in place to unit norm (their inverse FFTs
    correlate as normalised cross-correlations) and return them."""
    n = spec.shape[-3]
    w = hermitian_weights(n)
    power = (np.abs(spec) ** 2 * w).sum(axis=(-3, -2, -1), keepdims=True)
    spec *= np.sqrt(n**3 / np.maximum(power, 1e-30)).astype(np.float32)
    return spec


def shift_window(n: int, max_shift: float) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Flat indices of a correlation map within `max_shift` voxels of zero shift, and those shifts."""
    k = np.rint(scipy.fft.fftfreq(n) * n).astype(np.float32)
    s = np.stack(np.meshgrid(k, k, k, indexing="ij"), axis=-1).reshape(-1, 3)
    keep = np.flatnonzero((s**2).sum(axis=1) <= max(max_shift, 0.0) ** 2 + 1e-6)
    return keep, s[keep]


def best_match(parts: NDArray[np.complex64], templates: NDArray[np.complex64],
               window: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Best template and correlation for each particle, over shifts in `window`.

    `parts` (p, n, n, h) and `templates` either shared, (m, n, n, h), or per particle,
    (p, m, n, n, h), all from :func:`normalise_spectra`. Returns the best template index (p,) and
    its normalised cross-correlation (p,).
    """
    n = parts.shape[-3]
    p, m = len(parts), templates.shape[-4]
    best = np.zeros(p, dtype=np.intp)
    score = np.full(p, -np.inf, dtype=np.float32)

    def peaks(a: NDArray[np.complex64], t: NDArray[np.complex64]) -> NDArray[np.float32]:
        cc = scipy.fft.irfftn(a * np.conj(t), s=(n, n, n), axes=(-3, -2, -1), workers=WORKERS)
        return cc.reshape(cc.shape[:2] + (-1,))[..., window].max(axis=-1)  # (particles, templates)

    if templates.ndim == 4:  # one set of templates for all particles: batch over templates
        step = max(1, _BATCH_VALUES // (n**3 * p))
        for j0 in range(0, m, step):
            val = peaks(parts[:, None], templates[None, j0:j0 + step])
            j = val.argmax(axis=1)
            top = val[np.arange(p), j]
            better = top > score
            score[better], best[better] = top[better], j[better] + j0
    else:  # each particle has its own templates: batch over particles
        step = max(1, _BATCH_VALUES // (n**3 * m))
        for p0 in range(0, p, step):
            val = peaks(parts[p0:p0 + step, None], templates[p0:p0 + step])
            best[p0:p0 + step] = val.argmax(axis=1)
            score[p0:p0 + step] = val.max(axis=1)
    return best, score


def peak_shifts(parts: NDArray[np.complex64], templates: NDArray[np.complex64],
                window: NDArray[np.intp], shifts: NDArray[np.float32]
                ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Sub-voxel peak shift ``(z, y, x)`` and correlation for each particle against its template.

    `parts` and `templates` are (p, n, n, h) normalised spectra. The peak is searched in `window`
    and refined by a parabola through its neighbours along each axis.
    """
    n = parts.shape[-3]
    out = np.zeros((len(parts), 3), dtype=np.float32)
    score = np.zeros(len(parts), dtype=np.float32)
    step = max(1, _BATCH_VALUES // n**3)
    for p0 in range(0, len(parts), step):
        cc = scipy.fft.irfftn(parts[p0:p0 + step] * np.conj(templates[p0:p0 + step]),
                              s=(n, n, n), axes=(-3, -2, -1), workers=WORKERS)
        flat = cc.reshape(len(cc), -1)
        k = flat[:, window].argmax(axis=1)
        peak = shifts[k]
        score[p0:p0 + step] = flat[np.arange(len(cc)), window[k]]
        centre = np.rint(peak).astype(int) % n
        for axis in range(3):
            lo, hi = centre.copy(), centre.copy()
            lo[:, axis] = (lo[:, axis] - 1) % n
            hi[:, axis] = (hi[:, axis] + 1) % n
            v0 = cc[np.arange(len(cc)), centre[:, 0], centre[:, 1], centre[:, 2]]
            vm = cc[np.arange(len(cc)), lo[:, 0], lo[:, 1], lo[:, 2]]
            vp = cc[np.arange(len(cc)), hi[:, 0], hi[:, 1], hi[:, 2]]
            denom = vm - 2 * v0 + vp
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(denom < 0, 0.5 * (vm - vp) / denom, 0.0)
            peak[:, axis] += np.clip(np.nan_to_num(frac), -0.5, 0.5)
        out[p0:p0 + step] = peak
    return out, score
