"""The reliability report: a network judged on tiles it did not train on, with advice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tensorflow

from tomowidgets.io import Tomogram  # noqa: E402
from tomowidgets.network import FeatureNet, Reliability, assess, check_reliability  # noqa: E402
from tomowidgets.trainset import TrainingSet  # noqa: E402

TILE = 32
_YY, _XX = np.mgrid[:TILE, :TILE]
DISK = (_YY - 16) ** 2 + (_XX - 16) ** 2 < 36          # radius 6 px at the tile centre
SQUARE = (abs(_YY - 16) < 6) & (abs(_XX - 16) < 6)


def tiles_of(shapes: list[str], *, seed: int, feature: str = "disk") -> TrainingSet:
    """One slice per tile in a noise tomogram: 'disk' (bright, painted: positive), 'dark' (a dark
    disk, painted: positive), 'square' (bright, not painted: negative) or 'noise' (negative)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(len(shapes), 64, 64)).astype(np.float32)
    for z, shape in enumerate(shapes):
        where = {"disk": DISK, "dark": DISK, "square": SQUARE}.get(shape)
        if where is not None:
            data[z, 16:48, 16:48] += (-2.0 if shape == "dark" else 2.0) * where
    tomo = Tomogram(data, apix=10.0)
    ts = TrainingSet(TILE, feature=feature)
    for z, shape in enumerate(shapes):
        if shape in ("disk", "dark"):
            ts.add_positive(tomo, z, 32, 32, DISK)
        else:
            ts.add_negative(tomo, z, 32, 32)
    return ts


@pytest.fixture(scope="module")
def disk_net():
    ts = tiles_of(["disk"] * 10 + ["noise"] * 20, seed=0)
    net = FeatureNet("disk", seed=1)
    net.train(ts, epochs=6, batch_size=10, progress=False)
    return net, ts


def test_a_network_that_learned_its_feature_is_reliable(disk_net, tmp_path):
    net, ts = disk_net
    report = check_reliability(net, ts, progress=False)
    assert report.verdict == "reliable", str(report)
    assert report.dice > 0.7 and report.false_calls < 0.02 and report.agreement > 0.7
    assert (report.n_positive, report.n_negative) == (2, 4)      # a fifth of 10 and of 20
    assert report.response == net.calibration["mean"] and net.reliability is report
    assert "disk network: reliable" in str(report) and "reliable" in repr(net)
    loaded = FeatureNet.load(net.save(tmp_path / "disk.keras"))     # kept in the network file
    assert loaded.reliability == report
    assert Reliability.from_dict(report.to_dict()) == report


def test_false_calls_and_misses_name_the_tiles_to_add(disk_net):
    net, _ = disk_net
    # judged on tiles unlike its training: bright squares it was never told are not disks, and
    # dark disks it never saw
    judge = tiles_of(["disk", "dark", "dark", "square", "noise", "square"], seed=5)
    report = assess(net, judge)
    assert report.verdict == "weak"
    assert report.recall < 0.7 and report.false_calls > 0.02
    assert [t["centre"] for t in report.missed] == [[1, 32, 32], [2, 32, 32]]
    assert report.false_tiles[0]["centre"][0] in (3, 5) and len(report.false_tiles) == 2
    advice = " ".join(report.advice)
    assert "misses the disk" in advice and "add positive tiles like these" in advice
    assert "fires on" in advice and "add negative tiles" in advice
    assert "z=3" in advice or "z=5" in advice


def test_agreement_between_seeds_is_measured_and_judged():
    from tomowidgets.network.reliability import _judged

    ts = tiles_of(["disk"] * 3 + ["noise"] * 5, seed=2)
    a, same = FeatureNet("disk", seed=0), FeatureNet("disk", seed=0)
    for net in (a, same):
        net.train(ts, epochs=6, batch_size=10, progress=False)
    report = assess(a, ts, other=same)
    assert report.agreement == pytest.approx(1.0)        # the same seed trains the same weights
    chance = _judged(Reliability(**{**report.to_dict(), "agreement": 0.3}), response=a.calibration["mean"])
    assert chance.verdict == "weak" and "agree on 30%" in " ".join(chance.advice)


@pytest.mark.parametrize(("feature", "along", "told"), [
    ("microtubule", "y", True),        # every painted tube along the tilt axis
    ("microtubule", "x", False),       # across it
    ("membrane", "y", False),          # not a filament
])
def test_filaments_painted_only_along_the_tilt_axis_are_pointed_out(feature, along, told):
    band = (abs(_XX - 16) < 3) if along == "y" else (abs(_YY - 16) < 3)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(30, 64, 64)).astype(np.float32)
    data[:10, 16:48, 16:48] += 2.0 * band
    tomo = Tomogram(data, apix=10.0)
    ts = TrainingSet(TILE, feature=feature)
    for z in range(30):
        ts.add_positive(tomo, z, 32, 32, band) if z < 10 else ts.add_negative(tomo, z, 32, 32)
    net = FeatureNet(feature, seed=1)
    net.train(ts, epochs=6, batch_size=10, progress=False)
    report = check_reliability(net, ts, progress=False)
    assert report.verdict == "reliable", str(report)      # advice about coverage, not a verdict
    assert ("leave out filaments across the tilt axis" in str(report)) is told


