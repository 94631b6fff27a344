"""Merge several features' calibrated scores into one label map; consensus of several annotators.

``_merge`` holds :func:`merge` and :func:`consensus`; ``_labelmap`` the :class:`LabelMap` and its files.
"""

from tomowidgets.merge._merge import (
    BACKGROUND,
    FILAMENT_CONTACT,
    FILAMENT_HYSTERESIS,
    FILAMENTS,
    HYSTERESIS,
    MAX_FEATURES,
    THIN,
    VOTE,
    Consensus,
    LabelMap,
    consensus,
    merge,
    sidecar_path,
)

__all__ = [
    "BACKGROUND",
    "Consensus",
    "FILAMENT_CONTACT",
    "FILAMENT_HYSTERESIS",
    "FILAMENTS",
    "HYSTERESIS",
    "LabelMap",
    "MAX_FEATURES",
    "THIN",
    "VOTE",
    "consensus",
    "merge",
    "sidecar_path",
]
