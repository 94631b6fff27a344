"""The whole loop on a real cell: EMPIAR-10499 (M. pneumoniae, 20 Å/voxel) from annotation to a
ribosome average, plus a microtubule network carried from one real crop to another.

Steps, each timed (this machine, 2 cores):

1. erase gold and preprocess the 20 Å cell with the defaults (the 20 Å low-pass becomes Nyquist);
2. train ribosome, membrane and cytoplasm networks on the training sets annotated through the
   widgets (``notebooks/real_cell/*.tiles.npz``, made by ``notebooks/real_cell/annotate.py``);
3. apply them, merge ribosomes and membrane, and measure how much of the traced cell envelope the
   membrane label covers; outline the cell with the cytoplasm network (smoothed score >= 1);
4. pick ribosomes inside the cell, save a gallery of 50 random picks (judge it by eye, as the paper
   did), 2D classes;
5. average all picks reference-free at 20 Å and compare with the 4V5D ribosome (both contrasts and
   hands tried); with ``--fine`` (the 10 Å reconstruction, see ``../shared/data/real/README.md``)
   move the picks there through Å, re-extract, average and compare again;
6. microtubules: train on the 13-protofilament cylindra crop (a 25 nm tube drawn along its axis),
   apply to the 14-protofilament crop, Dice against the same kind of drawn tube.

Usage::

    python benchmarks/real_data.py                                   # 20 Å only
    python benchmarks/real_data.py --fine /path/TS00254_10A.mrc       # plus re-extraction at 10 Å

Writes ``benchmarks/results/real_data/``: ``results.json``, ``gallery.png`` (50 random picks),
``classes.png``, ``averages.png``, ``membrane.png`` and prints the table for the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy import ndimage

import tomowidgets as tw
from tomowidgets.average import compare_to_reference
from tomowidgets.metrics import dice
from tomowidgets.synthetic import ribosome_template

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
SETS = ROOT / "notebooks" / "real_cell"
OUT = ROOT / "benchmarks" / "results" / "real_data"
sys.path.insert(0, str(SETS))
import annotate  # noqa: E402  (the membrane traces used for the annotation)

BOX_20, BOX_10 = 16, 32  # 320 Å boxes: a 250 Å ribosome and little of its crowded neighbours
GALLERY = 50
#: Microtubule: 25 nm tube = radius 12 voxels at 10.52 Å; its axis (y, x) at the crops' ends, in
#: the middle slice (read off the slices: walls at x = 70/88 and 12/30 in the 13-pf crop).
TUBES = {"cylindra_13pf_MT": ((0, 79), (205, 21)), "cylindra_14pf_MT": ((0, 65), (135, 28))}
TUBE_RADIUS = 12.0


@contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block as ``times[name]`` (seconds)."""
    t0 = time.perf_counter()
    yield
    times[name] = time.perf_counter() - t0


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # the Nyquist note, expected at 20 Å
        return call(*args, **kwargs)


def train(ts: tw.TrainingSet, seed: int) -> tw.FeatureNet:
    net = tw.FeatureNet(ts.feature, seed=seed)
    net.train(ts, progress=False)
    return net


def network_path(feature: str) -> Path:
    """Where the network of `feature` is kept between runs (ignored by git; --retrain to redo)."""
    return OUT / "networks" / f"{feature}.keras"