def test_a_network_that_learned_nothing_fails():
    ts = tiles_of(["disk"] * 2 + ["noise"] * 2, seed=3)
    net = FeatureNet("disk")
    net.model.get_layer("conv3").bias.assign([-0.5])
    with pytest.warns(RuntimeWarning, match="learned nothing"):
        net.train(ts, epochs=1, learning_rate=1e-9, progress=False)
    report = assess(net, ts)
    assert report.verdict == "failed" and "learned nothing" in report.advice[0]


def test_training_again_clears_the_report(disk_net):
    net, ts = disk_net
    twin = FeatureNet("disk", seed=1)
    twin.train(ts, epochs=1, batch_size=10, progress=False)
    twin.reliability = Reliability("disk", "reliable")
    twin.train(ts, epochs=1, batch_size=10, progress=False)
    assert twin.reliability is None


def test_bad_requests_say_what_to_do(disk_net):
    net, ts = disk_net
    with pytest.raises(ValueError, match="not trained yet"):
        check_reliability(FeatureNet("disk"), ts)
    with pytest.raises(ValueError, match="TrainingSet"):
        check_reliability(net, (np.zeros((2, TILE, TILE)), np.zeros((2, 16, 16))))
    one = tiles_of(["disk", "noise", "noise"], seed=4)
    with pytest.raises(ValueError, match="1 painted positive tile.*at least 2"):
        check_reliability(net, one)
    with pytest.raises(ValueError, match="no painted positive tile"):
        assess(net, tiles_of(["noise", "square"], seed=4))


def test_the_cli_checks_prints_advice_and_keeps_the_report(tmp_path, capsys):
    from tomowidgets.cli import main

    tiles = tiles_of(["disk"] * 10 + ["noise"] * 20, seed=0).save(tmp_path / "disk.tiles.npz")
    out = tmp_path / "disk.keras"
    assert main(["train", str(tiles), "-o", str(out), "--epochs", "6", "--batch-size", "10",
                 "--check"]) == 0
    printed = capsys.readouterr().out
    assert "disk network: reliable" in printed and "report saved in" in printed
    assert main(["info", str(out)]) == 0
    assert "disk network: reliable" in capsys.readouterr().out
    # too few positives to hold one out: one line naming the problem, the network still saved
    one = tiles_of(["disk", "noise", "noise"], seed=4).save(tmp_path / "one.tiles.npz")
    assert main(["train", str(one), "-o", str(tmp_path / "one.keras"), "--epochs", "1",
                 "--calibration", "dice", "--check"]) == 1
    err = capsys.readouterr().err
    assert "at least 2" in err and "Traceback" not in err and (tmp_path / "one.keras").is_file()
    from tomowidgets.network import read_metadata

    assert read_metadata(tmp_path / "one.keras")["calibration"]["method"] == "dice"


def test_the_cli_trains_a_network_that_competes_with_other_features(tmp_path, capsys):
    from tomowidgets.cli import main
    from tomowidgets.network import read_metadata

    disks = tiles_of(["disk"] * 4 + ["noise"] * 8, seed=0).save(tmp_path / "disk.tiles.npz")
    dark = tiles_of(["noise"] * 4 + ["dark"] * 3, seed=1, feature="dark").save(tmp_path / "dark.tiles.npz")
    out = tmp_path / "disk.keras"
    assert main(["train", str(disks), "-o", str(out), "--epochs", "2", "--batch-size", "10",
                 "--compete", str(dark), "--scale", "0.1"]) == 0
    assert "competing with dark.tiles.npz" in capsys.readouterr().out
    assert read_metadata(out)["training"]["scale"] == 0.1
    trained_on = read_metadata(out)["training"]["trainset"]
    assert (trained_on["n_positive"], trained_on["n_negative"]) == (4, 8 + 3)  # dark disks borrowed
    assert "turns" not in read_metadata(out)["calibration"]


def test_the_cli_calibrates_a_network_for_test_time_turns(tmp_path, monkeypatch, capsys):
    from tomowidgets.cli import main
    from tomowidgets.network import FeatureNet, read_metadata

    disks = tiles_of(["disk"] * 4 + ["noise"] * 4, seed=0).save(tmp_path / "disk.tiles.npz")
    out = tmp_path / "disk.keras"
    assert main(["train", str(disks), "-o", str(out), "--epochs", "1", "--batch-size", "10",
                 "--turns", "4"]) == 0
    assert read_metadata(out)["calibration"]["turns"] == 4
    monkeypatch.setattr(FeatureNet, "train", lambda *a, **k: pytest.fail("trained before checking"))
    assert main(["train", str(disks), "-o", str(tmp_path / "no.keras"), "--turns", "5"]) == 1
    assert "`turns` must be an integer from 1" in capsys.readouterr().err
