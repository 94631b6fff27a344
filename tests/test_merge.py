"""Merging calibrated score maps into a label map, and label-map files (MRC + JSON sidecar)."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from tomowidgets.io import Tomogram, read_tomogram, write_tomogram
from tomowidgets.merge import LabelMap, merge, sidecar_path


def _scores(shape=(7, 9, 11), n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {f"f{i}": rng.normal(1.0, 0.6, shape).astype(np.float32) for i in range(n)}


def test_highest_score_wins_and_below_threshold_is_background():
    a = np.array([[[0.2, 1.5, 3.0, 0.9]]], np.float32)
    b = np.array([[[0.1, 2.0, 1.0, 0.95]]], np.float32)
    labels = merge({"membrane": a, "ribosome": b}, threshold=1.0)
    assert labels.names == ("membrane", "ribosome")
    assert labels.data.dtype == np.uint8
    np.testing.assert_array_equal(labels.data, [[[0, 2, 1, 0]]])


def test_score_equal_to_threshold_counts():
    labels = merge({"a": np.full((1, 1, 2), 1.0), "b": np.zeros((1, 1, 2))})
    np.testing.assert_array_equal(labels.data, [[[1, 1]]])


def test_ties_go_to_the_feature_listed_first():
    same = np.full((2, 2, 2), 2.0, np.float32)
    assert (merge({"x": same, "y": same}).data == 1).all()
    assert (merge({"y": same, "x": same}).data == 1).all()


def test_per_feature_thresholds_apply_to_the_winning_feature():
    a = np.array([[[1.5, 1.5, 3.0]]], np.float32)
    b = np.array([[[1.2, 0.5, 0.1]]], np.float32)
    # a wins everywhere; with its threshold at 2 it only keeps the last voxel, and b (second best)
    # does not take over the first voxel even though 1.2 passes b's own threshold.
    labels = merge({"a": a, "b": b}, thresholds={"a": 2.0}, hysteresis=None)
    np.testing.assert_array_equal(labels.data, [[[0, 0, 1]]])
    labels = merge({"a": a, "b": b}, 5.0, thresholds={"b": 0.0}, hysteresis=None)
    np.testing.assert_array_equal(labels.data, [[[0, 0, 0]]])
    low = merge({"a": b, "b": a * 0}, 5.0, thresholds={"a": 1.0}, hysteresis=None)
    np.testing.assert_array_equal(low.data, [[[1, 0, 0]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int16])
def test_any_real_dtype_gives_the_same_labels(dtype):
    scores = {k: (v * 4).astype(dtype) for k, v in _scores().items()}
    reference = merge({k: v.astype(np.float32) for k, v in scores.items()}, 4.0)
    np.testing.assert_array_equal(merge(scores, 4.0).data, reference.data)


# --- hysteresis: weak voxels that continue a called structure (#16) -----------------------------


def _broken_membrane():
    """A membrane along y = 3 in slice 1 of 3, weak (0.7) for x 4-6; a lone weak blob at (1, 7, 8);
    a ribosome that wins at (1, 3, 10) next to the membrane's end."""
    membrane = np.zeros((3, 10, 12), np.float32)
    membrane[1, 3, :10] = 1.3
    membrane[1, 3, 4:7] = 0.7
    membrane[1, 7, 8] = 0.7
    membrane[1, 3, 10] = 0.7
    ribosome = np.zeros_like(membrane)
    ribosome[1, 3, 10] = 0.9
    return {"membrane": membrane, "ribosome": ribosome}


def test_hysteresis_continues_a_weakly_scored_stretch_but_not_a_lone_weak_voxel():
    scores = _broken_membrane()
    plain = merge(scores, hysteresis=None).data                 # the paper's single threshold
    assert plain[1, 3, :10].tolist() == [1] * 4 + [0] * 3 + [1] * 3
    grown = merge(scores, hysteresis=0.5).data
    assert grown[1, 3, :10].tolist() == [1] * 10
    np.testing.assert_array_equal(merge(scores).data, grown)    # 0.5 is the default
    assert grown[1, 7, 8] == 0                       # weak and touching nothing called
    assert grown[1, 3, 10] == 0                      # the ribosome wins it (0.9 < 1): weak, not continued
    assert not grown[[0, 2]].any()                   # nothing leaks into the slices above and below
    np.testing.assert_array_equal(merge(scores, hysteresis=0.6).data[1, 3, 4:7], [1, 1, 1])
    np.testing.assert_array_equal(merge(scores, hysteresis=0.55, threshold=1.3).data[1, 3, 4:7], [0, 0, 0])


