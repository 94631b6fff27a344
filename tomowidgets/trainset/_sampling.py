"""Random examples for :class:`tomowidgets.trainset.TrainingSet`.

Two kinds: tiles picked from a known label volume the way an annotator would
(:meth:`~tomowidgets.trainset.TrainingSet.from_ground_truth`, with optionally sloppy masks), and the
rotated copies of positive tiles that :meth:`~tomowidgets.trainset.TrainingSet.training_arrays`
trains on. All randomness comes from the caller's generator.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from tomowidgets._validate import check_count, check_positive_int

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

_MIN_POSITIVE_FRACTION = 0.01  # from_ground_truth: a positive tile has >= 1 % annotated pixels
_NEGATIVE_TOLERANCE = 0.005  # from_ground_truth: fallback negatives may hold <= 0.5 % labelled
#: Instances of each negative tile per epoch, as EMAN2's ``e2tomoseg_buildtrainset.py --ncopy``
#: (whose default is 10); positives are replicated to balance them. With the paper's 20 epochs of
#: batches of 20 at a learning rate of 0.01 decayed by 10 % per epoch, the total step size is bounded
#: (more epochs add little), so the number of SGD steps per epoch decides how far training gets. On
#: an unseen synthetic cell, membrane Dice at threshold 1.0 was 0.55 with 1 copy (200 tiles, 10 steps
#: per epoch: the network stays unsure, mean output ~0.4 on the annotation), 0.70 with 2, 0.915 with
#: 3 and 0.91 with 10; 3 keeps the paper-sized set's training near a minute on 2 CPU cores.
NEGATIVE_COPIES = 3
#: Default largest relative magnification of the augmented copies (0: rotation only, as the paper).
SCALE = 0.0
#: Default largest Gaussian blur of the augmented copies, sd in pixels (0: none, as the paper).
BLUR = 0.0


# -- ground truth ------------------------------------------------------------------------------
def ground_truth_tiles(label: ArrayLike, shape: tuple[int, ...], tile: int, *, n_positive: Any,
                       n_negative: Any, perturb: Any, rng: int | np.random.Generator | None,
                       decoys: ArrayLike | None = None,
                       ) -> tuple[list[tuple[tuple[int, int, int], np.ndarray]], list[tuple[int, ...]]]:
    """Pick tiles of a tomogram of `shape` from its boolean `label` volume.

    Checks the arguments, then returns ``[(centre, mask), ...]`` for the positives (masks cut from
    `label` and perturbed by up to `perturb` pixels) and ``[centre, ...]`` for the negatives.
    Raises ValueError with the messages documented by ``TrainingSet.from_ground_truth``.
    """
    label = np.asarray(label)
    if label.shape != shape or not (label.dtype == bool or np.issubdtype(label.dtype, np.integer)):
        raise ValueError(f"`label` must be a boolean volume of the tomogram's shape "
                         f"{shape}, got {label.dtype} {label.shape}; e.g. use label > 0.5")
    label = label.astype(bool, copy=False)
    n_positive = check_positive_int(n_positive, "n_positive")
    n_negative = check_count(n_negative, "n_negative")
    perturb = check_count(perturb, "perturb")
    if not label.any():
        raise ValueError("`label` has no labelled voxel; check the feature name or the volume")
    if min(shape[1:]) < tile:
        raise ValueError(f"the tomogram ({shape[1]}×{shape[2]} voxels in y, x) is "
                         f"smaller than the {tile}-voxel tile; use a smaller `tile`")
    rng = np.random.default_rng(rng)
    h = tile // 2
    positives = pick_positives(label, n_positive, tile, rng)
    if len(positives) < n_positive:
        raise ValueError(f"only {len(positives)} of n_positive={n_positive} positive tiles "
                         f"could be found (tiles inside the volume with >= 1 % labelled "
                         f"pixels); lower `n_positive` or `tile`")
    kinds = None if decoys is None else decoy_kinds(decoys, shape)
    negatives = pick_negatives(label, n_negative, tile, rng, decoys=kinds)
    if len(negatives) < n_negative:
        raise ValueError(f"only {len(negatives)} of n_negative={n_negative} negative tiles "
                         "could be found (tiles with <= 0.5 % labelled pixels); lower "
                         "`n_negative` or `tile`")
    masks = [perturb_mask(label[z, y - h:y + h, x - h:x + h], perturb, rng) for z, y, x in positives]
    return list(zip(positives, masks, strict=True)), negatives


def pick_positives(label: np.ndarray, n: int, tile: int, rng: np.random.Generator) -> list:
    """Centres of >= 1 %-labelled tiles on labelled voxels, spread over objects and apart in 3D.

    The paper asks annotators to "span the range of observed variations" (e.g. several membrane
    curvatures), so positives are taken in turn from each connected object of the label (each
    vesicle, the cell membrane, ...) rather than in proportion to object size, which would let one
    large membrane supply most tiles and set the calibration for all the others.
    """
    h = tile // 2
    objects, n_objects = ndimage.label(label, structure=np.ones((3, 3, 3), bool))
    flat = np.flatnonzero(_inside(label, h))
    picks = rng.choice(flat, size=min(flat.size, 50 * n * max(1, min(n_objects, n))), replace=False)
    cand = np.stack(np.unravel_index(picks, label.shape), axis=1)
    cand = cand[_tile_fractions(label, cand, h) >= _MIN_POSITIVE_FRACTION]
    owner = objects[tuple(cand.T)] if len(cand) else np.zeros(0, int)
    queues = [list(cand[owner == k]) for k in rng.permutation(np.unique(owner))]
    chosen: list = []
    for sep in (tile / 2, tile / 4, tile / 8, 1.0):
        progress = True
        while progress and len(chosen) < n:
            progress = False
            for queue in queues:  # one tile per object per round
                while queue and len(chosen) < n:
                    c = queue.pop(0)
                    if not chosen or ((np.array(chosen) - c) ** 2).sum(axis=1).min() >= sep**2:
                        chosen.append(tuple(int(v) for v in c))
                        progress = True
                        break
        queues = [list(cand[owner == k]) for k in np.unique(owner)]  # retry all at a smaller spacing
    return chosen


def decoy_kinds(decoys: Any, shape: tuple[int, ...]) -> list[np.ndarray]:
    """`decoys` as a list of boolean volumes of `shape`: one volume, or one per kind of structure."""
    arrays = [np.asarray(d) for d in decoys] if isinstance(decoys, list | tuple) else [np.asarray(decoys)]
    if not arrays or any(a.shape != shape for a in arrays):
        raise ValueError(f"`decoys` must be a boolean volume of the tomogram's shape {shape} or a "
                         f"list of them (one per kind), got shapes {[a.shape for a in arrays]}")
    return [a.astype(bool, copy=False) for a in arrays]


def pick_negatives(label: np.ndarray, n: int, tile: int, rng: np.random.Generator, *,
                   decoys: list[np.ndarray] | None = None) -> list:
    """Distinct centres of tiles with no labelled voxel (then <= 0.5 % if too few).

    Random over the volume, except that with `decoys` half of them are centred on decoy voxels:
    with one volume anywhere on it (so mostly on its largest structures); with one volume per
    kind, half of those spread evenly over the kinds and the rest anywhere on their union, so that
    a kind of a few small complexes is shown as well as the membranes.
    """
    h = tile // 2
    nz, ny, nx = label.shape
    size = 50 * n
    if n == 0:
        return []
    cand = np.stack([rng.integers(0, nz, size), rng.integers(h, ny - h + 1, size),
                     rng.integers(h, nx - h + 1, size)], axis=1)
    if decoys:
        union = np.any(decoys, axis=0)
        on_kinds = [] if len(decoys) == 1 else [
            _centres_on(mask, label, k, h, rng, size)
            for mask, k in zip(decoys, _even_shares(n // 4, len(decoys)), strict=True)]
        on_union = _centres_on(union, label, n // 2 - sum(map(len, on_kinds)), h, rng, size)
        cand = np.concatenate([*on_kinds, on_union, cand])  # first, so they are kept first
    cand = cand[np.sort(np.unique(cand, axis=0, return_index=True)[1])]
    frac = _tile_fractions(label, cand, h)
    clean = cand[frac == 0]
    if len(clean) < n:
        clean = np.concatenate([clean, cand[(frac > 0) & (frac <= _NEGATIVE_TOLERANCE)]])
    return [tuple(int(v) for v in c) for c in clean[:n]]


def _even_shares(total: int, parts: int) -> list[int]:
    """`total` split into `parts` whole shares differing by at most one."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def _centres_on(mask: np.ndarray, label: np.ndarray, k: int, h: int, rng: np.random.Generator,
                size: int) -> np.ndarray:
    """Up to `k` distinct random voxels of `mask` whose tile (edge ``2h``, inside the volume) holds
    no voxel of `label`."""
    flat = np.flatnonzero(_inside(mask, h))
    if not flat.size:
        return np.zeros((0, 3), int)
    cand = np.stack(np.unravel_index(rng.choice(flat, size=min(flat.size, size)), mask.shape), axis=1)
    cand = np.unique(cand[_tile_fractions(label, cand, h) == 0], axis=0)
    return cand[rng.permutation(len(cand))][:max(k, 0)]


