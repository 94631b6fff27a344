"""Notebook widgets to browse tomograms and build training sets (JupyterLab, ipycanvas).

Three layers (house rules 15-17): the state a person creates lives in core objects
(:class:`~tomowidgets.TrainingSet`); geometry and image encoding are pure functions
(:mod:`tomowidgets.widgets._geometry`, :mod:`tomowidgets.widgets._display`); the widgets only bind
mouse, keyboard and controls to them. Every gesture is a public method (``click(x, y)``,
``press/drag/release(x, y)``, ``hover(x, y)``, ``show_slice(z)``), so the widgets work and are
tested without a browser. Each widget is an ``ipywidgets.VBox``: put it last in a cell to show it.

Examples
--------
>>> import tomowidgets as tw
>>> from tomowidgets.widgets import MaskPainter, TileSelector
>>> cell = tw.synthetic.make_cell((32, 128, 128), seed=0)               # doctest: +SKIP
>>> tomo = tw.preprocess(cell.tomogram, progress=False)                 # doctest: +SKIP
>>> ts = tw.TrainingSet(64, feature="membrane")                         # doctest: +SKIP
>>> selector = TileSelector(tomo, ts, path="membrane.tiles.npz")        # doctest: +SKIP
>>> painter = MaskPainter(ts, path="membrane.tiles.npz")                # doctest: +SKIP
>>> painter.follow(selector)                                            # doctest: +SKIP
"""

from tomowidgets.widgets._display import encode_png, render_plane
from tomowidgets.widgets._geometry import (
    Viewport,
    canvas_to_voxel,
    fit_viewport,
    initial_mask,
    paint_segment,
    voxel_to_canvas,
    zoom_viewport,
)
from tomowidgets.widgets._history import MaskHistory
from tomowidgets.widgets._overlay import PALETTE
from tomowidgets.widgets._status import StatusLine
from tomowidgets.widgets.annotation_viewer import AnnotationViewer
from tomowidgets.widgets.average_viewer import AverageViewer
from tomowidgets.widgets.mask_painter import MaskPainter
from tomowidgets.widgets.particle_viewer import ParticleViewer
from tomowidgets.widgets.preprocess_preview import PreprocessPreview
from tomowidgets.widgets.slice_browser import SliceBrowser
from tomowidgets.widgets.tile_selector import TileSelector
from tomowidgets.widgets.training_monitor import TrainingMonitor

__all__ = [
    "AnnotationViewer",
    "AverageViewer",
    "MaskHistory",
    "MaskPainter",
    "PALETTE",
    "ParticleViewer",
    "PreprocessPreview",
    "SliceBrowser",
    "StatusLine",
    "TileSelector",
    "TrainingMonitor",
    "Viewport",
    "canvas_to_voxel",
    "encode_png",
    "fit_viewport",
    "initial_mask",
    "paint_segment",
    "render_plane",
    "voxel_to_canvas",
    "zoom_viewport",
]
