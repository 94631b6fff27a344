"""Cut cubic subvolumes around particles (public through :mod:`tomowidgets.particles`)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import pandas as pd

from tomowidgets._validate import as_float32, check_finite, check_ndim
from tomowidgets.io import Tomogram
from tomowidgets.particles._table import check_int, check_number

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


# The overloads give the return type by `return_table`: the stack alone, or the stack and the table.
@overload
def extract_subvolumes(tomo: Tomogram | ArrayLike, particles: pd.DataFrame | ArrayLike, box: int, *,
                       pad: bool = ..., fill: float | str = ..., normalize: bool = ...,
                       return_table: Literal[False] = ...) -> NDArray[np.float32]: ...


@overload
def extract_subvolumes(tomo: Tomogram | ArrayLike, particles: pd.DataFrame | ArrayLike, box: int, *,
                       pad: bool = ..., fill: float | str = ..., normalize: bool = ...,
                       return_table: Literal[True]) -> tuple[NDArray[np.float32], pd.DataFrame]: ...


@overload
def extract_subvolumes(tomo: Tomogram | ArrayLike, particles: pd.DataFrame | ArrayLike, box: int, *,
                       pad: bool = ..., fill: float | str = ..., normalize: bool = ...,
                       return_table: bool = ...
                       ) -> NDArray[np.float32] | tuple[NDArray[np.float32], pd.DataFrame]: ...


def extract_subvolumes(
    tomo: Tomogram | ArrayLike,
    particles: pd.DataFrame | ArrayLike,
    box: int,
    *,
    pad: bool = True,
    fill: float | str = "mean",
    normalize: bool = False,
    return_table: bool = False,
) -> NDArray[np.float32] | tuple[NDArray[np.float32], pd.DataFrame]:
    """Cut a cube of `box` voxels around each particle.

    The particle's voxel (its ``z, y, x`` rounded to the nearest integer; no interpolation) lands at
    index ``box // 2`` of the cube on every axis, as the centre voxel ``n // 2`` of the synthetic
    templates: the cube covers ``z - box // 2`` to ``z - box // 2 + box - 1``. Only the voxels of each
    cube are read, so memory-mapped tomograms larger than memory work.

    Parameters
    ----------
    tomo : Tomogram or ndarray of shape (z, y, x)
        The tomogram to cut from (usually the preprocessed one), in memory or memory-mapped.
    particles : pandas.DataFrame or ndarray of shape (n, 3)
        A particle table with columns ``z, y, x`` in voxels of `tomo` (one tomogram only), or the
        ``(z, y, x)`` positions.
    box : int
        Edge of the cube in voxels (>= 1).
    pad : bool, default True
        Keep particles whose cube crosses the tomogram's edge, filling the part outside with `fill`.
        Tomograms are thin: in a 64-slice cell, boxes of 32 cross the top or bottom for half the
        ribosomes, and averaging them padded gave the same or better resolution than leaving them
        out (``benchmarks/accuracy.py``, variant "skip-edges"). False skips them, with a warning
        giving the count.
    fill : float or {"mean"}, default "mean"
        Value outside the tomogram when `pad` is True: the mean of the cube's voxels inside it, or a
        number (e.g. 0.0).
    normalize : bool, default False
        Scale each cube to mean 0 and standard deviation 1 (over its voxels; a constant cube only gets
        its mean removed). By default voxels are returned as they are in `tomo`.
    return_table : bool, default False
        Also return the rows of `particles` that were extracted (a DataFrame with the original index;
        for an array input, columns ``z, y, x``).

    Returns
    -------
    ndarray of float32, shape (m, box, box, box)
        One cube per extracted particle, in the order of `particles`; ``m`` = n minus the skipped.
    pandas.DataFrame
        Only with ``return_table=True``: the extracted rows, aligned with the cubes.

    Raises
    ------
    ValueError
        If `tomo` is not 3D or a cube holds NaN/inf, `particles` has no ``z, y, x`` columns, holds NaN
        or rows of several tomograms, `box` < 1, or `fill` is neither "mean" nor a finite number.

    Warns
    -----
    RuntimeWarning
        When particles are skipped: cubes crossing the edge (with ``pad=False``) or centres outside the
        tomogram (always skipped), with their counts.

    Examples
    --------
    >>> vol = np.arange(5 ** 3, dtype=np.float32).reshape(5, 5, 5)
    >>> cubes = extract_subvolumes(vol, np.array([[2, 2, 2]]), 3)
    >>> cubes.shape, bool((cubes[0] == vol[1:4, 1:4, 1:4]).all())
    ((1, 3, 3, 3), True)
    """
    data = tomo.data if isinstance(tomo, Tomogram) else np.asarray(tomo)
    check_ndim(data, (3,), "tomo")
    table = _positions(particles)
    box = check_int(box, "box", minimum=1, hint=" voxels")
    if not (isinstance(fill, str) and fill == "mean"):
        fill = check_number(fill, "fill", hint='; use "mean" or a number such as 0.0')
    shape = np.asarray(data.shape)
    centre = np.floor(table[["z", "y", "x"]].to_numpy(np.float64) + 0.5).astype(np.int64)
    lo = centre - box // 2
    hi = lo + box
    inside = np.all((centre >= 0) & (centre < shape), axis=1)
    whole = np.all((lo >= 0) & (hi <= shape), axis=1)
    keep = whole | (inside & bool(pad))
    _warn_skipped(len(table), int(np.count_nonzero(~inside)),
                  0 if pad else int(np.count_nonzero(inside & ~whole)), box)

    rows = np.flatnonzero(keep)
    cubes = np.empty((rows.size, box, box, box), np.float32)
    # Visit particles in z order so a memory map is read front to back; write them in table order.
    for k in sorted(range(rows.size), key=lambda k: tuple(lo[rows[k]])):
        i = rows[k]
        start, stop = np.maximum(lo[i], 0), np.minimum(hi[i], shape)
        part = as_float32(np.asarray(data[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]), "tomo")
        check_finite(part, "tomo", where=f"the box of particle {table.index[i]!r}")
        if whole[i]:
            cube = part
        else:
            cube = np.full((box, box, box), part.mean() if fill == "mean" else fill, np.float32)
            a, b = start - lo[i], stop - lo[i]
            cube[a[0]:b[0], a[1]:b[1], a[2]:b[2]] = part
        if normalize:
            cube = cube - cube.mean(dtype=np.float64)
            sd = float(cube.std(dtype=np.float64))
            cube = cube / sd if sd > 0 else cube
        cubes[k] = cube
    if return_table:
        return cubes, table.iloc[rows]
    return cubes


def _positions(particles: Any) -> pd.DataFrame:
    """`particles` as a DataFrame with finite ``z, y, x`` (of one tomogram), or ValueError."""
    if isinstance(particles, pd.DataFrame):
        missing = [c for c in ("z", "y", "x") if c not in particles.columns]
        if missing:
            raise ValueError(f"`particles` has no column(s) {missing}; it needs z, y, x in voxels "
                             f"(its columns are {list(particles.columns)})")
        if "tomogram" in particles.columns and particles["tomogram"].nunique() > 1:
            names = sorted(map(str, particles["tomogram"].unique()))
            raise ValueError(f"`particles` holds particles of {len(names)} tomograms {names[:5]}; pass the "
                             "rows of this tomogram only, e.g. particles[particles.tomogram == name]")
        table = particles
    else:
        array = np.asarray(particles, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 3:
            raise ValueError(f"`particles` must be a particle table or an array of shape (n, 3) with "
                             f"(z, y, x) in voxels, got shape {array.shape}")
        table = pd.DataFrame(array, columns=["z", "y", "x"])
    zyx = table[["z", "y", "x"]].to_numpy(np.float64)
    if not np.isfinite(zyx).all():
        raise ValueError("`particles` holds NaN or infinite coordinates; drop those rows first")
    return table


def _warn_skipped(total: int, outside: int, crossing: int, box: int) -> None:
    """Warn with the counts of skipped particles, if any."""
    if not (outside or crossing):
        return
    reasons = []
    if crossing:
        reasons.append(f"{crossing} whose {box}-voxel box crosses the tomogram's edge (pad=True "
                       "keeps them, filled with the mean)")
    if outside:
        reasons.append(f"{outside} whose centre lies outside the tomogram (wrong tomogram or voxel size?)")
    warnings.warn(f"skipped {outside + crossing} of {total} particles: " + "; ".join(reasons),
                  RuntimeWarning, stacklevel=3)
