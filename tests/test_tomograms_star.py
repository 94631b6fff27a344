"""RELION-5's tomograms.star: names, sizes and voxel sizes that match the particles STAR file, so
the picks land on the same voxels when RELION converts its centred Å back to tomogram pixels."""

from __future__ import annotations

import numpy as np
import pytest
import starfile

import tomowidgets as tw
from tomowidgets.cli import main
from tomowidgets.particles import write_tomograms_star


def test_picks_and_tomograms_star_hand_off_to_relion_without_editing(tmp_path, small_cell):
    tomo = tmp_path / "TS_01.mrc"
    tw.write_tomogram(tomo, small_cell.tomogram)                   # 10 Å/voxel
    scores = small_cell.labels["ribosome"].astype(np.float32) * 2
    tw.write_tomogram(tmp_path / "TS_01.ribosome.mrc", scores, apix=small_cell.apix)
    assert main(["pick", str(tmp_path / "TS_01.ribosome.mrc"), "-o", str(tmp_path / "picks.star")]) == 0
    assert main(["tomograms", str(tomo), "-o", str(tmp_path / "tomograms.star"),
                 "--tilt-series-apix", "2.5"]) == 0
    particles = starfile.read(tmp_path / "picks.star")
    tomograms = starfile.read(tmp_path / "tomograms.star").set_index("rlnTomoName")
    assert set(particles["rlnTomoName"]) == {"TS_01"} and list(tomograms.index) == ["TS_01"]
    row = tomograms.loc["TS_01"]
    assert row["rlnTomoTomogramBinning"] == pytest.approx(4.0)
    nz, ny, nx = small_cell.shape
    assert (row["rlnTomoSizeX"], row["rlnTomoSizeY"], row["rlnTomoSizeZ"]) == (4 * nx, 4 * ny, 4 * nz)
    # RELION-5: tilt-series pixel = centred Å / pixel size + size / 2; tomogram voxel = that / binning
    for axis in "XYZ":
        pixels = (particles[f"rlnCenteredCoordinate{axis}Angst"] / row["rlnTomoTiltSeriesPixelSize"]
                  + row[f"rlnTomoSize{axis}"] / 2)
        np.testing.assert_allclose(pixels / row["rlnTomoTomogramBinning"],
                                   particles[f"rlnCoordinate{axis}"], atol=1e-6)
    assert row["rlnTomoReconstructedTomogram"] == str(tomo)


def test_a_mapping_names_the_tomograms_and_bad_values_are_refused(tmp_path):
    a = tw.Tomogram(np.zeros((4, 8, 8), np.float32), 12.0)
    path = write_tomograms_star(tmp_path / "t.star", {"TS_07": a, "TS_08": a})
    assert starfile.read(path)["rlnTomoName"].tolist() == ["TS_07", "TS_08"]
    assert starfile.read(path)["rlnTomoTomogramBinning"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="names repeat"):
        write_tomograms_star(tmp_path / "u.star", [a, a])
    with pytest.raises(ValueError, match="`hand` must be -1 or 1"):
        write_tomograms_star(tmp_path / "u.star", a, hand=0)
    with pytest.raises(ValueError, match="`tilt_series_apix` must be a positive"):
        write_tomograms_star(tmp_path / "u.star", a, tilt_series_apix=0.0)
    assert not (tmp_path / "u.star").exists()
