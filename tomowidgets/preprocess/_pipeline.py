"""Preprocessing (paper, Online Methods): band-pass in Å, normalize to mean 0 / sd 1, clamp, bin.

The filters are Gaussian in frequency, defined on the *reflected* volume (reflect/mirror boundary,
implemented with the orthonormal DCT-II, which is the FFT of the mirror-extended volume), so there is
no wrap-around between opposite faces and no padding. A Gaussian is separable, so the 3D filter is
applied exactly, in bounded memory, as a 2D (y, x) filter over z-slabs followed by a 1D z filter over
y-slabs; see :func:`preprocess`, Notes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tomowidgets._validate import APIX_RTOL, check_ndim, check_positive, check_positive_int
from tomowidgets.io import Tomogram, new_mrc, read_tomogram
from tomowidgets.preprocess._bandpass import (
    affine_clip,
    bandpass_into,
    bin_volume,
    moments_of,
    mrc_labels,
    preprocess_into,
    resample_volume,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["DEFAULT_LOWPASS", "bandpass", "bin", "clamp", "highpass_filter", "lowpass_filter", "normalize",
           "preprocess", "preprocessing_params", "rescale"]

#: Relative voxel-size error that :func:`rescale` accepts when it fits each axis to whole voxels.
_RESCALE_RTOL = 1e-4

#: The paper's low-pass cut-off in Å. ``lowpass="auto"`` (the default) uses it, or the finest cut-off
#: the sampling allows (the Nyquist limit, 2 × the voxel size) when the voxels are coarser than 10 Å,
#: as in the binned tomograms the paper annotated.
DEFAULT_LOWPASS = 20.0


def preprocessing_params(
    apix: float, lowpass: float | str | None = "auto", highpass: float | None = 4000.0,
    clamp: float | None = 3.0,
) -> dict[str, Any]:
    """Validate preprocessing settings and return them as a JSON-able record (training-set metadata).

    Parameters
    ----------
    apix : float
        Voxel size in Å per voxel of the tomogram being preprocessed.
    lowpass : float, None or "auto", default "auto"
        Low-pass cut-off in Å (the wavelength where the Gaussian response is 0.5); None skips it.
        "auto": :data:`DEFAULT_LOWPASS` (20 Å), or the Nyquist limit ``2 * apix`` when that is
        coarser, with a RuntimeWarning saying so.
    highpass : float or None, default 4000.0
        High-pass cut-off in Å; None skips it.
    clamp : float or None, default 3.0
        Clamp at ± this many standard deviations; None skips clamping.

    Returns
    -------
    dict
        ``{"step", "params_version", "apix", "lowpass", "highpass", "clamp", "filter", "boundary",
        "normalize"}``; floats or None, plus short descriptions of the method. When "auto" had to
        coarsen the low-pass, also ``"lowpass_note"`` saying why.

    Warns
    -----
    RuntimeWarning
        If ``lowpass="auto"`` uses the Nyquist limit instead of 20 Å.

    Examples
    --------
    >>> import warnings
    >>> preprocessing_params(10.0)["lowpass"]
    20.0
    >>> with warnings.catch_warnings(record=True):
    ...     warnings.simplefilter("always")
    ...     preprocessing_params(20.0)["lowpass"]          # binned 2x: Nyquist is 40 Å
    40.0

    Raises
    ------
    ValueError
        If `lowpass` is below the Nyquist limit ``2 * apix``, `highpass` is not longer than
        `lowpass` (or than the Nyquist limit when there is no low-pass), or a value is not positive.
    """
    apix = check_positive(apix, "apix")
    lowpass, note = resolve_lowpass(apix, lowpass)
    lowpass, highpass = _check_cutoffs(apix, lowpass, highpass)
    if clamp is not None:
        clamp = check_positive(clamp, "clamp")
    params = {
        "step": "tomowidgets.preprocess", "params_version": 1, "apix": apix,
        "lowpass": lowpass, "highpass": highpass, "clamp": clamp,
        "filter": "gaussian: response 2**-(f*lowpass)**2 * (1 - 2**-(f*highpass)**2), f in 1/Å",
        "boundary": "reflect", "normalize": "mean 0, sd 1, then clamp at ±clamp",
    }
    if note:
        params["lowpass_note"] = note
    return params


def resolve_lowpass(apix: float, lowpass: float | str | None) -> tuple[float | None, str | None]:
    """The low-pass cut-off (Å) that ``lowpass="auto"`` stands for at `apix`, and a note when the
    paper's 20 Å had to give way to the Nyquist limit (also warned); other values pass unchanged."""
    if not isinstance(lowpass, str):
        return lowpass, None
    if lowpass != "auto":
        raise ValueError(f"`lowpass` must be a cut-off in Å, None or 'auto', got {lowpass!r}")
    nyquist = 2.0 * apix
    if nyquist <= DEFAULT_LOWPASS:
        return DEFAULT_LOWPASS, None
    note = (f"the default {DEFAULT_LOWPASS:g} Å low-pass is finer than {apix:g} Å voxels can hold, "
            f"so the finest possible cut-off, the Nyquist limit {nyquist:g} Å, is used")
    warnings.warn(note + "; pass lowpass= to choose another (or None to skip it)", RuntimeWarning,
                  stacklevel=3)
    return nyquist, note