def _inside(mask: np.ndarray, h: int) -> np.ndarray:
    """`mask` where a tile of edge ``2h`` centred on the voxel fits inside the volume in y and x."""
    inner = np.zeros_like(mask)
    inner[:, h:mask.shape[1] - h + 1, h:mask.shape[2] - h + 1] = \
        mask[:, h:mask.shape[1] - h + 1, h:mask.shape[2] - h + 1]
    return inner


def _tile_fractions(label: np.ndarray, centres: np.ndarray, h: int) -> np.ndarray:
    """The fraction of labelled voxels in the tile of edge ``2h`` around each ``(z, y, x)`` centre."""
    return np.array([label[z, y - h:y + h, x - h:x + h].mean() for z, y, x in centres])


def perturb_mask(mask: np.ndarray, perturb: int, rng: np.random.Generator) -> np.ndarray:
    """Dilate or erode `mask` by a random 0..`perturb` pixels (keeping it non-empty)."""
    k = int(rng.integers(-perturb, perturb + 1)) if perturb else 0
    if k > 0:
        out = ndimage.binary_dilation(mask, iterations=k)
    elif k < 0:  # border_value=1: a feature crossing the tile edge is not eroded from the edge
        out = ndimage.binary_erosion(mask, iterations=-k, border_value=1)
    else:
        out = mask
    return out if out.any() else mask


