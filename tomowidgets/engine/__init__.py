"""The FFT inference engine: a trained network's weights applied with numpy/scipy.fft, no TensorFlow.

``_fftengine`` holds :class:`FFTEngine` (tiling, threads); ``_fftnet`` the per-layer FFT arithmetic.
"""

from tomowidgets.engine._fftengine import (
    DEFAULT_TILE,
    LAYERS,
    FFTEngine,
    unbin,
)

__all__ = [
    "DEFAULT_TILE",
    "FFTEngine",
    "LAYERS",
    "unbin",
]
