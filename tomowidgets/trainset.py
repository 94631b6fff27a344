"""Training sets: the annotated tiles one feature's network learns from (Chen et al. 2017).

A :class:`TrainingSet` holds square tiles cut from single slices of *preprocessed* tomograms: ~10
positive tiles, each with a painted boolean mask of the feature, and ~100 negative tiles without it.
:meth:`TrainingSet.training_arrays` turns them into what the network trains on (positives replicated
in random in-plane rotations until they balance the negatives; labels shrunk 2x to the network's
output grid). Sets are saved as ``*.tiles.npz`` files without pickles.

Tile geometry: a tile of (even) size ``tile`` centred at voxel ``(z, y, x)`` holds rows
``y - tile//2 .. y + tile//2 - 1`` and columns ``x - tile//2 .. x + tile//2 - 1`` of slice ``z``; the
centre voxel is element ``[tile//2, tile//2]`` of the tile.
"""

from __future__ import annotations

import json
import numbers
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from tomowidgets._validate import as_float32, check_finite, check_positive, check_positive_int
from tomowidgets.io import Tomogram, atomic_path

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["TileRecord", "TrainingSet", "shrink_labels"]

FORMAT = "tomowidgets.TrainingSet"  #: marker stored in every saved set's metadata
FORMAT_VERSION = 1
KINDS = ("positive", "negative")
_APIX_RTOL = 1e-3  # voxel sizes closer than 0.1 % are the same (MRC headers store float32)
_MIN_POSITIVE_FRACTION = 0.01  # from_ground_truth: a positive tile has >= 1 % annotated pixels
_NEGATIVE_TOLERANCE = 0.005  # from_ground_truth: fallback negatives may hold <= 0.5 % labelled
_LOAD_ERRORS = (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True, repr=False)
class TileRecord:
    """One tile of a training set; immutable (its arrays are read-only).

    Parameters
    ----------
    kind : {'positive', 'negative'}
        Whether the tile shows the feature (and has a painted mask).
    centre : tuple of 3 int
        Voxel ``(z, y, x)`` of the tile centre in its tomogram.
    source : str or None
        Path of the tomogram file (``Tomogram.path``); None for an in-memory tomogram.
    image : ndarray of shape (tile, tile), float32
        The preprocessed voxels, a copy (never a view of the tomogram).
    mask : ndarray of shape (tile, tile), bool
        The painted feature; all False for a negative.
    """

    kind: str
    centre: tuple[int, int, int]
    source: str | None
    image: np.ndarray
    mask: np.ndarray

    def __repr__(self) -> str:
        z, y, x = self.centre
        n = self.image.shape[0]
        painted = f", {int(self.mask.sum())} px painted" if self.kind == "positive" else ""
        return (f"TileRecord({self.kind}, {n}×{n}, centre=(z={z}, y={y}, x={x}), "
                f"source={self.source!r}{painted})")


