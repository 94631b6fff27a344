"""Particles from annotations: picking, seeding, subvolume extraction and STAR/CSV particle tables.

Discrete objects (ribosomes, proteasomes) are picked as in the paper: every connected region of voxels
scoring at least the threshold (1.0 on calibrated maps) gives one particle, at the region's
score-weighted centroid (default) or at its maximum (the paper's choice). Unlike the paper, regions
are first cut at the maxima of the score (a watershed), since touching particles in a crowded
cytoplasm merge into one region, and grown down to 0.4 of the threshold (hysteresis) before their
size is tested, since a particle's strongest core varies more in size than the particle does; the
size is tested against the tomogram's median region, since how large a network calls particles
changes with the imaging while the ratio to smaller complexes does not; and where a network calls a
tomogram's particles weakly (their cores score lower than where its calibration holds), the
threshold is lowered in proportion.
Continuous features (microtubules, membranes) get points seeded at random on the annotation with a
minimum spacing. Both return a particle table (a pandas DataFrame):

=========== ====== ===================================================================
column      type   meaning
=========== ====== ===================================================================
tomogram    str    name of the tomogram the coordinates refer to (``rlnTomoName``)
feature     str    what was picked
z, y, x     float  position in voxels, 0-based: the centre of voxel ``data[k, j, i]``
                   is ``(z, y, x) = (k, j, i)``
score       float  calibrated score at the particle (picks: the mean over its core); NaN when unknown
rot, tilt,  float  optional: RELION ZYZ Euler angles in degrees
psi
=========== ====== ===================================================================

:func:`pick_particles` adds ``mass`` and ``size``. :func:`write_particles` / :func:`read_particles`
store tables as RELION-5 ``.star`` or ``.csv`` files (conventions in their docstrings), and
:func:`extract_subvolumes` cuts boxes around the particles for averaging.

Examples
--------
>>> import numpy as np
>>> scores = np.zeros((9, 9, 9), np.float32)
>>> scores[2:5, 2:5, 2:5] = 1.5; scores[3, 3, 4] = 3.0
>>> picks = pick_particles(scores, min_size=1, min_distance=2, position="maximum")
>>> picks[["z", "y", "x", "size"]].values.tolist(), round(float(picks["score"].iloc[0]), 3)
([[3.0, 3.0, 4.0, 27.0]], 1.5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from tomowidgets._calibration import (
    PICK_CORE_SCORE,
    PICK_HYSTERESIS,
    PICK_LOWEST_THRESHOLD,
    PICK_MIN_RELATIVE_SIZE,
    THRESHOLD,
)
from tomowidgets._validate import as_float32, check_finite, check_fraction, check_hysteresis, check_ndim
from tomowidgets.io import Tomogram
from tomowidgets.particles._extract import extract_subvolumes
from tomowidgets.particles._starcsv import read_particles, write_particles
from tomowidgets.particles._table import (
    ANGLE_COLUMNS,
    DEFAULT_FEATURE,
    DEFAULT_TOMOGRAM,
    PARTICLE_COLUMNS,
    PICK_COLUMNS,
    check_int,
    check_name,
    check_number,
    make_table,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "ANGLE_COLUMNS",
    "PARTICLE_COLUMNS",
    "PICK_COLUMNS",
    "PICK_CORE_SCORE",
    "PICK_HYSTERESIS",
    "PICK_LOWEST_THRESHOLD",
    "PICK_MIN_RELATIVE_SIZE",
    "extract_subvolumes",
    "pick_particles",
    "read_particles",
    "seed_points",
    "write_particles",
]

#: Default smallest region kept by :func:`pick_particles`, in Å³, measured on the region grown to
#: :data:`PICK_HYSTERESIS` of the threshold: 300 voxels at 10 Å, a tenth of a 70S ribosome's
#: envelope (~3000 voxels at 10 Å), which drops the specks a network leaves on other structures.
#: Smaller complexes are told apart by :data:`PICK_MIN_RELATIVE_SIZE`.
DEFAULT_MIN_VOLUME = 300 * 10.0**3
#: Default smallest distance between picks, in Å: about the radius of a ribosome, so two picks in
#: one ribosome merge but touching neighbours do not.
DEFAULT_MIN_SEPARATION = 100.0
#: The voxel size the defaults assume for a bare array (no voxel size of its own).
_DEFAULT_APIX = 10.0
#: The defaults in voxels at 10 Å/voxel.
DEFAULT_MIN_SIZE = round(DEFAULT_MIN_VOLUME / _DEFAULT_APIX**3)
DEFAULT_MIN_DISTANCE = DEFAULT_MIN_SEPARATION / _DEFAULT_APIX


def pick_particles(
    scores: Tomogram | ArrayLike,
    threshold: float = THRESHOLD,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    min_distance: float | None = None,
    feature: str = DEFAULT_FEATURE,
    tomogram: str | None = None,
    position: str = "centroid",
    split: bool = True,
    within: ArrayLike | None = None,
    hysteresis: float | None = PICK_HYSTERESIS,
    min_relative_size: float | None = PICK_MIN_RELATIVE_SIZE,
    core_score: float | None = PICK_CORE_SCORE,
) -> pd.DataFrame:
    """Pick one particle per connected region of a score map, at its centroid or maximum.

    Voxels with ``score >= hysteresis * threshold`` are grouped into regions connected through faces
    (the 6-neighbourhood, :func:`scipy.ndimage.label`). With `split` (the default), a region is then cut
    into one basin per maximum of the score (smoothed by a Gaussian of sd ``min_distance / 5``;
    maxima at least `min_distance` apart) by a watershed, so touching particles in a crowded
    cytoplasm give one pick each instead of one pick at the centre of the cluster. Each region gives
    a particle at its score-weighted centroid (default) or, as in the paper, at the voxel of its
    highest score (the first such voxel in ``(z, y, x)`` order when several share the maximum, so
    flat maps such as binary masks should be smoothed first), with its ``mass`` (sum of the region's
    scores) and ``size`` (voxel count). Regions that do not reach `threshold` anywhere, or whose
    size lies outside ``[min_size, max_size]``, are dropped, and so are those outside `within`
    and those smaller than `min_relative_size` times the median size of the rest; then, from the
    highest score down, a pick closer than `min_distance` to a kept pick is dropped. Where the picks'
    median core score falls below `core_score` times the threshold, the network under-calls this
    tomogram, and the picking is done again at a threshold lowered in proportion.

    The hysteresis makes the size test measure most of each particle rather than the part of it
    that reaches the threshold, which varies far more from particle to particle (half of the painted
    voxels score below 1.0 by the paper's calibration). The relative minimum then tells the
    particles a network was trained on from the smaller complexes it half-recognises, which it
    calls 4-9 times smaller (medians), whatever the imaging makes of both. On unseen synthetic
    cells (three simulated annotators × two cells, ribosome networks trained with today's
    defaults) it raised precision / recall from 80 / 99 % to 98 / 98 % where networks trained on
    Fourier-mask cells pick back-projected ones, and from 100 / 63 % to 98 / 82 % the other way
    round (a fixed minimum of 10⁶ Å³ before; README, #16).

    The centroid is the default because a network's maximum falls anywhere on a particle's dense
    parts: on a synthetic cell, ribosome picks at the maximum were within half a ribosome radius of
    the true centre for 60 % of ribosomes, centroids for 100 % (median error 1.4 voxels).

    Parameters
    ----------
    scores : Tomogram or ndarray of shape (z, y, x)
        Calibrated score map of one feature (e.g. from :func:`tomowidgets.apply`); read whole into
        memory as float32.
    threshold : float, default 1.0
        Lowest score that belongs to a region (the paper's 1.0).
    min_size : int, optional
        Smallest region kept, in voxels, counted down to ``hysteresis * threshold``. Default
        :data:`DEFAULT_MIN_VOLUME` (3·10⁵ Å³, a tenth of a ribosome's envelope, which drops the
        specks a network leaves on other structures) at the voxel size of `scores`: 300 voxels at
        10 Å, 38 at 20 Å (a bare array is taken to be at 10 Å).
    max_size : int, optional
        Largest region kept, in voxels (e.g. to drop merged clusters or membranes); no limit by default.
    min_distance : float, optional
        Smallest distance between picks in voxels; 0 keeps all regions. Default
        :data:`DEFAULT_MIN_SEPARATION` (100 Å, about a ribosome's radius) at the voxel size of
        `scores`: 10 voxels at 10 Å, 5 at 20 Å.
    feature : str, default "particle"
        Value of the ``feature`` column.
    tomogram : str, optional
        Value of the ``tomogram`` column; by default the file name stem of `scores` when it was read
        from a file, else ``"tomogram"``.
    position : {"centroid", "maximum"}, default "centroid"
        Where in its region a particle is placed.
    split : bool, default True
        Cut regions at the maxima of the smoothed score (:func:`skimage.segmentation.watershed`);
        False keeps whole connected regions, as the paper did (on the real EMPIAR-10499 cell, one
        region then spans 250 000 voxels of touching ribosomes). Needs ``min_distance > 0``. A
        large flat region (a binary mask) is cut into pieces about `min_distance` apart: smooth
        masks first, or pass False.
    within : ndarray of bool, shape (z, y, x), optional
        Where particles may lie, e.g. the cell's inside, so that a network's false positives in
        the ice are not picked; a pick is kept when its nearest voxel is True. Applied before
        `min_distance`, so a pick outside never suppresses one inside.
    hysteresis : float or None, default 0.4
        Fraction of `threshold` down to which a region is grown from the voxels that reach
        `threshold` (hysteresis thresholding, as :func:`tomowidgets.merge` does for continuous
        features; :data:`PICK_HYSTERESIS`). None: regions are the voxels at or above `threshold`,
        the paper's rule. No effect when `threshold` <= 0.
    min_relative_size : float or None, default 0.4
        Smallest region kept, as a fraction of the median size of the regions that pass every
        other test (:data:`PICK_MIN_RELATIVE_SIZE`), so that smaller complexes are not picked as
        the particle. None keeps every region of at least `min_size`: for a tomogram in which other
        objects may outnumber the particles, or when the particles' sizes should spread widely.
    core_score : float or None, default 1.5
        The median core score (the ``score`` column), in units of `threshold`, of the picks on a
        map whose calibration holds (:data:`PICK_CORE_SCORE`). Where this map's picks score lower,
        their network calls this tomogram more weakly than the one it was calibrated on, and
        `threshold` is lowered by their ratio, to no less than :data:`PICK_LOWEST_THRESHOLD` of it;
        the threshold used is in the table's ``attrs["threshold"]``. None: `threshold` as given.
        No effect when `threshold` <= 0.

    Returns
    -------
    pandas.DataFrame
        Columns ``tomogram, feature, z, y, x, score, mass, size`` (:data:`PARTICLE_COLUMNS` then
        :data:`PICK_COLUMNS`): ``z, y, x`` are the centroid (floats) or the maximum's voxel
        (integer-valued floats), 0-based; ``score`` the figure of merit (``rlnAutopickFigureOfMerit``
        in a STAR file): the mean score within ``min_distance / 2`` of the pick, over the
        particle's core (the region's maximum would not rank picks: it is the same 1/amplitude for
        every particle where the network's output reaches its cap of 1); rows sorted by
        decreasing score. ``attrs["threshold"]`` is the threshold the picks were made at.

    Raises
    ------
    ValueError
        If `scores` is not 3D or holds NaN/inf, `threshold`/`min_distance` is not a finite number
        (`min_distance` >= 0), `min_size` < 1, `max_size` < `min_size`, `hysteresis` is not a
        fraction between 0 and 1 or None, `min_relative_size` is not a fraction in (0, 1] or
        None, `core_score` is not a number >= 0 or None, a name is empty,
        `position` is not "centroid" or "maximum", or `within` is not a boolean mask of the score
        map's shape.
    """
    if position not in ("centroid", "maximum"):
        raise ValueError(f'`position` must be "centroid" or "maximum", got {position!r}')
    volume, name = _scores(scores, tomogram)
    apix = scores.apix if isinstance(scores, Tomogram) else _DEFAULT_APIX
    if min_size is None:
        min_size = max(1, round(DEFAULT_MIN_VOLUME / apix**3))
    if min_distance is None:
        min_distance = DEFAULT_MIN_SEPARATION / apix
    threshold = check_number(threshold, "threshold", hint="; the paper uses 1.0 on calibrated scores")
    min_size = check_int(min_size, "min_size", minimum=1, hint=" voxels")
    if max_size is not None:
        max_size = check_int(max_size, "max_size", minimum=min_size,
                             hint=f" voxels (it must be >= min_size={min_size}), or None for no limit")
    min_distance = check_number(min_distance, "min_distance", minimum=0.0, hint=" voxels")
    feature = check_name(feature, "feature")
    if hysteresis is not None:
        hysteresis = check_hysteresis(hysteresis)
    if min_relative_size is not None:
        min_relative_size = check_fraction(min_relative_size, "min_relative_size", example=0.4,
                                           none="for no relative minimum")
    if core_score is not None:
        core_score = check_number(core_score, "core_score", minimum=0.0,
                                  hint=f"; e.g. {PICK_CORE_SCORE}, or None to keep the threshold as given")
    allowed = None if within is None else _region_mask(within, volume.shape)

    def pick_at(level: float) -> tuple[np.ndarray, ...]:
        return _pick(volume, level, min_size=min_size, max_size=max_size, min_distance=min_distance,
                     position=position, split=split, allowed=allowed, hysteresis=hysteresis,
                     min_relative_size=min_relative_size)

    zyx, top, mass, size = pick_at(threshold)
    if core_score is not None and threshold > 0 and top.size:
        # The picks' median core in units of the threshold tells how this map's scores compare
        # with the training tomogram's, where the calibration set 1.0: lower, and the network
        # under-calls here (e.g. a tomogram imaged otherwise), so its threshold is lowered alike.
        median = float(np.median(top))
        if median < core_score * threshold:
            threshold = max(median / core_score, PICK_LOWEST_THRESHOLD * threshold)
            zyx, top, mass, size = pick_at(threshold)
    table = make_table(name, feature, zyx, top, mass=mass, size=size)
    table.attrs["threshold"] = threshold
    return table


def _pick(volume: np.ndarray, threshold: float, *, min_size: int, max_size: int | None,
          min_distance: float, position: str, split: bool, allowed: np.ndarray | None,
          hysteresis: float | None, min_relative_size: float | None) -> tuple[np.ndarray, ...]:
    """The picks of :func:`pick_particles` at `threshold`: positions, core scores, masses and sizes,
    best first (the arguments checked)."""
    low = threshold * hysteresis if hysteresis is not None and threshold > 0 else threshold
    regions, count = ndimage.label(volume >= low)
    if split and count and min_distance > 0:
        regions, count = _split_at_maxima(volume, regions, min_distance)
    nothing = (np.empty((0, 3)), np.empty(0), np.empty(0), np.empty(0, np.int64))
    if count == 0:
        return nothing
    index = np.arange(1, count + 1)
    size = np.bincount(regions.ravel(), minlength=count + 1)[1:]
    keep = size >= min_size
    if low < threshold:  # each particle (after the split) must reach the threshold itself
        keep &= ndimage.maximum(volume, regions, index) >= threshold
    if max_size is not None:
        keep &= size <= max_size
    index, size = index[keep], size[keep]
    if index.size == 0:
        return nothing
    zyx, mass, centroid = _region_peaks(volume, regions, index)
    if position == "centroid":
        zyx = centroid
    top = _core_scores(volume, zyx, min_distance / 2)
    # Best first: highest score, then largest mass, then position (a stable, deterministic order).
    order = np.lexsort((zyx[:, 2], zyx[:, 1], zyx[:, 0], -mass, -top))
    zyx, top, mass, size = zyx[order], top[order], mass[order], size[order]
    keep = np.ones(size.size, bool) if allowed is None else allowed[tuple(np.rint(zyx).astype(np.int64).T)]
    if min_relative_size is not None and keep.any():
        # Before thinning, so that a dropped small region never suppresses a particle beside it.
        keep &= size >= min_relative_size * np.median(size[keep])
    zyx, top, mass, size = zyx[keep], top[keep], mass[keep], size[keep]
    kept = _thin(zyx, min_distance)
    return zyx[kept], top[kept], mass[kept], size[kept]


def seed_points(
    scores: Tomogram | ArrayLike,
    spacing: float,
    *,
    threshold: float = THRESHOLD,
    rng: int | np.random.Generator | None = None,
    feature: str = DEFAULT_FEATURE,
    tomogram: str | None = None,
) -> pd.DataFrame:
    """Seed points at random on an annotation, at least `spacing` voxels apart (Poisson-disk-like).

    For continuous features (microtubules, membranes), where the paper seeds box positions at random
    on the annotation. Candidates are the voxels with ``score >= threshold``; one candidate is drawn at
    random per cube of ``spacing // 2`` voxels, then candidates are visited in random order and kept
    unless a kept point lies closer than `spacing` (random sequential addition). Every point is on the
    annotation, no two are closer than `spacing`, and every annotated voxel is within about
    ``1.9 * spacing`` of a point.

    Parameters
    ----------
    scores : Tomogram or ndarray of shape (z, y, x)
        Calibrated score map (or a boolean mask) of one feature; read whole into memory as float32.
    spacing : float
        Smallest distance between points in voxels (>= 1); e.g. the box size / 2 for overlapping
        boxes along a microtubule.
    threshold : float, default 1.0
        Lowest score counted as annotation.
    rng : int or numpy.random.Generator, optional
        Randomness; the same int gives the same points. None draws fresh entropy.
    feature : str, default "particle"
        Value of the ``feature`` column (e.g. ``"microtubule"``).
    tomogram : str, optional
        Value of the ``tomogram`` column, as in :func:`pick_particles`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PARTICLE_COLUMNS` (``score`` is the score at the point), sorted by ``z, y, x``;
        no rows when nothing reaches `threshold`.

    Raises
    ------
    ValueError
        If `scores` is not 3D or holds NaN/inf, `spacing` < 1, `threshold` is not finite, `rng` is not
        an int/Generator/None, or a name is empty.
    """
    volume, name = _scores(scores, tomogram)
    spacing = check_number(spacing, "spacing", minimum=1.0, hint=" voxels")
    threshold = check_number(threshold, "threshold")
    feature = check_name(feature, "feature")
    if not (rng is None or isinstance(rng, np.random.Generator)
            or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0)):
        raise ValueError(f"`rng` must be an integer >= 0, a numpy Generator or None, got {rng!r}")
    rng = np.random.default_rng(rng)
    points = _one_per_cell(volume >= threshold, max(1, int(spacing // 2)), rng)
    if len(points) == 0:
        return make_table(name, feature, np.empty((0, 3)), np.empty(0))
    points = points[rng.permutation(len(points))]
    seeds = points[_thin(points, spacing)]
    seeds = seeds[np.lexsort((seeds[:, 2], seeds[:, 1], seeds[:, 0]))]
    return make_table(name, feature, seeds, volume[tuple(seeds.T)])


def _scores(scores: Any, tomogram: str | None) -> tuple[np.ndarray, str]:
    """The score map as float32 in memory (checked 3D and finite) and the tomogram name to report."""
    if isinstance(scores, Tomogram):
        volume = scores.slab(0, scores.shape[0])
        default = scores.path.stem if scores.path is not None else DEFAULT_TOMOGRAM
    else:
        volume = as_float32(scores, "scores")
        default = DEFAULT_TOMOGRAM
    check_ndim(volume, (3,), "scores")
    check_finite(volume, "scores")
    return volume, check_name(default if tomogram is None else tomogram, "tomogram")


def _region_peaks(volume: np.ndarray, regions: np.ndarray, index: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each region's maximum (its position, first in C order), sum and weighted centroid.

    Works on each region's bounding box (much faster than ``ndimage.maximum_position``, which sorts
    the whole volume, when noise makes many small regions).
    """
    remap = np.zeros(int(regions.max()) + 1, np.int32)
    remap[index] = np.arange(1, index.size + 1, dtype=np.int32)
    compact = remap[regions]
    zyx = np.empty((index.size, 3), np.float64)
    mass = np.empty(index.size, np.float64)
    centroid = np.empty((index.size, 3), np.float64)
    for k, box in enumerate(ndimage.find_objects(compact)):
        inside = compact[box] == k + 1
        values = np.where(inside, volume[box], -np.inf)
        at = np.unravel_index(int(np.argmax(values)), values.shape)
        zyx[k] = [s.start + i for s, i in zip(box, at, strict=True)]
        weights = np.where(inside, volume[box], 0.0).astype(np.float64)
        mass[k] = weights.sum()
        if mass[k] <= 0:  # a threshold <= 0 admits non-positive scores: weigh voxels equally
            weights = inside.astype(np.float64)
        grid = np.indices(weights.shape, dtype=np.float64)
        centroid[k] = [s.start + (g * weights).sum() / weights.sum()
                       for s, g in zip(box, grid, strict=True)]
    return zyx, mass, centroid


def _core_scores(volume: np.ndarray, zyx: np.ndarray, radius: float) -> np.ndarray:
    """The mean score within `radius` voxels of each pick's nearest voxel (the voxels inside the map).

    A pick's figure of merit. The region's maximum cannot be one: where the network's output reaches
    its cap of 1, every confident particle has the same maximum (1/amplitude), while the mean over
    the particle's core still falls for fragments, flat specks and picks at an edge.
    """
    r = int(np.floor(radius))
    offsets = np.indices((2 * r + 1,) * 3).reshape(3, -1).T - r
    offsets = offsets[(offsets**2).sum(axis=1) <= radius**2]
    centres = np.rint(zyx).astype(np.int64)
    out = np.empty(len(centres), np.float64)
    for k, centre in enumerate(centres):
        voxels = centre + offsets
        voxels = voxels[((voxels >= 0) & (voxels < volume.shape)).all(axis=1)]
        out[k] = volume[tuple(voxels.T)].mean(dtype=np.float64)
    return out


def _region_mask(within: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`within` as a boolean array of the score map's shape, or a ValueError saying what differs."""
    mask = np.asarray(within.data if isinstance(within, Tomogram) else within)
    if mask.shape != shape:
        raise ValueError(f"`within` must have the score map's shape {shape}, got {mask.shape}; "
                         "make the mask on the same tomogram (or rescale it)")
    if mask.dtype != bool:
        raise ValueError(f"`within` must be a boolean mask, got dtype {mask.dtype}; e.g. pass "
                         "`labels.data == labels.label('cytoplasm')` or `scores.data >= 1.0`")
    return mask


def _split_at_maxima(volume: np.ndarray, regions: np.ndarray, min_distance: float
                     ) -> tuple[np.ndarray, int]:
    """Regions cut into watershed basins around the maxima of the smoothed score that lie at
    least `min_distance` voxels apart (each region keeps at least its highest maximum)."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    smooth = ndimage.gaussian_filter(volume, min_distance / 5)
    peaks = peak_local_max(smooth, min_distance=max(1, int(min_distance)), labels=regions,
                           exclude_border=False)
    # A region without a maximum above the map's minimum (a constant map) is seeded at its highest voxel.
    count = int(regions.max())
    bare = np.setdiff1d(np.arange(1, count + 1), regions[tuple(peaks.T)])
    if bare.size:
        seeds = ndimage.maximum_position(smooth, regions, bare)
        peaks = np.concatenate([peaks, np.asarray(seeds, np.int64).reshape(-1, 3)])
    markers = np.zeros(regions.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    basins = watershed(-smooth, markers, mask=regions > 0)
    return basins, len(peaks)


def _thin(zyx: np.ndarray, min_distance: float) -> np.ndarray:
    """Indices of `zyx` kept, in order, when no earlier kept point lies closer than `min_distance`."""
    if min_distance <= 0 or len(zyx) < 2:
        return np.arange(len(zyx))
    tree = cKDTree(zyx)
    radius = np.nextafter(min_distance, 0.0)
    suppressed = np.zeros(len(zyx), bool)
    kept = []
    for i in range(len(zyx)):
        if not suppressed[i]:
            kept.append(i)
            suppressed[tree.query_ball_point(zyx[i], radius)] = True
    return np.asarray(kept, np.int64)


def _one_per_cell(mask: np.ndarray, cell: int, rng: np.random.Generator) -> np.ndarray:
    """One random True voxel ``(z, y, x)`` per cube of `cell` voxels, read `cell` slices at a time."""
    nx = -(-mask.shape[2] // cell)
    found = []
    for start in range(0, mask.shape[0], cell):
        z, y, x = np.nonzero(mask[start:start + cell])
        if z.size == 0:
            continue
        key = (y // cell) * nx + x // cell
        order = np.lexsort((rng.random(z.size), key))
        _, first = np.unique(key[order], return_index=True)
        pick = order[first]
        found.append(np.stack([z[pick] + start, y[pick], x[pick]], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.empty((0, 3), np.int64)
