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
from tomowidgets._calibration import THRESHOLD
from tomowidgets._version import __version__ as __version__
from tomowidgets.apply import apply, apply_many
from tomowidgets.average import AverageResult, average, classify_2d, fsc, resolution
from tomowidgets.io import Tomogram, read_tomogram, write_tomogram
from tomowidgets.merge import LabelMap, consensus, merge
from tomowidgets.network import FeatureNet
from tomowidgets.particles import (
    extract_subvolumes,
    filament_seeds,
    membrane_seeds,
    pick_particles,
    read_particles,
    seed_points,
    write_particles,
)
from tomowidgets.preprocess import bandpass, bin, clamp, erase_gold, find_gold, normalize, preprocess, rescale
from tomowidgets.trainset import TrainingSet, suggest, suggest_tiles

__all__ = [
    "THRESHOLD",
    "AverageResult",
    "FeatureNet",
    "LabelMap",
    "Tomogram",
    "TrainingSet",
    "apply",
    "apply_many",
    "average",
    "bandpass",
    "bin",
    "clamp",
    "consensus",
    "classify_2d",
    "erase_gold",
    "extract_subvolumes",
    "filament_seeds",
    "find_gold",
    "fsc",
    "membrane_seeds",
    "merge",
    "normalize",
    "pick_particles",
    "preprocess",
    "read_particles",
    "read_tomogram",
    "rescale",
    "resolution",
    "seed_points",
    "suggest",
    "suggest_tiles",
    "synthetic",
    "write_particles",
    "write_tomogram",
]
