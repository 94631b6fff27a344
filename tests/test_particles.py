"""Picking, seeding, STAR/CSV particle files and subvolume extraction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile
from scipy import ndimage
from scipy.spatial import cKDTree

from tomowidgets.io import Tomogram, read_tomogram, write_tomogram
from tomowidgets.particles import (
    ANGLE_COLUMNS,
    PARTICLE_COLUMNS,
    PICK_COLUMNS,
    extract_subvolumes,
    pick_particles,
    read_particles,
    regrid,
    seed_points,
    write_particles,
)
from tomowidgets.synthetic import make_cell
from tomowidgets.synthetic._phantoms import A3_PER_DA, RIBOSOME_MASS


@pytest.fixture(scope="module")
def cell():
    return make_cell(shape=(48, 160, 160), seed=1, snr=None)


def _blob(volume, centre, radius, peak):
    """Add a cone-shaped blob (peak at `centre`, 1.0 at `radius` voxels)."""
    grid = np.indices(volume.shape).astype(np.float32)
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
    np.maximum(volume, np.where(dist <= radius, peak - (peak - 1.0) * dist / radius, 0), out=volume)


def _table(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tomogram": ["TS_01"] * n, "feature": ["ribosome"] * n,
        "z": rng.integers(0, 32, n).astype(float), "y": rng.integers(0, 64, n).astype(float),
        "x": rng.integers(0, 100, n) + 0.25, "score": rng.uniform(1, 3, n),
        "rot": rng.uniform(-180, 180, n), "tilt": rng.uniform(0, 180, n), "psi": rng.uniform(-180, 180, n),
    })


# --- picking -------------------------------------------------------------------------------------


def test_picks_are_at_each_regions_maximum_with_mass_and_size():
    scores = np.zeros((20, 30, 30), np.float32)
    _blob(scores, (5, 6, 7), 3, 2.0)
    _blob(scores, (14, 20, 21), 4, 3.0)
    picks = pick_particles(scores, min_size=1, min_distance=0)
    assert list(picks.columns) == [*PARTICLE_COLUMNS, *PICK_COLUMNS]
    np.testing.assert_array_equal(picks[["z", "y", "x"]].to_numpy(), [[14, 20, 21], [5, 6, 7]])
    np.testing.assert_allclose(picks["score"], [3.0, 2.0])
    regions, _ = ndimage.label(scores >= 1.0)
    assert picks["size"].tolist() == [int((regions == regions[14, 20, 21]).sum()),
                                       int((regions == regions[5, 6, 7]).sum())]
    assert picks["mass"].iloc[1] == pytest.approx(scores[regions == regions[5, 6, 7]].sum(), rel=1e-5)
    assert (picks["feature"] == "particle").all() and (picks["tomogram"] == "tomogram").all()
    assert picks["z"].dtype == np.float64


def test_picks_with_the_same_capped_maximum_are_ranked_by_their_core(tmp_path):
    # A network's output is capped at 1, so every confident particle has the same maximum score;
    # the figure of merit must still put a whole particle above a thin fragment of one.
    scores = np.zeros((24, 24, 48), np.float32)
    scores[np.sum((np.indices(scores.shape) - 12) ** 2, axis=0) <= 25] = 1.5  # a ball, centre x 12
    scores[11:13, 8:17, 30:39] = 1.5  # a 2-voxel-thick sheet, as large as the particle across
    picks = pick_particles(scores, min_size=1, min_distance=10)
    assert len(picks) == 2 and picks["x"].iloc[0] == pytest.approx(12)
    assert picks["score"].iloc[0] == pytest.approx(1.5) and picks["score"].iloc[1] < 1.0
    with pytest.raises(TypeError, match="file name comes first"):
        write_particles(picks, tmp_path / "picks.star", apix=10.0)
    write_particles(tmp_path / "picks.star", picks, apix=10.0)
    np.testing.assert_allclose(read_particles(tmp_path / "picks.star")["score"], picks["score"], rtol=1e-5)


def test_size_filters_drop_small_and_large_regions():
    scores = np.zeros((16, 16, 40), np.float32)
    scores[2, 2, 2] = 5.0                       # 1 voxel
    scores[5:8, 5:8, 10:13] = 2.0               # 27 voxels
    scores[2:14, 2:14, 20:32] = 1.5             # 1728 voxels
    fixed = {"min_distance": 0, "min_relative_size": None}
    sizes = pick_particles(scores, min_size=1, **fixed)["size"].tolist()
    assert sorted(sizes) == [1, 27, 1728]
    assert pick_particles(scores, min_size=2, max_size=1000, **fixed)["size"].tolist() == [27]
    assert pick_particles(scores, min_size=27, max_size=27, **fixed)["size"].tolist() == [27]
    assert len(pick_particles(scores, 10.0, min_size=1)) == 0
    # relative to the median (27 voxels): 0.4 of it drops the single voxel, 0.03 keeps it
    assert sorted(pick_particles(scores, min_size=1, min_distance=0)["size"]) == [27, 1728]
    assert len(pick_particles(scores, min_size=1, min_distance=0, min_relative_size=0.03)) == 3


def _scene(sds, spacing=40):
    """Gaussian score blobs of amplitude 1.5 in a row along x, one per sd (voxels)."""
    shape = (48, 48, spacing * len(sds))
    blobs = [_gaussian(shape, (24, 24, spacing * (i + 0.5)), 1.5, sd) for i, sd in enumerate(sds)]
    return np.max(blobs, axis=0)


def test_smaller_complexes_are_dropped_relative_to_the_median_region():
    # Four particles the network was trained on and two smaller complexes it half-recognises,
    # 4x smaller in volume, once as one imaging model makes them and once twice as large across.
    picks = {}
    for scale in (1.0, 1.6):
        scores = _scene([scale * sd for sd in (5.0, 5.0, 3.15, 5.0, 3.15, 5.0)])
        picks[scale] = pick_particles(scores)
        assert len(picks[scale]) == 4 and picks[scale]["size"].min() > 2 * 1000 * scale**3
        assert len(pick_particles(scores, min_relative_size=None)) == 6
    # a fixed minimum that drops the small complexes at one scale keeps them at the other
    fixed = {"min_size": round(0.4 * picks[1.0]["size"].median()), "min_relative_size": None}
    assert len(pick_particles(_scene([5.0, 3.15]), **fixed)) == 1
    assert len(pick_particles(_scene([1.6 * sd for sd in (5.0, 3.15)]), **fixed)) == 2


def test_min_distance_keeps_the_higher_score():
    scores = np.zeros((10, 10, 30), np.float32)
    for x, peak in ((5, 2.0), (9, 3.0), (20, 1.5)):  # separate single-voxel regions
        scores[5, 5, x] = peak
    keep = pick_particles(scores, min_size=1, min_distance=5)
    assert keep["x"].tolist() == [9.0, 20.0]
    assert pick_particles(scores, min_size=1, min_distance=4)["x"].tolist() == [9.0, 5.0, 20.0]
    assert len(pick_particles(scores, min_size=1, min_distance=0)) == 3


def test_touching_particles_are_split_at_their_maxima():
    # Two balls 10 voxels apart whose blurred scores merge into one region above the threshold,
    # as ribosomes do in a crowded cytoplasm: one pick each, not one between them.
    balls = np.zeros((24, 24, 40), np.float32)
    balls[12, 12, [15, 25]] = 1.0
    scores = ndimage.gaussian_filter(balls, 3.0) / ndimage.gaussian_filter(balls, 3.0).max() * 3.0
    assert ndimage.label(scores >= 1.0)[1] == 1
    split = pick_particles(scores, min_size=1, min_distance=6)
    assert sorted(np.round(split["x"]).tolist()) == [15.0, 25.0]
    assert np.allclose(split[["z", "y"]], 12.0, atol=0.01)
    whole = pick_particles(scores, min_size=1, min_distance=6, split=False)
    assert np.round(whole["x"]).tolist() == [20.0]
    # maxima closer than min_distance stay one particle
    assert len(pick_particles(scores, min_size=1, min_distance=12)) == 1


def test_picks_outside_the_allowed_region_are_dropped_before_thinning():
    scores = np.zeros((10, 10, 30), np.float32)
    scores[5, 5, 9], scores[5, 5, 12] = 3.0, 2.0          # 3 voxels apart: thinning keeps only x=9
    assert pick_particles(scores, min_size=1, min_distance=5)["x"].tolist() == [9.0]
    cell = np.zeros(scores.shape, bool)
    cell[:, :, 11:] = True                                 # x = 9 lies outside the cell
    assert pick_particles(scores, min_size=1, min_distance=5, within=cell)["x"].tolist() == [12.0]
    on_grid = pick_particles(Tomogram(scores, 10.0), min_size=1, within=Tomogram(cell, 10.0))
    assert on_grid["x"].tolist() == [12.0]
    with pytest.raises(ValueError, match="`within` must have the score map's shape"):
        pick_particles(scores, within=cell[:5])
    with pytest.raises(ValueError, match="boolean mask"):
        pick_particles(scores, within=cell.astype(np.float32))


def test_a_flat_region_still_gives_one_pick():
    scores = np.zeros((12, 12, 12), np.float32)
    scores[3:9, 3:9, 3:9] = 1.0                     # a small binary mask
    picks = pick_particles(scores, min_size=1)
    assert len(picks) == 1 and np.allclose(picks[["z", "y", "x"]], 5.5)
    everywhere = np.full((12, 12, 12), 2.0, np.float32)  # no voxel above the map's minimum
    picks = pick_particles(everywhere, min_size=1)
    assert len(picks) == 1 and np.allclose(picks[["z", "y", "x"]], 5.5) and picks["size"][0] == 12**3


def test_picks_recover_synthetic_ribosome_centres(cell):
    # A CNN's output is a blurred annotation: smooth the exact labels and scale the inside to ~1.8.
    scores = ndimage.gaussian_filter(cell.labels["ribosome"].astype(np.float32), 3.0) * 2.0
    picks = pick_particles(Tomogram(scores, cell.apix), feature="ribosome", tomogram="cell")
    truth = cell.particles.query("feature == 'ribosome'")[["z", "y", "x"]].to_numpy()
    assert len(truth) >= 8
    tolerance = 0.5 * (3 * RIBOSOME_MASS * A3_PER_DA / (4 * np.pi)) ** (1 / 3) / cell.apix  # voxels
    found = cKDTree(picks[["z", "y", "x"]].to_numpy()).query(truth)[0] <= tolerance
    correct = cKDTree(truth).query(picks[["z", "y", "x"]].to_numpy())[0] <= tolerance
    assert found.mean() >= 0.9 and correct.mean() >= 0.9
    assert (picks["feature"] == "ribosome").all() and (picks["tomogram"] == "cell").all()


def test_tomogram_name_defaults_to_the_score_files_stem(tmp_path):
    write_tomogram(tmp_path / "TS_07_ribosome.mrc", np.full((4, 4, 4), 2.0), apix=10.0)
    scores = read_tomogram(tmp_path / "TS_07_ribosome.mrc", mmap=True)
    assert pick_particles(scores, min_size=1)["tomogram"].tolist() == ["TS_07_ribosome"]


def _gaussian(shape, centre, amplitude, sd):
    """A Gaussian score blob: a particle whose core alone reaches the threshold."""
    grid = np.indices(shape, dtype=np.float32)
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return (amplitude * np.exp(-r2 / (2 * sd**2))).astype(np.float32)


def test_a_particle_is_sized_by_its_region_grown_to_the_hysteresis():
    # A particle of 1.2 at its centre: about 200 voxels reach 1.0, about 3000 reach 0.4.
    # (At the threshold as given: its core scores below 1.5, which would lower the threshold.)
    scores = _gaussian((40, 40, 40), (20, 20, 20), 1.2, 6.0)
    grown = pick_particles(scores, core_score=None)               # 0.4 and 300 voxels by default
    assert len(grown) == 1 and 2000 < grown["size"].iloc[0] < 4000
    assert len(pick_particles(scores, hysteresis=None, core_score=None)) == 0   # core < 300 voxels
    core = pick_particles(scores, hysteresis=None, min_size=1, core_score=None)
    assert core["size"].iloc[0] < 300
    np.testing.assert_allclose(grown[["z", "y", "x"]].to_numpy(), [[20, 20, 20]], atol=1e-6)


def test_a_grown_region_must_reach_the_threshold_itself():
    faint = _gaussian((40, 40, 40), (20, 20, 20), 0.9, 6.0)           # large above 0.4, never 1.0
    assert len(pick_particles(faint)) == 0
    # A faint neighbour joined to a strong particle at 0.4 is cut off by the split and dropped,
    # not picked on the strength of the particle beside it.
    pair = np.maximum(_gaussian((40, 40, 60), (20, 20, 20), 1.5, 6.0),
                      _gaussian((40, 40, 60), (20, 20, 40), 0.8, 6.0))
    picks = pick_particles(pair)
    assert len(picks) == 1 and abs(picks["x"].iloc[0] - 20) < 1
    assert len(pick_particles(pair, threshold=0.7)) == 2


def _row(gain, peaks=(3.0, 3.0, 2.6, 2.6, 2.4, 2.4), sd=5.0):
    """Gaussian particles 30 voxels apart along x, their peaks times `gain`."""
    shape = (30, 30, 30 * len(peaks))
    return np.max([_gaussian(shape, (15, 15, 30 * i + 15), gain * p, sd) for i, p in enumerate(peaks)],
                  axis=0)


def test_the_threshold_is_lowered_where_a_network_under_calls_the_tomogram():
    # Six particles as a network scores them on a tomogram like its training one (cores about
    # 2, above 1.5 times the threshold), then on one it calls 0.4 times as strongly: peaks 1.2
    # to 0.96, so that two of them never reach 1.0.
    known = pick_particles(_row(1.0))
    assert len(known) == 6 and known.attrs["threshold"] == 1.0
    assert len(pick_particles(_row(0.4), core_score=None)) == 4
    weak = pick_particles(_row(0.4))
    assert len(weak) == 6 and 0.5 < weak.attrs["threshold"] < 0.7
    np.testing.assert_allclose(np.sort(weak["x"]), np.sort(known["x"]), atol=0.5)
    # a map whose picks' median core reaches `core_score` keeps its threshold; twice that halves it
    core = float(np.median(known["score"]))
    assert pick_particles(_row(1.0), core_score=core).attrs["threshold"] == 1.0
    assert pick_particles(_row(1.0), core_score=2 * core).attrs["threshold"] == pytest.approx(0.5)


def test_the_threshold_is_lowered_to_half_at_most():
    spikes = _row(0.4, sd=1.5)             # peaks 1.2 to 0.96 over cores of a few voxels
    picks = pick_particles(spikes, min_size=1, min_relative_size=None)
    assert picks.attrs["threshold"] == 0.5 and len(picks) == 6
    assert pick_particles(spikes, min_size=1, threshold=2.0).attrs["threshold"] == 2.0  # none reach 2
    assert pick_particles(spikes, min_size=1, core_score=0).attrs["threshold"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_size": 0}, "`min_size` must be an integer >= 1"),
        ({"min_size": 10, "max_size": 5}, "`max_size` must be an integer >= 10"),
        ({"min_distance": -1}, "`min_distance` must be a finite number >= 0"),
        ({"threshold": np.inf}, "`threshold` must be a finite number"),
        ({"feature": ""}, "`feature` must be a non-empty"),
        ({"hysteresis": 1.5}, "`hysteresis` must be a fraction of the threshold between 0 and 1"),
        ({"hysteresis": 0}, "`hysteresis` must be a fraction"),
        ({"min_relative_size": 1.5}, r"`min_relative_size` must be a fraction in \(0, 1\]"),
        ({"min_relative_size": 0}, "`min_relative_size` must be a fraction"),
        ({"min_relative_size": "half"}, "`min_relative_size` must be a finite number"),
        ({"core_score": -1.0}, "`core_score` must be a finite number >= 0"),
        ({"core_score": "high"}, "`core_score` must be a finite number"),
    ],
)
def test_bad_picking_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pick_particles(np.ones((3, 3, 3)), **kwargs)


def test_bad_score_maps_raise():
    with pytest.raises(ValueError, match="3-dimensional"):
        pick_particles(np.ones((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pick_particles(np.full((3, 3, 3), np.nan))


# --- seeding -------------------------------------------------------------------------------------


def test_seed_points_lie_on_the_annotation_at_least_spacing_apart(cell):
    membrane = cell.labels["membrane"]
    seeds = seed_points(membrane, 6.0, rng=0, feature="membrane")
    points = seeds[["z", "y", "x"]].to_numpy()
    assert list(seeds.columns) == list(PARTICLE_COLUMNS)
    assert len(seeds) > 20
    assert membrane[tuple(points.astype(int).T)].all()
    assert (seeds["score"] == 1.0).all()
    assert cKDTree(points).query(points, k=2)[0][:, 1].min() >= 6.0
    # Every annotated voxel has a seed nearby (the selection covers the annotation).
    assert cKDTree(points).query(np.argwhere(membrane))[0].max() < 1.9 * 6.0


def test_seed_points_are_deterministic_per_rng():
    mask = np.zeros((20, 40, 40), bool)
    mask[8:12, 5:35, 5:35] = True
    a = seed_points(mask, 4, rng=3)
    pd.testing.assert_frame_equal(a, seed_points(mask, 4, rng=np.random.default_rng(3)))
    assert not a.equals(seed_points(mask, 4, rng=4))
    assert seed_points(mask, 4, threshold=2.0, rng=0).empty


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"spacing": 0.5}, "`spacing` must be a finite number >= 1"),
     ({"spacing": 3, "rng": -1}, "`rng` must be an integer >= 0"),
     ({"spacing": 3, "rng": "seed"}, "`rng` must be")],
)
def test_bad_seeding_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        seed_points(np.ones((3, 3, 3)), **kwargs)


# --- STAR and CSV files --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".star", ".csv"])
def test_round_trip_keeps_voxels_angles_scores_and_names(tmp_path, suffix):
    table = _table()
    table.loc[1, "score"] = np.nan
    tomo = Tomogram(np.zeros((32, 64, 100), np.float32), 10.0, origin=(120.0, -35.5, 7.25))
    path = write_particles(tmp_path / f"p{suffix}", table, apix=tomo.apix, origin=tomo.origin,
                           shape=tomo.shape)
    back = read_particles(path)
    assert list(back.columns) == [*PARTICLE_COLUMNS, *ANGLE_COLUMNS]
    expected = table.astype({"tomogram": object, "feature": object})  # as the tables we make
    pd.testing.assert_frame_equal(back, expected, check_exact=False, atol=1e-6)
    # Reading with the same MRC header as the tomogram gives the same voxels.
    same = read_particles(path, apix=tomo.apix, origin=tomo.origin, shape=tomo.shape)
    np.testing.assert_array_equal(same[["z", "y", "x"]], table[["z", "y", "x"]])
    assert path.read_text().startswith("# tomowidgets particle table")


def test_star_file_has_relion5_centred_angstrom_coordinates(tmp_path):
    table = pd.DataFrame({"tomogram": ["TS_01"], "z": [16.0], "y": [10.0], "x": [50.0], "score": [2.0]})
    path = write_particles(tmp_path / "p.star", table, apix=10.0, origin=(100.0, 200.0, 300.0),
                           shape=(32, 64, 100))
    star = starfile.read(path)
    row = star.iloc[0]
    # RELION-5: centred = (voxel - size / 2) * apix, with 0-based voxels and x, y, z order.
    assert (row["rlnCenteredCoordinateXAngst"], row["rlnCenteredCoordinateYAngst"],
            row["rlnCenteredCoordinateZAngst"]) == (0.0, -220.0, 0.0)
    assert (row["rlnCoordinateX"], row["rlnCoordinateY"], row["rlnCoordinateZ"]) == (50.0, 10.0, 16.0)
    assert row["rlnTomoName"] == "TS_01" and row["rlnAutopickFigureOfMerit"] == 2.0
    assert "rlnAngleRot" not in star.columns  # no angles in the table, none in the file
    text = path.read_text()
    assert "0-based" in text and "(voxel - size / 2) * apix" in text


def test_csv_columns_state_units_and_use_the_mrc_origin(tmp_path):
    table = pd.DataFrame({"z": [1.0], "y": [2.0], "x": [3.0], "mass": [4.5]})
    path = write_particles(tmp_path / "p.csv", table, apix=10.0, origin=(100.0, 200.0, 300.0))
    csv = pd.read_csv(path, comment="#")
    assert list(csv.columns) == ["tomogram", "feature", "x_voxel", "y_voxel", "z_voxel", "x_angstrom",
                                 "y_angstrom", "z_angstrom", "score", "mass"]
    assert csv[["x_angstrom", "y_angstrom", "z_angstrom"]].iloc[0].tolist() == [330.0, 220.0, 110.0]
    assert read_particles(path)["mass"].tolist() == [4.5]


def test_reading_onto_a_binned_tomogram_converts_through_angstroms(tmp_path):
    table = pd.DataFrame({"z": [16.0], "y": [10.0], "x": [50.0]})
    star = write_particles(tmp_path / "p.star", table, apix=10.0, shape=(32, 64, 100))
    binned = read_particles(star, apix=20.0, shape=(16, 32, 50))
    assert binned[["z", "y", "x"]].iloc[0].tolist() == [8.0, 5.0, 25.0]
    csv = write_particles(tmp_path / "p.csv", table, apix=10.0, origin=(0.0, 0.0, 40.0))
    moved = read_particles(csv, apix=10.0, origin=(0.0, 0.0, 0.0))
    assert moved[["z", "y", "x"]].iloc[0].tolist() == [16.0, 10.0, 54.0]


def test_reads_a_relion5_file_with_centred_coordinates_and_shifts(tmp_path):
    star = pd.DataFrame({"rlnTomoName": ["TS_01", "TS_01"],
                         "rlnCenteredCoordinateXAngst": [0.0, 100.0],
                         "rlnCenteredCoordinateYAngst": [-220.0, 0.0],
                         "rlnCenteredCoordinateZAngst": [0.0, 0.0],
                         "rlnOriginXAngst": [0.0, 20.0], "rlnOriginYAngst": [0.0, 0.0],
                         "rlnOriginZAngst": [0.0, 0.0],
                         "rlnAngleRot": [1.0, 2.0], "rlnAngleTilt": [3.0, 4.0], "rlnAnglePsi": [5.0, 6.0]})
    path = tmp_path / "run_data.star"
    starfile.write({"optics": pd.DataFrame({"rlnOpticsGroup": [1]}), "particles": star}, path)
    with pytest.raises(ValueError, match="needs `apix`"):
        read_particles(path)
    back = read_particles(path, apix=10.0, shape=(32, 64, 100))
    assert back[["z", "y", "x"]].to_numpy().tolist() == [[16.0, 10.0, 50.0], [16.0, 32.0, 58.0]]
    assert back["rot"].tolist() == [1.0, 2.0] and back["feature"].tolist() == ["particle"] * 2


def test_reads_the_pixel_shifts_of_a_relion3_file(tmp_path):
    """RELION 3.0 wrote rlnOriginX/Y/Z in pixels; the refined position is coordinate - origin."""
    star = pd.DataFrame({"rlnMicrographName": ["TS_01"] * 2, "rlnCoordinateX": [50.0, 60.0],
                         "rlnCoordinateY": [10.0, 20.0], "rlnCoordinateZ": [16.0, 16.0],
                         "rlnOriginX": [0.0, 2.0], "rlnOriginY": [0.0, -1.5], "rlnOriginZ": [0.0, 1.0]})
    path = tmp_path / "relion3.star"
    starfile.write({"particles": star}, path)
    back = read_particles(path)
    assert back[["z", "y", "x"]].to_numpy().tolist() == [[16.0, 10.0, 50.0], [15.0, 21.5, 58.0]]
    assert back["tomogram"].tolist() == ["TS_01"] * 2


@pytest.mark.parametrize(("text", "name", "match"), [
    ("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n1 2 abc\n", "p.star",
     r"'.*p.star' cannot be read as a particle table: could not convert string to float: 'abc'"),
    ("z_voxel,y_voxel,x_voxel\n1,2,three\n", "p.csv", r"'.*p.csv' cannot be read"),
    ("", "p.csv", r"'.*p.csv' is empty"),
])
def test_unreadable_particle_files_are_named_in_the_error(tmp_path, text, name, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=match):
        read_particles(tmp_path / name)


def test_synthetic_ground_truth_table_can_be_written(tmp_path, cell):
    path = write_particles(tmp_path / "truth.star", cell.particles, apix=cell.apix, shape=cell.shape)
    back = read_particles(path)
    np.testing.assert_allclose(back[["z", "y", "x", *ANGLE_COLUMNS]],
                               cell.particles[["z", "y", "x", *ANGLE_COLUMNS]], atol=1e-6)
    assert back["feature"].tolist() == cell.particles["feature"].tolist()


@pytest.mark.parametrize(
    ("call", "match", "error"),
    [
        (lambda p: write_particles(p / "p.txt", _table(), apix=10.0), r"\.star \(RELION-5\) or \.csv",
         ValueError),
        (lambda p: write_particles(p / "p.star", _table().drop(columns="x"), apix=10.0),
         r"no column\(s\) \['x'\]", ValueError),
        (lambda p: write_particles(p / "p.star", _table().assign(z=np.nan), apix=10.0), "NaN", ValueError),
        (lambda p: write_particles(p / "p.star", _table(), apix=0.0), "`apix` must be a positive",
         ValueError),
        (lambda p: write_particles(p / "p.star", _table(), apix=1.0, shape=(2, 3)), "`shape` must be 3",
         ValueError),
        (lambda p: write_particles(p / "p.star", _table().to_numpy(), apix=1.0), "pandas DataFrame",
         ValueError),
        (lambda p: read_particles(p / "missing.star"), "No particle file", FileNotFoundError),
    ],
)
def test_bad_particle_files_raise(tmp_path, call, match, error):
    with pytest.raises(error, match=match):
        call(tmp_path)


# --- extraction ----------------------------------------------------------------------------------


def _volume(shape=(20, 24, 28)):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("box", [6, 7])
def test_extracted_cube_is_the_slice_centred_at_box_half(box):
    vol = _volume()
    table = pd.DataFrame({"z": [10.0, 5.4], "y": [12.0, 6.0], "x": [9.0, 20.6]})
    cubes = extract_subvolumes(Tomogram(vol, 10.0), table, box)
    assert cubes.shape == (2, box, box, box) and cubes.dtype == np.float32
    h = box // 2
    np.testing.assert_array_equal(cubes[0], vol[10 - h:10 - h + box, 12 - h:12 - h + box, 9 - h:9 - h + box])
    np.testing.assert_array_equal(cubes[1], vol[5 - h:5 - h + box, 6 - h:6 - h + box, 21 - h:21 - h + box])
    assert cubes[0][h, h, h] == vol[10, 12, 9]


def test_particles_near_the_edge_are_padded_or_skipped_with_a_count():
    vol = _volume()
    table = pd.DataFrame({"z": [10.0, 1.0, 18.0, 10.0, 50.0], "y": [12.0, 12.0, 12.0, 3.0, 5.0],
                          "x": [14.0, 14.0, 14.0, 14.0, 5.0]}, index=[10, 11, 12, 13, 14])
    with pytest.warns(RuntimeWarning, match="skipped 4 of 5 particles: 3 whose 8-voxel box crosses"):
        cubes, kept = extract_subvolumes(vol, table, 8, pad=False, return_table=True)
    assert cubes.shape == (1, 8, 8, 8) and kept.index.tolist() == [10]
    with pytest.warns(RuntimeWarning, match="1 whose centre lies outside"):
        cubes, kept = extract_subvolumes(vol, table, 8, return_table=True)  # padded by default
    assert kept.index.tolist() == [10, 11, 12, 13]


def test_padding_fills_with_the_mean_or_a_value():
    vol = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    (cube,) = extract_subvolumes(vol, np.array([[0, 3, 3]]), 4, pad=True, fill=-1.0)
    np.testing.assert_array_equal(cube[:2], -1.0)
    np.testing.assert_array_equal(cube[2:], vol[0:2, 1:5, 1:5])
    (cube,) = extract_subvolumes(vol, np.array([[0, 3, 3]]), 4, pad=True)
    np.testing.assert_allclose(cube[:2], vol[0:2, 1:5, 1:5].mean())


def test_extraction_reads_memory_mapped_tomograms_and_normalizes(tmp_path):
    vol = _volume() * 3 + 5
    write_tomogram(tmp_path / "t.mrc", vol, apix=10.0)
    tomo = read_tomogram(tmp_path / "t.mrc", mmap=True)
    positions = np.array([[10, 12, 14], [8, 8, 8]])
    in_memory = extract_subvolumes(vol, positions, 8)
    np.testing.assert_array_equal(extract_subvolumes(tomo, positions, 8), in_memory)
    normed = extract_subvolumes(tomo, positions, 8, normalize=True)
    np.testing.assert_allclose(normed.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=(1, 2, 3)), 1, atol=1e-4)


def test_cubes_at_synthetic_particles_hold_their_density(cell):
    truth = cell.particles.query("feature == 'ribosome'")
    cubes, kept = extract_subvolumes(cell.density, truth, 24, return_table=True)
    assert len(kept) == len(truth)  # those near the edges padded
    # The centre of a ribosome is dense; the cube's corners are mostly ice.
    assert cubes[:, 10:14, 10:14, 10:14].mean() > 5 * cubes[:, :3, :3, :3].mean()


@pytest.mark.parametrize(
    ("particles", "kwargs", "match"),
    [
        (np.zeros((2, 2)), {}, r"shape \(n, 3\)"),
        (pd.DataFrame({"z": [1.0], "y": [1.0]}), {}, r"no column\(s\) \['x'\]"),
        (pd.DataFrame({"z": [1.0, 2], "y": [1.0, 2], "x": [1.0, 2], "tomogram": ["a", "b"]}), {},
         "2 tomograms"),
        (np.array([[1.0, np.nan, 1.0]]), {}, "NaN"),
        (np.zeros((1, 3)), {"box": 0}, "`box` must be an integer >= 1"),
        (np.zeros((1, 3)), {"pad": True, "fill": "median"}, '"mean" or a number'),
    ],
)
def test_bad_extraction_inputs_raise(particles, kwargs, match):
    kwargs = {"box": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        extract_subvolumes(_volume(), particles, **kwargs)


def test_picks_sit_at_the_score_weighted_centroid_by_default_or_at_the_maximum():
    scores = np.zeros((12, 12, 12), np.float32)
    scores[4:7, 4:7, 4:9] = 1.5  # a 3×3×5 region, flat...
    scores[5, 5, 8] = 4.0  # ...with its maximum at one end
    centroid = pick_particles(scores, min_size=1)
    maximum = pick_particles(scores, min_size=1, position="maximum")
    values = np.where(scores > 0, scores, 0).astype(np.float64)
    expected_x = (values.sum(axis=(0, 1)) * np.arange(12)).sum() / values.sum()
    assert centroid[["z", "y"]].to_numpy().tolist() == [[5.0, 5.0]]
    assert centroid["x"].iloc[0] == pytest.approx(expected_x)
    assert maximum[["z", "y", "x"]].to_numpy().tolist() == [[5.0, 5.0, 8.0]]
    assert maximum["score"].iloc[0] > centroid["score"].iloc[0]  # its core holds the 4.0
    with pytest.raises(ValueError, match="position"):
        pick_particles(scores, position="peak")


def test_picks_made_on_a_binned_tomogram_regrid_onto_the_fine_one(small_cell):
    """Annotate coarse, extract fine: ribosomes picked on the 2x-binned (20 Å) labels land on the
    true 10 Å centres once moved through Å, half a voxel closer than doubling the coordinates."""
    import tomowidgets as tw

    fine = small_cell.tomogram
    coarse_labels = tw.bin(fine.with_data(small_cell.labels["ribosome"].astype(np.float32)), 2,
                           method="mean", progress=False)
    picks = pick_particles(coarse_labels.with_data(2.0 * coarse_labels.data), min_size=4)
    moved = regrid(picks, coarse_labels, fine)
    truth = small_cell.particles.query("feature == 'ribosome'")[["z", "y", "x"]].to_numpy()
    distance, _ = cKDTree(truth).query(moved[["z", "y", "x"]].to_numpy())
    doubled, _ = cKDTree(truth).query(2 * picks[["z", "y", "x"]].to_numpy())
    assert len(picks) >= 5 and np.median(distance) < 1.0 and np.median(distance) < np.median(doubled)
    assert list(moved.columns) == list(picks.columns) and moved["score"].equals(picks["score"])
    with pytest.raises(ValueError, match="do not cover the same volume"):
        regrid(picks, coarse_labels, Tomogram(np.zeros((40, 128, 128), np.float32), 20.0))


def test_picking_defaults_follow_the_voxel_size_of_the_score_map():
    """300 voxels and 10 voxels apart at 10 Å are 3·10⁵ Å³ and 100 Å: 38 voxels and 5 apart at 20 Å."""
    scores = np.zeros((30, 30, 30), np.float32)
    scores[5:10, 5:10, 5:7] = 2.0                      # 50 voxels: a particle at 20 Å, a speck at 10 Å
    scores[5:10, 5:10, 16:18] = 1.5                    # 11 voxels from the first: two picks at 20 Å
    assert len(pick_particles(Tomogram(scores, 20.0))) == 2
    assert len(pick_particles(Tomogram(scores, 10.0))) == 0
    assert len(pick_particles(scores)) == 0            # a bare array is taken to be at 10 Å
    assert len(pick_particles(Tomogram(scores, 20.0), min_size=51)) == 0
