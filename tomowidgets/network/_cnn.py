"""The paper's network as a Keras model, its activation and losses, and TensorFlow set-up (private).

Public names are re-exported by :mod:`tomowidgets.network`. Nothing here imports TensorFlow or Keras
at module level: :func:`_tf` does, once, and registers the custom functions with Keras so that saved
models load in safe mode without ``custom_objects``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from tomowidgets._validate import check_positive, check_positive_int

if TYPE_CHECKING:
    import keras

__all__ = ["EPS", "INIT_SCALE", "LOSSES", "build_model", "log_squared_residual",
           "mean_log_squared_residual", "min_one"]

#: Half-width of the uniform distribution the kernels start from ("near-zero"). The network's output
#: then starts at about ±0.01 on unit-variance tiles and trains with the paper's schedule (checked
#: on disks and bands: 0.005 trains alike). At 0.02 it starts above 1 on many pixels, where
#: min(1, x) passes no gradient, and training stalls; Glorot-sized kernels (~0.02-0.05) stall too.
INIT_SCALE = 0.01
#: Added to the squared residual inside the logarithm, so a perfect fit gives a finite loss.
EPS = 1e-4


@contextlib.contextmanager
def _quiet_native_stderr(quiet: bool) -> Iterator[None]:
    """Silence C++ writes to file descriptor 2 while TensorFlow loads.

    TensorFlow's native logging prints (e.g. "oneDNN custom operations are on") before absl reads
    TF_CPP_MIN_LOG_LEVEL, so the level alone does not quiet them. Python exceptions are unaffected.
    """
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def _tf():  # noqa: ANN202 - returns the tensorflow module
    """Import TensorFlow once: quiet logs, Keras on its TensorFlow backend, threads = usable cores,
    a pooling memory allocator (``TF_CPU_ALLOCATOR_USE_BFC``; set it to ``false`` to opt out).

    Raises
    ------
    ImportError
        If TensorFlow is missing (with the install command), or Keras was already imported with
        another backend.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    # TensorFlow's pooling allocator on the CPU too: with plain malloc each training step's large
    # temporaries came back as fresh pages (~10,000 page faults, ~25 ms of system time per step);
    # with it steps are ~12 % faster on 2 cores (benchmarks/train_speed.py) at the same peak memory
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    try:
        with _quiet_native_stderr(os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("2", "3")):
            import tensorflow as tf
    except ImportError as err:
        raise ImportError(
            "Training and the Keras reference path need TensorFlow: pip install 'tomowidgets[cpu]' "
            "(or 'tomowidgets[gpu]' on Linux with an NVIDIA GPU). Applying a saved network "
            "does not: see tomowidgets.engine."
        ) from err
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(f"Keras was imported with the {keras.backend.backend()!r} backend; "
                          "tomowidgets needs KERAS_BACKEND=tensorflow set before importing keras")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores or 1)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, cores or 1))
    except RuntimeError:  # TensorFlow already ran an op in this process; keep its settings
        pass
    for fn in (min_one, log_squared_residual, mean_log_squared_residual):
        keras.saving.register_keras_serializable(package="tomowidgets", name=fn.__name__)(fn)
    return tf


def min_one(x):  # noqa: ANN001, ANN201 - a Keras activation on tensors
    """The paper's output activation ``min(1, x)`` (registered as ``tomowidgets>min_one``)."""
    from keras import ops

    return ops.minimum(x, 1.0)


def log_squared_residual(y_true, y_pred):  # noqa: ANN001, ANN201 - a Keras loss on tensors
    """The default loss: ``log(mean((y - y')²) + EPS)`` over all pixels of the batch.

    This is the paper's "log squared residual" as the authors' program computed it (the logarithm
    of the batch's mean squared residual, EMAN2 ``e2tomoseg_convnet.py``): a mean squared error whose
    step size adapts to its own size. It returns one value per batch (a scalar), which Keras
    accepts as a loss. Registered as ``tomowidgets>log_squared_residual``.
    """
    from keras import ops

    y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
    return ops.log(ops.mean(ops.square(y_true - y_pred)) + EPS)


