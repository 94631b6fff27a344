"""PreprocessPreview, AnnotationViewer, ParticleViewer and AverageViewer driven through their controls."""

from __future__ import annotations

import io
from unittest import mock

import ipycanvas
import numpy as np
import pandas as pd
import PIL.Image
import pytest
from conftest import frontend

import tomowidgets.widgets.annotation_viewer as annotation_module
from tomowidgets import LabelMap, Tomogram, average, merge
from tomowidgets.average import AverageResult, Classification2D, resolution
from tomowidgets.preprocess import bandpass, clamp, normalize
from tomowidgets.widgets import (
    AnnotationViewer,
    AverageViewer,
    ParticleViewer,
    PreprocessPreview,
    fit_viewport,
)
from tomowidgets.widgets._gallery import grid_cell, grid_rect
from tomowidgets.widgets._overlay import label_lut, pick_circles, render_labels
from tomowidgets.widgets.average_viewer import central_sections


@pytest.fixture
def tomo():
    rng = np.random.default_rng(2)
    return Tomogram(rng.normal(size=(12, 64, 64)).astype(np.float32), apix=10.0)


# -- PreprocessPreview ----------------------------------------------------------------------------
def test_lowpass_slider_changes_params_and_the_preprocessed_image(tomo):
    preview = PreprocessPreview(tomo, z=5, slab=3)
    assert preview.params == {"lowpass": 20.0, "highpass": 4000.0, "clamp": 3.0}
    before, after, n = preview.images["before"].value, preview.images["after"].value, preview.n_encoded
    preview.lowpass_slider.value = 60.0
    assert preview.params["lowpass"] == 60.0
    assert preview.n_encoded == n + 2                          # the after image and its spectrum
    assert preview.images["after"].value != after and preview.images["before"].value == before
    expected = clamp(normalize(bandpass(tomo.data[2:9], 10.0, lowpass=60.0, highpass=4000.0)), 3.0)[3]
    np.testing.assert_allclose(preview.filtered, expected, atol=1e-5)
    assert "preprocess(tomo, lowpass=60" in preview.params_label.value
    assert "filtered slices 2..8" in preview.status.message


def test_invalid_cutoffs_are_reported_in_the_status_line(tomo):
    preview = PreprocessPreview(tomo)
    n, filtered = preview.n_encoded, preview.filtered
    preview.lowpass_slider.value = 12.0                        # below Nyquist (20 Å at 10 Å/voxel)
    assert isinstance(preview.status.last_error, ValueError) and "Nyquist" in preview.status.message
    assert preview.n_encoded == n and preview.filtered is filtered
    with pytest.raises(ValueError, match="Nyquist"):
        _ = preview.params
    preview.use["lowpass"].value = False                       # low-pass off: valid again
    assert preview.params["lowpass"] is None and preview.status.last_error is None
    preview.use["lowpass"].value = True
    preview.lowpass_slider.value = 50.0
    preview.highpass_slider.value = 40.0
    assert "longer than `lowpass`" in preview.status.message
    preview.use["clamp"].value = False
    preview.highpass_slider.value = 1000.0
    assert preview.params == {"lowpass": 50.0, "highpass": pytest.approx(1000.0), "clamp": None}


def test_z_slider_reads_another_slab(tomo):
    preview = PreprocessPreview(tomo, z=0)
    assert "filtered slices 0..3" in preview.status.message
    before = preview.images["before"].value
    preview.show_slice(11)
    assert preview.z_slider.value == 11 and preview.images["before"].value != before
    assert "filtered slices 8..11" in preview.status.message
    with pytest.raises(ValueError, match=r"slice index in 0\.\.11"):
        preview.show_slice(12)


# -- AnnotationViewer -----------------------------------------------------------------------------
@pytest.fixture
def scores():
    """'a' scores 2.0 in the left half, 'b' 1.5 in the top 4 rows (of 16×16 slices)."""
    a = np.zeros((3, 16, 16), np.float32)
    b = np.zeros((3, 16, 16), np.float32)
    a[:, :, :8] = 2.0
    b[:, :4, :] = 1.5
    return {"a": a, "b": b}


