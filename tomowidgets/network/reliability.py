"""Is a trained network reliable? Figures from tiles it never saw, and what to do about them.

The paper judges its networks by eye. With ten painted tiles a user cannot tell a network that
learned the feature from one that learned those ten tiles, and the same recipe gives microtubule
Dice from 0.06 to 0.90 between runs (README, Known limits). :func:`check_reliability` does what a
cautious user would: it trains a second network the same way but from another seed on 80 % of the
tiles, scores it on the 20 % held out, and compares its calls with the network's own. The
:class:`Reliability` it returns gives the figures, a verdict and advice in plain words ("add
negative tiles like the one at z=31, y=80, x=140: it fires there").

:func:`assess` scores any trained network on annotated tiles it was not trained on, e.g. a few
tiles painted on a new tomogram before trusting the network there.

Examples
--------
>>> report = check_reliability(net, ts)        # doctest: +SKIP
>>> print(report)                              # doctest: +SKIP
membrane network: reliable
  on 2 positive + 20 negative tiles it did not train on: Dice 0.86 (precision 0.84, recall 0.88),
  ...
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tomowidgets._calibration import FILAMENTS, THRESHOLD
from tomowidgets.metrics import angles_to_tilt_axis, tile_overlap

if TYPE_CHECKING:
    from tomowidgets.network import FeatureNet
    from tomowidgets.trainset import TrainingSet

__all__ = ["ACROSS_AXIS", "GOOD_AGREEMENT", "GOOD_DICE", "HOLDOUT", "LOW_RESPONSE", "MAX_FALSE_CALLS",
           "Reliability", "assess", "check_reliability"]

#: Share of the tiles held out by :func:`check_reliability` (2 of the paper's 10 positive tiles
#: and 20 of its 100 negatives).
HOLDOUT = 0.2
#: Dice on held-out positive tiles (1-pixel tolerance) below which a network is called weak. The
#: same networks score 0.7-0.9 on unseen synthetic cells when they work (README, accuracy).
GOOD_DICE = 0.7
#: Share of the held-out negative tiles' pixels called (score >= 1) above which a network is weak.
MAX_FALSE_CALLS = 0.02
#: Dice between the calls of two networks trained from different seeds, below which one run is
#: a matter of chance.
GOOD_AGREEMENT = 0.7
#: Mean output on the painted pixels below which the network barely responds to the feature
#: (working networks reach about 0.5-0.9 of the output's cap of 1; a collapsed one 0.1).
LOW_RESPONSE = 0.2
#: Angle to the tilt axis (y), in degrees, from which a painted filament counts as crossing it. On
#: synthetic back-projected cells, microtubule networks whose tiles held no tube at 79-86° to the
#: axis called 0.32-0.59 of such a tube (tubes at 10-74°: 0.72-0.95). Five more tiles painted on
#: one raised that to 0.84-0.95 (five on a tube at 14°: 0.43-0.62), but the networks then called
#: every tube wider (precision 0.96-0.99 -> 0.70-0.90), so microtubule Dice rose on the cell with
#: such a tube and fell on the other (README, Known limits). Only `FILAMENTS` are checked.
ACROSS_AXIS = 75.0
#: Tiles named in the advice, at most.
_NAMED = 3


@dataclass(frozen=True)
class Reliability:
    """How a network does on annotated tiles it was not trained on; see :func:`check_reliability`.

    Attributes
    ----------
    feature : str
        The network's feature.
    verdict : {'reliable', 'weak', 'failed'}
        'failed': it learned nothing (no calibration); 'weak': a figure below is past its limit
        (:data:`GOOD_DICE`, :data:`MAX_FALSE_CALLS`, :data:`GOOD_AGREEMENT`,
        :data:`LOW_RESPONSE`); else 'reliable'.
    dice, precision, recall : float or None
        Calls (calibrated score >= 1) against the painted masks of the held-out positive tiles,
        at full resolution with a 1-pixel tolerance, as the accuracy benchmark scores cells.
    false_calls : float or None
        Share of the held-out negative tiles' pixels called (None without negative tiles).
    agreement : float or None
        Dice (1-pixel tolerance) between the calls of the network and of a second network
        trained from another seed, on the held-out tiles; None if not compared or neither calls.
    fit_dice : float or None
        Dice of the judged network on the positive tiles it was trained on: low when even those
        are not learned (inconsistent masks, too few epochs).
    response : float or None
        The network's mean output (0 to 1) on the painted pixels of its training tiles
        (``net.calibration["mean"]``; None: it learned nothing).
    n_positive, n_negative : int
        Held-out tiles of each kind the figures come from.
    missed : list of dict
        Held-out positive tiles where the network finds least of the painted feature, worst
        first: ``{"centre": [z, y, x], "source": path or None, "value": recall}``.
    false_tiles : list of dict
        Held-out negative tiles where it calls most, worst first (``value``: share called).
    advice : list of str
        What to do, in plain words.
    """

    feature: str
    verdict: str
    dice: float | None = None
    precision: float | None = None
    recall: float | None = None
    false_calls: float | None = None
    agreement: float | None = None
    fit_dice: float | None = None
    response: float | None = None
    n_positive: int = 0
    n_negative: int = 0
    missed: list[dict[str, Any]] = field(default_factory=list)
    false_tiles: list[dict[str, Any]] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy (what ``FeatureNet.save`` keeps in the network file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reliability:
        """The report written by :meth:`to_dict` (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def __str__(self) -> str:
        lines = [f"{self.feature} network: {self.verdict}"]
        if self.n_positive:
            lines.append(f"  on {self.n_positive} positive + {self.n_negative} negative tiles it did "
                         f"not train on: Dice {_f(self.dice)} (precision {_f(self.precision)}, "
                         f"recall {_f(self.recall)})"
                         + (f", {self.false_calls:.1%} of the negative tiles' pixels called"
                            if self.false_calls is not None else ""))
        extra = [f"mean output on painted pixels {_f(self.response)}"]
        if self.agreement is not None:
            extra.append(f"agreement between two seeds {_f(self.agreement)}")
        if self.fit_dice is not None:
            extra.append(f"Dice on its own training tiles {_f(self.fit_dice)}")
        lines.append("  " + "; ".join(extra))
        lines += [f"  - {a}" for a in self.advice]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Reliability({self.feature!r}, {self.verdict}: held-out Dice {_f(self.dice)}, "
                f"false calls {_pct(self.false_calls)}, agreement {_f(self.agreement)}, "
                f"response {_f(self.response)})")


def check_reliability(net: FeatureNet, ts: TrainingSet, *, holdout: float = HOLDOUT,
                      seed: int | None = None, progress: bool = True, callbacks: Any = None
                      ) -> Reliability:
    """Judge a trained network by a twin trained without some of its tiles; store the report.

    A second network is trained with `net`'s recipe (epochs, learning rate, augmentation, ... as
    recorded in ``net.training``) from another seed on the tiles of `ts` left after holding out
    `holdout` of them (:meth:`TrainingSet.split`), then scored on the held-out tiles
    (:func:`assess`), and its calls there are compared with `net`'s. The held-out figures
    estimate how `net` does on tiles like those it trained on (it saw a few more tiles, so it is
    if anything a little better); the agreement shows how much one run depends on chance. It
    costs one more training of `net`'s length. It catches a network that did not learn its
    tiles consistently, not one whose feature looks different in other tomograms (on synthetic
    cells, held-out Dice did not rank networks as unseen cells did; README, #16): for that,
    :func:`assess` it on tiles painted on the new data.

    Parameters
    ----------
    net : FeatureNet
        The trained network (trained on `ts`); its :attr:`~FeatureNet.reliability` is set.
    ts : TrainingSet
        Its training set, with at least 2 painted positive tiles.
    holdout : float, default HOLDOUT (0.2)
        Share of each kind of tile held out.
    seed : int, optional
        Seed of the second network and of the split; default ``net.seed + 1``.
    progress : bool, default True
        Show the second network's training progress bar.
    callbacks : list, optional
        Passed to the second network's ``train`` (e.g. to stop it).

    Returns
    -------
    Reliability

    Raises
    ------
    ValueError
        If `net` is not trained, `ts` is not a TrainingSet, has fewer than 2 painted positive
        tiles, or `holdout` is not in (0, 1).
    """
    from tomowidgets.network import FeatureNet
    from tomowidgets.trainset import TrainingSet

    if not net.history["loss"]:
        raise ValueError(f"the {net.feature!r} network is not trained yet; train it on `ts` first")
    if not isinstance(ts, TrainingSet):
        raise ValueError(f"`ts` must be the network's TrainingSet (tiles can only be held out of "
                         f"a TrainingSet), got {type(ts).__name__}")
    seed = net.seed + 1 if seed is None else int(seed)
    kept, held = ts.split(holdout, rng=seed)
    twin = FeatureNet(net.feature, apix=net.apix, preprocessing=net.preprocessing, seed=seed,
                      context=net.context, **net.hyper)
    recipe = {k: net.training[k] for k in ("epochs", "batch_size", "learning_rate", "decay", "l1",
                                           "copies", "negative_copies", "scale", "lent_scale", "blur",
                                           "engine")
              if net.training.get(k) is not None}
    with warnings.catch_warnings():  # "learned nothing" is reported as the verdict instead
        warnings.simplefilter("ignore", RuntimeWarning)
        twin.train(kept, progress=progress, callbacks=callbacks, **recipe)
    report = assess(twin, held, other=net, fit=kept)
    # the verdict is about `net`: its own calibration counts, the twin's figures estimate the rest
    report = _judged(report, response=_response(net), twin_failed=twin.amplitude is None)
    if report.verdict != "failed" and net.feature in FILAMENTS and not _crosses_axis(ts):
        # about the tiles' coverage, not the held-out figures: advice, the verdict unchanged
        report = _replace(report, advice=[*report.advice, _ACROSS_ADVICE.format(feature=net.feature)])
    net.reliability = report
    return report


def assess(net: FeatureNet, tiles: TrainingSet, *, other: FeatureNet | None = None,
           fit: TrainingSet | None = None) -> Reliability:
    """Score a trained network on annotated tiles it was not trained on.

    Parameters
    ----------
    net : FeatureNet
        A trained, calibrated network.
    tiles : TrainingSet
        Painted positive tiles (and negative tiles) the network did not train on, e.g. a few
        tiles painted on a new tomogram, or ``ts.split()[1]``.
    other : FeatureNet, optional
        A second network (another seed or annotator) whose calls on `tiles` are compared.
    fit : TrainingSet, optional
        The tiles `net` was trained on, for :attr:`Reliability.fit_dice`.

    Returns
    -------
    Reliability

    Raises
    ------
    ValueError
        If `tiles` has no painted positive tile, or its tiles do not fit the network.
    """
    if net.amplitude is None:
        return _judged(Reliability(net.feature, "failed"), response=None)
    positives = [r for r in tiles if r.kind == "positive" and r.painted]
    negatives = [r for r in tiles if r.kind == "negative"]
    if not positives:
        raise ValueError(f"the tiles to judge the {net.feature!r} network by hold no painted "
                         "positive tile; paint the feature in a few tiles it was not trained on")
    records = positives + negatives
    inputs = np.stack([r.inputs for r in records]).astype(np.float32)
    calls = net.predict(inputs, unbin=True) >= THRESHOLD
    masks = np.stack([r.mask for r in positives])
    dice, precision, recall, per_tile = tile_overlap(calls[: len(positives)], masks)
    called = calls[len(positives):].mean(axis=(1, 2)) if negatives else np.zeros(0)
    agreement = None
    if other is not None and other.amplitude is not None:
        theirs = other.predict(inputs, unbin=True) >= THRESHOLD
        if calls.any() or theirs.any():
            agreement = tile_overlap(calls, theirs)[0]
    fit_dice = None
    if fit is not None:
        mine = [r for r in fit if r.kind == "positive" and r.painted]
        fit_calls = net.predict(np.stack([r.inputs for r in mine]).astype(np.float32), unbin=True)
        fit_dice = tile_overlap(fit_calls >= THRESHOLD, np.stack([r.mask for r in mine]))[0]
    report = Reliability(
        net.feature, "reliable", dice=dice, precision=precision, recall=recall,
        false_calls=float(called.mean()) if negatives else None, agreement=agreement,
        fit_dice=fit_dice, response=_response(net), n_positive=len(positives),
        n_negative=len(negatives),
        missed=_worst(positives, per_tile, lowest=True),
        false_tiles=_worst(negatives, called, lowest=False, beyond=MAX_FALSE_CALLS))
    return _judged(report, response=_response(net))


def _response(net: FeatureNet) -> float | None:
    """Mean output on the painted pixels (None if the network learned nothing)."""
    if net.amplitude is None:
        return None
    return float(net.calibration.get("mean", net.amplitude))


def _worst(records: list, values: np.ndarray, *, lowest: bool, beyond: float | None = None
           ) -> list[dict[str, Any]]:
    """The tiles with the lowest (or highest) values, as JSON-able dicts."""
    order = np.argsort(values if lowest else -values, kind="stable")
    chosen = [i for i in order if (values[i] < GOOD_DICE if lowest else values[i] > beyond)]
    return [{"centre": [int(c) for c in records[i].centre], "source": records[i].source,
             "value": float(values[i])} for i in chosen[:_NAMED]]


def _judged(r: Reliability, *, response: float | None, twin_failed: bool = False) -> Reliability:
    """The report with its verdict and advice set from its figures."""
    if response is None:
        advice = [f"The {r.feature} network learned nothing: its output on the painted pixels is "
                  "too weak, or no higher than beside them, to calibrate. Check that the masks "
                  "cover the feature, add positive tiles, train for more epochs, or train again "
                  "from another seed."]
        return _replace(r, verdict="failed", response=None, advice=advice)
    advice = []
    if twin_failed:
        advice.append("A second network trained on 80 % of these tiles learned nothing: the result "
                      "hangs on a few tiles. Add positive tiles.")
    if response < LOW_RESPONSE:
        advice.append(f"Its output on the painted pixels is weak (mean {response:.2f}; working "
                      "networks reach 0.5-0.9), so calibrated scores amplify its noise. Add "
                      "positive tiles or train for more epochs.")
    if r.recall is not None and r.recall < GOOD_DICE:
        advice.append(f"It misses the {r.feature} on tiles it did not train on (recall "
                      f"{r.recall:.0%}){_where(r.missed, 'e.g. the held-out tile')}: add positive "
                      "tiles like these (other orientations, thicknesses, contrast, crowding).")
    if r.precision is not None and r.precision < GOOD_DICE:
        advice.append(f"It calls {r.feature} around or beside the painted masks (precision "
                      f"{r.precision:.0%}): paint the whole width of the feature, and add negative "
                      "tiles of what lies next to it.")
    if r.false_calls is not None and r.false_calls > MAX_FALSE_CALLS:
        advice.append(f"It fires on {r.false_calls:.1%} of the negative tiles' pixels"
                      f"{_where(r.false_tiles, 'most on the tile')}: add negative tiles of what is "
                      "there (gold, other membranes or filaments, the ice edge).")
    if r.agreement is not None and r.agreement < GOOD_AGREEMENT:
        advice.append(f"Two networks trained on these tiles from different seeds agree on "
                      f"{r.agreement:.0%} of their calls: one run is a matter of chance. Add "
                      "positive tiles, or train three networks and merge their consensus "
                      "(tomowidgets.consensus).")
    if r.fit_dice is not None and r.fit_dice < GOOD_DICE:
        advice.append(f"It does not even fit the tiles it trained on (Dice {r.fit_dice:.2f}): "
                      "the masks may disagree with each other, or it needs more epochs.")
    if not advice:
        advice.append(f"Nothing to fix on these {r.n_positive + r.n_negative} held-out tiles. They "
                      "come from the training tomograms, which says little about other data: on "
                      "synthetic cells, networks that passed here failed on cells whose features "
                      "looked different. Before trusting it on another tomogram, paint ~10 tiles "
                      "there and run tomowidgets.network.assess(net, tiles).")
        return _replace(r, verdict="reliable", response=response, advice=advice)
    return _replace(r, verdict="weak", response=response, advice=advice)


_ACROSS_ADVICE = (
    "Beyond these tiles: the painted ones leave out filaments across the tilt axis (no painted "
    "{feature} runs within " f"{90 - ACROSS_AXIS:g}" "° of x). Such filaments keep the least "
    "signal in a single-axis tilt series and come out faint: a "
    "network that never saw one misses more than half of them. If yours run along x, paint a few "
    "tiles on them, then check that the calls elsewhere did not widen.")


def _crosses_axis(ts: TrainingSet) -> bool:
    """Whether any painted positive tile of `ts` holds a piece at `ACROSS_AXIS` or more to y."""
    return any((angles_to_tilt_axis(r.mask) >= ACROSS_AXIS).any()
               for r in ts if r.kind == "positive" and r.painted)


def _replace(r: Reliability, **changes: Any) -> Reliability:
    return Reliability(**{**asdict(r), **changes})


def _where(tiles: list[dict[str, Any]], what: str) -> str:
    """', e.g. the held-out tile at z=31, y=80, x=140 of cell.mrc' for the worst tile, or ''."""
    if not tiles:
        return ""
    z, y, x = tiles[0]["centre"]
    source = f" of {tiles[0]['source']}" if tiles[0]["source"] else ""
    return f", {what} at z={z}, y={y}, x={x}{source}"


def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"
