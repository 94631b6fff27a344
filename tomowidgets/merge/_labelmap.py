"""The :class:`LabelMap` container and its files (an int8 MRC plus a JSON sidecar with the names).

Public through :mod:`tomowidgets.merge`. File convention: ``labels.mrc`` holds the labels as MRC mode 0
(int8, 0 = background, ``i`` = ``names[i - 1]``) with the voxel size and origin in the header, and the
names in its header labels when they fit; ``labels.json`` (``path.with_suffix(".json")``) holds the
names, the shape and the voxel size and is the authority when both exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import mrcfile
import numpy as np

from tomowidgets._validate import check_ndim, check_positive
from tomowidgets.io import Tomogram, atomic_path, read_tomogram, write_tomogram

#: Most features a label map holds: labels are stored as int8 (0..127) and 0 is the background.
MAX_FEATURES = 127
#: Name of label 0 in :meth:`LabelMap.counts`; not allowed as a feature name.
BACKGROUND = "background"
_FORMAT = "tomowidgets.LabelMap"
_HEADER_TAG = "tomowidgets LabelMap"
_NAMES_TAG = "tw names:"
#: Slices counted at a time in :meth:`LabelMap.counts` (bounded memory for memory-mapped maps).
_COUNT_SLAB = 32


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON file that keeps a label map's feature names: ``labels.mrc`` -> ``labels.json``."""
    return Path(path).with_suffix(".json")


def check_names(names: Iterable[object], arg_name: str = "names") -> tuple[str, ...]:
    """Return feature names as a tuple, raising ValueError unless they can name labels 1..127."""
    names = tuple(names)
    if not names:
        raise ValueError(f"`{arg_name}` must name at least one feature, e.g. ('membrane', 'ribosome')")
    if len(names) > MAX_FEATURES:
        raise ValueError(
            f"`{arg_name}` has {len(names)} features; a label map holds at most {MAX_FEATURES} "
            "(int8 labels); merge fewer features or split them into several maps"
        )
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip() or not name.isprintable():
            raise ValueError(
                f"feature names in `{arg_name}` must be non-empty printable strings without leading or "
                f"trailing spaces, got {name!r}"
            )
        if name == BACKGROUND:
            raise ValueError(
                f"`{arg_name}` may not contain {BACKGROUND!r}: label 0 is the background; rename the feature"
            )
    checked = cast("tuple[str, ...]", names)  # the loop above made sure every name is a str
    if len(set(checked)) != len(checked):
        dup = sorted({n for n in checked if checked.count(n) > 1})
        raise ValueError(f"feature names in `{arg_name}` must be unique, got {dup} more than once")
    return checked