@pytest.fixture
def small_tomo():
    return Tomogram(np.random.default_rng(3).normal(size=(3, 16, 16)).astype(np.float32), apix=10.0)


def test_score_maps_are_merged_on_the_displayed_slice(small_tomo, scores):
    viewer = AnnotationViewer(small_tomo, scores, z=1)
    expected = np.zeros((16, 16), np.uint8)
    expected[:, :8] = 1
    expected[:4, 8:] = 2
    np.testing.assert_array_equal(viewer.label_slice, expected)
    np.testing.assert_array_equal(viewer.label_slice, merge(scores).data[1])
    assert viewer.fractions == {"a": 0.5, "b": 0.125}
    assert "a: 50.00 %" in viewer.legend.value and "b: 12.50 %" in viewer.legend.value
    assert viewer.colours == {"a": "#ff7f0e", "b": "#1f77b4"}


def test_the_displayed_slice_is_merged_at_the_tomograms_voxel_size():
    # a microtubule network scoring 2 on a ring of radius 40 voxels: at 10 Å far wider than a tube
    yy, xx = np.mgrid[:100, :100]
    ring = (np.abs(np.hypot(yy - 50, xx - 50) - 40) <= 4)[np.newaxis].astype(np.float32)
    tomo = Tomogram(np.random.default_rng(0).normal(size=(1, 100, 100)).astype(np.float32), apix=10.0)
    viewer = AnnotationViewer(tomo, {"microtubule": 2.0 * ring})
    assert not viewer.label_slice.any()
    np.testing.assert_array_equal(viewer.label_slice,
                                  merge({"microtubule": Tomogram(2.0 * ring, 10.0)}).data[0])


def test_raising_a_threshold_removes_its_voxels_from_the_slice(small_tomo, scores):
    viewer = AnnotationViewer(small_tomo, scores)
    n = viewer.n_encoded
    viewer.threshold_sliders["a"].value = 2.5
    labels = viewer.label_slice
    assert not (labels == 1).any()
    assert (labels[:4, 8:] == 2).all() and not labels[:4, :8].any()   # a still wins there, but fails
    assert viewer.fractions["a"] == 0.0 and viewer.n_encoded == n + 1
    viewer.set_threshold("b", 5.0)
    assert not viewer.label_slice.any() and viewer.threshold_sliders["b"].max >= 5.0
    with pytest.raises(KeyError, match="no threshold for 'c'"):
        viewer.set_threshold("c", 1.0)


def test_opacity_is_the_overlay_alpha(small_tomo, scores, monkeypatch):
    drawn = []
    monkeypatch.setattr(annotation_module, "draw_png", lambda canvas, png, rgba: drawn.append(rgba))
    viewer = AnnotationViewer(small_tomo, scores, opacity=0.5)
    viewer.opacity_slider.value = 1.0
    assert viewer.opacity == 1.0
    rgba = drawn[-1]
    assert rgba.shape == (512, 512, 4)                             # 16² voxels magnified 32×
    assert set(np.unique(rgba[..., 3]).tolist()) == {0, 255}
    assert tuple(rgba[0, 0]) == (255, 127, 14, 255)                 # 'a' in its palette colour


def test_label_map_is_shown_as_it_is(small_tomo):
    data = np.zeros((3, 16, 16), np.uint8)
    data[2, 5:9, 5:9] = 2
    labels = LabelMap(data, ("membrane", "ribosome"))
    viewer = AnnotationViewer(small_tomo, labelmap=labels, z=2)
    np.testing.assert_array_equal(viewer.label_slice, data[2])
    assert viewer.threshold_sliders == {} and viewer.fractions["ribosome"] == 16 / 256
    viewer.browser.show_slice(0)
    assert not viewer.label_slice.any() and "voxels of slice 0" in viewer.legend.value
    with pytest.raises(KeyError, match="label map has none"):
        viewer.set_threshold("ribosome", 1.0)