@pytest.mark.parametrize(("threshold", "fraction"), [(1.0, 0.5), (1.2, 0.6), (0.7, 0.3)])
def test_hysteresis_labels_equal_skimages_hysteresis_slice_by_slice(threshold, fraction):
    """merge writes hysteresis out for speed; per slice and winning feature it must give what
    skimage.filters.apply_hysteresis_threshold gives (>= at both thresholds)."""
    from skimage.filters import apply_hysteresis_threshold

    scores = _scores(shape=(3, 40, 50), seed=7)
    got = merge(scores, threshold, hysteresis=fraction).data
    stack = np.stack(list(scores.values()))
    best, top = stack.argmax(0), stack.max(0)
    below = np.float32(-np.inf)
    low, high = (np.nextafter(np.float32(t), below) for t in (fraction * threshold, threshold))
    expected = np.zeros(got.shape, np.uint8)
    for i in range(len(stack)):
        won = best == i
        for z in range(len(stack[0])):
            expected[z][apply_hysteresis_threshold(np.where(won[z], top[z], 0), low, high) & won[z]] = i + 1
    np.testing.assert_array_equal(got, expected)
    assert 0 < (got > 0).mean() < 1


def test_hysteresis_counts_scores_equal_to_either_threshold():
    line = {"a": np.array([[[1.0, 0.5, 0.5, 0.4]]], np.float32)}
    assert merge(line, hysteresis=0.5).data.tolist() == [[[1, 1, 1, 0]]]


def test_hysteresis_connects_only_within_a_slice_and_only_through_its_own_feature():
    a = np.zeros((2, 3, 3), np.float32)
    a[0, 1, 1] = 2.0            # called in slice 0
    a[1, 1, 1] = 0.8            # weak right above it: another slice
    a[0, 1, 2] = 0.8            # weak beside it, but b wins there
    b = np.zeros_like(a)
    b[0, 1, 2] = 0.9
    labels = merge({"a": a, "b": b}, hysteresis=0.5).data
    assert labels[0, 1, 1] == 1 and labels[1, 1, 1] == 0 and labels[0, 1, 2] == 0


@pytest.mark.parametrize("slab", [1, 2])
def test_hysteresis_gives_the_same_labels_slab_by_slab_and_into_a_file(slab, tmp_path):
    scores = _scores(seed=4)
    whole = merge(scores, 1.2, hysteresis=0.6)
    np.testing.assert_array_equal(merge(scores, 1.2, hysteresis=0.6, slab=slab).data, whole.data)
    np.testing.assert_array_equal(merge(scores, 1.2, hysteresis=0.6, out=tmp_path / "l.mrc").data,
                                  whole.data)
    single = merge(scores, 1.2, hysteresis=None).data
    assert (np.asarray(whole.data) > 0).sum() > (np.asarray(single) > 0).sum()


# --- vote: one structure, one of two readings (#16) ----------------------------------------------


def _split_vesicle():
    """Slice 1 of 3: a ring (radius 5 px, centre (10, 10)) both membrane networks score, the
    double-membrane one higher on its right third; a straight membrane at y = 20 that only the
    double-membrane network calls, on its first 4 voxels; a microtubule voxel inside the ring."""
    shape = (3, 24, 24)
    y, x = np.mgrid[:24, :24]
    ring = np.abs(np.hypot(y - 10, x - 10) - 5) < 0.7
    membrane, double = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    membrane[1][ring] = 2.0
    double[1][ring & (x > 12)] = 3.0      # a minority of the ring's voxels
    membrane[1, 20, 4:20] = 1.5
    double[1, 20, 4:8] = 2.0
    tube = np.zeros(shape, np.float32)
    tube[1, 10, 10] = 2.0
    return {"membrane": membrane, "double_membrane": double, "microtubule": tube}, ring


def test_vote_gives_each_structure_the_feature_most_of_its_voxels_have():
    scores, ring = _split_vesicle()
    per_voxel = merge(scores, vote=None).data[1]
    assert set(np.unique(per_voxel[ring])) == {1, 2}            # the ring split between two features
    voted = merge(scores).data[1]                               # the default: membrane and double membrane
    assert np.all(voted[ring] == 1)
    assert np.all(voted[20, 4:20] == 1)                         # 4 of 16 voxels were double membrane
    assert voted[10, 10] == 3                                   # features outside the group keep theirs
    # the other slices, and the labelled voxels, are unchanged
    np.testing.assert_array_equal(voted > 0, per_voxel > 0)
    assert not np.asarray(merge(scores).data)[[0, 2]].any()


def test_vote_connects_only_within_a_slice_and_ties_go_to_the_feature_listed_first():
    membrane, double = np.zeros((2, 1, 4), np.float32), np.zeros((2, 1, 4), np.float32)
    membrane[0, 0, :2] = 2.0
    double[0, 0, 2:] = 2.0                                      # two and two: a tie
    double[1, 0, :] = 2.0                                       # the next slice: all double membrane
    membrane[1, 0, 0] = 3.0
    labels = merge({"membrane": membrane, "double_membrane": double}).data
    assert labels.tolist() == [[[1, 1, 1, 1]], [[2, 2, 2, 2]]]
    flipped = merge({"double_membrane": double, "membrane": membrane}).data
    assert flipped.tolist() == [[[1, 1, 1, 1]], [[1, 1, 1, 1]]]   # label 1 is now the double membrane


