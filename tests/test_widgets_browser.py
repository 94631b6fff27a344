"""SliceBrowser driven through its public gestures and simulated frontend messages (no browser)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import frontend

import tomowidgets.widgets.slice_browser as browser_module
from tomowidgets import Tomogram
from tomowidgets.widgets import SliceBrowser


@pytest.fixture
def tomo():
    rng = np.random.default_rng(0)
    return Tomogram(rng.normal(size=(10, 128, 96)).astype(np.float32), apix=8.0, origin=(0.0, 0.0, 0.0))


@pytest.fixture
def sent(monkeypatch):
    """Record every slice image sent to a canvas (instead of drawing it)."""
    images: list[np.ndarray] = []
    monkeypatch.setattr(browser_module, "draw_png", lambda canvas, png, img, *a: images.append(img))
    return images


def test_browser_starts_on_the_middle_slice_with_percentile_contrast(tomo, sent):
    browser = SliceBrowser(tomo)
    assert browser.z == 5 and browser.slider.value == 5
    lo, hi = browser.contrast
    assert -3 < lo < -2 and 2 < hi < 3
    assert (browser.canvas.width, browser.canvas.height) == (384, 512)   # magnified 4x
    assert len(sent) == 1 and sent[0].shape == (512, 384) and sent[0].dtype == np.uint8


def test_same_slice_is_not_encoded_twice(tomo, sent):
    browser = SliceBrowser(tomo)
    browser.show_slice(3)
    browser.show_slice(3)
    browser.slider.value = 3
    assert browser.n_encoded == 2 and len(sent) == 2
    browser.slider.value = 4            # what the frontend does when the slider moves
    assert browser.z == 4 and browser.n_encoded == 3
    browser.redraw(force=True)          # a new browser tab: resent from the cache
    assert browser.n_encoded == 3 and len(sent) == 4


def test_contrast_change_re_encodes_with_new_levels(tomo, sent):
    browser = SliceBrowser(tomo)
    browser.set_contrast(-1.0, 1.0)
    assert browser.contrast_slider.value == (-1.0, 1.0)
    assert browser.n_encoded == 2
    expected = np.clip((tomo.data[5] + 1) * 127.5, 0, 255).astype(np.uint8)
    assert np.abs(sent[-1][::4, ::4].astype(int) - expected).max() <= 1
    browser.contrast_slider.value = (-2.0, 2.0)
    assert browser.contrast == (-2.0, 2.0) and browser.n_encoded == 3
    with pytest.raises(ValueError, match="lo.*< .hi"):
        browser.set_contrast(1, 1)
    browser.set_contrast(-50, 50)
    assert browser.contrast_slider.min <= -50 and browser.contrast_slider.max >= 50


def test_contrast_is_read_out_in_full_and_auto_resets_it(tomo, sent):
    browser = SliceBrowser(tomo)
    browser.set_contrast(-1234.5, 4567.8)
    assert not browser.contrast_slider.readout  # its own readout clipped such ranges
    assert "black -1234" in browser.contrast_readout.value
    assert "white 4568" in browser.contrast_readout.value and "8 Å/voxel" in browser.contrast_readout.value
    browser.auto_contrast()
    lo, hi = browser.contrast
    assert -3 < lo < -2 and 2 < hi < 3 and f"white {hi:.4g}" in browser.contrast_readout.value


def test_the_slice_carries_a_scale_bar_that_follows_the_zoom(tomo, sent):
    browser = SliceBrowser(tomo)  # 8 Å voxels drawn 4 px each on a 384 px wide canvas
    assert browser.scale_bar == "20 nm"  # 100 px: the round length nearest a fifth of the width
    browser.zoom_in()
    browser.zoom_in()
    assert browser.viewport.pixels_per_voxel == 16 and browser.scale_bar == "50 Å"


def test_show_slice_rejects_indices_outside_the_tomogram(tomo):
    browser = SliceBrowser(tomo)
    with pytest.raises(ValueError, match=r"slice index in 0\.\.9, got 10"):
        browser.show_slice(10)


def test_keys_and_wheel_step_through_slices(tomo):
    browser = SliceBrowser(tomo, z=0)
    assert browser.key("ArrowUp") and browser.z == 1
    browser.key(".")
    browser.key("PageUp")
    assert browser.z == 9                      # clipped at the last slice
    browser.key("Home")
    assert browser.z == 0
    assert not browser.key("q")
    frontend(browser.canvas, "key_down", key="ArrowRight", shift_key=False, ctrl_key=False,
             meta_key=False)
    assert browser.z == 1
    browser.wheel(0, 100)                      # one notch of a mouse wheel in Chromium: one slice
    assert browser.z == 2
    browser.wheel(0, 60)
    browser.wheel(0, 60)                       # small trackpad deltas add up
    assert browser.z == 3
    frontend(browser.canvas, "mouse_wheel", x=0, y=-100)
    assert browser.z == 2


def test_hover_shows_voxel_and_angstrom_position(tomo):
    browser = SliceBrowser(tomo, z=2)
    seen = []
    assert browser.on_hover(seen.append) is not None
    assert browser.hover(4 * 10 + 1, 4 * 20 + 3) == (2, 20, 10)
    assert browser.cursor == (2, 20, 10)
    text = browser.label.value
    assert "x 10 · y 20 · z 2 voxel" in text and "x 80.0 · y 160.0 · z 16.0 Å" in text
    assert f"{tomo.data[2, 20, 10]:.4g}" in text
    frontend(browser.canvas, "mouse_move", x=4 * 95 + 2, y=4)
    assert browser.cursor == (2, 1, 95)
    assert browser.hover(4 * 96 + 1, 10) is None and browser.cursor == ()
    assert seen == [(2, 20, 10), (2, 1, 95), None]


def test_zoom_and_pan_keep_canvas_and_voxels_consistent(tomo, sent):
    browser = SliceBrowser(tomo)
    browser.zoom_in(4 * 80 + 2, 4 * 100 + 2)        # around voxel (100, 80): scale 8
    view = browser.viewport
    assert view.scale == 8 and view.window == (64, 48)
    assert sent[-1].shape == (512, 384)
    z, y, x = browser.canvas_to_voxel(*browser.voxel_to_canvas(100.5, 80.5))
    assert (y, x) == (100, 80)
    assert (view.y0, view.x0) == (64, 48)            # clamped at the bottom-right corner
    browser.pan(-40, -40)
    assert (browser.viewport.y0, browser.viewport.x0) == (24, 8)
    browser.key("ArrowLeft", shift=True)              # pans instead of stepping
    assert browser.viewport.x0 == 0 and browser.z == 5
    browser.zoom_out()
    browser.zoom_out()
    assert browser.zoom == 0 and browser.viewport == browser.base
    browser.key("+")
    browser.fit()
    assert browser.viewport == browser.base


def test_big_slices_are_display_binned_to_fit_the_window():
    data = np.zeros((2, 2100, 3000), np.float32)
    data[:, :1050] = 1.0
    default = SliceBrowser(Tomogram(data[:, :1024, :1024], apix=5.0))
    assert (default.base.step, default.canvas.width, default.canvas.height) == (2, 512, 512)
    assert default.canvas.layout.width == "512px" and default.canvas.layout.height == "512px"
    browser = SliceBrowser(Tomogram(data, apix=5.0), max_size=1024)
    assert (browser.base.step, browser.canvas.width, browser.canvas.height) == (3, 1000, 700)
    assert browser.canvas_to_voxel(999.9, 699.9) == (1, 2099, 2999)
    assert browser.canvas_to_voxel(1000.1, 10) is None
    browser.zoom_in(500, 350)
    assert browser.viewport.step == 2
    browser.zoom_in(500, 350)
    assert browser.viewport.step == 1 and browser.viewport.window == (700, 1000)


def test_section_views_follow_the_cursor(tomo):
    browser = SliceBrowser(tomo, sections=True)
    sections = browser.sections
    assert (sections.xz.width, sections.xz.height) == (384, 40)
    assert (sections.yz.width, sections.yz.height) == (40, 512)
    browser.hover(10, 10)
    browser.hover(11, 11)               # same voxel row and column: nothing re-encoded
    assert sections.n_encoded == 2
    browser.hover(10, 50)
    assert sections.n_encoded == 3


def test_errors_in_callbacks_are_shown_in_the_status_line(tomo):
    browser = SliceBrowser(tomo)

    @browser.on_hover
    def broken(voxel):
        raise RuntimeError("overlay failed")

    frontend(browser.canvas, "mouse_move", x=5, y=5)    # must not raise into ipywidgets
    assert browser.status.message == "RuntimeError: overlay failed"
    assert "traceback" in browser.status.value
