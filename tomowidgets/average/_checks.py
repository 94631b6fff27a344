"""Argument checks for :mod:`tomowidgets.average`: each names the argument, its value and the fix."""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from tomowidgets._validate import as_float32, check_finite

if TYPE_CHECKING:
    from numpy.typing import NDArray


def check_map(volume: Any, arg_name: str, *, shape: tuple[int, ...] | None = None) -> NDArray[np.float32]:
    """Return a finite cubic 3D float32 map, or raise ValueError naming `arg_name`."""
    volume = as_float32(volume, arg_name)
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise ValueError(f"`{arg_name}` must be a cubic 3D map (n, n, n) in (z, y, x), got shape "
                         f"{volume.shape}; crop or pad it to a cube")
    if shape is not None and volume.shape != tuple(shape):
        raise ValueError(f"`{arg_name}` must have shape {tuple(shape)} to match, got {volume.shape}; "
                         "resample or crop it to the same box")
    check_finite(volume, arg_name)
    return volume


def check_cubic_stack(subvolumes: Any, *, minimum: int) -> NDArray[np.float32]:
    """Return a finite (n, box, box, box) float32 stack with n >= `minimum`, box >= 8."""
    subvolumes = as_float32(subvolumes, "subvolumes")
    if subvolumes.ndim != 4:
        raise ValueError(f"`subvolumes` must be a 4-dimensional stack (n, z, y, x) of particles, got "
                         f"shape {subvolumes.shape}; a single particle needs a leading axis "
                         "(volume[None])")
    n, *box = subvolumes.shape
    if len(set(box)) != 1 or box[0] < 8:
        raise ValueError(f"`subvolumes` must hold cubic boxes of at least 8 voxels, got boxes of "
                         f"{tuple(box)}; extract them with one box size, e.g. box=32")
    if n < minimum:
        why = " for two independent half sets" if minimum == 4 else ""
        raise ValueError(f"`subvolumes` must hold at least {minimum} particles{why}, got {n}; "
                         "pick more particles")
    check_finite(subvolumes, "subvolumes")
    return subvolumes


def normalise_particles(stack: NDArray[np.float32], arg_name: str) -> NDArray[np.float32]:
    """Each item minus its mean, divided by its sd (float32); ValueError if one is constant."""
    axes = tuple(range(1, stack.ndim))
    mean = stack.mean(axis=axes, keepdims=True, dtype=np.float64)
    sd = stack.std(axis=axes, keepdims=True, dtype=np.float64)
    flat = np.flatnonzero(sd.ravel() <= 1e-12 * max(1.0, float(np.abs(mean).max())))
    if flat.size:
        raise ValueError(f"`{arg_name}` item {int(flat[0])} is constant ({flat.size} in all); remove "
                         "empty boxes (e.g. cut off the tomogram's edge) before averaging")
    return ((stack - mean) / sd).astype(np.float32)


def check_angle_step(step: Any, *, grid3d: bool = True) -> float:
    """Return an angular step in degrees in (0, 90] (at least 3 for a 3D grid)."""
    # cast() only tells mypy what isinstance guarantees: numpy's stubs reject the abstract numbers.Real
    # and int declares no comparison with it.
    if (not isinstance(step, numbers.Real) or not np.isfinite(cast(float, step))
            or not 0 < cast(float, step) <= 90):
        raise ValueError(f"`angular_step` must be in (0, 90] degrees, got {step!r}; e.g. "
                         f"{'30 for a global search' if grid3d else '10 for in-plane rotations'}")
    if grid3d and step < 3:
        raise ValueError(f"`angular_step` below 3° makes a global grid of over 10⁶ rotations, got "
                         f"{step!r}; use 10-30 (local refinement goes finer by itself)")
    return float(step)


def parse_symmetry(symmetry: Any) -> int:
    """``"c1"``, ``"C7"``... -> the order n of the cyclic group about z."""
    match = re.fullmatch(r"[cC]([1-9][0-9]*)", symmetry) if isinstance(symmetry, str) else None
    if match is None:
        raise ValueError(f"`symmetry` must be 'cN' (N-fold about z), got {symmetry!r}; e.g. 'c1' for "
                         "none, 'c7' for a 20S proteasome ring")
    return int(match.group(1))


def check_particles_table(particles: Any, n: int) -> None:
    """Raise ValueError unless `particles` is a DataFrame with one row per subvolume."""
    if not isinstance(particles, pd.DataFrame) or len(particles) != n:
        rows = len(particles) if isinstance(particles, pd.DataFrame) else type(particles).__name__
        raise ValueError(f"`particles` must be a pandas DataFrame with one row per subvolume ({n}), "
                         f"got {rows}; pass the table the subvolumes were extracted from")
