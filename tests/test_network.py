"""The paper's network: architecture, loss, FFT training path, training, calibration, files."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tomowidgets import network
from tomowidgets.network import FeatureNet, read_metadata, read_weights
from tomowidgets.network.netfile import read_network

TILE = 32  # small tiles keep the tests fast; the network is fully convolutional


def disks(n_pos: int = 10, n_neg: int = 20, *, size: int = TILE, amp: float = 1.5, seed: int = 0):
    """Noise tiles, the first `n_pos` with a bright disk of radius 5-7 px and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    x = rng.normal(size=(n_pos + n_neg, size, size)).astype(np.float32)
    masks = np.zeros(x.shape, bool)
    for i in range(n_pos):
        cy, cx = rng.uniform(size / 2 - 4, size / 2 + 4, 2)
        masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(5, 7) ** 2
        x[i] += amp * masks[i]
    y = masks.reshape(-1, size // 2, 2, size // 2, 2).mean(axis=(2, 4)).astype(np.float32)
    return x, y


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter; return its stdout (fails the test on error)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_does_not_load_tensorflow():
    out = run_python("import sys, tomowidgets.network as n; n.read_metadata; "
                     "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert out.split() == ["False", "False"]


# -- everything below needs TensorFlow -----------------------------------------------------------
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A network trained on easy disks, its training arrays and its saved file."""
    x, y = disks(seed=1)
    net = FeatureNet("disk", apix=10.0, preprocessing={"lowpass": 20.0}, seed=3)
    history = net.train((x, y), epochs=8, batch_size=10, progress=False)
    path = net.save(tmp_path_factory.mktemp("net") / "disk.keras")
    return net, x, y, history, path


def test_model_has_the_papers_layers_and_shapes():
    model = network.build_model(seed=0)
    assert [layer.name for layer in model.layers] == ["tile", "conv1", "pool", "conv2", "conv3",
                                                      "min_one"]
    shapes = {name: [tuple(w.shape) for w in model.get_layer(name).weights]
              for name in network.LAYERS}
    assert shapes == {"conv1": [(15, 15, 1, 40), (40,)], "conv2": [(15, 15, 40, 40), (40,)],
                      "conv3": [(15, 15, 40, 1), (1,)]}
    for name in network.LAYERS:
        kernel, bias = model.get_layer(name).get_weights()
        assert np.abs(kernel).max() <= network.INIT_SCALE and not bias.any()
    out = model(np.full((2, 45, 64, 1), 50.0, np.float32)).numpy()
    assert out.shape == (2, 22, 32, 1) and out.max() <= 1.0
    model.get_layer("conv3").bias.assign([5.0])
    assert np.all(model(np.zeros((1, 16, 16, 1), np.float32)).numpy() == 1.0)  # min(1, x)


def test_loss_known_answers():
    y_true = np.zeros((2, 4, 4, 1), np.float32)
    y_pred = np.full((2, 4, 4, 1), 0.5, np.float32)
    y_pred[1] = 0.0
    got = float(network.log_squared_residual(y_true, y_pred))
    assert got == pytest.approx(np.log(0.125 + network.EPS), rel=1e-6)  # log of the batch's MSE
    per_tile = np.asarray(network.mean_log_squared_residual(y_true, y_pred))
    assert per_tile == pytest.approx([np.log(0.25 + network.EPS), np.log(network.EPS)], rel=1e-6)


@pytest.mark.parametrize(("shape", "inputs"), [((64, 64), 1), ((33, 46), 1), ((21, 17), 1),
                                               ((33, 46), 3)])
def test_fft_forward_and_gradients_match_keras(shape, inputs):
    from tomowidgets.network import _fftconv

    model = network.build_model(seed=5, init_scale=0.05, inputs=inputs)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables[1::2]:          # non-zero offsets exercise every ReLU branch
        v.assign(rng.uniform(-0.1, 0.2, v.shape).astype(np.float32))
    variables = model.trainable_variables
    channels = () if inputs == 1 else (inputs,)          # a 2.5D network's slices as channels
    x = tf.constant(rng.normal(size=(3, *shape, *channels)).astype(np.float32))
    y = tf.constant((rng.uniform(size=(3, shape[0] // 2, shape[1] // 2)) > 0.7).astype(np.float32))
    with tf.GradientTape() as tape:
        keras_out = model(x if channels else x[..., None])[..., 0]
        loss = network.log_squared_residual(y, keras_out)
        total = loss + 1e-5 * sum(tf.reduce_sum(tf.abs(v)) for v in variables[::2])
    keras_grads = tape.gradient(total, variables)
    fft_out = _fftconv.forward(x, variables)
    fft_loss, fft_grads = _fftconv.loss_and_gradients(x, y, variables,
                                                      network.log_squared_residual, 1e-5)

    def rel(a, b):
        return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())

    assert rel(fft_out, keras_out) < 1e-4
    assert float(fft_loss) == pytest.approx(float(loss), rel=1e-5)
    for got, want in zip(fft_grads, keras_grads, strict=True):
        assert got.shape == want.shape and rel(got, want) < 1e-4


# Short trainings on tiny sets may not learn enough to be calibrated; that warning is tested below.
quick = pytest.mark.filterwarnings("ignore:the 'disk' network learned nothing:RuntimeWarning")


@pytest.mark.parametrize("inputs", [1, 3])
def test_fft_gradients_are_exact_in_float64(inputs):
    """In float64 the FFT path equals direct convolution to rounding (1e-12), so the rare larger
    float32 differences on trained weights are ReLU/max-pool decisions within rounding of a tie.
    With 3 inputs: a 2.5D network's slice and its neighbours as channels."""
    from tomowidgets.network import _fftconv

    rng = np.random.default_rng(1)
    shapes = [(15, 15, inputs, 40), (40,), (15, 15, 40, 40), (40,), (15, 15, 40, 1), (1,)]
    ws = [tf.Variable(rng.uniform(-0.05, 0.05, s) + (0.05 if len(s) == 1 else 0.0)) for s in shapes]
    x = tf.constant(rng.normal(size=(2, 30, 23) if inputs == 1 else (2, 30, 23, inputs)))
    y = tf.constant((rng.uniform(size=(2, 15, 11)) > 0.7).astype(np.float64))

    def direct(x):
        x = x[..., None] if inputs == 1 else x
        a = tf.nn.relu(tf.nn.conv2d(x, ws[0], 1, "SAME") + ws[1])
        a = tf.nn.relu(tf.nn.conv2d(tf.nn.max_pool2d(a, 2, 2, "VALID"), ws[2], 1, "SAME") + ws[3])
        return tf.minimum(tf.nn.conv2d(a, ws[4], 1, "SAME") + ws[5], 1.0)[..., 0]

    def loss_fn(y_true, y_pred):
        return tf.math.log(tf.reduce_mean(tf.square(y_true - y_pred)) + network.EPS)

    with tf.GradientTape() as tape:
        loss = loss_fn(y, direct(x))
    want = tape.gradient(loss, ws)
    got_loss, got = _fftconv.loss_and_gradients(x, y, ws, loss_fn, 0.0)
    assert float(got_loss) == pytest.approx(float(loss), rel=1e-12)
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() <= 1e-11 * np.abs(w).max()


@pytest.mark.parametrize("maps", ["constant", "integers"])
def test_fft_training_pools_and_routes_gradients_as_keras(maps):
    """Constant corners of rotated tiles tie within a pooling window: the gradient goes to one
    pixel, the first of the tied maxima in row-major order, as Keras' MaxPoolGrad does, not to each
    (which would multiply it by up to 4). Integer maps tie in every pattern."""
    from tomowidgets.network import _fftconv

    rng = np.random.default_rng(3)
    shape = (2, 3, 10, 14)                       # the top-left 8×12 pixels are pooled
    a1 = tf.ones(shape) if maps == "constant" else tf.constant(rng.integers(0, 3, shape), tf.float32)
    grad = tf.constant(rng.uniform(1, 2, (2, 3, 4, 6)), tf.float32)
    pooled, routes = _fftconv._pool(a1, (4, 6))
    routed = _fftconv._unpool(grad, routes).numpy()

    a1_last = tf.transpose(a1[:, :, :8, :12], [0, 2, 3, 1])       # TensorFlow pools channels last
    want_pooled = tf.nn.max_pool2d(a1_last, 2, 2, "VALID")
    want = tf.raw_ops.MaxPoolGrad(orig_input=a1_last, orig_output=want_pooled,
                                  grad=tf.transpose(grad, [0, 2, 3, 1]), ksize=[1, 2, 2, 1],
                                  strides=[1, 2, 2, 1], padding="VALID")
    np.testing.assert_array_equal(pooled, tf.transpose(want_pooled, [0, 3, 1, 2]))
    np.testing.assert_array_equal(routed, tf.transpose(want, [0, 3, 1, 2]))
    assert np.count_nonzero(routed) == grad.numpy().size


@quick
def test_fft_and_keras_engines_train_alike():
    x, y = disks(4, 6, size=16)
    nets = {engine: FeatureNet("disk", seed=2) for engine in ("fft", "keras")}
    runs = {engine: net.train((x, y), epochs=3, batch_size=5, engine=engine, progress=False)
            for engine, net in nets.items()}
    assert runs["fft"]["loss"] == pytest.approx(runs["keras"]["loss"], rel=1e-4)
    a, b = (net.weights() for net in nets.values())
    for name in a:
        for got, want in zip(a[name], b[name], strict=True):
            np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


@quick
def test_seeded_training_is_reproducible():
    x, y = disks(4, 6, size=16)
    nets = [FeatureNet("disk", seed=s) for s in (7, 7, 8)]
    for net in nets:
        net.train((x, y), epochs=2, batch_size=4, progress=False)
    a, b, c = (net.weights() for net in nets)
    assert all(np.array_equal(a[k][i], b[k][i]) for k in a for i in range(2))
    assert not np.array_equal(a["conv2"][0], c["conv2"][0])


def test_training_learns_disks_and_calibrates(trained):
    net, x, y, history, _ = trained
    assert set(history) == {"loss", "learning_rate", "time"} and len(history["loss"]) == 8
    assert history["learning_rate"] == pytest.approx([0.01 * 0.9**e for e in range(8)])
    assert history["loss"][-1] < history["loss"][0] - 0.5
    scores = net.predict(x)
    assert scores.shape == y.shape and scores.dtype == np.float32
    assert np.sum(scores * y) / np.sum(y) == pytest.approx(1.0, rel=1e-4)   # the calibration
    assert scores[y == 0].mean() < 0.3                                         # background stays low
    assert net.amplitude == pytest.approx(np.sum(net.predict(x, raw=True) * y) / np.sum(y))
    # disks lie wholly inside their tiles: particles, so 'auto' calibrates by the mean
    assert net.calibration == {"method": "mean", "mean": net.amplitude, "level": 1.0, "auto": True}
    assert repr(net).startswith("FeatureNet('disk', trained 8 epochs")


def test_dice_calibration_puts_1_where_calls_best_reproduce_the_masks(trained):
    from tomowidgets.metrics import tile_overlap

    net, x, y, _, path = trained
    clone = FeatureNet.load(path)
    mean = clone.calibration["mean"]
    amplitude = clone.calibrate((x, y), method="dice")
    cal = clone.calibration
    assert cal["method"] == "dice" and cal["mean"] == pytest.approx(mean, rel=1e-5)
    assert amplitude == pytest.approx(cal["level"] * mean) and cal["level"] in network.CALIBRATION_LEVELS
    painted = (y > 0).any(axis=(1, 2))
    masks = np.repeat(np.repeat(y[painted] >= 0.5, 2, axis=1), 2, axis=2)
    calls = clone.predict(x[painted], unbin=True)
    at_one = tile_overlap(calls >= 1.0 - 1e-6, masks)[0]
    # 1.0 is the middle of the levels within 0.005 of the best Dice: no other level does better
    assert at_one == pytest.approx(cal["dice"], abs=0.005 + 1e-4)
    assert all(at_one >= tile_overlap(calls >= t, masks)[0] - 0.005 - 1e-4 for t in (0.5, 0.8, 1.25, 2.0))
    with pytest.raises(ValueError, match="`calibration` must be 'auto' or one of"):
        clone.calibrate((x, y), method="median")


def test_calibrating_for_turns_judges_the_output_averaged_over_the_turned_tiles(trained, tmp_path):
    net, x, y, _, path = trained
    clone = FeatureNet.load(path)
    turned = np.mean([np.rot90(clone.predict(np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))), raw=True),
                               -k, axes=(1, 2)) for k in range(3)], axis=0)
    amplitude = clone.calibrate((x, y), method="mean", turns=3)
    assert amplitude == pytest.approx(np.sum(turned * y) / np.sum(y), rel=1e-5)    # the known answer
    assert clone.calibration["turns"] == 3
    assert network.read_metadata(clone.save(tmp_path / "turned.keras"))["calibration"]["turns"] == 3
    clone.calibrate((x, y), method="mean")
    assert "turns" not in clone.calibration and clone.amplitude == pytest.approx(net.amplitude, rel=1e-5)
    with pytest.raises(ValueError, match="`turns` must be an integer from 1"):
        clone.calibrate((x, y), turns=5)
    with pytest.raises(ValueError, match="square tiles with even sides"):
        clone.calibrate((x[:, :, :-2], y[:, :, :-1]), turns=2)


