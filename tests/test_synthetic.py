"""Synthetic cells: imaging model, labels that line up with the density, determinism, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.fft
import scipy.ndimage as ndi

from tomowidgets.io import Tomogram
from tomowidgets.synthetic import (
    FEATURES,
    PARTICLE_COLUMNS,
    SyntheticCell,
    apoferritin_template,
    ctf_curve,
    image_volume,
    make_cell,
    missing_wedge_mask,
    proteasome_template,
    ribosome_template,
    spliceosome_template,
    zyz_matrix,
)

SMALL = (32, 128, 128)


@pytest.fixture(scope="module")
def cell() -> SyntheticCell:
    return make_cell(SMALL, seed=3)


def _blob(shape=(48, 48, 48), sigma=1.0):
    vol = np.zeros(shape, np.float32)
    vol[tuple(n // 2 for n in shape)] = 1.0
    return ndi.gaussian_filter(vol, sigma)


# --- imaging -------------------------------------------------------------------------------------

def test_missing_wedge_mask_keeps_components_near_kx_and_drops_those_near_kz():
    mask = missing_wedge_mask((16, 8, 16), tilt_range=60.0)
    assert mask.shape == (16, 8, 9) and mask.dtype == bool
    assert mask[0].all()  # kz = 0 plane is always measured
    assert not mask[1:, :, 0].any()  # kx = 0, kz != 0: inside the wedge
    kz = np.abs(scipy.fft.fftfreq(16))[:, None]
    kx = np.abs(scipy.fft.rfftfreq(16))[None, :]
    expected = kz <= np.tan(np.deg2rad(60.0)) * kx + 1e-9
    np.testing.assert_array_equal(mask[:, 3, :], expected)
    assert missing_wedge_mask((16, 8, 16), tilt_range=90.0).all()


def test_point_source_spreads_along_z_not_x():
    blob = _blob()
    image = image_volume(blob, 10.0, ctf=False, snr=None)
    c = blob.shape[0] // 2
    peak = image[c, c, c]
    assert peak < 0  # dense is dark
    along_z = image[c - 3 : c + 4, c, c] / peak
    along_x = image[c, c, c - 3 : c + 4] / peak
    along_y = image[c, c - 3 : c + 4, c] / peak
    assert along_z[2] > along_x[2] + 0.2  # one voxel from the centre
    assert along_z.sum() > 2 * along_x.sum()
    np.testing.assert_allclose(along_y, blob[c, c - 3 : c + 4, c] / blob[c, c, c], atol=0.3)


def test_tomogram_fourier_transform_is_zero_in_the_wedge_and_not_around_kx(cell):
    power = np.abs(scipy.fft.rfftn(cell.tomogram.data)) ** 2
    kept = missing_wedge_mask(cell.shape, cell.tilt_range)
    assert power[~kept].max() < 1e-8 * power[kept].mean()
    near_kx = power[0, :, 1:].mean()  # kz = 0
    near_kz = power[1:, :, 0].mean()  # kx = 0
    assert near_kz < 1e-8 * near_kx


def test_without_ctf_or_wedge_the_image_is_the_negated_density():
    blob = _blob((32, 32, 32), 2.0)
    image = image_volume(blob, 10.0, ctf=False, tilt_range=90.0, snr=None)
    np.testing.assert_allclose(image, -blob, atol=1e-6)
    assert image.dtype == np.float32


def test_ctf_darkens_dense_material_at_low_frequency_and_crosses_zero_near_24_angstrom():
    k = np.array([1 / 500, 1 / 100, 1 / 30, 1 / 24.5])
    values = ctf_curve(k, defocus=3.0, voltage=300.0, cs=2.7, amplitude_contrast=0.07)
    assert values[0] < 0 and values[1] < 0 and values[2] < -0.5
    assert abs(values[3]) < 0.2
    flipped = image_volume(_blob(), 10.0, phase_flip=True, snr=None)
    assert flipped[24, 24, 24] < 0


@pytest.mark.parametrize("snr", [0.5, 2.0])
def test_noise_level_matches_the_requested_snr(snr):
    density = make_cell(SMALL, seed=1, snr=None).density
    clean = image_volume(density, 10.0, snr=None)
    noisy = image_volume(density, 10.0, snr=snr, rng=7)
    measured = np.var(clean) / np.var(noisy - clean)
    assert measured == pytest.approx(snr, rel=0.02)
    noise_power = np.abs(scipy.fft.rfftn(noisy - clean)) ** 2
    kept = missing_wedge_mask(density.shape, 60.0)
    assert noise_power[~kept].max() < 1e-8 * noise_power[kept].mean()  # noise is wedged too


def test_cell_snr_is_the_one_asked_for(cell):
    noise = cell.tomogram.data - cell.noiseless
    assert np.var(cell.noiseless) / np.var(noise) == pytest.approx(cell.snr, rel=0.02)


# --- the cell ------------------------------------------------------------------------------------

def test_cell_holds_float32_tomogram_with_requested_apix_and_same_shape_everywhere():
    cell = make_cell((32, 96, 128), apix=12.0, seed=0)
    assert isinstance(cell.tomogram, Tomogram)
    assert cell.tomogram.apix == 12.0 and cell.apix == 12.0
    assert cell.tomogram.data.dtype == np.float32 and cell.density.dtype == np.float32
    assert cell.tomogram.shape == cell.density.shape == cell.noiseless.shape == (32, 96, 128)
    assert set(cell.labels) == set(FEATURES)
    for mask in cell.labels.values():
        assert mask.shape == (32, 96, 128) and mask.dtype == bool
    with pytest.raises(ValueError, match="read-only"):
        cell.density[0, 0, 0] = 1.0


def test_every_feature_is_present_and_labels_do_not_overlap(cell):
    total = np.zeros(cell.shape, int)
    for name, mask in cell.labels.items():
        assert mask.any(), name
        total += mask
    assert total.max() == 1


def test_labels_line_up_with_the_density(cell):
    for name, mask in cell.labels.items():
        inside = cell.density[mask].mean()
        assert inside > 3 * cell.density[~mask].mean(), name
        for axis in range(3):  # one voxel off along any axis is worse
            for shift in (-1, 1):
                assert cell.density[np.roll(mask, shift, axis)].mean() < inside, (name, axis)


def test_dense_features_are_dark_in_the_tomogram_and_gold_is_the_darkest(cell):
    means = {name: cell.noiseless[mask].mean() for name, mask in cell.labels.items()}
    background = cell.noiseless[~np.any(list(cell.labels.values()), axis=0)].mean()
    assert all(m < background for m in means.values())
    assert min(means, key=means.get) == "gold"
    assert cell.density.max() == cell.density[cell.labels["gold"]].max()
    assert cell.density[cell.labels["gold"]].mean() > 5 * cell.density[cell.labels["ribosome"]].mean()


def test_particle_table_has_relion_columns_and_centres_inside_their_labels(cell):
    table = cell.particles
    assert isinstance(table, pd.DataFrame)
    assert tuple(table.columns) == PARTICLE_COLUMNS == ("feature", "z", "y", "x", "rot", "tilt", "psi")
    assert table["feature"].dtype == object
    for column in PARTICLE_COLUMNS[1:]:
        assert table[column].dtype == np.float64
    assert set(table["feature"]) == {"ribosome", "proteasome", "gold"}
    assert table["tilt"].between(0, 180).all() and table["rot"].between(-180, 180).all()
    for feature in ("ribosome", "gold"):
        rows = table[table["feature"] == feature]
        zyx = rows[["z", "y", "x"]].to_numpy().astype(int)
        assert cell.labels[feature][tuple(zyx.T)].all(), feature
        n_objects = ndi.label(cell.labels[feature])[1]
        assert n_objects == len(rows)


def test_placed_ribosomes_rotated_back_with_their_relion_angles_match_the_template():
    cell = make_cell((48, 128, 128), seed=2, snr=None)
    template = ribosome_template(10.0)
    envelope = template > 0.1
    n = template.shape[0]
    flip = np.eye(3)[::-1]  # (z, y, x) <-> (x, y, z)
    padded = np.pad(cell.density, n)
    rows = cell.particles[cell.particles["feature"] == "ribosome"]
    assert len(rows) >= 3
    for row in rows.itertuples():
        start = np.array([row.z, row.y, row.x], int) + n - n // 2
        box = padded[tuple(slice(a, a + n) for a in start)]
        r = zyz_matrix(row.rot, row.tilt, row.psi)
        scores = []
        for m in (flip @ r.T @ flip, flip @ r @ flip):  # particle(r) = template(R r); the inverse
            c = np.full(3, n // 2)
            back = ndi.affine_transform(box, m, offset=c - m @ c, order=1)
            scores.append(np.corrcoef(back[envelope], template[envelope])[0, 1])
        assert scores[0] > 0.95 and scores[1] < 0.8, scores


def test_microtubule_label_is_a_hollow_tube(cell):
    mask = cell.labels["microtubule"]
    lumen = np.zeros_like(mask)
    for axis in (1, 2):  # cross-sections: (z, x) planes at each y, (z, y) planes at each x
        for i in range(mask.shape[axis]):
            section = np.take(mask, i, axis=axis)
            holes = ndi.binary_fill_holes(section) & ~section
            index = [slice(None)] * 3
            index[axis] = i
            lumen[tuple(index)] |= holes
    assert lumen.sum() > 0.3 * mask.sum()
    assert cell.density[lumen].mean() < 0.3 * cell.density[mask].mean()


def test_templates_are_centred_float32_maps():
    ribosome = ribosome_template()
    assert ribosome.shape == (40, 40, 40) and ribosome.dtype == np.float32
    np.testing.assert_allclose(ndi.center_of_mass(np.clip(ribosome, 0, None)), (20, 20, 20),
                               atol=0.5)
    coarse = ribosome_template(20.0)
    assert coarse.shape == (20, 20, 20)
    np.testing.assert_allclose(ndi.center_of_mass(np.clip(coarse, 0, None)), (10, 10, 10),
                               atol=0.5)
    barrel = proteasome_template(10.0)
    assert barrel.dtype == np.float32
    profile = barrel.sum(axis=(1, 2))  # long axis is z: 15 nm long, 11 nm wide
    width = barrel.sum(axis=(0, 1))
    assert (profile > 0.2 * profile.max()).sum() > (width > 0.2 * width.max()).sum()


# --- varied layouts (#16) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def varied() -> SyntheticCell:
    return make_cell(seed=0, snr=None, varied=True)


def _double_membrane_spacings(mask: np.ndarray) -> list[float]:
    """Per mitochondrion, the median distance (voxels) from its inner membrane to its outer one."""
    pieces, n = ndi.label(mask)
    sizes = np.bincount(pieces.ravel())
    spacings = []
    for outer in range(1, n + 1):
        to_outer = ndi.distance_transform_edt(pieces != outer)
        others = {j: float(np.median(to_outer[pieces == j])) for j in range(1, n + 1) if j != outer}
        inner = min(others, key=others.get)
        if sizes[inner] < sizes[outer]:  # the partner nearest to a shell and smaller is its inner one
            spacings.append(others[inner])
    return spacings


def _tube_elevations(mask: np.ndarray, apix: float) -> list[float]:
    """Angle (degrees) of each microtubule's long axis out of the xy plane."""
    pieces, n = ndi.label(mask)
    angles = []
    for i in range(1, n + 1):
        zyx = np.argwhere(pieces == i) * apix
        axis = np.linalg.svd(zyx - zyx.mean(0), full_matrices=False)[2][0]
        angles.append(float(np.degrees(np.arcsin(abs(axis[0])))))
    return angles


