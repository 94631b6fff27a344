"""Particle tables: the column convention shared by picking, seeding, extraction and STAR/CSV files.

Public through :mod:`tomowidgets.particles`.
"""

from __future__ import annotations

import numbers
from typing import Any, cast

import numpy as np
import pandas as pd

#: Columns every particle table has, in this order: ``tomogram`` (str, the tomogram's name),
#: ``feature`` (str), ``z, y, x`` (float, voxels, 0-based: the centre of voxel ``[k, j, i]`` is
#: ``(k, j, i)``) and ``score`` (float, the calibrated score at the particle; NaN when unknown).
PARTICLE_COLUMNS = ("tomogram", "feature", "z", "y", "x", "score")
#: Optional orientation columns: RELION ZYZ Euler angles in degrees (as in tomowidgets.synthetic).
ANGLE_COLUMNS = ("rot", "tilt", "psi")
#: Extra columns of :func:`tomowidgets.pick_particles`: ``mass`` (sum of the component's scores) and
#: ``size`` (its voxel count).
PICK_COLUMNS = ("mass", "size")
#: Name used when a table or score map gives none.
DEFAULT_TOMOGRAM = "tomogram"
DEFAULT_FEATURE = "particle"


def check_name(value: Any, arg_name: str) -> str:
    """Return `value` if it is a non-empty printable string, else raise ValueError naming `arg_name`."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError(f"`{arg_name}` must be a non-empty printable string, got {value!r}")
    return value


def check_number(value: Any, arg_name: str, *, minimum: float | None = None, hint: str = "") -> float:
    """Return `value` as float, raising ValueError unless it is finite (and >= `minimum`)."""
    # cast() only tells mypy what isinstance guarantees: numpy's stubs reject the abstract numbers.Real.
    bad = (isinstance(value, bool) or not isinstance(value, numbers.Real)
           or not np.isfinite(cast(float, value)))
    if bad or (minimum is not None and value < minimum):
        limit = f" >= {minimum:g}" if minimum is not None else ""
        raise ValueError(f"`{arg_name}` must be a finite number{limit}, got {value!r}{hint}")
    return float(value)


def check_int(value: Any, arg_name: str, *, minimum: int = 0, hint: str = "") -> int:
    """Return `value` as int, raising ValueError unless it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{arg_name}` must be an integer >= {minimum}, got {value!r}{hint}")
    return int(value)


def check_triple(value: Any, arg_name: str, *, integer: bool = False) -> tuple:
    """Return 3 finite numbers ``(z, y, x)`` (ints >= 1 when `integer`), else raise ValueError."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    what = "integers >= 1" if integer else "finite numbers"
    if len(items) != 3:
        raise ValueError(f"`{arg_name}` must be 3 {what} (z, y, x), got {value!r}")
    if integer:
        return tuple(check_int(v, arg_name, minimum=1) for v in items)
    return tuple(check_number(v, arg_name) for v in items)


def make_table(tomogram: str, feature: str, zyx: np.ndarray, score: np.ndarray,
               **extra: np.ndarray) -> pd.DataFrame:
    """A particle table with :data:`PARTICLE_COLUMNS` and `extra` columns, one row per position."""
    zyx = np.asarray(zyx, np.float64).reshape(-1, 3)
    n = len(zyx)
    columns: dict[str, Any] = {
        "tomogram": pd.Series([tomogram] * n, dtype=object),
        "feature": pd.Series([feature] * n, dtype=object),
        "z": zyx[:, 0], "y": zyx[:, 1], "x": zyx[:, 2],
        "score": np.asarray(score, np.float64).reshape(n),
    }
    columns.update({k: np.asarray(v).reshape(n) for k, v in extra.items()})
    return pd.DataFrame(columns)


def check_table(table: Any, arg_name: str = "table") -> pd.DataFrame:
    """Return a copy of `table` with every column of :data:`PARTICLE_COLUMNS` (filled if missing).

    Missing ``tomogram``/``feature`` become :data:`DEFAULT_TOMOGRAM`/:data:`DEFAULT_FEATURE`, a missing
    ``score`` becomes NaN; ``z, y, x`` must be present and finite. Other columns are kept after them.
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"`{arg_name}` must be a pandas DataFrame with columns z, y, x (voxels), got "
                         f"{type(table).__name__}; see tomowidgets.particles.PARTICLE_COLUMNS")
    missing = [c for c in ("z", "y", "x") if c not in table.columns]
    if missing:
        raise ValueError(f"`{arg_name}` has no column(s) {missing}; a particle table needs z, y, x in "
                         f"voxels (its columns are {list(table.columns)})")
    table = table.copy()
    for c in ("z", "y", "x", *(a for a in ANGLE_COLUMNS if a in table.columns)):
        try:
            table[c] = table[c].astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"column {c!r} of `{arg_name}` must be numeric") from None
        if not np.isfinite(table[c].to_numpy()).all():
            raise ValueError(f"column {c!r} of `{arg_name}` holds NaN or infinite values; drop those rows")
    defaults = {"tomogram": DEFAULT_TOMOGRAM, "feature": DEFAULT_FEATURE, "score": np.nan}
    for column, default in defaults.items():
        if column not in table.columns:
            table[column] = default
    table["tomogram"] = table["tomogram"].astype(str).astype(object)
    table["feature"] = table["feature"].astype(str).astype(object)
    table["score"] = table["score"].astype(np.float64)
    rest = [c for c in table.columns if c not in PARTICLE_COLUMNS]
    return table[list(PARTICLE_COLUMNS) + rest]
