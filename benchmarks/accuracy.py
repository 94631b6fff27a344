"""Accuracy and reusability of the whole method against the exact ground truth of synthetic cells.

The paper could only judge its annotations by eye. Here, for each imaging condition (noise level,
with or without CTF), a simulated annotator picks the paper's training set on one synthetic cell
(10 positive tiles with ground-truth masks dilated or eroded by up to a pixel, as a person's brush
would, plus 100 negatives), one network per feature is trained with the defaults, and the networks
are applied to two *other* cells imaged the same way (the paper's reusability claim). The scores
are merged at the calibrated threshold 1.0, ribosomes are picked and averaged, and everything is
compared with the truth of those two cells:

- **Dice** of each feature's merged voxels, with a 1-voxel tolerance
  (:func:`tomowidgets.metrics.dice`), and **skeleton Dice** of their per-slice centrelines with a
  1-voxel tolerance (:func:`tomowidgets.metrics.skeleton_dice`: is the structure in the right place
  and complete, whatever its thickness);
- ribosome **precision, recall, F1 and F-beta (β = 4)** of the picks within half a ribosome radius
  (6.25 voxels) of a true centre (:func:`tomowidgets.metrics.match_particles`);
- **membrane caps**: the share of true membrane voxels within 30° of the slice plane (vesicle tops
  and bottoms, :func:`tomowidgets.metrics.face_on`) that the merged membrane finds within a voxel
  (:func:`tomowidgets.metrics.recall`), where the missing wedge leaves a 2D network blind;
- the **resolution at FSC 0.5** of the reference-free average of the picks against the true
  ribosome map (:func:`tomowidgets.metrics.fsc_resolution`, :func:`tomowidgets.synthetic.reference_map`).

Each value is the mean over the two unseen cells.

With ``--annotators N`` the benchmark asks instead how far a result can be trusted: N simulated
annotators (different tiles, brush errors and initial weights) each train their own networks on a
cell imaged by ``--imaging`` (the Fourier-mask model or the real-space tilt series reconstructed by
weighted back-projection, :func:`tomowidgets.synthetic.make_cell`), and each is scored alone on two
unseen cells of every ``--test-imaging`` model; the table gives mean ± sd over the annotators, and
the JSON keeps every annotator's values per cell. ``--cells varied`` trains on a varied cell
(several mitochondria with membranes 7-22 nm apart, tilted microtubules, crowding:
``make_cell(varied=True)``) and ``--test-cells standard varied`` scores on unseen cells of either
layout, so that what a network learned of a feature is told from what it learned of one instance.
``--test-cells distractors`` scores on varied cells that also hold complexes no annotator was
shown (apoferritin- and spliceosome-like, ``make_cell(distractors=True)``).

Results are cached per condition as JSON in
``--out`` (a rerun only computes what is missing; ``--force`` recomputes, reusing the trained
networks kept in ``--out/networks/``) and printed as one Markdown table, the one in the README.

Usage::

    python benchmarks/accuracy.py                         # 3 SNRs x with/without CTF, ~45 min on 2 cores
    python benchmarks/accuracy.py --snr 0.5 --ctf on      # one condition, ~7 min
    python benchmarks/accuracy.py --variant paper         # the paper's augmentation, for comparison
    python benchmarks/accuracy.py --variant default skip-edges compete consensus-3 --cached  # README
    python benchmarks/accuracy.py --annotators 3 --snr 0.5 --ctf on --imaging fourier tilt_series
                                                          # 3 annotators x 2 x 2 cells, ~50 min
    python benchmarks/accuracy.py --annotators 3 --snr 0.5 --ctf on --cells varied \
        --test-cells standard varied                      # train on a varied cell, ~45 min
    python benchmarks/accuracy.py --annotators 3 --snr 0.5 --ctf on --imaging tilt_series \
        --variant compete-dice-hysteresis --erase-gold    # every cell's gold erased first, ~25 min
    python benchmarks/accuracy.py --annotators 3 --snr 0.5 --ctf on --imaging mixed \
        --variant compete-dice-hysteresis --erase-gold    # half the tiles on each imaging model

The paper's figure to beat: ~89 % of picked ribosomes correct (judged by eye, recall unknown).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from tomowidgets.demo import DEMO_FEATURES, RIBOSOME_MATCH_RADIUS, simulated_annotation
from tomowidgets.io import atomic_path
from tomowidgets.merge import FILAMENT_CONTACT, FILAMENT_HYSTERESIS, FILAMENTS, THIN, VOTE
from tomowidgets.synthetic import IMAGING_MODELS

#: A ribosome's radius in voxels at 10 Å/voxel (~12.5 nm): a face of the field closer to the centre cuts it.
RIBOSOME_RADIUS = 2 * RIBOSOME_MATCH_RADIUS
#: Layouts of synthetic cells: make_cell's standard one, ``varied=True``, and a varied one with
#: ``distractors=True`` (for unseen cells).
LAYOUTS = ("standard", "varied", "distractors")
#: Noise levels (signal variance / noise variance after wedge and CTF); 0.5 is make_cell's default.
SNRS = (1.0, 0.5, 0.25)
#: The paper's figure: share of picked ribosomes judged correct by eye.
PAPER_PRECISION = 0.89
COLUMNS = ("Dice", "skel")
#: Sheet-like features whose face-on voxels (within 30° of the slice plane) get a recall, "caps".
SHEETS = ("membrane", "double_membrane")


@dataclass(frozen=True)
class Variant:
    """One way to run the pipeline.

    Attributes
    ----------
    train : dict
        Keyword arguments of :meth:`FeatureNet.train` (e.g. ``copies``, ``scale``).
    feature_train : dict
        More of them for some features only, by feature (e.g. ``{"double_membrane": {"scale": 0.25}}``).
    compete : bool
        Train each network with the other features' positive tiles as extra negatives
        (:meth:`TrainingSet.with_competitors`).
    annotators : int
        Simulated annotators per feature (different tiles, brush errors and initial weights);
        with more than one, their networks' :func:`tomowidgets.merge.consensus` mean is merged.
    pad : bool
        Average picks near the edges too, their boxes padded (``extract_subvolumes(pad=...)``).
    context : int
        Slices above and below that each network reads (2.5D, ``FeatureNet(context=...)``).
    feature_context : dict
        Another `context` for some features only, by feature (e.g. ``{"ribosome": 2}``).
    turns : int
        Test-time augmentation: apply each network to the tomogram turned by 0, 90, ... degrees
        about z (`turns` of them, up to 4) and average the scores turned back.
    networks : str or None
        The variant whose trained networks this one reuses (it changes only how they are applied).
    feature_networks : dict
        Another variant whose trained networks some features reuse, by feature.
    calibration : str or dict
        ``FeatureNet.calibrate(method=...)``: the paper's 'mean' (the default) or 'dice'; or a
        method per feature (features not named: 'mean').
        Networks loaded from the cache are calibrated again on their annotator's tiles.
    turned_calibration : bool
        Calibrate on the painted tiles averaged over the same `turns` as the scores
        (``FeatureNet.calibrate(turns=...)``, what ``tomowidgets train --turns`` does); else on the
        tiles as painted.
    hysteresis : float or None
        ``merge(hysteresis=...)``: weak voxels (this fraction of the threshold) that continue a
        called structure within their slice are labelled too. None is the paper's single
        threshold, which the "default" variant keeps so that its committed results stay comparable;
        merge's own default became 0.5 (the "hysteresis-0.5" variant) on 2026-12-04.
    vote : tuple of tuples of str, or None
        ``merge(vote=...)``: groups of features whose structures (touching within a slice) each
        take the group's feature most of their voxels have. None, the per-voxel rule, keeps the
        committed results comparable; merge's own default became the membranes' group
        (:data:`tomowidgets.merge.VOTE`, the "...-vote" variant) on 2026-12-06.
    thin : tuple of str, or None
        ``merge(thin=...)``: features whose calls are cut to their score's full width at half
        maximum. None, the paper's rule, keeps the committed results comparable; merge's own
        default became the membrane's (:data:`tomowidgets.merge.THIN`, the "...-thin" variant) on
        2026-12-06.
    filaments : tuple of str, or None
        ``merge(filaments=...)``: features whose in-slice pieces far wider than a microtubule are
        left to the other features. None keeps the committed results comparable; merge's own default
        became the microtubule's (:data:`tomowidgets.merge.FILAMENTS`, the "...-filaments" variant)
        on 2026-12-06.
    filament_contact : float or None
        ``merge(filament_contact=...)``: the fraction of the voxels around a filament's in-slice
        piece called another feature from which the piece is left to the other features. None
        keeps the committed results comparable; merge's own default became
        :data:`tomowidgets.merge.FILAMENT_CONTACT` (the "...-contact" variant) on 2026-12-07.
    filament_hysteresis : float or None
        ``merge(filament_hysteresis=...)``: the hysteresis of the `filaments` features. None
        (filaments continued as `hysteresis` says) keeps the committed results comparable; merge's
        own default became :data:`tomowidgets.merge.FILAMENT_HYSTERESIS` (the "...-continued"
        variant) on 2026-12-07.
    pick : dict or None
        Keyword arguments of ``pick_particles`` for the ribosome picks; {} is the product's
        defaults. None, regions at the threshold of at least 300 voxels (the defaults before
        2026-12-06), keeps the committed results comparable; since then the regions are grown to
        0.4 of the threshold and had to hold 10⁶ Å³ (the "...-vote-picks" variant), since
        a later change that day 3·10⁵ Å³ and 0.4 of the median region ("...-vote-relative"), and
        since 2026-12-07 the threshold is lowered where the picks' median core score falls below
        1.5 times it ("...-continued-adaptive"; the earlier variants pin ``core_score=None``).
    every_kind : tuple of str
        Features whose annotators share a quarter of their negatives evenly between the cell's
        other labels (``simulated_annotation(every_kind=True)``), the proteasomes and beads too, as
        a person who clicks each kind of structure; for the others the decoy negatives fall on
        those labels' voxels, so mostly on the membranes.
    """

    train: dict = field(default_factory=dict)
    feature_train: dict = field(default_factory=dict)
    compete: bool = False
    annotators: int = 1
    pad: bool = True
    context: int = 0
    feature_context: dict = field(default_factory=dict)
    turns: int = 1
    networks: str | None = None
    feature_networks: dict = field(default_factory=dict)
    calibration: str | dict = "mean"
    turned_calibration: bool = False
    hysteresis: float | None = None
    vote: tuple[tuple[str, ...], ...] | None = None
    thin: tuple[str, ...] | None = None
    filaments: tuple[str, ...] | None = None
    filament_contact: float | None = None
    filament_hysteresis: float | None = None
    pick: dict | None = None
    every_kind: tuple[str, ...] = ()


#: Pipeline settings compared in the table. "default" is the product's before 2026-12-04 (networks
#: trained alone, calibrated by the mean, merged with the single threshold); "skip-edges" the product
#: before edge boxes were padded (picks whose box crosses the top or bottom are not averaged);
#: "paper" the paper's augmentation (each positive tile in 10 rotated copies, each negative once:
#: 200 tiles per epoch instead of 600); "scale-0.25" adds magnification by up to ±25 % to the
#: augmentation; "compete", "consensus-3" and "context-1"/"context-2" (2.5D networks reading 1 or 2
#: slices above and below) are the options of notebook 07; "dice-calibration" the default networks
#: calibrated so that their calls at 1.0 best reproduce the painted masks (#16), "dice-continuous"
#: only the membranes' and microtubules' (the ribosomes', which are picked, by the mean); "blur-1" blurs the
#: augmented copies, "turns-4" averages the scores of the tomogram turned 0/90/180/270 degrees;
#: "compete-dice" is "compete" with the calibration of "dice-continuous"; "hysteresis-0.5" merges
#: with ``hysteresis=0.5`` (merge's default since 2026-12-04), "dice-hysteresis" both;
#: "compete-hysteresis" merges the competing networks with it, "compete-dice-hysteresis" also
#: calibrates them as "dice-continuous": the product's defaults since 2026-12-04 (competing
#: networks, calibration="auto", hysteresis 0.5), while "default" keeps the paper's settings so
#: that its committed results stay comparable; "compete-dice-hysteresis-turns-4" adds the
#: test-time rotation of "turns-4" to them, calibrated on unturned tiles, and
#: "compete-dice-hysteresis-turned-4" on tiles averaged over the same turns (``train --turns 4``);
#: "compete-dice-hysteresis-dm-scale-0.25" magnifies the double membranes' augmented tiles by up to
#: ±25 % (their networks trained on one mitochondrion know only its membrane spacing), the other
#: features' networks trained as "compete"; "compete-dice-hysteresis-dm-scale-0.4" by up to ±40 %;
#: "compete-dice-hysteresis-dm-scale-0.4-lent" also magnifies the double-membrane tiles that the
#: other networks borrow as negatives by up to ±40 % (``train(lent_scale=...)``), and
#: "compete-dice-hysteresis-dm-scale-0.4-lent-0.6" by up to ±60 % (9-23 nm from a 14 nm mitochondrion),
#: "compete-dice-hysteresis-dm-scale-0.6-lent-0.6" also the double membranes' own tiles;
#: "compete-dice-hysteresis-dm-scale-0.4-lent-vote" merges the "...-lent" networks letting the
#: membranes and double membranes vote (``merge(vote=VOTE)``, the product's default since 2026-12-06),
#: "...-lent-vote-3" the microtubules with them; "...-lent-vote-picks" also picks the ribosomes in
#: regions grown to 0.4 of the threshold holding at least 10⁶ Å³ (the product's first rule of
#: 2026-12-06), "...-lent-vote-relative" with the product's defaults since a later change that day
#: (at least 3·10⁵ Å³ and 0.4 of the median region); "...-lent-vote-relative-thin" also cuts the
#: membranes' calls to their score's full width at half maximum (``merge(thin=THIN)``, the
#: product's default since a fourth change that day); "...-thin-filaments" also leaves the
#: microtubules' in-slice pieces far wider than a tube to the other features
#: (``merge(filaments=FILAMENTS)``, the product's default since a fifth change that day);
#: "...-filaments-contact" also those flanked by other features' calls for a fifth of their
#: surroundings (``merge(filament_contact=FILAMENT_CONTACT)``, the product's default since 2026-12-07);
#: "...-contact-continued" also continues the microtubules' calls down to 0.3 of the threshold,
#: where they reach 0.3 of their local peak (``merge(filament_hysteresis=FILAMENT_HYSTERESIS)``, the
#: product's default since a later change); "...-continued-adaptive" also lowers the ribosomes'
#: pick threshold where their picks' median core score falls below 1.5 times it
#: (``pick_particles(core_score=PICK_CORE_SCORE)``, the product's default since a third change that day).
#: Dice calibration for the continuous features, the mean for the ribosomes (which are picked).
DICE_CONTINUOUS = dict.fromkeys(("membrane", "double_membrane", "microtubule"), "dice")
VARIANTS = {
    "default": Variant(),
    "skip-edges": Variant(pad=False),
    "paper": Variant(train={"copies": 10, "negative_copies": 1}),
    "scale-0.25": Variant(train={"scale": 0.25}),
    "compete": Variant(compete=True),
    "consensus-3": Variant(annotators=3),
    "context-1": Variant(context=1),
    "context-2": Variant(context=2),
    "turns-4": Variant(turns=4, networks="default"),
    "blur-1": Variant(train={"blur": 1.0}),
    "dice-calibration": Variant(calibration="dice", networks="default"),
    "dice-continuous": Variant(networks="default", calibration=DICE_CONTINUOUS),
    "compete-dice": Variant(compete=True, networks="compete", calibration=DICE_CONTINUOUS),
    "compete-hysteresis": Variant(compete=True, networks="compete", hysteresis=0.5),
    "compete-dice-hysteresis": Variant(compete=True, networks="compete", hysteresis=0.5,
                                       calibration=DICE_CONTINUOUS),
    "compete-dice-hysteresis-turns-4": Variant(compete=True, networks="compete", hysteresis=0.5,
                                               turns=4, calibration=DICE_CONTINUOUS),
    "compete-dice-hysteresis-turned-4": Variant(compete=True, networks="compete", hysteresis=0.5,
                                                turns=4, calibration=DICE_CONTINUOUS,
                                                turned_calibration=True),
    **{f"compete-dice-hysteresis-dm-scale-{scale:g}": Variant(
        compete=True, hysteresis=0.5, calibration=DICE_CONTINUOUS,
        feature_train={"double_membrane": {"scale": scale}}) for scale in (0.25, 0.4)},
    "compete-dice-hysteresis-dm-scale-0.4-lent": Variant(
        compete=True, hysteresis=0.5, calibration=DICE_CONTINUOUS,
        train={"lent_scale": {"double_membrane": 0.4}},
        feature_train={"double_membrane": {"scale": 0.4}}),
    **{f"compete-dice-hysteresis-dm-scale-{own:g}-lent-{lent:g}": Variant(
        compete=True, hysteresis=0.5, calibration=DICE_CONTINUOUS,
        train={"lent_scale": {"double_membrane": lent}},
        feature_train={"double_membrane": {"scale": own}}) for own, lent in ((0.4, 0.6), (0.6, 0.6))},
    "hysteresis-0.5": Variant(networks="default", hysteresis=0.5),
    "dice-hysteresis": Variant(networks="default", hysteresis=0.5, calibration=DICE_CONTINUOUS),
}
_LENT = "compete-dice-hysteresis-dm-scale-0.4-lent"
_VOTE_3 = (("membrane", "double_membrane", "microtubule"),)
VARIANTS.update({f"{_LENT}-{name}": replace(VARIANTS[_LENT], networks=_LENT, vote=vote)
                 for name, vote in (("vote", VOTE), ("vote-3", _VOTE_3))})
#: The grown regions' rule of 2026-12-06 with its fixed minimum (10⁶ Å³), as "...-vote-picks" ran it.
GROWN_PICKS = {"min_size": 1000, "min_relative_size": None, "core_score": None}
#: The relative minimum of later that day, at the threshold as given (the defaults until 2026-12-07).
RELATIVE_PICKS = {"core_score": None}
VARIANTS[f"{_LENT}-vote-picks"] = replace(VARIANTS[f"{_LENT}-vote"], pick=GROWN_PICKS)
VARIANTS[f"{_LENT}-vote-relative"] = replace(VARIANTS[f"{_LENT}-vote"], pick=RELATIVE_PICKS)
VARIANTS[f"{_LENT}-vote-relative-thin"] = replace(VARIANTS[f"{_LENT}-vote-relative"], thin=THIN)
VARIANTS[f"{_LENT}-vote-relative-thin-filaments"] = replace(VARIANTS[f"{_LENT}-vote-relative-thin"],
                                                            filaments=FILAMENTS)
VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin-filaments"], filament_contact=FILAMENT_CONTACT)
VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact"], filament_hysteresis=FILAMENT_HYSTERESIS)
VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued-adaptive"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued"], pick={})
#: Today's defaults with 2.5D networks (each reads 2 slices above and below, as "context-2"), tried
#: so that they might see a vesicle's ring shrink towards its top where a mitochondrion's two rings
#: stay nested (on varied back-projected cells the continuous features lost, the ribosomes gained).
VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued-context-2"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued"], networks=None, context=2)
#: Today's defaults with the ribosomes' networks alone 2.5D (those of "...-context-2"), the others'
#: as before: the ribosomes gained from the context where the continuous features lost.
VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued-ribosome-context-2"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin-filaments-contact-continued"], feature_context={"ribosome": 2},
    feature_networks={"ribosome": f"{_LENT}-vote-relative-thin-filaments-contact-continued-context-2"})
#: Today's defaults with the membranes' own augmented tiles magnified by up to ±40 % as well, so
#: that their network sees vesicles of more sizes (its own networks; the others' are the "...-lent" ones).
VARIANTS[f"{_LENT}-vote-relative-thin-membrane-scale-0.4"] = replace(
    VARIANTS[f"{_LENT}-vote-relative-thin"], networks=None,
    feature_train={"double_membrane": {"scale": 0.4}, "membrane": {"scale": 0.4}})
#: Today's defaults, trained on the tiles of annotators who also click the rarer kinds of structure
#: (proteasomes, beads) as negatives (``every_kind``): the varied cells' picks lost precision on
#: proteasomes that the annotators had never shown the ribosome networks. "...-every-kind" for
#: every feature (on varied back-projected cells the membranes then lost), "...-ribosome-every-kind"
#: for the ribosomes alone (the other networks those of "...-lent").
_ADAPTIVE = f"{_LENT}-vote-relative-thin-filaments-contact-continued-adaptive"
VARIANTS[f"{_ADAPTIVE}-every-kind"] = replace(VARIANTS[_ADAPTIVE], networks=None,
                                              every_kind=tuple(DEMO_FEATURES))
VARIANTS[f"{_ADAPTIVE}-ribosome-every-kind"] = replace(
    VARIANTS[_ADAPTIVE], every_kind=("ribosome",),
    feature_networks={"ribosome": f"{_ADAPTIVE}-every-kind"})
#: ``pick_particles`` options of the variants before 2026-12-06 (``Variant.pick`` None).
OLD_PICKS = {"hysteresis": None, "min_size": 300, "min_relative_size": None, "core_score": None}
#: Seed offset between simulated annotators.
ANNOTATOR_SEEDS = 100
#: ``--imaging`` of a training cell imaged by every model, half of the tiles clicked on each.
MIXED = "mixed"


def make_cells(snr: float, ctf: bool, shape: tuple[int, int, int], seed: int, *,
               imaging: str = "fourier", seeds: tuple[int, ...] = (0, 1, 2), layout: str = "standard",
               erase_gold: bool = False) -> list:
    """The training cell (`seed`) and two unseen cells, with their preprocessed tomograms.

    `layout` is one of :data:`LAYOUTS`: "distractors" is a varied cell with the distractors.

    With `erase_gold`, each tomogram's gold beads are first replaced by local background
    (:func:`tomowidgets.preprocess.erase_gold`, what ``tomowidgets preprocess --erase-gold`` does);
    the cells' truth and the tomogram that picks are averaged from are left as they were.
    """
    from tomowidgets.preprocess import erase_gold as erase
    from tomowidgets.preprocess import preprocess
    from tomowidgets.synthetic import make_cell

    cells = []
    for s in seeds:
        cell = make_cell(shape, seed=seed + s, snr=snr, ctf=ctf, imaging=imaging,
                         varied=layout != "standard", distractors=layout == "distractors")
        tomo = erase(cell.tomogram) if erase_gold else cell.tomogram
        cells.append((cell, preprocess(tomo, progress=False)))
    return cells


def score_cell(scores: dict, cell, *, threshold: float, box: int, seed: int,  # noqa: ANN001
               pad: bool = True, hysteresis: float | None = None, vote: tuple | None = None,
               thin: tuple | None = None, filaments: tuple | None = None,
               filament_contact: float | None = None, filament_hysteresis: float | None = None,
               pick: dict | None = None, picked: dict | None = None) -> dict:
    """All the metrics of one unseen cell from its score maps (one per feature).

    `picked` caches the picking metrics by ribosome map, for variants that share it.
    """
    from tomowidgets.merge import merge
    from tomowidgets.metrics import confusion_matrix, dice, face_on, recall, skeleton_dice

    labels = merge(scores, threshold=threshold, hysteresis=hysteresis, vote=vote, thin=thin,
                   filaments=filaments, filament_contact=filament_contact,
                   filament_hysteresis=filament_hysteresis)
    result = {}
    for i, name in enumerate(labels.names):
        called, truth = np.asarray(labels.data) == i + 1, cell.labels[name]
        result[name] = {"Dice": dice(called, truth, tolerance=1), "skel": skeleton_dice(called, truth)}
        if name in SHEETS:  # membranes within 30° of the slice plane: vesicle caps
            result[name]["caps"] = recall(called, face_on(truth), tolerance=1)
    counts = confusion_matrix(labels.data, cell.labels, labels.names)[1:, 1:]
    # cross-talk: share of the voxels called as some feature that lie on another true feature
    result["merge"] = {"cross_talk": float((counts.sum() - np.trace(counts)) / max(1, counts.sum()))}
    if "ribosome" in scores:
        picked = {} if picked is None else picked
        key = id(scores["ribosome"])
        if key not in picked:
            picked[key] = pick_and_average(scores["ribosome"], cell, threshold=threshold, box=box,
                                           seed=seed, pad=pad, pick=pick)
        result["picking"] = picked[key]
    return result


def pick_and_average(scores, cell, *, threshold: float, box: int, seed: int,  # noqa: ANN001
                     pad: bool = True, pick: dict | None = None) -> dict:
    """Pick ribosomes (``pick_particles(**pick)``; None: :data:`OLD_PICKS`), match them to the
    truth, average them and compare with the true map."""
    from tomowidgets.average import average
    from tomowidgets.metrics import fsc_resolution, match_particles
    from tomowidgets.particles import extract_subvolumes, pick_particles
    from tomowidgets.synthetic import reference_map

    options = OLD_PICKS if pick is None else pick
    picks = pick_particles(scores, threshold=threshold, feature="ribosome", **options)
    table = cell.particles
    truth = table[table["feature"] == "ribosome"][["z", "y", "x"]].to_numpy()
    found = picks[["z", "y", "x"]].to_numpy()
    result = match_particles(found, truth, radius=RIBOSOME_MATCH_RADIUS)
    result.update(recall_by_faces(found, truth, cell.tomogram.shape))
    result.update(false_picks_on(found, truth, table))
    with warnings.catch_warnings():  # without pad, picks too close to an edge are left out
        warnings.simplefilter("ignore", RuntimeWarning)
        boxes = extract_subvolumes(cell.tomogram, picks, box, pad=pad)
    result["averaged"] = float(len(boxes))
    result["fsc05"] = float("nan")
    if len(boxes) >= 4:
        avg = average(boxes, apix=cell.apix, rng=seed, progress=False)
        result["fsc05"] = fsc_resolution(avg.map, reference_map(cell, box), cell.apix, threshold=0.5)
    return result


def recall_by_faces(found: np.ndarray, truth: np.ndarray, shape: tuple[int, ...]) -> dict[str, float]:
    """Recall of the true ribosomes that a face of the field cuts (centre within
    :data:`RIBOSOME_RADIUS` of one), of those at an x face (across the tilt axis), and of the
    others (NaN where there are none): the networks see less of a particle cut by the field."""
    from tomowidgets.metrics import match_particles

    truth = np.asarray(truth, dtype=float).reshape(-1, 3)
    to_faces = np.minimum(truth, np.asarray(shape) - 1 - truth)
    cut = to_faces < RIBOSOME_RADIUS
    groups = {"recall_inside": ~cut.any(axis=1), "recall_at_faces": cut.any(axis=1),
              "recall_at_x_faces": cut[:, 2]}
    return {name: float(match_particles(found, truth[which], radius=RIBOSOME_MATCH_RADIUS)["recall"])
            for name, which in groups.items()}


def false_picks_on(found: np.ndarray, truth: np.ndarray, particles) -> dict[str, float]:  # noqa: ANN001
    """How many picks that match no ribosome lie within :data:`RIBOSOME_RADIUS` of a particle of
    each other kind in the table `particles` (``picks_on_<kind>``; the nearest one's kind)."""
    from scipy.spatial import cKDTree

    found = np.asarray(found, dtype=float).reshape(-1, 3)
    others = particles[particles["feature"] != "ribosome"]
    counts = {f"picks_on_{kind}": 0.0 for kind in sorted(set(others["feature"]))}
    if len(truth) and len(found):
        found = found[cKDTree(truth).query(found)[0] > RIBOSOME_MATCH_RADIUS]
    if len(found) and len(others):
        distance, nearest = cKDTree(others[["z", "y", "x"]].to_numpy()).query(found)
        for kind in others["feature"].to_numpy()[nearest[distance <= RIBOSOME_RADIUS]]:
            counts[f"picks_on_{kind}"] += 1
    return counts


def annotate(sources: list[tuple], feature: str, *, seed: int, context: int = 0,  # noqa: ANN201
             every_kind: bool = False):
    """One simulated annotator's tiles for `feature` (brush errors of a pixel), the paper's 10
    positives and 100 negatives shared out evenly between the ``(preprocessed tomogram, labels)``
    of `sources`; with one source exactly :func:`simulated_annotation`'s."""
    from tomowidgets.trainset import TrainingSet

    return TrainingSet.concatenate([
        simulated_annotation(pre, truth, feature, seed=seed + i, perturb=1, context=context,
                             n_positive=10 // len(sources), n_negative=100 // len(sources),
                             every_kind=every_kind)
        for i, (pre, truth) in enumerate(sources)])


def train_networks(sources: list[tuple], features: tuple[str, ...], variant: Variant, *,
                   seed: int, epochs: int, folders: dict[str, Path] | None = None) -> list[list]:
    """Per simulated annotator, one trained network per feature, loaded from the feature's folder
    in `folders` if there, else trained and kept there (:func:`network_folders`).

    `sources` are the ``(preprocessed tomogram, labels)`` the annotator clicks on (:func:`annotate`).
    """
    from tomowidgets.network import FeatureNet

    teams = []
    contexts = {f: variant.feature_context.get(f, variant.context) for f in features}
    for annotator in range(variant.annotators):
        s = seed + ANNOTATOR_SEEDS * annotator
        # competing sets share their context, so each context in use gets every feature's tiles
        clicked = {k: {f: annotate(sources, f, seed=s, context=k, every_kind=f in variant.every_kind)
                       for f in features}
                   for k in set(contexts.values())}
        sets = {f: clicked[contexts[f]][f] for f in features}
        if variant.compete:
            sets = {f: ts.with_competitors([clicked[contexts[f]][o] for o in features if o != f])
                    for f, ts in sets.items()}
        team = []
        for feature in features:
            path = None if folders is None else folders[feature] / f"{feature}.annotator{annotator}.keras"
            method = (variant.calibration.get(feature, "mean") if isinstance(variant.calibration, dict)
                      else variant.calibration)
            turns = variant.turns if variant.turned_calibration else 1
            if path is not None and path.is_file():
                net = FeatureNet.load(path)
                net.calibrate(sets[feature], method=method, turns=turns)
                team.append(net)
                continue
            net = FeatureNet(feature, seed=s, context=contexts[feature])
            # no magnification unless the variant asks: the variants predate FEATURE_SCALE
            options = {"scale": 0.0, "lent_scale": {}, **variant.train,
                       **variant.feature_train.get(feature, {})}
            net.train(sets[feature], epochs=epochs, progress=False, calibration=method, **options)
            if path is not None:
                net.save(path)
            if turns > 1:
                net.calibrate(sets[feature], method=method, turns=turns)
            team.append(net)
        teams.append(team)
    return teams


def network_folders(root: Path, variant: str, condition: str, features: tuple[str, ...]) -> dict[str, Path]:
    """Where each feature's networks for `variant` are kept under `root` for one training
    condition: ``spread_<networks>_<condition>/``, where <networks> is the variant named in
    ``feature_networks`` for that feature, else in ``networks``, else `variant` itself."""
    settings = VARIANTS[variant]
    own = settings.networks or variant
    return {f: root / f"spread_{settings.feature_networks.get(f, own)}_{condition}" for f in features}


def score_maps(teams: list[list], pre, turns: int = 1) -> dict:  # noqa: ANN001
    """Each feature's calibrated scores on `pre`: one network's, or the annotators' consensus
    (`turns` > 1: averaged over the tomogram turned about z, ``apply(turns=...)``)."""
    from tomowidgets.apply import apply
    from tomowidgets.merge import consensus

    applied = [apply(team, pre, progress=False, turns=turns) for team in teams]
    if len(applied) == 1:
        return applied[0]
    return {name: consensus([maps[name] for maps in applied]).mean for name in applied[0]}


def run_condition(snr: float, ctf: bool, variant: str, *, shape: tuple[int, int, int], seed: int,
                  epochs: int, box: int, features: tuple[str, ...], cache: Path | None = None) -> dict:
    """Train on one cell, score on two others; returns the mean of each metric and the timings.

    With `cache`, the trained networks are kept there and reused by a rerun (e.g. after a change
    to merging, picking or averaging).
    """
    t0 = time.perf_counter()
    (train_cell, train_pre), *unseen = make_cells(snr, ctf, shape, seed)
    t_cells = time.perf_counter() - t0
    t0 = time.perf_counter()
    teams = train_networks([(train_pre, train_cell.labels)], features, VARIANTS[variant], seed=seed,
                           epochs=epochs, folders=None if cache is None else dict.fromkeys(features, cache))
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    per_cell = [score_cell(score_maps(teams, pre), cell, threshold=1.0, box=box, seed=seed,
                           pad=VARIANTS[variant].pad) for cell, pre in unseen]
    t_score = time.perf_counter() - t0
    mean = {key: {m: float(np.mean([c[key][m] for c in per_cell])) for m in per_cell[0][key]}
            for key in per_cell[0]}
    return {"snr": snr, "ctf": ctf, "variant": variant, "shape": list(shape), "seed": seed,
            "epochs": epochs, "mean": mean, "cells": per_cell,
            "seconds": {"cells": t_cells, "train": t_train, "apply_score": t_score}}


def run_spread(snr: float, ctf: bool, variants: tuple[str, ...], *, train_imaging: str,
               test_imaging: tuple[str, ...], annotators: int, shape: tuple[int, int, int], seed: int,
               epochs: int, box: int, features: tuple[str, ...], folders: dict[str, Path] | None = None,
               train_cells: str = "standard", test_cells: tuple[str, ...] = ("standard",),
               erase_gold: bool = False) -> dict[str, dict]:
    """Each simulated annotator on its own, scored on two unseen cells of each imaging model.

    The annotators click different tiles with different brush errors on the same training cell
    (imaged by `train_imaging`) and their networks start from different weights; each annotator's
    networks are merged and scored alone (no consensus), so the spread between annotators is the
    run-to-run spread a user sees. The unseen cells have the same layouts (seeds ``seed + 1``,
    ``seed + 2``) under every model of `test_imaging`, so the models' rows differ by imaging only;
    `test_cells` names their layouts (:data:`LAYOUTS`, tests named "fourier",
    "fourier varied", ...), `train_cells` the training cell's; `erase_gold` erases every cell's
    gold before preprocessing (:func:`make_cells`). `train_imaging` "mixed": the annotator clicks
    half of the tiles on the training cell imaged by each model.

    `variants` share one set of networks (kept in `folders`, by feature) and one way of applying
    them (``turns``): the networks are applied once per cell, and each variant's calibration only
    rescales their scores (calibrated score = output / amplitude) before its merge.
    Returns, per variant, the per-annotator, per-cell metrics and their mean and sd over annotators.
    """
    t0 = time.perf_counter()
    models = IMAGING_MODELS if train_imaging == MIXED else (train_imaging,)
    sources = [(pre, cell.labels) for model in models
               for cell, pre in make_cells(snr, ctf, shape, seed, imaging=model, seeds=(0,),
                                           layout=train_cells, erase_gold=erase_gold)]
    unseen = {cells_name(model, layout): make_cells(snr, ctf, shape, seed, imaging=model, seeds=(1, 2),
                                                   layout=layout, erase_gold=erase_gold)
              for layout in test_cells for model in test_imaging}
    t_cells = time.perf_counter() - t0
    settings = {v: Variant(**{**VARIANTS[v].__dict__, "annotators": annotators}) for v in variants}
    t0 = time.perf_counter()
    teams = {v: train_networks(sources, features, settings[v], seed=seed, epochs=epochs, folders=folders)
             for v in variants}
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    applied = teams[variants[0]]
    maps = {model: [[score_maps([team], pre, settings[variants[0]].turns) for _, pre in cells]
                    for team in applied] for model, cells in unseen.items()}
    t_apply = time.perf_counter() - t0
    results = {}
    picked: dict = {}   # ribosome maps that a variant leaves as they were are picked once
    for v in variants:
        t0 = time.perf_counter()
        per_model: dict = {}
        for model, cells in unseen.items():
            per_model[model] = []
            for a in range(annotators):
                per_cell = []
                for c, (cell, _) in enumerate(cells):
                    scores = rescaled(maps[model][a][c], applied[a], teams[v][a])
                    same = ("ribosome" in scores and scores["ribosome"] is maps[model][a][c]["ribosome"]
                            and settings[v].pad == settings[variants[0]].pad
                            and settings[v].pick == settings[variants[0]].pick)
                    per_cell.append(score_cell(scores, cell, threshold=1.0, box=box, seed=seed,
                                               pad=settings[v].pad, hysteresis=settings[v].hysteresis,
                                               vote=settings[v].vote, thin=settings[v].thin,
                                               filaments=settings[v].filaments,
                                               filament_contact=settings[v].filament_contact,
                                               filament_hysteresis=settings[v].filament_hysteresis,
                                               pick=settings[v].pick,
                                               picked=picked if same else None))
                per_model[model].append(per_cell)
        results[v] = {
            "snr": snr, "ctf": ctf, "variant": v, "train_imaging": train_imaging, "shape": list(shape),
            "train_cell": cells_name(train_imaging, train_cells),
            "seed": seed, "epochs": epochs, "annotators": annotators, "erase_gold": erase_gold,
            "tests": {model: {"annotators": per_annotator, **spread(per_annotator)}
                      for model, per_annotator in per_model.items()},
            "seconds": {"cells": t_cells, "train": t_train, "apply": t_apply,
                        "score": time.perf_counter() - t0},
            "shared_with": list(variants)}
    return results


def rescaled(maps: dict, applied: list, calibrated: list) -> dict:
    """Score maps of networks `applied` as the same networks `calibrated` otherwise would give them."""
    from tomowidgets.io import Tomogram

    factor = {a.feature: np.float32(a.amplitude / b.amplitude)
              for a, b in zip(applied, calibrated, strict=True)}
    return {name: m if factor[name] == 1 else Tomogram(np.asarray(m.data) * factor[name], m.apix)
            for name, m in maps.items()}


def cells_name(model: str, layout: str) -> str:
    """How a set of cells is named in the table: the imaging model, then "varied" if so."""
    return model if layout == "standard" else f"{model} {layout}"


def spread(per_annotator: list[list[dict]]) -> dict:
    """Mean and sd over annotators of each metric's mean over cells."""
    first = per_annotator[0][0]
    means = {key: {m: [float(np.mean([c[key][m] for c in cells])) for cells in per_annotator]
                   for m in first[key]} for key in first}
    return {"mean": {k: {m: float(np.mean(v)) for m, v in ms.items()} for k, ms in means.items()},
            "sd": {k: {m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in ms.items()}
                   for k, ms in means.items()}}


def format_spread(results: list[dict], features: tuple[str, ...]) -> str:
    """One Markdown table: a row per training model -> test model, mean ± sd over annotators."""
    head = ["train → test", "SNR", "CTF", "variant", "annotators"] + [f"{f} Dice" for f in features]
    head += ["cross-talk", "ribosome precision", "ribosome recall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for model, t in r["tests"].items():
            m, sd = t["mean"], t["sd"]
            trained_on = r.get("train_cell", r["train_imaging"])
            variant = r["variant"] + (" + gold erased" if r.get("erase_gold") else "")
            row = [f"{trained_on} → {model}", f"{r['snr']:g}", "yes" if r["ctf"] else "no",
                   variant, str(r["annotators"])]
            row += [f"{m[f]['Dice']:.2f} ± {sd[f]['Dice']:.2f}" if f in m else "—" for f in features]
            row.append(f"{m['merge']['cross_talk']:.1%} ± {sd['merge']['cross_talk']:.1%}")
            if "picking" in m:
                row += [f"{m['picking'][k]:.0%} ± {sd['picking'][k]:.0%}" for k in ("precision", "recall")]
            else:
                row += ["—", "—"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_table(results: list[dict], features: tuple[str, ...]) -> str:
    """One Markdown table: a row per condition, Dice/skeleton Dice per feature, then the picks."""
    names = {"membrane": "membrane", "double_membrane": "double mem.", "microtubule": "microtubule",
             "ribosome": "ribosome"}
    head = ["SNR", "CTF", "variant"] + [f"{names.get(f, f)} {c}" for f in features for c in COLUMNS]
    has_picks = any("picking" in r["mean"] for r in results)
    has_caps = any("caps" in r["mean"].get("membrane", {}) for r in results)
    if has_caps:
        head.append("membrane caps")
    head.append("cross-talk")
    if has_picks:
        head += ["picks/true", "precision", "recall", "F1", "F4", "FSC 0.5 Å"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        m = r["mean"]
        row = [f"{r['snr']:g}", "yes" if r["ctf"] else "no", r["variant"]]
        row += [f"{m[f][c]:.2f}" if f in m else "—" for f in features for c in COLUMNS]
        if has_caps:
            row.append(f"{m['membrane']['caps']:.2f}" if "caps" in m.get("membrane", {}) else "—")
        row.append(f"{m['merge']['cross_talk']:.1%}" if "merge" in m else "—")
        if has_picks and "picking" in m:
            p = m["picking"]
            row += [f"{p['n_found']:.0f}/{p['n_true']:.0f}", f"{p['precision']:.0%}", f"{p['recall']:.0%}",
                    f"{p['f1']:.2f}", f"{p['f_beta']:.2f}", f"{p['fsc05']:.0f}"]
        elif has_picks:
            row += ["—"] * 6
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cached_or_run(path: Path, args: argparse.Namespace, compute: Callable[[], dict]) -> dict | None:
    """The result cached at `path` (unless --force); else None with --cached, or `compute()`'s,
    written there atomically with its timings printed."""
    if path.exists() and not args.force:
        return json.loads(path.read_text())
    if args.cached:
        return None
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items())
    print(f"  {path.stem}: {secs}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snr", type=float, nargs="+", default=list(SNRS), help="noise levels")
    parser.add_argument("--ctf", choices=["on", "off", "both"], default="both")
    parser.add_argument("--variant", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--features", nargs="+", default=list(DEMO_FEATURES))
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 256, 256], help="cells (z, y, x)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--box", type=int, default=32, help="subtomogram box for averaging, voxels")
    parser.add_argument("--seed", type=int, default=0, help="training cell; unseen cells seed+1, +2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/accuracy"))
    parser.add_argument("--force", action="store_true", help="recompute cached conditions")
    parser.add_argument("--cached", action="store_true",
                        help="only print the table of the conditions already computed")
    parser.add_argument("--annotators", type=int, default=0,
                        help="score this many simulated annotators each on its own (mean ± sd) on unseen "
                             "cells of every --test-imaging model, instead of the one-annotator table")
    parser.add_argument("--imaging", nargs="+", choices=(*IMAGING_MODELS, MIXED), default=["fourier"],
                        help="imaging model of the training cell (with --annotators); mixed: half of the "
                             "tiles on the training cell imaged by each model")
    parser.add_argument("--test-imaging", nargs="+", choices=IMAGING_MODELS, default=list(IMAGING_MODELS),
                        help="imaging models of the unseen cells (with --annotators)")
    parser.add_argument("--cells", choices=LAYOUTS, default="standard",
                        help="layout of the training cell (with --annotators): standard, varied "
                        "(make_cell(varied=True)) or varied with distractors (and distractors=True)")
    parser.add_argument("--test-cells", nargs="+", choices=LAYOUTS, default=["standard"],
                        help="layouts of the unseen cells (with --annotators)")
    parser.add_argument("--erase-gold", action="store_true",
                        help="erase every cell's gold beads before preprocessing, as `tomowidgets "
                             "preprocess --erase-gold` does (with --annotators)")
    args = parser.parse_args(argv)
    if args.annotators:
        return main_spread(args)
    if args.erase_gold:
        parser.error("--erase-gold needs --annotators")

    ctfs = {"on": [True], "off": [False], "both": [True, False]}[args.ctf]
    features = tuple(args.features)
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; cells "
          f"{tuple(args.shape)} at 10 Å/voxel, {args.epochs} epochs; results cached in {args.out}/")
    results = []
    for variant in args.variant:
        for ctf in ctfs:
            for snr in args.snr:
                key = (f"{variant}_snr{snr:g}_{'ctf' if ctf else 'noctf'}_{'x'.join(map(str, args.shape))}"
                       f"_e{args.epochs}_s{args.seed}_{'-'.join(features)}")
                path = args.out / f"{key}.json"
                result = cached_or_run(path, args, partial(
                    run_condition, snr, ctf, variant, shape=tuple(args.shape), seed=args.seed,
                    epochs=args.epochs, box=args.box, features=features,
                    cache=args.out / "networks" / key))
                if result is not None:
                    results.append(result)
    print()
    print(format_table(results, features))
    picks = [r["mean"]["picking"]["precision"] for r in results if "picking" in r["mean"]]
    if picks:
        print(f"\nribosome precision on unseen cells: {min(picks):.0%} (worst condition) to "
              f"{max(picks):.0%}; the paper's figure (by eye): ~{PAPER_PRECISION:.0%}")
    return 0


