"""Preprocessing: band-pass in Å, normalize, clamp and bin (paper, Online Methods).

``_pipeline`` holds the public steps; ``_bandpass`` the bounded-memory slab passes they run on.
"""

from tomowidgets.preprocess._pipeline import (
    DEFAULT_LOWPASS,
    bandpass,
    bin,
    clamp,
    highpass_filter,
    lowpass_filter,
    normalize,
    preprocess,
    preprocessing_params,
    rescale,
)

__all__ = [
    "DEFAULT_LOWPASS",
    "bandpass",
    "bin",
    "clamp",
    "highpass_filter",
    "lowpass_filter",
    "normalize",
    "preprocess",
    "preprocessing_params",
    "rescale",
]