def mean_log_squared_residual(y_true, y_pred):  # noqa: ANN001, ANN201 - a Keras loss on tensors
    """The literal reading of the paper: ``mean(log((y - y')² + EPS))`` over pixels, per tile.

    Kept for comparison (``FeatureNet(loss="mean_log_squared_residual")``). With the paper's
    schedule it does not learn features: the mean of logarithms is lowest when most pixels are
    *exactly* right, and a network whose ReLUs are all off (output 0 everywhere) makes every
    background pixel exactly right, so training collapses to that within an epoch.
    """
    from keras import ops

    y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
    logs = ops.log(ops.square(y_true - y_pred) + EPS)
    return ops.mean(ops.reshape(logs, (ops.shape(logs)[0], -1)), axis=-1)


LOSSES = {f.__name__: f for f in (log_squared_residual, mean_log_squared_residual)}


class _ConvOptions(TypedDict):
    """Keyword arguments that every :func:`_conv_block` of one network shares."""

    kernel_size: int
    init_scale: float
    l1: float


def _conv_block(x, filters: int, kernel_size: int, *, name: str, activation: Any, init_scale: float,
                l1: float, seed: int):  # noqa: ANN001, ANN202 - Keras tensors
    """One 'same' convolution with the paper's initialisation (kernels uniform, offsets zero)."""
    import keras

    return keras.layers.Conv2D(
        filters, kernel_size, padding="same", activation=activation, name=name,
        kernel_initializer=keras.initializers.RandomUniform(-init_scale, init_scale, seed=seed),
        bias_initializer="zeros", kernel_regularizer=keras.regularizers.L1(l1),
    )(x)


def build_model(*, filters: int = 40, kernel_size: int = 15, init_scale: float = INIT_SCALE,
                l1: float = 1e-5, learning_rate: float = 0.01, loss: str = "log_squared_residual",
                seed: int = 0, compile: bool = True, inputs: int = 1) -> keras.Model:
    """The paper's network as a fully convolutional Keras model (input ``(None, None, inputs)``).

    Layers ``conv1`` (filters @ k×k, ReLU) → ``pool`` (2×2 max) → ``conv2`` (filters @ k×k, ReLU) →
    ``conv3`` (1 @ k×k, linear, its bias is the paper's offset) → ``min_one`` (``min(1, x)``).
    Convolutions are Keras cross-correlations with 'same' zero padding; kernels are stored
    ``(k, k, in, out)``. The output has half the input's size (odd sizes round down).

    Parameters
    ----------
    filters : int, default 40
        Kernels in ``conv1`` and ``conv2``.
    kernel_size : int, default 15
        Kernel edge in pixels (odd).
    init_scale : float, default INIT_SCALE (0.01)
        Kernels start uniform in ``[-init_scale, init_scale]``; offsets start at 0.
    l1 : float, default 1e-5
        L1 weight decay on the kernels (``keras.regularizers.L1``).
    learning_rate : float, default 0.01
        Initial learning rate of the SGD optimiser (used when `compile`).
    loss : {'log_squared_residual', 'mean_log_squared_residual'}, default 'log_squared_residual'
        Training loss (see those functions).
    seed : int, default 0
        Seed of the kernel initialisers (``seed``, ``seed + 1``, ``seed + 2`` for the three layers).
    compile : bool, default True
        Compile with ``keras.optimizers.SGD(learning_rate)`` and `loss`, ready for ``model.fit``.
    inputs : int, default 1
        Input channels: 1 for the paper's 2D network, ``2 * context + 1`` for a 2.5D network that
        reads each slice with its `context` neighbours above and below.

    Returns
    -------
    keras.Model
        Named ``"tomowidgets_cnn"``.

    Raises
    ------
    ValueError
        If `kernel_size` is even or a size is not a positive integer, or `loss` is unknown.
    """
    _tf()
    import keras

    filters = check_positive_int(filters, "filters")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be odd, got {kernel_size}; the paper uses 15")
    init_scale = check_positive(init_scale, "init_scale")
    inputs = check_positive_int(inputs, "inputs")
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {sorted(LOSSES)}, got {loss!r}")
    common: _ConvOptions = {"kernel_size": kernel_size, "init_scale": init_scale, "l1": float(l1)}
    tiles = keras.Input((None, None, inputs), name="tile")
    x = _conv_block(tiles, filters, name="conv1", activation="relu", seed=seed, **common)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = _conv_block(x, filters, name="conv2", activation="relu", seed=seed + 1, **common)
    x = _conv_block(x, 1, name="conv3", activation=None, seed=seed + 2, **common)
    outputs = keras.layers.Activation(min_one, name="min_one")(x)
    model = keras.Model(tiles, outputs, name="tomowidgets_cnn")
    if compile:
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=LOSSES[loss])
    return model
