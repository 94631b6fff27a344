"""The paper's network: Keras model, loss, training, calibration and ``.keras`` files.

Chen et al. (Nat Methods 2017, Online Methods) annotate each feature with one small CNN: 40
kernels of 15×15 → ReLU → 2×2 max-pool → 40 kernels of 15×15 (fully connected over channels) → ReLU
→ 1 kernel of 15×15 with an offset → ``min(1, x)``. It sees 64×64 tiles and answers at half
resolution (32×32). Training: L1 weight decay 1e-5, SGD with batches of 20 for 20 epochs, learning
rate 0.01 decreased by 10 % per epoch; then the output is calibrated so that its mean over the
annotated pixels of the training set is 1 (the threshold used downstream).

TensorFlow and Keras are imported only inside the functions that need them. Training runs, by
default, through FFT-domain convolutions (private module ``_fftconv``): same model, same variables,
same loss, several times faster than TensorFlow's direct 15×15 convolutions on a CPU. Files hold the
plain Keras model plus ``tomowidgets.json``; :func:`read_metadata` and :func:`read_weights` read
them without TensorFlow.

Examples
--------
>>> import tomowidgets as tw                                         # doctest: +SKIP
>>> net = FeatureNet("membrane")                                     # doctest: +SKIP
>>> history = net.train(tw.TrainingSet.load("membrane.tiles.npz"))   # doctest: +SKIP
>>> net.save("membrane.keras"); net = FeatureNet.load("membrane.keras")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from scipy import ndimage

from tomowidgets._validate import (
    as_float32,
    check_count,
    check_finite,
    check_ndim,
    check_positive,
    check_turns,
    same_voxel_size,
)
from tomowidgets._version import __version__
from tomowidgets.network import _training, netfile
from tomowidgets.network._cnn import (
    EPS,
    INIT_SCALE,
    LOSSES,
    _tf,
    build_model,
    log_squared_residual,
    mean_log_squared_residual,
    min_one,
)
from tomowidgets.network.netfile import (
    LAYERS,
    check_feature_name,
    read_metadata,
    read_network,
    read_weights,
)
from tomowidgets.network.reliability import Reliability

if TYPE_CHECKING:
    import keras
    from numpy.typing import ArrayLike, NDArray

    from tomowidgets.trainset import TrainingSet

__all__ = ["CALIBRATIONS", "CALIBRATION_LEVELS", "EPS", "FEATURE_SCALE", "INIT_SCALE", "LAYERS",
           "MIN_AMPLITUDE", "MIN_CONTRAST", "PARTICLE_SHARE", "FeatureNet", "auto_calibration", "build_model",
           "log_squared_residual", "mean_log_squared_residual", "min_one", "read_metadata", "read_weights"]

#: Below this calibration amplitude the network is taken to have learned nothing: dividing by it
#: would amplify its noise more than 100-fold.
MIN_AMPLITUDE = 0.01
#: Nor has it learned anything if its mean output on the painted pixels is less than this many
#: times the mean beside them (in the same tiles): a network stuck at one value everywhere (seen on
#: the real cell: 0.0223 on, 0.0220 beside) would otherwise be calibrated to call everything.
MIN_CONTRAST = 1.1
#: Ways to set the calibration amplitude (see :meth:`FeatureNet.calibrate`); ``'auto'``, the
#: default, chooses one of them from the painted masks.
CALIBRATIONS = ("mean", "dice")
#: ``calibration='auto'`` takes 'mean' when at least this share of the painted pixels lies in solid
#: objects wholly inside their tiles (particles, which are picked), else 'dice' (membranes,
#: filaments run out of their tiles or are hollow). Measured: ribosome sets 0.58-0.96, membrane,
#: double-membrane and microtubule sets 0-0.25 (synthetic and real cells).
PARTICLE_SHARE = 0.4
#: Thresholds tried by the 'dice' calibration, as fractions of the mean output on painted pixels.
CALIBRATION_LEVELS = np.round(np.arange(0.2, 1.2001, 0.05), 2)
#: Largest relative magnification of the augmented copies (:meth:`FeatureNet.train`'s `scale`) by
#: feature, where it differs from :data:`tomowidgets.trainset.SCALE` (0: rotations only, as the
#: paper). The spacing of a double membrane differs between organelles (7-22 nm), and a network
#: trained on one mitochondrion knows only that one's: ±40 % raised double membranes on unseen
#: cells from 0.59-0.77 to 0.83-0.93 Dice and cut cross-talk from 4.3-10.1 to 1.9-7.4 % (±25 %:
#: 0.73-0.90, 1.8-6.6 %; README, #16 table). Microtubules and ribosomes keep the size that tells
#: them apart (magnified too, microtubules fell to 0.15).
#: The other networks' negatives borrowed from a double membrane's tiles (a competing set) are
#: magnified alike by default (:meth:`FeatureNet.train`'s `lent_scale`), so that they learn to
#: reject every spacing the double-membrane network accepts: membranes +0.01 to +0.02 Dice,
#: microtubules +0.03 to +0.04, cross-talk 1.9 -> 1.2 % on Fourier cells (README, #16 table).
FEATURE_SCALE = {"double_membrane": 0.4}
#: Keyword arguments of :func:`build_model` that FeatureNet accepts as ``**hyper``.
HYPER = ("filters", "kernel_size", "init_scale", "loss")
#: Input pixels per batch in :meth:`FeatureNet.predict` (bounds memory: 40 float32 maps per pixel).
_PREDICT_PIXELS = 2**21


class FeatureNet:
    """One feature's network: the Keras model and what is needed to reuse it.

    Parameters
    ----------
    feature : str, default 'membrane'
        Name of the feature it annotates.
    apix : float, optional
        Voxel size in Å/voxel of the tomograms it is for; taken from the training set if not given.
    preprocessing : dict, optional
        JSON-able preprocessing parameters (e.g. ``{"lowpass": 20, "highpass": 4000, "clamp": 3}``,
        Å, Å, sd) the tomograms must get before the network sees them; taken from the training set
        if not given.
    seed : int, default 0
        Seed of the initial weights and of the training set's augmentation and batch order.
    context : int, default 0
        Slices above and below each slice that the network also reads, as input channels (2.5D;
        the paper's network is 2D, context 0). The paper suggests this against the missing wedge:
        a membrane nearly parallel to the slice plane (a vesicle's cap) is a faint smear in one
        slice but changes steadily through its neighbours. Train it on a TrainingSet with the same
        `context`.
    **hyper
        Architecture and loss, passed to :func:`build_model`: ``filters`` (40), ``kernel_size``
        (15), ``init_scale`` (:data:`INIT_SCALE`), ``loss`` ('log_squared_residual').

    Attributes
    ----------
    model : keras.Model
        The network (built on first use).
    amplitude : float or None
        Calibration: calibrated score = output / amplitude, so 1.0 is the annotated level (by
        default the mean output over the painted pixels of the positive training tiles; see
        :meth:`calibrate`). None until trained.
    calibration : dict
        How `amplitude` was set: ``method``, ``mean`` (mean output over the painted pixels),
        ``level`` (amplitude / mean) and ``dice`` (of the calls on the painted tiles).
    history : dict of list of float
        Every epoch trained so far: ``loss``, ``learning_rate``, ``time`` (s).
    reliability : Reliability or None
        How it did on tiles it was not trained on, set by
        :func:`~tomowidgets.network.check_reliability` (None until checked; cleared by training).
    stop_training : bool
        Set to True (e.g. from a widget's Stop button or a callback) to stop :meth:`train` after the
        current batch.

    Raises
    ------
    ValueError
        If `feature` is not a string, `apix` is not positive, `preprocessing` is not a JSON-able
        dict, or a `hyper` keyword or loss is unknown (sizes are checked when the model is built).

    Examples
    --------
    >>> net = FeatureNet("ribosome", apix=10.0)
    >>> net
    FeatureNet('ribosome', untrained, apix=10 Å)
    """

    def __init__(self, feature: str = "membrane", *, apix: float | None = None,
                 preprocessing: Mapping[str, Any] | None = None, seed: int = 0,
                 context: int = 0, **hyper: Any) -> None:
        try:
            check_feature_name(feature)
        except ValueError as err:
            raise ValueError(f"`feature`: {err}") from None
        unknown = sorted(set(hyper) - set(HYPER))
        if unknown:
            raise ValueError(f"unknown keyword(s) {unknown}; FeatureNet accepts {list(HYPER)} "
                             "(epochs, learning_rate, l1, ... are arguments of train())")
        if hyper.get("loss", "log_squared_residual") not in LOSSES:
            raise ValueError(f"`loss` must be one of {sorted(LOSSES)}, got {hyper['loss']!r}")
        self.feature = feature
        self.apix = None if apix is None else check_positive(apix, "apix")
        self.preprocessing = _json_dict(preprocessing, "preprocessing")
        self.seed = int(seed)
        self.context = check_count(context, "context")
        self.hyper = _json_dict(hyper, "hyper")
        self.amplitude: float | None = None
        self.history: dict[str, list[float]] = {"loss": [], "learning_rate": [], "time": []}
        self.training: dict[str, Any] = {}
        self.reliability: Reliability | None = None
        self.calibration: dict[str, Any] = {}
        self.stop_training = False
        self._model = None

    @property
    def model(self) -> keras.Model:
        """The Keras model (built from `seed` and `hyper` on first use)."""
        if self._model is None:
            self._model = build_model(seed=self.seed, inputs=2 * self.context + 1, **self.hyper)
        return self._model

    def train(self, ts: TrainingSet | tuple[ArrayLike, ArrayLike], *, epochs: int = 20,
              batch_size: int = 20, learning_rate: float = 0.01, decay: float = 0.9,
              l1: float = 1e-5, copies: int | None = None, callbacks: Any = None,
              progress: bool = True, seed: int | None = None, engine: str = "fft",
              reset: bool = False, negative_copies: int | None = None,
              scale: float | None = None, blur: float | None = None,
              lent_scale: Mapping[str, float] | None = None,
              calibration: str = "auto") -> dict[str, list[float]]:
        """Train on a training set with the paper's schedule, then calibrate.

        Parameters
        ----------
        ts : TrainingSet or tuple (x, y)
            The annotated tiles: ``ts.training_arrays(rng=seed, copies=copies,
            negative_copies=negative_copies)`` is trained on and
            ts's positive tiles as painted (not augmented) calibrate. Or arrays ``x`` of shape
            (n, tile, tile) and ``y`` (n, tile//2, tile//2) in [0, 1]; then every tile with an
            annotated pixel calibrates.
        epochs : int, default 20
            Passes over the tiles.
        batch_size : int, default 20
            Tiles per SGD step.
        learning_rate : float, default 0.01
            Learning rate of the first epoch.
        decay : float, default 0.9
            Factor applied to the learning rate after each epoch (0.9: 10 % less each time).
        l1 : float, default 1e-5
            L1 weight decay on the kernels.
        copies : int, optional
            Instances of each positive tile (augmented by rotation); by default the TrainingSet
            balances positives against negatives. Ignored for plain arrays.
        callbacks : list, optional
            ``keras.callbacks.Callback`` objects (all their hooks are called; setting
            ``self.model.stop_training = True`` stops training) and/or callables
            ``f(epoch, logs)`` called after each epoch with ``logs = {"loss", "learning_rate"}``;
            returning False stops training.
        progress : bool, default True
            Show a progress bar (tqdm).
        seed : int, optional
            Seed of the augmentation and batch order; default the network's `seed`. Same seed, same
            set and same starting weights give identical weights.
        engine : {'fft', 'keras'}, default 'fft'
            'fft' computes the same network, loss and gradients through FFT-domain convolutions
            (several times faster on a CPU); 'keras' differentiates the Keras model's direct
            convolutions (the reference). They agree to float32 rounding.
        reset : bool, default False
            Start again from the initial weights (and clear `history`). By default a second call
            continues from the current weights, with the schedule starting again at
            `learning_rate` (pass a smaller one to fine-tune).
        negative_copies : int, optional
            Instances of each negative tile per epoch (rotated copies, as EMAN2's ``--ncopy``);
            default :data:`tomowidgets.trainset.NEGATIVE_COPIES` (3). It sets how many SGD steps
            the fixed schedule takes; 1 leaves the network unsure. Ignored for plain arrays.
        scale : float, optional
            Largest relative magnification of the augmented copies (log-uniform in
            ``[1 / (1 + scale), 1 + scale]``); default the feature's in :data:`FEATURE_SCALE`
            (0.4 for 'double_membrane', whose spacing varies between organelles), else
            :data:`tomowidgets.trainset.SCALE`, 0: rotations only, as the paper. Ignored for
            plain arrays.
        blur : float, optional
            Largest Gaussian blur of the augmented copies, sd in pixels (random in ``[0, blur]``);
            default :data:`tomowidgets.trainset.BLUR` (0, none). Ignored for plain arrays.
        lent_scale : mapping of str to float, optional
            For a competing set (:meth:`TrainingSet.with_competitors`): the magnification of the
            negatives borrowed from each other feature, by that feature (the larger of it and
            `scale` is used); default :data:`FEATURE_SCALE`, so that a network learns to reject
            every spacing of a double membrane that the double-membrane network learns to accept.
            ``{}``: `scale` for every tile. Ignored for plain arrays.
        calibration : {'auto', 'mean', 'dice'}, default 'auto'
            How the output is calibrated when training ends (see :meth:`calibrate`): 'mean' for
            particles that are picked, 'dice' for a feature whose voxels matter more (membranes,
            filaments); 'auto' chooses from the painted masks (:func:`auto_calibration`).

        Returns
        -------
        dict of list of float
            This call's per-epoch ``loss``, ``learning_rate`` and ``time`` (s); also appended to
            :attr:`history`.

        Raises
        ------
        ValueError
            If the set is empty or has no annotated pixel, tiles or labels have wrong shapes or
            NaN/inf values, its voxel size differs from the network's, or an option is invalid.

        Warns
        -----
        RuntimeWarning
            If the set has no negative tile, the network learned nothing (see :meth:`calibrate`)
            or training diverged.
        """
        _training.check_training_options(epochs=epochs, batch_size=batch_size,
                                         learning_rate=learning_rate, decay=decay, l1=l1, engine=engine)
        _check_calibration(calibration)
        _tf()
        seed = self.seed if seed is None else int(seed)
        scale = FEATURE_SCALE.get(self.feature) if scale is None else scale
        lent_scale = dict(FEATURE_SCALE if lent_scale is None else lent_scale)
        x, y = _training.training_arrays(ts, seed=seed, copies=copies,
                                         negative_copies=negative_copies, scale=scale, blur=blur,
                                         lent_scale=lent_scale)
        _training.check_context(x, self.context)
        self._adopt(ts)
        self.reliability = None  # judged the weights before this run
        if reset:
            self._model, self.amplitude = None, None
            self.history = {key: [] for key in self.history}
        loss_fn = LOSSES[self.hyper.get("loss", "log_squared_residual")]
        run = _training.fit(self, self.model, x, y, epochs=int(epochs), batch_size=int(batch_size),
                            learning_rate=float(learning_rate), decay=float(decay), l1=float(l1),
                            loss_fn=loss_fn,
                            engine=engine, callbacks=callbacks, progress=progress, seed=seed)
        for key, values in run.items():
            self.history[key].extend(values)
        self.training = {
            "epochs": len(self.history["loss"]), "batch_size": batch_size,
            "learning_rate": learning_rate, "decay": decay, "l1": l1, "copies": copies,
            "negative_copies": negative_copies, "scale": scale, "lent_scale": lent_scale,
            "blur": blur,
            "seed": seed, "engine": engine, "calibration": calibration, "n_tiles": len(x),
            "n_annotated_tiles": int((y > 0).any(axis=(1, 2)).sum()),
            "trainset": _trainset_summary(ts),
        }
        self.calibrate(ts, method=calibration)
        return run

    def calibrate(self, ts: TrainingSet | tuple[ArrayLike, ArrayLike], *,
                  method: str = "auto", turns: int = 1) -> float | None:
        """Set :attr:`amplitude` from painted tiles (:meth:`train` does this when it ends).

        The network's output is divided by the amplitude, so that 1.0, the threshold merging,
        picking and suggestions use, means the same for every feature.

        - ``'mean'``: the paper's, the mean output over the painted pixels (each
          full-resolution painted pixel once). Half of the painted pixels score below that mean,
          so the calls at 1.0 are thinner than the painting, but only the feature's strongest
          instances reach 1.0, which suits picking particles.
        - ``'dice'``: the output level whose calls (output >= level) best reproduce the
          painted masks of the positive tiles (Dice with a 1-pixel tolerance; levels
          :data:`CALIBRATION_LEVELS` times the mean output on painted pixels; the middle one of
          those within 0.005 of the best). Painted pixels and the unpainted pixels around them
          both count, so 1.0 becomes the edge of what was painted. On unseen synthetic cells
          (README, #16) it raised the merged Dice of double membranes from 0.30 to 0.65 and of
          microtubules from 0.76 to 0.86, but ribosome picks at 1.0 fell from 94 % to 78 %
          precision and cross-talk rose from 4.2 % to 5.3 %.
        - ``'auto'`` (default): 'mean' for particles, 'dice' otherwise, judged from the painted
          masks by :func:`auto_calibration`. With competing networks and hysteresis (the
          defaults elsewhere) it raised double membranes from 0.52 to 0.73 on unseen cells (README).

        Parameters
        ----------
        ts : TrainingSet or tuple (x, y)
            A TrainingSet's positive tiles as painted (not augmented), or every tile of ``(x, y)``
            with an annotated pixel (masks: labels >= 0.5).
        method : {'auto', 'mean', 'dice'}, default 'auto'
            See above; the method used is recorded in :attr:`calibration` (``"auto": True`` when
            it was chosen).
        turns : int, default 1
            Judge the output averaged over the tiles turned by 0, 90, 180 and 270 degrees (the
            first `turns`), as ``apply(..., turns=turns)`` scores a tomogram; recorded as
            ``calibration["turns"]`` when above 1. Calibrate with the turns you apply with: the
            network's output on a tile turned differs from its output as painted, so a
            calibration from unturned tiles misjudges the averaged scores (on the real cell,
            README, turned apply with an unturned calibration covered 46 % of the envelope and
            with a turned one 52 %, against 55 % without turns).

        Returns
        -------
        float or None
            The amplitude, or None if the network learned nothing.

        Raises
        ------
        ValueError
            If there is no annotated tile, the arrays are malformed (as in :meth:`train`),
            `method` is unknown, or `turns` is not 1 ... 4 (or above 1 with tiles that are not
            square with even sides).

        Warns
        -----
        RuntimeWarning
            If the mean output on the painted pixels is below :data:`MIN_AMPLITUDE`, or below
            :data:`MIN_CONTRAST` times the mean output beside them (the network learned nothing);
            the amplitude is then None and :meth:`predict` refuses calibrated output. Train for
            more epochs, from another seed, or add positive tiles.
        """
        from tomowidgets.metrics import tile_overlap

        _check_calibration(method)
        turns = check_turns(turns)
        x, y, masks = _training.positive_tiles(ts)
        _training.check_context(x, self.context)  # else a 2.5D net would read tiles as slices
        out = self._turned_output(x, turns)
        mean = float(np.sum(out * y, dtype=np.float64) / np.sum(y, dtype=np.float64))
        chosen = method == "auto"
        if chosen:
            method = auto_calibration(masks)
        self.calibration = {"method": method, "mean": mean, **({"auto": True} if chosen else {}),
                            **({"turns": turns} if turns > 1 else {})}
        beside = float(out[y == 0].mean()) if (y == 0).any() else 0.0
        why = _why_uncalibrated(mean, beside)
        if why is not None:
            warnings.warn(f"the {self.feature!r} network learned nothing: its mean output on the "
                          f"annotated pixels {why}", RuntimeWarning, stacklevel=2)
            self.amplitude = None
            return None
        level = 1.0
        if method == "dice":
            full = np.repeat(np.repeat(out, 2, axis=1), 2, axis=2)   # tiles have even sizes
            scores = np.array([tile_overlap(full >= f * mean, masks)[0] for f in CALIBRATION_LEVELS])
            # the middle of the levels within 0.005 of the best: a network that separates the
            # feature cleanly has a plateau of equal Dice, and its middle leaves most margin
            near = CALIBRATION_LEVELS[scores >= scores.max() - 0.005]
            level = float(near[len(near) // 2])
            self.calibration["dice"] = float(scores.max())
        self.calibration["level"] = level
        self.amplitude = level * mean
        return self.amplitude

    def _turned_output(self, tiles: np.ndarray, turns: int) -> np.ndarray:
        """Raw output on `tiles` averaged over `turns` turns by 90 degrees, each turned back (as
        apply's test-time rotation; tiles have even sides, so pooling blocks turn onto blocks)."""
        if turns > 1 and (tiles.shape[1] != tiles.shape[2] or tiles.shape[1] % 2):
            raise ValueError(f"calibrating with `turns` > 1 needs square tiles with even sides, got "
                             f"{tiles.shape[1:3]}")
        total = self.predict(tiles, raw=True)
        for k in range(1, turns):
            turned = np.ascontiguousarray(np.rot90(tiles, k, axes=(1, 2)))
            total += np.rot90(self.predict(turned, raw=True), -k, axes=(1, 2))
        return total / np.float32(turns)

    def predict(self, slices: ArrayLike, *, raw: bool = False, unbin: bool = False
                ) -> NDArray[np.float32]:
        """Calibrated scores of slices through the Keras model (the reference path; slow).

        For whole tomograms use the FFT engine (:mod:`tomowidgets.engine`), which gives the same
        numbers without TensorFlow.

        Parameters
        ----------
        slices : array of shape (n, y, x) or (y, x)
            Preprocessed slices (same preprocessing and voxel size as the training set). For a
            2.5D network (`context` = k > 0): consecutive slices (n, y, x), each scored with its k
            neighbours (the end slices repeat beyond the stack), or tiles with their neighbouring
            slices as channels, (n, y, x, 2k + 1), as ``TrainingSet.training_arrays`` gives.
        raw : bool, default False
            Return the network's output ``min(1, ·)`` instead of output / :attr:`amplitude`.
        unbin : bool, default False
            Return scores at the input's size (each output pixel repeated 2×2; an odd last
            row/column repeats its neighbour). By default scores are at the network's half
            resolution, shape (n, y//2, x//2).

        Returns
        -------
        ndarray of float32
            Scores, with the input's number of dimensions; 1.0 is the annotated level.

        Raises
        ------
        ValueError
            If `slices` is not 2D/3D, smaller than 2×2 or holds NaN/inf, or the network is not
            calibrated (untrained, or it learned nothing) and `raw` is False.
        """
        if not raw and self.amplitude is None:
            raise ValueError(f"the {self.feature!r} network is not calibrated (train it first, or "
                             "its training learned nothing); pass raw=True for uncalibrated output")
        a = as_float32(slices, "slices")
        check_ndim(a, (2, 3, 4) if self.context else (2, 3), "slices")
        single = a.ndim == 2
        a = a[None] if single else a
        if min(a.shape[1:3]) < 2:
            raise ValueError(f"`slices` must be at least 2×2 pixels (the network pools by 2), got "
                             f"{a.shape[1:3]}")
        check_finite(a, "slices")
        a = _training.as_inputs(a, self.context)
        model = self.model
        per_batch = max(1, _PREDICT_PIXELS // (a.shape[1] * a.shape[2]))
        out = np.concatenate([np.asarray(model(a[i : i + per_batch], training=False))
                              for i in range(0, len(a), per_batch)])[..., 0]
        if not raw:
            out = out / np.float32(self.amplitude)
        if unbin:
            out = np.repeat(np.repeat(out, 2, axis=1), 2, axis=2)
            gy, gx = a.shape[1] - out.shape[1], a.shape[2] - out.shape[2]
            out = np.pad(out, [(0, 0), (0, gy), (0, gx)], mode="edge")
        out = out.astype(np.float32, copy=False)
        return out[0] if single else out

    def weights(self) -> dict[str, list[NDArray[np.float32]]]:
        """``{"conv1": [kernel, bias], "conv2": [...], "conv3": [...]}``, float32 copies, as
        :func:`read_weights` returns them (the FFT engine's input)."""
        return {name: [np.array(w, np.float32) for w in self.model.get_layer(name).get_weights()]
                for name in LAYERS}

    def metadata(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``tomowidgets.json`` (JSON-able)."""

        return {
            "format": netfile.FORMAT, "format_version": 1,
            "tomowidgets_version": __version__,
            "feature": self.feature, "apix": self.apix, "preprocessing": self.preprocessing,
            "amplitude": self.amplitude, "calibration": self.calibration, "seed": self.seed,
            "context": self.context,
            "hyper": self.hyper,
            "training": self.training, "history": self.history,
            "reliability": None if self.reliability is None else self.reliability.to_dict(),
            "output": "min(1, x) at half resolution (y//2, x//2); divide by amplitude to calibrate",
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the network to a ``.keras`` file, atomically (temporary file, then rename).

        The file is the Keras model (``keras.saving.load_model`` reads it once
        ``tomowidgets.network`` registered its functions) plus ``tomowidgets.json`` (see
        :meth:`metadata`). Returns the path.

        Raises
        ------
        ValueError
            If `path` does not end with ``.keras``.
        """
        from tomowidgets.io import atomic_path

        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"`path` must end with '.keras', got '{path}'; e.g. "
                             f"'{path.with_suffix('.keras').name}'")
        meta = self.metadata()
        model = self.model
        with atomic_path(path) as tmp:
            keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
            try:
                model.save(keras_tmp)
                netfile.append_metadata(keras_tmp, meta)
                os.replace(keras_tmp, tmp)
            finally:
                keras_tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureNet:
        """Read a network written by :meth:`save` (Keras safe mode; no custom objects needed).

        Raises
        ------
        FileNotFoundError
            If `path` does not exist.
        ValueError
            If the file is not a tomowidgets network (not a zip, no metadata, wrong layers, or
            Keras cannot read it). The message names the file.
        """
        meta = read_network(path).metadata   # checks the weights and the context, without Keras
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"'{path}' must have the '.keras' suffix for Keras to read it")
        _tf()
        import keras

        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except Exception as err:  # Keras raises many types for a damaged archive
            raise ValueError(f"Keras cannot read the model in '{path}': {err}") from None
        net = cls(meta["feature"], apix=meta.get("apix"), preprocessing=meta.get("preprocessing"),
                  seed=meta.get("seed", 0), context=meta.get("context", 0),
                  **meta.get("hyper", {}))
        net._model = model
        net.amplitude = meta.get("amplitude")
        # files written before calibration had a choice were calibrated by the mean
        net.calibration = meta.get("calibration") or {"method": "mean", "mean": net.amplitude,
                                                      "level": 1.0}
        net.history = meta.get("history", net.history)
        net.training = meta.get("training", {})
        if isinstance(meta.get("reliability"), Mapping):
            net.reliability = Reliability.from_dict(meta["reliability"])
        return net

    def __repr__(self) -> str:
        parts = [repr(self.feature)]
        if self.history["loss"]:
            parts.append(f"trained {len(self.history['loss'])} epochs, "
                         f"loss {self.history['loss'][-1]:.4g}")
            parts.append("not calibrated" if self.amplitude is None
                         else f"amplitude {self.amplitude:.4g} "
                         f"({self.calibration.get('method', 'mean')})")
        else:
            parts.append("untrained")
        if self.reliability is not None:
            parts.append(self.reliability.verdict)
        if self.apix is not None:
            parts.append(f"apix={self.apix:.4g} Å")
        if self.context:
            parts.append(f"context=±{self.context} slices")
        return f"FeatureNet({', '.join(parts)})"

    def _adopt(self, ts: Any) -> None:
        """Take voxel size and preprocessing from a TrainingSet; refuse a different voxel size."""
        ts_apix = getattr(ts, "apix", None)
        if ts_apix is not None:
            if self.apix is None:
                self.apix = float(ts_apix)
            elif not same_voxel_size(self.apix, ts_apix):
                raise ValueError(f"the training set has {ts_apix:.4g} Å/voxel but the network is "
                                 f"for {self.apix:.4g} Å/voxel; bin or resample the tomograms, or "
                                 "make a new FeatureNet")
        prep = getattr(ts, "preprocessing", None)
        if self.preprocessing is None and prep is not None:
            self.preprocessing = _json_dict(prep, "ts.preprocessing")


def _why_uncalibrated(mean: float, beside: float) -> str | None:
    """Why a network whose mean output is `mean` on the painted pixels and `beside` next to them
    cannot be calibrated (the end of a sentence about its output on the painted pixels), or None."""
    if not mean >= MIN_AMPLITUDE:
        return (f"is {mean:.3g} (needs >= {MIN_AMPLITUDE}), so it cannot be calibrated. Train for "
                "more epochs (train(ts) again continues), or add positive tiles.")
    if not mean >= MIN_CONTRAST * beside:
        return (f"({mean:.3g}) is hardly higher than beside them ({beside:.3g}; needs "
                f"{MIN_CONTRAST}x), so it answers the same everywhere and cannot be calibrated. "
                "Train again from another seed (FeatureNet(..., seed=1), tomowidgets train --seed "
                "1) or for more epochs.")
    return None


def auto_calibration(masks: ArrayLike) -> str:
    """The calibration for a feature painted as `masks`: 'mean' for particles, else 'dice'.

    Particles (ribosomes, other complexes) are painted as solid blobs that mostly lie wholly inside
    their tiles; membranes and filaments run out of the tiles (or, as small vesicles, are hollow
    rings). 'mean' keeps the strongest instances at 1.0, which suits picking; 'dice' makes 1.0 the
    painted edge, which suits voxels. A region painted over whole tiles (the cytoplasm) has no edge
    in them for 'dice' to fit (calling everything would score best), so it keeps 'mean'.

    Parameters
    ----------
    masks : array_like of shape (n, tile, tile)
        The positive tiles' painted masks (nonzero = painted).

    Returns
    -------
    {'mean', 'dice'}
        'mean' when at least :data:`PARTICLE_SHARE` of the painted pixels lie in objects that
        touch no tile edge and have no hole (8-connected; holes up to 20 % of the object's filled
        area are tolerated, as brush strokes leave them), or when 90 % of the tiles' pixels are
        painted; else 'dice'.

    Examples
    --------
    >>> blobs = np.zeros((1, 64, 64), bool); blobs[0, 20:30, 20:30] = True
    >>> line = np.zeros((1, 64, 64), bool); line[0, :, 30:33] = True
    >>> auto_calibration(blobs), auto_calibration(line)
    ('mean', 'dice')
    """
    from skimage.segmentation import clear_border

    painted_masks = np.asarray(masks) != 0
    painted = int(painted_masks.sum())
    if painted >= 0.9 * painted_masks.size:   # tiles painted whole: no edge for Dice to fit
        return "mean"
    solid_inside = 0
    for mask in painted_masks:
        objects, n = ndimage.label(clear_border(mask), structure=np.ones((3, 3)))
        for i in range(1, n + 1):
            obj = objects == i
            size = int(obj.sum())
            if size >= 0.8 * ndimage.binary_fill_holes(obj).sum():
                solid_inside += size
    return "mean" if painted and solid_inside >= PARTICLE_SHARE * painted else "dice"


def _check_calibration(method: Any) -> None:
    if method not in ("auto", *CALIBRATIONS):
        raise ValueError(f"`calibration` must be 'auto' or one of {CALIBRATIONS}, got {method!r}")


@overload
def _json_dict(value: Mapping[str, Any], arg_name: str) -> dict[str, Any]: ...


@overload
def _json_dict(value: Any, arg_name: str) -> dict[str, Any] | None: ...


def _json_dict(value: Any, arg_name: str) -> dict[str, Any] | None:
    """A JSON round-tripped copy of a dict (None stays None); ValueError if it is not JSON-able."""
    if value is None:
        return None
    try:
        if not isinstance(value, Mapping):
            raise TypeError(type(value).__name__)
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{arg_name}` must be a JSON-able dict, got {value!r} ({err})") from None


def _trainset_summary(ts: Any) -> dict[str, Any] | None:
    """The TrainingSet's metadata without its per-tile list (None for plain arrays)."""
    meta = getattr(ts, "metadata", None)
    if not isinstance(meta, Mapping):
        return None
    return _json_dict({k: v for k, v in meta.items() if k != "tiles"}, "ts.metadata")