def _check_cutoffs(apix: float, lowpass: Any, highpass: Any,
                   names: tuple[str, str] = ("lowpass", "highpass")) -> tuple[Any, Any]:
    nyquist = 2.0 * apix
    if lowpass is not None:
        lowpass = check_positive(lowpass, names[0])
        if lowpass < nyquist * (1 - 1e-9):
            raise ValueError(
                f"`{names[0]}` must be >= {nyquist:g} Å, the Nyquist limit (2 × apix) at {apix:g} "
                f"Å/voxel, got {lowpass:g} Å; use a larger value, {names[0]}=None to skip the "
                "low-pass, or a less binned tomogram")
    if highpass is not None:
        highpass = check_positive(highpass, names[1])
        floor, what = (lowpass, f"`lowpass` ({lowpass:g} Å)") if lowpass is not None else (
            nyquist, f"the Nyquist limit ({nyquist:g} Å)")
        if highpass <= floor:
            raise ValueError(
                f"`{names[1]}` must be longer than {what}, got {highpass:g} Å: it removes "
                f"features larger than it (the paper uses 4000 Å); or pass {names[1]}=None")
    return lowpass, highpass


def bandpass(volume: ArrayLike, apix: float, *, lowpass: float | str | None = "auto",
             highpass: float | None = 4000.0) -> NDArray[np.float32]:
    """Gaussian band-pass filter with cut-offs in Å.

    Parameters
    ----------
    volume : array of shape (z, y, x)
        Voxels, any real dtype; a memory map is read slab by slab.
    apix : float
        Voxel size in Å per voxel.
    lowpass : float, None or "auto", default "auto"
        Low-pass cut-off in Å: the wavelength passed at half amplitude; None skips it; "auto" is
        20 Å, or the Nyquist limit ``2 * apix`` for coarser voxels (see :func:`preprocessing_params`).
    highpass : float or None, default 4000.0
        High-pass cut-off in Å: the wavelength removed at half amplitude; None skips it.

    Returns
    -------
    ndarray of shape (z, y, x), float32
        The filtered volume, in memory. With a high-pass its mean is exactly 0.

    Raises
    ------
    ValueError
        If `volume` is not 3D or holds NaN/inf, or the cut-offs are invalid (see
        :func:`preprocessing_params`).

    Notes
    -----
    Response at spatial frequency ``f`` (1/Å, ``f = |(fz, fy, fx)|``)::

        H(f) = 2**-(f*lowpass)**2 * (1 - 2**-(f*highpass)**2)

    i.e. Gaussian fall-offs (no ringing next to membranes), 0.5 at ``f = 1/lowpass`` and
    ``1/highpass``, ``1/16`` at twice the low-pass frequency. The volume is treated as mirrored at its
    faces (reflect boundary, DCT-II), so no wrap-around couples opposite faces. A slowly varying
    "ice gradient" is removed, except within about ``highpass / 2`` of the faces across it, where the
    mirror makes a kink (residual at the face: 0.14 × the gradient's rise over ``highpass`` Å).

    Examples
    --------
    >>> v = np.random.default_rng(0).normal(size=(4, 32, 32))
    >>> out = bandpass(v, 10.0, lowpass=40.0, highpass=200.0)
    >>> out.dtype, abs(float(out.mean())) < 1e-6
    (dtype('float32'), True)
    """
    if isinstance(volume, Tomogram):
        raise ValueError("`volume` must be an array; pass tomo.data and tomo.apix, or use "
                         "preprocess(tomo, ...)")
    volume = np.asanyarray(volume)
    check_ndim(volume, (3,), "volume")
    apix = check_positive(apix, "apix")
    cutoff, highpass = _check_cutoffs(apix, resolve_lowpass(apix, lowpass)[0], highpass)
    dst = np.empty(volume.shape, np.float32)
    bandpass_into(volume, dst, apix, cutoff, highpass, slab_mb=128.0, tick=lambda: None)
    return dst


