"""Training sets: the painted tiles one feature's network learns from, and which tiles to paint next.

``_trainset`` holds :class:`TrainingSet`; ``_checks`` checks a tile once, when it is added;
``_sampling`` turns tiles into training examples (rotations, balancing) and cuts them from ground truth;
``_tilefile`` reads and writes ``*.tiles.npz`` without pickles; :mod:`.suggest` ranks tiles to annotate next.
"""

from tomowidgets.trainset import suggest
from tomowidgets.trainset._trainset import (
    BLUR,
    NEGATIVE_COPIES,
    SCALE,
    TileRecord,
    TrainingSet,
    competing,
    shrink_labels,
)
from tomowidgets.trainset.suggest import EXPLORE, SUGGESTION_COLUMNS, suggest_tiles, uncertainty

__all__ = [
    "BLUR",
    "EXPLORE",
    "NEGATIVE_COPIES",
    "SCALE",
    "SUGGESTION_COLUMNS",
    "TileRecord",
    "TrainingSet",
    "competing",
    "shrink_labels",
    "suggest",
    "suggest_tiles",
    "uncertainty",
]