def main_spread(args: argparse.Namespace) -> int:
    """The --annotators table: each annotator alone, train on one imaging model, test on each.

    Variants that share networks and ``turns`` are run together (their networks applied once).
    """
    ctfs = {"on": [True], "off": [False], "both": [True, False]}[args.ctf]
    features = tuple(args.features)
    print(f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; cells "
          f"{tuple(args.shape)} at 10 Å/voxel, {args.epochs} epochs, {args.annotators} annotators; "
          f"results cached in {args.out}/")
    groups: dict[tuple[str, int, tuple], list[str]] = {}
    for variant in args.variant:
        v = VARIANTS[variant]
        shared = (v.networks or variant, v.turns, tuple(sorted(v.feature_networks.items())))
        groups.setdefault(shared, []).append(variant)
    results = []
    for variants in groups.values():
        for train_imaging in args.imaging:
            for ctf in ctfs:
                for snr in args.snr:
                    condition = spread_condition(
                        train_imaging, snr, ctf, shape=tuple(args.shape), epochs=args.epochs,
                        seed=args.seed, annotators=args.annotators, layout=args.cells,
                        erase_gold=args.erase_gold)
                    tests = "" if args.test_cells == ["standard"] else "_on-" + "-".join(args.test_cells)
                    paths = {v: args.out / f"spread_{v}_{condition}{tests}.json" for v in variants}
                    results += cached_or_run_group(paths, args, partial(
                        run_spread, snr, ctf, train_imaging=train_imaging,
                        test_imaging=tuple(args.test_imaging), annotators=args.annotators,
                        shape=tuple(args.shape), seed=args.seed, epochs=args.epochs, box=args.box,
                        features=features,
                        folders=network_folders(args.out / "networks", variants[0], condition, features),
                        train_cells=args.cells, test_cells=tuple(args.test_cells),
                        erase_gold=args.erase_gold))
    print()
    print(format_spread(results, features))
    return 0


