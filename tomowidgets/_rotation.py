"""The one rotation convention: RELION ZYZ Euler angles, as synthetic cells place particles and
subtomogram averaging recovers them.

A rotation matrix ``R`` acts on offsets ``r = (x, y, z)`` (note: x first, as in RELION) from a box's
centre voxel ``n // 2``; a particle with orientation ``(rot, tilt, psi)`` in degrees is
``particle(r) = reference(R @ r)`` with ``R = Rz(rot) Ry(tilt) Rz(psi)``. RELION's
``Euler_angles2matrix`` returns ``A = R.T``, the matrix that turns the reference onto the particle.
Arrays are ``(z, y, x)``, so code that resamples an array uses ``FLIP @ R @ FLIP``.

Examples
--------
>>> import numpy as np
>>> r = zyz_matrix(90.0, 0.0, 0.0)          # rot = 90°: x turns into y
>>> np.round(r @ [1.0, 0.0, 0.0], 12).tolist()
[0.0, 1.0, 0.0]
>>> np.round(matrix_to_euler(euler_to_matrix([[30.0, 50.0, -70.0]])), 9).tolist()
[[30.0, 50.0, -70.0]]
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["FLIP", "euler_to_matrix", "matrix_to_euler", "random_euler", "zyz_matrix"]

#: Swaps (x, y, z) and (z, y, x).
FLIP = np.eye(3)[::-1]


def euler_to_matrix(angles: ArrayLike) -> NDArray[np.float64]:
    """RELION ZYZ ``(rot, tilt, psi)`` in degrees, shape (..., 3) -> ``Rz Ry Rz`` matrices (..., 3, 3).

    Equals ``scipy.spatial.transform.Rotation.from_euler("ZYZ", angles, degrees=True)`` to rounding
    (~1e-16); computed as the explicit matrix product so synthetic cells stay bit-identical.
    """
    angles = np.asarray(angles, dtype=np.float64)
    a, b, c = np.deg2rad(np.moveaxis(angles.reshape(-1, 3), -1, 0))
    ry = np.zeros(b.shape + (3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1] = np.cos(b), np.sin(b), 1.0
    ry[:, 2, 0], ry[:, 2, 2] = -np.sin(b), np.cos(b)
    return (_rz(a) @ ry @ _rz(c)).reshape(angles.shape[:-1] + (3, 3))


def _rz(t: NDArray[np.float64]) -> NDArray[np.float64]:
    m = np.zeros(t.shape + (3, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    m[:, 2, 2] = 1.0
    return m


def zyz_matrix(rot: float, tilt: float, psi: float) -> NDArray[np.float64]:
    """The 3×3 matrix ``R = Rz(rot) Ry(tilt) Rz(psi)`` of one orientation (degrees); see the module."""
    return euler_to_matrix([rot, tilt, psi])


def matrix_to_euler(mats: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`euler_to_matrix`: (..., 3, 3) -> (rot, tilt, psi) in degrees, (..., 3).

    At tilt 0 or 180° only ``rot ± psi`` is defined; psi is then set to 0.
    """
    mats = np.asarray(mats, dtype=np.float64)
    with warnings.catch_warnings():  # scipy warns at gimbal lock; psi = 0 is our documented choice
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_matrix(mats.reshape(-1, 3, 3)).as_euler("ZYZ", degrees=True)
    return angles.reshape(mats.shape[:-2] + (3,))


def random_euler(rng: np.random.Generator) -> tuple[float, float, float]:
    """A uniformly distributed orientation as RELION (rot, tilt, psi) in degrees."""
    rot, psi = rng.uniform(-180.0, 180.0, 2)
    tilt = np.rad2deg(np.arccos(rng.uniform(-1.0, 1.0)))
    return float(rot), float(tilt), float(psi)
