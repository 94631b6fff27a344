"""Building blocks of synthetic cells: templates, rotations and membrane/tube/sphere densities.

All sizes are in Å unless a name ends in ``_vox``; arrays are ``(z, y, x)`` float32. The public
names are re-exported by :mod:`tomowidgets.synthetic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mrcfile
import numpy as np
import scipy.ndimage as ndi

from tomowidgets._rotation import FLIP, zyz_matrix
from tomowidgets._validate import check_positive

if TYPE_CHECKING:
    from numpy.typing import NDArray

_RIBOSOME_FILE = Path(__file__).parents[1] / "data" / "ribosome70S_4v5d_10A.mrc"
_RIBOSOME_APIX = 10.0
#: Masses in Da that set each template's envelope (molecular volume at 1.21 Å³/Da).
RIBOSOME_MASS = 2.5e6
PROTEASOME_MASS = 7.0e5
APOFERRITIN_MASS = 4.8e5
SPLICEOSOME_MASS = 3.0e6
A3_PER_DA = 1.21

#: Bilayer: leaflet (head-group) peaks at ±20 Å (4 nm apart), each a Gaussian of this width (Å).
LEAFLET_OFFSET = 20.0
LEAFLET_SIGMA = 7.0
#: Half-thickness (Å) of the labelled band around a bilayer's mid-plane.
MEMBRANE_HALF_WIDTH = 25.0
#: Microtubule: protofilament centres on a 100 Å radius, wall from 75 to 125 Å (25 nm outer).
MT_RADIUS = 100.0
MT_INNER = 75.0
MT_OUTER = 125.0
MT_PROTOFILAMENTS = 13
#: Gold fiducial radius (Å) and density (protein ~1).
GOLD_RADIUS = 50.0
GOLD_DENSITY = 8.0


def rotate_template(template: NDArray[np.float32], angles: tuple[float, float, float]
                    ) -> NDArray[np.float32]:
    """Template rotated to RELION angles about its centre voxel ``n // 2`` (trilinear)."""
    m = FLIP @ zyz_matrix(*angles) @ FLIP
    c = np.array(template.shape) // 2
    return ndi.affine_transform(template, m, offset=c - m @ c, order=1, mode="constant",
                                cval=0.0, prefilter=False).astype(np.float32, copy=False)


