"""A second, physically different imaging path: a tilt series projected in real space, then WBP.

:func:`image_volume` imposes the missing wedge and the CTF as exact masks in the volume's Fourier
transform. Real tomograms are made otherwise, and networks tuned to one model may learn its
quirks. Here the density is projected along tilted rays (single axis y, dose-symmetric order),
each projection gets its own CTF (with the defocus gradient across the tilted specimen), the
exposure filter of the dose accumulated so far, a small alignment error and shot noise that grows
with the beam's path through the slab. The tilt series is then reconstructed by weighted
back-projection, as IMOD's ``tilt`` or EMAN2's ``e2tomogram.py`` would. The missing wedge, the
streaks of a finite tilt step and the mix of CTFs therefore come from the geometry, not from a
mask.

Public names are re-exported by :mod:`tomowidgets.synthetic`; this module holds the implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.fft
import scipy.sparse

from tomowidgets._validate import as_float32, check_finite, check_ndim, check_positive, check_tilt_range
from tomowidgets.synthetic._imaging import _WORKERS, ctf_curve

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Default tilt increment in degrees (a ±60° series in 3° steps has 41 images).
DEFAULT_TILT_STEP = 3.0
#: Default total exposure of the series in electrons per Å².
DEFAULT_DOSE = 120.0
#: Default residual alignment error of each image, standard deviation in voxels (y and x).
DEFAULT_ALIGNMENT_ERROR = 0.3
#: Inelastic mean free path of 300 kV electrons in vitreous ice, in Å: thicker paths at high tilt
#: leave fewer electrons for the image, so its shot noise is larger.
MEAN_FREE_PATH = 3500.0
#: Largest defocus step, in µm, between the strips that carry the defocus gradient of a tilted image.
_DEFOCUS_STRIP = 0.05


def tilt_angles(tilt_range: float = 60.0, tilt_step: float = DEFAULT_TILT_STEP) -> NDArray[np.float64]:
    """The tilts of a single-axis series from ``-tilt_range`` to ``+tilt_range`` in degrees.

    >>> tilt_angles(6.0, 3.0)
    array([-6., -3.,  0.,  3.,  6.])
    """
    tilt_range = check_tilt_range(tilt_range)
    tilt_step = check_positive(tilt_step, "tilt_step")
    n = int(np.floor(tilt_range / tilt_step + 1e-9))
    return np.arange(-n, n + 1, dtype=np.float64) * float(tilt_step)


def dose_symmetric_order(angles: NDArray[np.floating]) -> NDArray[np.int64]:
    """The position of each tilt in a dose-symmetric series (Hagen et al. 2017): 0° first, then
    alternating sides outwards, so the low tilts that carry most information get the least dose.

    >>> dose_symmetric_order(np.array([-6.0, -3.0, 0.0, 3.0, 6.0]))
    array([4, 2, 0, 1, 3])
    """
    angles = np.asarray(angles, dtype=np.float64)
    # |angle| first; at equal |angle| the positive side first
    order = np.lexsort((-angles, np.abs(angles)))
    position = np.empty(len(angles), np.int64)
    position[order] = np.arange(len(angles))
    return position


def _ray_matrix(nz: int, nx: int, angle: float) -> scipy.sparse.csr_matrix:
    """The projection of one ``(z, x)`` plane at `angle` degrees about y, as a sparse matrix.

    Row ``u`` sums the plane along the ray that reaches detector pixel ``u`` (steps of one voxel,
    bilinear interpolation): ``projection = A @ plane.ravel()``. Its transpose is the matching
    back-projection. The centred point ``(z, x)`` lands on ``u = x cos(angle) + z sin(angle)``.
    """
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    u = np.arange(nx, dtype=np.float64)[:, None] - (nx - 1) / 2
    # Each ray is sampled where it crosses the plane (one voxel of margin for the interpolation):
    # off the tilt axis that stretch is not centred on t = 0 but shifted by u tan(angle), so
    # samples centred on 0 would miss the slab towards the sides of the field.
    enter, leave = _crossing(u[:, 0] * s, c, (nz - 1) / 2 + 1)
    enter_x, leave_x = _crossing(u[:, 0] * c, -s, (nx - 1) / 2 + 1)
    enter, leave = np.maximum(enter, enter_x), np.minimum(leave, leave_x)
    length = int(np.ceil(max(float(np.max(leave - enter)), 0.0))) + 1
    t = np.where(leave > enter, enter, 0.0)[:, None] + np.arange(length, dtype=np.float64)[None, :]
    z = u * s + t * c + (nz - 1) / 2
    x = u * c - t * s + (nx - 1) / 2
    z0, x0 = np.floor(z), np.floor(x)
    fz, fx = z - z0, x - x0
    rows, cols, weights = [], [], []
    row = np.broadcast_to(np.arange(nx)[:, None], z.shape)
    for dz, wz in ((0, 1 - fz), (1, fz)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            zi, xi = z0 + dz, x0 + dx
            inside = (zi >= 0) & (zi < nz) & (xi >= 0) & (xi < nx)
            rows.append(row[inside])
            cols.append((zi[inside] * nx + xi[inside]).astype(np.int64))
            weights.append((wz * wx)[inside])
    return scipy.sparse.csr_matrix(
        (np.concatenate(weights).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(nx, nz * nx),
    )


def _crossing(offset: NDArray[np.float64], slope: float, half: float
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Where ``offset + t * slope`` lies within ``[-half, half]``: t from, t to (per offset).

    All t when `slope` is 0 and the offset lies inside, none when it lies outside.
    """
    if abs(slope) < 1e-12:
        inside = np.abs(offset) <= half
        return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)
    a, b = (-half - offset) / slope, (half - offset) / slope
    return np.minimum(a, b), np.maximum(a, b)


