"""Do Dice calibration and hysteresis move the real cell the way they moved the synthetic ones? (#16)

On synthetic cells, calibrating membrane networks by Dice (``calibration="dice"``) instead of by the
paper's mean output on painted pixels raised the merged membrane Dice from 0.85 to 0.93: the calls
at 1.0 cover more of each membrane, at a little more cross-talk. The real cell (EMPIAR-10499,
20 Å/voxel) has no labels, but its envelope was traced (``notebooks/real_cell/annotate.py``) and
*M. pneumoniae* has no internal membranes, so in the traced slices (z 50-95, rows 40-280):

- **covered**: the share of points on the traced envelope with a membrane voxel within 2 voxels
  (a recall), and the membrane pieces per slice (one unbroken outline per side would be 2);
- **longest stretch**: the share of the traced rows that the longest single membrane piece spans
  along each side (1 is one unbroken outline; ``real_data.longest_stretch``);
- **on the envelope**: the share of the membrane label's voxels within 3 voxels of the traced
  lines (a precision: the rest lie in the cytoplasm or the ice).

The ribosome and membrane networks of ``benchmarks/real_data.py`` are reused from its ``networks/``
folder (trained there if absent); the membrane network is calibrated both ways on its own training
set and merged with the ribosome network (mean calibration, as picked), with the single threshold
and with ``merge(hysteresis=...)`` (weak voxels that continue a called membrane within the slice).
Each row also gives **ribosome on the envelope**: the share of the ribosome label's voxels within
3 voxels of the traced lines (false calls on the membrane). With ``--compete`` both networks are
trained per seed as competing networks (each with the other's positive tiles as negatives,
``tw.trainset.competing``), as the synthetic demo now trains them.

Usage::

    python benchmarks/real_calibration.py                  # ~1 min with cached networks, ~6 min without
    python benchmarks/real_calibration.py --seeds 0 1 2    # mean ± sd over three membrane networks
    python benchmarks/real_calibration.py --set OLD.tiles.npz --seeds 1 2 3   # another training set
    python benchmarks/real_calibration.py --compete --seeds 0 1 2   # competing networks, ~15 min
    python benchmarks/real_calibration.py --seeds 0 1 2 --turns 1 4  # test-time rotation, ~12 min

With ``--turns 1 4`` every membrane network is applied twice, as it is and averaged over the
tomogram turned by 0, 90, 180 and 270 degrees about z (``apply(turns=4)``; the ribosome network
likewise), so each seed's rows compare the two on the same network. The membrane network is
calibrated on its tiles as painted; with ``--turned-calibration`` it is calibrated for the turns it
is applied with (``calibrate(turns=...)``: its output averaged over the tiles turned likewise), as
``apply`` asks::

    python benchmarks/real_calibration.py --seeds 0 1 2 --turns 1 4 --turned-calibration

The rows merge with every voxel that reaches the threshold (``merge(thin=None)``, as before
2026-12-06); ``--thin`` adds, for each, the merge with the membrane's call cut to its score's full
width at half maximum (``merge``'s default since then)::

    python benchmarks/real_calibration.py --seeds 0 1 2 --thin

Hysteresis is compared at 0.5 and 0.7 of the threshold and without; ``--hysteresis`` names other
fractions (``off``: the single threshold)::

    python benchmarks/real_calibration.py --seeds 0 1 2 --thin --hysteresis 0.3 0.4 0.5
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import tomowidgets as tw
from tomowidgets._validate import check_hysteresis
from tomowidgets.cli import _number_or_off

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import OUT, REAL, SETS, annotate, cached_network, envelope_coverage, quiet, train  # noqa: E402

#: The traced slices and rows (20 Å voxels) where the envelope lines are known.
SLICES, ROWS = slice(50, 96), slice(40, 281)
#: merge() settings compared by default: the paper's single threshold, and hysteresis at these
#: fractions (``--hysteresis`` picks others).
HYSTERESIS = (None, 0.5, 0.7)
#: The measures of each row, averaged over seeds (with their sd) by :func:`summary`.
MEASURES = ("level", "envelope_covered", "pieces_per_slice", "longest_stretch", "on_envelope",
            "membrane_voxels", "ribosome_on_envelope")


def on_the_envelope(membrane: np.ndarray) -> float:
    """Share of membrane voxels in the traced slices and rows within 3 voxels of a traced line."""
    _, height, width = membrane.shape
    y, x = np.mgrid[0:height, 0:width]
    lines = np.zeros((height, width), bool)
    for trace in (annotate.left_membrane, annotate.right_membrane):
        lines |= np.abs(x - trace(y)) <= 3
    called = membrane[SLICES, ROWS]
    return float(called[:, lines[ROWS]].sum() / max(1, called.sum()))


def membrane_rows(scores: dict[str, tw.Tomogram], net: tw.FeatureNet, membrane_set: tw.TrainingSet,
                  seed: int, turns: int = 1, calibration_turns: int = 1,
                  thin: tuple[bool, ...] = (False,),
                  hystereses: tuple[float | None, ...] = HYSTERESIS) -> list[dict]:
    """The envelope measures of one membrane network's scores, calibrated each way (for
    `calibration_turns`) and merged with the ribosome scores with each of `hystereses` (None: the
    single threshold), and with the membrane thinned (``merge(thin=["membrane"])``) or not, as
    `thin` lists."""
    rows = []
    membrane = np.asarray(scores["membrane"].data)
    for method in tw.network.CALIBRATIONS:
        before = net.amplitude
        net.calibrate(membrane_set, method=method, turns=calibration_turns)
        # calibrated scores are the capped output over the amplitude: rescale rather than reapply
        membrane = membrane * np.float32(before / net.amplitude)
        for hysteresis, thinned in itertools.product(hystereses, thin):
            labels = tw.merge({"ribosome": scores["ribosome"],
                               "membrane": tw.Tomogram(membrane, scores["membrane"].apix)},
                              hysteresis=hysteresis, thin=["membrane"] if thinned else None)
            index = labels.names.index("membrane") + 1
            called = np.asarray(labels.data) == index
            ribosomes = np.asarray(labels.data) == labels.names.index("ribosome") + 1
            rows.append({"seed": seed, "turns": turns, "calibration_turns": calibration_turns,
                         "calibration": method,
                         "level": net.calibration["level"],
                         "hysteresis": hysteresis, "thin": thinned,
                         **envelope_coverage(np.asarray(labels.data), index),
                         "on_envelope": on_the_envelope(called), "membrane_voxels": float(called.mean()),
                         "ribosome_on_envelope": on_the_envelope(ribosomes)})
    return rows


def hysteresis_fraction(text: str) -> float | None:
    """``--hysteresis``'s value: a fraction of the threshold, or ``off`` for the single threshold,
    parsed as ``tomowidgets merge --hysteresis`` parses it and checked as ``merge`` checks it."""
    value = _number_or_off(text)
    try:
        return None if value is None else check_hysteresis(value, "--hysteresis",
                                                          none="('off') keeps the single threshold")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def scores_per_turns(net: tw.FeatureNet, pre: tw.Tomogram, turns: list[int]) -> dict[int, tw.Tomogram]:
    """`net`'s calibrated scores on `pre` for each number of test-time turns."""
    return {t: tw.apply(net, pre, progress=False, turns=t) for t in turns}


