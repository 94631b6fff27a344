"""The method end to end on synthetic cells: train on one cell, annotate and pick on another.

These are the product's acceptance checks (the paper's reusability claim, measured against exact
ground truth): a network trained with the paper's defaults on 10 positive + 100 negative tiles of one
cell must annotate a *different* cell. Each network trains once per session (~1-2 min on 2 cores).
The networks are trained the paper's way, alone and calibrated by the mean: the product's defaults
since 2026-12-04 (competing networks, Dice calibration for membranes) are measured on more cells
by ``benchmarks/accuracy.py`` and run end to end by the demo's test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

import tomowidgets as tw
from tomowidgets.metrics import dice

pytest.importorskip("tensorflow")
pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

#: Half a ribosome radius (~12.5 nm) at 10 Å/voxel: the match radius for picks.
MATCH_RADIUS = 0.5 * 125 / 10


@pytest.fixture(scope="module")
def cells():
    train, test = tw.synthetic.make_cell(seed=0), tw.synthetic.make_cell(seed=1)
    return {"train": train, "test": test,
            "train_pre": tw.preprocess(train.tomogram, progress=False),
            "test_pre": tw.preprocess(test.tomogram, progress=False)}


def _scores_on_unseen_cell(cells, feature):
    train = cells["train"]
    decoys = np.any([label for name, label in train.labels.items() if name != feature], axis=0)
    ts = tw.TrainingSet.from_ground_truth(cells["train_pre"], train.labels[feature], feature=feature,
                                          rng=0, decoys=decoys)
    assert (ts.n_positive, ts.n_negative) == (10, 100)
    net = tw.FeatureNet(feature, seed=0)
    net.train(ts, progress=False, calibration="mean")  # the paper's defaults
    return tw.apply(net, cells["test_pre"], progress=False).data


@pytest.fixture(scope="module")
def ribosome_scores(cells):
    return _scores_on_unseen_cell(cells, "ribosome")


def test_ribosome_network_finds_ribosomes_but_not_proteasomes_on_an_unseen_cell(cells, ribosome_scores):
    labels = cells["test"].labels
    assert dice(ribosome_scores >= 1.0, labels["ribosome"], tolerance=1) > 0.7
    assert ribosome_scores[labels["ribosome"]].mean() > 1.0
    assert ribosome_scores[labels["proteasome"]].mean() < 1.0  # the other macromolecule class


def test_picking_the_ribosome_network_output_finds_85_percent_with_85_percent_precision(
        cells, ribosome_scores):
    picks = tw.pick_particles(ribosome_scores, threshold=1.0, feature="ribosome")
    table = cells["test"].particles
    truth = table[table["feature"] == "ribosome"][["z", "y", "x"]].to_numpy()
    found = picks[["z", "y", "x"]].to_numpy()
    precision = np.mean(cKDTree(truth).query(found)[0] <= MATCH_RADIUS)
    recall = np.mean(cKDTree(found).query(truth)[0] <= MATCH_RADIUS)
    assert precision >= 0.85, f"precision {precision:.2f} with {len(found)} picks"
    assert recall >= 0.85, f"recall {recall:.2f} of {len(truth)} ribosomes"


def test_membrane_network_reaches_dice_0_7_on_an_unseen_cell(cells):
    scores = _scores_on_unseen_cell(cells, "membrane")
    labels = cells["test"].labels
    assert dice(scores >= 1.0, labels["membrane"], tolerance=1) >= 0.7
    called = scores >= 1.0
    assert (called & labels["double_membrane"]).sum() < 0.1 * called.sum()  # single vs double
