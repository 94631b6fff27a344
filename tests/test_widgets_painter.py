"""MaskPainter driven through press/drag/release; the masks are checked in the set and on disk."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import PIL.Image
import pytest
from conftest import frontend

import tomowidgets.widgets.mask_painter as painter_module
from tomowidgets import Tomogram, TrainingSet
from tomowidgets.widgets import MaskPainter, TileSelector, initial_mask
from tomowidgets.widgets._display import sample_range, to_uint8
from tomowidgets.widgets.mask_painter import GAP

ZOOM = 6


def at(row: float, col: float, panel: int = 0) -> tuple[float, float]:
    """Canvas point of continuous tile coordinates (row, col) on a 16-px tile's panel."""
    return panel * (16 * ZOOM + GAP) + col * ZOOM, row * ZOOM


@pytest.fixture
def tomo():
    return Tomogram(np.random.default_rng(2).normal(size=(4, 48, 48)).astype(np.float32), apix=10.0)


@pytest.fixture
def ts(tomo):
    ts = TrainingSet(16)
    ts.add_negative(tomo, 0, 10, 10)
    ts.add_positive(tomo, 1, 20, 20, initial_mask(16))
    ts.add_positive(tomo, 2, 30, 30, initial_mask(16))
    return ts


@pytest.fixture
def painter(ts, tmp_path):
    return MaskPainter(ts, path=tmp_path / "set.tiles.npz", zoom=ZOOM, radius=0.5)


def stroke(painter, points, panel=0):
    painter.press(*at(*points[0], panel))
    for p in points[1:-1]:
        painter.drag(*at(*p, panel))
    return painter.release(*at(*points[-1], panel))


def test_painter_shows_the_first_positive_tile(painter):
    assert painter.index == 1 and painter.positives == [1, 2]
    assert painter.chooser.value == 1 and len(painter.chooser.options) == 2
    assert (painter.canvas.width, painter.canvas.height) == (2 * 96 + GAP, 96)
    assert "z 1, y 20, x 20" in painter.info.value


def test_a_stroke_paints_the_set_and_is_autosaved(painter, ts, tmp_path):
    assert stroke(painter, [(1.5, 1.5), (1.5, 6.5), (1.5, 12.5)])
    expected = initial_mask(16)
    expected[1, 1:13] = True
    assert np.array_equal(ts.mask(1), expected)
    assert np.array_equal(TrainingSet.load(tmp_path / "set.tiles.npz").mask(1), expected)
    assert "saved to set.tiles.npz" in painter.status.message


def test_strokes_on_the_mask_panel_paint_the_same_pixels(painter, ts):
    stroke(painter, [(14.5, 0.5), (14.5, 3.5)], panel=1)
    assert ts.mask(1)[14, :4].all() and ts.mask(1)[14].sum() == 4


def test_eraser_and_radius(painter, ts):
    painter.tool_buttons.value = "eraser"
    painter.radius_slider.value = 1.0
    assert painter.tool == "eraser" and painter.radius == 1.0
    stroke(painter, [(8.0, 0.0), (8.0, 16.0)])
    assert not ts.mask(1)[7:9].any() and ts.mask(1)[6].any()


def test_erasing_everything_is_refused_and_the_mask_kept(painter, ts):
    before = ts.mask(1).copy()
    painter.tool = "eraser"
    painter.radius = 16
    assert not stroke(painter, [(8, 8), (8, 9)])
    assert np.array_equal(ts.mask(1), before)
    assert "refused" in painter.status.message and "→ negative" in painter.status.message


def test_undo_and_redo_across_tiles(painter, ts, tmp_path):
    original = ts.mask(1).copy()
    stroke(painter, [(0.5, 0.5), (0.5, 15.5)])
    painted = ts.mask(1).copy()
    painter.next()
    assert painter.index == 2
    assert painter.undo()
    assert painter.index == 1 and np.array_equal(ts.mask(1), original)
    assert np.array_equal(TrainingSet.load(tmp_path / "set.tiles.npz").mask(1), original)
    assert painter.redo() and np.array_equal(ts.mask(1), painted)
    assert painter.undo() and not painter.undo() and "nothing to undo" in painter.status.message
    assert painter.redo() and not painter.redo()


