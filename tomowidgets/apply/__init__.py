"""Apply networks to whole tomograms: streaming slabs, resumable MRC output, Dask.

``_apply`` holds :func:`apply` and :func:`apply_many`; ``_inputs`` resolves networks and tomograms;
``_output`` writes scores in memory or to a resumable MRC file; ``_slabs`` runs the engine over slabs,
locally or on a Dask cluster.
"""

from tomowidgets.apply._apply import (
    NETWORK_APIX_RTOL,
    apply,
    apply_many,
)
from tomowidgets.apply._slabs import WorkersLostError

__all__ = [
    "NETWORK_APIX_RTOL",
    "apply",
    "apply_many",
    "WorkersLostError",
]
