"""Gold fiducials: find the extreme outlier blobs and replace them with local background.

The paper names gold as what destabilises the networks: 10 nm beads are tens of standard deviations
darker than protein, so a network either learns them as its feature or its calibration is pulled by
them. EMAN2 (``e2tomogram.py --erasegold``) and IMOD (``ccderaser``) erase them; this does the same
on the reconstruction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from tomowidgets._validate import as_float32, check_finite, check_positive
from tomowidgets.io import Tomogram

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["erase_gold", "find_gold"]

#: MAD of a Gaussian sample is 0.6745 sd.
_MAD_TO_SD = 1.4826
#: Local background is estimated with Gaussian windows of these widths (voxels), the first that
#: sees enough unmasked voxels around each masked one.
_BACKGROUND_SIGMAS = (3.0, 6.0, 12.0, 24.0)
_MIN_WEIGHT = 0.2
_POLARITIES = ("dark", "bright", "both")


def find_gold(tomo: Tomogram, *, threshold: float = 10.0, extent: float = 4.0, smooth: float = 20.0,
              dilate: int = 1, polarity: str = "both") -> NDArray[np.bool_]:
    """Voxels of gold beads (and their brightest reconstruction halos): extreme outlier blobs.

    The tomogram is smoothed with a Gaussian of `smooth` Å and scaled by its robust spread (median
    and MAD, so the beads do not inflate it). A blob is gold if some voxel lies beyond `threshold`
    robust sd; it extends over its connected voxels beyond `extent` sd (hysteresis) and is then
    grown by `dilate` voxels. Protein stays within ~4 sd, 10 nm gold reaches 30-50 sd.

    Parameters
    ----------
    tomo : Tomogram
        Raw or preprocessed tomogram (voxels are read into memory).
    threshold : float, default 10.0
        Robust sd a blob must exceed somewhere to be gold.
    extent : float, default 4.0
        Robust sd down to which a gold blob extends (must be below `threshold`).
    smooth : float, default 20.0
        Gaussian smoothing in Å before thresholding (sigma), so single noisy voxels never count.
    dilate : int, default 1
        Voxels added around each blob.
    polarity : {"both", "dark", "bright"}, default "both"
        Outliers to find: darker (gold in raw tomograms, protein dark), brighter (gold in inverted
        tomograms, and the bright halos of weighted back-projection), or both.

    Returns
    -------
    ndarray of bool, shape (z, y, x)
        True on gold.

    Raises
    ------
    ValueError
        If `tomo` is not a Tomogram, a parameter is out of range, or the voxels hold NaN/inf.
    """
    if not isinstance(tomo, Tomogram):
        raise ValueError("`tomo` must be a Tomogram (its voxel size sets the smoothing in Å)")
    threshold = check_positive(threshold, "threshold")
    extent = check_positive(extent, "extent")
    if extent >= threshold:
        raise ValueError(f"`extent` ({extent:g}) must be below `threshold` ({threshold:g})")
    smooth = check_positive(smooth, "smooth")
    if isinstance(dilate, bool) or not isinstance(dilate, int) or dilate < 0:
        raise ValueError(f"`dilate` must be an integer >= 0 (voxels), got {dilate!r}")
    if polarity not in _POLARITIES:
        raise ValueError(f"`polarity` must be one of {_POLARITIES}, got {polarity!r}")
    data = as_float32(np.asarray(tomo.data), "tomo")
    check_finite(data, "tomo")
    smoothed = ndimage.gaussian_filter(data, smooth / tomo.apix)
    centre = float(np.median(smoothed))
    spread = _MAD_TO_SD * float(np.median(np.abs(smoothed - centre)))
    if not spread > 0:
        return np.zeros(data.shape, bool)
    score = (smoothed - np.float32(centre)) / np.float32(spread)
    mask = np.zeros(data.shape, bool)
    if polarity in ("dark", "both"):
        mask |= apply_hysteresis_threshold(-score, extent, threshold)
    if polarity in ("bright", "both"):
        mask |= apply_hysteresis_threshold(score, extent, threshold)
    if dilate and mask.any():
        mask = ndimage.binary_dilation(mask, iterations=dilate)
    return mask


def erase_gold(tomo: Tomogram, mask: NDArray[np.bool_] | None = None, *, seed: int = 0) -> Tomogram:
    """Replace gold beads by local background: its mean and sd around each bead, plus noise.

    Parameters
    ----------
    tomo : Tomogram
        Raw or preprocessed tomogram (read into memory).
    mask : ndarray of bool, optional
        Voxels to replace, shape (z, y, x); default ``find_gold(tomo)`` (pass your own
        ``find_gold(tomo, threshold=...)`` to tune it).
    seed : int, default 0
        Seeds the noise, so the result is reproducible.

    Returns
    -------
    Tomogram
        Float32 voxels in memory, same voxel size and origin; unmasked voxels are unchanged.

    Raises
    ------
    ValueError
        If `mask` does not have the tomogram's shape, or as :func:`find_gold`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = rng.normal(size=(16, 32, 32)).astype(np.float32)
    >>> data[6:10, 10:14, 20:24] = -40.0                       # a gold bead, protein-dark
    >>> clean = erase_gold(Tomogram(data, 20.0))
    >>> float(clean.data.min()) > -6, bool(find_gold(Tomogram(data, 20.0))[8, 12, 22])
    (True, True)
    """
    if mask is None:
        mask = find_gold(tomo)
    mask = np.asarray(mask, bool)
    if mask.shape != tomo.shape:
        raise ValueError(f"`mask` has shape {mask.shape} but the tomogram {tomo.shape}")
    data = as_float32(np.array(tomo.data), "tomo")
    check_finite(data, "tomo")
    if mask.any():
        mean, sd = _local_background(data, mask)
        noise = np.random.default_rng(seed).standard_normal(int(mask.sum())).astype(np.float32)
        data[mask] = mean + sd * noise
    return tomo.with_data(data)


def _local_background(data: NDArray[np.float32], mask: NDArray[np.bool_]
                      ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and sd of the unmasked voxels near each masked voxel (normalized Gaussian windows,
    widened where a window sees too few unmasked voxels)."""
    keep = (~mask).astype(np.float32)
    todo = mask.copy()
    mean = np.zeros(int(mask.sum()), np.float32)
    sd = np.zeros_like(mean)
    order = np.flatnonzero(mask)
    for sigma in _BACKGROUND_SIGMAS:
        weight = ndimage.gaussian_filter(keep, sigma)
        first = ndimage.gaussian_filter(data * keep, sigma)
        second = ndimage.gaussian_filter(data * data * keep, sigma)
        ready = todo & (weight >= _MIN_WEIGHT) if sigma != _BACKGROUND_SIGMAS[-1] else todo
        w = np.maximum(weight[ready], 1e-6)
        m = first[ready] / w
        index = np.searchsorted(order, np.flatnonzero(ready))
        mean[index] = m
        sd[index] = np.sqrt(np.maximum(second[ready] / w - m * m, 0.0))
        todo &= ~ready
        if not todo.any():
            break
    return mean, sd
