"""Particle tables in RELION-5 ``.star`` and ``.csv`` files (public through :mod:`tomowidgets.particles`).

Both files start with ``#`` comment lines that state the conventions, and one machine-readable line
``# tomowidgets-grid: {"apix": ..., "shape_xyz": [...], "origin_xyz_angstrom": [...]}`` recording the
voxel grid the voxel coordinates refer to (the tomogram's MRC header).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import starfile

from tomowidgets._validate import as_path, check_positive, same_voxel_size
from tomowidgets.io import atomic_path
from tomowidgets.particles._table import ANGLE_COLUMNS, check_table, check_triple

_GRID_TAG = "# tomowidgets-grid:"
_XYZ = ("x", "y", "z")
_STAR_VOXEL = tuple(f"rlnCoordinate{a.upper()}" for a in _XYZ)
_STAR_CENTRED = tuple(f"rlnCenteredCoordinate{a.upper()}Angst" for a in _XYZ)
_STAR_SHIFT = tuple(f"rlnOrigin{a.upper()}Angst" for a in _XYZ)
_STAR_SHIFT_PIXELS = tuple(f"rlnOrigin{a.upper()}" for a in _XYZ)    # RELION 3.0, in voxels
_STAR_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_STAR_SCORE = "rlnAutopickFigureOfMerit"
#: Table columns of oriented seeds (tomowidgets.particles._orient) and their RELION-5 labels.
_STAR_EXTRA = {"tilt_prior": "rlnAngleTiltPrior", "psi_prior": "rlnAnglePsiPrior",
               "filament": "rlnHelicalTubeID", "track_length": "rlnHelicalTrackLengthAngst"}
_STAR_FEATURE = "twFeature"
_CSV_VOXEL = tuple(f"{a}_voxel" for a in _XYZ)
_CSV_ANGST = tuple(f"{a}_angstrom" for a in _XYZ)
_CSV_ANGLES = tuple(f"{a}_deg" for a in ANGLE_COLUMNS)
_STAR_NOTES = (
    "# tomowidgets particle table, RELION-5 style.",
    "# rlnCoordinateX/Y/Z: position in voxels of the tomogram rlnTomoName, 0-based (the centre of the",
    "#   first voxel is 0), on the voxel grid in the tomowidgets-grid line below (x = fastest MRC axis).",
    "# rlnCenteredCoordinateX/Y/ZAngst: RELION-5 position in Angstrom from the tomogram centre,",
    "#   (voxel - size / 2) * apix (written when the tomogram size is known); the MRC origin is not used.",
    "# rlnAngleRot/Tilt/Psi: RELION ZYZ Euler angles in degrees; rlnAutopickFigureOfMerit: score;",
    "#   twFeature: annotated feature (an extra label, kept but ignored by RELION).",
    "# Oriented seeds: the reference's z axis points along the membrane normal or filament axis,",
    "#   (-sin(tilt) cos(psi), sin(tilt) sin(psi), cos(tilt)) in (x, y, z); rot (the spin about it)",
    "#   is unknown and 0. rlnAngleTiltPrior/rlnAnglePsiPrior: those tilt and psi;",
    "#   rlnHelicalTubeID: filament number from 1; rlnHelicalTrackLengthAngst: Angstrom along it.",
)
_CSV_NOTES = (
    "# tomowidgets particle table.",
    "# x_voxel, y_voxel, z_voxel: position in voxels of the tomogram, 0-based (the centre of the first",
    "#   voxel is 0), on the voxel grid in the tomowidgets-grid line below.",
    "# x_angstrom, y_angstrom, z_angstrom: origin + voxel * apix, using the MRC header's origin (the",
    "#   position ChimeraX shows); rot_deg, tilt_deg, psi_deg: RELION ZYZ Euler angles in degrees.",
    "# Oriented seeds: tilt_prior, psi_prior (degrees) put the reference's z axis along the membrane",
    "#   normal or filament axis, (-sin(tilt) cos(psi), sin(tilt) sin(psi), cos(tilt)) in (x, y, z);",
    "#   filament: filament number from 1; track_length: Angstrom along the filament.",
)


def write_particles(
    path: str | os.PathLike,
    table: pd.DataFrame,
    *,
    apix: float,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    shape: tuple[int, int, int] | None = None,
) -> Path:
    """Write a particle table to a RELION-5 ``.star`` or a ``.csv`` file, atomically.

    Coordinates are written in voxels and in Å; the file's comment lines state the convention and
    record `apix`, `origin` and `shape`, so :func:`read_particles` gives back exactly the same voxels.

    ``.star`` (one ``data_particles`` block): ``rlnTomoName``, ``twFeature``, ``rlnCoordinateX/Y/Z``
    (voxels, 0-based: the centre of the first voxel is 0), ``rlnCenteredCoordinateX/Y/ZAngst`` when
    `shape` is given (RELION-5: Å from the tomogram centre, ``(voxel - n / 2) * apix`` with ``n`` the
    size along that axis, as RELION-5 converts them back to pixels; the MRC origin plays no part),
    ``rlnAngleRot/Tilt/Psi`` (degrees) when the table has ``rot, tilt, psi``,
    ``rlnAutopickFigureOfMerit`` (the score) when it has scores, and for oriented seeds
    (:func:`membrane_seeds`, :func:`filament_seeds`) ``rlnAngleTiltPrior``, ``rlnAnglePsiPrior``,
    ``rlnHelicalTubeID`` and ``rlnHelicalTrackLengthAngst``. Other columns are not written.

    ``.csv``: ``tomogram, feature, x_voxel, y_voxel, z_voxel`` (as above), ``x_angstrom, y_angstrom,
    z_angstrom`` (``origin + voxel * apix``, absolute Å with the MRC header's origin), ``score``,
    ``rot_deg, tilt_deg, psi_deg`` when present, then every other column as it is (e.g. ``mass``).

    Parameters
    ----------
    path : str or PathLike
        Destination ending in ``.star`` or ``.csv``.
    table : pandas.DataFrame
        Particle table (:data:`PARTICLE_COLUMNS`; only ``z, y, x`` are required, in voxels).
    apix : float
        Voxel size in Å of the tomogram the coordinates refer to.
    origin : tuple of 3 floats, default (0, 0, 0)
        Its MRC origin in Å, ``(z, y, x)`` (``Tomogram.origin``).
    shape : tuple of 3 ints, optional
        Its size in voxels, ``(z, y, x)``; needed for RELION-5's centred coordinates.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If the suffix is not .star/.csv, `table` lacks finite ``z, y, x``, `apix` is not positive, or
        `origin`/`shape` are not 3 numbers (positive integers for `shape`).
    """
    path = as_path(path, "write_particles(path, table, apix=...)")
    kind = _kind(path)
    table = check_table(table)
    apix = check_positive(apix, "apix")
    origin = check_triple(origin, "origin")
    shape = None if shape is None else check_triple(shape, "shape", integer=True)
    grid = {"apix": apix, "shape_xyz": None if shape is None else list(shape[::-1]),
            "origin_xyz_angstrom": list(origin[::-1])}
    header = "\n".join((*(_STAR_NOTES if kind == "star" else _CSV_NOTES), f"{_GRID_TAG} {json.dumps(grid)}"))
    voxels = {a: table[a].to_numpy(np.float64) for a in _XYZ}
    angles = all(a in table.columns for a in ANGLE_COLUMNS)
    if kind == "star":
        out = pd.DataFrame({"rlnTomoName": table["tomogram"], _STAR_FEATURE: table["feature"]})
        for a, column in zip(_XYZ, _STAR_VOXEL, strict=True):
            out[column] = voxels[a]
        if shape is not None:
            for a, n, column in zip(_XYZ, shape[::-1], _STAR_CENTRED, strict=True):
                out[column] = (voxels[a] - n / 2) * apix
        if angles:
            for a, column in zip(ANGLE_COLUMNS, _STAR_ANGLES, strict=True):
                out[column] = table[a].to_numpy(np.float64)
        if table["score"].notna().any():
            out[_STAR_SCORE] = table["score"].to_numpy(np.float64)
        for column, label in _STAR_EXTRA.items():
            if column in table.columns:
                out[label] = table[column].to_numpy()
        text = header + "\n\n" + starfile.to_string({"particles": out.reset_index(drop=True)}, na_rep="nan")
    else:
        out = pd.DataFrame({"tomogram": table["tomogram"], "feature": table["feature"]})
        for a, column in zip(_XYZ, _CSV_VOXEL, strict=True):
            out[column] = voxels[a]
        for a, o, column in zip(_XYZ, origin[::-1], _CSV_ANGST, strict=True):
            out[column] = o + voxels[a] * apix
        out["score"] = table["score"]
        if angles:
            for a, column in zip(ANGLE_COLUMNS, _CSV_ANGLES, strict=True):
                out[column] = table[a]
        for column in table.columns:
            if column not in (*out.columns, "z", "y", "x", *(ANGLE_COLUMNS if angles else ())):
                out[column] = table[column]
        text = header + "\n" + out.to_csv(index=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def read_particles(
    path: str | os.PathLike,
    *,
    apix: float | None = None,
    origin: tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
) -> pd.DataFrame:
    """Read a particle table from a ``.star`` or ``.csv`` file, in voxels of a given tomogram.

    With no keywords, or with the `apix`/`origin`/`shape` recorded in the file (the same MRC header),
    the voxel columns are returned exactly as written. Keywords that describe another voxel grid
    convert through Å: ``.star`` from the RELION-5 centred coordinates, ``voxel = centred / apix +
    n / 2`` (needs `apix` and `shape`; the origin is not used), ``.csv`` from the absolute ones,
    ``voxel = (angstrom - origin) / apix``. A RELION-5 file with only centred coordinates needs `apix`
    and `shape` of the tomogram; RELION's ``rlnOriginX/Y/ZAngst`` shifts (RELION 3.1 and later), or
    else RELION 3.0's ``rlnOriginX/Y/Z`` (in voxels of the coordinates), are subtracted (the refined
    position). A ``.star`` file without a tomowidgets-grid line and without centred coordinates is
    read from ``rlnCoordinateX/Y/Z`` as 0-based voxels.

    Parameters
    ----------
    path : str or PathLike
        A ``.star`` file (block ``particles``, or its only block) or a ``.csv`` file.
    apix : float, optional
        Voxel size in Å of the tomogram the result should refer to.
    origin : tuple of 3 floats, optional
        Its MRC origin in Å, ``(z, y, x)`` (CSV only).
    shape : tuple of 3 ints, optional
        Its size in voxels, ``(z, y, x)`` (STAR only).

    Returns
    -------
    pandas.DataFrame
        :data:`PARTICLE_COLUMNS` (``feature`` defaults to ``"particle"``, ``score`` to NaN), then
        ``rot, tilt, psi`` when the file has angles, then (CSV) the file's other columns.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the suffix is not .star/.csv, the file is empty, has no coordinates or values that are
        not numbers, or converting needs an `apix` or `shape` that neither the keywords nor the file
        give. The message names the file.
    """
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise FileNotFoundError(f"No particle file at '{path}'; check the path (cwd is '{Path.cwd()}')")
    grid = _read_grid(path)
    apix = None if apix is None else check_positive(apix, "apix")
    origin = None if origin is None else check_triple(origin, "origin")
    shape = None if shape is None else check_triple(shape, "shape", integer=True)
    try:
        if kind == "star":
            table = _star_table(path, grid, apix, shape)
        else:
            table = _csv_table(path, grid, apix, origin)
        return check_table(table.reset_index(drop=True))
    except pd.errors.EmptyDataError:
        raise ValueError(f"'{path}' is empty: no column names and no particles") from None
    except (ValueError, TypeError) as err:   # pandas' parser errors are ValueErrors too
        if str(path) in str(err):
            raise
        raise ValueError(f"'{path}' cannot be read as a particle table: {err}; every coordinate, "
                         "angle and score must be a number") from None


def _kind(path: Path) -> str:
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("star", "csv"):
        raise ValueError(f"`path` must end in .star (RELION-5) or .csv, got '{path}'")
    return kind


def _read_grid(path: Path) -> dict[str, Any]:
    """The tomowidgets-grid line of `path` as ``{apix, shape (z,y,x), origin (z,y,x)}``, or {}."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith(_GRID_TAG):
                try:
                    meta = json.loads(line[len(_GRID_TAG):])
                    shape = meta.get("shape_xyz")
                    return {"apix": float(meta["apix"]),
                            "shape": None if shape is None else tuple(int(n) for n in shape[::-1]),
                            "origin": tuple(float(o) for o in meta["origin_xyz_angstrom"][::-1])}
                except (ValueError, KeyError, TypeError) as err:
                    raise ValueError(f"'{path}' has an unreadable tomowidgets-grid line ({err})") from None
    return {}