def _resample(volume: NDArray[np.float32], factor: float, size: int) -> NDArray[np.float32]:
    """Resample a cubic map by `factor` (new voxel = factor old voxels), keeping its centre voxel."""
    if factor > 1.4:  # coarser than ~14 Å at 10 Å input: low-pass first to avoid aliasing
        volume = ndi.gaussian_filter(volume, 0.5 * factor)
    c_in = np.array(volume.shape) // 2
    c_out = np.array([size // 2] * 3)
    return ndi.affine_transform(volume, np.full(3, factor), offset=c_in - factor * c_out,
                                output_shape=(size,) * 3, order=1, mode="constant",
                                cval=0.0).astype(np.float32, copy=False)


def ribosome_template(apix: float = 10.0) -> NDArray[np.float32]:
    """The 70S ribosome map (PDB 4V5D) used for synthetic cells, dense = positive, max 1.

    Parameters
    ----------
    apix : float, default 10.0
        Voxel size in Å. At 10 Å the stored 40³ map is returned as is; otherwise it is resampled
        (box ``round(400 / apix)`` voxels), keeping the centre voxel ``n // 2`` on the same point.

    Returns
    -------
    ndarray of float32, shape (n, n, n)
        Density ``(z, y, x)``; the particle centre (its centre of mass) is voxel ``n // 2``.

    Raises
    ------
    ValueError
        If `apix` is not a positive number.

    Examples
    --------
    >>> ribosome_template(10.0).shape
    (40, 40, 40)
    """
    apix = check_positive(apix, "apix")
    data = np.asarray(mrcfile.read(_RIBOSOME_FILE), dtype=np.float32)
    if apix == _RIBOSOME_APIX:
        return data.copy()
    size = max(4, int(round(data.shape[0] * _RIBOSOME_APIX / apix)))
    return _resample(data, apix / _RIBOSOME_APIX, size)


def proteasome_template(apix: float = 10.0) -> NDArray[np.float32]:
    """A 20S-proteasome-like barrel (15 nm long along z, 11 nm wide), built from Gaussian subunits.

    Four stacked rings of seven subunits (α7β7β7α7) around a central channel; max density 1.

    Parameters
    ----------
    apix : float, default 10.0
        Voxel size in Å.

    Returns
    -------
    ndarray of float32, shape (n, n, n)
        Density ``(z, y, x)``, barrel axis along z, centre at voxel ``n // 2``.

    Raises
    ------
    ValueError
        If `apix` is not a positive number.
    """
    apix = check_positive(apix, "apix")
    n = 2 * int(np.ceil(110.0 / apix)) + 2
    z, y, x = (np.indices((n, n, n), dtype=np.float32) - n // 2) * np.float32(apix)
    out = np.zeros((n, n, n), np.float32)
    for ring, height in enumerate((-56.0, -19.0, 19.0, 56.0)):
        radius = 36.0 if ring in (0, 3) else 38.0
        for k in range(7):
            phi = 2 * np.pi * (k + 0.5 * (ring % 2)) / 7
            d2 = (x - radius * np.cos(phi)) ** 2 + (y - radius * np.sin(phi)) ** 2
            out += np.exp(-d2 / (2 * 14.0**2) - (z - height) ** 2 / (2 * 13.0**2))
    return out / out.max()


def apoferritin_template(apix: float = 10.0) -> NDArray[np.float32]:
    """An apoferritin-like hollow shell (12 nm across, an 8 nm cavity) of 24 Gaussian subunits.

    Returns a cubic float32 map ``(z, y, x)`` at `apix` Å per voxel, max density 1, its centre (the
    empty cavity) at voxel ``n // 2``, as :func:`proteasome_template` does (ValueError likewise).
    """
    apix = check_positive(apix, "apix")
    # 24 subunits spread evenly on a sphere of radius 50 Å (a Fibonacci lattice)
    k = np.arange(24) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / 24), np.pi * (1 + 5**0.5) * k
    centres = 50.0 * np.stack([np.cos(polar), np.sin(polar) * np.sin(azimuth),
                               np.sin(polar) * np.cos(azimuth)], axis=1)
    return _gaussian_lumps(centres, sigma=12.0, half_width=80.0, apix=apix)


def spliceosome_template(apix: float = 10.0) -> NDArray[np.float32]:
    """A spliceosome-sized complex (3 MDa, ~30 × 25 × 20 nm): a lumpy body with an arm.

    Not a spliceosome's structure, only its size, mass and irregular outline: ribosome-sized,
    so that a ribosome network must tell the two apart by shape. The same map every call: a
    cubic float32 map ``(z, y, x)`` at `apix` Å per voxel, max density 1, centred on voxel
    ``n // 2``, as :func:`proteasome_template` (ValueError likewise).
    """
    apix = check_positive(apix, "apix")
    rng = np.random.default_rng(1)  # one fixed shape
    body = rng.uniform(-1, 1, (400, 3))
    body = body[(body**2).sum(axis=1) <= 1][:36] * (70.0, 90.0, 110.0)  # an ellipsoid of lumps
    arm = np.linspace(0.0, 1.0, 6)[:, None] * (40.0, -60.0, 130.0) + (0.0, 40.0, 30.0)
    return _gaussian_lumps(np.concatenate([body, arm]), sigma=22.0, half_width=170.0, apix=apix)


def _gaussian_lumps(centres: NDArray[np.float64], *, sigma: float, half_width: float, apix: float
                    ) -> NDArray[np.float32]:
    """A cubic map of Gaussian subunits of sd `sigma` at `centres` ((z, y, x) Å from the centre
    voxel), wide enough for ``±half_width`` Å; max 1."""
    n = 2 * int(np.ceil(half_width / apix)) + 1
    grid = (np.indices((n, n, n), dtype=np.float32) - n // 2) * np.float32(apix)
    out = np.zeros((n, n, n), np.float32)
    for c in centres:
        d2 = sum((g - np.float32(v)) ** 2 for g, v in zip(grid, c, strict=True))
        out += np.exp(-d2 / np.float32(2 * sigma**2))
    return out / out.max()


def envelope_threshold(template: NDArray[np.float32], mass: float, apix: float) -> float:
    """Density above which a template's voxels add up to its molecular volume (`mass` in Da)."""
    n_vox = max(1, int(round(mass * A3_PER_DA / apix**3)))
    values = np.sort(template.ravel())[::-1]
    return float(values[min(n_vox, values.size) - 1])


def crop_centered(template: NDArray[np.float32], floor: float) -> NDArray[np.float32]:
    """Crop a template to the smallest odd cube around its centre voxel holding all values > floor.

    The cube is large enough for any rotation; its centre voxel stays the template's centre.
    """
    c = np.array(template.shape) // 2
    idx = np.argwhere(template > floor)
    h = int(np.ceil(np.sqrt(((idx - c) ** 2).sum(axis=1).max()))) + 1 if idx.size else 1
    padded = np.pad(template, h)  # so the crop never runs off the box
    c = c + h
    return np.ascontiguousarray(padded[c[0] - h : c[0] + h + 1, c[1] - h : c[1] + h + 1,
                                       c[2] - h : c[2] + h + 1])


def bilayer(distance: NDArray[np.float32], apix: float) -> NDArray[np.float32]:
    """Density of a lipid bilayer whose mid-plane is at signed `distance` 0 (Å); peaks are 1.

    The leaflet width is widened by half a voxel so that coarse sampling does not alias.
    """
    s2 = np.float32(2 * (LEAFLET_SIGMA**2 + (0.5 * apix) ** 2))
    off = np.float32(LEAFLET_OFFSET)
    return np.exp(-((distance - off) ** 2) / s2) + np.exp(-((distance + off) ** 2) / s2)


def membrane_band(apix: float) -> float:
    """Half-width (Å) of a membrane's label band, at least 0.6 voxel so it is never empty."""
    return max(MEMBRANE_HALF_WIDTH, 0.6 * apix)


def ellipsoid_distance(shape: tuple[int, ...], center: NDArray[np.float64],
                       axes: NDArray[np.float64], rotation: NDArray[np.float64], apix: float,
                       reach: float) -> tuple[tuple[slice, ...], NDArray[np.float32]] | None:
    """Approximate signed distance (Å, negative inside) to an ellipsoid surface, in its box.

    Parameters are in voxels (`center`, ``(z, y, x)``) and Å (`axes`, along the columns of the
    ``(z, y, x)`` `rotation`, and `reach`, how far outside the surface the box extends). Returns the
    box (clipped to `shape`) and the distance there, or None if the box misses the volume. The
    distance is the first-order ``(f - 1) / |grad f|`` of the normalised radius ``f``, close to
    the true distance within a few nm of the surface for the mild eccentricities used here.
    """
    half = (axes.max() + reach) / apix
    lo = np.maximum(np.floor(center - half).astype(int), 0)
    hi = np.minimum(np.ceil(center + half).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grids = np.ogrid[box]
    local = [sum(rotation[i, j] * np.float32(apix) * (grids[i] - np.float32(center[i]))
                 for i in range(3)) for j in range(3)]  # coordinates along the principal axes
    f2 = sum((local[j] / np.float32(axes[j])) ** 2 for j in range(3))
    g2 = sum((local[j] / np.float32(axes[j] ** 2)) ** 2 for j in range(3))
    f = np.sqrt(f2)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(f > 1e-6, (f - 1) * f / np.sqrt(g2), -axes.min())
    return box, dist.astype(np.float32, copy=False)


def arc_geometry(shape: tuple[int, ...], center: NDArray[np.float64], normal: NDArray[np.float64],
                 e1: NDArray[np.float64], radius: float, apix: float
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Tube coordinates around a circular arc over the whole volume (all inputs in voxels).

    The arc is the circle of `radius` around `center` in the plane with unit `normal` (``(z, y,
    x)``); unit `e1`, in that plane, points from `center` towards the volume (arc length 0).
    Returns, in Å, the distance from the arc, the angle around it (radians) and the arc length.
    """
    zz, yy, xx = (np.arange(n, dtype=np.float32) for n in shape)
    rel = [zz[:, None, None] - np.float32(center[0]), yy[None, :, None] - np.float32(center[1]),
           xx[None, None, :] - np.float32(center[2])]
    height = sum(np.float32(normal[i]) * rel[i] for i in range(3))
    e2 = np.cross(normal, e1)
    u = sum(np.float32(e1[i]) * rel[i] for i in range(3))
    v = sum(np.float32(e2[i]) * rel[i] for i in range(3))
    rho = np.sqrt(u * u + v * v)
    radial = rho - np.float32(radius)
    dist = np.sqrt(radial * radial + height * height) * np.float32(apix)
    around = np.arctan2(height, radial)
    along = np.arctan2(v, u) * np.float32(radius * apix)
    return dist, around, along


def microtubule(dist: NDArray[np.float32], around: NDArray[np.float32],
                along: NDArray[np.float32], apix: float) -> NDArray[np.float32]:
    """Microtubule wall density: 13 protofilaments on a 3-start lattice of 4 nm monomers; max ~1."""
    sigma2 = np.float32(2 * (20.0**2 + (0.5 * apix) ** 2))
    radial = np.exp(-((dist - np.float32(MT_RADIUS)) ** 2) / sigma2)
    lobes = np.exp(np.float32(3.0) * (np.cos(MT_PROTOFILAMENTS * around) - 1))
    lattice = 1 + 0.2 * np.cos(np.float32(2 * np.pi / 40.0) * along - 3 * around)
    return (radial * (0.7 + 0.3 * lobes) * lattice / np.float32(1.1)).astype(np.float32)
