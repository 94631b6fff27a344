"""The accuracy benchmark's scoring, checked with perfect score maps (everything must come out 1)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tomowidgets as tw

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["accuracy"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["accuracy"]


@pytest.mark.slow
def test_perfect_score_maps_score_perfectly(accuracy):
    cell = tw.synthetic.make_cell(seed=3)
    # a perfect network: 2.0 on the feature's voxels, 0 elsewhere (ribosomes as solid blobs)
    scores = {name: cell.labels[name].astype(np.float32) * 2.0
              for name in ("membrane", "microtubule", "ribosome")}
    result = accuracy.score_cell(scores, cell, threshold=1.0, box=32, seed=0)
    for name in scores:
        assert result[name]["Dice"] == pytest.approx(1.0)
        assert result[name]["skel"] == pytest.approx(1.0)
    assert result["merge"]["cross_talk"] == 0.0
    picking = result["picking"]
    assert picking["precision"] == picking["recall"] == picking["f_beta"] == 1.0
    assert picking["n_found"] == picking["n_true"] > 10
    assert picking["recall_inside"] == picking["recall_at_faces"] == 1.0
    # averaging the noisy boxes of true picks resolves the ribosome (Nyquist 20 Å)
    assert 20.0 <= picking["fsc05"] < 60.0


def test_recall_is_split_between_the_ribosomes_that_the_field_cuts_and_the_others(accuracy):
    shape = (40, 100, 100)
    truth = np.array([[20, 50, 50], [5, 50, 50], [20, 50, 3], [20, 50, 95], [20, 30, 30]])
    found = np.array([[20, 50, 50], [20, 51, 94]])   # the first inside, the one at the far x face
    recall = accuracy.recall_by_faces(found, truth, shape)
    assert recall == {"recall_inside": 0.5, "recall_at_faces": pytest.approx(1 / 3),
                      "recall_at_x_faces": 0.5}
    # a face 12 voxels away cuts a ribosome (radius 12.5 voxels), 13 away does not
    assert accuracy.recall_by_faces(found[:0], [[12, 50, 50]], shape)["recall_at_faces"] == 0.0
    assert np.isnan(accuracy.recall_by_faces(found[:0], [[13, 50, 50]], shape)["recall_at_faces"])


def test_false_picks_are_counted_on_the_kind_of_particle_they_lie_on(accuracy):
    particles = pd.DataFrame({"feature": ["ribosome", "apoferritin", "spliceosome", "gold"],
                              "z": [20, 20, 20, 20], "y": [20, 50, 80, 110], "x": [20, 50, 80, 110]})
    truth = particles[particles["feature"] == "ribosome"][["z", "y", "x"]].to_numpy()
    found = np.array([[20, 21, 20],      # the ribosome: not a false pick
                      [20, 58, 50],      # 8 voxels from the apoferritin
                      [20, 50, 60]])     # 10 from the apoferritin
    far = np.array([[20, 200, 200]])     # on nothing
    counts = accuracy.false_picks_on(np.concatenate([found, far]), truth, particles)
    assert counts == {"picks_on_apoferritin": 2, "picks_on_gold": 0, "picks_on_spliceosome": 0}
    assert accuracy.false_picks_on(found[:0], truth, particles)["picks_on_apoferritin"] == 0


def test_table_has_a_row_per_condition_and_a_column_per_metric(accuracy):
    mean = {"membrane": {"Dice": 0.91, "skel": 0.95}, "merge": {"cross_talk": 0.0123},
            "picking": {"n_found": 40, "n_true": 38, "precision": 0.95, "recall": 1.0, "f1": 0.974,
                        "f_beta": 0.997, "fsc05": 29.4}}
    rows = [{"snr": 0.5, "ctf": True, "variant": "default", "mean": mean},
            {"snr": 1.0, "ctf": False, "variant": "paper", "mean": {"membrane": mean["membrane"]}}]
    table = accuracy.format_table(rows, ("membrane",)).splitlines()
    assert len(table) == 4
    assert table[0].split(" | ")[3:5] == ["membrane Dice", "membrane skel"]
    assert "| 0.5 | yes | default | 0.91 | 0.95 | 1.2% | 40/38 | 95% | 100% | 0.97 | 1.00 | 29 |" == table[2]
    assert table[3] == "| 1 | no | paper | 0.91 | 0.95 |" + " — |" * 7


def test_annotators_spread_is_the_mean_and_sd_of_their_means_over_cells(accuracy):
    def cell(dice, precision):
        return {"membrane": {"Dice": dice}, "merge": {"cross_talk": 0.02},
                "picking": {"precision": precision, "recall": 1.0}}

    # three annotators, two cells each: per-annotator means 0.8, 0.9, 1.0
    per_annotator = [[cell(0.7, 1.0), cell(0.9, 1.0)], [cell(0.9, 0.9), cell(0.9, 0.9)],
                     [cell(1.0, 0.8), cell(1.0, 0.8)]]
    spread = accuracy.spread(per_annotator)
    assert spread["mean"]["membrane"]["Dice"] == pytest.approx(0.9)
    assert spread["sd"]["membrane"]["Dice"] == pytest.approx(0.1)  # sample sd over annotators
    assert spread["sd"]["merge"]["cross_talk"] == 0.0
    result = {"snr": 0.5, "ctf": True, "variant": "default", "train_imaging": "fourier", "annotators": 3,
              "tests": {"tilt_series": {"annotators": per_annotator, **spread}}}
    table = accuracy.format_spread([result], ("membrane",)).splitlines()
    assert table[0].startswith("| train → test | SNR | CTF | variant | annotators | membrane Dice |")
    assert table[2] == ("| fourier → tilt_series | 0.5 | yes | default | 3 | 0.90 ± 0.10 | 2.0% ± 0.0% "
                        "| 90% ± 10% | 100% ± 0% |")


def test_erase_gold_leaves_no_bead_in_the_preprocessed_cells(accuracy):
    def beads(erase_gold):
        ((cell, pre),) = accuracy.make_cells(0.5, True, (32, 128, 128), 0, seeds=(1,), erase_gold=erase_gold)
        gold = cell.labels["gold"]
        assert gold.any()
        return np.abs(np.asarray(pre.data)[gold]).mean() / np.asarray(pre.data).std(), cell

    kept, cell = beads(False)
    erased, same_cell = beads(True)
    assert kept > 2.5 and erased < 1.2  # beads stand out unless erased (in sd of the tomogram)
    np.testing.assert_array_equal(cell.tomogram.data, same_cell.tomogram.data)  # truth's image untouched
    result = {"snr": 0.5, "ctf": True, "variant": "default", "train_imaging": "fourier", "annotators": 1,
              "erase_gold": True, "tests": {"fourier": {"annotators": [], **accuracy.spread(
                  [[{"merge": {"cross_talk": 0.0}}]])}}}
    assert "| default + gold erased |" in accuracy.format_spread([result], ()).splitlines()[2]


def test_an_annotator_of_two_tomograms_clicks_half_of_the_tiles_on_each(accuracy):
    ((cell, pre),) = accuracy.make_cells(0.5, True, (32, 128, 128), 0, seeds=(1,))
    flipped = tw.io.Tomogram(-np.asarray(pre.data), pre.apix)  # a second tomogram, told apart by sign
    both = accuracy.annotate([(pre, cell.labels), (flipped, cell.labels)], "ribosome", seed=4)
    assert (both.n_positive, len(both)) == (10, 110)
    for start, tomo, seed in ((0, pre, 4), (55, flipped, 5)):
        half = tw.demo.simulated_annotation(tomo, cell.labels, "ribosome", seed=seed, perturb=1,
                                            n_positive=5, n_negative=50)
        assert half.n_positive == 5
        for i in range(55):
            np.testing.assert_array_equal(both.image(start + i), half.image(i))
    alone = accuracy.annotate([(pre, cell.labels)], "ribosome", seed=4)  # one tomogram: as before
    np.testing.assert_array_equal(alone.centres, tw.demo.simulated_annotation(
        pre, cell.labels, "ribosome", seed=4, perturb=1).centres)


def test_an_annotator_of_every_kind_shows_the_ribosome_network_the_proteasomes(accuracy):
    ((cell, pre),) = accuracy.make_cells(0.5, True, (32, 128, 128), 0, seeds=(1,))

    def on_proteasomes(every_kind):
        ts = accuracy.annotate([(pre, cell.labels)], "ribosome", seed=4, every_kind=every_kind)
        return sum(cell.labels["proteasome"][tuple(r.centre)] for r in ts if r.kind == "negative")

    # proteasomes hold 2 % of the other labels' voxels: a quarter of 100 shared by five kinds
    assert on_proteasomes(False) <= 2 and on_proteasomes(True) == 5


def test_feature_train_options_reach_only_their_feature(accuracy, monkeypatch):
    options = {}
    monkeypatch.setattr(tw.network.FeatureNet, "train",
                        lambda self, ts, **kwargs: options.setdefault(self.feature, kwargs))
    ((cell, pre),) = accuracy.make_cells(0.5, True, (32, 128, 128), 0, seeds=(1,))
    variant = accuracy.Variant(train={"blur": 1.0}, feature_train={"ribosome": {"scale": 0.1}})
    accuracy.train_networks([(pre, cell.labels)], ("double_membrane", "ribosome"), variant, seed=0,
                            epochs=1)
    # no magnification unless asked, whatever the product's default (FEATURE_SCALE)
    assert options["ribosome"]["scale"] == 0.1 and options["double_membrane"]["scale"] == 0.0
    assert options["ribosome"]["lent_scale"] == options["double_membrane"]["lent_scale"] == {}
    assert options["ribosome"]["blur"] == options["double_membrane"]["blur"] == 1.0


def test_feature_context_and_networks_reach_only_their_feature(accuracy, monkeypatch, tmp_path):
    trained, saved = {}, []

    def train(self, ts, **kwargs):
        trained[self.feature] = (self.context, ts.context, {r.lender for r in ts})
    monkeypatch.setattr(tw.network.FeatureNet, "train", train)
    monkeypatch.setattr(tw.network.FeatureNet, "save", lambda self, path: saved.append(path))
    ((cell, pre),) = accuracy.make_cells(0.5, True, (32, 128, 128), 0, seeds=(1,))
    variant = accuracy.Variant(compete=True, networks="flat", feature_context={"ribosome": 1},
                               feature_networks={"ribosome": "deep"})
    monkeypatch.setitem(accuracy.VARIANTS, "flat-picks", variant)
    features = ("double_membrane", "ribosome")
    folders = accuracy.network_folders(tmp_path, "flat-picks", "fourier_snr0.5", features)
    accuracy.train_networks([(pre, cell.labels)], features, variant, seed=0, epochs=1, folders=folders)
    # each network reads its own context, and competes with tiles cut at that context
    assert trained["ribosome"] == (1, 1, {None, "double_membrane"})
    assert trained["double_membrane"] == (0, 0, {None, "ribosome"})
    # kept with the networks the variant reuses, the ribosome's with those of the one it names
    assert tmp_path / "spread_flat_fourier_snr0.5" / "double_membrane.annotator0.keras" in saved
    assert tmp_path / "spread_deep_fourier_snr0.5" / "ribosome.annotator0.keras" in saved
    assert accuracy.network_folders(tmp_path, "default", "c", features) == dict.fromkeys(
        features, tmp_path / "spread_default_c")


def test_tube_angles_are_measured_from_the_tilt_axis():
    spec = importlib.util.spec_from_file_location("tube_angles", ROOT / "benchmarks" / "tube_angles.py")
    tube_angles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tube_angles)
    mask = np.zeros((8, 96, 96), bool)
    mask[2:6, 10:14, 5:45] = True            # along x: across the tilt axis y
    mask[2:6, 20:60, 80:84] = True           # along y: along the axis
    yy, xx = np.mgrid[:96, :96]
    mask[2:6] |= (np.abs((yy - 60) - (xx - 20)) <= 2) & (yy >= 60) & (xx <= 50)   # diagonal
    tubes = tube_angles.tube_axes(mask, min_voxels=100)
    assert sorted(round(angle) for _, angle in tubes) == [0, 45, 90]
    assert sum(int(piece.sum()) for piece, _ in tubes) == int(mask.sum())
    assert tube_angles.tube_axes(mask, min_voxels=10_000) == []
