"""The pick-transfer benchmark's measures, on volumes with known answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def transfer():
    spec = importlib.util.spec_from_file_location("pick_transfer", ROOT / "benchmarks" / "pick_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_contrast_is_the_background_minus_the_feature_away_from_every_feature(transfer):
    volume = np.full((20, 40, 40), 0.1, np.float32)
    ribosome = np.zeros(volume.shape, bool)
    ribosome[8:12, 8:12, 8:12] = True
    membrane = np.zeros(volume.shape, bool)
    membrane[:, :, 30] = True
    volume[ribosome], volume[membrane] = -0.8, -2.0
    volume[:, :, 27:30] = 5.0            # within 3 voxels of the membrane: not background
    labels = {"ribosome": ribosome, "membrane": membrane}
    assert transfer.contrast(volume, labels) == pytest.approx(0.9)


def test_picks_are_averaged_per_annotator_over_cells_then_over_annotators(transfer):
    rows = np.array([[[1.0, 0.5], [0.5, 1.0]],      # cell 1: annotators 0 and 1
                     [[0.5, 0.5], [1.0, 0.0]]])     # cell 2
    assert transfer.mean_over_cells(rows) == "75% / 50%"


@pytest.mark.parametrize(("side", "zeroed"), [("+x", np.s_[:, :, 8:]), ("-x", np.s_[:, :, :3]),
                                              ("+y", np.s_[:, 8:, :]), ("-y", np.s_[:, :3, :])])
def test_a_cut_field_is_zero_from_the_cut_onwards_on_that_side_only(transfer, side, zeroed):
    window = np.ones((3, 11, 11), np.float32)      # centre (5, 5); cut 2 pixels beyond it
    cut = transfer.cut_field(window, side, cut=2)
    expected = window.copy()
    expected[zeroed] = 0
    np.testing.assert_array_equal(cut, expected)
    assert window.min() == 1                       # the window itself is left as it was