def cached_network(ts: tw.TrainingSet, seed: int, retrain: bool = False) -> tw.FeatureNet:
    """The network kept for `ts`'s feature, or one trained on `ts` and kept."""
    path = network_path(ts.feature)
    if path.is_file() and not retrain:
        return tw.FeatureNet.load(path)
    net = train(ts, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    net.save(path)
    return net


def envelope_coverage(labels: np.ndarray, index: int) -> dict[str, float]:
    """Share of the traced envelope (both membranes, slices 50-95, rows 40-280) with a membrane
    voxel within 2 voxels, the number of separate membrane pieces per slice there, and the longest
    unbroken stretch (:func:`longest_stretch`)."""
    hits, total, pieces, stretches = 0, 0, [], []
    for z in range(50, 96, 5):
        called = labels[z] == index
        m = ndimage.binary_dilation(called, iterations=2)
        for y in range(40, 281, 4):
            for x in (round(annotate.left_membrane(y)), round(annotate.right_membrane(y))):
                if 0 <= x < m.shape[1]:
                    hits += bool(m[y, x])
                    total += 1
        big = ndimage.label(called)[0]
        sizes = np.bincount(big.ravel())[1:]
        pieces.append(int(np.sum(sizes >= 20)))
        stretches += [longest_stretch(called, trace)
                      for trace in (annotate.left_membrane, annotate.right_membrane)]
    return {"envelope_covered": hits / max(total, 1), "pieces_per_slice": float(np.median(pieces)),
            "longest_stretch": float(np.mean(stretches))}


def longest_stretch(called: np.ndarray, trace, rows: range = range(40, 281), near: int = 6) -> float:
    """Share of `rows` that the longest single membrane piece of one slice spans along one envelope
    line (`trace`: row -> x), counting rows where the piece has a voxel within `near` voxels of the
    line. One unbroken outline scores 1, whatever its width; the straight traced lines stray a few
    voxels from the curved envelope at their ends, hence the loose `near`."""
    pieces = ndimage.label(called, structure=np.ones((3, 3)))[0]
    spans: dict[int, int] = {}
    for y in rows:
        x = round(trace(y))
        found = np.unique(pieces[y, max(0, x - near):max(0, x + near + 1)])
        for piece in found[found > 0]:
            spans[int(piece)] = spans.get(int(piece), 0) + 1
    return max(spans.values(), default=0) / len(rows)


def gallery(tomo: tw.Tomogram, picks, path: Path, rng: np.random.Generator) -> list[int]:
    """50 random picks, numbered, for judging by eye: the central slices (5-slice mean, smoothed) of
    a 400 Å box in the tomogram given (the 10 Å one when there is one: ribosomes are clearer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = sorted(rng.choice(len(picks), size=min(GALLERY, len(picks)), replace=False).tolist())
    box = round(400 / tomo.apix)
    boxes = tw.extract_subvolumes(tomo, picks.iloc[chosen], box)
    fig, axes = plt.subplots(5, 10, figsize=(15, 8))
    for ax, i, cube in zip(axes.flat, chosen, boxes, strict=False):
        v = ndimage.gaussian_filter(cube[box // 2 - 2:box // 2 + 3].mean(0), 20 / tomo.apix)
        ax.imshow(v, cmap="gray", vmin=-2.5 * v.std(), vmax=2.5 * v.std())
        ax.plot([box / 2 - 0.5], [box / 2 - 0.5], "r+", ms=6)
        ax.set_title(str(i), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"50 random ribosome picks ({tomo.apix:g} Å/voxel, 400 Å boxes; central 5 slices; "
                 "protein dark; + marks the pick)")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return chosen


def cell_mask(cytoplasm: tw.Tomogram) -> np.ndarray:
    """The cell: where the cytoplasm network's score, smoothed by a Gaussian of sd 60 Å, reaches 1;
    its largest piece with the holes (dense clusters the network leaves out) filled."""
    smooth = ndimage.gaussian_filter(np.asarray(cytoplasm.data, np.float32), 60 / cytoplasm.apix)
    pieces, _ = ndimage.label(smooth >= tw.THRESHOLD)
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    return ndimage.binary_fill_holes(pieces == sizes.argmax())


def inside_the_cell(picks) -> float:
    """Share of the picks between the traced envelope lines, in the slices the cell spans (z 40-115
    at 20 Å, read off xz slices)."""
    z, y, x = (picks[c].to_numpy() for c in "zyx")
    inside = (z >= 40) & (z <= 115) & (x > annotate.left_membrane(y)) & (x < annotate.right_membrane(y))
    return float(inside.mean())


def reference_at(apix: float, box: int) -> np.ndarray:
    """The 4V5D ribosome at `apix`, padded or cropped to `box` (density positive)."""
    ref = ribosome_template(apix)
    n = ref.shape[0]
    out = np.zeros((box,) * 3, np.float32)
    lo = max(0, (box - n) // 2)
    src = max(0, (n - box) // 2)
    m = min(n, box)
    out[lo:lo + m, lo:lo + m, lo:lo + m] = ref[src:src + m, src:src + m, src:src + m]
    return out


def average_and_compare(tomo: tw.Tomogram, picks, box: int, seed: int) -> dict:
    boxes = tw.extract_subvolumes(tomo, picks, box)
    # the picks' positions split the half sets in space: touching ribosomes share box voxels
    result = tw.average(boxes, apix=tomo.apix, rng=seed, particles=picks, progress=False)
    cmp = compare_to_reference(result.map, reference_at(tomo.apix, box), tomo.apix)
    return {"particles": len(boxes), "half_map_A": result.resolution, "fsc05_vs_4v5d_A": cmp.resolution,
            "inverted": cmp.inverted, "mirrored": cmp.mirrored,
            "scores": {f"inverted={k[0]},mirrored={k[1]}": v for k, v in cmp.scores.items()},
            "map": result.map, "aligned": cmp.volume}


def tube_mask(shape: tuple[int, int, int], ends: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """A 25 nm tube around the axis drawn between `ends` (y, x) in the middle slice."""
    zc = shape[0] // 2
    (y0, x0), (y1, x1) = ends
    z, y, x = np.indices(shape, dtype=np.float32)
    d = np.array([y1 - y0, x1 - x0], np.float32)
    d /= np.linalg.norm(d)
    across = (y - y0) * d[1] - (x - x0) * d[0]                 # in-plane distance from the axis
    return (across ** 2 + (z - zc) ** 2) <= TUBE_RADIUS ** 2


def microtubules(seed: int) -> dict:
    """Train on the 13-pf crop (tiles along the tube, negatives above and below it), apply to
    the 14-pf crop; Dice of the calibrated score >= 1 against its drawn tube (1-voxel tolerance)."""
    pres, masks = {}, {}
    for name, ends in TUBES.items():
        raw = tw.read_tomogram(REAL / f"{name}.mrc")
        pres[name] = quiet(tw.preprocess, raw, progress=False)
        masks[name] = tube_mask(raw.shape, ends)
    train_name, test_name = list(TUBES)
    pre, mask = pres[train_name], masks[train_name]
    ts = tw.TrainingSet(feature="microtubule")
    nz, ny, nx = pre.shape
    zc = nz // 2
    (y0, x0), (y1, x1) = TUBES[train_name]
    for t in np.linspace(0.2, 0.8, 10):
        y, x = int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))
        x = min(max(x, 32), nx - 32)
        z = zc + int(round((t - 0.5) * 8))
        ts.add_positive(pre, z, y, x, mask[z, y - 32:y + 32, x - 32:x + 32])
    for z in [*range(0, zc - 14, 2), *range(zc + 15, nz, 2)]:
        for y in range(40, ny - 32, 40):
            ts.add_negative(pre, z, y, nx // 2)
    net = train(ts, seed)
    scores = tw.apply(net, pres[test_name], progress=False)
    return {"train_tiles": f"{ts.kinds.count('positive')} positive + {ts.kinds.count('negative')} negative",
            "dice": dice(np.asarray(scores.data) >= 1.0, masks[test_name], tolerance=1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fine", type=Path, help="the 10 Å reconstruction, for re-extraction")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train again instead of reusing "
                        "the networks kept in benchmarks/results/real_data/networks/")
    args = parser.parse_args()
    if not (REAL / "empiar10499_TS00254_20A.mrc").is_file():
        sys.exit(f"the real cell is not at {REAL}; see ../shared/data/real/README.md")
    times: dict[str, float] = {}
    results: dict = {"times_s": times}
    rng = np.random.default_rng(args.seed)

    raw = tw.read_tomogram(REAL / "empiar10499_TS00254_20A.mrc")
    with timed(times, "erase gold + preprocess (20 Å)"):
        gold = tw.find_gold(raw)
        pre = quiet(tw.preprocess, tw.erase_gold(raw, gold), progress=False)
    results["gold_voxels"] = float(gold.mean())
    sets = {f: tw.TrainingSet.load(SETS / f"{f}.tiles.npz") for f in ("ribosome", "membrane", "cytoplasm")}
    nets = {}
    for feature, ts in sets.items():
        reuse = network_path(feature).is_file() and not args.retrain
        with timed(times, f"train {feature}" + (" (cached)" if reuse else "")):
            nets[feature] = cached_network(ts, args.seed, retrain=args.retrain)
    with timed(times, "apply 3 networks"):
        scores = tw.apply(list(nets.values()), pre, progress=False)
    with timed(times, "merge"):
        labels = tw.merge({f: scores[f] for f in ("ribosome", "membrane")})
    results["membrane"] = envelope_coverage(np.asarray(labels.data), labels.names.index("membrane") + 1)
    cell = cell_mask(scores["cytoplasm"])
    results["cell_voxels"] = float(cell.mean())
    with timed(times, "pick"):
        # the defaults are physical sizes (3·10⁵ Å³ grown to 0.4, 100 Å apart): 38 voxels, 5 apart at 20 Å
        everywhere = tw.pick_particles(scores["ribosome"], feature="ribosome", tomogram="TS00254")
        picks = tw.pick_particles(scores["ribosome"], feature="ribosome", tomogram="TS00254", within=cell)
    results["picks_anywhere"] = len(everywhere)
    results["inside_the_cell_anywhere"] = inside_the_cell(everywhere)
    results["picks"] = len(picks)
    results["inside_the_cell"] = inside_the_cell(picks)
    with timed(times, "2D classes"):
        classes = tw.classify_2d(tw.extract_subvolumes(pre, picks, BOX_20), n_classes=4, rng=args.seed)
    results["class_sizes"] = [int(n) for n in classes.counts]
    with timed(times, "average at 20 Å"):
        coarse = average_and_compare(pre, picks, BOX_20, args.seed)
    maps = {"20 Å": coarse.pop("map")}
    aligned = {"20 Å": coarse.pop("aligned")}
    results["average_20A"] = coarse
    judged = (pre, picks)       # the picks shown in the gallery, on the finest tomogram there is
    if args.fine:
        fine_raw = tw.read_tomogram(args.fine, mmap=True)
        with timed(times, "erase gold + preprocess (10 Å)"):
            fine = tw.preprocess(tw.erase_gold(fine_raw), progress=False)
        moved = tw.particles.regrid(picks, pre, fine)
        with timed(times, "average at 10 Å"):
            detail = average_and_compare(fine, moved, BOX_10, args.seed)
        maps["10 Å"], aligned["10 Å"] = detail.pop("map"), detail.pop("aligned")
        results["average_10A"] = detail
        judged = (fine, moved)
    results["gallery"] = gallery(*judged, OUT / "gallery.png", rng)
    with timed(times, "microtubules: train + apply"):
        results["microtubules"] = microtubules(args.seed)
    figures(maps, aligned, classes, np.asarray(labels.data), np.asarray(pre.data), cell)
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(table(results))


def figures(maps, aligned, classes, labels, pre, cell) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(maps), 3, figsize=(9, 3 * len(maps)), squeeze=False)
    for row, name in enumerate(maps):
        n = maps[name].shape[0]
        ref = reference_at(20.0 if name == "20 Å" else 10.0, n)
        for ax, v, title in zip(axes[row], (maps[name][n // 2], aligned[name][n // 2], ref[n // 2]),
                                (f"average {name}", "aligned to 4V5D", "4V5D reference"), strict=True):
            ax.imshow(v, cmap="gray")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "averages.png", dpi=80)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(classes.averages), figsize=(3 * len(classes.averages), 3))
    for ax, avg, n in zip(np.atleast_1d(axes), classes.averages, classes.counts, strict=True):
        ax.imshow(avg, cmap="gray")
        ax.set_title(f"{n} picks", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "classes.png", dpi=80)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, z in zip(axes, (55, 75, 95), strict=True):
        ax.imshow(pre[z], cmap="gray", vmin=-3, vmax=3)
        overlay = np.zeros(labels[z].shape + (4,))
        overlay[labels[z] == 1] = (1.0, 0.5, 0.0, 0.6)
        overlay[labels[z] == 2] = (0.0, 0.8, 1.0, 0.6)
        ax.imshow(overlay)
        ax.contour(cell[z], [0.5], colors="yellow", linewidths=1.5)
        ax.set_title(f"z={z}: ribosome (orange), membrane (blue), cell outline (yellow)", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "membrane.png", dpi=45)
    plt.close(fig)


def table(r: dict) -> str:
    lines = ["| step | value |", "|---|---|",
             f"| gold erased | {r['gold_voxels']:.2%} of the voxels |",
             f"| cell envelope covered by the membrane label (within 2 voxels, slices 50-95) | "
             f"{r['membrane']['envelope_covered']:.0%}, "
             f"{r['membrane']['pieces_per_slice']:.0f} pieces per slice, the longest "
             f"{r['membrane']['longest_stretch']:.0%} of a side |",
             f"| ribosome picks anywhere | {r['picks_anywhere']}, {r['inside_the_cell_anywhere']:.0%} of "
             f"them inside the traced envelope (z 40-115) |",
             f"| ribosome picks inside the cytoplasm network's cell ({r['cell_voxels']:.0%} of the "
             f"voxels) | {r['picks']}, {r['inside_the_cell']:.0%} inside the traced envelope |",
             f"| 2D classes (sizes) | {r['class_sizes']} |"]
    for key, name in (("average_20A", "20 Å"), ("average_10A", "10 Å re-extraction")):
        if key in r:
            a = r[key]
            lines.append(f"| average at {name}: {a['particles']} particles | half maps "
                         f"{a['half_map_A']:.0f} Å "
                         f"(FSC 0.143); vs 4V5D {a['fsc05_vs_4v5d_A']:.0f} Å (FSC 0.5 in its envelope); "
                         f"contrast "
                         f"{'inverted' if a['inverted'] else 'same'}, hand "
                         f"{'mirrored' if a['mirrored'] else 'as reconstructed'} |")
    mt = r["microtubules"]
    lines.append(f"| microtubule network (13-pf crop → 14-pf crop), Dice vs drawn tube | {mt['dice']:.2f} |")
    lines += [f"| time: {k} | {v:.0f} s |" for k, v in r["times_s"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