def test_vote_groups_name_features_and_absent_ones_are_ignored():
    scores, ring = _split_vesicle()
    # a group of features given in another order, and names not merged, change nothing
    same = merge(scores, vote=[("double_membrane", "membrane", "cilium")]).data
    np.testing.assert_array_equal(same, merge(scores).data)
    # a group of three: the tube voxel does not touch the ring, so each keeps its own label
    three = merge(scores, vote=[("membrane", "double_membrane", "microtubule")]).data
    assert three[1, 10, 10] == 3 and np.all(three[1][ring] == 1)
    # one feature of a group merged alone: nothing to vote on
    alone = {"membrane": scores["membrane"]}
    np.testing.assert_array_equal(merge(alone).data, merge(alone, vote=None).data)


@pytest.mark.parametrize("slab", [1, 2])
def test_vote_gives_the_same_labels_slab_by_slab_and_into_a_file(slab, tmp_path):
    rng = np.random.default_rng(5)
    scores = {"membrane": rng.normal(1.0, 0.6, (5, 30, 30)).astype(np.float32),
              "double_membrane": rng.normal(1.0, 0.6, (5, 30, 30)).astype(np.float32)}
    whole = merge(scores, 1.2)
    np.testing.assert_array_equal(merge(scores, 1.2, slab=slab).data, whole.data)
    np.testing.assert_array_equal(merge(scores, 1.2, out=tmp_path / "l.mrc").data, whole.data)
    assert not np.array_equal(whole.data, merge(scores, 1.2, vote=None).data)


# --- thin: every call as wide as its score's peak (#16) ---------------------------------------------


def _two_membranes(strong=16.0, weak=1.6):
    """Slice 1 of 3: two straight membranes along y whose scores fall off across x as a Gaussian of
    sd 2 voxels (full width at half maximum 4.7 voxels), one `strong`, one `weak`; a ribosome blob."""
    x = np.arange(60, dtype=np.float32)
    profile = strong * np.exp(-(x - 15) ** 2 / 8) + weak * np.exp(-(x - 45) ** 2 / 8)
    membrane = np.zeros((3, 20, 60), np.float32)
    membrane[1] = profile
    ribosome = np.zeros_like(membrane)
    ribosome[1, 2:5, 28:33] = 3.0
    return {"membrane": membrane, "ribosome": ribosome}


def test_thin_cuts_every_membrane_to_its_width_at_half_maximum_whatever_its_contrast():
    scores = _two_membranes()
    wide = np.asarray(merge(scores, thin=None).data)[1, 10]
    thin = np.asarray(merge(scores).data)[1, 10]                 # the default thins the membranes
    width = {name: (row[:30] == 1).sum() for name, row in (("wide", wide), ("thin", thin))}
    weak = {name: (row[30:] == 1).sum() for name, row in (("wide", wide), ("thin", thin))}
    assert width["wide"] == 11 and weak["wide"] == 7             # down to 0.5 (hysteresis) of 1.0
    assert width["thin"] == weak["thin"] == 5                    # both the score's FWHM (4.7)
    assert np.all(thin[13:18] == 1)                              # centred on the peak
    # the ribosome is not in `thin`; slices 0 and 2 stay empty
    np.testing.assert_array_equal(np.asarray(merge(scores).data)[1, :6, 28:33],
                                  np.asarray(merge(scores, thin=None).data)[1, :6, 28:33])


def test_a_thinned_flank_can_go_to_another_feature_that_reaches_its_threshold():
    scores = _two_membranes()
    scores["microtubule"] = np.zeros_like(scores["membrane"])
    scores["microtubule"][1, :, 11] = 1.2       # 4 voxels off the strong membrane's peak, where it scores 2.2
    assert np.all(np.asarray(merge(scores, thin=None).data)[1, :, 11] == 1)
    assert np.all(np.asarray(merge(scores).data)[1, :, 11] == 3)


def test_thin_names_features_and_absent_ones_are_ignored():
    scores = _two_membranes()
    default = np.asarray(merge(scores).data)
    for same in (["membrane"], ("membrane", "membrane", "cilium")):
        np.testing.assert_array_equal(merge(scores, thin=same).data, default)
    np.testing.assert_array_equal(merge(scores, thin=[]).data, merge(scores, thin=None).data)
    np.testing.assert_array_equal(merge(scores, thin=["ribosome"]).data, merge(scores, thin=None).data)


@pytest.mark.parametrize("slab", [1, 2])
def test_thin_gives_the_same_labels_slab_by_slab_and_into_a_file(slab, tmp_path):
    scores = {"membrane": np.repeat(_two_membranes()["membrane"][1:2], 4, axis=0)}  # in every slice
    whole = merge(scores)
    np.testing.assert_array_equal(merge(scores, slab=slab).data, whole.data)
    np.testing.assert_array_equal(merge(scores, out=tmp_path / "l.mrc").data, whole.data)
    assert np.all(np.asarray(whole.data)[:, 10, :30].sum(axis=1) == 5)   # in-slice: every slice thinned