def test_auto_calibration_calibrates_lines_by_dice_and_particles_by_the_mean(trained):
    net, x, y, _, path = trained
    clone = FeatureNet.load(path)
    lines = np.zeros_like(y)
    lines[:, :, y.shape[2] // 2 - 1:y.shape[2] // 2 + 1] = 1.0      # a band across every tile
    clone.calibrate((x, lines))
    assert clone.calibration["method"] == "dice" and clone.calibration["auto"] is True
    clone.calibrate((x, lines), method="mean")                       # an explicit choice is kept
    assert clone.calibration["method"] == "mean" and "auto" not in clone.calibration


@pytest.mark.parametrize(("painted", "expected"), [
    ("disks", "mean"),            # particles wholly inside the tile
    ("line", "dice"),             # a membrane or filament running out of the tile
    ("ring", "dice"),             # a small vesicle's membrane, hollow
    ("whole", "mean"),            # a region (cytoplasm) filling the tile: no edge to fit
    ("clipped disks", "dice"),    # particles cut by the tile edge: no whole object to judge
])
def test_auto_calibration_tells_particles_from_continuous_features(painted, expected):
    yy, xx = np.mgrid[:64, :64]
    masks = {
        "disks": ((yy - 20) ** 2 + (xx - 20) ** 2 < 64) | ((yy - 40) ** 2 + (xx - 45) ** 2 < 64),
        "line": np.abs(yy - 0.6 * xx - 10) < 2,
        "ring": np.abs(np.hypot(yy - 32, xx - 32) - 15) < 1.5,
        "whole": np.ones((64, 64), bool),
        "clipped disks": ((yy - 2) ** 2 + (xx - 20) ** 2 < 64) | ((yy - 40) ** 2 + (xx - 62) ** 2 < 64),
    }[painted]
    assert network.auto_calibration(masks[None]) == expected


@pytest.mark.parametrize(("feature", "expected"), [
    ("ribosome", "mean"), ("membrane", "dice"), ("cytoplasm", "mean")])
def test_auto_calibration_of_the_real_cells_hand_painted_sets(feature, expected):
    from tomowidgets.network._training import positive_tiles
    from tomowidgets.trainset import TrainingSet

    path = Path(__file__).resolve().parents[1] / "notebooks" / "real_cell" / f"{feature}.tiles.npz"
    assert network.auto_calibration(positive_tiles(TrainingSet.load(path))[2]) == expected


def test_predict_shapes_and_unbinning(trained):
    net = trained[0]
    assert net.predict(np.zeros((20, 31), np.float32)).shape == (10, 15)
    full = net.predict(np.zeros((2, 20, 31)), unbin=True)
    assert full.shape == (2, 20, 31) and full.dtype == np.float32
    half = net.predict(np.zeros((2, 20, 31)))
    assert np.array_equal(full[:, ::2, :30:2], half) and np.array_equal(full[:, :, 30], full[:, :, 29])
    with pytest.raises(ValueError, match="not calibrated"):
        FeatureNet().predict(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((8, 8), np.nan))


def test_save_load_round_trip_needs_no_custom_objects(trained):
    import keras

    net, x, _, _, path = trained
    loaded = FeatureNet.load(path)
    assert np.array_equal(loaded.predict(x[:4]), net.predict(x[:4]))
    assert (loaded.feature, loaded.apix, loaded.preprocessing, loaded.amplitude, loaded.history,
            loaded.calibration) == (net.feature, net.apix, net.preprocessing, net.amplitude,
                                    net.history, net.calibration)
    plain = keras.saving.load_model(path)              # registered functions, safe mode
    np.testing.assert_array_equal(plain.predict(x[:2, ..., None], verbose=0), net.model(x[:2, ..., None]))
    meta = read_metadata(path)
    assert meta["feature"] == "disk" and meta["amplitude"] == net.amplitude and meta["apix"] == 10.0
    assert meta["training"]["engine"] == "fft" and meta["training"]["epochs"] == 8
    weights = read_weights(path)
    assert all(np.array_equal(weights[k][i], net.weights()[k][i]) for k in weights for i in (0, 1))
    assert repr(loaded) == repr(net)


def test_files_are_read_without_tensorflow(trained):
    path = trained[4]
    out = run_python(
        "import sys, json; from tomowidgets.network import read_metadata, read_weights; "
        f"m = read_metadata({str(path)!r}); w = read_weights({str(path)!r}); "
        "print(json.dumps([m['feature'], {k: [list(a.shape) for a in v] for k, v in w.items()}, "
        "'tensorflow' in sys.modules]))")
    assert json.loads(out) == ["disk", {"conv1": [[15, 15, 1, 40], [40]],
                                        "conv2": [[15, 15, 40, 40], [40]],
                                        "conv3": [[15, 15, 40, 1], [1]]}, False]


def test_save_is_atomic_and_needs_keras_suffix(trained, tmp_path):
    net, path = trained[0], tmp_path / "a.keras"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="'.keras'"):
        net.save(tmp_path / "a.h5")
    net.save(path)
    assert zipfile.is_zipfile(path) and sorted(p.name for p in tmp_path.iterdir()) == ["a.keras"]


