"""Move particle coordinates between two voxel grids of one volume: annotate coarse, extract fine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tomowidgets.io import Tomogram
from tomowidgets.particles._table import check_table

__all__ = ["regrid"]


def regrid(particles: pd.DataFrame, source: Tomogram, target: Tomogram) -> pd.DataFrame:
    """Particle positions picked on `source` as voxels of `target`, through their position in Å.

    EMAN2 users annotate a binned tomogram and extract from a finer one; coordinates travel in Å:
    ``Å = origin + voxel * apix`` on `source`, then ``voxel = (Å - origin) / apix`` on `target`
    (origins from the MRC headers, so a tomogram binned with :func:`tomowidgets.bin`, whose origin
    moves to the centre of its first block, maps back exactly).

    Parameters
    ----------
    particles : pandas.DataFrame
        A particle table (``z, y, x`` in voxels of `source`), e.g. from
        :func:`tomowidgets.pick_particles` on `source`'s score map.
    source, target : Tomogram
        The grids the picks were made on and the one to extract from (memory-mapped is fine;
        only their voxel size, origin and shape are used).

    Returns
    -------
    pandas.DataFrame
        A copy with ``z, y, x`` in voxels of `target` (floats); other columns unchanged.

    Raises
    ------
    ValueError
        If the two tomograms do not cover the same volume (their sizes in Å differ by more than a
        coarse voxel on some axis): a different tomogram, or a wrong voxel size in a header.

    Examples
    --------
    >>> coarse = Tomogram(np.zeros((4, 8, 8), np.float32), 20.0, None, (5.0, 5.0, 5.0))
    >>> fine = Tomogram(np.zeros((8, 16, 16), np.float32), 10.0)
    >>> picks = pd.DataFrame({"z": [1.0], "y": [2.0], "x": [3.0]})
    >>> regrid(picks, coarse, fine)[["z", "y", "x"]].values.tolist()
    [[2.5, 4.5, 6.5]]
    """
    for name, tomo in (("source", source), ("target", target)):
        if not isinstance(tomo, Tomogram):
            raise ValueError(f"`{name}` must be a Tomogram (its voxel size and origin place the "
                             f"particles), got {type(tomo).__name__}")
    table = check_table(particles, "particles")
    size_s = np.multiply(source.shape, source.apix)
    size_t = np.multiply(target.shape, target.apix)
    slack = max(source.apix, target.apix) * 1.5
    if np.any(np.abs(size_s - size_t) > slack):
        raise ValueError(_mismatch(source, target, size_s, size_t))
    zyx = table[["z", "y", "x"]].to_numpy(np.float64)
    angstrom = np.asarray(source.origin) + zyx * source.apix
    table[["z", "y", "x"]] = (angstrom - np.asarray(target.origin)) / target.apix
    return table


def _mismatch(source: Tomogram, target: Tomogram, size_s: Any, size_t: Any) -> str:
    def size(v: Any) -> str:
        return " × ".join(f"{s / 10:.0f}" for s in v) + " nm"

    return (f"the picks' tomogram ({source.shape} voxels of {source.apix:g} Å = {size(size_s)}) and the "
            f"target ({target.shape} voxels of {target.apix:g} Å = {size(size_t)}) do not cover the "
            "same volume; pass the tomogram the particles were picked on and a rescaled or "
            "re-reconstructed version of it, and check the voxel sizes in their headers")
