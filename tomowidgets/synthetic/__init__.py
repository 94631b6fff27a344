"""Synthetic cells with exact ground truth: scene layout, particle phantoms and the imaging model.

``_cell`` builds and writes a :class:`SyntheticCell`; ``_scene`` lays out the objects, ``_phantoms``
makes the particle maps, ``_imaging`` the missing wedge, CTF and noise as Fourier masks and
``_tiltseries`` the same through a real-space tilt series and weighted back-projection.
"""

from tomowidgets.synthetic._cell import (
    DEFAULT_DEFOCUS,
    DEFAULT_SNR,
    FEATURES,
    IMAGING_MODELS,
    PARTICLE_COLUMNS,
    SyntheticCell,
    apoferritin_template,
    ctf_curve,
    image_volume,
    make_cell,
    missing_wedge_mask,
    proteasome_template,
    reference_map,
    ribosome_template,
    spliceosome_template,
    write_cell,
    zyz_matrix,
)
from tomowidgets.synthetic._tiltseries import project, tilt_angles, weighted_back_projection

__all__ = [
    "DEFAULT_DEFOCUS",
    "DEFAULT_SNR",
    "FEATURES",
    "IMAGING_MODELS",
    "PARTICLE_COLUMNS",
    "SyntheticCell",
    "apoferritin_template",
    "ctf_curve",
    "image_volume",
    "make_cell",
    "missing_wedge_mask",
    "proteasome_template",
    "reference_map",
    "ribosome_template",
    "spliceosome_template",
    "write_cell",
    "project",
    "tilt_angles",
    "weighted_back_projection",
    "zyz_matrix",
]
