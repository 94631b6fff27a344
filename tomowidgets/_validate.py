"""Shared argument validators: each names the argument, shows its value and says how to fix it."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

#: Voxel sizes (Å) closer than this relative difference are the same. MRC headers store them as
#: float32 and programs round them when they rescale (IMOD prints 3 decimals), which stays far below
#: 0.1 %; a different binning (2x) or magnification (≥ 1 %) stays far above it.
APIX_RTOL = 1e-3


def same_voxel_size(a: float, b: float, rtol: float = APIX_RTOL) -> bool:
    """True if voxel sizes `a` and `b` (Å) differ by at most `rtol` relative to the larger one.

    The one rule for "same voxel size" (training sets, networks, score maps, particle files). Pass a
    looser `rtol` only on purpose, as :func:`tomowidgets.apply` does for a network's voxel size.

    Examples
    --------
    >>> same_voxel_size(10.0, 10.004), same_voxel_size(10.0, 10.2), same_voxel_size(10.0, 10.2, 0.05)
    (True, False, True)
    """
    return abs(float(a) - float(b)) <= rtol * max(abs(float(a)), abs(float(b)))


def as_path(path: Any, call: str) -> Path:
    """`path` as a Path, or a TypeError saying that `call` (e.g. ``"write_tomogram(path, tomo)"``)
    takes the file name first: a swapped call otherwise fails deep in pathlib or numpy."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a file name (str or pathlib.Path), got {type(path).__name__}; "
                        f"the file name comes first: {call}")
    return Path(path)


