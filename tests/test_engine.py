"""The FFT engine computes what Keras ``predict`` computes, in tiles, without TensorFlow."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_weights as shared_random_weights
from scipy import ndimage

from tomowidgets.engine import LAYERS, FFTEngine, unbin
from tomowidgets.engine import _fftengine as engine_module

#: The paper's network: 40 kernels of 15 x 15 in layers 1 and 2, one in layer 3.
KERNEL, CHANNELS = 15, 40
#: Agreement required with Keras, relative to the largest output magnitude.
RELATIVE_TOLERANCE = 1e-4
#: Small layer-2/3 windows (64 x 64 FFTs at half resolution, 36 x 36 kept): many tiles, fast set-up.
SMALL_TILE = 128


def random_weights(seed: int, *, kernel: int = KERNEL, channels: int = CHANNELS,
                   **kwargs) -> dict[str, list[np.ndarray]]:
    """The paper's 15×15, 40-channel layout by default (see conftest.random_weights)."""
    return shared_random_weights(seed, kernel=kernel, channels=channels, **kwargs)


def structured_slice(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A preprocessed-looking slice: smooth texture, membrane-like lines and dense blobs, normalized
    to mean 0 / sd 1 and clamped at +-3 sd."""
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for _ in range(3):
        angle, offset = rng.uniform(0, np.pi), rng.uniform(0, max(shape))
        distance = np.abs(np.cos(angle) * yy + np.sin(angle) * xx - offset)
        image -= 0.3 * np.exp(-(distance / 2.0) ** 2)
    for _ in range(6):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        image -= 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0 ** 2))
    image = (image - image.mean()) / image.std()
    return np.clip(image, -3, 3).astype(np.float32)


def keras_model(weights: dict[str, list[np.ndarray]]):
    """The product's network (``network.build_model``) with `weights` loaded: the engine's reference."""
    pytest.importorskip("tensorflow")
    from tomowidgets.network import build_model

    model = build_model(filters=CHANNELS, kernel_size=KERNEL, compile=False,
                        inputs=weights["conv1"][0].shape[2])
    for name in LAYERS:
        model.get_layer(name).set_weights(weights[name])
    return model


def keras_predict(model, image: np.ndarray) -> np.ndarray:
    return model.predict(image[None, :, :, None], batch_size=1, verbose=0)[0, :, :, 0]


def assert_matches(result: np.ndarray, reference: np.ndarray) -> None:
    assert result.shape == reference.shape
    assert result.dtype == np.float32
    scale = float(np.abs(reference).max())
    error = float(np.abs(result - reference).max())
    assert error <= RELATIVE_TOLERANCE * scale, f"max |diff| {error:.3g}, output scale {scale:.3g}"


@pytest.fixture(scope="module")
def weights():
    # conv3 bias +0.6: part of every output is capped by min(1, x), so the cap is tested too
    return random_weights(0, out_bias=0.6)


@pytest.fixture(scope="module")
def small_engine(weights):
    return FFTEngine(weights, tile=SMALL_TILE)


@pytest.fixture(scope="module")
def reference(weights):
    pytest.importorskip("tensorflow")
    return keras_model(weights)


@pytest.mark.tensorflow
@pytest.mark.parametrize("shape", [(64, 64), (97, 130), (300, 257), (5, 3)])
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_fft_engine_matches_keras_predict(shape, kind, small_engine, reference):
    image = (np.random.default_rng(1).normal(size=shape).astype(np.float32) if kind == "random"
             else structured_slice(shape, seed=2))
    expected = keras_predict(reference, image)
    assert_matches(small_engine.predict(image), expected)


@pytest.mark.tensorflow
def test_default_tile_matches_keras_and_cap_is_applied(weights, reference):
    image = structured_slice((330, 290), seed=3)
    expected = keras_predict(reference, image)
    result = FFTEngine(weights).predict(image)
    assert_matches(result, expected)
    assert 0.0 < np.mean(expected == 1.0) < 1.0      # the test really exercises min(1, x)
    assert result.max() == 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16, np.float32, np.float64])
def test_predict_returns_half_resolution_float32_for_any_real_dtype(small_engine, dtype):
    image = np.random.default_rng(9).integers(0, 100, (65, 67)).astype(dtype)
    result = small_engine.predict(image)
    assert result.shape == (32, 33) and result.dtype == np.float32
    np.testing.assert_array_equal(result, small_engine.predict(image.astype(np.float32)))
    for shape in [(2, 2), (3, 130)]:
        assert small_engine.predict(np.zeros(shape, dtype)).shape == (shape[0] // 2, shape[1] // 2)


def test_stack_gives_the_same_as_one_slice_at_a_time(small_engine):
    stack = np.stack([structured_slice((97, 130), seed=s) for s in range(3)])
    batched = small_engine.predict(stack)
    assert batched.shape == (3, 48, 65)
    for image, result in zip(stack, batched, strict=True):
        np.testing.assert_allclose(small_engine.predict(image), result, rtol=0, atol=1e-6)


def test_tiled_and_untiled_give_the_same_result(weights, small_engine, monkeypatch):
    image = structured_slice((300, 257), seed=4)
    many_tiles = FFTEngine(weights, tile=64, workers=2).predict(image)   # 4 x 4 pooled kept
    # one layer-2/3 window and one layer-1 window cover the whole slice
    monkeypatch.setattr(engine_module, "_LAYER1_WINDOW", 320)
    one_tile = FFTEngine(weights, tile=360, workers=1).predict(image)
    scale = np.abs(one_tile).max()
    np.testing.assert_allclose(many_tiles, one_tile, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(small_engine.predict(image), one_tile, rtol=0, atol=1e-5 * scale)


def test_workers_do_not_change_the_result(weights):
    image = structured_slice((200, 170), seed=5)
    one = FFTEngine(weights, tile=SMALL_TILE, workers=1).predict(image)
    three = FFTEngine(weights, tile=SMALL_TILE, workers=3).predict(image)
    np.testing.assert_allclose(one, three, rtol=0, atol=1e-6)


def test_other_kernel_sizes_and_channel_counts_work():
    weights = random_weights(6, kernel=5, channels=8)
    engine = FFTEngine(weights, tile=48)
    assert engine.margin == 10
    assert engine.predict(structured_slice((40, 50), seed=6)).shape == (20, 25)


@pytest.mark.tensorflow
def test_a_25d_network_reads_each_slice_with_its_neighbours_as_keras_does():
    from tomowidgets.io import Tomogram

    weights = random_weights(7, inputs=5, out_bias=0.6)              # context 2: slices z-2 .. z+2
    engine = FFTEngine(weights, tile=SMALL_TILE)
    tomo = Tomogram(np.stack([structured_slice((70, 90), seed=s) for s in range(6)]), apix=10.0)
    stack = tomo.slab(0, 6, context=2)                               # 10 slices, ends repeated
    assert engine.context == 2 and stack.shape == (10, 70, 90)
    np.testing.assert_array_equal(stack[:3], tomo.data[[0, 0, 0]])
    result = engine.predict(stack)
    inputs = np.stack([np.moveaxis(stack[z:z + 5], 0, -1) for z in range(6)])
    expected = keras_model(weights).predict(inputs, batch_size=2, verbose=0)[..., 0]
    assert_matches(result, expected)
    # a slab in the middle, with its neighbours, gives the same slices as the whole stack
    np.testing.assert_allclose(engine.predict(tomo.slab(2, 4, context=2)), result[2:4], atol=1e-6)
    with pytest.raises(ValueError, match=r"needs more than 4, got 3.*context=2"):
        engine.predict(stack[:3])


def test_unbin_duplicates_pixels_and_repeats_the_last_odd_row():
    half = np.arange(6, dtype=np.float32).reshape(2, 3)
    full = unbin(half, (5, 7))
    assert full.shape == (5, 7) and full.dtype == np.float32
    np.testing.assert_array_equal(full[:4:2, :6:2], half)
    np.testing.assert_array_equal(full[1:4:2, 1:6:2], half)
    np.testing.assert_array_equal(full[4], full[3])
    np.testing.assert_array_equal(full[:, 6], full[:, 5])
    assert unbin(np.zeros((4, 2, 3)), (4, 6)).shape == (4, 4, 6)


def test_predict_full_is_predict_unbinned(small_engine):
    stack = np.stack([structured_slice((65, 70), seed=s) for s in range(2)])
    full = small_engine.predict_full(stack)
    assert full.shape == stack.shape
    np.testing.assert_array_equal(full, unbin(small_engine.predict(stack), (65, 70)))


def test_unbin_rejects_a_mismatched_shape():
    with pytest.raises(ValueError, match=r"`half` must have shape \(\.\.\., 32, 32\)"):
        unbin(np.zeros((31, 32)), (64, 64))


@pytest.mark.parametrize("slices, message", [
    (np.zeros(10), "2D .* or a 3D"),
    (np.zeros((1, 1, 8, 8)), "2D .* or a 3D"),
    (np.zeros((1, 8)), "at least 2 x 2"),
    (np.zeros((2, 8, 1)), "at least 2 x 2"),
    (np.full((8, 8), np.nan), "NaN or infinite"),
    (np.zeros((8, 8), complex), "real-valued"),
])
def test_bad_slices_raise_value_error(small_engine, slices, message):
    with pytest.raises(ValueError, match=message):
        small_engine.predict(slices)


def test_bad_weights_raise_value_error(weights):
    with pytest.raises(ValueError, match=r"lacks layer\(s\) \['conv2'\]"):
        FFTEngine({k: v for k, v in weights.items() if k != "conv2"})
    with pytest.raises(ValueError, match="must be a dict"):
        FFTEngine([weights["conv1"]])
    bad = dict(weights, conv2=[weights["conv2"][0][..., :20], weights["conv2"][1]])
    with pytest.raises(ValueError, match=r"`weights\['conv2'\]` must be a kernel of shape"):
        FFTEngine(bad)
    with pytest.raises(ValueError, match="k odd"):
        FFTEngine(dict(weights, conv1=[np.zeros((14, 14, 1, 40)), np.zeros(40)]))
    with pytest.raises(ValueError, match=r"must be \[kernel, bias\]"):
        FFTEngine(dict(weights, conv3=[weights["conv3"][0]]))
    nan_bias = dict(weights, conv1=[weights["conv1"][0], np.full(40, np.nan, np.float32)])
    with pytest.raises(ValueError, match="NaN or infinite"):
        FFTEngine(nan_bias)


@pytest.mark.parametrize("tile, workers, message", [
    (57, None, "`tile` must be even and > 56"),
    (56, None, "`tile` must be even and > 56"),
    (0, None, "`tile` must be an integer >= 1"),
    (SMALL_TILE, 0, "`workers` must be an integer >= 1"),
])
def test_bad_options_raise_value_error(weights, tile, workers, message):
    with pytest.raises(ValueError, match=message):
        FFTEngine(weights, tile=tile, workers=workers)


def test_importing_the_engine_does_not_import_tensorflow():
    code = ("import sys, tomowidgets.engine; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    env = dict(os.environ, PYTHONWARNINGS="error")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_engine_pickles_as_its_weights(small_engine):
    restored = pickle.loads(pickle.dumps(small_engine))
    assert len(pickle.dumps(small_engine)) < 2 * 2**20            # not the 27 MB of spectra
    assert (restored.tile, restored.workers) == (small_engine.tile, small_engine.workers)
    image = structured_slice((50, 60), seed=7)
    np.testing.assert_array_equal(restored.predict(image), small_engine.predict(image))


def test_pieces_overlapping_by_the_even_margin_reassemble_the_slice(small_engine):
    image = structured_slice((200, 150), seed=8)
    whole = small_engine.predict(image)
    depth = small_engine.margin + small_engine.margin % 2          # 36, even
    assert depth == 36
    top = small_engine.predict(image[:100 + depth])[:50]
    bottom = small_engine.predict(image[100 - depth:])[depth // 2:]
    scale = np.abs(whole).max()
    np.testing.assert_allclose(np.concatenate([top, bottom]), whole, rtol=0, atol=1e-5 * scale)


@pytest.mark.tensorflow
def test_engine_reads_a_saved_network_and_matches_it(tmp_path, weights):
    pytest.importorskip("tensorflow")
    network = pytest.importorskip("tomowidgets.network")
    model = network.build_model(compile=False)
    for name in LAYERS:
        model.get_layer(name).set_weights(weights[name])
    path = tmp_path / "membrane.keras"
    model.save(path)
    image = structured_slice((130, 97), seed=10)
    expected = keras_predict(model, image)
    assert_matches(FFTEngine(network.read_weights(path), tile=SMALL_TILE).predict(image), expected)
