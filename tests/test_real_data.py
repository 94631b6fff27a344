"""The real cell (EMPIAR-10499 at 20 Å, ``../shared/data/real/``): defaults that work on binned data,
gold, and the saved real annotation. Skipped where that folder is absent (users' machines)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import tomowidgets as tw
from tomowidgets.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "empiar10499_TS00254_20A.mrc"
CROP = ROOT / "notebooks" / "real_cell" / "empiar10499_TS00254_crop20A.mrc"
SETS = ROOT / "notebooks" / "real_cell"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason=f"the real cell is not at {REAL} "
                                "(only the development machines have ../shared/data/real)")


@pytest.fixture(scope="module")
def real_pre():
    raw = tw.read_tomogram(REAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)            # the Nyquist note
        return raw, tw.preprocess(tw.erase_gold(raw), progress=False)


@needs_real
def test_preprocess_with_its_defaults_works_on_the_real_20_angstrom_cell(tmp_path, capsys):
    assert main(["preprocess", str(REAL), str(tmp_path / "pre.mrc")]) == 0
    assert "Nyquist limit 40 Å" in capsys.readouterr().err
    pre = tw.read_tomogram(tmp_path / "pre.mrc")
    assert pre.apix == 20.0 and abs(float(pre.data.mean())) < 0.05 and np.abs(pre.data).max() <= 3.0


@needs_real
def test_gold_on_the_real_cell_is_a_few_dozen_dark_beads(real_pre):
    raw, _ = real_pre
    gold = tw.find_gold(raw)
    beads = ndimage.label(gold)[1]
    assert 10 <= beads <= 40 and gold.mean() < 0.01
    data = np.asarray(raw.data, np.float32)
    darkest = np.argsort(data, axis=None)[:1000]                      # the beads, in protein contrast
    assert gold.ravel()[darkest].all() and float(data[gold].mean()) < -0.5


@needs_real
def test_the_saved_real_annotation_was_cut_from_the_real_cell(real_pre):
    """Every tile of the saved sets is the gold-erased, preprocessed cell at its centre, so the
    sets can be rebuilt (notebooks/real_cell/annotate.py) and mean what they show."""
    _, pre = real_pre
    for feature, positives in (("ribosome", 10), ("membrane", 18)):
        ts = tw.TrainingSet.load(SETS / f"{feature}.tiles.npz")
        assert ts.kinds.count("positive") == positives and ts.kinds.count("negative") >= 100
        assert ts.apix == 20.0 and ts.preprocessing["lowpass"] == 40.0
        for i, (z, y, x) in enumerate(ts.centres):
            np.testing.assert_allclose(ts.image(i), pre.data[z, y - 32:y + 32, x - 32:x + 32], atol=1e-4)


def test_the_shipped_crop_is_small_and_placed_in_the_cell():
    crop = tw.read_tomogram(CROP)
    assert CROP.stat().st_size <= 10 * 10**6 and crop.shape == (64, 300, 256) and crop.apix == 20.0
    assert crop.origin == (900.0, 160.0, 800.0)
    if REAL.is_file():
        whole = tw.read_tomogram(REAL)
        np.testing.assert_array_equal(crop.data, whole.data[45:109, 8:308, 40:296])
