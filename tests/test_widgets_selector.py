"""TileSelector driven through click(x, y) and simulated mouse messages; state checked in the set."""

from __future__ import annotations

from unittest import mock

import ipycanvas
import numpy as np
import pytest
from conftest import frontend

from tomowidgets import Tomogram, TrainingSet
from tomowidgets.widgets import TileSelector, initial_mask


@pytest.fixture
def tomo():
    rng = np.random.default_rng(1)
    return Tomogram(rng.normal(size=(8, 128, 128)).astype(np.float32), apix=10.0)


def canvas_point(selector, y, x):
    """Canvas pixels of voxel (y, x)'s centre."""
    return selector.browser.voxel_to_canvas(y + 0.5, x + 0.5)


def test_click_adds_a_positive_tile_with_the_placeholder_mask(tomo, tmp_path):
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts, path=tmp_path / "set.tiles.npz", z=3)
    assert selector.click(*canvas_point(selector, 60, 70)) == "added"
    assert ts.kinds == ("positive",) and ts.centres.tolist() == [[3, 60, 70]]
    assert np.array_equal(ts.mask(0), initial_mask(64))
    assert np.array_equal(ts.image(0), tomo.data[3, 28:92, 38:102])
    assert "1 positive" in selector.counts.value and "0 negative" in selector.counts.value
    loaded = TrainingSet.load(tmp_path / "set.tiles.npz")
    assert loaded.centres.tolist() == [[3, 60, 70]] and loaded.mask(0).sum() == initial_mask(64).sum()
    assert "saved to set.tiles.npz" in selector.status.message


def test_negative_mode_and_click_inside_a_box_removes_it(tomo, tmp_path):
    ts = TrainingSet(64)
    path = tmp_path / "set.tiles.npz"
    selector = TileSelector(tomo, ts, path=path, mode="negative")
    selector.click(*canvas_point(selector, 40, 40))
    selector.mode_buttons.value = "positive"             # the toggle in the browser
    assert selector.mode == "positive"
    selector.click(*canvas_point(selector, 80, 90))
    assert ts.kinds == ("negative", "positive")
    assert selector.click(*canvas_point(selector, 40 + 31, 40 - 32)) == "removed"   # box corner
    assert ts.kinds == ("positive",)
    assert TrainingSet.load(path).kinds == ("positive",)
    selector.browser.show_slice(0)                       # another slice: no box there to remove
    selector.click(*canvas_point(selector, 80, 90))
    assert ts.centres.tolist() == [[4, 80, 90], [0, 80, 90]]


def test_tile_off_the_edge_is_reported_not_raised(tomo, tmp_path):
    ts = TrainingSet(64)
    path = tmp_path / "set.tiles.npz"
    selector = TileSelector(tomo, ts, path=path)
    assert selector.click(*canvas_point(selector, 10, 64)) is None
    assert len(ts) == 0 and not path.exists()
    assert "runs 22 voxel(s) off the edge" in selector.status.message
    assert "⚠" in selector.status.value
    frontend(selector.browser.canvas, "mouse_down", x=2.0, y=2.0)   # through ipycanvas: no exception
    assert isinstance(selector.status.last_error, ValueError)


def test_frontend_mouse_down_adds_a_tile(tomo):
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts)
    px, py = canvas_point(selector, 64, 64)
    frontend(selector.browser.canvas, "mouse_down", x=px, y=py)
    assert ts.centres.tolist() == [[4, 64, 64]]


def test_a_press_that_scrolled_the_notebook_adds_the_tile_aimed_at(tomo):
    # ipycanvas focuses a partly hidden canvas before reading the press: the notebook scrolls
    # 24 canvas pixels and the press arrives 24 pixels off the last hover point (#20, 1)
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts)
    px, py = canvas_point(selector, 70, 50)
    frontend(selector.browser.canvas, "mouse_move", x=px, y=py)
    assert selector.browser.cursor == (4, 70, 50)
    frontend(selector.browser.canvas, "mouse_down", x=px, y=py + 24.0)
    assert ts.centres.tolist() == [[4, 70, 50]]
    frontend(selector.browser.canvas, "mouse_out", x=px, y=py)       # no hover known: the press's own
    qx, qy = canvas_point(selector, 40, 90)
    frontend(selector.browser.canvas, "mouse_down", x=qx, y=qy)
    assert ts.centres.tolist() == [[4, 70, 50], [4, 40, 90]]


