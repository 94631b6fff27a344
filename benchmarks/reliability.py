"""Does the reliability report tell a weak network from a good one? Checked against unseen cells.

For each simulated annotator and feature of the accuracy benchmark's spread mode
(``benchmarks/accuracy.py --annotators 3``), the network is judged by
:func:`tomowidgets.network.check_reliability` from its own training set only (a twin trained on 80 %
of the tiles, scored on the 20 % held out), as a user would judge it. The report's held-out Dice
and verdict are set next to the Dice the same network reached, merged with its team, on two unseen
cells of each imaging model (read from the accuracy results), and next to what a user can do on new
data without training: :func:`tomowidgets.network.assess` on tiles painted on another cell. A
useful report ranks the networks as the unseen cells do and calls "weak" those that fail there.

The networks are those the accuracy benchmark trained and kept (``--accuracy/networks/``); run
``accuracy.py --annotators 3 --snr 0.5 --ctf on --imaging IMAGING`` first. Each check trains one
more network (~1.5 min on 2 cores). Results are cached as JSON in ``--out``.

Usage::

    python benchmarks/reliability.py --imaging fourier           # 12 networks, ~20 min on 2 cores
    python benchmarks/reliability.py --imaging fourier --cached  # reprint the table
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from tomowidgets.demo import DEMO_FEATURES, simulated_annotation
from tomowidgets.io import atomic_path
from tomowidgets.network import FeatureNet, assess, check_reliability
from tomowidgets.network.reliability import GOOD_DICE
from tomowidgets.preprocess import preprocess
from tomowidgets.synthetic import IMAGING_MODELS, make_cell

ROOT = Path(__file__).resolve().parent
#: The accuracy benchmark's seed offset between simulated annotators (accuracy.ANNOTATOR_SEEDS).
ANNOTATOR_SEEDS = 100


def condition(imaging: str, annotators: int) -> str:
    """The accuracy benchmark's name for its default spread condition at SNR 0.5 with CTF."""
    return f"spread_default_{imaging}_snr0.5_ctf_64x256x256_e20_s0_a{annotators}"


def unseen_dice(spread: dict, model: str, annotator: int, feature: str) -> float:
    """The annotator's merged Dice for `feature`, mean over the unseen cells of `model`."""
    cells = spread["tests"][model]["annotators"][annotator]
    return float(np.mean([cell[feature]["Dice"] for cell in cells]))


def run(imaging: str, annotators: int, accuracy_dir: Path, features: tuple[str, ...]) -> dict:
    """Check every annotator's networks; returns the reports with the unseen cells' Dice."""
    name = condition(imaging, annotators)
    spread = json.loads((accuracy_dir / f"{name}.json").read_text())
    cell = make_cell((64, 256, 256), seed=0, snr=0.5, ctf=True, imaging=imaging)
    pre = preprocess(cell.tomogram, progress=False)
    rows = []
    for annotator in range(annotators):
        seed = ANNOTATOR_SEEDS * annotator
        for feature in features:
            path = accuracy_dir / "networks" / name / f"{feature}.annotator{annotator}.keras"
            if not path.is_file():
                raise FileNotFoundError(f"'{path}' is missing: run benchmarks/accuracy.py "
                                        f"--annotators {annotators} --snr 0.5 --ctf on --imaging {imaging}")
            net = FeatureNet.load(path)
            ts = simulated_annotation(pre, cell.labels, feature, seed=seed, perturb=1)
            if net.training["trainset"]["n_positive"] != ts.n_positive:  # not the tiles it saw
                raise RuntimeError(f"{path}: trained on another training set than annotator {annotator}'s")
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                report = check_reliability(net, ts, progress=False)
            rows.append({"annotator": annotator, "feature": feature,
                         "seconds": time.perf_counter() - t0, "report": report.to_dict(),
                         "unseen": {model: unseen_dice(spread, model, annotator, feature)
                                    for model in spread["tests"]}})
            print(f"  annotator {annotator} {feature}: {report!r} ({rows[-1]['seconds']:.0f} s)", flush=True)
    return {"imaging": imaging, "annotators": annotators, "rows": rows}


