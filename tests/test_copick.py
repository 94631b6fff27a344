"""copick: a small local project built from a synthetic cell (offline), read, picked and written
back as a named user and session, then read again through copick's own API."""

from __future__ import annotations

import numpy as np
import pytest

import tomowidgets as tw
from tomowidgets._rotation import euler_to_matrix
from tomowidgets.particles import (
    read_copick_picks,
    read_copick_tomogram,
    write_copick_picks,
    write_copick_segmentation,
)

copick = pytest.importorskip("copick")


@pytest.fixture
def project(tmp_path, small_cell):
    """config.json of a local project: run TS_01 with the cell's tomogram at 10 Å as 'wbp'."""
    from copick.models import PickableObject

    config = tmp_path / "config.json"
    root = copick.new_config(str(config), overlay_root=str(tmp_path / "overlay"), pickable_objects=[
        PickableObject(name="ribosome", is_particle=True, label=1, radius=120.0),
        PickableObject(name="membrane", is_particle=False, label=2),
        PickableObject(name="microtubule", is_particle=False, label=3)])
    spacing = root.new_run("TS_01").new_voxel_spacing(small_cell.apix)
    spacing.new_tomogram("wbp").from_numpy(small_cell.tomogram.data)
    return config


def test_a_tomogram_is_read_with_its_voxel_size(project, small_cell):
    tomo = read_copick_tomogram(project, "TS_01", 10.0)
    np.testing.assert_array_equal(tomo.data, small_cell.tomogram.data)
    assert tomo.apix == 10.0
    with pytest.raises(ValueError, match=r"no run 'TS_02'; it has \['TS_01'\]"):
        read_copick_tomogram(project, "TS_02", 10.0)
    with pytest.raises(ValueError, match=r"no tomograms at 20 Å/voxel; it has \[10.0\]"):
        read_copick_tomogram(project, "TS_01", 20.0)
    with pytest.raises(ValueError, match=r"no 'denoised' tomogram; it has \['wbp'\]"):
        read_copick_tomogram(project, "TS_01", 10.0, "denoised")
    with pytest.raises(FileNotFoundError, match="No copick configuration"):
        read_copick_tomogram(project.parent / "nope.json", "TS_01", 10.0)


def test_picks_go_back_in_angstrom_with_orientations_as_copick_reads_them(project, small_cell):
    truth = small_cell.particles[small_cell.particles["feature"] == "ribosome"]
    write_copick_picks(project, "TS_01", truth, apix=10.0, session_id="7")
    root = copick.from_file(str(project))
    (picks,) = root.get_run("TS_01").get_picks("ribosome", user_id="tomowidgets", session_id="7")
    positions, transforms = picks.numpy()
    np.testing.assert_allclose(positions, truth[["x", "y", "z"]].to_numpy() * 10.0, atol=1e-4)
    # copick's transform turns the reference onto the particle: R.T of the RELION angles
    expected = np.swapaxes(euler_to_matrix(truth[["rot", "tilt", "psi"]].to_numpy()), -1, -2)
    np.testing.assert_allclose(transforms[:, :3, :3], expected, atol=1e-6)
    back = read_copick_picks(project, "TS_01", "ribosome", apix=10.0, user_id="tomowidgets")
    np.testing.assert_allclose(back[["z", "y", "x"]].to_numpy(), truth[["z", "y", "x"]].to_numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(euler_to_matrix(back[["rot", "tilt", "psi"]].to_numpy()),
                               euler_to_matrix(truth[["rot", "tilt", "psi"]].to_numpy()), atol=1e-6)
    assert (back["tomogram"] == "TS_01").all()
    with pytest.raises(ValueError, match=r"no pickable object 'proteasome'; it has \['membrane'"):
        write_copick_picks(project, "TS_01", truth.assign(feature="proteasome"), apix=10.0)


def test_filament_numbers_become_instance_ids_and_masks_segmentations(project, small_cell):
    wall = small_cell.labels["microtubule"]
    rod = np.zeros(small_cell.shape, np.float32)
    rod[20:24, 60:64, 10:110] = 2.0
    seeds = tw.filament_seeds(tw.Tomogram(rod, 10.0), 80.0, feature="microtubule")
    write_copick_picks(project, "TS_01", seeds, apix=10.0)
    back = read_copick_picks(project, "TS_01", "microtubule", apix=10.0)
    assert back["filament"].tolist() == seeds["filament"].tolist() == [1] * len(seeds)
    write_copick_segmentation(project, "TS_01", wall, apix=10.0, name="microtubule")
    root = copick.from_file(str(project))
    (segmentation,) = root.get_run("TS_01").get_segmentations(name="microtubule", user_id="tomowidgets")
    np.testing.assert_array_equal(segmentation.numpy() > 0, wall)
    labels = np.zeros(small_cell.shape, np.int8)
    labels[small_cell.labels["membrane"]] = 2
    labels[wall] = 3
    write_copick_segmentation(project, "TS_01", labels, apix=10.0, name="tomowidgets-labels")
    (multi,) = copick.from_file(str(project)).get_run("TS_01").get_segmentations(
        name="tomowidgets-labels", is_multilabel=True)
    np.testing.assert_array_equal(multi.numpy(), labels)
