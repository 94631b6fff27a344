"""Synthetic cells with exact ground truth: scene layout, particle phantoms and the imaging model.

``_cell`` builds and writes a :class:`SyntheticCell`; ``_scene`` lays out the objects, ``_phantoms``
makes the particle maps and ``_imaging`` the missing wedge, CTF and noise.
"""

from tomowidgets.synthetic._cell import (
    DEFAULT_DEFOCUS,
    DEFAULT_SNR,
    FEATURES,
    PARTICLE_COLUMNS,
    SyntheticCell,
    ctf_curve,
    image_volume,
    make_cell,
    missing_wedge_mask,
    proteasome_template,
    reference_map,
    ribosome_template,
    write_cell,
    zyz_matrix,
)

__all__ = [
    "DEFAULT_DEFOCUS",
    "DEFAULT_SNR",
    "FEATURES",
    "PARTICLE_COLUMNS",
    "SyntheticCell",
    "ctf_curve",
    "image_volume",
    "make_cell",
    "missing_wedge_mask",
    "proteasome_template",
    "reference_map",
    "ribosome_template",
    "write_cell",
    "zyz_matrix",
]