class TrainingSet:
    """Annotated tiles for one feature, cut from preprocessed tomograms of one voxel size.

    Parameters
    ----------
    tile : int, default 64
        Tile edge in voxels; even and >= 16 (the paper uses 64).
    feature : str, optional
        Name of the feature, e.g. ``'membrane'``.
    apix : float, optional
        Voxel size in Å per voxel; by default the first added tile's tomogram fixes it.
    preprocessing : dict, optional
        JSON-able preprocessing parameters of the tomograms, e.g.
        ``{"lowpass": 20, "highpass": 4000, "clamp": 3}`` (Å, Å, sd); kept in the metadata.

    Examples
    --------
    >>> import numpy as np, tomowidgets as tw
    >>> tomo = tw.Tomogram(np.zeros((4, 40, 40), np.float32), apix=10.0)
    >>> ts = TrainingSet(16, feature="membrane")
    >>> mask = np.zeros((16, 16), bool); mask[8] = True
    >>> ts.add_positive(tomo, 1, 20, 20, mask), ts.add_negative(tomo, 2, 8, 32)
    (0, 1)
    >>> ts
    TrainingSet('membrane', 1 positive + 1 negative tiles of 16×16 at 10 Å/voxel)
    >>> x, y = ts.training_arrays(rng=0)
    >>> x.shape, y.shape
    ((2, 16, 16), (2, 8, 8))
    """

    def __init__(self, tile: int = 64, *, feature: str | None = None, apix: float | None = None,
                 preprocessing: Mapping[str, Any] | None = None) -> None:
        self._tile = _check_tile(tile)
        if feature is not None and not isinstance(feature, str):
            raise ValueError(f"`feature` must be a name such as 'membrane', got {feature!r}")
        self._feature = feature
        self._apix = None if apix is None else check_positive(apix, "apix")
        self._preprocessing = _check_preprocessing(preprocessing)
        self._records: list[TileRecord] = []

    # -- state ---------------------------------------------------------------------------------
    tile = property(lambda self: self._tile, doc="Tile edge in voxels.")
    feature = property(lambda self: self._feature, doc="Feature name, or None.")
    apix = property(lambda self: self._apix, doc="Voxel size in Å/voxel (None until a tile is added).")

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """Preprocessing parameters given at construction (a copy), or None."""
        return None if self._preprocessing is None else json.loads(json.dumps(self._preprocessing))

    n_positive = property(lambda self: sum(r.kind == "positive" for r in self._records),
                          doc="Number of positive tiles.")
    n_negative = property(lambda self: sum(r.kind == "negative" for r in self._records),
                          doc="Number of negative tiles.")
    kinds = property(lambda self: tuple(r.kind for r in self._records),
                     doc="Kind of each tile, ``'positive'`` or ``'negative'``.")
    sources = property(lambda self: tuple(r.source for r in self._records),
                       doc="Source tomogram path of each tile (None for in-memory tomograms).")

    @property
    def centres(self) -> NDArray[np.int64]:
        """Tile centres, read-only int array of shape (n, 3): voxel ``(z, y, x)``."""
        return _frozen(np.array([r.centre for r in self._records], np.int64).reshape(-1, 3))

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able description: voxel size (Å), tile size, feature, preprocessing, sources, tiles."""
        return {
            "feature": self._feature, "tile": self._tile, "apix": self._apix,
            "preprocessing": self.preprocessing,
            "n_positive": self.n_positive, "n_negative": self.n_negative,
            "sources": sorted({r.source for r in self._records if r.source is not None}),
            "tiles": [{"kind": r.kind, "centre": list(r.centre), "source": r.source}
                      for r in self._records],
        }

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TileRecord]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> TileRecord:
        return self._records[self._check_index(index)]

    def __repr__(self) -> str:
        name = f"{self._feature!r}, " if self._feature else ""
        at = f" at {self._apix:.4g} Å/voxel" if self._apix else ""
        t = self._tile
        return (f"TrainingSet({name}{self.n_positive} positive + {self.n_negative} negative "
                f"tiles of {t}×{t}{at})")

    # -- editing -------------------------------------------------------------------------------
    def add_positive(self, tomo: Tomogram, z: int, y: int, x: int, mask: ArrayLike) -> int:
        """Add the tile centred at voxel ``(z, y, x)`` of `tomo`, with its painted mask.

        Parameters
        ----------
        tomo : Tomogram
            A preprocessed tomogram (may be memory-mapped; the tile is copied as float32).
        z, y, x : int
            Voxel indices of the tile centre; the tile spans ``y - tile//2 .. y + tile//2 - 1``
            (likewise in x), so ``tile//2 <= y <= ny - tile//2``.
        mask : array of shape (tile, tile), bool or 0/1
            The feature's pixels in the tile; at least one must be set.

        Returns
        -------
        int
            Index of the new tile.

        Raises
        ------
        ValueError
            If the tile runs off the tomogram, holds NaN/inf, `tomo` has another voxel size than the
            set, or `mask` has the wrong shape, values other than 0/1, or is empty.
        """
        mask = _check_mask(mask, self._tile)
        if not mask.any():
            raise ValueError("`mask` has no painted pixel; a tile without the feature is a "
                             "negative: use add_negative(tomo, z, y, x) instead")
        return self._add("positive", tomo, (z, y, x), mask)

    def add_negative(self, tomo: Tomogram, z: int, y: int, x: int) -> int:
        """Add the tile centred at voxel ``(z, y, x)`` of `tomo` as an example without the feature.

        Parameters and errors are those of :meth:`add_positive`, without the mask. Returns the index.
        """
        return self._add("negative", tomo, (z, y, x), np.zeros((self._tile,) * 2, bool))

    def remove(self, index: int) -> TileRecord:
        """Remove tile `index` (later tiles move down by one) and return it (for an undo).

        Raises IndexError for an index out of range, TypeError for a non-integer.
        """
        return self._records.pop(self._check_index(index))

    def replace_mask(self, index: int, mask: ArrayLike) -> None:
        """Replace the painted mask of positive tile `index` (the mask painter calls this per stroke).

        Raises
        ------
        ValueError
            If the tile is a negative, or `mask` has the wrong shape, non-0/1 values or is empty.
        """
        i = self._check_index(index)
        if self._records[i].kind != "positive":
            raise ValueError(f"tile {i} is a negative and has no mask; to annotate it, remove({i}) "
                             "and add it again with add_positive(tomo, z, y, x, mask)")
        mask = _check_mask(mask, self._tile)
        if not mask.any():
            raise ValueError(f"`mask` has no painted pixel; to make tile {i} a negative, call "
                             f"remove({i}) and then add_negative(tomo, z, y, x)")
        self._records[i] = replace(self._records[i], mask=_frozen(mask))

    set_mask = replace_mask

    def mask(self, index: int) -> NDArray[np.bool_]:
        """The mask of tile `index`, read-only, shape (tile, tile); all False for a negative."""
        return self[index].mask

    def image(self, index: int) -> NDArray[np.float32]:
        """The voxels of tile `index`, read-only float32 of shape (tile, tile)."""
        return self[index].image

    def merge(self, other: TrainingSet) -> TrainingSet:
        """A new set with this set's tiles followed by `other`'s; see :meth:`concatenate`."""
        return TrainingSet.concatenate([self, other])

    @classmethod
    def concatenate(cls, sets: Iterable[TrainingSet]) -> TrainingSet:
        """A new set holding the tiles of all `sets`, in order; the inputs are unchanged.

        Raises
        ------
        ValueError
            If the sets differ in tile size, voxel size, feature name or preprocessing (unset
            values are taken from the sets that have them).
        """
        sets = list(sets)
        if not sets or not all(isinstance(s, TrainingSet) for s in sets):
            raise ValueError(f"`sets` must be a non-empty list of TrainingSet, got {sets!r}")
        first = sets[0]
        feature = next((s.feature for s in sets if s.feature is not None), None)
        apix = next((s.apix for s in sets if s.apix is not None), None)
        prep = next((s.preprocessing for s in sets if s.preprocessing is not None), None)
        for i, s in enumerate(sets):
            if s.tile != first.tile:
                raise ValueError(f"set {i} has {s.tile}-voxel tiles, set 0 has {first.tile}; "
                                 "only sets of one tile size can be combined")
            if s.apix is not None:
                _check_same_apix(apix, s.apix, what=f"set {i}")
            if s.feature is not None and s.feature != feature:
                raise ValueError(f"set {i} is for feature {s.feature!r}, not {feature!r}; "
                                 "train one network per feature")
            if s.preprocessing is not None and s.preprocessing != prep:
                raise ValueError(f"set {i} was preprocessed with {s.preprocessing}, another set "
                                 f"with {prep}; preprocess all tomograms alike")
        out = cls(first.tile, feature=feature, apix=apix, preprocessing=prep)
        out._records = [r for s in sets for r in s._records]
        return out

    # -- training arrays -----------------------------------------------------------------------
    def training_arrays(self, *, rng: int | np.random.Generator | None = None, balance: bool = True,
                        copies: int | None = None, augment_negatives: bool = False,
                        ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Images and labels to train the network on, augmented, balanced and shuffled.

        Each positive tile appears once as annotated plus ``copies - 1`` times rotated in-plane by
        random angles in [0°, 360°) about its centre, its mask rotated identically. Negatives appear
        once each. The result is shuffled.

        Parameters
        ----------
        rng : int or numpy.random.Generator, optional
            Seed or generator for the angles and the shuffle; a fixed seed gives identical arrays.
        balance : bool, default True
            Choose ``copies = round(n_negative / n_positive)`` (at least 1), so positives and
            negatives are roughly equal in number, as in the paper. False: ``copies = 1``.
        copies : int, optional
            Instances per positive tile; overrides `balance`.
        augment_negatives : bool, default False
            Also rotate each negative by a random multiple of 90° and maybe flip it (exact, no
            interpolation). The paper does not (negatives appear once, as picked).

        Returns
        -------
        x : ndarray of shape (n, tile, tile), float32
            Tile images.
        y : ndarray of shape (n, tile//2, tile//2), float32
            Labels in [0, 1]: the fraction of painted pixels in each 2×2 block (:func:`shrink_labels`).

        Raises
        ------
        ValueError
            If the set is empty or has no positive tile, or `copies` is not an integer >= 1.

        Notes
        -----
        The corners of a rotated tile are filled by reflecting the tile at its edges, in the image
        and the mask alike, so labels stay consistent with the pixels (the painted mask does not
        extend beyond the tile, so real surrounding voxels would have unknown labels). Images are
        interpolated linearly; masks linearly, then thresholded at 0.5.
        """
        if not self._records:
            raise ValueError("the training set is empty; annotate at least one positive tile "
                             "(add_positive) and some negatives (add_negative)")
        positives = [r for r in self._records if r.kind == "positive"]
        negatives = [r for r in self._records if r.kind == "negative"]
        if not positives:
            raise ValueError(f"the training set has {len(negatives)} negative tiles but no "
                             "positive; annotate at least one positive tile with add_positive(...)")
        if copies is not None:
            copies = check_positive_int(copies, "copies")
        else:
            copies = max(1, round(len(negatives) / len(positives))) if balance else 1
        rng = np.random.default_rng(rng)
        images, masks = [], []
        for r in positives:
            images.append(r.image)
            masks.append(r.mask)
            for angle in rng.uniform(0.0, 360.0, size=copies - 1):
                image, mask = _rotate_pair(r.image, r.mask, float(angle))
                images.append(image)
                masks.append(mask)
        for r in negatives:
            image = r.image
            if augment_negatives:
                image = np.rot90(image, int(rng.integers(4)))
                image = image[:, ::-1] if rng.integers(2) else image
            images.append(image)
            masks.append(r.mask)
        order = rng.permutation(len(images))
        x = np.ascontiguousarray(np.stack(images)[order], dtype=np.float32)
        return x, shrink_labels(np.stack(masks)[order])

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the set to `path` (conventionally ``<feature>.tiles.npz``) atomically.

        The file is a compressed ``.npz`` with arrays ``images`` (n, tile, tile) float32, ``masks``
        (n, tile, tile) bool and ``metadata`` (UTF-8 JSON of :attr:`metadata` as uint8); no pickles.
        The name is used as given (no suffix is added). Returns the path.
        """
        path = Path(path)
        t = self._tile
        images = np.stack([r.image for r in self._records]) if self._records else np.zeros(
            (0, t, t), np.float32)
        masks = np.stack([r.mask for r in self._records]) if self._records else np.zeros(
            (0, t, t), bool)
        meta = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **self.metadata})
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, masks=masks,
                                metadata=np.frombuffer(meta.encode("utf-8"), np.uint8))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainingSet:
        """Read a set written by :meth:`save` (never unpickles anything).

        Raises
        ------
        FileNotFoundError
            If `path` does not exist.
        ValueError
            If the file is not a tomowidgets training set, or is truncated or corrupt.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No training set at '{path}' (cwd is '{Path.cwd()}'); check "
                                    "the path; sets are written by TrainingSet.save('x.tiles.npz')")
        bad = f"'{path}' is not a tomowidgets training set (written by TrainingSet.save)"
        try:  # we own the handle: np.load(path) leaks it when the zip directory is unreadable
            with open(path, "rb") as fh, _as_npz(np.load(fh, allow_pickle=False)) as npz:
                missing = {"images", "masks", "metadata"} - set(npz.files)
                if missing:
                    raise ValueError(f"arrays {sorted(missing)} are missing")
                images, masks = npz["images"], npz["masks"]
                meta = json.loads(npz["metadata"].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("its metadata has no tomowidgets training-set marker")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')!r} is not "
                                 f"{FORMAT_VERSION}; upgrade tomowidgets")
            return cls._from_arrays(images, masks, meta)
        except _LOAD_ERRORS as err:
            raise ValueError(f"{bad}, or it is corrupt ({type(err).__name__}: {err})") from None

    @classmethod
    def _from_arrays(cls, images: np.ndarray, masks: np.ndarray, meta: dict) -> TrainingSet:
        ts = cls(meta["tile"], feature=meta["feature"], apix=meta["apix"],
                 preprocessing=meta["preprocessing"])
        shape = (len(meta["tiles"]), ts.tile, ts.tile)
        if images.shape != shape or masks.shape != shape or images.dtype != np.float32 \
                or masks.dtype != bool:
            raise ValueError(f"arrays {images.shape} {images.dtype} / {masks.shape} {masks.dtype} "
                             f"do not hold {shape[0]} tiles of {ts.tile}×{ts.tile}")
        check_finite(images, "images")
        for info, image, mask in zip(meta["tiles"], images, masks, strict=True):
            centre = tuple(int(c) for c in info["centre"])
            if info["kind"] not in KINDS or len(centre) != 3 \
                    or bool(mask.any()) != (info["kind"] == "positive"):
                raise ValueError(f"tile record {info!r} is inconsistent with its mask")
            source = info["source"] if info["source"] is None else str(info["source"])
            ts._records.append(TileRecord(info["kind"], centre, source,  # type: ignore[arg-type]
                                          _frozen(image.copy()), _frozen(mask.copy())))
        return ts

    # -- ground truth --------------------------------------------------------------------------
    @classmethod
    def from_ground_truth(cls, tomo: Tomogram, label: ArrayLike, *, feature: str | None,
                          n_positive: int = 10, n_negative: int = 100,
                          rng: int | np.random.Generator | None = None, tile: int = 64,
                          perturb: int = 0, preprocessing: Mapping[str, Any] | None = None,
                          ) -> TrainingSet:
        """Play the annotator from a known label volume (for tests, benchmarks and tutorials).

        Positives are centred on random labelled voxels whose tile has >= 1 % labelled pixels, at
        least ``tile/2`` voxels apart in 3D (relaxed to ``tile/4``, ``tile/8``, 1 if too few
        exist); their masks are the label's slice in the tile. Negatives are random tiles (fully
        inside the volume) holding no labelled voxel; if too few exist, tiles with <= 0.5 %
        labelled voxels complete them.

        Parameters
        ----------
        tomo : Tomogram
            The preprocessed tomogram.
        label : bool array of shape (z, y, x)
            The feature's voxels, same shape as `tomo`.
        feature : str or None
            Feature name for the set.
        n_positive, n_negative : int, default 10 and 100
            Numbers of tiles to pick (the paper's ~10 and ~100).
        rng : int or numpy.random.Generator, optional
            Seed or generator; a fixed seed picks the same tiles.
        tile : int, default 64
            Tile edge in voxels.
        perturb : int, default 0
            If > 0, dilate or erode each mask by a random 0..`perturb` pixels, like a sloppy human.
        preprocessing : dict, optional
            Stored in the metadata, as for the constructor.

        Returns
        -------
        TrainingSet

        Raises
        ------
        ValueError
            If `label` is empty, not boolean or of another shape, or the tiles cannot be found.
        """
        _check_tomogram(tomo)
        ts = cls(tile, feature=feature, apix=tomo.apix, preprocessing=preprocessing)
        label = np.asarray(label)
        if label.shape != tomo.shape or not (label.dtype == bool
                                             or np.issubdtype(label.dtype, np.integer)):
            raise ValueError(f"`label` must be a boolean volume of the tomogram's shape "
                             f"{tomo.shape}, got {label.dtype} {label.shape}; e.g. use label > 0.5")
        label = label.astype(bool, copy=False)
        n_positive = check_positive_int(n_positive, "n_positive")
        n_negative = _check_count(n_negative, "n_negative")
        perturb = _check_count(perturb, "perturb")
        if not label.any():
            raise ValueError("`label` has no labelled voxel; check the feature name or the volume")
        if min(tomo.shape[1:]) < ts.tile:
            raise ValueError(f"the tomogram ({tomo.shape[1]}×{tomo.shape[2]} voxels in y, x) is "
                             f"smaller than the {ts.tile}-voxel tile; use a smaller `tile`")
        rng = np.random.default_rng(rng)
        h = ts.tile // 2
        positives = _pick_positives(label, n_positive, ts.tile, rng)
        if len(positives) < n_positive:
            raise ValueError(f"only {len(positives)} of n_positive={n_positive} positive tiles "
                             f"could be found (tiles inside the volume with >= 1 % labelled "
                             f"pixels); lower `n_positive` or `tile`")
        negatives = _pick_negatives(label, n_negative, ts.tile, rng)
        if len(negatives) < n_negative:
            raise ValueError(f"only {len(negatives)} of n_negative={n_negative} negative tiles "
                             "could be found (tiles with <= 0.5 % labelled pixels); lower "
                             "`n_negative` or `tile`")
        for z, y, x in positives:
            mask = _perturb(label[z, y - h:y + h, x - h:x + h], perturb, rng)
            ts.add_positive(tomo, z, y, x, mask)
        for z, y, x in negatives:
            ts.add_negative(tomo, z, y, x)
        return ts

    # -- internals -----------------------------------------------------------------------------
    def _add(self, kind: str, tomo: Tomogram, centre: tuple, mask: np.ndarray) -> int:
        image, centre = _cut_tile(tomo, centre, self._tile)
        if self._apix is None:
            self._apix = float(tomo.apix)
        else:
            _check_same_apix(self._apix, tomo.apix, what="`tomo`")
        source = None if tomo.path is None else str(tomo.path)
        self._records.append(TileRecord(kind, centre, source, _frozen(image), _frozen(mask)))
        return len(self._records) - 1

    def _check_index(self, index: Any) -> int:
        n = len(self._records)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"`index` must be an integer tile index, got {index!r}")
        if not -n <= index < n:
            raise IndexError(f"`index` must be a tile index in 0..{n - 1} (or negative from the "
                             f"end), got {index}; the set holds {n} tiles")
        return int(index) % n


