"""Subtomogram alignment and averaging, 2D classification of z-projections, and FSC.

``_average`` holds the public functions; ``_align`` the rotational search, ``_refine`` the iterative
half-set refinement, ``_classify2d`` the 2D classes and ``_checks`` their argument checks.
"""

from tomowidgets.average._average import (
    AverageResult,
    Classification2D,
    MapAlignment,
    ReferenceComparison,
    align_map,
    average,
    classify_2d,
    compare_to_reference,
    envelope_mask,
    fsc,
    halves_by_position,
    resolution,
    rotate_volume,
)

__all__ = [
    "AverageResult",
    "Classification2D",
    "MapAlignment",
    "ReferenceComparison",
    "align_map",
    "average",
    "classify_2d",
    "compare_to_reference",
    "envelope_mask",
    "fsc",
    "halves_by_position",
    "resolution",
    "rotate_volume",
]
