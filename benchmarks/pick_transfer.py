"""Benchmark: why ribosome picks do not carry from one imaging model to the other (#16).

Uses the networks that ``accuracy.py --annotators 3 --snr 0.5 --ctf on --erase-gold --imaging
fourier tilt_series`` trained and cached for today's defaults (it trains them first if they are
missing, ~45 min). Prints, for the unseen cells of each imaging model (seeds 1 and 2):

1. the ribosomes' contrast in the preprocessed tomograms (mean on ribosome voxels minus the
   mean of the background 3 voxels away from every feature, in sd of the tomogram);
2. the picks of each training model's ribosome networks on each test model with the test
   tomogram multiplied by 1.0, 1.2 and 1.4 (is it contrast?);
3. the picks against the pick threshold;
4. the picks against ``pick_particles(min_size=...)`` (a fixed minimum alone, ``min_relative_size=None``);
5. with ``--edges``, how much each network's score on a ribosome depends on what lies beside it:
   the mean score over the ribosome's core (11 × 11 pixels of its central slice) in a window of
   121² pixels around it, with the field cut 12 pixels beyond its centre on one side (zeros
   beyond, as at a tomogram's edge), over the score with the whole window; ribosomes at least
   60 pixels from every side, medians over ribosomes, cells and annotators;
6. with ``--real``, the direction on the real cell (EMPIAR-10499 at 20 Å, ``real_data.py``'s
   ribosome network): picks over the whole tomogram, and the share inside the traced envelope,
   with the preprocessed tomogram multiplied by 0.85, 1.0 and 1.2.

Picks are matched within half a ribosome radius, as in ``accuracy.py``; each figure is the mean
over the three annotators of each one's mean over the two cells. Takes ~10 min on 2 cores, ~10 more
with ``--edges``.

Usage::

    .venv/bin/python benchmarks/pick_transfer.py [--edges] [--real]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import accuracy  # noqa: E402  (sibling scripts, not a package)

MODELS = ("fourier", "tilt_series")
GAINS = (1.0, 1.2, 1.4)
THRESHOLDS = (0.5, 0.6, 0.8, 1.0, 1.2)
MIN_SIZES = (300, 200, 100, 50)
#: --edges: the window around a ribosome (pixels from its centre), where its field is cut (pixels
#: beyond its centre) and the core its score is read over (pixels from its centre).
WINDOW, CUT, CORE = 60, 12, 5
SIDES = ("+x", "-x", "+y", "-y")
#: accuracy.py's cached networks of today's defaults.
VARIANT = "compete-dice-hysteresis-dm-scale-0.4-lent"
SHAPE, SNR, ANNOTATORS = (64, 256, 256), 0.5, 3


def contrast(pre: np.ndarray, labels: dict[str, np.ndarray], feature: str = "ribosome") -> float:
    """How far `feature` lies below the background in `pre`: the mean of the background (voxels 3
    away from every feature) minus the mean on `feature`."""
    background = ndimage.binary_erosion(~np.any(list(labels.values()), axis=0), iterations=3)
    return float(pre[background].mean() - pre[labels[feature]].mean())


def picks(score: np.ndarray, truth: np.ndarray, **options) -> tuple[float, float]:
    """(precision, recall) of the ribosome picks of one score map."""
    from tomowidgets.demo import RIBOSOME_MATCH_RADIUS
    from tomowidgets.metrics import match_particles
    from tomowidgets.particles import pick_particles

    found = pick_particles(score, feature="ribosome", **options)[["z", "y", "x"]].to_numpy()
    result = match_particles(found, truth, radius=RIBOSOME_MATCH_RADIUS)
    return result["precision"], result["recall"]


def scaled(tomo, gain: float):  # noqa: ANN001, ANN201
    """`tomo` with its voxels multiplied by `gain` (its particles fainter or darker)."""
    return tomo.with_data(np.asarray(tomo.data) * np.float32(gain))


def ribosome_networks(imaging: str) -> list:
    """Each annotator's cached ribosome network trained on `imaging` cells."""
    variant = accuracy.Variant(**{**accuracy.VARIANTS[VARIANT].__dict__, "annotators": ANNOTATORS})
    condition = accuracy.spread_condition(imaging, SNR, True, shape=SHAPE, epochs=20, seed=0,
                                          annotators=ANNOTATORS, erase_gold=True)
    folders = accuracy.network_folders(HERE / "results" / "accuracy" / "networks", VARIANT, condition,
                                       accuracy.DEMO_FEATURES)
    source = [(pre, cell.labels) for cell, pre in accuracy.make_cells(
        SNR, True, SHAPE, 0, imaging=imaging, seeds=(0,), erase_gold=True)]
    teams = accuracy.train_networks(source, accuracy.DEMO_FEATURES, variant, seed=0, epochs=20,
                                    folders=folders)
    return [team[accuracy.DEMO_FEATURES.index("ribosome")] for team in teams]


