"""Particles from annotations: picking, seeding, subvolume extraction and STAR/CSV tables.

``_picking`` picks and seeds; ``_extract`` cuts subvolumes; ``_regrid`` moves picks between grids;
``_starcsv`` reads and writes RELION-5 STAR and CSV files; ``_table`` defines and checks the particle
table.
"""

from tomowidgets.particles._picking import (
    ANGLE_COLUMNS,
    PARTICLE_COLUMNS,
    PICK_COLUMNS,
    extract_subvolumes,
    pick_particles,
    read_particles,
    seed_points,
    write_particles,
)
from tomowidgets.particles._regrid import regrid
from tomowidgets.particles._table import check_table

__all__ = [
    "ANGLE_COLUMNS",
    "PARTICLE_COLUMNS",
    "PICK_COLUMNS",
    "check_table",
    "extract_subvolumes",
    "pick_particles",
    "read_particles",
    "regrid",
    "seed_points",
    "write_particles",
]