def test_hover_reads_out_the_scores(small_tomo, scores):
    viewer = AnnotationViewer(small_tomo, scores)
    px, py = viewer.browser.voxel_to_canvas(1.5, 12.5)             # voxel (y=1, x=12): b only
    frontend(viewer.browser.canvas, "mouse_move", x=px, y=py)
    assert "a 0 · b 1.5 → b" in viewer.readout.value


def test_annotation_viewer_refuses_bad_inputs(small_tomo, scores):
    with pytest.raises(ValueError, match="either `scores`"):
        AnnotationViewer(small_tomo)
    with pytest.raises(ValueError, match=r"`scores\['a'\]` has shape \(3, 8, 8\)"):
        AnnotationViewer(small_tomo, {"a": np.zeros((3, 8, 8), np.float32)})
    with pytest.raises(ValueError, match="not features here"):
        AnnotationViewer(small_tomo, scores, thresholds={"c": 1.0})


def test_disagreement_view_shows_where_annotators_networks_differ(small_tomo, scores, monkeypatch):
    from tomowidgets.merge import consensus

    drawn = []
    monkeypatch.setattr(annotation_module, "draw_png", lambda canvas, png, rgba: drawn.append(rgba))
    other = {name: volume.copy() for name, volume in scores.items()}
    other["a"][:, 10:, :4] = 0.0                                    # one annotator left this corner out
    spread = consensus([scores["a"], other["a"]]).disagreement
    viewer = AnnotationViewer(small_tomo, scores, disagreement=spread, z=1)
    assert viewer.mode == "labels" and tuple(drawn[-1][0, 0]) == (255, 127, 14, 128)
    viewer.mode_toggle.value = "disagreement"                        # the toggle's gesture
    assert viewer.mode == "disagreement"
    levels = viewer.disagreement_slice
    assert (levels[10:, :4] == 15).all() and levels.sum() == 15 * 6 * 4  # spread 1.0 = max
    rgba = drawn[-1]
    assert tuple(rgba[-1, 0]) == (224, 48, 154, 255) and rgba[0, 0, 3] == 0
    assert "9.38 % of voxels ≥ 0.5" in viewer.legend.value
    px, py = viewer.browser.voxel_to_canvas(12.5, 1.5)
    frontend(viewer.browser.canvas, "mouse_move", x=px, y=py)
    assert "disagreement 1" in viewer.readout.value
    viewer.show("labels")
    assert viewer.mode_toggle.value == "labels" and tuple(drawn[-1][0, 0]) == (255, 127, 14, 128)
    with pytest.raises(ValueError, match="no disagreement map"):
        AnnotationViewer(small_tomo, scores).show("disagreement")
    with pytest.raises(ValueError, match=r"`disagreement` has shape \(3, 8, 8\)"):
        AnnotationViewer(small_tomo, scores, disagreement=np.zeros((3, 8, 8), np.float32))


def test_binned_labels_keep_thin_features_visible():
    labels = np.zeros((8, 8), np.uint8)
    labels[:, 3] = 1                                               # a 1-voxel-wide membrane
    labels[6:, 6:] = 2
    view = fit_viewport((8, 8), max_size=4, min_size=1)             # 2×2 display binning
    rgba = render_labels(labels, view, label_lut(["#ff0000", "#0000ff"], 1.0))
    assert rgba.shape == (4, 4, 4)
    assert (rgba[:, 1, 0] == 255).all() and rgba[3, 3, 2] == 255 and rgba[0, 0, 3] == 0


# -- ParticleViewer -------------------------------------------------------------------------------
@pytest.fixture
def picks():
    return pd.DataFrame({"z": [6.0, 6.0, 8.0, 3.0, 9.0, 6.0], "y": [20.0, 40.0, 30.0, 30.0, 44.0, 50.0],
                         "x": [20.0, 20.0, 40.0, 30.0, 44.0, 12.0], "score": np.linspace(1, 2, 6)})