def ribosome_centres(cell) -> np.ndarray:  # noqa: ANN001
    """The true ribosome centres ``(z, y, x)`` of a synthetic cell."""
    particles = cell.particles
    return particles[particles["feature"] == "ribosome"][["z", "y", "x"]].to_numpy()


def pick_sweeps(net, pre, truth: np.ndarray) -> dict[str, list[tuple[float, float]]]:  # noqa: ANN001
    """(precision, recall) of one network's picks on one cell for each gain, threshold, min_size."""
    from tomowidgets.apply import apply

    rows: dict[str, list[tuple[float, float]]] = {"gain": []}
    for gain in GAINS:
        score = np.asarray(apply(net, scaled(pre, gain), progress=False).data)
        rows["gain"].append(picks(score, truth))
        if gain == 1.0:
            rows["threshold"] = [picks(score, truth, threshold=level) for level in THRESHOLDS]
            rows["min_size"] = [picks(score, truth, min_size=size, min_relative_size=None)
                                for size in MIN_SIZES]
    return rows


def cut_field(window: np.ndarray, side: str, cut: int = CUT) -> np.ndarray:
    """A copy of `window` (z, y, x, centred on a particle) with zeros from `cut` pixels beyond its
    centre on `side` ("+x", "-x", "+y" or "-y") onwards, as if the tomogram ended there."""
    out = window.copy()
    axis = {"y": 1, "x": 2}[side[1]]
    centre = window.shape[axis] // 2
    beyond = slice(centre + cut + 1, None) if side[0] == "+" else slice(0, centre - cut)
    out[(slice(None),) * axis + (beyond,)] = 0
    return out


def edge_sensitivity(net, pre, truth: np.ndarray) -> dict[str, list[float]]:  # noqa: ANN001
    """Per side, the core score of each ribosome far from every side with the field cut there,
    over its score with the whole window (see the module's docstring, item 5)."""
    from tomowidgets.apply import apply

    volume = np.asarray(pre.data)
    ratios: dict[str, list[float]] = {side: [] for side in SIDES}
    for z, y, x in np.rint(truth).astype(int):
        if min(y, x, volume.shape[1] - 1 - y, volume.shape[2] - 1 - x) < WINDOW or not (
                2 <= z < volume.shape[0] - 2):
            continue
        window = volume[z - 2:z + 3, y - WINDOW:y + WINDOW + 1, x - WINDOW:x + WINDOW + 1]

        def core(w: np.ndarray) -> float:
            score = np.asarray(apply(net, pre.with_data(w), progress=False).data)
            return float(score[2, WINDOW - CORE:WINDOW + CORE + 1, WINDOW - CORE:WINDOW + CORE + 1].mean())

        whole = core(window)
        for side in SIDES:
            ratios[side].append(core(cut_field(window, side)) / whole)
    return ratios


