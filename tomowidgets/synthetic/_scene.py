"""Lay out a synthetic cell: where each membrane, tube and particle goes, and their exact labels.

Objects are placed one class after another (cell membrane, mitochondrion, microtubules, vesicles,
macromolecules, gold) with rejection sampling, so no object overlaps another or a membrane; the
labels of different features are therefore disjoint. Sizes are in Å, positions in voxels ``(z, y,
x)``. Used by :func:`tomowidgets.synthetic.make_cell`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import scipy.ndimage as ndi

from tomowidgets._rotation import FLIP, random_euler, zyz_matrix
from tomowidgets.synthetic import _phantoms as ph

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Feature names, in the order labels are listed.
FEATURES = ("membrane", "double_membrane", "microtubule", "ribosome", "proteasome", "gold")
#: Free space (Å) kept between any two objects.
MARGIN = 20.0
#: Reference field of view (Å², a 256 × 256 nm slab) for scaling object counts.
_REF_AREA = 2560.0**2
#: Objects per reference field (vesicles, microtubules, gold; mitochondria in a varied cell, the
#: standard one has one) and per nm³ of cytoplasm.
_PER_FIELD = {"vesicle": 5, "microtubule": 3, "gold": 4, "mitochondrion": 3}
_PER_NM3 = {"ribosome": 2e-5, "proteasome": 7e-6, "apoferritin": 1e-5, "spliceosome": 5e-6}
#: The complexes of every cell, and those that ``make_cell(distractors=True)`` adds last (so that
#: the rest of the cell is laid out as without them): (feature, template, mass in Da).
_COMPLEXES = (("ribosome", ph.ribosome_template, ph.RIBOSOME_MASS),
              ("proteasome", ph.proteasome_template, ph.PROTEASOME_MASS))
DISTRACTORS = (("apoferritin", ph.apoferritin_template, ph.APOFERRITIN_MASS),
               ("spliceosome", ph.spliceosome_template, ph.SPLICEOSOME_MASS))
#: What a varied cell (``make_cell(varied=True)``) changes, so that a network learns the feature
#: rather than one instance of it: several mitochondria (``_PER_FIELD``), their semi-axes
#: (fraction of the field) and membrane spacings (Å, centre to centre), the largest elevation of
#: microtubules out of the xy plane (degrees; the standard cell's is 6), and how much more crowded
#: the cytoplasm is.
VARIED_MITO_SIZE = (0.12, 0.22)
VARIED_MITO_GAP = (70.0, 220.0)
VARIED_ELEVATION = 30.0
VARIED_CROWDING = 1.5
#: Density of the mitochondrial matrix (protein ~1, ice 0).
MATRIX_DENSITY = 0.1
#: Template values below this fraction of the maximum are treated as empty (footprints, crops).
_FLOOR = 0.03
#: One particle row: (feature, z, y, x, rot, tilt, psi).
_Row = tuple[str, float, float, float, float, float, float]


@dataclass
class _Scene:
    """Mutable state while a cell is laid out."""

    shape: tuple[int, int, int]
    apix: float
    rng: np.random.Generator
    density: NDArray[np.float32] = field(init=False)
    labels: dict[str, NDArray[np.bool_]] = field(init=False)
    occupied: NDArray[np.bool_] = field(init=False)
    rows: list[_Row] = field(default_factory=list)
    cell_center: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    cell_radius: float = 0.0
    mitos: list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = field(
        default_factory=list)
    tubes: list[NDArray[np.float64]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.density = np.zeros(self.shape, np.float32)
        self.labels = {name: np.zeros(self.shape, bool) for name in FEATURES}
        self.occupied = np.zeros(self.shape, bool)

    @property
    def extent(self) -> NDArray[np.float64]:
        """Size of the volume in Å, (z, y, x)."""
        return np.array(self.shape, float) * self.apix

    def count(self, kind: str, fraction_free: float = 1.0, per: float | None = None) -> int:
        """How many objects of `kind` this volume gets (at least 1).

        Field objects scale with the xy area, macromolecules with the free cytoplasm volume
        (`fraction_free` of the volume); `per` replaces the kind's usual number per field or nm³.
        """
        area = self.extent[1] * self.extent[2]
        if kind in _PER_FIELD:
            per = _PER_FIELD[kind] if per is None else per
            return max(1, int(round(per * area / _REF_AREA)))
        nm3 = float(np.prod(self.extent)) / 1000.0 * fraction_free
        per = _PER_NM3[kind] if per is None else per
        return max(1, int(round(per * nm3)))

    def cell_depth(self, point_vox: NDArray[np.float64]) -> NDArray[np.float64]:
        """How far (Å) points lie inside the cell membrane (negative = outside)."""
        d = np.linalg.norm(np.atleast_2d(point_vox) * self.apix - self.cell_center, axis=-1)
        return self.cell_radius - d


def build_scene(shape: tuple[int, int, int], apix: float, rng: np.random.Generator, varied: bool = False,
                distractors: bool = False
                ) -> tuple[NDArray[np.float32], dict[str, NDArray[np.bool_]], list[tuple]]:
    """Density, labels and particle rows ``(feature, z, y, x, rot, tilt, psi)`` of one cell.

    A `varied` cell has several smaller mitochondria with membrane spacings from 7 to 22 nm,
    microtubules up to 30° out of the xy plane and a more crowded cytoplasm (``VARIED_*``). With
    `distractors`, apoferritin- and spliceosome-like complexes (:data:`DISTRACTORS`, labelled too)
    then fill free cytoplasm, after everything else is placed as it would be without them.
    """
    s = _Scene(shape, apix, rng)
    inside = _add_cell_membrane(s)
    if varied:
        # each mitochondrion draws its spacing from its own share of the range, so that every
        # varied cell spans it (three random draws can all fall within 1 nm)
        n = s.count("mitochondrion")
        edges = np.linspace(*VARIED_MITO_GAP, n + 1)
        for share in rng.permutation(n):
            _add_mitochondrion(s, size=VARIED_MITO_SIZE, gap=(edges[share], edges[share + 1]), tries=300)
    else:
        _add_mitochondrion(s)
    for _ in range(s.count("microtubule")):
        _add_microtubule(s, max_elevation=VARIED_ELEVATION if varied else 6.0)
    for _ in range(s.count("vesicle")):
        _add_vesicle(s)
    crowding = VARIED_CROWDING if varied else 1.0
    _add_macromolecules(s, inside, _COMPLEXES, crowding=crowding)
    for _ in range(s.count("gold")):
        _add_gold(s)
    if distractors:
        # the last to go in, into a crowded cell: given more tries to find room
        _add_macromolecules(s, inside, DISTRACTORS, crowding=crowding, tries=600)
    return s.density, s.labels, s.rows


def _add_cell_membrane(s: _Scene) -> float:
    """A large sphere whose surface crosses the field near one side; returns the inside fraction."""
    rng, ext = s.rng, s.extent
    s.cell_radius = rng.uniform(1.5, 3.0) * max(ext[1], ext[2])
    theta = rng.uniform(0, 2 * np.pi)
    u = np.array([0.0, np.sin(theta), np.cos(theta)])
    reach = 0.5 * (abs(u[1]) * ext[1] + abs(u[2]) * ext[2]) * rng.uniform(0.55, 0.75)
    s.cell_center = ext / 2 + u * (reach - s.cell_radius)
    grids = np.ogrid[tuple(slice(0, n) for n in s.shape)]
    r2 = sum((g.astype(np.float32) * np.float32(s.apix) - np.float32(c)) ** 2
             for g, c in zip(grids, s.cell_center, strict=True))
    dist = np.sqrt(r2) - np.float32(s.cell_radius)
    band = ph.membrane_band(s.apix)
    np.maximum(s.density, ph.bilayer(dist, s.apix), out=s.density)
    s.labels["membrane"] |= np.abs(dist) <= band
    s.occupied |= np.abs(dist) <= band + MARGIN
    return float(np.mean(dist < 0))


def _in_plane_rotation(angle: float) -> NDArray[np.float64]:
    """Columns = principal axes in (z, y, x): first two in the xy plane, third along z."""
    c, si = np.cos(angle), np.sin(angle)
    return np.array([[0.0, 0.0, 1.0], [si, c, 0.0], [c, -si, 0.0]])


def _add_mitochondrion(s: _Scene, size: tuple[float, float] = (0.22, 0.32),
                       gap: tuple[float, float] = (100.0, 160.0), tries: int = 100) -> None:
    """A double-membrane ellipsoid inside the cell, clear of what is already there.

    Its long semi-axis is a `size` fraction of the field, its outer and inner bilayers `gap` Å
    apart (centre to centre; the standard cell's one mitochondrion: 10-16 nm).
    """
    rng, ext = s.rng, s.extent
    lateral = min(ext[1], ext[2])
    a = rng.uniform(*size) * lateral
    axes = np.array([a, a * rng.uniform(0.55, 0.8), min(a, rng.uniform(0.6, 1.0) * ext[0])])
    rotation = _in_plane_rotation(rng.uniform(0, np.pi))
    spacing = rng.uniform(*gap)
    axes = np.maximum(axes, spacing + 100.0)  # room for the inner membrane in small fields
    band = ph.membrane_band(s.apix)
    for _ in range(tries):
        center = np.array([0.5, rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)]) * s.shape
        if s.cell_depth(center)[0] < axes.max() + band + MARGIN:
            continue
        found = ph.ellipsoid_distance(s.shape, center, axes, rotation, s.apix, band + MARGIN + s.apix)
        if found is None:
            return
        box, dist = found
        # the first (standard: only) mitochondrion has nothing but the cell membrane to avoid
        if not s.mitos or not np.any(s.occupied[box] & (dist <= band + MARGIN)):
            break
    else:
        return
    inner = dist + np.float32(spacing)
    dens = np.maximum(ph.bilayer(dist, s.apix), ph.bilayer(inner, s.apix))
    dens = np.where(inner < -band, np.maximum(dens, np.float32(MATRIX_DENSITY)), dens)
    np.maximum(s.density[box], dens, out=s.density[box])
    s.labels["double_membrane"][box] |= (np.abs(dist) <= band) | (np.abs(inner) <= band)
    s.occupied[box] |= dist <= band + MARGIN
    s.mitos.append((center, axes, rotation))


def _add_microtubule(s: _Scene, tries: int = 100, max_elevation: float = 6.0) -> None:
    """A gently curved microtubule at most `max_elevation` degrees out of the xy plane, crossing
    the field inside the cytoplasm."""
    rng, ext = s.rng, s.extent
    reach = (ph.MT_OUTER + MARGIN) / s.apix  # voxels
    diag = float(np.linalg.norm(ext))
    band = ph.membrane_band(s.apix)
    for _ in range(tries):
        zlo, zhi = reach, s.shape[0] - 1 - reach
        z0 = rng.uniform(zlo, zhi) if zhi > zlo else 0.5 * (s.shape[0] - 1)
        p0 = np.array([z0, rng.uniform(0, s.shape[1] - 1), rng.uniform(0, s.shape[2] - 1)])
        azimuth, elevation = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(-max_elevation, max_elevation))
        t = np.array([np.sin(elevation), np.cos(elevation) * np.sin(azimuth),
                      np.cos(elevation) * np.cos(azimuth)])
        bend = np.cross([1.0, 0.0, 0.0], t)
        bend *= rng.choice([-1.0, 1.0]) / np.linalg.norm(bend)
        normal = np.cross(t, bend)
        radius = rng.uniform(2.0, 6.0) * diag / s.apix  # voxels
        center = p0 + bend * radius
        e1 = -bend
        e2 = np.cross(normal, e1)
        half = diag / s.apix / radius
        phi = np.linspace(-half, half, int(4 * diag / ph.MT_OUTER) + 2)
        pts = center + radius * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
        pts = pts[np.all((pts > -reach) & (pts < np.array(s.shape) - 1 + reach), axis=1)]
        if not _tube_fits(s, pts, band):
            continue
        dist, around, along = ph.arc_geometry(s.shape, center, normal, e1, radius, s.apix)
        np.maximum(s.density, ph.microtubule(dist, around, along, s.apix), out=s.density)
        s.labels["microtubule"] |= (dist >= ph.MT_INNER) & (dist <= ph.MT_OUTER)
        s.occupied |= dist <= ph.MT_OUTER + MARGIN
        s.tubes.append(pts)
        return


def _tube_fits(s: _Scene, pts: NDArray[np.float64], band: float) -> bool:
    """Whether a tube along centreline points `pts` stays clear of membranes and other tubes."""
    if len(pts) == 0 or np.any(s.cell_depth(pts) < ph.MT_OUTER + band + MARGIN):
        return False
    for center, axes, rotation in s.mitos:
        local = (pts - center) * s.apix @ rotation
        grown = axes + ph.MT_OUTER + band + MARGIN
        if np.any(np.sum((local / grown) ** 2, axis=1) < 1.0):
            return False
    clearance = (2 * ph.MT_OUTER + MARGIN) / s.apix
    for other in s.tubes:
        gaps = np.linalg.norm(pts[:, None, :] - other[None, :, :], axis=-1)
        if gaps.min() < clearance:
            return False
    return True


def _add_vesicle(s: _Scene, tries: int = 40) -> None:
    """A single-bilayer vesicle (ellipsoid, 12-35 nm radius) in free cytoplasm."""
    rng = s.rng
    band = ph.membrane_band(s.apix)
    r_max = max(130.0, min(350.0, 0.2 * min(s.extent[1], s.extent[2])))
    for _ in range(tries):
        r = rng.uniform(120.0, r_max)
        axes = r * np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)])
        rotation = FLIP @ zyz_matrix(*random_euler(rng)) @ FLIP
        center = np.array([rng.uniform(0.25, 0.75), rng.uniform(0, 1), rng.uniform(0, 1)])
        center = center * (np.array(s.shape) - 1)
        if s.cell_depth(center)[0] < r + band + MARGIN or s.occupied[tuple(center.astype(int))]:
            continue
        found = ph.ellipsoid_distance(s.shape, center, axes, rotation, s.apix, band + MARGIN)
        if found is None:
            continue
        box, dist = found
        if np.any(s.occupied[box] & (dist <= band + MARGIN)):
            continue
        np.maximum(s.density[box], ph.bilayer(dist, s.apix), out=s.density[box])
        s.labels["membrane"][box] |= np.abs(dist) <= band
        s.occupied[box] |= dist <= band + MARGIN
        return


def _paste_box(shape: tuple[int, ...], center: NDArray[np.int64], size: int
               ) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the volume and of a centred cube of odd `size` where they overlap."""
    h = size // 2
    lo, hi = center - h, center + h + 1
    dst = tuple(slice(max(a, 0), min(b, n)) for a, b, n in zip(lo, hi, shape, strict=True))
    src = tuple(slice(d.start - a, d.stop - a) for d, a in zip(dst, lo, strict=True))
    return dst, src


def _add_macromolecules(s: _Scene, inside: float, complexes: tuple, crowding: float = 1.0,
                        tries: int = 60) -> None:
    """`complexes` (``(feature, template, mass)``) in random orientations, in free cytoplasm, not
    overlapping (`crowding` times the usual number per nm³, each given up after `tries` places
    that do not fit); each feature gets a label."""
    rng = s.rng
    kinds = {}
    for name, make, mass in complexes:
        s.labels.setdefault(name, np.zeros(s.shape, bool))
        template = make(s.apix)
        threshold = ph.envelope_threshold(template, mass, s.apix)
        template = template / np.float32(template[template >= threshold].mean())  # protein ~1
        threshold = ph.envelope_threshold(template, mass, s.apix)
        floor = _FLOOR * float(template.max())
        radius = (3 * mass * ph.A3_PER_DA / (4 * np.pi)) ** (1 / 3) / s.apix  # voxels
        kinds[name] = (ph.crop_centered(template, floor), floor, threshold, radius)
    free = max(0.0, inside - float(s.occupied.mean()))
    order = [k for k in kinds for _ in range(s.count(k, free, per=_PER_NM3[k] * crowding))]
    rng.shuffle(order)
    band = ph.membrane_band(s.apix)
    for name in order:
        cropped, floor, threshold, radius = kinds[name]
        lo = np.minimum(np.ceil(radius), (np.array(s.shape) - 1) // 2)
        angles = random_euler(rng)
        placed = ph.rotate_template(cropped, angles)
        for _ in range(tries):
            center = np.array([rng.integers(a, n - a) for a, n in zip(lo.astype(int), s.shape,
                                                                       strict=True)])
            if s.occupied[tuple(center)] or s.cell_depth(center)[0] < radius * s.apix + band:
                continue
            dst, src = _paste_box(s.shape, center, placed.shape[0])
            piece = placed[src]
            footprint = piece > floor
            if np.any(s.occupied[dst] & footprint):
                continue
            np.maximum(s.density[dst], piece, out=s.density[dst])
            s.labels[name][dst] |= _largest_component(piece >= threshold)
            s.occupied[dst] |= footprint
            # cast: mypy cannot count a starred generator's items (3 here: z, y, x)
            s.rows.append(cast(_Row, (name, *(float(c) for c in center), *angles)))
            break


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The largest connected part of `mask` (interpolation can detach single voxels)."""
    labelled, n = ndi.label(mask)
    if n <= 1:
        return mask
    return labelled == 1 + int(np.argmax(np.bincount(labelled.ravel())[1:]))


def _add_gold(s: _Scene, tries: int = 40) -> None:
    """A 10 nm gold bead anywhere in the slab (inside or outside the cell), clear of everything."""
    rng = s.rng
    r = ph.GOLD_RADIUS / s.apix
    h = int(np.ceil(r + MARGIN / s.apix)) + 1
    lo = np.minimum(np.full(3, int(np.ceil(r)) + 2), (np.array(s.shape) - 1) // 2)  # whole bead
    for _ in range(tries):
        center = np.array([rng.integers(a, n - a) for a, n in zip(lo, s.shape, strict=True)])
        dst, _ = _paste_box(s.shape, center, 2 * h + 1)
        grids = np.ogrid[dst]
        dist = np.sqrt(sum((g - c).astype(np.float32) ** 2
                           for g, c in zip(grids, center, strict=True)))
        if np.any(s.occupied[dst] & (dist <= r + MARGIN / s.apix)):
            continue
        bead = np.float32(ph.GOLD_DENSITY) * np.clip(r - dist + 0.5, 0, 1).astype(np.float32)
        np.maximum(s.density[dst], bead, out=s.density[dst])
        s.labels["gold"][dst] |= dist <= r
        s.occupied[dst] |= dist <= r + MARGIN / s.apix
        # cast: mypy cannot count a starred generator's items (3 here: z, y, x)
        s.rows.append(cast(_Row, ("gold", *(float(c) for c in center), 0.0, 0.0, 0.0)))
        return