def _ring_and_tube(apix=10.0):
    """Slice 1 of 3 at `apix` Å: a microtubule network scoring 2.0 on a ring of radius 40 voxels
    (a small mitochondrion; its voxels spread 28 voxels across any axis) where the double membrane
    scores 1.2, and on a straight band 25 voxels wide (a tube seen from the side, spread 7.2)."""
    yy, xx = np.mgrid[:120, :200]
    ring = np.abs(np.hypot(yy - 60, xx - 60) - 40) <= 4
    band = (xx >= 150) & (xx < 175)
    microtubule = np.zeros((3, 120, 200), np.float32)
    microtubule[1] = 2.0 * (ring | band)
    double_membrane = np.zeros_like(microtubule)
    double_membrane[1] = 1.2 * ring
    return ({name: Tomogram(volume, apix) for name, volume in
             (("microtubule", microtubule), ("double_membrane", double_membrane))}, ring, band)


def test_a_filament_piece_far_wider_than_a_tube_goes_to_the_other_features():
    scores, ring, band = _ring_and_tube()
    paper = np.asarray(merge(scores, filaments=None).data)[1]
    default = np.asarray(merge(scores).data)[1]
    assert np.all(paper[ring | band] == 1)                       # the microtubule wins both
    assert np.all(default[ring] == 2) and np.all(default[band] == 1)
    assert not default[~(ring | band)].any()
    # nothing else reaches its threshold on the ring: it becomes background
    alone = {"microtubule": scores["microtubule"]}
    assert not np.asarray(merge(alone).data)[1][ring].any()


@pytest.mark.parametrize(("width", "cut"), [(76, False), (77, True)])
def test_a_filament_piece_is_cut_when_its_narrow_axis_spreads_more_than_220_angstrom(width, cut):
    # a band of `width` voxels spreads sqrt((width² - 1) / 12) voxels across: 21.9 and 22.2 at 10 Å
    band = np.zeros((1, 200, 100), np.float32)
    band[0, :, :width] = 2.0
    labels = np.asarray(merge({"microtubule": Tomogram(band, 10.0)}).data)
    assert labels.any() != cut
    # in Å: the same band at 20 Å/voxel spreads twice as far
    assert not np.asarray(merge({"microtubule": Tomogram(band, 20.0)}).data).any()


def test_filaments_name_features_absent_ones_are_ignored_and_the_width_is_in_angstrom():
    scores, ring, _ = _ring_and_tube()
    default = np.asarray(merge(scores).data)
    paper = np.asarray(merge(scores, filaments=None).data)
    for same in (["microtubule"], ("microtubule", "microtubule", "actin")):
        np.testing.assert_array_equal(merge(scores, filaments=same).data, default)
    for off in ([], ["double_membrane"], ["actin"]):
        np.testing.assert_array_equal(merge(scores, filaments=off).data, paper)
    # bare arrays are taken at 1 Å per voxel, where the ring is 28 Å across: a filament
    bare = {name: np.asarray(tomo.data) for name, tomo in scores.items()}
    np.testing.assert_array_equal(merge(bare).data, paper)
    np.testing.assert_array_equal(merge(bare, apix=10.0).data, default)


