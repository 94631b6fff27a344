"""Benchmark: what orientation priors do for microtubule and membrane-patch averages (paper Fig. 2d-e).

On synthetic cells, boxes are cut at seeds along the ground-truth microtubules and membranes (so the
comparison isolates the seeds and priors from network errors) and averaged twice from the same
boxes: as the paper does, from random orientations with a global search, and from the priors of
``filament_seeds`` / ``membrane_seeds`` (``average(prior_range=15)``: every spin, the axis tilted by
at most 15°). Prints the half-map resolution (FSC 0.143) and the time of each, per cell, then the
medians.

Usage::

    .venv/bin/python benchmarks/priors.py [--seeds 0 1 2] [--box 32] [--iterations 6]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import tomowidgets as tw
from tomowidgets.particles import extract_subvolumes

PRIOR_RANGE = 15.0
SPACING = {"microtubule": 80.0, "membrane": 120.0}   # Å between seeds


def seeds(cell: tw.synthetic.SyntheticCell, feature: str):
    """Oriented seeds on the ground truth of `feature`."""
    label = tw.Tomogram(cell.labels[feature].astype(np.float32) * 2, cell.apix)
    if feature == "microtubule":
        return tw.filament_seeds(label, SPACING[feature], lumen=80.0, feature=feature)
    return tw.membrane_seeds(label, SPACING[feature], rng=0, feature=feature)


def run(cell, feature: str, box: int, iterations: int) -> list[dict]:
    table = seeds(cell, feature)
    with warnings.catch_warnings():   # seeds near the edges are skipped, and say so
        warnings.simplefilter("ignore", RuntimeWarning)
        boxes, kept = extract_subvolumes(cell.tomogram, table, box, pad=False, return_table=True)
    rows = []
    for label, prior in (("random start, global search", None), (f"priors ±{PRIOR_RANGE:g}°", PRIOR_RANGE)):
        t0 = time.perf_counter()
        result = tw.average(boxes, apix=cell.apix, iterations=iterations, progress=False, rng=0,
                            particles=kept, prior_range=prior)
        seconds = time.perf_counter() - t0
        rows.append({"feature": feature, "start": label, "n": len(boxes),
                     "half_maps": result.resolution, "seconds": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="synthetic cells")
    parser.add_argument("--box", type=int, default=32, help="box in voxels (10 Å)")
    parser.add_argument("--iterations", type=int, default=6)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        cell = tw.synthetic.make_cell(seed=seed)
        for feature in ("microtubule", "membrane"):
            for row in run(cell, feature, args.box, args.iterations):
                rows.append({"cell": seed, **row})
                print(f"cell {seed} {row['feature']:11s} {row['start']:28s} n={row['n']:4d} half maps "
                      f"{row['half_maps']:6.1f} Å, {row['seconds']:6.1f} s", flush=True)
    print("\n| feature | start | particles | half maps (FSC 0.143) | time |")
    print("|---|---|---|---|---|")
    for feature in ("microtubule", "membrane"):
        for start in sorted({r["start"] for r in rows}):
            sel = [r for r in rows if r["feature"] == feature and r["start"] == start]
            med = {k: float(np.median([r[k] for r in sel]))
                   for k in ("n", "half_maps", "seconds")}
            print(f"| {feature} | {start} | {med['n']:.0f} | {med['half_maps']:.0f} Å | "
                  f"{med['seconds']:.0f} s |")
    print(f"\nmedians over cells {args.seeds}")


if __name__ == "__main__":
    main()
