"""The command line: synth -> preprocess -> info on real files, and clear errors."""

from __future__ import annotations

import errno
import os

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


def test_synth_images_by_a_tilt_series_when_asked(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--shape", "32", "96", "96", "--imaging", "tilt_series"]) == 0
    assert "WBP of ±60° tilts" in capsys.readouterr().out
    expected = tw.synthetic.make_cell((32, 96, 96), seed=0, imaging="tilt_series").tomogram.data
    np.testing.assert_array_equal(tw.read_tomogram(tmp_path / "tomogram.mrc").data, expected)


def test_synth_varies_the_layout_when_asked(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--shape", "32", "96", "96", "--varied"]) == 0
    assert "varied layout" in capsys.readouterr().out
    expected = tw.synthetic.make_cell((32, 96, 96), seed=0, varied=True).tomogram.data
    np.testing.assert_array_equal(tw.read_tomogram(tmp_path / "tomogram.mrc").data, expected)


def test_synth_adds_distractors_and_writes_their_labels_when_asked(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--shape", "32", "96", "96", "--varied", "--distractors"]) == 0
    assert "distractors" in capsys.readouterr().out
    expected = tw.synthetic.make_cell((32, 96, 96), seed=0, varied=True, distractors=True)
    np.testing.assert_array_equal(tw.read_tomogram(tmp_path / "tomogram.mrc").data, expected.tomogram.data)
    written = tw.read_tomogram(tmp_path / "labels" / "apoferritin.mrc").data
    np.testing.assert_array_equal(np.asarray(written) > 0, expected.labels["apoferritin"])


def test_preprocess_output_has_the_voxel_size_and_normalized_clamped_values(cell_dir, capsys):
    out = cell_dir / "pre.mrc"
    assert main(["preprocess", str(cell_dir / "tomogram.mrc"), str(out), "--lowpass", "30"]) == 0
    pre = tw.read_tomogram(out)
    assert pre.apix == pytest.approx(12.0)
    assert abs(pre.data.mean()) < 0.02
    assert 0.9 < pre.data.std() <= 1.0
    assert np.abs(pre.data).max() <= 3.0 + 1e-6
    assert "preprocessed in" in capsys.readouterr().out


def test_preprocess_defaults_work_on_binned_data_with_a_note(cell_dir, tmp_path, capsys):
    binned = tw.bin(tw.read_tomogram(cell_dir / "tomogram.mrc"), 2, progress=False)  # 24 Å/voxel
    tw.write_tomogram(tmp_path / "bin2.mrc", binned)
    assert main(["preprocess", str(tmp_path / "bin2.mrc"), str(tmp_path / "pre.mrc")]) == 0
    err = capsys.readouterr().err
    assert "tomowidgets preprocess: note:" in err and "Nyquist limit 48 Å" in err
    assert err.count("note:") == 1                                          # said once
    assert tw.read_tomogram(tmp_path / "pre.mrc").apix == pytest.approx(24.0)


def test_rescale_writes_the_new_voxel_size_and_apply_names_it(cell_dir, tmp_path, capsys):
    assert main(["rescale", str(cell_dir / "tomogram.mrc"), str(tmp_path / "r.mrc"), "--to", "18"]) == 0
    out = tw.read_tomogram(tmp_path / "r.mrc")
    assert out.apix == pytest.approx(18.0) and out.shape == (20, 64, 64)     # 30 of 32 z voxels fit: 30·12/18
    assert "rescaled from 12 Å/voxel" in capsys.readouterr().out


def test_preprocess_can_erase_gold_first(cell_dir, tmp_path, capsys):
    out = tmp_path / "pre.mrc"
    assert main(["preprocess", str(cell_dir / "tomogram.mrc"), str(out), "--erase-gold"]) == 0
    assert "erased 1 gold blobs" in capsys.readouterr().out
    gold = tw.read_tomogram(cell_dir / "labels" / "gold.mrc").data > 0
    assert abs(tw.read_tomogram(out).data[gold].mean()) < 0.5       # background, not a black bead


def test_info_describes_an_mrc_file(cell_dir, capsys):
    assert main(["info", str(cell_dir / "tomogram.mrc")]) == 0
    text = capsys.readouterr().out
    assert "apix=12 Å" in text and "sd =" in text


def test_errors_are_reported_without_a_traceback(tmp_path, capsys):
    assert main(["preprocess", str(tmp_path / "missing.mrc"), str(tmp_path / "o.mrc")]) == 1
    assert "missing.mrc" in capsys.readouterr().err
    (tmp_path / "text.mrc").write_text("not an MRC file" * 100)
    assert main(["info", str(tmp_path / "text.mrc")]) == 1
    assert "not a readable MRC" in capsys.readouterr().err


def test_a_full_disk_is_one_line_and_keeps_the_previous_output(cell_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.mrc"
    out.write_bytes(b"the previous output")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    assert main(["rescale", str(cell_dir / "tomogram.mrc"), str(out), "--to", "18"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "No space left on device; the disk is full" in err.splitlines()[-1]
    assert out.read_bytes() == b"the previous output" and sorted(tmp_path.iterdir()) == [out]
    with pytest.raises(OSError):
        main(["--debug", "rescale", str(cell_dir / "tomogram.mrc"), str(out), "--to", "18"])


def test_a_disk_too_small_for_the_output_is_found_before_any_work(cell_dir, tmp_path, capsys,
                                                                   monkeypatch):
    """Outputs written through memory maps are sparse: on a full disk the process died of SIGBUS
    half-way. Now the space is reserved first, and a full disk is one line naming the output."""
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "pre.mrc"
    assert main(["preprocess", str(cell_dir / "tomogram.mrc"), str(out)]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert f"'{out}': No space left on device: 0.00 GiB are needed; the disk is full" in err
    assert list(tmp_path.iterdir()) == []


def test_system_errors_name_the_file_and_lost_workers_say_rerun(tmp_path, capsys, monkeypatch):
    from distributed.client import FutureCancelledError

    import tomowidgets.cli as cli

    for error, expected in ((PermissionError(errno.EACCES, "Permission denied", "/data/out.mrc"),
                             "'/data/out.mrc': Permission denied; permission denied: write elsewhere"),
                            (OSError(errno.EROFS, "Read-only file system", "/ro/x.mrc"),
                             "'/ro/x.mrc': Read-only file system; the file system is read-only"),
                            (OverflowError("negative dimensions are not allowed"), "negative dimensions"),
                            (FutureCancelledError("apply-slab-3", "lost"), "run again to resume")):
        def fail(args, error=error):
            raise error

        monkeypatch.setattr(cli, "cmd_info", fail)
        assert main(["info", str(tmp_path / "x.mrc")]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tomowidgets info: error: ") and expected in err and err.count("\n") == 1


def test_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    import tomowidgets.io as twio

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))[1])
    with twio.atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"data")
    assert events == ["fsync", "rename", "fsync"] and (tmp_path / "a.bin").read_bytes() == b"data"


def test_preprocess_rejects_a_lowpass_below_nyquist(cell_dir, capsys):
    code = main(["preprocess", str(cell_dir / "tomogram.mrc"), str(cell_dir / "x.mrc"), "--lowpass", "10"])
    assert code == 1
    assert "Nyquist" in capsys.readouterr().err
    assert not (cell_dir / "x.mrc").exists()


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "tomowidgets" in capsys.readouterr().out


@pytest.fixture(scope="module")
def score_files(tmp_path_factory, small_cell):
    """Ground-truth labels of a small cell, smoothed into score maps that peak above 1."""
    from scipy import ndimage

    out = tmp_path_factory.mktemp("scores")
    cell = small_cell
    paths = {}
    for feature in ("membrane", "ribosome"):
        scores = 2.0 * ndimage.gaussian_filter(cell.labels[feature].astype(np.float32), 2.0)
        paths[feature] = tw.write_tomogram(out / f"cell.{feature}.mrc", scores, apix=10.0)
    tw.write_tomogram(out / "cell.mrc", cell.tomogram)
    return out, paths, cell


def test_merge_command_names_features_from_file_names_or_name_equals_file(score_files):
    out, paths, cell = score_files
    assert main(["merge", str(paths["membrane"]), f"ribo={paths['ribosome']}", "-o",
                 str(out / "labels.mrc")]) == 0
    labels = tw.LabelMap.load(out / "labels.mrc")
    assert labels.names == ("membrane", "ribo")
    assert labels.apix == pytest.approx(10.0)
    assert np.mean(labels.mask("ribo")[cell.labels["ribosome"]]) > 0.5
    assert not labels.mask("ribo")[cell.labels["membrane"]].any()


def test_merge_command_with_hysteresis_labels_more_of_the_same_structures(score_files):
    out, paths, cell = score_files
    args = ["merge", str(paths["membrane"]), str(paths["ribosome"]), "-o"]
    assert main([*args, str(out / "plain.mrc"), "--hysteresis", "off"]) == 0
    assert main([*args, str(out / "grown.mrc"), "--hysteresis", "0.5"]) == 0
    assert main([*args, str(out / "default.mrc")]) == 0
    plain, grown, default = (tw.LabelMap.load(out / f"{n}.mrc").mask("membrane")
                             for n in ("plain", "grown", "default"))
    assert grown.sum() > plain.sum() and grown[plain].all()
    np.testing.assert_array_equal(default, grown)                 # hysteresis 0.5 is the default


def test_merge_command_votes_between_the_membranes_unless_told_off(tmp_path, capsys):
    # one ring that both membrane networks call, the double-membrane one on a third of it
    y, x = np.mgrid[:24, :24]
    ring = np.abs(np.hypot(y - 10, x - 10) - 5) < 0.7
    maps = {"membrane": np.where(ring, 2.0, 0.0), "double_membrane": np.where(ring & (x > 12), 3.0, 0.0)}
    for name, scores in maps.items():
        tw.write_tomogram(tmp_path / f"cell.{name}.mrc", scores[None].astype(np.float32), apix=10.0)
    args = ["merge", str(tmp_path / "cell.membrane.mrc"), str(tmp_path / "cell.double_membrane.mrc"), "-o"]
    assert main([*args, str(tmp_path / "voted.mrc")]) == 0
    assert main([*args, str(tmp_path / "split.mrc"), "--vote", "off"]) == 0
    assert main([*args, str(tmp_path / "named.mrc"), "--vote", "double_membrane,membrane"]) == 0
    voted, split, named = (np.asarray(tw.LabelMap.load(tmp_path / f"{n}.mrc").data)[0]
                           for n in ("voted", "split", "named"))
    assert set(np.unique(split[ring])) == {1, 2}
    assert np.all(voted[ring] == 1)
    np.testing.assert_array_equal(named, voted)
    with pytest.raises(SystemExit):
        main([*args, str(tmp_path / "bad.mrc"), "--vote", "membrane"])
    assert "feature names joined by commas" in capsys.readouterr().err


def test_merge_command_thins_the_membranes_unless_told_off(tmp_path):
    # a membrane scored 16 at its peak, falling off as a Gaussian of sd 2 voxels across x
    x = np.arange(30)
    scores = np.broadcast_to(16 * np.exp(-(x - 15) ** 2 / 8), (1, 20, 30)).astype(np.float32)
    tw.write_tomogram(tmp_path / "cell.membrane.mrc", scores, apix=10.0)
    args = ["merge", str(tmp_path / "cell.membrane.mrc"), "-o"]
    assert main([*args, str(tmp_path / "thin.mrc")]) == 0
    assert main([*args, str(tmp_path / "wide.mrc"), "--thin", "off"]) == 0
    assert main([*args, str(tmp_path / "named.mrc"), "--thin", "membrane", "cilium"]) == 0
    thin, wide, named = (tw.LabelMap.load(tmp_path / f"{n}.mrc").mask("membrane")[0, 10]
                         for n in ("thin", "wide", "named"))
    assert thin.sum() == 5 and wide.sum() == 11                  # the width at half maximum (4.7)
    np.testing.assert_array_equal(named, thin)


def test_merge_command_leaves_pieces_far_wider_than_a_tube_unless_told_off(tmp_path):
    # a microtubule network scoring 2 on a ring of radius 40 voxels at 10 Å (a small mitochondrion)
    yy, xx = np.mgrid[:100, :100]
    ring = np.abs(np.hypot(yy - 50, xx - 50) - 40) <= 4
    tw.write_tomogram(tmp_path / "cell.microtubule.mrc", 2.0 * ring[np.newaxis], apix=10.0)
    args = ["merge", str(tmp_path / "cell.microtubule.mrc"), "-o"]
    assert main([*args, str(tmp_path / "cut.mrc")]) == 0
    assert main([*args, str(tmp_path / "kept.mrc"), "--filaments", "off"]) == 0
    assert main([*args, str(tmp_path / "named.mrc"), "--filaments", "microtubule", "actin"]) == 0
    cut, kept, named = (tw.LabelMap.load(tmp_path / f"{n}.mrc").mask("microtubule")[0]
                        for n in ("cut", "kept", "named"))
    assert not cut.any() and not named.any()
    np.testing.assert_array_equal(kept, ring)


def test_merge_command_leaves_a_filament_flanked_by_other_calls_unless_told_off(tmp_path):
    # a double membrane scoring 1.2 on a ring, a microtubule network 2.0 on a 30° arc of it
    yy, xx = np.mgrid[:100, :100]
    ring = np.abs(np.hypot(yy - 50, xx - 50) - 40) <= 4
    arc = ring & (np.abs(np.arctan2(yy - 50, xx - 50)) >= np.radians(165))
    for name, scores in (("microtubule", 2.0 * arc), ("double_membrane", 1.2 * ring)):
        tw.write_tomogram(tmp_path / f"cell.{name}.mrc", scores[np.newaxis], apix=10.0)
    args = ["merge", str(tmp_path / "cell.microtubule.mrc"), str(tmp_path / "cell.double_membrane.mrc"), "-o"]
    assert main([*args, str(tmp_path / "given.mrc")]) == 0
    assert main([*args, str(tmp_path / "kept.mrc"), "--filament-contact", "off"]) == 0
    assert main([*args, str(tmp_path / "loose.mrc"), "--filament-contact", "0.9"]) == 0
    given, kept, loose = (tw.LabelMap.load(tmp_path / f"{n}.mrc").mask("microtubule")[0]
                          for n in ("given", "kept", "loose"))
    assert not given.any()
    np.testing.assert_array_equal(kept, arc)
    np.testing.assert_array_equal(loose, arc)


def test_pick_command_writes_a_star_file_that_reads_back_at_the_ribosomes(score_files):
    out, paths, cell = score_files
    assert main(["pick", str(paths["ribosome"]), "-o", str(out / "picks.star")]) == 0
    picks = tw.read_particles(out / "picks.star")
    truth = cell.particles[cell.particles["feature"] == "ribosome"]
    assert len(picks) == len(truth)
    assert set(picks["feature"]) == {"ribosome"}
    assert set(picks["tomogram"]) == {"cell"}       # the tomogram's name (cell.mrc), for tomograms.star
    assert main(["pick", str(paths["membrane"]), "-o", str(out / "seeds.csv"), "--spacing", "10"]) == 0
    seeds = tw.read_particles(out / "seeds.csv")
    assert len(seeds) > 10 and (cell.labels["membrane"] | (
        tw.read_tomogram(paths["membrane"]).data >= 1))[
        tuple(seeds[["z", "y", "x"]].round().astype(int).to_numpy().T)].all()


def test_pick_command_grows_regions_unless_hysteresis_is_off(tmp_path, capsys):
    r2 = sum((g - 20.0) ** 2 for g in np.indices((40, 40, 40), dtype=np.float32))
    tw.write_tomogram(tmp_path / "cell.ribosome.mrc", 1.2 * np.exp(-r2 / 72), apix=10.0)  # core < 300 voxels
    args = ["pick", str(tmp_path / "cell.ribosome.mrc"), "-o"]
    assert main([*args, str(tmp_path / "grown.csv")]) == 0
    assert main([*args, str(tmp_path / "core.csv"), "--hysteresis", "off"]) == 0
    assert main([*args, str(tmp_path / "small.csv"), "--hysteresis", "off", "--min-size", "100"]) == 0
    assert [len(tw.read_particles(tmp_path / f"{n}.csv")) for n in ("grown", "core", "small")] == [1, 0, 1]
    capsys.readouterr()
    assert main([*args, str(tmp_path / "bad.csv"), "--hysteresis", "2"]) == 1
    assert "`hysteresis` must be a fraction" in capsys.readouterr().err


def test_pick_command_drops_regions_small_against_the_median_unless_told_off(tmp_path, capsys):
    # three ribosome-sized particles (~3000 voxels above 0.4) and one complex of ~600
    grid = np.indices((40, 40, 160), dtype=np.float32)
    blobs = [1.5 * np.exp(-((grid[0] - 20) ** 2 + (grid[1] - 20) ** 2 + (grid[2] - x) ** 2) / (2 * sd**2))
             for x, sd in ((20, 5.5), (60, 5.5), (100, 3.2), (140, 5.5))]
    tw.write_tomogram(tmp_path / "cell.ribosome.mrc", np.max(blobs, axis=0), apix=10.0)
    args = ["pick", str(tmp_path / "cell.ribosome.mrc"), "-o"]
    assert main([*args, str(tmp_path / "relative.csv")]) == 0
    assert main([*args, str(tmp_path / "every.csv"), "--min-relative-size", "off"]) == 0
    assert main([*args, str(tmp_path / "some.csv"), "--min-relative-size", "0.1"]) == 0
    picked = {n: sorted(tw.read_particles(tmp_path / f"{n}.csv")["x"].round())
              for n in ("relative", "every", "some")}
    assert picked == {"relative": [20, 60, 140], "every": [20, 60, 100, 140], "some": [20, 60, 100, 140]}
    capsys.readouterr()
    assert main([*args, str(tmp_path / "bad.csv"), "--min-relative-size", "2"]) == 1
    assert "`min_relative_size` must be a fraction" in capsys.readouterr().err


def test_pick_command_lowers_the_threshold_where_the_picks_score_low_unless_told_off(tmp_path, capsys):
    # six particles that a network calls weakly on this tomogram: peaks 1.2 to 0.96, cores ~0.85
    grid = np.indices((30, 30, 180), dtype=np.float32)
    blobs = [peak * np.exp(-((grid[0] - 15) ** 2 + (grid[1] - 15) ** 2 + (grid[2] - 30 * i - 15) ** 2) / 50)
             for i, peak in enumerate((1.2, 1.2, 1.04, 1.04, 0.96, 0.96))]
    tw.write_tomogram(tmp_path / "cell.ribosome.mrc", np.max(blobs, axis=0), apix=10.0)
    args = ["pick", str(tmp_path / "cell.ribosome.mrc"), "-o"]
    capsys.readouterr()
    assert main([*args, str(tmp_path / "lowered.csv")]) == 0
    assert "threshold lowered from 1 to 0.5" in capsys.readouterr().out
    assert main([*args, str(tmp_path / "given.csv"), "--core-score", "off"]) == 0
    assert "lowered" not in capsys.readouterr().out
    assert [len(tw.read_particles(tmp_path / f"{n}.csv")) for n in ("lowered", "given")] == [6, 4]
    assert main([*args, str(tmp_path / "bad.csv"), "--core-score", "-1"]) == 1
    assert "`core_score` must be a finite number >= 0" in capsys.readouterr().err


def test_pick_command_orients_seeds_along_membrane_normals_and_filaments(score_files, tmp_path):
    out, paths, cell = score_files
    assert main(["pick", str(paths["membrane"]), "-o", str(tmp_path / "normals.star"), "--spacing", "10",
                 "--orient", "normal"]) == 0
    seeds = tw.read_particles(tmp_path / "normals.star")
    assert len(seeds) > 10 and {"tilt_prior", "psi_prior"} <= set(seeds.columns)
    assert "_rlnAngleTiltPrior" in (tmp_path / "normals.star").read_text()
    tube = np.zeros((24, 64, 64), np.float32)
    tube[10:14, 30:34, 4:60] = 2.0                                  # a solid rod along x
    tw.write_tomogram(tmp_path / "rod.actin.mrc", tube, apix=10.0)
    assert main(["pick", str(tmp_path / "rod.actin.mrc"), "-o", str(tmp_path / "rod.csv"),
                 "--spacing", "8", "--orient", "filament"]) == 0
    seeds = tw.read_particles(tmp_path / "rod.csv")
    assert (seeds["filament"] == 1).all() and len(seeds) >= 6
    assert np.allclose(seeds["tilt"], 90.0, atol=2) and seeds["tomogram"].iloc[0] == "rod"
    assert main(["pick", str(tmp_path / "rod.actin.mrc"), "-o", str(tmp_path / "x.csv"),
                 "--orient", "filament"]) == 1
    assert main(["pick", str(tmp_path / "rod.actin.mrc"), "-o", str(tmp_path / "long.star"),
                 "--orient", "axis", "--axis-radius", "300", "--min-size", "50"]) == 0
    picks = tw.read_particles(tmp_path / "long.star")
    assert len(picks) >= 1 and np.allclose(picks["tilt"], 90.0, atol=2)   # the rod lies along x


def test_average_command_writes_the_map_fsc_and_oriented_particles(score_files, capsys):
    out, paths, cell = score_files
    truth = cell.particles[cell.particles["feature"] == "ribosome"].assign(tomogram="cell", score=1.0)
    tw.write_particles(out / "truth.star", truth, apix=10.0, shape=cell.shape)
    assert main(["average", str(out / "cell.mrc"), str(out / "truth.star"), "-o",
                 str(out / "avg.mrc"), "--box", "24", "--iterations", "2"]) == 0
    assert tw.read_tomogram(out / "avg.mrc").shape == (24, 24, 24)
    assert (out / "avg_fsc.csv").read_text().startswith("frequency_per_angstrom,fsc")
    oriented = tw.read_particles(out / "avg_particles.star")
    assert {"rot", "tilt", "psi"} <= set(oriented.columns)
    captured = capsys.readouterr()
    assert "AverageResult(7 particles" in captured.out and "Å" in captured.out  # edge boxes padded
    assert main(["average", str(out / "cell.mrc"), str(out / "truth.star"), "-o", str(out / "avg.mrc"),
                 "--box", "24", "--iterations", "2", "--skip-edges"]) == 0
    captured = capsys.readouterr()
    assert "AverageResult(5 particles" in captured.out and "skipped 2 of 7 particles" in captured.err
    truth.iloc[:3].to_csv(out / "three.csv", index=False)
    assert main(["average", str(out / "cell.mrc"), str(out / "three.csv"), "-o", str(out / "a.mrc"),
                 "--box", "24"]) == 1
    assert "three.csv' in '" in capsys.readouterr().err and not (out / "a.mrc").exists()


def test_info_statistics_are_exact_for_a_known_volume(tmp_path, capsys):
    volume = np.arange(2 * 20 * 30, dtype=np.float32).reshape(40, 3, 10) / 7.0
    tw.write_tomogram(tmp_path / "known.mrc", volume, apix=5.0)
    assert main(["info", str(tmp_path / "known.mrc")]) == 0
    text = capsys.readouterr().out
    for name, value in (("min", volume.min()), ("max", volume.max()), ("mean", volume.mean()),
                        ("sd", volume.std())):
        assert f"{name} = {value:.4g}" in text
