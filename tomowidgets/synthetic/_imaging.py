"""Imaging model for synthetic tomograms: missing wedge, CTF and noise, all in Fourier space.

Public names are re-exported by :mod:`tomowidgets.synthetic`; this module holds the implementation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.fft

from tomowidgets._validate import as_float32, check_finite, check_ndim, check_positive, check_tilt_range

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import NDArray

#: Default signal-to-noise ratio (signal variance / noise variance, after wedge and CTF). See
#: :func:`image_volume` for why.
DEFAULT_SNR = 0.5
#: Default defocus in µm (positive = underfocus).
DEFAULT_DEFOCUS = 3.0
#: Threads for scipy.fft (the FFTs here are the slowest part of making a cell).
_WORKERS = max(1, min(4, os.cpu_count() or 1))


def missing_wedge_mask(shape: tuple[int, int, int], tilt_range: float = 60.0) -> NDArray[np.bool_]:
    """Fourier components that a ±`tilt_range` single-axis tilt series about y measures.

    Parameters
    ----------
    shape : tuple of 3 ints
        Real-space volume size ``(z, y, x)`` in voxels (cubic voxels assumed).
    tilt_range : float, default 60.0
        Largest tilt angle in degrees, in ``(0, 90]``; 90 means no missing wedge.

    Returns
    -------
    ndarray of bool, shape (z, y, x // 2 + 1)
        True where a component is kept, in the layout of ``scipy.fft.rfftn(volume)``: kept where
        ``|kz| <= tan(tilt_range) * |kx|``, i.e. within `tilt_range` of the kx axis in the
        (kx, kz) plane. The missing wedge (around the kz axis) is False; the kz = 0 plane is kept.

    Raises
    ------
    ValueError
        If `shape` is not 3 positive ints or `tilt_range` is outside ``(0, 90]``.

    Examples
    --------
    >>> m = missing_wedge_mask((8, 8, 8), 60.0)
    >>> m.shape, bool(m[0, 0, 3]), bool(m[3, 0, 0])   # along kx kept, along kz missing
    ((8, 8, 5), True, False)
    """
    shape = _check_shape(shape, minimum=1)
    tilt_range = check_tilt_range(tilt_range)
    kz = np.abs(scipy.fft.fftfreq(shape[0]))[:, None, None]
    kx = np.abs(scipy.fft.rfftfreq(shape[2]))[None, None, :]
    if tilt_range >= 90.0:
        kept = np.ones((shape[0], 1, kx.shape[2]), dtype=bool)
    else:
        t = np.deg2rad(tilt_range)
        kept = kz * np.cos(t) <= kx * np.sin(t) + 1e-12
    return np.broadcast_to(kept, (shape[0], shape[1], kx.shape[2])).copy()


def electron_wavelength(voltage: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating `voltage` in kV (300 -> 0.0197)."""
    v = voltage * 1e3
    return float(12.2643 / np.sqrt(v + 0.978466e-6 * v * v))


def ctf_curve(
    k: NDArray[np.floating],
    *,
    defocus: float = DEFAULT_DEFOCUS,
    voltage: float = 300.0,
    cs: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> NDArray[np.float32]:
    """Contrast transfer function at spatial frequencies `k` (1/Å), no envelope.

    ``CTF(k) = -(sqrt(1 - A²) sin χ + A cos χ)`` with ``χ = π λ Δf k² - π/2 Cs λ³ k⁴``, so at low
    frequency dense material (positive density) comes out negative, i.e. dark.

    Parameters
    ----------
    k : array
        Spatial frequency magnitudes in 1/Å.
    defocus : float, default 3.0
        Defocus in µm, positive = underfocus.
    voltage : float, default 300.0
        Accelerating voltage in kV.
    cs : float, default 2.7
        Spherical aberration in mm.
    amplitude_contrast : float, default 0.07
        Fraction of amplitude contrast A, in ``[0, 1)``.

    Returns
    -------
    ndarray of float32, same shape as `k`
    """
    lam = electron_wavelength(voltage)
    k2 = np.asarray(k, dtype=np.float64) ** 2
    chi = np.pi * lam * defocus * 1e4 * k2 - 0.5 * np.pi * cs * 1e7 * lam**3 * k2 * k2
    a = amplitude_contrast
    return (-(np.sqrt(1.0 - a * a) * np.sin(chi) + a * np.cos(chi))).astype(np.float32)


def image_volume(
    density: NDArray[np.floating],
    apix: float,
    *,
    tilt_range: float = 60.0,
    defocus: float = DEFAULT_DEFOCUS,
    ctf: bool = True,
    phase_flip: bool = False,
    snr: float | None = DEFAULT_SNR,
    rng: int | np.random.Generator | None = None,
    voltage: float = 300.0,
    cs: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> NDArray[np.float32]:
    """Turn a density into what a cryo-ET reconstruction of it looks like.

    The density is multiplied in Fourier space (``scipy.fft.rfftn`` of the volume itself, so
    the volume is treated as periodic) by the CTF, as a function of the 3D frequency magnitude
    (the same defocus for every tilt), and by :func:`missing_wedge_mask`; the result's Fourier
    transform is therefore exactly zero inside the wedge. White noise, also passed through the
    missing wedge (as in a real reconstruction, where the wedge holds no data at all) but not
    through the CTF (shot noise arises after the optics), is added at the requested SNR.

    Parameters
    ----------
    density : ndarray of shape (z, y, x)
        Object density, dense material positive (protein ~1, ice 0).
    apix : float
        Voxel size in Å per voxel.
    tilt_range : float, default 60.0
        Largest tilt in degrees (tilt axis y), in ``(0, 90]``; 90 disables the missing wedge.
    defocus : float, default 3.0
        Defocus in µm, positive = underfocus. 3 µm at 300 kV puts the first CTF zero at ~24 Å.
    ctf : bool, default True
        Apply the CTF. Without it the image is simply ``-density`` through the missing wedge.
    phase_flip : bool, default False
        Use ``-|CTF|`` instead of the CTF, as after phase-flipping CTF correction.
    snr : float or None, default 0.5
        Signal variance / noise variance over the volume, both measured after wedge and CTF;
        None adds no noise. At 0.5 single slices look grainy, as real tomograms do, yet membranes,
        microtubules and ribosomes stay clearly visible after a 20 Å low-pass.
    rng : int or numpy.random.Generator, optional
        Seed or generator for the noise.
    voltage : float, default 300.0
        Accelerating voltage in kV.
    cs : float, default 2.7
        Spherical aberration in mm.
    amplitude_contrast : float, default 0.07
        Amplitude contrast fraction, in ``[0, 1)``.

    Returns
    -------
    ndarray of float32, shape (z, y, x)
        The tomogram: dense material is dark (negative), as in real reconstructions.

    Raises
    ------
    ValueError
        If `density` is not 3D or holds NaN/inf, or a parameter is out of range.
    """
    noiseless, noise = _image(
        density, apix, tilt_range=tilt_range, defocus=defocus, ctf=ctf, phase_flip=phase_flip,
        snr=snr, rng=rng, voltage=voltage, cs=cs, amplitude_contrast=amplitude_contrast,
    )
    return noiseless if noise is None else noiseless + noise


def _image(
    density: NDArray[np.floating],
    apix: float,
    *,
    tilt_range: float,
    defocus: float,
    ctf: bool,
    phase_flip: bool,
    snr: float | None,
    rng: int | np.random.Generator | None,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Return the noise-free image and the scaled noise (None when `snr` is None) separately."""
    density = as_float32(density, "density")
    check_ndim(density, (3,), "density")
    check_finite(density, "density")
    apix = check_positive(apix, "apix")
    tilt_range = check_tilt_range(tilt_range)
    defocus = check_positive(defocus, "defocus")
    voltage = check_positive(voltage, "voltage")
    if not np.isfinite(cs) or cs < 0:
        raise ValueError(f"`cs` (spherical aberration in mm) must be >= 0, got {cs!r}; e.g. 2.7")
    if not 0 <= amplitude_contrast < 1:
        raise ValueError(
            f"`amplitude_contrast` must be in [0, 1), got {amplitude_contrast!r}; 0.07 is typical"
        )
    if snr is not None:
        snr = check_positive(snr, "snr")
    rng = np.random.default_rng(rng)

    nz, ny, nx = density.shape
    spectrum = scipy.fft.rfftn(density, workers=_WORKERS)
    wedge = missing_wedge_mask((nz, ny, nx), tilt_range)
    if ctf:
        kz = scipy.fft.fftfreq(nz).astype(np.float32)[:, None, None] ** 2
        ky = scipy.fft.fftfreq(ny).astype(np.float32)[None, :, None] ** 2
        kx = scipy.fft.rfftfreq(nx).astype(np.float32)[None, None, :] ** 2
        k = np.sqrt(kz + ky + kx) / np.float32(apix)
        transfer = ctf_curve(k, defocus=defocus, voltage=voltage, cs=cs,
                             amplitude_contrast=amplitude_contrast)
        if phase_flip:
            transfer = -np.abs(transfer)
        transfer *= wedge
    else:
        transfer = np.where(wedge, np.float32(-1.0), np.float32(0.0))
    spectrum *= transfer
    del transfer
    noiseless = scipy.fft.irfftn(spectrum, s=(nz, ny, nx), workers=_WORKERS).astype(
        np.float32, copy=False)
    if snr is None:
        return noiseless, None

    white = rng.standard_normal((nz, ny, nx), dtype=np.float32)
    spectrum = scipy.fft.rfftn(white, workers=_WORKERS)
    del white
    spectrum *= wedge
    noise = scipy.fft.irfftn(spectrum, s=(nz, ny, nx), workers=_WORKERS)
    signal_var = float(np.var(noiseless, dtype=np.float64))
    noise_var = float(np.var(noise, dtype=np.float64))
    scale = np.sqrt(signal_var / (snr * noise_var)) if noise_var > 0 else 0.0
    noise = (noise * np.float32(scale)).astype(np.float32, copy=False)
    return noiseless, noise


def _check_shape(shape: object, minimum: int = 32) -> tuple[int, int, int]:
    """Return `shape` as 3 ints, raising ValueError unless each is an integer >= `minimum`."""
    try:
        # cast() is for mypy only: a `shape` that is not iterable still raises the TypeError caught below
        dims: tuple[Any, ...] = tuple(cast("Iterable[Any]", shape))
    except TypeError:
        dims = ()
    ok = len(dims) == 3 and all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= minimum for n in dims
    )
    if not ok:
        raise ValueError(
            f"`shape` must be 3 integers (z, y, x), each >= {minimum} voxels, got {shape!r}; "
            "e.g. shape=(64, 256, 256)"
        )
    return tuple(int(n) for n in dims)  # type: ignore[return-value]