def test_fill_closes_enclosed_holes(painter, ts):
    for a, b in [((2.5, 2.5), (2.5, 12.5)), ((2.5, 12.5), (12.5, 12.5)),
                 ((12.5, 12.5), (12.5, 2.5)), ((12.5, 2.5), (2.5, 2.5))]:
        stroke(painter, [a, b])
    assert not ts.mask(1)[4, 4]
    assert painter.fill()
    assert ts.mask(1)[3:13, 3:13].all()
    assert not painter.fill() and "did not change" in painter.status.message
    assert painter.undo() and not ts.mask(1)[4, 4]


def test_clear_is_refused_with_advice(painter, ts):
    before = ts.mask(1).copy()
    assert not painter.clear()
    assert np.array_equal(ts.mask(1), before)
    assert "cannot be cleared" in painter.status.message


def test_convert_to_negative(painter, ts, tomo, tmp_path):
    with pytest.raises(ValueError, match="needs the tile's tomogram"):
        painter.convert_to_negative()
    painter.tomo = tomo
    assert painter.convert_to_negative() == 2
    assert ts.kinds == ("negative", "positive", "negative")
    assert ts.centres.tolist()[2] == [1, 20, 20]
    assert painter.index == 1 and ts.centres[painter.index].tolist() == [2, 30, 30]
    assert TrainingSet.load(tmp_path / "set.tiles.npz").kinds == ts.kinds


def test_drag_sends_strokes_not_images(painter, ts):
    with mock.patch.object(painter_module, "draw_png") as draw_png, \
            mock.patch.object(painter_module, "encode_png") as encode_png, \
            mock.patch.object(painter.canvas[1], "stroke_line") as stroke_line:
        painter.press(*at(3, 3))
        for col in range(4, 12):
            painter.drag(*at(3, col))
    draw_png.assert_not_called()
    encode_png.assert_not_called()
    assert stroke_line.call_count == 2 * 9     # one segment per panel per event
    x0, y0, x1, y1 = stroke_line.call_args_list[-2].args
    assert (x0, y0, x1, y1) == (10 * ZOOM, 3 * ZOOM, 11 * ZOOM, 3 * ZOOM)
    painter.release()
    assert ts.mask(1)[2, 3:12].all()


def test_mouse_messages_drive_the_gestures(painter, ts):
    canvas = painter.canvas
    frontend(canvas, "mouse_move", x=at(0.5, 0.5)[0], y=3.0)        # no stroke: ignored
    frontend(canvas, "mouse_down", x=at(0.5, 0.5)[0], y=3.0)
    frontend(canvas, "mouse_move", x=at(0.5, 8.5)[0], y=3.0)
    frontend(canvas, "mouse_out", x=at(0.5, 15.5)[0], y=3.0)        # leaving ends the stroke
    frontend(canvas, "mouse_move", x=at(9.5, 15.5)[0], y=9.5 * ZOOM)
    assert ts.mask(1)[0, :16].all() and not ts.mask(1)[9, 15]
    frontend(canvas, "mouse_down", x=float(16 * ZOOM + 2), y=3.0)   # in the gap: nothing
    assert painter.status.last_error is None


def test_a_press_that_scrolled_the_notebook_paints_nothing(painter, ts):
    # the press arrives 30 canvas pixels below the last mouse move: the notebook scrolled under the
    # pointer as ipycanvas focused the canvas (#20, 1); no stroke may start where nobody aimed
    canvas, before = painter.canvas, ts.mask(1).copy()
    frontend(canvas, "mouse_move", x=at(5.5, 5.5)[0], y=at(5.5, 5.5)[1])
    frontend(canvas, "mouse_down", x=at(5.5, 5.5)[0], y=at(5.5, 5.5)[1] + 30.0)
    frontend(canvas, "mouse_move", x=at(5.5, 9.5)[0], y=at(5.5, 9.5)[1] + 30.0)
    frontend(canvas, "mouse_up", x=at(5.5, 9.5)[0], y=at(5.5, 9.5)[1] + 30.0)
    assert np.array_equal(ts.mask(1), before)
    assert "press again" in painter.status.message
    frontend(canvas, "mouse_down", x=at(5.5, 9.5)[0], y=at(5.5, 9.5)[1] + 30.0)   # now it holds still
    frontend(canvas, "mouse_up", x=at(5.5, 9.5)[0], y=at(5.5, 9.5)[1] + 30.0)
    assert ts.mask(1)[10, 9] and not before[10, 9]


def test_chooser_next_prev_and_empty_set(painter, ts):
    painter.chooser.value = 2
    assert painter.index == 2
    painter.next()
    assert painter.index == 1
    painter.prev()
    assert painter.index == 2
    empty = MaskPainter(TrainingSet(16))
    assert empty.index is None and not empty.press(10, 10)
    assert "no positive tile" in empty.status.message
    empty.next()
    assert empty.fill() is False