def project(volume: NDArray[np.floating], angles: NDArray[np.floating]) -> NDArray[np.float32]:
    """Line integrals of `volume` ``(z, y, x)`` along the beam at each tilt about y.

    Returns
    -------
    ndarray of float32, shape (len(angles), y, x)
        One image per tilt, in voxel units (a ray through `n` voxels of density 1 gives `n`).
    """
    nz, ny, nx = volume.shape
    planes = np.ascontiguousarray(np.asarray(volume, np.float32).transpose(0, 2, 1)).reshape(nz * nx, ny)
    return np.stack([(_ray_matrix(nz, nx, a) @ planes).T for a in angles]).astype(np.float32, copy=False)


def weighted_back_projection(projections: NDArray[np.floating], angles: NDArray[np.floating],
                             nz: int) -> NDArray[np.float32]:
    """Reconstruct a ``(nz, y, x)`` volume from a tilt series by weighted back-projection.

    Each image is filtered along x by the ramp ``|k|`` (the weighting of a parallel-beam series;
    its zero-frequency term is set to half the first one so the mean is kept, as IMOD does) and
    smeared back along its rays. With tilts over the full ±90° the result approximates the
    projected volume; a limited range leaves the missing wedge, and the tilt step leaves streaks.

    Parameters
    ----------
    projections : ndarray of shape (n, y, x)
        The tilt series, one image per angle (as :func:`project` returns).
    angles : array of n floats
        Tilt of each image in degrees about y.
    nz : int
        Thickness of the reconstruction in voxels.

    Returns
    -------
    ndarray of float32, shape (nz, y, x)
    """
    angles = np.asarray(angles, dtype=np.float64)
    n, ny, nx = projections.shape
    padded = 2 * nx  # zero padding keeps the filter's wrap-around off the image
    ramp = np.abs(scipy.fft.rfftfreq(padded)).astype(np.float32)
    ramp[0] = ramp[1] / 2
    filtered = scipy.fft.irfft(scipy.fft.rfft(projections, n=padded, axis=-1, workers=_WORKERS) * ramp,
                               n=padded, axis=-1, workers=_WORKERS)[..., :nx]
    # the integral over angles, each image standing for the interval around it
    step = np.deg2rad(np.gradient(angles)) if n > 1 else np.array([np.pi])
    volume = np.zeros((nz * nx, ny), np.float32)
    for image, angle, weight in zip(filtered, angles, step, strict=True):
        volume += _ray_matrix(nz, nx, angle).T @ (np.float32(weight) * image.T.astype(np.float32))
    return np.ascontiguousarray(volume.reshape(nz, nx, ny).transpose(0, 2, 1))


def _critical_exposure(k: NDArray[np.floating]) -> NDArray[np.float64]:
    """Exposure (e/Å²) at which the signal at spatial frequency `k` (1/Å) falls to 1/e (Grant &
    Grigorieff 2015, 300 kV)."""
    return 0.245 * np.maximum(k, 1e-6) ** -1.665 + 2.81


def _optics(images: NDArray[np.float32], angles: NDArray[np.float64], apix: float, *, ctf: bool,
            phase_flip: bool, defocus: float, dose: float, shifts: NDArray[np.float64], voltage: float,
            cs: float, amplitude_contrast: float, gradient: bool = True) -> NDArray[np.float32]:
    """What the microscope makes of each projection: CTF at the local defocus (the gradient across
    a tilted slab unless `gradient` is False), exposure filter, misalignment. Dense material
    (positive projections) comes out dark."""
    n, ny, nx = images.shape
    ky = scipy.fft.fftfreq(ny)[:, None]
    kx = scipy.fft.rfftfreq(nx)[None, :]
    k = np.sqrt(ky**2 + kx**2) / apix
    accumulated = (dose_symmetric_order(angles) + 0.5) * (dose / n)
    critical = _critical_exposure(k)
    u = (np.arange(nx) - (nx - 1) / 2) * apix  # Å from the tilt axis in the image
    out = np.empty_like(images)
    for i, (image, angle) in enumerate(zip(images, angles, strict=True)):
        spectrum = scipy.fft.rfft2(image, workers=_WORKERS)
        spectrum *= np.exp(-accumulated[i] / (2 * critical))
        spectrum *= np.exp(-2j * np.pi * (ky * shifts[i, 0] + kx * shifts[i, 1]))
        if not ctf:
            out[i] = -scipy.fft.irfft2(spectrum, s=(ny, nx), workers=_WORKERS)
            continue
        # a tilted slab's surface lies u·tan(angle) above or below focus: image it in strips,
        # each at its own defocus (in µm; 1 µm = 1e4 Å)
        local = defocus + u * (np.tan(np.deg2rad(angle)) * 1e-4 if gradient else 0.0)
        strips = max(1, int(np.ceil(np.ptp(local) / _DEFOCUS_STRIP)))
        edges = np.linspace(local.min(), local.max(), strips + 1)
        which = np.clip(np.searchsorted(edges, local, side="right") - 1, 0, strips - 1)
        for j in range(strips):
            transfer = ctf_curve(k, defocus=float(edges[j:j + 2].mean()), voltage=voltage, cs=cs,
                                 amplitude_contrast=amplitude_contrast)
            if phase_flip:
                transfer = -np.abs(transfer)
            columns = which == j
            out[i][:, columns] = scipy.fft.irfft2(spectrum * transfer, s=(ny, nx),
                                                  workers=_WORKERS)[:, columns]
    return out