def judge_on_other_cells(result: dict, accuracy_dir: Path) -> None:
    """Add to each row the Dice of `assess` on tiles a user would paint on an unseen cell (seed 1)
    of each imaging model: what a user can do to check a network on new data (no training)."""
    name = condition(result["imaging"], result["annotators"])
    for model in IMAGING_MODELS:
        cell = make_cell((64, 256, 256), seed=1, snr=0.5, ctf=True, imaging=model)
        pre = preprocess(cell.tomogram, progress=False)
        for row in result["rows"]:
            net = FeatureNet.load(accuracy_dir / "networks" / name /
                                  f"{row['feature']}.annotator{row['annotator']}.keras")
            tiles = simulated_annotation(pre, cell.labels, row["feature"], seed=7, perturb=1)
            row.setdefault("other_cell", {})[model] = assess(net, tiles).dice


def format_table(result: dict) -> str:
    models = list(result["rows"][0]["unseen"])
    head = ("| annotator | feature | held-out Dice | false calls | agreement | response | verdict | "
            + " | ".join(f"tiles of a {m} cell" for m in models) + " | "
            + " | ".join(f"unseen {m} Dice" for m in models) + " |")
    lines = [head, "|" + "---|" * (7 + 2 * len(models))]
    for row in result["rows"]:
        r = row["report"]
        lines.append(f"| {row['annotator']} | {row['feature']} | {_f(r['dice'])} | "
                     f"{_pct(r['false_calls'])} | {_f(r['agreement'])} | {_f(r['response'])} | "
                     f"{r['verdict']} | " + " | ".join(_f(row["other_cell"][m]) for m in models) + " | "
                     + " | ".join(_f(row["unseen"][m]) for m in models) + " |")
    lines.append("")
    held = np.array([_nan(row["report"]["dice"]) for row in result["rows"]])
    weak = np.array([row["report"]["verdict"] != "reliable" for row in result["rows"]])
    for m in models:
        unseen = np.array([row["unseen"][m] for row in result["rows"]])
        rho = stats.spearmanr(held, unseen, nan_policy="omit").statistic
        bad = unseen < GOOD_DICE
        other = np.array([row["other_cell"][m] for row in result["rows"]])
        rho_other = stats.spearmanr(other, unseen).statistic
        lines.append(f"{m}: Spearman rank correlation with the unseen Dice: held-out tiles {rho:.2f}, "
                     f"tiles of another {m} cell {rho_other:.2f}; "
                     f"{int((weak & bad).sum())} of {int(bad.sum())} networks below {GOOD_DICE} "
                     f"on unseen cells called weak, {int((weak & ~bad).sum())} of {int((~bad).sum())} "
                     "at or above it called weak")
    seconds = [row["seconds"] for row in result["rows"]]
    lines.append(f"check time per network: median {np.median(seconds):.0f} s")
    return "\n".join(lines)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imaging", choices=IMAGING_MODELS, default="fourier",
                        help="imaging model of the training cell")
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--features", nargs="+", default=list(DEMO_FEATURES))
    parser.add_argument("--accuracy", type=Path, default=ROOT / "results" / "accuracy",
                        help="the accuracy benchmark's results (and networks/)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "reliability")
    parser.add_argument("--cached", action="store_true", help="only reprint a cached result")
    args = parser.parse_args(argv)
    path = args.out / f"{condition(args.imaging, args.annotators)}.json"
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if path.exists():
        result = json.loads(path.read_text())
    elif args.cached:
        print(f"no cached result at {path}")
        return 1
    else:
        result = run(args.imaging, args.annotators, args.accuracy, tuple(args.features))
    if "other_cell" not in result["rows"][0] and not args.cached:
        judge_on_other_cells(result, args.accuracy)
    if not args.cached:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(result, indent=1))
    print(format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
