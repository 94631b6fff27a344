"""Merge the calibrated score maps of several features into one label map (the paper's merge step).

Each network's output is calibrated so that 1.0 is the annotated level (``FeatureNet.calibrate``:
the mean score on annotated voxels, or the edge of what was painted), which makes the maps
comparable: per voxel, the feature with the highest score wins, provided the score reaches the
threshold (1.0, as in the paper) or, by default, half of it where it continues within its slice a
structure that reaches it (hysteresis; ``hysteresis=None`` is the paper's single threshold). The
membrane's calls are first cut to their score's full width at half maximum (`thin`), so that a
strongly contrasted membrane is not called wider than a faint one. A piece of a filament
(`filaments`, by default the microtubule) far wider than a tube, or flanked by another feature's
calls (`filament_contact`), is given up to the other features.
Features that are two readings of one kind of structure (by default the membrane and the double
membrane) then vote: each structure they call within a slice takes the one most of its voxels have.
Volumes are processed in slabs of z slices, so memory-mapped score maps larger than memory can be
merged straight into an MRC file.

Examples
--------
>>> import numpy as np
>>> a = np.array([[[0.2, 1.5, 3.0]]], np.float32)
>>> b = np.array([[[0.1, 2.0, 1.0]]], np.float32)
>>> labels = merge({"membrane": a, "ribosome": b}, threshold=1.0, hysteresis=None)
>>> labels.data.tolist(), labels.names
([[[0, 2, 1]]], ('membrane', 'ribosome'))
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard, cast

import numpy as np
from scipy import ndimage

from tomowidgets._calibration import (
    FILAMENT_CONTACT,
    FILAMENT_HYSTERESIS,
    FILAMENT_MAX_SD,
    FILAMENT_WINDOW,
    FILAMENTS,
    HYSTERESIS,
    THIN,
    THIN_FRACTION,
    THIN_WINDOW,
    THRESHOLD,
    VOTE,
)
from tomowidgets._validate import (
    as_float32,
    check_finite,
    check_fraction,
    check_hysteresis,
    check_ndim,
    check_positive,
    same_voxel_size,
)
from tomowidgets.io import Tomogram, new_mrc
from tomowidgets.merge._labelmap import (
    BACKGROUND,
    MAX_FEATURES,
    LabelMap,
    check_names,
    header_labels,
    sidecar_path,
    write_sidecar,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["BACKGROUND", "FILAMENT_CONTACT", "FILAMENT_HYSTERESIS", "FILAMENTS", "HYSTERESIS",
           "MAX_FEATURES", "THIN", "VOTE", "Consensus", "LabelMap", "consensus", "merge", "sidecar_path"]

#: Connectivity of hysteresis: 4-neighbours within a slice (skimage's default), never across slices,
#: as a 2D network scores each slice on its own.
_IN_SLICE = np.zeros((3, 3, 3), bool)
_IN_SLICE[1] = ndimage.generate_binary_structure(2, 1)

#: Float32 bytes of score slabs held at once when `slab` is not given (all features together).
_SLAB_BYTES = 64 * 2**20


def merge(
    scores: Mapping[str, Tomogram | ArrayLike],
    threshold: float = THRESHOLD,
    *,
    thresholds: Mapping[str, float] | None = None,
    out: str | os.PathLike | None = None,
    slab: int | None = None,
    apix: float | None = None,
    hysteresis: float | None = HYSTERESIS,
    vote: Sequence[Sequence[str]] | None = VOTE,
    thin: Sequence[str] | None = THIN,
    filaments: Sequence[str] | None = FILAMENTS,
    filament_contact: float | None = FILAMENT_CONTACT,
    filament_hysteresis: float | None = FILAMENT_HYSTERESIS,
) -> LabelMap:
    """Label each voxel with the feature whose calibrated score is highest, if it reaches a threshold.

    Label ``i`` (1..127) is ``names[i - 1]`` in the order of `scores`; 0 is background. A voxel gets the
    label of its highest-scoring feature when that score is ``>=`` the feature's threshold, else 0
    (a voxel whose best feature misses its threshold stays background even if another feature passes
    its own, lower, threshold). Ties go to the feature listed first in `scores`.

    Parameters
    ----------
    scores : dict of str to Tomogram or ndarray of shape (z, y, x)
        Calibrated score map per feature (e.g. from :func:`tomowidgets.apply`), all of one shape and
        voxel size. Memory-mapped tomograms are read one slab at a time.
    threshold : float, default 1.0
        Score a winning feature must reach (the paper's 1.0: the mean score on annotated voxels).
    thresholds : dict of str to float, optional
        Per-feature thresholds overriding `threshold` for the features they name.
    out : str or PathLike, optional
        Write the labels straight into this MRC file (int8, mode 0, written atomically) and its names
        into ``out.with_suffix(".json")``; the result is then memory-mapped on that file. Without it
        the labels are kept in memory.
    slab : int, optional
        z slices processed at a time; by default as many as keep the float32 scores of all features
        under 64 MiB.
    apix : float, optional
        Voxel size in Å, for score maps given as bare arrays (default 1.0); must agree with the
        voxel size of any Tomogram in `scores`.
    hysteresis : float or None, default 0.5
        A fraction in ``(0, 1)`` of each feature's threshold: a voxel whose best feature scores at
        least this fraction of the threshold is labelled too if it touches, within its slice and
        through such voxels of the same feature, one that reaches the threshold (hysteresis
        thresholding, as in Canny's edges; :func:`skimage.filters.apply_hysteresis_threshold`).
        It continues membranes and filaments through stretches the network scores weakly without
        calling weak voxels on their own (:data:`HYSTERESIS` says what it gained). None: the
        paper's single threshold.
    vote : list of lists of str, or None, default ``[("membrane", "double_membrane")]``
        Groups of features that are readings of one kind of structure. After thresholding, each
        structure called as any feature of a group (its voxels touching within a slice, as for
        `hysteresis`) is relabelled as the group's feature that most of its voxels have (ties: the
        one first in `scores`), so one vesicle or mitochondrion is not split between two features
        (:data:`VOTE` says what it gained). Names not in `scores` are ignored, so the default
        suits any subset of features. None or ``[]``: each voxel keeps its own best feature (the
        paper's rule).
    thin : list of str, or None, default ``("membrane",)``
        Features whose calls are cut to the full width at half maximum of their score: a voxel
        counts for such a feature only where its score reaches half of the feature's highest score
        within 5 voxels in its slice (an 11 × 11 window); elsewhere it cannot be labelled that
        feature. A network scores a strongly contrasted membrane many times the threshold, and its
        call at the threshold would spread over the blurred flanks; this keeps every call as wide as
        its score's peak (:data:`THIN` says what it gained). Names not in `scores` are ignored.
        None or ``[]``: every voxel that reaches the threshold counts (the paper's rule).
    filaments : list of str, or None, default ``("microtubule",)``
        Features whose calls are filaments no wider than a microtubule (25 nm). Within a slice, a
        piece called as such a feature whose voxels spread across its narrow axis by a standard
        deviation above :data:`~tomowidgets._calibration.FILAMENT_MAX_SD` (220 Å; a tube cut by a
        slice spreads ~90 Å) is not a filament: there that feature's scores are cut to <= 0 and the
        slice is labelled again, so another feature that reaches its threshold wins the voxels. It
        stops a microtubule network from calling the rings of a small mitochondrion
        (:data:`FILAMENTS` says what it gained). Names not in `scores` are ignored. The width is in Å,
        so give `apix` with bare arrays (at the default 1 Å per voxel almost nothing is that wide).
        None or ``[]``: calls are kept whatever their shape (the paper's rule).
    filament_contact : float or None, default 0.2
        A fraction in ``(0, 1]``: within a slice, a piece called as one of the `filaments` of whose
        surrounding voxels (those touching it, diagonals included) at least this fraction is called
        another feature is a stretch of that structure rather than a tube running past it, and is
        given up to the other features as a piece too wide is. A tube crossing a slice is ringed
        by what it runs through, mostly background; a microtubule network's call on a stretch of a
        mitochondrion's outline is flanked by that outline's own calls (:data:`FILAMENT_CONTACT`
        says what it gained). A tube lying along another call for a fifth of its outline is lost
        too. None: pieces are judged by their width alone.
    filament_hysteresis : float or None, default 0.3
        The `hysteresis` of the `filaments` features, which it overrides for them (also where
        `hysteresis` is None): a fraction in ``(0, 1)`` of their threshold down to which a called
        filament is continued within its slice. A tube is one continuous structure along its axis,
        and one running across the tilt axis comes out faint in stretches; continuing it further
        than a membrane finds more of it. So that a strongly scored tube's halo is not continued
        with it, a voxel of these features also counts only where its score reaches the same
        fraction of the feature's highest score within 150 Å in its slice
        (:data:`FILAMENT_HYSTERESIS` says what both gained). Pieces are first judged as
        `hysteresis` alone calls them: one that `filaments` or `filament_contact` gives up there is
        not continued, so it cannot grow out of its flanking calls and be kept. None: filaments
        are continued as `hysteresis` says and not cut.

    Returns
    -------
    LabelMap
        uint8 labels ``(z, y, x)``, the feature names, voxel size and origin (from the first Tomogram).

    Raises
    ------
    ValueError
        If `scores` is empty or not a dict, has more than 127 features or an invalid name, its maps
        differ in shape or voxel size or are not 3D, a map holds NaN/inf, a threshold is not a finite
        number, `thresholds` names a feature not in `scores`, `slab` < 1, `hysteresis` or
        `filament_hysteresis` is not in ``(0, 1)``, `vote` is not a list of lists of feature
        names, each in one group at most, or `thin` or `filaments` is not a list of feature
        names, or `filament_contact` is not in ``(0, 1]``.

    Examples
    --------
    >>> s = {"a": np.full((1, 1, 2), 2.0), "b": np.array([[[3.0, 0.5]]])}
    >>> merge(s, thresholds={"b": 5.0}).data.tolist()
    [[[0, 1]]]
    >>> line = {"membrane": np.array([[[1.2, 0.7, 1.1, 0.2, 0.7]]])}   # a weak stretch, a lone weak voxel
    >>> merge(line).data.tolist()
    [[[1, 1, 1, 0, 0]]]
    >>> merge(line, hysteresis=None).data.tolist()                   # the paper's single threshold
    [[[1, 0, 1, 0, 0]]]
    >>> ring = {"membrane": np.array([[[2.0, 2.0, 0.5, 0.0, 2.0]]]),  # one structure, split; another
    ...         "double_membrane": np.array([[[1.5, 1.5, 3.0, 0.0, 0.5]]])}
    >>> merge(ring).data.tolist(), merge(ring, vote=None).data.tolist()
    ([[[1, 1, 1, 0, 1]]], [[[1, 1, 2, 0, 1]]])
    """
    names, sources, apix, origin = _check_scores(scores, apix)
    limits = _check_thresholds(names, threshold, thresholds)
    low = None if hysteresis is None else check_hysteresis(hysteresis) * limits
    groups = _check_vote(vote, names)
    thinned = _check_names(thin, names, "thin")
    tubes = _check_names(filaments, names, "filaments")
    tube_fraction = None
    judged_low = low   # the filaments' pieces are judged as `hysteresis` alone continues them
    if filament_hysteresis is not None:
        tube_fraction = check_hysteresis(filament_hysteresis, "filament_hysteresis",
                                         none="continues filaments as `hysteresis` says")
        low = limits.copy() if low is None else low.copy()   # a low level at the threshold continues nothing
        low[tubes] = tube_fraction * limits[tubes]
    tube_window = 2 * round(FILAMENT_WINDOW / apix) + 1
    max_sd = FILAMENT_MAX_SD / apix
    contact = None if filament_contact is None else check_fraction(
        filament_contact, "filament_contact", example=FILAMENT_CONTACT, none="to judge pieces by width alone")
    shape = sources[0].shape
    if slab is None:
        slab = _auto_slab(len(names), shape)
    elif isinstance(slab, bool) or not isinstance(slab, numbers.Integral) or slab < 1:
        raise ValueError(f"`slab` must be an integer >= 1 (z slices per step), got {slab!r}")
    slab = int(slab)

    def give_up_odd_filaments(stack: np.ndarray, labels: np.ndarray, low: np.ndarray | None,
                              relabel: bool = True) -> None:
        """Give up the filaments' pieces too wide, then those flanked by other calls.

        Without `relabel`, `labels` are left as they were before the last cut (for a caller that
        needs only the cut scores).
        """
        _give_up(stack, labels, tubes, lambda value: _wide_pieces(labels == value, max_sd), low, limits,
                 relabel=relabel or contact is not None)
        if contact is not None:
            # after the wide cut, whose rings' voxels may now flank the arcs that continue them
            _give_up(stack, labels, tubes, lambda value: _flanked_pieces(labels, value, contact),
                     low, limits, relabel=relabel)

    def labels_of(start: int, stop: int) -> np.ndarray:
        stack = _read_stack(names, sources, start, stop, "scores")
        for i in thinned:
            _thin(stack[i])
        if tube_fraction is not None and tubes:
            # Pieces given up as `hysteresis` alone calls them lose their scores before filaments
            # are continued further, so that none comes back by growing: without a CTF, a
            # microtubule network's calls on a mitochondrion's rings would spread along them.
            give_up_odd_filaments(stack, _threshold_labels(stack, judged_low, limits), judged_low,
                                  relabel=False)
            for i in tubes:
                _thin(stack[i], tube_window, tube_fraction)
        labels = _threshold_labels(stack, low, limits)
        give_up_odd_filaments(stack, labels, low)
        for group in groups:
            _vote(labels, group)
        return labels

    if out is None:
        data = np.empty(shape, np.uint8)
        for start in range(0, shape[0], slab):
            stop = min(start + slab, shape[0])
            data[start:stop] = labels_of(start, stop)
        data.flags.writeable = False
        return LabelMap(data, names, apix, origin)

    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ValueError(f"`out` must be an MRC file (e.g. 'labels.mrc'), got '{out}'; "
                         "the .json name is used for the sidecar with the feature names")
    with new_mrc(out, shape, np.int8, apix=apix, origin=origin, labels=header_labels(names)) as mrc:
        for start in range(0, shape[0], slab):
            stop = min(start + slab, shape[0])
            mrc.data[start:stop] = labels_of(start, stop).view(np.int8)
    write_sidecar(out, names, shape, apix)
    return LabelMap.load(out, mmap=True)


def _check_vote(vote: object, names: tuple[str, ...]) -> list[np.ndarray]:
    """The label values (index + 1) of each `vote` group with >= 2 features in `names`."""
    if vote is None:
        return []
    hint = "e.g. vote=[('membrane', 'double_membrane')], or None"
    if isinstance(vote, str) or not isinstance(vote, Sequence):
        raise ValueError(f"`vote` must be a list of groups of feature names ({hint}), got {vote!r}")
    groups: list[np.ndarray] = []
    seen: set[str] = set()
    for group in vote:
        if not _is_name_list(group):
            raise ValueError(f"each group in `vote` must be a list of feature names ({hint}), got {group!r}")
        twice = seen.intersection(group)
        if twice or len(set(group)) < len(group):
            raise ValueError(f"`vote` names {sorted(twice) or list(group)} twice; "
                             "a feature can be in one group only")
        seen.update(group)
        present = sorted(names.index(name) + 1 for name in group if name in names)
        if len(present) >= 2:
            groups.append(np.asarray(present, np.uint8))
    return groups


def _is_name_list(value: object) -> TypeGuard[Sequence[str]]:
    """Whether `value` is a list or tuple of feature names (a bare string is not)."""
    return (not isinstance(value, str) and isinstance(value, Sequence)
            and all(isinstance(name, str) for name in value))


def _check_names(value: object, names: tuple[str, ...], arg: str) -> list[int]:
    """The indices in `names` of the features that the list `value` (argument `arg`) names."""
    if value is None:
        return []
    if not _is_name_list(value):
        raise ValueError(f"`{arg}` must be a list of feature names, e.g. {arg}=['membrane', "
                         f"'microtubule'], or None, got {value!r}")
    return [names.index(name) for name in dict.fromkeys(value) if name in names]


def _thin(scores: np.ndarray, window: int = THIN_WINDOW, fraction: float = THIN_FRACTION) -> None:
    """Cut in place, slice by slice, the scores below `fraction` of the highest within the `window`
    (voxels across) to <= 0."""
    peak = ndimage.maximum_filter(scores, size=(1, window, window))
    np.minimum(scores, 0, out=scores, where=scores < fraction * peak)


def _threshold_labels(stack: np.ndarray, low: np.ndarray | None, limits: np.ndarray) -> np.ndarray:
    """Labels of a slab: each voxel's best feature where it reaches its threshold (or hysteresis)."""
    best = np.argmax(stack, axis=0)
    top = np.take_along_axis(stack, best[np.newaxis], axis=0)[0]
    if low is not None:
        return _hysteresis_labels(best, top, low, limits)
    return np.where(top >= limits[best], best + 1, 0).astype(np.uint8)


def _give_up(stack: np.ndarray, labels: np.ndarray, features: list[int],
             pieces_of: Callable[[int], np.ndarray], low: np.ndarray | None, limits: np.ndarray,
             relabel: bool = True) -> None:
    """Cut `features`' scores to <= 0 on the voxels `pieces_of(label)` picks and (with `relabel`)
    label those slices again.

    Both in place. Another feature reaching its threshold then wins the voxels; the rest become
    background. Only the slices with a cut are labelled again: every step is in-slice.
    """
    cut = np.zeros(len(labels), bool)
    for i in features:
        given_up = pieces_of(i + 1)
        np.minimum(stack[i], 0, out=stack[i], where=given_up)
        cut |= given_up.any(axis=(1, 2))
    if relabel and cut.any():
        labels[cut] = _threshold_labels(stack[:, cut], low, limits)


def _wide_pieces(mask: np.ndarray, max_sd: float) -> np.ndarray:
    """The voxels of `mask`'s in-slice pieces whose spread across their narrow axis exceeds `max_sd`.

    The spread is the standard deviation of a piece's voxel coordinates along its minor principal
    axis (the square root of the smaller eigenvalue of their 2 × 2 covariance), in voxels: a quarter
    of :func:`skimage.measure.regionprops`' ``axis_minor_length`` (the same pieces, tested). Written
    out as one ``bincount`` per moment because the AnnotationViewer merges on every slider move:
    on the microtubule calls of a 64 × 256² no-CTF cell, regionprops slice by slice took 199 ms,
    this 61 ms.
    """
    pieces, n = ndimage.label(mask, structure=_IN_SLICE)
    if n == 0:
        return np.zeros(mask.shape, bool)
    ids = pieces[mask]
    _, y, x = (axis.astype(np.float64) for axis in np.nonzero(mask))
    count = np.bincount(ids, minlength=n + 1).astype(np.float64)
    count[0] = 1.0
    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=values, minlength=n + 1) / count
    my, mx = mean(y), mean(x)
    # central second moments; the smaller eigenvalue of [[yy, xy], [xy, xx]]
    yy, xx, xy = mean(y * y) - my**2, mean(x * x) - mx**2, mean(x * y) - mx * my
    half_trace = (yy + xx) / 2
    minor = half_trace - np.sqrt(np.maximum(half_trace**2 - (yy * xx - xy**2), 0.0))
    wide = minor > max_sd**2
    wide[0] = False
    return wide[pieces]


def _flanked_pieces(labels: np.ndarray, value: int, contact: float) -> np.ndarray:
    """The voxels of the in-slice pieces labelled `value` of whose surrounding voxels at least the
    fraction `contact` carry another feature's label.

    The surrounding voxels are those outside a piece touching it within its slice, diagonals
    included; one touching two pieces counts for one of them (the later-numbered).
    """
    mask = labels == value
    pieces, n = ndimage.label(mask, structure=_IN_SLICE)
    if n == 0:
        return np.zeros(mask.shape, bool)
    near = ndimage.maximum_filter(pieces, size=(1, 3, 3))   # separable: twice grey_dilation's speed
    ring = (near > 0) & ~mask
    around = np.bincount(near[ring], minlength=n + 1)
    other = np.bincount(near[ring & (labels > 0)], minlength=n + 1)
    flanked = other >= contact * np.maximum(around, 1)
    flanked[0] = False
    return flanked[pieces]


def _vote(labels: np.ndarray, group: np.ndarray) -> None:
    """Relabel in place each in-slice structure labelled with `group`'s values by its majority."""
    member = labels == group[0]
    for value in group[1:]:
        member |= labels == value
    pieces, n = ndimage.label(member, structure=_IN_SLICE)
    if n == 0:
        return
    counts = np.stack([np.bincount(pieces[labels == value], minlength=n + 1) for value in group])
    winner = group[np.argmax(counts, axis=0)]   # argmax takes the first: the feature first in scores
    np.copyto(labels, winner[pieces], where=member)


def _hysteresis_labels(best: np.ndarray, top: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Labels of a slab: per slice and feature, the voxels it wins at >= `low` connected to >= `high`.

    Hysteresis thresholding as :func:`skimage.filters.apply_hysteresis_threshold` does it (label the
    weak mask, keep the pieces holding a strong voxel; the same labels, tested), written out
    because the AnnotationViewer merges the shown slice on every slider move: on a 1024² slice of
    four features skimage's per-label ``ndimage.sum`` and ``np.unique`` added 80 ms to the single
    threshold's 50, a lookup table of the pieces and one labelling of the whole slab (pieces never
    cross slices) add 26.
    """
    labels = np.zeros(best.shape, np.uint8)
    for i in np.flatnonzero(np.bincount(best.ravel())):   # the features that win a voxel (np.unique sorts)
        won = best == i
        pieces, n = ndimage.label(won & (top >= min(low[i], high[i])), structure=_IN_SLICE)
        strong = np.zeros(n + 1, bool)
        strong[pieces[won & (top >= high[i])]] = True
        strong[0] = False
        labels[strong[pieces]] = i + 1
    return labels


class Consensus(NamedTuple):
    """What several networks trained on one feature agree on (see :func:`consensus`).

    Attributes
    ----------
    mean : Tomogram
        Mean calibrated score per voxel; merge or pick it like one network's output.
    disagreement : Tomogram
        Standard deviation of the calibrated scores per voxel (same units: 1.0 is the annotated
        level). Near 0 where the networks agree; large where one annotator's network calls a voxel
        that another's does not.
    """

    mean: Tomogram
    disagreement: Tomogram


def consensus(score_maps: Sequence[Tomogram | ArrayLike] | Mapping[str, Tomogram | ArrayLike]
              ) -> Consensus:
    """Combine networks trained by different annotators on the same feature (the paper's proposal).

    The paper suggests training one network per annotator to get a consensus and a measure of
    uncertainty. Calibration puts every network's score on the same scale (1.0 = the annotated
    level), so the mean is the consensus score and the spread across networks is the per-voxel
    uncertainty. Processed in slabs of z slices, so memory-mapped maps are fine.

    Parameters
    ----------
    score_maps : list of Tomogram or ndarray, or dict of annotator name to one
        Calibrated score maps of the same tomogram, one per network (at least 2).

    Returns
    -------
    Consensus
        ``mean`` and ``disagreement`` (float32 Tomograms with the inputs' voxel size and origin).

    Raises
    ------
    ValueError
        If fewer than 2 maps are given, or they differ in shape or voxel size, or hold NaN/inf.

    Examples
    --------
    >>> a, b = np.full((1, 1, 2), 1.0, np.float32), np.array([[[1.0, 3.0]]], np.float32)
    >>> c = consensus([a, b])
    >>> c.mean.data.tolist(), c.disagreement.data.tolist()
    ([[[1.0, 2.0]]], [[[0.0, 1.0]]])
    """
    if not isinstance(score_maps, Mapping):
        if isinstance(score_maps, (np.ndarray, Tomogram)) or not isinstance(score_maps, Sequence):
            raise ValueError("`score_maps` must be a list of score maps (one per annotator's network) "
                             f"or a dict of them, got {type(score_maps).__name__}")
        score_maps = {f"network {i}": m for i, m in enumerate(score_maps)}
    if len(score_maps) < 2:
        raise ValueError(f"a consensus needs the score maps of at least 2 networks, got {len(score_maps)}")
    names, sources, apix, origin = _check_scores(score_maps, None)
    shape = sources[0].shape
    mean, spread = np.empty(shape, np.float32), np.empty(shape, np.float32)
    slab = _auto_slab(len(names), shape)
    for start in range(0, shape[0], slab):
        stop = min(start + slab, shape[0])
        stack = _read_stack(names, sources, start, stop, "score_maps")
        mean[start:stop] = stack.mean(axis=0)
        spread[start:stop] = stack.std(axis=0)
    return Consensus(Tomogram(mean, apix, origin=origin), Tomogram(spread, apix, origin=origin))


def _auto_slab(n_maps: int, shape: tuple[int, ...]) -> int:
    """Z slices per step so that the float32 slabs of `n_maps` maps take about _SLAB_BYTES."""
    return max(1, _SLAB_BYTES // max(1, 4 * n_maps * int(np.prod(shape[1:]))))


def _read_stack(names: tuple[str, ...], sources: list[Any], start: int, stop: int, arg: str
                ) -> np.ndarray:
    """Slices ``start:stop`` of every map as one float32 array (map, z, y, x), checked finite."""
    stack = np.empty((len(names), stop - start, *sources[0].shape[1:]), np.float32)
    for i, (name, src) in enumerate(zip(names, sources, strict=True)):
        stack[i] = as_float32(np.asarray(src[start:stop]), f"{arg}[{name!r}]")
        check_finite(stack[i], f"{arg}[{name!r}]", where=f"slices {start}:{stop}")
    return stack


def _check_scores(scores: Any, apix: float | None
                  ) -> tuple[tuple[str, ...], list[Any], float, tuple[float, float, float]]:
    """Validate the score maps; return names, sliceable volumes, voxel size and origin."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(
            "`scores` must be a non-empty dict {feature name: score map}, e.g. "
            f"merge({{'membrane': seg_m, 'ribosome': seg_r}}), got {type(scores).__name__} "
            f"{'(empty)' if isinstance(scores, Mapping) else ''}".rstrip()
        )
    if len(scores) > MAX_FEATURES:
        raise ValueError(f"`scores` has {len(scores)} features; a label map holds at most "
                         f"{MAX_FEATURES} (int8 labels); merge fewer features at a time")
    names = check_names(scores, "scores")
    apix = None if apix is None else check_positive(apix, "apix")
    sources: list[Any] = []
    origin = None
    apix_of: dict[str, float] = {}
    for name in names:
        value = scores[name]
        if isinstance(value, Tomogram):
            apix_of[name] = value.apix
            if origin is not None and not np.allclose(value.origin, origin, atol=1e-3 * value.apix):
                raise ValueError(
                    f"`scores[{name!r}]` has origin {value.origin} Å but "
                    f"`scores[{next(iter(apix_of))!r}]` has {origin} Å: they cover different parts "
                    "of the cell; apply every network to the same preprocessed tomogram")
            origin = value.origin if origin is None else origin
            array = value.data
        else:
            array = np.asarray(value)
        check_ndim(array, (3,), f"scores[{name!r}]")
        if sources and array.shape != sources[0].shape:
            raise ValueError(
                f"`scores[{name!r}]` has shape {array.shape}, but `scores[{names[0]!r}]` has shape "
                f"{sources[0].shape}; all score maps must come from the same tomogram (apply every "
                "network to the same preprocessed tomogram)"
            )
        sources.append(array)
    reference = apix if apix is not None else next(iter(apix_of.values()), 1.0)
    for name, value in apix_of.items():
        if not same_voxel_size(value, reference):
            source = "`apix`" if apix is not None else f"`scores[{next(iter(apix_of))!r}]`"
            raise ValueError(
                f"`scores[{name!r}]` has voxel size {value:g} Å but {source} has {reference:g} Å; score "
                "maps must share one voxel grid (bin or apply the networks to the same tomogram)"
            )
    return names, sources, float(reference), origin if origin is not None else (0.0, 0.0, 0.0)


def _check_thresholds(names: tuple[str, ...], threshold: Any, thresholds: Any) -> np.ndarray:
    """Threshold per label index (names order) as float32, validating every value."""
    def number(value: Any, arg: str) -> float:
        # cast() only tells mypy what isinstance guarantees: numpy's stubs reject the abstract numbers.Real.
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not np.isfinite(cast(float, value))):
            raise ValueError(f"`{arg}` must be a finite number (a calibrated score; the paper uses 1.0), "
                             f"got {value!r}")
        return float(value)

    default = number(threshold, "threshold")
    thresholds = {} if thresholds is None else thresholds
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"`thresholds` must be a dict {{feature name: threshold}}, got {thresholds!r}")
    unknown = sorted(set(thresholds) - set(names), key=str)
    if unknown:
        raise ValueError(f"`thresholds` names {unknown}, which are not in `scores` ({list(names)}); "
                         "check the spelling")
    values = [number(thresholds[n], f"thresholds[{n!r}]") if n in thresholds else default for n in names]
    return np.asarray(values, np.float32)
