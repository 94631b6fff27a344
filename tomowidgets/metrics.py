"""Accuracy against ground truth: voxel overlap scores for annotations.

Synthetic cells have exact labels, so these measure what the method achieves rather than estimating
it by eye as the paper had to.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["angles_to_tilt_axis", "centrelines", "confusion_matrix", "dice", "f_beta", "face_on",
           "fsc_resolution", "match_particles", "recall", "skeleton_dice", "tile_overlap"]


def dice(prediction: np.ndarray, truth: np.ndarray, *, tolerance: int = 0) -> float:
    """Dice coefficient 2|P∩T| / (|P| + |T|) of two boolean volumes, optionally with a tolerance.

    Parameters
    ----------
    prediction, truth : ndarray of bool, same shape
        Voxels annotated by the method and by the ground truth.
    tolerance : int, default 0
        Distance in voxels (chessboard metric, i.e. the 3×3×3 neighbourhood per step) within which a
        voxel still counts as matched. With ``tolerance=1`` a predicted voxel is a hit when a true
        voxel lies in its 26-neighbourhood, and a true voxel is found when a predicted one does:
        ``(|P ∩ dilate(T)| + |T ∩ dilate(P)|) / (|P| + |T|)``. This forgives a one-voxel shift of a
        thin membrane, which a human annotation could not resolve either.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both volumes are empty.

    Raises
    ------
    ValueError
        If the shapes differ or `tolerance` is negative.

    Examples
    --------
    >>> a = np.zeros((1, 1, 6), bool); a[..., 2] = True
    >>> b = np.zeros((1, 1, 6), bool); b[..., 3] = True
    >>> dice(a, b), dice(a, b, tolerance=1)
    (0.0, 1.0)
    """
    prediction, truth = _same_shape_masks(prediction, truth)
    if tolerance < 0:
        raise ValueError(f"`tolerance` must be >= 0 voxels, got {tolerance}")
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    if tolerance == 0:
        return 2.0 * int(np.logical_and(prediction, truth).sum()) / total
    structure = ndimage.generate_binary_structure(prediction.ndim, prediction.ndim)
    near_truth = ndimage.binary_dilation(truth, structure, iterations=tolerance)
    near_prediction = ndimage.binary_dilation(prediction, structure, iterations=tolerance)
    hits = int(np.logical_and(prediction, near_truth).sum())
    found = int(np.logical_and(truth, near_prediction).sum())
    return (hits + found) / total


def face_on(truth: np.ndarray, *, max_angle: float = 30.0, sigma: float = 2.0) -> np.ndarray:
    """Voxels of a sheet (a membrane label) that lie within `max_angle` degrees of the slice plane.

    Where a membrane runs nearly parallel to the slices (a vesicle's top and bottom caps) the
    missing wedge smears it out and a 2D network sees no edge to follow; these voxels measure what
    2.5D context brings. The sheet's normal comes from the structure tensor of the smoothed label
    (a plane's tensor is ``n nᵀ``, so its zz component over its trace is ``cos²`` of the normal's
    angle to z).

    Parameters
    ----------
    truth : ndarray of bool, shape (z, y, x)
        The sheet's voxels.
    max_angle : float, default 30
        Largest angle, in degrees, between the sheet and the slice plane.
    sigma : float, default 2
        Smoothing, in voxels, of the label and of the tensor (about the membrane's thickness).

    Returns
    -------
    ndarray of bool, shape (z, y, x)
        The face-on voxels of `truth`.

    Examples
    --------
    >>> z, y, x = np.mgrid[:20, :20, :20]
    >>> sphere = np.abs(np.sqrt((z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2) - 7) < 1
    >>> caps = face_on(sphere)
    >>> bool(caps[[2, 3, 17]].any()), bool(caps[10].any())     # top and bottom, not the equator
    (True, False)
    """
    truth = np.asarray(truth, dtype=bool)
    if truth.ndim != 3:
        raise ValueError(f"`truth` must be a 3D (z, y, x) label, got shape {truth.shape}")
    if not 0.0 <= max_angle <= 90.0:
        raise ValueError(f"`max_angle` must be in [0, 90] degrees, got {max_angle}")
    smooth = ndimage.gaussian_filter(truth.astype(np.float32), sigma)
    tensor = [ndimage.gaussian_filter(g * g, sigma) for g in np.gradient(smooth)]   # zz, yy, xx
    return truth & (tensor[0] >= np.cos(np.deg2rad(max_angle)) ** 2 * sum(tensor))


def angles_to_tilt_axis(mask: np.ndarray, *, min_pixels: int = 50) -> np.ndarray:
    """Angle, in degrees from 0 to 90, between the tilt axis (y) and each piece of a 2D mask.

    A filament at right angles to the tilt axis keeps the least of its Fourier transform in a
    single-axis tilt series and comes out faint; these angles tell whether painted tiles (or a
    label's tubes, seen from above: ``mask.any(axis=0)``) include such filaments. Each piece's
    direction is its long axis (``skimage.measure.regionprops``' orientation): 0 along y, 90
    along x.

    Parameters
    ----------
    mask : ndarray of bool, shape (y, x)
        The filaments' pixels, e.g. a painted tile.
    min_pixels : int, default 50
        Smaller pieces (specks, a tube's cut end) are skipped.

    Returns
    -------
    ndarray of float
        One angle per piece, in the order ``skimage.measure.label`` numbers them.

    Examples
    --------
    >>> tile = np.zeros((64, 64), bool)
    >>> tile[10:14, 2:60] = True          # along x: across the axis
    >>> tile[20:62, 40:44] = True         # along y
    >>> angles_to_tilt_axis(tile).round().tolist()
    [90.0, 0.0]
    """
    from skimage.measure import label, regionprops

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"`mask` must be a 2D (y, x) mask, got shape {mask.shape}; "
                         "for a 3D label pass its footprint, mask.any(axis=0)")
    pieces = regionprops(label(mask, connectivity=2))
    return np.array([abs(np.degrees(p.orientation)) for p in pieces if p.area >= min_pixels])


def recall(prediction: np.ndarray, truth: np.ndarray, *, tolerance: int = 0) -> float:
    """Share of the true voxels that the prediction finds, within `tolerance` voxels (as in
    :func:`dice`); 1.0 when `truth` is empty.

    Examples
    --------
    >>> recall(np.eye(4, dtype=bool), np.ones((4, 4), bool))
    0.25
    """
    prediction, truth = _same_shape_masks(prediction, truth)
    if tolerance < 0:
        raise ValueError(f"`tolerance` must be >= 0 voxels, got {tolerance}")
    if tolerance:
        prediction = ndimage.binary_dilation(prediction, np.ones((3,) * prediction.ndim, bool),
                                             iterations=tolerance)
    n = int(truth.sum())
    return float((prediction & truth).sum() / n) if n else 1.0


def tile_overlap(prediction: np.ndarray, truth: np.ndarray, *, tolerance: int = 1
                 ) -> tuple[float, float, float, np.ndarray]:
    """Dice, precision and recall of a stack of 2D tiles, the tolerance applied within each tile.

    As :func:`dice` with `tolerance`, but the stack's first axis separates tiles (they are not
    neighbouring slices), so a pixel is never matched in the next tile.

    Parameters
    ----------
    prediction, truth : ndarray of bool, shape (n, y, x)
        Called and painted pixels of n tiles.
    tolerance : int, default 1
        Distance in pixels (chessboard) within which a pixel still counts as matched.

    Returns
    -------
    dice, precision, recall : float
        Over all tiles; precision is 0.0 when nothing is called, recall 1.0 when nothing is true.
    per_tile_recall : ndarray of float, shape (n,)
        Each tile's recall (1.0 for a tile without true pixels).

    Examples
    --------
    >>> a = np.zeros((2, 1, 6), bool); a[0, 0, 2] = True
    >>> b = np.zeros((2, 1, 6), bool); b[0, 0, 3] = b[1, 0, 3] = True
    >>> d, p, r, each = tile_overlap(a, b)
    >>> round(d, 3), p, r, each.tolist()
    (0.667, 1.0, 0.5, [1.0, 0.0])
    """
    prediction, truth = _same_shape_masks(prediction, truth)
    if prediction.ndim != 3 or tolerance < 0:
        raise ValueError(f"`prediction` must be a stack of tiles (n, y, x) and `tolerance` >= 0, "
                         f"got shape {prediction.shape} and tolerance {tolerance}")
    near = np.ones((1, 3, 3), bool)   # within a tile only
    grow = (lambda m: ndimage.binary_dilation(m, near, iterations=tolerance)) if tolerance else (lambda m: m)
    hit_calls, hit_truth = prediction & grow(truth), truth & grow(prediction)
    n_calls, n_truth = int(prediction.sum()), int(truth.sum())
    dice = (int(hit_calls.sum()) + int(hit_truth.sum())) / (n_calls + n_truth) if n_calls + n_truth else 1.0
    precision = int(hit_calls.sum()) / n_calls if n_calls else 0.0
    recall = int(hit_truth.sum()) / n_truth if n_truth else 1.0
    n_each = truth.sum(axis=(1, 2))
    per_tile = np.where(n_each > 0, hit_truth.sum(axis=(1, 2)) / np.maximum(1, n_each), 1.0)
    return float(dice), float(precision), float(recall), per_tile


def centrelines(mask: np.ndarray) -> np.ndarray:
    """One-voxel-thin centrelines of a boolean volume, traced slice by slice in (y, x).

    Each z-slice is thinned to its 2D skeleton (scikit-image's :func:`~skimage.morphology.skeletonize`),
    the way a person traces a membrane or a filament in one slice. A sheet crossing the slice becomes
    its midline; a filament crossing it, a dot. (3D thinning would collapse an open sheet to a line.)

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x) or (y, x)
        The annotated voxels.

    Returns
    -------
    ndarray of bool, same shape
    """
    from skimage.morphology import skeletonize

    mask = np.array(mask, dtype=bool)  # a writable copy: skimage refuses read-only buffers
    if mask.ndim == 2:
        return skeletonize(mask)
    if mask.ndim != 3:
        raise ValueError(f"`mask` must be 2D (y, x) or 3D (z, y, x), got shape {mask.shape}")
    return np.stack([skeletonize(plane) if plane.any() else plane for plane in mask])


def skeleton_dice(prediction: np.ndarray, truth: np.ndarray, *, tolerance: int = 1) -> float:
    """Dice of the centrelines of two boolean volumes ("surface Dice"), with a tolerance in voxels.

    Overlap of thick masks rewards getting the thickness right; this scores where the structure
    is: a membrane annotated 3 voxels thick over a 2-voxel true membrane still scores 1.0, a
    membrane shifted by 3 voxels or one left open scores less. Both volumes are thinned with
    :func:`centrelines`, then compared with :func:`dice` at `tolerance`.

    Parameters
    ----------
    prediction, truth : ndarray of bool, same shape
        Voxels annotated by the method and by the ground truth.
    tolerance : int, default 1
        Distance in voxels within which a centreline voxel counts as matched (see :func:`dice`).

    Returns
    -------
    float
        In [0, 1]; 1.0 when both are empty.

    Examples
    --------
    >>> truth = np.zeros((1, 9, 9), bool); truth[0, 3:6, 1:8] = True       # 3 voxels thick
    >>> thinner = np.zeros((1, 9, 9), bool); thinner[0, 4, 1:8] = True     # 1 voxel thick
    >>> round(dice(thinner, truth), 2), skeleton_dice(thinner, truth)
    (0.5, 1.0)
    """
    prediction, truth = _same_shape_masks(prediction, truth)
    return dice(centrelines(prediction), centrelines(truth), tolerance=tolerance)


def confusion_matrix(labels: np.ndarray, truth: dict[str, np.ndarray], names: tuple[str, ...] | list[str]
                     ) -> np.ndarray:
    """Voxel counts of each true feature against each merged label: how much features get confused.

    Parameters
    ----------
    labels : ndarray of int, shape (z, y, x)
        A merged annotation: 0 background, ``i`` = ``names[i - 1]`` (``LabelMap.data``).
    truth : dict of str to bool ndarray
        Ground truth per feature, same shape; every name in `names` must be there. A voxel true
        for several features counts for the first of them in `names`.
    names : sequence of str
        The features of `labels`, in label order.

    Returns
    -------
    ndarray of int64, shape (n + 1, n + 1)
        Row ``i`` = voxels truly of ``names[i - 1]`` (row 0: of none of them), column ``j`` =
        voxels labelled ``j``. Off-diagonal entries between features (rows and columns >= 1) are
        confusions; column 0 is what was missed, row 0 what was called where nothing is.

    Examples
    --------
    >>> labels = np.array([[[1, 1, 2, 0]]])
    >>> truth = {"a": np.array([[[True, True, True, False]]]), "b": np.zeros((1, 1, 4), bool)}
    >>> confusion_matrix(labels, truth, ["a", "b"]).tolist()
    [[1, 0, 0], [0, 2, 1], [0, 0, 0]]
    """
    labels = np.asarray(labels)
    missing = [name for name in names if name not in truth]
    if missing:
        raise ValueError(f"`truth` has no label for {missing}; it has {sorted(truth)}")
    true_class = np.zeros(labels.shape, np.int64)
    for i, name in reversed(list(enumerate(names, start=1))):  # the first name wins an overlap
        mask = np.asarray(truth[name], dtype=bool)
        if mask.shape != labels.shape:
            raise ValueError(f"`truth[{name!r}]` has shape {mask.shape} but `labels` has {labels.shape}")
        true_class[mask] = i
    n = len(names) + 1
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= n:
        raise ValueError(f"`labels` must hold 0..{n - 1} (one per name), got "
                         f"{labels.min()}..{labels.max()}")
    return np.bincount((true_class * n + labels.astype(np.int64)).ravel(), minlength=n * n).reshape(n, n)


def f_beta(precision: float, recall: float, beta: float = 4.0) -> float:
    """F-beta score: the harmonic mean of precision and recall, recall weighted `beta`² times.

    ``(1 + β²) P R / (β² P + R)``. With β = 4 (the default, as in cryo-ET picking challenges) a
    missed particle costs 16 times a false pick, since false picks are removed by 2D/3D
    classification later but missed ones are gone. β = 1 gives F1.

    Returns
    -------
    float
        0.0 when precision or recall is 0 (e.g. nothing picked), else NaN when either is NaN.

    Examples
    --------
    >>> round(f_beta(0.5, 1.0), 3), round(f_beta(1.0, 0.5), 3), round(f_beta(0.8, 0.8, beta=1), 3)
    (0.944, 0.515, 0.8)
    """
    if beta <= 0:
        raise ValueError(f"`beta` must be > 0, got {beta}")
    if precision == 0 or recall == 0:
        return 0.0
    b2 = beta * beta
    return float((1 + b2) * precision * recall / (b2 * precision + recall))


def fsc_resolution(volume: np.ndarray, reference: np.ndarray, apix: float, *, threshold: float = 0.5,
                   align: bool = True) -> float:
    """Resolution in Å at which a map's FSC against a known reference falls below `threshold`.

    Parameters
    ----------
    volume, reference : ndarray, shape (n, n, n)
        The map (e.g. a subtomogram average) and the true structure on the same grid and with the
        same contrast and CTF (e.g. :func:`tomowidgets.synthetic.reference_map`).
    apix : float
        Voxel size in Å.
    threshold : float, default 0.5
        FSC threshold; 0.5 is the criterion for a map against a reference (0.143 is for half maps).
    align : bool, default True
        First rotate and shift `volume` onto `reference` with
        :func:`tomowidgets.average.align_map`: a reference-free average has an arbitrary pose.

    Returns
    -------
    float
        Resolution in Å (``inf`` when the FSC starts below `threshold`).
    """
    from tomowidgets.average import align_map, fsc, resolution

    if align:
        volume = align_map(volume, reference).volume
    freqs, curve = fsc(volume, reference, apix)
    return resolution(freqs, curve, threshold)


def match_particles(found: np.ndarray, truth: np.ndarray, *, radius: float,
                    beta: float = 4.0) -> dict[str, float]:
    """Precision, recall and F1 of picked positions against true ones, within a match radius.

    A pick is correct when a true particle lies within `radius`; a true particle is found when a
    pick lies within `radius` (each side counted independently, as a person checking picks by eye).

    Parameters
    ----------
    found, truth : array of shape (n, 3)
        Positions ``(z, y, x)`` in voxels of the same tomogram.
    radius : float
        Match radius in voxels (e.g. half a ribosome radius: 6.25 voxels at 10 Å/voxel).
    beta : float, default 4
        Recall weight of the ``f_beta`` entry (see :func:`f_beta`).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``f_beta`` (NaN where undefined), ``n_found``, ``n_true``.

    Examples
    --------
    >>> r = match_particles(np.array([[0, 0, 0], [9, 9, 9]]), np.array([[0, 0, 1]]), radius=2)
    >>> r["precision"], r["recall"]
    (0.5, 1.0)
    """
    from scipy.spatial import cKDTree

    found = np.asarray(found, dtype=float).reshape(-1, 3)
    truth = np.asarray(truth, dtype=float).reshape(-1, 3)
    if radius <= 0:
        raise ValueError(f"`radius` must be > 0 voxels, got {radius}")
    precision = recall = float("nan")
    if len(found) and len(truth):
        precision = float(np.mean(cKDTree(truth).query(found)[0] <= radius))
        recall = float(np.mean(cKDTree(found).query(truth)[0] <= radius))
    elif len(truth):
        recall = 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1, "f_beta": f_beta(precision, recall, beta),
            "n_found": float(len(found)), "n_true": float(len(truth))}


def _same_shape_masks(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction = np.asarray(prediction, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if prediction.shape != truth.shape:
        raise ValueError(
            f"`prediction` and `truth` must have the same shape, got {prediction.shape} and "
            f"{truth.shape}"
        )
    return prediction, truth