def _image_tilt_series(
    density: NDArray[np.floating],
    apix: float,
    *,
    tilt_range: float,
    tilt_step: float,
    dose: float,
    alignment_error: float,
    defocus: float,
    ctf: bool,
    phase_flip: bool,
    snr: float | None,
    rng: int | np.random.Generator | None,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
    gradient: bool = True,
    isolated: bool = False,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """The noise-free WBP reconstruction and the scaled noise (None when `snr` is None).

    `gradient` False images every tilt at the one `defocus` (for a single particle's box).
    `isolated` True images `density` alone in vacuum (a particle's box); otherwise it is the field
    of view of a specimen that goes on beyond it in x, as a cell section does (:func:`_surroundings`).
    """
    density = as_float32(density, "density")
    check_ndim(density, (3,), "density")
    check_finite(density, "density")
    apix = check_positive(apix, "apix")
    if not np.isfinite(dose) or dose < 0:
        raise ValueError(f"`dose` (total exposure in e/Å²) must be >= 0, got {dose!r}; e.g. 120")
    if not np.isfinite(alignment_error) or alignment_error < 0:
        raise ValueError(f"`alignment_error` (voxels) must be >= 0, got {alignment_error!r}; e.g. 0.3")
    if snr is not None:
        snr = check_positive(snr, "snr")
    rng = np.random.default_rng(rng)
    angles = tilt_angles(tilt_range, tilt_step)
    nz, ny, nx = density.shape

    margin = 0 if isolated else _surroundings(nz, angles)
    density = np.pad(density, ((0, 0), (0, 0), (margin, margin)), mode="reflect")

    def reconstruct(series: NDArray[np.float32]) -> NDArray[np.float32]:  # the field alone
        return np.ascontiguousarray(weighted_back_projection(series, angles, nz)[..., margin:margin + nx])

    shifts = rng.normal(0.0, alignment_error, (len(angles), 2)) if alignment_error > 0 else \
        np.zeros((len(angles), 2))
    images = _optics(project(density, angles), angles, apix, ctf=ctf, phase_flip=phase_flip,
                     defocus=defocus, dose=dose, shifts=shifts, voltage=voltage, cs=cs,
                     amplitude_contrast=amplitude_contrast, gradient=gradient)
    noiseless = reconstruct(images)
    if snr is None:
        return noiseless, None
    # fewer electrons get through the longer path at high tilt: relative shot-noise sd per image
    path = nz * apix / np.cos(np.deg2rad(angles))
    sd = np.exp(path / (2 * MEAN_FREE_PATH)).astype(np.float32)
    shots = rng.standard_normal(images.shape, dtype=np.float32) * sd[:, None, None]
    noise = reconstruct(shots)
    signal_var = float(np.var(noiseless, dtype=np.float64))
    noise_var = float(np.var(noise, dtype=np.float64))
    scale = np.sqrt(signal_var / (snr * noise_var)) if noise_var > 0 else 0.0
    return noiseless, (noise * np.float32(scale)).astype(np.float32, copy=False)


def _surroundings(nz: int, angles: NDArray[np.float64]) -> int:
    """Voxels of specimen to image on each side of the field along x, beyond it.

    A cell section goes on beyond the field of view: at a tilt θ the rays through the field's
    sides cross the slab partly outside it. Imaging only the field would cut those rays short, and
    the back-projection of a uniform slab would then brighten towards the sides (from 0.24 in the
    middle to 0.4 at 40 voxels from the edge and 0.9 at it, 64-voxel slab, ±60°), which the
    networks read as structure. The field is therefore imaged within a margin of specimen (the
    density reflected at its sides) wide enough for the steepest ray, ``(nz / 2 + 1) tan θ``, plus
    8 voxels for the tails of the ramp filter and the CTF, and the reconstruction cropped to it.
    Tilts beyond 80° count as 80°: a ±90° series would otherwise need an infinite margin.
    """
    steepest = float(np.max(np.abs(angles)))  # tilt_angles always holds 0
    return int(np.ceil((nz / 2 + 1) * np.tan(np.deg2rad(min(steepest, 80.0))))) + 8
