"""Preprocessing: band-pass in Å, normalize, clamp and bin (paper, Online Methods).

``_pipeline`` holds the public steps; ``_bandpass`` the bounded-memory slab passes they run on;
``_gold`` finds and erases gold fiducials.
"""

from tomowidgets.preprocess._gold import erase_gold, find_gold
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
    "erase_gold",
    "find_gold",
    "highpass_filter",
    "lowpass_filter",
    "normalize",
    "preprocess",
    "preprocessing_params",
    "rescale",
]
