"""ParticleViewer: picks marked on the slices, and a gallery to exclude bad classes or particles."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from ipycanvas import Canvas, hold_canvas

from tomowidgets.average import classify_2d
from tomowidgets.particles import check_table, extract_subvolumes
from tomowidgets.widgets._display import draw_png, encode_png
from tomowidgets.widgets._gallery import grid_cell, grid_rect, tile_grid, to_display
from tomowidgets.widgets._overlay import circle_depth, pick_circles
from tomowidgets.widgets.slice_browser import SliceBrowser

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.average import Classification2D
    from tomowidgets.io import Tomogram

__all__ = ["ParticleViewer"]

KEPT, EXCLUDED = "#2ecc40", "#ff4136"
_GAP = 6
_TILE_PX = 96  # gallery images are magnified to about this many pixels


class ParticleViewer(widgets.VBox):
    """Picked particles on the slices of a tomogram, and a gallery to exclude bad ones.

    Each pick is marked by a circle on the slices within ±`depth` voxels of its z, the radius
    shrinking away from its own slice (a sphere's sections); kept picks are green, excluded ones red
    and dashed. The gallery below shows the 2D class averages of `classes` (from
    :func:`~tomowidgets.classify_2d`, or made by :meth:`classify`) with their particle counts, or,
    without classes, the z-projections of the first `max_gallery` particles. Clicking a gallery
    image (:meth:`click`) or calling :meth:`toggle` excludes that class (or particle) or takes it
    back; :attr:`kept` says which particles remain, e.g. ``table[viewer.kept]``.

    Parameters
    ----------
    tomo : Tomogram
        The tomogram the particles were picked in (normally the preprocessed one).
    particles : pandas.DataFrame or array of shape (n, 3)
        Particle table with ``z, y, x`` in voxels (e.g. from :func:`~tomowidgets.pick_particles`),
        or the positions.
    classes : Classification2D, optional
        2D classification of these particles, in the table's order.
    radius : float, default 10.0
        Circle radius in voxels on a pick's own slice (about the particle's radius).
    depth : float, optional
        Picks are marked on slices within ± this many voxels; default ``floor(radius)``.
    box : int, optional
        Edge in voxels of the boxes projected for the gallery and :meth:`classify`; default
        ``2 * ceil(1.5 * radius)``.
    columns : int, default 8
        Gallery images per row.
    max_gallery : int, default 64
        Most particles shown in the gallery without classes.
    **browser_options
        Passed to :class:`SliceBrowser`.

    Attributes
    ----------
    browser : SliceBrowser
        The slice view; its ``status`` line is shared.
    table : pandas.DataFrame
        The particles (a copy, index reset).
    classes : Classification2D or None
        The classification shown in the gallery.
    gallery : ipycanvas.Canvas
        The gallery; a click toggles the image under it.

    Raises
    ------
    ValueError
        If the table has no ``z, y, x`` columns, or `classes` does not assign every particle.
    """

    def __init__(self, tomo: Tomogram, particles: pd.DataFrame | ArrayLike, *,
                 classes: Classification2D | None = None, radius: float = 10.0,
                 depth: float | None = None, box: int | None = None, columns: int = 8,
                 max_gallery: int = 64, **browser_options: Any) -> None:
        super().__init__()
        if not isinstance(particles, pd.DataFrame):
            zyx = np.asarray(particles, np.float64).reshape(-1, 3)
            particles = pd.DataFrame({"z": zyx[:, 0], "y": zyx[:, 1], "x": zyx[:, 2]})
        self.tomo = tomo
        self.table = check_table(particles, "particles").reset_index(drop=True)
        self.zyx = self.table[["z", "y", "x"]].to_numpy(np.float64)
        self.radius = float(radius)
        self.depth = circle_depth(self.radius) if depth is None else float(depth)
        self.box = int(box) if box is not None else 2 * int(np.ceil(1.5 * self.radius))
        self.columns, self.max_gallery = int(columns), int(max_gallery)
        self.classes: Classification2D | None = None
        self._excluded: frozenset[int] = frozenset()
        self._items: list[np.ndarray] = []
        self._grid: tuple[bytes, np.ndarray] | None = None

        self.browser = SliceBrowser(tomo, **browser_options)
        self.status = self.browser.status
        guard = self.status.guard
        self.gallery = Canvas(width=1, height=1)
        self.gallery.on_mouse_down(guard(self.click))
        self.gallery.on_client_ready(guard(self.draw_gallery))
        self.n_classes = widgets.BoundedIntText(value=4, min=1, max=100, description="classes",
                                                layout=widgets.Layout(width="140px"))
        self.classify_button = widgets.Button(description="classify",
                                              tooltip="2D classification of the z-projections")
        self.classify_button.on_click(guard(lambda _: self.classify(int(self.n_classes.value))))
        self.summary = widgets.HTML()
        self.browser.on_redraw(guard(self.draw_picks))
        self.children = [self.browser, widgets.HBox([self.n_classes, self.classify_button, self.summary]),
                         widgets.HBox([self.gallery])]  # in an HBox: a VBox would stretch it
        self.set_classes(classes)

    # -- state ---------------------------------------------------------------------------------
    @property
    def kept(self) -> NDArray[np.bool_]:
        """Boolean mask over the particles (table order): True for those not excluded (read-only)."""
        if self.classes is not None:
            kept = ~np.isin(self.classes.assignments, sorted(self._excluded))
        else:
            kept = np.ones(len(self.table), bool)
            kept[sorted(self._excluded)] = False
        kept.flags.writeable = False
        return kept

    @property
    def excluded_classes(self) -> tuple[int, ...]:
        """Classes excluded in the gallery (empty without classes)."""
        return tuple(sorted(self._excluded)) if self.classes is not None else ()

    @property
    def excluded_particles(self) -> tuple[int, ...]:
        """Particles (table rows) not kept."""
        return tuple(int(i) for i in np.flatnonzero(~self.kept))

    # -- actions -------------------------------------------------------------------------------
    def set_classes(self, classes: Classification2D | None) -> None:
        """Show `classes` in the gallery (None: particle projections); clears the exclusions.

        Raises
        ------
        ValueError
            If `classes` does not assign exactly the viewer's particles.
        """
        if classes is not None and len(classes.assignments) != len(self.table):
            raise ValueError(f"`classes` assigns {len(classes.assignments)} particles but the table has "
                             f"{len(self.table)}; classify exactly these particles (in table order)")
        self.classes = classes
        self._excluded = frozenset()
        if classes is not None:
            self._items = [to_display(a) for a in classes.averages]
        else:
            self._items = [to_display(p) for p in self._projections()]
        self._grid = None
        self.draw_gallery()
        self.draw_picks()

    def classify(self, n_classes: int = 4, **options: Any) -> Classification2D:
        """Classify the particles' z-projections (:func:`~tomowidgets.classify_2d`) and show the classes.

        Boxes of `box` voxels are cut around every particle (padded at the edges). `options` go to
        ``classify_2d`` (``iterations``, ``angular_step``, ``rng``...; ``rng`` defaults to 0).

        Raises
        ------
        ValueError
            If ``classify_2d`` refuses the particles (e.g. fewer than `n_classes`).
        """
        self.status.info(f"classifying {len(self.table)} particles into {n_classes} classes…")
        cubes = self._boxes(self.table)
        options.setdefault("rng", 0)
        result = classify_2d(cubes, n_classes, **options)
        self.set_classes(result)
        self.status.info(f"{len(self.table)} particles in {n_classes} classes; click a class to exclude it")
        return result

    def toggle(self, item: int) -> bool:
        """Exclude gallery item `item` (a class, or a particle without classes), or take it back.

        Returns True if it is now excluded.

        Raises
        ------
        IndexError
            If there is no such item.
        """
        if not 0 <= int(item) < len(self._items):
            raise IndexError(f"no gallery item {item}; there are {len(self._items)}")
        item = int(item)
        self._excluded = self._excluded ^ {item}
        self._changed()
        return item in self._excluded

    def exclude(self, items: Iterable[int]) -> None:
        """Exclude exactly the gallery `items` (classes, or particles without classes)."""
        items = frozenset(int(i) for i in items)
        bad = sorted(i for i in items if not 0 <= i < len(self._items))
        if bad:
            raise IndexError(f"no gallery item(s) {bad}; there are {len(self._items)}")
        self._excluded = items
        self._changed()

    def click(self, px: float, py: float) -> int | None:
        """A click on the gallery at canvas point ``(px, py)``: toggles the item there; returns it."""
        if not self._items:
            return None
        item = grid_cell(px, py, len(self._items), self._items[0].shape, self.columns, self._zoom, _GAP)
        if item is not None:
            self.toggle(item)
        return item

    # -- drawing -------------------------------------------------------------------------------
    def draw_picks(self) -> None:
        """Mark the picks near the current slice on the browser's overlay layer."""
        layer, z = self.browser.overlay, self.browser.z
        idx, radii = pick_circles(self.zyx, z, self.radius, self.depth)
        kept = self.kept[idx]
        view = self.browser.viewport
        with hold_canvas():
            layer.clear()
            layer.line_width = 2
            for keep, colour, dash in ((True, KEPT, []), (False, EXCLUDED, [4, 3])):
                rows = kept == keep
                if not rows.any():
                    continue
                py, px = self.zyx[idx[rows], 1] + 0.5, self.zyx[idx[rows], 2] + 0.5
                cx, cy = np.array([self.browser.voxel_to_canvas(y, x) for y, x in zip(py, px, strict=True)]).T
                layer.stroke_style = colour
                layer.set_line_dash(dash)
                layer.stroke_circles(cx, cy, radii[rows] * view.pixels_per_voxel)
            layer.set_line_dash([])
        n = len(self.table)
        self.summary.value = (f"{int(self.kept.sum())} of {n} particles kept · {idx.size} marked "
                              f"near slice {z}")

    def draw_gallery(self) -> None:
        """Redraw the gallery: images, captions, and a red cross over excluded items."""
        if not self._items:
            return
        shape = self._items[0].shape
        if self._grid is None:
            image = tile_grid(self._items, self.columns, self._zoom, _GAP)
            self._grid = (encode_png(image), image)
            self.gallery.height, self.gallery.width = image.shape
            self.gallery.layout.height, self.gallery.layout.width = (f"{n}px" for n in image.shape)
        canvas = self.gallery
        with hold_canvas():
            canvas.clear()
            draw_png(canvas, *self._grid)
            canvas.font = "11px sans-serif"
            for i in range(len(self._items)):
                px, py, w, h = grid_rect(i, shape, self.columns, self._zoom, _GAP)
                excluded = i in self._excluded
                if excluded:
                    canvas.fill_style = "rgba(0, 0, 0, 0.55)"
                    canvas.fill_rect(px, py, w, h)
                    canvas.stroke_style = EXCLUDED
                    canvas.line_width = 2
                    canvas.stroke_line(px, py, px + w, py + h)
                    canvas.stroke_line(px + w, py, px, py + h)
                canvas.fill_style = EXCLUDED if excluded else "#ffff66"
                canvas.fill_text(self._caption(i), px + 3, py + 12)

    # -- internals -----------------------------------------------------------------------------
    @property
    def _zoom(self) -> int:
        return max(1, _TILE_PX // max(1, self._items[0].shape[0])) if self._items else 1

    def _caption(self, i: int) -> str:
        if self.classes is not None:
            return f"{i}: {int(self.classes.counts[i])}"
        return f"#{i}"

    def _changed(self) -> None:
        self.draw_gallery()
        self.draw_picks()
        what = "classes" if self.classes is not None else "particles"
        excluded = sorted(self._excluded)
        self.status.info(f"excluded {what} {excluded}; {int(self.kept.sum())} of {len(self.table)} "
                         "particles kept" if excluded else f"no {what} excluded")

    def _boxes(self, table: pd.DataFrame) -> np.ndarray:
        """Boxes around the particles of `table` (padded at the edges); warnings go to the status."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cubes = extract_subvolumes(self.tomo, table, self.box, pad=True)
        if len(cubes) != len(table):
            raise ValueError(f"{len(table) - len(cubes)} particle(s) lie outside the tomogram: "
                             + "; ".join(str(w.message) for w in caught))
        return cubes

    def _projections(self) -> np.ndarray:
        head = self.table.iloc[:self.max_gallery]
        if head.empty:
            return np.zeros((0, self.box, self.box), np.float32)
        return self._boxes(head).sum(axis=1)