def test_undo_restores_a_removed_positive_with_its_mask(tomo, tmp_path):
    ts = TrainingSet(64)
    path = tmp_path / "set.tiles.npz"
    selector = TileSelector(tomo, ts, path=path)
    selector.click(*canvas_point(selector, 64, 64))
    painted = np.zeros((64, 64), bool)
    painted[5:9, :] = True
    ts.replace_mask(0, painted)
    selector.click(*canvas_point(selector, 64, 64))
    assert len(ts) == 0
    assert selector.undo() == "removed"
    assert ts.centres.tolist() == [[4, 64, 64]] and np.array_equal(ts.mask(0), painted)
    assert np.array_equal(TrainingSet.load(path).mask(0), painted)
    assert selector.key("u") and len(ts) == 1           # the first click's tile is painted: undo stops
    assert "undo stops at tile 0" in selector.status.message and "click inside its box" in \
        selector.status.message
    selector.click(*canvas_point(selector, 64, 64))      # removing it takes a deliberate click
    assert len(ts) == 0 and selector.undo() == "removed" and np.array_equal(ts.mask(0), painted)


def test_undo_never_drops_painted_work_silently_and_redo_restores_it(tomo, tmp_path):
    # #20, 3: four `u` presses removed three painted tiles, masks included, with no redo
    ts = TrainingSet(64)
    path = tmp_path / "set.tiles.npz"
    selector = TileSelector(tomo, ts, path=path)
    masks = []
    for i, (y, x) in enumerate([(40, 40), (40, 90), (90, 40)]):
        selector.click(*canvas_point(selector, y, x))
        mask = np.zeros((64, 64), bool)
        mask[10 + i, :] = True
        ts.replace_mask(i, mask)                         # painted in a MaskPainter
        masks.append(mask)
    selector.mode = "negative"
    selector.click(*canvas_point(selector, 90, 90))
    for _ in range(4):
        selector.key("u")
    assert ts.kinds == ("positive",) * 3                 # the negative went; undo stops at tile 2
    assert "undo stops at tile 2: its mask was painted after it was added (64 px)" in \
        selector.status.message
    loaded = TrainingSet.load(path)
    assert [int(loaded.mask(i).sum()) for i in range(len(loaded))] == [64, 64, 64]
    assert selector.key("r") and ts.kinds == ("positive",) * 3 + ("negative",)   # redo the negative
    assert len(TrainingSet.load(path)) == 4
    assert selector.redo() is None and "nothing to redo" in selector.status.message
    assert selector.undo() == "added"                    # the negative again, then a click on
    selector.click(*canvas_point(selector, 90, 40))      # tile 2 removes it, mask and all;
    assert len(ts) == 2 and selector.undo() == "removed"  # undo brings the painted tile back
    assert np.array_equal(ts.mask(2), masks[2]) and np.array_equal(TrainingSet.load(path).mask(2),
                                                                    masks[2])
    assert selector.key("z", shift=True, ctrl=True) and len(ts) == 2   # ctrl+shift+z redoes the click
    assert selector.key("r") is True and "nothing to redo" in selector.status.message
    selector.mode = "negative"
    selector.click(*canvas_point(selector, 90, 90))      # a new change: the redo history is gone
    selector.undo()
    selector.click(*canvas_point(selector, 40, 40))
    assert selector.redo() is None


def test_changes_are_announced_to_registered_callbacks(tomo):
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts)
    events = []
    assert selector.on_change(lambda action, index: events.append((action, index))) is not None
    selector.click(*canvas_point(selector, 64, 64))
    selector.click(*canvas_point(selector, 64, 64))
    assert events == [("added", 0), ("removed", 0)]


