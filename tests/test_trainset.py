"""TrainingSet: tile cutting, validation, augmentation, balancing, save/load and ground-truth picking."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tomowidgets as tw
from tomowidgets.trainset import NEGATIVE_COPIES, TrainingSet, shrink_labels
from tomowidgets.trainset import competing as competing_sets
from tomowidgets.trainset._sampling import rotate_pair, training_examples
from tomowidgets.trainset._tilefile import unpack_tiles

T = 16  # small tiles keep the tests fast; one test uses the paper's 64


def _tomo(shape=(6, 40, 48), apix=10.0, seed=0, path=None):
    data = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return tw.Tomogram(data, apix, path)


def _mask(tile=T, row=None):
    mask = np.zeros((tile, tile), bool)
    mask[tile // 2 if row is None else row] = True
    return mask


def _small_set(n_pos=2, n_neg=6, seed=0, **kwargs):
    tomo = _tomo(seed=seed)
    ts = TrainingSet(T, feature="membrane", **kwargs)
    for i in range(n_pos):
        ts.add_positive(tomo, i % 6, 10 + i, 12 + i, _mask(row=3 + i % 10))
    for i in range(n_neg):
        ts.add_negative(tomo, i % 6, 20 + i % 8, 30 - i % 10)
    return ts


# -- cutting tiles ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("y", "x"), [(8, 8), (32, 40), (9, 39), (31, 17)])
def test_tile_equals_the_tomogram_region_including_the_edges(y, x):
    tomo = _tomo(shape=(3, 40, 48))  # allowed centres: y in 8..32, x in 8..40
    ts = TrainingSet(T)
    i = ts.add_negative(tomo, 2, y, x)
    np.testing.assert_array_equal(ts.image(i), tomo.data[2, y - 8:y + 8, x - 8:x + 8])
    assert ts.centres[i].tolist() == [2, y, x]


def test_tile_centre_voxel_is_at_half_the_tile_size():
    data = np.zeros((1, 64, 64), np.float32)
    data[0, 21, 37] = 5.0
    ts = TrainingSet(T)
    ts.add_negative(tw.Tomogram(data, 10.0), 0, 21, 37)
    assert ts.image(0)[T // 2, T // 2] == 5.0


def test_tiles_are_float32_copies_never_views_even_of_a_memory_map(tmp_path):
    path = tw.write_tomogram(tmp_path / "t.mrc", _tomo())
    mm = tw.read_tomogram(path, mmap=True)
    ints = tw.Tomogram(np.arange(6 * 40 * 48, dtype=np.int16).reshape(6, 40, 48), 10.0)
    ts = TrainingSet(T)
    ts.add_positive(mm, 1, 20, 20, _mask())
    ts.add_negative(ints, 1, 20, 20)
    for rec in ts:
        assert type(rec.image) is np.ndarray and rec.image.dtype == np.float32
        assert rec.mask.dtype == bool
        assert not np.shares_memory(rec.image, mm.data) and not rec.image.flags.writeable
    assert ts.sources == (str(path), None)
    memory = _tomo()
    ts.add_negative(memory, 0, 20, 20)
    memory.data[0, 20, 20] += 100.0
    assert ts.image(2)[8, 8] != memory.data[0, 20, 20]


def test_accessors_return_read_only_views():
    ts = _small_set()
    with pytest.raises(ValueError, match="read-only"):
        ts.mask(0)[0, 0] = True
    with pytest.raises(ValueError, match="read-only"):
        ts.image(0)[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        ts.centres[0, 0] = 1


@pytest.mark.parametrize(
    ("z", "y", "x", "match"),
    [
        (0, 7, 20, r"y=7 runs 1 voxel\(s\) off the edge; `y` must be in 8\.\.32"),
        (0, 35, 20, r"y=35 runs 3 voxel\(s\) off the edge; `y` must be in 8\.\.32"),
        (0, 20, 41, r"x=41 runs 1 voxel\(s\) off the edge; `x` must be in 8\.\.40"),
        (0, 20, 0, r"x=0 runs 8 voxel\(s\) off"),
        (6, 20, 20, r"`z`=6 is outside the tomogram; it must be in 0\.\.5"),
        (-1, 20, 20, r"`z`=-1 is outside"),
        (0, 20.0, 20, r"`y` must be an integer voxel index, got 20\.0; round it"),
    ],
)
def test_tile_off_the_edge_says_by_how_much_and_the_allowed_range(z, y, x, match):
    ts = TrainingSet(T)
    with pytest.raises(ValueError, match=match):
        ts.add_negative(_tomo(), z, y, x)
    with pytest.raises(ValueError, match=match):
        ts.add_positive(_tomo(), z, y, x, _mask())
    assert len(ts) == 0


def test_tomogram_smaller_than_the_tile_is_refused():
    with pytest.raises(ValueError, match="10 voxels along y, smaller than the 16-voxel tile"):
        TrainingSet(T).add_negative(_tomo(shape=(2, 10, 40)), 0, 5, 20)


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (np.ones((T, T + 1), bool), r"`mask` must have the tile's shape \(16, 16\), got \(16, 17\)"),
        (np.ones((T * T,), bool), r"must have the tile's shape"),
        (np.full((T, T), 0.7), r"`mask` must hold only 0/1.*mask > 0\.5"),
        (np.zeros((T, T), bool), r"no painted pixel.*use add_negative\(tomo, z, y, x\)"),
        (np.zeros((T, T), np.uint8), r"no painted pixel"),
    ],
)
def test_bad_masks_are_refused(mask, match):
    with pytest.raises(ValueError, match=match):
        TrainingSet(T).add_positive(_tomo(), 0, 20, 20, mask)


def test_integer_and_float_masks_of_zeros_and_ones_are_accepted_as_bool():
    ts = TrainingSet(T)
    ts.add_positive(_tomo(), 0, 20, 20, _mask().astype(np.uint8))
    ts.add_positive(_tomo(), 1, 20, 20, _mask().astype(np.float64))
    assert ts.mask(0).dtype == bool and ts.mask(1).sum() == T


def test_another_voxel_size_is_refused_with_a_binning_hint():
    ts = TrainingSet(T)
    ts.add_negative(_tomo(apix=10.0), 0, 20, 20)
    assert ts.apix == 10.0
    ts.add_negative(_tomo(apix=10.000001), 0, 20, 20)  # float32 header rounding is the same size
    with pytest.raises(ValueError, match=r"`tomo` has 5 Å/voxel .* 10 Å/voxel .* bin it by 2 with "
                                         r"`tomowidgets\.preprocess\.bin`"):
        ts.add_negative(_tomo(apix=5.0), 0, 20, 20)
    with pytest.raises(ValueError, match=r"has 20 Å/voxel .*preprocess\.rescale"):
        ts.add_negative(_tomo(apix=20.0), 0, 20, 20)
    with pytest.raises(ValueError, match=r"has 5 Å/voxel"):
        TrainingSet(T, apix=10.0).add_negative(_tomo(apix=5.0), 0, 20, 20)


def test_nan_tiles_are_refused_but_nan_elsewhere_is_not():
    tomo = _tomo()
    tomo.data[0, 20, 20] = np.nan
    ts = TrainingSet(T)
    with pytest.raises(ValueError, match=r"tile at \(z=0, y=20, x=20\) contains 1 NaN"):
        ts.add_negative(tomo, 0, 20, 20)
    ts.add_negative(tomo, 1, 20, 20)
    assert len(ts) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tile": 15}, r"`tile` must be even and >= 16 voxels, got 15; the paper uses 64"),
        ({"tile": 8}, r"`tile` must be even and >= 16"),
        ({"tile": 64.0}, r"`tile` must be even"),
        ({"feature": 3}, r"`feature` must be a name"),
        ({"apix": -1.0}, r"`apix` must be a positive number"),
        ({"preprocessing": {"lowpass": object()}}, r"`preprocessing` must be a dict of JSON-able"),
        ({"preprocessing": [20, 4000]}, r"`preprocessing` must be a dict"),
    ],
)
def test_bad_constructor_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainingSet(**kwargs)


def test_a_bare_array_is_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"`tomo` must be a tomowidgets\.Tomogram.*Tomogram\(array"):
        TrainingSet(T).add_negative(np.zeros((2, 40, 40), np.float32), 0, 20, 20)


# -- editing ---------------------------------------------------------------------------------------
def test_counts_centres_kinds_and_repr():
    ts = _small_set(n_pos=2, n_neg=3)
    assert (len(ts), ts.n_positive, ts.n_negative) == (5, 2, 3)
    assert ts.kinds == ("positive",) * 2 + ("negative",) * 3
    assert ts.centres.shape == (5, 3) and ts.centres[1].tolist() == [1, 11, 13]
    assert repr(ts) == "TrainingSet('membrane', 2 positive + 3 negative tiles of 16×16 at 10 Å/voxel)"
    assert repr(TrainingSet()) == "TrainingSet(0 positive + 0 negative tiles of 64×64)"
    assert "positive, 16×16, centre=(z=0, y=10, x=12)" in repr(ts[0])


def test_remove_and_replace_mask():
    ts = _small_set(n_pos=2, n_neg=2)
    removed = ts.remove(0)
    assert removed.centre == (0, 10, 12) and len(ts) == 3 and ts.n_positive == 1
    assert ts[0].centre == (1, 11, 13)
    new = _mask(row=2) | _mask(row=5)
    ts.replace_mask(0, new)
    np.testing.assert_array_equal(ts.mask(0), new)
    ts.set_mask(-3, _mask(row=1))
    assert ts.mask(0)[1].all() and ts.mask(0).sum() == T
    with pytest.raises(ValueError, match=r"no painted pixel; to make tile 0 a negative, call "
                                         r"remove\(0\)"):
        ts.replace_mask(0, np.zeros((T, T), bool))
    with pytest.raises(ValueError, match=r"tile 1 is a negative and has no mask"):
        ts.replace_mask(1, _mask())
    with pytest.raises(IndexError, match=r"`index` must be a tile index in 0\.\.2 .*got 3"):
        ts.remove(3)
    with pytest.raises(IndexError, match=r"got -4"):
        ts[-4]
    with pytest.raises(TypeError, match=r"`index` must be an integer tile index, got 1\.0"):
        ts.mask(1.0)
    assert not ts.mask(-1).any()  # a negative's mask is empty


def test_split_holds_out_a_share_of_each_kind_reproducibly():
    ts = _small_set(n_pos=10, n_neg=20)
    ts.replace_mask(9, _mask(row=4), painted=False)          # a placeholder is never held out
    kept, held = ts.split(0.2, rng=1)
    assert (held.n_positive, held.n_negative) == (2, 4) and (kept.n_positive, kept.n_negative) == (8, 16)
    assert tuple(ts[9].centre) not in {tuple(c) for c in held.centres}
    centres = {tuple(c) for c in kept.centres} | {tuple(c) for c in held.centres}
    assert len(kept) + len(held) == len(ts) and centres == {tuple(c) for c in ts.centres}
    again = ts.split(0.2, rng=1)[1]
    assert [r.centre for r in again] == [r.centre for r in held]
    assert held.feature == "membrane" and held.apix == ts.apix and len(ts) == 30   # ts unchanged
    small = _small_set(n_pos=2, n_neg=1).split(0.5)[1]          # one of each kept to train on
    assert (small.n_positive, small.n_negative) == (1, 0)
    with pytest.raises(ValueError, match="1 painted positive tile.*at least 2"):
        _small_set(n_pos=1).split()
    with pytest.raises(ValueError, match=r"`fraction` must lie in \(0, 1\)"):
        ts.split(1.0)


def test_merge_and_concatenate_keep_order_and_leave_inputs_unchanged():
    a, b = _small_set(1, 2), _small_set(2, 1, seed=1)
    merged = a.merge(b)
    assert (len(a), len(b), len(merged)) == (3, 3, 6)
    assert merged.kinds == ("positive", "negative", "negative", "positive", "positive", "negative")
    np.testing.assert_array_equal(merged.image(3), b.image(0))
    empty = TrainingSet(T)
    both = TrainingSet.concatenate([empty, a, b])
    assert both.apix == 10.0 and both.feature == "membrane" and len(both) == 6


@pytest.mark.parametrize(
    ("other", "match"),
    [
        (TrainingSet(32), r"set 1 has 32-voxel tiles, set 0 has 16"),
        (TrainingSet(T, apix=5.0), r"set 1 has 5 Å/voxel .*preprocess\.bin"),
        (TrainingSet(T, feature="ribosome"), r"set 1 is for feature 'ribosome', not 'membrane'"),
        (TrainingSet(T, preprocessing={"lowpass": 30}), r"set 1 was preprocessed with"),
    ],
)
def test_merge_refuses_incompatible_sets(other, match):
    ts = _small_set(preprocessing={"lowpass": 20})
    with pytest.raises(ValueError, match=match):
        ts.merge(other)


def test_concatenate_needs_training_sets():
    with pytest.raises(ValueError, match="`sets` must be a non-empty list of TrainingSet"):
        TrainingSet.concatenate([])


def test_metadata_describes_the_set():
    tomo = _tomo(path="/data/cell.mrc")
    ts = TrainingSet(T, feature="membrane", preprocessing={"lowpass": 20, "clamp": 3})
    ts.add_positive(tomo, 1, 20, 21, _mask())
    ts.add_negative(_tomo(), 2, 22, 23)
    meta = ts.metadata
    assert meta["apix"] == 10.0 and meta["tile"] == T and meta["feature"] == "membrane"
    assert meta["preprocessing"] == {"lowpass": 20, "clamp": 3}
    assert meta["sources"] == ["/data/cell.mrc"]
    assert meta["tiles"][1] == {"kind": "negative", "centre": [2, 22, 23], "source": None}
    json.dumps(meta)
    meta["preprocessing"]["lowpass"] = 99  # a copy: the set is unchanged
    assert ts.preprocessing == {"lowpass": 20, "clamp": 3}


# -- training arrays -------------------------------------------------------------------------------
def _line_set(n_neg=20, seed=0):
    """Positives with a bright 3-pixel line off the centre, and its mask; negatives of noise."""
    rng = np.random.default_rng(seed)
    data = rng.normal(scale=0.1, size=(2, 32, 32)).astype(np.float32)
    data[:, 10:13, :] += 3.0
    tomo = tw.Tomogram(data, 10.0)
    mask = np.zeros((T, T), bool)
    mask[2:5, :] = True  # rows 10..12 of the volume in the tile centred at y=16
    ts = TrainingSet(T)
    ts.add_positive(tomo, 0, 16, 16, mask)
    ts.add_positive(tomo, 1, 16, 12, mask)
    noise = tw.Tomogram(rng.normal(scale=0.1, size=(2, 32, 32)).astype(np.float32), 10.0)
    for i in range(n_neg):
        ts.add_negative(noise, i % 2, 8 + i % 16, 16)
    return ts


def _correlation(x, y):
    down = shrink_labels(x)  # the image on the label grid
    return np.corrcoef(down.ravel(), y.ravel())[0, 1]


def test_rotated_masks_still_line_up_with_the_rotated_images():
    x, y = _line_set().training_arrays(rng=3, copies=12)
    positive = y.reshape(len(y), -1).max(axis=1) > 0
    assert positive.sum() == 24
    corr = [_correlation(xi, yi) for xi, yi in zip(x[positive], y[positive], strict=True)]
    assert min(corr) > 0.8
    misaligned = [_correlation(xi, np.rot90(yi)) for xi, yi in zip(x[positive], y[positive],
                                                                    strict=True)]
    assert np.mean(misaligned) < 0.5
    # the copies really are rotated: label patterns differ, and rotation leaves no empty corners
    assert len({yi.tobytes() for yi in y[positive]}) > 12
    assert np.all(np.abs(x[positive][:, [0, 0, -1, -1], [0, -1, 0, -1]]) > 0)


def test_balance_gives_about_as_many_positives_as_negatives():
    ts = _small_set(n_pos=3, n_neg=30)
    x, y = ts.training_arrays(rng=0, negative_copies=1)
    n_pos = int((y.reshape(len(y), -1).max(axis=1) > 0).sum())
    assert (n_pos, len(x) - n_pos) == (30, 30)
    x, y = _small_set(n_pos=4, n_neg=30).training_arrays(rng=0, negative_copies=1)
    assert len(x) == 4 * 8 + 30
    assert len(ts.training_arrays(rng=0, balance=False, negative_copies=1)[0]) == 33
    assert len(ts.training_arrays(rng=0, copies=2, negative_copies=1)[0]) == 36
    with pytest.raises(ValueError, match=r"`copies` must be an integer >= 1, got 0"):
        ts.training_arrays(copies=0)
    with pytest.raises(ValueError, match=r"`negative_copies` must be an integer >= 1, got 0"):
        ts.training_arrays(negative_copies=0)


def test_by_default_each_negative_appears_in_3_rotations_like_eman2s_ncopy():
    ts = _small_set(n_pos=3, n_neg=6)
    x, y = ts.training_arrays(rng=0)
    positive = y.reshape(len(y), -1).max(axis=1) > 0
    assert NEGATIVE_COPIES == 3
    assert (positive.sum(), (~positive).sum()) == (18, 18)  # 3 × 6 positives balance 6 × 3
    negatives = {xi.tobytes() for xi in x[~positive]}
    assert len(negatives) == 18  # rotated by random angles: all different
    originals = {ts.image(i).tobytes() for i in range(len(ts)) if ts.kinds[i] == "negative"}
    assert originals <= negatives  # each also appears once as picked
    x, y = ts.training_arrays(rng=0, negative_copies=4, balance=False)
    assert len(x) == 3 + 6 * 4


def test_arrays_have_the_network_shapes_dtypes_and_label_range():
    x, y = _small_set(n_pos=2, n_neg=4).training_arrays(rng=0)
    assert x.shape == (24, T, T) and y.shape == (24, T // 2, T // 2)  # 2×6 + 4×3
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert x.flags.writeable and x.flags.c_contiguous


def test_labels_are_the_fraction_of_painted_pixels_per_2x2_block():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[2:, 2:] = True
    mask[1, 2] = True
    np.testing.assert_array_equal(shrink_labels(mask), [[0.25, 0.25], [0.0, 1.0]])
    assert shrink_labels(np.zeros((3, 16, 16))).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="even tile sizes"):
        shrink_labels(np.zeros((5, 5)))


def test_unrotated_copy_and_negatives_are_kept_exactly():
    ts = _small_set(n_pos=1, n_neg=3)
    x, y = ts.training_arrays(rng=0, copies=1, negative_copies=1)
    originals = {ts.image(i).tobytes() for i in range(len(ts))}
    assert {xi.tobytes() for xi in x} == originals


def test_training_arrays_are_deterministic_for_a_seed_and_shuffled():
    ts = _small_set(n_pos=2, n_neg=10)
    x1, y1 = ts.training_arrays(rng=7, augment_negatives=True)
    x2, y2 = ts.training_arrays(rng=np.random.default_rng(7), augment_negatives=True)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = ts.training_arrays(rng=8, augment_negatives=True)
    assert not np.array_equal(x1, x3)
    positive = y1.reshape(len(y1), -1).max(axis=1) > 0
    assert not positive[: positive.sum()].all()  # shuffled: the positives are not all first


def test_augmented_negatives_are_exact_rotations_or_flips_of_the_originals():
    ts = _small_set(n_pos=1, n_neg=4)
    x, y = ts.training_arrays(rng=1, augment_negatives=True, copies=1, negative_copies=1)
    variants = set()
    for i in range(1, len(ts)):
        img = ts.image(i)
        for k in range(4):
            variants |= {np.rot90(img, k).tobytes(), np.rot90(img, k)[:, ::-1].tobytes()}
    negatives = x[y.reshape(len(y), -1).max(axis=1) == 0]
    assert len(negatives) == 4 and all(n.tobytes() in variants for n in negatives)


def test_empty_set_or_no_positive_is_refused():
    with pytest.raises(ValueError, match=r"training set is empty; annotate at least one positive"):
        TrainingSet(T).training_arrays()
    with pytest.raises(ValueError, match=r"no painted positive; annotate at least one positive tile"):
        _small_set(n_pos=0, n_neg=3).training_arrays()


def test_placeholder_masks_are_kept_but_never_trained_on(tmp_path):
    # #20, 2: the TileSelector's placeholder disk must not become training data
    ts = _small_set(n_pos=2, n_neg=6)
    tomo = _tomo()
    disk = _mask(row=2)
    ts.add_positive(tomo, 1, 20, 20, disk, painted=False)
    assert ts.unpainted == (8,) and ts[8].painted is False
    assert "(1 not painted yet)" in repr(ts) and "placeholder mask: not painted yet" in repr(ts[8])
    loaded = TrainingSet.load(ts.save(tmp_path / "set.tiles.npz"))
    assert loaded.unpainted == (8,) and np.array_equal(loaded.mask(8), disk)
    with pytest.warns(UserWarning, match=r"tile\(s\) \[8\] still have only their placeholder"):
        x, y = ts.training_arrays(rng=0, copies=1, negative_copies=1)
    assert len(x) == 2 + 6                                    # the placeholder tile is left out
    assert not any(np.array_equal(img, ts.image(8)) for img in x)
    from tomowidgets.network._training import positive_tiles
    assert len(positive_tiles(ts)[0]) == 2                    # and calibration ignores it too
    ts.replace_mask(8, _mask(row=5))                          # painted: it trains
    assert ts.unpainted == () and TrainingSet.load(ts.save(tmp_path / "set.tiles.npz")).unpainted == ()
    assert len(ts.training_arrays(rng=0, copies=1, negative_copies=1)[0]) == 3 + 6
    ts.replace_mask(8, disk, painted=False)                   # an undo back to the placeholder
    assert ts.unpainted == (8,)


def test_a_set_of_placeholders_only_says_to_paint_them():
    ts = _small_set(n_pos=0, n_neg=3)
    ts.add_positive(_tomo(), 1, 20, 20, _mask(), painted=False)
    with pytest.raises(ValueError, match=r"no painted positive \(1 positive tile\(s\), \[3\], still "
                                         r"have only their placeholder mask: paint them"):
        ts.training_arrays()


def test_paper_sized_tiles_work_end_to_end():
    tomo = _tomo(shape=(2, 96, 96))
    mask = np.zeros((64, 64), bool)
    mask[20:30, 5:50] = True
    ts = TrainingSet()
    ts.add_positive(tomo, 0, 48, 48, mask)
    for i in range(10):
        ts.add_negative(tomo, 1, 32 + i, 40)
    x, y = ts.training_arrays(rng=0)
    assert x.shape == (60, 64, 64) and y.shape == (60, 32, 32)  # 1×30 + 10×3


# -- files -----------------------------------------------------------------------------------------
def test_save_load_round_trips_everything(tmp_path):
    tomo = _tomo(path="/data/cell.mrc")
    ts = TrainingSet(T, feature="membrane", preprocessing={"lowpass": 20.0, "highpass": 4000.0})
    ts.add_positive(tomo, 1, 20, 21, _mask(row=4))
    ts.add_negative(_tomo(seed=3), 2, 22, 23)
    path = ts.save(tmp_path / "membrane.tiles.npz")
    back = TrainingSet.load(path)
    assert repr(back) == repr(ts) and back.metadata == ts.metadata
    assert back.preprocessing == {"lowpass": 20.0, "highpass": 4000.0}
    for a, b in zip(ts, back, strict=True):
        assert (a.kind, a.centre, a.source) == (b.kind, b.centre, b.source)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert b.image.dtype == np.float32 and b.mask.dtype == bool and not b.image.flags.writeable
    np.testing.assert_array_equal(back.training_arrays(rng=1)[0], ts.training_arrays(rng=1)[0])
    assert list(tmp_path.iterdir()) == [path]  # no temporary left behind


def test_empty_set_round_trips(tmp_path):
    back = TrainingSet.load(TrainingSet(32, feature="x").save(tmp_path / "e.npz"))
    assert (len(back), back.tile, back.apix, back.feature) == (0, 32, None, "x")


def test_missing_file_raises_file_not_found_with_a_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No training set at .*TrainingSet\.save"):
        TrainingSet.load(tmp_path / "nope.tiles.npz")


def _meta(text):
    return np.frombuffer(text.encode(), np.uint8)


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda fh: fh.write(b"not a training set"), "not a tomowidgets training set"),
        (lambda fh: np.save(fh, np.zeros(3)), "single .npy array"),
        (lambda fh: np.savez(fh, images=np.zeros((1, T, T), np.float32)),
         r"arrays \['masks', 'metadata'\] are missing"),
        (lambda fh: np.savez(fh, images=np.zeros((0, T, T), np.float32), masks=np.zeros((0, T, T),
                             bool), metadata=_meta('{"format": "something else"}')),
         "no tomowidgets training-set marker"),
        (lambda fh: np.savez(fh, images=1, masks=1, metadata=_meta("{not json")),
         "not a tomowidgets training set .* or it is corrupt"),
        (lambda fh: np.savez(fh, images=np.array([object()]), masks=1, metadata=1),
         "not a tomowidgets training set .* or it is corrupt"),
    ],
)
def test_foreign_files_raise_value_error(tmp_path, write, match):
    path = tmp_path / "x.tiles.npz"
    with open(path, "wb") as fh:
        write(fh)
    with pytest.raises(ValueError, match=match):
        TrainingSet.load(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_file_raises_value_error(tmp_path, keep):
    path = _small_set().save(tmp_path / "t.tiles.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"not a tomowidgets training set .* or it is corrupt"):
        TrainingSet.load(path)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    """A small file whose 'images' unpack to 64 MB for a set that records 2 tiles of 16²: refused from
    the sizes the zip declares, before anything of that size is allocated."""
    import tracemalloc
    import zipfile

    path = _small_set(n_pos=1, n_neg=1).save(tmp_path / "t.tiles.npz")
    with np.load(path) as npz:
        metadata = npz["metadata"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in (("masks", np.zeros((2, T, T), bool)), ("metadata", metadata)):
            with archive.open(f"{name}.npy", "w") as member:
                np.save(member, array)
        with archive.open("images.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (65536, T, T)})
            zeros = bytes(2**20)
            for _ in range(65536 * T * T * 4 // 2**20):
                member.write(zeros)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"'images' would unpack to 67,108,\d+ bytes, more than"):
            TrainingSet.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**24


def test_tampered_metadata_raises_value_error(tmp_path):
    path = _small_set(n_pos=1, n_neg=1).save(tmp_path / "t.tiles.npz")
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(arrays["metadata"].tobytes())
    meta["tiles"][0]["kind"] = "negative"  # but its mask is painted
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="inconsistent with its mask"):
        TrainingSet.load(path)
    meta["version"] = 99
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="upgrade tomowidgets"):
        TrainingSet.load(path)
    assert zipfile.is_zipfile(path)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("kind", "maybe", r"has kind 'maybe', not one of \('positive', 'negative'\)"),
    ("centre", [1, 2], r"has a centre of 2 coordinates, not \(z, y, x\)"),
    ("painted", "yes", "has 'painted' 'yes', not true or false"),
])
def test_each_bad_tile_record_field_is_named(field, value, message):
    ts = _small_set(n_pos=1, n_neg=1)
    meta = ts.metadata
    meta["tiles"][0][field] = value
    images, masks, slices, _ = _arrays_without_slices(ts)
    with pytest.raises(ValueError, match=message):
        unpack_tiles(images, masks, slices, meta, ts.tile, 0)


def test_only_a_positive_may_be_left_unpainted_in_a_file():
    ts = _small_set(n_pos=1, n_neg=1)
    meta = ts.metadata
    negative = next(i for i, info in enumerate(meta["tiles"]) if info["kind"] == "negative")
    meta["tiles"][negative]["painted"] = False
    images, masks, slices, _ = _arrays_without_slices(ts)
    with pytest.raises(ValueError, match="'painted' false, which only a positive tile may have"):
        unpack_tiles(images, masks, slices, meta, ts.tile, 0)


# -- ground truth ----------------------------------------------------------------------------------
def _labelled(shape=(12, 96, 96)):
    """A tomogram with two bright slabs (the 'membrane'), labelled exactly, elsewhere noise."""
    rng = np.random.default_rng(0)
    data = rng.normal(scale=0.1, size=shape).astype(np.float32)
    label = np.zeros(shape, bool)
    label[:, 20:23, :] = True
    label[:, 30:70, 60:63] = True
    data[label] += 2.0
    return tw.Tomogram(data, 10.0), label


def test_from_ground_truth_respects_the_label():
    tomo, label = _labelled()
    ts = TrainingSet.from_ground_truth(tomo, label, feature="membrane", n_positive=6,
                                       n_negative=20, rng=0, tile=T)
    assert (ts.n_positive, ts.n_negative, ts.feature, ts.apix) == (6, 20, "membrane", 10.0)
    h = T // 2
    for rec in ts:
        z, y, x = rec.centre
        region = label[z, y - h:y + h, x - h:x + h]
        np.testing.assert_array_equal(rec.image, tomo.data[z, y - h:y + h, x - h:x + h])
        if rec.kind == "positive":
            assert label[z, y, x] and rec.mask.mean() >= 0.01
            np.testing.assert_array_equal(rec.mask, region)
        else:
            assert not region.any()
    pos = ts.centres[np.array(ts.kinds) == "positive"]
    dist = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    assert dist[np.triu_indices(len(pos), 1)].min() >= T / 2  # spread out, no near-duplicates
    assert len({tuple(c) for c in ts.centres[ts.n_positive:].tolist()}) == 20


def test_from_ground_truth_is_deterministic_and_perturbs_masks():
    tomo, label = _labelled()
    kwargs = dict(feature="m", n_positive=5, n_negative=5, tile=T, perturb=2)
    a = TrainingSet.from_ground_truth(tomo, label, rng=4, **kwargs)
    b = TrainingSet.from_ground_truth(tomo, label, rng=4, **kwargs)
    assert a.metadata == b.metadata
    changed = 0
    for rec in list(a)[:5]:
        z, y, x = rec.centre
        exact = label[z, y - 8:y + 8, x - 8:x + 8]
        assert rec.mask.any()
        changed += not np.array_equal(rec.mask, exact)
    assert changed >= 1


def test_from_ground_truth_falls_back_to_nearly_empty_negatives():
    shape = (2, 32, 32)
    tomo = tw.Tomogram(np.zeros(shape, np.float32), 10.0)
    label = np.zeros(shape, bool)
    label[:, ::16, ::16] = True  # exactly one voxel in every 16×16 tile: 1/256 < 0.5 %
    label[:, 16:19, :] = True
    ts = TrainingSet.from_ground_truth(tomo, label, feature=None, n_positive=1, n_negative=3,
                                       rng=0, tile=T)
    assert ts.n_negative == 3
    for z, y, x in ts.centres[1:]:
        assert label[z, y - 8:y + 8, x - 8:x + 8].sum() == 1


@pytest.mark.parametrize(
    ("label", "kwargs", "match"),
    [
        (np.zeros((12, 96, 96), bool), {}, r"`label` has no labelled voxel"),
        (np.zeros((12, 96, 95), bool), {}, r"`label` must be a boolean volume of the tomogram's"),
        (np.zeros((12, 96, 96), np.float32), {}, r"label > 0\.5"),
        (None, {"n_positive": 10_000}, r"only \d+ of n_positive=10000 positive tiles could be"),
        ("stripes", {}, r"only 0 of n_negative=4 negative tiles could be found"),
        (None, {"tile": 128}, r"smaller than the 128-voxel tile"),
        (None, {"perturb": -1}, r"`perturb` must be an integer >= 0"),
        (None, {"n_positive": 0}, r"`n_positive` must be an integer >= 1"),
    ],
)
def test_from_ground_truth_errors(label, kwargs, match):
    tomo, good = _labelled()
    if isinstance(label, str):  # a labelled row every 6: every tile holds >= 2/16 labelled pixels
        label = np.zeros(tomo.shape, bool)
        label[:, ::6, :] = True
    kwargs = {"n_positive": 4, "n_negative": 4, "tile": T, **kwargs}
    with pytest.raises(ValueError, match=match):
        TrainingSet.from_ground_truth(tomo, good if label is None else label, feature="m",
                                      rng=0, **kwargs)


def test_from_ground_truth_spreads_positives_over_separate_objects():
    """One big object and four small ones: every object gets a tile, not just the big one."""
    label = np.zeros((8, 256, 256), bool)
    label[:, 100:110, :] = True  # a large membrane-like sheet: most labelled voxels
    for y, x in [(40, 40), (40, 200), (200, 40), (200, 200)]:
        label[3:6, y - 4:y + 4, x - 4:x + 4] = True
    tomo = tw.Tomogram(np.random.default_rng(0).normal(size=label.shape).astype(np.float32), 10.0)
    ts = TrainingSet.from_ground_truth(tomo, label, feature="f", n_positive=5, n_negative=5, rng=1)
    centres = [r.centre for r in ts if r.kind == "positive"]
    small = [c for c in centres if not 90 <= c[1] <= 120]
    assert len(small) == 4


def test_from_ground_truth_centres_half_the_negatives_on_decoys():
    label = np.zeros((8, 256, 256), bool)
    label[:, 60:70, 60:70] = True
    decoys = np.zeros_like(label)
    decoys[2:6, 150:160, 150:160] = True
    tomo = tw.Tomogram(np.random.default_rng(0).normal(size=label.shape).astype(np.float32), 10.0)
    ts = TrainingSet.from_ground_truth(tomo, label, feature="f", n_positive=1, n_negative=20, rng=2,
                                       decoys=decoys)
    on_decoy = [r for r in ts if r.kind == "negative" and decoys[tuple(r.centre)]]
    assert len(on_decoy) == 10
    assert all(not r.mask.any() for r in ts if r.kind == "negative")
    with pytest.raises(ValueError, match="decoys"):
        TrainingSet.from_ground_truth(tomo, label, feature="f", decoys=decoys[:4])


def test_from_ground_truth_shows_every_kind_of_decoy_given_one_volume_per_kind():
    """A small complex beside a large membrane: the union alone rarely reaches it, a list does."""
    label = np.zeros((8, 256, 256), bool)
    label[:, 60:70, 60:70] = True
    membrane = np.zeros_like(label)
    membrane[:, 140:150, 40:250] = True          # 200 times the complex's voxels
    complex_ = np.zeros_like(label)
    complex_[3:5, 200:204, 120:124] = True
    tomo = tw.Tomogram(np.random.default_rng(0).normal(size=label.shape).astype(np.float32), 10.0)

    def negatives(decoys):
        ts = TrainingSet.from_ground_truth(tomo, label, feature="f", n_positive=1, n_negative=40,
                                           rng=2, decoys=decoys)
        centres = [tuple(r.centre) for r in ts if r.kind == "negative"]
        return sum(membrane[c] for c in centres), sum(complex_[c] for c in centres)

    on_membrane, on_complex = negatives(membrane | complex_)
    assert on_membrane + on_complex == 20 and on_complex <= 1
    on_membrane, on_complex = negatives([membrane, complex_])
    assert on_membrane + on_complex == 20 and on_complex == 5   # a quarter of 40, shared by two
    with pytest.raises(ValueError, match="one per kind"):
        TrainingSet.from_ground_truth(tomo, label, feature="f", decoys=[membrane, complex_[:4]])


def test_competing_set_borrows_the_other_features_positives_as_negatives():
    tomo = _tomo()
    membrane = TrainingSet(T, feature="membrane")
    membrane.add_positive(tomo, 1, 10, 10, _mask())
    membrane.add_negative(tomo, 2, 20, 20)
    ribosome = TrainingSet(T, feature="ribosome")
    ribosome.add_positive(tomo, 3, 20, 30, _mask(row=2))
    ribosome.add_positive(tomo, 1, 11, 12, _mask(row=3))            # on the membrane tile: skipped
    ribosome.add_negative(tomo, 4, 20, 20)                          # its negatives are not borrowed
    competing = membrane.with_competitors([ribosome])
    assert (competing.n_positive, competing.n_negative) == (1, 2)
    assert competing.feature == "membrane" and competing.kinds[-1] == "negative"
    np.testing.assert_array_equal(competing.image(2), ribosome.image(0))
    assert not competing.mask(2).any()
    assert (membrane.n_positive, membrane.n_negative, ribosome.n_positive) == (1, 1, 2)  # unchanged
    with pytest.raises(ValueError, match="own feature"):
        membrane.with_competitors([membrane])
    with pytest.raises(ValueError, match="tile"):
        membrane.with_competitors([TrainingSet(T + 2, feature="ribosome")])

    # every feature against all the others at once, as the demo and notebook 03 train
    sets = competing_sets({"membrane": membrane, "ribosome": ribosome})
    assert list(sets) == ["membrane", "ribosome"]
    assert (sets["membrane"].n_negative, sets["ribosome"].n_negative) == (2, 1)  # overlap: skipped
    assert competing_sets({"membrane": membrane})["membrane"].n_negative == 1


def test_scale_augmentation_magnifies_copies_within_the_range():
    tomo = _tomo(shape=(2, 64, 64))
    ts = TrainingSet(32, feature="membrane")
    mask = np.zeros((32, 32), bool)
    mask[14:18, :] = True                                           # a 4-pixel-thick band
    ts.add_positive(tomo, 0, 32, 32, mask)
    ts.add_negative(tomo, 1, 32, 32)

    def band_widths(scale):
        _, masks = training_examples(ts._records, rng=0, balance=False, copies=40,
                                     augment_negatives=False, scale=scale)
        painted = masks.reshape(len(masks), -1).sum(axis=1)
        return painted[painted > 0] / 32                             # ~ width of the rotated band

    plain, zoomed = band_widths(0.0), band_widths(0.5)
    assert np.ptp(plain) < 1.5                                       # rotation alone: ~4 pixels
    assert zoomed.min() < 3.3 and zoomed.max() > 4.8                 # magnified 1/1.5 .. 1.5
    _, doubled = rotate_pair(ts.image(0), mask, 0.0, 2.0)            # about the tile centre (15.5)
    assert np.nonzero(doubled.any(axis=1))[0].tolist() == list(range(12, 20))  # 8 pixels thick
    with pytest.raises(ValueError, match="scale"):
        ts.training_arrays(scale=1.5)


def test_borrowed_negatives_are_magnified_as_their_lender_trains():
    """A membrane network borrows a double membrane's tile as a negative: with ``lent_scale`` its
    copies are magnified as the double-membrane network's own are, the membrane's tiles are not."""
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 32) ** 2 + (xx - 32) ** 2 <= 36         # radius 6 pixels: turns do not change it
    data = np.zeros((3, 64, 64), np.float32)
    data[0][disk] = 2.0                                   # the membrane's positive
    data[1][disk] = 1.0                                   # a double membrane's positive, lent
    data[2] = -1.0                                        # the membrane's own negative
    tomo = tw.Tomogram(data, 10.0)
    membrane = TrainingSet(32, feature="membrane")
    membrane.add_positive(tomo, 0, 32, 32, disk[16:48, 16:48])
    membrane.add_negative(tomo, 2, 32, 32)
    double = TrainingSet(32, feature="double_membrane")
    double.add_positive(tomo, 1, 32, 32, disk[16:48, 16:48])
    competing = membrane.with_competitors([double])
    assert [r.lender for r in competing] == [None, None, "double_membrane"]

    def areas(lent_scale):  # relative disk areas of the membrane's own copies, of the borrowed ones
        x, _ = competing.training_arrays(rng=0, balance=False, copies=40, negative_copies=40,
                                         lent_scale=lent_scale)
        top = x.max(axis=(1, 2))
        area = (x > top[:, None, None] / 2).sum(axis=(1, 2)) / disk.sum()
        return area[top > 1.5], area[(top > 0.5) & (top <= 1.5)]

    own, lent = areas(None)
    assert len(lent) == 40 and np.ptp(own) < 0.2 and np.ptp(lent) < 0.2   # turned only
    own, lent = areas({"double_membrane": 0.5, "microtubule": 0.2})
    assert np.ptp(own) < 0.2                                             # the membrane's: as before
    assert lent.min() < 0.6 and lent.max() > 1.6                         # magnified 1/1.5 .. 1.5
    with pytest.raises(ValueError, match="lent_scale"):
        competing.training_arrays(lent_scale={"double_membrane": 1.5})


def test_a_saved_competing_set_keeps_its_borrowed_tiles_borrowed(tmp_path):
    """The lender is written with the set: reloaded, the borrowed tile is still magnified as its
    lender's (same arrays as before saving), its repr says where it came from, and a file that
    claims a positive was borrowed is refused."""
    tomo = _tomo(shape=(3, 64, 64))
    mask = np.zeros((32, 32), bool)
    mask[14:18, :] = True
    membrane = TrainingSet(32, feature="membrane")
    membrane.add_positive(tomo, 0, 32, 32, mask)
    membrane.add_negative(tomo, 2, 32, 32)
    double = TrainingSet(32, feature="double_membrane")
    double.add_positive(tomo, 1, 32, 32, mask)
    competing = membrane.with_competitors([double])
    loaded = TrainingSet.load(competing.save(tmp_path / "membrane.tiles.npz"))
    assert [r.lender for r in loaded] == [None, None, "double_membrane"]
    assert "borrowed from 'double_membrane'" in repr(loaded[2]) and "borrowed" not in repr(loaded[1])
    options = {"rng": 0, "copies": 4, "negative_copies": 4, "lent_scale": {"double_membrane": 0.5}}
    np.testing.assert_array_equal(loaded.training_arrays(**options)[0],
                                  competing.training_arrays(**options)[0])
    meta = competing.metadata
    meta["tiles"][0]["lender"] = "double_membrane"              # a positive cannot be borrowed
    images, masks, slices, _ = _arrays_without_slices(competing)
    with pytest.raises(ValueError, match="names a lender, which only a negative tile borrowed"):
        unpack_tiles(images, masks, slices, meta, 32, 0)


def test_blur_augmentation_smooths_the_copies_not_the_tiles_as_annotated():
    tomo = _tomo(shape=(2, 64, 64))
    ts = TrainingSet(32, feature="membrane")
    mask = np.zeros((32, 32), bool)
    mask[14:18, :] = True
    ts.add_positive(tomo, 0, 32, 32, mask)
    ts.add_negative(tomo, 1, 32, 32)

    def roughness(blur):  # mean squared difference of neighbouring pixels, per example
        x, _ = training_examples(ts._records, rng=0, balance=False, copies=20, augment_negatives=False,
                                 negative_copies=20, blur=blur)
        return (np.diff(x, axis=-1) ** 2).mean(axis=(1, 2)), x

    plain, x_plain = roughness(0.0)
    smooth, x_smooth = roughness(2.0)
    assert np.median(smooth) < 0.5 * np.median(plain)
    for image in (ts.image(0), ts.image(1)):                           # the tiles as annotated stay
        assert any(np.array_equal(image, x) for x in x_smooth)
    np.testing.assert_array_equal(x_plain, training_examples(ts._records, rng=0, balance=False, copies=20,
                                                             augment_negatives=False, negative_copies=20)[0])
    with pytest.raises(ValueError, match="blur"):
        ts.training_arrays(blur=-1.0)


# -- 2.5D context ----------------------------------------------------------------------------------
def test_a_context_set_keeps_the_neighbouring_slices_repeating_the_end_slice():
    tomo = _tomo()
    ts = TrainingSet(T, feature="membrane", context=2)
    ts.add_positive(tomo, 1, 20, 21, _mask())
    ts.add_negative(tomo, 5, 22, 23)
    first, last = ts
    region = (slice(12, 28), slice(13, 29))
    np.testing.assert_array_equal(first.slices, tomo.data[[0, 0, 1, 2, 3], 12:28, 13:29])
    np.testing.assert_array_equal(first.slices[2], first.image)
    np.testing.assert_array_equal(last.slices, tomo.data[[3, 4, 5, 5, 5], 14:30, 15:31])
    np.testing.assert_array_equal(first.inputs, np.moveaxis(tomo.data[[0, 0, 1, 2, 3]][:, *region], 0, -1))
    assert not first.slices.flags.writeable and "±2 slices" in repr(first) and "context ±2" in repr(ts)
    assert ts.metadata["context"] == 2 and _small_set().metadata["context"] == 0


def test_context_copies_rotate_every_slice_alike_and_are_channels_last():
    tomo = _tomo()
    same = tw.Tomogram(np.repeat(tomo.data[:1], 6, axis=0), tomo.apix)   # identical slices
    ts = TrainingSet(T, feature="membrane", context=1)
    ts.add_positive(same, 3, 20, 20, _mask())
    ts.add_negative(same, 2, 24, 30)
    x, y = ts.training_arrays(rng=0, scale=0.2)
    assert x.shape == (len(y), T, T, 3) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[..., 0], x[..., 1])
    np.testing.assert_array_equal(x[..., 2], x[..., 1])
    flat = TrainingSet(T, feature="membrane")
    flat.add_positive(same, 3, 20, 20, _mask())
    flat.add_negative(same, 2, 24, 30)
    np.testing.assert_array_equal(flat.training_arrays(rng=0, scale=0.2)[0], x[..., 1])


def test_context_sets_round_trip_and_do_not_mix_with_others(tmp_path):
    ts = _small_set(context=1)
    back = TrainingSet.load(ts.save(tmp_path / "m.tiles.npz"))
    assert back.context == 1 and repr(back) == repr(ts)
    for a, b in zip(ts, back, strict=True):
        np.testing.assert_array_equal(a.slices, b.slices)
    np.testing.assert_array_equal(back.training_arrays(rng=1)[0], ts.training_arrays(rng=1)[0])
    with pytest.raises(ValueError, match="context"):
        ts.merge(_small_set())
    other = TrainingSet(T, feature="vesicle")
    other.add_positive(_tomo(seed=1), 2, 20, 20, _mask())
    with pytest.raises(ValueError, match="must share tile size, voxel size and context"):
        ts.with_competitors([other])
    with zipfile.ZipFile(tmp_path / "m.tiles.npz") as zf:
        names = zf.namelist()
    assert "slices.npy" in names
    meta = json.loads(np.load(tmp_path / "m.tiles.npz")["metadata"].tobytes())
    assert meta["version"] == 2 and meta["context"] == 1      # older versions refuse, not misread
    with pytest.raises(ValueError, match="'slices' should hold"):
        TrainingSet._from_arrays(*_arrays_without_slices(ts))


def test_with_context_recuts_the_same_tiles_from_their_tomogram():
    tomo = _tomo(path="/data/cell.mrc")
    flat = TrainingSet(T, feature="membrane")
    flat.add_positive(tomo, 1, 20, 21, _mask(row=4))
    flat.add_negative(tomo, 5, 22, 23)
    deep = flat.with_context(1, tomo)
    assert deep.context == 1 and deep.kinds == flat.kinds and (deep.centres == flat.centres).all()
    np.testing.assert_array_equal(deep[0].mask, flat[0].mask)
    np.testing.assert_array_equal(deep[1].slices, tomo.data[[4, 5, 5], 14:30, 15:31])
    assert repr(deep.with_context(0, tomo)) == repr(flat)
    other = TrainingSet(T, feature="double_membrane")
    other.add_positive(tomo, 3, 30, 30, _mask(row=6))
    lent = flat.with_competitors([other]).with_context(1, tomo)        # still known as borrowed
    assert [r.lender for r in lent] == [None, None, "double_membrane"]
    with pytest.raises(ValueError, match="come from"):
        flat.with_context(1, _tomo(path="/data/other.mrc"))
    with pytest.raises(ValueError, match="tile 0 at .* differs"):
        flat.with_context(1, _tomo(seed=5, path="/data/cell.mrc"))


def _arrays_without_slices(ts):
    return (np.stack([r.image for r in ts]), np.stack([r.mask for r in ts]), None, ts.metadata)