# -- training examples -------------------------------------------------------------------------
def training_examples(records: Sequence[Any], *, rng: int | np.random.Generator | None,
                      balance: bool, copies: Any, augment_negatives: bool,
                      negative_copies: Any = NEGATIVE_COPIES, scale: float = SCALE,
                      blur: float = BLUR, lent_scale: Mapping[str, float] | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Images and full-size masks of TileRecords in rotated copies, shuffled.

    Each positive appears `copies` times and each negative `negative_copies` times: once as picked,
    the other times rotated by random angles (as EMAN2's ``e2tomoseg_buildtrainset.py --ncopy``
    does), magnified by random factors in ``[1 / (1 + scale), 1 + scale]`` (log-uniform) and
    smoothed by a Gaussian of random sd in ``[0, blur]`` pixels (as a reconstruction with more
    interpolation, defocus spread or radiation damage would show the feature); a negative borrowed
    from another feature is magnified by up to the larger of `scale` and ``lent_scale[lender]``.
    Returns ``x`` (n, tile, tile) float32, contiguous, and the masks (n, tile, tile) bool in the
    same order; for 2.5D records (with ``slices``), ``x`` is (n, tile, tile, slices), every slice of
    a copy rotated alike. Arguments and errors are those of ``TrainingSet.training_arrays``.
    """
    if not records:
        raise ValueError("the training set is empty; annotate at least one positive tile "
                         "(add_positive) and some negatives (add_negative)")
    waiting = [i for i, r in enumerate(records) if r.kind == "positive" and not r.painted]
    positives = [r for r in records if r.kind == "positive" and r.painted]
    negatives = [r for r in records if r.kind == "negative"]
    if not positives:
        unpainted = (f" ({len(waiting)} positive tile(s), {waiting}, still have only their "
                     "placeholder mask: paint them in the MaskPainter)" if waiting else "")
        raise ValueError(f"the training set has {len(negatives)} negative tiles but no painted "
                         f"positive{unpainted}; annotate at least one positive tile with "
                         "add_positive(...)")
    if waiting:  # a placeholder disk is not the feature: training on it would invent labels
        warnings.warn(f"positive tile(s) {waiting} still have only their placeholder mask and are "
                      "left out of training: paint them in the MaskPainter, or remove them",
                      UserWarning, stacklevel=3)
    negative_copies = check_positive_int(negative_copies, "negative_copies")
    lent_scale = dict(lent_scale or {})
    for name, value in (("`scale`", scale), *((f"`lent_scale[{k!r}]`", v) for k, v in lent_scale.items())):
        if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
            raise ValueError(f"{name} must be a number in [0, 1) (largest relative magnification "
                             f"of the augmented copies, e.g. 0.25 for ±25 %), got {value!r}")
    if not (isinstance(blur, int | float) and 0.0 <= blur <= 4.0):
        raise ValueError(f"`blur` must be a number in [0, 4] (largest Gaussian sd in pixels of the "
                         f"augmented copies, e.g. 1.0), got {blur!r}")
    if copies is not None:
        copies = check_positive_int(copies, "copies")
    else:
        copies = (max(1, round(negative_copies * len(negatives) / len(positives))) if balance
                  else 1)
    rng = np.random.default_rng(rng)

    def random_zoom(r: Any) -> float:
        log_zoom = np.log1p(float(max(scale, lent_scale.get(r.lender, 0.0))))
        return float(np.exp(rng.uniform(-log_zoom, log_zoom))) if log_zoom else 1.0

    def pixels(r: Any) -> np.ndarray:  # (tile, tile), or (slices, tile, tile) for a 2.5D record
        return r.image if r.slices is None else r.slices

    def random_blur(image: np.ndarray) -> np.ndarray:
        if not blur:
            return image
        sigma = float(rng.uniform(0.0, blur))
        return ndimage.gaussian_filter(image, sigma, axes=(-2, -1), mode="reflect")

    images, masks = [], []
    for r in positives:
        images.append(pixels(r))
        masks.append(r.mask)
        for angle in rng.uniform(0.0, 360.0, size=copies - 1):
            image, mask = rotate_pair(pixels(r), r.mask, float(angle), random_zoom(r))
            images.append(random_blur(image))
            masks.append(mask)
    for r in negatives:
        for angle in (None, *rng.uniform(0.0, 360.0, size=negative_copies - 1)):
            image = (pixels(r) if angle is None
                     else random_blur(rotate_pair(pixels(r), r.mask, float(angle), random_zoom(r))[0]))
            if augment_negatives:
                image = np.rot90(image, int(rng.integers(4)), axes=(-2, -1))
                image = image[..., ::-1] if rng.integers(2) else image
            images.append(image)
            masks.append(r.mask)
    order = rng.permutation(len(images))
    x = np.stack(images)[order]
    if x.ndim == 4:  # (n, slices, tile, tile) -> channels last, as the network reads them
        x = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(x, dtype=np.float32), np.stack(masks)[order]


def rotate_pair(image: np.ndarray, mask: np.ndarray, angle: float, zoom: float = 1.0
                ) -> tuple[np.ndarray, ...]:
    """Rotate a tile and its mask by `angle` degrees about the tile centre, identically, and
    magnify both by `zoom` (> 1 enlarges: membranes look thicker and further apart).

    A rotated square needs values beyond its corners (up to 17 % of the tile at 45°). We reflect
    the tile at its edges (``mode='reflect'``) for both image and mask rather than storing more
    image context around each tile: the painted mask only exists inside the tile, so real context
    would sit next to unknown labels (zero-filled mask corners would teach the network that the
    feature is background there). Reflection keeps image and label consistent everywhere. The image
    is interpolated linearly; the mask linearly too, then thresholded at 0.5, so its edge follows
    the same interpolation as the image. An image of shape (slices, tile, tile) (a 2.5D tile) has
    every slice transformed alike.
    """
    planes = [_transform(plane, angle, zoom) for plane in (image if image.ndim == 3 else [image])]
    rmask = _transform(mask.astype(np.float32), angle, zoom) > 0.5
    rotated = np.stack(planes) if image.ndim == 3 else planes[0]
    return rotated.astype(np.float32, copy=False), rmask


def _transform(plane: np.ndarray, angle: float, zoom: float) -> np.ndarray:
    """`plane` rotated by `angle` degrees and magnified by `zoom` about its centre (linear
    interpolation, edges reflected)."""
    if zoom == 1.0:
        return ndimage.rotate(plane, angle, reshape=False, order=1, mode="reflect")
    # output pixel p samples input c + M (p - c): M rotates by -angle (as ndimage.rotate) and
    # shrinks by 1/zoom, so the content is magnified by zoom about the centre
    a = np.deg2rad(angle)
    matrix = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) / zoom
    centre = (np.array(plane.shape, float) - 1) / 2
    offset = centre - matrix @ centre
    return ndimage.affine_transform(plane, matrix, offset, order=1, mode="reflect")