def lowpass_filter(volume: ArrayLike, apix: float, *,
                   cutoff: float = 20.0) -> NDArray[np.float32]:
    """Gaussian low-pass: :func:`bandpass` with ``lowpass=cutoff`` (Å) and no high-pass.

    Raises
    ------
    ValueError
        If `cutoff` is below the Nyquist limit ``2 * apix`` or `volume` is not a finite 3D array.
    """
    _check_cutoffs(check_positive(apix, "apix"), cutoff, None, names=("cutoff", "cutoff"))
    return bandpass(volume, apix, lowpass=cutoff, highpass=None)


def highpass_filter(volume: ArrayLike, apix: float, *,
                    cutoff: float = 4000.0) -> NDArray[np.float32]:
    """Gaussian high-pass (removes ice gradients): :func:`bandpass` with ``highpass=cutoff`` (Å).

    Raises
    ------
    ValueError
        If `cutoff` is not longer than the Nyquist limit or `volume` is not a finite 3D array.
    """
    _check_cutoffs(check_positive(apix, "apix"), None, cutoff, names=("cutoff", "cutoff"))
    return bandpass(volume, apix, lowpass=None, highpass=cutoff)


def normalize(volume: ArrayLike) -> NDArray[np.float32]:
    """Shift and scale to mean 0 and standard deviation 1 (statistics accumulated in float64).

    Parameters
    ----------
    volume : array of shape (z, y, x)
        Voxels, any real dtype.

    Returns
    -------
    ndarray of shape (z, y, x), float32
        ``(volume - mean) / sd``: mean 0 and sd 1 up to float32 rounding (~1e-7).

    Raises
    ------
    ValueError
        If `volume` is not 3D, holds NaN/inf or is constant.

    Examples
    --------
    >>> out = normalize(np.arange(24).reshape(2, 3, 4))
    >>> round(float(out.mean()), 6), round(float(out.std()), 6)
    (0.0, 1.0)
    """
    volume = np.asanyarray(volume)
    check_ndim(volume, (3,), "volume")
    m = moments_of(volume)
    return affine_clip(volume, m.mean, 1.0 / m.sd, None)


def clamp(volume: ArrayLike, nsd: float = 3.0) -> NDArray[np.float32]:
    """Clamp voxels to ``mean ± nsd × sd`` of the volume (X-ray pixels, gold, carbon edges).

    Parameters
    ----------
    volume : array of shape (z, y, x)
        Voxels, any real dtype (normally already normalized, so the bounds are ``±nsd``).
    nsd : float, default 3.0
        Bound in standard deviations.

    Returns
    -------
    ndarray of shape (z, y, x), float32
        Voxels inside the bounds unchanged, the others set to the nearest bound.

    Raises
    ------
    ValueError
        If `nsd` is not positive or `volume` is not 3D, finite and non-constant.

    Examples
    --------
    >>> v = np.zeros((1, 1, 100)); v[0, 0, 0] = 1000.0
    >>> float(clamp(v, 3.0).max()) < 1000.0
    True
    """
    nsd = check_positive(nsd, "nsd")
    volume = np.asanyarray(volume)
    check_ndim(volume, (3,), "volume")
    m = moments_of(volume)
    return affine_clip(volume, 0.0, 1.0, (m.mean - nsd * m.sd, m.mean + nsd * m.sd))


