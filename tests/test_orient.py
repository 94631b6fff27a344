"""Oriented seeds: membrane normals, filament axes and long axes recovered on synthetic shapes of
known geometry, the angle convention pinned to the rotations averaging uses, and the RELION priors
through STAR and CSV files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tomowidgets as tw
from tomowidgets._rotation import euler_to_matrix
from tomowidgets.particles import angle_directions, direction_angles, orient_particles

APIX = 10.0   # Å/voxel: the real sizes below are in voxels at 10 Å


def _angle(a, b, *, signed=True):
    """Angles in degrees between rows of unit vectors (ignoring sign unless `signed`)."""
    cos = np.einsum("ij,ij->i", a, b)
    return np.degrees(np.arccos(np.clip(cos if signed else np.abs(cos), -1.0, 1.0)))


def _grid(shape):
    return np.stack(np.indices(shape, dtype=np.float64), axis=-1)


def _tube(shape, centre, axis, inner=7.5, outer=12.5):
    """A straight microtubule wall (radii in voxels at 10 Å: 7.5-12.5 nm), lumen unannotated."""
    rel = _grid(shape) - centre
    along = rel @ axis
    distance = np.linalg.norm(rel - along[..., None] * axis, axis=-1)
    return (distance >= inner) & (distance <= outer)


def test_the_angles_put_the_references_z_axis_along_the_direction():
    """(tilt, psi) describe R.T @ z for the rotations subtomogram averaging uses, whatever rot is."""
    rng = np.random.default_rng(0)
    angles = np.column_stack([rng.uniform(-180, 180, 50), np.degrees(np.arccos(rng.uniform(-1, 1, 50))),
                              rng.uniform(-180, 180, 50)])
    z_of_reference = np.swapaxes(euler_to_matrix(angles), -1, -2)[:, :, 2][:, ::-1]   # (z, y, x)
    np.testing.assert_allclose(angle_directions(angles[:, 1], angles[:, 2]), z_of_reference, atol=1e-12)
    tilt, psi = direction_angles(z_of_reference)
    np.testing.assert_allclose(tilt, angles[:, 1], atol=1e-9)
    np.testing.assert_allclose(np.exp(1j * np.radians(psi)), np.exp(1j * np.radians(angles[:, 2])), atol=1e-9)
    assert direction_angles([[0.0, 1.0, 0.0]])[0][0] == pytest.approx(90.0)    # in the xy plane


def test_membrane_normals_point_out_of_a_vesicle():
    shape, centre, radius = (60, 90, 90), np.array([30.0, 45.0, 45.0]), 24.0
    distance = np.linalg.norm(_grid(shape) - centre, axis=-1)
    shell = np.abs(distance - radius) <= 2.5                         # a 5 nm membrane band
    seeds = tw.membrane_seeds(tw.Tomogram(shell.astype(np.float32) * 2, APIX), 60.0, rng=0)
    points = seeds[["z", "y", "x"]].to_numpy()
    truth = (points - centre) / np.linalg.norm(points - centre, axis=1, keepdims=True)
    error = _angle(angle_directions(seeds["tilt"], seeds["psi"]), truth)
    print(f"vesicle normals: {len(seeds)} seeds, angle error median {np.median(error):.2f}°, "
          f"max {error.max():.2f}°")
    assert len(seeds) > 50 and np.median(error) < 2.0 and error.max() < 8.0   # and outwards
    assert shell[tuple(np.round(points).astype(int).T)].all()
    assert (seeds["tilt_prior"] == seeds["tilt"]).all() and (seeds["rot"] == 0).all()
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points)) * 1e9
    assert gaps.min() >= 6.0 - 1e-9                                  # 60 Å apart


def test_microtubule_axes_spacing_and_numbers_are_recovered():
    shape = (48, 128, 128)
    axes = [np.array([0.1, 0.15, 0.98]), np.array([0.0, -0.15, 0.99])]   # apart, not touching
    axes = [a / np.linalg.norm(a) for a in axes]
    centres = [np.array([24.0, 30.0, 64.0]), np.array([24.0, 96.0, 64.0])]
    wall = _tube(shape, centres[0], axes[0]) | _tube(shape, centres[1], axes[1])
    seeds = tw.filament_seeds(tw.Tomogram(wall.astype(np.float32) * 2, APIX), 80.0, lumen=80.0,
                              feature="microtubule")
    assert sorted(seeds["filament"].unique()) == [1, 2]
    for number in (1, 2):
        one = seeds[seeds["filament"] == number]
        points = one[["z", "y", "x"]].to_numpy()
        k = int(np.argmin([np.abs(_angle(angle_directions(one["tilt"], one["psi"])[:1], a[None],
                                          signed=False)) for a in axes]))
        error = _angle(angle_directions(one["tilt"], one["psi"]), np.tile(axes[k], (len(one), 1)),
                       signed=False)
        rel = points - centres[k]
        off_axis = np.linalg.norm(rel - (rel @ axes[k])[:, None] * axes[k], axis=1)
        print(f"microtubule {number}: {len(one)} seeds, axis error median {np.median(error):.2f}°, "
              f"max {error.max():.2f}°, off the axis ≤ {off_axis.max():.2f} voxels")
        # the trace bends where a tube leaves the volume obliquely: its end seeds are looser
        assert np.median(error) < 2.0 and error[1:-1].max() < 4.0 and error.max() < 8.0
        assert off_axis.max() < 1.5
        np.testing.assert_allclose(np.diff(one["track_length"]), 80.0, atol=1e-6)
        steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
        assert np.all(np.abs(steps - 8.0) < 1.0)                    # 80 Å along a straight tube
        directions = angle_directions(one["tilt"], one["psi"])
        assert np.all(np.einsum("ij,ij->i", directions[1:], np.diff(points, axis=0)) > 0)  # along it


def test_a_curved_filament_is_followed_with_its_tangent():
    shape, centre, bend = (40, 128, 128), np.array([20.0, 64.0, 10.0]), 50.0
    grid = _grid(shape)
    rel = grid - centre
    in_plane = np.linalg.norm(rel[..., 1:], axis=-1)               # distance from the bend's centre
    distance = np.hypot(rel[..., 0], in_plane - bend)              # distance from the circular axis
    solid = (distance <= 4.0) & (rel[..., 2] > 5)
    seeds = tw.filament_seeds(solid.astype(np.float32), 10.0)     # a plain array: voxels
    points = seeds[["z", "y", "x"]].to_numpy() - centre
    radial = points[:, 1:] / np.linalg.norm(points[:, 1:], axis=1, keepdims=True)
    tangent = np.column_stack([np.zeros(len(points)), -radial[:, 1], radial[:, 0]])
    error = _angle(angle_directions(seeds["tilt"], seeds["psi"]), tangent, signed=False)
    print(f"curved filament: {len(seeds)} seeds, tangent error median {np.median(error):.2f}°, "
          f"max {error.max():.2f}°")
    assert seeds["filament"].nunique() == 1 and len(seeds) >= 12
    assert np.median(error) < 3.0 and error.max() < 10.0
    assert np.all(np.abs(np.linalg.norm(points[:, 1:], axis=1) - bend) < 1.5)


def test_particles_get_the_long_axis_of_their_blob():
    shape = (40, 64, 64)
    grid = _grid(shape)
    axes = np.array([[0.0, 0.6, 0.8], [0.7, 0.0, 0.71414], [1.0, 0.0, 0.0]])
    centres = np.array([[20.0, 16.0, 16.0], [20.0, 46.0, 20.0], [20.0, 30.0, 48.0]])
    mask = np.zeros(shape, bool)
    for axis, centre in zip(axes, centres, strict=True):
        rel = grid - centre
        along = rel @ axis
        across = np.linalg.norm(rel - along[..., None] * axis, axis=-1)
        mask |= (along / 9.0) ** 2 + (across / 4.0) ** 2 <= 1        # a cigar 18 × 8 voxels
    table = pd.DataFrame({"z": centres[:, 0], "y": centres[:, 1], "x": centres[:, 2]})
    oriented = orient_particles(table, tw.Tomogram(mask.astype(np.float32), APIX), 110.0)
    error = _angle(angle_directions(oriented["tilt"], oriented["psi"]),
                   axes / np.linalg.norm(axes, axis=1, keepdims=True), signed=False)
    assert error.max() < 3.0, error


@pytest.mark.parametrize("suffix", [".star", ".csv"])
def test_priors_and_filament_numbers_travel_through_star_and_csv(tmp_path, suffix):
    wall = _tube((32, 64, 64), np.array([16.0, 32.0, 32.0]), np.array([0.0, 0.6, 0.8]))
    seeds = tw.filament_seeds(tw.Tomogram(wall.astype(np.float32) * 2, APIX), 80.0, lumen=80.0,
                              feature="microtubule", tomogram="TS_01")
    path = tw.write_particles(tmp_path / f"mt{suffix}", seeds, apix=APIX, shape=(32, 64, 64))
    back = tw.read_particles(path)
    for column in ("rot", "tilt", "psi", "tilt_prior", "psi_prior", "filament", "track_length"):
        np.testing.assert_allclose(back[column].to_numpy(np.float64), seeds[column].to_numpy(np.float64),
                                   atol=1e-6)
    if suffix == ".star":
        text = path.read_text()
        for label in ("_rlnAngleTiltPrior", "_rlnAnglePsiPrior", "_rlnHelicalTubeID",
                      "_rlnHelicalTrackLengthAngst", "reference's z axis points along"):
            assert label in text


@pytest.mark.parametrize(("call", "match"), [
    (lambda m: tw.membrane_seeds(tw.Tomogram(m, APIX), 5.0), "`spacing` must be a finite number >= 10"),
    (lambda m: tw.filament_seeds(m, 4.0, lumen=-1.0), "`lumen` must be a finite number >= 0"),
    (lambda m: tw.filament_seeds(m[0], 4.0), "3"),
    (lambda m: orient_particles(pd.DataFrame({"z": [1.0]}), m, 4.0), "no column"),
])
def test_bad_orientation_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call(np.zeros((8, 16, 16), np.float32))


def test_nothing_annotated_gives_empty_tables_with_the_orientation_columns():
    empty = tw.Tomogram(np.zeros((8, 16, 16), np.float32), APIX)
    for table in (tw.membrane_seeds(empty, 40.0), tw.filament_seeds(empty, 40.0)):
        assert len(table) == 0 and {"tilt", "psi", "tilt_prior", "psi_prior"} <= set(table.columns)


@pytest.mark.parametrize("width", [3, 4, 6])
def test_rods_of_any_width_are_traced(width):
    """scikit-image's 3D thinning erases square rods of even width whole; they are traced anyway."""
    rod = np.zeros((24, 64, 64), np.float32)
    rod[10:10 + width, 30:30 + width, 4:60] = 2.0
    seeds = tw.filament_seeds(rod, 8.0)
    assert len(seeds) >= 6 and (seeds["filament"] == 1).all()
    np.testing.assert_allclose(seeds["tilt"], 90.0, atol=1.0)        # along x: in the xy plane
