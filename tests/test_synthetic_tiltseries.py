"""The tilt-series imaging model: real-space projection, per-tilt optics, weighted back-projection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage as ndi

from tomowidgets.synthetic import (
    SyntheticCell,
    make_cell,
    missing_wedge_mask,
    project,
    reference_map,
    tilt_angles,
    weighted_back_projection,
)
from tomowidgets.synthetic._tiltseries import _image_tilt_series, _optics, _ray_matrix, dose_symmetric_order

SMALL = (32, 128, 128)


@pytest.fixture(scope="module")
def cell() -> SyntheticCell:
    return make_cell(SMALL, seed=3, imaging="tilt_series")


def _blobs(shape=(40, 48, 64), second=True):
    vol = np.zeros(shape, np.float32)
    vol[20, 24, 30] = 1.0
    if second:
        vol[12, 10, 48] = 0.5
    return ndi.gaussian_filter(vol, 2.0) / ndi.gaussian_filter(vol, 2.0).max()


def test_a_ray_through_n_voxels_of_unit_density_sums_to_n():
    slab = np.ones((16, 8, 40), np.float32)
    np.testing.assert_allclose(project(slab, np.array([0.0]))[0], 16.0, rtol=1e-5)
    tilted = project(slab, np.array([60.0]))[0]
    # at 60° a ray crosses the 16-voxel slab over 32 voxels, wherever it stays inside the plane
    np.testing.assert_allclose(tilted[:, 20], 32.0, rtol=0.05)


def test_rays_off_the_tilt_axis_cross_the_whole_slab_too():
    # at 60° the ray through detector pixel u crosses the slab's mid-plane u tan(60°) from where
    # the ray through the axis does; every ray that stays inside the plane sums to 2 x 16
    slab = np.ones((16, 4, 128), np.float32)
    tilted = project(slab, np.array([-60.0, 60.0]))
    inside = slice(64 - 24, 64 + 24)     # |u| < cos(60°) (64 - 8 tan 60°): inside the plane
    np.testing.assert_allclose(tilted[:, :, inside], 32.0, rtol=0.05)
    # and a point near the side of the field reconstructs as one near the axis does
    points = np.zeros((32, 4, 128), np.float32)
    points[6, 2, 64], points[26, 2, 118] = 1.0, 1.0
    angles = tilt_angles(60.0, 3.0)
    rec = weighted_back_projection(project(points, angles), angles, 32)
    assert rec[26, 2, 118] == pytest.approx(rec[6, 2, 64], rel=0.1)


def test_a_specimen_that_goes_on_beyond_the_field_shows_no_band_at_its_sides():
    # A cell section is wider than the field of view: at high tilt the rays through the field's
    # sides cross it partly outside the field. Imaging the field alone cut those rays short, and
    # a uniform slab came back brightening over the outermost voxels by 1.4x its middle value,
    # a band that the networks took for a membrane.
    slab = np.ones((64, 4, 256), np.float32)
    optics = dict(tilt_range=60.0, tilt_step=3.0, dose=0.0, alignment_error=0.0, defocus=3.0,
                  ctf=False, phase_flip=False, snr=None, rng=0, voltage=300.0, cs=2.7,
                  amplitude_contrast=0.07)
    profile = _image_tilt_series(slab, 10.0, **optics)[0].mean(axis=(0, 1))
    middle = abs(profile[120:136].mean())
    for side in (profile[:5], profile[::-1][:5]):
        assert abs(side[0] - side[4]) < 0.2 * middle
    # a particle's box is imaged alone, in vacuum: nothing around it is projected
    isolated = _image_tilt_series(slab, 10.0, isolated=True, **optics)[0].mean(axis=(0, 1))
    assert abs(isolated[0] - isolated[4]) > middle


def test_back_projection_is_the_adjoint_of_projection():
    rng = np.random.default_rng(0)
    a = _ray_matrix(12, 30, 37.0)
    plane, ray = rng.standard_normal(12 * 30), rng.standard_normal(30)
    assert np.dot(a @ plane, ray) == pytest.approx(np.dot(plane, a.T @ ray), rel=1e-5)


def test_tilts_all_round_reconstruct_the_volume():
    vol = _blobs()
    angles = tilt_angles(90.0, 1.0)
    rec = weighted_back_projection(project(vol, angles), angles, vol.shape[0])
    assert np.corrcoef(rec.ravel(), vol.ravel())[0, 1] > 0.99
    assert rec[20, 24, 30] == pytest.approx(1.0, abs=0.08)  # less the interpolation's blur


def test_a_limited_tilt_range_leaves_a_missing_wedge_made_by_the_geometry():
    vol = _blobs((48, 48, 48), second=False)
    angles = tilt_angles(60.0, 3.0)
    rec = weighted_back_projection(project(vol, angles), angles, 48)
    # the blob is stretched along z (the beam) and not along x
    peak = rec[20, 24, 30]
    assert rec[23, 24, 30] / peak > rec[20, 24, 33] / peak + 0.1
    power = np.abs(scipy.fft.rfftn(rec)) ** 2
    kept = missing_wedge_mask(rec.shape, 50.0)  # well inside the measured range
    lost = ~missing_wedge_mask(rec.shape, 70.0)  # well inside the wedge
    assert power[lost].mean() < 0.05 * power[kept].mean()


def test_the_series_starts_at_zero_and_alternates_outwards():
    angles = tilt_angles(60.0, 3.0)
    assert len(angles) == 41 and angles[0] == -60.0 and angles[-1] == 60.0
    order = dose_symmetric_order(angles)
    assert order[angles == 0.0][0] == 0
    assert sorted(order) == list(range(41))
    assert order[angles == 60.0][0] >= 39 and order[angles == -60.0][0] >= 39


def _point_images(positions, shape=(32, 256)):
    images = np.zeros((len(positions), *shape), np.float32)
    for image, x in zip(images, positions, strict=True):
        image[shape[0] // 2, x] = 1.0
    return images


def _optics_of(images, angles, *, dose=0.0, gradient=True):
    return _optics(images, np.asarray(angles, float), 10.0, ctf=True, phase_flip=False, defocus=3.0,
                   dose=dose, shifts=np.zeros((len(angles), 2)), voltage=300.0, cs=2.7,
                   amplitude_contrast=0.07, gradient=gradient)


@pytest.mark.parametrize(("angle", "gradient", "same"), [(0.0, True, True), (60.0, True, False),
                                                         (60.0, False, True)])
def test_a_tilted_image_is_out_of_focus_by_its_height_across_the_tilt_axis(angle, gradient, same):
    # the same point 100 voxels (1000 Å) left or right of the axis: at 60° that is ±0.17 µm of focus
    left, right = 28, 228
    a, b = _optics_of(_point_images((left, right)), [angle, angle], gradient=gradient)
    response_left, response_right = a[16, left - 20:left + 21], b[16, right - 20:right + 21]
    difference = np.abs(response_left - response_right).max() / np.abs(response_left).max()
    assert (difference < 1e-4) == same


def test_the_last_tilts_recorded_have_lost_the_fine_detail_to_the_dose():
    angles = [0.0, 60.0]  # 0° is recorded first (30 e/Å² on average), 60° last (90 e/Å²)
    first, last = _optics_of(_point_images((128, 128)), angles, dose=120.0, gradient=False)
    # near Nyquist (20 Å) the signal fades to 1/e after ~40 e/Å²
    finest = [np.abs(scipy.fft.rfft2(image))[:, 110:].mean() for image in (first, last)]
    assert finest[1] / finest[0] == pytest.approx(np.exp(-60 / (2 * 40)), rel=0.15)


def test_cell_is_dark_where_dense_has_the_snr_asked_for_and_repeats_with_its_seed(cell):
    assert cell.imaging == "tilt_series"
    noise = cell.tomogram.data - cell.noiseless
    assert np.var(cell.noiseless) / np.var(noise) == pytest.approx(0.5, rel=1e-3)
    ice = ~np.any(list(cell.labels.values()), axis=0)
    for feature in ("membrane", "ribosome"):
        assert cell.noiseless[cell.labels[feature]].mean() < cell.noiseless[ice].mean()
    again = make_cell(SMALL, seed=3, imaging="tilt_series")
    np.testing.assert_array_equal(again.tomogram.data, cell.tomogram.data)
    fourier = make_cell(SMALL, seed=3)
    for name, mask in cell.labels.items():  # the same layout, imaged otherwise
        np.testing.assert_array_equal(fourier.labels[name], mask)
    assert np.corrcoef(fourier.noiseless.ravel(), cell.noiseless.ravel())[0, 1] < 0.95


def test_repr_and_reference_say_how_the_cell_was_imaged(cell):
    assert "WBP of ±60° tilts in 3° steps, 120 e/Å²" in repr(cell)
    ref = reference_map(cell, 24)
    assert ref.shape == (24, 24, 24)
    assert ref[12, 12, 12] < 0  # the ribosome's dense core is dark, as in the cell


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imaging": "wbp"}, "`imaging` must be one of"),
        ({"tilt_step": 0.0}, "`tilt_step`"),
        ({"dose": -1.0}, "`dose`"),
        ({"alignment_error": -0.5}, "`alignment_error`"),
    ],
)
def test_bad_tilt_series_parameters_raise_a_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_cell(SMALL, **{"imaging": "tilt_series", **kwargs})
