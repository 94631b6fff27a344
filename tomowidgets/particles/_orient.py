"""Oriented positions for subtomogram averaging: membrane normals, filament axes, particle axes.

Public through :mod:`tomowidgets.particles`.

A direction becomes the RELION ZYZ angles whose reference z axis points along it. With
``R = Rz(rot) Ry(tilt) Rz(psi)`` (:mod:`tomowidgets._rotation`), a feature of the reference along z
appears in the particle along ``R.T @ z = (-sin(tilt) cos(psi), sin(tilt) sin(psi), cos(tilt))``
(x, y, z), whatever ``rot`` is. So ``tilt`` and ``psi`` fix the direction and are written as the
priors ``rlnAngleTiltPrior`` and ``rlnAnglePsiPrior``; ``rot``, the spin about the direction, is
unknown and set to 0. This is RELION's convention for helical segments (the axis along the
reference's z) and for membrane proteins (the membrane normal along z).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from tomowidgets._calibration import THRESHOLD
from tomowidgets.particles._picking import _scores, seed_points
from tomowidgets.particles._table import check_name, check_number, check_table, make_table

#: Columns an oriented table adds to the particle columns: the angles (degrees), their priors and,
#: for filaments, the filament's number (from 1) and the distance along it in Å.
ORIENTATION_COLUMNS = ("rot", "tilt", "psi", "tilt_prior", "psi_prior")
FILAMENT_COLUMNS = ("filament", "track_length")
#: Smoothing (voxels, Gaussian sd along the path) of a traced centreline before it is sampled.
_PATH_SMOOTHING = 2.0


def direction_angles(directions: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(tilt, psi)`` in degrees of unit directions ``(n, 3)`` given as ``(z, y, x)``.

    The inverse of :func:`angle_directions`; see the module docstring for the convention.
    """
    d = np.asarray(directions, np.float64).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    z, y, x = d.T
    return np.degrees(np.arccos(np.clip(z, -1.0, 1.0))), np.degrees(np.arctan2(y, -x))


def angle_directions(tilt: Any, psi: Any) -> NDArray[np.float64]:
    """Unit directions ``(n, 3)`` as ``(z, y, x)`` of RELION angles `tilt`, `psi` (degrees)."""
    t, p = np.radians(np.atleast_1d(tilt)), np.radians(np.atleast_1d(psi))
    return np.stack([np.cos(t), np.sin(t) * np.sin(p), -np.sin(t) * np.cos(p)], axis=1)


def membrane_seeds(
    scores: Any,
    spacing: float,
    *,
    threshold: float = THRESHOLD,
    radius: float | None = None,
    rng: int | np.random.Generator | None = None,
    feature: str = "membrane",
    tomogram: str | None = None,
) -> pd.DataFrame:
    """Points evenly spread on a membrane annotation, each with the membrane's normal.

    Points are :func:`seed_points` at least `spacing` apart. The normal at a point is the direction
    in which the annotated voxels within `radius` spread least (their covariance's smallest
    eigenvector): across a sheet, not along it. It points away from the centre of its connected
    piece of membrane, so outwards for vesicles and cells.

    Parameters
    ----------
    scores : Tomogram or ndarray of shape (z, y, x)
        Calibrated score map (or boolean mask) of the membrane. A Tomogram gives the voxel size.
    spacing : float
        Smallest distance between points, in Å (voxels for a plain array).
    threshold : float, default 1.0
        Lowest score counted as membrane.
    radius : float, optional
        Radius in Å of the patch that sets each normal; default `spacing` (at least 3 voxels). It
        must be wider than the annotated band is thick.
    rng, feature, tomogram
        As in :func:`seed_points`.

    Returns
    -------
    pandas.DataFrame
        :data:`PARTICLE_COLUMNS`, then ``rot`` (0), ``tilt``, ``psi`` (degrees; the reference's z
        along the normal) and ``tilt_prior``, ``psi_prior`` (the same angles, as RELION priors).
    """
    volume, name, apix = _volume_and_apix(scores, tomogram)
    spacing_vox = check_number(spacing, "spacing", minimum=apix, hint=" Å") / apix
    radius_vox = _radius(radius, spacing_vox, apix)
    table = seed_points(volume, spacing_vox, threshold=threshold, rng=rng, feature=feature,
                        tomogram=name)
    mask = volume >= check_number(threshold, "threshold")
    points = table[["z", "y", "x"]].to_numpy()
    if not len(points):
        return _with_directions(table, np.empty((0, 3)))
    voxels = np.argwhere(mask).astype(np.float64)
    normals = _local_axes(voxels, points, radius_vox, smallest=True)
    pieces, _ = ndimage.label(mask)
    piece = pieces[tuple(np.round(points).astype(int).T)]
    centres = np.array(ndimage.center_of_mass(mask, pieces, piece))
    outwards = np.sign(np.einsum("ij,ij->i", normals, points - centres))
    normals *= np.where(outwards == 0, 1.0, outwards)[:, None]
    return _with_directions(table, normals)


