"""Subtomogram alignment and averaging, 2D classification of z-projections, and FSC.

The paper cleans picked particles by 2D classification of their z-projections and then aligns and
averages them in 3D (EMAN2). This module does both in numpy/scipy: :func:`classify_2d` and
:func:`average` (reference-free, missing-wedge-aware, gold-standard half sets), plus :func:`fsc`,
:func:`resolution`, :func:`rotate_volume` and :func:`align_map`.

Orientation convention (the same as :attr:`tomowidgets.synthetic.SyntheticCell.particles`): a
particle with RELION ZYZ angles ``(rot, tilt, psi)`` in degrees and shift ``t = (dz, dy, dx)``
voxels is ``particle(c + t + r) = map(R @ r)``, with ``R = zyz_matrix(rot, tilt, psi)`` acting on
offsets ``r = (x, y, z)`` and ``c = box // 2`` the centre voxel. ``rotate_volume(particle, rot, tilt,
psi, shift=t)`` brings the particle into the map's frame.

Examples
--------
>>> import numpy as np
>>> a = np.random.default_rng(0).standard_normal((16, 16, 16)).astype(np.float32)
>>> freqs, curve = fsc(a, a, 10.0)
>>> bool(np.allclose(curve[1:], 1.0)), resolution(freqs, curve)  # never drops: Nyquist, 2 * apix
(True, 20.0)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd

from tomowidgets._rotation import FLIP, euler_to_matrix, matrix_to_euler
from tomowidgets._validate import check_positive, check_positive_int, check_tilt_range
from tomowidgets.average import _align as al
from tomowidgets.average import _refine as rf
from tomowidgets.average._checks import (
    check_angle_step,
    check_cubic_stack,
    check_map,
    check_particles_table,
    normalise_particles,
    parse_symmetry,
)
from tomowidgets.average._classify2d import Classification2D, classify_2d

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["AverageResult", "Classification2D", "MapAlignment", "ReferenceComparison", "align_map",
           "average", "classify_2d", "compare_to_reference", "envelope_mask", "fsc",
           "halves_by_position", "resolution", "rotate_volume"]

#: How :func:`compare_to_reference` may take a map's contrast and hand.
_CONTRASTS = ("auto", "same", "inverted")
_HANDS = ("auto", "same", "mirrored")


def fsc(a: ArrayLike, b: ArrayLike, apix: float, *, mask: ArrayLike | None = None
        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fourier shell correlation of two maps.

    Parameters
    ----------
    a, b : ndarray of shape (n, n, n)
        Two maps ``(z, y, x)`` on the same cubic grid.
    apix : float
        Voxel size in Å.
    mask : ndarray of shape (n, n, n), optional
        Multiplied into both maps first (e.g. a soft sphere); None uses the maps as they are.

    Returns
    -------
    freqs : ndarray of float64, shape (n // 2 + 1,)
        Shell frequencies in 1/Å: shell ``k`` is ``k / (n * apix)``, from 0 to Nyquist ``1 / (2 apix)``.
    values : ndarray of float64, shape (n // 2 + 1,)
        ``Re sum(A conj B) / sqrt(sum |A|² sum |B|²)`` over the Fourier components whose distance from
        the origin rounds to ``k``; NaN where a shell is zero in either map (e.g. shell 0 of mean-free
        maps).

    Raises
    ------
    ValueError
        If a map is not 3D and cubic, the maps (or `mask`) differ in shape, a value is NaN/inf or
        `apix` is not positive.
    """
    a = check_map(a, "a")
    b = check_map(b, "b", shape=a.shape)
    apix = check_positive(apix, "apix")
    if mask is not None:
        mask = check_map(mask, "mask", shape=a.shape)
        a, b = a * mask, b * mask
    shells, values = rf.fsc_shells(a, b)
    return shells / (a.shape[0] * apix), values


