"""Plots of the widgets as PNG bytes: loss curves and FSC curves (matplotlib, no pyplot).

Figures are built with ``matplotlib.figure.Figure`` and rendered by ``FigureCanvasAgg``, never through
pyplot, so they can be drawn from the training thread and do not depend on the notebook's matplotlib
backend. matplotlib is imported on first use, so importing the widgets stays cheap.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["figure_png", "fsc_png", "loss_png", "run_label"]

#: FSC threshold of the gold-standard resolution.
FSC_THRESHOLD = 0.143


def figure_png(fig: Any, *, dpi: int = 80) -> bytes:
    """PNG bytes of a ``matplotlib.figure.Figure``, rendered with the Agg canvas (thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches itself to `fig`: savefig then needs no pyplot backend
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def run_label(index: int, settings: Mapping[str, Any], *, continued: bool = False) -> str:
    """Legend text of training run `index` (0-based): its settings, short.

    Examples
    --------
    >>> run_label(0, {"epochs": 2, "learning_rate": 0.01, "decay": 0.9, "batch_size": 20,
    ...               "l1": 1e-5, "copies": None})
    '#1: 2 ep, lr 0.01×0.9, batch 20, L1 1e-05, copies auto'
    """
    s = settings
    copies = "auto" if s.get("copies") is None else s["copies"]
    text = (f"#{index + 1}: {s['epochs']} ep, lr {s['learning_rate']:g}×{s['decay']:g}, "
            f"batch {s['batch_size']}, L1 {s['l1']:g}, copies {copies}")
    return text + (" (continued)" if continued else "")


def loss_png(runs: Sequence[Mapping[str, Any]], *, size: tuple[float, float] = (6.0, 3.2)) -> bytes:
    """The loss curves of training runs, one colour each, with their settings in the legend.

    Parameters
    ----------
    runs : sequence of dict
        Each with ``settings`` (dict), ``history`` (dict with a ``loss`` list, one value per epoch)
        and ``start`` (epochs the network had before the run; its curve starts at ``start + 1``).
    size : tuple of 2 float, default (6.0, 3.2)
        Figure size in inches (80 pixels each).

    Returns
    -------
    bytes
        A PNG image.
    """
    fig = _figure(*size)
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        loss = list(run["history"]["loss"])
        start = int(run.get("start", 0))
        label = run_label(i, run["settings"], continued=start > 0)
        if run.get("status") in ("stopped", "failed"):
            label += f" [{run['status']}]"
        ax.plot(np.arange(start + 1, start + len(loss) + 1), loss, color=f"C{i % 10}",
                marker="o" if len(loss) < 30 else None, markersize=3, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    last = max((int(r.get("start", 0)) + len(r["history"]["loss"]) for r in runs), default=1)
    ax.set_xlim(0.5, max(last, 2) + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (L1 term included)")
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "press Train", ha="center", va="center", transform=ax.transAxes,
                color="grey")
    return figure_png(fig)


def fsc_png(freqs: ArrayLike, values: ArrayLike, resolution: float, apix: float | None, *,
            size: tuple[float, float] = (6.0, 3.6)) -> bytes:
    """The FSC curve with the 0.143 line and the resolution where it crosses it.

    Parameters
    ----------
    freqs : array of shape (k,)
        Spatial frequencies in 1/Å (1/voxel when `apix` is None).
    values : array of shape (k,)
        FSC at those frequencies.
    resolution : float
        Resolution at FSC 0.143, in Å (voxels when `apix` is None); NaN or inf hides its marker.
    apix : float or None
        Voxel size in Å, for the units.
    size : tuple of 2 float, default (6.0, 3.6)
        Figure size in inches (80 pixels each).

    Returns
    -------
    bytes
        A PNG image.
    """
    f = np.asarray(freqs, np.float64)
    v = np.asarray(values, np.float64)
    unit = "Å" if apix is not None else "voxels"
    fig = _figure(*size)
    ax = fig.add_subplot()
    ax.plot(f, v, color="C0", marker="o", markersize=3, label="FSC (half maps)")
    ax.axhline(FSC_THRESHOLD, color="C3", linestyle="--", linewidth=1, label=f"FSC = {FSC_THRESHOLD}")
    if math.isfinite(resolution) and resolution > 0:
        ax.axvline(1.0 / resolution, color="C2", linestyle=":", linewidth=1.5,
                   label=f"{resolution:.1f} {unit}")
        ax.set_title(f"resolution {resolution:.1f} {unit} at FSC {FSC_THRESHOLD}", fontsize=10)
    ax.set_xlabel(f"spatial frequency (1/{'Å' if apix is not None else 'voxel'})")
    ax.set_ylabel("FSC")
    ax.set_ylim(min(-0.1, float(np.nanmin(v)) - 0.05) if v.size else -0.1, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return figure_png(fig)