def as_float32(array: Any, arg_name: str = "volume") -> np.ndarray:
    """Return `array` as float32, copying only when the dtype does not already fit.

    This is the one place that decides float promotion: every float and integer dtype becomes
    float32 (the precision the network and the MRC files use).

    Raises
    ------
    ValueError
        If `array` is not numeric (e.g. complex or object).
    """
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            or array.dtype == bool):
        raise ValueError(f"`{arg_name}` must be a real-valued array, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def check_ndim(array: np.ndarray, ndims: tuple[int, ...], arg_name: str = "volume") -> None:
    """Raise ValueError unless `array.ndim` is one of `ndims`."""
    if array.ndim not in ndims:
        wanted = " or ".join(f"{n}-dimensional" for n in ndims)
        raise ValueError(
            f"`{arg_name}` must be a {wanted} array (z, y, x), got shape {array.shape}; "
            "a 4D stack must be split into single volumes first"
        )


def check_finite(array: np.ndarray, arg_name: str = "volume", *, where: str = "") -> None:
    """Raise ValueError if `array` holds NaN or infinite values, giving their count."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        place = f" in {where}" if where else ""
        raise ValueError(
            f"`{arg_name}`{place} contains {bad} NaN or infinite value(s); replace them "
            "(e.g. numpy.nan_to_num) or re-export the tomogram from its reconstruction program"
        )


def check_positive(value: Any, arg_name: str) -> float:
    """Return `value` as float, raising ValueError unless it is a finite number > 0."""
    # cast() only tells mypy what isinstance guarantees: numpy's stubs reject the abstract numbers.Real.
    if not isinstance(value, numbers.Real) or not np.isfinite(cast(float, value)) or value <= 0:
        raise ValueError(f"`{arg_name}` must be a positive number, got {value!r}")
    return float(value)


def check_hysteresis(hysteresis: Any, arg: str = "hysteresis", none: str = "keeps the single threshold"
                     ) -> float:
    """Return `hysteresis` as float, raising ValueError unless it is a fraction strictly between 0 and 1."""
    if (isinstance(hysteresis, bool) or not isinstance(hysteresis, numbers.Real)
            or not 0 < float(hysteresis) < 1):
        raise ValueError(f"`{arg}` must be a fraction of the threshold between 0 and 1 (e.g. 0.5), "
                         f"got {hysteresis!r}; None {none}")
    return float(hysteresis)


def check_fraction(value: Any, arg_name: str, *, example: float, none: str) -> float:
    """Return `value` as float, raising ValueError unless it is a number in (0, 1].

    `example` is a sensible value and `none` what None does instead (both shown in the message).
    """
    # cast() only tells mypy what isinstance guarantees: numpy's stubs reject the abstract numbers.Real.
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(cast(float, value))):
        raise ValueError(f"`{arg_name}` must be a finite number, got {value!r}; "
                         f"e.g. {example}, or None {none}")
    if not 0 < float(value) <= 1:
        raise ValueError(f"`{arg_name}` must be a fraction in (0, 1], e.g. {example}, or None {none}; "
                         f"got {value!r}")
    return float(value)


def check_positive_int(value: Any, arg_name: str) -> int:
    """Return `value` as int, raising ValueError unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{arg_name}` must be an integer >= 1, got {value!r}")
    return int(value)


def check_index(value: Any, n: int, arg_name: str) -> int:
    """Return `value` as int, raising ValueError unless it is an integer in ``0 .. n - 1``."""
    # cast() only tells mypy what isinstance guarantees: int declares no comparison with numbers.Integral.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= cast(int, value) < n:
        raise ValueError(f"`{arg_name}` must be a slice index in 0..{n - 1}, got {value!r}")
    return int(value)


def check_count(value: Any, arg_name: str) -> int:
    """Return `value` as int, raising ValueError unless it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{arg_name}` must be an integer >= 0, got {value!r}")
    return int(value)


def check_tilt_range(tilt_range: float) -> float:
    """Return `tilt_range` as float, raising ValueError unless it is in ``(0, 90]`` degrees."""
    value = check_positive(tilt_range, "tilt_range")
    if value > 90:
        raise ValueError(
            f"`tilt_range` must be in (0, 90] degrees, got {tilt_range!r}; a ±60° tilt series "
            "has tilt_range=60, and 90 means no missing wedge"
        )
    return value


def check_slices(slices: Any, context: int) -> tuple[np.ndarray, bool]:
    """A network's input as a float32 ``(n, y, x)`` stack, and whether one ``(y, x)`` slice was given.

    Raises ValueError unless `slices` is 2D or 3D, at least 2 x 2 pixels (the network pools by 2),
    finite, and holds more than ``2 * context`` slices (a 2.5D network's neighbours).
    """
    array = as_float32(slices, "slices")
    if array.ndim not in (2, 3):
        raise ValueError(f"`slices` must be a 2D (y, x) slice or a 3D (n, y, x) stack, got "
                         f"shape {array.shape}; index a tomogram as tomogram.data[z0:z1]")
    if array.shape[-1] < 2 or array.shape[-2] < 2:
        raise ValueError(f"`slices` must be at least 2 x 2 pixels (the network pools by 2), "
                         f"got shape {array.shape}")
    check_finite(array, "slices")
    stack = array[None] if array.ndim == 2 else array
    if context and len(stack) <= 2 * context:
        raise ValueError(f"this network reads {context} slices above and below each slice, so "
                         f"`slices` needs more than {2 * context}, got {len(stack)}; pass "
                         f"tomogram.slab(z0, z1, context={context})")
    return stack, array.ndim == 2


#: Most test-time turns: the four rotations by multiples of 90 degrees about z.
MAX_TURNS = 4


def check_turns(turns: Any) -> int:
    """Return `turns` (test-time rotations about z) as int, raising ValueError unless it is 1 ...
    MAX_TURNS."""
    if isinstance(turns, bool) or not isinstance(turns, numbers.Integral) or not 1 <= int(turns) <= MAX_TURNS:
        raise ValueError(f"`turns` must be an integer from 1 (no test-time rotation) to {MAX_TURNS} "
                         f"(0, 90, 180 and 270 degrees about z), got {turns!r}")
    return int(turns)
