"""The built-in demo: the whole pipeline on synthetic cells, scored against their ground truth.

``tomowidgets demo`` (or :func:`run_demo`) synthesizes a training cell and a second, unseen cell,
preprocesses both, builds each feature's training set from the training cell's ground truth (10
positive tiles with masks + 100 negative tiles, as a person would click them), trains one network per
feature with the other features' positive tiles as extra negatives (competing networks,
:func:`tomowidgets.trainset.competing`), annotates the unseen cell, merges the annotations, picks
ribosomes, averages them and reports how well each step did against the unseen cell's exact ground
truth.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tomowidgets._calibration import THRESHOLD
from tomowidgets.io import Tomogram, atomic_path, write_tomogram
from tomowidgets.metrics import dice, match_particles

if TYPE_CHECKING:
    from tomowidgets.trainset import TrainingSet

__all__ = ["DEMO_FEATURES", "DemoResult", "FeatureScore", "run_demo", "score_feature", "simulated_annotation"]

#: Features the demo trains (one network each), in merge order.
DEMO_FEATURES = ("membrane", "double_membrane", "microtubule", "ribosome")
#: Other particle classes a network must NOT call (checked when the feature is trained).
DECOYS = {"ribosome": "proteasome"}
#: Fewest subvolumes the demo averages (two half sets of at least two).
MIN_PARTICLES = 4
#: Half a ribosome radius (~12.5 nm) at 10 Å/voxel: a pick this close to a true centre is correct.
RIBOSOME_MATCH_RADIUS = 6.25


@dataclass(frozen=True)
class FeatureScore:
    """How one feature's annotation compares with a synthetic cell's ground truth.

    Attributes
    ----------
    feature : str
        The feature the network was trained on.
    dice : float
        Dice of the feature's voxels in the merged annotation against its label, with a 1-voxel
        tolerance.
    decoy : str or None
        Another particle class the network must not call (e.g. proteasomes for ribosomes).
    decoy_mean : float
        Mean calibrated score of this feature's network over the decoy's voxels (below 1.0 means
        not called on average); NaN without a decoy.
    """

    feature: str
    dice: float
    decoy: str | None
    decoy_mean: float


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` measured on the unseen cell.

    Attributes
    ----------
    features : list of FeatureScore
        One per trained feature.
    picking : dict or None
        Ribosome picking ``precision``, ``recall``, ``f1``, ``n_found``, ``n_true`` (see
        :func:`tomowidgets.metrics.match_particles`), or None when ribosomes were not trained.
    resolution : float or None
        Half-map resolution in Å (FSC 0.143) of the reference-free ribosome average.
    """

    features: list[FeatureScore]
    picking: dict | None
    resolution: float | None


def score_feature(prediction: np.ndarray, labels: dict[str, np.ndarray], feature: str, *,
                  scores: np.ndarray | None = None) -> FeatureScore:
    """Compare one feature's predicted voxels (and optionally its scores) with ground truth."""
    decoy = DECOYS.get(feature)
    decoy_mean = float(scores[labels[decoy]].mean()) if decoy and scores is not None else float("nan")
    return FeatureScore(feature, dice(prediction, labels[feature], tolerance=1), decoy, decoy_mean)


def simulated_annotation(tomo: Tomogram, labels: dict[str, np.ndarray], feature: str, *, seed: int = 0,
                         perturb: int = 0, context: int = 0, n_positive: int = 10,
                         n_negative: int = 100, every_kind: bool = False) -> TrainingSet:
    """The training set a person would click for `feature`.

    The paper's: 10 positive tiles with the ground-truth mask (dilated or eroded by up to `perturb`
    pixels, like a human's brush) and 100 negatives, half of them on the other labels of `labels`
    (see :meth:`TrainingSet.from_ground_truth`); `seed` picks the tiles, `context` keeps that many
    slices above and below each tile (2.5D). `n_positive` and `n_negative` change the counts (e.g.
    half of them on each of two tomograms). With `every_kind`, a quarter of the negatives are
    shared evenly between the other labels, as a person who also clicks the rarer complexes;
    otherwise they fall on those labels' voxels, so mostly on the membranes.
    """
    from tomowidgets.preprocess import preprocessing_params
    from tomowidgets.trainset import TrainingSet

    others = [m for name, m in labels.items() if name != feature]
    decoys = others if every_kind else np.any(others, axis=0)
    return TrainingSet.from_ground_truth(tomo, labels[feature], feature=feature, rng=seed, decoys=decoys,
                                         perturb=perturb, preprocessing=preprocessing_params(tomo.apix),
                                         context=context, n_positive=n_positive, n_negative=n_negative)