def print_edge_sensitivity(networks: dict[str, list], tests: dict) -> None:
    """The --edges table: each training model's ribosome `networks` on each test model's cells."""
    print(f"\nribosome core score with the field cut {CUT} px beyond the centre / with the whole "
          "window (medians):\n")
    print("| train → test | " + " | ".join(SIDES) + " | ribosomes × annotators |")
    print("|---" * (len(SIDES) + 2) + "|")
    for train, nets in networks.items():
        for test, cells in tests.items():
            ratios: dict[str, list[float]] = {side: [] for side in SIDES}
            for cell, pre in cells:
                for net in nets:
                    for side, values in edge_sensitivity(net, pre, ribosome_centres(cell)).items():
                        ratios[side] += values
            print(f"| {train} → {test} | " + " | ".join(f"{np.median(ratios[s]):.2f}" for s in SIDES)
                  + f" | {len(ratios[SIDES[0]])} |")


def real_cell_gains() -> None:
    """Print the real cell's ribosome picks with its preprocessed tomogram multiplied by each gain."""
    import real_data

    import tomowidgets as tw

    raw = tw.read_tomogram(real_data.REAL / "empiar10499_TS00254_20A.mrc")
    pre = tw.preprocess(tw.erase_gold(raw, tw.find_gold(raw)), progress=False)
    net = real_data.cached_network(tw.TrainingSet.load(real_data.SETS / "ribosome.tiles.npz"), 0)
    print("\nreal cell (EMPIAR-10499, 20 Å): ribosome picks with the tomogram multiplied by")
    for gain in (0.85, 1.0, 1.2):
        scores = tw.apply(net, scaled(pre, gain), progress=False)
        found = tw.pick_particles(scores, feature="ribosome", tomogram="TS00254")
        print(f"  {gain:g}: {len(found)} picks, {real_data.inside_the_cell(found):.0%} inside the "
              "traced envelope")


def mean_over_cells(rows: np.ndarray) -> str:
    """'precision / recall' of (cells, annotators, 2) values: mean over annotators of cell means."""
    precision, recall = rows.mean(axis=0).mean(axis=0)
    return f"{precision:.0%} / {recall:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", action="store_true", help="also the networks' dependence on a field edge")
    parser.add_argument("--real", action="store_true", help="also the real cell (needs ../shared/data/real)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    tests = {m: accuracy.make_cells(SNR, True, SHAPE, 0, imaging=m, seeds=(1, 2), erase_gold=True)
             for m in MODELS}
    print("ribosome contrast (background minus ribosome, in sd of the preprocessed tomogram):")
    for model, cells in tests.items():
        print(f"  {model}: " + ", ".join(f"{contrast(np.asarray(pre.data), cell.labels):.2f}"
                                          for cell, pre in cells))
    sweeps = {"gain": GAINS, "threshold": THRESHOLDS, "min_size": MIN_SIZES}
    table: dict[str, list[str]] = {name: [] for name in sweeps}
    networks = {train: ribosome_networks(train) for train in MODELS}
    for train, nets in networks.items():
        for test, cells in tests.items():
            # (cells, annotators, settings, 2) per sweep
            values = {name: np.zeros((len(cells), len(nets), len(v), 2)) for name, v in sweeps.items()}
            for c, (cell, pre) in enumerate(cells):
                truth = ribosome_centres(cell)
                for a, net in enumerate(nets):
                    for name, rows in pick_sweeps(net, pre, truth).items():
                        values[name][c, a] = rows
            for name, v in values.items():
                table[name].append(f"| {train} → {test} | " + " | ".join(
                    mean_over_cells(v[:, :, i]) for i in range(v.shape[2])) + " |")
    for name, levels in sweeps.items():
        print(f"\nribosome picks (precision / recall) against {name}:\n")
        print("| train → test | " + " | ".join(f"{v:g}" for v in levels) + " |")
        print("|---" * (len(levels) + 1) + "|")
        print("\n".join(table[name]))
    if args.edges:
        print_edge_sensitivity(networks, tests)
    if args.real:
        real_cell_gains()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
