"""Tile suggestions: known answers on hand-made score maps."""

from __future__ import annotations

import numpy as np
import pytest

from tomowidgets import Tomogram, TrainingSet
from tomowidgets.trainset.suggest import suggest_tiles, uncertainty


def test_uncertainty_peaks_at_the_threshold_and_adds_disagreement():
    scores = np.array([0.0, 0.5, 1.0, 1.5, 3.0], np.float32)
    assert uncertainty(scores).tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert uncertainty(scores, threshold=0.5, width=1.0).tolist() == [0.5, 1.0, 0.5, 0.0, 0.0]
    spread = np.array([0.0, 0.25, 0.0, 1.0, 0.0], np.float32)
    assert uncertainty(scores, disagreement=spread).tolist() == [0.0, 0.5, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        uncertainty(scores, disagreement=spread[:2])


def _unsure_patches():
    """Sure background (0) and sure feature (3) everywhere, three unsure patches of known size."""
    scores = np.zeros((16, 128, 128), np.float32)
    scores[:, 100:, :] = 3.0
    scores[8, 0:32, 0:32] = 1.0             # a whole tile of scores at the threshold
    scores[8, 64:80, 64:96] = 1.0           # half a tile
    scores[0, 32:48, 96:112] = 0.9          # a quarter of a tile, a little below the threshold
    return scores


def test_suggestions_rank_tiles_by_their_mean_uncertainty():
    table = suggest_tiles(_unsure_patches(), n=3, tile=32, z_step=4)
    assert list(table.columns) == ["z", "y", "x", "uncertainty"]
    assert table[["z", "y", "x"]].values.tolist() == [[8, 16, 16], [8, 64, 80], [0, 32, 96]]
    np.testing.assert_allclose(table["uncertainty"], [1.0, 0.5, 0.25 * 0.8], rtol=1e-5)
    assert len(suggest_tiles(_unsure_patches(), n=10, tile=32, z_step=4)) == 3  # nothing else unsure


def test_suggestions_skip_tiles_already_annotated_and_spread_out():
    scores = _unsure_patches()
    tomo = Tomogram(np.zeros(scores.shape, np.float32), 10.0)
    ts = TrainingSet(32)
    ts.add_negative(tomo, 8, 20, 20)                                  # near the best tile
    table = suggest_tiles(Tomogram(scores, 10.0), n=3, tile=32, z_step=4, exclude=ts)
    assert [8, 16, 16] not in table[["z", "y", "x"]].values.tolist()
    # one big unsure region yields tiles at least half a tile apart, not neighbouring grid points
    wide = np.zeros((1, 64, 256), np.float32)
    wide[0, :, :] = 1.0
    centres = suggest_tiles(wide, n=10, tile=32, z_step=1)[["y", "x"]].values
    assert len(centres) >= 3
    gaps = np.abs(centres[:, None] - centres[None]).max(axis=2) + np.eye(len(centres), dtype=int) * 99
    assert gaps.min() > 16


def test_explore_mixes_random_tiles_after_the_most_uncertain():
    scores = _unsure_patches()
    table = suggest_tiles(scores, n=4, tile=32, z_step=4, explore=0.5, rng=1)
    centres = table[["z", "y", "x"]].values.tolist()
    assert centres[:2] == [[8, 16, 16], [8, 64, 80]]                 # the two most uncertain
    assert [0, 32, 96] not in centres[2:]                            # then two picked at random
    assert table.equals(suggest_tiles(scores, n=4, tile=32, z_step=4, explore=0.5, rng=1))
    assert not table.equals(suggest_tiles(scores, n=4, tile=32, z_step=4, explore=0.5, rng=2))
    everywhere = suggest_tiles(scores, n=40, tile=32, z_step=4, explore=1.0, rng=0)
    assert len(everywhere) == 40 and (everywhere["uncertainty"] == 0).sum() > 30  # sure tiles too
    zyx = everywhere[["z", "y", "x"]].values
    same_slice = zyx[:, None, 0] == zyx[None, :, 0]
    gaps = np.abs(zyx[:, None, 1:] - zyx[None, :, 1:]).max(axis=2)
    assert gaps[same_slice & ~np.eye(len(zyx), dtype=bool)].min() > 16   # still spread out
    # random tiles also stand in for missing unsure ones; 0.5 of 5 tiles rounds up to 3
    assert len(suggest_tiles(scores, n=6, tile=32, z_step=4, explore=0.2, rng=0)) == 6
    half = suggest_tiles(scores, n=5, tile=32, z_step=4, explore=0.5, rng=0)
    assert half[["z", "y", "x"]].values.tolist()[:2] == [[8, 16, 16], [8, 64, 80]]
    assert [0, 32, 96] not in half[["z", "y", "x"]].values.tolist()
    for bad in (1.5, True, "half"):
        with pytest.raises(ValueError, match="explore"):
            suggest_tiles(scores, explore=bad)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="smaller than the 64"):
        suggest_tiles(np.zeros((2, 32, 32), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        suggest_tiles(np.full((1, 64, 64), np.nan, np.float32))
    with pytest.raises(ValueError, match="3-dimensional"):
        suggest_tiles(np.zeros((64, 64), np.float32))