@pytest.fixture
def followed(tomo, tmp_path):
    """An empty set edited by a selector and a painter that follows it, both autosaving to `path`."""
    ts = TrainingSet(16)
    path = tmp_path / "set.tiles.npz"
    selector = TileSelector(tomo, ts, path=path, z=1)
    painter = MaskPainter(ts, path=path, zoom=ZOOM, radius=0.5)
    painter.follow(selector)
    return ts, path, selector, painter


def test_follow_a_selector(tomo, followed):
    ts, path, selector, painter = followed
    assert painter.index is None
    selector.click(*selector.browser.voxel_to_canvas(20.5, 20.5))
    selector.click(*selector.browser.voxel_to_canvas(30.5, 30.5))
    assert painter.index == 1                           # the newest positive is shown
    assert painter.context.value[:4] == b"\x89PNG"      # around it, from the selector's tomogram
    selector.click(*selector.browser.voxel_to_canvas(20.5, 20.5))   # removes tile 0
    assert painter.index == 0 and ts.centres[0].tolist() == [1, 30, 30]
    stroke(painter, [(0.5, 0.5), (0.5, 3.5)])
    assert TrainingSet.load(path).mask(0)[0, :4].all()
    with mock.patch.object(selector, "refresh") as refresh:
        painter.convert_to_negative()
    refresh.assert_called_once()
    assert ts.kinds == ("negative",) and painter.index is None
    with pytest.raises(ValueError, match="another TrainingSet"):
        painter.follow(TileSelector(tomo, TrainingSet(16)))


def test_the_first_stroke_replaces_the_placeholder_and_undo_brings_it_back(followed):
    # #20, 2: a new positive's disk is a placeholder: it is marked, never trained on, and the first
    # brush stroke replaces it instead of adding to it; what is on disk is what the user painted
    ts, path, selector, painter = followed
    selector.click(*selector.browser.voxel_to_canvas(20.5, 20.5))
    disk = initial_mask(16)
    assert ts.unpainted == (0,) and TrainingSet.load(path).unpainted == (0,)
    assert "(1 to paint)" in selector.counts.value and "placeholder" in painter.info.value
    assert "(to paint)" in painter.chooser.options[0][0]
    stroke(painter, [(0.5, 0.5), (0.5, 3.5)])
    saved = TrainingSet.load(path)
    assert saved.unpainted == () and saved.mask(0).sum() == 4 and saved.mask(0)[0, :4].all()
    assert not (saved.mask(0) & disk).any()                   # nothing of the disk is left
    assert "to paint" not in selector.counts.value and "(to paint)" not in painter.chooser.options[0][0]
    assert painter.undo()                                     # back to the unpainted placeholder
    assert np.array_equal(ts.mask(0), disk) and TrainingSet.load(path).unpainted == (0,)
    assert "(1 to paint)" in selector.counts.value
    assert painter.redo() and ts.unpainted == () and ts.mask(0).sum() == 4
    stroke(painter, [(5.5, 5.5), (5.5, 7.5)])                 # later strokes add, as before
    assert ts.mask(0).sum() == 7


def test_the_eraser_edits_the_placeholder_itself(tomo):
    ts = TrainingSet(16)
    ts.add_positive(tomo, 1, 20, 20, initial_mask(16), painted=False)
    painter = MaskPainter(ts, zoom=ZOOM, radius=0.5)
    painter.tool = "eraser"
    stroke(painter, [(8.5, 8.5), (8.5, 8.5)])
    assert ts.unpainted == () and ts.mask(0).sum() == initial_mask(16).sum() - 1


def test_stale_index_is_refreshed_before_painting(painter, ts):
    ts.remove(0)                                          # changed behind the painter's back
    assert painter.press(*at(0.5, 0.5))
    assert painter.index == 0 and ts.centres[0].tolist() == [1, 20, 20]
    painter.release()
    assert ts.mask(0)[0, 0]