def _same(a: Any, b: Any, tol: float) -> bool:
    """True if `a` is None (not asked) or equal to `b` within `tol` (relative for scalars)."""
    if a is None:
        return True
    if b is None:
        return False
    return bool(np.allclose(np.atleast_1d(a), np.atleast_1d(b), rtol=tol, atol=tol))


def _same_apix(apix: float | None, recorded: float | None) -> bool:
    """True if `apix` is None (not asked) or the recorded voxel size (:func:`same_voxel_size`)."""
    return apix is None or (recorded is not None and same_voxel_size(apix, recorded))


def _star_table(path: Path, grid: dict[str, Any], apix: float | None,
                shape: tuple[int, ...] | None) -> pd.DataFrame:
    blocks = starfile.read(path, always_dict=True, parse_as_string=["rlnTomoName", _STAR_FEATURE,
                                                                     "rlnMicrographName"])
    star = blocks.get("particles")
    if not isinstance(star, pd.DataFrame):
        tables = [b for b in blocks.values() if isinstance(b, pd.DataFrame)
                  and (set(_STAR_VOXEL) <= set(b.columns) or set(_STAR_CENTRED) <= set(b.columns))]
        if len(tables) != 1:
            raise ValueError(f"'{path}' has no particle block with rlnCoordinateX/Y/Z or "
                             "rlnCenteredCoordinateX/Y/ZAngst columns")
        star = tables[0]
    has_voxels = set(_STAR_VOXEL) <= set(star.columns)
    has_centred = set(_STAR_CENTRED) <= set(star.columns)
    apix_t = apix if apix is not None else grid.get("apix")
    shape_t = shape if shape is not None else grid.get("shape")
    same_grid = bool(grid) and _same_apix(apix, grid["apix"]) and _same(shape, grid["shape"], 0)
    if has_voxels and (same_grid or (not grid and not (has_centred and apix_t and shape_t))):
        xyz = star[list(_STAR_VOXEL)].to_numpy(np.float64)
    elif (has_centred or (has_voxels and grid.get("shape"))) and apix_t and shape_t:
        if has_centred:
            centred = star[list(_STAR_CENTRED)].to_numpy(np.float64)
        else:  # our own file written without a size: centre it on the recorded grid first
            centred = (star[list(_STAR_VOXEL)].to_numpy(np.float64)
                       - np.asarray(grid["shape"][::-1]) / 2) * grid["apix"]
        xyz = centred / apix_t + np.asarray(shape_t[::-1], np.float64) / 2
    elif has_voxels or has_centred:
        raise ValueError(
            f"'{path}' must be converted to another voxel grid through Å, which needs `apix` (Å per "
            "voxel) and `shape` (z, y, x voxels) of the tomogram: pass read_particles(path, "
            "apix=tomo.apix, shape=tomo.shape)"
        )
    else:
        raise ValueError(f"'{path}' has no particle coordinates (rlnCoordinateX/Y/Z or "
                         "rlnCenteredCoordinateX/Y/ZAngst)")
    if set(_STAR_SHIFT) <= set(star.columns):
        shift = star[list(_STAR_SHIFT)].to_numpy(np.float64)
        if np.any(shift != 0):
            if not apix_t:
                raise ValueError(f"'{path}' has rlnOriginX/Y/ZAngst shifts; pass `apix` to convert them "
                                 "to voxels")
            xyz = xyz - shift / apix_t
    elif set(_STAR_SHIFT_PIXELS) <= set(star.columns):
        xyz = xyz - star[list(_STAR_SHIFT_PIXELS)].to_numpy(np.float64)
    name_column = "rlnTomoName" if "rlnTomoName" in star.columns else "rlnMicrographName"
    table = pd.DataFrame({"z": xyz[:, 2], "y": xyz[:, 1], "x": xyz[:, 0]})
    if name_column in star.columns:
        table.insert(0, "tomogram", star[name_column].astype(str).to_numpy())
    if _STAR_FEATURE in star.columns:
        table.insert(1 if "tomogram" in table else 0, "feature", star[_STAR_FEATURE].astype(str).to_numpy())
    if _STAR_SCORE in star.columns:
        table["score"] = star[_STAR_SCORE].to_numpy(np.float64)
    if set(_STAR_ANGLES) <= set(star.columns):
        for a, column in zip(ANGLE_COLUMNS, _STAR_ANGLES, strict=True):
            table[a] = star[column].to_numpy(np.float64)
    for column, label in _STAR_EXTRA.items():
        if label in star.columns:
            table[column] = star[label].to_numpy()
    return table