@pytest.fixture
def classes():
    rng = np.random.default_rng(4)
    assignments = np.array([0, 1, 2, 0, 1, 0])
    return Classification2D(averages=rng.normal(size=(3, 12, 12)).astype(np.float32),
                            assignments=assignments, angles=np.zeros(6), shifts=np.zeros((6, 2), np.float32),
                            scores=np.ones(6, np.float32), counts=np.bincount(assignments))


def test_excluding_a_class_flips_kept_for_its_members(tomo, picks, classes):
    viewer = ParticleViewer(tomo, picks, classes=classes, radius=4.0, box=12)
    assert viewer.kept.all() and viewer.excluded_classes == ()
    assert viewer.toggle(1)
    assert viewer.kept.tolist() == [True, False, True, True, False, True]
    assert viewer.excluded_classes == (1,) and viewer.excluded_particles == (1, 4)
    px, py, w, h = grid_rect(0, (12, 12), viewer.columns, viewer._zoom, 6)
    frontend(viewer.gallery, "mouse_down", x=px + w / 2, y=py + h / 2)    # a click on class 0
    assert viewer.excluded_classes == (0, 1) and viewer.kept.tolist() == [False] * 2 + [True] + [False] * 3
    assert viewer.click(px + w / 2, py + h / 2) == 0 and viewer.excluded_classes == (1,)
    assert "4 of 6 particles kept" in viewer.summary.value
    with pytest.raises(IndexError, match="no gallery item 3"):
        viewer.toggle(3)
    assert picks[viewer.kept].index.tolist() == [0, 2, 3, 5]


def test_without_classes_the_gallery_toggles_particles(tomo, picks):
    viewer = ParticleViewer(tomo, picks, radius=4.0, box=8, max_gallery=4)
    assert viewer.classes is None and len(viewer._items) == 4
    viewer.toggle(2)
    assert viewer.excluded_particles == (2,) and viewer.excluded_classes == ()
    viewer.exclude([0, 3])
    assert viewer.kept.tolist() == [False, True, True, False, True, True]
    assert viewer.click(1.0, 1.0) is None                           # in the gap


def test_classify_shows_classes_and_clears_exclusions(tomo, picks):
    viewer = ParticleViewer(tomo, picks, radius=4.0, box=8)
    viewer.toggle(0)
    result = viewer.classify(2, iterations=2)
    assert viewer.classes is result and len(viewer._items) == 2 and viewer.kept.all()
    assert int(result.counts.sum()) == 6 and "6 particles in 2 classes" in viewer.status.message
    viewer.n_classes.value = 7                                      # more classes than particles
    viewer.classify_button.click()
    assert "`n_classes` must be at most" in viewer.status.message and viewer.classes is result
    with pytest.raises(ValueError, match="assigns 6 particles but the table has 5"):
        ParticleViewer(tomo, picks.iloc[:5], classes=result)


def test_picks_are_circles_that_shrink_away_from_their_slice(tomo, picks):
    with mock.patch.object(ipycanvas.Canvas, "stroke_circles") as circles:
        viewer = ParticleViewer(tomo, picks, radius=4.0, depth=3, box=8, z=6)
    x, y, r = (np.asarray(a) for a in circles.call_args.args)
    ppv = viewer.browser.viewport.pixels_per_voxel
    # on slice 6: picks 0, 1, 5 (dz 0), 2 (dz 2), 4 (dz 3); pick 3 (dz 3) too
    idx, radii = pick_circles(viewer.zyx, 6, 4.0, 3)
    assert idx.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(np.sort(r), np.sort(radii * ppv))
    assert r.max() == pytest.approx(4.0 * ppv) and r.min() < 4.0 * ppv
    with mock.patch.object(ipycanvas.Canvas, "stroke_circles") as circles:
        viewer.browser.show_slice(0)
    circles.assert_called_once()                                    # only pick 3 (z=3) is near
    assert np.asarray(circles.call_args.args[0]).size == 1


