"""The paper's network: Keras model, loss, FFT-domain training, calibration and ``.keras`` files.

``_featurenet`` holds :class:`FeatureNet`; ``_cnn`` the Keras model and loss (TensorFlow imported lazily);
``_training`` the training loop and ``_fftconv`` its FFT-domain convolutions (imports TensorFlow);
``_keras_engine`` applies a network through Keras ``predict``, what :func:`tomowidgets.apply` does
on a GPU;
:mod:`.reliability` judges a trained network on tiles it did not train on;
:mod:`.netfile` reads and writes the files without TensorFlow and is the one home of the layer names.
"""

from tomowidgets.network import netfile
from tomowidgets.network._featurenet import (
    CALIBRATION_LEVELS,
    CALIBRATIONS,
    EPS,
    FEATURE_SCALE,
    INIT_SCALE,
    LAYERS,
    MIN_AMPLITUDE,
    MIN_CONTRAST,
    PARTICLE_SHARE,
    FeatureNet,
    auto_calibration,
    build_model,
    log_squared_residual,
    mean_log_squared_residual,
    min_one,
    read_metadata,
    read_weights,
)
from tomowidgets.network._keras_engine import KerasEngine, gpu_available
from tomowidgets.network._training import check_training_options
from tomowidgets.network.reliability import Reliability, assess, check_reliability

__all__ = [
    "CALIBRATIONS",
    "CALIBRATION_LEVELS",
    "EPS",
    "FeatureNet",
    "FEATURE_SCALE",
    "INIT_SCALE",
    "KerasEngine",
    "LAYERS",
    "MIN_AMPLITUDE",
    "MIN_CONTRAST",
    "PARTICLE_SHARE",
    "Reliability",
    "assess",
    "auto_calibration",
    "build_model",
    "check_reliability",
    "check_training_options",
    "gpu_available",
    "log_squared_residual",
    "mean_log_squared_residual",
    "min_one",
    "netfile",
    "read_metadata",
    "read_weights",
]
