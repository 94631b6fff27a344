"""A one-page PNG summary of an annotation run: slices with overlays, picks, classes, average, FSC.

matplotlib is imported inside :func:`summary_figure` (through its object-oriented API and the Agg
canvas, so it works headless and in threads), keeping ``import tomowidgets`` free of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tomowidgets.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from tomowidgets.average import AverageResult
    from tomowidgets.merge import LabelMap

__all__ = ["PALETTE", "summary_figure"]

#: Feature colours (RGB in 0..1) in label order; background is transparent.
PALETTE = ((0.95, 0.75, 0.1), (0.2, 0.6, 1.0), (1.0, 0.3, 0.3), (0.3, 0.85, 0.4), (0.8, 0.4, 0.9),
           (0.1, 0.9, 0.9), (1.0, 0.55, 0.2), (0.6, 0.6, 0.6))


def _overlay(labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """RGBA image of a label slice: colour i for label i, transparent background."""
    rgba = np.zeros(labels.shape + (4,), np.float32)
    for i in range(1, int(labels.max()) + 1):
        rgba[labels == i] = (*PALETTE[(i - 1) % len(PALETTE)], alpha)
    return rgba


def _grey(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [1, 99])
    return float(lo), float(hi)


def summary_figure(path: str | Path, tomogram: np.ndarray, labels: LabelMap, *,
                   truth: np.ndarray | None = None, picks: pd.DataFrame | None = None,
                   class_averages: np.ndarray | None = None, result: AverageResult | None = None,
                   title: str = "") -> Path:
    """Write a one-page PNG: the middle slice with the merged labels (and ground truth if given),
    the picks, the 2D class averages, orthogonal slices of the average and its FSC curve.

    Parameters
    ----------
    path : str or Path
        The PNG to write (atomically).
    tomogram : ndarray of shape (z, y, x)
        The (preprocessed) tomogram shown in grey.
    labels : LabelMap
        Merged annotation, drawn in :data:`PALETTE` colours with a legend.
    truth : ndarray of uint8, shape (z, y, x), optional
        Ground-truth labels in the same numbering as `labels`, drawn beside them for comparison.
    picks : pandas.DataFrame, optional
        Particle table (``z, y, x`` voxels); picks within 3 slices of the shown one are circled.
    class_averages : ndarray of shape (k, b, b), optional
        2D class averages of the particles' z-projections.
    result : AverageResult, optional
        The subtomogram average: central XY/XZ/YZ slices and the FSC curve with its resolution.
    title : str
        Printed at the top.

    Returns
    -------
    Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Patch

    z = tomogram.shape[0] // 2
    image = np.asarray(tomogram[z], dtype=np.float32)
    lo, hi = _grey(image)
    fig = Figure(figsize=(16, 9), dpi=90)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 4)
    panels = [("merged annotation", np.asarray(labels.data[z]))]
    if truth is not None:
        panels.append(("ground truth", np.asarray(truth[z])))
    for k, (name, lab) in enumerate(panels):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.imshow(_overlay(lab))
        ax.set_title(f"{name}, slice z={z}")
        ax.axis("off")
    handles = [Patch(color=PALETTE[i % len(PALETTE)], label=n) for i, n in enumerate(labels.names)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles))
    ax = fig.add_subplot(grid[0, len(panels)])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
    if picks is not None:
        near = picks[(picks["z"] - z).abs() <= 3]
        for row in near.itertuples():
            ax.add_patch(Circle((row.x, row.y), 8, fill=False, color="cyan", lw=1.2))
        ax.set_title(f"picks near z={z} ({len(near)} of {len(picks)})")
    ax.axis("off")
    if class_averages is not None and len(class_averages):
        k = len(class_averages)
        sub = grid[0, len(panels) + 1].subgridspec(int(np.ceil(k / 2)), 2)
        for i, avg in enumerate(class_averages):
            a = fig.add_subplot(sub[i // 2, i % 2])
            a.imshow(avg, cmap="gray")
            a.set_title(f"class {i + 1}", fontsize=8)
            a.axis("off")
    if result is not None:
        vol = np.asarray(result.map)
        c = vol.shape[0] // 2
        for k, (name, section) in enumerate((("XY", vol[c]), ("XZ", vol[:, c, :]), ("YZ", vol[:, :, c]))):
            a = fig.add_subplot(grid[1, k])
            a.imshow(section, cmap="gray")
            a.set_title(f"average, {name} section")
            a.axis("off")
        freqs, values = result.fsc
        a = fig.add_subplot(grid[1, 3])
        a.plot(freqs, values, color="k")
        a.axhline(0.143, color="r", lw=0.8, ls="--", label="0.143")
        a.set_xlabel("spatial frequency (1/Å)" if result.apix else "spatial frequency (1/voxel)")
        a.set_ylabel("FSC between half maps")
        a.set_ylim(-0.1, 1.05)
        a.set_title(f"FSC: {result.resolution:.1f} {'Å' if result.apix else 'voxels'} at 0.143")
        a.legend()
    fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
