"""Dice on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tomowidgets.metrics import dice


def _line(x: int, shape=(3, 5, 9)) -> np.ndarray:
    vol = np.zeros(shape, bool)
    vol[1, :, x] = True
    return vol


def test_identical_volumes_score_one_and_disjoint_zero():
    assert dice(_line(4), _line(4)) == 1.0
    assert dice(_line(1), _line(7)) == 0.0


def test_half_overlap_known_answer():
    a = np.zeros((1, 1, 8), bool)
    b = np.zeros((1, 1, 8), bool)
    a[..., :4] = True
    b[..., 2:6] = True
    assert dice(a, b) == pytest.approx(2 * 2 / 8)


def test_one_voxel_tolerance_forgives_a_one_voxel_shift_but_not_two():
    assert dice(_line(4), _line(5)) == 0.0
    assert dice(_line(4), _line(5), tolerance=1) == 1.0
    assert dice(_line(4), _line(6), tolerance=1) == 0.0
    assert dice(_line(4), _line(6), tolerance=2) == 1.0


def test_tolerance_still_penalises_extra_voxels_far_away():
    truth = _line(4)
    prediction = _line(4) | _line(8)
    assert dice(prediction, truth, tolerance=1) == pytest.approx(2 * 5 / 15)


def test_empty_volumes_agree_perfectly():
    empty = np.zeros((2, 2, 2), bool)
    assert dice(empty, empty) == 1.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="same shape"):
        dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="tolerance"):
        dice(_line(1), _line(1), tolerance=-1)


def test_match_particles_counts_hits_each_way_within_the_radius():
    from tomowidgets.metrics import match_particles

    truth = np.array([[10, 10, 10], [30, 30, 30], [50, 50, 50]])
    found = np.array([[10, 10, 12], [31, 30, 30], [80, 80, 80], [10, 11, 10]])
    r = match_particles(found, truth, radius=2.5)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 0.75 * (2 / 3) / (0.75 + 2 / 3))
    assert match_particles(np.empty((0, 3)), truth, radius=1)["recall"] == 0.0
    with pytest.raises(ValueError, match="radius"):
        match_particles(found, truth, radius=0)


def _ring(shape=(3, 41, 41), radius=14.0, thickness=2.0, gap=False) -> np.ndarray:
    """A ring of known thickness in every slice (a tube along z); `gap` opens a quarter of it."""
    _, y, x = np.indices(shape)
    r = np.hypot(y - shape[1] // 2, x - shape[2] // 2)
    ring = np.abs(r - radius) <= thickness / 2
    if gap:
        ring &= ~((y > shape[1] // 2) & (x > shape[2] // 2))
    return ring


def test_centrelines_thin_a_thick_band_to_one_voxel_at_its_middle():
    from tomowidgets.metrics import centrelines

    band = np.zeros((2, 11, 30), bool)
    band[:, 3:8, 2:28] = True  # rows 3..7: the middle is row 5
    lines = centrelines(band)
    rows = np.nonzero(lines[0, :, 5:25])[0]
    assert set(rows) == {5}
    assert lines.sum(axis=(1, 2)).tolist() == [lines[0].sum()] * 2  # each slice thinned alike
    band.flags.writeable = False  # e.g. a memory-mapped label volume
    assert np.array_equal(centrelines(band), lines)
    with pytest.raises(ValueError, match="2D"):
        centrelines(np.zeros(4, bool))


def test_skeleton_dice_ignores_thickness_but_not_position():
    from tomowidgets.metrics import skeleton_dice

    truth = _ring(thickness=2.0)
    thick = _ring(thickness=5.0)
    assert dice(thick, truth) < 0.7  # voxel overlap punishes the extra thickness...
    assert skeleton_dice(thick, truth) > 0.95  # ...the centreline does not
    shifted = _ring(radius=18.0)
    assert skeleton_dice(shifted, truth) == 0.0  # 4 voxels off: nothing matches within 1 voxel
    assert skeleton_dice(truth, truth, tolerance=0) == 1.0


def test_skeleton_dice_scores_an_open_membrane_by_the_missing_fraction():
    from tomowidgets.metrics import skeleton_dice

    closed, opened = _ring(), _ring(gap=True)
    # three quarters of the centreline found, all of it correct: 2 * 0.75 / 1.75
    assert skeleton_dice(opened, closed) == pytest.approx(2 * 0.75 / 1.75, abs=0.03)
    with pytest.raises(ValueError, match="same shape"):
        skeleton_dice(closed, closed[:2])


def test_f_beta_weights_recall_beta_squared_times_more_than_precision():
    from tomowidgets.metrics import f_beta

    assert f_beta(0.6, 0.9, beta=1) == pytest.approx(2 * 0.6 * 0.9 / 1.5)
    assert f_beta(0.5, 1.0) == pytest.approx(17 * 0.5 / (16 * 0.5 + 1))
    assert f_beta(0.5, 1.0) > f_beta(1.0, 0.5)  # beta = 4: recall matters more
    assert f_beta(float("nan"), 0.0) == 0.0  # nothing picked
    assert np.isnan(f_beta(float("nan"), 0.5))
    with pytest.raises(ValueError, match="beta"):
        f_beta(0.5, 0.5, beta=0)


def test_match_particles_reports_f_beta_with_the_given_beta():
    from tomowidgets.metrics import f_beta, match_particles

    truth = np.array([[10, 10, 10], [30, 30, 30]])
    found = np.array([[10, 10, 11], [60, 60, 60], [70, 70, 70], [80, 80, 80]])
    r = match_particles(found, truth, radius=2, beta=2)
    assert (r["precision"], r["recall"]) == (0.25, 0.5)
    assert r["f_beta"] == pytest.approx(f_beta(0.25, 0.5, beta=2))


def test_fsc_resolution_against_the_true_map_known_answers():
    from tomowidgets.average import rotate_volume
    from tomowidgets.metrics import fsc_resolution
    from tomowidgets.synthetic import make_cell, reference_map

    cell = make_cell((32, 64, 64), seed=0, snr=None)
    truth = reference_map(cell, 32)
    assert truth.shape == (32, 32, 32)
    nyquist = 2 * cell.apix
    assert fsc_resolution(truth, truth, cell.apix, align=False) == pytest.approx(nyquist)
    rng = np.random.default_rng(0)
    noisy = [fsc_resolution(truth + rng.normal(0, level * truth.std(), truth.shape), truth, cell.apix,
                            align=False) for level in (0.3, 1.0, 3.0)]
    assert nyquist < noisy[0] < noisy[1] < noisy[2]  # noise drowns the weak high frequencies first
    turned = rotate_volume(truth, 40.0, 30.0, 20.0, shift=(1.0, -2.0, 0.0))
    assert fsc_resolution(turned, truth, cell.apix, align=False) > 60  # misaligned: looks poor
    assert fsc_resolution(turned, truth, cell.apix) < 30  # aligned first: near Nyquist again


def test_confusion_matrix_counts_true_features_against_merged_labels():
    from tomowidgets.metrics import confusion_matrix

    truth = {"membrane": np.zeros((1, 4, 4), bool), "double_membrane": np.zeros((1, 4, 4), bool)}
    truth["membrane"][0, 0] = True                                  # 4 voxels
    truth["double_membrane"][0, 1:3] = True                         # 8 voxels
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0, :3] = 1                                            # 3 membrane found, 1 missed
    labels[0, 1] = 1                                                # 4 double-membrane voxels called membrane
    labels[0, 2, :2] = 2
    labels[0, 3, 0] = 2                                             # called where nothing is
    m = confusion_matrix(labels, truth, ("membrane", "double_membrane"))
    assert m.tolist() == [[3, 0, 1], [1, 3, 0], [2, 4, 2]]
    assert m.sum() == labels.size
    with pytest.raises(ValueError, match="no label for"):
        confusion_matrix(labels, truth, ("membrane", "ribosome"))
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(labels + 3, truth, ("membrane", "double_membrane"))
    with pytest.raises(ValueError, match=r"`truth\['double_membrane'\]` has shape \(1, 4, 4\)"):
        confusion_matrix(labels[:, :2], truth, ("membrane", "double_membrane"))


def test_face_on_finds_a_spheres_caps_and_recall_counts_them():
    from tomowidgets.metrics import face_on, recall

    z, y, x = np.mgrid[:40, :40, :40]
    r = np.sqrt((z - 20.0) ** 2 + (y - 20) ** 2 + (x - 20) ** 2)
    sphere = np.abs(r - 14) < 1.0
    caps = face_on(sphere, max_angle=30)
    # the caps are where the normal is within 30° of z: |z - 20| >= r cos 30°
    expected = sphere & (np.abs(z - 20) >= r * np.cos(np.deg2rad(30)))
    assert caps.sum() == pytest.approx(expected.sum(), rel=0.2)
    assert (caps & ~expected).sum() < 0.2 * caps.sum() and not caps[16:25].any()
    assert face_on(sphere, max_angle=90).sum() == sphere.sum()
    open_vesicle = sphere & (np.abs(z - 20) < 8)                     # a 2D network's result
    assert recall(open_vesicle, caps) == 0.0
    assert recall(sphere, caps) == 1.0
    assert recall(open_vesicle, sphere) == pytest.approx(open_vesicle.sum() / sphere.sum())
    assert recall(np.roll(sphere, 1, axis=0), sphere, tolerance=1) == 1.0
    with pytest.raises(ValueError, match="max_angle"):
        face_on(sphere, max_angle=120)