@dataclass(frozen=True, repr=False, eq=False)
class LabelMap:
    """One label per voxel: 0 = background, ``i`` = feature ``names[i - 1]``.

    Parameters
    ----------
    data : ndarray of uint8, shape (z, y, x)
        Labels 0..``len(names)``; in memory (read-only) or a read-only memory map of the file.
    names : tuple of str
        Feature names; label ``i`` is ``names[i - 1]`` (1 to 127 features).
    apix : float, default 1.0
        Voxel size in Å.
    origin : tuple of 3 floats, default (0, 0, 0)
        Position of voxel (0, 0, 0) in Å, ``(z, y, x)`` (the MRC header's origin).
    path : Path or None
        The MRC file it was written to or read from, if any.

    Raises
    ------
    ValueError
        If `data` is not a 3D uint8 array, a name is invalid (empty, duplicated, ``"background"``), or
        an in-memory `data` holds labels above ``len(names)``.
    """

    data: np.ndarray
    names: tuple[str, ...]
    apix: float = 1.0
    origin: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))
    path: Path | None = None

    def __post_init__(self) -> None:
        check_ndim(self.data, (3,), "data")
        if self.data.dtype != np.uint8:
            raise ValueError(f"`data` must be a uint8 label volume, got dtype {self.data.dtype}; "
                             "use tomowidgets.merge(...) to build one from score maps")
        object.__setattr__(self, "names", check_names(self.names))
        object.__setattr__(self, "apix", check_positive(self.apix, "apix"))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        if not self.is_mmap and self.data.size and int(self.data.max()) > len(self.names):
            raise ValueError(f"`data` holds label {int(self.data.max())} but only {len(self.names)} "
                             f"feature name(s) are given: {list(self.names)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Size in voxels, ``(z, y, x)``."""
        # cast, not an ignore: numpy's stubs type a shape tuple[int, ...] or tuple[Any, ...] by version
        return cast("tuple[int, int, int]", tuple(self.data.shape))

    @property
    def is_mmap(self) -> bool:
        """True when the labels stay in the file and are read on demand."""
        return isinstance(self.data, np.memmap)

    def label(self, name: str) -> int:
        """The label value (1..127) of feature `name`.

        Raises
        ------
        KeyError
            If `name` is not one of :attr:`names`; the message lists them.
        """
        if name not in self.names:
            raise KeyError(f"no feature {name!r} in this label map; it has {list(self.names)}")
        return self.names.index(name) + 1

    def mask(self, name: str) -> np.ndarray:
        """Boolean volume ``(z, y, x)``: True where feature `name` won (``"background"``: no feature).

        Raises
        ------
        KeyError
            If `name` is neither a feature of this map nor ``"background"``.
        """
        value = 0 if name == BACKGROUND else self.label(name)
        return np.asarray(self.data) == value

    def counts(self) -> dict[str, int]:
        """Voxels per label: ``{"background": n0, names[0]: n1, ...}`` (read slab by slab)."""
        total = np.zeros(len(self.names) + 1, np.int64)
        for start in range(0, self.shape[0], _COUNT_SLAB):
            slab = np.asarray(self.data[start:start + _COUNT_SLAB]).ravel()
            total += np.bincount(slab, minlength=total.size)[:total.size]
        return dict(zip((BACKGROUND, *self.names), (int(n) for n in total), strict=True))

    def fractions(self) -> dict[str, float]:
        """Fraction of the volume per label, same keys as :meth:`counts` (they sum to 1)."""
        counts = self.counts()
        size = max(1, sum(counts.values()))
        return {name: n / size for name, n in counts.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the labels to an int8 MRC (mode 0) and the names to ``path.with_suffix(".json")``.

        Both files are written atomically; the names also go into the MRC header labels as
        ``i=name;`` when they fit (printable ASCII without ``;``, at most 8 header lines of 80
        characters), so the map stays readable without its sidecar. A memory-mapped map is copied
        slab by slab.

        Parameters
        ----------
        path : str or PathLike
            The ``.mrc`` file; its sidecar is the same path with suffix ``.json``.

        Returns
        -------
        Path
            The MRC file.

        Raises
        ------
        ValueError
            If `path` ends in ``.json`` (that name is the sidecar's).
        """
        path = _check_mrc_path(path)
        write_tomogram(path, Tomogram(self.data, self.apix, None, self.origin), dtype=np.int8,
                       labels=header_labels(self.names))
        write_sidecar(path, self.names, self.shape, self.apix)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = False) -> LabelMap:
        """Read a label map written by :meth:`save` or :func:`tomowidgets.merge` with ``out=``.

        Parameters
        ----------
        path : str or PathLike
            The ``.mrc`` file. The names come from ``path.with_suffix(".json")``, or from the MRC
            header labels when the sidecar is missing.
        mmap : bool, default False
            Memory-map the labels instead of loading them (no check of the label values then).

        Returns
        -------
        LabelMap
            With the voxel size and origin of the MRC header.

        Raises
        ------
        FileNotFoundError
            If the MRC file is missing, or its sidecar is missing and the header does not list the names.
        ValueError
            If the file is not an int8 (mode 0) MRC, or the sidecar describes another volume (shape or
            names differ from the MRC's).
        """
        path = Path(path)
        tomo = read_tomogram(path, mmap=mmap)
        mode, header = _header_info(path)
        if mode != 0:
            raise ValueError(f"'{path}' is not a label map: it has MRC mode {mode}, not 0 (int8); "
                             "label maps come from LabelMap.save or tomowidgets.merge(..., out=...)")
        names = _names_for(path, tomo.shape, header)
        if mmap:
            data = tomo.data.view(np.uint8)
        else:
            if tomo.data.size and tomo.data.min() < 0:
                raise ValueError(f"'{path}' holds negative values, so it is not a label map")
            data = tomo.data.astype(np.uint8)
            data.flags.writeable = False
        return cls(data, names, tomo.apix, tomo.origin, path)

    def __repr__(self) -> str:
        z, y, x = self.shape
        where = f", path='{self.path}'" if self.path else ""
        if self.is_mmap:
            parts = ", ".join(self.names) + ", memory-mapped"
        else:
            parts = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.fractions().items())
        return (f"LabelMap(shape=(z={z}, y={y}, x={x}), apix={self.apix:.3g} Å, "
                f"{len(self.names)} feature(s): {parts}{where})")


def header_labels(names: tuple[str, ...]) -> list[str]:
    """MRC header labels (<= 9 of <= 80 ASCII characters) listing ``i=name``; complete when they fit."""
    lines = [f"{_HEADER_TAG}: {len(names)} features, 0=background"]
    line = _NAMES_TAG
    for i, name in enumerate(names, 1):
        entry = f"{i}={name};"
        if not (name.isascii() and ";" not in name) or len(_NAMES_TAG) + len(entry) > 80:
            break
        if len(line) + len(entry) > 80:
            lines.append(line)
            line = _NAMES_TAG
        line += entry
    lines.append(line)
    return lines[:9]  # mrcfile adds its own "Created by" label: 10 in all


def names_from_header(labels: Iterable[str]) -> tuple[str, ...] | None:
    """The names listed by :func:`header_labels`, or None when the header does not list them all."""
    labels = [str(s).strip() for s in labels]
    count = None
    entries: dict[int, str] = {}
    for text in labels:
        if text.startswith(_HEADER_TAG + ":"):
            try:
                count = int(text[len(_HEADER_TAG) + 1:].split()[0])
            except (ValueError, IndexError):
                return None
        elif text.startswith(_NAMES_TAG):
            for entry in filter(None, text[len(_NAMES_TAG):].split(";")):
                number, _, name = entry.partition("=")
                if number.isdigit():
                    entries[int(number)] = name
    if count is None or sorted(entries) != list(range(1, count + 1)):
        return None
    return tuple(entries[i] for i in range(1, count + 1))


def write_sidecar(path: Path, names: tuple[str, ...], shape: tuple[int, ...], apix: float) -> Path:
    """Write the JSON sidecar of the label map at `path` atomically; return its path."""
    sidecar = sidecar_path(path)
    text = json.dumps({"format": _FORMAT, "version": 1, "mrc": path.name, "background": 0,
                       "names": list(names), "shape_zyx": [int(n) for n in shape], "apix": float(apix)},
                      indent=1, ensure_ascii=False)
    with atomic_path(sidecar) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return sidecar


def _check_mrc_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() == ".json":
        raise ValueError(f"`path` must be the label map's MRC file (e.g. 'labels.mrc'), got '{path}'; "
                         "the .json name is used for its sidecar")
    return path


def _header_info(path: Path) -> tuple[int, tuple[str, ...] | None]:
    """The MRC mode of `path` and the feature names its header labels list (None if incomplete)."""
    with mrcfile.open(path, mode="r", header_only=True) as mrc:
        labels = [mrc.header.label[i] for i in range(int(mrc.header.nlabl))]
        mode = int(mrc.header.mode)
    text = (s.decode("ascii", "replace") if isinstance(s, bytes) else str(s) for s in labels)
    return mode, names_from_header(text)


def _names_for(path: Path, shape: tuple[int, int, int], header: tuple[str, ...] | None
               ) -> tuple[str, ...]:
    """Names from the sidecar (checked against the MRC) or, without one, from the MRC header."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        if header is None:
            raise FileNotFoundError(
                f"'{sidecar}' (the feature names of label map '{path}') is missing and the MRC header "
                "does not list them; copy the .json file next to the .mrc file"
            )
        return check_names(header, "names")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        names = check_names(meta["names"], "names")
        meta_shape = tuple(int(n) for n in meta["shape_zyx"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"'{sidecar}' is not a tomowidgets label-map sidecar ({err})") from None
    if meta_shape != tuple(shape) or (header is not None and header != names):
        raise ValueError(
            f"'{sidecar}' describes a label map of shape {meta_shape} with names {list(names)}, but "
            f"'{path}' has shape {tuple(shape)}" + (f" and names {list(header)}" if header else "")
            + "; the sidecar belongs to another file: save the label map again"
        )
    return names
