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