def _as_tomogram(tomo: Tomogram | ArrayLike, apix: float | None) -> Tomogram:
    if isinstance(tomo, Tomogram):
        return tomo if apix is None else Tomogram(tomo.data, apix, tomo.path, tomo.origin)
    data = np.asanyarray(tomo)
    check_ndim(data, (3,), "tomo")
    if apix is None:
        raise ValueError("`apix` (voxel size in Å) is required when `tomo` is a bare array; "
                         "pass apix=..., or read the tomogram with read_tomogram")
    return Tomogram(data, check_positive(apix, "apix"))


def preprocess(
    tomo: Tomogram | ArrayLike, lowpass: float | str | None = "auto", highpass: float | None = 4000.0,
    clamp: float | None = 3.0, *, out: str | os.PathLike | None = None, progress: bool = True,
    apix: float | None = None, slab_mb: float = 128.0,
) -> Tomogram:
    """Band-pass (Å), normalize to mean 0 / sd 1 and clamp at ±`clamp` sd, as in the paper.

    Parameters
    ----------
    tomo : Tomogram or array of shape (z, y, x)
        Input, any real dtype; memory-mapped input (``read_tomogram(path, mmap=True)``) is read
        slab by slab. A bare array needs `apix`.
    lowpass : float, None or "auto", default "auto"
        Low-pass cut-off in Å (Gaussian, half amplitude); a number must be >= ``2 * apix``
        (Nyquist). None skips it. "auto" is the paper's 20 Å, or the Nyquist limit when the voxels
        are coarser than 10 Å (binned data), with a warning and a note in the output's header.
    highpass : float or None, default 4000.0
        High-pass cut-off in Å (1 - Gaussian, half amplitude); removes ice gradients. Must be longer
        than `lowpass`. None skips it.
    clamp : float or None, default 3.0
        Clamp at ± this many sd after normalizing. None skips it.
    out : str or PathLike, optional
        Write the result to this MRC file (float32, voxel size and origin kept, a header label
        recording the settings), atomically, and return it memory-mapped. Use it for tomograms
        larger than memory.
    progress : bool, default True
        Show a progress bar over slabs (tqdm).
    apix : float, optional
        Voxel size in Å; required for a bare array, overrides ``tomo.apix`` otherwise.
    slab_mb : float, default 128.0
        Size of one working slab in MiB; the working memory is a few slabs (about 2.5 × this
        measured), plus the result itself when `out` is None.

    Returns
    -------
    Tomogram
        Float32 voxels ``(z, y, x)``, same `apix` and origin; in memory (``path`` None), or the
        memory-mapped `out` file. Record the settings with :func:`preprocessing_params`.

    Raises
    ------
    ValueError
        If the cut-offs are invalid (`lowpass` below Nyquist, `highpass` <= `lowpass`), `clamp` or
        `apix` is not positive, the input is not 3D, holds NaN/inf, or is constant after filtering.
        With `out`, an existing file is left untouched on error.

    Notes
    -----
    What holds exactly: before clamping the volume has mean 0 and sd 1 (float64 statistics, float32
    rounding ~1e-7); after clamping every ``|value| <= clamp``. Clamping then moves mean and sd only
    through the clipped voxels (for Gaussian-like noise at ``clamp=3``: 0.27 % clipped, sd 0.997,
    mean within ~1e-3). Pass ``clamp=None`` for sd exactly 1.

    Filter: see :func:`bandpass` (Gaussian fall-offs, reflect boundary, cut-offs converted with
    `apix`, so the same physical filter applies at any binning).

    Bounded memory: the Gaussian response is a product of per-axis factors, so the 3D filter is
    exactly (not approximately) three passes over slabs: A) z-slabs: 2D DCT of each (y, x) plane,
    times the y and x low-pass factors, back-transformed into the output; the ~2.4·L/highpass lowest
    coefficients per axis (L: size in Å) of the smooth high-pass background are kept (a few MB).
    B) y-slabs through all z: the z low-pass factor, minus the background evaluated from those
    coefficients; mean and sd accumulated (float64). C) z-slabs: normalize and clamp. Memory is a few
    slabs plus the small background, whatever the tomogram size; pages of memory-mapped input and
    output are released after each slab. The output is the whole-volume DCT filter to float32
    rounding (tested at 1e-5 of the sd). With `out`, the three passes read/write the file.

    Examples
    --------
    >>> v = np.random.default_rng(0).normal(size=(8, 64, 64)).astype(np.float32)
    >>> pre = preprocess(v, apix=10.0, progress=False)
    >>> pre.data.dtype, bool(abs(pre.data).max() <= 3.0)
    (dtype('float32'), True)
    """
    tomo = _as_tomogram(tomo, apix)
    params = preprocessing_params(tomo.apix, lowpass, highpass, clamp)
    slab_mb = check_positive(slab_mb, "slab_mb")
    if out is None:
        data = np.empty(tomo.shape, np.float32)
        preprocess_into(tomo.data, data, params, slab_mb, progress)
        return Tomogram(data, tomo.apix, None, tomo.origin)
    out = Path(out)
    with new_mrc(out, tomo.shape, apix=tomo.apix, origin=tomo.origin, labels=mrc_labels(params)) as mrc:
        mrc.moments = preprocess_into(tomo.data, mrc.data, params, slab_mb, progress)
    return read_tomogram(out, mmap=True, check_values=False)


