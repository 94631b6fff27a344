"""Tests for tomowidgets.average: FSC, the orientation convention, 3D averaging, 2D classification."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.fft
from scipy import ndimage
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from tomowidgets.average import (
    AverageResult,
    Classification2D,
    align_map,
    average,
    classify_2d,
    compare_to_reference,
    envelope_mask,
    fsc,
    halves_by_position,
    resolution,
    rotate_volume,
)
from tomowidgets.synthetic import (
    image_volume,
    make_cell,
    proteasome_template,
    ribosome_template,
    spliceosome_template,
    zyz_matrix,
)

BOX = 32


def _padded(template: np.ndarray, box: int) -> np.ndarray:
    """`template` centred (voxel n // 2 on box // 2) in a cube of `box`, cropped or zero-padded."""
    n = template.shape[0]
    big = np.zeros((max(n, box),) * 3, np.float32)
    o = big.shape[0] // 2 - n // 2
    big[o:o + n, o:o + n, o:o + n] = template
    o = big.shape[0] // 2 - box // 2
    return big[o:o + box, o:o + box, o:o + box].copy()


def _soft_mask(box: int, radius: float) -> np.ndarray:
    r = np.sqrt(((np.indices((box,) * 3) - box // 2) ** 2).sum(axis=0))
    return (0.5 + 0.5 * np.cos(np.pi * np.clip((r - radius) / 3.0, 0, 1))).astype(np.float32)


def _angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between rotations given as RELION (rot, tilt, psi) rows."""
    ra = Rotation.from_euler("ZYZ", a, degrees=True)
    rb = Rotation.from_euler("ZYZ", b, degrees=True)
    return np.rad2deg((ra.inv() * rb).magnitude())


@pytest.fixture(scope="module")
def clean_ribosomes():
    """Boxes of 32³ around the true centres of ribosomes in a noise-free, CTF-free cell (10 Å)."""
    cell = make_cell((64, 256, 256), 10.0, 3, snr=None, ctf=False)
    data, h = cell.tomogram.data, BOX // 2
    rows = cell.particles[cell.particles["feature"] == "ribosome"]
    inside = [(r.z >= h) & (r.z + h <= data.shape[0]) & (r.y >= h) & (r.y + h <= data.shape[1])
              & (r.x >= h) & (r.x + h <= data.shape[2]) for r in rows.itertuples()]
    table = rows[np.array(inside)].reset_index(drop=True)
    boxes = np.stack([data[int(r.z) - h:int(r.z) + h, int(r.y) - h:int(r.y) + h,
                           int(r.x) - h:int(r.x) + h] for r in table.itertuples()])
    assert len(table) >= 6
    return boxes, table


@pytest.fixture(scope="module")
def noisy_copies():
    """30 randomly rotated, shifted copies of the ribosome (20 Å/voxel, box 24), wedge and noise."""
    apix, box = 20.0, 24
    truth = -_padded(ribosome_template(apix), box)  # tomogram contrast: dense is dark
    rng = np.random.default_rng(0)
    angles = Rotation.random(30, random_state=rng).as_euler("ZYZ", degrees=True)
    parts = np.stack([
        image_volume(-rotate_volume(truth, *a, shift=rng.uniform(-1.5, 1.5, 3), inverse=True), apix,
                     ctf=False, snr=0.5, rng=rng) for a in angles])
    return parts, truth, apix


# ---------------------------------------------------------------------------------------------
# FSC and resolution
# ---------------------------------------------------------------------------------------------

def test_fsc_of_identical_maps_is_one_and_freqs_reach_nyquist():
    a = np.random.default_rng(0).standard_normal((24, 24, 24)).astype(np.float32)
    freqs, curve = fsc(a, a, 5.0)
    assert freqs.shape == curve.shape == (13,)
    assert freqs[0] == 0 and freqs[-1] == pytest.approx(1 / 10.0)
    np.testing.assert_allclose(curve[1:], 1.0, atol=1e-6)
    assert resolution(freqs, curve) == pytest.approx(10.0)  # never drops: Nyquist


def test_fsc_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 32, 32, 32)).astype(np.float32)
    _, curve = fsc(a, b, 1.0)
    assert abs(curve[4:].mean()) < 0.05
    assert np.abs(curve[4:]).max() < 0.2
    assert resolution(*fsc(a, b, 1.0)) > 8.0  # nothing resolved beyond a few shells


def test_resolution_of_a_lowpassed_copy_is_near_its_cutoff():
    a = np.random.default_rng(2).standard_normal((32, 32, 32)).astype(np.float32)
    k = np.sqrt(sum(f**2 for f in np.meshgrid(*[np.fft.fftfreq(32)] * 2, np.fft.rfftfreq(32),
                                              indexing="ij")))
    low = scipy.fft.irfftn(scipy.fft.rfftn(a) * (k < 8 / 32), s=a.shape).astype(np.float32)
    freqs, curve = fsc(a, low, 10.0)  # cut-off at radius 8 = 1 / 40 Å: between shells 8 and 9
    assert 320 / 9 <= resolution(freqs, curve) <= 40.0
    masked = fsc(a, low, 10.0, mask=_soft_mask(32, 12))
    assert 32.0 <= resolution(*masked) <= 45.0  # the soft mask blurs the edge a little


def test_resolution_interpolates_and_handles_nan_and_inf():
    freqs = np.array([0.0, 0.01, 0.02, 0.03])
    assert resolution(freqs, np.array([1.0, 0.9, 0.5, 0.0]), 0.5) == pytest.approx(50.0)
    assert resolution(freqs, np.array([1.0, 0.9, 0.3, 0.0]), 0.5) == pytest.approx(1 / 0.0166667, rel=1e-4)
    assert resolution(freqs, np.array([np.nan, 0.1, 0.9, 0.9])) == np.inf  # shell 1 already below
    assert resolution(freqs, np.array([np.nan, 0.9, np.nan, 0.9])) == pytest.approx(100.0)  # NaN: below
    assert resolution(freqs, np.array([1.0, 0.9, 0.9, 0.9])) == pytest.approx(1 / 0.03)  # Nyquist


# ---------------------------------------------------------------------------------------------
# Orientation convention
# ---------------------------------------------------------------------------------------------

def test_rotate_volume_by_rot_90_turns_x_into_y_and_inverse_undoes_it():
    vol = np.zeros((16, 16, 16), np.float32)
    vol[8, 8, 11] = 1.0  # offset x = +3
    out = rotate_volume(vol, 90.0, 0.0, 0.0)
    assert np.unravel_index(out.argmax(), out.shape) == (8, 11, 8)  # now at y = +3
    smooth = np.asarray(ribosome_template(20.0))
    shift = (1.0, -0.5, 2.0)
    there = rotate_volume(smooth, 30.0, 50.0, -70.0, shift=shift, inverse=True)
    back = rotate_volume(there, 30.0, 50.0, -70.0, shift=shift)
    inner = _soft_mask(smooth.shape[0], 5) > 0.5
    assert np.corrcoef(back[inner], smooth[inner])[0, 1] > 0.97


def test_particles_rotated_back_with_true_angles_match_the_template(clean_ribosomes):
    boxes, table = clean_ribosomes
    back = [rotate_volume(b, r.rot, r.tilt, r.psi) for b, r in zip(boxes, table.itertuples(), strict=True)]
    truth = -_padded(ribosome_template(10.0), BOX)  # tomogram contrast: dense is dark
    freqs, curve = fsc(np.mean(back, axis=0), truth, 10.0, mask=_soft_mask(BOX, 13))
    assert resolution(freqs, curve, 0.5) <= 40.0
    # a wrong convention (the inverse rotation) does not line the particles up
    wrong = [rotate_volume(b, r.rot, r.tilt, r.psi, inverse=True)
             for b, r in zip(boxes, table.itertuples(), strict=True)]
    assert resolution(*fsc(np.mean(wrong, axis=0), truth, 10.0, mask=_soft_mask(BOX, 13)), 0.5) > 60


def test_average_against_the_template_recovers_the_table_orientations(clean_ribosomes):
    boxes, table = clean_ribosomes
    truth = -_padded(ribosome_template(10.0), BOX)
    result = average(boxes, apix=10.0, iterations=2, reference=truth, particles=table,
                     progress=False, rng=0)
    errors = _angle_between(table[["rot", "tilt", "psi"]].to_numpy(),
                            result.orientations[["rot", "tilt", "psi"]].to_numpy())
    assert np.median(errors) < 8.0 and errors.max() < 15.0
    shifts = result.orientations[["shift_z", "shift_y", "shift_x"]].to_numpy()
    assert np.abs(shifts).max() < 1.0  # boxes were cut on the true centres
    # the returned table carries the new angles and refined centres; the input is untouched
    np.testing.assert_allclose(result.particles["rot"], result.orientations["rot"])
    np.testing.assert_allclose(result.particles["z"], table["z"] + shifts[:, 0])
    assert not np.allclose(table["rot"], result.particles["rot"])
    # each particle rotated by its angles and shift lines up with the map
    r = result.orientations.iloc[0]
    aligned = rotate_volume(boxes[0], r.rot, r.tilt, r.psi, shift=(r.shift_z, r.shift_y, r.shift_x))
    assert np.corrcoef(aligned.ravel(), result.map.ravel())[0, 1] > 0.6


# ---------------------------------------------------------------------------------------------
# Reference-free averaging
# ---------------------------------------------------------------------------------------------

def test_reference_free_average_converges_to_the_object(noisy_copies):
    parts, truth, apix = noisy_copies
    result = average(parts, apix=apix, iterations=4, progress=False, rng=0)
    assert isinstance(result, AverageResult)
    assert result.map.shape == (24, 24, 24) and result.map.dtype == np.float32
    assert result.half_maps.shape == (2, 24, 24, 24)
    assert result.resolution < 80.0  # half maps agree well beyond the box scale (Nyquist 40 Å)
    aligned = align_map(result.map, truth)  # the map's frame is arbitrary: align it first
    assert aligned.score > 0.8
    freqs, curve = fsc(aligned.volume, truth, apix)
    assert resolution(freqs, curve, 0.5) < 90.0
    assert list(result.orientations.columns) == ["rot", "tilt", "psi", "shift_z", "shift_y",
                                                 "shift_x", "score", "half"]
    assert sorted(set(result.orientations["half"])) == [1, 2]
    assert "resolution" in repr(result) and "Å" in repr(result)
    for array in (result.map, result.half_maps, *result.fsc):
        assert not array.flags.writeable


def test_outliers_are_the_particles_that_match_the_average_far_worse_than_most():
    # 30 ribosomes and 4 ribosome-sized other complexes, imaged alike (10 Å, CTF, SNR 0.5)
    apix, box = 10.0, 32
    ribosome = -_padded(ribosome_template(apix), box)
    other = -_padded(spliceosome_template(apix), box)
    rng = np.random.default_rng(0)
    angles = Rotation.random(34, random_state=rng).as_euler("ZYZ", degrees=True)
    parts = np.stack([image_volume(-rotate_volume(ribosome if i < 30 else other, *a, inverse=True,
                                                  shift=rng.uniform(-1.5, 1.5, 3)),
                                   apix, snr=0.5, rng=rng) for i, a in enumerate(angles)])
    result = average(parts, apix=apix, iterations=4, progress=False, rng=0)
    flagged = result.outliers()
    assert flagged.shape == (34,) and flagged.dtype == bool
    assert flagged[30:].all() and not flagged[:30].any()
    assert not result.outliers(sds=100.0).any()
    with pytest.raises(ValueError, match="sds"):
        result.outliers(sds=0)


@pytest.fixture(scope="module")
def filament_copies():
    """40 copies of an asymmetric helical filament piece along z (20 Å/voxel, box 24), randomly
    oriented and shifted, wedge and noise, with priors 5° (sd) off their true axes."""
    apix, box = 20.0, 24
    g = np.indices((box,) * 3).astype(np.float32) - box // 2
    helix = np.zeros((box,) * 3, np.float32)
    for k in range(-8, 9, 2):                       # blobs on a helix along z, and a side knob
        centre = (k, 3 * np.sin(np.radians(40 * k)), 3 * np.cos(np.radians(40 * k)))
        helix += np.exp(-sum((g[i] - centre[i]) ** 2 for i in range(3)) / 3.0)
    helix += 0.8 * np.exp(-((g[0] - 4) ** 2 + g[1] ** 2 + (g[2] + 5) ** 2) / 4.0)
    rng = np.random.default_rng(0)
    angles = Rotation.random(40, random_state=rng).as_euler("ZYZ", degrees=True)
    parts = np.stack([image_volume(rotate_volume(helix, *a, shift=rng.uniform(-1, 1, 3), inverse=True),
                                   apix, ctf=False, snr=0.5, rng=rng) for a in angles])
    off = rng.normal(0.0, 5.0, (40, 2))
    table = pd.DataFrame({"z": np.zeros(40), "y": 0.0, "x": 0.0, "tilt_prior": angles[:, 1] + off[:, 0],
                          "psi_prior": angles[:, 2] + off[:, 1]})
    return parts, -helix, apix, table            # imaged protein is dark


def test_priors_put_the_maps_z_axis_on_the_filament_and_keep_each_axis_near_its_prior(filament_copies):
    from tomowidgets.particles import angle_directions

    parts, truth, apix, table = filament_copies
    result = average(parts, apix=apix, iterations=4, progress=False, rng=0, particles=table,
                     prior_range=15.0)
    aligned = align_map(result.map, truth)
    assert aligned.score > 0.9
    assert aligned.angles[1] < 8.0                   # only a spin about z separates map and truth
    priors = angle_directions(table["tilt_prior"], table["psi_prior"])
    found = angle_directions(result.particles["tilt"], result.particles["psi"])
    off = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", priors, found), -1, 1)))
    assert np.all(off < 15.0 + 10.0) and np.median(off) < 8.0   # the cone, plus free local steps
    with pytest.raises(ValueError, match="needs `particles` with tilt_prior and psi_prior"):
        average(parts, apix=apix, iterations=1, progress=False, prior_range=15.0)
    with pytest.raises(ValueError, match="`prior_range` must be between 0 and 90"):
        average(parts, apix=apix, iterations=1, progress=False, particles=table, prior_range=120)


def test_pure_noise_is_not_resolved():
    rng = np.random.default_rng(3)
    noise = np.stack([image_volume(rng.standard_normal((24, 24, 24)).astype(np.float32), 20.0,
                                   ctf=False, snr=None) for _ in range(24)])
    result = average(noise, apix=20.0, iterations=2, progress=False, rng=0)
    assert result.resolution >= 80.0
    assert np.nanmax(np.abs(result.fsc[1][6:])) < 0.35


def test_symmetry_c4_makes_the_map_fourfold_about_z():
    rng = np.random.default_rng(4)
    parts = rng.standard_normal((8, 16, 16, 16)).astype(np.float64)  # any dtype is accepted
    result = average(parts, iterations=1, angular_step=45.0, symmetry="C4", wedge=False,
                     progress=False, rng=0)
    assert result.symmetry == "c4" and result.apix is None and "voxels" in repr(result)
    turned = rotate_volume(result.map, 90.0, 0.0, 0.0)
    inner = _soft_mask(16, 5) > 0.5
    assert np.corrcoef(turned[inner], result.map[inner])[0, 1] > 0.99
    plain = average(parts, iterations=1, angular_step=45.0, wedge=False, progress=False, rng=0)
    assert np.corrcoef(rotate_volume(plain.map, 90.0, 0.0, 0.0)[inner], plain.map[inner])[0, 1] < 0.9


# ---------------------------------------------------------------------------------------------
# 2D classification
# ---------------------------------------------------------------------------------------------

def test_classify_2d_separates_two_shapes_rotated_in_plane():
    apix, box = 20.0, 24
    ribosome = _padded(ribosome_template(apix), box)
    barrel = rotate_volume(_padded(proteasome_template(apix), box), 0.0, 90.0, 0.0)  # side view
    rng = np.random.default_rng(0)
    kinds = np.arange(40) % 2
    rots = rng.uniform(0.0, 360.0, 40)
    parts = np.stack([
        image_volume(rotate_volume((ribosome, barrel)[k], rot, 0.0, 0.0, shift=rng.uniform(-1, 1, 3),
                                   inverse=True), apix, ctf=False, snr=0.1, rng=rng)
        for k, rot in zip(kinds, rots, strict=True)]).astype(np.float64)  # any dtype is accepted
    result = classify_2d(parts, 2, rng=0)
    assert isinstance(result, Classification2D)
    assert result.averages.shape == (2, box, box) and result.averages.dtype == np.float32
    purity = max(np.mean(result.assignments == kinds), np.mean(result.assignments != kinds))
    assert purity >= 0.9
    assert result.counts.sum() == 40 and result.counts[0] >= result.counts[1]
    assert result.keep([0]).sum() == result.counts[0]
    # within a class, the in-plane angle is the true rotation plus one constant
    for j in range(2):
        members = result.assignments == j
        kind = np.bincount(kinds[members]).argmax()
        members &= kinds == kind
        d = np.deg2rad(result.angles[members] - rots[members])
        spread = np.abs(np.angle(np.exp(1j * (d - np.angle(np.exp(1j * d).mean())))))
        assert np.median(np.rad2deg(spread)) < 15.0
    assert "2 classes" in repr(result)
    assert not result.averages.flags.writeable


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

GOOD = np.random.default_rng(5).standard_normal((6, 12, 12, 12)).astype(np.float32)
NAN = GOOD.copy()
NAN[2, 3, 3, 3] = np.nan
FLAT = GOOD.copy()
FLAT[1] = 0.0


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(subvolumes=GOOD[0]), "4-dimensional"),
    (dict(subvolumes=GOOD[:, :, :, :10]), "cubic boxes"),
    (dict(subvolumes=GOOD[:3]), "at least 4 particles for two independent half sets"),
    (dict(subvolumes=NAN), "NaN"),
    (dict(subvolumes=FLAT), "item 1 is constant"),
    (dict(symmetry="d2"), "symmetry"),
    (dict(angular_step=0), "angular_step"),
    (dict(angular_step=1.0), "angular_step"),
    (dict(reference=np.zeros((10, 10, 10))), "reference"),
    (dict(particles=pd.DataFrame({"z": [1, 2]})), "one row per subvolume"),
    (dict(apix=-1.0), "apix"),
    (dict(iterations=0), "iterations"),
    (dict(tilt_range=120.0), "tilt_range"),
    (dict(mask_radius=30.0), "mask_radius"),
])
def test_average_rejects_bad_input(kwargs, match):
    args = dict(subvolumes=GOOD, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        average(args.pop("subvolumes"), **args)


def test_other_functions_reject_bad_input():
    with pytest.raises(ValueError, match="`b` must have shape"):
        fsc(GOOD[0], GOOD[0, :8, :8, :8], 1.0)
    with pytest.raises(ValueError, match="cubic 3D map"):
        fsc(GOOD[0, :, :, :8], GOOD[0, :, :, :8], 1.0)
    with pytest.raises(ValueError, match="apix"):
        fsc(GOOD[0], GOOD[1], 0.0)
    with pytest.raises(ValueError, match="same length"):
        resolution([0.0, 0.1], [1.0])
    with pytest.raises(ValueError, match="n_classes"):
        classify_2d(GOOD, 7)
    with pytest.raises(ValueError, match="shift"):
        rotate_volume(GOOD[0], 0.0, 0.0, 0.0, shift=(1.0, 2.0))
    with pytest.raises(ValueError, match="reference"):
        align_map(GOOD[0], GOOD[0, :8, :8, :8])


def test_zyz_convention_is_the_synthetic_one():
    """rotate_volume(inverse=True) makes particles exactly as synthetic.py places them."""
    t = ribosome_template(20.0)
    r = zyz_matrix(30.0, 50.0, -70.0)
    offset = np.array([3.0, -2.0, 1.0])  # (x, y, z) offset from the centre, in voxels
    c = np.array(t.shape) // 2
    made = rotate_volume(t, 30.0, 50.0, -70.0, inverse=True)
    src = r @ offset  # particle(r) = template(R r)
    expected = map_coordinates(t, (c + src[::-1])[:, None], order=1)[0]
    assert made[tuple((c + offset[::-1]).astype(int))] == pytest.approx(expected, abs=1e-5)


def test_compare_to_reference_finds_inverted_contrast_and_the_mirror_hand():
    """A dark, mirrored, rotated and noisy copy of the 4V5D ribosome: the comparison says both, and
    its FSC against the reference is high; the other three combinations correlate worse."""
    reference = ribosome_template(20.0)
    rng = np.random.default_rng(0)
    noise = 0.3 * reference.std() * rng.standard_normal(reference.shape).astype(np.float32)
    volume = -rotate_volume(reference, 30.0, 60.0, -20.0)[::-1] + noise
    result = compare_to_reference(volume, reference, 20.0, angular_step=20.0)
    assert (result.inverted, result.mirrored) == (True, True)
    assert result.scores[(True, True)] > 0.9 > max(v for k, v in result.scores.items() if k != (True, True))
    assert result.resolution < 80.0 and result.fsc[1][1] > 0.9
    fixed = compare_to_reference(volume, reference, 20.0, contrast="inverted", hand="same",
                                 angular_step=20.0)
    assert list(fixed.scores) == [(True, False)] and not fixed.mirrored
    with pytest.raises(ValueError, match="`hand`"):
        compare_to_reference(volume, reference, 20.0, hand="left")


def test_reference_fsc_is_taken_inside_the_envelope_so_neighbours_do_not_count():
    """An average from a crowded cell: the 4V5D ribosome plus strong, unrelated density in the box
    corners (its neighbours). Inside the reference's envelope the FSC is that of the ribosome; over
    the whole box the neighbours drag it down."""
    reference = np.pad(ribosome_template(20.0), 4)
    n = reference.shape[0]
    rng = np.random.default_rng(1)
    neighbours = ndimage.gaussian_filter(rng.standard_normal(reference.shape).astype(np.float32), 1.5)
    far = np.linalg.norm(np.indices(reference.shape) - n // 2, axis=0) > 0.45 * n
    crowded = reference + 3 * reference.std() / neighbours.std() * neighbours * far
    masked = compare_to_reference(crowded, reference, 20.0, contrast="same", hand="same")
    whole = compare_to_reference(crowded, reference, 20.0, contrast="same", hand="same", mask=None)
    assert masked.resolution <= 45.0 < whole.resolution
    mask = envelope_mask(reference, 20.0)
    assert mask.max() == pytest.approx(1.0) and mask[far].max() < 0.05
    with pytest.raises(ValueError, match="`mask`"):
        compare_to_reference(crowded, reference, 20.0, mask="sphere")


def test_half_sets_are_split_in_space_when_the_particles_positions_are_known():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"tomogram": ["TS_02"] * 5 + ["TS_01"] * 4, "z": rng.uniform(0, 10, 9),
                          "y": rng.uniform(0, 20, 9), "x": rng.uniform(0, 300, 9)})
    half = halves_by_position(table)
    # TS_01 (first by name) whole in half 0, TS_02 cut by a plane across x, its low-x end in half 0
    assert half[table["tomogram"] == "TS_01"].tolist() == [0] * 4
    ts2 = table["tomogram"] == "TS_02"
    x = table["x"][ts2]
    assert half[ts2].sum() == 4 and x[half[ts2] == 0].max() < x[half[ts2] == 1].min()
    assert halves_by_position(table[["tomogram", "x"]]) is None  # no positions: even and odd indices

    boxes = rng.normal(size=(9, 8, 8, 8)).astype(np.float32)
    result = average(boxes, particles=table, iterations=1, angular_step=90, progress=False, rng=0)
    assert (result.orientations["half"] - 1).tolist() == half.tolist()
    plain = average(boxes, iterations=1, angular_step=90, progress=False, rng=0)
    assert (plain.orientations["half"] - 1).tolist() == [0, 1] * 4 + [0]