def test_boxes_are_drawn_for_the_current_slice_only(tomo):
    ts = TrainingSet(64)
    other = Tomogram(tomo.data, apix=10.0, path=None)
    ts.add_negative(other, 2, 64, 64)
    selector = TileSelector(tomo, ts, z=2)
    with mock.patch.object(ipycanvas.Canvas, "stroke_rects") as stroke_rects:
        selector.click(*canvas_point(selector, 40, 40))      # inside tile 0's box: removes it
        selector.click(*canvas_point(selector, 40, 40))
        selector.click(*canvas_point(selector, 90, 90))
        selector.mode = "negative"
        selector.key("n")
    assert ts.kinds == ("positive", "positive")
    x, y, w, h = stroke_rects.call_args.args
    assert sorted(np.asarray(x).tolist()) == [8 * 4, 58 * 4] and np.all(np.asarray(w) == 256)
    with mock.patch.object(ipycanvas.Canvas, "stroke_rects") as stroke_rects:
        selector.browser.show_slice(5)
    stroke_rects.assert_not_called()


def test_voxel_size_mismatch_is_reported(tomo):
    ts = TrainingSet(64, apix=20.0)
    selector = TileSelector(tomo, ts)
    assert selector.click(*canvas_point(selector, 64, 64)) is None
    assert "10 Å/voxel but the training set holds tiles at 20" in selector.status.message


def test_autosave_failure_is_shown_and_the_tile_kept(tomo, tmp_path):
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts, path=tmp_path / "missing" / "dir" / "set.tiles.npz")
    with mock.patch.object(TrainingSet, "save", side_effect=OSError("disk full")):
        assert selector.click(*canvas_point(selector, 64, 64)) == "added"
    assert len(ts) == 1 and "NOT saved" in selector.status.message and "disk full" in selector.status.message


def test_hover_previews_the_tile_box(tomo):
    selector = TileSelector(tomo, TrainingSet(64))
    with mock.patch.object(ipycanvas.Canvas, "stroke_rect") as stroke_rect:
        frontend(selector.browser.canvas, "mouse_move", x=256.0, y=256.0)
    (px, py, w, h), _ = stroke_rect.call_args
    assert (px, py, w, h) == (128.0, 128.0, 256.0, 256.0)


def test_suggestions_are_shown_in_turn_and_a_click_inside_adds_the_suggested_tile(tomo):
    import pandas as pd

    from tomowidgets.trainset.suggest import suggest_tiles

    scores = np.zeros(tomo.shape, np.float32)
    scores[5, 10:60, 60:120] = 1.0                                   # the network is unsure here...
    scores[1, 64:96, 0:40] = 1.2                                     # ...and a little less here
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts, z=0)
    assert selector.next_button.disabled and selector.next_suggestion() is None
    selector.suggest(suggest_tiles(scores, n=2, tile=64, z_step=1))
    assert selector.suggestion == 0 and selector.browser.z == 5 and not selector.next_button.disabled
    assert "suggestion 1/2 at z=5, y=32, x=96" in selector.status.message
    assert selector.key("s") and selector.browser.z == 1 and selector.suggestion == 1
    selector.key("s")                                                # back to the first
    assert selector.browser.z == 5
    selector.mode = "negative"
    assert selector.click(*canvas_point(selector, 50, 80)) == "added"  # inside the dashed box
    assert ts.centres.tolist() == [[5, 32, 96]] and ts.kinds == ("negative",)
    assert selector.click(*canvas_point(selector, 90, 40)) == "added"  # outside: where clicked
    assert ts.centres[-1].tolist() == [5, 90, 40]
    with pytest.raises(ValueError, match="z, y, x"):
        selector.suggest(pd.DataFrame({"z": [1]}))


def test_boxes_say_their_kind_in_words_not_only_colour(tomo):
    # #20, 9: positive and negative boxes differed only by green and red
    ts = TrainingSet(64)
    selector = TileSelector(tomo, ts, z=4)
    selector.click(*canvas_point(selector, 40, 40))
    selector.mode = "negative"
    selector.click(*canvas_point(selector, 90, 90))
    with mock.patch.object(ipycanvas.Canvas, "fill_text") as fill_text:
        selector.draw_boxes()
    assert sorted(c.args[0] for c in fill_text.call_args_list) == ["+0 to paint", "−1"]
    assert "+ 1 positive" in selector.counts.value and "− 1 negative" in selector.counts.value
    assert "u or ctrl+z undo" in selector.children[1].value     # the shortcuts are listed
