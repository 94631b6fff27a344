"""Argument checks of :class:`tomowidgets.trainset.TrainingSet`, and cutting a checked tile.

Every check names the argument, shows its value and says how to fix it (house style 11).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from tomowidgets._validate import as_float32, check_finite, same_voxel_size
from tomowidgets.io import Tomogram, context_indices


def frozen(array: np.ndarray) -> np.ndarray:
    """Make `array` read-only (in place) and return it."""
    array.flags.writeable = False
    return array


def cut_tile(tomo: Tomogram, centre: tuple, tile: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Copy the tile centred at `centre` = (z, y, x) as float32, checking bounds and values."""
    check_tomogram(tomo)
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


def cut_slices(tomo: Tomogram, centre: tuple, tile: int, context: int) -> np.ndarray:
    """The tile at a checked `centre` in slices ``z - context .. z + context``, (2 context + 1,
    tile, tile) float32; beyond the tomogram's ends the end slice repeats (as ``Tomogram.slab``)."""
    z, y, x = centre
    h = tile // 2
    wanted = context_indices(z, z + 1, context, tomo.shape[0])
    # fancy indexing copies: never a view of the tomogram
    slices = as_float32(np.asarray(tomo.data[wanted, y - h:y + h, x - h:x + h]), "tomo")
    check_finite(slices, "tomo", where=f"the slices around the tile at (z={z}, y={y}, x={x})")
    return slices


def check_tomogram(tomo: Any) -> None:
    """Raise ValueError unless `tomo` is a :class:`tomowidgets.Tomogram`."""
    if not isinstance(tomo, Tomogram):
        raise ValueError(f"`tomo` must be a tomowidgets.Tomogram (voxels and voxel size), got "
                         f"{type(tomo).__name__}; wrap an array as Tomogram(array, apix=...)")


def check_tile(tile: Any) -> int:
    """Return `tile` as int, raising ValueError unless it is an even integer >= 16."""
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 16 or tile % 2:
        raise ValueError(f"`tile` must be even and >= 16 voxels, got {tile!r}; the paper uses 64")
    return int(tile)


def check_preprocessing(preprocessing: Any) -> dict[str, Any] | None:
    """Return a JSON round-tripped copy of the `preprocessing` mapping (None stays None)."""
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


def check_index(index: Any, n: int) -> int:
    """Return `index` of a set of `n` tiles as an int in 0..n-1 (negative counts from the end).

    Raises TypeError for a non-integer and IndexError for an index out of range.
    """
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"`index` must be an integer tile index, got {index!r}")
    if not -n <= cast(int, index) < n:  # cast: int declares no comparison with numbers.Integral
        raise IndexError(f"`index` must be a tile index in 0..{n - 1} (or negative from the "
                         f"end), got {index}; the set holds {n} tiles")
    return int(index) % n


def check_painted_mask(mask: Any, tile: int, *, if_empty: str) -> np.ndarray:
    """Return `mask` as a new bool array with a painted pixel, else raise ValueError.

    `mask` must be a 0/1 (tile, tile) mask; `if_empty` is the fix the message gives for an empty one.
    """
    mask = np.asarray(mask)
    if mask.shape != (tile, tile):
        raise ValueError(f"`mask` must have the tile's shape ({tile}, {tile}), got {mask.shape}")
    if mask.dtype != bool:
        values = as_float32(mask, "mask")
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"`mask` must hold only 0/1 or True/False, got values in "
                             f"[{values.min()}, {values.max()}]; threshold it, e.g. mask > 0.5")
    mask = np.array(mask, bool)
    if not mask.any():
        raise ValueError(f"`mask` has no painted pixel; {if_empty}")
    return mask


def check_same_apix(apix: float, other: float, *, what: str) -> None:
    """Raise ValueError unless voxel size `other` (Å) is the set's `apix` (:func:`same_voxel_size`)."""
    if same_voxel_size(apix, other):
        return
    if other < apix:
        hint = (f"bin it by {apix / other:.3g} with `tomowidgets.preprocess.bin` (any ratio: "
                "`tomowidgets.preprocess.rescale`) before preprocessing")
    else:
        hint = ("build a separate set, or take every tomogram to that voxel size with "
                "`tomowidgets.preprocess.rescale`")
    raise ValueError(f"{what} has {other:.4g} Å/voxel but the training set holds tiles at "
                     f"{apix:.4g} Å/voxel (fixed by its first tile); {hint}")


def check_combinable(sets: Sequence[Any]) -> tuple[str | None, float | None, dict[str, Any] | None]:
    """Check that TrainingSets `sets` can be concatenated; return their feature, apix and preprocessing.

    Unset values are taken from the sets that have them. Raises ValueError if the sets differ in
    tile size, voxel size, feature name or preprocessing.
    """
    first = sets[0]
    feature = next((s.feature for s in sets if s.feature is not None), None)
    apix = next((s.apix for s in sets if s.apix is not None), None)
    prep = next((s.preprocessing for s in sets if s.preprocessing is not None), None)
    for i, s in enumerate(sets):
        if s.tile != first.tile:
            raise ValueError(f"set {i} has {s.tile}-voxel tiles, set 0 has {first.tile}; "
                             "only sets of one tile size can be combined")
        if s.context != first.context:
            raise ValueError(f"set {i} keeps ±{s.context} slices per tile, set 0 ±{first.context}; "
                             "only sets of one context can be combined")
        if s.apix is not None:
            assert apix is not None  # the first set with a voxel size set it, this one at the latest
            check_same_apix(apix, s.apix, what=f"set {i}")
        if s.feature is not None and s.feature != feature:
            raise ValueError(f"set {i} is for feature {s.feature!r}, not {feature!r}; "
                             "train one network per feature")
        if s.preprocessing is not None and s.preprocessing != prep:
            raise ValueError(f"set {i} was preprocessed with {s.preprocessing}, another set "
                             f"with {prep}; preprocess all tomograms alike")
    return feature, apix, prep