def test_a_varied_cell_has_several_mitochondria_with_different_membrane_spacings(varied):
    spacings = _double_membrane_spacings(varied.labels["double_membrane"])
    assert len(spacings) >= 2
    assert max(spacings) - min(spacings) >= 3  # voxels of 10 Å: at least 3 nm apart
    standard = _double_membrane_spacings(make_cell(seed=0, snr=None).labels["double_membrane"])
    assert len(standard) == 1


def test_a_varied_cell_tilts_its_microtubules_out_of_the_slice_plane(varied, cell):
    assert max(_tube_elevations(varied.labels["microtubule"], varied.apix)) > 10
    assert max(_tube_elevations(cell.labels["microtubule"], cell.apix)) < 8


def test_a_varied_cell_keeps_its_labels_apart_and_its_particles_on_them(varied):
    total = sum(mask.astype(int) for mask in varied.labels.values())
    assert total.max() == 1
    rows = varied.particles[varied.particles["feature"] == "ribosome"]
    assert varied.labels["ribosome"][tuple(rows[["z", "y", "x"]].to_numpy().astype(int).T)].all()
    assert "varied layout" in repr(varied) and varied.varied


def test_distractors_add_unseen_complexes_and_leave_the_rest_of_the_cell_where_it_was(varied):
    cell = make_cell(seed=0, snr=None, varied=True, distractors=True)
    counts = cell.particles["feature"].value_counts()
    assert counts["apoferritin"] >= 10 and counts["spliceosome"] >= 2
    for name in FEATURES:  # every other object where the varied cell has it
        np.testing.assert_array_equal(cell.labels[name], varied.labels[name])
    pd.testing.assert_frame_equal(
        cell.particles[cell.particles["feature"].isin(FEATURES)].reset_index(drop=True),
        varied.particles.reset_index(drop=True))
    total = sum(mask.astype(int) for mask in cell.labels.values())
    assert total.max() == 1 and cell.labels["spliceosome"].any() and cell.labels["apoferritin"].any()
    assert "distractors" in repr(cell) and cell.distractors and not varied.distractors
    assert "apoferritin" not in varied.labels


