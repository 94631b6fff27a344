"""What to annotate next: tiles where a first network is least sure, ranked for the annotator.

After a first training, the tiles that teach the network most are those it cannot decide: scores
near the threshold (neither clearly the feature nor clearly not) and, with several annotators'
networks, voxels where those networks disagree. :func:`suggest_tiles` ranks candidate tiles of a
tomogram by that uncertainty; the :class:`~tomowidgets.widgets.TileSelector` steps through them.

Examples
--------
>>> import numpy as np
>>> scores = np.zeros((4, 96, 96), np.float32)
>>> scores[2, 8:40, 50:90] = 1.0                      # right at the threshold: unsure
>>> suggest_tiles(scores, n=1, tile=32, z_step=1)[["z", "y", "x"]].values.tolist()
[[2, 16, 64]]
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import ndimage

from tomowidgets._calibration import THRESHOLD
from tomowidgets._validate import as_float32, check_finite, check_ndim, check_positive, check_positive_int
from tomowidgets.io import Tomogram

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["EXPLORE", "SUGGESTION_COLUMNS", "suggest_tiles", "uncertainty"]

#: Columns of the table :func:`suggest_tiles` returns.
SUGGESTION_COLUMNS = ("z", "y", "x", "uncertainty")
#: Default share of suggested tiles picked at random (see :func:`suggest_tiles`).
EXPLORE = 0.0


def uncertainty(scores: ArrayLike, threshold: float = THRESHOLD, width: float = 0.5,
                disagreement: ArrayLike | None = None) -> np.ndarray:
    """Per-voxel uncertainty in [0, 1]: 1 at the threshold, falling to 0 at ``threshold ± width``.

    Parameters
    ----------
    scores : ndarray
        Calibrated scores (1.0 = the annotated level).
    threshold : float, default 1.0
        The merge threshold.
    width : float, default 0.5
        Scores further than this from `threshold` count as sure.
    disagreement : ndarray, optional
        Spread between annotators' networks (:func:`tomowidgets.merge.consensus`), same shape;
        ``min(1, disagreement / width)`` is added and the sum clipped to 1.

    Returns
    -------
    ndarray of float32, same shape

    Examples
    --------
    >>> uncertainty(np.array([0.0, 0.75, 1.0, 1.25, 2.0])).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    scores = as_float32(np.asarray(scores), "scores")
    width = check_positive(width, "width")
    unsure = np.clip(1.0 - np.abs(scores - np.float32(threshold)) / np.float32(width), 0.0, 1.0)
    if disagreement is not None:
        spread = as_float32(np.asarray(disagreement), "disagreement")
        if spread.shape != scores.shape:
            raise ValueError(f"`disagreement` has shape {spread.shape} but `scores` has {scores.shape}")
        unsure = np.minimum(1.0, unsure + np.minimum(1.0, spread / np.float32(width)))
    return unsure.astype(np.float32, copy=False)


