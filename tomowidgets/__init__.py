"""tomowidgets: annotate cryo-electron tomograms with small CNNs (Chen et al., Nat Methods 2017).

Volumes are numpy ``(z, y, x)`` float32 arrays; coordinates are voxels ``(z, y, x)``; physical sizes
are in Å. TensorFlow is imported only when a network is built or trained.

Examples
--------
>>> import tomowidgets as tw
>>> cell = tw.synthetic.make_cell(shape=(32, 128, 128), seed=0)     # doctest: +SKIP
>>> pre = tw.preprocess(cell.tomogram)                               # doctest: +SKIP
"""

from tomowidgets import synthetic
from tomowidgets.io import Tomogram, read_tomogram, write_tomogram
from tomowidgets.preprocess import bandpass, bin, clamp, normalize, preprocess
from tomowidgets.trainset import TrainingSet

__version__ = "0.1.0"

__all__ = [
    "Tomogram",
    "TrainingSet",
    "bandpass",
    "bin",
    "clamp",
    "normalize",
    "preprocess",
    "read_tomogram",
    "synthetic",
    "write_tomogram",
]