def filament_seeds(
    scores: Any,
    spacing: float,
    *,
    threshold: float = THRESHOLD,
    lumen: float = 0.0,
    radius: float | None = None,
    min_length: float | None = None,
    feature: str = "filament",
    tomogram: str | None = None,
) -> pd.DataFrame:
    """Points every `spacing` Å along each traced filament, with the filament's axis and number.

    The annotation is (optionally) filled across a hollow filament's lumen, thinned to centrelines
    (scikit-image's 3D skeleton) and split into connected filaments; each filament's longest path
    through its skeleton is sampled every `spacing` Å, centred on its length. The axis at a point is
    the principal direction of the centreline within `radius`, pointing along the path (from the
    filament's first sample to its last); filaments cannot tell their polarity from a mask.

    Parameters
    ----------
    scores : Tomogram or ndarray of shape (z, y, x)
        Calibrated score map (or boolean mask) of the filament. A Tomogram gives the voxel size.
    spacing : float
        Distance between consecutive points along a filament, in Å (voxels for a plain array).
    threshold : float, default 1.0
        Lowest score counted as filament.
    lumen : float, default 0
        Radius in Å of a hollow filament's unannotated lumen, filled before tracing (microtubules:
        about 80 Å when only the wall is annotated); 0 for solid filaments.
    radius : float, optional
        Half-length in Å of the piece of centreline that sets each axis; default `spacing`.
    min_length : float, optional
        Shorter filaments (Å) are dropped; default `spacing`.
    feature, tomogram
        As in :func:`seed_points`.

    Returns
    -------
    pandas.DataFrame
        :data:`PARTICLE_COLUMNS`, then ``rot`` (0), ``tilt``, ``psi`` (degrees; the reference's z
        along the axis), ``tilt_prior``, ``psi_prior``, ``filament`` (1, 2, ... by decreasing
        length; RELION's ``rlnHelicalTubeID``) and ``track_length`` (Å from the filament's start;
        ``rlnHelicalTrackLengthAngst``).

    Notes
    -----
    Crossing or touching filaments become one skeleton; its longest path follows one of them. Near
    a filament's end (within `radius`), and where it leaves the volume, the axis follows the end of
    the trace and is less accurate (a few degrees).
    """
    volume, name, apix = _volume_and_apix(scores, tomogram)
    feature = check_name(feature, "feature")
    spacing_vox = check_number(spacing, "spacing", minimum=apix, hint=" Å") / apix
    radius_vox = _radius(radius, spacing_vox, apix)
    shortest = spacing_vox if min_length is None else check_number(min_length, "min_length",
                                                                   minimum=0.0) / apix
    mask = volume >= check_number(threshold, "threshold")
    lumen_vox = check_number(lumen, "lumen", minimum=0.0, hint=" Å") / apix
    if lumen_vox > 0:   # close the lumen: dilate by it, then erode back (both by distance)
        grown = ndimage.distance_transform_edt(~mask) <= lumen_vox + 1
        mask = ndimage.distance_transform_edt(grown) > lumen_vox + 1
    skeleton = _centrelines(mask)
    paths = [_longest_path(piece.astype(np.float64)) for piece in _pieces(skeleton)]
    paths = sorted((p for p in paths if _length(p) >= shortest), key=_length, reverse=True)
    rows = [_sample_path(path, spacing_vox, radius_vox) for path in paths]
    points, axes, track = (np.concatenate(column) for column in zip(
        *rows, (np.empty((0, 3)), np.empty((0, 3)), np.empty(0)), strict=True))
    filament = np.repeat(np.arange(1, len(rows) + 1), [len(r[0]) for r in rows])
    index = tuple(np.clip(np.round(points).astype(int), 0, np.array(volume.shape) - 1).T)
    table = make_table(name, feature, points, volume[index])
    table = _with_directions(table, axes)
    table["filament"] = filament
    table["track_length"] = track * apix
    return table


