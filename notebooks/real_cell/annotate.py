"""The record of how the real cell's training sets were annotated, replayed through the widgets.

The tiles below were chosen by looking at slices of the gold-erased, preprocessed EMPIAR-10499 cell
(20 Å/voxel; ``../shared/data/real/empiar10499_TS00254_20A.mrc``), shown as the mean of 5 slices
smoothed by 1.6 voxels, 64×64 tiles with an 8-voxel grid. Each ribosome was judged by eye as a dark
blob 8-12 voxels across (160-240 Å) and painted as a disk; the membrane was traced as a line along
the cell envelope; the cytoplasm (added in a second round, after the first ribosome network was seen
to fire in the ice above and beside the cell) was painted as whole tiles. This script replays those
choices through the same gestures a user makes in JupyterLab: ``TileSelector.click`` on the slice,
``MaskPainter.press/release`` with the brush (the first stroke on a new positive tile replaces its
placeholder disk). The sets were first made when strokes added to the disk and the disk was erased
by hand; both ways give the same masks.

Run from the repository root::

    python notebooks/real_cell/annotate.py [REAL_CELL.mrc]

It writes ``ribosome.tiles.npz``, ``membrane.tiles.npz`` and ``cytoplasm.tiles.npz`` next to itself
(autosaved on every gesture, as in the notebook).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

import tomowidgets as tw
from tomowidgets.preprocess import preprocessing_params
from tomowidgets.widgets import MaskPainter, TileSelector

HERE = Path(__file__).resolve().parent
REAL_CELL = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
             / "empiar10499_TS00254_20A.mrc")
ZOOM = 6  # MaskPainter canvas pixels per tile pixel

#: Ribosome tiles: (z, y, x) of the tile centre and the blobs painted in it, as (row, col, radius)
#: in tile pixels (the tile spans rows y-32..y+31 and columns x-32..x+31).
RIBOSOME_TILES = [
    ((70, 100, 170), [(8, 35, 5), (18, 23, 5), (17, 54, 4), (31, 33, 4), (44, 41, 5), (44, 22, 4),
                      (57, 26, 4)]),
    ((70, 200, 200), [(13, 49, 5), (33, 33, 4), (28, 23, 4), (40, 7, 4)]),
    ((80, 150, 170), [(15, 19, 5), (24, 44, 4), (41, 37, 5), (56, 55, 5), (49, 26, 4), (9, 53, 4)]),
    ((80, 250, 180), [(12, 24, 5), (27, 47, 5), (41, 48, 5), (58, 10, 5), (49, 27, 4), (55, 57, 4)]),
    ((90, 80, 200), [(31, 17, 5), (47, 52, 5), (40, 37, 4), (58, 40, 4)]),
    ((90, 180, 150), [(24, 52, 5), (40, 10, 5), (3, 56, 4), (53, 20, 4)]),
    ((100, 130, 200), [(45, 27, 5), (32, 36, 4), (24, 58, 4), (11, 32, 4)]),
    ((60, 160, 180), [(28, 30, 5), (41, 44, 5), (41, 57, 4), (31, 14, 4), (13, 59, 5)]),
    ((85, 60, 160), [(22, 26, 5), (34, 52, 5), (47, 42, 5), (30, 13, 4), (56, 52, 4)]),
    ((100, 230, 190), [(11, 38, 5), (30, 6, 5), (19, 15, 4), (37, 35, 4), (33, 49, 4)]),
]

#: Membrane tiles: (z, y, x) of the tile centre and the traced line, as (row, col) points in tile
#: pixels, painted with a 1.5-pixel brush (a 3-voxel, 60 Å wide line over the dark bilayer).
MEMBRANE_TILES = [
    ((80, 128, 55), [(0, 8), (16, 17), (32, 23), (48, 28), (63, 33)]),
    ((80, 224, 98), [(0, 5), (16, 13), (32, 20), (48, 26), (63, 31)]),
    ((80, 64, 258), [(0, 19), (8, 22), (24, 29), (40, 35), (56, 41), (63, 44)]),
    ((80, 160, 288), [(0, 28), (8, 30), (24, 35), (40, 40), (56, 46), (63, 49)]),
    ((50, 96, 268), [(0, 31), (8, 33), (24, 37), (40, 42), (56, 44), (63, 46)]),
    ((65, 160, 75), [(0, 2), (8, 4), (24, 10), (40, 17), (56, 24), (63, 27)]),
    ((65, 200, 290), [(0, 39), (12, 44), (24, 52), (36, 60)]),
    ((95, 200, 95), [(0, 5), (16, 10), (32, 17), (44, 22), (60, 27), (63, 28)]),
    ((88, 128, 282), [(0, 17), (20, 26), (40, 34), (63, 42)]),
    ((80, 280, 110), [(0, 15), (16, 23), (32, 31), (48, 37), (63, 41)]),
    ((60, 250, 100), [(0, 17), (16, 25), (32, 34), (48, 41), (63, 47)]),
]

#: Membrane tiles of a second round, after looking at where the first membrane network's calls
#: (score >= 1) left the envelope bare: its far ends (rows < 100, z 60-70, where it bends away from
#: the straight traces below), beside a dense vesicle on the right (z 85) and in the upper and lower
#: slices (z 60, 90-95). Only stretches where the dark bilayer is plain in the 5-slice mean were
#: traced (five of twelve candidates were left out because it was not), each line started from the
#: darkest voxel per row within 5 voxels of the first traces and corrected by eye.
MEMBRANE_TILES_SECOND_ROUND = [
    ((60, 64, 40), [(0, 2), (16, 5), (32, 10), (48, 17), (63, 24)]),
    ((70, 64, 40), [(0, 1), (16, 5), (32, 11), (48, 15), (63, 19)]),
    ((85, 112, 280), [(0, 14), (16, 21), (32, 28), (48, 34), (63, 38)]),
    ((70, 120, 282), [(0, 22), (16, 24), (32, 29), (48, 35), (63, 43)]),
    ((60, 40, 266), [(0, 0), (16, 7), (32, 14), (48, 21), (63, 26)]),
    ((90, 270, 116), [(0, 9), (16, 15), (32, 22), (48, 30), (63, 40)]),
    ((95, 150, 75), [(0, 8), (16, 14), (32, 20), (48, 25), (63, 30)]),
]


#: Cytoplasm tiles: (z, y, x) of tile centres at least 40 voxels inside both envelope lines, chosen at
#: random among :func:`inside_the_cell` (seed 0); each is painted whole with four broad strokes (the
#: painter's widest brush, 16 pixels), so the network learns the crowded texture of the cell's
#: inside against the ice, the carbon and the tomogram's edges. Its smoothed score outlines the cell,
#: inside which ribosomes are picked.
CYTOPLASM_TILES = [(55, 60, 57), (55, 60, 216), (55, 120, 160), (55, 240, 206), (65, 60, 216),
                   (65, 120, 160), (75, 120, 82), (75, 240, 133), (85, 180, 183), (95, 60, 57)]
FILL_STROKES = [([(row, 0), (row, 63)], 16.0) for row in (8, 24, 40, 56)]


def left_membrane(y: float) -> float:
    """x of the cell's left envelope at row y (traced at z = 50-95, where it is nearly upright)."""
    return 46 + 0.42 * (y - 128)