def test_missing_corrupt_and_foreign_files(trained, tmp_path):
    import keras

    with pytest.raises(FileNotFoundError, match="FeatureNet.save"):
        FeatureNet.load(tmp_path / "nothing.keras")
    text = tmp_path / "text.keras"
    text.write_text("not a zip")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(trained[4].read_bytes()[:5000])
    foreign = tmp_path / "foreign.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(foreign)
    for path, match in [(text, "not a zip"), (truncated, "not a zip"), (foreign, "no tomowidgets")]:
        with pytest.raises(ValueError, match=match) as err:
            FeatureNet.load(path)
        assert path.name in str(err.value)
    mislaid = tmp_path / "mislaid.keras"             # our metadata on another network's layers
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 5, name="conv1")]).save(mislaid)
    with zipfile.ZipFile(mislaid, "a") as zf:
        zf.writestr("tomowidgets.json", json.dumps(trained[0].metadata()))
    with pytest.raises(ValueError, match="mislaid.keras.*paper's"):
        read_weights(mislaid)
    with pytest.raises(ValueError, match="paper's"):
        FeatureNet.load(mislaid)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("amplitude", 0.0, "amplitude must be a number > 0, got 0.0"),
    ("amplitude", -1.0, "amplitude must be a number > 0"),
    ("amplitude", "1", "amplitude must be a number > 0"),
    ("feature", "../../evil", "feature name must be a short name"),
    ("feature", "", "feature name must be a short name"),
])
def test_metadata_that_would_mis_scale_or_misplace_outputs_is_refused(trained, tmp_path, key, value,
                                                                      match):
    """A zero or negative amplitude divides scores into nonsense; a feature name with a path
    writes score maps outside the output folder (apply names them <tomogram>.<feature>.mrc)."""
    forged = tmp_path / "forged.keras"
    with zipfile.ZipFile(trained[4]) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "tomowidgets.json":
                meta = json.loads(data)
                meta[key] = value
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    for load in (FeatureNet.load, read_network):
        with pytest.raises(ValueError, match=f"forged.keras' has invalid metadata: .*{match}"):
            load(forged)
    with pytest.raises(ValueError, match="feature name"):
        FeatureNet("../membrane")