def shrink_labels(masks: ArrayLike) -> NDArray[np.float32]:
    """Shrink masks 2× to the network's output grid: the fraction of set pixels per 2×2 block.

    The mean (not the max) keeps a thin feature's label proportional to how much of each output
    pixel it covers.

    Parameters
    ----------
    masks : array of shape (..., tile, tile), bool or float in [0, 1]
        Masks with an even tile size.

    Returns
    -------
    ndarray of shape (..., tile//2, tile//2), float32
        Values in [0, 1].

    Examples
    --------
    >>> shrink_labels(np.array([[1, 0], [1, 1]], bool))
    array([[0.75]], dtype=float32)
    """
    m = as_float32(masks, "masks")
    h, w = m.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"`masks` must have even tile sizes, got {h}×{w}")
    return m.reshape(*m.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1), dtype=np.float32)


def _rotate_pair(image: np.ndarray, mask: np.ndarray, angle: float) -> tuple[np.ndarray, ...]:
    """Rotate a tile and its mask by `angle` degrees about the tile centre, identically.

    A rotated square needs values beyond its corners (up to 17 % of the tile at 45°). We reflect
    the tile at its edges (``mode='reflect'``) for both image and mask rather than storing more
    image context around each tile: the painted mask only exists inside the tile, so real context
    would sit next to unknown labels (zero-filled mask corners would teach the network that the
    feature is background there). Reflection keeps image and label consistent everywhere. The image
    is interpolated linearly; the mask linearly too, then thresholded at 0.5, so its edge follows
    the same interpolation as the image.
    """
    rotated = ndimage.rotate(image, angle, reshape=False, order=1, mode="reflect")
    rmask = ndimage.rotate(mask.astype(np.float32), angle, reshape=False, order=1, mode="reflect")
    return rotated.astype(np.float32, copy=False), rmask > 0.5


