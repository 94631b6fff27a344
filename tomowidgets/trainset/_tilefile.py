"""The ``*.tiles.npz`` file format of :class:`tomowidgets.trainset.TrainingSet`.

A compressed ``.npz`` with arrays ``images`` (n, tile, tile) float32, ``masks`` (n, tile, tile) bool
and ``metadata`` (UTF-8 JSON as uint8) carrying :data:`FORMAT`, :data:`FORMAT_VERSION` and the set's
metadata; a 2.5D set (metadata ``context`` = k > 0) adds ``slices`` (n, 2k + 1, tile, tile) float32.
Nothing is pickled, in either direction.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from tomowidgets._validate import check_finite
from tomowidgets.io import atomic_path
from tomowidgets.trainset._checks import frozen

FORMAT = "tomowidgets.TrainingSet"  #: marker stored in every saved set's metadata
FORMAT_VERSION = 1
#: Version of sets with neighbouring slices (``context`` > 0): older tomowidgets refuse them
#: rather than load them as 2D sets.
CONTEXT_VERSION = 2
KINDS = ("positive", "negative")
#: Largest unpacked metadata (JSON of the tile records: ~100 bytes a tile) and .npy header accepted.
_MAX_METADATA_BYTES = 64 * 2**20
_NPY_HEADER_BYTES = 4096
_LOAD_ERRORS = (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)

T = TypeVar("T")


def save_tiles(path: str | os.PathLike, records: Sequence[Any], tile: int,
               metadata: Mapping[str, Any]) -> Path:
    """Write the images and masks of `records` (TileRecords) and `metadata` to `path` atomically."""
    path = Path(path)
    images = np.stack([r.image for r in records]) if records else np.zeros((0, tile, tile), np.float32)
    masks = np.stack([r.mask for r in records]) if records else np.zeros((0, tile, tile), bool)
    # Any, not ndarray: numpy's stub would otherwise match **arrays against savez's `allow_pickle: bool`
    arrays: dict[str, Any] = {"images": images, "masks": masks}
    context = metadata.get("context", 0)
    if context:
        arrays["slices"] = (np.stack([r.slices for r in records]) if records
                            else np.zeros((0, 2 * context + 1, tile, tile), np.float32))
    version = CONTEXT_VERSION if context else FORMAT_VERSION
    meta = json.dumps({"format": FORMAT, "version": version, **metadata})
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays, metadata=np.frombuffer(meta.encode("utf-8"), np.uint8))
    return path


def load_tiles(path: str | os.PathLike,
               build: Callable[[np.ndarray, np.ndarray, np.ndarray | None, dict], T]) -> T:
    """Read a file written by :func:`save_tiles`; return ``build(images, masks, slices, metadata)``
    (``slices`` None for a 2D set).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not a tomowidgets training set, or is truncated or corrupt; also wraps the
        ValueError, KeyError and TypeError that `build` raises for inconsistent contents.
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
            _check_unpacked_size(npz.zip, "metadata", _MAX_METADATA_BYTES)
            meta = json.loads(npz["metadata"].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("its metadata has no tomowidgets training-set marker")
            if meta.get("version") not in (FORMAT_VERSION, CONTEXT_VERSION):
                raise ValueError(f"format version {meta.get('version')!r} is not "
                                 f"{FORMAT_VERSION} or {CONTEXT_VERSION}; upgrade tomowidgets")
            # nothing larger than the recorded tiles need is unpacked (a zip bomb stops here)
            pixels = len(meta["tiles"]) * int(meta["tile"]) ** 2
            _check_unpacked_size(npz.zip, "images", 4 * pixels)
            _check_unpacked_size(npz.zip, "masks", pixels)
            images, masks = npz["images"], npz["masks"]
            slices = None
            if "slices" in npz.files:
                _check_unpacked_size(npz.zip, "slices",
                                     4 * pixels * (2 * int(meta.get("context", 0)) + 1))
                slices = npz["slices"]
        return build(images, masks, slices, meta)
    except _LOAD_ERRORS as err:
        raise ValueError(f"{bad}, or it is corrupt ({type(err).__name__}: {err})") from None


def unpack_tiles(images: np.ndarray, masks: np.ndarray, slices: np.ndarray | None, meta: dict,
                 tile: int, context: int) -> list[tuple[Any, ...]]:
    """Check loaded arrays against `meta`; return ``(kind, centre, source, image, mask, slices,
    painted, lender)`` per tile (``painted`` is False and ``lender`` a feature name only where the
    record says so: older files have neither).

    The arrays are read-only copies, ready for a TileRecord. Raises ValueError (or KeyError,
    TypeError) when the arrays and the tile records disagree.
    """
    shape = (len(meta["tiles"]), tile, tile)
    if images.shape != shape or masks.shape != shape or images.dtype != np.float32 \
            or masks.dtype != bool:
        raise ValueError(f"arrays {images.shape} {images.dtype} / {masks.shape} {masks.dtype} "
                         f"do not hold {shape[0]} tiles of {tile}×{tile}")
    check_finite(images, "images")
    if context:
        want = (shape[0], 2 * context + 1, tile, tile)
        if slices is None or slices.shape != want or slices.dtype != np.float32:
            found = "none" if slices is None else f"{slices.shape} {slices.dtype}"
            raise ValueError(f"array 'slices' should hold {want} float32 for context {context}, "
                             f"found {found}")
        check_finite(slices, "slices")
    # with a context, `slices` was checked above (cast: mypy does not carry that narrowing here)
    per_tile = [None] * shape[0] if not context else [frozen(s.copy()) for s in cast(np.ndarray, slices)]
    tiles = []
    for info, image, mask, around in zip(meta["tiles"], images, masks, per_tile, strict=True):
        centre = tuple(int(c) for c in info["centre"])
        painted, lender = info.get("painted", True), info.get("lender")
        problem = _record_problem(info["kind"], centre, bool(mask.any()), painted, lender)
        if problem:
            raise ValueError(f"tile record {info!r} {problem}")
        source = info["source"] if info["source"] is None else str(info["source"])
        tiles.append((info["kind"], centre, source, frozen(image.copy()), frozen(mask.copy()),
                      around, painted, lender))
    return tiles


def _record_problem(kind: Any, centre: tuple, painted_any: bool, painted: Any, lender: Any) -> str:
    """What is wrong with one tile record ('' if nothing): each field, and the record against its
    mask (a positive has painted voxels, a negative none)."""
    if kind not in KINDS:
        return f"has kind {kind!r}, not one of {KINDS}"
    if len(centre) != 3:
        return f"has a centre of {len(centre)} coordinates, not (z, y, x)"
    if painted_any != (kind == "positive"):
        return "is inconsistent with its mask (a positive is painted, a negative is not)"
    if painted not in (True, False):
        return f"has 'painted' {painted!r}, not true or false"
    if not painted and kind != "positive":
        return "has 'painted' false, which only a positive tile may have (a placeholder mask)"
    if lender is not None and not (isinstance(lender, str) and kind == "negative"):
        return "names a lender, which only a negative tile borrowed from another feature may have"
    return ""


def _check_unpacked_size(archive: zipfile.ZipFile, name: str, data_bytes: int) -> None:
    """Refuse a member whose declared unpacked size exceeds `data_bytes` plus an .npy header
    (zipfile never unpacks more than a member declares)."""
    size = archive.getinfo(f"{name}.npy").file_size
    if size > data_bytes + _NPY_HEADER_BYTES:
        raise ValueError(f"array '{name}' would unpack to {size:,} bytes, more than the "
                         f"{data_bytes:,} its tile records need")


def _as_npz(loaded: Any) -> Any:
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("it holds a single .npy array, not an .npz archive")
    return loaded
