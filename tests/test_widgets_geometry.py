"""Pure parts of the widgets: canvas <-> voxel geometry, display encoding, undo history, status line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tomowidgets.widgets import StatusLine
from tomowidgets.widgets._display import (
    bin_mean,
    encode_png,
    magnify,
    mask_panels,
    render_plane,
    sample_range,
    to_uint8,
)
from tomowidgets.widgets._geometry import (
    Viewport,
    box_rect,
    canvas_to_voxel,
    disk_mask,
    find_tile,
    fit_viewport,
    initial_mask,
    paint_segment,
    panel_point,
    voxel_to_canvas,
    zoom_levels,
    zoom_viewport,
)
from tomowidgets.widgets._history import MaskHistory


@pytest.mark.parametrize(("shape", "step", "scale", "size"), [
    ((128, 128), 1, 4, (512, 512)),
    ((256, 200), 1, 2, (512, 400)),
    ((1024, 1024), 1, 1, (1024, 1024)),
    ((4096, 4096), 4, 1, (1024, 1024)),
    ((3000, 1000), 3, 1, (1000, 334)),
])
def test_fit_viewport_bins_big_slices_and_magnifies_small_ones(shape, step, scale, size):
    view = fit_viewport(shape)
    assert (view.step, view.scale, (view.height, view.width)) == (step, scale, size)
    assert max(view.height, view.width) <= 1024


def test_fit_viewport_rejects_empty_shapes():
    with pytest.raises(ValueError, match="must be positive"):
        fit_viewport((0, 10))


@pytest.mark.parametrize("shape", [(128, 128), (4096, 4096), (3000, 1000), (700, 900)])
@pytest.mark.parametrize("level", [0, 1, 2, 4, 9])
def test_canvas_voxel_round_trip_at_every_zoom(shape, level):
    view = zoom_viewport(fit_viewport(shape), shape, level, centre=(shape[0] * 0.3, shape[1] * 0.6))
    rng = np.random.default_rng(level)
    wy, wx = view.window
    for y, x in zip(rng.integers(view.y0, min(shape[0], view.y0 + wy), 50),
                    rng.integers(view.x0, min(shape[1], view.x0 + wx), 50), strict=True):
        px, py = voxel_to_canvas(y + 0.5, x + 0.5, view)
        assert canvas_to_voxel(px, py, view) == (y, x)
    # every canvas pixel maps into the voxel whose canvas extent contains it
    for px, py in rng.uniform(0, [view.width, view.height], (50, 2)):
        y, x = canvas_to_voxel(px, py, view)
        left, top = voxel_to_canvas(y, x, view)
        right, bottom = voxel_to_canvas(y + 1, x + 1, view)
        assert left <= px < right and top <= py < bottom


def test_zoom_levels_halve_binning_then_double_magnification():
    assert zoom_levels(fit_viewport((3000, 3000)), max_scale=4) == [(3, 1), (2, 1), (1, 1), (1, 2), (1, 4)]
    assert zoom_levels(fit_viewport((128, 128)), max_scale=4) == [(1, 4), (1, 8)]


def test_zoomed_view_is_clamped_to_the_slice():
    base = fit_viewport((1024, 1024))
    view = zoom_viewport(base, (1024, 1024), 2, centre=(1020.0, 3.0))   # scale 4: 256² voxels
    assert (view.step, view.scale, view.window) == (1, 4, (256, 256))
    assert (view.y0, view.x0) == (768, 0)
    assert canvas_to_voxel(0, 0, view) == (768, 0)


def test_box_rect_covers_the_tile_voxels():
    view = Viewport(10, 20, 1, 4, 512, 512)
    px, py, w, h = box_rect(50, 60, 16, view)
    assert (w, h) == (64, 64)
    assert canvas_to_voxel(px + 0.1, py + 0.1, view) == (42, 52)            # first voxel y-8, x-8
    assert canvas_to_voxel(px + w - 0.1, py + h - 0.1, view) == (57, 67)    # last voxel y+7, x+7


def test_find_tile_uses_the_tile_extent_and_slice():
    centres = np.array([[3, 40, 40], [3, 44, 44], [4, 40, 40]])
    assert find_tile(centres, 3, 40, 40, 16) == 1                 # the most recent wins
    assert find_tile(centres, 3, 32, 32, 16) == 0                 # y - 8 is inside
    assert find_tile(centres, 3, 31, 40, 16) is None              # y - 9 is outside
    assert find_tile(centres, 3, 51, 51, 16) == 1                 # 44 + 7
    assert find_tile(centres, 3, 52, 40, 16) is None
    assert find_tile(centres, 4, 40, 40, 16) == 2
    assert find_tile(centres, 3, 40, 40, 16, candidates=[True, False, True]) == 0
    assert find_tile(np.zeros((0, 3)), 0, 0, 0, 16) is None


def test_paint_segment_paints_a_capsule_and_leaves_the_input_alone():
    mask = np.zeros((16, 16), bool)
    out = paint_segment(mask, (8.5, 2.5), (8.5, 12.5), 1.0, True)
    assert not mask.any()
    assert out[7:10, 2:13].all() and out[8, 1] and out[8, 13]
    assert not out[7, 1] and not out[:7].any() and not out[10:].any()
    erased = paint_segment(out, (8.5, 0.0), (8.5, 16.0), 0.1, False)
    assert not erased[8].any() and erased[7].any()
    # points far outside paint nothing; a zero radius still paints the pixel under the point
    assert not paint_segment(mask, (-10, -10), (-9, -30), 2, True).any()
    assert paint_segment(mask, (3.2, 4.7), (3.2, 4.7), 0, True).sum() == 1


def test_initial_mask_is_a_centred_disk():
    mask = initial_mask(64)
    assert mask.shape == (64, 64) and mask[32, 32] and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    assert ys.min() == 64 - 1 - ys.max() and xs.min() == 64 - 1 - xs.max()
    assert np.hypot(ys + 0.5 - 32, xs + 0.5 - 32).max() <= 8
    assert disk_mask(64, (32, 32), 8).sum() == mask.sum()


def test_panel_point_maps_both_panels_and_ignores_the_gap():
    assert panel_point(12, 30, 6, 16, 8) == (0, (5.0, 2.0))
    assert panel_point(96 + 8 + 12, 30, 6, 16, 8) == (1, (5.0, 2.0))
    assert panel_point(100, 30, 6, 16, 8) is None
    assert panel_point(12, 96, 6, 16, 8) is None


def test_bin_mean_averages_blocks_and_pads_edges():
    a = np.arange(36, dtype=np.float32).reshape(6, 6)
    assert np.allclose(bin_mean(a, 2), a.reshape(3, 2, 3, 2).mean(axis=(1, 3)))
    b = bin_mean(a[:5, :5], 2)
    assert b.shape == (3, 3) and b[2, 2] == a[4, 4]
    assert bin_mean(a, 1) is not None and bin_mean(a, 1).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
def test_to_uint8_maps_the_contrast_limits(dtype):
    a = np.array([[0, 10, 20, 30]], dtype)
    assert to_uint8(a, 10, 20).tolist() == [[0, 0, 255, 255]]
    assert to_uint8(a, 5, 5).dtype == np.uint8


def test_render_plane_shows_the_binned_window():
    plane = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    view = Viewport(0, 0, 2, 1, 32, 32)
    img = render_plane(plane, view, 0, 64 * 64)
    assert img.shape == (32, 32) and img.dtype == np.uint8 and img[0, 0] < img[-1, -1]
    zoomed = render_plane(plane, Viewport(32, 32, 1, 4, 256, 256), 0, 64 * 64)
    assert zoomed.shape == (256, 256)
    assert (zoomed[:4, :4] == zoomed[0, 0]).all() and zoomed[0, 0] < zoomed[4, 0]
    assert (zoomed[128:, :] == 0).all()       # below the slice: black


@pytest.mark.parametrize("shape", [(5, 7), (6, 3, 4), (9, 2, 3)])
def test_encode_png_is_lossless(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.array(Image.open(io.BytesIO(encode_png(img))))
    assert np.array_equal(decoded, img)


def test_encode_png_rejects_float_images():
    with pytest.raises(ValueError, match="must be uint8"):
        encode_png(np.zeros((4, 4), np.float32))


def test_sample_range_gives_percentiles_inside_the_range():
    data = np.random.default_rng(1).normal(size=(20, 200, 200)).astype(np.float32)
    lo, hi, vmin, vmax = sample_range(data, max_voxels=10_000)
    assert vmin <= lo < hi <= vmax
    assert -3 < lo < -1.5 and 1.5 < hi < 3
    assert sample_range(np.ones((4, 4)))[:2] == (0.5, 1.5)


def test_mask_panels_show_the_mask_over_the_image_and_alone():
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    rgba = mask_panels(mask, 3, 2, (255, 0, 0, 100))
    assert rgba.shape == (12, 26, 4) and rgba.dtype == np.uint8
    assert rgba[3:6, 6:9].tolist() == [[[255, 0, 0, 100]] * 3] * 3
    assert (rgba[3:6, 14 + 6:14 + 9] == 255).all()
    assert rgba[:, 12:14].sum() == 0 and rgba[0, 0, 3] == 0
    assert np.array_equal(magnify(mask, 3)[::3, ::3], mask) and magnify(mask, 1) is not None


def test_mask_history_undo_redo_and_new_edit_clears_redo():
    h = MaskHistory(limit=2)
    masks = [np.full((2, 2), i % 2 == 1) for i in range(4)]
    for i in range(3):
        h.record(("tile",), masks[i], masks[i + 1])
    first = h.undo()
    assert np.array_equal(first.before, masks[2]) and h.can_redo
    assert h.undo() is not None and h.undo() is None     # limit 2 kept
    assert h.redo() is not None
    h.record(("tile",), masks[0], masks[1])
    assert not h.can_redo and h.redo() is None
    edit = h.undo()
    h.cancel(edit, undone=True)
    assert h.can_undo and not h.can_redo
    assert not edit.before.flags.writeable


def test_status_line_shows_errors_with_their_traceback():
    status = StatusLine()

    @status.guard
    def broken(x):
        raise ValueError(f"bad <{x}>")

    assert broken(1) is None
    assert status.message == "ValueError: bad <1>"
    assert "&lt;1&gt;" in status.value and "traceback" in status.value
    assert isinstance(status.last_error, ValueError)
    status.info("fine")
    assert status.last_error is None and "fine" in status.value