def _cut_tile(tomo: Tomogram, centre: tuple, tile: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Copy the tile centred at `centre` = (z, y, x) as float32, checking bounds and values."""
    _check_tomogram(tomo)
    for name, c in zip("zyx", centre, strict=True):
        if isinstance(c, bool) or not isinstance(c, numbers.Integral):
            raise ValueError(f"`{name}` must be an integer voxel index, got {c!r}; round it first")
    z, y, x = (int(c) for c in centre)
    nz = tomo.shape[0]
    if not 0 <= z < nz:
        raise ValueError(f"`z`={z} is outside the tomogram; it must be in 0..{nz - 1}")
    h = tile // 2
    for name, c, n in (("y", y, tomo.shape[1]), ("x", x, tomo.shape[2])):
        if n < tile:
            raise ValueError(f"the tomogram is {n} voxels along {name}, smaller than the "
                             f"{tile}-voxel tile; use a smaller `tile`")
        if not h <= c <= n - h:
            off = h - c if c < h else c - (n - h)
            raise ValueError(f"the tile centred at {name}={c} runs {off} voxel(s) off the edge; "
                             f"`{name}` must be in {h}..{n - h} for a {tile}-voxel tile on a "
                             f"tomogram {n} voxels along {name}")
    image = as_float32(np.array(tomo.data[z, y - h:y + h, x - h:x + h]), "tomo")
    check_finite(image, "tomo", where=f"the tile at (z={z}, y={y}, x={x})")
    return np.array(image, np.float32), (z, y, x)  # np.array copies: never a view of the tomogram


def _as_npz(loaded: Any) -> Any:
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single .npy array, not an .npz archive")
    return loaded


def _check_tomogram(tomo: Any) -> None:
    if not isinstance(tomo, Tomogram):
        raise ValueError(f"`tomo` must be a tomowidgets.Tomogram (voxels and voxel size), got "
                         f"{type(tomo).__name__}; wrap an array as Tomogram(array, apix=...)")


def _check_tile(tile: Any) -> int:
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 16 or tile % 2:
        raise ValueError(f"`tile` must be even and >= 16 voxels, got {tile!r}; the paper uses 64")
    return int(tile)


def _check_count(value: Any, arg_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{arg_name}` must be an integer >= 0, got {value!r}")
    return int(value)


def _check_preprocessing(preprocessing: Any) -> dict[str, Any] | None:
    if preprocessing is None:
        return None
    try:
        if not isinstance(preprocessing, Mapping):
            raise TypeError
        return json.loads(json.dumps(dict(preprocessing)))
    except (TypeError, ValueError):
        raise ValueError(f"`preprocessing` must be a dict of JSON-able values such as "
                         f"{{'lowpass': 20, 'highpass': 4000, 'clamp': 3}}, got "
                         f"{preprocessing!r}") from None


def _check_mask(mask: Any, tile: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (tile, tile):
        raise ValueError(f"`mask` must have the tile's shape ({tile}, {tile}), got {mask.shape}")
    if mask.dtype != bool:
        values = as_float32(mask, "mask")
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"`mask` must hold only 0/1 or True/False, got values in "
                             f"[{values.min()}, {values.max()}]; threshold it, e.g. mask > 0.5")
    return np.array(mask, bool)


def _check_same_apix(apix: float, other: float, *, what: str) -> None:
    if abs(other - apix) <= _APIX_RTOL * apix:
        return
    if other < apix:
        hint = (f"bin it by {apix / other:.3g} with `tomowidgets.preprocess.bin` "
                "before preprocessing")
    else:
        hint = ("build a separate set, or take every tomogram to that voxel size with "
                "`tomowidgets.preprocess.bin`")
    raise ValueError(f"{what} has {other:.4g} Å/voxel but the training set holds tiles at "
                     f"{apix:.4g} Å/voxel (fixed by its first tile); {hint}")


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _pick_positives(label: np.ndarray, n: int, tile: int, rng: np.random.Generator) -> list:
    """Centres of >= 1 %-labelled tiles on labelled voxels, greedily spread apart in 3D."""
    h = tile // 2
    inner = label[:, h:label.shape[1] - h + 1, h:label.shape[2] - h + 1]
    flat = np.flatnonzero(inner)
    picks = rng.choice(flat, size=min(flat.size, 50 * n), replace=False)
    zs, ys, xs = np.unravel_index(picks, inner.shape)
    cand = np.stack([zs, ys + h, xs + h], axis=1)
    frac = np.array([label[z, y - h:y + h, x - h:x + h].mean() for z, y, x in cand])
    cand = cand[frac >= _MIN_POSITIVE_FRACTION]
    chosen: list = []
    for sep in (tile / 2, tile / 4, tile / 8, 1.0):
        for c in cand:
            if len(chosen) == n:
                return chosen
            if not chosen or ((np.array(chosen) - c) ** 2).sum(axis=1).min() >= sep**2:
                chosen.append(tuple(int(v) for v in c))
    return chosen


def _pick_negatives(label: np.ndarray, n: int, tile: int, rng: np.random.Generator) -> list:
    """Random distinct centres of tiles with no labelled voxel (then <= 0.5 % if too few)."""
    h = tile // 2
    nz, ny, nx = label.shape
    size = 50 * n
    if n == 0:
        return []
    cand = np.stack([rng.integers(0, nz, size), rng.integers(h, ny - h + 1, size),
                     rng.integers(h, nx - h + 1, size)], axis=1)
    cand = cand[np.sort(np.unique(cand, axis=0, return_index=True)[1])]
    frac = np.array([label[z, y - h:y + h, x - h:x + h].mean() for z, y, x in cand])
    clean = cand[frac == 0]
    if len(clean) < n:
        clean = np.concatenate([clean, cand[(frac > 0) & (frac <= _NEGATIVE_TOLERANCE)]])
    return [tuple(int(v) for v in c) for c in clean[:n]]


def _perturb(mask: np.ndarray, perturb: int, rng: np.random.Generator) -> np.ndarray:
    """Dilate or erode `mask` by a random 0..`perturb` pixels (keeping it non-empty)."""
    k = int(rng.integers(-perturb, perturb + 1)) if perturb else 0
    if k > 0:
        out = ndimage.binary_dilation(mask, iterations=k)
    elif k < 0:  # border_value=1: a feature crossing the tile edge is not eroded from the edge
        out = ndimage.binary_erosion(mask, iterations=-k, border_value=1)
    else:
        out = mask
    return out if out.any() else mask