def bin(  # shadows the builtin on purpose: the public name
    tomo: Tomogram, factor: int, *, method: str = "fourier", progress: bool = True,
) -> Tomogram:
    """Bin a tomogram by an integer factor along z, y and x (voxel size × `factor`).

    Parameters
    ----------
    tomo : Tomogram
        Input, any dtype, in memory or memory-mapped (read slab by slab).
    factor : int
        Binning factor, >= 1 and at most the smallest dimension.
    method : {'fourier', 'mean'}, default 'fourier'
        'fourier' keeps the lowest DCT coefficients (Fourier cropping with a reflect boundary): every
        frequency below the new Nyquist is kept exactly and nothing aliases, and it commutes with
        :func:`bandpass`, hence the default. 'mean' averages ``factor**3`` blocks: never rings, but
        attenuates detail near the new Nyquist and aliases what lies above it.
    progress : bool, default True
        Show a progress bar over slabs.

    Returns
    -------
    Tomogram
        Float32 voxels of shape ``shape // factor``, in memory, ``apix * factor``; the mean is kept.
        A dimension not divisible by `factor` is cropped first: its last ``n % factor`` voxels are
        dropped. Binned voxel 0 lies at the centre of the first block, so the origin (position of
        voxel 0, Å) moves by ``(factor - 1) / 2 * apix``; both methods sample the same points.

    Raises
    ------
    ValueError
        If `tomo` is not a Tomogram, `factor` is not an integer in ``1..min(shape)``, `method` is
        unknown, or the voxels hold NaN/inf.

    Notes
    -----
    Memory-mapped input is read in slabs of about 128 MiB. 'mean' then needs only the result in
    memory; 'fourier' keeps the (y, x)-cropped planes, ``factor`` times the result, before cropping z.

    Examples
    --------
    >>> b = bin(Tomogram(np.ones((4, 6, 9), np.float32), 5.0), 2, progress=False)
    >>> b.shape, b.apix, round(float(b.data.mean()), 6)
    ((2, 3, 4), 10.0, 1.0)
    """
    if not isinstance(tomo, Tomogram):
        raise ValueError("`tomo` must be a Tomogram (binning changes its voxel size); wrap an "
                         "array as Tomogram(data, apix)")
    f = check_positive_int(factor, "factor")
    if method not in ("fourier", "mean"):
        raise ValueError(f"`method` must be 'fourier' or 'mean', got {method!r}")
    if min(tomo.shape) < f:
        raise ValueError(f"`factor` ({f}) must be at most the smallest dimension of the tomogram, "
                         f"shape {tomo.shape}; use a smaller factor")
    res = bin_volume(tomo.data, f, method, progress)
    # cast: a generator over the 3 items of `tomo.origin` gives 3 items, which mypy cannot count
    origin = cast("tuple[float, float, float]", tuple(o + (f - 1) / 2 * tomo.apix for o in tomo.origin))
    return Tomogram(res, tomo.apix * f, None, origin)


