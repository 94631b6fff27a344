"""`tomowidgets demo` writes every product of the pipeline and a summary (tiny cells, 1 epoch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tomowidgets as tw
from tomowidgets.cli import main

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tensorflow


def test_demo_runs_the_whole_pipeline_and_writes_every_product(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--shape", "48", "192", "192", "--epochs", "1",
                 "--features", "membrane", "ribosome"])
    assert code == 0
    for name in ("membrane.keras", "ribosome.tiles.npz", "ribosomes.star", "ribosomes.csv",
                 "ribosome_average.mrc", "ribosome_fsc.csv", "ribosomes_aligned.star", "summary.png",
                 "test_cell/labels.mrc", "test_cell/scores/preprocessed.ribosome.mrc"):
        assert (out / name).is_file(), name
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = tw.LabelMap.load(out / "test_cell" / "labels.mrc")
    assert labels.names == ("membrane", "ribosome")
    assert tw.read_tomogram(out / "ribosome_average.mrc").apix == pytest.approx(10.0)
    summary = json.loads((out / "summary.json").read_text())
    assert [f["feature"] for f in summary["features"]] == ["membrane", "ribosome"]
    assert all(0.0 <= f["dice"] <= 1.0 for f in summary["features"])
    assert np.isfinite(summary["resolution"])
    assert "Dice" in capsys.readouterr().out


def test_demo_reports_too_few_particles_instead_of_failing(tmp_path, small_cell):
    """With fewer than 4 ribosomes picked, the demo says it cannot average and goes on."""
    from scipy import ndimage

    from tomowidgets.demo import _pick_and_average

    cell = small_cell
    regions, _ = ndimage.label(cell.labels["ribosome"])
    two = np.isin(regions, [1, 2])                                  # only two ribosomes score high
    scores = cell.tomogram.with_data(2.0 * ndimage.gaussian_filter(two.astype(np.float32), 2.0))
    messages = []
    picks, picking, classes, result = _pick_and_average(tmp_path, scores, cell, box=38, seed=0,
                                                        progress=False, say=messages.append)
    assert len(picks) >= 1 and classes is None and result is None
    assert "too few to average" in messages[0]
    assert (tmp_path / "ribosomes.star").is_file()