def orient_particles(
    table: pd.DataFrame,
    scores: Any,
    radius: float,
    *,
    threshold: float = THRESHOLD,
) -> pd.DataFrame:
    """Give each particle the long axis of its annotated blob (an elongated complex's orientation).

    The axis is the direction in which the annotated voxels within `radius` of the particle spread
    most (their covariance's largest eigenvector), with ``z >= 0`` (its sign is unknown). Particles
    with fewer than 4 annotated voxels around them keep tilt = psi = 0.

    Parameters
    ----------
    table : pandas.DataFrame
        Particle table, e.g. from :func:`pick_particles` on the same score map.
    scores : Tomogram or ndarray of shape (z, y, x)
        The score map (or mask) the particles were picked from. A Tomogram gives the voxel size.
    radius : float
        Radius in Å (voxels for a plain array) of the neighbourhood, about the particle's size.
    threshold : float, default 1.0
        Lowest score counted as annotation.

    Returns
    -------
    pandas.DataFrame
        A copy of `table` with ``rot`` (0), ``tilt``, ``psi``, ``tilt_prior``, ``psi_prior``.
    """
    volume, _, apix = _volume_and_apix(scores)
    table = check_table(table)
    radius_vox = check_number(radius, "radius", minimum=apix, hint=" Å") / apix
    voxels = np.argwhere(volume >= check_number(threshold, "threshold")).astype(np.float64)
    points = table[["z", "y", "x"]].to_numpy()
    axes = _local_axes(voxels, points, radius_vox, smallest=False) if len(points) else np.empty((0, 3))
    axes *= np.where(axes[:, :1] < 0, -1.0, 1.0)
    return _with_directions(table, axes)


# -- helpers ----------------------------------------------------------------------------------------


def _volume_and_apix(scores: Any, tomogram: str | None = None) -> tuple[np.ndarray, str, float]:
    """The score map (float32, checked), the tomogram's name and the voxel size (1 for arrays)."""
    volume, name = _scores(scores, tomogram)
    return volume, name, float(getattr(scores, "apix", 1.0))


def _radius(radius: float | None, spacing_vox: float, apix: float) -> float:
    if radius is None:
        return max(3.0, spacing_vox)
    return max(1.5, check_number(radius, "radius", minimum=0.0, hint=" Å") / apix)


def _local_axes(voxels: np.ndarray, points: np.ndarray, radius: float, *,
                smallest: bool) -> NDArray[np.float64]:
    """Per point, the eigenvector of the covariance of `voxels` within `radius` with the smallest
    (or largest) eigenvalue; the z axis where fewer than 4 voxels are near."""
    tree = cKDTree(voxels)
    axes = np.tile([1.0, 0.0, 0.0], (len(points), 1))
    for i, near in enumerate(tree.query_ball_point(points, radius)):
        if len(near) < 4:
            continue
        _, vectors = np.linalg.eigh(np.cov(voxels[near].T))
        axes[i] = vectors[:, 0 if smallest else -1]
    return axes


