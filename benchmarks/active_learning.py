"""What to annotate next: tiles suggested by the network's uncertainty vs tiles picked at random.

A simulated annotator starts with the paper's training set on a synthetic cell (10 positive tiles with
ground-truth masks + 100 negatives), trains, and then adds `--add` tiles per round, by one of three
strategies: "random" tiles, the tiles :func:`tomowidgets.trainset.suggest.suggest_tiles` ranks most uncertain
on the training cell ("suggested"), or half of each ("mixed", ``explore=0.5``). Each added tile is
annotated from the ground truth: positive with its mask if it holds any of the feature, else
negative. After each round the network is retrained from scratch and scored on an unseen cell (Dice
with 1-voxel tolerance at the threshold 1.0); its calibration amplitude is printed too (a drop means
faint positives, e.g. vesicle caps, now set the annotated level). The table shows how many tiles
each strategy needs for a given Dice. From a smaller start (``--start 3 30``) the first networks
are too unstable (their amplitude swings between rounds) for any strategy to show a trend.
Logs of the runs quoted in the README are in ``benchmarks/results/active_learning/``.

Usage::

    python benchmarks/active_learning.py                          # membrane, 3 rounds of 5, ~25 min
    python benchmarks/active_learning.py --feature double_membrane --rounds 6
    python benchmarks/active_learning.py --strategy random mixed --context 2   # 2.5D networks
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import tomowidgets as tw
from tomowidgets.metrics import dice
from tomowidgets.trainset.suggest import suggest_tiles

#: Share of each round's tiles picked at random by suggest_tiles (None: all random, anywhere).
STRATEGIES = {"random": None, "suggested": 0.0, "mixed": 0.5}


def annotate(ts: tw.TrainingSet, tomo: tw.Tomogram, label: np.ndarray, centres) -> None:  # noqa: ANN001
    """Add tiles at `centres` the way a person would: positive with its mask if the feature is there."""
    h = ts.tile // 2
    for z, y, x in centres:
        mask = label[z, y - h:y - h + ts.tile, x - h:x - h + ts.tile]
        if mask.any():
            ts.add_positive(tomo, z, y, x, mask)
        else:
            ts.add_negative(tomo, z, y, x)


def random_centres(shape: tuple[int, int, int], tile: int, n: int, rng: np.random.Generator) -> list:
    h = tile // 2
    return [(int(rng.integers(0, shape[0])), int(rng.integers(h, shape[1] - tile + h + 1)),
             int(rng.integers(h, shape[2] - tile + h + 1))) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feature", default="membrane")
    parser.add_argument("--start", type=int, nargs=2, default=[10, 100], help="positives, negatives")
    parser.add_argument("--add", type=int, default=5, help="tiles added per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--snr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--context", type=int, default=0, help="slices above/below (2.5D networks)")
    args = parser.parse_args(argv)

    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    cells = [tw.synthetic.make_cell(seed=args.seed + k, snr=args.snr) for k in (0, 1)]
    pres = [tw.preprocess(c.tomogram, progress=False) for c in cells]
    label, truth = cells[0].labels[args.feature], cells[1].labels[args.feature]
    start = tw.TrainingSet.from_ground_truth(pres[0], label, feature=args.feature, rng=args.seed, perturb=1,
                                             n_positive=args.start[0], n_negative=args.start[1],
                                             context=args.context)
    curves = {}
    t0 = time.perf_counter()
    for strategy in args.strategy:
        explore = STRATEGIES[strategy]
        ts = tw.TrainingSet.concatenate([start])
        rng = np.random.default_rng(args.seed)
        curve = []
        for round_ in range(args.rounds + 1):
            net = tw.FeatureNet(args.feature, seed=args.seed, context=args.context)
            net.train(ts, progress=False)
            unseen = np.asarray(tw.apply(net, pres[1], progress=False).data)
            curve.append((len(ts), ts.n_positive, dice(unseen >= 1.0, truth, tolerance=1)))
            print(f"  {strategy:>9} round {round_}: {len(ts)} tiles ({ts.n_positive} positive), "
                  f"amplitude {net.amplitude:.3f}, Dice {curve[-1][2]:.3f}  "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
            if round_ == args.rounds:
                break
            if explore is None:
                centres = random_centres(pres[0].shape, ts.tile, args.add, rng)
            else:
                seen = np.asarray(tw.apply(net, pres[0], progress=False).data)
                table = suggest_tiles(seen, n=args.add, tile=ts.tile, exclude=ts, explore=explore,
                                      rng=rng)
                centres = table[["z", "y", "x"]].to_numpy().tolist()
            annotate(ts, pres[0], label, centres)
        curves[strategy] = curve

    context = f", context ±{args.context}" if args.context else ""
    print(f"\n{args.feature}, SNR {args.snr:g}{context}: Dice (±1 voxel) on an unseen cell after each "
          "round\n")
    print("| tiles annotated | " + " | ".join(f"{s}: positives, Dice" for s in curves) + " |")
    print("|---|" + "---|" * len(curves))
    for rows in zip(*curves.values(), strict=True):
        print(f"| {rows[0][0]} | " + " | ".join(f"{p}, {d:.3f}" for _, p, d in rows) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