@pytest.mark.parametrize("max_sd", [1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
def test_wide_pieces_equal_skimages_minor_axis_slice_by_slice(max_sd):
    """merge measures the pieces' spread itself for speed; per slice it must cut the pieces whose
    skimage.measure.regionprops axis_minor_length (4 standard deviations) exceeds 4 * max_sd."""
    from skimage.measure import label, regionprops

    from tomowidgets.merge._merge import _wide_pieces

    rng = np.random.default_rng(5)
    mask = ndimage.gaussian_filter(rng.normal(size=(3, 60, 80)), (0, 3, 3)) > 0.05   # blobs, spread 0-9
    expected = np.zeros(mask.shape, bool)
    for z in range(len(mask)):
        pieces = label(mask[z], connectivity=1)
        for piece in regionprops(pieces):
            if piece.axis_minor_length > 4 * max_sd:
                expected[z][pieces == piece.label] = True
    np.testing.assert_array_equal(_wide_pieces(mask, max_sd), expected)
    assert 0 < expected.sum() < mask.sum()


@pytest.mark.parametrize("slab", [1, 2])
@pytest.mark.parametrize("scene", ["wide ring", "flanked arc"])
def test_filaments_give_the_same_labels_slab_by_slab_and_into_a_file(scene, slab, tmp_path):
    scores = _ring_and_tube()[0] if scene == "wide ring" else _arc_of_a_ring()[0]
    scores = {name: Tomogram(np.repeat(np.asarray(tomo.data)[1:2], 4, axis=0), 10.0)
              for name, tomo in scores.items()}
    whole = merge(scores)
    np.testing.assert_array_equal(merge(scores, slab=slab).data, whole.data)
    np.testing.assert_array_equal(merge(scores, out=tmp_path / "l.mrc").data, whole.data)
    assert np.all(np.asarray(whole.data)[:, 60, 20] == 2)       # every slice's ring or arc, from the left


def _arc_of_a_ring():
    """Slice 1 of 3 at 10 Å: a double membrane scoring 1.2 on a ring of radius 40 voxels, 9 wide (a
    small mitochondrion), where a microtubule network scores 2.0 on a 30° arc on its left (a stretch
    of the outline, as narrow as a tube); and the microtubule network alone on a band 9 voxels wide
    whose end meets the ring's right side (a tube running up to the mitochondrion)."""
    yy, xx = np.mgrid[:120, :200]
    ring = np.abs(np.hypot(yy - 60, xx - 60) - 40) <= 4
    arc = ring & (np.abs(np.arctan2(yy - 60, xx - 60)) >= np.radians(165))
    band = (np.abs(yy - 60) <= 4) & (xx >= 105) & (xx < 195)
    microtubule = np.zeros((3, 120, 200), np.float32)
    microtubule[1] = 2.0 * (arc | band)
    double_membrane = np.zeros_like(microtubule)
    double_membrane[1] = 1.2 * ring
    return ({"microtubule": Tomogram(microtubule, 10.0), "double_membrane": Tomogram(double_membrane, 10.0)},
            ring, arc, band)


def _contact(piece, other):
    """The fraction of the voxels around `piece` (8-neighbours, in its slice) that are in `other`."""
    around = ndimage.binary_dilation(piece, np.ones((3, 3), bool)) & ~piece
    return (around & other).sum() / around.sum()


def test_a_filament_piece_flanked_by_another_features_calls_goes_to_that_feature():
    scores, ring, arc, band = _arc_of_a_ring()
    assert 0.25 < _contact(arc, ring & ~arc) < 0.3 and _contact(band, ring) < 0.05
    width_only = np.asarray(merge(scores, filament_contact=None).data)[1]
    default = np.asarray(merge(scores).data)[1]
    assert np.all(width_only[arc] == 1) and np.all(width_only[ring & ~arc] == 2)
    assert np.all(default[ring] == 2)                            # the arc continues the ring
    assert np.all(default[band] == 1)                            # the tube only ends there
    assert not default[~(ring | band)].any()
    # with no other feature's calls around it, nothing flanks the arc
    alone = np.asarray(merge({"microtubule": scores["microtubule"]}).data)[1]
    assert np.all(alone[arc] == 1)
    # the arc without the double membrane's scores under it: given up, it becomes background
    bare = dict(scores, double_membrane=Tomogram(np.asarray(scores["double_membrane"].data) * ~arc, 10.0))
    assert not np.asarray(merge(bare).data)[1][arc].any()


def test_a_filament_piece_is_given_up_from_the_fraction_contact_of_its_surroundings():
    scores, ring, arc, _ = _arc_of_a_ring()
    contact = _contact(arc, ring & ~arc)
    below, above = (np.asarray(merge(scores, filament_contact=c).data)[1][arc]
                    for c in (contact - 1e-6, contact + 0.01))
    assert np.all(below == 2) and np.all(above == 1)
    assert np.all(np.asarray(merge(scores, filament_contact=1.0).data)[1][arc] == 1)
    # only the features named in `filaments` are judged
    np.testing.assert_array_equal(merge(scores, filaments=None).data,
                                  merge(scores, filaments=None, filament_contact=None).data)


def test_a_filament_is_continued_further_than_a_membrane_through_faint_stretches():
    # one tube and one membrane, each scored 1.2 at its ends and 0.38-0.45 along a faint stretch
    line = np.array([1.2, 1.2, 0.45, 0.38, 0.4, 1.2, 0.2, 0.4], np.float32)
    scores = {name: Tomogram(np.zeros((3, 20, 8), np.float32), 10.0) for name in ("membrane", "microtubule")}
    scores["membrane"].data[1, 5] = line
    scores["microtubule"].data[1, 15] = line
    labels = np.asarray(merge(scores, thin=None).data)[1]
    assert labels[15].tolist() == [2] * 6 + [0, 0]     # down to 0.3: continued, not the lone 0.4
    assert labels[5].tolist() == [1, 1, 0, 0, 0, 1, 0, 0]   # a membrane stops at 0.5
    off = np.asarray(merge(scores, thin=None, filament_hysteresis=None).data)[1]
    assert off[15].tolist() == [2, 2, 0, 0, 0, 2, 0, 0]      # continued as `hysteresis` says
    paper = np.asarray(merge(scores, thin=None, hysteresis=None).data)[1]   # filaments still continued
    assert paper[15].tolist() == labels[15].tolist() and paper[5].tolist() == off[5].tolist()
    # a strongly scored tube's halo (0.8: above 0.5 of the threshold, under 0.3 of its peak, 4.0)
    scores["microtubule"].data[1, 10] = [4.0, 4.0, 0.8, 0.8, 0, 0, 0, 0]
    assert np.asarray(merge(scores).data)[1, 10].tolist() == [2, 2, 0, 0, 0, 0, 0, 0]
    assert np.asarray(merge(scores, filament_hysteresis=None).data)[1, 10].tolist() == [2] * 4 + [0] * 4
    with pytest.raises(ValueError, match="filament_hysteresis"):
        merge(scores, filament_hysteresis=1.5)


def test_a_filament_piece_given_up_where_it_is_called_is_not_continued_out_of_its_flanks():
    # a short arc of tube calls lying along a double membrane (flanked: given up), with a faint
    # tail (0.4: reached only by the filaments' continuation) running off into the cytoplasm,
    # where the grown piece would be flanked by the membrane for under a fifth of its outline
    scores = {name: Tomogram(np.zeros((1, 30, 40), np.float32), 10.0)
              for name in ("double_membrane", "microtubule")}
    scores["double_membrane"].data[0, 5:7] = 2.0
    scores["microtubule"].data[0, 7, 10:15] = 1.2
    scores["microtubule"].data[0, 8:, 14] = 0.4
    tube = 2
    labels = np.asarray(merge(scores).data)[0]
    assert not (labels == tube).any()
    assert (labels[5:7] == 1).all()
    # judged by its width alone, the arc is a tube, and it is continued along its tail
    kept = np.asarray(merge(scores, filament_contact=None).data)[0]
    assert (kept[7, 10:15] == tube).all() and (kept[8:, 14] == tube).all()


@pytest.mark.parametrize("slab", [1, 2, 7, 100])
def test_slab_by_slab_equals_whole_volume(slab):
    scores = _scores()
    whole = merge(scores, 1.2, slab=100, hysteresis=None).data
    np.testing.assert_array_equal(merge(scores, 1.2, slab=slab, hysteresis=None).data, whole)
    # Against a direct argmax over the stacked volumes.
    stack = np.stack(list(scores.values()))
    expected = np.where(stack.max(0) >= 1.2, stack.argmax(0) + 1, 0)
    np.testing.assert_array_equal(whole, expected)


def test_memory_mapped_scores_stream_into_an_mrc_equal_to_in_memory(tmp_path):
    scores = _scores(shape=(9, 8, 10))
    tomos = {}
    for name, data in scores.items():
        write_tomogram(tmp_path / f"{name}.mrc", Tomogram(data, 12.0, origin=(5.0, -6.0, 7.0)))
        tomos[name] = read_tomogram(tmp_path / f"{name}.mrc", mmap=True)
    streamed = merge(tomos, thresholds={"f1": 0.5}, out=tmp_path / "labels.mrc", slab=2)
    in_memory = merge(scores, thresholds={"f1": 0.5})
    assert streamed.is_mmap and not in_memory.is_mmap
    np.testing.assert_array_equal(streamed.data, in_memory.data)
    assert streamed.apix == pytest.approx(12.0)
    assert streamed.origin == (5.0, -6.0, 7.0)
    assert streamed.path == tmp_path / "labels.mrc"
    assert (tmp_path / "labels.json").is_file()
    with mrcfile.open(tmp_path / "labels.mrc") as mrc:
        assert int(mrc.header.mode) == 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_streaming_merge_leaves_no_file(tmp_path):
    bad = np.ones((6, 2, 2), np.float32)
    bad[4, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"scores\['a'\]` in slices 4:5 contains 1 NaN"):
        merge({"a": bad}, out=tmp_path / "labels.mrc", slab=1)
    assert list(tmp_path.iterdir()) == []


def test_tomogram_inputs_keep_voxel_size_and_origin():
    scores = {k: Tomogram(v, 8.0, origin=(1.0, 2.0, 3.0)) for k, v in _scores().items()}
    labels = merge(scores)
    assert labels.apix == 8.0 and labels.origin == (1.0, 2.0, 3.0)
    assert merge(_scores(), apix=4.0).apix == 4.0
    assert merge(_scores()).apix == 1.0


def test_maps_of_different_parts_of_the_cell_are_not_merged():
    """Same shape and voxel size, but another origin: another crop of the cell, whose voxels do not
    lie on the same places; merging them silently labelled nonsense."""
    maps = _scores()
    names = list(maps)
    scores = {names[0]: Tomogram(maps[names[0]], 8.0, origin=(0.0, 0.0, 0.0)),
              names[1]: Tomogram(maps[names[1]], 8.0, origin=(0.0, 80.0, 0.0))}
    with pytest.raises(ValueError, match=rf"`scores\[{names[1]!r}\]` has origin \(0.0, 80.0, 0.0\)"):
        merge(scores)


def test_label_map_round_trip_keeps_names_voxel_size_origin_and_data(tmp_path):
    scores = {k: Tomogram(v, 13.5, origin=(10.0, 20.0, 30.0)) for k, v in _scores(n=4).items()}
    labels = merge(scores, 1.3)
    path = labels.save(tmp_path / "cell.labels.mrc")
    assert path == tmp_path / "cell.labels.mrc"
    sidecar = tmp_path / "cell.labels.json"
    meta = json.loads(sidecar.read_text())
    assert meta["names"] == ["f0", "f1", "f2", "f3"] and meta["shape_zyx"] == [7, 9, 11]
    for mmap in (False, True):
        back = LabelMap.load(path, mmap=mmap)
        np.testing.assert_array_equal(back.data, labels.data)
        assert back.data.dtype == np.uint8
        assert back.names == labels.names
        assert back.apix == pytest.approx(13.5)
        assert back.origin == (10.0, 20.0, 30.0)
        assert back.path == path
        assert back.counts() == labels.counts()


def test_names_are_also_in_the_mrc_header_so_the_map_loads_without_its_sidecar(tmp_path):
    labels = merge({"membrane": np.full((2, 2, 2), 2.0), "ribosome": np.zeros((2, 2, 2))})
    path = labels.save(tmp_path / "l.mrc")
    with mrcfile.open(path) as mrc:
        text = b" ".join(mrc.header.label).decode()
    assert "1=membrane;2=ribosome;" in text
    (tmp_path / "l.json").unlink()
    assert LabelMap.load(path).names == ("membrane", "ribosome")


def test_many_long_names_need_the_sidecar(tmp_path):
    names = [f"feature_with_a_rather_long_name_{i:03d}" for i in range(127)]
    data = np.arange(127 * 2, dtype=np.uint8).reshape(2, 127, 1) % 128
    labels = LabelMap(data, tuple(names), apix=5.0)
    path = labels.save(tmp_path / "many.mrc")
    assert LabelMap.load(path).names == tuple(names)
    (tmp_path / "many.json").unlink()
    with pytest.raises(FileNotFoundError, match="many.json"):
        LabelMap.load(path)


def test_a_sidecar_of_another_map_is_refused(tmp_path):
    merge({"a": np.ones((2, 3, 4))}).save(tmp_path / "one.mrc")
    merge({"b": np.ones((2, 3, 5))}).save(tmp_path / "two.mrc")
    (tmp_path / "two.json").replace(tmp_path / "one.json")
    with pytest.raises(ValueError, match="belongs to another file"):
        LabelMap.load(tmp_path / "one.mrc")


def test_a_float_mrc_is_not_a_label_map(tmp_path):
    write_tomogram(tmp_path / "t.mrc", np.zeros((2, 2, 2)), apix=1.0)
    with pytest.raises(ValueError, match="mode 2, not 0"):
        LabelMap.load(tmp_path / "t.mrc")


def test_mask_counts_fractions_and_repr():
    a = np.array([[[2.0, 0.0, 0.0, 3.0]]])
    b = np.array([[[0.0, 2.0, 0.0, 0.0]]])
    labels = merge({"membrane": a, "ribosome": b})
    np.testing.assert_array_equal(labels.mask("membrane"), [[[True, False, False, True]]])
    np.testing.assert_array_equal(labels.mask("background"), [[[False, False, True, False]]])
    assert labels.counts() == {"background": 1, "membrane": 2, "ribosome": 1}
    assert labels.fractions() == {"background": 0.25, "membrane": 0.5, "ribosome": 0.25}
    assert labels.label("ribosome") == 2
    assert "membrane 50.0%" in repr(labels) and "shape=(z=1, y=1, x=4)" in repr(labels)
    with pytest.raises(KeyError, match="has \\['membrane', 'ribosome'\\]"):
        labels.mask("microtubule")
    assert not labels.data.flags.writeable


@pytest.mark.parametrize(
    ("scores", "kwargs", "match"),
    [
        ({}, {}, "non-empty dict"),
        ([np.ones((2, 2, 2))], {}, "non-empty dict"),
        ({"a": np.ones((2, 2, 2)), "b": np.ones((2, 2, 3))}, {}, r"scores\['b'\]` has shape"),
        ({"a": np.ones((2, 2))}, {}, "3-dimensional"),
        ({"a": Tomogram(np.ones((2, 2, 2)), 10.0), "b": Tomogram(np.ones((2, 2, 2)), 20.0)}, {},
         "voxel size 20 Å"),
        ({"a": Tomogram(np.ones((2, 2, 2)), 10.0)}, {"apix": 5.0}, "voxel size 10 Å"),
        ({f"f{i}": np.ones((1, 1, 1)) for i in range(128)}, {}, "at most 127"),
        ({"a": np.array([[[1.0, np.nan]]])}, {}, "NaN"),
        ({"a": np.ones((1, 1, 1))}, {"threshold": np.nan}, "`threshold` must be a finite number"),
        ({"a": np.ones((1, 1, 1))}, {"thresholds": {"b": 1.0}}, r"names \['b'\], which are not"),
        ({"a": np.ones((1, 1, 1))}, {"thresholds": {"a": "high"}}, r"thresholds\['a'\]"),
        ({"a": np.ones((1, 1, 1))}, {"slab": 0}, "`slab` must be an integer >= 1"),
        ({"background": np.ones((1, 1, 1))}, {}, "label 0 is the background"),
        ({"": np.ones((1, 1, 1))}, {}, "non-empty printable"),
        ({"a": np.ones((1, 1, 1), complex)}, {}, "real-valued"),
        ({"a": np.ones((1, 1, 1))}, {"out": "labels.json"}, "must be an MRC file"),
        ({"a": np.ones((1, 1, 1))}, {"hysteresis": 1.0}, "`hysteresis` must be a fraction"),
        ({"a": np.ones((1, 1, 1))}, {"hysteresis": True}, "`hysteresis`"),
        ({"a": np.ones((1, 1, 1))}, {"vote": "a"}, "`vote` must be a list of groups"),
        ({"a": np.ones((1, 1, 1))}, {"vote": ["ab"]}, "each group in `vote`"),
        ({"a": np.ones((1, 1, 1))}, {"vote": [("a", 1)]}, "each group in `vote`"),
        ({"a": np.ones((1, 1, 1))}, {"vote": [("a", "b"), ("a", "c")]}, r"names \['a'\] twice"),
        ({"a": np.ones((1, 1, 1))}, {"vote": [("a", "a")]}, "twice"),
        ({"a": np.ones((1, 1, 1))}, {"thin": "a"}, "`thin` must be a list of feature names"),
        ({"a": np.ones((1, 1, 1))}, {"thin": ["a", 1]}, "`thin` must be a list"),
        ({"a": np.ones((1, 1, 1))}, {"filaments": "a"}, "`filaments` must be a list of feature names"),
        ({"a": np.ones((1, 1, 1))}, {"filaments": [None]}, "`filaments` must be a list"),
        ({"a": np.ones((1, 1, 1))}, {"filament_contact": 0.0},
         r"`filament_contact` must be a fraction in \(0, 1\]"),
        ({"a": np.ones((1, 1, 1))}, {"filament_contact": 1.5}, "`filament_contact`"),
        ({"a": np.ones((1, 1, 1))}, {"filament_contact": np.nan}, "`filament_contact`"),
        ({"a": np.ones((1, 1, 1))}, {"filament_contact": True}, "`filament_contact`"),
        ({"a": np.ones((1, 1, 1))}, {"filament_contact": "0.2"}, "`filament_contact`"),
    ],
)
def test_bad_inputs_raise_value_errors_that_name_the_problem(scores, kwargs, match):
    with pytest.raises(ValueError, match=match):
        merge(scores, **kwargs)


def test_label_map_checks_its_data():
    with pytest.raises(ValueError, match="uint8"):
        LabelMap(np.zeros((1, 1, 1), np.int16), ("a",))
    with pytest.raises(ValueError, match="holds label 3"):
        LabelMap(np.full((1, 1, 1), 3, np.uint8), ("a", "b"))
    with pytest.raises(ValueError, match="unique"):
        LabelMap(np.zeros((1, 1, 1), np.uint8), ("a", "a"))
    assert sidecar_path("x/cell.labels.mrc").name == "cell.labels.json"


def test_consensus_is_the_mean_score_and_disagreement_the_spread_between_networks():
    from tomowidgets.merge import consensus

    agree = np.full((4, 3, 3), 1.5, np.float32)
    a, b, c = agree.copy(), agree.copy(), agree.copy()
    a[2, 1, 1], b[2, 1, 1], c[2, 1, 1] = 0.0, 0.0, 3.0  # one annotator's network calls this voxel
    result = consensus({"anna": Tomogram(a, 10.0, origin=(5.0, 0.0, 0.0)), "ben": b, "carl": c})
    assert result.mean.apix == result.disagreement.apix == 10.0
    assert result.mean.origin == result.disagreement.origin == (5.0, 0.0, 0.0)
    assert result.mean.path is None
    assert result.mean.data[0, 0, 0] == pytest.approx(1.5)
    assert result.disagreement.data[0, 0, 0] == pytest.approx(0.0)
    assert result.mean.data[2, 1, 1] == pytest.approx(1.0)
    assert result.disagreement.data[2, 1, 1] == pytest.approx(np.std([0.0, 0.0, 3.0]))
    assert np.count_nonzero(result.disagreement.data > 1e-6) == 1
    assert np.array_equal(consensus([a, b, c]).mean.data, result.mean.data)  # a list works too


def test_consensus_rejects_a_single_map_and_mismatched_maps():
    from tomowidgets.merge import consensus

    one = np.zeros((2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="at least 2"):
        consensus([one])
    with pytest.raises(ValueError, match="list of score maps"):
        consensus(one)
    with pytest.raises(ValueError, match="shape"):
        consensus([one, np.zeros((2, 2, 3), np.float32)])
    bad = one.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        consensus([one, bad])