def rescale(tomo: Tomogram, apix: float, *, progress: bool = True) -> Tomogram:
    """Resample a tomogram to another voxel size by Fourier cropping or padding (any ratio).

    Use it to bring a tomogram to the voxel size a network was trained at, or to make a finer
    version for extraction. Coarser voxels keep every frequency below the new Nyquist exactly and
    alias nothing; finer voxels interpolate without adding detail (zero-padding).

    Parameters
    ----------
    tomo : Tomogram
        Input, any dtype, in memory or memory-mapped (read slab by slab).
    apix : float
        The new voxel size in Å.
    progress : bool, default True
        Show a progress bar over the two passes.

    Returns
    -------
    Tomogram
        Float32 voxels at `apix`, in memory, covering the same field of view; the mean is kept. The
        origin (position of voxel 0, Å) moves by ``(apix - tomo.apix) / 2``, since voxel 0 of each
        grid sits at the centre of its first cell (as :func:`bin` does). Where ``n * tomo.apix /
        apix`` is not a whole number of voxels, the last few input voxels of that axis are left out
        first, so the new voxels are `apix` to within 0.01 % on every axis (a warning says when an
        axis is too short for that).

    Raises
    ------
    ValueError
        If `tomo` is not a Tomogram, `apix` is not positive, the result would have an axis of fewer
        than 2 voxels, or the voxels hold NaN/inf.

    Warns
    -----
    RuntimeWarning
        If an axis cannot be fitted to whole new voxels within 0.1 % (axes of a few voxels).

    Notes
    -----
    The transform is the orthonormal DCT-II (the FFT of the mirror-extended volume, the boundary of
    :func:`bandpass` and :func:`bin`), so opposite faces do not wrap into each other. Binning by an
    integer factor with ``bin(tomo, f)`` and ``rescale(tomo, f * tomo.apix)`` give the same voxels.

    Examples
    --------
    >>> t = Tomogram(np.ones((4, 6, 9), np.float32), 20.0)
    >>> fine = rescale(t, 10.0, progress=False)
    >>> fine.shape, fine.apix, round(float(fine.data.mean()), 6), fine.origin
    ((8, 12, 18), 10.0, 1.0, (-5.0, -5.0, -5.0))
    """
    if not isinstance(tomo, Tomogram):
        raise ValueError("`tomo` must be a Tomogram (rescaling changes its voxel size); wrap an "
                         "array as Tomogram(data, apix)")
    apix = check_positive(apix, "apix")
    ratio = apix / tomo.apix
    used, shape = zip(*(_fit_axis(n, ratio) for n in tomo.shape), strict=True)
    if min(shape) < 2:
        raise ValueError(f"rescaling {tomo.shape} voxels from {tomo.apix:g} to {apix:g} Å leaves "
                         f"{shape} voxels; choose a finer voxel size")
    worst = max(abs(u / (m * ratio) - 1) for u, m in zip(used, shape, strict=True))
    if worst > APIX_RTOL:
        warnings.warn(f"{tomo.shape} voxels of {tomo.apix:g} Å do not fit whole voxels of {apix:g} Å; "
                      f"the new voxels are {apix:g} Å only to within {worst:.1%} on some axis",
                      RuntimeWarning, stacklevel=2)
    data = resample_volume(tomo.data, used, shape, progress)
    shift = (apix - tomo.apix) / 2
    origin = cast("tuple[float, float, float]", tuple(o + shift for o in tomo.origin))
    return Tomogram(data, apix, None, origin)


def _fit_axis(n: int, ratio: float) -> tuple[int, int]:
    """``(used, new)``: the fewest input voxels to leave out so that ``used / ratio`` is within
    :data:`_RESCALE_RTOL` of a whole number ``new`` (the closest fit if none is)."""
    best = (np.inf, n, max(1, round(n / ratio)))
    for used in range(n, max(0, n - max(8, n // 10)), -1):
        new = max(1, round(used / ratio))
        error = abs(used / (new * ratio) - 1)
        if error <= _RESCALE_RTOL:
            return used, new
        best = min(best, (error, used, new))
    return best[1], best[2]