def test_distractor_templates_have_their_complexes_sizes():
    def extent_nm(template):
        dense = np.argwhere(template >= 0.5 * template.max())
        return (dense.max(axis=0) - dense.min(axis=0) + 1) * 1.0   # voxels of 10 Å = nm

    apoferritin = apoferritin_template(10.0)
    assert apoferritin[tuple(np.array(apoferritin.shape) // 2)] < 0.1   # a hollow shell
    assert 10 <= extent_nm(apoferritin).max() <= 13
    spliceosome, ribosome = spliceosome_template(10.0), ribosome_template(10.0)
    assert 0.7 < extent_nm(spliceosome).max() / extent_nm(ribosome).max() < 1.6   # ribosome-sized
    np.testing.assert_array_equal(spliceosome, spliceosome_template(10.0))  # one fixed shape


def test_same_seed_gives_identical_cells_and_different_seeds_differ():
    a = make_cell(SMALL, seed=5)
    b = make_cell(SMALL, seed=5)
    c = make_cell(SMALL, seed=6)
    np.testing.assert_array_equal(a.tomogram.data, b.tomogram.data)
    np.testing.assert_array_equal(a.density, b.density)
    for name in FEATURES:
        np.testing.assert_array_equal(a.labels[name], b.labels[name])
    pd.testing.assert_frame_equal(a.particles, b.particles)
    assert not np.array_equal(a.density, c.density)
    assert not np.array_equal(a.tomogram.data, c.tomogram.data)
    d = make_cell(SMALL, seed=np.random.default_rng(5))
    assert d.seed is None and d.tomogram.shape == SMALL


def test_objects_keep_their_physical_size_and_their_number_grows_with_the_volume():
    small = make_cell(SMALL, seed=0, snr=None)
    coarse = make_cell(SMALL, apix=20.0, seed=0, snr=None)
    bead = ndi.label(coarse.labels["gold"])[0] == 1
    assert bead.sum() == pytest.approx(4 / 3 * np.pi * 2.5**3, rel=0.3)  # 10 nm at 20 Å/voxel
    assert len(coarse.particles) > 3 * len(small.particles)


def test_repr_summarizes_the_cell(cell):
    text = repr(cell)
    assert "z=32, y=128, x=128" in text and "apix=10 Å" in text and "ribosome" in text
    assert "snr=0.5" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (32, 128)}, "`shape` must be 3 integers"),
        ({"shape": (31, 128, 128)}, r"each >= 32"),
        ({"shape": (32.0, 128, 128)}, "`shape`"),
        ({"apix": 0.0}, "`apix` must be a positive number"),
        ({"apix": -10.0}, "`apix`"),
        ({"snr": 0.0}, "`snr` must be a positive number"),
        ({"tilt_range": 0.0}, "`tilt_range`"),
        ({"tilt_range": 91.0}, r"`tilt_range` must be in \(0, 90\]"),
        ({"defocus": -1.0}, "`defocus`"),
        ({"amplitude_contrast": 1.5}, "`amplitude_contrast`"),
        ({"seed": "zero"}, "`seed`"),
    ],
)
def test_bad_inputs_raise_a_value_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_cell(**{"shape": SMALL, **kwargs})