def resolution(freqs: ArrayLike, curve: ArrayLike, threshold: float = 0.143) -> float:
    """Resolution in Å where an FSC curve first drops below `threshold`.

    Parameters
    ----------
    freqs : array of shape (k,)
        Increasing shell frequencies in 1/Å, ``freqs[0] = 0`` (as returned by :func:`fsc`).
    curve : array of shape (k,)
        FSC values per shell.
    threshold : float, default 0.143
        0.143 for half maps (gold standard); 0.5 against a known map.

    Returns
    -------
    float
        ``1 / f`` in Å, where ``f`` is linearly interpolated between the last shell at or above
        `threshold` and the first shell below it, searching from shell 1 (shell 0, the mean, is
        skipped). A NaN value counts as below. If shell 1 is already below, ``inf`` (nothing is
        resolved); if the curve never drops below, ``1 / freqs[-1]`` (Nyquist: the true resolution
        may be better).

    Raises
    ------
    ValueError
        If `freqs` and `curve` are not 1D arrays of the same length >= 2.
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    if freqs.ndim != 1 or freqs.shape != curve.shape or len(freqs) < 2:
        raise ValueError(f"`freqs` and `curve` must be 1D arrays of the same length >= 2, got shapes "
                         f"{freqs.shape} and {curve.shape}; pass both outputs of fsc()")
    shell = rf.crossing(np.arange(len(freqs), dtype=np.float64), curve, threshold)
    f = np.interp(shell, np.arange(len(freqs)), freqs)
    return float(np.inf) if f <= 0 else float(1.0 / f)


def rotate_volume(volume: ArrayLike, rot: float, tilt: float, psi: float, *,
                  shift: ArrayLike = (0.0, 0.0, 0.0), inverse: bool = False) -> NDArray[np.float32]:
    """Bring a particle with RELION angles into the reference frame (or back, with `inverse`).

    Parameters
    ----------
    volume : ndarray of shape (n, n, n)
        A particle ``(z, y, x)``, rotated about its centre voxel ``n // 2``.
    rot, tilt, psi : float
        RELION ZYZ Euler angles in degrees; ``R = zyz_matrix(rot, tilt, psi)``.
    shift : sequence of 3 floats, default (0, 0, 0)
        Where the particle's centre lies relative to the box centre, voxels ``(z, y, x)``.
    inverse : bool, default False
        False: ``out(c + r) = volume(c + shift + R.T @ r)``, so a particle that is
        ``reference(R @ r)`` around ``c + shift`` (the :mod:`tomowidgets.synthetic` convention)
        comes out as the reference. True: the exact inverse, ``out(c + shift + r) = volume(c + R @ r)``,
        turning the reference into the particle.

    Returns
    -------
    ndarray of float32, shape (n, n, n)
        Trilinear interpolation; zeros where the source lies outside the box.

    Raises
    ------
    ValueError
        If `volume` is not a finite cubic 3D array or `shift` is not 3 numbers.
    """
    volume = check_map(volume, "volume")
    shift = np.asarray(shift, dtype=np.float64)
    if shift.shape != (3,) or not np.all(np.isfinite(shift)):
        raise ValueError(f"`shift` must be 3 finite numbers (z, y, x) in voxels, got {shift!r}")
    r = euler_to_matrix(np.array([rot, tilt, psi], dtype=np.float64))
    if not inverse:
        return al.rotate(volume, r.T, shift)
    return al.rotate(volume, r, -(FLIP @ r @ FLIP) @ shift)


class MapAlignment(NamedTuple):
    """Result of :func:`align_map`: ``volume`` aligned onto the reference, and how."""

    volume: NDArray[np.float32]
    angles: tuple[float, float, float]
    shift: tuple[float, float, float]
    score: float


def align_map(volume: ArrayLike, reference: ArrayLike, *, angular_step: float = 15.0,
              max_shift: float | None = None) -> MapAlignment:
    """Rotate and shift `volume` onto `reference` (global search over SO(3), then local).

    Parameters
    ----------
    volume, reference : ndarray of shape (n, n, n)
        Maps ``(z, y, x)`` with the same contrast (e.g. both dense = dark).
    angular_step : float, default 15.0
        Global grid step in degrees; refined locally down to about a degree.
    max_shift : float, optional
        Largest shift in voxels; default ``n // 4``.

    Returns
    -------
    MapAlignment
        ``volume``: the aligned map (``rotate_volume(volume, *angles, shift=shift)``); ``angles``:
        ``(rot, tilt, psi)`` in degrees and ``shift`` ``(z, y, x)`` voxels, with the module's
        convention (``volume(c + shift + r) ≈ reference(R @ r)``); ``score``: normalised
        cross-correlation after alignment.

    Raises
    ------
    ValueError
        If the maps are not finite, 3D, cubic and of the same shape, or a parameter is out of range.
    """
    volume = check_map(volume, "volume")
    reference = check_map(reference, "reference", shape=volume.shape)
    step = check_angle_step(angular_step)
    n = volume.shape[0]
    max_shift = n // 4 if max_shift is None else check_positive(max_shift, "max_shift")
    edge = max(2.0, n / 12)
    mask = al.soft_sphere(n, n / 2 - edge - 1, edge)
    moving = normalise_particles(volume[None], "volume")[0]
    mat, shift, score = rf.align_volumes(moving, reference, mask=mask, cutoff=n / 2 - 1,
                                         max_shift=max_shift, global_step=step,
                                         local_steps=[step / 6, step / 12, step / 24])
    rot, tilt, psi = (float(a) for a in matrix_to_euler(mat))
    dz, dy, dx = (float(s) for s in shift)
    return MapAlignment(al.rotate(volume, mat.T, shift), (rot, tilt, psi), (dz, dy, dx), score)


class ReferenceComparison(NamedTuple):
    """Result of :func:`compare_to_reference`.

    Attributes
    ----------
    volume : ndarray of float32, shape (n, n, n)
        The map as compared: contrast inverted and/or mirrored as chosen, aligned onto the reference.
    inverted : bool
        True if the map's contrast was inverted to match the reference (e.g. a tomogram's dark
        protein against a density map's bright one).
    mirrored : bool
        True if the mirror image fits better: the tomogram's handedness is flipped (a common result
        of a tilt axis sign convention), so its structures are mirror images of the true ones.
    scores : dict
        Normalised cross-correlation after alignment, by ``(inverted, mirrored)``, for every
        combination tried; the chosen one has the highest.
    fsc : tuple of 2 ndarrays
        ``(freqs, values)``: FSC of the chosen, aligned map against the reference (freqs in 1/Å).
    resolution : float
        Resolution in Å where that FSC falls below the threshold.
    """

    volume: NDArray[np.float32]
    inverted: bool
    mirrored: bool
    scores: dict[tuple[bool, bool], float]
    fsc: tuple[NDArray[np.float64], NDArray[np.float64]]
    resolution: float

    def __repr__(self) -> str:
        return (f"ReferenceComparison(resolution={self.resolution:.1f} Å, inverted={self.inverted}, "
                f"mirrored={self.mirrored}, score={self.scores[(self.inverted, self.mirrored)]:.3f})")


def compare_to_reference(volume: ArrayLike, reference: ArrayLike, apix: float, *,
                         threshold: float = 0.5, contrast: str = "auto", hand: str = "auto",
                         angular_step: float = 15.0, mask: ArrayLike | str | None = "envelope"
                         ) -> ReferenceComparison:
    """FSC of a map against a known structure, with its contrast and handedness settled explicitly.

    A subtomogram average has the tomogram's contrast (protein dark in raw reconstructions) and its
    handedness (mirrored when the tilt angles' sign is flipped), neither of which a reference need
    share. Each allowed combination is aligned onto the reference (:func:`align_map`) and the one
    that correlates best is reported, with its FSC. The FSC is taken inside the reference's soft
    envelope by default: an average from a crowded cell carries its neighbours' density around the
    particle, which an isolated reference lacks (as RELION's post-processing masks both maps).

    Parameters
    ----------
    volume, reference : ndarray of shape (n, n, n)
        The map (e.g. ``average(...).map``) and the known structure on the same grid.
    apix : float
        Voxel size in Å.
    threshold : float, default 0.5
        FSC threshold for :attr:`ReferenceComparison.resolution` (0.5 against a reference).
    contrast : {"auto", "same", "inverted"}, default "auto"
        Try both contrasts, or take the one given.
    hand : {"auto", "same", "mirrored"}, default "auto"
        Try both hands, or take the one given.
    angular_step : float, default 15.0
        Global search step of the alignment, degrees.
    mask : "envelope", ndarray of shape (n, n, n) or None, default "envelope"
        Multiplied into both maps for the FSC: ``"envelope"`` is :func:`envelope_mask` of the
        reference; None compares the whole boxes.

    Returns
    -------
    ReferenceComparison

    Raises
    ------
    ValueError
        If the maps are not finite, cubic and of one shape, or an option is unknown.
    """
    if contrast not in _CONTRASTS:
        raise ValueError(f"`contrast` must be one of {_CONTRASTS}, got {contrast!r}")
    if hand not in _HANDS:
        raise ValueError(f"`hand` must be one of {_HANDS}, got {hand!r}")
    volume = check_map(volume, "volume")
    reference = check_map(reference, "reference", shape=volume.shape)
    apix = check_positive(apix, "apix")
    trials = {}
    for inverted in {"auto": (False, True), "same": (False,), "inverted": (True,)}[contrast]:
        for mirrored in {"auto": (False, True), "same": (False,), "mirrored": (True,)}[hand]:
            candidate = -volume if inverted else volume
            candidate = np.ascontiguousarray(candidate[::-1]) if mirrored else candidate
            trials[(inverted, mirrored)] = align_map(candidate, reference, angular_step=angular_step)
    if isinstance(mask, str):
        if mask != "envelope":
            raise ValueError(f'`mask` must be "envelope", an array of shape {volume.shape} or None, '
                             f"got {mask!r}")
        mask = envelope_mask(reference, apix)
    best = max(trials, key=lambda key: trials[key].score)
    freqs, curve = fsc(trials[best].volume, reference, apix, mask=mask)
    return ReferenceComparison(trials[best].volume, best[0], best[1],
                               {key: float(t.score) for key, t in trials.items()}, (freqs, curve),
                               resolution(freqs, curve, threshold))


def envelope_mask(density: ArrayLike, apix: float, *, padding: float = 20.0, edge: float = 15.0
                  ) -> NDArray[np.float32]:
    """A soft mask around a map's molecule, for FSC against a known structure.

    The map (dense = positive, e.g. a reference) smoothed by one voxel and cut at 10 % of its
    maximum, dilated by `padding` Å and softened over about `edge` Å (a Gaussian of sd ``edge / 2``).

    Parameters
    ----------
    density : ndarray of shape (n, n, n)
        Map with the molecule positive.
    apix : float
        Voxel size in Å.
    padding, edge : float
        Dilation and width of the soft edge, in Å.

    Returns
    -------
    ndarray of float32, shape (n, n, n)
        Values from 0 (far outside) to 1 (inside).

    Examples
    --------
    >>> import numpy as np
    >>> ball = (np.linalg.norm(np.indices((24,) * 3) - 12, axis=0) <= 5).astype(np.float32)
    >>> m = envelope_mask(ball, 10.0)
    >>> float(m[12, 12, 12]) > 0.99, float(m[12, 12, 0]) < 0.01
    (True, True)
    """
    from scipy import ndimage

    density = check_map(density, "density")
    apix = check_positive(apix, "apix")
    smooth = ndimage.gaussian_filter(density, 1.0)
    inside = smooth > 0.1 * smooth.max()
    if padding > 0:
        inside = ndimage.binary_dilation(inside, iterations=max(1, round(padding / apix)))
    return ndimage.gaussian_filter(inside.astype(np.float32), edge / apix / 2).clip(0, 1)


@dataclass(frozen=True, repr=False, eq=False)
class AverageResult:
    """Result of :func:`average`; arrays are read-only.

    Attributes
    ----------
    map : ndarray of float32, shape (box, box, box)
        The wedge-weighted average of all particles ``(z, y, x)``, in their contrast (dense material
        dark for tomograms), unfiltered.
    half_maps : ndarray of float32, shape (2, box, box, box)
        Averages of the two independently refined half sets (split in space or by index: see
        :func:`average`'s `particles`).
    fsc : tuple of 2 ndarrays
        ``(freqs, values)``: FSC between the half maps under the soft spherical alignment mask,
        freqs in 1/Å (1/voxel if `apix` was not given).
    resolution : float
        Gold-standard resolution in Å (voxels without `apix`) at FSC 0.143; see :func:`resolution`.
    orientations : pandas.DataFrame
        One row per particle: ``rot, tilt, psi`` (RELION ZYZ, degrees), ``shift_z, shift_y,
        shift_x`` (voxels), ``score`` (normalised cross-correlation) and ``half`` (1 or 2), with the
        module's convention: ``rotate_volume(particle, rot, tilt, psi, shift=(shift_z, shift_y,
        shift_x))`` brings the particle into the frame of `map`.
    particles : pandas.DataFrame or None
        A copy of the table passed to :func:`average` with ``rot, tilt, psi`` replaced by the
        orientations and ``z, y, x`` (if present) moved by the shifts (refined centres); None
        without a table.
    apix : float or None
        Voxel size in Å, as given.
    symmetry : str
        The point group imposed, e.g. ``"c1"``.
    history : tuple of float
        Half-map resolution after each iteration (Å, or voxels without `apix`); NaN for the global
        iterations before the halves are brought into one frame.
    """

    map: NDArray[np.float32]
    half_maps: NDArray[np.float32]
    fsc: tuple[NDArray[np.float64], NDArray[np.float64]]
    resolution: float
    orientations: pd.DataFrame
    particles: pd.DataFrame | None
    apix: float | None
    symmetry: str
    history: tuple[float, ...]

    def __repr__(self) -> str:
        unit = "Å" if self.apix is not None else "voxels"
        size = f", {self.apix:g} Å/voxel" if self.apix is not None else ""
        return (f"AverageResult({len(self.orientations)} particles, box {self.map.shape[0]}{size}, "
                f"{self.symmetry}: resolution {self.resolution:.1f} {unit} at FSC 0.143 between "
                f"half maps, {len(self.history)} iterations)")

    def outliers(self, sds: float = 3.0) -> NDArray[np.bool_]:
        """Particles that match the average far worse than most: a ``score`` below the median
        minus `sds` robust standard deviations (1.4826 × the median absolute deviation).

        Other complexes picked as the particle stand out this way when nothing on the score map
        tells them apart: on synthetic cells with ribosome-sized, spliceosome-like complexes
        (``make_cell(distractors=True)``), this cut removed all eight such picks from two
        annotators' ~60 ribosome picks out of three, with 2-3 true ribosomes, and none from the
        third; from cells without them it removed 3-5 true ribosomes of ~55 (README, #16). So it
        is a check, not a step of :func:`average`: look at the flagged particles, then average
        ``subvolumes[~result.outliers()]`` again if they are not the particle.

        Parameters
        ----------
        sds : float, default 3.0
            How many robust standard deviations below the median a score must fall.

        Returns
        -------
        ndarray of bool, shape (n_particles,)
            True for the particles whose score falls below the cut, in the order given.

        Raises
        ------
        ValueError
            If `sds` is not a positive number.
        """
        sds = check_positive(sds, "sds")
        score = self.orientations["score"].to_numpy(dtype=float)
        median = np.median(score)
        spread = 1.4826 * np.median(np.abs(score - median))
        return score < median - sds * spread


def _prior_rotations(particles: pd.DataFrame | None, prior_range: Any) -> NDArray[np.float64]:
    """Rotations ``R`` with ``R.T @ z`` on each particle's (tilt_prior, psi_prior) direction."""
    if not isinstance(prior_range, numbers.Real) or not 0 <= float(prior_range) <= 90:
        raise ValueError(f"`prior_range` must be between 0 and 90 degrees, got {prior_range!r}")
    columns = ["tilt_prior", "psi_prior"]
    if particles is None or not set(columns) <= set(particles.columns):
        raise ValueError("`prior_range` needs `particles` with tilt_prior and psi_prior columns (from "
                         "membrane_seeds, filament_seeds or a STAR file with rlnAngleTiltPrior and "
                         "rlnAnglePsiPrior)")
    tilt_psi = particles[columns].to_numpy(np.float64)
    if not np.isfinite(tilt_psi).all():
        raise ValueError("`particles` has NaN or infinite tilt_prior/psi_prior values")
    return euler_to_matrix(np.column_stack([np.zeros(len(tilt_psi)), tilt_psi]))


def halves_by_position(particles: pd.DataFrame | None) -> NDArray[np.int8] | None:
    """Half sets (0 or 1 per particle) split in space, or None without ``z, y, x`` columns.

    Particles are ordered tomogram by tomogram (the ``tomogram`` column) and, within each, along
    the axis over which its particles spread most; the first half of that order is half set 0.
    Whole tomograms fall into one half, and the one tomogram shared between the halves is cut by a
    plane, so only boxes within a box's width of that plane can overlap across the halves, where
    alternate indices put most touching neighbours in different halves.

    >>> table = pd.DataFrame({"z": [5, 5, 5, 5], "y": [0, 0, 1, 1], "x": [40, 10, 30, 20]})
    >>> halves_by_position(table).tolist()
    [1, 0, 1, 0]
    """
    if particles is None or not {"z", "y", "x"} <= set(particles.columns):
        return None
    zyx = particles[["z", "y", "x"]].to_numpy(np.float64)
    names = (particles["tomogram"].astype(str).to_numpy() if "tomogram" in particles.columns
             else np.zeros(len(particles), str))
    along = np.empty(len(particles))
    for name in np.unique(names):
        rows = names == name
        along[rows] = zyx[rows, int(np.argmax(zyx[rows].std(axis=0)))]
    order = np.lexsort((along, names))
    half = np.ones(len(particles), np.int8)
    half[order[: (len(particles) + 1) // 2]] = 0
    return half


def average(subvolumes: ArrayLike, *, apix: float | None = None, iterations: int = 6,
            angular_step: float = 30.0, symmetry: str = "c1", tilt_range: float = 60.0,
            wedge: bool = True, rng: int | np.random.Generator | None = None,
            reference: ArrayLike | None = None, progress: bool = True,
            particles: pd.DataFrame | None = None, mask_radius: float | None = None,
            max_shift: float | None = None, prior_range: float | None = None) -> AverageResult:
    """Align and average subtomograms without a reference, with gold-standard half sets.

    Particles are normalised (mean 0, sd 1) and split into two half sets (see `particles`)
    that are refined independently throughout, each against its own map (gold standard). Each
    half starts from the wedge-weighted average of its particles in random orientations (or from
    `reference`). In the first ``iterations // 2`` iterations (at least one) every particle is
    searched over a global SO(3) grid (`angular_step`), then locally at a third and a sixth of the
    step, against its half's map low-passed to a quarter of the mask's diameter (the initial
    model); then half 2's map is aligned onto half 1's, once and at that low-pass only, and its
    orientations follow, so that the two halves share a frame. The
    remaining iterations refine locally (one round per iteration, the step halving from a sixth of
    `angular_step` down to about half a voxel at the mask's edge), with the references FSC-weighted
    and low-passed where the half maps agree (FSC 0.143). Translations come from FFT
    cross-correlation within `max_shift` (sub-voxel by parabolic interpolation). Scores are
    normalised cross-correlations of the particle with the rotated, masked reference, both
    restricted to the particle's measured Fourier components (its missing wedge, ±`tilt_range`
    about y in the tomogram frame) and to the current resolution band. Each map is
    ``sum(aligned spectra) / (sum(rotated wedge weights) + 1)`` (Wiener-like); a Cn symmetry adds
    the n rotated copies about z. Searches at low resolution run on Fourier-cropped boxes.

    Parameters
    ----------
    subvolumes : ndarray of shape (n, box, box, box)
        Particles ``(z, y, x)`` centred (roughly) at voxel ``box // 2``, e.g. from
        ``extract_subvolumes``; n >= 4.
    apix : float, optional
        Voxel size in Å; without it frequencies are in 1/voxel and resolutions in voxels.
    iterations : int, default 6
        Total iterations; the first half (at least one) search globally.
    angular_step : float, default 30.0
        Global search grid step in degrees (in (0, 90]).
    symmetry : str, default "c1"
        ``"cN"``: N-fold rotational symmetry about z imposed on the maps.
    tilt_range : float, default 60.0
        Largest tilt of the tilt series in degrees (tilt axis y), for the missing wedge.
    wedge : bool, default True
        Model the missing wedge; False treats the particles as fully sampled.
    rng : int or numpy.random.Generator, optional
        Seed for the random initial orientations.
    reference : ndarray of shape (box, box, box), optional
        Starting map for both halves instead of the random-rotation averages (same contrast as the
        particles); it is low-passed to the initial-model resolution, and the orientations then
        refer to its frame. The half maps then share that start, so their FSC below that
        resolution is not independent.
    progress : bool, default True
        Show a progress bar over iterations (tqdm).
    particles : pandas.DataFrame, optional
        Table of the n particles (e.g. from picking); returned updated as ``result.particles``.
        With their positions (``z, y, x``), the half sets are split in space
        (:func:`halves_by_position`), so that overlapping boxes of neighbouring particles fall
        into one half, not both (shared voxels would make the half maps agree beyond what the
        data hold); without, they are the even and odd indices.
    mask_radius : float, optional
        Radius in voxels of the soft spherical alignment mask; default ``box / 2 - edge - 1`` with a
        cosine edge of ``max(2, box / 12)`` voxels.
    max_shift : float, optional
        Largest translation in voxels; default ``box // 6``.
    prior_range : float, optional
        Use the orientation priors of `particles` (``tilt_prior``, ``psi_prior``: the reference's z
        axis along a membrane normal or filament axis, from :func:`~tomowidgets.membrane_seeds` or
        :func:`~tomowidgets.filament_seeds`): particles start on their prior with a random spin
        about it, and the global searches try every spin but tilt the axis by at most this many
        degrees (RELION's helical and membrane-protein priors). The local refinement after them is
        free. The map's z axis is then the prior's direction.

    Returns
    -------
    AverageResult
        ``map``, ``half_maps``, ``fsc``, ``resolution``, ``orientations``, ``particles``, ...

    Raises
    ------
    ValueError
        If `subvolumes` is not a finite (n, box, box, box) stack with n >= 4, a particle is constant,
        `reference` or `particles` does not match it, or a parameter is out of range.

    Notes
    -----
    100 particles of 32³ take about 30-40 s on two CPU cores with the defaults
    (``benchmarks/average_speed.py``).

    As with any reference-free alignment, the lowest Fourier shells of the half-map FSC are not
    independent: centring noise by translation and the one low-resolution alignment of the half
    maps make pure noise correlate there (FSC 0.2-0.6 up to shell 4 or 5), so noise can come out
    "resolved" to about ``box / 4`` to ``box / 5`` voxels (65-80 Å for a 32-voxel box at 10 Å).
    Only resolutions well beyond that mean something; above it, pure-noise FSC is near 0.
    """
    subvolumes = check_cubic_stack(subvolumes, minimum=4)
    n = subvolumes.shape[-1]
    if apix is not None:
        apix = check_positive(apix, "apix")
    iterations = check_positive_int(iterations, "iterations")
    step = check_angle_step(angular_step)
    sym_n = parse_symmetry(symmetry)
    tilt = check_tilt_range(tilt_range) if wedge else None
    if reference is not None:
        # cast: an item of an NDArray is typed Any, which would widen `reference` back to ArrayLike
        reference = cast("NDArray[np.float32]", normalise_particles(
            check_map(reference, "reference", shape=(n, n, n))[None], "reference")[0])
    if particles is not None:
        check_particles_table(particles, len(subvolumes))
    priors = None
    if prior_range is not None:
        priors = _prior_rotations(particles, prior_range)
    edge = max(2.0, n / 12)
    if mask_radius is None:
        mask_radius = n / 2 - edge - 1
    elif not isinstance(mask_radius, numbers.Real) or not 2 <= mask_radius <= n / 2:
        raise ValueError(f"`mask_radius` must be between 2 and box / 2 = {n / 2:g} voxels, got "
                         f"{mask_radius!r}; it should enclose the particle")
    max_shift = n // 6 if max_shift is None else check_positive(max_shift, "max_shift")
    parts = normalise_particles(subvolumes, "subvolumes")
    out = rf.refine(parts, iterations=iterations, angular_step=step, sym=sym_n, tilt_range=tilt,
                    rng=np.random.default_rng(rng), reference=reference, mask_radius=float(mask_radius),
                    max_shift=float(max_shift), progress=progress, priors=priors,
                    prior_range=float(prior_range or 0.0), half=halves_by_position(particles))
    scale = apix if apix is not None else 1.0
    freqs = out.shells / (n * scale)
    angles = matrix_to_euler(out.mats)
    orient = pd.DataFrame({"rot": angles[:, 0], "tilt": angles[:, 1], "psi": angles[:, 2],
                           "shift_z": out.shifts[:, 0], "shift_y": out.shifts[:, 1],
                           "shift_x": out.shifts[:, 2], "score": out.scores, "half": out.half + 1})
    table = None
    if particles is not None:
        table = particles.copy()
        for col in ("rot", "tilt", "psi"):
            table[col] = orient[col].to_numpy()
        for col in ("z", "y", "x"):
            if col in table:
                table[col] = table[col].to_numpy(dtype=np.float64) + orient[f"shift_{col}"].to_numpy()
    for array in (out.map, out.half_maps, freqs, out.fsc):
        array.flags.writeable = False
    history = tuple(float(n * scale / s) if s > 0 else (float("inf") if s == 0 else float("nan"))
                    for s in out.history)
    return AverageResult(map=out.map, half_maps=out.half_maps, fsc=(freqs, out.fsc),
                         resolution=resolution(freqs, out.fsc), orientations=orient, particles=table,
                         apix=apix, symmetry=f"c{sym_n}", history=history)
