"""The command line: synth -> preprocess -> info on real files, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tomowidgets as tw
from tomowidgets.cli import main


@pytest.fixture(scope="module")
def cell_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cell")
    assert main(["synth", str(out), "--shape", "32", "96", "96", "--apix", "12", "--seed", "3"]) == 0
    return out


def test_synth_writes_tomogram_density_labels_and_particles_with_the_voxel_size(cell_dir):
    tomo = tw.read_tomogram(cell_dir / "tomogram.mrc")
    assert tomo.shape == (32, 96, 96)
    assert tomo.apix == pytest.approx(12.0)
    assert tw.read_tomogram(cell_dir / "density.mrc").apix == pytest.approx(12.0)
    ribosomes = tw.read_tomogram(cell_dir / "labels" / "ribosome.mrc").data
    assert set(np.unique(ribosomes)) <= {0.0, 1.0}
    table = pd.read_csv(cell_dir / "particles.csv")
    assert list(table.columns) == ["feature", "z", "y", "x", "rot", "tilt", "psi"]
    inside = [ribosomes[int(r.z), int(r.y), int(r.x)] for r in table.itertuples() if r.feature == "ribosome"]
    assert inside and all(v == 1 for v in inside)  # particle centres sit on their labels


def test_preprocess_output_has_the_voxel_size_and_normalized_clamped_values(cell_dir, capsys):
    out = cell_dir / "pre.mrc"
    assert main(["preprocess", str(cell_dir / "tomogram.mrc"), str(out), "--lowpass", "30"]) == 0
    pre = tw.read_tomogram(out)
    assert pre.apix == pytest.approx(12.0)
    assert abs(pre.data.mean()) < 0.02
    assert 0.9 < pre.data.std() <= 1.0
    assert np.abs(pre.data).max() <= 3.0 + 1e-6
    assert "preprocessed in" in capsys.readouterr().out


def test_info_describes_an_mrc_file(cell_dir, capsys):
    assert main(["info", str(cell_dir / "tomogram.mrc")]) == 0
    text = capsys.readouterr().out
    assert "apix=12 Å" in text and "sd =" in text


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["preprocess", str(tmp_path / "missing.mrc"), str(tmp_path / "o.mrc")]) == 2
    assert "missing.mrc" in capsys.readouterr().err
    (tmp_path / "text.mrc").write_text("not an MRC file" * 100)
    assert main(["info", str(tmp_path / "text.mrc")]) == 2
    assert "not a readable MRC" in capsys.readouterr().err


def test_preprocess_rejects_a_lowpass_below_nyquist(cell_dir, capsys):
    code = main(["preprocess", str(cell_dir / "tomogram.mrc"), str(cell_dir / "x.mrc"), "--lowpass", "10"])
    assert code == 2
    assert "Nyquist" in capsys.readouterr().err
    assert not (cell_dir / "x.mrc").exists()


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "tomowidgets" in capsys.readouterr().out
