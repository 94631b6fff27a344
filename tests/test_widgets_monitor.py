"""TrainingMonitor driven through train()/start()/stop() and its controls; state checked in its runs."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from tomowidgets import FeatureNet, Tomogram, TrainingSet
from tomowidgets.widgets import TrainingMonitor
from tomowidgets.widgets.training_monitor import _preview_tiles

TILE = 16


@pytest.fixture
def ts():
    """Three positive tiles with a bright disk and three negatives, 16×16 (trains in milliseconds)."""
    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 96, 96)).astype(np.float32)
    yy, xx = np.mgrid[:96, :96]
    data[:, (yy - 48) ** 2 + (xx - 48) ** 2 < 36] += 2.0
    tomo = Tomogram(data, apix=10.0)
    ts = TrainingSet(TILE, feature="disk")
    ty, tx = np.mgrid[:TILE, :TILE]
    mask = (ty - 8) ** 2 + (tx - 8) ** 2 < 36
    for z in range(3):
        ts.add_positive(tomo, z, 48, 48, mask)
        ts.add_negative(tomo, z, 16, 16)
    return ts


def small_net() -> FeatureNet:
    return FeatureNet("disk", seed=0, filters=4, kernel_size=5)


# -- without TensorFlow: the thread, the status line and the controls, with a stand-in train() ----
class FakeNet:
    """Stands in for FeatureNet: records the keywords of train() and can warn or fail."""

    def __init__(self, *, warn: str | None = None, fail: Exception | None = None) -> None:
        self.history = {"loss": [], "learning_rate": [], "time": []}
        self.amplitude = None
        self.reliability = None
        self.stop_training = False
        self.calls: list[dict] = []
        self.warn, self.fail = warn, fail

    def train(self, ts, **options):
        self.calls.append(options)
        if self.fail is not None:
            raise self.fail
        run = {"loss": [], "learning_rate": [], "time": []}
        for epoch in range(options["epochs"]):
            logs = {"loss": 1.0 / (epoch + 1), "learning_rate": options["learning_rate"]}
            for key in run:
                run[key].append(logs.get(key, 0.01))
            if any(cb(epoch, dict(logs)) is False for cb in options["callbacks"]) or self.stop_training:
                break
        if self.warn:
            warnings.warn(self.warn, RuntimeWarning, stacklevel=2)
        for key in run:
            self.history[key] += run[key]
        return run

    def predict(self, tiles, *, raw=False, unbin=False):
        return np.full(np.shape(tiles), 0.5, np.float32)


def test_controls_become_the_train_keywords(ts):
    net = FakeNet()
    monitor = TrainingMonitor(net, ts, epochs=3, batch_size=7, copies=4, seed=5)
    monitor.learning_rate.value = 0.001
    monitor.l1.value = 0.0
    run = monitor.train(block=True)
    options = net.calls[0]
    assert {k: options[k] for k in ("epochs", "batch_size", "copies", "l1", "seed", "reset")} == {
        "epochs": 3, "batch_size": 7, "copies": 4, "l1": 0.0, "seed": 5, "reset": False}
    assert options["learning_rate"] == pytest.approx(0.001) and options["progress"] is False
    assert run["status"] == "done" and run["history"]["loss"] == [1.0, 0.5, 1 / 3]
    assert "network output (raw, 0 to 0.5)" in monitor.caption.value   # the stand-in predicts 0.5
    monitor.copies.value = 0                        # 0 in the control: balance (None)
    assert monitor.settings["copies"] is None


def test_other_train_keywords_are_passed_through(ts):
    net = FakeNet()
    TrainingMonitor(net, ts, epochs=1, negative_copies=3).train()
    assert net.calls[0]["negative_copies"] == 3
    with pytest.raises(ValueError, match=r"\['reset'\] cannot be passed"):
        TrainingMonitor(net, ts, reset=True)


def test_a_warning_of_the_run_is_shown_in_the_status_line(ts):
    monitor = TrainingMonitor(FakeNet(warn="the 'disk' network learned nothing"), ts, epochs=2)
    run = monitor.train()
    assert run["status"] == "done"
    assert "learned nothing" in monitor.status.message and "⚠" in monitor.status.value
    assert not monitor.running and not monitor.train_button.disabled and monitor.stop_button.disabled


def test_an_error_in_the_training_thread_is_shown_not_lost(ts):
    monitor = TrainingMonitor(FakeNet(fail=ValueError("the training set has no annotated pixel")), ts)
    run = monitor.train()
    assert run["status"] == "failed" and "no annotated pixel" in run["error"]
    assert isinstance(monitor.status.last_error, ValueError)
    assert not monitor.train_button.disabled            # ready for another try


def test_invalid_settings_are_refused_before_a_thread_starts(ts):
    monitor = TrainingMonitor(FakeNet(), ts, engine="gpu")
    monitor.train_button.click()
    assert "`engine` must be one of" in monitor.status.message
    assert monitor.runs == [] and not monitor.running
    with pytest.raises(ValueError, match="engine"):
        monitor.train()


def test_preview_tiles_put_positives_first_for_sets_and_arrays(ts):
    images, masks = _preview_tiles(ts, 4)
    assert images.shape == (4, TILE, TILE) and masks[:3].any(axis=(1, 2)).all() and not masks[3].any()
    x = np.zeros((3, 8, 8), np.float32)
    y = np.zeros((3, 4, 4), np.float32)
    y[2, 1, 1] = 1.0
    images, masks = _preview_tiles((x, y), 2)
    assert masks.shape == (2, 8, 8) and masks[0, 2:4, 2:4].all() and masks[0].sum() == 4


# -- with TensorFlow: real training ---------------------------------------------------------------
@pytest.mark.tensorflow
def test_one_epoch_adds_a_run_and_redraws_the_plot(ts):
    pytest.importorskip("tensorflow")
    net = small_net()
    monitor = TrainingMonitor(net, ts, epochs=1, batch_size=4)
    plot, n_plots, n_previews = monitor.plot.value, monitor.n_plots, monitor.n_previews
    assert "before training" in monitor.caption.value
    run = monitor.train(block=True)
    assert monitor.runs == [run] and run["status"] == "done" and run["error"] is None
    assert len(run["history"]["loss"]) == 1 and np.isfinite(run["history"]["loss"]).all()
    assert run["settings"]["epochs"] == 1 and run["start"] == 0
    assert net.history["loss"] == run["history"]["loss"]
    assert monitor.n_plots > n_plots and monitor.plot.value != plot
    assert monitor.n_previews > n_previews and "before training" not in monitor.caption.value
    assert bytes(monitor.plot.value[:4]) == b"\x89PNG" and bytes(monitor.preview.value[:4]) == b"\x89PNG"
    assert "run #1 done after 1 epoch" in monitor.status.message   # (maybe with a warning after it)


@pytest.mark.tensorflow
def test_retraining_with_other_settings_keeps_both_runs(ts):
    pytest.importorskip("tensorflow")
    net = small_net()
    monitor = TrainingMonitor(net, ts, epochs=1, batch_size=4)
    monitor.train()
    monitor.learning_rate.value = 0.003
    monitor.epochs.value = 2
    second = monitor.train()                       # continues from the weights of run 1
    monitor.reset.value = True
    third = monitor.train()                        # from scratch
    runs = monitor.runs
    assert len(runs) == 3 and [len(r["history"]["loss"]) for r in runs] == [1, 2, 2]
    assert runs[0]["settings"]["learning_rate"] == pytest.approx(0.01)
    assert second["settings"]["learning_rate"] == pytest.approx(0.003) and second["start"] == 1
    assert third["start"] == 0 and len(net.history["loss"]) == 2


@pytest.mark.tensorflow
def test_stop_during_a_run_ends_it_early(ts):
    pytest.importorskip("tensorflow")
    net = small_net()
    monitor = TrainingMonitor(net, ts, epochs=5, batch_size=4)
    reached, go = threading.Event(), threading.Event()

    @monitor.on_epoch
    def hold_first_epoch(epoch, logs):
        if epoch == 0:
            reached.set()
            go.wait(60)

    monitor.start()
    assert reached.wait(60), "the first epoch never ended"
    assert monitor.running and monitor.train_button.disabled and not monitor.stop_button.disabled
    with pytest.raises(RuntimeError, match="in progress"):
        monitor.start()
    monitor.stop_button.click()
    go.set()
    run = monitor.wait(60)
    assert not monitor.running and run["status"] == "stopped"
    assert len(run["history"]["loss"]) == 1 < 5
    assert not monitor.stop() and "no training run" in monitor.status.message


@pytest.mark.tensorflow
def test_awaiting_a_run_lets_a_click_on_stop_through(ts):
    # #20, 5: a notebook cell that awaits finished() leaves the event loop free for the widgets'
    # messages; here the "click" is a task on the same loop, as the kernel dispatches it
    pytest.importorskip("tensorflow")
    import asyncio

    monitor = TrainingMonitor(small_net(), ts, epochs=200, batch_size=4)
    first = threading.Event()
    monitor.on_epoch(lambda epoch, logs: first.set())

    async def cell_with_a_click():
        async def click_stop():
            while not first.is_set():
                await asyncio.sleep(0.05)
            monitor.stop_button.click()

        click = asyncio.ensure_future(click_stop())
        run = await monitor.finished()
        await click
        return run

    monitor.start()
    run = asyncio.run(cell_with_a_click())
    assert run["status"] == "stopped" and 1 <= len(run["history"]["loss"]) < 200
    assert asyncio.run(monitor.finished(timeout=1)) is run     # nothing running: at once


@pytest.mark.tensorflow
def test_check_shows_the_reliability_report_and_a_new_run_clears_it(ts):
    pytest.importorskip("tensorflow")
    net = FeatureNet("disk", seed=0)          # the small twin would learn nothing from 4 tiles
    monitor = TrainingMonitor(net, ts, epochs=5, batch_size=4)
    assert monitor.check_button.disabled                       # nothing to judge yet
    with pytest.raises(ValueError, match="train the network first"):
        monitor.check()
    monitor.train()
    assert not monitor.check_button.disabled
    monitor.check_button.click()
    monitor.wait(120)
    report = net.reliability
    assert report is not None and report.n_positive == 1 and report.n_negative == 1
    assert f"disk network: {report.verdict}" in monitor.report.value and "<li>" in monitor.report.value
    assert f"is {report.verdict}" in monitor.status.message
    assert TrainingMonitor(net, ts).report.value == monitor.report.value   # shown again later
    monitor.train()
    assert monitor.report.value == "" and net.reliability is None
    arrays = TrainingMonitor(net, (np.zeros((2, TILE, TILE)), np.ones((2, TILE // 2, TILE // 2))))
    with pytest.raises(ValueError, match="TrainingSet"):
        arrays.check()