def right_membrane(y: float) -> float:
    """x of the cell's right envelope at row y."""
    return 258 + 0.354 * (y - 64)


def outside_the_cell() -> list[tuple[int, int, int]]:
    """Negative tiles without ribosomes: above and below the cell (z < 35, z > 120, ice and gold
    streaks), left of the left membrane, right of the right one (the ice edge), and tiles whose
    far edge just reaches the membrane from outside."""
    tiles = [(z, y, x) for z in (12, 19, 26, 33, 127, 134, 141, 148)
             for y, x in ((40, 60), (100, 150), (160, 240), (220, 90), (280, 200),
                          (70, 250), (130, 60), (190, 150), (250, 265))]
    for z in (50, 60, 75, 90, 100):
        tiles += [(z, y, 32 + (z % 3) * 4) for y in (215, 250) if left_membrane(y) - 36 >= 32 + 8]
        tiles += [(z, 283, 60)]
        tiles += [(z, 32, 286), (z, 48, 292)]
        tiles += [(z, y, int(left_membrane(y)) - 30) for y in (200, 265)]
        tiles += [(z, 40, int(right_membrane(40)) + 30)]
    return tiles


def beside_the_cell() -> list[tuple[int, int, int]]:
    """Negatives for the membrane's second round: the tiles of :func:`outside_the_cell` in the
    traced slices (the ice left and right of the cell, where the first network also fired) whose
    box stays 8 voxels clear of both envelope lines."""
    def clear(z: int, y: int, x: int) -> bool:
        return all(x + 31 < left_membrane(v) - 8 or x - 32 > right_membrane(v) + 8
                   or left_membrane(v) + 8 < x - 32 and x + 31 < right_membrane(v) - 8
                   for v in range(y - 32, y + 32))
    return [t for t in outside_the_cell() if 45 <= t[0] <= 110 and clear(*t)]


def inside_the_cell() -> list[tuple[int, int, int]]:
    """Cytoplasm tiles at least 40 voxels from either membrane: negatives for the membrane."""
    tiles = []
    for z in (55, 65, 75, 85, 95):
        for y in (60, 120, 180, 240):
            lo, hi = left_membrane(y) + 40, right_membrane(y) - 40
            tiles += [(z, y, int(x)) for x in np.linspace(lo, hi, 3) if 32 <= x <= 294]
    return tiles