def suggest_tiles(scores: Tomogram | ArrayLike, *, n: int = 10, tile: int = 64, threshold: float = THRESHOLD,
                  width: float = 0.5, disagreement: Tomogram | ArrayLike | None = None,
                  exclude: Any = None, z_step: int | None = None, explore: float = EXPLORE,
                  rng: int | np.random.Generator | None = None) -> pd.DataFrame:
    """Rank the tiles of a tomogram by how unsure a network is there; the top `n` to annotate next.

    Candidate tiles lie fully inside the slices, on a grid with half-tile spacing, on every
    `z_step`-th slice. A tile's uncertainty is the mean of :func:`uncertainty` over it. The best
    are taken greedily; each then blocks tiles overlapping it by more than half a tile in (y, x)
    within `z_step` slices, so the suggestions spread over the tomogram. Tiles near `exclude`
    (tiles already annotated) are skipped likewise. A share `explore` of the `n` tiles is drawn at
    random among the candidates instead, as a person browsing would pick them.

    Parameters
    ----------
    scores : Tomogram or ndarray of shape (z, y, x)
        Calibrated scores of the first network (or the annotators' consensus mean).
    n : int, default 10
        Number of tiles to suggest (fewer if the tomogram has fewer candidates).
    tile : int, default 64
        Tile edge in voxels, as the training set's.
    threshold, width : float
        See :func:`uncertainty`.
    disagreement : Tomogram or ndarray, optional
        Spread between annotators' networks, same shape (see :func:`uncertainty`).
    exclude : array of shape (k, 3) or TrainingSet, optional
        Centres ``(z, y, x)`` of tiles already annotated (a TrainingSet's ``centres``).
    z_step : int, optional
        Slice spacing of the candidates; default ``max(1, tile // 8)``.
    explore : float, default EXPLORE
        Share of the tiles picked at random rather than by uncertainty, in [0, 1] (rounded to
        whole tiles; with explore > 0, random tiles also stand in for missing unsure ones). Unsure tiles
        alone over-sample what the network cannot see (vesicle caps smeared by the missing wedge:
        faint, wide masks that drag its calibration down); random ones keep the set representative.
    rng : int or numpy.random.Generator, optional
        Seed of the random picks.

    Returns
    -------
    pandas.DataFrame
        Columns ``z, y, x`` (tile centres, voxels) and ``uncertainty`` (0-1): the unsure tiles,
        most uncertain first, then the random ones.

    Raises
    ------
    ValueError
        If `scores` is not 3D or holds NaN/inf, the slices are smaller than `tile`, or an option is
        out of range.
    """
    data = scores.data if isinstance(scores, Tomogram) else np.asarray(scores)
    check_ndim(data, (3,), "scores")
    n = check_positive_int(n, "n")
    tile = check_positive_int(tile, "tile")
    z_step = max(1, tile // 8) if z_step is None else check_positive_int(z_step, "z_step")
    if isinstance(explore, bool) or not (isinstance(explore, numbers.Real) and 0.0 <= explore <= 1.0):
        raise ValueError(f"`explore` must be a share in [0, 1] of the tiles picked at random, got "
                         f"{explore!r}")
    nz, ny, nx = data.shape
    if ny < tile or nx < tile:
        raise ValueError(f"slices of {ny}×{nx} voxels are smaller than the {tile}² tiles; use smaller "
                         "tiles or a larger tomogram")
    spread = disagreement.data if isinstance(disagreement, Tomogram) else disagreement
    half = tile // 2
    ys = np.arange(half, ny - tile + half + 1, max(1, half))
    xs = np.arange(half, nx - tile + half + 1, max(1, half))
    rows = []
    for z in range(0, nz, z_step):
        plane = as_float32(np.asarray(data[z]), "scores")
        check_finite(plane, "scores", where=f"slice {z}")
        unsure = uncertainty(plane, threshold, width, None if spread is None else np.asarray(spread[z]))
        # mean over rows y - tile//2 .. y - tile//2 + tile - 1, as TrainingSet cuts a tile at y
        grid = ndimage.uniform_filter(unsure, size=tile, mode="constant")[np.ix_(ys, xs)]
        for (iy, ix), value in np.ndenumerate(grid):
            rows.append((z, int(ys[iy]), int(xs[ix]), float(value)))
    table = pd.DataFrame(rows, columns=list(SUGGESTION_COLUMNS))
    unsure = table[table["uncertainty"] > 0].sort_values("uncertainty", ascending=False, kind="stable")
    taken = [] if exclude is None else [tuple(c) for c in np.asarray(getattr(exclude, "centres", exclude))
                                         .reshape(-1, 3)]
    chosen = _spread(unsure, n - int(explore * n + 0.5), taken, z_step, half)
    if explore:  # random tiles take the explored share, and the place of missing unsure ones
        at_random = table.iloc[np.random.default_rng(rng).permutation(len(table))]
        chosen += _spread(at_random, n - len(chosen), taken, z_step, half)
    return pd.DataFrame(chosen, columns=list(SUGGESTION_COLUMNS)).reset_index(drop=True)


def _spread(candidates: pd.DataFrame, n: int, taken: list, z_step: int, half: int) -> list:
    """Up to `n` rows of `candidates`, in order, none near a tile in `taken` (which they join)."""
    chosen: list = []
    for row in candidates.itertuples(index=False):
        if len(chosen) >= n:
            break
        if any(abs(row.z - z) < z_step and abs(row.y - y) < half + 1 and abs(row.x - x) < half + 1
               for z, y, x in taken):
            continue
        chosen.append(row)
        taken.append((row.z, row.y, row.x))
    return chosen
