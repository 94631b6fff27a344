"""Training sets: the annotated tiles one feature's network learns from (Chen et al. 2017).

A :class:`TrainingSet` holds square tiles cut from single slices of *preprocessed* tomograms: ~10
positive tiles, each with a painted boolean mask of the feature, and ~100 negative tiles without it.
:meth:`TrainingSet.training_arrays` turns them into what the network trains on (each negative in
:data:`NEGATIVE_COPIES` random in-plane rotations, as EMAN2 does, and the positives replicated the
same way until they balance the negatives; labels shrunk 2x to the network's output grid). Sets
are saved as ``*.tiles.npz`` files without pickles.

Tile geometry: a tile of (even) size ``tile`` centred at voxel ``(z, y, x)`` holds rows
``y - tile//2 .. y + tile//2 - 1`` and columns ``x - tile//2 .. x + tile//2 - 1`` of slice ``z``; the
centre voxel is element ``[tile//2, tile//2]`` of the tile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tomowidgets._validate import as_float32, check_count, check_positive, same_voxel_size
from tomowidgets.trainset._checks import (
    check_combinable,
    check_index,
    check_painted_mask,
    check_preprocessing,
    check_same_apix,
    check_tile,
    check_tomogram,
    cut_slices,
    cut_tile,
    frozen,
)
from tomowidgets.trainset._sampling import BLUR as BLUR
from tomowidgets.trainset._sampling import NEGATIVE_COPIES as NEGATIVE_COPIES
from tomowidgets.trainset._sampling import SCALE as SCALE
from tomowidgets.trainset._sampling import ground_truth_tiles, training_examples
from tomowidgets.trainset._tilefile import FORMAT as FORMAT
from tomowidgets.trainset._tilefile import FORMAT_VERSION as FORMAT_VERSION
from tomowidgets.trainset._tilefile import KINDS as KINDS
from tomowidgets.trainset._tilefile import load_tiles, save_tiles, unpack_tiles

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.io import Tomogram

__all__ = ["BLUR", "NEGATIVE_COPIES", "SCALE", "TileRecord", "TrainingSet", "competing", "shrink_labels"]


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
    slices : ndarray of shape (2k + 1, tile, tile), float32, or None
        For a set with ``context = k``: the tile in slices ``z - k .. z + k`` (the end slice of
        the tomogram repeats beyond it); ``slices[k]`` is `image`. None for a 2D set.
    painted : bool, default True
        False for a positive whose mask is still a placeholder (the TileSelector's disk) that
        nobody has painted: training leaves such a tile out.
    lender : str or None, default None
        For a negative borrowed from another feature's positives
        (:meth:`TrainingSet.with_competitors`): that feature, whose magnification its augmented
        copies get (``training_arrays(lent_scale=...)``). Saved with the set, so a saved competing
        set trains as it would have before saving.
    """

    kind: str
    centre: tuple[int, int, int]
    source: str | None
    image: np.ndarray
    mask: np.ndarray
    slices: np.ndarray | None = None
    painted: bool = True
    lender: str | None = None

    @property
    def inputs(self) -> np.ndarray:
        """What the network reads: `image`, or `slices` as channels ``(tile, tile, 2k + 1)``."""
        return self.image if self.slices is None else np.moveaxis(self.slices, 0, -1)

    def __repr__(self) -> str:
        z, y, x = self.centre
        n = self.image.shape[0]
        painted = ""
        if self.kind == "positive":
            painted = (f", {int(self.mask.sum())} px painted" if self.painted
                       else ", placeholder mask: not painted yet")
        context = "" if self.slices is None else f", ±{len(self.slices) // 2} slices"
        lender = "" if self.lender is None else f", borrowed from {self.lender!r}"
        return (f"TileRecord({self.kind}, {n}×{n}{context}, centre=(z={z}, y={y}, x={x}), "
                f"source={self.source!r}{painted}{lender})")


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
    context : int, default 0
        For a 2.5D network (``FeatureNet(context=k)``): each tile also keeps the same square in
        the `context` slices above and below (:attr:`TileRecord.slices`); masks are painted on
        the centre slice only, as for a 2D set.

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
    >>> x, y = ts.training_arrays(rng=0)  # 3 rotated copies of each tile
    >>> x.shape, y.shape
    ((6, 16, 16), (6, 8, 8))
    """

    def __init__(self, tile: int = 64, *, feature: str | None = None, apix: float | None = None,
                 preprocessing: Mapping[str, Any] | None = None, context: int = 0) -> None:
        self._tile = check_tile(tile)
        self._context = check_count(context, "context")
        if feature is not None and not isinstance(feature, str):
            raise ValueError(f"`feature` must be a name such as 'membrane', got {feature!r}")
        self._feature = feature
        self._apix = None if apix is None else check_positive(apix, "apix")
        self._preprocessing = check_preprocessing(preprocessing)
        self._records: list[TileRecord] = []

    # -- state ---------------------------------------------------------------------------------
    tile = property(lambda self: self._tile, doc="Tile edge in voxels.")
    feature = property(lambda self: self._feature, doc="Feature name, or None.")
    context = property(lambda self: self._context,
                       doc="Slices kept above and below each tile (0: a 2D set).")
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
    unpainted = property(lambda self: tuple(i for i, r in enumerate(self._records) if not r.painted),
                         doc="Indices of the positive tiles whose mask is still a placeholder "
                             "(left out of training until painted).")

    @property
    def centres(self) -> NDArray[np.int64]:
        """Tile centres, read-only int array of shape (n, 3): voxel ``(z, y, x)``."""
        return frozen(np.array([r.centre for r in self._records], np.int64).reshape(-1, 3))

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able description: voxel size (Å), tile size, feature, preprocessing, sources, tiles."""
        return {
            "feature": self._feature, "tile": self._tile, "apix": self._apix,
            "context": self._context,
            "preprocessing": self.preprocessing,
            "n_positive": self.n_positive, "n_negative": self.n_negative,
            "sources": sorted({r.source for r in self._records if r.source is not None}),
            "tiles": [{"kind": r.kind, "centre": list(r.centre), "source": r.source,
                       **({} if r.painted else {"painted": False}),
                       **({} if r.lender is None else {"lender": r.lender})} for r in self._records],
        }

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TileRecord]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> TileRecord:
        return self._records[check_index(index, len(self._records))]

    def __repr__(self) -> str:
        name = f"{self._feature!r}, " if self._feature else ""
        at = f" at {self._apix:.4g} Å/voxel" if self._apix else ""
        t = self._tile
        context = f", context ±{self._context} slices" if self._context else ""
        todo = f" ({len(self.unpainted)} not painted yet)" if self.unpainted else ""
        return (f"TrainingSet({name}{self.n_positive} positive{todo} + {self.n_negative} negative "
                f"tiles of {t}×{t}{at}{context})")

    # -- editing -------------------------------------------------------------------------------
    def add_positive(self, tomo: Tomogram, z: int, y: int, x: int, mask: ArrayLike, *,
                     painted: bool = True) -> int:
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
        painted : bool, default True
            False when `mask` is only a placeholder still to be painted (as the TileSelector's
            disk): the tile is listed in :attr:`unpainted` and left out of training until
            :meth:`replace_mask` paints it.

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
        mask = check_painted_mask(mask, self._tile, if_empty="a tile without the feature is a "
                                  "negative: use add_negative(tomo, z, y, x) instead")
        return self._add("positive", tomo, (z, y, x), mask, painted=bool(painted))

    def add_negative(self, tomo: Tomogram, z: int, y: int, x: int) -> int:
        """Add the tile centred at voxel ``(z, y, x)`` of `tomo` as an example without the feature.

        Parameters and errors are those of :meth:`add_positive`, without the mask. Returns the index.
        """
        return self._add("negative", tomo, (z, y, x), np.zeros((self._tile,) * 2, bool))

    def remove(self, index: int) -> TileRecord:
        """Remove tile `index` (later tiles move down by one) and return it (for an undo).

        Raises IndexError for an index out of range, TypeError for a non-integer.
        """
        return self._records.pop(check_index(index, len(self._records)))

    def replace_mask(self, index: int, mask: ArrayLike, *, painted: bool = True) -> None:
        """Replace the painted mask of positive tile `index` (the mask painter calls this per stroke).

        The tile then counts as painted, unless `painted` is False (an undo back to the placeholder).

        Raises
        ------
        ValueError
            If the tile is a negative, or `mask` has the wrong shape, non-0/1 values or is empty.
        """
        i = check_index(index, len(self._records))
        if self._records[i].kind != "positive":
            raise ValueError(f"tile {i} is a negative and has no mask; to annotate it, remove({i}) "
                             "and add it again with add_positive(tomo, z, y, x, mask)")
        mask = check_painted_mask(mask, self._tile, if_empty=f"to make tile {i} a negative, call "
                                  f"remove({i}) and then add_negative(tomo, z, y, x)")
        self._records[i] = replace(self._records[i], mask=frozen(mask), painted=bool(painted))

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
        feature, apix, prep = check_combinable(sets)
        out = cls(sets[0].tile, feature=feature, apix=apix, preprocessing=prep,
                  context=sets[0].context)
        out._records = [r for s in sets for r in s._records]
        return out

    def split(self, fraction: float = 0.2, *, rng: int | np.random.Generator | None = None
              ) -> tuple[TrainingSet, TrainingSet]:
        """Two new sets: the tiles to train on and `fraction` of them held out to judge the network.

        ``round(fraction * n)`` of the painted positive tiles (at least 1) and of the negative
        tiles are drawn at random and held out; the rest, with any unpainted positive, are kept.
        A network trained on the first set and scored on the second shows how it does on tiles it
        never saw (:func:`tomowidgets.network.check_reliability`).

        Parameters
        ----------
        fraction : float, default 0.2
            Share of the tiles of each kind held out, in (0, 1).
        rng : int or numpy.random.Generator, optional
            Seed or generator of the draw; a fixed seed gives the same split.

        Returns
        -------
        kept, held_out : TrainingSet
            Both with this set's feature, voxel size, preprocessing and context.

        Raises
        ------
        ValueError
            If `fraction` is not in (0, 1), or the set has fewer than 2 painted positive tiles (one
            to train on and one to hold out).
        """
        if not isinstance(fraction, int | float) or not 0 < fraction < 1:
            raise ValueError(f"`fraction` must lie in (0, 1), got {fraction!r}; e.g. 0.2 holds out "
                             "a fifth of the tiles")
        positives = [i for i, r in enumerate(self._records) if r.kind == "positive" and r.painted]
        negatives = [i for i, r in enumerate(self._records) if r.kind == "negative"]
        if len(positives) < 2:
            raise ValueError(f"the {self._feature or 'training'} set has {len(positives)} painted "
                             "positive tile(s); holding tiles out needs at least 2 (one to train "
                             "on, one to judge by); paint more positive tiles")
        rng = np.random.default_rng(rng)
        held: set[int] = set()
        for indices in (positives, negatives):
            # at least one of each kind held out, and at least one kept to train on
            n = min(len(indices) - 1, max(1, round(fraction * len(indices))))
            if n > 0:
                held.update(rng.choice(indices, n, replace=False).tolist())
        kept_set, held_set = (TrainingSet(self.tile, feature=self.feature, apix=self.apix,
                                          preprocessing=self.preprocessing, context=self.context)
                              for _ in range(2))
        kept_set._records = [r for i, r in enumerate(self._records) if i not in held]
        held_set._records = [r for i, r in enumerate(self._records) if i in held]
        return kept_set, held_set

    def with_competitors(self, others: Iterable[TrainingSet]) -> TrainingSet:
        """A new set with this set's tiles plus every positive tile of `others` as a negative.

        Networks trained this way compete in the merge: each has seen the other features'
        annotated tiles as "not me", so two networks rarely both score high on one structure
        (the paper notes that merging lets networks compete, but each was trained alone). A
        positive tile of another feature that also shows this feature would teach the wrong
        thing, so such tiles (overlapping one of this set's positive tiles by more than half a
        tile, same tomogram and slice) are skipped.

        Parameters
        ----------
        others : iterable of TrainingSet
            The other features' sets, same tile and voxel size (e.g. all sets but this one).

        Returns
        -------
        TrainingSet
            This set's feature, metadata and tiles, then the borrowed negatives.

        Raises
        ------
        ValueError
            If a set differs in tile or voxel size, or is this set's own feature.
        """
        others = list(others)
        borrowed = []
        mine = [r for r in self._records if r.kind == "positive"]
        for other in others:
            if not isinstance(other, TrainingSet):
                raise ValueError(f"`others` must hold TrainingSets, got {type(other).__name__}")
            other_grid = not (other.apix and self.apix) or same_voxel_size(other.apix, self.apix)
            if other.tile != self.tile or not other_grid or other.context != self.context:
                raise ValueError(f"the {other.feature or 'unnamed'} set has {other.tile}² tiles at "
                                 f"{other.apix} Å/voxel, context {other.context}, but this set has "
                                 f"{self.tile}² at {self.apix}, context {self.context}; competing "
                                 "sets must share tile size, voxel size and context")
            if other is self or (other.feature is not None and other.feature == self.feature):
                raise ValueError(f"`others` includes this set's own feature {self.feature!r}; pass "
                                 "the other features' sets only")
            for r in other._records:
                if r.kind == "positive" and not any(_overlaps(r, m, self.tile) for m in mine):
                    borrowed.append(replace(r, kind="negative", mask=frozen(np.zeros_like(r.mask)),
                                            painted=True, lender=other.feature))
        out = TrainingSet(self.tile, feature=self.feature, apix=self.apix,
                          preprocessing=self.preprocessing, context=self.context)
        out._records = [*self._records, *borrowed]
        return out

    def with_context(self, context: int, tomo: Tomogram) -> TrainingSet:
        """The same tiles and masks, cut again from `tomo` with `context` slices above and below.

        To try a 2.5D network (``FeatureNet(context=k)``) on a set annotated for a 2D one, without
        painting again (or back to 2D with ``context=0``).

        Parameters
        ----------
        context : int
            Slices kept above and below each tile.
        tomo : Tomogram
            The preprocessed tomogram the tiles were cut from.

        Returns
        -------
        TrainingSet

        Raises
        ------
        ValueError
            If a tile comes from another tomogram file than `tomo`, its voxels differ from `tomo`'s
            (another tomogram, or preprocessed otherwise), or `tomo` has another voxel size.
        """
        source = None if tomo.path is None else str(tomo.path)
        others = sorted({r.source for r in self._records if r.source not in (None, source)})
        if others and source is not None:
            raise ValueError(f"tiles of this set come from {others}, not from '{source}'; re-cut "
                             "the tiles of one tomogram at a time (split the set by source)")
        out = TrainingSet(self.tile, feature=self.feature, apix=self.apix,
                          preprocessing=self.preprocessing, context=context)
        for i, r in enumerate(self._records):
            if r.kind == "positive":
                out.add_positive(tomo, *r.centre, r.mask, painted=r.painted)
            else:
                out.add_negative(tomo, *r.centre)
            if not np.array_equal(out._records[-1].image, r.image):
                raise ValueError(f"tile {i} at {r.centre} differs from `tomo` there: pass the "
                                 "preprocessed tomogram the tiles were cut from")
            out._records[-1] = replace(out._records[-1], lender=r.lender)
        return out

    # -- training arrays -----------------------------------------------------------------------
    def training_arrays(self, *, rng: int | np.random.Generator | None = None, balance: bool = True,
                        copies: int | None = None, augment_negatives: bool = False,
                        negative_copies: int = NEGATIVE_COPIES, scale: float = SCALE,
                        blur: float = BLUR, lent_scale: Mapping[str, float] | None = None,
                        ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Images and labels to train the network on, augmented, balanced and shuffled.

        Each positive tile appears once as annotated plus ``copies - 1`` times rotated in-plane by
        random angles in [0°, 360°) about its centre, its mask rotated identically; each negative
        once as picked plus ``negative_copies - 1`` times rotated likewise. The result is shuffled.

        Parameters
        ----------
        rng : int or numpy.random.Generator, optional
            Seed or generator for the angles and the shuffle; a fixed seed gives identical arrays.
        balance : bool, default True
            Choose ``copies = round(negative_copies * n_negative / n_positive)`` (at least 1), so
            positives and negatives are roughly equal in number, as in the paper. False:
            ``copies = 1``.
        copies : int, optional
            Instances per positive tile; overrides `balance`.
        augment_negatives : bool, default False
            Also rotate each negative instance by a random multiple of 90° and maybe flip it
            (exact, no interpolation).
        negative_copies : int, default NEGATIVE_COPIES (3)
            Instances per negative tile, as EMAN2's ``e2tomoseg_buildtrainset.py --ncopy``
            (default 10). With the paper's fixed schedule (20 epochs, batches of 20, learning rate
            0.01 decayed 10 % per epoch) this sets the number of SGD steps: 1 leaves the network
            under-trained and unsure (see :data:`NEGATIVE_COPIES`).
        scale : float, default SCALE
            Largest relative magnification of the augmented copies: each rotated copy is also
            magnified by a random factor in ``[1 / (1 + scale), 1 + scale]`` (log-uniform), so the
            network learns the feature a little thinner/thicker and closer/further apart than in
            the few annotated tiles (e.g. the 10-16 nm spacing of a double membrane). 0 rotates
            only, as the paper.
        blur : float, default BLUR (0)
            Largest Gaussian blur of the augmented copies, sd in pixels, in [0, 4]: each copy is
            smoothed by a random sd in ``[0, blur]``, so the network does not rely on the finest
            detail of the annotated tomogram, which another reconstruction may not have.
        lent_scale : mapping of str to float, optional
            Magnification by lending feature for the negatives borrowed from other features'
            sets (:meth:`with_competitors`): a borrowed tile's copies are magnified by up to the
            larger of `scale` and its lender's value, so that a network learns to reject every
            size of the other feature that the other feature's network learns to accept (e.g.
            ``{"double_membrane": 0.4}``). Default none: `scale` for every tile.

        Returns
        -------
        x : ndarray of shape (n, tile, tile), float32
            Tile images; ``(n, tile, tile, 2 * context + 1)`` for a 2.5D set (the neighbouring
            slices as channels, rotated together).
        y : ndarray of shape (n, tile//2, tile//2), float32
            Labels in [0, 1]: the fraction of painted pixels in each 2×2 block (:func:`shrink_labels`).

        Raises
        ------
        ValueError
            If the set is empty or has no positive tile, `copies` or `negative_copies` is not an
            integer >= 1, `scale` is not in [0, 1) or `blur` not in [0, 4].

        Notes
        -----
        The corners of a rotated tile are filled by reflecting the tile at its edges, in the image
        and the mask alike, so labels stay consistent with the pixels (the painted mask does not
        extend beyond the tile, so real surrounding voxels would have unknown labels). Images are
        interpolated linearly; masks linearly, then thresholded at 0.5.
        """
        x, masks = training_examples(self._records, rng=rng, balance=balance, copies=copies,
                                     augment_negatives=augment_negatives,
                                     negative_copies=negative_copies, scale=scale, blur=blur,
                                     lent_scale=lent_scale)
        return x, shrink_labels(masks)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the set to `path` (conventionally ``<feature>.tiles.npz``) atomically.

        The file is a compressed ``.npz`` with arrays ``images`` (n, tile, tile) float32, ``masks``
        (n, tile, tile) bool and ``metadata`` (UTF-8 JSON of :attr:`metadata` as uint8); a 2.5D
        set adds ``slices`` (n, 2 * context + 1, tile, tile) float32. No pickles.
        The name is used as given (no suffix is added). Returns the path.
        """
        return save_tiles(path, self._records, self._tile, self.metadata)

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
        return load_tiles(path, cls._from_arrays)

    @classmethod
    def _from_arrays(cls, images: np.ndarray, masks: np.ndarray, slices: np.ndarray | None,
                     meta: dict) -> TrainingSet:
        ts = cls(meta["tile"], feature=meta["feature"], apix=meta["apix"],
                 preprocessing=meta["preprocessing"], context=meta.get("context", 0))
        ts._records = [TileRecord(*tile)
                       for tile in unpack_tiles(images, masks, slices, meta, ts.tile, ts.context)]
        return ts

    # -- ground truth --------------------------------------------------------------------------
    @classmethod
    def from_ground_truth(cls, tomo: Tomogram, label: ArrayLike, *, feature: str | None,
                          n_positive: int = 10, n_negative: int = 100,
                          rng: int | np.random.Generator | None = None, tile: int = 64,
                          perturb: int = 0, preprocessing: Mapping[str, Any] | None = None,
                          decoys: ArrayLike | None = None, context: int = 0) -> TrainingSet:
        """Play the annotator from a known label volume (for tests, benchmarks and tutorials).

        Positives are centred on random labelled voxels whose tile has >= 1 % labelled pixels,
        taken in turn from each connected object of the label (each vesicle, the cell membrane,
        ...) so they span the feature's variations as the paper asks of a human, and at least
        ``tile/2`` voxels apart in 3D (relaxed to ``tile/4``, ``tile/8``, 1 if too few exist); their
        masks are the label's slice in the tile. Negatives are random tiles (fully inside the
        volume) holding no labelled voxel; if too few exist, tiles with <= 0.5 % labelled voxels
        complete them. With `decoys`, half of the negatives are centred on decoy voxels instead,
        the way a person clicks other structures to show the network what the feature is not;
        given one volume per kind of structure, half of those are shared evenly between the kinds,
        so a few small complexes are shown as well as the large membranes.

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
        decoys : bool array of shape (z, y, x), or a list of them, optional
            Voxels of other structures (e.g. the union of the other features' labels, or one
            volume per feature); half of the negatives are centred on them (still holding no voxel
            of `label`), in proportion to their voxels, except that with a list a quarter of the
            negatives are shared evenly between its volumes.
        context : int, default 0
            Neighbouring slices kept with each tile, as for the constructor.

        Returns
        -------
        TrainingSet

        Raises
        ------
        ValueError
            If `label` is empty, not boolean or of another shape, a `decoys` volume is of another
            shape, or the tiles cannot be found.
        """
        check_tomogram(tomo)
        ts = cls(tile, feature=feature, apix=tomo.apix, preprocessing=preprocessing, context=context)
        positives, negatives = ground_truth_tiles(label, tomo.shape, ts.tile, n_positive=n_positive,
                                                  n_negative=n_negative, perturb=perturb, rng=rng,
                                                  decoys=decoys)
        for (z, y, x), mask in positives:
            ts.add_positive(tomo, z, y, x, mask)
        for z, y, x in negatives:
            ts.add_negative(tomo, z, y, x)
        return ts

    # -- internals -----------------------------------------------------------------------------
    def _add(self, kind: str, tomo: Tomogram, centre: tuple, mask: np.ndarray, *,
             painted: bool = True) -> int:
        image, centre = cut_tile(tomo, centre, self._tile)
        slices = cut_slices(tomo, centre, self._tile, self._context) if self._context else None
        if self._apix is None:
            self._apix = float(tomo.apix)
        else:
            check_same_apix(self._apix, tomo.apix, what="`tomo`")
        source = None if tomo.path is None else str(tomo.path)
        self._records.append(TileRecord(kind, centre, source, frozen(image), frozen(mask),
                                        None if slices is None else frozen(slices), painted))
        return len(self._records) - 1


def competing(sets: Mapping[str, TrainingSet]) -> dict[str, TrainingSet]:
    """Every feature's set with the other features' positive tiles as extra negatives.

    What to train on when several features' networks will be merged: each network learns that
    the others' annotated structures are "not me" (:meth:`TrainingSet.with_competitors`). On
    unseen synthetic cells this cut cross-talk between features from 5.0 % to 2.5 % and raised
    microtubule Dice (README, #16), for about a third more training time (more negatives).
    Only features that exclude one another should compete: a region that holds the others (the
    cytoplasm, full of ribosomes) would teach them that their own structures are "not me".

    Parameters
    ----------
    sets : mapping of str to TrainingSet
        One set per feature (e.g. ``{"membrane": ..., "ribosome": ...}``), same tile and voxel size.

    Returns
    -------
    dict of str to TrainingSet
        The same keys, each set with the others' positives borrowed as negatives; a single set
        comes back unchanged.

    Raises
    ------
    ValueError
        As :meth:`TrainingSet.with_competitors` (tile or voxel sizes differ, a feature twice).
    """
    return {name: ts.with_competitors([o for other, o in sets.items() if other != name])
            for name, ts in sets.items()}


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


def _overlaps(a: TileRecord, b: TileRecord, tile: int) -> bool:
    """Whether two tiles of one slice of one tomogram share more than half a tile's width each way."""
    (za, ya, xa), (zb, yb, xb) = a.centre, b.centre
    return a.source == b.source and za == zb and abs(ya - yb) < tile / 2 and abs(xa - xb) < tile / 2