def test_a_damaged_member_is_a_value_error_naming_the_file(trained, tmp_path):
    """A bit flipped inside the stored weights (a bad CRC, as after a failing disk or copy) raised
    zipfile.BadZipFile through FeatureNet.load and read_weights."""
    damaged = tmp_path / "damaged.keras"
    data = bytearray(trained[4].read_bytes())
    with zipfile.ZipFile(trained[4]) as zf:
        info = zf.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    for load in (FeatureNet.load, read_weights):
        with pytest.raises(ValueError, match="damaged.keras' is damaged: its model.weights.h5"):
            load(damaged)


@quick
def test_callbacks_run_every_epoch_and_can_stop():
    import keras

    x, y = disks(4, 4, size=16)
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(("keras", epoch, sorted(logs)))
            if epoch == 2:
                self.model.stop_training = True

    net = FeatureNet("disk")
    history = net.train((x, y), epochs=6, batch_size=4, progress=False,
                        callbacks=[Recorder(), lambda e, logs: seen.append(("f", e, logs))])
    assert len(history["loss"]) == 3 and [s[:2] for s in seen[::2]] == [("keras", e) for e in range(3)]
    assert seen[1][2]["learning_rate"] == 0.01 and "loss" in seen[1][2]

    again = net.train((x, y), epochs=6, batch_size=4, progress=False,
                      callbacks=lambda e, logs: e < 1)           # False after the 2nd epoch
    assert len(again["loss"]) == 2 and len(net.history["loss"]) == 5      # training continued

    def stop_now(epoch, logs):
        net.stop_training = True

    assert len(net.train((x, y), epochs=4, progress=False, callbacks=stop_now,
                         reset=True)["loss"]) == 1
    assert len(net.history["loss"]) == 1                                      # reset cleared it