def summary(rows: list[dict]) -> list[dict]:
    """Mean and sd over seeds of each number of turns, calibration, hysteresis and thinning."""
    out = []
    settings = ("turns", "calibration", "hysteresis", "thin")
    for key in dict.fromkeys(tuple(r[k] for k in settings) for r in rows):
        same = [r for r in rows if tuple(r[k] for k in settings) == key]
        out.append({**dict(zip(settings, key, strict=True)), "seeds": len(same),
                    **{f"{m}{s}": f(np.array([r[m] for r in same])) for m in MEASURES
                       for s, f in (("", np.mean), ("_sd", np.std))}})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="membrane networks from these seeds (seed 0 is cached; others train, "
                             "~2.5 min each)")
    parser.add_argument("--set", type=Path, default=SETS / "membrane.tiles.npz",
                        help="the membrane training set (default: the shipped one)")
    parser.add_argument("--compete", action="store_true",
                        help="train ribosome and membrane networks per seed, competing")
    parser.add_argument("--turns", type=int, nargs="+", default=[1],
                        help="apply the networks with each of these test-time turns (apply's turns)")
    parser.add_argument("--turned-calibration", action="store_true",
                        help="calibrate the membrane network for the turns it is applied with")
    parser.add_argument("--thin", action="store_true",
                        help="also merge with the membrane's call cut to its score's width at half "
                             "maximum (merge(thin=...))")
    parser.add_argument("--hysteresis", type=hysteresis_fraction, nargs="+", default=list(HYSTERESIS),
                        metavar="FRACTION|off",
                        help="merge with hysteresis at each of these fractions of the threshold "
                             "('off': the single threshold; default: off 0.5 0.7)")
    args = parser.parse_args(argv)
    if not (REAL / "empiar10499_TS00254_20A.mrc").is_file():
        sys.exit(f"the real cell is not at {REAL}; see ../shared/data/real/README.md")
    t0 = time.perf_counter()
    raw = tw.read_tomogram(REAL / "empiar10499_TS00254_20A.mrc")
    pre = quiet(tw.preprocess, tw.erase_gold(raw, tw.find_gold(raw)), progress=False)
    ribosome_set = tw.TrainingSet.load(SETS / "ribosome.tiles.npz")
    membrane_set = tw.TrainingSet.load(args.set)
    shipped = args.set.resolve() == (SETS / "membrane.tiles.npz").resolve()
    if args.compete:
        sets = tw.trainset.competing({"ribosome": ribosome_set, "membrane": membrane_set})
        ribosome_set, membrane_set = sets["ribosome"], sets["membrane"]
    else:
        ribosomes = scores_per_turns(cached_network(ribosome_set, seed=0), pre, args.turns)
    rows = []
    for seed in args.seeds:
        if args.compete:
            ribosomes = scores_per_turns(train(ribosome_set, seed), pre, args.turns)
        cached = seed == 0 and shipped and not args.compete
        net = cached_network(membrane_set, seed=0) if cached else train(membrane_set, seed)
        if net.amplitude is None:   # calibration refused it: it answers the same everywhere
            print(f"seed {seed}: the membrane network learned nothing; left out of the table")
            continue
        for turns in args.turns:   # applied after each turns' rows: they recalibrate `net`
            with warnings.catch_warnings():   # membrane_rows recalibrates and rescales the scores
                warnings.filterwarnings("ignore", "the 'membrane' network was calibrated for")
                scores = {"ribosome": ribosomes[turns],
                          "membrane": tw.apply(net, pre, progress=False, turns=turns)}
            rows += membrane_rows(scores, net, membrane_set, seed, turns,
                                  turns if args.turned_calibration else 1,
                                  (False, True) if args.thin else (False,), tuple(args.hysteresis))
    table = summary(rows)
    seconds = time.perf_counter() - t0
    print(f"EMPIAR-10499 at 20 Å, the membrane network ({args.set.name}, {len(membrane_set)} tiles"
          f"{', competing' if args.compete else ''}) calibrated and merged several ways; mean ± sd "
          f"over seeds {args.seeds} ({seconds:.0f} s)\n")
    print("| turns | calibration | level (× mean) | hysteresis | thin | envelope covered | pieces per slice "
          "| longest stretch | on the envelope | membrane voxels | ribosome on the envelope |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['turns']} | {r['calibration']} | {r['level']:.2f} | {r['hysteresis'] or '—'} "
              f"| {'yes' if r['thin'] else 'no'} "
              f"| {r['envelope_covered']:.0%} ± {r['envelope_covered_sd']:.0%} | {r['pieces_per_slice']:.1f} "
              f"| {r['longest_stretch']:.0%} ± {r['longest_stretch_sd']:.0%} "
              f"| {r['on_envelope']:.0%} ± {r['on_envelope_sd']:.0%} | {r['membrane_voxels']:.2%} "
              f"| {r['ribosome_on_envelope']:.1%} ± {r['ribosome_on_envelope_sd']:.1%} |")
    name = ("calibration_compete" if args.compete else "calibration") + (
        "" if args.turns == [1] else "_turns" + "-".join(map(str, args.turns))) + (
        "_turned-calibration" if args.turned_calibration else "") + ("_thin" if args.thin else "") + (
        "" if tuple(args.hysteresis) == HYSTERESIS
        else "_hysteresis" + "-".join(str(h or "off") for h in args.hysteresis)) + ".json"
    (OUT / name).write_text(json.dumps({"set": str(args.set.name), "seeds": args.seeds,
                                        "compete": args.compete, "turns": args.turns,
                                        "turned_calibration": args.turned_calibration,
                                        "thin": args.thin, "hysteresis": args.hysteresis,
                                        "summary": table, "rows": rows},
                                       indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