def spread_condition(train_imaging: str, snr: float, ctf: bool, *, shape: tuple[int, ...],
                     epochs: int, seed: int, annotators: int, layout: str = "standard",
                     erase_gold: bool = False) -> str:
    """The name of one training condition of ``--annotators`` (training cell of `layout`): its
    results are ``spread_<variant>_<condition>.json`` and its networks
    ``networks/spread_<variant>_<condition>/``."""
    return (f"{train_imaging}{'' if layout == 'standard' else '_' + layout}_snr{snr:g}_"
            f"{'ctf' if ctf else 'noctf'}_"
            f"{'x'.join(map(str, shape))}_e{epochs}_s{seed}_a{annotators}"
            f"{'_gold-erased' if erase_gold else ''}")


def cached_or_run_group(paths: dict[str, Path], args: argparse.Namespace,
                        compute: Callable[[tuple[str, ...]], dict[str, dict]]) -> list[dict]:
    """`cached_or_run` for variants computed together: `compute(missing variants)` fills the gaps."""
    missing = tuple(v for v, path in paths.items() if args.force or not path.exists())
    computed: dict[str, dict] = {}
    if missing and not args.cached:
        everything = compute(missing)
        computed = {v: cached_or_run(paths[v], args, lambda v=v: everything[v]) or {} for v in missing}
    return [computed[v] if v in computed else json.loads(paths[v].read_text())
            for v in paths if v in computed or paths[v].exists()]


if __name__ == "__main__":
    raise SystemExit(main())
