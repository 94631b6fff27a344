"""Particles from annotations: picking, seeding, subvolume extraction and STAR/CSV tables.

``_picking`` picks and seeds; ``_orient`` gives seeds and picks an orientation (membrane normals,
filament axes, long axes); ``_extract`` cuts subvolumes; ``_regrid`` moves picks between grids;
``_starcsv`` reads and writes RELION-5 STAR and CSV files; ``_tomograms`` writes RELION-5's
``tomograms.star``; ``_copick`` reads and writes copick projects; ``_table`` defines and checks the particle
table.
"""

from tomowidgets.particles._copick import (
    open_copick,
    read_copick_picks,
    read_copick_tomogram,
    write_copick_picks,
    write_copick_segmentation,
)
from tomowidgets.particles._orient import (
    FILAMENT_COLUMNS,
    ORIENTATION_COLUMNS,
    angle_directions,
    direction_angles,
    filament_seeds,
    membrane_seeds,
    orient_particles,
)
from tomowidgets.particles._picking import (
    ANGLE_COLUMNS,
    PARTICLE_COLUMNS,
    PICK_COLUMNS,
    PICK_CORE_SCORE,
    PICK_HYSTERESIS,
    PICK_LOWEST_THRESHOLD,
    PICK_MIN_RELATIVE_SIZE,
    extract_subvolumes,
    pick_particles,
    read_particles,
    seed_points,
    write_particles,
)
from tomowidgets.particles._regrid import regrid
from tomowidgets.particles._table import check_table
from tomowidgets.particles._tomograms import write_tomograms_star

__all__ = [
    "ANGLE_COLUMNS",
    "FILAMENT_COLUMNS",
    "ORIENTATION_COLUMNS",
    "PARTICLE_COLUMNS",
    "PICK_COLUMNS",
    "PICK_CORE_SCORE",
    "PICK_HYSTERESIS",
    "PICK_LOWEST_THRESHOLD",
    "PICK_MIN_RELATIVE_SIZE",
    "angle_directions",
    "check_table",
    "direction_angles",
    "extract_subvolumes",
    "filament_seeds",
    "membrane_seeds",
    "open_copick",
    "orient_particles",
    "pick_particles",
    "read_copick_picks",
    "read_copick_tomogram",
    "read_particles",
    "regrid",
    "seed_points",
    "write_copick_picks",
    "write_copick_segmentation",
    "write_particles",
    "write_tomograms_star",
]