def run_demo(out_dir: str | Path = "demo_output", *, shape: tuple[int, int, int] = (64, 256, 256),
             epochs: int = 20, seed: int = 0, features: tuple[str, ...] = DEMO_FEATURES,
             box: int = 32, progress: bool = True) -> DemoResult:
    """Run synth -> preprocess -> train -> apply -> merge -> pick -> average, scored on an unseen cell.

    Parameters
    ----------
    out_dir : str or Path, default "demo_output"
        Everything is written here: ``train_cell/`` and ``test_cell/`` (tomogram, density, labels,
        particles, ``preprocessed.mrc``), ``<feature>.tiles.npz`` and ``<feature>.keras`` (training
        sets and networks), ``test_cell/scores/`` (calibrated score maps), ``test_cell/labels.mrc``
        (+ ``.json``, the merged annotation), ``ribosomes.star``/``.csv`` (picks),
        ``ribosome_average.mrc``, ``ribosome_fsc.csv``, ``ribosomes_aligned.star``, ``summary.json``
        and ``summary.png`` (one page: overlays, picks, classes, average, FSC).
    shape : tuple of 3 ints, default (64, 256, 256)
        Size of each synthetic cell in voxels ``(z, y, x)`` at 10 Å/voxel.
    epochs : int, default 20
        Training epochs per network (the paper's default).
    seed : int, default 0
        The training cell uses `seed`, the unseen cell ``seed + 1``.
    features : tuple of str
        Features to train, one network each (names of :data:`tomowidgets.synthetic.FEATURES`);
        picking and averaging run when "ribosome" is among them.
    box : int, default 32
        Subtomogram box for averaging, in voxels.
    progress : bool, default True
        Print each step and show progress bars.

    Returns
    -------
    DemoResult
    """
    from tomowidgets.apply import apply
    from tomowidgets.merge import merge
    from tomowidgets.network import FeatureNet
    from tomowidgets.preprocess import preprocess
    from tomowidgets.synthetic import make_cell, write_cell
    from tomowidgets.trainset import competing

    say = print if progress else (lambda *a, **k: None)
    out = Path(out_dir)
    cells, pre = {}, {}
    for name, cell_seed in (("train_cell", seed), ("test_cell", seed + 1)):
        t0 = time.perf_counter()
        cells[name] = make_cell(shape, seed=cell_seed)
        write_cell(cells[name], out / name)
        pre[name] = preprocess(cells[name].tomogram, out=out / name / "preprocessed.mrc",
                               progress=False)
        say(f"[{name}] {cells[name]!r}\n  synthesized and preprocessed in "
            f"{time.perf_counter() - t0:.1f} s -> {out / name}/")

    # the networks compete: each trains with the other features' positive tiles as negatives
    sets = competing({feature: simulated_annotation(pre["train_cell"], cells["train_cell"].labels,
                                                    feature, seed=seed) for feature in features})
    nets = []
    for feature, ts in sets.items():
        t0 = time.perf_counter()
        net = FeatureNet(feature, seed=seed)
        net.train(ts, epochs=epochs, progress=progress)
        ts.save(out / f"{feature}.tiles.npz")
        net.save(out / f"{feature}.keras")
        nets.append(net)
        say(f"[{feature}] {ts!r}; trained in {time.perf_counter() - t0:.1f} s, calibration: "
            f"{net.calibration['method']}")

    t0 = time.perf_counter()
    # cast: apply() gives {feature: Tomogram} for a list of networks
    scores = cast("dict[str, Tomogram]",
                  apply(nets, pre["test_cell"], out=out / "test_cell" / "scores", progress=progress))
    labels = merge(scores, threshold=THRESHOLD, out=out / "test_cell" / "labels.mrc")
    test_labels = cells["test_cell"].labels
    results = [score_feature(np.asarray(labels.data) == i + 1, test_labels, name,
                             scores=np.asarray(scores[name].data))
               for i, name in enumerate(labels.names)]
    say(f"[apply + merge] {len(nets)} networks on the unseen cell in {time.perf_counter() - t0:.1f} s: "
        f"{labels!r}")
    picking = average_result = classes = picks = None
    if "ribosome" in features:
        picks, picking, classes, average_result = _pick_and_average(
            out, scores["ribosome"], cells["test_cell"], box=box, seed=seed, progress=progress, say=say)
    summary = DemoResult(results, picking, None if average_result is None else average_result.resolution)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(asdict(summary), indent=2))
    truth = np.zeros(labels.shape, np.uint8)
    for i, name in enumerate(labels.names):
        truth[test_labels[name]] = i + 1
    from tomowidgets.plots import summary_figure

    summary_figure(out / "summary.png", np.asarray(pre["test_cell"].data), labels, truth=truth,
                   picks=picks, class_averages=None if classes is None else classes.averages,
                   result=average_result,
                   title="tomowidgets demo: networks trained on one synthetic cell, applied to another")
    say("\n" + format_scores(summary) + f"\n\nEverything is in {out}/ (summary.png is a one-page overview)")
    return summary