def _csv_table(path: Path, grid: dict[str, Any], apix: float | None,
               origin: tuple[float, ...] | None) -> pd.DataFrame:
    with open(path, encoding="utf-8") as f:
        skip = 0
        for line in f:
            if not line.startswith("#"):
                break
            skip += 1
    columns = pd.read_csv(path, skiprows=skip, nrows=0).columns
    names = [c for c in ("tomogram", "feature") if c in columns]
    # Names such as "NA" stay strings; every other column reads empty cells and NaN as NaN.
    csv = pd.read_csv(path, skiprows=skip, dtype={c: str for c in names}, keep_default_na=False,
                      na_values={c: ["", "NaN", "nan"] for c in columns if c not in names})
    has_voxels = set(_CSV_VOXEL) <= set(csv.columns)
    has_angst = set(_CSV_ANGST) <= set(csv.columns)
    same_grid = bool(grid) and _same_apix(apix, grid["apix"]) and _same(origin, grid["origin"], 1e-6)
    apix_t = apix if apix is not None else grid.get("apix")
    if has_voxels and (same_grid or not has_angst or (not grid and apix is None)):
        xyz = csv[list(_CSV_VOXEL)].to_numpy(np.float64)
    elif has_angst:
        if apix_t is None:
            raise ValueError(f"'{path}' gives positions in Å only; pass `apix` (and `origin`) of the "
                             "tomogram: read_particles(path, apix=tomo.apix, origin=tomo.origin)")
        origin_t = origin if origin is not None else grid.get("origin", (0.0, 0.0, 0.0))
        xyz = (csv[list(_CSV_ANGST)].to_numpy(np.float64) - np.asarray(origin_t[::-1])) / apix_t
    elif {"x", "y", "z"} <= set(csv.columns):
        xyz = csv[["x", "y", "z"]].to_numpy(np.float64)
    else:
        raise ValueError(f"'{path}' has no particle coordinates (x_voxel, y_voxel, z_voxel or "
                         "x_angstrom, y_angstrom, z_angstrom columns)")
    angles = {a: csv[c] for a, c in zip(ANGLE_COLUMNS, _CSV_ANGLES, strict=True) if c in csv.columns}
    rest = [c for c in csv.columns
            if c not in (*_CSV_VOXEL, *_CSV_ANGST, *_CSV_ANGLES, "x", "y", "z")]
    table = pd.DataFrame({"z": xyz[:, 2], "y": xyz[:, 1], "x": xyz[:, 0]})
    for a, values in angles.items():
        table[a] = values.to_numpy(np.float64)
    for column in rest:
        table[column] = csv[column].to_numpy()
    return table