def gold_tiles(raw: tw.Tomogram) -> list[tuple[int, int, int]]:
    """Tiles centred on the gold beads find_gold sees (erased in the training data, but their
    reconstruction streaks remain): the paper's advice to show the networks what gold looks like."""
    labels, n = ndimage.label(tw.find_gold(raw))
    centres = ndimage.center_of_mass(np.ones(raw.shape), labels, range(1, n + 1))
    nz, ny, nx = raw.shape
    return [(int(z), int(y), int(x)) for z, y, x in np.round(centres)
            if 32 <= y <= ny - 32 and 32 <= x <= nx - 32]


def preprocessed_cell(raw_path: Path, out: Path) -> tuple[tw.Tomogram, tw.Tomogram]:
    """The raw cell and its gold-erased, preprocessed version (default settings: the 20 Å low-pass
    becomes the 40 Å Nyquist limit at 20 Å/voxel, with a warning)."""
    raw = tw.read_tomogram(raw_path)
    if not out.is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # the Nyquist note, expected here
            tw.preprocess(tw.erase_gold(raw), out=out, progress=False)
    return raw, tw.read_tomogram(out, mmap=True)


def click(selector: TileSelector, z: int, y: int, x: int, mode: str) -> int:
    """Add a tile as a user does: show slice z, choose the mode, click the voxel (y, x)."""
    selector.browser.show_slice(z)
    selector.mode = mode
    if selector.click(*selector.browser.voxel_to_canvas(y + 0.5, x + 0.5)) != "added":
        raise RuntimeError(f"tile ({z}, {y}, {x}) was not added: {selector.status.message}")
    return len(selector.trainset) - 1


def stroke(painter: MaskPainter, points: list[tuple[float, float]], radius: float, tool: str) -> None:
    """One brush or eraser stroke through tile points (row, col), on the left panel."""
    painter.tool, painter.radius = tool, radius
    (r0, c0), *rest = points
    painter.press(c0 * ZOOM, r0 * ZOOM)
    for r, c in rest:
        painter.drag(c * ZOOM, r * ZOOM)
    painter.release()


def paint(painter: MaskPainter, index: int, strokes: list[tuple[list[tuple[float, float]], float]]) -> None:
    """Paint a new positive tile: its strokes (the first replaces the placeholder disk)."""
    painter.show_tile(index)
    for points, radius in strokes:
        stroke(painter, points, radius, "brush")


def annotate(feature: str, pre: tw.Tomogram, positives: list, negatives: list, path: Path) -> tw.TrainingSet:
    """Build one feature's training set through the widgets, autosaved to `path`."""
    path.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the Nyquist note, expected here
        settings = preprocessing_params(pre.apix)   # what preprocessed_cell() used
    ts = tw.TrainingSet(feature=feature, preprocessing=settings)
    selector = TileSelector(pre, ts, path=path)
    painter = MaskPainter(ts, path=path, zoom=ZOOM, tomo=pre)
    painter.follow(selector)              # as in notebook 02: the painter shows each new positive
    for (z, y, x), strokes in positives:
        paint(painter, click(selector, z, y, x, "positive"), strokes)
    for z, y, x in apart(negatives, [centre for centre, _ in positives]):
        click(selector, z, y, x, "negative")
    return ts


def apart(tiles: list[tuple[int, int, int]], taken: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The tiles whose centre lies outside every earlier box of its slice: a click inside a box
    would remove that tile, as a user who clicks there means."""
    kept: list[tuple[int, int, int]] = []
    for z, y, x in tiles:
        if all(z != t[0] or abs(y - t[1]) > 32 or abs(x - t[2]) > 32 for t in [*taken, *kept]):
            kept.append((z, y, x))
    return kept


def main(raw_path: Path = REAL_CELL) -> None:
    t0 = time.perf_counter()
    raw, pre = preprocessed_cell(raw_path, HERE / "cell20_pre.mrc")
    gold = gold_tiles(raw)
    ribosomes = [(centre, [([(r, c)], radius) for r, c, radius in blobs]) for centre, blobs in RIBOSOME_TILES]
    membranes = [(centre, [(line, 1.5)]) for centre, line in MEMBRANE_TILES + MEMBRANE_TILES_SECOND_ROUND]
    cytoplasm = [(centre, FILL_STROKES) for centre in CYTOPLASM_TILES]
    for feature, positives, negatives in (("ribosome", ribosomes, outside_the_cell() + gold),
                                          ("membrane", membranes, outside_the_cell()[:40] + inside_the_cell()
                                           + gold + beside_the_cell()),
                                          ("cytoplasm", cytoplasm, outside_the_cell() + gold)):
        ts = annotate(feature, pre, positives, negatives, HERE / f"{feature}.tiles.npz")
        print(f"{ts!r} -> {feature}.tiles.npz")
    print(f"replayed in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REAL_CELL)