def test_keys_opacity_dab_and_brush_cursor(painter, ts):
    # #20, 8: Ctrl+Z did nothing, the overlay hid what was traced, a dab showed nothing until
    # release and there was no brush cursor
    painter.show_tile(1)
    stroke(painter, [(4.5, 4.5), (4.5, 6.5)])
    painted = ts.mask(1).copy()
    assert painter.key("z", ctrl=True) and not ts.mask(1)[4, 5]          # ctrl+z undoes
    assert painter.key("z", shift=True, ctrl=True) and np.array_equal(ts.mask(1), painted)
    assert painter.key("z", ctrl=True) and painter.key("y", ctrl=True)    # ctrl+y redoes
    assert np.array_equal(ts.mask(1), painted)
    assert painter.key("e") and painter.tool == "eraser" and painter.key("b") and painter.tool == "brush"
    assert painter.key("]") and painter.radius == 1.0 and painter.key("[") and painter.radius == 0.5
    assert painter.key("ArrowRight") and painter.index == 2 and not painter.key("q")
    frontend(painter.canvas, "key_down", key="ArrowLeft", shift_key=False, ctrl_key=False, meta_key=False)
    assert painter.index == 1
    with mock.patch.object(painter_module, "mask_panels", wraps=painter_module.mask_panels) as panels:
        painter.opacity_slider.value = 0.2                                 # the slider redraws
    assert panels.call_args.args[3] == (255, 140, 0, 51)
    with mock.patch.object(painter.canvas[1], "fill_circle") as dab:
        painter.press(*at(8.5, 8.5))
    assert dab.call_count == 2                                             # on both panels, at once
    painter.release()
    with mock.patch.object(painter.canvas[2], "stroke_circle") as cursor:
        frontend(painter.canvas, "mouse_move", x=at(3.5, 3.5)[0], y=at(3.5, 3.5)[1])
    x, y, r = cursor.call_args_list[0].args
    assert (x, y, r) == (3.5 * ZOOM, 3.5 * ZOOM, 0.5 * ZOOM)
    assert "ctrl+z undo" in painter.children[4].value                      # the shortcuts are listed


def test_zoom_redraws_larger_and_strokes_land_on_the_same_tile_pixels(painter, ts):
    painter.set_zoom(9)
    assert painter.zoom == 9 and (painter.canvas.width, painter.canvas.height) == (2 * 16 * 9 + GAP, 16 * 9)
    assert painter.canvas.layout.width == f"{2 * 16 * 9 + GAP}px"  # still one CSS pixel per pixel
    before = ts.mask(1).copy()
    painter.press(3.5 * 9, 14.5 * 9)   # tile pixel (14, 3) at the new zoom
    assert painter.release()
    assert np.argwhere(ts.mask(1) != before).tolist() == [[14, 3]]
    assert painter.key("-") and painter.zoom == 8 and painter.key("+") and painter.zoom == 9
    for _ in range(5):
        painter.zoom_in()
    assert painter.zoom == 12
    with pytest.raises(ValueError, match="`zoom` must be an integer from 2 to 12"):
        painter.set_zoom(1)


def test_contrast_is_each_tiles_own_until_the_user_sets_it(painter, ts, monkeypatch):
    drawn = []
    monkeypatch.setattr(painter_module, "draw_png", lambda canvas, png, img, *a: drawn.append(img))
    painter.show_tile(2)
    auto = painter.contrast_control.value
    assert painter.contrast is None and auto == pytest.approx(sample_range(ts.image(2))[:2])
    painter.contrast_control.slider.value = (-0.5, 0.5)  # the user moves the slider
    assert painter.contrast == (-0.5, 0.5)
    painter.show_tile(1)
    assert painter.contrast_control.value == (-0.5, 0.5)  # kept for the next tile
    image = drawn[-2][::ZOOM, ::ZOOM]                   # drawn[-1] is the mask overlay
    np.testing.assert_array_equal(image, to_uint8(ts.image(1), -0.5, 0.5))
    painter.contrast_control.auto.click()
    assert painter.contrast is None and painter.contrast_control.value == pytest.approx(
        sample_range(ts.image(1))[:2])
    assert "black" in painter.contrast_control.readout.value


def test_the_slice_around_the_tile_is_shown_with_the_tile_outlined(ts, tomo):
    assert MaskPainter(ts).context.value == b""  # no tomogram: nothing to show
    painter = MaskPainter(ts, tomo=tomo)  # tile 1: 16 px at (z 1, y 20, x 20) of a 48² slice
    context = np.asarray(PIL.Image.open(io.BytesIO(painter.context.value)))
    assert context.shape == (44, 44)  # 24 px either side of the centre, clipped at the slice's edge
    lo, hi = painter.contrast_control.value
    np.testing.assert_array_equal(context[20:28, 20:28], to_uint8(tomo.data[1, 20:28, 20:28], lo, hi))
    assert (context[11, 11:29] == 255).all() and (context[10, 10:30] == 0).all()  # tile at 12..27