def test_gallery_geometry_round_trips():
    for i in range(7):
        px, py, w, h = grid_rect(i, (10, 12), 3, 2, 5)
        assert grid_cell(px + 1, py + 1, 7, (10, 12), 3, 2, 5) == i
        assert grid_cell(px + w - 0.5, py + h - 0.5, 7, (10, 12), 3, 2, 5) == i
        assert grid_cell(px + w + 1, py + 1, 7, (10, 12), 3, 2, 5) is None     # gap


# -- AverageViewer --------------------------------------------------------------------------------
def synthetic_result() -> AverageResult:
    box = 16
    zz, yy, xx = np.mgrid[:box, :box, :box] - box // 2
    volume = np.exp(-(zz ** 2 + (yy - 2) ** 2 + xx ** 2) / 8.0).astype(np.float32)
    freqs = np.linspace(0, 0.05, 9)
    values = np.clip(1.2 - 25 * freqs, -0.1, 1.0)
    return AverageResult(map=volume, half_maps=np.stack([volume, volume]), fsc=(freqs, values),
                         resolution=resolution(freqs, values), orientations=pd.DataFrame(index=range(10)),
                         particles=None, apix=10.0, symmetry="c1", history=())


def test_average_viewer_shows_central_sections_and_fsc():
    result = synthetic_result()
    viewer = AverageViewer(result, size=64)
    assert viewer.n_encoded == 3 and viewer.zoom == 4
    assert all(bytes(image.value[:4]) == b"\x89PNG" for image in viewer.sections.values())
    assert bytes(viewer.fsc_plot.value[:4]) == b"\x89PNG"
    assert f"resolution {result.resolution:.1f} Å" in viewer.summary.value
    assert "10 particles" in viewer.summary.value and "symmetry c1" in viewer.summary.value
    xy = viewer.sections["xy"].value
    viewer.offset.value = 3
    assert viewer.n_encoded == 6 and viewer.sections["xy"].value != xy
    sections = central_sections(result.map)
    np.testing.assert_array_equal(sections["xz"], result.map[:, 8, :])
    np.testing.assert_array_equal(sections["yz"], result.map[:, :, 8].T)


def test_average_viewer_sections_carry_a_scale_bar():
    viewer = AverageViewer(synthetic_result(), size=64)  # 16 voxels of 10 Å drawn 4 px each
    assert viewer.scale_bar == "50 Å" and "scale bar 50 Å" in viewer.summary.value
    xy = np.asarray(PIL.Image.open(io.BytesIO(viewer.sections["xy"].value)))
    assert xy.shape == (64, 64) and (xy[-6, 4:24] == 255).all() and xy[-6, 24] == 0  # 20 px long


def test_average_viewer_of_a_real_average():
    rng = np.random.default_rng(0)
    box = 12
    zz, yy, xx = np.mgrid[:box, :box, :box] - box // 2
    blob = np.exp(-(zz ** 2 + (yy - 2) ** 2 + xx ** 2) / 4.0) + 0.7 * np.exp(
        -(zz ** 2 + (yy + 2) ** 2 + (xx - 2) ** 2) / 3.0)
    subvolumes = np.stack([-blob + 0.3 * rng.normal(size=blob.shape) for _ in range(6)]).astype(np.float32)
    result = average(subvolumes, apix=10.0, iterations=2, angular_step=45, progress=False, rng=0)
    viewer = AverageViewer(result)
    assert viewer.n_encoded == 3 and "6 particles" in viewer.summary.value
    with pytest.raises(ValueError, match="cubic"):
        AverageViewer(mock.Mock(map=np.zeros((4, 4, 5)), fsc=(np.zeros(3), np.zeros(3))))
