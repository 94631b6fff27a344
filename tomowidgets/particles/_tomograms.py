"""RELION-5's tomography set, ``tomograms.star``: the tomograms a particles STAR file names.

Public through :mod:`tomowidgets.particles`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import starfile

from tomowidgets._validate import check_positive
from tomowidgets.io import Tomogram, atomic_path, mrc_stem, read_tomogram
from tomowidgets.particles._table import check_name

_NOTES = (
    "# tomowidgets tomography set, RELION-5 style (data_global).",
    "# rlnTomoName matches rlnTomoName in the particles STAR file. rlnTomoSizeX/Y/Z are in pixels of",
    "#   the unbinned tilt series (tomogram voxels x rlnTomoTomogramBinning), as RELION-5 counts them;",
    "#   tomogram voxel size = rlnTomoTiltSeriesPixelSize x rlnTomoTomogramBinning (Angstrom).",
    "# Tilt-series columns (rlnTomoTiltSeriesStarFile, ...) come from the RELION project that",
    "#   reconstructed the tomograms; add them there to extract particles from the tilt series.",
)


def write_tomograms_star(
    path: str | os.PathLike,
    tomograms: Any,
    *,
    tilt_series_apix: float | None = None,
    voltage: float = 300.0,
    spherical_aberration: float = 2.7,
    amplitude_contrast: float = 0.1,
    hand: int = -1,
) -> Path:
    """Write RELION-5's ``tomograms.star`` for tomograms, so picks can be imported with them.

    Parameters
    ----------
    path : str or PathLike
        Destination, conventionally ``tomograms.star`` (written atomically).
    tomograms : path, Tomogram, or a sequence or mapping of them
        The tomograms; a mapping gives the names (``rlnTomoName``), else a file's stem without
        ``.mrc`` (as :func:`pick_particles` and ``tomowidgets pick`` name them). Files are read for
        their header only (memory-mapped).
    tilt_series_apix : float, optional
        Pixel size in Å of the unbinned tilt series the tomograms were reconstructed from; default
        each tomogram's voxel size (binning 1). The binning is the ratio of the two.
    voltage, spherical_aberration, amplitude_contrast : float
        Microscope: kV, mm and fraction (defaults: a 300 kV Krios).
    hand : {-1, 1}, default -1
        ``rlnTomoHand``, the defocus handedness of the reconstruction (RELION's import default).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ValueError
        If a name repeats or is empty, a value is not positive, or `hand` is not ±1.
    FileNotFoundError
        If a tomogram file does not exist.
    """
    items = tomograms.items() if isinstance(tomograms, Mapping) else [
        (None, t) for t in (tomograms if isinstance(tomograms, (list, tuple)) else [tomograms])]
    if hand not in (-1, 1):
        raise ValueError(f"`hand` must be -1 or 1 (rlnTomoHand), got {hand!r}")
    rows = []
    for name, item in items:
        tomo = item if isinstance(item, Tomogram) else read_tomogram(item, mmap=True, check_values=False)
        source = tomo.path if isinstance(item, Tomogram) else Path(item)
        if name is None:
            name = mrc_stem(source) if source is not None else "tomogram"
        pixel = tomo.apix if tilt_series_apix is None else check_positive(tilt_series_apix,
                                                                          "tilt_series_apix")
        binning = tomo.apix / pixel
        nz, ny, nx = tomo.shape
        rows.append({
            "rlnTomoName": check_name(name, "tomogram name"),
            "rlnTomoSizeX": round(nx * binning), "rlnTomoSizeY": round(ny * binning),
            "rlnTomoSizeZ": round(nz * binning),
            "rlnTomoTiltSeriesPixelSize": pixel, "rlnMicrographOriginalPixelSize": pixel,
            "rlnTomoTomogramBinning": binning, "rlnTomoHand": hand,
            "rlnVoltage": check_positive(voltage, "voltage"),
            "rlnSphericalAberration": check_positive(spherical_aberration, "spherical_aberration"),
            "rlnAmplitudeContrast": check_positive(amplitude_contrast, "amplitude_contrast"),
            "rlnTomoReconstructedTomogram": "" if source is None else str(source),
        })
    names = [row["rlnTomoName"] for row in rows]
    if len(set(names)) < len(names):
        raise ValueError(f"tomogram names repeat: {names}; pass a mapping {{name: tomogram}}")
    table = pd.DataFrame(rows)
    text = "\n".join(_NOTES) + "\n\n" + starfile.to_string({"global": table})
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