def _with_directions(table: pd.DataFrame, directions: np.ndarray) -> pd.DataFrame:
    tilt, psi = direction_angles(directions) if len(directions) else (np.empty(0), np.empty(0))
    table = table.copy()
    table["rot"] = 0.0
    table["tilt"], table["psi"] = tilt, psi
    table["tilt_prior"], table["psi_prior"] = tilt, psi
    return table


def _centrelines(mask: np.ndarray) -> np.ndarray:
    """scikit-image's 3D skeleton of `mask`, thinned from the volume's border too.

    Its thinning (Lee 1994) erases a few perfectly symmetric shapes whole (e.g. rods of an even
    width); a piece left without a skeleton is grown by one voxel on one side and thinned again.
    """
    from skimage.morphology import skeletonize

    def thin(m: np.ndarray) -> np.ndarray:
        return skeletonize(np.pad(m, 1))[1:-1, 1:-1, 1:-1] > 0

    skeleton = thin(mask)
    pieces, n = ndimage.label(mask)
    lost = np.setdiff1d(np.arange(1, n + 1), pieces[skeleton])
    if lost.size:
        grown = np.isin(pieces, lost)
        grown[1:, 1:, 1:] |= grown[:-1, :-1, :-1].copy()
        skeleton |= thin(grown)
    return skeleton


def _pieces(skeleton: np.ndarray) -> list[np.ndarray]:
    """The voxel coordinates of each 26-connected piece of `skeleton`, in label order."""
    pieces, _ = ndimage.label(skeleton, structure=np.ones((3, 3, 3)))
    coords = np.argwhere(pieces)
    labels = pieces[tuple(coords.T)]
    order = np.argsort(labels, kind="stable")
    return np.split(coords[order], np.flatnonzero(np.diff(labels[order])) + 1) if len(coords) else []


def _longest_path(coords: np.ndarray) -> np.ndarray:
    """The voxels of the longest shortest path through a skeleton piece, in order along it."""
    if len(coords) < 2:
        return coords
    pairs = cKDTree(coords).query_pairs(np.sqrt(3) + 1e-6, output_type="ndarray")
    weights = np.linalg.norm(coords[pairs[:, 0]] - coords[pairs[:, 1]], axis=1)
    graph = coo_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(len(coords),) * 2)
    start = _farthest(dijkstra(graph, directed=False, indices=0))    # one end of the longest path
    distance, previous = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    node = _farthest(distance)
    path = [node]
    while previous[node] >= 0:
        node = int(previous[node])
        path.append(node)
    return coords[path[::-1]]


def _farthest(distance: np.ndarray) -> int:
    return int(np.argmax(np.where(np.isfinite(distance), distance, -1.0)))


def _length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum()) if len(path) > 1 else 0.0


def _sample_path(path: np.ndarray, spacing: float, radius: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every `spacing` along `path` (centred on its length), their axes and arc lengths.

    The path is smoothed first (Gaussian, 2 voxels along it): a skeleton steps from voxel to voxel,
    which would tilt short pieces of it by several degrees."""
    if len(path) > 4:
        path = ndimage.gaussian_filter1d(path, _PATH_SMOOTHING, axis=0, mode="nearest")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    length = arc[-1]
    targets = np.arange((length % spacing) / 2, length + 1e-9, spacing)
    points = np.stack([np.interp(targets, arc, path[:, k]) for k in range(3)], axis=1)
    axes = np.empty_like(points)
    for i, t in enumerate(targets):
        near = path[np.abs(arc - t) <= radius]
        if len(near) < 2:
            near = path
        axis = np.linalg.eigh(np.cov(near.T))[1][:, -1]
        axes[i] = axis if axis @ (near[-1] - near[0]) >= 0 else -axis
    return points, axes / np.linalg.norm(axes, axis=1, keepdims=True), targets