def _pick_and_average(out: Path, scores: Tomogram, cell, *, box: int, seed: int,  # noqa: ANN001
                      progress: bool, say) -> tuple:  # noqa: ANN001
    """Pick ribosomes, write the tables, classify their projections and average them."""
    from tomowidgets.average import average, classify_2d
    from tomowidgets.particles import extract_subvolumes, pick_particles, write_particles

    t0 = time.perf_counter()
    picks = pick_particles(scores, threshold=THRESHOLD, feature="ribosome", tomogram="test_cell")
    grid: dict[str, Any] = {"apix": scores.apix, "origin": scores.origin, "shape": scores.shape}
    for suffix in (".star", ".csv"):
        write_particles(out / f"ribosomes{suffix}", picks, **grid)
    true = cell.particles[cell.particles["feature"] == "ribosome"][["z", "y", "x"]].to_numpy()
    picking = match_particles(picks[["z", "y", "x"]].to_numpy(), true, radius=RIBOSOME_MATCH_RADIUS)
    with warnings.catch_warnings(record=True) as skipped:  # picks outside the tomogram: counted
        warnings.simplefilter("always", RuntimeWarning)
        boxes, kept = extract_subvolumes(cell.tomogram, picks, box, return_table=True)
    note = f" ({skipped[0].message})" if skipped else ""
    if len(boxes) < MIN_PARTICLES:
        say(f"[pick + average] {len(picks)} ribosomes picked (precision {picking['precision']:.0%}, "
            f"recall {picking['recall']:.0%}); only {len(boxes)} boxes of {box}³{note}: too few to "
            f"average (need {MIN_PARTICLES}); use a larger cell")
        return picks, picking, None, None
    classes = classify_2d(boxes, n_classes=min(4, len(boxes)), rng=seed)
    result = average(boxes, apix=scores.apix, rng=seed, particles=kept, progress=progress)
    write_tomogram(out / "ribosome_average.mrc", result.map, apix=scores.apix,
                   labels=["tomowidgets: reference-free ribosome average"])
    with atomic_path(out / "ribosome_fsc.csv") as tmp:
        freqs, values = result.fsc
        np.savetxt(tmp, np.column_stack([freqs, values]), delimiter=",",
                   header="frequency_per_angstrom,fsc", comments="")
    assert result.particles is not None   # average(particles=...) returns them updated
    write_particles(out / "ribosomes_aligned.star", result.particles, **grid)
    say(f"[pick + average] {len(picks)} ribosomes picked (precision {picking['precision']:.0%}, "
        f"recall {picking['recall']:.0%}); {len(boxes)} boxes of {box}³{note}; {result!r}; "
        f"{time.perf_counter() - t0:.1f} s")
    return picks, picking, classes, result


def format_scores(summary: DemoResult) -> str:
    """A small text table of what the demo measured."""
    lines = ["feature          | Dice (±1 voxel) | decoy mean score",
             "-----------------|-----------------|-----------------"]
    for r in summary.features:
        decoy = f"{r.decoy} {r.decoy_mean:.2f}" if r.decoy else "—"
        lines.append(f"{r.feature:<16} | {r.dice:15.3f} | {decoy:>16}")
    if summary.picking:
        p = summary.picking
        lines.append(f"ribosome picks: {int(p['n_found'])} for {int(p['n_true'])} ribosomes, "
                     f"precision {p['precision']:.0%}, recall {p['recall']:.0%}")
    if summary.resolution is not None:
        lines.append(f"ribosome average: {summary.resolution:.1f} Å (half-map FSC 0.143)")
    return "\n".join(lines)