def test_trains_from_a_training_set():
    from tomowidgets.io import Tomogram
    from tomowidgets.trainset import TrainingSet

    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 96, 96)).astype(np.float32)
    ts = TrainingSet(32, feature="disk", preprocessing={"lowpass": 20.0})
    yy, xx = np.mgrid[:32, :32]
    mask = (yy - 16) ** 2 + (xx - 16) ** 2 < 36
    for z, (cy, cx) in enumerate([(24, 24), (60, 40), (40, 70), (70, 70)]):
        data[z, cy - 16 : cy + 16, cx - 16 : cx + 16] += 1.5 * mask
    tomo = Tomogram(data, apix=12.0)
    for z, (cy, cx) in enumerate([(24, 24), (60, 40), (40, 70), (70, 70)]):
        ts.add_positive(tomo, z, cy, cx, mask)
        ts.add_negative(tomo, z, 80 - cy // 2, 80 - cx // 2)
    net = FeatureNet("disk")
    net.train(ts, epochs=6, batch_size=4, copies=2, negative_copies=3, progress=False)
    assert net.apix == 12.0 and net.preprocessing == {"lowpass": 20.0}
    assert net.training["n_tiles"] == 4 * 2 + 4 * 3 and net.training["trainset"]["n_positive"] == 4
    assert net.training["negative_copies"] == 3
    positives = np.stack([r.image for r in ts if r.kind == "positive"])
    labels = np.stack([r.mask for r in ts if r.kind == "positive"])
    scores = net.predict(positives, unbin=True)
    assert np.mean(scores[labels]) == pytest.approx(1.0, rel=1e-3)   # calibrated on these, unaugmented
    with pytest.raises(ValueError, match="12 Å/voxel.*network is for 10"):
        FeatureNet("disk", apix=10.0).train(ts, epochs=1, progress=False)
    positives_only = TrainingSet(32, feature="disk")
    for record in ts:
        if record.kind == "positive":
            positives_only.add_positive(tomo, *record.centre, record.mask)
    with pytest.warns(RuntimeWarning, match="4 positive tile.*and no negative one") as caught:
        FeatureNet("disk").train(positives_only, epochs=1, progress=False)
    assert caught[0].filename == __file__          # points at the call that trains


def test_double_membranes_train_on_magnified_tiles_by_default(monkeypatch):
    from tomowidgets.io import Tomogram
    from tomowidgets.trainset import TrainingSet

    rng = np.random.default_rng(1)
    tomo = Tomogram(rng.normal(size=(2, 96, 96)).astype(np.float32), apix=10.0)
    mask = np.zeros((32, 32), bool)
    mask[14:18] = True
    asked = []
    arrays = TrainingSet.training_arrays
    monkeypatch.setattr(TrainingSet, "training_arrays",
                        lambda self, **kw: asked.append(kw) or arrays(self, **kw))
    for feature, scale, lent, expected, expected_lent in (
            ("double_membrane", None, None, 0.4, {"double_membrane": 0.4}),
            ("membrane", None, None, None, {"double_membrane": 0.4}),   # borrowed tiles magnified
            ("double_membrane", 0.0, {}, 0.0, None)):
        ts = TrainingSet(32, feature=feature)
        ts.add_positive(tomo, 0, 48, 48, mask)
        ts.add_negative(tomo, 1, 40, 40)
        net = FeatureNet(feature)
        with warnings.catch_warnings():   # one epoch on two tiles learns nothing worth calibrating
            warnings.simplefilter("ignore", RuntimeWarning)
            net.train(ts, epochs=1, progress=False, scale=scale, lent_scale=lent)
        assert asked[-1].get("scale") == expected and net.training["scale"] == expected
        assert asked[-1].get("lent_scale") == expected_lent
        assert net.training["lent_scale"] == (expected_lent or {})


def test_a_25d_network_learns_from_the_neighbouring_slices(tmp_path):
    """Disks that show only in the slices next to the annotated one: a 2D network cannot see them,
    a network with context 1 can; it saves, loads and is refused a 2D training set."""
    from tomowidgets.engine import FFTEngine
    from tomowidgets.io import Tomogram
    from tomowidgets.trainset import TrainingSet

    rng = np.random.default_rng(0)
    data = rng.normal(size=(12, 64, 64)).astype(np.float32)
    yy, xx = np.mgrid[:32, :32]
    mask = (yy - 16) ** 2 + (xx - 16) ** 2 < 36
    ts = TrainingSet(32, feature="disk", context=1)
    for z in (1, 5, 9):                                  # disks in z-1 and z+1, not in z
        data[[z - 1, z + 1], 16:48, 16:48] += 2.0 * mask
    tomo = Tomogram(data, apix=10.0)
    for z in (1, 5, 9):
        ts.add_positive(tomo, z, 32, 32, mask)
        ts.add_negative(tomo, z + 1, 32, 32)             # the disk itself is not the feature
        ts.add_negative(tomo, z, 40, 20)
    assert ts.training_arrays(rng=0)[0].shape[1:] == (32, 32, 3)
    net = FeatureNet("disk", context=1, seed=1)
    net.train(ts, epochs=10, batch_size=4, progress=False)
    # the annotated slices hold only noise: the network finds the feature in their neighbours
    annotated = net.predict(np.stack([r.inputs for r in ts if r.kind == "positive"]), unbin=True)
    disks = net.predict(np.stack([ts[i].inputs for i in (1, 4, 7)]), unbin=True)  # z + 1
    assert annotated[:, mask].mean() == pytest.approx(1.0, rel=1e-3)
    assert disks[:, mask].mean() < 0.3
    engine = FFTEngine(net.weights(), tile=128)
    np.testing.assert_allclose(engine.predict(tomo.slab(0, 12, context=1)),
                               net.predict(data, raw=True), atol=1e-5)
    back = FeatureNet.load(net.save(tmp_path / "disk.keras"))
    assert back.context == 1 and "context=±1" in repr(back)
    with pytest.raises(ValueError, match=r"hold 1 slice\(s\) each but the network reads 3"):
        FeatureNet("disk", context=1).train(ts.with_context(0, tomo), epochs=1, progress=False)
    with pytest.raises(ValueError, match="hold 1 slice"):
        net.calibrate(ts.with_context(0, tomo))


def test_a_network_that_learned_nothing_is_not_calibrated():
    x, y = disks(4, 4, size=16)
    net = FeatureNet("disk")
    net.model.get_layer("conv3").bias.assign([-0.5])          # output -0.5 everywhere
    with pytest.warns(RuntimeWarning, match="learned nothing.*-0.5.*more epochs"):
        net.train((x, y), epochs=1, learning_rate=1e-9, progress=False)
    assert net.amplitude is None and "not calibrated" in repr(net)
    with pytest.raises(ValueError, match="not calibrated"):
        net.predict(x)
    assert net.predict(x, raw=True) == pytest.approx(-0.5, abs=0.05)


def test_a_network_stuck_at_one_value_everywhere_is_not_calibrated():
    """Seen on the real cell: a network that outputs ~0.022 on and beside the painted pixels passed
    the amplitude check and was calibrated to call 58 % of the tomogram."""
    x, y = disks(4, 4, size=16)
    net = FeatureNet("disk")
    for layer in ("conv1", "conv2", "conv3"):
        kernel, bias = net.model.get_layer(layer).get_weights()
        net.model.get_layer(layer).set_weights([np.zeros_like(kernel), bias])
    net.model.get_layer("conv3").bias.assign([0.3])           # 0.3 everywhere, above MIN_AMPLITUDE
    with pytest.warns(RuntimeWarning, match=r"learned nothing.*0\.3.*beside them.*another seed"):
        assert net.calibrate((x, y)) is None
    assert net.amplitude is None and net.predict(x, raw=True) == pytest.approx(0.3)


@pytest.mark.parametrize("bad, match", [
    ((np.zeros((0, 16, 16)), np.zeros((0, 8, 8))), "n >= 1"),
    ((np.zeros((4, 16, 16)), np.zeros((4, 8, 8))), "no annotated pixel"),
    ((np.zeros((4, 16, 16)), np.ones((4, 16, 16))), "shape \\(4, 8, 8\\)"),
    ((np.zeros((4, 15, 16)), np.ones((4, 7, 8))), "even sizes"),
    ((np.full((4, 16, 16), np.nan), np.ones((4, 8, 8))), "NaN"),
    ((np.zeros((4, 16, 16)), np.full((4, 8, 8), 2.0)), "\\[0, 1\\]"),
    ("tiles.npz", "TrainingSet or a tuple"),
])
def test_bad_training_inputs_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        FeatureNet().train(bad, epochs=1, progress=False)


@pytest.mark.parametrize("option, match", [
    ({"epochs": 0}, "`epochs`"), ({"batch_size": 2.5}, "`batch_size`"),
    ({"learning_rate": -1.0}, "`learning_rate`"), ({"engine": "gpu"}, "`engine`"),
    ({"callbacks": [3]}, "callables"), ({"l1": -1e-5}, "`l1`"),
])
def test_bad_training_options_raise(option, match):
    with pytest.raises(ValueError, match=match):
        FeatureNet().train(disks(2, 2, size=16), progress=False, **option)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="unknown keyword"):
        FeatureNet("membrane", epochs=3)
    with pytest.raises(ValueError, match="`apix`"):
        FeatureNet("membrane", apix=0)
    with pytest.raises(ValueError, match="JSON"):
        FeatureNet("membrane", preprocessing={"f": object()})
    with pytest.raises(ValueError, match="`loss` must be one of"):
        FeatureNet("membrane", loss="mse")
    with pytest.raises(ValueError, match="odd"):
        network.build_model(kernel_size=14)
