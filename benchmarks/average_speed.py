"""Speed and quality of reference-free subtomogram averaging on ribosomes from a synthetic cell.

Makes a synthetic cell (default 128 x 384 x 384 voxels at 10 Å, the default noise, missing wedge and
CTF), cuts boxes around the true centres of the ribosomes that lie fully inside (true positions, not
picks, so that picking errors do not enter), and runs :func:`tomowidgets.average.average` with its
defaults (reference-free, gold-standard half sets). Prints a table: particles, box, wall and CPU
time, the half-map resolution at FSC 0.143, and the resolution at FSC 0.5 against the truth, which
is the ribosome template imaged the same way minus the missing wedge
(:func:`tomowidgets.synthetic.reference_map`), after aligning the average to it with
:func:`tomowidgets.average.align_map` (FSC without a mask, so
neighbours in the boxes count against it; the half-map FSC uses the soft alignment mask).

Usage::

    python benchmarks/average_speed.py                 # 100 ribosomes, box 32
    python benchmarks/average_speed.py --particles 50 --repeats 3

Target (the issue's "done when"): half-map resolution better than 50 Å at 10 Å/voxel (Nyquist
20 Å) in about 3 minutes or less on a 2-core machine. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tomowidgets.average import align_map, average, fsc, resolution
from tomowidgets.synthetic import make_cell, reference_map

TARGET_RESOLUTION, TARGET_SECONDS = 50.0, 180.0


def ribosome_boxes(cell, box: int, limit: int) -> np.ndarray:
    """Boxes (n, box, box, box) around the true ribosome centres lying fully inside the tomogram."""
    data, h = cell.tomogram.data, box // 2
    rows = cell.particles[cell.particles["feature"] == "ribosome"]
    out = []
    for r in rows.itertuples():
        c = np.array([r.z, r.y, r.x], dtype=int)
        if np.all(c - h >= 0) and np.all(c - h + box <= data.shape):
            out.append(data[c[0] - h:c[0] - h + box, c[1] - h:c[1] - h + box, c[2] - h:c[2] - h + box])
    return np.stack(out[:limit]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 384, 384], help="cell (z, y, x)")
    parser.add_argument("--apix", type=float, default=10.0)
    parser.add_argument("--box", type=int, default=32)
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1, help="runs (different rng); medians shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    cell = make_cell(tuple(args.shape), args.apix, args.seed)
    parts = ribosome_boxes(cell, args.box, args.particles)
    truth = reference_map(cell, args.box)
    print(f"{cell!r}\ncell and boxes: {time.perf_counter() - t0:.1f} s; {len(parts)} ribosomes of "
          f"{args.box}³ (Nyquist {2 * args.apix:g} Å)")
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    header = (f"{'particles':>9}{'box':>5}{'wall s':>9}{'cpu s':>8}{'half-map 0.143 Å':>18}"
              f"{'vs truth 0.5 Å':>16}{'align score':>13}")
    print(header)
    print("-" * len(header))
    rows = []
    for rep in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = average(parts, apix=args.apix, rng=rep, progress=False)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        aligned = align_map(result.map, truth)
        freqs, curve = fsc(aligned.volume, truth, args.apix)
        vs_truth = resolution(freqs, curve, 0.5)
        rows.append((wall, cpu, result.resolution, vs_truth))
        print(f"{len(parts):>9}{args.box:>5}{wall:>9.1f}{cpu:>8.1f}{result.resolution:>18.1f}"
              f"{vs_truth:>16.1f}{aligned.score:>13.3f}")
    wall, cpu, res, vs_truth = np.median(np.array(rows), axis=0)
    if args.repeats > 1:
        print(f"{'median':>9}{args.box:>5}{wall:>9.1f}{cpu:>8.1f}{res:>18.1f}{vs_truth:>16.1f}")
    print(f"per-iteration half-map resolution (Å), last run: "
          f"{', '.join(f'{r:.1f}' for r in result.history)}")
    ok = res < TARGET_RESOLUTION and wall <= TARGET_SECONDS
    print(f"target: half-map resolution < {TARGET_RESOLUTION:g} Å in <= {TARGET_SECONDS:g} s: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
