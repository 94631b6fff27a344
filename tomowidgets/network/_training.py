"""Training loop of :class:`tomowidgets.network.FeatureNet` (private): checks, batches, schedule,
callbacks, progress. TensorFlow is imported by the caller (``network._tf``) before these run."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tomowidgets._validate import as_float32, check_finite, check_positive, check_positive_int
from tomowidgets.io import context_indices

__all__ = ["ENGINES", "as_inputs", "check_arrays", "check_context", "check_training_options", "fit",
           "positive_tiles", "training_arrays"]

#: Ways to compute the training gradients (see FeatureNet.train).
ENGINES = ("fft", "keras")


def check_arrays(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate training tiles ``x (n, s, s)`` or, for a 2.5D network, ``(n, s, s, slices)`` and
    labels ``y (n, s/2, s/2)`` in [0, 1]; float32 copies."""
    x, y = as_float32(x, "x"), as_float32(y, "y")
    if x.ndim not in (3, 4) or x.shape[0] == 0:
        raise ValueError(f"training tiles `x` must have shape (n, tile, tile) (or (n, tile, tile, "
                         f"slices) for a 2.5D network) with n >= 1, got {x.shape}; add tiles to "
                         "the TrainingSet first")
    ny, nx = x.shape[1:3]
    if ny < 2 or nx < 2 or ny % 2 or nx % 2:
        raise ValueError(f"training tiles must have even sizes >= 2 (the network pools by 2), got "
                         f"{ny}×{nx}; the paper uses 64×64")
    if y.shape != (x.shape[0], ny // 2, nx // 2):
        raise ValueError(f"labels `y` must have shape {(x.shape[0], ny // 2, nx // 2)} (the tiles' "
                         f"masks shrunk 2×, see trainset.shrink_labels), got {y.shape}")
    check_finite(x, "x", where="the training tiles")
    check_finite(y, "y", where="the training labels")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"labels `y` must lie in [0, 1], got [{y.min():.3g}, {y.max():.3g}]")
    if not (y > 0).any():
        raise ValueError("the training set has no annotated pixel: add positive tiles with painted "
                         "masks (the network has nothing to learn from negatives alone)")
    return x, y


