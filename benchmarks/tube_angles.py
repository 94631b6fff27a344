"""Microtubules found against their angle to the tilt axis, with today's default networks and merge.

A tube that runs across the tilt axis (the synthetic cells tilt about y) keeps the least of its
Fourier transform through the missing wedge; in back-projected cells such tubes came out faint and
were what the microtubule networks missed (#16). This prints, for each true tube of the
unseen cells, its angle to the tilt axis and the fraction of its voxels that each simulated
annotator's merged labels call microtubule, then the recall of the tubes across the axis against
the others.

It reuses the networks that ``accuracy.py --annotators 3 --snr 0.5 --erase-gold`` trained for the
same training condition (run that first; nothing is trained here) and needs ~2 min per unseen cell
on 2 cores.

    python benchmarks/tube_angles.py --imaging tilt_series --test-imaging tilt_series
    python benchmarks/tube_angles.py --imaging tilt_series --test-imaging tilt_series --cells varied
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from tomowidgets.metrics import angles_to_tilt_axis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import accuracy  # noqa: E402  (sibling scripts, not a package)

#: Tubes at least this many degrees from the tilt axis count as running across it.
ACROSS = 75.0
#: The variant whose networks and merge are the product's defaults.
DEFAULTS = "compete-dice-hysteresis-dm-scale-0.4-lent-vote-relative-thin-filaments-contact-continued-adaptive"


def tube_axes(mask: np.ndarray, min_voxels: int = 3000) -> list[tuple[np.ndarray, float]]:
    """Each tube of a label mask (3D pieces of at least `min_voxels`) with its angle, in degrees
    (0-90), between its direction seen from above and the tilt axis y: 0 along the axis, 90
    across it (:func:`tomowidgets.metrics.angles_to_tilt_axis` of its footprint; the tubes rise
    only a few degrees out of the slice plane).
    """
    pieces, n = ndimage.label(mask)
    tubes = []
    for i in range(1, n + 1):
        piece = pieces == i
        if piece.sum() >= min_voxels:
            (angle,) = angles_to_tilt_axis(piece.any(axis=0), min_pixels=1)
            tubes.append((piece, float(angle)))
    return tubes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imaging", default="tilt_series", help="training cell's imaging model")
    parser.add_argument("--test-imaging", default="tilt_series", help="unseen cells' imaging model")
    parser.add_argument("--cells", default="standard", choices=("standard", "varied"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "accuracy")
    args = parser.parse_args(argv)

    from tomowidgets.merge import merge

    settings = accuracy.Variant(**{**accuracy.VARIANTS[DEFAULTS].__dict__, "annotators": 3})
    condition = accuracy.spread_condition(args.imaging, 0.5, True, shape=(64, 256, 256), epochs=20,
                                          seed=0, annotators=3, layout=args.cells, erase_gold=True)
    features = ("membrane", "double_membrane", "microtubule", "ribosome")
    folders = accuracy.network_folders(args.out / "networks", DEFAULTS, condition, features)
    missing = sorted({str(f) for f in folders.values() if not f.is_dir()})
    if missing:
        print(f"No networks in {', '.join(missing)}: run benchmarks/accuracy.py --annotators 3 --snr 0.5 "
              f"--erase-gold --imaging {args.imaging} ... first.")
        return 1
    models = accuracy.IMAGING_MODELS if args.imaging == accuracy.MIXED else (args.imaging,)
    sources = [(pre, cell.labels) for model in models
               for cell, pre in accuracy.make_cells(0.5, True, (64, 256, 256), 0, imaging=model,
                                                    seeds=(0,), layout=args.cells, erase_gold=True)]
    teams = accuracy.train_networks(sources, features, settings, seed=0, epochs=20, folders=folders)
    unseen = accuracy.make_cells(0.5, True, (64, 256, 256), 0, imaging=args.test_imaging,
                                 seeds=(1, 2), layout=args.cells, erase_gold=True)
    value = features.index("microtubule") + 1
    print(f"{condition} -> {args.test_imaging} ({args.cells} cells), default merge")
    print(f"{'cell':>4} {'tube':>4} {'voxels':>7} {'angle to tilt axis':>19}   recall per annotator")
    across: list[list[float]] = []
    along: list[list[float]] = []
    for c, (cell, pre) in enumerate(unseen):
        called = [np.asarray(merge(accuracy.score_maps([team], pre)).data) == value
                  for team in teams]
        for t, (tube, angle) in enumerate(tube_axes(cell.labels["microtubule"])):
            recall = [float(labels[tube].mean()) for labels in called]
            (across if angle >= ACROSS else along).append(recall)
            print(f"{c:>4} {t:>4} {int(tube.sum()):>7} {angle:>18.0f}°   "
                  + "  ".join(f"{r:.2f}" for r in recall))
    for name, rows in ((f"across the axis (>= {ACROSS:g}°)", across), ("the others", along)):
        if rows:
            print(f"tubes {name}: {len(rows)}, recall {np.mean(rows):.2f} "
                  f"(range {np.min(rows):.2f}-{np.max(rows):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
