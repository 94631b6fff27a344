"""copick projects: read tomograms, write picks and segmentations back (copick is optional).

Public through :mod:`tomowidgets.particles`. A project is a copick configuration file (or an opened
``copick`` root): a local file-system project, or the CryoET Data Portal through copick's own
configuration. What is written lands in the project's overlay as ``user_id``/``session_id``, so it
opens in copick's napari and ChimeraX viewers.

Conventions (copick's): pick locations are in Å from the tomogram's first voxel, ``voxel * apix``
as ``(x, y, z)``; a pick's transform is the 4×4 matrix that turns the reference onto the particle,
``R.T`` for the RELION angles of :mod:`tomowidgets._rotation`; a filament's number is its instance
id.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from tomowidgets._rotation import euler_to_matrix, matrix_to_euler
from tomowidgets._validate import check_positive
from tomowidgets.io import Tomogram
from tomowidgets.particles._table import ANGLE_COLUMNS, check_name, check_table, make_table

#: Default author of what tomowidgets writes into a copick project.
USER_ID = "tomowidgets"


def open_copick(project: Any) -> Any:
    """An opened copick root: `project` itself, or the configuration file it names."""
    if hasattr(project, "runs"):
        return project
    try:
        import copick
    except ImportError:
        raise ImportError("copick projects need copick: pip install 'tomowidgets[copick]'") from None
    if not os.path.isfile(project):
        raise FileNotFoundError(f"No copick configuration at '{project}'; give the project's "
                                "config.json (copick.new_config writes one)")
    return copick.from_file(str(project))


def read_copick_tomogram(project: Any, run: str, voxel_size: float, tomo_type: str = "wbp") -> Tomogram:
    """A tomogram of a copick project, in memory, with its voxel size.

    Parameters
    ----------
    project : str, PathLike or copick root
        The project's configuration file, or an opened root.
    run : str
        The run (tilt series) name, e.g. ``"TS_01"``; use it as the particles' ``tomogram`` name.
    voxel_size : float
        Voxel spacing in Å of the tomogram to read.
    tomo_type : str, default "wbp"
        The reconstruction, e.g. ``"wbp"`` or ``"denoised"``.

    Raises
    ------
    ValueError
        If the project has no such run, voxel spacing or tomogram (the message lists what it has).
    """
    root = open_copick(project)
    spacing = _voxel_spacing(root, run, voxel_size)
    tomograms = spacing.get_tomograms(tomo_type)
    if not tomograms:
        have = sorted(t.tomo_type for t in spacing.tomograms)
        raise ValueError(f"run {run!r} at {voxel_size:g} Å has no {tomo_type!r} tomogram; it has {have}")
    return Tomogram(np.asarray(tomograms[0].numpy(), np.float32), float(voxel_size))


def write_copick_picks(project: Any, run: str, table: pd.DataFrame, *, apix: float,
                       object_name: str | None = None, session_id: str = "0",
                       user_id: str = USER_ID) -> Any:
    """Write a particle table as copick picks of `object_name` (default: the table's feature).

    Locations are ``voxel * apix`` in Å; transforms carry the table's orientation (``rot, tilt,
    psi``) or the identity; instance ids are the filament numbers of :func:`filament_seeds` or 0;
    scores the table's (1 where unknown). Existing picks of that user and session are replaced.

    Returns the copick picks object.
    """
    root = open_copick(project)
    table = check_table(table)
    apix = check_positive(apix, "apix")
    name = object_name or (str(table["feature"].iloc[0]) if len(table) else None)
    if name is None or root.get_object(check_name(name, "object_name")) is None:
        have = sorted(o.name for o in root.pickable_objects)
        raise ValueError(f"the copick project has no pickable object {name!r}; it has {have} (add it "
                         "to its config.json, or pass object_name=...)")
    copick_run = _run(root, run)
    picks = copick_run.new_picks(name, check_name(session_id, "session_id"),
                                 check_name(user_id, "user_id"), exist_ok=True)
    positions = table[["x", "y", "z"]].to_numpy(np.float64) * apix
    transforms = np.tile(np.eye(4), (len(table), 1, 1))
    if set(ANGLE_COLUMNS) <= set(table.columns):
        transforms[:, :3, :3] = np.swapaxes(euler_to_matrix(table[list(ANGLE_COLUMNS)].to_numpy()), -1, -2)
    ids = table["filament"].to_numpy(int) if "filament" in table.columns else None
    scores = table["score"].fillna(1.0).to_numpy(np.float64)
    picks.from_numpy(positions, transforms, instance_ids=ids, scores=scores)
    return picks


def read_copick_picks(project: Any, run: str, object_name: str, *, apix: float,
                      user_id: str | None = None, session_id: str | None = None) -> pd.DataFrame:
    """Picks of a copick project as a particle table in voxels of a tomogram at `apix` Å.

    With several matching pick sets (users, sessions), all are concatenated. Orientations become
    ``rot, tilt, psi``; instance ids ``filament`` when any is non-zero.
    """
    root = open_copick(project)
    apix = check_positive(apix, "apix")
    sets = _run(root, run).get_picks(object_name, user_id=user_id, session_id=session_id)
    tables = []
    for picks in sets:
        positions, transforms = picks.numpy()
        positions = np.asarray(positions, np.float64).reshape(-1, 3)
        angles = matrix_to_euler(np.swapaxes(np.asarray(transforms)[:, :3, :3], -1, -2)) \
            if len(positions) else np.empty((0, 3))
        scores = np.array([p.score if p.score is not None else np.nan for p in picks.points or []])
        ids = np.array([p.instance_id or 0 for p in picks.points or []], int)
        table = make_table(run, object_name, positions[:, ::-1] / apix,
                           scores if len(scores) == len(positions) else np.full(len(positions), np.nan),
                           rot=angles[:, 0], tilt=angles[:, 1], psi=angles[:, 2])
        if ids.any():
            table["filament"] = ids
        tables.append(table)
    if not tables:
        return make_table(run, object_name, np.empty((0, 3)), np.empty(0))
    return pd.concat(tables, ignore_index=True)


def write_copick_segmentation(project: Any, run: str, mask: Any, *, apix: float, name: str,
                              session_id: str = "0", user_id: str = USER_ID) -> Any:
    """Write a mask (or a label map, integers) as a copick segmentation at `apix` Å.

    A boolean mask is written as 0/1 for the pickable object `name`; an integer array as a
    multilabel segmentation named `name` (its values the project's object labels). Existing
    segmentations of that user, session and name are replaced. Returns the copick segmentation.
    """
    root = open_copick(project)
    data = np.asarray(getattr(mask, "data", mask))
    if data.ndim != 3:
        raise ValueError(f"`mask` must be 3D (z, y, x), got shape {data.shape}")
    multilabel = data.dtype != bool
    if multilabel and not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"`mask` must be boolean or integer labels, got {data.dtype}")
    segmentation = _run(root, run).new_segmentation(
        check_positive(apix, "apix"), check_name(name, "name"), check_name(session_id, "session_id"),
        multilabel, check_name(user_id, "user_id"), exist_ok=True)
    segmentation.from_numpy(data.astype(np.uint8))
    return segmentation


def _run(root: Any, name: str) -> Any:
    run = root.get_run(check_name(name, "run"))
    if run is None:
        raise ValueError(f"the copick project has no run {name!r}; it has "
                         f"{sorted(r.name for r in root.runs)}")
    return run


def _voxel_spacing(root: Any, run: str, voxel_size: float) -> Any:
    copick_run = _run(root, run)
    spacing = copick_run.get_voxel_spacing(check_positive(voxel_size, "voxel_size"))
    if spacing is None:
        have = sorted(v.voxel_size for v in copick_run.voxel_spacings)
        raise ValueError(f"run {run!r} has no tomograms at {voxel_size:g} Å/voxel; it has {have}")
    return spacing