def training_arrays(ts: Any, *, seed: int, copies: int | None, negative_copies: int | None = None,
                    scale: float | None = None, blur: float | None = None,
                    lent_scale: Mapping[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a TrainingSet (augmented, balanced, shuffled) or from a plain tuple."""
    if isinstance(ts, tuple | list) and len(ts) == 2:
        return check_arrays(*ts)
    if not hasattr(ts, "training_arrays"):
        raise ValueError(f"`ts` must be a tomowidgets.TrainingSet or a tuple (x, y), got "
                         f"{type(ts).__name__}")
    options: dict[str, Any] = {} if copies is None else {"copies": check_positive_int(copies, "copies")}
    if negative_copies is not None:
        options["negative_copies"] = check_positive_int(negative_copies, "negative_copies")
    if scale is not None:
        options["scale"] = scale
    if blur is not None:
        options["blur"] = blur
    if lent_scale:
        options["lent_scale"] = lent_scale
    warn_if_no_negatives(ts)
    # a TrainingSet checked each tile when it was added (or loaded): its arrays are trusted
    return ts.training_arrays(rng=seed, **options)


def warn_if_no_negatives(ts: Any) -> None:
    """Warn when a TrainingSet has positive tiles but no negative one: the network then learns
    what the feature is from the unpainted pixels around it alone, and fires on everything alike."""
    if ts.n_positive and not ts.n_negative:
        warnings.warn(f"the training set has {ts.n_positive} positive tile(s) and no negative one: "
                      "the network will not learn what the feature is not and will fire on other "
                      "structures; add negative tiles (the paper uses ~100, including gold, ice and "
                      "other features)", RuntimeWarning, stacklevel=4)


def check_context(x: np.ndarray, context: int, what: str = "training tiles") -> None:
    """Raise ValueError unless tiles `x` carry the ``2 * context + 1`` slices a network reads."""
    slices = 1 if x.ndim == 3 else x.shape[3]
    if slices != 2 * context + 1:
        raise ValueError(f"the {what} hold {slices} slice(s) each but the network reads "
                         f"{2 * context + 1} (context={context}); use a TrainingSet with "
                         f"context={context}, or a FeatureNet(context={(slices - 1) // 2})")


def as_inputs(a: np.ndarray, context: int) -> np.ndarray:
    """Network inputs ``(n, y, x, 2 * context + 1)`` from slices ``(n, y, x)`` or ready inputs.

    Consecutive slices ``(n, y, x)`` become, for a 2.5D network, each slice with its `context`
    neighbours above and below as channels; the end slices repeat beyond the stack (as
    ``Tomogram.slab(..., context=k)`` does at the tomogram's ends). A 4D array is checked and
    returned as it is.
    """
    if a.ndim == 4:
        check_context(a, context, "inputs")
        return a
    if not context:
        return a[..., None]
    padded = a[context_indices(0, len(a), context, len(a))]
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * context + 1, axis=0)


def positive_tiles(ts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, masks)`` to calibrate on: a TrainingSet's positive tiles as painted (not
    augmented), or, for a plain ``(x, y)``, every tile with an annotated pixel; `y` at the
    network's half resolution, `masks` at the tiles' (for plain arrays, ``y >= 0.5`` unbinned)."""
    if isinstance(ts, tuple | list) and len(ts) == 2:
        x, y = check_arrays(*ts)
        keep = (y > 0).any(axis=(1, 2))
        return x[keep], y[keep], np.repeat(np.repeat(y[keep] >= 0.5, 2, axis=1), 2, axis=2)
    from tomowidgets.trainset import shrink_labels

    records = [r for r in ts if r.kind == "positive" and r.painted]   # not placeholders
    if not records:
        raise ValueError("the training set has no painted positive tile to calibrate on; add "
                         "positive tiles with painted masks")
    masks = np.stack([r.mask for r in records])
    return np.stack([r.inputs for r in records]).astype(np.float32), shrink_labels(masks), masks


def _make_step(model: Any, engine: str, loss_fn: Callable, l1: float, shape: tuple[int, int]
               ) -> Callable:
    """One SGD step on a batch, as a tf.function; returns the batch's total loss."""
    import tensorflow as tf

    variables = model.trainable_variables
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(variables)

    if engine == "fft":
        from tomowidgets.network._fftconv import loss_and_gradients

        def gradients(x, y):  # noqa: ANN001, ANN202
            return loss_and_gradients(x, y, variables, loss_fn, l1)
    else:
        def gradients(x, y):  # noqa: ANN001, ANN202
            with tf.GradientTape() as tape:
                inputs = x[..., None] if x.shape.rank == 3 else x
                loss = tf.reduce_mean(loss_fn(y, model(inputs, training=True)[..., 0]))
                total = loss + l1 * tf.add_n([tf.reduce_sum(tf.abs(v)) for v in variables[::2]])
            return loss, tape.gradient(total, variables)

    spec = tf.TensorSpec((None, *shape), tf.float32)
    half = tf.TensorSpec((None, shape[0] // 2, shape[1] // 2), tf.float32)

    # no autograph: the step has no Python control flow on tensors, and converting it cost ~3 s
    @tf.function(input_signature=[spec, half], reduce_retracing=True, autograph=False)
    def step(x, y):  # noqa: ANN001, ANN202
        loss, grads = gradients(x, y)
        optimizer.apply(grads, variables)
        return loss + l1 * tf.add_n([tf.reduce_sum(tf.abs(v)) for v in variables[::2]])

    return step


def _callbacks(callbacks: Any, model: Any, epochs: int, steps: int) -> tuple[Any, list[Callable]]:
    """Split `callbacks` into a keras CallbackList and plain callables ``f(epoch, logs)``."""
    import keras

    if callbacks is None:
        callbacks = []
    elif not isinstance(callbacks, Sequence):
        callbacks = [callbacks]
    objects = [c for c in callbacks if isinstance(c, keras.callbacks.Callback)]
    plain = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    for c in plain:
        if not callable(c):
            raise ValueError(f"`callbacks` must be keras.callbacks.Callback objects or callables "
                             f"f(epoch, logs), got {c!r}")
    return keras.callbacks.CallbackList(objects, model=model, epochs=epochs, steps=steps), plain


def check_training_options(*, epochs: Any, batch_size: Any, learning_rate: Any, decay: Any, l1: Any,
                  engine: Any) -> None:
    """Raise ValueError, naming the argument, unless the training options are valid."""
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive(learning_rate, "learning_rate")
    check_positive(decay, "decay")
    if not isinstance(l1, int | float) or not l1 >= 0:
        raise ValueError(f"`l1` must be a number >= 0, got {l1!r}; the paper uses 1e-5")
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}, got {engine!r}")


def fit(owner: Any, model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
        learning_rate: float, decay: float, l1: float, loss_fn: Callable, engine: str,
        callbacks: Any, progress: bool, seed: int) -> dict[str, list[float]]:
    """Train `model` in place; `owner.stop_training = True` (checked after every batch) stops it.

    Options must have passed :func:`check_training_options`. Returns this run's history: per-epoch ``loss``
    (mean over batches, L1 term included, as Keras reports it), ``learning_rate`` and ``time`` (s).
    """
    import tensorflow as tf

    step = _make_step(model, engine, loss_fn, float(l1), x.shape[1:])
    rng = np.random.default_rng(seed)
    steps = -(-len(x) // batch_size)
    cb_list, plain = _callbacks(callbacks, model, epochs, steps)
    history: dict[str, list[float]] = {"loss": [], "learning_rate": [], "time": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="training", unit="epoch")
    owner.stop_training = model.stop_training = False
    cb_list.on_train_begin()
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            lr = learning_rate * decay**epoch
            model.optimizer.learning_rate.assign(lr)
            cb_list.on_epoch_begin(epoch)
            before = [v.numpy() for v in model.trainable_variables]
            order = rng.permutation(len(x))
            total = 0.0
            for i in range(steps):
                batch = order[i * batch_size : (i + 1) * batch_size]
                loss = float(step(tf.constant(x[batch]), tf.constant(y[batch])))
                total += loss * len(batch)
                cb_list.on_train_batch_end(i, {"loss": loss})
                if owner.stop_training:
                    break
            seen = min(len(x), (i + 1) * batch_size)
            logs = {"loss": total / seen, "learning_rate": lr}
            if not np.isfinite(logs["loss"]):
                for v, value in zip(model.trainable_variables, before, strict=True):
                    v.assign(value)
                warnings.warn(f"training diverged at epoch {epoch + 1} (loss {logs['loss']}); "
                              "the weights before that epoch were kept. Try a smaller "
                              "`learning_rate`.", RuntimeWarning, stacklevel=3)
                break
            for key, value in (*logs.items(), ("time", time.perf_counter() - t0)):
                history[key].append(float(value))
            cb_list.on_epoch_end(epoch, dict(logs))
            stop = [f(epoch, dict(logs)) for f in plain]
            if bar is not None:
                bar.set_postfix(loss=f"{logs['loss']:.4g}", lr=f"{lr:.3g}", refresh=False)
                bar.update(1)
            if owner.stop_training or model.stop_training or any(s is False for s in stop):
                break
    finally:
        if bar is not None:
            bar.close()
    cb_list.on_train_end({"loss": history["loss"][-1]} if history["loss"] else {})
    return history
